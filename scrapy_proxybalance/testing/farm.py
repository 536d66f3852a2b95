"""A local proxy farm for demos and tests: one site and forward proxies on 127.0.0.1.

Every proxy sends every host name to the one local site, so ``http://shop-a.test/`` and
``http://shop-b.test/`` are two sites without DNS. Each page carries a token
(:func:`token`) so a crawl can prove it got the real page. Proxy kinds:

- ``healthy``: forwards at once; ``slow``: forwards after ``delay`` seconds;
- ``dead``: nothing listens (connection refused); ``hung``: accepts, never answers;
- ``reset``: reads the request, then drops the connection;
- ``banning``: answers 429 (``Retry-After``) to a host it saw less than ``min_interval`` ago;
- ``auth``: wants ``Proxy-Authorization`` for ``user:password``, else answers 407;
- ``wrong``: answers 200 with a page of its own (a hotel Wi-Fi login, say) to everything;
- ``gateway``: a provider's session gateway: the username (``user-session-<id>``, say)
  picks one of its ``exits``, the same one for the same username.

Any proxy can also serve ``captcha_hosts`` a captcha page (status 200), have a ``capacity``
(requests at once; above it they wait, or get a 503 with ``overflow="503"``), and drop out
for a while (:meth:`Farm.blackout`): its connections dropped, or refused outright.

Each proxy connects to the site from its own ``exit_ip`` (an address of 127.0.0.0/8). The
site's ``/ip`` answers ``{"origin": "<the address it sees>"}``, like an IP echo service; with
``site_interval`` it answers 429 to an exit that asks for a host again too soon, as sites
rate limit an IP; ``/login`` starts a session bound to the exit that logged in, and
``/account/<n>`` answers 403 to that session's cookie from any other exit; ``/flaky/<n>``
answers 500 once, then the page.

Timing (blackouts) counts from the first request a proxy receives, so a crawl's start-up
time does not move it. Run ``python -m scrapy_proxybalance.testing.farm --run CMD ...`` to
start the demo farm, run CMD with ``FARM_POOL_FILE`` (a PROXY_POOL file) and ``FARM_SITE``
in its environment, then stop.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

HOST = "127.0.0.1"
PAGES = 60  # pages per host on the site's index

CAPTCHA = b'<html><body><form class="captcha">Are you a robot?</form></body></html>'
PORTAL = b"<html><body><h1>Welcome to Hotel Wi-Fi</h1>Please log in.</body></html>"
REASONS = {200: "OK", 302: "Found", 403: "Forbidden", 404: "Not Found", 407: "Proxy Authentication Required",
           429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


def token(host: str, path: str) -> str:
    """The token the site puts in the page at ``host`` + ``path``."""
    return hashlib.sha256(f"{host}{path}".encode()).hexdigest()[:16]


@dataclass
class Seen:
    """One request as a proxy (or the site) received it."""

    at: float
    host: str
    path: str
    headers: dict[str, str]
    exit_ip: str = ""  # the address it reached the site from


@dataclass
class ProxySpec:
    name: str
    kind: str = "healthy"
    delay: float = 0.0
    min_interval: float = 0.0
    retry_after: int = 5
    user: str = ""
    password: str = ""
    capacity: int = 0  # requests served at once; 0 = unlimited
    overflow: str = "queue"  # above capacity: "queue" (wait their turn) or "503"
    captcha_hosts: frozenset[str] = frozenset()
    exit_ip: str = ""  # the address it connects to the site from ("": one of its own)
    exits: tuple[str, ...] = ()  # gateway: the exit addresses its usernames choose among
    dead_exits: frozenset[str] = frozenset()  # gateway: exits that cut every request (their identities fail)
    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    last: dict[str, float] = field(default_factory=dict)
    ban_log: list[tuple[float, str]] = field(default_factory=list)  # (when, host) of each 429 it sent
    overflows: int = 0  # 503s sent above capacity
    in_flight: int = 0
    server: asyncio.AbstractServer | None = None
    slots: asyncio.Semaphore | None = None
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        creds = f"{self.user}:{self.password}@" if self.user else ""
        return f"http://{creds}{HOST}:{self.port}"

    def exit_for(self, headers: dict[str, str]) -> str:
        """The address this request leaves from (a gateway's depends on the username)."""
        if not self.exits:
            return self.exit_ip
        user = _basic_user(headers.get("proxy-authorization", ""))
        digest = int(hashlib.sha256(user.encode()).hexdigest(), 16)
        return self.exits[digest % len(self.exits)]


@dataclass
class Outage:
    after: float
    seconds: float
    names: frozenset[str] | None  # None: every proxy
    refuse: bool  # refuse connections (and cut open ones) rather than drop each request


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]] | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = raw.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def _response(status: int, body: bytes, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\nContent-Type: text/html\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n"
    ).encode() + body


