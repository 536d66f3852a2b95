"""Pages rendered by scrapy-playwright (``meta['playwright'] = True``).

Playwright ignores ``meta['proxy']``: a page's proxy is its browser context's. So the lease's
proxy rides as a context of its own (one per proxy, or per sticky session's binding: cookies
live in the context, so a session keeps its context while it keeps its proxy and gets a fresh
one when it moves), named in ``meta['playwright_context']`` and created by scrapy-playwright on
demand from ``meta['playwright_context_kwargs']``, to which the proxy is added beside the
request's own options. The credentials go as the context's ``username`` and ``password``:
Chromium sends them only after the proxy's ``407`` challenge, and to no one else.

At most ``PROXY_PLAYWRIGHT_MAX_CONTEXTS`` contexts are open per download handler (see
:mod:`.contexts`); proxies whose context is open are picked first when the rules allow.
A proxy not yet proven gets a short navigation timeout (``PROXY_TRIAL_TIMEOUT``, through
``playwright_page_goto_kwargs``): Scrapy's ``DOWNLOAD_TIMEOUT`` does not apply to the browser.

Playwright's errors are one class whose message names what went wrong; the fault table reads
the Chromium network error in it.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import load_object

from ..meta import OUR_SLOT
from .base import Carrier, Fault, FaultTable
from .contexts import PREFIX, ContextPool

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

    from ..config import Config
    from ..core.leases import Lease
    from ..core.proxy import Proxy

OURS = "_proxybalance_playwright"  # (the request's own context, kwargs, goto kwargs) while ours ride
SUPPORTED = ((0, 0, 47), (0, 0, 48))  # scrapy-playwright versions whose context internals we know
DEFAULT_MAX_CONTEXTS = 16  # without PLAYWRIGHT_MAX_CONTEXTS or ours
HANDLER = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"

_NET = re.compile(r"net::(ERR_[A-Z_]+)")


def _net_error(*codes: str) -> Any:
    wanted = set(codes)

    def matches(exception: BaseException) -> bool:
        found = _NET.search(str(exception))
        return found is not None and found[1] in wanted

    return matches


@cache
def playwright_faults() -> FaultTable:
    """What Playwright's errors mean (playwright is imported only by a crawl that renders)."""
    try:
        from playwright.async_api import Error, TimeoutError
    except ImportError:  # scrapy-playwright is not installed: nothing of its can be raised
        return FaultTable([])
    return FaultTable([
        (TimeoutError, Fault.TIMEOUT),
        (_net_error("ERR_PROXY_CONNECTION_FAILED"), Fault.REFUSED),
        (_net_error("ERR_INVALID_AUTH_CREDENTIALS", "ERR_HTTP_RESPONSE_CODE_FAILURE", "ERR_PROXY_AUTH_UNSUPPORTED",
                    "ERR_PROXY_AUTH_REQUESTED"), Fault.CREDENTIALS),
        (_net_error("ERR_TUNNEL_CONNECTION_FAILED", "ERR_EMPTY_RESPONSE", "ERR_CONNECTION_RESET",
                    "ERR_CONNECTION_CLOSED", "ERR_CONNECTION_FAILED", "ERR_TIMED_OUT", "ERR_PROXY_CERTIFICATE_INVALID",
                    "ERR_SOCKS_CONNECTION_FAILED", "ERR_HTTP2_PROTOCOL_ERROR", "ERR_INCOMPLETE_CHUNKED_ENCODING",
                    "ERR_CONTENT_LENGTH_MISMATCH"), Fault.FAILURE),
        (_net_error("ERR_ABORTED", "ERR_NAME_NOT_RESOLVED", "ERR_INVALID_URL", "ERR_BLOCKED_BY_CLIENT"),
         Fault.NOT_PROXY),
        (lambda e: type(e).__name__ == "TargetClosedError", Fault.NOT_PROXY),  # the page closed under it
        (Error, Fault.NOT_PROXY),  # a script's or a page method's own error
    ])


