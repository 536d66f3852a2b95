"""Passive health of one proxy: healthy -> ejected -> trial -> healthy, with growing backoff."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum


class State(Enum):
    HEALTHY = "healthy"
    EJECTED = "ejected"
    TRIAL = "trial"  # back from ejection: one request at a time until one succeeds


@dataclass(frozen=True, slots=True)
class Backoff:
    """Ejection time: ``min(cap, base * 2**(n-1))`` scaled by ``uniform(1 - jitter, 1)``."""

    base: float
    cap: float
    jitter: float = 0.25

    def delay(self, ejections: int, rng: random.Random) -> float:
        full = min(self.cap, self.base * 2 ** min(ejections - 1, 60))
        return full * rng.uniform(1.0 - self.jitter, 1.0)


# Consecutive successes after which one ejection is forgiven, so an old incident
# does not make the next backoff long forever (Envoy decrements its multiplier alike).
FORGIVE_AFTER = 10
MAX_RAMP = 10  # slow start ends at 2**10 requests at once


@dataclass(slots=True)
class Health:
    """One proxy's health state machine.

    ``record_failure`` returns the ejection delay when the failure ejects the proxy, so the
    caller can schedule its return; the caller calls ``revive`` when that time has come.
    """

    max_failures: int
    state: State = State.HEALTHY
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    level: int = 0  # ejections not yet forgiven: drives the backoff
    ejections: int = 0  # ejections ever, for reports
    ejected_until: float = field(default=0.0)
    ramp: int = 0  # successes since it joined, came back or last failed: drives slow start
    checks: int = 0  # active checks passed (> 0) or failed (< 0) in a row
    for_bans: bool = False  # ejected because many sites ban it (a check cannot clear that)

    @property
    def max_in_flight(self) -> int:
        """Slow start: one request at a time until a success, then 2, 4, ... (``2**ramp``),
        so a proxy of unknown health (new, revived, just failed, or hung) cannot absorb
        many requests."""
        if self.state is State.TRIAL:
            return 1
        return 1 << min(self.ramp, MAX_RAMP)

    def record_success(self) -> None:
        if self.state is State.EJECTED:
            return  # a late answer from before the ejection changes nothing
        self.state = State.HEALTHY
        self.consecutive_failures = 0
        self.consecutive_successes += 1
        self.ramp += 1
        if self.consecutive_successes % FORGIVE_AFTER == 0 and self.level:
            self.level -= 1

    def record_failure(self, now: float, backoff: Backoff, rng: random.Random) -> float | None:
        if self.state is State.EJECTED:
            return None
        self.consecutive_successes = 0
        self.consecutive_failures += 1
        self.ramp = 0  # unproven again: back to one request at a time
        if self.state is State.TRIAL or self.consecutive_failures >= self.max_failures:
            return self.eject(now, backoff, rng)
        return None

    def eject(self, now: float, backoff: Backoff, rng: random.Random, for_bans: bool = False) -> float:
        """Take the proxy out for the next backoff delay; return that delay."""
        self.for_bans = for_bans
        self.level += 1
        self.ejections += 1
        self.state = State.EJECTED
        self.ramp = 0
        delay = backoff.delay(self.level, rng)
        self.ejected_until = now + delay
        return delay

    def record_check(self, ok: bool, rise: int, fall: int) -> str | None:
        """An active health check's result. Returns ``"revive"`` when an ejected proxy has
        passed ``rise`` checks in a row, ``"eject"`` when one in rotation has failed ``fall``
        in a row (HAProxy's rise and fall); the caller acts on it. A proxy ejected because
        sites ban it stays out: a check shows it answers, not that the sites take it."""
        self.checks = max(self.checks, 0) + 1 if ok else min(self.checks, 0) - 1
        if ok and self.state is State.EJECTED and not self.for_bans and self.checks >= rise:
            return "revive"
        if not ok and self.state is not State.EJECTED and -self.checks >= fall:
            return "eject"
        return None

    def revive(self) -> None:
        """The ejection time is over: allow a single trial request, then slow start again."""
        self.state = State.TRIAL
        self.consecutive_failures = 0
        self.ramp = 0
