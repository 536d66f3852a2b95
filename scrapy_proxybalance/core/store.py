"""The state store: everything processes sharing a pool must agree on, behind one protocol.

What lives here: per (proxy, site) pair its requests in flight, when it may be used again
(its cooldown) and its ban (until when, how many in a row); per site its learned pace; per
proxy its :class:`~.ejection.ProxyFacts` (failures, ejection and its deadline, checks,
disabled). What stays per process, in :class:`~.state.ProxyState`: requests in flight per
proxy, concurrency limits and latency estimates.

:class:`StateStore` is the protocol the balancer reads and writes through, and only through
it (as ``limits`` keeps rate-limit storage apart from policy); :class:`MemoryStore` keeps
it in this process. Times are this process's clock; a shared store converts.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .ejection import HEALTHY, ProxyFacts
from .pace import SitePace

Listener = Callable[[str], None]  # called with the key of a proxy whose facts changed elsewhere


class StateStore(Protocol):
    # -- (proxy, site) pairs
    def pair_free_at(self, key: str, site: str, now: float, limit: int) -> float:
        """When the pair may take one more request: 0.0 if now (fewer than ``limit`` in
        flight, not cooling down, not banned), ``inf`` if only a request ending frees it,
        else when its cooldown or ban ends."""

    def take(self, key: str, site: str, now: float) -> None:
        """One more request in flight through the pair."""

    def give_back(self, key: str, site: str, now: float, free_at: float) -> None:
        """A request through the pair ended; the pair is not used again before ``free_at``."""

    def ban(self, key: str, site: str, now: float, until: float, level: int) -> None:
        """The site refused the proxy: keep the pair off until ``until`` (never shortens a hold)."""

    def unban(self, key: str, site: str) -> None:
        """The site took the proxy again: forget its ban level there."""

    def ban_of(self, key: str, site: str) -> tuple[float, int]:
        """The pair's ban: (until, bans in a row); (0.0, 0) when none."""

    def soonest(self, site: str, now: float) -> float | None:
        """The soonest time after ``now`` that a cooling or banned pair of ``site`` frees up."""

    def banned(self, site: str, now: float) -> list[str]:
        """The proxies ``site`` bans at ``now``."""

    def banned_sites(self, key: str, now: float) -> list[str]:
        """The sites that ban proxy ``key`` at ``now``."""

    # -- sites
    def pace(self, site: str) -> SitePace:
        """The site's learned pace."""

    def set_pace(self, site: str, pace: SitePace) -> None: ...

    # -- proxies
    def facts(self, key: str) -> ProxyFacts:
        """What is known of the proxy's health (a blank record if nothing)."""

    def set_facts(self, key: str, facts: ProxyFacts) -> None: ...

    def forget(self, key: str) -> None:
        """The proxy left the pool for good."""

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(key)`` when another process changes a proxy's facts."""


@dataclass(slots=True)
class _Pair:
    busy: int = 0
    free_at: float = 0.0
    ban_until: float = 0.0
    ban_level: int = 0


