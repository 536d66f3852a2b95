"""The state store: everything processes sharing a pool must agree on, behind one protocol.

What lives here: per (proxy, site) pair its requests in flight, when it may be used again
(its cooldown) and its ban (until when, how many in a row); per site its learned pace; per
proxy its :class:`~.ejection.ProxyFacts` (failures, ejection and its deadline, checks,
disabled); per sticky session its binding; changes to the pool made at run time. What stays
per process, in :class:`~.state.ProxyState`: requests in flight per proxy, concurrency limits
and latency estimates.

:class:`StateStore` is the protocol the balancer reads and writes through, and only through
it (as ``limits`` keeps rate-limit storage apart from policy); :class:`MemoryStore` keeps
it in this process. Times are this process's clock; a shared store converts.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .ejection import HEALTHY, ProxyFacts
from .pace import SitePace
from .sessions import IDLE_EXPIRY, Binding

Listener = Callable[[str], None]  # called with the key of a proxy whose facts changed elsewhere
PoolChangeListener = Callable[[str, str], None]  # called with ("add", a pool entry as JSON) or ("remove", a proxy key)


class StateStore(Protocol):
    # -- (proxy, site) pairs
    def pair_free_at(self, key: str, site: str, now: float, limit: int, gap: float) -> float:
        """When the pair may take one more request: ``-inf`` if now (fewer than ``limit`` in
        flight, ``gap`` seconds since its last answer, not paused, not banned), ``inf`` if
        only a request ending frees it, else when that gap, its pause or its ban ends."""

    def take(self, key: str, site: str, now: float, lease: int) -> None:
        """One more request (lease number ``lease``) in flight through the pair."""

    def give_back(self, key: str, site: str, now: float, gap: float, lease: int,
                  hold_until: float = -math.inf) -> None:
        """Lease ``lease`` through the pair was answered at ``now``: the site's ``gap`` (now)
        counts from here; with ``hold_until``, the pair also pauses until then (``Retry-After``)."""

    def untake(self, key: str, site: str, lease: int) -> None:
        """Lease ``lease`` was never used (its request went through another pair)."""

    async def claim(self, site: str, keys: Sequence[str], lease: int, limit: int, gap: float) -> str | None:
        """Take, at once for every process sharing the pool, the first of ``keys`` whose pair
        with ``site`` is free (``limit`` in flight, ``gap`` since its last answer, no pause or
        ban, the proxy not ejected), for lease ``lease``; this process has taken ``keys[0]``
        already. Returns the key taken, or ``None`` if none was free (then the store's view
        of them is brought up to date). The one round trip a request costs a shared store."""

    def ban(self, key: str, site: str, now: float, until: float, level: int) -> None:
        """The site refused the proxy: keep the pair off until ``until`` (never shortens a hold)."""

    def unban(self, key: str, site: str) -> None:
        """The site took the proxy again: forget its ban level there."""

    def ban_of(self, key: str, site: str) -> tuple[float, int]:
        """The pair's ban: (until, bans in a row); (-inf, 0) when none."""

    def soonest(self, site: str, now: float, gap: float) -> float | None:
        """The soonest time after ``now`` that a pair of ``site`` waiting out its gap, its
        pause or its ban frees up."""

    def banned(self, site: str, now: float) -> list[str]:
        """The proxies ``site`` bans at ``now``."""

    def banned_sites(self, key: str, now: float) -> list[str]:
        """The sites that ban proxy ``key`` at ``now``."""

    def remember_answers(self, seconds: float) -> None:
        """A site's gap can grow to ``seconds``: keep each pair's last answer that long."""

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

    def share_pool_change(self, action: str, value: str) -> None:
        """This process added a proxy (``value``: its entry as JSON) or removed one (its key)."""

    def subscribe_pool(self, listener: PoolChangeListener) -> None:
        """Call ``listener(action, value)`` when another process changes the pool."""

    # -- sessions
    def session(self, key: str, now: float) -> Binding | None:
        """A session's binding (``None`` if it has none, or went unused too long)."""

    def set_session(self, key: str, binding: Binding) -> None:
        """Record a session's binding (its counts, its move)."""

    def bind_session(self, key: str, binding: Binding) -> Binding:
        """Bind a session to ``binding.proxy`` unless a binding of that generation exists
        already (another process bound it first): returns the binding that holds."""

    async def start(self) -> None:
        """Begin (once the event loop runs): a shared store connects and starts keeping in step."""

    async def close(self) -> None:
        """End: a shared store writes what is left and disconnects."""


@dataclass(slots=True)
class _Pair:
    busy: int = 0
    answered: float = -math.inf  # the last answer through the pair
    hold: float = -math.inf  # paused until then (Retry-After)
    fleet: float = -math.inf  # held by another process until then, as the shared store last said
    ban_until: float = -math.inf
    ban_level: int = 0


