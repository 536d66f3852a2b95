"""Each strategy's rule, checked with exact sequences where the rule is deterministic."""

from collections import Counter

import pytest

from scrapy_proxybalance.core.balancer import Ask
from scrapy_proxybalance.core.ejection import Backoff
from scrapy_proxybalance.core.outcomes import Outcome
from scrapy_proxybalance.core.strategies import STRATEGIES

from .conftest import host, make_balancer


def host_of(p):
    return int(p.proxy.host.rsplit(".", 1)[1])


def picks(b, n, domain="site.test", latency=None):
    out = []
    for _ in range(n):
        lease = b.acquire(Ask(domain))
        out.append(host(lease))
        b.release(lease, Outcome.SUCCESS, latency(lease) if latency else None)
    return out


def test_round_robin_cycles_in_pool_order(clock):
    assert picks(make_balancer(clock, strategy="round_robin"), 7) == [1, 2, 3, 1, 2, 3, 1]


def test_weighted_round_robin_gives_exactly_5_3_1_interleaved(clock):
    entries = [{"url": "http://10.0.0.1:1", "weight": 5}, {"url": "http://10.0.0.2:1", "weight": 3},
               {"url": "http://10.0.0.3:1", "weight": 1}]
    seq = picks(make_balancer(clock, entries, strategy="weighted_round_robin"), 90)
    for start in range(0, 90, 9):
        assert Counter(seq[start:start + 9]) == {1: 5, 2: 3, 3: 1}
    # smooth, not in bursts: the heaviest never takes more than two picks in a row
    assert max(len(run) for run in "".join(map(str, seq)).replace("2", " ").replace("3", " ").split()) <= 2


def test_weighted_round_robin_keeps_weights_when_members_refuse_and_come_and_go():
    import random

    from scrapy_proxybalance.core.proxy import Proxy
    from scrapy_proxybalance.core.state import ProxyState
    from scrapy_proxybalance.core.strategies import WeightedRoundRobin

    rng = random.Random(5)
    weights = [1, 2, 3, 1, 2, 5, 0.5, 3]
    members = [ProxyState.of(i, Proxy("http", f"10.0.0.{i}", 1, weight=w)) for i, w in enumerate(weights)]
    s = WeightedRoundRobin(rng)
    for p in members:
        s.add(p)
    counts: Counter[int] = Counter()
    for step in range(20000):
        refused = {p.id for p in members if rng.random() < 0.3}
        got = s.pick(lambda p: p.id not in refused)  # noqa: B023
        if got is None:
            assert len(refused) == len(members)
        else:
            assert got.id not in refused
            counts[got.id] += 1
        if step == 10000:  # one leaves and comes back: it starts at the current turn, not owed any
            s.remove(members[5])
            s.add(members[5])
    shares = {i: counts[i] / sum(counts.values()) for i in counts}
    for p in members:  # a refusal costs a member its turn only while it refuses
        assert abs(shares[p.id] - p.weight / sum(weights)) < 0.02, shares
    # lane-mates (the same weight) take turns: the one picked ahead of a refusing mate goes behind it
    a, b = (ProxyState.of(i, Proxy("http", f"10.0.1.{i}", 1)) for i in (1, 2))
    s = WeightedRoundRobin(rng)
    s.add(a)
    s.add(b)
    assert s.pick(lambda p: p is b) is b
    assert [s.pick(lambda p: True).id for _ in range(4)] == [a.id, b.id, a.id, b.id]


def test_least_connections_picks_the_proxy_with_fewest_in_flight(clock):
    b = make_balancer(clock, strategy="least_connections")
    held = [b.acquire(Ask("a")), b.acquire(Ask("a"))]
    assert {host(h) for h in held} == {1, 2}
    third = b.acquire(Ask("a"))
    assert host(third) == 3
    b.release(held[0], Outcome.SUCCESS)  # proxy 1 now has 0 in flight, the others 1
    assert host(b.acquire(Ask("a"))) == 1


