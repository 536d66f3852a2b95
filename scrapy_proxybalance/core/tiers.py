"""Tiers: the cheapest proxies a site accepts, learned per site (a waterfall that steps back).

Each pool entry has a price ``tier`` (0 the cheapest: datacenter proxies, or a direct
connection; higher: residential, mobile, an unblocking API). A site starts at the lowest tier
allowed for it (its floor, ``PROXY_SITE_TIERS``) and its requests go through proxies of the
site's tier:

- **climb**: the site *refuses* its tier when bans there come from :data:`CLIMB_BANS`
  distinct proxies of that tier within :data:`CLIMB_WINDOW` seconds (one bad proxy does not
  move a site; rate limits, overload and proxy failures never count). It goes to the next
  tier up that has proxies, up to its ceiling. A request banned at one tier is retried at
  once a tier up (``at_least``): it does not pay twice to learn the same thing.
- **probe down**: :attr:`TierRules.probe_after` seconds after a climb, one request of the site
  (a probe) goes one tier down; if the site takes it, the site steps down; if the site bans
  it, the next probe waits twice as long (up to :attr:`TierRules.probe_max`). One probe is
  out at a time (a probe lost without a verdict frees the turn after :data:`PROBE_STALE`).
- a request may pin its tier (``meta['proxy_tier']``); a pin is a pin.
- a tier with no proxy in rotation (all ejected), or whose every proxy the site bans,
  passes a request on to the next tier up, within the ceiling; a site's tier does not move
  for that (only bans from its proxies move it).

The state of each site is one frozen :class:`SiteTier`, kept in the store (shared by a
fleet, saved in a ``JOBDIR``). Every rule takes the time as an argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from .outcomes import Outcome

if TYPE_CHECKING:
    from .listener import PoolListener

CLIMB_BANS = 2  # distinct proxies of a tier whose bans by a site within the window make it climb
CLIMB_WINDOW = 600.0  # seconds within which those bans count together
PROBE_STALE = 120.0  # a probe without an answer this long no longer holds the turn
TOP = 99  # the highest tier an entry may have


def closest(mapping: Mapping[str, object], host: str) -> object | None:
    """The value ``mapping`` gives ``host`` or its closest parent domain (``None`` if none)."""
    if not mapping:
        return None
    labels = host.lower().split(".")
    for i in range(len(labels)):
        value = mapping.get(".".join(labels[i:]))
        if value is not None:
            return value
    return None


@dataclass(frozen=True, slots=True)
class TierRules:
    probe_after: float  # seconds after a climb (or a failed probe) before probing a tier down
    probe_max: float  # the longest wait between two probes
    site_bounds: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # domain -> (floor, ceiling)

    def bounds(self, site: str) -> tuple[int, int]:
        """The site's ``(floor, ceiling)``: its own or its closest parent domain's, else any."""
        found = closest(self.site_bounds, site)
        return found if isinstance(found, tuple) else (0, TOP)


@dataclass(frozen=True, slots=True)
class SiteTier:
    """A site's tier (-1: not decided yet), since when, the proxies of it the site banned
    lately (``banned_by``, the first of them at ``banned_at``), when to probe the tier below
    (``probe_at``), how long the last wait for it was (``probe_every``), when the probe now out
    went (``probing``), and why the site is where it is."""

    tier: int = -1
    since: float = -math.inf
    banned_by: tuple[str, ...] = ()
    banned_at: float = -math.inf
    probe_at: float = math.inf
    probe_every: float = 0.0
    probing: float = -math.inf
    why: str = ""


    def idle_at(self) -> float:
        """When the state may be forgotten (a site is then new again, starting at its floor):
        a climb window after it was decided and after its last ban, its probe stale, and a tier
        it climbed to kept until its next probe is due and as long again."""
        climbed = self.probe_at + self.probe_every if math.isfinite(self.probe_at) else -math.inf
        return max(max(self.since, self.banned_at) + CLIMB_WINDOW, self.probing + PROBE_STALE, climbed)


NO_TIER = SiteTier()


@dataclass(frozen=True, slots=True)
class TierChoice:
    """The tiers a request may go at, cheapest first (the first is the site's tier, or a
    probe's), and whether it is a probe."""

    tiers: tuple[int, ...]
    probe: bool = False


class TierStore(Protocol):
    def tier(self, site: str) -> SiteTier: ...

    def set_tier(self, site: str, tier: SiteTier) -> None: ...


class Tiers:
    """The tier rules over the tiers the pool has (``present()``: how many proxies each tier
    has), each site's state in ``store``."""

    def __init__(self, rules: TierRules, present: Callable[[], Mapping[int, int]], store: TierStore,
                 listener: PoolListener) -> None:
        self.rules = rules
        self.present = present
        self.store = store
        self.listener = listener

    def state(self, site: str, now: float) -> SiteTier:
        """The site's state, decided (and stored) for a new site."""
        state = self.store.tier(site)
        if state.tier < 0:
            state = self.settle(state, site, now)
            self.store.set_tier(site, state)
        return state

    def sent(self, site: str, state: SiteTier, probe: bool, now: float) -> None:
        """A request went at the tier chosen: a probe holds the turn."""
        if probe:
            self.store.set_tier(site, replace(state, probing=now))

    def answered(self, site: str, tier: int, proxy: str, outcome: Outcome, probe: bool, now: float) -> None:
        """What the site's answer to a request at ``tier`` (through ``proxy``) tells."""
        state = self.store.tier(site)
        if state.tier < 0:
            return
        if outcome is Outcome.BAN:
            new = self.banned(state, site, tier, proxy, now, probe)
        elif outcome is Outcome.SUCCESS:
            new = self.took(state, tier, now, probe)
        elif probe:
            new = self.probe_lost(state, now)
        else:
            return
        if new != state:
            self.store.set_tier(site, new)
            if new.tier != state.tier:
                self.listener.tier_moved(site, state.tier, new.tier, new.why)

    def settle(self, state: SiteTier, site: str, now: float) -> SiteTier:
        """The state with a tier decided: a new site starts at its floor."""
        if state.tier >= 0:
            return state
        floor, ceiling = self.rules.bounds(site)
        return replace(state, tier=self._at_or_above(floor, ceiling), since=now, why="its floor")

    def choose(self, state: SiteTier, site: str, now: float, pinned: int | None = None,
               at_least: int = 0) -> TierChoice:
        """The tiers for a request to ``site`` whose state (settled) is ``state``: ``pinned``
        by the request, or ``at_least`` a tier (a retry after a ban), or a probe's."""
        if pinned is not None:
            return TierChoice((pinned,))
        floor, ceiling = self.rules.bounds(site)
        start = max(state.tier, at_least, floor)
        if at_least < state.tier and now >= state.probe_at and now - state.probing > PROBE_STALE:
            below = max((t for t in self.present() if max(floor, at_least) <= t < state.tier), default=None)
            if below is not None:
                return TierChoice((below,), probe=True)
        return TierChoice(tuple(t for t in sorted(self.present()) if start <= t <= ceiling) or
                          (self._at_or_above(start, ceiling),))

    def banned(self, state: SiteTier, site: str, tier: int, proxy: str, now: float, probe: bool) -> SiteTier:
        """A proxy of ``tier`` was banned by ``site``: the probe failed, or the ban counts
        toward a climb."""
        if probe:
            every = min(max(self.rules.probe_after, 2 * state.probe_every), self.rules.probe_max)
            return replace(state, probing=-math.inf, probe_at=now + every, probe_every=every)
        if tier != state.tier:
            return state  # pinned, or passed up a tier: says nothing of the site's own tier
        recent = state.banned_by if now - state.banned_at <= CLIMB_WINDOW else ()
        first = state.banned_at if recent else now
        banned_by = recent if proxy in recent else (*recent, proxy)
        if len(banned_by) < min(CLIMB_BANS, self.present().get(tier, 0)):
            return replace(state, banned_by=banned_by, banned_at=first)
        _, ceiling = self.rules.bounds(site)
        above = self._at_or_above(tier + 1, ceiling)
        if above <= tier:
            return replace(state, banned_by=banned_by, banned_at=first, why=f"banned at tier {tier}, its highest")
        return SiteTier(above, now, (), -math.inf, now + self.rules.probe_after, self.rules.probe_after,
                        -math.inf, f"tier {tier} banned by {len(banned_by)} of its proxies")

    def took(self, state: SiteTier, tier: int, now: float, probe: bool) -> SiteTier:
        """The site took a request at ``tier``: a probe that got through steps the site down."""
        if not probe or tier >= state.tier:
            return state
        return SiteTier(tier, now, (), -math.inf, now + self.rules.probe_after, self.rules.probe_after,
                        -math.inf, f"a probe at tier {tier} got through")

    def probe_lost(self, state: SiteTier, now: float) -> SiteTier:
        """A probe ended without a verdict (a proxy failure, a rate limit): another goes soon."""
        return replace(state, probing=-math.inf, probe_at=min(state.probe_at, now + self.rules.probe_after / 10))

    def _at_or_above(self, tier: int, ceiling: int) -> int:
        """The lowest tier with proxies from ``tier`` up to ``ceiling``, else the highest below."""
        present = sorted(self.present())
        above = [t for t in present if tier <= t <= ceiling]
        if above:
            return above[0]
        below = [t for t in present if t <= ceiling]
        return below[-1] if below else tier


def saved(states: Mapping[str, SiteTier], now: float) -> dict[str, dict[str, object]]:
    """Each site's tier as plain data that outlives this process (times from ``now``)."""
    return {site: {"tier": s.tier, "why": s.why, "probe_every": s.probe_every,
                   "probe_in": None if math.isinf(s.probe_at) else max(0.0, s.probe_at - now)}
            for site, s in states.items() if s.tier >= 0}


def restored(data: object, now: float) -> dict[str, SiteTier]:
    """Sites' tiers from :func:`saved` data (what does not read as one is left out)."""
    out: dict[str, SiteTier] = {}
    for site, s in (data.items() if isinstance(data, dict) else ()):
        try:
            tier, probe_in = int(s["tier"]), s["probe_in"]
            probe_at = math.inf if probe_in is None else now + float(probe_in)
            out[str(site)] = SiteTier(tier, now, (), -math.inf, probe_at, float(s["probe_every"]), -math.inf,
                                      str(s["why"]))
        except (KeyError, TypeError, ValueError):
            continue
    return out
