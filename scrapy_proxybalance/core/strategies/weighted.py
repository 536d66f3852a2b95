"""Strategies by weight: smooth weighted round robin (EDF) and weighted random."""

from __future__ import annotations

import heapq
import itertools
import math
import random

from ..state import ProxyState
from .base import SAMPLES, Accept, Members, Strategy


class WeightedRoundRobin(Strategy):
    """Earliest deadline first: a picked proxy's next turn is ``deadline + 1/weight``.

    This is Envoy's O(log n) form of nginx's smooth weighted round robin: weights 5:3:1
    get exactly 5, 3 and 1 of every 9 picks, interleaved (``a b a a b a a b c``).
    """

    name = "weighted_round_robin"

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.heap: list[list] = []  # [deadline, seq, ProxyState | None]; None = stale
        self.entries: dict[int, list] = {}
        self.seq = itertools.count()
        self.vtime = 0.0  # deadline of the latest pick
        self.stale = 0

    def _push(self, p: ProxyState, deadline: float) -> None:
        entry = [deadline, next(self.seq), p]
        self.entries[p.id] = entry
        heapq.heappush(self.heap, entry)

    def add(self, p: ProxyState) -> None:
        if p.id not in self.entries:
            self._push(p, self.vtime + 1.0 / p.weight)

    def remove(self, p: ProxyState) -> None:
        entry = self.entries.pop(p.id, None)
        if entry is not None:
            self._retire(entry)

    def _retire(self, entry: list) -> None:
        """Mark ``entry`` stale; rebuild the heap when stale entries outnumber live ones."""
        entry[2] = None
        self.stale += 1
        if self.stale > len(self.entries) + 16:
            self.heap = [e for e in self.heap if e[2] is not None]
            heapq.heapify(self.heap)
            self.stale = 0

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, p: ProxyState) -> bool:
        return p.id in self.entries

    def pick(self, accept: Accept) -> ProxyState | None:
        heap = self.heap
        while heap and heap[0][2] is None:
            heapq.heappop(heap)
            self.stale -= 1
        if not heap:
            return None
        top = heap[0]
        if accept(top[2]):  # the common case: the earliest deadline is free
            p = top[2]
            self.vtime = max(self.vtime, top[0])
            entry = [top[0] + 1.0 / p.weight, next(self.seq), p]
            self.entries[p.id] = entry
            heapq.heapreplace(heap, entry)
            return p
        later = self._next_accepted(accept)
        if later is None:
            return None
        p = later[2]
        self.vtime = max(self.vtime, later[0])
        self._push(p, later[0] + 1.0 / p.weight)
        self._retire(later)  # superseded by the entry just pushed
        return p

    def _next_accepted(self, accept: Accept) -> list | None:
        """The entry of earliest deadline after the top whose member ``accept`` takes: the
        next few in deadline order (a frontier of heap indices, nothing popped), then, when
        those are all refused (a saturated pool refuses most), the least of one pass over all."""
        heap = self.heap
        frontier = [(heap[i][0], heap[i][1], i) for i in (1, 2) if i < len(heap)]
        heapq.heapify(frontier)
        for _ in range(SAMPLES):
            if not frontier:
                return None
            _, _, i = heapq.heappop(frontier)
            entry = heap[i]
            if entry[2] is not None and accept(entry[2]):
                return entry
            for child in (2 * i + 1, 2 * i + 2):
                if child < len(heap):
                    heapq.heappush(frontier, (heap[child][0], heap[child][1], child))
        best = None
        for entry in heap[1:]:
            p = entry[2]
            if p is not None and (best is None or entry[:2] < best[:2]) and accept(p):
                best = entry
        return best


class _WeightClass:
    """Members whose weight lies in ``[2**(k-1), 2**k)``; ``bound``: the most one of them weighs
    (or weighed, while the class lasts)."""

    __slots__ = ("bound", "items", "pos")

    def __init__(self) -> None:
        self.bound = 0.0
        self.items: list[ProxyState] = []
        self.pos: dict[int, int] = {}

    def add(self, p: ProxyState) -> None:
        self.pos[p.id] = len(self.items)
        self.items.append(p)
        self.bound = max(self.bound, p.weight)

    def remove(self, p: ProxyState) -> None:
        i = self.pos.pop(p.id)
        last = self.items.pop()
        if last is not p:
            self.items[i] = last
            self.pos[last.id] = i


class WeightedRandom(Strategy):
    """Each pick draws a member with probability proportional to
    ``weight * max(0.1, recent success rate)`` (a proxy with no outcome yet counts 1.0).

    Members sit in classes by power of two of their weight (``2**(k-1) <= w < 2**k``), each with
    the most one of them weighs as its bound. A draw picks a class in proportion to ``members *
    bound``, a uniform member in it, and keeps it with probability ``w * max(0.1, rate) / bound``
    (the success rate read as it is drawn): every member is kept with probability proportional
    to its weight times its success rate, and a draw costs O(1) expected: one try while the
    class's members weigh the same and succeed, two or fewer while they succeed, at most 20 if
    every member fails. Nothing moves as requests end.
    """

    name = "weighted_random"
    FLOOR = 0.1

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.members = Members()  # every member, for the rare sweep
        self.classes: dict[int, _WeightClass] = {}
        self.class_of: dict[int, int] = {}  # member id -> its class (k)
        self.envelope: float | None = 0.0  # sum over the classes of members * bound (None: to be summed again)

    def add(self, p: ProxyState) -> None:
        if p.id not in self.class_of:
            self.members.add(p)
            k = math.frexp(p.weight)[1]
            cls = self.classes.get(k)
            if cls is None:
                cls = self.classes[k] = _WeightClass()
            cls.add(p)
            self.class_of[p.id] = k
            self.envelope = None

    def remove(self, p: ProxyState) -> None:
        k = self.class_of.pop(p.id, None)
        if k is not None:
            self.members.remove(p)
            cls = self.classes[k]
            cls.remove(p)
            if not cls.items:
                del self.classes[k]
            self.envelope = None

    def __len__(self) -> int:
        return len(self.class_of)

    def __contains__(self, p: ProxyState) -> bool:
        return p.id in self.class_of

    def _draw(self, envelope: float) -> ProxyState:
        """One random number a try: where it falls in the envelope names the class, the member
        (each has a slot of its class's bound) and the point in its slot, kept if below its weight
        times its success rate."""
        rand, floor = self.rng.random, self.FLOOR
        while True:
            target = rand() * envelope
            for cls in self.classes.values():
                span = len(cls.items) * cls.bound
                if target < span:
                    point = target / cls.bound
                    i = int(point)
                    if i < len(cls.items):
                        p = cls.items[i]
                        rate = p.metrics.success_rate
                        keep = p.weight if rate is None or rate >= 1.0 else p.weight * (rate if rate > floor else floor)
                        if (point - i) * cls.bound < keep:
                            return p
                    break
                target -= span

    def pick(self, accept: Accept) -> ProxyState | None:
        if not self.class_of:
            return None
        envelope = self.envelope
        if envelope is None:
            envelope = self.envelope = math.fsum(len(cls.items) * cls.bound for cls in self.classes.values())
        for _ in range(SAMPLES):
            p = self._draw(envelope)
            if accept(p):
                return p
        return self.members.sweep(int(self.rng.random() * len(self.members)), accept)
