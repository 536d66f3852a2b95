"""How many requests one proxy may carry at once: a limit learned as TCP learns its window.

- **Slow start.** A new or revived proxy carries one request; each success adds one, so the
  limit doubles with each round of answers, up to the threshold.
- **Additive increase.** Above the threshold each success adds ``1 / limit``: one more
  request per round. Past the limit at which the proxy last said it was full, it probes
  more slowly still, by half for each time in a row it was full there (up to
  ``2**MAX_STRIKES``), so a proxy with a fixed capacity is not overloaded again every few
  rounds.
- **Multiplicative decrease.** An overload answer (``503``: the proxy is full) cuts the limit
  to :data:`DECREASE` of itself and sets the threshold there, once per round: answers to
  requests sent before the cut do not cut again.
- **Failure.** Connection refused, a timeout, a reset: back to one request (the proxy may be
  dying), with the threshold at half the old limit, so a proxy that recovers regrows fast.

The limit never falls below 1 nor rises above :data:`MAX_LIMIT`. It is per process, like
in-flight counts: each crawler process learns what the proxy gives it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_LIMIT = 1024
DECREASE = 0.7  # an overload keeps this share of the limit (CUBIC's beta)
MAX_STRIKES = 4


@dataclass(slots=True)
class ConcurrencyLimit:
    limit: float = 1.0
    threshold: float = math.inf
    cut_after: int = -1  # lease number of the last cut: older leases cannot cut again
    proven: bool = False  # succeeded since it joined, came back or last failed
    ceiling: float = math.inf  # the limit at the last overload
    strikes: int = 0  # overloads in a row at about that ceiling

    @property
    def allowed(self) -> int:
        """Requests the proxy may carry at once."""
        return int(self.limit)

    def on_success(self) -> None:
        self.proven = True
        limit = self.limit
        if limit < self.threshold:  # slow start (no min(): this runs for every success)
            limit += 1.0
            self.limit = limit if limit <= self.threshold and limit <= MAX_LIMIT else min(self.threshold, MAX_LIMIT)
            return
        step = 1.0 / self.limit
        if self.limit + 1.0 > self.ceiling:
            step /= 2**self.strikes  # probing past where it was full: gently
        self.limit = min(self.limit + step, MAX_LIMIT)
        if self.limit > self.ceiling + 1.0:  # grew past it without an overload: it has more room now
            self.ceiling, self.strikes = math.inf, 0

    def on_overload(self, lease_number: int, next_lease_number: int) -> bool:
        """Cut the limit unless it was cut since this lease was taken; return whether it was."""
        if lease_number <= self.cut_after:
            return False
        near = abs(self.limit - self.ceiling) <= 1.0
        self.strikes = min(self.strikes + 1, MAX_STRIKES) if near else 1
        self.ceiling = self.limit
        self.threshold = max(1.0, self.limit * DECREASE)
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
        self.ceiling, self.strikes = math.inf, 0
