"""The core's small rules as units: retry, unavailability, concurrency limits, site pace."""

import math

import pytest

from scrapy_proxybalance.core.availability import CHECK, GAP, Act, Unavailability
from scrapy_proxybalance.core.limits import MAX_LIMIT, ConcurrencyLimit
from scrapy_proxybalance.core.outcomes import Outcome
from scrapy_proxybalance.core.pace import DESCENT, FIRST_STEP, HALF_LIFE, JITTER, SETTLE, WINDOW, SitePace
from scrapy_proxybalance.core.retry import FREE_MOVES, LAST_TRY_DELAY, GiveUp, Retry, decide_retry

POOL = [f"p{i}" for i in range(6)]


def retry(outcome=Outcome.FAILURE, proxy="p0", tried=(), moves=0, had_last_try=False, out=(), degraded=False,
          size=6, times=3, sticky=False):
    return decide_retry(proxy=proxy, outcome=outcome, tried=list(tried), moves=moves, had_last_try=had_last_try,
                        in_rotation=lambda k: k not in out, degraded=degraded, region_size=size, retry_times=times,
                        sticky=sticky)


def test_a_session_s_request_is_charged_like_any_but_tried_again_on_the_same_proxy():
    assert retry(sticky=True, tried=["p0"], moves=1, size=1) == Retry(("p0", "p0"), 2, charged=True)
    assert isinstance(retry(sticky=True, tried=["p0", "p0", "p0"], moves=3), GiveUp)
    # failures through a proxy ejected since were the proxy's: the session moved, the request goes on
    assert retry(sticky=True, tried=["p1", "p1", "p1"], moves=3, out={"p1"}) == Retry(("p1", "p1", "p1", "p0"), 4,
                                                                                     charged=True)


def test_a_failure_moves_the_request_to_a_proxy_it_has_not_tried_charged():
    assert retry(tried=["p1"], moves=1) == Retry(("p1", "p0"), 2, charged=True)


def test_proxies_ejected_since_are_not_charged():
    decision = retry(proxy="p3", tried=["p0", "p1", "p2"], moves=3, out={"p0", "p1", "p2", "p3"})
    assert decision == Retry(("p0", "p1", "p2", "p3"), 4, charged=False)


def test_out_of_budget_it_waits_and_tries_once_more_then_gives_up():
    last = retry(proxy="p3", tried=["p0", "p1", "p2"], moves=3)
    assert last == Retry(("p0", "p1", "p2", "p3"), 4, charged=True, delay=LAST_TRY_DELAY, last_try=True)
    assert retry(proxy="p4", tried=last.tried, moves=4, had_last_try=True) == GiveUp("5 proxies in rotation failed it")


def test_a_degraded_pool_charges_nothing():
    decision = retry(proxy="p3", tried=["p0", "p1", "p2"], moves=3, degraded=True)
    assert isinstance(decision, Retry) and not decision.charged and not decision.last_try


def test_having_tried_every_proxy_it_waits_for_those_at_fault_to_come_back():
    decision = retry(proxy="p2", tried=["p0", "p1"], size=3, out={"p0", "p1"})
    assert decision == Retry(("p2",), 1, charged=True)  # p0 and p1 were ejected: they may serve it later


def test_rate_limits_and_overloads_move_uncharged_and_exclude_nothing():
    for outcome in (Outcome.RATE_LIMITED, Outcome.OVERLOADED):
        assert retry(outcome=outcome, tried=["p1"], moves=2) == Retry(("p1",), 3, charged=False)


def test_no_request_moves_forever():
    assert isinstance(retry(outcome=Outcome.OVERLOADED, moves=3 + FREE_MOVES), GiveUp)


def test_unavailability_acts_after_the_timeout_and_a_failed_trial_does_not_restart_it():
    u = Unavailability(timeout=8)
    assert u.waiting("k", 30, True, now=100, what="s") == CHECK  # looks again within the check interval
    assert u.waiting("k", 0.5, True, now=103, what="s") == 0.5
    assert u.waiting("k", 30, True, now=106, what="s") == 2  # just long enough to notice the deadline
    assert isinstance(u.waiting("k", 30, True, now=108, what="s"), Act)
    assert u.waiting("k", 3, False, now=108, what="s") == 3  # merely pacing: no episode


def test_unavailability_ends_when_the_site_is_served_or_nobody_waited():
    u = Unavailability(timeout=8)
    u.waiting("k", 1, True, now=100, what="s")
    u.served("k")
    assert u.waiting("k", 1, True, now=107, what="s") == 1  # a new episode
    assert not isinstance(u.waiting("k", 1, True, now=107 + GAP + 1, what="s"), Act)
    assert Unavailability(timeout=0).waiting("k", 30, True, now=0, what="s") == 30  # 0: never act