def site_page(host: str, path: str, peer: str = HOST) -> tuple[int, bytes] | None:
    """The site's plain pages: ``/`` links to ``/page/1`` .. ``/page/N``; every page shows its
    token; ``/ip`` shows the address the request came from (``peer``). ``/broken/...`` gets no
    answer at all (the connection is closed): a request that fails through every proxy.
    ``/redirect/<n>`` redirects to ``/page/<n>``."""
    if path.startswith("/broken/"):
        return None
    if path.startswith("/redirect/"):
        return 302, f"/page/{path.rsplit('/', 1)[-1]}".encode()
    if path == "/ip":
        return 200, f'{{"origin": "{peer}"}}'.encode()
    if path in ("/", ""):
        links = "".join(f'<a href="/page/{i}">page {i}</a>\n' for i in range(1, PAGES + 1))
        return 200, f"<html><body><h1>{host}</h1>\n{links}</body></html>".encode()
    if path.startswith("/page/") and path[6:].isdigit():
        return 200, f'<html><body><p class="token">{token(host, path)}</p></body></html>'.encode()
    return 404, b"<html><body>not found</body></html>"


class Farm:
    """The site and the proxies, served by one asyncio loop in a background thread.

    ``site_interval``: the site answers ``429`` (``Retry-After: site_retry_after``) to an exit
    address that asks for the same host again within that many seconds.
    """

    def __init__(self, specs: list[ProxySpec], site_interval: float = 0.0, site_retry_after: int = 20) -> None:
        self.specs = specs
        for i, spec in enumerate(specs):
            if not spec.exit_ip:
                spec.exit_ip = f"127.0.{1 + i // 250}.{1 + i % 250}"
        self.site_interval = site_interval
        self.site_retry_after = site_retry_after
        self.site_seen: list[Seen] = []
        self.site_limited: list[tuple[float, str, str]] = []  # (when, exit, host) of each 429 the site sent
        self.site_last: dict[tuple[str, str], float] = {}
        self.sessions: dict[str, str] = {}  # session cookie -> the exit that logged in
        self.flaky_seen: set[tuple[str, str]] = set()  # /flaky/ pages that failed once already
        self.site_port = 0
        self.outages: list[Outage] = []
        self.anchor: float | None = None  # when the first proxy saw its first request
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="proxy-farm", daemon=True)
        self.hung: set[asyncio.StreamWriter] = set()
        self.open: set[asyncio.StreamWriter] = set()  # every connection the farm holds, either side

    def blackout(self, after: float, seconds: float, names: set[str] | None = None, refuse: bool = False) -> None:
        """Every proxy (or those in ``names``) drops each request from ``after`` seconds past
        the farm's first request, for ``seconds``; with ``refuse``, it stops accepting
        connections instead (and its open ones are cut), then listens again."""
        self.outages.append(Outage(after, seconds, frozenset(names) if names is not None else None, refuse))

    def down(self, name: str | None = None) -> list[tuple[float, float]]:
        """The windows (monotonic times) in which a proxy (or every proxy) was out."""
        if self.anchor is None:
            return []
        return [(self.anchor + o.after, self.anchor + o.after + o.seconds) for o in self.outages
                if o.names is None or name in o.names]

    def __enter__(self) -> Farm:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=60)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    async def _start(self) -> None:
        site = await asyncio.start_server(self._serve_site, HOST, 0, backlog=4096)
        self.site_port = site.sockets[0].getsockname()[1]
        self.site = site
        for spec in self.specs:
            if spec.kind == "dead":
                spec.port = _closed_port()
                continue
            if spec.capacity and spec.overflow == "queue":
                spec.slots = asyncio.Semaphore(spec.capacity)
            await self._listen(spec)

    async def _listen(self, spec: ProxySpec) -> None:
        spec.server = await asyncio.start_server(functools.partial(self._serve_proxy, spec), HOST, spec.port,
                                                 backlog=1024)
        spec.port = spec.server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        for server in [self.site, *(s.server for s in self.specs if s.server)]:
            server.close()
        # connections still open (idle keep-alives, hung ones, some just accepted) end with the
        # farm: their sessions are cancelled and their sockets closed before the loop stops
        for _ in range(3):
            await asyncio.sleep(0)
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for writer in [*self.open, *self.hung]:
            writer.transport.abort()
        await asyncio.sleep(0)  # aborted transports close their sockets on the next turn

    def _started(self, now: float) -> None:
        """The first request: outages are timed from now; refusing ones are scheduled."""
        self.anchor = now
        for outage in self.outages:
            if outage.refuse:
                for spec in self.specs:
                    if spec.kind != "dead" and (outage.names is None or spec.name in outage.names):
                        self.loop.call_later(outage.after, self._refuse, spec)
                        self.loop.call_later(outage.after + outage.seconds, self._accept, spec)

    def _refuse(self, spec: ProxySpec) -> None:
        if spec.server is not None:
            spec.server.close()
            spec.server = None
        for writer in list(spec.writers):
            writer.transport.abort()

    def _accept(self, spec: ProxySpec) -> None:
        self.loop.create_task(self._listen(spec))

    def _dropping(self, spec: ProxySpec, now: float) -> bool:
        if self.anchor is None:
            return False
        return any(self.anchor + o.after <= now < self.anchor + o.after + o.seconds for o in self.outages
                   if not o.refuse and (o.names is None or spec.name in o.names))

    def pool(self) -> list[str]:
        """The proxies' URLs, for ``PROXY_POOL``."""
        return [s.url for s in self.specs]

    def named_pool(self) -> list[dict[str, str]]:
        """``PROXY_POOL`` entries that name each proxy (``{"url": ..., "name": ...}``)."""
        return [{"url": s.url, "name": s.name} for s in self.specs]

    def write_pool(self, path: str) -> None:
        """A pool file naming each proxy by its role (``{"url": ..., "name": ...}`` lines)."""
        with open(path, "w", encoding="utf-8") as f:
            f.write("# written by scrapy_proxybalance.testing.farm\n")
            f.writelines(f'{json.dumps({"url": spec.url, "name": spec.name})}  # {spec.kind}\n'
                         for spec in self.specs)

    async def _serve_site(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open.add(writer)
        try:
            await _quietly(self._site_session(reader, writer), writer)
        finally:
            self.open.discard(writer)

    async def _serve_proxy(self, spec: ProxySpec, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        spec.writers.add(writer)
        self.open.add(writer)
        try:
            await _quietly(self._proxy_session(spec, reader, writer), writer)
        finally:
            spec.writers.discard(writer)
            self.open.discard(writer)

    async def _site_session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await _read_head(reader)
        if head is not None:
            request_line, headers = head
            path = request_line.split(" ")[1]
            host = headers.get("host", "").split(":")[0]
            peer = writer.get_extra_info("peername")[0]
            now = time.monotonic()
            self.site_seen.append(Seen(now, host, path, headers, peer))
            answer = self._site_answer(host, path, headers, peer, now)
            if answer is not None:
                writer.write(answer)
                await writer.drain()
        writer.close()

    def _site_answer(self, host: str, path: str, headers: dict[str, str], peer: str, now: float) -> bytes | None:
        if self.site_interval and path != "/ip":
            last = self.site_last.get((peer, host))
            self.site_last[peer, host] = now
            if last is not None and now - last < self.site_interval:
                self.site_limited.append((now, peer, host))
                return _response(429, b"slow down", f"Retry-After: {self.site_retry_after}\r\n")
        if path.startswith("/login"):
            sid = secrets.token_hex(8)
            self.sessions[sid] = peer
            return _response(200, f'<p class="session">{sid}</p>'.encode(), f"Set-Cookie: sid={sid}; Path=/\r\n")
        if path.startswith("/account/"):
            sid = _cookie(headers.get("cookie", ""), "sid")
            if self.sessions.get(sid) != peer:
                return _response(403, b"<p>session expired: log in again</p>")
            return _response(200, f'<html><body><p class="token">{token(host, path)}</p></body></html>'.encode())
        if path.startswith("/flaky/"):
            if (host, path) not in self.flaky_seen:
                self.flaky_seen.add((host, path))  # the site's own error, once per page
                return _response(500, b"<p>internal error</p>")
            return _response(200, f'<html><body><p class="token">{token(host, path)}</p></body></html>'.encode())
        page = site_page(host, path, peer)
        if page is not None and page[0] == 302:
            return _response(302, b"", f"Location: {page[1].decode()}\r\n")
        return None if page is None else _response(*page)

    async def _proxy_session(self, spec: ProxySpec, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await _read_head(reader)
        if head is None:
            writer.close()
            return
        request_line, headers = head
        method, target, _ = request_line.split(" ", 2)
        host, path = _split_target(target)
        now = time.monotonic()
        if self.anchor is None:
            self._started(now)
        spec.seen.append(Seen(now, host, path, headers, spec.exit_for(headers)))
        if spec.kind == "hung":
            self.hung.add(writer)  # never answered; closed when the farm stops
            return
        if spec.kind == "reset" or self._dropping(spec, now) or spec.exit_for(headers) in spec.dead_exits:
            writer.transport.abort()
            return
        if spec.capacity and spec.overflow == "503" and spec.in_flight >= spec.capacity:
            spec.overflows += 1
            writer.write(_response(503, b"proxy busy"))
            await writer.drain()
            writer.close()
            return
        spec.in_flight += 1
        try:
            if spec.slots is not None:
                async with spec.slots:
                    await self._answer(spec, method, host, path, headers, writer, now)
            else:
                await self._answer(spec, method, host, path, headers, writer, now)
        finally:
            spec.in_flight -= 1
        writer.close()

    async def _answer(self, spec: ProxySpec, method: str, host: str, path: str, headers: dict[str, str],
                      writer: asyncio.StreamWriter, now: float) -> None:
        if spec.kind in ("auth", "gateway") and not _authorized(spec, headers):
            writer.write(_response(407, b"proxy auth required", 'Proxy-Authenticate: Basic realm="farm"\r\n'))
        elif spec.kind == "banning" and now - spec.last.get(host, -1e9) < spec.min_interval:
            spec.last[host] = now
            spec.ban_log.append((now, host))
            writer.write(_response(429, b"slow down", f"Retry-After: {spec.retry_after}\r\n"))
        else:
            spec.last[host] = now
            if spec.delay:
                await asyncio.sleep(spec.delay)
            if host in spec.captcha_hosts:
                writer.write(_response(200, CAPTCHA))
            elif spec.kind == "wrong":
                writer.write(_response(200, PORTAL))
            else:
                writer.write(await self._forward(spec, method, host, path, headers))
        await writer.drain()

    async def _forward(self, spec: ProxySpec, method: str, host: str, path: str, headers: dict[str, str]) -> bytes:
        try:
            reader, writer = await asyncio.open_connection(HOST, self.site_port, local_addr=(spec.exit_for(headers), 0))
        except OSError:
            return _response(502, b"site down")
        hop = {"proxy-authorization", "proxy-connection", "connection", "keep-alive", "host"}
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k not in hop]
        self.open.add(writer)
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            await writer.drain()
            return await reader.read()
        finally:
            writer.close()
            self.open.discard(writer)


async def _quietly(session, writer: asyncio.StreamWriter) -> None:
    """Run a connection's session; a peer gone or the farm stopping just ends it."""
    try:
        await session
    except (asyncio.CancelledError, ConnectionError):
        writer.close()


def _split_target(target: str) -> tuple[str, str]:
    """``http://host:port/path`` -> (host, /path)."""
    rest = target.split("://", 1)[-1]
    hostport, _, path = rest.partition("/")
    return hostport.split(":")[0], "/" + path


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _basic_user(header: str) -> str:
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        return base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")[0]
    return ""


def _authorized(spec: ProxySpec, headers: dict[str, str]) -> bool:
    """``auth``: exactly its user and password; ``gateway``: any username, its password."""
    given = headers.get("proxy-authorization", "")
    if spec.kind == "gateway":
        user = _basic_user(given)
        return bool(user) and given == _basic(user, spec.password)
    return given == _basic(spec.user, spec.password)


def _cookie(header: str, name: str) -> str:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def demo_specs() -> list[ProxySpec]:
    """The demo farm, each proxy named by its role."""
    return [
        ProxySpec("fast-1", exit_ip="127.0.0.11"),
        ProxySpec("fast-2", exit_ip="127.0.0.12"),
        ProxySpec("fast-3", exit_ip="127.0.0.12"),  # two proxies behind one exit address
        ProxySpec("slow", kind="slow", delay=0.4, exit_ip="127.0.0.14"),
        ProxySpec("dead", kind="dead"),
        ProxySpec("hung", kind="hung"),
        ProxySpec("strict", kind="banning", min_interval=3.0, retry_after=5, exit_ip="127.0.0.17"),
        ProxySpec("private", kind="auth", user="demo", password="s3cret", exit_ip="127.0.0.18"),
        ProxySpec("sly", captcha_hosts=frozenset({"shop-b.test"}), exit_ip="127.0.0.19"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scrapy_proxybalance.testing.farm",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3600, help="stop after this long without --run")
    parser.add_argument("--run", nargs=argparse.REMAINDER, help="command to run while the farm is up")
    args = parser.parse_args(argv)
    with Farm(demo_specs()) as farm, tempfile.TemporaryDirectory() as tmp:
        pool_file = os.path.join(tmp, "proxies.txt")
        farm.write_pool(pool_file)
        site = f"http://{HOST}:{farm.site_port}"
        print(f"farm: site {site}, {len(farm.specs)} proxies in {pool_file}", flush=True)
        if not args.run:
            print(f"farm: running for {args.seconds:.0f} s (Ctrl-C stops it)", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait(args.seconds)
            return 0
        env = {**os.environ, "FARM_POOL_FILE": pool_file, "FARM_SITE": site}
        return subprocess.call(args.run, env=env)


if __name__ == "__main__":
    sys.exit(main())
