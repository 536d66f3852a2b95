"""Recent latency and success rate of one proxy, updated in O(1) per response."""

from __future__ import annotations

import math
from dataclasses import dataclass

LATENCY_TAU = 10.0  # seconds over which a latency sample fades (Finagle's peak EWMA)
SUCCESS_ALPHA = 0.1  # weight of the newest outcome in the success rate


@dataclass(slots=True)
class Metrics:
    """Counters for reports plus the EWMAs strategies read.

    The latency is a peak EWMA (Finagle's): it jumps to a worse sample at once and otherwise
    decays toward new ones, ``w = exp(-dt / LATENCY_TAU)``, ``value * w + sample * (1 - w)``.
    """

    requests: int = 0
    successes: int = 0
    failures: int = 0
    bans: int = 0
    rate_limits: int = 0
    overloads: int = 0
    bytes: int = 0  # sent and received through it (see .costs)
    cost: float = 0.0  # what they cost
    latency_total: float = 0.0
    latency_samples: int = 0
    success_rate: float | None = None  # EWMA of 1 (success) / 0 (failure or ban)
    latency: float | None = None  # peak EWMA of the latency (None until the first sample)
    latency_at: float = 0.0  # when its last sample came

    def observe_success(self, latency: float | None, now: float) -> None:
        """A success, answered after ``latency`` seconds if known."""
        self.successes += 1
        rate = self.success_rate
        self.success_rate = rate + SUCCESS_ALPHA * (1.0 - rate) if rate is not None and rate < 1.0 else 1.0
        if latency is not None:
            ewma = self.latency
            if ewma is None or latency > ewma:
                self.latency = latency
            elif now > self.latency_at:
                w = math.exp((self.latency_at - now) / LATENCY_TAU)
                self.latency = ewma * w + latency * (1.0 - w)
            self.latency_at = now
            self.latency_total += latency
            self.latency_samples += 1

    def observe_outcome(self, ok: bool) -> None:
        x = 1.0 if ok else 0.0
        rate = self.success_rate
        self.success_rate = x if rate is None else rate + SUCCESS_ALPHA * (x - rate)

    @property
    def mean_latency(self) -> float | None:
        return self.latency_total / self.latency_samples if self.latency_samples else None
