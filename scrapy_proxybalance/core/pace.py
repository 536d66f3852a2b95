"""Each site's pace: the gap one proxy keeps between two requests to it (AutoThrottle for a pool).

The gap starts at the configured cooldown (``PROXY_DOMAIN_COOLDOWN``, or ``DOWNLOAD_DELAY`` if
larger) and is counted from the moment the previous request through that (proxy, site) pair
got its answer, the first moment we know the site saw it: the site never sees two requests
of one exit closer together, however uneven the transit times.

A rate-limit answer slows the site down when it is the site's pace that is too fast: the
first one the site ever gives (nothing is known of its limit yet, and every pair is as fast
as the one that met it, so all of them slow at once), then one of a second proxy within
:data:`WINDOW` (or the pool has one proxy). The gap then doubles (at least to
:data:`FIRST_STEP`, capped), once per round of requests; or, when a gap just above was
answered fine, it goes back to that one (the limit lies between); or, when the request met
the limit at the gap answered fine, one step (:data:`DESCENT`) above it (the limit is right
there: the site counts arrivals, we count from answers). The first step is half a second, a
common per-address limit, rather than a smaller one: a step too small costs another round of
rate limits, each pausing its pair for the site's ``Retry-After`` (often tens of seconds),
while a step too large costs only pace until it decays. A lone proxy rate limited again and
again is that exit's problem, not the site's: it pauses that pair only, so one flagged
address never slows a site for the whole pool. A slowed gap holds for :data:`SETTLE` seconds
(a gap that was just too fast is likely the site's limit, and any step below the new one
would meet it again); then, while the site answers fine, it decays back toward the floor,
halving its excess every :data:`HALF_LIFE` seconds.

No pair goes back to a site sooner than the least gap (from a pair's answer to its next
request) the site answered fine at, ``good``. A gap below it (the cooldown at first, a decayed
or descending one later) is tried by one request at a time, a pilot (see
:meth:`SitePace.unproven`), whose fine answer proves the gap it went at; the other pairs keep
``good`` meanwhile (none known: they wait for the pilot's answer). Every pair as fast as an
untried gap would meet the site's limit in the same round, one penalty per pair; a pilot
costs at most one per site. ``good`` is remembered as long as a rate limit is; a rate limit at
or above it forgets it.

With ``PROXY_PACE_BELOW_COOLDOWN`` the floor is ``DOWNLOAD_DELAY`` instead of the cooldown: once
a pilot has proven the site's gap (within :data:`JITTER`), the next fine answer cuts it by
:data:`DESCENT` (additive increase of the rate, as AutoThrottle and TCP probe), so the pace
finds the limit of a site that says when it is pushed too hard (a rate-limit answer, met by
one pilot) and settles within one step above it; after that answer it descends no more for
:data:`SETTLE` seconds. Until a site has rate limited at all, the steps grow (each cuts by
:data:`DESCENT` once more than the one before, up to :data:`STEPS_MAX` times), as TCP's slow
start grows its window before the first loss: a cooldown far above the site's limit is left
behind in a few rounds, not tens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

FIRST_STEP = 0.5  # seconds: the least gap a first slow-down asks for (see the module docstring)
HALF_LIFE = 120.0  # seconds over which a learned gap's excess over the floor halves
SETTLE = 120.0  # seconds a slowed gap holds before it decays
WINDOW = 10.0  # seconds within which rate limits of two proxies say the site's pace is too fast
DESCENT = 0.9  # with PROXY_PACE_BELOW_COOLDOWN: the share of its gap a site answering fine keeps, per step
JITTER = 0.05  # a gap within this share (or JITTER_MIN seconds) below the proven one counts as answered fine
JITTER_MIN = 0.02
STEPS_MAX = 3  # a descent before the site's first rate limit cuts by at most DESCENT ** STEPS_MAX
PILOT_PATIENCE = 10.0  # seconds a pilot holds the other pairs back; after that (a hung proxy) another may try


@dataclass(frozen=True, slots=True)
class SitePace:
    """A learned gap: ``gap`` seconds as of ``since``, decaying toward the floor; the last
    proxy the site rate limited, and when; and the least gap it answered fine at (``good``,
    as of ``proved_at``: where a rate limit sends the pace back, and below which a gap is
    tried by one pilot request first)."""

    gap: float = 0.0
    since: float = -math.inf
    limited_by: str = ""
    limited_at: float = -math.inf
    good: float = math.inf
    proved_at: float = -math.inf
    steps: int = 0  # descents in a row since the pace last changed otherwise

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
        return max(decayed, max(self.limited_at, self.proved_at) + max(WINDOW, 4 * longest_gap))

    def least_proven(self) -> float:
        """:attr:`good` less its jitter (``inf`` if none): a gap from here up counts as
        answered fine at (a descent may go on from it, a rate limit there is at the edge)."""
        good = self.good
        return good - max(JITTER * good, JITTER_MIN) if good < math.inf else math.inf

    def unproven(self, gap: float) -> bool:
        """Whether ``gap`` is below :attr:`good` (at 0: by more than jitter): one request at a
        time (a pilot) tries it, while the others keep :attr:`good`."""
        return gap < self.good and (gap > 0 or self.good > JITTER_MIN)

    def proved(self, now: float, gap: float) -> SitePace:
        """After a fine answer to a pilot sent ``gap`` seconds after its pair's last answer."""
        return replace(self, good=gap, proved_at=now) if gap < self.good else self

    def rate_limited(self, now: float, floor: float, cap: float, sent_at: float, proxy: str,
                     pool_size: int, start: float | None = None, went: float = 0.0) -> SitePace:
        """After a rate-limit answer through ``proxy`` to a request sent at ``sent_at``,
        ``went`` seconds after its pair's last answer there (0: none remembered)."""
        first = self.limited_at == -math.inf  # the site's first: every pair is as fast as this one
        noted = replace(self, limited_by=proxy, limited_at=now)
        lone = self.limited_by in ("", proxy) or now - self.limited_at > max(WINDOW, 4 * self.at(now, floor, start))
        if pool_size > 1 and lone and not first:
            return noted
        return noted.slowed(now, floor, cap, sent_at, start, went)

    def slowed(self, now: float, floor: float, cap: float, sent_at: float, start: float | None = None,
               went: float = 0.0) -> SitePace:
        """Back to the least gap above this one the site answered fine at; one step
        (:data:`DESCENT`) above it if the limited request went at that gap (``went``: the
        limit is right there, as arrivals are counted, not answers); else twice the current
        gap, at least :data:`FIRST_STEP`. Once per round, as answers to requests sent before
        the last change do not slow it again."""
        if sent_at <= self.since:
            return self
        current, good = self.at(now, floor, start), self.good
        met = max(current, went)
        if met < good <= cap:  # a pilot below it
            return replace(self, gap=good, since=now)
        if good <= cap and met <= good + max(JITTER * good, JITTER_MIN):  # at the edge of what it answered fine at
            gap = max(good / DESCENT, floor)
        else:
            gap = max(2.0 * current, FIRST_STEP, floor)
        gap = min(cap, gap)  # what it answered fine at no longer holds
        return replace(self, gap=gap if math.isfinite(gap) else cap, since=now, good=math.inf, proved_at=-math.inf,
                       steps=0)

    def descended(self, now: float, floor: float, start: float, sent_at: float) -> SitePace:
        """After a fine answer to a request sent at ``sent_at`` (since the last change), with the
        pace allowed below the cooldown (``floor`` < ``start``): the gap proven by a pilot and
        not within :data:`SETTLE` of a rate limit, it is cut by :data:`DESCENT` (by a power of
        it, growing with each step in a row, while the site never rate limited)."""
        current = self.at(now, floor, start)
        if (current <= floor or sent_at < self.since or now - self.limited_at < SETTLE
                or current < self.least_proven()):
            return self
        power = 1 if self.limited_at > -math.inf else min(self.steps + 1, STEPS_MAX)
        return replace(self, gap=max(floor, current * DESCENT**power), since=now, steps=self.steps + 1)
