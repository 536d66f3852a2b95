"""The farm's one site: every host name is a site of its own (``shop-a.test``), each page shows a
token (:func:`token`) so a crawl can prove it got the real page.

``/`` links to ``/page/1`` .. ``/page/N``; ``/ip`` shows the address the request came from;
``/broken/...`` gets no answer; ``/redirect/<n>`` redirects to ``/page/<n>``; ``/login`` starts a
session bound to the exit that logged in, and ``/account/<n>`` answers 403 to that session's
cookie from any other exit; ``/flaky/<n>`` answers 500 once, then the page. With ``interval``,
the site answers 429 to an exit that asks for a host again too soon, as sites rate limit an IP.
A host may refuse exit addresses (:class:`Block`): with a plain "blocked" page or an anti-bot
service's block page (:mod:`.blocks`), for good or for its first requests only.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from dataclasses import dataclass

from .blocks import block_response
from .wire import HOST, cookie, response

PAGES = 60  # pages per host on the site's index
CAPTCHA = b'<html><body><form class="captcha">Are you a robot?</form></body></html>'
PORTAL = b"<html><body><h1>Welcome to Hotel Wi-Fi</h1>Please log in.</body></html>"
BLOCKED = b"<html><body><h1>Access denied</h1>Your address is blocked.</body></html>"


def token(host: str, path: str) -> str:
    """The token the site puts in the page at ``host`` + ``path``."""
    return hashlib.sha256(f"{host}{path}".encode()).hexdigest()[:16]


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


@dataclass(frozen=True)
class Block:
    """A host refuses requests from ``exits`` with ``page`` (``"blocked"``, or a preset's name
    from :mod:`.blocks`) and ``status``; with ``until``, only its first that many requests."""

    exits: frozenset[str]
    page: str = "blocked"
    status: int = 403
    until: int | None = None

    def answer(self, gzipped: bool = False) -> bytes:
        """The block page; gzipped when the request accepts it, as the services serve theirs."""
        if self.page == "blocked":
            return response(self.status, BLOCKED)
        return block_response(self.page, self.status, gzipped)


class Site:
    """The site's memory: who asked when (its rate limit), its sessions, its flaky pages."""

    def __init__(self, interval: float = 0.0, retry_after: int = 20, blocks: dict[str, Block] | None = None) -> None:
        self.blocks = blocks or {}  # host -> the exits it refuses
        self.asked: Counter[str] = Counter()  # requests per host
        self.refused: Counter[str] = Counter()  # block pages sent per host
        self.interval = interval
        self.retry_after = retry_after
        self.limited: list[tuple[float, str, str]] = []  # (when, exit, host) of each 429 it sent
        self.last: dict[tuple[str, str], float] = {}
        self.sessions: dict[str, str] = {}  # session cookie -> the exit that logged in
        self.flaky_seen: set[tuple[str, str]] = set()  # /flaky/ pages that failed once already

    def _refusal(self, host: str, peer: str, headers: dict[str, str]) -> bytes | None:
        """The host's block page for an exit it refuses (now)."""
        self.asked[host] += 1
        block = self.blocks.get(host)
        if block is None or peer not in block.exits or (block.until is not None and self.asked[host] > block.until):
            return None
        self.refused[host] += 1
        return block.answer(gzipped="gzip" in headers.get("accept-encoding", ""))

    def answer(self, host: str, path: str, headers: dict[str, str], peer: str, now: float) -> bytes | None:
        refusal = self._refusal(host, peer, headers)
        if refusal is not None:
            return refusal
        if self.interval and path != "/ip":
            last = self.last.get((peer, host))
            self.last[peer, host] = now
            if last is not None and now - last < self.interval:
                self.limited.append((now, peer, host))
                return response(429, b"slow down", f"Retry-After: {self.retry_after}\r\n")
        if path.startswith("/login"):
            sid = secrets.token_hex(8)
            self.sessions[sid] = peer
            return response(200, f'<p class="session">{sid}</p>'.encode(), f"Set-Cookie: sid={sid}; Path=/\r\n")
        if path.startswith("/account/"):
            sid = cookie(headers.get("cookie", ""), "sid")
            if self.sessions.get(sid) != peer:
                return response(403, b"<p>session expired: log in again</p>")
            return response(200, f'<html><body><p class="token">{token(host, path)}</p></body></html>'.encode())
        if path.startswith("/flaky/"):
            if (host, path) not in self.flaky_seen:
                self.flaky_seen.add((host, path))  # the site's own error, once per page
                return response(500, b"<p>internal error</p>")
            return response(200, f'<html><body><p class="token">{token(host, path)}</p></body></html>'.encode())
        page = site_page(host, path, peer)
        if page is not None and page[0] == 302:
            return response(302, b"", f"Location: {page[1].decode()}\r\n")
        return None if page is None else response(*page)
