"""``PROXY_UNAVAILABLE_TIMEOUT``: how long no proxy could serve a (site, region), and when to act.

An episode starts with the first wait that says *unavailable* (every proxy that could serve
is ejected, disabled or banned) and ends only when the site is served for real: a success
there, or a lease of a proven proxy. A probe or trial of a returning proxy that fails again
does not end it, so the clock runs on through a pool that keeps dying. An episode also ends
when nobody has waited on it for :data:`GAP` (nothing was waiting any more).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

CHECK = 5.0  # while unavailable, a waiting request looks again at least this often (s)
GAP = 2 * CHECK + 1.0  # no wait noted for this long: the next one starts a new episode


@dataclass(frozen=True, slots=True)
class Act:
    """The timeout is over: close the spider, or fail the request."""

    message: str


class Unavailability:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.episodes: dict[Hashable, tuple[float, float]] = {}  # key -> (since, last noted)
        self.tidy_at = 1024  # episodes: past this many, the ended ones are dropped

    def waiting(self, key: Hashable, seconds: float, unavailable: bool, now: float, what: str) -> float | Act:
        """A request for ``key`` must wait ``seconds``: how long to wait before looking
        again (short enough to notice the deadline), or :class:`Act` when it has passed."""
        if not unavailable or not self.timeout:
            return seconds
        since, last = self.episodes.get(key, (now, now))
        if now - last > GAP:
            since = now
        self.episodes[key] = (since, now)
        if len(self.episodes) > self.tidy_at:  # sites nobody waits for any more (amortized: the size doubles)
            self.episodes = {k: e for k, e in self.episodes.items() if now - e[1] <= GAP}
            self.tidy_at = max(1024, 2 * len(self.episodes))
        left = since + self.timeout - now
        if left > 0:
            return min(seconds, left, CHECK)
        return Act(f"no proxy could serve {what} for {now - since:.0f} s (PROXY_UNAVAILABLE_TIMEOUT)")

    def served(self, key: Hashable) -> None:
        """The site was served for real: the episode, if any, is over."""
        if self.episodes:
            self.episodes.pop(key, None)
