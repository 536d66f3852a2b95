"""What each outcome of a request does to its proxy, its pair and its site: one rule each.

- **success**: the proxy's latency and success rate, its concurrency limit grows; a trial or a
  run of failures ends (a probe's success brings an ejected proxy back); every
  :data:`~.ejection.FORGIVE_AFTER` successes in a row forgive one old ejection; the pair's ban
  level is forgotten; a pilot's success proves the site's gap it tried (see :mod:`.pace`).
- **failure**: the proxy's limit falls to one; the ``max_failures``-th in a row (or one on
  trial) ejects it.
- **ban**: the pair is held off the site (``Retry-After``, else a backoff doubling with each ban
  in a row there); a proxy banned by ``max_banned_sites`` sites at once is ejected.
- **rate limited**: the site's pace may slow (see :mod:`.pace`); that pair pauses for the
  ``Retry-After`` asked, or, when the site's pace did not change, twice the pace.
- **overloaded**: the proxy's concurrency limit is cut (once per round).
- in a pool of price tiers, bans and a probe's answer also move the site's tier (see
  :mod:`.tiers`).

Before that, an outcome is counted as what it says about the proxy: an overload answer from a
proxy with nothing else in flight is the site's own answer (a success), and a ban of the first
request of a session that just moved is the session's doing (neutral).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

from .ejection import FORGIVE_AFTER, HEALTHY, ProxyFacts, after_failure, after_success, eject, forgive, revive
from .leases import Lease, Released
from .outcomes import Outcome
from .pace import FIRST_STEP

if TYPE_CHECKING:
    from .balancer import Balancer

# Enum members looked up once: ``Outcome.SUCCESS`` costs a class attribute lookup each time
_SUCCESS, _FAILURE, _BAN = Outcome.SUCCESS, Outcome.FAILURE, Outcome.BAN
_RATE_LIMITED, _OVERLOADED, _NEUTRAL = Outcome.RATE_LIMITED, Outcome.OVERLOADED, Outcome.NEUTRAL


class OutcomeRules:
    def __init__(self, balancer: Balancer) -> None:
        self.b = balancer
        self.rules = balancer.rules
        self.store = balancer.store
        self.descends = self.rules.pace_floor < self.rules.cooldown  # PROXY_PACE_BELOW_COOLDOWN

    def apply(self, lease: Lease, outcome: Outcome, now: float, latency: float | None, retry_after: float | None,
              reason: str) -> Released:
        """Release ``lease`` (not released before) with ``outcome``."""
        b, p, store = self.b, lease.state, self.store
        p.in_flight -= 1
        if lease.probe:
            b.recovery.probe_ended(p, now, failed=outcome is _FAILURE)
        if outcome is not _SUCCESS:
            outcome = _counted_as(lease, outcome, p.in_flight > 0)
        if lease.pilot is not None:
            self._pilot_landed(lease, outcome, now)
        if outcome is _SUCCESS:  # the common case first
            old, facts = self._succeeded(lease, store.facts(p.key), now, latency)
            hold = _NEVER
        else:
            old, facts, hold = self._judged(lease, outcome, store.facts(p.key), now, retry_after, reason)
        if b.members.on_release and not lease.probe:
            b.members.released(p)
        if lease.session is not None:
            b.sessions.released(lease, outcome, now)
        if lease.site_tier is not None:
            b.tiers.answered(lease.site, p.proxy.tier, p.key, outcome, lease.tier_probe, now)
        if lease.exit or store.shared:
            self._answered_with_gap(lease, now, hold)
        else:  # the store applies the site's gap when asked
            store.give_back(p.key, lease.site, now, 0.0, lease.number, hold, lease.pair)
        if facts is old:
            return _SUCCEEDED if outcome is _SUCCESS else _RELEASED[outcome]
        b.recovery.set_facts(p, old, facts, now)
        if facts.ejected_until > now >= old.ejected_until:
            return Released(outcome, facts.ejected_until - now)
        return _RELEASED[outcome]

    def _answered_with_gap(self, lease: Lease, now: float, hold: float) -> None:
        """The pair's answer to a store that records the site's gap with it (a shared store),
        or through a rotating gateway's exit (its own pair keeps the gap)."""
        p, store = lease.state, self.store
        gap = self.b.rule_of(store.pace(lease.site), now)[0]  # the pair rule's gap
        if lease.exit:
            self.b.exits.answered(lease, now, gap)
        store.give_back(p.key, lease.site, now, 0.0 if p.rotating else gap, lease.number, hold, lease.pair)

    def _judged(self, lease: Lease, outcome: Outcome, old: ProxyFacts, now: float, retry_after: float | None,
                reason: str) -> tuple[ProxyFacts, ProxyFacts, float]:
        """The proxy's facts before and after an outcome other than success, and the end of the
        pair's pause (a rate-limit answer's, beyond the site's gap; ``-inf``: none)."""
        if outcome is _FAILURE:
            return old, self._failed(lease, old, now, reason), _NEVER
        if outcome is _BAN:
            return old, self._banned(lease, old, now, retry_after, reason), _NEVER
        if outcome is _RATE_LIMITED:
            pause = self._rate_limited(lease, now, retry_after)
            return old, old, now + pause if pause else _NEVER
        if outcome is _OVERLOADED:
            p = lease.state
            p.metrics.overloads += 1
            p.limit.on_overload(lease.number, next(self.b.lease_numbers))
        return old, old, _NEVER

    def _succeeded(self, lease: Lease, facts: ProxyFacts, now: float,
                   latency: float | None) -> tuple[ProxyFacts, ProxyFacts]:
        """The facts before and after a success (a probe's success is written at once: the
        proxy is back)."""
        p = lease.state
        p.metrics.observe_success(latency, now)
        p.limit.on_success()
        if lease.probe and facts.ejected_until > now:
            revived = revive(facts, now)
            self.b.recovery.set_facts(p, facts, revived, now, "probe")
            facts = revived
        before = facts
        p.streak += 1
        if facts is not HEALTHY:  # the common case: nothing to end, nothing to forgive
            facts = after_success(facts, now)
            if p.streak % FORGIVE_AFTER == 0:
                facts = forgive(facts)
        if lease.pair.ban_level:
            self.store.unban(p.key, lease.site)  # the site takes it again: forget its ban level
        if self.descends:  # the pace looks for the site's limit
            pace = self.store.pace(lease.site)
            descended = pace.descended(now, self.rules.pace_floor, self.rules.cooldown, lease.at)
            if descended is not pace:
                self.store.set_pace(lease.site, descended)
        if lease.exit:
            self.b.exits.taken_again(lease)
        return before, facts

    def _pilot_landed(self, lease: Lease, outcome: Outcome, now: float) -> None:
        """The site's pilot was answered: the next request may try its gap, which a fine
        answer proved."""
        if self.b.pilots.get(lease.site) is lease:
            del self.b.pilots[lease.site]
        if outcome is _SUCCESS and lease.pilot is not None:
            pace = self.store.pace(lease.site)
            proved = pace.proved(now, lease.pilot)
            if proved is not pace:
                self.store.set_pace(lease.site, proved)

    def _failed(self, lease: Lease, facts: ProxyFacts, now: float, reason: str) -> ProxyFacts:
        p, rules = lease.state, self.rules
        p.metrics.failures += 1
        p.metrics.observe_outcome(False)
        p.streak = 0
        p.limit.on_failure()
        return after_failure(facts, now, rules.max_failures, rules.backoff, self.b.rng, reason or "failure")

    def _banned(self, lease: Lease, facts: ProxyFacts, now: float, retry_after: float | None,
                reason: str) -> ProxyFacts:
        """Keep the proxy off the site: as long as the site asked, else for a ban cooldown that
        doubles with each ban in a row there (jittered); eject it when too many sites ban it."""
        p, site, rules = lease.state, lease.site, self.rules
        p.metrics.bans += 1
        p.metrics.observe_outcome(False)
        p.streak = 0
        exits = self.b.exits
        level = (exits.level(lease) if lease.exit else self.store.ban_of(p.key, site)[1]) + 1
        if retry_after is not None:
            hold = min(retry_after, rules.retry_after_max)
        else:
            hold = rules.ban_backoff.delay(level, self.b.rng)
        if not lease.exit or exits.banned(lease, now, now + hold, level):  # one exit banned: not the gateway
            self.store.ban(p.key, site, now, now + hold, level)
        banning = self.store.banned_sites(p.key, now)
        self.b.listener.banned(p, site, set(banning))
        if facts.ejected_until > now:
            return facts
        if rules.max_banned_sites and len(banning) >= rules.max_banned_sites:
            return eject(facts, now, rules.backoff, self.b.rng, f"banned by {len(banning)} sites", for_bans=True)
        return replace(facts, reason=f"{reason} from {site}" if reason else f"banned by {site}")

    def _rate_limited(self, lease: Lease, now: float, retry_after: float | None) -> float:
        """Slow the site's pace if it is the site's pace that is too fast; the pair's pause."""
        p, site, rules, b = lease.state, lease.site, self.rules, self.b
        p.metrics.rate_limits += 1
        before = self.store.pace(site)
        went = lease.at - lease.pair.answered  # its pair's gap (given back after this)
        pace = before.rate_limited(now, rules.pace_floor, rules.cooldown_max, lease.at, p.key, len(b.by_key),
                                   rules.cooldown, went if went < math.inf else 0.0)
        self.store.set_pace(site, pace)
        if pace.gap != before.gap:
            b.listener.slowed(site, pace.gap)
        if retry_after is not None:
            return min(retry_after, rules.retry_after_max)
        if pace.gap == before.gap:  # not the site's pace: this exit pauses there
            return max(FIRST_STEP, 2 * pace.at(now, rules.pace_floor, rules.cooldown))
        return 0.0


_NEVER = -math.inf  # no pause
_RELEASED = {outcome: Released(outcome) for outcome in Outcome}  # as released, when nothing was ejected
_SUCCEEDED = _RELEASED[_SUCCESS]


def _counted_as(lease: Lease, outcome: Outcome, others_in_flight: bool) -> Outcome:
    """What the outcome says about the proxy (see the module's docstring)."""
    if outcome is _OVERLOADED and not others_in_flight:
        return _SUCCESS  # nothing else in flight: not the proxy's load, the site's answer
    if outcome is _BAN and lease.moved:
        return _NEUTRAL  # a moved session's first request refused: the session's doing
    return outcome
