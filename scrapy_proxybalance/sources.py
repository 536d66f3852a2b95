"""Pools from a provider (``PROXY_POOL_SOURCE``): an http(s) URL that lists proxies, or a
function (plain or ``async``) that returns them.

The source is read when the spider opens, every ``PROXY_POOL_RELOAD_INTERVAL`` seconds, and at
once when the pool runs dry (a request finds no proxy that could serve its site), at most once
per :data:`DRY_GAP`. A URL is fetched with Python's ``urllib`` in a thread (not through
Scrapy's downloader, whose log would show the URL's query, an API key often; nor through a
proxy of the pool; TLS certificates are verified; ``http_proxy`` and friends apply), a plain
function runs in a thread, an ``async`` one on the event loop: nothing blocks the reactor.
A read that fails
keeps the last good pool and is logged once, until the source answers again. Credentials in
the source's URL (its password and every query value) are masked in every message.

What a source may return: a JSON list of entries (URLs or ``PROXY_POOL`` dicts), or lines of
text, one URL or JSON dict per line with ``#`` comments, as in a pool file; a function may also
return a list (or any iterable) of entries. An empty list is a failure (a provider's hiccup
must not empty the pool). An entry listed twice counts once.
"""

from __future__ import annotations

import base64
import inspect
import json
import logging
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from .core.entries import parse_entry, pool_lines
from .core.errors import InvalidProxy
from .core.proxy import Proxy, describe, mask

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

DRY_GAP = 5.0  # seconds: the pool running dry reads the source at most this often
MAX_TIMEOUT = 60.0  # seconds: a source URL's download timeout (or DOWNLOAD_TIMEOUT, if lower)
MAX_SIZE = 16 * 1024 * 1024  # bytes: the largest answer a source URL may give
SETTING = "PROXY_POOL_SOURCE"


class SourceError(Exception):
    """The source could not be read, or what it gave is not a pool (the message is masked)."""


def mask_source(url: str) -> str:
    """A source URL as it may be shown: its password and every query value are ``***``
    (``https://user:***@api.example/list?key=***``). Put credentials there, not in the path."""
    if not isinstance(url, str) or "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
    except ValueError:
        return mask(url)
    userinfo, at, hostport = netloc.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{hostport}"
    query = "&".join(f"{p.partition('=')[0]}=***" if "=" in p else "***" for p in parts.query.split("&") if p)
    return urlunsplit((parts.scheme, netloc, parts.path, query, "***" if parts.fragment else ""))


