"""Which proxies may take a request now, and what stopped the others."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection

from .state import ProxyState
from .store import PairStore


class Candidates:
    """The filter a strategy's pick offers its members to: a proxy may take the request if
    the request has not tried it, ``accept`` (a session's, say) takes it, its pair with the
    site is free, and it is below its concurrency limit. What stopped the others tells the
    wait that follows how long it may be."""

    __slots__ = ("accept", "busy", "gap", "held", "limit", "now", "pair_busy", "rotating_limit", "site", "store",
                 "tried")

    def __init__(self, store: PairStore, site: str, now: float, gap: float, limit: int, tried: Collection[str],
                 accept: Callable[[ProxyState], bool] | None = None, rotating_limit: int = 1 << 30) -> None:
        self.store, self.site, self.now, self.gap, self.limit = store, site, now, gap, limit
        self.rotating_limit = rotating_limit  # a rotating gateway's pair: its exits keep the gap, not it
        self.tried, self.accept = tried, accept
        self.busy = False  # a proxy at its concurrency limit
        self.pair_busy = False  # a pair at its limit in flight
        self.held = False  # a pair cooling down, paused or banned

    def __call__(self, p: ProxyState) -> bool:
        if (self.tried and p.key in self.tried) or (self.accept is not None and not self.accept(p)):
            return False
        if not self.pair_free(p):
            return False
        if p.in_flight >= p.limit.allowed:
            self.busy = True
            return False
        return True

    def copy(self) -> Candidates:
        """The same filter, with its own record of what stopped the others."""
        return Candidates(self.store, self.site, self.now, self.gap, self.limit, self.tried, self.accept,
                          self.rotating_limit)

    def within_gap(self) -> Candidates:
        """The same filter one gap ahead: also the proxies whose pair with the site frees within
        a gap (what a shared store may book for a request when the free ones are taken)."""
        return Candidates(self.store, self.site, self.now + self.gap, self.gap, self.limit, self.tried, self.accept,
                          self.rotating_limit)

    def pair_free(self, p: ProxyState) -> bool:
        """Whether ``p``'s pair with the site may take one more request now."""
        if p.proxy.rotating:
            free_at = self.store.pair_free_at(p.key, self.site, self.now, self.rotating_limit, 0.0)
        else:
            free_at = self.store.pair_free_at(p.key, self.site, self.now, self.limit, self.gap)
        if free_at <= self.now:
            return True
        if free_at == math.inf:
            self.pair_busy = True
        else:
            self.held = True
        return False
