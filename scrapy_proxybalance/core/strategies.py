"""Selection strategies: one small class each, behind the :class:`Strategy` interface.

A strategy holds the proxies currently eligible in one group (healthy or on trial, one region
and tier) and picks one in its order of preference. ``pick(accept)`` offers candidates to
``accept`` (which rejects proxies excluded, cooling on the domain, or busy on trial) and
returns the first one accepted, or ``None`` when it accepts none of its members.

Cost per pick: the preferred candidate is found in O(1) or O(log n); only when nearly
every member is rejected does a pick sweep the members, and a pick that sweeps finds the
pool saturated for that domain, which bounds how often it can happen (see README).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from typing import ClassVar

from .state import ProxyState

Accept = Callable[[ProxyState], bool]

SAMPLES = 8  # random candidates a sampling strategy draws before it sweeps
SCAN = 8  # cheapest members least_latency offers before it samples


class Strategy(ABC):
    """Chooses among the eligible proxies of one group."""

    name: ClassVar[str] = ""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    @abstractmethod
    def add(self, p: ProxyState) -> None:
        """``p`` became eligible (joined the pool, or back from ejection)."""

    @abstractmethod
    def remove(self, p: ProxyState) -> None:
        """``p`` is no longer eligible."""

    @abstractmethod
    def pick(self, accept: Accept) -> ProxyState | None:
        """Return the preferred member that ``accept`` accepts, recording the pick."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __contains__(self, p: ProxyState) -> bool: ...

    def on_acquire(self, p: ProxyState) -> None:  # noqa: B027 (optional hook)
        """``p.in_flight`` has just grown by one."""

    def on_release(self, p: ProxyState) -> None:  # noqa: B027 (optional hook)
        """``p.in_flight`` has just shrunk by one and its metrics may have changed."""


class _Members:
    """A list with O(1) add, remove (swap with last) and uniform draw."""

    __slots__ = ("items", "pos")

    def __init__(self) -> None:
        self.items: list[ProxyState] = []
        self.pos: dict[int, int] = {}

    def add(self, p: ProxyState) -> None:
        if p.id not in self.pos:
            self.pos[p.id] = len(self.items)
            self.items.append(p)

    def remove(self, p: ProxyState) -> None:
        i = self.pos.pop(p.id, None)
        if i is None:
            return
        last = self.items.pop()
        if last is not p:
            self.items[i] = last
            self.pos[last.id] = i

    def sweep(self, start: int, accept: Accept) -> ProxyState | None:
        items, n = self.items, len(self.items)
        for i in range(n):
            p = items[(start + i) % n]
            if accept(p):
                return p
        return None

    def __len__(self) -> int:
        return len(self.items)