def test_least_connections_under_random_in_flight_load(clock):
    import random

    rng = random.Random(7)
    b = make_balancer(clock, [f"http://10.0.0.{i}:1" for i in range(1, 11)], strategy="least_connections")
    for p in b.states:  # lift the slow-start limits out of the way
        p.limit.limit = 1000.0
    leases = []
    for i in range(2000):
        if leases and rng.random() < 0.45:
            b.release(leases.pop(rng.randrange(len(leases))), Outcome.SUCCESS)
        else:
            fewest = min(p.in_flight for p in b.states)
            lease = b.acquire(Ask(f"site-{i}"))
            assert lease.state.in_flight - 1 == fewest
            leases.append(lease)


def test_least_latency_tries_unknown_proxies_first_then_prefers_fast(clock):
    b = make_balancer(clock, [f"http://10.0.0.{i}:1" for i in range(1, 5)], strategy="least_latency")
    latency = {1: 0.8, 2: 0.05, 3: 0.4, 4: 0.6}
    seq = picks(b, 400, latency=lambda lease: latency[host(lease)])
    assert sorted(seq[:4]) == [1, 2, 3, 4]  # every proxy measured before any is preferred
    assert set(seq[4:]) == {2}  # one request at a time: the fastest always ends first


def test_least_latency_spills_over_in_order_of_the_queue_a_request_would_join(clock):
    b = make_balancer(clock, [f"http://10.0.0.{i}:1" for i in range(1, 5)], strategy="least_latency")
    latency = {1: 0.8, 2: 0.05, 3: 0.4, 4: 0.6}
    for _ in range(40):  # measured, and proven (each may take several requests at once)
        picks(b, 4, latency=lambda lease: latency[host(lease)])
        for p in b.states:
            b.release(b.lease(p, Ask("site.test"), clock()), Outcome.SUCCESS, latency[host_of(p)])
    held = [b.acquire(Ask("site.test")) for _ in range(12)]
    order = [host(lease) for lease in held]
    # 0.05 x (n + 1): seven at the fast one cost what one at 0.4 s costs; then both share the load
    assert order[:7] == [2] * 7 and order.count(3) == 1 and 1 not in order


def test_random_is_uniform(clock):
    b = make_balancer(clock, [f"http://10.0.0.{i}:1" for i in range(1, 11)], strategy="random")
    counts = Counter(picks(b, 20000))
    assert set(counts) == set(range(1, 11))
    assert all(1800 <= c <= 2200 for c in counts.values()), counts


def test_weighted_random_follows_weight_times_success_rate(clock):
    entries = [{"url": f"http://10.0.0.{i}:1", "weight": w} for i, w in ((1, 1), (2, 2), (3, 7))]
    b = make_balancer(clock, entries, strategy="weighted_random", ban_backoff=Backoff(0.0, 0.0))
    counts = Counter(picks(b, 20000))
    for proxy, weight in ((1, 1), (2, 2), (3, 7)):
        assert abs(counts[proxy] / 20000 - weight / 10) < 0.02, counts
    # a proxy that is always banned sinks to the floor: weight 7 * 0.1 = 0.7 of 3.7
    counts = Counter()
    for _ in range(20000):
        lease = b.acquire(Ask("site.test"))
        counts[host(lease)] += 1
        b.release(lease, Outcome.BAN if host(lease) == 3 else Outcome.SUCCESS)
    assert abs(counts[3] / 20000 - 0.7 / 3.7) < 0.02, counts


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_skips_rejected_members_and_finds_the_last_free_one(clock, name):
    b = make_balancer(clock, [f"http://10.0.0.{i}:1" for i in range(1, 51)], strategy=name, cooldown=5.0)
    seen = [host(b.acquire(Ask("a"))) for _ in range(50)]  # each proxy once, then all busy on a
    assert sorted(seen) == list(range(1, 51))
