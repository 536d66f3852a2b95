"""Whether a request that went wrong through a proxy is tried again elsewhere: ``Retry | GiveUp``.

- A failure or a ban is charged to the request's budget (``PROXY_RETRY_TIMES``) only for the
  proxies it failed through that are still in rotation: a proxy ejected since was at fault
  itself. While under half the region is in rotation (Envoy's panic threshold) nothing is
  charged: the pool is down, not the request.
- A rate-limit or overload answer is not the request's fault: it moves on uncharged, and
  may even go back to that proxy later (it is not excluded).
- A request that has tried every proxy waits for the ejected ones to come back.
- A request out of budget waits :data:`LAST_TRY_DELAY` and tries once more before giving up:
  the first instant of a blackout looks like that, before enough failures eject anything.
- No request moves more than ``retry_times + FREE_MOVES`` times.
- A sticky session's request is tried again on the session's proxy (it is never excluded:
  the session moves only when the proxy is lost, see :mod:`.sessions`); its failures are
  charged like any request's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .outcomes import Outcome

FREE_MOVES = 25  # uncharged moves one request may take on top of its budget: no endless loop
LAST_TRY_DELAY = 1.0  # a request out of budget waits this long, then tries once more


@dataclass(frozen=True, slots=True)
class Retry:
    tried: tuple[str, ...]  # proxies the next attempt must not use
    moves: int  # times the request has moved to another proxy, this one included
    charged: bool  # counted against the budget
    delay: float = 0.0  # wait this long before the next attempt
    last_try: bool = False  # this is the one more try after the budget ran out


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: str


def decide_retry(
    *,
    proxy: str,
    outcome: Outcome,
    tried: Sequence[str],
    moves: int,
    had_last_try: bool,
    in_rotation: Callable[[str], bool],
    degraded: bool,
    region_size: int,
    retry_times: int,
    sticky: bool = False,
) -> Retry | GiveUp:
    """The next step for a request whose attempt through ``proxy`` ended with ``outcome``
    (retryable), after ``moves`` earlier moves and the ``tried`` proxies."""
    moves += 1
    if moves > retry_times + FREE_MOVES:
        return GiveUp(f"moved {moves - 1} times")
    if not outcome.charged:
        return Retry(tuple(tried), moves, charged=False)
    failures = [*tried, proxy]
    innocent = [] if degraded else [k for k in failures if in_rotation(k)]  # failed it while in rotation
    charged = not degraded and in_rotation(proxy)
    if sticky:  # counted like any request's, but its session's proxy is never excluded
        if len(innocent) > retry_times:
            return GiveUp(f"its session's proxies failed it {len(innocent)} times while in rotation")
        return Retry(tuple(failures), moves, charged=charged)
    return _elsewhere(failures, innocent, moves, had_last_try, region_size, retry_times, charged)


def _elsewhere(failures: list[str], innocent: list[str], moves: int, had_last_try: bool, region_size: int,
               retry_times: int, charged: bool) -> Retry | GiveUp:
    """The next step on another proxy for a request that failed through ``failures``."""
    exclude = failures if len(failures) < region_size else innocent  # tried them all: wait for the guilty
    if len(innocent) > retry_times:
        if not had_last_try and len(exclude) < region_size:
            return Retry(tuple(exclude), moves, charged=True, delay=LAST_TRY_DELAY, last_try=True)
        return GiveUp(f"{len(innocent)} proxies in rotation failed it")
    if len(exclude) >= region_size:
        return GiveUp(f"all {region_size} proxies failed it")
    return Retry(tuple(exclude), moves, charged=charged)
