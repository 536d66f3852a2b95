"""Download paths as plug-ins: how a chosen proxy rides on a request, and what the path's
exceptions mean (see :mod:`.base`).

========================  ==========================================  ==========================
carrier                   requests                                    the proxy rides in
========================  ==========================================  ==========================
:mod:`.zyte_api`          ``zyte_api`` / ``zyte_api_automap`` meta,   (not ours: passed through)
                          or all in scrapy-zyte-api's transparent
                          mode
:mod:`.http`              every other request                         ``meta['proxy']``
========================  ==========================================  ==========================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Carrier, Fault, FaultTable
from .http import HttpCarrier
from .zyte_api import ZyteApiCarrier

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.settings import BaseSettings

    from ..config import Config

__all__ = ["Carrier", "Carriers", "Fault", "FaultTable", "HttpCarrier", "ZyteApiCarrier"]


class Carriers:
    """The crawl's download paths: the first that carries a request is its carrier (the last
    carries everything)."""

    def __init__(self, carriers: list[Carrier]) -> None:
        self.carriers = carriers
        self.special = carriers[:-1]
        self.default = carriers[-1]

    @classmethod
    def from_settings(cls, settings: BaseSettings, config: Config) -> Carriers:
        transparent = settings.getbool("ZYTE_API_ENABLED", True) and settings.getbool("ZYTE_API_TRANSPARENT_MODE")
        return cls([
            ZyteApiCarrier(transparent),
            HttpCarrier(config.trial_timeout, settings.getfloat("DOWNLOAD_TIMEOUT"),
                        frozenset(settings.getdict("DOWNLOAD_SLOTS"))),
        ])

    def of(self, request: Request) -> Carrier:
        for carrier in self.special:
            if carrier.carries(request):
                return carrier
        return self.default

    def proxy_fault_types(self) -> tuple[type[BaseException], ...]:
        """Every exception type a carrier counts against the proxy."""
        return tuple(t for c in self.carriers for t in c.faults.proxy_types())