class PlaywrightCarrier(Carrier):
    name: ClassVar[str] = "playwright"
    schemes: ClassVar[frozenset[str]] = frozenset({"http", "https", "socks5"})
    reserves: ClassVar[bool] = True

    def __init__(self, crawler: Crawler, schemes: Collection[str], cap: int, trial_timeout: float = 0.0,
                 navigation_timeout: float = 0.0) -> None:
        self.crawler = crawler
        self.faults = playwright_faults()
        self.handled = frozenset(schemes)  # URL schemes DOWNLOAD_HANDLERS gives to scrapy-playwright
        self.cap = cap
        self.trial_ms = trial_timeout * 1000
        self.navigation_ms = navigation_timeout or float("inf")  # PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT
        self.pools: dict[str, ContextPool] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler, config: Config) -> PlaywrightCarrier | None:
        """The carrier, if ``DOWNLOAD_HANDLERS`` gives a scheme to scrapy-playwright."""
        schemes = playwright_schemes(crawler.settings)
        if not schemes:
            return None
        theirs = crawler.settings.getint("PLAYWRIGHT_MAX_CONTEXTS")  # scrapy-playwright's limit (0: none)
        ours = config.playwright_max_contexts
        cap = ours or theirs or DEFAULT_MAX_CONTEXTS
        navigation = crawler.settings.getfloat("PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT")
        return cls(crawler, schemes, min(cap, theirs) if theirs else cap, config.trial_timeout, navigation)

    def reason(self, exception: BaseException) -> str:
        """The Chromium network error a Playwright error names (``ERR_PROXY_CONNECTION_FAILED``),
        else its class."""
        found = _NET.search(str(exception))
        return f"playwright.{found[1]}" if found else f"playwright.{type(exception).__name__}"

    def carries(self, request: Request) -> bool:
        return bool(request.meta.get("playwright")) and urlparse_cached(request).scheme in self.handled

    def meta_keys(self) -> frozenset[str] | None:
        return frozenset({"playwright"})

    def own_choice(self, request: Request) -> bool:
        meta = request.meta
        kwargs = meta.get("playwright_context_kwargs") or {}
        return bool(meta.get("dont_proxy")) or "proxy" in kwargs or "playwright_context" in meta

    def prefer(self, request: Request) -> Collection[str]:
        return self._pool(request).open_keys()

    def hold(self, request: Request, lease: Lease) -> bool:
        return self._pool(request).hold(lease) is not None

    def released(self, lease: Lease) -> None:
        for pool in self.pools.values():
            pool.released(lease)

    def proxy_out(self, key: str) -> None:
        for pool in self.pools.values():
            pool.proxy_out(key)

    def banned(self, key: str, banning: set[str]) -> None:
        for pool in self.pools.values():
            pool.banned(key, banning)

    def attach(self, request: Request, lease: Lease) -> None:
        meta = request.meta
        pool = self._pool(request)
        name = pool.name_for(lease)
        own_kwargs = meta.get("playwright_context_kwargs")
        own_goto = meta.get("playwright_page_goto_kwargs")
        meta[OURS] = (own_kwargs, own_goto)
        proxy = lease.proxy
        meta["playwright_context"] = name
        meta["playwright_context_kwargs"] = {**(own_kwargs or {}), **_proxy_kwargs(proxy)}
        if lease.unproven and self.trial_ms:
            goto = dict(own_goto or {})
            current = goto.get("timeout") or self.navigation_ms
            if current > self.trial_ms:
                goto["timeout"] = self.trial_ms
                meta["playwright_page_goto_kwargs"] = goto
        if "download_slot" not in meta:
            meta["download_slot"] = f"{lease.site}|{lease.state.id}"
            meta[OUR_SLOT] = True

    def detach(self, request: Request) -> None:
        meta = request.meta
        ours = meta.pop(OURS, None)
        if ours is not None:
            meta.pop("playwright_context", None)
            for key, own in zip(("playwright_context_kwargs", "playwright_page_goto_kwargs"), ours, strict=True):
                if own is None:
                    meta.pop(key, None)
                else:
                    meta[key] = own
        if meta.pop(OUR_SLOT, None):
            meta.pop("download_slot", None)

    def _pool(self, request: Request) -> ContextPool:
        scheme = urlparse_cached(request).scheme
        pool = self.pools.get(scheme)
        if pool is None:
            pool = self.pools[scheme] = ContextPool(self.cap, lambda: self._handler(scheme), self.crawler.stats)
        return pool

    def _handler(self, scheme: str) -> Any:
        engine = self.crawler.engine
        handlers = getattr(engine.downloader.handlers, "_handlers", {}) if engine is not None else {}
        return handlers.get(scheme)


def _proxy_kwargs(proxy: Proxy) -> dict[str, dict[str, str]]:
    """The browser context's ``proxy`` (none for a direct entry)."""
    if proxy.direct:
        return {}
    server = {"server": f"{proxy.scheme}://{proxy.hostport}"}
    if proxy.username:
        server.update(username=proxy.username, password=proxy.password)
    return {"proxy": server}


def playwright_schemes(settings: BaseSettings) -> list[str]:
    """The URL schemes ``DOWNLOAD_HANDLERS`` gives to scrapy-playwright."""
    handlers = settings.getwithbase("DOWNLOAD_HANDLERS")
    return [scheme for scheme in ("http", "https") if _is_playwright(handlers.get(scheme))]


def _is_playwright(path: object) -> bool:
    """Whether a ``DOWNLOAD_HANDLERS`` value is scrapy-playwright's handler (or a subclass)."""
    if path == HANDLER:
        return True
    try:
        cls = load_object(path) if isinstance(path, str) else path
    except (ImportError, AttributeError, ValueError, NameError):
        return False
    return isinstance(cls, type) and any(f"{k.__module__}.{k.__qualname__}" == HANDLER for k in cls.__mro__)


def supported_version() -> str | None:
    """Why the installed scrapy-playwright cannot be used, or ``None`` if it can."""
    try:
        found = version("scrapy-playwright")
    except PackageNotFoundError:
        return "scrapy-playwright is not installed: pip install 'scrapy-proxybalance[playwright]'"
    parts = tuple(int(p) for p in re.findall(r"\d+", found)[:3])
    if not SUPPORTED[0] <= parts <= SUPPORTED[1]:
        low, high = (".".join(map(str, v)) for v in SUPPORTED)
        return (f"scrapy-playwright {found} is installed; scrapy-proxybalance balances browser contexts with"
                f" scrapy-playwright {low} to {high} only: pip install 'scrapy-playwright>={low},<={high}'")
    return None


__all__ = ["PREFIX", "PlaywrightCarrier", "supported_version"]