class MemoryStore:
    """The store in this process's memory.

    Per site, a dict of pairs and a heap of (hold end, proxy) to expire them lazily, so memory
    follows the pairs in use, cooling or banned, not pool size times sites.
    """

    def __init__(self) -> None:
        self.pairs: dict[str, dict[str, _Pair]] = {}
        self.heaps: dict[str, list[tuple[float, str]]] = {}
        self.bans: dict[str, dict[str, float]] = {}  # site -> proxy -> ban end (for `banned`)
        self.bans_of: dict[str, dict[str, float]] = {}  # proxy -> site -> ban end (`banned_sites`)
        self.paces: dict[str, SitePace] = {}
        self.proxy_facts: dict[str, ProxyFacts] = {}

    # -- pairs
    def pair_free_at(self, key: str, site: str, now: float, limit: int) -> float:
        pairs = self.pairs.get(site)
        pair = pairs.get(key) if pairs else None
        if pair is None:
            return 0.0
        held = max(pair.free_at, pair.ban_until)
        if held > now:
            return held
        return math.inf if pair.busy >= limit else 0.0

    def take(self, key: str, site: str, now: float) -> None:
        self._pair(key, site).busy += 1

    def give_back(self, key: str, site: str, now: float, free_at: float) -> None:
        pair = self._pair(key, site)
        pair.busy = max(0, pair.busy - 1)
        if free_at > pair.free_at:
            pair.free_at = free_at
            self._hold(site, key, free_at)
        self._tidy(site, key, pair, now)

    def ban(self, key: str, site: str, now: float, until: float, level: int) -> None:
        pair = self._pair(key, site)
        pair.ban_level = max(pair.ban_level, level)
        if until > pair.ban_until:
            pair.ban_until = until
            self.bans.setdefault(site, {})[key] = until
            self.bans_of.setdefault(key, {})[site] = until
            self._hold(site, key, until)
        self._tidy(site, key, pair, now)

    def unban(self, key: str, site: str) -> None:
        pairs = self.pairs.get(site)
        pair = pairs.get(key) if pairs else None
        if pair is not None and pair.ban_level:
            pair.ban_level = 0

    def ban_of(self, key: str, site: str) -> tuple[float, int]:
        pairs = self.pairs.get(site)
        pair = pairs.get(key) if pairs else None
        return (pair.ban_until, pair.ban_level) if pair else (0.0, 0)

    def soonest(self, site: str, now: float) -> float | None:
        self._expire(site, now)
        heap = self.heaps.get(site)
        return heap[0][0] if heap else None

    def banned(self, site: str, now: float) -> list[str]:
        return _current(self.bans, site, now)

    def banned_sites(self, key: str, now: float) -> list[str]:
        return _current(self.bans_of, key, now)

    def _pair(self, key: str, site: str) -> _Pair:
        pairs = self.pairs.get(site)
        if pairs is None:
            pairs = self.pairs[site] = {}
        pair = pairs.get(key)
        if pair is None:
            pair = pairs[key] = _Pair()
        return pair

    def _hold(self, site: str, key: str, until: float) -> None:
        heapq.heappush(self.heaps.setdefault(site, []), (until, key))

    def _tidy(self, site: str, key: str, pair: _Pair, now: float) -> None:
        """Drop a pair that holds nothing any more (a ban level stays until a success)."""
        if not pair.busy and pair.free_at <= now and pair.ban_until <= now and not pair.ban_level:
            del self.pairs[site][key]
            if not self.pairs[site]:
                del self.pairs[site]

    def _expire(self, site: str, now: float) -> None:
        """Pop heap entries whose hold ended by ``now`` or was superseded by a longer one."""
        heap = self.heaps.get(site)
        if heap is None:
            return
        pairs = self.pairs.get(site, {})
        while heap:
            until, key = heap[0]
            pair = pairs.get(key)
            current = pair is not None and until in (pair.free_at, pair.ban_until)
            if current and until > now:
                break
            heapq.heappop(heap)
            if current and pair is not None:
                self._tidy(site, key, pair, now)
        if not heap:
            del self.heaps[site]

    # -- sites
    def pace(self, site: str) -> SitePace:
        return self.paces.get(site) or _NO_PACE

    def set_pace(self, site: str, pace: SitePace) -> None:
        self.paces[site] = pace

    # -- proxies
    def facts(self, key: str) -> ProxyFacts:
        return self.proxy_facts.get(key, HEALTHY)

    def set_facts(self, key: str, facts: ProxyFacts) -> None:
        if facts == HEALTHY:
            self.proxy_facts.pop(key, None)
        else:
            self.proxy_facts[key] = facts

    def forget(self, key: str) -> None:
        self.proxy_facts.pop(key, None)
        self.bans_of.pop(key, None)

    def subscribe(self, listener: Listener) -> None:
        """Nothing else writes to this process's memory."""


_NO_PACE = SitePace()


def _current(index: dict[str, dict[str, float]], name: str, now: float) -> list[str]:
    """The keys of ``index[name]`` whose time is after ``now``, dropping the others."""
    held = index.get(name)
    if not held:
        return []
    over = [k for k, until in held.items() if until <= now]
    for k in over:
        del held[k]
    if not held:
        del index[name]
    return list(held)