def test_slow_start_then_additive_increase_then_halving_on_overload():
    limit = ConcurrencyLimit()
    assert limit.allowed == 1 and not limit.proven
    for _ in range(7):
        limit.on_success()
    assert limit.allowed == 8 and limit.proven
    assert limit.on_overload(lease_number=10, next_lease_number=20)
    assert limit.allowed == 5 and limit.threshold == pytest.approx(5.6)  # 70 % of 8
    assert not limit.on_overload(lease_number=15, next_lease_number=21)  # sent before the cut: no second cut
    for _ in range(6):
        limit.on_success()
    assert limit.allowed == 6  # above the threshold: about one more per round (5.6 + 1/5.6 + ...)
    assert limit.on_overload(lease_number=21, next_lease_number=30)


def test_probing_past_a_ceiling_the_proxy_keeps_hitting_slows_down():
    limit = ConcurrencyLimit(limit=4.0, threshold=4.0)
    numbers = iter(range(0, 10**6, 10))
    rounds_to_overload = []
    for _ in range(4):
        limit.on_overload(next(numbers), next(numbers))  # full at about 4 each time
        successes = 0
        while limit.limit < 4.0:
            limit.on_success()
            successes += 1
        rounds_to_overload.append(successes)
    assert limit.strikes == 4
    assert rounds_to_overload == sorted(rounds_to_overload) and rounds_to_overload[-1] > 4 * rounds_to_overload[0]


def test_a_failure_drops_to_one_with_half_the_limit_to_regrow_to_and_limits_stay_in_range():
    limit = ConcurrencyLimit(limit=10.0)
    limit.on_failure()
    assert (limit.allowed, limit.threshold, limit.proven) == (1, 5.0, False)
    for _ in range(100):
        limit.on_overload(0, 0)
        limit.cut_after = -1
    assert limit.limit == 1.0
    big = ConcurrencyLimit()
    for _ in range(5000):
        big.on_success()
    assert big.allowed == MAX_LIMIT


def test_a_site_s_pace_doubles_on_rate_limits_holds_then_halves_its_excess_per_half_life():
    pace = SitePace()
    assert pace.at(0, floor=1.0) == 1.0
    slowed = pace.slowed(10, floor=0.0, cap=60, sent_at=5)
    assert slowed.gap == FIRST_STEP and slowed.since == 10
    assert slowed.slowed(11, floor=0.0, cap=60, sent_at=9) is slowed  # sent before it slowed: same round
    twice = slowed.slowed(11, floor=0.0, cap=60, sent_at=10.5)
    assert twice.gap == pytest.approx(2 * slowed.at(11, 0.0))
    assert twice.at(11 + SETTLE, floor=0.1) == twice.gap  # it holds a while: the limit is likely just below
    assert twice.at(11 + SETTLE + HALF_LIFE, floor=0.1) == pytest.approx(0.1 + (twice.gap - 0.1) / 2)
    assert SitePace(50.0, 0).slowed(1, floor=1.0, cap=60, sent_at=1).gap == 60  # capped
    assert math.isclose(SitePace(3.0, 0).at(10 * 3600, floor=1.0), 1.0)


def test_a_sites_first_rate_limit_slows_it_then_only_two_exits_within_the_window_do():
    pace = SitePace()
    first = pace.rate_limited(10, floor=0.0, cap=60, sent_at=9, proxy="p1", pool_size=5)
    assert first.gap == FIRST_STEP and first.limited_by == "p1"  # nothing known yet: every pair slows
    again = first.rate_limited(11, floor=0.0, cap=60, sent_at=10.5, proxy="p1", pool_size=5)
    assert again.gap == FIRST_STEP  # the same exit: its problem
    late = again.rate_limited(11 + WINDOW + 1, floor=0.0, cap=60, sent_at=11.5 + WINDOW, proxy="p2", pool_size=5)
    assert late.gap == FIRST_STEP  # too long after: a lone limit again
    slowed = late.rate_limited(late.limited_at + 1, floor=0.0, cap=60, sent_at=late.limited_at + 0.5, proxy="p3",
                               pool_size=5)
    assert slowed.gap == 2 * FIRST_STEP
    assert pace.rate_limited(1, floor=0.0, cap=60, sent_at=0.5, proxy="p1", pool_size=1).gap == FIRST_STEP


