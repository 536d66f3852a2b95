"""Strategies by load: least connections and least latency (peak EWMA times queue)."""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import OrderedDict

from ..state import ProxyState
from .base import SAMPLES, SCAN, Accept, MemberStrategy, Strategy


class LeastConnections(Strategy):
    """Each pick takes a member with the fewest requests in flight; ties go to the one
    that has waited longest. Members sit in buckets by in-flight count: O(1) per event."""

    name = "least_connections"

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        # OrderedDict: finding the first live member stays O(1) however many were removed
        self.buckets: dict[int, OrderedDict[int, ProxyState]] = {}
        self.count: dict[int, int] = {}  # member id -> bucket it sits in

    def _place(self, p: ProxyState, old: int | None, k: int) -> None:
        """Move ``p`` from bucket ``old`` (``None``: it joins) to the back of bucket ``k``."""
        if old is not None:
            bucket = self.buckets[old]
            del bucket[p.id]
            if not bucket:
                del self.buckets[old]
        self.count[p.id] = k
        into = self.buckets.get(k)
        if into is None:  # (setdefault would make an OrderedDict each time)
            into = self.buckets[k] = OrderedDict()
        into[p.id] = p

    def add(self, p: ProxyState) -> None:
        if p.id not in self.count:
            self._place(p, None, p.in_flight)

    def remove(self, p: ProxyState) -> None:
        k = self.count.pop(p.id, None)
        if k is not None:
            bucket = self.buckets[k]
            del bucket[p.id]
            if not bucket:
                del self.buckets[k]

    def __len__(self) -> int:
        return len(self.count)

    def __contains__(self, p: ProxyState) -> bool:
        return p.id in self.count

    def on_acquire(self, p: ProxyState) -> None:
        old = self.count.get(p.id)
        if old is not None:
            self._place(p, old, p.in_flight)

    on_release = on_acquire

    def pick(self, accept: Accept) -> ProxyState | None:
        buckets = self.buckets
        if not buckets:
            return None
        least = min(buckets)  # the bucket most picks end in, without sorting the few counts
        for p in buckets[least].values():
            if accept(p):
                return p
        for k in sorted(buckets)[1:]:
            for p in buckets[k].values():
                if accept(p):
                    return p
        return None


class LeastLatency(MemberStrategy):
    """Each pick takes the member whose next request would likely end first: the lowest
    ``peak EWMA latency * (in_flight + 1)``, the wait of the queue it would join (members at
    their concurrency limit are not offered). Members with no latency yet are tried first, one
    request at a time; those that failed without ever answering come last.

    The untried members (cost 0) wait in order of arrival; a heap keyed by the measured ones'
    cost, updated as requests start and end, finds the cheapest of them in O(log n). A pick looks at
    the :data:`SCAN` cheapest, then samples (power of two choices), then sweeps, so a pool whose
    cheapest members are all cooling on a site stays cheap."""

    name = "least_latency"

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        # members of cost 0 (no latency, nothing in flight, no failure); OrderedDict: the first
        # stays O(1) to find however many left from the front
        self.untried: OrderedDict[int, ProxyState] = OrderedDict()
        self.heap: list[tuple[float, int, int]] = []  # (cost, version, member id) of the others; stale ones skipped
        self.version: dict[int, int] = {}  # member id -> the version of its current place
        self.by_id: dict[int, ProxyState] = {}
        self.versions = itertools.count()

    @staticmethod
    def cost(p: ProxyState) -> float:
        ewma = p.metrics.latency
        if ewma is None:  # no sample yet: free to try once, then wait for its answer
            return 0.0 if p.in_flight == 0 and not p.metrics.failures else math.inf
        return ewma * (p.in_flight + 1)

    def _place(self, p: ProxyState) -> None:
        """Put ``p`` where its cost says: with the untried, in the heap, or (untried and
        waiting for its answer, or failed without ever answering: the last choice) only in the
        members a pick samples. Its old entry in the heap goes stale."""
        version = self.version[p.id] = next(self.versions)
        cost = self.cost(p)
        if not cost:
            self.untried[p.id] = p
            return
        if self.untried:
            self.untried.pop(p.id, None)
        if cost == math.inf:
            return
        heapq.heappush(self.heap, (cost, version, p.id))
        if len(self.heap) > 64 + 4 * len(self.by_id):  # drop superseded entries
            self.heap = [(cost, self.version[q.id], q.id) for q in self.by_id.values()
                         if 0.0 < (cost := self.cost(q)) < math.inf]
            heapq.heapify(self.heap)

    def add(self, p: ProxyState) -> None:
        if p.id not in self.by_id:
            super().add(p)
            self.by_id[p.id] = p
            self._place(p)

    def remove(self, p: ProxyState) -> None:
        super().remove(p)
        if self.by_id.pop(p.id, None) is not None:
            del self.version[p.id]
            self.untried.pop(p.id, None)

    def on_acquire(self, p: ProxyState) -> None:
        if p.id in self.by_id:
            self._place(p)

    on_release = on_acquire

    def pick(self, accept: Accept) -> ProxyState | None:
        if not self.by_id:
            return None
        looked = 0
        for p in self.untried.values():  # the cheapest, in order of arrival
            if accept(p):
                return p
            looked += 1
            if looked == SCAN:
                break
        chosen, looked = self._cheapest(accept, looked)
        if chosen is not None or looked == len(self.by_id):
            return chosen
        for _ in range(SAMPLES // 2):
            a, b = self._draw(), self._draw()
            if self.cost(b) < self.cost(a):
                a, b = b, a
            if accept(a):
                return a
            if accept(b):
                return b
        return self._sweep(accept)

    def _cheapest(self, accept: Accept, looked: int) -> tuple[ProxyState | None, int]:
        """The first the heap offers of its cheapest, until :data:`SCAN` members were looked at
        (``looked`` already): the one ``accept`` takes, if any, and how many were looked at."""
        heap, version = self.heap, self.version
        seen: list[tuple[float, int, int]] = []
        chosen = None
        while heap and looked < SCAN:
            entry = heapq.heappop(heap)
            if version.get(entry[2]) != entry[1]:
                continue  # superseded, or its member left
            seen.append(entry)
            looked += 1
            if accept(self.by_id[entry[2]]):
                chosen = self.by_id[entry[2]]
                break
        for entry in seen:  # a pick changes nothing: the acquire that follows re-keys the chosen
            heapq.heappush(heap, entry)
        return chosen, looked
