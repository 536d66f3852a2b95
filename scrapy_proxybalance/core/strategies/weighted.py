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
    """Members whose weight lies in ``[bound / 2, bound)``, weights kept beside them."""

    __slots__ = ("bound", "items", "pos", "weights")

    def __init__(self, bound: float) -> None:
        self.bound = bound
        self.items: list[ProxyState] = []
        self.weights: list[float] = []
        self.pos: dict[int, int] = {}

    def add(self, p: ProxyState, w: float) -> None:
        self.pos[p.id] = len(self.items)
        self.items.append(p)
        self.weights.append(w)

    def remove(self, p: ProxyState) -> None:
        i = self.pos.pop(p.id)
        last, w = self.items.pop(), self.weights.pop()
        if last is not p:
            self.items[i], self.weights[i] = last, w
            self.pos[last.id] = i


class WeightedRandom(Strategy):
    """Each pick draws a member with probability proportional to
    ``weight * max(0.1, recent success rate)`` (a proxy with no outcome yet counts 1.0).

    Members sit in classes by power of two of their weight (``2**k <= w < 2**(k+1)``). A draw
    picks a class in proportion to ``members * 2**(k+1)``, a uniform member in it, and keeps it
    with probability ``w / 2**(k+1)`` (at least 1/2): every member is kept with probability
    proportional to ``w``, and a draw costs O(1) expected.
    """

    name = "weighted_random"
    FLOOR = 0.1

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.members = Members()  # every member, for the rare sweep
        self.classes: dict[int, _WeightClass] = {}
        self.weight_of: dict[int, float] = {}
        self.envelope = 0.0  # sum over members of their class bound: exact in floating point

    def _effective(self, p: ProxyState) -> float:
        rate = p.metrics.success_rate
        return p.weight * (1.0 if rate is None else rate if rate > self.FLOOR else self.FLOOR)

    def _enter(self, p: ProxyState, w: float) -> None:
        k = math.frexp(w)[1]  # 2**(k-1) <= w < 2**k
        cls = self.classes.get(k)
        if cls is None:
            cls = self.classes[k] = _WeightClass(2.0**k)
        cls.add(p, w)
        self.weight_of[p.id] = w
        self.envelope += cls.bound

    def _leave(self, p: ProxyState) -> None:
        k = math.frexp(self.weight_of.pop(p.id))[1]
        cls = self.classes[k]
        cls.remove(p)
        self.envelope -= cls.bound
        if not cls.items:
            del self.classes[k]

    def add(self, p: ProxyState) -> None:
        if p.id not in self.weight_of:
            self.members.add(p)
            self._enter(p, self._effective(p))

    def remove(self, p: ProxyState) -> None:
        if p.id in self.weight_of:
            self.members.remove(p)
            self._leave(p)

    def __len__(self) -> int:
        return len(self.weight_of)

    def __contains__(self, p: ProxyState) -> bool:
        return p.id in self.weight_of

    def on_release(self, p: ProxyState) -> None:
        old = self.weight_of.get(p.id)
        if old is not None:
            w = self._effective(p)
            if w != old:
                self._leave(p)
                self._enter(p, w)

    def _draw(self) -> ProxyState:
        """One random number a try: where it falls in the envelope names the class, the member
        (each has a slot of its class's bound) and the point in its slot, kept if below its weight."""
        rand = self.rng.random
        while True:
            target = rand() * self.envelope
            for cls in self.classes.values():
                span = len(cls.items) * cls.bound
                if target < span:
                    point = target / cls.bound
                    i = int(point)
                    if i < len(cls.items) and (point - i) * cls.bound < cls.weights[i]:
                        return cls.items[i]
                    break
                target -= span

    def pick(self, accept: Accept) -> ProxyState | None:
        if not self.weight_of:
            return None
        for _ in range(SAMPLES):
            p = self._draw()
            if accept(p):
                return p
        return self.members.sweep(int(self.rng.random() * len(self.members)), accept)
