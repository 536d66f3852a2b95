"""Health, pair limits and pace, bans, rate limits, overload, exclusions, regions, backups and
panic probes, on a fake clock."""

import math
import random

import pytest

from scrapy_proxybalance.core.balancer import Ask, Lease, Wait
from scrapy_proxybalance.core.ejection import Backoff, CheckVerdict, State
from scrapy_proxybalance.core.entries import parse_entry
from scrapy_proxybalance.core.errors import NoProxyAvailable
from scrapy_proxybalance.core.explain import why_out
from scrapy_proxybalance.core.listener import PoolListener
from scrapy_proxybalance.core.outcomes import Outcome
from scrapy_proxybalance.core.pace import FIRST_STEP, PILOT_PATIENCE

from . import conftest
from .conftest import host, lease_of, make_balancer, outcome, use
from .recording_store import PROTOCOL, RecordingStore


@pytest.fixture(autouse=True, params=["memory", "recording"])
def store_kind(request):
    """Every test here runs twice: with the memory store, and with a store that has only the
    protocol's methods and records each call (nothing may bypass the protocol)."""
    if request.param == "recording":
        conftest.STORES.append(RecordingStore)
        yield
        conftest.STORES.pop()
    else:
        yield


def test_the_memory_store_has_every_method_of_the_protocol():
    from scrapy_proxybalance.stores.memory import MemoryStore

    assert all(callable(getattr(MemoryStore, name, None)) for name in PROTOCOL)


def test_shared_state_goes_through_the_store(clock):
    store = RecordingStore()
    b = make_balancer(clock, max_failures=1, store=store, max_banned_sites=2, cooldown=1.0)
    lease = b.acquire(Ask("a"))
    b.release(lease, Outcome.BAN, retry_after=5)
    outcome(b, 1, Outcome.FAILURE)
    outcome(b, 2, Outcome.RATE_LIMITED, site="b")
    b.disable(b.states[2].key)
    for call in ("pairs_of", "take", "give_back", "ban", "ban_of", "banned_sites", "facts", "set_facts",
                 "pace", "set_pace"):
        assert call in store.calls, call


def state(b, index):
    return b.facts(b.states[index]).state(b.clock())


def test_proxy_is_ejected_after_max_failures_in_a_row(clock):
    b = make_balancer(clock, max_failures=3)
    outcome(b, 0, Outcome.FAILURE, 2)
    outcome(b, 0, Outcome.SUCCESS)  # resets the run
    outcome(b, 0, Outcome.FAILURE, 2)
    assert state(b, 0) is State.HEALTHY
    outcome(b, 0, Outcome.FAILURE)
    assert state(b, 0) is State.EJECTED
    assert {use(b, "a") for _ in range(20)} == {2, 3}


def only(b, index):
    """An exclusion set that leaves just proxy ``index``."""
    return {p.key for p in b.states if p.id != index}


def test_ejected_proxy_returns_after_backoff_as_a_single_trial(clock):
    b = make_balancer(clock, max_failures=1)  # one of three out: no panic
    outcome(b, 0, Outcome.FAILURE)
    assert b.acquire(Ask("a", only(b, 0))) == Wait(60.0, unavailable=True)
    clock.advance(60)
    trial = b.acquire(Ask("a", only(b, 0)))
    assert host(trial) == 1 and trial.unproven and state(b, 0) is State.TRIAL
    wait = b.acquire(Ask("b", only(b, 0)))  # one request at a time while on trial
    assert isinstance(wait, Wait) and wait.on_release and wait.capacity
    b.release(trial, Outcome.SUCCESS)
    assert state(b, 0) is State.HEALTHY
    assert host(b.acquire(Ask("b", only(b, 0)))) == 1 and host(b.acquire(Ask("c", only(b, 0)))) == 1


def test_failed_trial_ejects_again_at_once_for_twice_as_long(clock):
    b = make_balancer(clock, max_failures=3, backoff=Backoff(60, 100, jitter=0))
    outcome(b, 0, Outcome.FAILURE, 3)
    clock.advance(60)
    b.release(b.acquire(Ask("a", only(b, 0))), Outcome.FAILURE)
    assert state(b, 0) is State.EJECTED
    assert b.acquire(Ask("a", only(b, 0))) == Wait(100.0, unavailable=True)  # 120 capped at 100
    assert b.facts(b.states[0]).ejections == 2


