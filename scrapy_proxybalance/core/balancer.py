"""acquire/release: a strategy composed with health, domain cooldowns and exclusions."""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from .bans import Outcome
from .clock import Clock, monotonic
from .cooldown import CooldownStore, MemoryCooldowns
from .errors import NoProxyAvailable
from .health import Backoff, Health, State
from .proxy import Proxy
from .state import ProxyState
from .strategies import Strategy

MIN_WAIT = 0.01  # never ask a request to wait less than this (seconds)
BUSY_POLL = 0.1  # how soon to look again when the only candidates are at their slow-start limit


@dataclass(slots=True, eq=False)
class Lease:
    """One request's use of one proxy; released exactly once."""

    state: ProxyState
    domain: str
    started: float
    trial: bool
    released: bool = False

    @property
    def proxy(self) -> Proxy:
        return self.state.proxy


@dataclass(frozen=True, slots=True)
class Wait:
    """No proxy can take the request now; ask again in ``seconds``."""

    seconds: float


Group = tuple[str | None, bool]  # (region or None for all, backup tier)


class Balancer:
    """Hands out proxies for (domain, exclusions, region) and learns from outcomes.

    Rules, in order: a proxy excluded for the request, ejected, cooling down on the
    domain, or at its slow-start limit (one request while on trial) is never handed out;
    backups serve only while every primary of the region is ejected or excluded; among the
    rest the strategy chooses.
    """

    def __init__(
        self,
        proxies: Sequence[Proxy],
        strategy: Callable[[random.Random], Strategy],
        *,
        clock: Clock = monotonic,
        domain_cooldown: float = 1.0,
        max_failures: int = 3,
        backoff: Backoff = Backoff(60.0, 1800.0),
        ban_cooldown: float = 60.0,
        max_hold: float = 1800.0,
        cooldowns: CooldownStore | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock
        self.domain_cooldown = domain_cooldown
        self.backoff = backoff
        self.ban_cooldown = ban_cooldown
        self.max_hold = max_hold
        self.cooldowns: CooldownStore = cooldowns if cooldowns is not None else MemoryCooldowns()
        self.rng = rng or random.Random()
        self.strategy = strategy
        self.groups: dict[Group, Strategy] = {}
        self.states: list[ProxyState] = []
        self.by_key: dict[str, ProxyState] = {}
        self.region_size: Counter[str | None] = Counter()
        self.recoveries: list[tuple[float, int, int]] = []  # (until, seq, proxy id)
        self.seq = itertools.count()
        self.memberships: list[list[Strategy]] = []  # proxy id -> the strategies holding it
        for proxy in proxies:
            p = ProxyState(len(self.states), proxy, Health(max_failures))
            self.states.append(p)
            self.by_key[proxy.key] = p
            self.region_size[None] += 1
            if proxy.region is not None:
                self.region_size[proxy.region] += 1
            groups: list[Group] = [(None, proxy.backup)]
            if proxy.region is not None:
                groups.append((proxy.region, proxy.backup))
            for g in groups:
                if g not in self.groups:
                    self.groups[g] = strategy(self.rng)
            strategies = [self.groups[g] for g in groups]
            self.memberships.append(strategies)
            for s in strategies:
                s.add(p)

    def acquire(
        self, domain: str, exclude: Collection[str] = (), region: str | None = None
    ) -> Lease | Wait:
        """Lease a proxy for a request to ``domain``, or say how long to wait.

        ``exclude`` holds proxy keys the request already tried. Raises
        :class:`NoProxyAvailable` when no proxy can ever serve it.
        """
        now = self.clock()
        self._revive_due(now)
        ready_at = self.cooldowns.ready_at
        busy = False  # a candidate was free but for its slow-start limit

        def accept(p: ProxyState) -> bool:
            nonlocal busy
            if (exclude and p.proxy.key in exclude) or ready_at(p.id, domain) > now:
                return False
            if not p.can_take_request():
                busy = True
                return False
            return True

        for backup in (False, True):
            s = self.groups.get((region, backup))
            if s is None or not len(s):
                continue
            p = s.pick(accept)
            if p is not None:
                return self._lease(p, domain, now)
            if len(s) > self._excluded_in(s, exclude):
                break  # members are only busy or cooling: wait for them, spare the backups
        return self._wait(domain, exclude, region, now, busy)

    def _excluded_in(self, s: Strategy, exclude: Collection[str]) -> int:
        return sum(1 for k in exclude if (p := self.by_key.get(k)) is not None and p in s)

    def _lease(self, p: ProxyState, domain: str, now: float) -> Lease:
        trial = p.health.state is State.TRIAL
        p.in_flight += 1
        p.metrics.requests += 1
        for s in self.memberships[p.id]:
            s.on_acquire(p)
        if self.domain_cooldown:
            self.cooldowns.hold(p.id, domain, now + self.domain_cooldown, now)
        return Lease(p, domain, now, trial)

    def touch(self, lease: Lease) -> None:
        """The leased request is being sent only now: its domain cooldown counts from now."""
        if self.domain_cooldown and not lease.released:
            now = self.clock()
            self.cooldowns.hold(lease.state.id, lease.domain, now + self.domain_cooldown, now)

    def _wait(self, domain: str, exclude: Collection[str], region: str | None, now: float, busy: bool) -> Wait:
        size = self.region_size[region]
        if not size:
            raise NoProxyAvailable(f"no proxy in region {region!r}")
        tried = sum(1 for k in exclude if (p := self.by_key.get(k)) and region in (None, p.proxy.region))
        if tried >= size:
            raise NoProxyAvailable(f"all {size} proxies{self._in(region)} were tried already")
        delays = [t - now for t in (self.cooldowns.earliest(domain, now), self._next_recovery()) if t]
        if busy:  # on trial, ramping up, or still finishing pre-ejection requests
            delays.append(BUSY_POLL)
        if not delays:
            raise NoProxyAvailable(f"no proxy{self._in(region)} can serve {domain}")
        return Wait(max(MIN_WAIT, min(delays)))

    @staticmethod
    def _in(region: str | None) -> str:
        return f" in region {region!r}" if region else ""

    def _next_recovery(self) -> float | None:
        return self.recoveries[0][0] if self.recoveries else None

    def release(
        self,
        lease: Lease,
        outcome: Outcome,
        latency: float | None = None,
        retry_after: float | None = None,
    ) -> float | None:
        """Record how a leased request went. Returns the ejection time if it ejected the proxy.

        Releasing a lease twice is a no-op, so every path that ends a request may release.
        """
        if lease.released:
            return None
        lease.released = True
        now = self.clock()
        p, m = lease.state, lease.state.metrics
        p.in_flight -= 1
        if latency is not None and outcome is Outcome.SUCCESS:
            m.observe_latency(latency, now)
        ejected = None
        if outcome is Outcome.SUCCESS:
            m.successes += 1
            m.observe_outcome(True)
            p.health.record_success()
        elif outcome is Outcome.FAILURE:
            m.failures += 1
            m.observe_outcome(False)
            ejected = p.health.record_failure(now, self.backoff, self.rng)
        elif outcome is Outcome.BAN:
            m.bans += 1
            m.observe_outcome(False)
            hold = retry_after if retry_after is not None else self.ban_cooldown
            self.cooldowns.hold(p.id, lease.domain, now + min(hold, self.max_hold), now)
        strategies = self.memberships[p.id]
        if ejected is not None:
            for s in strategies:
                s.remove(p)
            heapq.heappush(self.recoveries, (p.health.ejected_until, next(self.seq), p.id))
        else:
            for s in strategies:
                s.on_release(p)
        return ejected

    def _revive_due(self, now: float) -> None:
        while self.recoveries and self.recoveries[0][0] <= now:
            until, _, pid = heapq.heappop(self.recoveries)
            p = self.states[pid]
            if p.health.state is State.EJECTED and p.health.ejected_until == until:
                p.health.revive()
                for s in self.memberships[p.id]:
                    s.add(p)

    def state_counts(self) -> Counter[str]:
        """How many proxies are healthy, ejected and on trial (O(n): for reports only)."""
        self._revive_due(self.clock())
        return Counter(p.health.state.value for p in self.states)
