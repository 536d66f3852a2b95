"""Which proxies may take a request now, and what stopped the others."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping

from .state import ProxyState
from .store import PairRecord


def pair_free_at(pair: PairRecord | None, now: float, limit: int, gap: float) -> float:
    """When a pair may take one more request: ``-inf`` if now (fewer than ``limit`` in flight,
    ``gap`` seconds since its last answer, not paused, not banned), ``inf`` if only a request
    ending frees it, else when that gap, its pause or its ban ends. ``None``: a pair the store
    holds nothing of (free)."""
    if pair is None:
        return -math.inf
    held = pair.answered + gap  # the latest of its gap's end, pause, ban and fleet hold (no max(): per candidate)
    if pair.hold > held:
        held = pair.hold
    if pair.ban_until > held:
        held = pair.ban_until
    if pair.fleet > held:
        held = pair.fleet
    if held > now:
        return held
    return math.inf if pair.busy >= limit else -math.inf


BUSY, PAIR_BUSY, HELD, PILOTED = 1, 2, 4, 8  # what stopped a proxy (see Candidates.stopped)


class Candidates:
    """The filter a strategy's pick offers its members to: a proxy may take the request if
    the request has not tried it, ``accept`` (a session's, say) takes it, its pair with the
    site is free (``pairs``: the site's pair records, see :meth:`.PairStore.pairs_of`), and it
    is below its concurrency limit. What stopped the others tells the wait that follows how
    long it may be. While a pilot tries the site's gap (see :mod:`.pace`), ``keep`` is the gap
    the other pairs keep since their last answer."""

    __slots__ = ("accept", "gap", "keep", "limit", "now", "pairs", "rotating_limit", "stopped", "tried")

    def __init__(self, pairs: Mapping[str, PairRecord], now: float, gap: float, limit: int,
                 tried: Collection[str], accept: Callable[[ProxyState], bool] | None = None,
                 rotating_limit: int = 1 << 30) -> None:
        self.rotating_limit = rotating_limit  # a rotating gateway's pair: its exits keep the gap, not it
        self.renewed(pairs, now, gap, limit, tried, accept)

    def renewed(self, pairs: Mapping[str, PairRecord], now: float, gap: float, limit: int, tried: Collection[str],
                accept: Callable[[ProxyState], bool] | None) -> Candidates:
        """This filter made anew for another request (cheaper than a new one, on every pick)."""
        self.pairs = pairs
        self.now = now
        self.gap = gap
        self.limit = limit
        self.tried = tried
        self.accept = accept
        self.keep = -math.inf
        self.stopped = 0  # what stopped the others: BUSY (a proxy at its concurrency limit), PAIR_BUSY (a
        # pair at its limit in flight), HELD (a pair cooling down, paused or banned), PILOTED (a pair
        # waiting for a pilot's answer, or keeping the proven gap)
        return self

    @property
    def busy(self) -> bool:
        return bool(self.stopped & BUSY)

    @property
    def pair_busy(self) -> bool:
        return bool(self.stopped & PAIR_BUSY)

    @property
    def held(self) -> bool:
        return bool(self.stopped & HELD)

    @property
    def piloted(self) -> bool:
        return bool(self.stopped & PILOTED)

    def __call__(self, p: ProxyState) -> bool:
        if (self.tried and p.key in self.tried) or (self.accept is not None and not self.accept(p)):
            return False
        pair = self.pairs.get(p.key)
        if pair is not None and not self._open(p, pair):  # (no record: free, the common case at a large pool)
            return False
        if p.in_flight > p.limit.limit - 1:  # at its limit: in_flight >= int(limit), its ``allowed``
            self.stopped |= BUSY
            return False
        return True

    @property
    def freed_by_a_release(self) -> bool:
        """Whether a request ending somewhere may free one of those stopped: a proxy at its
        concurrency limit, a pair at its limit without a gap, one waiting for a pilot."""
        return bool(self.stopped & (BUSY | PILOTED) or (self.stopped & PAIR_BUSY and not self.gap))

    def copy(self) -> Candidates:
        """The same filter, with its own record of what stopped the others."""
        return self._with(self.now)

    def within_gap(self) -> Candidates:
        """The same filter one gap ahead: also the proxies whose pair with the site frees within
        a gap (what a shared store may book for a request when the free ones are taken)."""
        return self._with(self.now + self.gap)

    def _with(self, now: float) -> Candidates:
        c = Candidates(self.pairs, now, self.gap, self.limit, self.tried, self.accept, self.rotating_limit)
        c.keep = self.keep
        return c

    def pair_free(self, p: ProxyState) -> bool:
        """Whether ``p``'s pair with the site may take one more request now."""
        pair = self.pairs.get(p.key)
        return pair is None or self._open(p, pair)

    def _open(self, p: ProxyState, pair: PairRecord) -> bool:
        """Whether the pair, of which the store holds ``pair``, may take one more request now."""
        if p.rotating:
            free_at = pair_free_at(pair, self.now, self.rotating_limit, 0.0)
        else:
            free_at = pair_free_at(pair, self.now, self.limit, self.gap)
        if free_at <= self.now:
            if self.keep > self.gap and not p.rotating and pair.answered + self.keep > self.now:
                self.stopped |= PILOTED
                return False
            return True
        self.stopped |= PAIR_BUSY if free_at == math.inf else HELD
        return False