class _MemberStrategy(Strategy):
    """Base of the strategies that keep their members in a :class:`_Members` list."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.members = _Members()

    def add(self, p: ProxyState) -> None:
        self.members.add(p)

    def remove(self, p: ProxyState) -> None:
        self.members.remove(p)

    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, p: ProxyState) -> bool:
        return p.id in self.members.pos

    def _draw(self) -> ProxyState:
        items = self.members.items
        return items[int(self.rng.random() * len(items))]

    def _sweep(self, accept: Accept) -> ProxyState | None:
        n = len(self.members)
        return self.members.sweep(int(self.rng.random() * n), accept) if n else None


class RoundRobin(_MemberStrategy):
    """Each pick takes the next member after the previous pick, in a fixed cycle."""

    name = "round_robin"

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.cursor = 0

    def pick(self, accept: Accept) -> ProxyState | None:
        n = len(self.members)
        if not n:
            return None
        p = self.members.sweep(self.cursor % n, accept)
        if p is not None:
            self.cursor = self.members.pos[p.id] + 1
        return p


class Random(_MemberStrategy):
    """Each pick is uniform over the members."""

    name = "random"

    def pick(self, accept: Accept) -> ProxyState | None:
        if not self.members.items:
            return None
        for _ in range(SAMPLES):
            p = self._draw()
            if accept(p):
                return p
        return self._sweep(accept)


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
        # Visit the rest in deadline order without popping: a frontier of heap indices.
        frontier = [(heap[i][0], heap[i][1], i) for i in (1, 2) if i < len(heap)]
        heapq.heapify(frontier)
        while frontier:
            _, _, i = heapq.heappop(frontier)
            entry = heap[i]
            p = entry[2]
            if p is not None and accept(p):
                self.vtime = max(self.vtime, entry[0])
                self._push(p, entry[0] + 1.0 / p.weight)
                self._retire(entry)  # superseded by the entry just pushed
                return p
            for child in (2 * i + 1, 2 * i + 2):
                if child < len(heap):
                    heapq.heappush(frontier, (heap[child][0], heap[child][1], child))
        return None


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
        self.members = _Members()  # every member, for the rare sweep
        self.classes: dict[int, _WeightClass] = {}
        self.weight_of: dict[int, float] = {}
        self.envelope = 0.0  # sum over members of their class bound: exact in floating point

    def _effective(self, p: ProxyState) -> float:
        rate = p.metrics.success_rate
        return p.weight * (1.0 if rate is None else max(self.FLOOR, rate))

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
        rand = self.rng.random
        while True:
            target = rand() * self.envelope
            for cls in self.classes.values():
                target -= len(cls.items) * cls.bound
                if target < 0:
                    break
            i = int(rand() * len(cls.items))
            if rand() * cls.bound < cls.weights[i]:
                return cls.items[i]

    def pick(self, accept: Accept) -> ProxyState | None:
        if not self.weight_of:
            return None
        for _ in range(SAMPLES):
            p = self._draw()
            if accept(p):
                return p
        return self.members.sweep(int(self.rng.random() * len(self.members)), accept)


class LeastConnections(Strategy):
    """Each pick takes a member with the fewest requests in flight; ties go to the one
    that has waited longest. Members sit in buckets by in-flight count: O(1) per event."""

    name = "least_connections"

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        # OrderedDict: finding the first live member stays O(1) however many were removed
        self.buckets: dict[int, OrderedDict[int, ProxyState]] = {}
        self.count: dict[int, int] = {}  # member id -> bucket it sits in

    def _place(self, p: ProxyState, k: int) -> None:
        old = self.count.get(p.id)
        if old is not None:
            bucket = self.buckets[old]
            del bucket[p.id]
            if not bucket:
                del self.buckets[old]
        self.count[p.id] = k
        self.buckets.setdefault(k, OrderedDict())[p.id] = p

    def add(self, p: ProxyState) -> None:
        if p.id not in self.count:
            self._place(p, p.in_flight)

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
        if p.id in self.count:
            self._place(p, p.in_flight)

    on_release = on_acquire

    def pick(self, accept: Accept) -> ProxyState | None:
        for k in sorted(self.buckets):  # few distinct in-flight counts
            for p in self.buckets[k].values():
                if accept(p):
                    return p
        return None


class LeastLatency(_MemberStrategy):
    """Each pick takes the member whose next request would likely end first: the lowest
    ``peak EWMA latency * (in_flight + 1)``, the wait of the queue it would join (members at
    their concurrency limit are not offered). Members with no latency yet are tried first, one
    request at a time; those that failed without ever answering come last.

    A heap keyed by that cost, updated as requests start and end, finds the cheapest in
    O(log n); a pick looks at the :data:`SCAN` cheapest, then samples (power of two choices),
    then sweeps, so a pool whose cheapest members are all cooling on a site stays cheap."""

    name = "least_latency"

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.heap: list[tuple[float, int, int]] = []  # (cost, version, member id); stale entries skipped
        self.version: dict[int, int] = {}  # member id -> the version of its current entry
        self.by_id: dict[int, ProxyState] = {}
        self.versions = itertools.count()

    @staticmethod
    def cost(p: ProxyState) -> float:
        ewma = p.metrics.latency
        if ewma is None:  # no sample yet: free to try once, then wait for its answer
            return 0.0 if p.in_flight == 0 and not p.metrics.failures else math.inf
        return ewma.value * (p.in_flight + 1)  # type: ignore[operator]

    def _push(self, p: ProxyState) -> None:
        version = self.version[p.id] = next(self.versions)
        heapq.heappush(self.heap, (self.cost(p), version, p.id))
        if len(self.heap) > 64 + 4 * len(self.by_id):  # drop superseded entries
            self.heap = [(self.cost(q), self.version[q.id], q.id) for q in self.by_id.values()]
            heapq.heapify(self.heap)

    def add(self, p: ProxyState) -> None:
        if p.id not in self.by_id:
            super().add(p)
            self.by_id[p.id] = p
            self._push(p)

    def remove(self, p: ProxyState) -> None:
        super().remove(p)
        if self.by_id.pop(p.id, None) is not None:
            del self.version[p.id]

    def on_acquire(self, p: ProxyState) -> None:
        if p.id in self.by_id:
            self._push(p)

    on_release = on_acquire

    def pick(self, accept: Accept) -> ProxyState | None:
        if not self.by_id:
            return None
        heap, chosen = self.heap, None
        seen: list[tuple[float, int, int]] = []
        while heap and len(seen) < SCAN:
            entry = heapq.heappop(heap)
            if self.version.get(entry[2]) != entry[1]:
                continue  # superseded, or its member left
            seen.append(entry)
            if accept(self.by_id[entry[2]]):
                chosen = self.by_id[entry[2]]
                break
        for entry in seen:  # a pick changes nothing: the acquire that follows re-keys the chosen
            heapq.heappush(heap, entry)
        if chosen is not None or len(seen) == len(self.by_id):
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


STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (RoundRobin, WeightedRoundRobin, LeastConnections, LeastLatency, Random, WeightedRandom)
}
