"""Strategies that ignore weights and load: round robin and uniform random."""

from __future__ import annotations

import random

from ..state import ProxyState
from .base import SAMPLES, Accept, MemberStrategy


class RoundRobin(MemberStrategy):
    """Each pick takes the next member after the previous pick, in a fixed cycle."""

    name = "round_robin"

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.cursor = 0

    def pick(self, accept: Accept) -> ProxyState | None:
        n = len(self.members.items)
        if not n:
            return None
        p = self.members.sweep(self.cursor % n, accept)
        if p is not None:
            self.cursor = self.members.pos[p.id] + 1
        return p


class Random(MemberStrategy):
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
