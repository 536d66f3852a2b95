"""Choosing a proxy for one request: the balancer's rules applied to its candidates.

A proxy may take a request if it is in rotation, below its concurrency limit, not tried by
the request, of a scheme its download path carries and of a price tier chosen for it, and
its pair with the site is free (see :class:`~.candidates.Candidates`). Then, in order: a
panic probe of an ejected proxy, a proxy the download path has ready, the strategy's pick
among the region's primaries then backups (cheapest tier first), a gateway's new identity.
While the site's gap is below the least one it answered fine at, the first lease of a pair
that answered there sooner than that is the site's pilot, and until it lands the other pairs
keep that least gap (see :mod:`.pace`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from .candidates import Candidates
from .leases import Ask, Lease, Wait
from .pace import PILOT_PATIENCE
from .state import ProxyState
from .strategies import Strategy
from .waits import next_wait

if TYPE_CHECKING:
    from .balancer import Balancer


class Picker:
    def __init__(self, balancer: Balancer) -> None:
        self.b = balancer
        self.keep = -math.inf  # the gap the pairs of the site being picked for keep while a pilot tries its gap
        # one filter, renewed for each pick (a pick never runs within another, nor keeps it)
        self.candidates = Candidates({}, -math.inf, 0.0, 1, (), None, balancer.rules.pair_limit or 1 << 30)

    def pick(self, ask: Ask, now: float, *, only: ProxyState | None = None,
             accept: Callable[[ProxyState], bool] | None = None, alternates: int = 0,
             binding: bool = False) -> Lease | Wait:
        """See :meth:`.Balancer.pick`."""
        b = self.b
        gap, limit, keep = b.rule_of(b.store.pace(ask.site), now)
        if ask.schemes is not None or ask.tiers is not None:
            accept = self._narrowed(ask, accept)
        candidates = self.candidates.renewed(b.store.pairs_of(ask.site), now, gap, limit, ask.tried, accept)
        self.keep = keep
        if keep > gap and b.pilots and self._pilot_flying(ask.site, now):  # a pilot tries the gap: the others keep
            candidates.keep = keep  # the proven one
        if only is not None:
            if only.in_rotation and candidates(only):
                return self._lease(only, ask, now)
            return self._wait(ask, now, candidates)
        if binding or ask.prefer or b.recovery.probes or b.gateways.by_key:
            lease = self._choose(ask, now, candidates, alternates, binding)
        else:  # the common case: the strategy's pick
            lease = self._from_groups(ask, now, candidates, alternates)
        return lease if lease is not None else self._wait(ask, now, candidates)

    def _narrowed(self, ask: Ask, accept: Callable[[ProxyState], bool] | None) -> Callable[[ProxyState], bool] | None:
        """``accept``, also refusing proxies of a scheme the request's download path cannot
        carry, or of a tier not chosen for it."""
        schemes = ask.schemes
        if schemes is not None and self.b.members.beyond(schemes):  # its download path cannot carry them all
            accept = _of_schemes(schemes, accept)
        if ask.tiers is not None and len(ask.tiers) < len(self.b.tier_sizes()):
            accept = _of_tiers(frozenset(ask.tiers), accept)
        return accept

    def _lease(self, p: ProxyState, ask: Ask, now: float) -> Lease:
        """Lease ``p``; the site's pilot if the site's gap is unproven and ``p`` answered there
        more recently than the proven gap (see :mod:`.pace`)."""
        lease = self.b.lease(p, ask, now)
        if now - lease.pair.answered < self.keep:
            self._pilot(lease, now)
        return lease

    def _pilot(self, lease: Lease, now: float) -> None:
        """Make ``lease``, whose pair answered within the proven gap, the site's pilot, unless
        one flies or its proxy is a rotating gateway (its exits keep the gap, not it)."""
        if not lease.state.rotating and not (self.b.pilots and self._pilot_flying(lease.site, now)):
            lease.pilot = now - lease.pair.answered
            self.b.pilots[lease.site] = lease

    def _pilot_flying(self, site: str, now: float) -> bool:
        """Whether a pilot tries the site's gap; one slower than :data:`.PILOT_PATIENCE` (a hung
        proxy, say) lets another try."""
        pilot = self.b.pilots.get(site)
        return pilot is not None and now - pilot.at < PILOT_PATIENCE

    def _choose(self, ask: Ask, now: float, candidates: Candidates, alternates: int, binding: bool) -> Lease | None:
        """A probe of an ejected proxy (in panic), else a proxy the download path has ready,
        else the strategy's pick among the primaries (then the backups), else a gateway's new
        identity; ``None`` if none may take the request now."""
        if not binding and self.b.recovery.probes and self.b.recovery.probing(ask.region):
            free = candidates.pair_free if candidates.accept is None else \
                (lambda p: candidates.accept(p) and candidates.pair_free(p))  # type: ignore[misc]
            probe = self.b.recovery.probe_for(ask, now, free)
            if probe is not None:
                return self.b.lease(probe, ask, now, probe=True)
        if ask.prefer:
            warm = self._preferred(ask, candidates.copy())
            if warm is not None:
                return self._lease(warm, ask, now)
        lease = self._from_groups(ask, now, candidates, alternates)
        if lease is not None:
            return lease
        if self.b.gateways and not binding:
            grown = self.b.gateways.grow(ask.region)
            if grown is not None and candidates(grown):
                return self._lease(grown, ask, now)
        return None

    def _preferred(self, ask: Ask, candidates: Candidates) -> ProxyState | None:
        """A primary proxy of ``ask.prefer`` that may take the request now (they are few: the
        ones a download path has ready)."""
        for key in ask.prefer:
            p = self.b.by_key.get(key)
            if (p is not None and p.in_rotation and not p.proxy.backup
                    and ask.region in (None, p.proxy.region) and candidates(p)):
                return p
        return None

    def _from_groups(self, ask: Ask, now: float, candidates: Candidates, alternates: int) -> Lease | None:
        """A lease from the region's primaries, else its backups, of the request's cheapest
        tier, else of the next (a group is passed over only while none of its members could
        ever take the request: members only busy or cooling are waited for)."""
        members = self.b.members
        order = members.orders.get(ask.region) if ask.tiers is None else None
        for s in order or members.order(ask.region, ask.tiers):
            p = s.pick(candidates)
            if p is not None:
                lease = self.b.lease(p, ask, now)  # (what _lease does, inline)
                if now - lease.pair.answered < self.keep:
                    self._pilot(lease, now)
                if alternates:  # free now, or within a gap (a shared store books the soonest)
                    lease.alternates = _alternates(s, candidates.within_gap(), p, alternates)
                return lease
            if len(s) > self._unusable(s, ask, now):
                return None
        return None

    def _unusable(self, s: Strategy, ask: Ask, now: float) -> int:
        """Members of ``s`` that cannot serve this request however long it waits: tried by
        it already, or banned by its site."""
        banned = self.b.store.banned(ask.site, now)
        if not ask.tried and not banned:
            return 0
        ids = {p.id for k in (*ask.tried, *banned) if (p := self.b.by_key.get(k)) is not None and p in s}
        return len(ids)

    def _wait(self, ask: Ask, now: float, candidates: Candidates) -> Wait:
        usable = sum(len(s) - self._unusable(s, ask, now) for s in self.b.members.order(ask.region, ask.tiers))
        return next_wait(self.b, ask, now, candidates, usable)


def _of_schemes(schemes: frozenset[str], accept: Callable[[ProxyState], bool] | None) -> Callable[[ProxyState], bool]:
    if accept is None:
        return lambda p: p.proxy.scheme in schemes or p.proxy.direct
    return lambda p: (p.proxy.scheme in schemes or p.proxy.direct) and accept(p)


def _of_tiers(tiers: frozenset[int], accept: Callable[[ProxyState], bool] | None) -> Callable[[ProxyState], bool]:
    if accept is None:
        return lambda p: p.proxy.tier in tiers
    return lambda p: p.proxy.tier in tiers and accept(p)


def _alternates(s: Strategy, accept: Callable[[ProxyState], bool], chosen: ProxyState, n: int) -> tuple[str, ...]:
    picked = [chosen]
    for _ in range(n):
        q = s.pick(lambda c: c not in picked and accept(c))
        if q is None:
            break
        picked.append(q)
    return tuple(q.key for q in picked[1:])
