"""The state store in this process's memory (``PROXY_STATE_URL = "memory://"``, the default)."""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING

from ..core.ejection import HEALTHY, ProxyFacts
from ..core.pace import SitePace
from ..core.sessions import Binding
from ..core.store import Listener, PairRecord, PoolChangeListener
from ..core.tiers import NO_TIER, SiteTier
from .answers import ANSWERS, Answers
from .bindings import Bindings
from .forgetting import Forgetting, Pair
from .sweep import Sweep

if TYPE_CHECKING:
    from . import StoreOptions


class Alone:
    """What a store of one process does with what only a fleet needs: nothing else writes to its
    memory, nobody is told of its pool changes, and nobody outlives it to take back its
    requests (a ``JOBDIR`` keeps them at a pause)."""

    def subscribe(self, listener: Listener) -> None:
        pass

    def share_pool_change(self, action: str, value: str) -> None:
        pass

    def subscribe_pool(self, listener: PoolChangeListener) -> None:
        pass

    def hold(self, token: str, blob: bytes) -> None:
        pass

    def let_go(self, token: str) -> None:
        pass

    async def reclaim(self) -> list[bytes]:
        return []


class MemoryStore(Forgetting, Alone):
    """The store in this process's memory.

    Per site, a dict of pairs and heaps of their last answers within the gap and of pause and
    ban ends. A site's gap is applied when asked, so a site that slows down holds every pair to
    the new gap at once: a pair's last answer is kept as long as a gap can grow to
    (:meth:`remember_answers`). Memory follows the active sites, not the sites ever seen: one
    heap for the whole store (the sweep) says when each pair, and each site's pace and tier, may
    be forgotten, and every answer forgets what has come due, so a site seen once is gone a
    minute later, without a scan. A pair in use, paused or banned is kept as long as that runs;
    a ban's level as long again; a learned pace until it has decayed (see
    :meth:`.SitePace.idle_at`), a site's tier until its probe is due (:meth:`.SiteTier.idle_at`).
    """

    shared = False

    def __init__(self) -> None:
        self.pairs: dict[str, dict[str, Pair]] = {}
        self.memory = 60.0  # seconds a pair's last answer is kept (the longest gap)
        self.answers: dict[str, Answers] = {}  # site -> its answers in order (its gaps, and what to forget)
        self.sweep = Sweep()  # when to look at a pair, a site's answers (proxy ANSWERS), its pace and tier (proxy "")
        self.held = 0  # pairs in self.pairs
        self.holds: dict[str, list[tuple[float, str]]] = {}  # site -> heap of (pause or ban end, proxy)
        self.bans: dict[str, dict[str, float]] = {}  # site -> proxy -> ban end (for `banned`)
        self.bans_of: dict[str, dict[str, float]] = {}  # proxy -> site -> ban end (`banned_sites`)
        self.paces: dict[str, SitePace] = {}
        self.site_tiers: dict[str, SiteTier] = {}
        self.proxy_facts: dict[str, ProxyFacts] = {}
        self.sessions = Bindings()

    @classmethod
    def from_url(cls, url: str, options: StoreOptions) -> MemoryStore:
        return cls()

    # -- pairs
    def pairs_of(self, site: str) -> Mapping[str, Pair]:
        return self.pairs.get(site) or _NO_PAIRS

    def take(self, key: str, site: str, now: float, lease: int) -> Pair:
        pairs = self.pairs.get(site)
        if pairs is None:
            pairs = self.pairs[site] = {}
        pair = pairs.get(key)
        if pair is None:  # (what _pair does, inline: most takes at a large pool make one)
            pair = pairs[key] = Pair()
            self.held += 1
        pair.busy += 1
        return pair

    def untake(self, key: str, site: str, lease: int) -> None:
        pairs = self.pairs.get(site)
        pair = pairs.get(key) if pairs else None
        if pair is not None:
            pair.busy = max(0, pair.busy - 1)
            if not pair.busy and not pair.watched:
                self._watch(pair, site, key)

    async def claim(self, site: str, keys: Sequence[str], lease: int, limit: int, gap: float,
                    book: float = 0.0) -> tuple[str, float] | None:
        return keys[0], -math.inf  # this process is the whole fleet: its own pick stands, now

    def give_back(self, key: str, site: str, now: float, gap: float, lease: int,
                  hold_until: float = -math.inf, pair: PairRecord | None = None) -> None:
        if not isinstance(pair, Pair):  # (a record of this store's is a Pair)
            pair = self._pair(key, site)
        busy = pair.busy
        if busy:
            pair.busy = busy = busy - 1
        pair.answered = now
        answers = self.answers.get(site)
        if answers is None:
            answers = self.answers[site] = Answers()
        times = answers.times
        if times and now < times[-1]:
            answers.insert(now, key)
        else:
            times.append(now)
            answers.keys.append(key)
        if answers.due == math.inf:  # the sweep looks at them once the first may be forgotten
            answers.due = now + self.memory
            self.sweep.add(answers.due, site, ANSWERS)
        if hold_until > pair.hold:
            pair.hold = hold_until
            heapq.heappush(self.holds.setdefault(site, []), (hold_until, key))
        ends = self.sweep.ends
        if ends and ends[0] <= now:
            self._forget_due(now)

    def fleet_holds(self, site: str, reported: dict[str, float], complete: bool, taken: str | None) -> None:
        """The pairs of ``site`` other processes hold (in use, within their gap, paused or
        banned), each until when: held here too, so this process's picks avoid them. What was
        said before is replaced; pairs no longer reported are free as far as the fleet goes
        (all of them if the report was ``complete``, else those due before its last)."""
        last = max(reported.values(), default=math.inf)
        for key, pair in self.pairs.get(site, {}).items():
            if key not in reported and pair.fleet > -math.inf and (complete or pair.fleet <= last):
                pair.fleet = -math.inf
        for key, until in reported.items():
            if key != taken:
                pair = self._pair(key, site)
                pair.fleet = until
                heapq.heappush(self.holds.setdefault(site, []), (until, key))
                if not pair.watched:
                    self._watch(pair, site, key)

    def ban(self, key: str, site: str, now: float, until: float, level: int) -> None:
        pair = self._pair(key, site)
        pair.ban_level = max(pair.ban_level, level)
        pair.level_until = max(pair.level_until, until + max(0.0, until - now))
        if until > pair.ban_until:
            pair.ban_until = until
            self.bans.setdefault(site, {})[key] = until
            self.bans_of.setdefault(key, {})[site] = until
            heapq.heappush(self.holds.setdefault(site, []), (until, key))
        if not pair.watched:
            self._watch(pair, site, key)

    def unban(self, key: str, site: str) -> None:
        pairs = self.pairs.get(site)
        pair = pairs.get(key) if pairs else None
        if pair is not None and pair.ban_level:
            pair.ban_level = 0

    def ban_of(self, key: str, site: str) -> tuple[float, int]:
        pairs = self.pairs.get(site)
        pair = pairs.get(key) if pairs else None
        return (pair.ban_until, pair.ban_level) if pair else (-math.inf, 0)

    def soonest(self, site: str, now: float, gap: float) -> float | None:
        pairs = self.pairs.get(site, {})
        ends = []
        answers = self.answers.get(site)
        if answers is not None and gap > 0:
            end = answers.soonest(pairs, now, gap)
            if end is not None:
                ends.append(end)
        holds = self.holds.get(site)
        while holds:
            until, key = holds[0]
            pair = pairs.get(key)
            if pair is not None and until in (pair.hold, pair.ban_until, pair.fleet) and until > now:
                ends.append(until)
                break
            heapq.heappop(holds)
            if pair is not None:
                self._tidy(site, key, pair, now)
        if holds is not None and not holds:
            self.holds.pop(site, None)
        return min(ends) if ends else None

    def banned(self, site: str, now: float) -> list[str]:
        return _current(self.bans, site, now)

    def banned_sites(self, key: str, now: float) -> list[str]:
        return _current(self.bans_of, key, now)

    def banned_proxies(self, now: float) -> list[str]:
        return [key for key in list(self.bans_of) if _current(self.bans_of, key, now)]

    def _pair(self, key: str, site: str) -> Pair:
        pairs = self.pairs.get(site)
        if pairs is None:
            pairs = self.pairs[site] = {}
        pair = pairs.get(key)
        if pair is None:
            pair = pairs[key] = Pair()
            self.held += 1
        return pair

    # -- sites
    def pace(self, site: str) -> SitePace:
        return self.paces.get(site) or _NO_PACE

    def set_pace(self, site: str, pace: SitePace) -> None:
        self.paces[site] = pace
        self._due(pace.idle_at(self.memory), site)

    def tier(self, site: str) -> SiteTier:
        return self.site_tiers.get(site, NO_TIER)

    def set_tier(self, site: str, tier: SiteTier) -> None:
        self.site_tiers[site] = tier
        self._due(tier.idle_at(), site)

    def tiers(self) -> dict[str, SiteTier]:
        return self.site_tiers

    # -- proxies
    def facts(self, key: str) -> ProxyFacts:
        return self.proxy_facts.get(key, HEALTHY)

    def set_facts(self, key: str, facts: ProxyFacts) -> None:
        if facts == HEALTHY:
            self.proxy_facts.pop(key, None)
        else:
            self.proxy_facts[key] = facts

    def noted(self) -> list[str]:
        return list(self.proxy_facts)

    def forget(self, key: str) -> None:
        self.proxy_facts.pop(key, None)
        self.bans_of.pop(key, None)

    # -- sessions
    def session(self, key: str, now: float) -> Binding | None:
        return self.sessions.get(key, now)

    def set_session(self, key: str, binding: Binding) -> None:
        self.sessions.keep(key, binding)

    def bind_session(self, key: str, binding: Binding) -> Binding:
        return self.sessions.bind(key, binding)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


_NO_PACE = SitePace()
_NO_PAIRS: Mapping[str, Pair] = MappingProxyType({})


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
