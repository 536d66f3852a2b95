"""Price tiers: each site's tier learned from bans spread over proxies, probed back down, on
the fake clock; the balancer picking within a request's tiers."""

import math
from dataclasses import replace

import pytest

from scrapy_proxybalance.core.balancer import Ask, Lease, Wait
from scrapy_proxybalance.core.ejection import Backoff
from scrapy_proxybalance.core.entries import parse_entry
from scrapy_proxybalance.core.errors import InvalidProxy, NoProxyAvailable
from scrapy_proxybalance.core.listener import PoolListener
from scrapy_proxybalance.core.outcomes import Outcome
from scrapy_proxybalance.core.tiers import CLIMB_WINDOW, NO_TIER, PROBE_STALE, TierChoice, TierRules, Tiers
from scrapy_proxybalance.stores.memory import MemoryStore

from .conftest import make_balancer

PROBE = 300.0
RULES = TierRules(PROBE, 4 * PROBE, {"shop.example": (1, 2), "open.example": (0, 0)})
PRESENT = {0: 3, 1: 2, 2: 1}


def tiers(present=PRESENT, rules=RULES):
    return Tiers(rules, lambda: present, MemoryStore(), PoolListener())


def test_a_new_site_starts_at_its_floor_or_the_lowest_tier_with_proxies():
    t = tiers()
    assert t.settle(NO_TIER, "a.example", 0.0).tier == 0
    assert t.settle(NO_TIER, "www.shop.example", 0.0).tier == 1  # its parent domain's floor
    assert tiers({1: 1, 2: 1}).settle(NO_TIER, "a.example", 0.0).tier == 1


def test_bans_from_two_distinct_proxies_of_the_tier_climb_one_proxy_does_not():
    t = tiers()
    state = t.settle(NO_TIER, "a", 0.0)
    for _ in range(5):
        state = t.banned(state, "a", 0, "p1", 1.0, probe=False)
    assert state.tier == 0  # one bad proxy does not move a site
    state = t.banned(state, "a", 0, "p2", 2.0, probe=False)
    assert state.tier == 1 and state.probe_at == 2.0 + PROBE and "banned by 2" in state.why


def test_bans_further_apart_than_the_window_do_not_add_up():
    t = tiers()
    state = t.banned(t.settle(NO_TIER, "a", 0.0), "a", 0, "p1", 0.0, probe=False)
    state = t.banned(state, "a", 0, "p2", CLIMB_WINDOW + 1, probe=False)
    assert state.tier == 0 and state.banned_by == ("p2",)


def test_a_tier_of_one_proxy_climbs_on_its_ban_and_the_ceiling_holds():
    t = tiers({0: 1, 1: 1, 2: 1})
    state = t.banned(t.settle(NO_TIER, "open.example", 0.0), "open.example", 0, "p", 1.0, probe=False)
    assert state.tier == 0 and "highest" in state.why  # its ceiling is 0
    state = t.banned(t.settle(NO_TIER, "a", 0.0), "a", 0, "p", 1.0, probe=False)
    assert state.tier == 1


def test_other_outcomes_and_answers_at_other_tiers_never_climb():
    t = tiers()
    state = t.settle(NO_TIER, "a", 0.0)
    t.store.set_tier("a", state)
    for outcome in (Outcome.FAILURE, Outcome.RATE_LIMITED, Outcome.OVERLOADED, Outcome.SUCCESS):
        for proxy in ("p1", "p2", "p3"):
            t.answered("a", 0, proxy, outcome, False, 1.0)
    assert t.store.tier("a") == state
    for proxy in ("p1", "p2", "p3"):
        t.answered("a", 1, proxy, Outcome.BAN, False, 1.0)  # a retry a tier up banned: not the site's tier
    assert t.store.tier("a").tier == 0


def test_a_probe_goes_a_tier_down_after_the_interval_and_steps_down_when_taken():
    t = tiers()
    state = t.banned(t.banned(t.settle(NO_TIER, "a", 0.0), "a", 0, "p1", 0.0, False), "a", 0, "p2", 0.0, False)
    assert t.choose(state, "a", PROBE - 1).tiers == (1, 2)
    choice = t.choose(state, "a", PROBE)
    assert choice.probe and choice.tiers == (0,)
    state = t.took(state, 0, PROBE + 1, probe=True)
    assert state.tier == 0 and "probe" in state.why


