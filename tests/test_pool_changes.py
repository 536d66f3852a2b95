"""The pool changes while in use: add, remove, disable, enable, replace."""

import pytest

from scrapy_proxybalance.core.bans import Outcome
from scrapy_proxybalance.core.errors import NoProxyAvailable
from scrapy_proxybalance.core.health import State
from scrapy_proxybalance.core.proxy import parse_proxy

from .conftest import host, make_balancer, use


def use_timed(b, domain):
    """Lease and release as a 0.1 s success (least_latency needs a latency to move on)."""
    lease = b.acquire(domain)
    b.release(lease, Outcome.SUCCESS, latency=0.1)
    return host(lease)

STRATEGY_NAMES = ["round_robin", "weighted_round_robin", "least_connections", "least_latency", "random",
                  "weighted_random"]


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_added_proxies_join_and_removed_ones_get_no_new_requests(clock, strategy):
    b = make_balancer(clock, strategy=strategy)
    in_flight = b.acquire("a")
    removed = in_flight.state
    b.remove(removed.key)
    b.add(parse_proxy("http://10.0.0.7:8000"))
    assert {use_timed(b, f"d{i}") for i in range(60)} == {1, 2, 3, 7} - {host(in_flight)}
    b.release(in_flight, Outcome.SUCCESS)  # its last request finishes normally
    assert removed.in_flight == 0 and removed.metrics.successes == 1
    assert {use_timed(b, f"e{i}") for i in range(60)} == {1, 2, 3, 7} - {host(in_flight)}
    assert b.region_size[None] == 3


def test_disable_and_enable_keep_the_health_history(clock):
    b = make_balancer(clock, max_failures=3)
    p = b.states[0]
    b.release(b._lease(p, "a", clock()), Outcome.FAILURE)
    b.disable(p.key)
    assert {use(b, f"d{i}") for i in range(20)} == {2, 3}
    b.enable(p.key)
    assert p.health.consecutive_failures == 1
    assert 1 in {use(b, f"e{i}") for i in range(20)}


def test_a_disabled_proxy_stays_out_after_its_ejection_ends(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1", "http://10.0.0.2:1"], max_failures=1)
    b.release(b._lease(b.states[0], "a", clock()), Outcome.FAILURE)
    b.disable(b.states[0].key)
    clock.advance(120)
    assert {use(b, f"d{i}") for i in range(10)} == {2}
    b.enable(b.states[0].key)
    assert b.states[0].health.state is State.TRIAL
    assert 1 in {use(b, f"e{i}") for i in range(10)}


def test_only_disabled_proxies_left_means_wait_not_fail(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1"])
    b.disable(b.states[0].key)
    wait = b.acquire("a")
    assert wait.unavailable and wait.seconds == 1.0
    b.remove(b.states[0].key)
    with pytest.raises(NoProxyAvailable):
        b.acquire("a")


def test_replace_adds_removes_and_updates_keeping_history(clock):
    b = make_balancer(clock)
    kept = b.states[1]
    b.release(b._lease(kept, "a", clock()), Outcome.SUCCESS)
    new = [parse_proxy({"url": "http://10.0.0.2:8000", "weight": 5, "region": "eu"}),
           parse_proxy("http://10.0.0.3:8000"), parse_proxy("http://10.0.0.4:8000")]
    assert b.replace(new) == (1, 1, 1)
    assert b.by_key[kept.key] is kept and kept.metrics.successes == 1 and kept.proxy.weight == 5
    assert {use(b, "x", region="eu") for _ in range(5)} == {2}
    assert {use(b, f"d{i}") for i in range(30)} == {2, 3, 4}
    with pytest.raises(ValueError):
        b.add(parse_proxy("http://10.0.0.3:8000"))
    with pytest.raises(KeyError):
        b.remove("http://10.0.0.1:8000")
