"""Recent latency and success rate of one proxy, updated in O(1) per response."""

from __future__ import annotations

import math
from dataclasses import dataclass

LATENCY_TAU = 10.0  # seconds over which a latency sample fades (Finagle's peak EWMA)
SUCCESS_ALPHA = 0.1  # weight of the newest outcome in the success rate


@dataclass(slots=True)
class PeakEwma:
    """Latency that jumps to a worse sample at once and otherwise decays toward new ones.

    ``w = exp(-dt / tau)``; ``value = max(sample, value * w + sample * (1 - w))``.
    ``None`` until the first sample.
    """

    value: float | None = None
    stamp: float = 0.0

    def observe(self, sample: float, now: float) -> None:
        if self.value is None or sample > self.value:
            self.value = sample
        else:
            w = math.exp(-max(0.0, now - self.stamp) / LATENCY_TAU)
            self.value = self.value * w + sample * (1.0 - w)
        self.stamp = now


@dataclass(slots=True)
class Metrics:
    """Counters for reports plus the EWMAs strategies read."""

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
    latency: PeakEwma | None = None

    def observe_success(self, latency: float | None, now: float) -> None:
        """A success, answered after ``latency`` seconds if known."""
        self.successes += 1
        rate = self.success_rate
        self.success_rate = 1.0 if rate is None else rate + SUCCESS_ALPHA * (1.0 - rate)
        if latency is not None:
            if self.latency is None:
                self.latency = PeakEwma()
            self.latency.observe(latency, now)
            self.latency_total += latency
            self.latency_samples += 1

    def observe_outcome(self, ok: bool) -> None:
        x = 1.0 if ok else 0.0
        rate = self.success_rate
        self.success_rate = x if rate is None else rate + SUCCESS_ALPHA * (x - rate)

    @property
    def mean_latency(self) -> float | None:
        return self.latency_total / self.latency_samples if self.latency_samples else None