def test_below_the_cooldown_a_pace_descends_while_answered_fine_and_a_rate_limit_sends_it_one_step_back():
    floor, start = 0.0, 1.0  # PROXY_PACE_BELOW_COOLDOWN: DOWNLOAD_DELAY 0, PROXY_DOMAIN_COOLDOWN 1
    pace = SitePace()
    assert pace.at(0, floor, start) == start  # nothing learned: the cooldown
    assert pace.descended(0.5, floor, start, sent_at=0.1) is pace  # not proven yet: a pilot tries it first
    proven = pace.proved(0.5, start)
    assert proven.descended(0.5, floor, start, sent_at=0.1).at(0.5, floor, start) == pytest.approx(start * DESCENT)
    t, gaps = 0.0, []
    while pace.at(t, floor, start) > 0.5:  # a site whose limit is 0.5 s answers fine down to it
        gap = pace.at(t, floor, start)
        t += gap + 0.01  # a pilot a gap later, answered in 10 ms
        pace = pace.proved(t, gap).descended(t, floor, start, sent_at=t - 0.01)
        gaps.append(pace.at(t, floor, start))
    # never rate limited: each step cuts once more than the last (0.9, 0.9 ** 3, 0.9 ** 6, 0.9 ** 9 = 0.387)
    assert gaps == pytest.approx([start * DESCENT ** k for k in (1, 3, 6, 9)]) and t < 3.5
    assert pace.descended(t + 0.1, floor, start, sent_at=t).gap == pace.gap  # not proven yet: a pilot first
    limited = pace.rate_limited(t + 0.5, floor, cap=60, sent_at=t + 0.45, proxy="p1", pool_size=10, start=start)
    assert limited.limited_at == t + 0.5
    assert limited.gap == pytest.approx(start * DESCENT ** 6)  # back to the last gap answered fine: just above
    assert limited.descended(t + 0.5 + SETTLE / 2, floor, start, sent_at=t + 1) is limited  # it holds a while
    later = t + 1 + SETTLE
    again = limited.proved(later, limited.gap).descended(later, floor, start, sent_at=later - 0.01)
    creep = again.proved(later + 1, again.gap).descended(later + 1, floor, start, sent_at=later + 0.99)
    assert again.gap == pytest.approx(limited.at(later, floor, start) * DESCENT)  # rate limited once: one step
    assert creep.gap == pytest.approx(again.at(later + 1, floor, start) * DESCENT)  # each, in a row too
    assert SitePace().descended(5.0, 1.0, 1.0, sent_at=4.0).gap == 0.0  # at its floor: nothing to look for


def test_a_gap_is_proven_by_a_fine_answer_to_a_pilot_within_its_jitter_and_a_rate_limit_above_it_forgets_it():
    pace = SitePace()
    assert pace.least_proven() == math.inf  # nothing answered fine yet: any gap is tried by a pilot first
    proved = pace.proved(5.0, 1.02)  # a pilot sent 1.02 s after its pair's last answer was answered fine
    assert proved.good == 1.02 and proved.proved_at == 5.0
    assert proved.least_proven() == pytest.approx(1.02 * (1 - JITTER))  # 1 s counts as proven: jitter
    assert proved.proved(6.0, 1.5) is proved  # a longer gap proves nothing new
    assert pace.proved(1.0, 0.001).least_proven() < 0  # a gap of 0: pairs go back to back
    assert proved.idle_at(60.0) == 5.0 + 4 * 60.0  # kept as long as a rate limit would be
    edge = proved.slowed(7.0, floor=0.0, cap=60, sent_at=6.5, start=1.0, went=1.02)  # limited where it proved
    assert edge.gap == pytest.approx(1.02 / DESCENT) and edge.good == math.inf  # the limit is right there: a step up
    stale = proved.slowed(7.0, floor=0.0, cap=60, sent_at=6.5, start=3.0)  # limited well above it: the limit moved
    assert stale.gap == 6.0 and stale.good == math.inf
    back = proved.slowed(7.0, floor=0.0, cap=60, sent_at=6.5, start=0.5)  # limited below what it proved
    assert back.gap == 1.02 and back.good == 1.02
    at_proven = proved.slowed(7.0, floor=0.0, cap=60, sent_at=6.5, start=0.5, went=1.03)  # a pair at the proven gap
    assert at_proven.gap == pytest.approx(1.02 / DESCENT)  # the proof was luck at the edge: a step above it
    pilot = proved.slowed(7.0, floor=0.0, cap=60, sent_at=6.5, start=0.5, went=0.9)  # a pilot below it
    assert pilot.gap == 1.02
