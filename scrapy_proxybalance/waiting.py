"""Requests that must wait for a proxy wait here, outside Scrapy's downloader.

A request still inside ``process_request`` counts in ``downloader.active`` and so against
``CONCURRENT_REQUESTS``: parking many there would starve every other domain. Instead the
middleware returns the request, Scrapy hands it back to the scheduler through the
``request_scheduled`` signal, and :meth:`ParkingLot.on_request_scheduled` keeps it here
(raising ``IgnoreRequest`` keeps it out of the scheduler without dropping it). A timer, or a
request of the same kind getting a proxy, puts it back with ``engine.crawl()``.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from scrapy.exceptions import DontCloseSpider, IgnoreRequest
from scrapy.utils.asyncio import CallLaterResult, call_later

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

PARK = "_proxybalance_park"  # meta: (queue key, seconds) while on the way to the lot

Key = tuple  # (domain, region, tried proxies): requests that wait for the same thing


class ParkingLot:
    """FIFO queues of parked requests, one per key, each with at most one timer."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.queues: dict[Key, deque[Request]] = {}
        self.timers: dict[Key, tuple[float, CallLaterResult]] = {}  # key -> (due, timer)

    def __len__(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def park(self, request: Request, key: Key, seconds: float) -> Request:
        """Mark ``request`` to wait ``seconds``; return it from ``process_request``."""
        request.meta[PARK] = (key, seconds)
        request.dont_filter = True  # it was filtered once already; it must come back
        return request

    def on_request_scheduled(self, request: Request) -> None:
        parked = request.meta.pop(PARK, None)
        if parked is None:
            return
        key, seconds = parked
        self.queues.setdefault(key, deque()).append(request)
        self._arm(key, seconds)
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
        self.release_one(key)

    def release_one(self, key: Key) -> None:
        """Send the longest-waiting request of ``key`` back to the scheduler."""
        queue = self.queues.get(key)
        if not queue:
            return
        request = queue.popleft()
        if not queue:
            del self.queues[key]
        self.crawler.engine.crawl(request)

    def on_spider_idle(self) -> None:
        """Keep the spider open while requests wait; wake every queue that has no timer
        (a woken request dropped by another component must not strand its queue)."""
        if not self.queues:
            return
        for key in list(self.queues):
            if key not in self.timers:
                self.release_one(key)
        raise DontCloseSpider

    def close(self) -> int:
        """Cancel the timers; return how many requests were still waiting."""
        for _, timer in self.timers.values():
            timer.cancel()
        self.timers.clear()
        waiting = len(self)
        self.queues.clear()
        return waiting
