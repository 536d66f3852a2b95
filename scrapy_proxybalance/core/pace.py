"""Each site's pace: the gap one proxy keeps between two requests to it (AutoThrottle for a pool).

The gap starts at the configured cooldown (``PROXY_DOMAIN_COOLDOWN``, or ``DOWNLOAD_DELAY`` if
larger) and is counted from the moment the previous request through that (proxy, site) pair
got its answer, the first moment we know the site saw it: the site never sees two requests
of one exit closer together, however uneven the transit times.

A rate-limit answer slows the site down when it is the site's pace that is too fast: the
first one the site ever gives (nothing is known of its limit yet, and every pair is as fast
as the one that met it, so all of them slow at once: one round of rate limits per site, not
one per pair), then one of a second proxy within :data:`WINDOW` (or the pool has one
proxy). The gap then doubles (at least to :data:`FIRST_STEP`, capped), once per round of
requests; or, when a gap just above was answered fine, it goes back to that one (the limit
lies between). The first step is half a second, a common per-address limit, rather than a
smaller one: a step too small costs another round of rate limits, each pausing its pair for
the site's ``Retry-After`` (often tens of seconds), while a step too large costs only pace
until it decays. A lone proxy rate limited again and again is that exit's problem, not the
site's: it pauses that pair only, so one flagged address never slows a site for the whole
pool. A slowed gap holds for :data:`SETTLE` seconds (a gap that was just too fast is likely
the site's limit, and any step below the new one would meet it again); then, while the site
answers fine, it decays back toward the floor, halving its excess every :data:`HALF_LIFE`
seconds.

With ``PROXY_PACE_BELOW_COOLDOWN`` the floor is ``DOWNLOAD_DELAY`` instead of the cooldown: a
site that answers fine at its gap has it cut by :data:`DESCENT` once per gap (additive
increase of the rate, as AutoThrottle and TCP probe), so the pace finds the limit of a site
that says when it is pushed too hard (a rate-limit answer) and settles within one step above
it; after that answer it descends no more for :data:`SETTLE` seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

FIRST_STEP = 0.5  # seconds: the least gap a first slow-down asks for (see the module docstring)
HALF_LIFE = 120.0  # seconds over which a learned gap's excess over the floor halves
SETTLE = 120.0  # seconds a slowed gap holds before it decays
WINDOW = 10.0  # seconds within which rate limits of two proxies say the site's pace is too fast
DESCENT = 0.9  # with PROXY_PACE_BELOW_COOLDOWN: the share of its gap a site answering fine keeps, once per gap


@dataclass(frozen=True, slots=True)
class SitePace:
    """A learned gap: ``gap`` seconds as of ``since``, decaying toward the floor; the last
    proxy the site rate limited, and when; and the least gap it answered fine at (``good``:
    a descent's previous step, where a rate limit sends the pace back)."""

    gap: float = 0.0
    since: float = -math.inf
    limited_by: str = ""
    limited_at: float = -math.inf
    good: float = math.inf

    def at(self, now: float, floor: float, start: float | None = None) -> float:
        """The gap now, above ``floor``; a site with nothing learned is at ``start`` (the
        cooldown; the floor unless the pace may go below the cooldown)."""
        if self.since == -math.inf:
            return floor if start is None else max(floor, start)
        if self.gap <= floor:
            return floor
        excess = (self.gap - floor) * 0.5 ** (max(0.0, now - self.since - SETTLE) / HALF_LIFE)
        return floor + excess if excess > 1e-3 else floor

    def idle_at(self, longest_gap: float) -> float:
        """When nothing of this pace matters any more (it may be forgotten): its excess decayed
        below a millisecond whatever the floor, its last rate limit out of every window
        (``longest_gap``: the most a gap can be)."""
        decayed = self.since + SETTLE + HALF_LIFE * math.log2(self.gap / 1e-3) if self.gap > 1e-3 else -math.inf
        return max(decayed, self.limited_at + max(WINDOW, 4 * longest_gap))

    def rate_limited(self, now: float, floor: float, cap: float, sent_at: float, proxy: str,
                     pool_size: int, start: float | None = None) -> SitePace:
        """After a rate-limit answer through ``proxy`` to a request sent at ``sent_at``."""
        first = self.limited_at == -math.inf  # the site's first: every pair is as fast as this one
        noted = replace(self, limited_by=proxy, limited_at=now)
        lone = self.limited_by in ("", proxy) or now - self.limited_at > max(WINDOW, 4 * self.at(now, floor, start))
        if pool_size > 1 and lone and not first:
            return noted
        return noted.slowed(now, floor, cap, sent_at, start)

    def slowed(self, now: float, floor: float, cap: float, sent_at: float, start: float | None = None) -> SitePace:
        """Back to the least gap above this one the site answered fine at, else twice the
        current gap, at least :data:`FIRST_STEP`; once per round, as answers to requests sent
        before the last change do not slow it again."""
        if sent_at <= self.since:
            return self
        current = self.at(now, floor, start)
        gap = self.good if current < self.good <= cap else min(cap, max(2.0 * current, FIRST_STEP, floor))
        return replace(self, gap=gap if math.isfinite(gap) else cap, since=now)

    def descended(self, now: float, floor: float, start: float, sent_at: float) -> SitePace:
        """After a fine answer to a request sent at ``sent_at``, with the pace allowed below the
        cooldown (``floor`` < ``start``): once a gap has passed since the last change, and not
        within :data:`SETTLE` of a rate limit, the gap is cut by :data:`DESCENT`."""
        current = self.at(now, floor, start)
        if (current <= floor or sent_at < self.since or now - self.since < current
                or now - self.limited_at < SETTLE):
            return self
        return replace(self, gap=max(floor, current * DESCENT), since=now, good=min(self.good, current))