def test_backoff_doubles_is_capped_and_jitters_downward_only():
    rng = random.Random(1)
    backoff = Backoff(10, 100, jitter=0.25)
    for n, full in ((1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (40, 100)):
        for _ in range(50):
            assert 0.75 * full <= backoff.delay(n, rng) <= full


def test_the_cooldown_counts_from_the_answer_and_keeps_a_proxy_off_that_site_only(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1", "http://10.0.0.2:1"], cooldown=2.0)
    first, second = b.acquire(Ask("a")), b.acquire(Ask("a"))
    assert {host(first), host(second)} == {1, 2}
    assert b.acquire(Ask("a")) == Wait(2.0)  # both in use on a: each free 2 s after its answer at the soonest
    clock.advance(5)  # a slow answer: the site saw the request somewhere in these 5 s
    b.release(first, Outcome.SUCCESS)
    assert b.acquire(Ask("a")) == Wait(2.0)  # 2 s from the answer, not the lease
    assert use(b, "b") in (1, 2)  # another site is free
    clock.advance(1.5)
    assert b.acquire(Ask("a")).seconds == 0.5
    clock.advance(0.5)
    assert host(b.acquire(Ask("a"))) == host(first)


def test_without_a_cooldown_a_pair_carries_up_to_the_per_site_limit(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1"], cooldown=0.0, pair_limit=2)
    for _ in range(5):  # the proxy's own limit is above 2 now, and a answered fine back to back (a pilot)
        b.release(b.acquire(Ask("a")), Outcome.SUCCESS)
    two = [b.acquire(Ask("a")), b.acquire(Ask("a"))]
    assert all(host(lease) == 1 for lease in two)
    assert isinstance(b.acquire(Ask("a")), Wait)
    assert host(b.acquire(Ask("b"))) == 1


def test_retry_after_on_a_ban_keeps_that_proxy_off_that_site_for_the_time_asked(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1", "http://10.0.0.2:1"])
    b.release(b.acquire(Ask("a")), Outcome.BAN, retry_after=30)
    assert all(use(b, "a") == 2 for _ in range(5))
    assert use(b, "b") == 1  # fine for another site
    clock.advance(30)
    assert 1 in {use(b, "a") for _ in range(4)}


def test_retry_after_is_clamped(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1"], retry_after_max=120)  # a ban: no ejection, no panic
    b.release(b.acquire(Ask("a")), Outcome.BAN, retry_after=10**9)
    assert b.acquire(Ask("a")) == Wait(120.0, unavailable=True)


def test_a_rate_limit_pauses_the_pair_and_is_no_ban(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1", "http://10.0.0.2:1"], max_banned_sites=1, cooldown=0.0)
    one, two = (p.key for p in b.states)
    assert b.release(lease_of(b, 0, "a"), Outcome.RATE_LIMITED, retry_after=20).outcome is Outcome.RATE_LIMITED
    assert b.store.ban_of(one, "a")[1] == 0 and state(b, 0) is State.HEALTHY  # no ban, no ejection
    assert b.pair_rule("a", clock())[0] == FIRST_STEP  # the site's first: every pair slows (see the next test)
    assert use(b, "a") == 2  # proxy 1 pauses on a for the 20 s asked
    assert use(b, "b", {two}) == 1  # and serves other sites meanwhile
    clock.advance(20)
    assert use(b, "a", {two}) == 1


def test_a_sites_first_rate_limit_slows_every_pair_then_it_takes_a_second_proxy(clock):
    b = make_balancer(clock, [f"http://10.0.0.{i}:1" for i in range(1, 4)], cooldown=0.0)
    b.release(lease_of(b, 0, "a"), Outcome.RATE_LIMITED)  # nothing known of a's limit: all its pairs slow
    first = b.pair_rule("a", clock())[0]
    assert first == FIRST_STEP and b.pair_rule("b", clock())[0] == 0
    clock.advance(1)
    b.release(lease_of(b, 0, "a"), Outcome.RATE_LIMITED)  # the same exit again: that exit's problem
    assert b.pair_rule("a", clock())[0] == first
    b.release(lease_of(b, 1, "a"), Outcome.RATE_LIMITED)  # a second exit within the window: the site's pace
    assert b.pair_rule("a", clock())[0] == 2 * first
    lease = b.acquire(Ask("a", {b.states[0].key, b.states[1].key}))
    b.release(lease, Outcome.SUCCESS)
    assert isinstance(b.acquire(Ask("a", {b.states[0].key, b.states[1].key})), Wait)  # proxy 3 keeps the gap


def test_one_pilot_tries_a_gap_the_site_has_not_answered_fine_at_and_the_others_wait_for_its_answer(clock):
    b = make_balancer(clock, [f"http://10.0.0.{i}:1" for i in range(1, 6)], cooldown=0.0)
    first = [b.acquire(Ask("a")) for _ in range(5)]  # no pair has been to a: nothing to space out
    assert all(isinstance(lease, Lease) and lease.pilot is None for lease in first)
    for lease in first:
        b.release(lease, Outcome.SUCCESS)
    clock.advance(0.003)
    pilot = b.acquire(Ask("a"))  # a pair again at gap 0: tried once before every pair does it
    assert pilot.pilot == pytest.approx(0.003)
    assert b.acquire(Ask("a")) == Wait(0.5, on_release=True)  # its answer frees the others
    assert isinstance(b.acquire(Ask("b")), Lease)  # another site is not held
    b.release(pilot, Outcome.RATE_LIMITED, retry_after=20)  # one penalty for the site, not one per pair
    assert b.pair_rule("a", clock())[0] == FIRST_STEP and "a" not in b.pilots
    clock.advance(FIRST_STEP)
    second = b.acquire(Ask("a"))  # the new gap is tried by one pilot too
    assert second.pilot is not None and isinstance(b.acquire(Ask("a")), Wait)
    clock.advance(0.1)
    b.release(second, Outcome.SUCCESS)  # proven: every free pair may go at it now
    assert b.rule_of(b.store.pace("a"), clock())[2] == pytest.approx(FIRST_STEP + 0.003)  # as the pilot went
    clock.advance(FIRST_STEP)
    leases = [b.acquire(Ask("a")) for _ in range(3)]
    assert all(isinstance(lease, Lease) and lease.pilot is None for lease in leases)


def test_a_pilot_that_never_went_frees_the_site_for_the_next(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1", "http://10.0.0.2:1"], cooldown=1.0)
    b.release(lease_of(b, 0, "a"), Outcome.SUCCESS)
    clock.advance(1.0)
    pilot = b.acquire(Ask("a", {b.states[1].key}))
    assert pilot.pilot == 1.0
    b.cancel(pilot)
    assert b.acquire(Ask("a", {b.states[1].key})).pilot == 1.0


def test_a_pilot_that_hangs_lets_another_try_the_gap(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1", "http://10.0.0.2:1"], cooldown=1.0)
    for lease in [b.acquire(Ask("a")), b.acquire(Ask("a"))]:
        b.release(lease, Outcome.SUCCESS)
    clock.advance(1.0)
    hung = b.acquire(Ask("a"))
    assert hung.pilot == 1.0 and isinstance(b.acquire(Ask("a")), Wait)
    clock.advance(PILOT_PATIENCE)
    other = b.acquire(Ask("a"))
    assert other.pilot is not None and b.pilots["a"] is other
    b.release(hung, Outcome.FAILURE)  # the old one lands at last: the new one still flies
    assert b.pilots["a"] is other


def test_rate_limits_slow_a_site_once_per_round_then_the_pace_decays(clock):
    b = make_balancer(clock, [f"http://10.0.0.{i}:1" for i in range(1, 6)], cooldown=0.0)
    leases = [lease_of(b, i, "a") for i in range(5)]  # sent together: one round, five exits
    for lease in leases:
        b.release(lease, Outcome.RATE_LIMITED)
    slowed = b.pair_rule("a", clock())[0]
    assert 0 < slowed < 1  # five answers of one round slowed it once
    clock.advance(0.01)
    b.release(lease_of(b, 1, "a"), Outcome.RATE_LIMITED)  # sent after the slow-down: a new round
    assert b.pair_rule("a", clock())[0] == pytest.approx(2 * slowed, rel=0.01)
    clock.advance(3600)
    assert b.pair_rule("a", clock())[0] == 0.0  # back to the floor while the site answers fine


def test_overload_cuts_the_proxy_s_limit_once_per_round_and_never_ejects(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1"], max_failures=1)
    for _ in range(7):
        b.release(b.acquire(Ask("warm")), Outcome.SUCCESS)
    p = b.states[0]
    assert p.limit.allowed == 8
    leases = [b.acquire(Ask(f"s{i}")) for i in range(8)]
    assert b.release(leases[0], Outcome.OVERLOADED).outcome is Outcome.OVERLOADED
    assert p.limit.allowed == 5  # 70 % of 8
    b.release(leases[1], Outcome.OVERLOADED)  # the same round: no second cut
    assert p.limit.allowed == 5 and state(b, 0) is State.HEALTHY
    for lease in leases[2:]:
        b.release(lease, Outcome.SUCCESS)


def test_an_overload_answer_with_nothing_else_in_flight_is_the_site_s_own(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1"])
    released = b.release(b.acquire(Ask("a")), Outcome.OVERLOADED)
    assert released.outcome is Outcome.SUCCESS and b.states[0].limit.allowed == 2


def test_excluded_proxies_are_never_handed_out(clock):
    b = make_balancer(clock)
    tried = {b.states[0].key, b.states[2].key}
    assert all(use(b, "a", tried) == 2 for _ in range(10))
    with pytest.raises(NoProxyAvailable, match="all 3 proxies were tried"):
        b.acquire(Ask("a", {p.key for p in b.states}))


def test_region_filtering(clock):
    entries = [{"url": "http://10.0.0.1:1", "region": "eu"}, {"url": "http://10.0.0.2:1", "region": "us"},
               {"url": "http://10.0.0.3:1", "region": "eu"}]
    b = make_balancer(clock, entries)
    assert {use(b, "a", region="eu") for _ in range(10)} == {1, 3}
    assert {use(b, "a", region="us") for _ in range(10)} == {2}
    assert {use(b, "a") for _ in range(10)} == {1, 2, 3}
    with pytest.raises(NoProxyAvailable, match="region 'asia'"):
        b.acquire(Ask("a", region="asia"))


def test_backups_serve_only_while_no_primary_is_available(clock):
    entries = ["http://10.0.0.1:1", "http://10.0.0.2:1", {"url": "http://10.0.0.9:1", "backup": True}]
    b = make_balancer(clock, entries, max_failures=1, cooldown=1.0)
    first = [b.acquire(Ask("a")) for _ in range(2)]
    assert {host(lease) for lease in first} == {1, 2}
    assert isinstance(b.acquire(Ask("a")), Wait)  # primaries busy on a: wait, spare the backup
    assert use(b, "a", {b.states[0].key, b.states[1].key}) == 9  # primaries tried
    for lease in first:
        b.release(lease, Outcome.SUCCESS)
    clock.advance(5)
    outcome(b, 0, Outcome.FAILURE, site="x1")
    outcome(b, 1, Outcome.FAILURE, site="x2")
    assert use(b, "x") == 9  # every primary ejected
    clock.advance(60)
    assert use(b, "y") in (1, 2)  # primaries back on trial take over again


def test_a_revived_proxy_still_finishing_old_requests_makes_requests_wait_not_fail(clock):
    b = make_balancer(clock, max_failures=1, backoff=Backoff(30, 300, jitter=0))
    old = lease_of(b, 0, "a")
    outcome(b, 0, Outcome.FAILURE, site="z")
    clock.advance(30)
    wait = b.acquire(Ask("b", only(b, 0)))  # on trial, but its pre-ejection request is in flight
    assert isinstance(wait, Wait) and wait.on_release and not wait.unavailable
    b.release(old, Outcome.NEUTRAL)
    assert host(b.acquire(Ask("b", only(b, 0)))) == 1


def test_all_ejected_waits_for_the_earliest_recovery_or_panic_probe(clock):
    b = make_balancer(clock, [f"http://10.0.0.{i}:1" for i in range(1, 5)], max_failures=1,
                      backoff=Backoff(30, 300, jitter=0))
    outcome(b, 0, Outcome.FAILURE)
    clock.advance(0.5)
    outcome(b, 1, Outcome.FAILURE)
    assert b.acquire(Ask("a", only(b, 0) & only(b, 1))) == Wait(29.5, unavailable=True)  # half in rotation: no panic
    outcome(b, 2, Outcome.FAILURE)
    assert b.acquire(Ask("a", {b.states[3].key})) == Wait(0.5, unavailable=True)  # panic: a probe is due soon


def test_slow_start_adds_one_request_per_success_until_it_is_cut(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1"])
    first = b.acquire(Ask("a"))
    assert b.acquire(Ask("b")).capacity  # a hung proxy would hold just this one request
    b.release(first, Outcome.SUCCESS)
    two = [b.acquire(Ask(d)) for d in "bc"]
    assert all(host(lease) == 1 for lease in two) and isinstance(b.acquire(Ask("d")), Wait)
    for lease in two:
        b.release(lease, Outcome.SUCCESS)
    assert len([b.acquire(Ask(d)) for d in "efgh"]) == 4  # 1 + 3 successes: doubling per round of answers
    assert isinstance(b.acquire(Ask("m")), Wait)


def test_a_failure_puts_a_proxy_back_to_one_request_at_a_time(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1"], max_failures=5)
    for _ in range(4):
        b.release(b.acquire(Ask("a")), Outcome.SUCCESS)
    leases = [b.acquire(Ask(d)) for d in "bcd"]
    assert all(host(lease) == 1 and not lease.unproven for lease in leases)
    b.release(leases[0], Outcome.FAILURE)
    assert b.acquire(Ask("e")).capacity  # two still in flight, limit now 1
    for lease in leases[1:]:
        b.release(lease, Outcome.NEUTRAL)
    assert b.acquire(Ask("e")).unproven  # the middleware shortens its timeout
    assert b.states[0].limit.threshold == 2.5  # and it grows back fast: to half its old limit


def test_release_is_idempotent_and_in_flight_never_negative(clock):
    b = make_balancer(clock)
    lease = b.acquire(Ask("a"))
    b.release(lease, Outcome.SUCCESS)
    b.release(lease, Outcome.FAILURE)
    assert lease.state.in_flight == 0
    assert lease.state.metrics.failures == 0


def test_bans_without_retry_after_double_per_ban_in_a_row_and_reset_on_success(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1", "http://10.0.0.2:1"], ban_backoff=Backoff(10, 1000, jitter=0))
    p = b.states[0]
    for expected in (10, 20, 40, 80):
        outcome(b, 0, Outcome.BAN)
        assert b.store.ban_of(p.key, "a")[0] - clock() == expected
        assert use(b, "a") == 2 and use(b, "b") in (1, 2)  # banned by a only
        clock.advance(expected)
    outcome(b, 0, Outcome.SUCCESS)
    outcome(b, 0, Outcome.BAN)
    assert b.store.ban_of(p.key, "a")[0] - clock() == 10  # a success there started the count again


def test_a_proxy_banned_by_many_sites_is_ejected_from_the_whole_pool(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1", "http://10.0.0.2:1"], max_banned_sites=3,
                      ban_backoff=Backoff(30, 1800, jitter=0))
    p = b.states[0]
    for site in "ab":
        assert b.release(lease_of(b, 0, site), Outcome.BAN).ejected is None
    clock.advance(31)  # the first two bans are over
    assert b.release(lease_of(b, 0, "c"), Outcome.BAN).ejected is None
    assert state(b, 0) is State.HEALTHY
    b.release(lease_of(b, 0, "d"), Outcome.BAN)
    assert b.release(lease_of(b, 0, "e"), Outcome.BAN).ejected == 60.0  # three sites at once
    assert state(b, 0) is State.EJECTED and "banned by 3 sites" in b.facts(p).reason
    assert {use(b, "z") for _ in range(5)} == {2}
    assert b.record_check(p.key, True, rise=1, fall=3) is CheckVerdict.NONE  # a check cannot clear that


def test_backups_serve_while_every_primary_is_banned_by_the_site(clock):
    entries = ["http://10.0.0.1:1", {"url": "http://10.0.0.9:1", "backup": True}]
    b = make_balancer(clock, entries)
    b.release(b.acquire(Ask("a")), Outcome.BAN, retry_after=100)
    assert use(b, "a") == 9
    assert use(b, "b") == 1


def test_wait_says_unavailable_only_when_no_proxy_could_serve(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1", "http://10.0.0.2:1"], cooldown=1.0, max_failures=1)
    for _ in range(2):
        b.release(b.acquire(Ask("a")), Outcome.SUCCESS)
    assert b.acquire(Ask("a")) == Wait(1.0)  # merely pacing
    for _ in range(2):
        b.release(b.acquire(Ask("b")), Outcome.BAN, retry_after=50)
    assert b.acquire(Ask("b")) == Wait(1.0, unavailable=True)  # banned by b everywhere; a cooldown ends first
    outcome(b, 0, Outcome.FAILURE, site="x")
    outcome(b, 1, Outcome.FAILURE, site="y")
    assert b.acquire(Ask("c")) == Wait(1.0, unavailable=True)  # all out: panic, a probe in a second


def test_degraded_when_fewer_than_half_are_in_rotation(clock):
    b = make_balancer(clock, [f"http://10.0.0.{i}:1" for i in range(1, 5)], max_failures=1)
    outcome(b, 0, Outcome.FAILURE)
    outcome(b, 1, Outcome.FAILURE)
    assert not b.degraded()
    outcome(b, 2, Outcome.FAILURE)
    assert b.degraded()


def test_in_panic_ejected_proxies_get_one_probe_at_a_time_and_come_back_on_success(clock):
    b = make_balancer(clock, [f"http://10.0.0.{i}:1" for i in range(1, 5)], max_failures=1,
                      backoff=Backoff(600, 600, jitter=0))
    for i in range(4):
        outcome(b, i, Outcome.FAILURE, site=f"s{i}")
    assert b.acquire(Ask("a")).unavailable  # no probe due yet
    clock.advance(1.0)
    results = [b.acquire(Ask("a")) for _ in range(6)]
    probes = [r for r in results if not isinstance(r, Wait)]
    assert sorted(host(r) for r in probes) == [1, 2, 3, 4] and all(r.probe for r in probes)
    b.release(probes[0], Outcome.FAILURE)  # still dead: stays out, probed again a second later
    assert state(b, host(probes[0]) - 1) is State.EJECTED
    b.release(probes[1], Outcome.SUCCESS)  # it answers: back now, not in ten minutes
    assert state(b, host(probes[1]) - 1) is State.HEALTHY and b.in_rotation(probes[1].state.key)
    clock.advance(1.0)
    again = [b.acquire(Ask("b")) for _ in range(5)]
    probed = {host(r) for r in again if not isinstance(r, Wait) and r.probe}
    assert host(probes[0]) in probed  # due again
    assert not probed & {host(probes[2]), host(probes[3])}  # one probe at a time per proxy


def test_proxies_out_in_a_panic_are_probed_until_they_answer_even_once_half_are_back(clock):
    b = make_balancer(clock, [f"http://10.0.0.{i}:1" for i in range(1, 11)], max_failures=1,
                      backoff=Backoff(600, 600, jitter=0))
    for i in range(10):  # a blackout: every proxy out for ten minutes
        outcome(b, i, Outcome.FAILURE, site=f"s{i}")
    clock.advance(1.0)
    probes = [r for r in (b.acquire(Ask("a")) for _ in range(10)) if not isinstance(r, Wait)]
    for lease in probes[:6]:  # the blackout ends: six answer, the pool is back above half
        b.release(lease, Outcome.SUCCESS)
    for lease in probes[6:]:
        b.release(lease, Outcome.NEUTRAL)  # the others' probes were cut short
    assert not b.degraded()
    clock.advance(1.0)
    again = {host(r) for r in (b.acquire(Ask(f"t{i}")) for i in range(40)) if not isinstance(r, Wait) and r.probe}
    assert again == {host(lease) for lease in probes[6:]}  # still probed: not left out for ten minutes


def test_a_proxy_failing_a_probe_once_the_pool_is_back_keeps_its_backoff(clock):
    b = make_balancer(clock, [f"http://10.0.0.{i}:1" for i in range(1, 5)], max_failures=1,
                      backoff=Backoff(600, 600, jitter=0))
    for i in range(4):
        outcome(b, i, Outcome.FAILURE, site=f"s{i}")
    clock.advance(1.0)
    probes = [r for r in (b.acquire(Ask("a")) for _ in range(4)) if not isinstance(r, Wait)]
    for lease in probes[:3]:
        b.release(lease, Outcome.SUCCESS)
    b.release(probes[3], Outcome.FAILURE)  # the rest works and this one still fails: its own fault
    clock.advance(1.0)
    assert not any(r.probe for r in (b.acquire(Ask(f"t{i}")) for i in range(20)) if not isinstance(r, Wait))


def test_a_slow_down_holds_pairs_that_answered_before_it_while_the_gap_was_zero(clock):
    b = make_balancer(clock, [f"http://10.0.0.{i}:1" for i in range(1, 4)], cooldown=0.0)
    b.release(lease_of(b, 2, "a"), Outcome.SUCCESS)  # answered with no gap to keep
    b.release(lease_of(b, 0, "a"), Outcome.RATE_LIMITED)
    b.release(lease_of(b, 1, "a"), Outcome.RATE_LIMITED)  # two exits: the site slows down
    gap = b.pair_rule("a", clock())[0]
    assert gap > 0
    assert isinstance(b.acquire(Ask("a")), Wait)  # the third pair answered within the new gap too
    clock.advance(gap)
    assert not isinstance(b.acquire(Ask("a")), Wait)


def test_outside_panic_an_ejected_proxy_waits_out_its_backoff(clock):
    b = make_balancer(clock, [f"http://10.0.0.{i}:1" for i in range(1, 5)], max_failures=1)
    outcome(b, 0, Outcome.FAILURE)
    clock.advance(5)
    assert 1 not in {use(b, f"s{i}") for i in range(20)}  # three of four in rotation: no probes


def test_why_out_says_why_each_proxy_cannot_serve(clock):
    b = make_balancer(clock, ["http://u:secret@10.0.0.1:1", "http://10.0.0.2:1", "http://10.0.0.3:1"], max_failures=1)
    b.release(lease_of(b, 0), Outcome.FAILURE, reason="DownloadConnectionRefusedError")
    b.release(lease_of(b, 1), Outcome.BAN, retry_after=30, reason="403 Forbidden")
    b.disable(b.states[2].key)
    lines = why_out(b, "a")
    assert lines[0] == ("http://u:***@10.0.0.1:1: ejected for 60 s more after 1 ejection(s)"
                        " (last: DownloadConnectionRefusedError)")
    assert lines[1] == "http://10.0.0.2:1: banned by a for 30 s more (last: 403 Forbidden from a)"
    assert lines[2] == "http://10.0.0.3:1: disabled"


def test_active_checks_revive_early_and_eject_after_fall_in_a_row(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1", "http://10.0.0.2:1"], max_failures=1)
    p = b.states[0]
    outcome(b, 0, Outcome.FAILURE)
    assert b.record_check(p.key, True, rise=2, fall=3) is CheckVerdict.NONE  # one pass is not enough
    assert b.record_check(p.key, True, rise=2, fall=3) is CheckVerdict.REVIVED
    assert state(b, 0) is State.TRIAL and 1 in {use(b, f"d{i}") for i in range(10)}
    assert b.record_check(p.key, False, rise=2, fall=3, reason="status 502") is CheckVerdict.NONE
    assert b.record_check(p.key, False, rise=2, fall=3) is CheckVerdict.NONE
    assert b.record_check(p.key, True, rise=2, fall=3) is CheckVerdict.NONE  # a pass breaks the run
    for _ in range(2):
        assert b.record_check(p.key, False, rise=2, fall=3, reason="timeout") is CheckVerdict.NONE
    assert b.record_check(p.key, False, rise=2, fall=3, reason="timeout") is CheckVerdict.EJECTED
    assert state(b, 0) is State.EJECTED and "failed 3 health check(s): timeout" in b.facts(p).reason
    assert {use(b, f"e{i}") for i in range(10)} == {2}
    assert b.record_check("http://10.9.9.9:1", True, rise=1, fall=1) is CheckVerdict.NONE  # not in the pool


class Recorder(PoolListener):
    def __init__(self):
        self.events = []

    def ejected(self, state, facts, seconds):
        self.events.append(("ejected", state.id, seconds))

    def revived(self, state, how):
        self.events.append(("revived", state.id, how))


def test_every_ejection_and_return_is_told_once_to_the_listener(clock):
    listener = Recorder()
    b = make_balancer(clock, ["http://10.0.0.1:1", "http://10.0.0.2:1"], max_failures=1, listener=listener,
                      max_banned_sites=1)
    outcome(b, 0, Outcome.FAILURE)
    outcome(b, 1, Outcome.BAN, site="s")
    b.record_check(b.states[0].key, True, rise=1, fall=1)
    clock.advance(61)
    b.acquire(Ask("x"))
    assert listener.events == [("ejected", 0, 60.0), ("ejected", 1, 60.0), ("revived", 0, "check"),
                               ("revived", 1, "trial")]


def test_a_claim_s_alternates_are_the_pairs_free_now_or_within_a_gap_never_one_in_flight_or_banned(clock):
    b = make_balancer(clock, [f"http://10.0.0.{i}:8000" for i in range(1, 6)], cooldown=1.0)
    states = b.states
    in_flight = lease_of(b, 0, "a")  # 10.0.0.1: in flight
    b.release(lease_of(b, 1, "a"), Outcome.SUCCESS, 0.1)  # 10.0.0.2: its gap ends in 1 s
    outcome(b, 2, Outcome.BAN)  # 10.0.0.3: banned by the site
    clock.advance(0.5)
    lease = b.acquire(Ask("a"), alternates=4)
    assert host(lease) in (4, 5)  # free now
    others = {int(k.split(".")[3].split(":")[0]) for k in lease.alternates}
    assert others == {4, 5} - {host(lease)} | {2}  # and the one whose gap ends within a gap
    assert in_flight and states[0].key not in lease.alternates and states[2].key not in lease.alternates


def test_the_pool_s_tiers_are_kept_cheapest_first_as_proxies_come_and_go(clock):
    b = make_balancer(clock, [{"url": "http://10.0.0.1:1", "tier": 2}, {"url": "http://10.0.0.2:1", "tier": 0}])
    assert b.members.tier_order == [0, 2]
    b.add(parse_entry({"url": "http://10.0.0.3:1", "tier": 1}))
    assert b.members.tier_order == [0, 1, 2]
    b.remove(b.states[1].key)  # the only proxy of tier 0
    assert b.members.tier_order == [1, 2]
    b.add(parse_entry({"url": "http://10.0.0.4:1", "tier": 0}))
    assert b.members.tier_order == [0, 1, 2]


def test_the_pair_rule_follows_each_new_pace_and_its_memo_stays_bounded(clock):
    from scrapy_proxybalance.core import balancer as balancer_module
    from scrapy_proxybalance.core.pace import SitePace

    b = make_balancer(clock, cooldown=1.0)
    assert b.pair_rule("a", clock()) == (1.0, 1)
    b.store.set_pace("a", SitePace(good=1.0, proved_at=clock()))  # proven at the cooldown: one pair rule
    assert b.rule_of(b.store.pace("a"), clock()) == (1.0, 1, -math.inf)
    b.store.set_pace("a", SitePace(gap=4.0, since=clock()))  # slowed: a new pace, a new rule
    assert b.pair_rule("a", clock()) == (4.0, 1)
    for i in range(balancer_module.RULES_KEPT + 10):  # paces that never change, each remembered
        b.rule_of(SitePace(good=1.0 + i, proved_at=0.0), clock())
    assert len(b._ruled) <= balancer_module.RULES_KEPT
