"""The live status server (``PROXY_STATUS_ADDRESS``): a small HTTP/1.1 server on the crawl's
own asyncio event loop.

- ``/``: a page a person reads at a glance (self-contained: no script, font or style from
  elsewhere); it polls ``/status.json``;
- ``/status.json``: the pool, its sites and proxies (see the README);
- ``/metrics``: Prometheus's text format (needs ``prometheus_client``);
- ``POST /proxies/<id>/disable`` and ``.../enable``: only with ``PROXY_STATUS_ACTIONS``.

It never slows the crawl down: a request costs one walk of the pool at most, cached, and
the page polls less often when that walk takes longer (a large pool); connections are
limited in number, size and time. Security: with ``PROXY_STATUS_TOKEN`` every endpoint wants
it (``Authorization: Bearer <token>`` or ``?token=``, compared in constant time); without
one (a loopback address only) the ``Host`` header must name a loopback host, so a web page
elsewhere cannot read it through DNS rebinding; an action from another origin is refused.
No password is ever shown.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import secrets
import time
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from .view import View

if TYPE_CHECKING:
    from ..config import StatusSettings
    from ..crawl import Crawl

logger = logging.getLogger(__name__)

MAX_CLIENTS = 32  # connections at once; more are closed at once
MAX_HEAD = 16384  # bytes of request line and headers
MAX_BODY = 4096  # bytes of a request body (actions need none)
READ_TIMEOUT = 10.0  # seconds a client has to send its request
WRITE_TIMEOUT = 10.0  # seconds it has to read the answer
CLOSE_TIMEOUT = 2.0  # seconds closing the server may take at the end of the crawl
REFRESH_MIN, REFRESH_MAX = 2.0, 60.0  # seconds between the page's polls
COST_SHARE = 0.02  # the page's polls may take at most this share of the event loop
ACTION = re.compile(r"/proxies/(\d+)/(disable|enable)")
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 413: "Content Too Large", 500: "Internal Server Error",
           501: "Not Implemented", 503: "Service Unavailable"}
PAGE_POLICY = ("default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self';"
               " img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

Answer = tuple[int, dict[str, str], bytes]


def _json(status: int, data: object) -> Answer:
    return status, {"Content-Type": "application/json"}, json.dumps(data).encode()


class StatusServer:
    def __init__(self, settings: StatusSettings, crawl: Crawl) -> None:
        self.settings = settings
        self.crawl = crawl
        self.server: asyncio.Server | None = None
        self.clients: set[asyncio.StreamWriter] = set()
        self.url = ""
        self.page = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")
        self.cached: tuple[float, View, bytes | None] | None = None  # (built at, view, status.json)
        self.cost = 0.0  # seconds the last view took to build
        try:
            from .metrics import PoolCollector
        except ImportError:
            self.collector = None
        else:
            config = crawl.config
            self.collector = PoolCollector(self.view, config.metrics_per_proxy, config.metrics_per_site)

    async def start(self) -> None:
        """Listen (raises ``OSError`` if the address cannot be had)."""
        s = self.settings
        self.server = await asyncio.start_server(self._client, s.host, s.port, limit=MAX_HEAD)
        port = self.server.sockets[0].getsockname()[1]
        host = f"[{s.host}]" if ":" in s.host else s.host
        self.url = f"http://{host}:{port}/"
        logger.info("status page at %s (also /status.json and /metrics%s%s)", self.url,
                    "; token required" if s.token else "", "; actions on" if s.actions else "")
        if self.collector is None:
            logger.warning("/metrics needs prometheus_client: pip install 'scrapy-proxybalance[metrics]'")

    async def close(self) -> None:
        """Stop listening and cut open connections, within :data:`CLOSE_TIMEOUT`."""
        server, self.server = self.server, None
        if server is None:
            return
        server.close()
        for writer in list(self.clients):
            writer.transport.abort()
        try:
            await asyncio.wait_for(server.wait_closed(), CLOSE_TIMEOUT)
        except TimeoutError:
            logger.warning("the status server took more than %.0f s to close", CLOSE_TIMEOUT)

    # -- views -----------------------------------------------------------------------

    def refresh_s(self) -> float:
        """How often the page polls: rarely enough that building views costs at most
        :data:`COST_SHARE` of the event loop."""
        return min(REFRESH_MAX, max(REFRESH_MIN, self.cost / COST_SHARE))

    def view(self) -> View:
        """The pool now, or as it was less than half a refresh ago."""
        now = time.monotonic()
        if self.cached is not None and now - self.cached[0] < self.refresh_s() / 2:
            return self.cached[1]
        view = View(self.crawl)
        self.cost = time.monotonic() - now
        self.cached = (now, view, None)
        return view

    def status_json(self) -> bytes:
        view = self.view()
        assert self.cached is not None
        built, _, body = self.cached
        if body is None:
            started = time.monotonic()
            data = view.status()
            data["refresh_s"] = round(self.refresh_s(), 1)
            body = json.dumps(data).encode()
            self.cost += time.monotonic() - started  # the next refresh counts it too
            self.cached = (built, view, body)
        return body

    # -- HTTP ------------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.clients) >= MAX_CLIENTS:
            writer.transport.abort()
            return
        self.clients.add(writer)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, colon, value = line.partition(":")
                if colon:
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if length > MAX_BODY:
                answer: Answer = _json(413, {"error": "request body too large"})
            else:
                if length:
                    await asyncio.wait_for(reader.readexactly(length), READ_TIMEOUT)
                try:
                    answer = self.respond(method, target, headers)
                except Exception:
                    logger.exception("the status server failed to answer %s %s", method,
                                     target.partition("?")[0])
                    answer = _json(500, {"error": "internal error (see the crawl's log)"})
            writer.write(self._encode(answer, head_only=method == "HEAD"))
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass  # a client that sent nonsense, too much, too slowly, or went away
        finally:
            self.clients.discard(writer)
            writer.close()

    @staticmethod
    def _encode(answer: Answer, head_only: bool) -> bytes:
        status, headers, body = answer
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", f"Content-Length: {len(body)}",
                 "Connection: close", "Cache-Control: no-store", "X-Content-Type-Options: nosniff",
                 "Referrer-Policy: no-referrer", *(f"{k}: {v}" for k, v in headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else body)

    def respond(self, method: str, target: str, headers: dict[str, str]) -> Answer:
        """The answer to one request (each endpoint checks the token, if there is one)."""
        path, _, query = target.partition("?")
        path = unquote(path)
        token = self.settings.token
        if token is None and not self._loopback_host(headers.get("host")):
            return _json(403, {"error": "this server answers requests for a loopback host name only"})
        if token is not None and not self._authorized(token, headers, query):
            status, head, body = _json(401, {"error": "a token is required (PROXY_STATUS_TOKEN): send"
                                             " 'Authorization: Bearer <token>' or add ?token=<token>"})
            return status, {**head, "WWW-Authenticate": 'Bearer realm="proxybalance"'}, body
        action = ACTION.fullmatch(path)
        if action is not None:
            if method != "POST":
                return 405, {"Allow": "POST", "Content-Type": "application/json"}, b'{"error": "POST only"}'
            return self._act(int(action[1]), action[2], headers)
        if path not in ("/", "/index.html", "/status.json", "/metrics"):
            return _json(404, {"error": "no such page; try /, /status.json or /metrics"})
        if method not in ("GET", "HEAD"):
            return 405, {"Allow": "GET, HEAD", "Content-Type": "application/json"}, b'{"error": "GET only"}'
        if path == "/status.json":
            return 200, {"Content-Type": "application/json"}, self.status_json()
        if path == "/metrics":
            if self.collector is None:
                return 501, {"Content-Type": "text/plain; charset=utf-8"}, (
                    b"/metrics needs prometheus_client: pip install 'scrapy-proxybalance[metrics]'\n")
            from .metrics import exposition

            body, content_type = exposition(self.collector, headers.get("accept", ""))
            return 200, {"Content-Type": content_type}, body
        nonce = secrets.token_urlsafe(16)
        return 200, {"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": PAGE_POLICY.format(
            nonce=nonce), "X-Frame-Options": "DENY"}, self.page.replace("{{nonce}}", nonce).encode()

    @staticmethod
    def _authorized(token: str, headers: dict[str, str], query: str) -> bool:
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
        return any(hmac.compare_digest(value.encode(), token.encode()) for value in parse_qs(query).get("token", []))

    def _loopback_host(self, host: str | None) -> bool:
        """Whether a ``Host`` header names this loopback server (no header: not a browser)."""
        if host is None:
            return True
        name = host.strip().lower()
        name = name[1:].partition("]")[0] if name.startswith("[") else name.rpartition(":")[0] or name
        return name in ("localhost", self.settings.host) or name.startswith("127.") or name == "::1"

    def _act(self, proxy_id: int, action: str, headers: dict[str, str]) -> Answer:
        if not self.settings.actions:
            return _json(403, {"error": "actions are off (PROXY_STATUS_ACTIONS = False)"})
        origin, host = headers.get("origin"), headers.get("host", "")
        if (origin is not None and origin not in (f"http://{host}", f"https://{host}")) or \
                headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return _json(403, {"error": "actions come from the status page itself only"})
        row: dict[str, Any] | None = self.crawl.pool.status_action(proxy_id, action)
        if row is None:
            return _json(404, {"error": f"no proxy {proxy_id} in the pool"})
        self.cached = None  # the next look shows the change
        return _json(200, {"ok": True, "proxy": row})
