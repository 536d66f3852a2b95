"""Requests scrapy-zyte-api sends through Zyte API (``meta['zyte_api']``,
``meta['zyte_api_automap']``, or every request in its transparent mode): Zyte API chooses the
proxy, so they pass through untouched and charge nothing to any proxy of the pool."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from .base import Carrier, FaultTable

if TYPE_CHECKING:
    from scrapy import Request


class ZyteApiCarrier(Carrier):
    name: ClassVar[str] = "zyte_api"
    schemes: ClassVar[frozenset[str]] = frozenset()
    faults = FaultTable([])

    def __init__(self, transparent: bool = False) -> None:
        self.transparent = transparent  # ZYTE_API_TRANSPARENT_MODE (with scrapy-zyte-api enabled)

    def carries(self, request: Request) -> bool:
        meta = request.meta
        automap = meta.get("zyte_api_automap")
        return bool(meta.get("zyte_api")) or bool(automap) or (self.transparent and automap is not False)

    def meta_keys(self) -> frozenset[str] | None:
        return None if self.transparent else frozenset({"zyte_api", "zyte_api_automap"})

    def own_choice(self, request: Request) -> bool:
        return True  # never leased

    def attach(self, request: Request, lease: object) -> None:
        raise AssertionError("requests through Zyte API are never leased a proxy")

    def detach(self, request: Request) -> None:
        pass
