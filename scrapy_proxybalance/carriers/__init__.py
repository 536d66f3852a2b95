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

from typing import TYPE_CHECKING

from .base import Carrier, Fault, FaultTable
from .http import HttpCarrier
from .playwright import PlaywrightCarrier
from .splash import SplashCarrier
from .zyte_api import ZyteApiCarrier

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

    from ..config import Config
    from ..core.leases import Lease

__all__ = ["Carrier", "Carriers", "Fault", "FaultTable", "HttpCarrier", "PlaywrightCarrier",
           "SplashCarrier", "ZyteApiCarrier"]


class Carriers:
    """The crawl's download paths: the first that carries a request is its carrier (the last
    carries everything)."""

    def __init__(self, carriers: list[Carrier]) -> None:
        self.carriers = carriers
        self.special = carriers[:-1]
        self.default = carriers[-1]
        self.holding = [c for c in carriers if c.reserves]  # they keep something per lease

    @classmethod
    def from_crawler(cls, crawler: Crawler, config: Config) -> Carriers:
        settings = crawler.settings
        transparent = settings.getbool("ZYTE_API_ENABLED", True) and settings.getbool("ZYTE_API_TRANSPARENT_MODE")
        browser = PlaywrightCarrier.from_crawler(crawler, config)
        return cls([
            ZyteApiCarrier(transparent),
            SplashCarrier(),
            *([browser] if browser is not None else []),
            HttpCarrier(config.trial_timeout, settings.getfloat("DOWNLOAD_TIMEOUT"),
                        frozenset(settings.getdict("DOWNLOAD_SLOTS"))),
        ])

    def of(self, request: Request) -> Carrier:
        for carrier in self.special:
            if carrier.carries(request):
                return carrier
        return self.default

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
        return tuple(t for c in self.carriers for t in c.faults.proxy_types())
