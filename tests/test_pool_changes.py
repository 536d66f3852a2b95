"""The pool changes while in use: add, remove, disable, enable, replace."""

import pytest

from scrapy_proxybalance.core.balancer import Ask
from scrapy_proxybalance.core.ejection import State
from scrapy_proxybalance.core.entries import parse_entry
from scrapy_proxybalance.core.errors import DuplicateProxy, NoProxyAvailable, UnknownProxy
from scrapy_proxybalance.core.outcomes import Outcome

from .conftest import host, make_balancer, outcome, use


def use_timed(b, domain):
    """Lease and release as a 0.1 s success (least_latency needs a latency to move on)."""
    lease = b.acquire(Ask(domain))
    b.release(lease, Outcome.SUCCESS, latency=0.1)
    return host(lease)

STRATEGY_NAMES = ["round_robin", "weighted_round_robin", "least_connections", "least_latency", "random",
                  "weighted_random"]


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_added_proxies_join_and_removed_ones_get_no_new_requests(clock, strategy):
    b = make_balancer(clock, strategy=strategy)
    in_flight = b.acquire(Ask("a"))
    removed = in_flight.state
    b.remove(removed.key)
    b.add(parse_entry("http://10.0.0.7:8000"))
    assert {use_timed(b, f"d{i}") for i in range(60)} == {1, 2, 3, 7} - {host(in_flight)}
    b.release(in_flight, Outcome.SUCCESS)  # its last request finishes normally
    assert removed.in_flight == 0 and removed.metrics.successes == 1
    assert {use_timed(b, f"e{i}") for i in range(60)} == {1, 2, 3, 7} - {host(in_flight)}
    assert b.region_size[None] == 3


def test_disable_and_enable_keep_the_health_history(clock):
    b = make_balancer(clock, max_failures=3)
    p = b.states[0]
    outcome(b, 0, Outcome.FAILURE)
    b.disable(p.key)
    assert {use(b, f"d{i}") for i in range(20)} == {2, 3}
    b.enable(p.key)
    assert b.facts(p).failures == 1
    assert 1 in {use(b, f"e{i}") for i in range(20)}


def test_a_disabled_proxy_stays_out_after_its_ejection_ends(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1", "http://10.0.0.2:1", "http://10.0.0.3:1"], max_failures=1)
    outcome(b, 0, Outcome.FAILURE)
    b.disable(b.states[0].key)
    clock.advance(120)
    assert {use(b, f"d{i}") for i in range(10)} == {2, 3}
    b.enable(b.states[0].key)
    assert b.facts(b.states[0]).state(clock()) is State.TRIAL
    assert 1 in {use(b, f"e{i}") for i in range(10)}


def test_only_disabled_proxies_left_means_wait_not_fail(clock):
    b = make_balancer(clock, ["http://10.0.0.1:1"])
    b.disable(b.states[0].key)
    wait = b.acquire(Ask("a"))
    assert wait.unavailable and wait.seconds > 0
    b.remove(b.states[0].key)
    with pytest.raises(NoProxyAvailable):
        b.acquire(Ask("a"))


def test_replace_adds_removes_and_updates_keeping_history(clock):
    b = make_balancer(clock)
    kept = b.states[1]
    outcome(b, 1, Outcome.SUCCESS)
    new = [parse_entry({"url": "http://10.0.0.2:8000", "weight": 5, "region": "eu"}),
           parse_entry("http://10.0.0.3:8000"), parse_entry("http://10.0.0.4:8000")]
    assert b.replace(new) == (1, 1, 1)
    assert b.by_key[kept.key] is kept and kept.metrics.successes == 1 and kept.proxy.weight == 5
    assert {use(b, "x", region="eu") for _ in range(5)} == {2}
    assert {use(b, f"d{i}") for i in range(30)} == {2, 3, 4}
    with pytest.raises(DuplicateProxy):
        b.add(parse_entry("http://10.0.0.3:8000"))
    with pytest.raises(UnknownProxy):
        b.remove("http://10.0.0.1:8000")
