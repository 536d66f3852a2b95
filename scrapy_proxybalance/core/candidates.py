"""Which proxies may take a request now, and what stopped the others."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection

from .state import ProxyState
from .store import PairRecord, PairStore


def pair_free_at(pair: PairRecord | None, now: float, limit: int, gap: float) -> float:
    """When a pair may take one more request: ``-inf`` if now (fewer than ``limit`` in flight,
    ``gap`` seconds since its last answer, not paused, not banned), ``inf`` if only a request
    ending frees it, else when that gap, its pause or its ban ends. ``None``: a pair the store
    holds nothing of (free)."""
    if pair is None:
        return -math.inf
    held = max(pair.answered + gap, pair.hold, pair.ban_until, pair.fleet)
    if held > now:
        return held
    return math.inf if pair.busy >= limit else -math.inf


class Candidates:
    """The filter a strategy's pick offers its members to: a proxy may take the request if
    the request has not tried it, ``accept`` (a session's, say) takes it, its pair with the
    site is free, and it is below its concurrency limit. What stopped the others tells the
    wait that follows how long it may be. While a pilot tries the site's gap (see
    :mod:`.pace`), ``keep`` is the gap the other pairs keep since their last answer."""

    __slots__ = ("accept", "busy", "gap", "held", "keep", "limit", "now", "pair_busy", "pairs", "piloted",
                 "rotating_limit", "site", "store", "tried")

    def __init__(self, store: PairStore, site: str, now: float, gap: float, limit: int, tried: Collection[str],
                 accept: Callable[[ProxyState], bool] | None = None, rotating_limit: int = 1 << 30) -> None:
        self.store, self.site, self.now, self.gap, self.limit = store, site, now, gap, limit
        self.pairs = store.pairs_of(site)
        self.rotating_limit = rotating_limit  # a rotating gateway's pair: its exits keep the gap, not it
        self.tried, self.accept = tried, accept
        self.busy = False  # a proxy at its concurrency limit
        self.pair_busy = False  # a pair at its limit in flight
        self.held = False  # a pair cooling down, paused or banned
        self.keep = -math.inf  # while a pilot tries the site's gap: the gap the other pairs keep
        self.piloted = False  # a pair waiting for a pilot's answer (or to keep the proven gap)

    def __call__(self, p: ProxyState) -> bool:
        if (self.tried and p.key in self.tried) or (self.accept is not None and not self.accept(p)):
            return False
        pair = self.pairs.get(p.key)
        if pair is not None and not self._open(p, pair):  # (no record: free, the common case at a large pool)
            return False
        if p.in_flight > p.limit.limit - 1:  # at its limit: in_flight >= int(limit), its ``allowed``
            self.busy = True
            return False
        return True

    @property
    def freed_by_a_release(self) -> bool:
        """Whether a request ending somewhere may free one of those stopped: a proxy at its
        concurrency limit, a pair at its limit without a gap, one waiting for a pilot."""
        return self.busy or self.piloted or (self.pair_busy and not self.gap)

    def copy(self) -> Candidates:
        """The same filter, with its own record of what stopped the others."""
        return self._with(self.now)

    def within_gap(self) -> Candidates:
        """The same filter one gap ahead: also the proxies whose pair with the site frees within
        a gap (what a shared store may book for a request when the free ones are taken)."""
        return self._with(self.now + self.gap)

    def _with(self, now: float) -> Candidates:
        c = Candidates(self.store, self.site, now, self.gap, self.limit, self.tried, self.accept, self.rotating_limit)
        c.keep = self.keep
        return c

    def pair_free(self, p: ProxyState) -> bool:
        """Whether ``p``'s pair with the site may take one more request now."""
        pair = self.pairs.get(p.key)
        return pair is None or self._open(p, pair)

    def _open(self, p: ProxyState, pair: PairRecord) -> bool:
        """Whether the pair, of which the store holds ``pair``, may take one more request now."""
        if p.proxy.rotating:
            free_at = pair_free_at(pair, self.now, self.rotating_limit, 0.0)
        else:
            free_at = pair_free_at(pair, self.now, self.limit, self.gap)
        if free_at <= self.now:
            if self.keep > self.gap and not p.proxy.rotating and pair.answered + self.keep > self.now:
                self.piloted = True
                return False
            return True
        if free_at == math.inf:
            self.pair_busy = True
        else:
            self.held = True
        return False
