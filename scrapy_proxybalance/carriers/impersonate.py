"""Requests scrapy-impersonate sends through curl_cffi (``meta['impersonate']``, where
``DOWNLOAD_HANDLERS`` names its handler): a browser's TLS fingerprint.

The proxy rides in ``meta['proxy']`` as for Scrapy's own handlers (curl sends an HTTP proxy
its ``Proxy-Authorization``, and a SOCKS proxy its login); curl carries http, https, socks4,
socks5 and socks5h proxies. curl_cffi's errors reach us as they are and are read by their curl
error code (see :mod:`.handlers`). scrapy-impersonate ignores ``download_timeout`` (curl_cffi
waits 30 s): the request's timeout (shorter for a proxy not yet proven) goes in
``meta['impersonate_args']['timeout']``. It opens a connection per request: a rotating
gateway gives it a fresh exit each time anyway.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, ClassVar

from scrapy.utils.httpobj import urlparse_cached

from .base import Fault, FaultTable
from .handlers import CURL, impersonate_handler
from .http import HttpCarrier

if TYPE_CHECKING:
    from scrapy import Request

    from ..core.leases import Lease
    from ..core.proxy import Proxy

OURS = "_proxybalance_impersonate_args"  # (the request's own impersonate_args,) while ours ride


class ImpersonateCarrier(HttpCarrier):
    name: ClassVar[str] = "impersonate"
    schemes: ClassVar[frozenset[str]] = CURL

    def __init__(self, url_schemes: Collection[str], trial_timeout: float = 0.0,
                 download_timeout: float = 180.0, own_slots: frozenset[str] = frozenset()) -> None:
        handler = impersonate_handler()
        super().__init__(trial_timeout, download_timeout, own_slots, dict.fromkeys(url_schemes, handler))
        self.faults = handler.faults
        self.url_schemes = frozenset(url_schemes)

    def carries(self, request: Request) -> bool:
        return bool(request.meta.get("impersonate")) and urlparse_cached(request).scheme in self.url_schemes

    def meta_keys(self) -> frozenset[str] | None:
        return frozenset({"impersonate"})

    def fault(self, request: Request, exception: BaseException) -> Fault | None:
        return self.faults.fault(exception)

    def fault_tables(self) -> list[FaultTable]:
        return [self.faults]

    def unfit(self, proxy: Proxy) -> str | None:
        if proxy.scheme.startswith("socks") and ":" in proxy.password:
            return "scrapy-impersonate splits a SOCKS login at ':', so its password must not hold one"
        return None

    def attach(self, request: Request, lease: Lease) -> None:
        super().attach(request, lease)
        meta = request.meta
        own = meta.get("impersonate_args")
        timeout = meta.get("download_timeout") or self.download_timeout  # (the trial timeout, if lowered)
        if timeout and (own or {}).get("timeout") is None:
            meta[OURS] = (own,)
            meta["impersonate_args"] = {**(own or {}), "timeout": timeout}

    def detach(self, request: Request) -> None:
        super().detach(request)
        meta = request.meta
        ours = meta.pop(OURS, None)
        if ours is not None:
            if ours[0] is None:
                meta.pop("impersonate_args", None)
            else:
                meta["impersonate_args"] = ours[0]
