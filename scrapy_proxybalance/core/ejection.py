"""Passive health of one proxy: healthy -> ejected -> on trial -> healthy, with growing backoff.

The facts (:class:`ProxyFacts`) are what every process sharing a pool must agree on, so they
live in the state store; the rules below are pure functions from facts to new facts.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from enum import Enum


class State(Enum):
    HEALTHY = "healthy"
    EJECTED = "ejected"
    TRIAL = "trial"  # back from ejection: one request at a time until one succeeds


class CheckVerdict(Enum):
    """What an active health check changed."""

    NONE = "none"
    REVIVED = "revived"  # an ejected proxy passed `rise` checks in a row: back on trial early
    EJECTED = "ejected"  # a proxy in rotation failed `fall` checks in a row


@dataclass(frozen=True, slots=True)
class Backoff:
    """Ejection time: ``min(cap, base * 2**(n-1))`` scaled by ``uniform(1 - jitter, 1)``."""

    base: float
    cap: float
    jitter: float = 0.25

    def delay(self, level: int, rng: random.Random) -> float:
        full = min(self.cap, self.base * 2 ** min(max(level, 1) - 1, 60))
        return full * rng.uniform(1.0 - self.jitter, 1.0)


# Consecutive successes after which one ejection is forgiven, so an old incident does not
# make the next backoff long forever (Envoy decrements its multiplier alike).
FORGIVE_AFTER = 10


@dataclass(frozen=True, slots=True)
class ProxyFacts:
    """What is known of one proxy's health, shared by every process of a fleet."""

    failures: int = 0  # consecutive failures
    ejected_until: float = -math.inf  # out of rotation until then
    trial: bool = False  # after an ejection: on trial until a success
    level: int = 0  # ejections not yet forgiven: drives the backoff
    ejections: int = 0  # ejections ever, for reports
    for_bans: bool = False  # ejected because many sites ban it (a check cannot clear that)
    checks: int = 0  # active checks passed (> 0) or failed (< 0) in a row
    disabled: bool = False  # taken out by hand
    reason: str = ""  # what went wrong last, for reports

    def state(self, now: float) -> State:
        if self.ejected_until > now:
            return State.EJECTED
        return State.TRIAL if self.trial else State.HEALTHY


HEALTHY = ProxyFacts()


def after_success(facts: ProxyFacts, now: float) -> ProxyFacts:
    """A success ends a trial and a failure run; a late answer from before an ejection
    changes nothing."""
    if facts.ejected_until > now or (not facts.failures and not facts.trial):
        return facts
    return replace(facts, failures=0, trial=False)


def after_failure(facts: ProxyFacts, now: float, max_failures: int, backoff: Backoff, rng: random.Random,
                  reason: str) -> ProxyFacts:
    """A failure on trial, or the ``max_failures``-th in a row, ejects the proxy."""
    if facts.ejected_until > now:
        return facts
    failures = facts.failures + 1
    if facts.trial or failures >= max_failures:
        return eject(facts, now, backoff, rng, reason)
    return replace(facts, failures=failures, reason=reason)


def eject(facts: ProxyFacts, now: float, backoff: Backoff, rng: random.Random, reason: str,
          for_bans: bool = False) -> ProxyFacts:
    """Out of rotation for the next backoff delay; on trial when it comes back."""
    level = facts.level + 1
    return replace(facts, failures=0, ejected_until=now + backoff.delay(level, rng), trial=True, level=level,
                   ejections=facts.ejections + 1, for_bans=for_bans, reason=reason)


def revive(facts: ProxyFacts, now: float) -> ProxyFacts:
    """Back on trial before the backoff ends (a check or a panic probe showed it answers)."""
    return replace(facts, ejected_until=min(facts.ejected_until, now), trial=True, failures=0)


def forgive(facts: ProxyFacts) -> ProxyFacts:
    return replace(facts, level=facts.level - 1) if facts.level else facts


def after_check(facts: ProxyFacts, ok: bool, rise: int, fall: int, now: float, backoff: Backoff,
                rng: random.Random, reason: str) -> tuple[ProxyFacts, CheckVerdict]:
    """An active check's result, HAProxy's rise and fall: an ejected proxy that passed ``rise``
    in a row comes back on trial early; one in rotation that failed ``fall`` in a row is
    ejected. A proxy ejected because sites ban it stays out: a check shows it answers, not
    that the sites take it."""
    checks = max(facts.checks, 0) + 1 if ok else min(facts.checks, 0) - 1
    facts = replace(facts, checks=checks)
    ejected = facts.ejected_until > now
    if ok and ejected and not facts.for_bans and checks >= rise:
        return revive(facts, now), CheckVerdict.REVIVED
    if not ok and not ejected and -checks >= fall:
        why = f"failed {fall} health check(s)" + (f": {reason}" if reason else "")
        return eject(facts, now, backoff, rng, why), CheckVerdict.EJECTED
    return facts, CheckVerdict.NONE
