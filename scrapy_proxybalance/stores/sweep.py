"""When a store may look again at what it holds: entries in buckets of whole seconds.

A store forgets a pair, or a site's pace, once it no longer matters; it notes when to look
again, and looks when that time has come. A heap would cost O(log n) per note and per look;
buckets of a second cost O(1) each (an entry is looked at up to a second late, which only
keeps it in memory that much longer)."""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable


class Sweep:
    __slots__ = ("buckets", "ends", "last", "last_bucket", "size")

    def __init__(self) -> None:
        self.buckets: dict[float, list[tuple[str, str]]] = {}  # bucket end -> (site, proxy or "") due by then
        self.ends: list[float] = []  # heap of the buckets' ends
        self.size = 0
        self.last = -math.inf  # the end of the bucket an entry went to last, while it is held
        self.last_bucket: list[tuple[str, str]] = []

    def add(self, when: float, site: str, key: str) -> None:
        """Look at ``(site, key)`` once ``when`` has come (never, if it is infinite)."""
        if when > self.last - 1.0 and when <= self.last:  # the bucket of the last entry (most are)
            self.last_bucket.append((site, key))
        elif when == math.inf:
            return
        else:
            end = math.ceil(when) if when > -math.inf else when
            bucket = self.buckets.get(end)
            if bucket is None:
                bucket = self.buckets[end] = []
                heapq.heappush(self.ends, end)
            bucket.append((site, key))
            self.last, self.last_bucket = end, bucket
        self.size += 1

    def take(self, now: float) -> list[tuple[str, str]] | None:
        """The entries of the earliest bucket come due by ``now`` (removed), if one has."""
        ends = self.ends
        if not ends or ends[0] > now:
            return None
        bucket = self.buckets.pop(heapq.heappop(ends))
        self.size -= len(bucket)
        self.last = -math.inf
        return bucket

    def rebuild(self, entries: Iterable[tuple[float, str, str]]) -> None:
        """Hold only ``entries`` (superseded ones pile up on busy pairs)."""
        self.buckets.clear()
        self.ends.clear()
        self.size = 0
        self.last = -math.inf
        for when, site, key in entries:
            self.add(when, site, key)

    def __len__(self) -> int:
        return self.size
