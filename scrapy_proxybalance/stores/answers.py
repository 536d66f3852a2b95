"""A site's answers in the order they came: when the next of its pairs ends its gap, and when
each pair's answer may be forgotten.

Every answer is appended, once: a site's gap holds each pair from its last answer, so the
soonest pair to end its gap is the earliest answer within the gap that is still its pair's
last; and a pair whose last answer has been remembered as long as a gap can grow to may be
forgotten, so the store looks at the answers in order once they are that old. One list does
both, cheaper per answer than a heap of gaps beside a heap of forgetting times.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from operator import itemgetter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .forgetting import Pair

ANSWERS = "\x00answers"  # the sweep's key for a site's answers ("" is its pace and tier; a proxy's key is a URL)
_ANSWERED = itemgetter(0)
COMPACT_AFTER = 1024  # answers looked at before the list drops them (once they are half of it)


class Answers:
    """``(answered, proxy)`` of one site, in time order; those before ``start`` were looked at
    already. ``due``: when the store's sweep looks at them next (``inf``: not booked)."""

    __slots__ = ("due", "log", "start")

    def __init__(self) -> None:
        self.log: list[tuple[float, str]] = []
        self.start = 0
        self.due = math.inf

    def insert(self, now: float, key: str) -> None:
        """An answer at ``now``, earlier than the last (a clock that went back), in its place;
        the store appends one in order to :attr:`log` itself (the common case, per request)."""
        bisect.insort(self.log, (now, key), lo=self.start)

    def soonest(self, pairs: Mapping[str, Pair], now: float, gap: float) -> float | None:
        """When the first pair still within ``gap`` of its last answer ends it, if one is."""
        log = self.log
        for i in range(bisect.bisect_right(log, now - gap, lo=self.start, key=_ANSWERED), len(log)):
            answered, key = log[i]
            pair = pairs.get(key)
            if pair is not None and pair.answered == answered and answered + gap > now:
                return answered + gap
        return None

    def take_due(self, now: float, memory: float) -> list[tuple[float, str]]:
        """The answers not looked at yet that are ``memory`` old by ``now`` (now looked at);
        ``due`` becomes when the next is (``inf``: none left)."""
        log, start = self.log, self.start
        end = start
        while end < len(log) and log[end][0] + memory <= now:
            end += 1
        due = log[start:end]
        if end > COMPACT_AFTER and 2 * end > len(log):
            del log[:end]
            end = 0
        self.start = end
        self.due = log[end][0] + memory if end < len(log) else math.inf
        return due