def test_a_banned_probe_doubles_the_wait_up_to_the_most():
    t = tiers()
    state = t.banned(t.banned(t.settle(NO_TIER, "a", 0.0), "a", 0, "p1", 0.0, False), "a", 0, "p2", 0.0, False)
    now, waits = PROBE, []
    for _ in range(5):
        assert t.choose(state, "a", now).probe
        state = t.banned(state, "a", 0, "p3", now, probe=True)
        assert state.tier == 1
        waits.append(state.probe_at - now)
        now = state.probe_at
    assert waits == [2 * PROBE, 4 * PROBE, 4 * PROBE, 4 * PROBE, 4 * PROBE]  # PROBE after the climb


def test_one_probe_at_a_time_and_a_lost_one_frees_the_turn():
    t = tiers()
    state = t.banned(t.banned(t.settle(NO_TIER, "a", 0.0), "a", 0, "p1", 0.0, False), "a", 0, "p2", 0.0, False)
    t.store.set_tier("a", state)
    t.sent("a", state, True, PROBE)
    out = t.store.tier("a")
    assert not t.choose(out, "a", PROBE + 1).probe  # the probe is out
    assert t.choose(out, "a", PROBE + PROBE_STALE + 1).probe  # never answered: the turn is free again
    lost = t.probe_lost(out, PROBE + 2)
    assert lost.probing == -math.inf and lost.probe_at <= PROBE + 2 + PROBE / 10


def test_a_probe_never_goes_below_what_the_request_needs():
    t = tiers({0: 2, 2: 2, 3: 1})
    state = replace(t.settle(NO_TIER, "a", 0.0), tier=3, probe_at=0.0)
    assert t.choose(state, "a", 1.0).tiers == (2,)
    assert t.choose(state, "a", 1.0, at_least=1) == TierChoice((2,), probe=True)  # 2: the tier below, above 1
    assert not t.choose(replace(state, tier=2), "a", 1.0, at_least=1).probe  # none between 1 and 2


def test_a_retry_after_a_ban_goes_at_least_a_tier_up_and_never_probes():
    t = tiers()
    state = t.settle(NO_TIER, "a", 0.0)
    assert t.choose(state, "a", 0.0, at_least=1).tiers == (1, 2)
    assert t.choose(state, "open.example", 0.0, at_least=1).tiers == (0,)  # never above the ceiling
    assert t.choose(state, "a", 0.0, pinned=2).tiers == (2,)


# -- the balancer ---------------------------------------------------------------------

POOL = [
    {"url": "http://10.0.0.1:1", "tier": 0},
    {"url": "http://10.0.0.2:1", "tier": 0},
    {"url": "http://10.0.0.3:1", "tier": 1},
    {"url": "http://10.0.0.4:1", "tier": 1},
    {"url": "http://10.0.0.5:1", "tier": 2},
]


def tiered(clock, **changes):
    rules = changes.pop("tiers", TierRules(PROBE, 4 * PROBE, {"shop.example": (1, 1)}))
    return make_balancer(clock, POOL, tiers=rules, **changes)


def test_requests_go_at_the_sites_tier_and_a_ban_retry_a_tier_up(clock):
    b = tiered(clock)
    leases = [b.acquire(Ask("a")) for _ in range(2)]
    assert {lease.proxy.tier for lease in leases} == {0} and leases[0].site_tier == 0
    for lease in leases:
        b.release(lease, Outcome.BAN)
    assert b.store.tier("a").tier == 1
    assert b.acquire(Ask("a")).proxy.tier == 1
    retry = b.acquire(Ask("b", tier_min=1, tried=()))
    assert retry.proxy.tier == 1


def test_a_site_within_its_bounds_and_a_pin_outside_them(clock):
    b = tiered(clock)
    lease = b.acquire(Ask("www.shop.example"))
    assert lease.proxy.tier == 1
    b.release(lease, Outcome.BAN)
    b.release(b.acquire(Ask("www.shop.example", tried=(lease.state.key,))), Outcome.BAN)
    assert b.store.tier("www.shop.example").tier == 1  # its ceiling
    assert b.acquire(Ask("www.shop.example", pin=2)).proxy.tier == 2
    with pytest.raises(NoProxyAvailable, match="tier 7"):
        b.acquire(Ask("a", pin=7))


