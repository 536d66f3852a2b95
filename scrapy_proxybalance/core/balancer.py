"""acquire/release: a strategy composed with health, pair limits and pace, bans, and panic.

A proxy is handed out for a request to a site only if it is in rotation (not ejected,
disabled or removed), below its concurrency limit, not excluded by the request (tried
already), and its (proxy, site) pair is open: not banned, not within the site's gap since
its last answer there, and below the pair's limit (one at a time while the gap is above 0:
:meth:`Balancer.pair_rule`). Backups serve only while every primary of the region is ejected,
excluded or banned. Among the rest the strategy chooses. While the pool panics, ejected
proxies are probed (see :mod:`.recovery`).

Sessions and gateways use the public seams: :meth:`Balancer.pick` with a candidate filter,
and :meth:`Balancer.add_identity`.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from .clock import Clock, monotonic
from .costs import CostBook
from .ejection import CheckVerdict, ProxyFacts, after_check
from .errors import DuplicateProxy, NoProxyAvailable
from .exits import Exits
from .gateways import Gateways
from .leases import Ask, Lease, Released, Wait
from .listener import PoolListener
from .membership import Membership
from .outcome_rules import OutcomeRules
from .outcomes import Outcome
from .pace import SitePace
from .picking import Picker
from .proxy import Proxy, mask
from .recovery import Recovery
from .rules import Rules
from .sessions import Sessions
from .state import ProxyState
from .store import StateStore
from .strategies import Strategy
from .tiers import Tiers

__all__ = ["Ask", "Balancer", "Lease", "PoolListener", "Released", "Wait"]

RULES_KEPT = 1024  # pair rules of unchanging paces kept worked out (then all are dropped)


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
        store: StateStore,
        clock: Clock = monotonic,
        rng: random.Random | None = None,
        listener: PoolListener | None = None,
    ) -> None:
        self.rules = rules
        self.clock = clock
        self.store = store
        self.rng = rng or random.Random()
        self.listener = listener or PoolListener()
        self.members = Membership(strategy, self.rng, store)
        self.states, self.by_key, self.region_size = self.members.states, self.members.by_key, self.members.region_size
        self.recovery = Recovery(self.members, store, clock, self.listener)
        self.exits = Exits(store, self.listener)
        self.outcomes = OutcomeRules(self)
        self.lease_numbers = itertools.count()
        self.pilots: dict[str, Lease] = {}  # site -> the lease trying a gap it has not answered fine at
        self.sessions = Sessions(self, rules.sessions)
        self.gateways = Gateways(self)
        self.picker = Picker(self)
        self.tiers = Tiers(rules.tiers, self.tier_sizes, store, self.listener)
        self.costs = CostBook()
        self.longest_gap = max(rules.cooldown, rules.cooldown_max)
        self._ruled: dict[int, tuple[SitePace, tuple[float, int, float]]] = {}  # rules of paces that no longer change
        store.remember_answers(self.longest_gap)
        store.subscribe(self.recovery.changed_elsewhere)
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
        return self.add_identity(proxy)

    def add_identity(self, proxy: Proxy) -> ProxyState:
        """Add one proxy as it is (a gateway's identity, say), in rotation as its facts say."""
        p = self.members.new(proxy)
        self.members.sync(p, self.clock())
        return p

    def remove(self, key: str) -> None:
        """Take a proxy (or a gateway's template, with its identities) out of the pool for
        good; requests in flight through it finish."""
        if key in self.gateways.by_key:
            self.gateways.remove(key)
            return
        p = self.members.get(key)
        self.members.part(p)
        p.removed = True
        self.recovery.back(p)
        self.store.forget(key)
        self.listener.removed(p)

    def disable(self, key: str) -> None:
        """Stop handing out a proxy until :meth:`enable`; it keeps its health history."""
        self._set_disabled(key, True)

    def enable(self, key: str) -> None:
        self._set_disabled(key, False)

    def _set_disabled(self, key: str, disabled: bool) -> None:
        p = self.members.get(key)
        facts = self.store.facts(key)
        if facts.disabled != disabled:
            self.members.disabled += 1 if disabled else -1
            self.recovery.set_facts(p, facts, replace(facts, disabled=disabled), self.clock())

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
                    self.members.part(p)
                    p.follow(new)
                    self.members.join(p)
                    self.members.sync(p, self.clock())
                updated += 1
        return added, len(gone), updated

    def in_rotation(self, key: str) -> bool:
        """Whether the proxy is in the pool and can be handed out (not ejected or disabled)."""
        return self.members.in_rotation(key)

    def record_check(self, key: str, ok: bool, rise: int, fall: int, reason: str = "") -> CheckVerdict:
        """An active health check of proxy ``key`` passed or failed (see
        :func:`~.ejection.after_check`)."""
        p = self.by_key.get(key)
        if p is None:
            return CheckVerdict.NONE
        now = self.clock()
        old = self.store.facts(key)
        new, verdict = after_check(old, ok, rise, fall, now, self.rules.backoff, self.rng, reason)
        self.recovery.set_facts(p, old, new, now, "check")
        return verdict

    # -- leasing ---------------------------------------------------------------------

    def pair_rule(self, site: str, now: float) -> tuple[float, int]:
        """``(gap, limit)`` for every pair of ``site`` now: the gap each proxy keeps between
        two requests there (its learned pace, never below the least gap the site answered fine
        at), and the requests one pair may carry at once (one while the gap is above 0 or
        tried by a pilot, else ``CONCURRENT_REQUESTS_PER_DOMAIN``)."""
        return self.rule_of(self.store.pace(site), now)[:2]

    def rule_of(self, pace: SitePace, now: float) -> tuple[float, int, float]:
        """The pair rule of a site at ``pace``, and the gap the pairs keep while one pilot
        request tries the site's gap (``-inf``: no pilot, the gap is proven): the least gap the
        site answered fine at (see :mod:`.pace`; an answer longer ago than the longest gap
        proves nothing either way)."""
        ruled = self._ruled.get(id(pace))
        if ruled is not None and ruled[0] is pace:
            return ruled[1]
        rules = self.rules
        gap = pace.at(now, rules.pace_floor, rules.cooldown)
        if pace.unproven(gap):
            rule = gap, 1, min(pace.good, self.longest_gap)
        else:
            rule = gap, 1 if gap > 0 else rules.pair_limit or 1 << 30, -math.inf
        if pace.since == -math.inf or gap <= rules.pace_floor:  # the same rule whenever asked (it decays no more)
            if len(self._ruled) >= RULES_KEPT:
                self._ruled.clear()
            self._ruled[id(pace)] = pace, rule  # holding the pace keeps its id its own
        return rule

    def acquire(self, ask: Ask, alternates: int = 0) -> Lease | Wait:
        """Lease a proxy for a request, or say how long to wait. Raises
        :class:`NoProxyAvailable` when no proxy can ever serve it. With ``alternates``, the
        lease also names up to that many other proxies that could serve it now (a shared
        store claims the first of them still free for the whole fleet). A request of a
        sticky session goes through the session's proxy (see :mod:`.sessions`)."""
        now = self.clock()
        ends = self.recovery.ends
        if ends and ends[0][0] <= now:
            self.recovery.revive_due(now)
        if ask.pin is None and ask.session is None and len(self.members.tiers) <= 1 and not self.gateways.by_key:
            return self.picker.pick(ask, now, alternates=alternates)  # the common case, shortest
        if ask.pin is not None:
            if ask.pin not in self.tier_sizes():
                raise NoProxyAvailable(f"no proxy of tier {ask.pin} (meta['proxy_tier']) in the pool")
            return self._acquire_at(replace(ask, tiers=(ask.pin,)), now, alternates)
        if len(self.tier_sizes()) > 1:
            return self._tiered(ask, now, alternates)
        return self._acquire_at(ask, now, alternates)

    def _acquire_at(self, ask: Ask, now: float, alternates: int) -> Lease | Wait:
        if ask.session is not None:
            return self.sessions.acquire(ask, now)
        return self.pick(ask, now, alternates=alternates)

    def _tiered(self, ask: Ask, now: float, alternates: int) -> Lease | Wait:
        """A request to a site of a tiered pool: at the site's tier, or a probe a tier down
        (that goes at the site's tier if no proxy of the tier below is free now)."""
        state = self.tiers.state(ask.site, now)
        choice = self.tiers.choose(state, ask.site, now, at_least=ask.tier_min)
        result = self._acquire_at(replace(ask, tiers=choice.tiers), now, alternates)
        if choice.probe and not isinstance(result, Lease):
            choice = self.tiers.choose(state, ask.site, now, at_least=state.tier)
            result = self._acquire_at(replace(ask, tiers=choice.tiers), now, alternates)
        if isinstance(result, Lease):
            result.site_tier, result.tier_probe = state.tier, choice.probe
            self.tiers.sent(ask.site, state, choice.probe, now)
        return result

    def tier_sizes(self) -> Mapping[int, int]:
        """How many proxies each price tier has (a gateway's template counts for its identities)."""
        if not self.gateways:
            return self.members.tiers
        sizes = Counter(self.members.tiers)
        for template in self.gateways.templates():
            sizes[template.tier] += template.sessions
        return sizes

    def pick(self, ask: Ask, now: float, *, only: ProxyState | None = None,
             accept: Callable[[ProxyState], bool] | None = None, alternates: int = 0,
             binding: bool = False) -> Lease | Wait:
        """A lease for ``ask`` as the rules allow now, or how long to wait (see
        :mod:`.picking`). ``only``: that proxy or none; ``accept``: a further filter on
        candidates; ``binding``: a sticky session is being bound (never to a probe, nor to a
        gateway identity made for plain requests)."""
        return self.picker.pick(ask, now, only=only, accept=accept, alternates=alternates, binding=binding)

    def switch(self, lease: Lease, key: str) -> Lease:
        """The shared store took the pair of ``key`` (one of the lease's alternates) for this
        request instead: a new lease there, the old one undone."""
        self.cancel(lease)
        return self.lease(self.by_key[key], Ask(lease.site, (), lease.region), self.clock(), number=lease.number)

    def cancel(self, lease: Lease) -> None:
        """Undo a lease whose request never went through its proxy."""
        if lease.released:
            return
        lease.released = True
        if self.pilots.get(lease.site) is lease:
            del self.pilots[lease.site]
        p = lease.state
        p.in_flight -= 1
        p.metrics.requests -= 1
        if lease.probe:
            p.probing = False
        elif p.in_rotation and self.members.on_release:
            self.members.released(p)
        self.store.untake(p.key, lease.site, lease.number)

    def lease(self, p: ProxyState, ask: Ask, now: float, probe: bool = False, number: int | None = None) -> Lease:
        """Lease ``p`` for the request as it is: the rules were applied by the caller."""
        p.in_flight += 1
        p.metrics.requests += 1
        if probe:
            p.probing = True
        elif self.members.on_acquire:
            self.members.acquired(p)
        if number is None:
            number = next(self.lease_numbers)
        pair = self.store.take(p.key, ask.site, now, number)
        return Lease(p, ask.site, ask.region, number, now, not p.limit.proven, pair, probe)

    def release(self, lease: Lease, outcome: Outcome, latency: float | None = None,
                retry_after: float | None = None, reason: str = "") -> Released:
        """Record how a leased request went (``reason`` says what went wrong, for reports).
        Releasing a lease twice is a no-op, so every path that ends a request may release."""
        if lease.released:
            return Released(Outcome.NEUTRAL)
        lease.released = True
        if "://" in reason:
            reason = mask(reason)  # it is shown in logs and reports
        return self.outcomes.apply(lease, outcome, self.clock(), latency, retry_after, reason)

    # -- reports ---------------------------------------------------------------------

    def degraded(self, region: str | None = None) -> bool:
        """Fewer than half the proxies of the region are in rotation (Envoy's panic threshold)."""
        return self.members.degraded(region)

    def facts(self, p: ProxyState) -> ProxyFacts:
        return self.store.facts(p.key)

    def state_of(self, p: ProxyState, now: float | None = None) -> str:
        """``healthy``, ``trial``, ``ejected`` or ``disabled``."""
        facts = self.store.facts(p.key)
        return "disabled" if facts.disabled else facts.state(self.clock() if now is None else now).value

    def state_counts(self) -> Counter[str]:
        """How many proxies are healthy, on trial, ejected and disabled (O(n): for reports)."""
        now = self.clock()
        self.recovery.revive_due(now)
        return Counter(self.state_of(p, now) for p in self.by_key.values())

