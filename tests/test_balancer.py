"""Health, cooldowns, exclusions, regions and backups, with a fake clock."""

import random

import pytest

from scrapy_proxybalance.core.balancer import Wait
from scrapy_proxybalance.core.bans import BanPolicy, Outcome, parse_retry_after
from scrapy_proxybalance.core.errors import NoProxyAvailable
from scrapy_proxybalance.core.health import Backoff, State

from .conftest import host, make_balancer, use


def fail(b, proxy_index, times, domain="a"):
    p = b.states[proxy_index]
    for _ in range(times):
        b.release(b._lease(p, domain, b.clock()), Outcome.FAILURE)


def test_proxy_is_ejected_after_max_failures_in_a_row(clock):
    b = make_balancer(clock, max_failures=3)
    fail(b, 0, 2)
    b.release(b._lease(b.states[0], "a", clock()), Outcome.SUCCESS)  # resets the run
    fail(b, 0, 2)
    assert b.states[0].health.state is State.HEALTHY
    fail(b, 0, 1)
    assert b.states[0].health.state is State.EJECTED
    assert {use(b, "a") for _ in range(20)} == {2, 3}


def test_ejected_proxy_returns_after_backoff_as_a_single_trial(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1"], max_failures=1, backoff=Backoff(60, 600, jitter=0))
    fail(b, 0, 1)
    wait = b.acquire("a")
    assert wait == Wait(60.0, unavailable=True)
    clock.advance(60)
    trial = b.acquire("a")
    assert host(trial) == 1 and trial.trial
    assert isinstance(b.acquire("b"), Wait)  # one request at a time while on trial
    b.release(trial, Outcome.SUCCESS)
    assert b.states[0].health.state is State.HEALTHY
    assert host(b.acquire("b")) == 1 and host(b.acquire("c")) == 1


def test_failed_trial_ejects_again_at_once_for_twice_as_long(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1"], max_failures=3, backoff=Backoff(60, 100, jitter=0))
    fail(b, 0, 3)
    clock.advance(60)
    b.release(b.acquire("a"), Outcome.FAILURE)
    assert b.states[0].health.state is State.EJECTED
    assert b.acquire("a") == Wait(100.0, unavailable=True)  # 120 capped at 100
    assert b.states[0].health.ejections == 2


def test_backoff_doubles_is_capped_and_jitters_downward_only():
    rng = random.Random(1)
    backoff = Backoff(10, 100, jitter=0.25)
    for n, full in ((1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (40, 100)):
        for _ in range(50):
            assert 0.75 * full <= backoff.delay(n, rng) <= full


def test_domain_cooldown_keeps_a_proxy_off_the_same_domain_only(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1", "http://10.0.0.2:1"], domain_cooldown=2.0)
    assert {use(b, "a"), use(b, "a")} == {1, 2}
    assert b.acquire("a") == Wait(2.0)
    assert use(b, "b") in (1, 2)  # another domain is free
    clock.advance(1.5)
    assert b.acquire("a") == Wait(0.5)
    clock.advance(0.5)
    assert use(b, "a") in (1, 2)


def test_retry_after_cools_that_proxy_on_that_site_for_the_time_asked(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1", "http://10.0.0.2:1"], strategy="round_robin")
    lease = b.acquire("a")
    b.release(lease, Outcome.BAN, retry_after=30)
    assert all(use(b, "a") == 2 for _ in range(5))
    assert use(b, "b") == 1  # fine for another site
    clock.advance(30)
    assert 1 in {use(b, "a") for _ in range(4)}


def test_retry_after_is_clamped(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1"], max_hold=120)
    b.release(b.acquire("a"), Outcome.BAN, retry_after=10**9)
    assert b.acquire("a") == Wait(120.0, unavailable=True)


def test_excluded_proxies_are_never_handed_out(clock):
    b = make_balancer(clock)
    tried = {b.states[0].key, b.states[2].key}
    assert all(use(b, "a", tried) == 2 for _ in range(10))
    with pytest.raises(NoProxyAvailable, match="all 3 proxies were tried"):
        b.acquire("a", {p.key for p in b.states})


def test_region_filtering(clock):
    entries = [{"url": "http://10.0.0.1:1", "region": "eu"}, {"url": "http://10.0.0.2:1", "region": "us"},
               {"url": "http://10.0.0.3:1", "region": "eu"}]
    b = make_balancer(clock, entries)
    assert {use(b, "a", region="eu") for _ in range(10)} == {1, 3}
    assert {use(b, "a", region="us") for _ in range(10)} == {2}
    assert {use(b, "a") for _ in range(10)} == {1, 2, 3}
    with pytest.raises(NoProxyAvailable, match="region 'asia'"):
        b.acquire("a", region="asia")


def test_backups_serve_only_while_no_primary_is_available(clock):
    entries = ["http://10.0.0.1:1", "http://10.0.0.2:1", {"url": "http://10.0.0.9:1", "backup": True}]
    b = make_balancer(clock, entries, max_failures=1, domain_cooldown=1.0)
    first = [b.acquire("a") for _ in range(2)]
    assert {host(lease) for lease in first} == {1, 2}
    assert isinstance(b.acquire("a"), Wait)  # primaries cooling on a: wait, spare the backup
    assert use(b, "a", {b.states[0].key, b.states[1].key}) == 9  # primaries tried
    for lease in first:
        b.release(lease, Outcome.SUCCESS)
    clock.advance(5)
    fail(b, 0, 1)
    fail(b, 1, 1)
    assert use(b, "x") == 9  # every primary ejected
    clock.advance(60)
    assert use(b, "y") in (1, 2)  # primaries back on trial take over again


def test_a_revived_proxy_still_finishing_old_requests_makes_requests_wait_not_fail(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1"], max_failures=1, backoff=Backoff(30, 300, jitter=0))
    old = b.acquire("a")
    fail(b, 0, 1)
    clock.advance(30)
    assert b.acquire("b") == Wait(0.1)  # on trial, but its pre-ejection request is in flight
    b.release(old, Outcome.NEUTRAL)
    assert host(b.acquire("b")) == 1


def test_all_ejected_waits_for_the_earliest_recovery(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1", "http://10.0.0.2:1"], max_failures=1,
                      backoff=Backoff(30, 300, jitter=0))
    fail(b, 0, 1)
    clock.advance(10)
    fail(b, 1, 1)
    assert b.acquire("a") == Wait(20.0, unavailable=True)


def test_slow_start_limits_a_proxy_of_unknown_health_until_it_succeeds(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1"])
    first = b.acquire("a")
    assert b.acquire("b") == Wait(0.1)  # a hung proxy would hold just this one request
    b.release(first, Outcome.SUCCESS)
    two = [b.acquire(d) for d in "bc"]
    assert all(host(lease) == 1 for lease in two) and b.acquire("d") == Wait(0.1)
    for lease in two:
        b.release(lease, Outcome.SUCCESS)
    assert len([b.acquire(d) for d in "efghijkl"]) == 8  # 2**3 after three successes
    assert b.acquire("m") == Wait(0.1)


def test_release_is_idempotent_and_in_flight_never_negative(clock):
    b = make_balancer(clock)
    lease = b.acquire("a")
    b.release(lease, Outcome.SUCCESS)
    b.release(lease, Outcome.FAILURE)
    assert lease.state.in_flight == 0
    assert lease.state.metrics.failures == 0


class Answer:
    def __init__(self, status, body=b""):
        self.status, self.body = status, body


def test_ban_policy_tells_failures_bans_and_site_answers_apart():
    policy = BanPolicy([403, 407, 429], [r"class=.captcha", "(?i)are you a robot"], failures=(ConnectionError,))
    outcome = policy.response_outcome
    assert outcome(None, Answer(429)) is Outcome.BAN
    assert outcome(None, Answer(407)) is Outcome.FAILURE  # the proxy's own refusal
    assert outcome(None, Answer(404)) is Outcome.SUCCESS  # the site's answer, delivered
    assert outcome(None, Answer(500, b"are you a robot?")) is Outcome.SUCCESS  # patterns: 2xx only
    assert outcome(None, Answer(200, b"<p>Are You A Robot?</p>")) is Outcome.BAN
    assert outcome(None, Answer(200, b"x" * 20000 + b"are you a robot")) is Outcome.SUCCESS  # past the scan
    assert outcome(None, Answer(200, b"<p>fine</p>")) is Outcome.SUCCESS
    assert policy.exception_outcome(None, ConnectionRefusedError()) is Outcome.FAILURE
    assert policy.exception_outcome(None, KeyError()) is Outcome.NEUTRAL


def test_parse_retry_after():
    assert parse_retry_after(b"120", 0) == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10.0
    assert parse_retry_after(b"soon", 0) is None
    assert parse_retry_after(None, 0) is None


def test_bans_without_retry_after_double_per_ban_in_a_row_and_reset_on_success(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1", "http://10.0.0.2:1"], ban_cooldown=10, max_hold=1000,
                      backoff=Backoff(60, 600, jitter=0.0))
    p = b.states[0]
    for expected in (10, 20, 40, 80):
        b.release(b._lease(p, "a", clock()), Outcome.BAN)
        assert p.bans["a"][0] - clock() == expected
        assert use(b, "a") == 2 and use(b, "b") in (1, 2)  # banned by a only
        clock.advance(expected)
    b.release(b._lease(p, "a", clock()), Outcome.SUCCESS)
    b.release(b._lease(p, "a", clock()), Outcome.BAN)
    assert p.bans["a"][0] - clock() == 10  # a success there started the count again


def test_a_proxy_banned_by_many_sites_is_ejected_from_the_whole_pool(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1", "http://10.0.0.2:1"], max_banned_sites=3, ban_cooldown=30)
    p = b.states[0]
    assert b.release(b._lease(p, "a", clock()), Outcome.BAN) is None
    assert b.release(b._lease(p, "b", clock()), Outcome.BAN) is None
    clock.advance(31)  # the first two bans are over
    assert b.release(b._lease(p, "c", clock()), Outcome.BAN) is None
    assert p.health.state is State.HEALTHY
    b.release(b._lease(p, "d", clock()), Outcome.BAN)
    assert b.release(b._lease(p, "e", clock()), Outcome.BAN) == 60.0  # three sites at once
    assert p.health.state is State.EJECTED and "banned by 3 sites" in p.problem
    assert {use(b, "z") for _ in range(5)} == {2}
    assert b.record_check(p.key, True, rise=1, fall=3) is None  # a check cannot clear the sites' verdict


def test_backups_serve_while_every_primary_is_banned_by_the_site(clock):
    entries = ["http://10.0.0.1:1", {"url": "http://10.0.0.9:1", "backup": True}]
    b = make_balancer(clock, entries)
    b.release(b.acquire("a"), Outcome.BAN, retry_after=100)
    assert use(b, "a") == 9
    assert use(b, "b") == 1


def test_wait_says_unavailable_only_when_no_proxy_could_serve(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1", "http://10.0.0.2:1"], domain_cooldown=1.0, max_failures=1)
    b.release(b.acquire("a"), Outcome.SUCCESS)
    b.release(b.acquire("a"), Outcome.SUCCESS)
    assert b.acquire("a") == Wait(1.0)  # merely pacing
    b.release(b.acquire("b"), Outcome.BAN, retry_after=50)
    b.release(b.acquire("b"), Outcome.BAN, retry_after=50)
    assert b.acquire("b") == Wait(1.0, unavailable=True)  # banned by b everywhere; cooldown ends first
    fail(b, 0, 1)
    fail(b, 1, 1)
    assert b.acquire("c") == Wait(60.0, unavailable=True)


def test_a_failure_puts_a_proxy_back_to_one_request_at_a_time(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1"], max_failures=5)
    for _ in range(4):
        b.release(b.acquire("a"), Outcome.SUCCESS)
    leases = [b.acquire(d) for d in "bcd"]
    assert all(host(lease) == 1 and not lease.unproven for lease in leases)
    b.release(leases[0], Outcome.FAILURE)
    assert b.acquire("e") == Wait(0.1)  # two still in flight, limit now 1
    for lease in leases[1:]:
        b.release(lease, Outcome.NEUTRAL)
    assert b.acquire("e").unproven  # a request on an unproven proxy: the middleware shortens its timeout


def test_degraded_when_fewer_than_half_are_in_rotation(clock):
    b = make_balancer(clock, [f"http://10.0.0.{i}:1" for i in range(1, 5)], max_failures=1)
    fail(b, 0, 1)
    fail(b, 1, 1)
    assert not b.degraded()
    fail(b, 2, 1)
    assert b.degraded()


def test_why_out_says_why_each_proxy_cannot_serve(clock):
    b = make_balancer(clock, ["http://u:secret@10.0.0.1:1", "http://10.0.0.2:1", "http://10.0.0.3:1"],
                      max_failures=1)
    b.release(b._lease(b.states[0], "a", clock()), Outcome.FAILURE, reason="ConnectionRefusedError")
    b.release(b._lease(b.states[1], "a", clock()), Outcome.BAN, retry_after=30, reason="status 429")
    b.disable(b.states[2].key)
    lines = b.why_out("a")
    assert lines[0] == "http://u:***@10.0.0.1:1: ejected for 60 s more after 1 ejection(s) (last: ConnectionRefusedError)"
    assert lines[1] == "http://10.0.0.2:1: banned by a for 30 s more (last: status 429 from a)"
    assert lines[2] == "http://10.0.0.3:1: disabled"


def test_active_checks_revive_early_and_eject_after_fall_in_a_row(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1", "http://10.0.0.2:1"], max_failures=1)
    p = b.states[0]
    fail(b, 0, 1)
    assert b.record_check(p.key, True, rise=2, fall=3) is None  # one pass is not enough
    assert b.record_check(p.key, True, rise=2, fall=3) == "revived"
    assert p.health.state is State.TRIAL and 1 in {use(b, f"d{i}") for i in range(10)}
    assert b.record_check(p.key, False, rise=2, fall=3, reason="status 502") is None
    assert b.record_check(p.key, False, rise=2, fall=3) is None
    assert b.record_check(p.key, True, rise=2, fall=3) is None  # a pass breaks the run
    for _ in range(2):
        assert b.record_check(p.key, False, rise=2, fall=3, reason="timeout") is None
    assert b.record_check(p.key, False, rise=2, fall=3, reason="timeout") == "ejected"
    assert p.health.state is State.EJECTED and "failed 3 health check(s): timeout" in p.problem
    assert {use(b, f"e{i}") for i in range(10)} == {2}
    assert b.record_check("http://10.9.9.9:1", True, rise=1, fall=1) is None  # not in the pool
