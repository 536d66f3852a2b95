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
DISABLED_POLL = 1.0  # how soon to look again when the only proxies left are disabled by hand


@dataclass(slots=True, eq=False)
class Lease:
    """One request's use of one proxy; released exactly once."""

    state: ProxyState
    domain: str
    started: float
    trial: bool
    unproven: bool  # the proxy has not succeeded since it joined, came back or last failed
    released: bool = False

    @property
    def proxy(self) -> Proxy:
        return self.state.proxy


@dataclass(frozen=True, slots=True)
class Wait:
    """No proxy can take the request now; ask again in ``seconds``.

    ``unavailable``: not merely pacing; every proxy that could serve the request is
    ejected, disabled, or banned by its site (or was tried by it already).
    """

    seconds: float
    unavailable: bool = False


Group = tuple[str | None, bool]  # (region or None for all, backup tier)


class Balancer:
    """Hands out proxies for (domain, exclusions, region) and learns from outcomes.

    Rules, in order: a proxy excluded for the request, ejected, disabled, banned by the
    domain, cooling down on it, or at its slow-start limit is never handed out; backups
    serve only while every primary of the region is ejected, excluded or banned; among the
    rest the strategy chooses. The pool can change while in use (:meth:`add`,
    :meth:`remove`, :meth:`disable`, :meth:`enable`, :meth:`replace`).
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
        max_banned_sites: int = 0,
        cooldowns: CooldownStore | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock
        self.domain_cooldown = domain_cooldown
        self.max_failures = max_failures
        self.backoff = backoff
        self.ban_backoff = Backoff(ban_cooldown, max(ban_cooldown, max_hold), backoff.jitter)
        self.max_hold = max_hold
        self.max_banned_sites = max_banned_sites
        self.cooldowns: CooldownStore = cooldowns if cooldowns is not None else MemoryCooldowns()
        self.bans = MemoryCooldowns()  # (proxy, site) pairs the site refused, until when
        self.rng = rng or random.Random()
        self.strategy = strategy
        self.groups: dict[Group, Strategy] = {}
        self.states: list[ProxyState] = []  # by id; removed proxies keep their slot
        self.by_key: dict[str, ProxyState] = {}  # the proxies of the pool now
        self.region_size: Counter[str | None] = Counter()
        self.recoveries: list[tuple[float, int, int]] = []  # (until, seq, proxy id)
        self.seq = itertools.count()
        self.memberships: list[list[Strategy]] = []  # proxy id -> the strategies holding it
        self.disabled = 0
        for proxy in proxies:
            self.add(proxy)

    # -- the pool --------------------------------------------------------------------

    def add(self, proxy: Proxy) -> ProxyState:
        """Add a proxy to the pool (it starts unproven: one request at a time)."""
        if proxy.key in self.by_key:
            raise ValueError(f"{proxy} is in the pool already")
        p = ProxyState(len(self.states), proxy, Health(self.max_failures))
        self.states.append(p)
        self.memberships.append([])
        self._join(p)
        self._enter(p)
        return p

    def _join(self, p: ProxyState) -> None:
        proxy = p.proxy
        self.by_key[proxy.key] = p
        groups: list[Group] = [(None, proxy.backup)]
        self.region_size[None] += 1
        if proxy.region is not None:
            groups.append((proxy.region, proxy.backup))
            self.region_size[proxy.region] += 1
        for g in groups:
            if g not in self.groups:
                self.groups[g] = self.strategy(self.rng)
        self.memberships[p.id] = [self.groups[g] for g in groups]

    def _part(self, p: ProxyState) -> None:
        self._leave(p)
        del self.by_key[p.proxy.key]
        self.region_size[None] -= 1
        if p.proxy.region is not None:
            self.region_size[p.proxy.region] -= 1
        self.memberships[p.id] = []

    def remove(self, key: str) -> ProxyState:
        """Take a proxy out of the pool for good; requests in flight through it finish."""
        p = self._get(key)
        self._part(p)
        p.removed = True
        if p.disabled:
            self.disabled -= 1
        return p

    def disable(self, key: str) -> None:
        """Stop handing out a proxy until :meth:`enable`; it keeps its health history."""
        p = self._get(key)
        if not p.disabled:
            p.disabled = True
            self.disabled += 1
            self._leave(p)

    def enable(self, key: str) -> None:
        p = self._get(key)
        if p.disabled:
            p.disabled = False
            self.disabled -= 1
            self._enter(p)

    def replace(self, proxies: Sequence[Proxy]) -> tuple[int, int, int]:
        """Make the pool ``proxies``: add the new, remove the missing, update the changed
        (weight, region, tags, backup, password); proxies that stay keep their health.
        Returns how many were (added, removed, updated)."""
        wanted = {proxy.key: proxy for proxy in proxies}
        gone = [k for k in self.by_key if k not in wanted]
        for k in gone:
            self.remove(k)
        added = updated = 0
        for key, proxy in wanted.items():
            p = self.by_key.get(key)
            if p is None:
                self.add(proxy)
                added += 1
            elif p.proxy != proxy:
                self._part(p)
                p.proxy = proxy
                self._join(p)
                self._enter(p)
                updated += 1
        return added, len(gone), updated

    def in_rotation(self, key: str) -> bool:
        """Whether the proxy is in the pool and can be handed out (not ejected or disabled)."""
        p = self.by_key.get(key)
        return p is not None and p.in_rotation

    def _get(self, key: str) -> ProxyState:
        p = self.by_key.get(key)
        if p is None:
            raise KeyError(f"no proxy {key!r} in the pool")
        return p

    def _enter(self, p: ProxyState) -> None:
        """Put ``p`` into rotation if nothing keeps it out."""
        if p.in_rotation or p.disabled or p.removed or p.health.state is State.EJECTED:
            return
        p.in_rotation = True
        for s in self.memberships[p.id]:
            s.add(p)

    def _leave(self, p: ProxyState) -> None:
        if p.in_rotation:
            p.in_rotation = False
            for s in self.memberships[p.id]:
                s.remove(p)

    # -- leasing ---------------------------------------------------------------------

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
        banned = self.bans.until.get(domain)
        busy = False  # a candidate was free but for its slow-start limit

        def accept(p: ProxyState) -> bool:
            nonlocal busy
            if (exclude and p.proxy.key in exclude) or ready_at(p.id, domain) > now:
                return False
            if banned and banned.get(p.id, 0.0) > now:
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
            if len(s) > self._blocked(s, domain, exclude, now):
                break  # members are only busy or cooling: wait for them, spare the backups
        return self._wait(domain, exclude, region, now, busy)

    def _blocked(self, s: Strategy, domain: str, exclude: Collection[str], now: float) -> int:
        """Members of ``s`` that cannot serve this request however long it waits: tried
        by it already, or banned by ``domain``."""
        banned = self.bans.until.get(domain) and self.bans.earliest(domain, now) is not None
        if not exclude and not banned:
            return 0
        ids = {p.id for k in exclude if (p := self.by_key.get(k)) is not None and p in s}
        if banned:
            ids.update(pid for pid in self.bans.until.get(domain, ()) if self.states[pid] in s)
        return len(ids)

    def _lease(self, p: ProxyState, domain: str, now: float) -> Lease:
        trial = p.health.state is State.TRIAL
        p.in_flight += 1
        p.metrics.requests += 1
        for s in self.memberships[p.id]:
            s.on_acquire(p)
        if self.domain_cooldown:
            self.cooldowns.hold(p.id, domain, now + self.domain_cooldown, now)
        return Lease(p, domain, now, trial, p.health.ramp == 0)

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
        usable = sum(len(s) - self._blocked(s, domain, exclude, now)
                     for backup in (False, True) if (s := self.groups.get((region, backup))))
        ban_end = self.bans.earliest(domain, now) if domain in self.bans.until else None
        delays = [t - now for t in (self.cooldowns.earliest(domain, now), ban_end, self._next_recovery()) if t]
        if busy:  # on trial, ramping up, or still finishing pre-ejection requests
            delays.append(BUSY_POLL)
        if not delays and self.disabled:
            delays.append(DISABLED_POLL)
        if not delays:
            raise NoProxyAvailable(f"no proxy{self._in(region)} can serve {domain}")
        return Wait(max(MIN_WAIT, min(delays)), unavailable=usable <= 0)

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
        reason: str = "",
    ) -> float | None:
        """Record how a leased request went (``reason`` says what went wrong, for
        reports). Returns the ejection time if it ejected the proxy.

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
            if p.bans:
                p.bans.pop(lease.domain, None)  # the site takes it again: forget its ban level
        elif outcome is Outcome.FAILURE:
            m.failures += 1
            m.observe_outcome(False)
            p.problem = reason
            ejected = p.health.record_failure(now, self.backoff, self.rng)
        elif outcome is Outcome.BAN:
            m.bans += 1
            m.observe_outcome(False)
            p.problem = f"{reason} from {lease.domain}" if reason else f"banned by {lease.domain}"
            ejected = self._ban(p, lease.domain, now, retry_after)
        if ejected is not None:
            self._leave(p)
            heapq.heappush(self.recoveries, (p.health.ejected_until, next(self.seq), p.id))
        elif p.in_rotation:
            for s in self.memberships[p.id]:
                s.on_release(p)
        return ejected

    def _ban(self, p: ProxyState, domain: str, now: float, retry_after: float | None) -> float | None:
        """Keep ``p`` off ``domain``: as long as the site asked, else for a ban cooldown that
        doubles with each ban in a row there (jittered); eject ``p`` when too many sites ban it."""
        if p.bans is None:
            p.bans = {}
        level = p.bans.get(domain, (0.0, 0))[1] + 1
        if retry_after is not None:
            hold = min(retry_after, self.max_hold)
        else:
            hold = self.ban_backoff.delay(level, self.rng)
        p.bans[domain] = (now + hold, level)
        if hold > 0:
            self.bans.hold(p.id, domain, now + hold, now)
        if self.max_banned_sites and p.banned_sites(now) >= self.max_banned_sites:
            if p.health.state is not State.EJECTED:
                p.problem = f"banned by {p.banned_sites(now)} sites"
                return p.health.eject(now, self.backoff, self.rng, for_bans=True)
        return None

    def record_check(self, key: str, ok: bool, rise: int, fall: int, reason: str = "") -> str | None:
        """An active health check of proxy ``key`` passed or failed. An ejected proxy that
        passed ``rise`` in a row comes back on trial before its backoff ends; one in rotation
        that failed ``fall`` in a row is ejected. Returns ``"revived"``, ``"ejected"`` or None."""
        p = self.by_key.get(key)
        if p is None:
            return None
        verdict = p.health.record_check(ok, rise, fall)
        if verdict == "revive":
            p.health.revive()
            self._enter(p)
            return "revived"
        if verdict == "eject":
            p.problem = f"failed {fall} health check(s): {reason}" if reason else f"failed {fall} health check(s)"
            p.health.eject(self.clock(), self.backoff, self.rng)
            self._leave(p)
            heapq.heappush(self.recoveries, (p.health.ejected_until, next(self.seq), p.id))
            return "ejected"
        return None

    def _revive_due(self, now: float) -> None:
        while self.recoveries and self.recoveries[0][0] <= now:
            until, _, pid = heapq.heappop(self.recoveries)
            p = self.states[pid]
            if p.health.state is State.EJECTED and p.health.ejected_until == until:
                p.health.revive()
                self._enter(p)

    # -- reports ---------------------------------------------------------------------

    def degraded(self, region: str | None = None) -> bool:
        """Fewer than half the proxies of the region are in rotation (Envoy's panic
        threshold): failures now say more about the pool than about a request."""
        live = sum(len(s) for backup in (False, True) if (s := self.groups.get((region, backup))))
        return 2 * live < self.region_size[region]

    def state_counts(self) -> Counter[str]:
        """How many proxies are healthy, ejected and on trial (O(n): for reports only)."""
        self._revive_due(self.clock())
        return Counter(p.health.state.value for p in self.by_key.values())

    def why_out(self, domain: str, region: str | None = None, limit: int = 20) -> list[str]:
        """Why each proxy of the region cannot serve ``domain`` now, one line per proxy
        (at most ``limit``; O(n): for the log when the pool is unavailable)."""
        now = self.clock()
        lines = []
        for p in self.by_key.values():
            if region is not None and p.proxy.region != region:
                continue
            ban = (p.bans or {}).get(domain)
            if p.disabled:
                why = "disabled"
            elif p.health.state is State.EJECTED:
                why = (f"ejected for {p.health.ejected_until - now:.0f} s more after"
                       f" {p.health.ejections} ejection(s)")
            elif ban and ban[0] > now:
                why = f"banned by {domain} for {ban[0] - now:.0f} s more"
            else:
                why = p.health.state.value
            lines.append(f"{p.proxy}: {why}" + (f" (last: {p.problem})" if p.problem else ""))
        return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])
