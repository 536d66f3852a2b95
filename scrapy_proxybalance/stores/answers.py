"""A site's answers in the order they came: when the next of its pairs ends its gap, and when
each pair's answer may be forgotten.

Every answer is appended, once: a site's gap holds each pair from its last answer, so the
soonest pair to end its gap is the earliest answer within the gap that is still its pair's
last; and a pair whose last answer has been remembered as long as a gap can grow to may be
forgotten, so the store looks at the answers in order once they are that old. One log does
both, cheaper per answer than a heap of gaps beside a heap of forgetting times.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .forgetting import Pair

ANSWERS = "\x00answers"  # the sweep's key for a site's answers ("" is its pace and tier; a proxy's key is a URL)
COMPACT_AFTER = 1024  # answers looked at before the lists drop them (once they are half of them)


class Answers:
    """When each answer came (``times``, in order) and through which proxy (``keys``), of one
    site, in two lists side by side (no object made per answer); those before ``start`` were
    looked at already. ``due``: when the store's sweep looks at them next (``inf``: not booked)."""

    __slots__ = ("due", "keys", "start", "times")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.keys: list[str] = []
        self.start = 0
        self.due = math.inf

    def insert(self, now: float, key: str) -> None:
        """An answer at ``now``, earlier than the last (a clock that went back), in its place;
        the store appends one in order itself (the common case, per request)."""
        i = bisect.bisect_right(self.times, now, lo=self.start)
        self.times.insert(i, now)
        self.keys.insert(i, key)

    def soonest(self, pairs: Mapping[str, Pair], now: float, gap: float) -> float | None:
        """When the first pair still within ``gap`` of its last answer ends it, if one is."""
        times, keys = self.times, self.keys
        for i in range(bisect.bisect_right(times, now - gap, lo=self.start), len(times)):
            answered = times[i]
            pair = pairs.get(keys[i])
            if pair is not None and pair.answered == answered and answered + gap > now:
                return answered + gap
        return None

    def take_due(self, now: float, memory: float) -> list[tuple[float, str]]:
        """The answers not looked at yet that are ``memory`` old by ``now`` (now looked at);
        ``due`` becomes when the next is (``inf``: none left)."""
        times, keys, start = self.times, self.keys, self.start
        end = start
        while end < len(times) and times[end] + memory <= now:
            end += 1
        due = list(zip(times[start:end], keys[start:end], strict=True))
        if end > COMPACT_AFTER and 2 * end > len(times):
            del times[:end], keys[:end]
            end = 0
        self.start = end
        self.due = times[end] + memory if end < len(times) else math.inf
        return due