def test_a_tier_all_ejected_or_banned_passes_requests_up_without_moving_the_site(clock):
    b = tiered(clock, max_failures=1)
    for key in ("http://10.0.0.1:1", "http://10.0.0.2:1"):
        b.release(b.lease(b.by_key[key], Ask("a"), clock()), Outcome.FAILURE)
    lease = b.acquire(Ask("a"))
    assert lease.proxy.tier == 1
    assert b.store.tier("a").tier == 0


def test_a_busy_tier_makes_requests_wait_rather_than_pay_more(clock):
    b = tiered(clock, cooldown=10.0)
    for _ in range(2):
        b.release(b.acquire(Ask("a")), Outcome.SUCCESS)
    assert isinstance(b.acquire(Ask("a")), Wait)


def test_a_probe_that_finds_its_tier_busy_goes_at_the_sites_tier(clock):
    b = tiered(clock, cooldown=10.0)
    for lease in [b.acquire(Ask("a")) for _ in range(2)]:
        b.release(lease, Outcome.BAN)
    assert b.store.tier("a").tier == 1
    clock.advance(PROBE)
    probe = b.acquire(Ask("a"))
    assert isinstance(probe, Lease) and probe.tier_probe and probe.proxy.tier == 0
    other = b.acquire(Ask("a"))
    assert isinstance(other, Lease) and not other.tier_probe and other.proxy.tier == 1
    b.release(probe, Outcome.SUCCESS)
    assert b.store.tier("a").tier == 0


def test_an_untiered_pool_of_one_higher_tier_serves_as_before(clock):
    b = make_balancer(clock, [{"url": "http://10.0.0.9:1", "tier": 3}])
    lease = b.acquire(Ask("a"))
    assert lease.proxy.tier == 3 and lease.site_tier is None


def test_a_direct_entry_is_a_tier_of_its_own_of_any_scheme(clock):
    b = make_balancer(clock, ["direct://", {"url": "socks5://10.0.0.1:1080", "tier": 1}])
    lease = b.acquire(Ask("a", schemes=frozenset({"http"})))
    assert lease.proxy.direct and lease.proxy.key == "direct://" and str(lease.proxy) == "direct://"


def test_entries_carry_tier_and_cost():
    proxy = parse_entry({"url": "http://u:pw@dc-1:8000", "tier": 0, "cost": 0.0001})
    assert proxy.cost is not None and proxy.cost.of(10**9) == 0.0001
    proxy = parse_entry({"url": "http://u:pw@res:8000", "tier": 2, "cost": {"request": 0.001, "gb": 4.0}})
    assert proxy.tier == 2 and proxy.cost is not None and proxy.cost.of(500_000_000) == pytest.approx(2.001)
    for bad in ({"tier": -1}, {"tier": 1.5}, {"tier": True}, {"cost": -1}, {"cost": {"month": 3}},
                {"cost": "cheap"}, {"cost": {"gb": float("nan")}}):
        with pytest.raises(InvalidProxy, match=r"tier|cost") as caught:
            parse_entry({"url": "http://u:secretpw@h:1", **bad})
        assert "secretpw" not in str(caught.value) and "***" in str(caught.value)
    with pytest.raises(InvalidProxy, match="direct"):
        parse_entry({"url": "direct://", "rotating": True})


def test_a_probe_whose_tier_is_all_held_goes_at_the_sites_tier_and_probes_later(clock):
    b = tiered(clock, ban_backoff=Backoff(10 * PROBE, 10 * PROBE, jitter=0.0))
    for lease in [b.acquire(Ask("a")) for _ in range(2)]:
        b.release(lease, Outcome.BAN)
    clock.advance(PROBE)
    lease = b.acquire(Ask("a"))
    assert isinstance(lease, Lease) and not lease.tier_probe and lease.proxy.tier == 1
    assert b.store.tier("a").probing == -math.inf  # no probe went: the turn is still free
