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
from collections.abc import Callable
from typing import ClassVar

from .state import ProxyState

Accept = Callable[[ProxyState], bool]

SAMPLES = 8  # random candidates a sampling strategy draws before it sweeps


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

    def on_acquire(self, p: ProxyState) -> None:
        """``p.in_flight`` has just grown by one."""

    def on_release(self, p: ProxyState) -> None:
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
        if not heap:
            return None
        # Visit the heap in deadline order without popping: a frontier of indices.
        frontier = [(heap[0][0], heap[0][1], 0)]
        while frontier:
            _, _, i = heapq.heappop(frontier)
            entry = heap[i]
            p = entry[2]
            if p is not None and accept(p):
                entry[2] = None
                self.stale += 1
                self.vtime = max(self.vtime, entry[0])
                self._push(p, entry[0] + 1.0 / p.weight)
                return p
            for child in (2 * i + 1, 2 * i + 2):
                if child < len(heap):
                    heapq.heappush(frontier, (heap[child][0], heap[child][1], child))
        return None


class WeightedRandom(Strategy):
    """Each pick draws a member with probability proportional to
    ``weight * max(0.1, recent success rate)`` (a proxy with no outcome yet counts 1.0).

    Weights live in a Fenwick tree, so a draw and a weight change cost O(log n).
    """

    name = "weighted_random"
    FLOOR = 0.1

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.size = 1
        self.tree = [0.0] * 2  # 1-based Fenwick tree over slots
        self.weights: list[float] = [0.0]
        self.slot_of: dict[int, int] = {}
        self.at_slot: list[ProxyState | None] = [None]
        self.free: list[int] = [0]
        self.members = _Members()  # for the rare sweep

    def _effective(self, p: ProxyState) -> float:
        rate = p.metrics.success_rate
        return p.weight * (1.0 if rate is None else max(self.FLOOR, rate))

    def _update(self, slot: int, weight: float) -> None:
        delta = weight - self.weights[slot]
        self.weights[slot] = weight
        i = slot + 1
        while i <= self.size:
            self.tree[i] += delta
            i += i & -i

    def _grow(self) -> None:
        old = self.size
        self.size *= 2
        self.weights.extend([0.0] * old)
        self.at_slot.extend([None] * old)
        self.free.extend(range(self.size - 1, old - 1, -1))
        self.tree = [0.0] * (self.size + 1)
        for slot, w in enumerate(self.weights):  # O(n) rebuild, amortized by doubling
            i = slot + 1
            self.tree[i] += w
            parent = i + (i & -i)
            if parent <= self.size:
                self.tree[parent] += self.tree[i]

    def add(self, p: ProxyState) -> None:
        if p.id in self.slot_of:
            return
        if not self.free:
            self._grow()
        slot = self.free.pop()
        self.members.add(p)
        self.slot_of[p.id] = slot
        self.at_slot[slot] = p
        self._update(slot, self._effective(p))

    def remove(self, p: ProxyState) -> None:
        slot = self.slot_of.pop(p.id, None)
        if slot is not None:
            self.members.remove(p)
            self._update(slot, 0.0)
            self.at_slot[slot] = None
            self.free.append(slot)

    def __len__(self) -> int:
        return len(self.slot_of)

    def __contains__(self, p: ProxyState) -> bool:
        return p.id in self.slot_of

    def on_release(self, p: ProxyState) -> None:
        slot = self.slot_of.get(p.id)
        if slot is not None:
            w = self._effective(p)
            if w != self.weights[slot]:
                self._update(slot, w)

    def _draw(self) -> ProxyState | None:
        target = self.rng.random() * self.tree_total()
        pos, step = 0, 1 << (self.size.bit_length() - 1)
        while step:
            nxt = pos + step
            if nxt <= self.size and self.tree[nxt] <= target:
                pos = nxt
                target -= self.tree[nxt]
            step >>= 1
        slot = min(pos, self.size - 1)
        return self.at_slot[slot] if self.weights[slot] > 0 else None

    def tree_total(self) -> float:
        total, i = 0.0, self.size
        while i > 0:
            total += self.tree[i]
            i -= i & -i
        return total

    def pick(self, accept: Accept) -> ProxyState | None:
        if not self.slot_of:
            return None
        for _ in range(SAMPLES):
            p = self._draw()
            if p is not None and accept(p):
                return p
        return self.members.sweep(int(self.rng.random() * len(self.members)), accept)


class LeastConnections(Strategy):
    """Each pick takes a member with the fewest requests in flight; ties go to the one
    that has waited longest. Members sit in buckets by in-flight count: O(1) per event."""

    name = "least_connections"

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.buckets: dict[int, dict[int, ProxyState]] = {}
        self.count: dict[int, int] = {}  # member id -> bucket it sits in

    def _place(self, p: ProxyState, k: int) -> None:
        old = self.count.get(p.id)
        if old is not None:
            bucket = self.buckets[old]
            del bucket[p.id]
            if not bucket:
                del self.buckets[old]
        self.count[p.id] = k
        self.buckets.setdefault(k, {})[p.id] = p

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
    """Each pick prefers the lower ``peak EWMA latency * (in_flight + 1)`` of two random
    members (power of two choices); members with no latency yet are tried first."""

    name = "least_latency"

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.untried: dict[int, ProxyState] = {}

    def add(self, p: ProxyState) -> None:
        super().add(p)
        if p.metrics.latency is None:
            self.untried[p.id] = p

    def remove(self, p: ProxyState) -> None:
        super().remove(p)
        self.untried.pop(p.id, None)

    def on_release(self, p: ProxyState) -> None:
        if p.metrics.latency is not None:
            self.untried.pop(p.id, None)

    @staticmethod
    def cost(p: ProxyState) -> float:
        ewma = p.metrics.latency
        if ewma is None:  # no sample yet: free to try once, then wait for its answer
            return 0.0 if p.in_flight == 0 else math.inf
        return ewma.value * (p.in_flight + 1)  # type: ignore[operator]

    def pick(self, accept: Accept) -> ProxyState | None:
        if not self.members.items:
            return None
        for p in itertools.islice(self.untried.values(), SAMPLES):
            if p.in_flight == 0 and accept(p):
                return p
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
