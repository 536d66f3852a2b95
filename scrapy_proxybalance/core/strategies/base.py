"""The :class:`Strategy` interface, and the member list most strategies keep."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

from ..state import ProxyState

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


class Members:
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


class MemberStrategy(Strategy):
    """Base of the strategies that keep their members in a :class:`Members` list."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.members = Members()

    def add(self, p: ProxyState) -> None:
        self.members.add(p)

    def remove(self, p: ProxyState) -> None:
        self.members.remove(p)

    def __len__(self) -> int:
        return len(self.members.items)

    def __contains__(self, p: ProxyState) -> bool:
        return p.id in self.members.pos

    def _draw(self) -> ProxyState:
        items = self.members.items
        return items[int(self.rng.random() * len(items))]

    def _sweep(self, accept: Accept) -> ProxyState | None:
        n = len(self.members)
        return self.members.sweep(int(self.rng.random() * n), accept) if n else None
