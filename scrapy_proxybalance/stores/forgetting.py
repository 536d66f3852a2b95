"""What a memory store forgets, and when: a pair, or a site's pace and tier, once it holds nothing.

A pair that answered is looked at once its last answer is as old as the store remembers
answers: the site's answers (see :mod:`.answers`) come due in order, one sweep entry a site (see
:mod:`.sweep`). A pair held otherwise (paused, banned, held by the fleet, or taken and never
answered) has an entry of its own in the sweep, one at a time, due when it may hold nothing any
more. When one comes due, a pair in use or still holding something is looked at again later,
the others are dropped. (A pair dropped and made again before its old entry came due has two for
a while.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.pace import SitePace
from ..core.tiers import SiteTier
from .answers import ANSWERS, Answers
from .sweep import Sweep


@dataclass(slots=True)
class Pair:
    busy: int = 0
    answered: float = -math.inf  # the last answer through the pair
    hold: float = -math.inf  # paused until then (Retry-After)
    fleet: float = -math.inf  # held by another process until then, as the shared store last said
    ban_until: float = -math.inf
    ban_level: int = 0
    level_until: float = -math.inf  # the ban level is remembered until then (as long again as the ban)
    watched: bool = False  # the sweep holds an entry of its own for it (it looks again then if need be)


class Forgetting:
    """The forgetting half of :class:`.MemoryStore` (what it holds is declared there)."""

    pairs: dict[str, dict[str, Pair]]
    memory: float
    answers: dict[str, Answers]
    sweep: Sweep
    held: int
    holds: dict[str, list[tuple[float, str]]]
    bans: dict[str, dict[str, float]]
    bans_of: dict[str, dict[str, float]]
    paces: dict[str, SitePace]
    site_tiers: dict[str, SiteTier]

    def remember_answers(self, seconds: float) -> None:
        self.memory = seconds

    def _idle_at(self, pair: Pair) -> float:
        """When a pair not in use holds nothing any more: its answer out of memory, its pause,
        fleet hold and ban over, its ban level forgotten."""
        level = pair.level_until if pair.ban_level else -math.inf
        return max(pair.answered + self.memory, pair.hold, pair.ban_until, pair.fleet, level)

    def _tidy(self, site: str, key: str, pair: Pair, now: float) -> None:
        """Drop a pair that holds nothing any more."""
        if not pair.busy and self._idle_at(pair) <= now:
            self._drop(site, key, pair)

    def _drop(self, site: str, key: str, pair: Pair) -> None:
        """Drop a pair not in use that holds nothing; with a site's last pair, what else the
        store keeps of the site's pairs."""
        pairs = self.pairs[site]
        del pairs[key]
        self.held -= 1
        if pair.ban_until > -math.inf:  # (only a pair ever banned is in the ban indexes)
            for index, name, other in ((self.bans, site, key), (self.bans_of, key, site)):
                held = index.get(name)
                if held is not None and held.pop(other, None) is not None and not held:
                    del index[name]
        if not pairs:
            del self.pairs[site]
            self.answers.pop(site, None)
            self.holds.pop(site, None)

    def _watch(self, pair: Pair, site: str, key: str) -> None:
        """The sweep looks at the pair once it may hold nothing any more. One entry a pair at a
        time: a pair in use moves its idle time on with every answer, and its entry, when due,
        looks again then (a pair whose idle time came sooner waits for its entry)."""
        pair.watched = True
        self.sweep.add(self._idle_at(pair), site, key)

    def _due(self, when: float, site: str) -> None:
        """The sweep looks at a site's pace and tier at ``when``."""
        self.sweep.add(when, site, "")
        self._compact_if_piled()

    def _compact_if_piled(self) -> None:
        """Rebuild the sweep once it holds far more entries than what it watches (a site's pace
        and tier get an entry each time they change)."""
        if self.sweep.size > 4096 + 4 * (self.held + len(self.paces) + len(self.site_tiers) + len(self.answers)):
            self._compact()

    def _forget_due(self, now: float) -> None:
        """Forget what has come due and holds nothing any more (amortized: each entry once)."""
        self._compact_if_piled()
        sweep, all_pairs = self.sweep, self.pairs
        while (due := sweep.take(now)) is not None:
            for site, key in due:
                if key == ANSWERS:
                    self._forget_answered(site, now)
                    continue
                if not key:
                    self._forget_site(site, now)
                    continue
                pairs = all_pairs.get(site)
                pair = pairs.get(key) if pairs else None
                if pair is None:
                    continue
                pair.watched = False
                if pair.busy:
                    continue  # its answer or untake will watch it
                idle = self._idle_at(pair)
                if idle <= now:
                    self._drop(site, key, pair)
                else:
                    pair.watched = True
                    sweep.add(idle, site, key)

    def _forget_answered(self, site: str, now: float) -> None:
        """Look at the pairs whose answers to the site have come due: forget those that hold
        nothing else, watch the others; book the sweep for the next answer."""
        answers = self.answers.get(site)
        if answers is None or answers.due > now:
            return
        pairs = self.pairs.get(site) or {}
        for answered, key in answers.take_due(now, self.memory):
            pair = pairs.get(key)
            if pair is None or pair.answered != answered or pair.busy or pair.watched:
                continue  # gone, answered again since (that answer comes due later), in use, or watched
            if self._idle_at(pair) <= now:
                self._drop(site, key, pair)
            else:
                self._watch(pair, site, key)
        if answers.due < math.inf:
            self.sweep.add(answers.due, site, ANSWERS)
        elif self.answers.get(site) is answers:
            del self.answers[site]

    def _forget_site(self, site: str, now: float) -> None:
        """Forget the site's pace and tier if they no longer matter, else look again when they may not."""
        later = math.inf
        pace = self.paces.get(site)
        if pace is not None:
            if (idle := pace.idle_at(self.memory)) <= now:
                del self.paces[site]
            else:
                later = idle
        tier = self.site_tiers.get(site)
        if tier is not None:
            if (idle := tier.idle_at()) <= now:
                del self.site_tiers[site]
            else:
                later = min(later, idle)
        if later < math.inf:
            self.sweep.add(later, site, "")

    def _compact(self) -> None:
        """Rebuild the sweep from what is held (a site's pace and tier entries pile up)."""
        for pairs in self.pairs.values():
            for pair in pairs.values():
                pair.watched = not pair.busy
        self.sweep.rebuild([(self._idle_at(pair), site, key) for site, pairs in self.pairs.items()
                            for key, pair in pairs.items() if pair.watched]
                           + [(-math.inf, site, "") for site in self.paces.keys() | self.site_tiers.keys()]
                           + [(answers.due, site, ANSWERS) for site, answers in self.answers.items()])