class MemoryStore:
    """The store in this process's memory.

    Per site, a dict of pairs and heaps of their last answers and of pause and ban ends,
    expired lazily, so memory follows the pairs in use, answered lately, paused or banned, not
    pool size times sites. A site's gap is applied when asked, so a site that slows down holds
    every pair to the new gap at once: a pair's last answer is kept as long as a gap can grow
    to (:meth:`remember_answers`).
    """

    def __init__(self) -> None:
        self.pairs: dict[str, dict[str, _Pair]] = {}
        self.memory = 60.0  # seconds a pair's last answer is kept (the longest gap)
        self.recent: dict[str, list[tuple[float, str]]] = {}  # site -> heap of (answered, proxy) within its gap
        self.answers: dict[str, list[tuple[float, str]]] = {}  # site -> heap of (answered, proxy) within memory
        self.holds: dict[str, list[tuple[float, str]]] = {}  # site -> heap of (pause or ban end, proxy)
        self.bans: dict[str, dict[str, float]] = {}  # site -> proxy -> ban end (for `banned`)
        self.bans_of: dict[str, dict[str, float]] = {}  # proxy -> site -> ban end (`banned_sites`)
        self.paces: dict[str, SitePace] = {}
        self.proxy_facts: dict[str, ProxyFacts] = {}
        self.sessions: dict[str, Binding] = {}
        self.session_expiry: list[tuple[float, str]] = []  # (when it may expire, session), lazily

    # -- pairs
    def pair_free_at(self, key: str, site: str, now: float, limit: int, gap: float) -> float:
        pairs = self.pairs.get(site)
        pair = pairs.get(key) if pairs else None
        if pair is None:
            return -math.inf
        held = max(pair.answered + gap, pair.hold, pair.ban_until, pair.fleet)
        if held > now:
            return held
        return math.inf if pair.busy >= limit else -math.inf

    def take(self, key: str, site: str, now: float, lease: int) -> None:
        self._pair(key, site).busy += 1

    def untake(self, key: str, site: str, lease: int) -> None:
        pairs = self.pairs.get(site)
        pair = pairs.get(key) if pairs else None
        if pair is not None:
            pair.busy = max(0, pair.busy - 1)

    async def claim(self, site: str, keys: Sequence[str], lease: int, limit: int, gap: float) -> str | None:
        return keys[0]  # this process is the whole fleet: its own pick stands

    def give_back(self, key: str, site: str, now: float, gap: float, lease: int,
                  hold_until: float = -math.inf) -> None:
        pair = self._pair(key, site)
        pair.busy = max(0, pair.busy - 1)
        pair.answered = now
        if gap > 0:
            recent = self.recent.setdefault(site, [])
            heapq.heappush(recent, (now, key))
            while recent[0][0] + gap <= now:  # the heap holds only the last gap's answers
                heapq.heappop(recent)
        answers = self.answers.setdefault(site, [])
        heapq.heappush(answers, (now, key))
        while answers[0][0] + self.memory <= now:  # amortized: forget pairs answered long ago
            answered, other = heapq.heappop(answers)
            held = self.pairs.get(site, {}).get(other)
            if held is not None and held.answered == answered:
                self._tidy(site, other, held, now)
        if len(answers) > 1024 + 4 * len(self.pairs.get(site, ())):  # a long memory: drop superseded answers
            answers[:] = [(held.answered, other) for other, held in self.pairs.get(site, {}).items()]
            heapq.heapify(answers)
        if hold_until > pair.hold:
            pair.hold = hold_until
            heapq.heappush(self.holds.setdefault(site, []), (hold_until, key))
        if site in self.pairs and key in self.pairs[site]:
            self._tidy(site, key, pair, now)

    def ban(self, key: str, site: str, now: float, until: float, level: int) -> None:
        pair = self._pair(key, site)
        pair.ban_level = max(pair.ban_level, level)
        if until > pair.ban_until:
            pair.ban_until = until
            self.bans.setdefault(site, {})[key] = until
            self.bans_of.setdefault(key, {})[site] = until
            heapq.heappush(self.holds.setdefault(site, []), (until, key))
        self._tidy(site, key, pair, now)

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
        recent = self.recent.get(site)
        while recent:  # the earliest answer still within its gap (answers share the site's gap)
            answered, key = recent[0]
            pair = pairs.get(key)
            if pair is not None and pair.answered == answered and answered + gap > now:
                ends.append(answered + gap)
                break
            heapq.heappop(recent)
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
        if recent is not None and not recent:
            del self.recent[site]
        if holds is not None and not holds:
            del self.holds[site]
        return min(ends) if ends else None

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

    def _tidy(self, site: str, key: str, pair: _Pair, now: float) -> None:
        """Drop a pair that holds nothing any more (a ban level stays until a success)."""
        if (not pair.busy and pair.answered + self.memory <= now and max(pair.hold, pair.ban_until, pair.fleet) <= now
                and not pair.ban_level):
            del self.pairs[site][key]
            if not self.pairs[site]:
                del self.pairs[site]

    def remember_answers(self, seconds: float) -> None:
        self.memory = seconds

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

    def share_pool_change(self, action: str, value: str) -> None:
        pass

    def subscribe_pool(self, listener: PoolChangeListener) -> None:
        pass

    # -- sessions
    def session(self, key: str, now: float) -> Binding | None:
        self._expire_sessions(now)
        return self.sessions.get(key)

    def set_session(self, key: str, binding: Binding) -> None:
        self._keep_session(key, binding)

    def bind_session(self, key: str, binding: Binding) -> Binding:
        current = self.sessions.get(key)
        if current is not None and (current.proxy or current.generation != binding.generation):
            return current
        self._keep_session(key, binding)
        return binding

    def _keep_session(self, key: str, binding: Binding) -> None:
        if key not in self.sessions:
            heapq.heappush(self.session_expiry, (binding.used + IDLE_EXPIRY, key))
        self.sessions[key] = binding

    def _expire_sessions(self, now: float) -> None:
        expiry = self.session_expiry
        while expiry and expiry[0][0] <= now:
            _, key = heapq.heappop(expiry)
            binding = self.sessions.get(key)
            if binding is not None:
                if binding.used + IDLE_EXPIRY <= now:
                    del self.sessions[key]
                else:
                    heapq.heappush(expiry, (binding.used + IDLE_EXPIRY, key))

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


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
