"""Download paths as plug-ins: how a chosen proxy rides on a request, and what the path's
exceptions mean (see :mod:`.base`).

========================  ==========================================  ==========================
carrier                   requests                                    the proxy rides in
========================  ==========================================  ==========================
:mod:`.zyte_api`          ``zyte_api`` / ``zyte_api_automap`` meta,   (not ours: passed through)
                          or all in scrapy-zyte-api's transparent
                          mode
:mod:`.splash`            ``meta['splash']`` (scrapy-splash)          (not ours: passed through)
:mod:`.playwright`        ``meta['playwright']``, where               a browser context per proxy
                          ``DOWNLOAD_HANDLERS`` names scrapy-playwright
:mod:`.http`              every other request                         ``meta['proxy']``
========================  ==========================================  ==========================
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from ..core.proxy import DIRECT
from .base import Carrier, Fault, FaultTable
from .handlers import is_impersonate, plain_handler
from .http import HttpCarrier
from .impersonate import ImpersonateCarrier
from .playwright import PlaywrightCarrier
from .splash import SplashCarrier
from .zyte_api import ZyteApiCarrier

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

    from ..config import Config
    from ..core.leases import Lease
    from ..core.proxy import Proxy

__all__ = ["Carrier", "Carriers", "Fault", "FaultTable", "HttpCarrier", "ImpersonateCarrier", "PlaywrightCarrier",
           "SplashCarrier", "ZyteApiCarrier"]


class Carriers:
    """The crawl's download paths: the first that carries a request is its carrier (the last
    carries everything)."""

    def __init__(self, carriers: list[Carrier]) -> None:
        self.carriers = carriers
        self.special = carriers[:-1]
        self.default = carriers[-1]
        self.holding = [c for c in carriers if c.reserves]  # they keep something per lease
        keys = [c.meta_keys() for c in self.special]
        # a request with none of these meta keys goes by the default path (None: ask each path)
        self.triggers = None if None in keys else frozenset().union(*keys)  # type: ignore[arg-type]
        # proxy schemes some path carries (and a direct entry: every path can go without a proxy)
        self.carried = frozenset().union(*(c.schemes_carried() for c in carriers)) | {DIRECT}

    @classmethod
    def from_crawler(cls, crawler: Crawler, config: Config) -> Carriers:
        settings = crawler.settings
        transparent = settings.getbool("ZYTE_API_ENABLED", True) and settings.getbool("ZYTE_API_TRANSPARENT_MODE")
        browser = PlaywrightCarrier.from_crawler(crawler, config)
        timeout, own_slots = settings.getfloat("DOWNLOAD_TIMEOUT"), frozenset(settings.getdict("DOWNLOAD_SLOTS"))
        impersonated = [scheme for scheme in ("http", "https") if is_impersonate(settings, scheme)]
        impersonate = (ImpersonateCarrier(impersonated, config.trial_timeout, timeout, own_slots)
                       if impersonated else None)
        plain = {scheme: plain_handler(settings, scheme) for scheme in ("http", "https")}
        return cls([
            ZyteApiCarrier(transparent),
            SplashCarrier(),
            *([browser] if browser is not None else []),
            *([impersonate] if impersonate is not None else []),
            HttpCarrier(config.trial_timeout, timeout, own_slots, plain),
        ])

    def of(self, request: Request) -> Carrier:
        triggers = self.triggers
        if triggers is not None and not triggers & request.meta.keys():  # the common case: no special path's key
            return self.default
        for carrier in self.special:
            if carrier.carries(request):
                return carrier
        return self.default

    def uncarried(self, schemes: Collection[str]) -> list[str]:
        """Proxy schemes no download path of this crawl can carry."""
        return sorted(set(schemes) - self.carried)

    def unfit(self, proxy: Proxy) -> str | None:
        """Why some path of this crawl cannot carry ``proxy`` although it carries its scheme."""
        return next((why for c in self.carriers if (why := c.unfit(proxy)) is not None), None)

    def why_not(self, scheme: str) -> str:
        """Why a proxy scheme cannot be used here, and what to change, in words."""
        by_handler: dict[str, list[str]] = {}
        schemes: dict[str, frozenset[str]] = {}
        for url, handler in getattr(self.default, "handlers", {}).items():
            by_handler.setdefault(handler.name, []).append(url)
            schemes[handler.name] = handler.schemes
        named = "; ".join(f"DOWNLOAD_HANDLERS gives {' and '.join(urls)} to {name}, which "
                          + (f"carries {_listed(schemes[name])} proxies only" if schemes[name]
                             else "ignores meta['proxy'] (and would send the proxy's credentials to the site)")
                          for name, urls in by_handler.items())
        if scheme.startswith("socks"):
            fix = ("use Scrapy's httpx handler (pip install 'scrapy[httpx]', and DOWNLOAD_HANDLERS = {'http':"
                   " 'scrapy.core.downloader.handlers._httpx.HttpxDownloadHandler', 'https': the same}) or"
                   " scrapy-impersonate (with meta['impersonate'])")
        else:
            fix = "use Scrapy 2.16 or newer, or a Twisted reactor (TWISTED_REACTOR_ENABLED = True)"
        return f"{named}: {fix}"

    def released(self, lease: Lease) -> None:
        for carrier in self.holding:
            carrier.released(lease)

    def proxy_out(self, key: str) -> None:
        for carrier in self.holding:
            carrier.proxy_out(key)

    def banned(self, key: str, banning: set[str]) -> None:
        for carrier in self.holding:
            carrier.banned(key, banning)

    def proxy_fault_types(self) -> tuple[type[BaseException], ...]:
        """Every exception type a carrier counts against the proxy."""
        return tuple(t for c in self.carriers for table in c.fault_tables() for t in table.proxy_types())


def _listed(schemes: Collection[str]) -> str:
    names = sorted(schemes)
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names) or "no"