def _secrets(url: str) -> list[str]:
    """The pieces of a source URL that must never be shown: its password and query values,
    raw and decoded (longest first)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = []
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        found.append(userinfo.partition(":")[2])
    found += [p.partition("=")[2] if "=" in p else p for p in parts.query.split("&") if p]
    if parts.fragment:
        found.append(parts.fragment)
    found += [unquote(s) for s in found]
    return sorted({s for s in found if len(s) >= 3}, key=len, reverse=True)


def parse_source(data: object) -> list[Proxy]:
    """The proxies a source gave (see the module's doc). Raises :class:`SourceError` saying
    which entry or line is bad, with credentials masked."""
    entries: list[tuple[str, object]]
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SourceError("the answer is not UTF-8 text") from None
    if isinstance(data, str):
        text = data.strip().lstrip("\ufeff")
        if text.startswith("["):
            try:
                data = json.loads(text)
            except ValueError:
                raise SourceError("the answer looks like JSON but is not valid JSON") from None
            if not isinstance(data, list):
                raise SourceError("the answer is JSON but not a list")
            entries = [(f"entry {i}", e) for i, e in enumerate(data, start=1)]
        else:
            try:
                entries = pool_lines(text)
            except InvalidProxy as exc:
                raise SourceError(str(exc)) from None
    elif isinstance(data, dict) or not isinstance(data, Iterable):
        raise SourceError(f"a source must give a list of entries or text, got {describe(data)}")
    else:
        entries = [(f"entry {i}", e) for i, e in enumerate(data, start=1)]
    proxies: dict[str, Proxy] = {}
    for where, entry in entries:
        try:
            proxy = parse_entry(entry)
        except InvalidProxy as exc:
            raise SourceError(f"{where}: {exc}") from None
        proxies.setdefault(proxy.key, proxy)
    if not proxies:
        raise SourceError("it listed no proxies")
    return list(proxies.values())


def _get(url: str, timeout: float, agent: str) -> bytes:
    """GET a source URL (in a thread): its credentials go as basic auth, and not to another
    host it redirects to. Raises :class:`SourceError`."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    request = urllib.request.Request(urlunsplit((parts.scheme, hostport, parts.path, parts.query, "")),
                                     headers={"User-Agent": agent, "Accept": "application/json, text/plain, */*"})
    if at:
        user, _, password = userinfo.partition(":")
        pair = f"{unquote(user)}:{unquote(password)}".encode()
        request.add_unredirected_header("Authorization", "Basic " + base64.b64encode(pair).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # http(s) only: see config.py
            body = response.read(MAX_SIZE + 1)
    except urllib.error.HTTPError as exc:
        raise SourceError(f"HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        raise SourceError(f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException)
                          else str(reason)) from None
    if len(body) > MAX_SIZE:
        raise SourceError(f"the answer is larger than {MAX_SIZE // 2**20} MiB")
    return body


class PoolSource:
    """Reads ``PROXY_POOL_SOURCE`` and hands each good pool to ``apply``; says once when it
    fails and once when it answers again."""

    def __init__(self, source: str | Callable[[], Any], crawler: Crawler,
                 apply: Callable[[list[Proxy]], None]) -> None:
        self.source = source
        self.crawler = crawler
        self.apply = apply
        self.kind = "url" if isinstance(source, str) else "function"
        if isinstance(source, str):
            self.shown = mask_source(source)
            self.secrets = _secrets(source)
        else:
            self.shown = f"{getattr(source, '__module__', '?')}.{getattr(source, '__qualname__', source)}"
            self.secrets = []
        self.busy = False
        self.failing = False
        self.last_dry = -math.inf  # when the pool last ran dry and the source was read for it (monotonic)
        self.reads = 0
        self.errors = 0
        self.size = 0  # proxies in the last good answer
        self.last_ok: float | None = None  # when the last good answer came (wall clock)
        self.last_error = ""
        self.pending: Any = None  # the read under way (a reference keeps it alive)
        self.closed = False  # the spider closed: reads under way are ignored, no new ones start

    def hide(self, text: str) -> str:
        """``text`` with this source's credentials and any URL's password masked."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return mask(text)

    async def read(self) -> list[Proxy]:
        """Read the source once. Raises :class:`SourceError`."""
        try:
            if isinstance(self.source, str):
                return parse_source(await self._fetch(self.source))
            return parse_source(await self._call(self.source))
        except SourceError:
            raise
        except Exception as exc:
            raise SourceError(" ".join(f"{type(exc).__name__}: {exc}".split())[:300]) from None

    async def _fetch(self, url: str) -> bytes:
        from scrapy.utils.asyncio import run_in_thread

        timeout = min(self.crawler.settings.getfloat("DOWNLOAD_TIMEOUT") or MAX_TIMEOUT, MAX_TIMEOUT)
        agent = self.crawler.settings.get("USER_AGENT") or "scrapy-proxybalance"
        return await run_in_thread(_get, url, timeout, str(agent))

    async def _call(self, function: Callable[[], Any]) -> Any:
        from scrapy.utils.asyncio import run_in_thread

        result = function() if inspect.iscoroutinefunction(function) else await run_in_thread(function)
        if inspect.isawaitable(result):
            result = await result
        return result

    def refresh(self, why: str = "interval") -> None:
        """Read the source in the background, unless a read is under way (or, when the pool
        ran dry, the last read for that began less than :data:`DRY_GAP` ago)."""
        if self.busy or self.closed:
            return
        if why == "dry":
            now = time.monotonic()
            if now - self.last_dry < DRY_GAP:
                return
            self.last_dry = now
        from scrapy.utils.defer import deferred_from_coro

        self.pending = deferred_from_coro(self.update(why))

    async def update(self, why: str = "interval") -> bool:
        """Read the source and apply what it gave; ``False`` if it failed (the pool is kept).
        Never raises."""
        if self.busy:
            return False
        self.busy = True
        stats = self.crawler.stats
        try:
            self.reads += 1
            stats.inc_value("proxybalance/pool/source_reads")
            try:
                proxies = await self.read()
            except SourceError as exc:
                if not self.closed:
                    self._failed(self.hide(str(exc)))
                return False
            if self.closed:
                return False
            if self.failing:
                logger.info("%s %s answers again (%d proxies)", SETTING, self.shown, len(proxies))
            elif not self.last_ok:
                logger.info("%s %s lists %d proxies", SETTING, self.shown, len(proxies))
            self.failing, self.last_error = False, ""
            self.size, self.last_ok = len(proxies), time.time()
            if why == "dry":
                logger.info("read %s at once: no proxy could serve a site", SETTING)
            self.apply(proxies)
            return True
        except Exception:  # a bug must not stop later reads
            logger.exception("applying %s %s failed", SETTING, self.shown)
            return False
        finally:
            self.busy = False

    def close(self) -> None:
        """The spider closed: a read under way is not applied (a thread cannot be stopped)."""
        self.closed = True

    def _failed(self, why: str) -> None:
        self.errors += 1
        self.last_error = why
        self.crawler.stats.inc_value("proxybalance/pool/source_errors")
        if self.failing:
            return  # said once already
        self.failing = True
        if self.last_ok:
            logger.warning("%s %s failed (%s); keeping the last good pool (%d proxies) until it"
                           " answers again", SETTING, self.shown, why, self.size)
        else:
            logger.error("%s %s failed (%s)", SETTING, self.shown, why)

    def status(self) -> dict[str, Any]:
        """For the status page and the report."""
        return {"kind": self.kind, "source": self.shown, "proxies": self.size, "last_ok": self.last_ok,
                "failing": self.failing, "last_error": self.last_error, "reads": self.reads, "errors": self.errors}
