"""Requests that must wait for a proxy wait here, outside Scrapy's downloader.

A request still inside ``process_request`` counts in ``downloader.active`` and so against
``CONCURRENT_REQUESTS``: parking many there would starve every other domain. Instead the
middleware returns the request, Scrapy hands it back to the scheduler through the
``request_scheduled`` signal, and :meth:`ParkingLot.on_request_scheduled` keeps it here
(raising ``IgnoreRequest`` keeps it out of the scheduler without dropping it).

Requests that wait for the same thing (domain, region, proxies already tried) queue in
order. When a queue's timer fires, the lot asks for a proxy on behalf of the request at its
head (``wake``) and sends it back with ``engine.crawl()`` holding that proxy, then the
next, until the answer is to wait again: so a request comes back exactly once, never to
find that its proxy went to someone else.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from scrapy.exceptions import DontCloseSpider, IgnoreRequest
from scrapy.utils.asyncio import CallLaterResult, call_later

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

PARK = "_proxybalance_park"  # meta: (queue key, seconds or None) on the way to the lot
WOKEN = "_proxybalance_woken"  # meta: sent back by the lot

Key = tuple  # (domain, region, tried proxies): requests that wait for the same thing
# wake(request, key) leases a proxy for the request and returns None, or the seconds to wait
Wake = Callable[["Request", Key], "float | None"]


class ParkingLot:
    """FIFO queues of parked requests, one per key, each with at most one timer."""

    def __init__(self, crawler: Crawler, wake: Wake) -> None:
        self.crawler = crawler
        self.wake = wake
        self.queues: dict[Key, deque[Request]] = {}
        self.timers: dict[Key, tuple[float, CallLaterResult]] = {}  # key -> (due, timer)

    def __len__(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def waiting(self, key: Key) -> bool:
        """Whether requests of ``key`` already wait (a new one should queue behind them)."""
        return key in self.queues

    def park(self, request: Request, key: Key, seconds: float | None) -> Request:
        """Mark ``request`` to wait ``seconds`` (``None``: behind its queue, whose timer is
        set); return it from ``process_request``."""
        request.meta[PARK] = (key, seconds)
        request.dont_filter = True  # it was filtered once already; it must come back
        return request

    def on_request_scheduled(self, request: Request) -> None:
        parked = request.meta.pop(PARK, None)
        if parked is None:
            return
        key, seconds = parked
        self.queues.setdefault(key, deque()).append(request)
        if seconds is not None or key not in self.timers:
            self._arm(key, seconds or 0.0)
        raise IgnoreRequest  # not into the scheduler: it waits here

    def _arm(self, key: Key, seconds: float) -> None:
        due = time.monotonic() + seconds
        timer = self.timers.get(key)
        if timer is not None:
            if timer[0] <= due:
                return
            timer[1].cancel()
        self.timers[key] = (due, call_later(seconds, self._on_timer, key))

    def _on_timer(self, key: Key) -> None:
        self.timers.pop(key, None)
        self.drain(key)

    def drain(self, key: Key) -> None:
        """Send back every request of ``key`` that gets a proxy, in order, until one must wait."""
        queue = self.queues.get(key)
        while queue:
            seconds = self.wake(queue[0], key)
            if seconds is not None:
                self._arm(key, seconds)
                return
            request = queue.popleft()
            request.meta[WOKEN] = True
            self.crawler.engine.crawl(request)
        self.queues.pop(key, None)

    def wake_all(self) -> None:
        """Proxies came back or joined: look again for every waiting request now, rather
        than when its timer fires."""
        for key in list(self.queues):
            timer = self.timers.pop(key, None)
            if timer is not None:
                timer[1].cancel()
            self.drain(key)

    def on_spider_idle(self) -> None:
        """Keep the spider open while requests wait."""
        if not self.queues:
            return
        for key in list(self.queues):
            if key not in self.timers:  # cannot happen, but a stranded queue must not hang the crawl
                self.drain(key)
        raise DontCloseSpider

    def close(self) -> int:
        """Cancel the timers; return how many requests were still waiting."""
        for _, timer in self.timers.values():
            timer.cancel()
        self.timers.clear()
        waiting = len(self)
        self.queues.clear()
        return waiting
