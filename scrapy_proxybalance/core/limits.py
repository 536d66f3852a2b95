"""How many requests one proxy may carry at once: a limit learned as TCP learns its window.

- **Slow start.** A new or revived proxy carries one request; each success adds one, so the
  limit doubles with each round of answers, up to the threshold.
- **Additive increase.** Above the threshold each success adds ``1 / limit``: one more
  request per round.
- **Multiplicative decrease.** An overload answer (``503``: the proxy is full) halves the
  limit and sets the threshold there, once per round: answers to requests sent before the
  cut do not cut again.
- **Failure.** Connection refused, a timeout, a reset: back to one request (the proxy may be
  dying), with the threshold at half the old limit, so a proxy that recovers regrows fast.

The limit never falls below 1 nor rises above :data:`MAX_LIMIT`. It is per process, like
in-flight counts: each crawler process learns what the proxy gives it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_LIMIT = 1024


@dataclass(slots=True)
class ConcurrencyLimit:
    limit: float = 1.0
    threshold: float = math.inf
    cut_after: int = -1  # lease number of the last cut: older leases cannot cut again
    proven: bool = False  # succeeded since it joined, came back or last failed

    @property
    def allowed(self) -> int:
        """Requests the proxy may carry at once."""
        return int(self.limit)

    def on_success(self) -> None:
        self.proven = True
        if self.limit < self.threshold:
            self.limit = min(self.limit + 1.0, self.threshold, MAX_LIMIT)
        else:
            self.limit = min(self.limit + 1.0 / self.limit, MAX_LIMIT)

    def on_overload(self, lease_number: int, next_lease_number: int) -> bool:
        """Halve the limit unless it was cut since this lease was taken; return whether it was."""
        if lease_number <= self.cut_after:
            return False
        self.threshold = max(1.0, self.limit / 2)
        self.limit = self.threshold
        self.cut_after = next_lease_number - 1
        return True

    def on_failure(self) -> None:
        self.threshold = max(1.0, self.limit / 2)
        self.limit = 1.0
        self.proven = False

    def restart(self) -> None:
        """Joined the pool or came back from ejection: unproven, one request at a time."""
        self.limit, self.threshold, self.proven = 1.0, math.inf, False
