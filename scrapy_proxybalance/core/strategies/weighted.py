"""Strategies by weight: smooth weighted round robin (EDF) and weighted random."""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import OrderedDict

from ..state import ProxyState
from .base import SAMPLES, Accept, Members, Strategy


class WeightedRoundRobin(Strategy):
    """Earliest deadline first: a picked proxy's next turn is ``deadline + 1/weight``.

    nginx's smooth weighted round robin in Envoy's EDF form: weights 5:3:1 get exactly 5, 3 and
    1 of every 9 picks, interleaved (``a b a a b a a b c``). Members of one weight wait in a lane,
    a queue in deadline order (a member picked goes to its back), so a pick costs O(1) for the
    lane plus O(log lanes) for a heap of the lanes' fronts, whatever the pool's size. A member
    picked ahead of lane-mates that could not take the request goes to the back behind them
    (its next turn no sooner than theirs); those keep their turns.
    """

    name = "weighted_round_robin"

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.lanes: dict[float, OrderedDict[int, list]] = {}  # weight -> id -> [deadline, seq, member, weight]
        self.entries: dict[int, list] = {}  # member id -> its entry in its lane
        self.fronts: list[tuple[float, int, float]] = []  # heap of (deadline, seq, weight) of the lanes' fronts;
        # one whose lane's front has changed since is stale, skipped when it comes up
        self.seq = itertools.count()
        self.vtime = 0.0  # deadline of the latest pick

    def add(self, p: ProxyState) -> None:
        if p.id not in self.entries:
            w = p.weight
            lane = self.lanes.get(w)
            if lane is None:
                lane = self.lanes[w] = OrderedDict()
            turn = self.vtime + 1.0 / w
            entry: list = [turn, 0, p, w]
            self.entries[p.id] = entry
            self._to_back(lane, entry, turn)

    def remove(self, p: ProxyState) -> None:
        entry = self.entries.pop(p.id, None)
        if entry is None:
            return
        lane = self.lanes[entry[3]]
        front = next(iter(lane.values()))
        del lane[p.id]
        if not lane:
            del self.lanes[entry[3]]
        elif front is entry:
            self._front_changed(lane)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, p: ProxyState) -> bool:
        return p.id in self.entries

    def _to_back(self, lane: OrderedDict[int, list], entry: list, deadline: float) -> None:
        """Put ``entry`` at the back of its lane with its next turn at ``deadline``, or at the
        back's turn if that is later (the lane stays in deadline order)."""
        was_front = False
        if lane:
            back = lane[next(reversed(lane))]
            if back is not entry and back[0] > deadline:
                deadline = back[0]
            was_front = next(iter(lane.values())) is entry
        entry[0], entry[1] = deadline, next(self.seq)
        lane[entry[2].id] = entry
        lane.move_to_end(entry[2].id)
        if was_front or len(lane) == 1:
            self._front_changed(lane)

    def _front_changed(self, lane: OrderedDict[int, list]) -> None:
        front = next(iter(lane.values()))
        heapq.heappush(self.fronts, (front[0], front[1], front[3]))
        if len(self.fronts) > 2 * len(self.lanes) + 16:  # stale fronts piled up (pool changes)
            self.fronts = [(e[0], e[1], e[3]) for e in (next(iter(lane.values())) for lane in self.lanes.values())]
            heapq.heapify(self.fronts)

    def _top(self) -> list | None:
        """The entry of earliest deadline: the front of the lane the heap's top names."""
        fronts, lanes = self.fronts, self.lanes
        while fronts:
            _, seq, w = fronts[0]
            lane = lanes.get(w)
            if lane is not None:
                front = next(iter(lane.values()))
                if front[1] == seq:
                    return front
            heapq.heappop(fronts)
        return None

    def pick(self, accept: Accept) -> ProxyState | None:
        top = self._top()
        if top is None:
            return None
        p = top[2]
        if accept(p):  # the common case: the earliest deadline is free
            lane, d = self.lanes[top[3]], top[0]
            if d > self.vtime:
                self.vtime = d
            turn, back = d + 1.0 / top[3], lane[next(reversed(lane))]
            top[0], top[1] = turn if back[0] <= turn else back[0], next(self.seq)  # (_to_back, inline)
            lane.move_to_end(p.id)
            front = next(iter(lane.values()))
            heapq.heapreplace(self.fronts, (front[0], front[1], top[3]))
            return p
        later = self._next_accepted(accept)
        if later is None:
            return None
        self.vtime = max(self.vtime, later[0])
        self._to_back(self.lanes[later[3]], later, later[0] + 1.0 / later[3])
        return later[2]

    def _next_accepted(self, accept: Accept) -> list | None:
        """The entry of earliest deadline whose member ``accept`` takes: each lane's first (a
        lane is in deadline order), the earliest of those; a lane is left once its entries come
        later than the best found."""
        best = None
        for lane in self.lanes.values():
            for entry in lane.values():
                if best is not None and entry[0] > best[0]:
                    break
                if accept(entry[2]):
                    if best is None or (entry[0], entry[1]) < (best[0], best[1]):
                        best = entry
                    break
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
