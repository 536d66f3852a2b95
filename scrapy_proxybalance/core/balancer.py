"""acquire/release: a strategy composed with health, pair limits and pace, bans, and panic.

A proxy is handed out for a request to a site only if it is in rotation (not ejected,
disabled or removed), below its concurrency limit, not excluded by the request (tried
already), and its (proxy, site) pair is open: not banned, not within the site's gap since
its last answer there, and below the pair's limit (one at a time while the gap is above 0).
Backups serve only while every primary of the region is ejected, excluded or banned. Among
the rest the strategy chooses. In panic (under half the region in rotation, Envoy's
threshold) an ejected proxy gets one probe request every :data:`PROBE_INTERVAL`; so do the
proxies that were out when the panic began or went out during it, until they answer a probe
(a blackout costs only its length), unless one fails a probe once the pool is back above
half (then it keeps its backoff, like any proxy failing while the rest works).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace

from .clock import Clock, monotonic
from .ejection import (
    FORGIVE_AFTER,
    CheckVerdict,
    ProxyFacts,
    State,
    after_check,
    after_failure,
    after_success,
    eject,
    forgive,
    revive,
)
from .errors import DuplicateProxy, NoProxyAvailable, UnknownProxy
from .gateways import Gateways
from .leases import Ask, Lease, Released, Wait
from .outcomes import Outcome
from .pace import FIRST_STEP
from .proxy import Proxy, mask
from .rules import Rules
from .sessions import Sessions
from .state import ProxyState
from .store import MemoryStore, StateStore
from .strategies import Strategy

MIN_WAIT = 0.01  # never ask a request to wait less than this (seconds)
RELEASE_POLL = 0.5  # waiting for a release (capacity): look again at least this often
DISABLED_POLL = 1.0  # only disabled proxies left: look again this often
PROBE_INTERVAL = 1.0  # in panic, an ejected proxy gets one probe request this often


class PoolListener:
    """Told of changes in the pool's health, from one place (stats, logs, status pages)."""

    def ejected(self, state: ProxyState, facts: ProxyFacts, seconds: float) -> None: ...

    def revived(self, state: ProxyState, how: str) -> None: ...

    def session_bound(self, session: str, state: ProxyState, generation: int) -> None: ...

    def session_moved(self, session: str, reason: str) -> None: ...

    def session_renewed(self, session: str) -> None:
        """A moved session's new binding answered: its older requests may go."""

    def slowed(self, site: str, gap: float) -> None:
        """Rate limits from ``site``: each proxy now keeps ``gap`` seconds between requests there."""


Group = tuple[str | None, bool]  # (region or None for all, backup tier)


@dataclass(slots=True)
class _Blocked:
    """What stopped candidates during one pick, for the wait that follows."""

    busy: bool = False  # a proxy at its concurrency limit
    pair_busy: bool = False  # a pair at its limit in flight
    held: bool = False  # a pair cooling down or banned


