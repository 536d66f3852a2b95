"""Requests waiting for a proxy: bounded, in priority order, each key with one due time.

Requests that wait for the same thing (site, region, proxies tried) share a key and queue in
priority order (then arrival). Each key has a due time, when its head should ask again, and
may also wait for a release (a proxy at its limit freeing up): then one key at a time is made
due by each release, oldest first. The room holds at most ``capacity`` requests; a request
that does not fit (or the lowest of its key, if the newcomer outranks it) is handed back to
whoever keeps the rest of the frontier (the scheduler's own queue).

Pure data structure: no clock, no I/O; times are arguments.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections import deque
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class _Queue(Generic[T]):
    items: list[tuple[int, int, T]] = field(default_factory=list)  # (-priority, seq, item), sorted
    due: float = 0.0
    on_release: bool = False


class WaitingRoom(Generic[T]):
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.queues: dict[Hashable, _Queue[T]] = {}
        self.dues: list[tuple[float, int, Hashable]] = []  # (due, seq, key); stale entries skipped
        self.releases: deque[Hashable] = deque()  # keys waiting for a release, oldest first
        self.seq = itertools.count()
        self.size = 0

    def __len__(self) -> int:
        return self.size

    @property
    def full(self) -> bool:
        return self.size >= self.capacity

    def waiting(self, key: Hashable) -> bool:
        """Whether requests of ``key`` wait (a newcomer of that key queues behind them)."""
        return key in self.queues

    def add(self, item: T, key: Hashable, priority: int, due: float, on_release: bool = False) -> T | None:
        """Keep ``item`` until ``due`` (or a release). Returns the item that does not fit when
        the room is full: ``item``, or the lowest-priority request of its key if ``item``
        outranks it; ``None`` when everything fit."""
        queue = self.queues.get(key)
        entry = (-priority, next(self.seq), item)
        evicted = None
        if self.size >= self.capacity:
            if queue is None or entry >= queue.items[-1]:
                return item
            evicted = queue.items.pop()[2]
            self.size -= 1
        if queue is None:
            queue = self.queues[key] = _Queue()
            self._schedule(key, queue, due, on_release)
        elif due < queue.due:
            self._schedule(key, queue, due, on_release or queue.on_release)
        bisect.insort(queue.items, entry)
        self.size += 1
        return evicted

    def _schedule(self, key: Hashable, queue: _Queue[T], due: float, on_release: bool) -> None:
        queue.due = due
        heapq.heappush(self.dues, (due, next(self.seq), key))
        if on_release and not queue.on_release:
            self.releases.append(key)
        queue.on_release = on_release

    def next_due(self) -> float | None:
        """The earliest due time of any key (``None`` if the room is empty)."""
        self._skip_stale()
        return self.dues[0][0] if self.dues else None

    def _skip_stale(self) -> None:
        dues, queues = self.dues, self.queues
        while dues:
            due, _, key = dues[0]
            queue = queues.get(key)
            if queue is not None and queue.due == due:
                return
            heapq.heappop(dues)

    def pop_due(self, now: float) -> tuple[Hashable, T] | None:
        """The head of the earliest key that is due by ``now``, taken out; ``None`` if none is.
        Its key stays due: the next call offers the next request of that key."""
        self._skip_stale()
        if not self.dues or self.dues[0][0] > now:
            return None
        key = self.dues[0][2]
        queue = self.queues[key]
        item = queue.items.pop(0)[2]
        self.size -= 1
        if not queue.items:
            del self.queues[key]
        return key, item

    def defer(self, key: Hashable, item: T, priority: int, due: float, on_release: bool = False) -> None:
        """``item`` (just popped) still must wait: back at the head of its key, due at ``due``."""
        queue = self.queues.get(key)
        if queue is None:
            queue = self.queues[key] = _Queue()
        queue.items.insert(0, (-priority, next(self.seq), item))
        self.size += 1
        self._schedule(key, queue, due, on_release)

    def released(self, now: float) -> None:
        """A request ended: the oldest key waiting for a release is due now."""
        while self.releases:
            key = self.releases.popleft()
            queue = self.queues.get(key)
            if queue is not None and queue.on_release:
                queue.on_release = False
                if queue.due > now:
                    self._schedule(key, queue, now, False)
                return

    def wake_all(self, now: float) -> None:
        """Proxies came back or joined: every key is due now."""
        for key, queue in self.queues.items():
            if queue.due > now:
                self._schedule(key, queue, now, False)

    def drain(self) -> Iterator[T]:
        """Every waiting request, each key's in order, emptying the room."""
        queues, self.queues = self.queues, {}
        self.dues.clear()
        self.releases.clear()
        self.size = 0
        for queue in queues.values():
            for _, _, item in queue.items:
                yield item
