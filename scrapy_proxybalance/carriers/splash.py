"""Requests scrapy-splash renders (``meta['splash']``): passed through untouched.

Splash fetches the page itself, and the page's proxy belongs in ``meta['splash']['args']
['proxy']``; ``meta['proxy']`` would proxy the hop to the Splash server instead. Splash answers
a render that failed through a proxy with its own ``502`` (``render.html`` even with ``200``),
so a proxy's health cannot be read from what comes back: such requests are left to Splash and
charge no proxy of the pool. Give Splash its proxy in ``args`` (or a Splash proxy profile)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from .base import Carrier, FaultTable

if TYPE_CHECKING:
    from scrapy import Request


class SplashCarrier(Carrier):
    name: ClassVar[str] = "splash"
    schemes: ClassVar[frozenset[str]] = frozenset()
    faults = FaultTable([])

    def carries(self, request: Request) -> bool:
        return "splash" in request.meta

    def meta_keys(self) -> frozenset[str] | None:
        return frozenset({"splash"})

    def own_choice(self, request: Request) -> bool:
        return True  # never leased

    def attach(self, request: Request, lease: object) -> None:
        raise AssertionError("Splash requests are never leased a proxy")

    def detach(self, request: Request) -> None:
        pass
