"""Scrapy's own HTTP download handlers: HTTP/1.1 (Twisted, the default with a reactor), and
the aiohttp and httpx ones (without a reactor).

The proxy rides in ``meta['proxy']``; Scrapy's ``HttpProxyMiddleware`` (750, after ours) turns
its credentials into a ``Proxy-Authorization`` header, and takes the header off when the proxy
changes between attempts. Each (site, proxy) pair gets a download slot of its own, so Scrapy's
per-site limits (``CONCURRENT_REQUESTS_PER_DOMAIN``, ``DOWNLOAD_DELAY``, AutoThrottle) apply
to each exit a site sees. A request through a proxy not yet proven gets a shorter download
timeout (``PROXY_TRIAL_TIMEOUT``), so a hung proxy is found out quickly.

Which proxy schemes the request may use, and what its exceptions mean, are its handler's
(see :mod:`.handlers`). A rotating gateway's requests say ``Connection: close``, so each one
gets a connection of its own, and the gateway's next exit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from scrapy.utils.httpobj import urlparse_cached

from ..core.proxy import bare_url
from ..meta import OUR_CLOSE, OUR_PROXY, OUR_SLOT, TIMEOUT
from .base import Carrier, Fault, FaultTable
from .handlers import HTTP11, Handler

if TYPE_CHECKING:
    from scrapy import Request

    from ..core.leases import Lease


class HttpCarrier(Carrier):
    """The proxy in ``meta['proxy']`` (see the module's docstring); what a request's proxy
    may be and what its exceptions mean depend on the handler of its URL's scheme."""

    name: ClassVar[str] = "http"
    schemes: ClassVar[frozenset[str]] = HTTP11.schemes
    faults = HTTP11.faults

    def __init__(self, trial_timeout: float = 0.0, download_timeout: float = 180.0,
                 own_slots: frozenset[str] = frozenset(), handlers: dict[str, Handler] | None = None) -> None:
        self.trial_timeout = trial_timeout
        self.download_timeout = download_timeout
        self.own_slots = own_slots  # sites DOWNLOAD_SLOTS configures: they keep Scrapy's slot
        self.handlers = handlers or {"http": HTTP11, "https": HTTP11}  # by the request URL's scheme
        carried = {h.schemes for h in self.handlers.values()} | {HTTP11.schemes}  # (HTTP11: any other URL's)
        self.same_schemes = carried.pop() if len(carried) == 1 else None  # whatever the URL, these

    def _handler(self, request: Request) -> Handler:
        return self.handlers.get(urlparse_cached(request).scheme) or HTTP11

    def proxy_schemes(self, request: Request) -> frozenset[str]:
        if self.same_schemes is not None:  # (no need to look at the request's URL)
            return self.same_schemes
        return self._handler(request).schemes

    def fault(self, request: Request, exception: BaseException) -> Fault | None:
        return self._handler(request).faults.fault(exception)

    def fault_tables(self) -> list[FaultTable]:
        return [h.faults for h in self.handlers.values()]

    def schemes_carried(self) -> frozenset[str]:
        return frozenset().union(*(h.schemes for h in self.handlers.values()))

    def carries(self, request: Request) -> bool:
        return True

    def own_choice(self, request: Request) -> bool:
        meta = request.meta
        if meta.get("dont_proxy"):
            meta["proxy"] = None  # HttpProxyMiddleware would otherwise apply the environment's proxy
            return True
        return "proxy" in meta  # the user chose a proxy (or none) for this request

    def attach(self, request: Request, lease: Lease) -> None:
        meta = request.meta
        proxy = lease.proxy
        if proxy.direct:
            meta["proxy"], meta[OUR_PROXY] = None, ""  # None: no proxy (not the environment's either)
        else:
            meta["proxy"], meta[OUR_PROXY] = proxy.url, proxy.bare
        if "download_slot" not in meta and lease.site not in self.own_slots:
            meta["download_slot"] = f"{lease.site}|{lease.state.id}"
            meta[OUR_SLOT] = True
        if lease.unproven and self.trial_timeout:
            current = meta.get("download_timeout") or self.download_timeout
            if not current or current > self.trial_timeout:
                meta[TIMEOUT] = (meta.get("download_timeout"),)
                meta["download_timeout"] = self.trial_timeout
        if proxy.rotating and b"Connection" not in request.headers:
            # a rotating gateway gives each new connection its next exit: no connection is kept
            request.headers[b"Connection"] = b"close"
            meta[OUR_CLOSE] = True

    def detach(self, request: Request) -> None:
        meta = request.meta
        ours = meta.pop(OUR_PROXY, None)
        if ours is not None and (bare_url(meta.get("proxy")) or "") == ours:
            # HttpProxyMiddleware has since moved the credentials into a header: drop both
            meta.pop("proxy", None)
            meta.pop("_auth_proxy", None)
            request.headers.pop(b"Proxy-Authorization", None)
        if meta.pop(OUR_SLOT, None):
            meta.pop("download_slot", None)
        own = meta.pop(TIMEOUT, None)
        if own is not None:
            if own[0] is None:
                meta.pop("download_timeout", None)
            else:
                meta["download_timeout"] = own[0]
        if meta.pop(OUR_CLOSE, None):
            request.headers.pop(b"Connection", None)