class Balancer:
    """Hands out proxies for requests and learns from their outcomes.

    Shared facts go through ``store``; this process keeps in-flight counts, limits and
    latencies. The pool can change while in use (:meth:`add`, :meth:`remove`,
    :meth:`disable`, :meth:`enable`, :meth:`replace`).
    """

    def __init__(
        self,
        proxies: Sequence[Proxy],
        strategy: Callable[[random.Random], Strategy],
        rules: Rules,
        *,
        store: StateStore | None = None,
        clock: Clock = monotonic,
        rng: random.Random | None = None,
        listener: PoolListener | None = None,
    ) -> None:
        self.rules = rules
        self.clock = clock
        self.store: StateStore = store if store is not None else MemoryStore()
        self.rng = rng or random.Random()
        self.listener = listener or PoolListener()
        self.strategy = strategy
        self.groups: dict[Group, Strategy] = {}
        self.states: list[ProxyState] = []  # by id; removed proxies keep their slot
        self.by_key: dict[str, ProxyState] = {}  # the proxies of the pool now
        self.region_size: Counter[str | None] = Counter()
        self.memberships: list[list[Strategy]] = []  # proxy id -> the strategies holding it
        self.recoveries: list[tuple[float, int, int]] = []  # (ejected until, seq, proxy id)
        self.probes: list[tuple[float, int, int]] = []  # (next probe due, seq, proxy id), ejected ones
        self.panicked: set[int] = set()  # proxies out in a panic: probed until they answer
        self.seq = itertools.count()
        self.lease_numbers = itertools.count()
        self.disabled = 0
        self.sessions = Sessions(self, rules.sessions)
        self.gateways = Gateways(self)
        self.store.remember_answers(max(rules.cooldown, rules.cooldown_max))
        self.store.subscribe(self._changed_elsewhere)
        for proxy in proxies:
            self.add(proxy)

    # -- the pool --------------------------------------------------------------------

    def add(self, proxy: Proxy) -> ProxyState | None:
        """Add a proxy to the pool (it starts unproven: one request at a time), or a session
        gateway's template (it makes its identities as they are needed)."""
        if proxy.key in self.by_key or proxy.key in self.gateways.by_key:
            raise DuplicateProxy(f"{proxy} is in the pool already")
        if proxy.sessions:
            self.gateways.add(proxy)
            return None
        return self._add_proxy(proxy)

    def _add_proxy(self, proxy: Proxy) -> ProxyState:
        p = ProxyState(len(self.states), proxy, proxy.key)
        self.states.append(p)
        self.memberships.append([])
        self._join(p)
        self._sync(p, self.clock())
        return p

    def _join(self, p: ProxyState) -> None:
        proxy = p.proxy
        self.by_key[p.key] = p
        groups: list[Group] = [(None, proxy.backup)]
        self.region_size[None] += 1
        if proxy.region is not None:
            groups.append((proxy.region, proxy.backup))
            self.region_size[proxy.region] += 1
        for g in groups:
            if g not in self.groups:
                self.groups[g] = self.strategy(self.rng)
        self.memberships[p.id] = [self.groups[g] for g in groups]
        if self.store.facts(p.key).disabled:
            self.disabled += 1

    def _part(self, p: ProxyState) -> None:
        self._leave(p)
        del self.by_key[p.key]
        self.region_size[None] -= 1
        if p.proxy.region is not None:
            self.region_size[p.proxy.region] -= 1
        self.memberships[p.id] = []
        if self.store.facts(p.key).disabled:
            self.disabled -= 1

    def remove(self, key: str) -> None:
        """Take a proxy (or a gateway's template, with its identities) out of the pool for
        good; requests in flight through it finish."""
        if key in self.gateways.by_key:
            self.gateways.remove(key)
            return
        p = self._get(key)
        self._part(p)
        p.removed = True
        self.panicked.discard(p.id)
        self.store.forget(key)

    def disable(self, key: str) -> None:
        """Stop handing out a proxy until :meth:`enable`; it keeps its health history."""
        p = self._get(key)
        facts = self.store.facts(key)
        if not facts.disabled:
            self.disabled += 1
            self._set_facts(p, facts, _with(facts, disabled=True), self.clock())

    def enable(self, key: str) -> None:
        p = self._get(key)
        facts = self.store.facts(key)
        if facts.disabled:
            self.disabled -= 1
            self._set_facts(p, facts, _with(facts, disabled=False), self.clock())

    def replace(self, proxies: Sequence[Proxy]) -> tuple[int, int, int]:
        """Make the pool ``proxies``: add the new, remove the missing, update the changed
        (weight, region, backup, name, password); proxies that stay keep their health.
        Returns how many were (added, removed, updated)."""
        wanted = {proxy.key: proxy for proxy in proxies}
        present = {k: p.proxy for k, p in self.by_key.items() if not p.proxy.gateway}
        present.update((t.key, t) for t in self.gateways.templates())
        gone = [k for k in present if k not in wanted]
        for k in gone:
            self.remove(k)
        added = updated = 0
        for key, proxy in wanted.items():
            if key not in present:
                self.add(proxy)
                added += 1
            elif present[key] != proxy:
                for p, new in self.gateways.update(proxy) if proxy.sessions else [(self.by_key[key], proxy)]:
                    self._part(p)
                    p.proxy = new
                    self._join(p)
                    self._sync(p, self.clock())
                updated += 1
        return added, len(gone), updated

    def in_rotation(self, key: str) -> bool:
        """Whether the proxy is in the pool and can be handed out (not ejected or disabled)."""
        p = self.by_key.get(key)
        return p is not None and p.in_rotation

    def _get(self, key: str) -> ProxyState:
        p = self.by_key.get(key)
        if p is None:
            raise UnknownProxy(f"no proxy {key!r} in the pool")
        return p

    def _sync(self, p: ProxyState, now: float) -> None:
        """Put ``p`` in rotation or take it out, as its facts say."""
        facts = self.store.facts(p.key)
        out = p.removed or facts.disabled or facts.state(now) is State.EJECTED
        if out and p.in_rotation:
            p.in_rotation = False
            for s in self.memberships[p.id]:
                s.remove(p)
        elif not out and not p.in_rotation and p.key in self.by_key:
            p.in_rotation = True
            for s in self.memberships[p.id]:
                s.add(p)

    def _leave(self, p: ProxyState) -> None:
        if p.in_rotation:
            p.in_rotation = False
            for s in self.memberships[p.id]:
                s.remove(p)

    def _set_facts(self, p: ProxyState, old: ProxyFacts, new: ProxyFacts, now: float, how: str = "") -> None:
        """Write new facts, tell the listener of an ejection or a return, and follow them:
        the one place where ejections and returns happen."""
        if new == old:
            return
        self.store.set_facts(p.key, new)
        was_out, is_out = old.ejected_until > now, new.ejected_until > now
        if is_out and new.ejected_until != old.ejected_until:
            heapq.heappush(self.recoveries, (new.ejected_until, next(self.seq), p.id))
        if is_out and not was_out:
            heapq.heappush(self.probes, (now + PROBE_INTERVAL, next(self.seq), p.id))
            p.limit.restart()
            p.streak = 0
            self.listener.ejected(p, new, new.ejected_until - now)
        elif was_out and not is_out:
            p.limit.restart()
            self.panicked.discard(p.id)
            self.listener.revived(p, how)
        self._sync(p, now)
        if is_out and not was_out:
            self._note_panic(p, now)

    def _note_panic(self, p: ProxyState, now: float) -> None:
        """``p`` went out: if the pool is in panic, it is probed until it answers, and so is
        every proxy already out when the panic began."""
        if not self._pool_panicking(p):
            return
        if not self.panicked:
            for q in self.by_key.values():
                facts = self.store.facts(q.key)
                if not q.in_rotation and facts.ejected_until > now and not facts.for_bans:
                    self.panicked.add(q.id)
        if not self.store.facts(p.key).for_bans:
            self.panicked.add(p.id)

    def _pool_panicking(self, p: ProxyState) -> bool:
        region = p.proxy.region
        return self.degraded(None) or (region is not None and self.degraded(region))

    def _changed_elsewhere(self, key: str) -> None:
        """Another process changed a proxy's facts: follow them."""
        p = self.by_key.get(key)
        if p is not None:
            now = self.clock()
            facts = self.store.facts(key)
            was_in = p.in_rotation
            if facts.ejected_until > now:
                heapq.heappush(self.recoveries, (facts.ejected_until, next(self.seq), p.id))
                heapq.heappush(self.probes, (now + PROBE_INTERVAL, next(self.seq), p.id))
            self._sync(p, now)
            if was_in and not p.in_rotation and facts.ejected_until > now:
                self._note_panic(p, now)
            elif p.in_rotation:
                self.panicked.discard(p.id)

    # -- leasing ---------------------------------------------------------------------

    def gap(self, site: str, now: float) -> float:
        """The gap each proxy keeps between two requests to ``site`` (its learned pace)."""
        return self.store.pace(site).at(now, self.rules.cooldown)

    def acquire(self, ask: Ask, alternates: int = 0) -> Lease | Wait:
        """Lease a proxy for a request, or say how long to wait. Raises
        :class:`NoProxyAvailable` when no proxy can ever serve it. With ``alternates``, the
        lease also names up to that many other proxies that could serve it now (a shared
        store claims the first of them still free for the whole fleet). A request of a
        sticky session goes through the session's proxy (see :mod:`.sessions`)."""
        now = self.clock()
        self._revive_due(now)
        if ask.session is not None:
            return self.sessions.acquire(ask, now)
        return self._acquire(ask, now, alternates)

    def _acquire(self, ask: Ask, now: float, alternates: int = 0, only: ProxyState | None = None,
                 spread: tuple[Counter[int], float] | None = None, sound: bool = False) -> Lease | Wait:
        """The rules of the module's docstring. ``only``: that proxy or none (a session's);
        ``spread``: (sessions per proxy, most allowed): binding a session (never to a probe),
        pass over proxies holding more; ``sound``: pass over proxies whose last answer was a
        failure (they may be dying)."""
        site, exclude, region = ask.site, ask.tried, ask.region
        gap = self.gap(site, now)
        limit = 1 if gap > 0 else self.rules.pair_limit or 1 << 30
        pair_free_at, facts = self.store.pair_free_at, self.store.facts
        blocked = _Blocked()

        def accept(p: ProxyState) -> bool:
            if (exclude and p.key in exclude) or (only is not None and p is not only):
                return False
            if spread is not None and spread[0][p.id] > spread[1]:
                return False
            if sound and facts(p.key).failures:
                return False
            free_at = pair_free_at(p.key, site, now, limit, gap)
            if free_at > now:
                if free_at == math.inf:
                    blocked.pair_busy = True
                else:
                    blocked.held = True
                return False
            if p.in_flight >= p.limit.allowed:
                blocked.busy = True
                return False
            return True

        if only is not None:
            if only.in_rotation and accept(only):
                return self._lease(only, ask, now)
            return self._wait(ask, now, blocked, gap)
        if self.probes and spread is None and (self.panicked or self._panicking(region)):
            probe = self._probe(ask, now, limit, self._panicking(region))
            if probe is not None:
                return probe
        for backup in (False, True):
            s = self.groups.get((region, backup))
            if s is None or not len(s):
                continue
            p = s.pick(accept)
            if p is not None:
                lease = self._lease(p, ask, now)
                if alternates:
                    lease.alternates = self._alternates(s, accept, p, alternates)
                return lease
            if len(s) > self._blocked(s, site, exclude, now):
                break  # members are only busy or cooling: wait for them, spare the backups
        if self.gateways and spread is None:
            grown = self.gateways.grow(region)
            if grown is not None and accept(grown):
                return self._lease(grown, ask, now)
        return self._wait(ask, now, blocked, gap)

    @staticmethod
    def _alternates(s: Strategy, accept: Callable[[ProxyState], bool], chosen: ProxyState, n: int) -> tuple[str, ...]:
        picked = [chosen]
        for _ in range(n):
            q = s.pick(lambda c: c not in picked and accept(c))
            if q is None:
                break
            picked.append(q)
        return tuple(q.key for q in picked[1:])

    def switch(self, lease: Lease, key: str) -> Lease:
        """The shared store took the pair of ``key`` (one of the lease's alternates) for this
        request instead: a new lease there, the old one undone."""
        self.cancel(lease)
        return self._lease(self.by_key[key], Ask(lease.site, (), lease.region), self.clock(), number=lease.number)

    def cancel(self, lease: Lease) -> None:
        """Undo a lease whose request never went through its proxy."""
        if lease.released:
            return
        lease.released = True
        p = lease.state
        p.in_flight -= 1
        p.metrics.requests -= 1
        if lease.probe:
            p.probing = False
        elif p.in_rotation:
            for s in self.memberships[p.id]:
                s.on_release(p)
        self.store.untake(p.key, lease.site, lease.number)

    def _blocked(self, s: Strategy, site: str, exclude: Collection[str], now: float) -> int:
        """Members of ``s`` that cannot serve this request however long it waits: tried by
        it already, or banned by ``site``."""
        banned = self.store.banned(site, now)
        if not exclude and not banned:
            return 0
        ids = {p.id for k in exclude if (p := self.by_key.get(k)) is not None and p in s}
        ids.update(p.id for k in banned if (p := self.by_key.get(k)) is not None and p in s)
        return len(ids)

    def _lease(self, p: ProxyState, ask: Ask, now: float, probe: bool = False, number: int | None = None) -> Lease:
        p.in_flight += 1
        p.metrics.requests += 1
        if probe:
            p.probing = True
            p.last_probe = now
        else:
            for s in self.memberships[p.id]:
                s.on_acquire(p)
        if number is None:
            number = next(self.lease_numbers)
        self.store.take(p.key, ask.site, now, number)
        return Lease(p, ask.site, ask.region, number, now, not p.limit.proven, probe)

    def _panicking(self, region: str | None) -> bool:
        return self.degraded(region)

    def _probe(self, ask: Ask, now: float, limit: int, panicking: bool) -> Lease | None:
        """Lease the request to an ejected proxy due for a probe, if one is: any, in panic;
        else one that went out in a panic."""
        probes, pushed = self.probes, []
        lease = None
        for _ in range(8):
            if not probes or probes[0][0] > now:
                break
            _, _, pid = heapq.heappop(probes)
            p = self.states[pid]
            facts = self.store.facts(p.key)
            if p.removed or facts.disabled or facts.for_bans or facts.ejected_until <= now:
                continue  # back already, or not for probing: drop the entry
            if (p.probing or p.in_flight or (ask.region is not None and p.proxy.region != ask.region)
                    or not (panicking or pid in self.panicked)):
                pushed.append((now + PROBE_INTERVAL, next(self.seq), pid))
                continue
            free_at = self.store.pair_free_at(p.key, ask.site, now, limit, self.gap(ask.site, now))
            if p.key in ask.tried or free_at > now:
                pushed.append((now + PROBE_INTERVAL / 4, next(self.seq), pid))
                continue
            lease = self._lease(p, ask, now, probe=True)
            break
        for entry in pushed:
            heapq.heappush(probes, entry)
        return lease

    def _wait(self, ask: Ask, now: float, blocked: _Blocked, gap: float) -> Wait:
        region = ask.region
        size = self.region_size[region]
        if not size:
            raise NoProxyAvailable(f"no proxy in region {region!r}")
        tried = sum(1 for k in set(ask.tried) if (p := self.by_key.get(k)) and region in (None, p.proxy.region))
        if tried >= size:
            raise NoProxyAvailable(f"all {size} proxies{_in(region)} were tried already")
        usable = sum(len(s) - self._blocked(s, ask.site, ask.tried, now)
                     for backup in (False, True) if (s := self.groups.get((region, backup))))
        ends = [self.store.soonest(ask.site, now, gap), self._next_recovery()]
        if self.probes and (self.panicked or self._panicking(region)):
            ends.append(self.probes[0][0])
        delays = [t - now for t in ends if t is not None]
        if blocked.pair_busy and gap > 0:
            delays.append(gap)  # a pair in use is free again its gap after the answer, at the soonest
        on_release = blocked.busy or (blocked.pair_busy and not gap)  # a request ending frees one up
        if on_release:
            delays.append(RELEASE_POLL)
        if not delays and self.disabled:
            delays.append(DISABLED_POLL)
        if not delays:
            raise NoProxyAvailable(f"no proxy{_in(region)} can serve {ask.site}")
        return Wait(max(MIN_WAIT, min(delays)), unavailable=usable <= 0, on_release=on_release,
                    capacity=blocked.busy and not blocked.held and not blocked.pair_busy)

    def _next_recovery(self) -> float | None:
        return self.recoveries[0][0] if self.recoveries else None

    def _revive_due(self, now: float) -> None:
        while self.recoveries and self.recoveries[0][0] <= now:
            _, _, pid = heapq.heappop(self.recoveries)
            p = self.states[pid]
            if not p.in_rotation and not p.removed:
                facts = self.store.facts(p.key)
                if facts.ejected_until <= now:
                    p.limit.restart()
                    self._sync(p, now)
                    if p.in_rotation:
                        self.panicked.discard(p.id)
                        self.listener.revived(p, "trial")

    # -- outcomes --------------------------------------------------------------------

    def release(self, lease: Lease, outcome: Outcome, latency: float | None = None,
                retry_after: float | None = None, reason: str = "") -> Released:
        """Record how a leased request went (``reason`` says what went wrong, for reports).
        Releasing a lease twice is a no-op, so every path that ends a request may release."""
        if lease.released:
            return Released(Outcome.NEUTRAL)
        lease.released = True
        if "://" in reason:
            reason = mask(reason)  # it is shown in logs and reports
        now = self.clock()
        p, m, site, rules = lease.state, lease.state.metrics, lease.site, self.rules
        others_in_flight = p.in_flight > 1
        p.in_flight -= 1
        if lease.probe:
            p.probing = False
            heapq.heappush(self.probes, (now + PROBE_INTERVAL, next(self.seq), p.id))
            if outcome is Outcome.FAILURE and not self._pool_panicking(p):
                self.panicked.discard(p.id)  # failing while the rest works: it keeps its backoff
        if outcome is Outcome.OVERLOADED and not others_in_flight:
            outcome = Outcome.SUCCESS  # nothing else in flight: not the proxy's load, the site's answer
        if outcome is Outcome.BAN and lease.moved:
            outcome = Outcome.NEUTRAL  # a moved session's first request refused: the session's doing
        hold = 0.0  # a rate-limit answer's pause, beyond the site's gap
        facts = old = self.store.facts(p.key)
        if outcome is Outcome.SUCCESS:
            m.successes += 1
            m.observe_outcome(True)
            if latency is not None:
                m.observe_latency(latency, now)
            p.limit.on_success()
            if lease.probe and facts.ejected_until > now:
                facts = revive(facts, now)
                self._set_facts(p, old, facts, now, "probe")
                old = facts
            facts = after_success(facts, now)
            p.streak += 1
            if p.streak % FORGIVE_AFTER == 0:
                facts = forgive(facts)
            if self.store.ban_of(p.key, site)[1]:
                self.store.unban(p.key, site)  # the site takes it again: forget its ban level
        elif outcome is Outcome.FAILURE:
            m.failures += 1
            m.observe_outcome(False)
            p.streak = 0
            p.limit.on_failure()
            facts = after_failure(facts, now, rules.max_failures, rules.backoff, self.rng, reason or "failure")
        elif outcome is Outcome.BAN:
            m.bans += 1
            m.observe_outcome(False)
            p.streak = 0
            facts = self._ban(p, facts, site, now, retry_after, reason)
        elif outcome is Outcome.RATE_LIMITED:
            m.rate_limits += 1
            before = self.store.pace(site)
            pace = before.rate_limited(now, rules.cooldown, rules.cooldown_max, lease.at, p.key, len(self.by_key))
            self.store.set_pace(site, pace)
            if pace.gap != before.gap:
                self.listener.slowed(site, pace.gap)
            if retry_after is not None:
                hold = min(retry_after, rules.retry_after_max)
            elif pace.gap == before.gap:  # not the site's pace: this exit pauses there
                hold = max(FIRST_STEP, 2 * pace.at(now, rules.cooldown))
        elif outcome is Outcome.OVERLOADED:
            m.overloads += 1
            p.limit.on_overload(lease.number, next(self.lease_numbers))
        if not lease.probe:
            for s in self.memberships[p.id]:
                s.on_release(p)
        if lease.session is not None:
            self.sessions.released(lease, outcome, now)
        self.store.give_back(p.key, site, now, self.gap(site, now), lease.number, now + hold if hold else -math.inf)
        ejected_before = old.ejected_until > now
        self._set_facts(p, old, facts, now)
        ejected = facts.ejected_until - now if facts.ejected_until > now and not ejected_before else None
        return Released(outcome, ejected)

    def _ban(self, p: ProxyState, facts: ProxyFacts, site: str, now: float, retry_after: float | None,
             reason: str) -> ProxyFacts:
        """Keep ``p`` off ``site``: as long as the site asked, else for a ban cooldown that
        doubles with each ban in a row there (jittered); eject ``p`` when too many sites ban it."""
        rules = self.rules
        level = self.store.ban_of(p.key, site)[1] + 1
        if retry_after is not None:
            hold = min(retry_after, rules.retry_after_max)
        else:
            hold = rules.ban_backoff.delay(level, self.rng)
        self.store.ban(p.key, site, now, now + hold, level)
        why = f"{reason} from {site}" if reason else f"banned by {site}"
        if facts.ejected_until > now:
            return facts
        banning = self.store.banned_sites(p.key, now)
        if rules.max_banned_sites and len(banning) >= rules.max_banned_sites:
            return eject(facts, now, rules.backoff, self.rng, f"banned by {len(banning)} sites", for_bans=True)
        return _with(facts, reason=why)

    def record_check(self, key: str, ok: bool, rise: int, fall: int, reason: str = "") -> CheckVerdict:
        """An active health check of proxy ``key`` passed or failed (see
        :func:`~.ejection.after_check`)."""
        p = self.by_key.get(key)
        if p is None:
            return CheckVerdict.NONE
        now = self.clock()
        old = self.store.facts(key)
        new, verdict = after_check(old, ok, rise, fall, now, self.rules.backoff, self.rng, reason)
        self._set_facts(p, old, new, now, "check")
        return verdict

    # -- reports ---------------------------------------------------------------------

    def degraded(self, region: str | None = None) -> bool:
        """Fewer than half the proxies of the region are in rotation (Envoy's panic
        threshold): failures now say more about the pool than about a request."""
        live = sum(len(s) for backup in (False, True) if (s := self.groups.get((region, backup))))
        return 2 * live < self.region_size[region]

    def facts(self, p: ProxyState) -> ProxyFacts:
        return self.store.facts(p.key)

    def state_of(self, p: ProxyState, now: float | None = None) -> str:
        """``healthy``, ``trial``, ``ejected`` or ``disabled``."""
        facts = self.store.facts(p.key)
        return "disabled" if facts.disabled else facts.state(self.clock() if now is None else now).value

    def state_counts(self) -> Counter[str]:
        """How many proxies are healthy, on trial, ejected and disabled (O(n): for reports)."""
        now = self.clock()
        self._revive_due(now)
        return Counter(self.state_of(p, now) for p in self.by_key.values())

    def why_out(self, site: str, region: str | None = None, limit: int = 20) -> list[str]:
        """Why each proxy of the region cannot serve ``site`` now, one line per proxy (at most
        ``limit``; O(n): for the log when the pool is unavailable)."""
        now = self.clock()
        lines = []
        for p in self.by_key.values():
            if region is not None and p.proxy.region != region:
                continue
            facts = self.store.facts(p.key)
            until, _ = self.store.ban_of(p.key, site)
            if facts.disabled:
                why = "disabled"
            elif facts.ejected_until > now:
                why = f"ejected for {facts.ejected_until - now:.0f} s more after {facts.ejections} ejection(s)"
            elif until > now:
                why = f"banned by {site} for {until - now:.0f} s more"
            else:
                why = facts.state(now).value
            lines.append(f"{p.proxy.label}: {why}" + (f" (last: {facts.reason})" if facts.reason else ""))
        return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])


def _in(region: str | None) -> str:
    return f" in region {region!r}" if region else ""


def _with(facts: ProxyFacts, **changes: object) -> ProxyFacts:
    return replace(facts, **changes)  # type: ignore[arg-type]
