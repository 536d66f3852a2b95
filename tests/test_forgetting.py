"""Memory follows the active sites, not the sites ever seen: what can no longer matter is forgotten (fake clock)."""

import math

from scrapy_proxybalance.core.balancer import Ask
from scrapy_proxybalance.core.candidates import pair_free_at
from scrapy_proxybalance.core.outcomes import Outcome
from scrapy_proxybalance.core.pace import SitePace
from scrapy_proxybalance.core.tiers import CLIMB_WINDOW, SiteTier
from scrapy_proxybalance.stores.answers import COMPACT_AFTER
from scrapy_proxybalance.stores.memory import MemoryStore

from .conftest import make_balancer

MEMORY = 60.0  # the longest gap a site can have (cooldown_max), as the balancer tells the store


def answered(store, key, site, now, gap=1.0, hold_until=-math.inf):
    store.take(key, site, now, 1)
    store.give_back(key, site, now, gap, 1, hold_until)


def sites_held(store):
    return set(store.pairs) | set(store.answers) | set(store.holds) | set(store.bans) | set(store.paces) \
        | set(store.site_tiers)


def test_a_site_seen_once_is_forgotten_once_its_answer_is_out_of_memory():
    store = MemoryStore()
    store.remember_answers(MEMORY)
    for i in range(1000):
        answered(store, f"p{i % 10}", f"site-{i}.test", 1000.0 + i * 0.1)  # 100 s of distinct sites
    now = 1000.0 + 999 * 0.1
    held = set(store.pairs)
    assert len(held) <= (MEMORY + 1) / 0.1 + 1  # only the last minute's sites (looked at within a second)
    assert "site-0.test" not in held and "site-999.test" in held
    assert sites_held(store) == held  # nothing else kept of the others
    assert len(store.sweep) < 2 * len(held) + 4096
    answered(store, "p0", "late.test", now + MEMORY + 1)
    assert set(store.pairs) == {"late.test"} and store.held == 1


def test_a_pair_answering_again_and_again_keeps_one_sweep_entry_and_is_forgotten_after_its_last_answer():
    store = MemoryStore()
    store.remember_answers(MEMORY)
    for i in range(5000):  # 500 s of answers through one pair, each 0.1 s after the last
        answered(store, "p", "hot.test", 1000.0 + i * 0.1)
    assert len(store.sweep) == 1 and store.held == 1
    last = 1000.0 + 4999 * 0.1
    answered(store, "q", "other.test", last + MEMORY - 1)
    assert "hot.test" in store.pairs  # its entry came due and found the later answer
    answered(store, "q", "other.test", last + MEMORY + 2)
    assert "hot.test" not in store.pairs and store.held == 1


def test_the_record_a_lease_takes_stays_the_pair_s_while_in_flight_however_long():
    store = MemoryStore()
    store.remember_answers(MEMORY)
    answered(store, "p", "a.test", 1000.0)
    store.ban("p", "a.test", 1000.0, 1001.0, level=2)
    record = store.take("p", "a.test", 1002.0, 7)
    assert (record.answered, record.ban_level) == (1000.0, 2)
    for i in range(100):  # ten minutes of other answers: the sweep looks at the pair and keeps it
        answered(store, "q", f"s{i}.test", 1000.0 + i * 6)
    assert store.pairs["a.test"]["p"] is record
    store.give_back("p", "a.test", 1700.0, 1.0, 7, pair=record)  # no lookup: the record is the pair
    assert store.pairs_of("a.test")["p"].answered == record.answered == 1700.0
    answered(store, "q", "later.test", 1700.0 + MEMORY + 2)
    assert "a.test" not in store.pairs  # answered, it is forgotten as any other


def test_a_pair_in_use_paused_or_banned_is_kept_as_long_as_that_runs():
    store = MemoryStore()
    store.remember_answers(MEMORY)
    store.take("busy", "a.test", 1000.0, 1)  # in flight, never answered
    answered(store, "paused", "a.test", 1000.0, hold_until=1000.0 + 300)
    store.take("banned", "b.test", 1000.0, 2)
    store.ban("banned", "b.test", 1000.0, 1000.0 + 200, level=1)
    store.give_back("banned", "b.test", 1000.0, 1.0, 2)
    answered(store, "other", "c.test", 1000.0 + 150)
    assert pair_free_at(store.pairs_of("a.test")["paused"], 1150.0, 8, 1.0) == 1300.0
    assert store.ban_of("banned", "b.test") == (1200.0, 1)
    assert store.banned("b.test", 1150.0) == ["banned"]
    answered(store, "other", "c.test", 1000.0 + 350)  # the pause is over, the ban too
    assert "paused" not in store.pairs.get("a.test", {}) and "busy" in store.pairs["a.test"]
    assert store.ban_of("banned", "b.test") == (1200.0, 1)  # its level: as long again as the ban (until 1400)
    answered(store, "other", "c.test", 1000.0 + 401)
    assert store.ban_of("banned", "b.test") == (-math.inf, 0) and "b.test" not in store.bans
    assert store.banned_sites("banned", 1401.0) == []


def test_a_learned_pace_is_kept_until_it_has_decayed_and_a_tier_until_its_probe_is_due():
    store = MemoryStore()
    store.remember_answers(MEMORY)
    slow = SitePace(gap=8.0, since=1000.0, limited_by="p1", limited_at=1000.0)
    store.set_pace("slow.test", slow)
    floor_state = SiteTier(tier=0, since=1000.0, why="its floor")
    climbed = SiteTier(tier=2, since=1000.0, probe_at=1500.0, probe_every=600.0, why="banned")
    store.set_tier("cheap.test", floor_state)
    store.set_tier("dear.test", climbed)
    answered(store, "p", "x.test", 1000.0 + CLIMB_WINDOW + 1)
    assert "cheap.test" not in store.site_tiers and store.tier("dear.test") == climbed  # kept until 1500 + 600
    assert store.pace("slow.test") == slow and slow.at(1000.0 + CLIMB_WINDOW + 1, 0.5) > 0.5
    answered(store, "p", "x.test", 2101.0)
    assert "dear.test" not in store.site_tiers
    decayed = slow.idle_at(MEMORY)
    assert slow.at(decayed, 0.0) == 0.0 and slow.at(decayed - 130.0, 0.0) > 0.0
    answered(store, "p", "x.test", decayed + 1)
    assert "slow.test" not in store.paces and store.pace("slow.test") == SitePace()


def test_a_broad_crawl_through_the_balancer_holds_only_the_last_minutes_sites(clock):
    b = make_balancer(clock, [f"http://10.0.0.{i}:8000" for i in range(1, 21)], cooldown=1.0)
    for i in range(5000):  # 10 sites a second for 500 s, each seen once
        clock.advance(0.1)
        lease = b.acquire(Ask(f"site-{i}.test"))
        b.release(lease, Outcome.SUCCESS, 0.05)
    store = b.store
    assert len(store.pairs) <= 61 / 0.1 + 1 and "site-0.test" not in store.pairs
    assert sites_held(store) <= set(store.pairs)


def test_unavailability_episodes_nobody_waits_on_are_dropped():
    from scrapy_proxybalance.core.availability import GAP, Unavailability

    episodes = Unavailability(timeout=600.0)
    for i in range(5000):  # a site a second nobody could serve, each waited on once
        episodes.waiting(f"site-{i}.test", 1.0, True, 1000.0 + i, "it")
    assert len(episodes.episodes) <= 1025 and "site-4999.test" in episodes.episodes
    kept = episodes.waiting("site-4999.test", 1.0, True, 1000.0 + 4999 + GAP / 2, "it")  # its episode runs on
    assert kept == 1.0 and episodes.episodes["site-4999.test"][0] == 1000.0 + 4999


def test_the_soonest_gap_to_end_is_the_earliest_answer_still_its_pair_s_last():
    store = MemoryStore()
    store.remember_answers(MEMORY)
    answered(store, "a", "s.test", 100.0)
    answered(store, "b", "s.test", 100.4)
    answered(store, "a", "s.test", 100.6)  # a's first answer is no longer its last
    assert store.soonest("s.test", 100.7, 1.0) == 101.4  # b's gap ends first
    assert store.soonest("s.test", 101.5, 1.0) == 101.6
    assert store.soonest("s.test", 101.7, 1.0) is None
    assert store.soonest("s.test", 101.7, 2.0) == 102.4  # a site that slowed holds the pairs longer at once
    answered(store, "c", "s.test", 100.5)  # a clock that went back: still in order
    assert store.soonest("s.test", 100.7, 1.0) == 101.4 and store.soonest("s.test", 101.45, 1.0) == 101.5


def test_a_site_s_answers_are_dropped_as_they_come_due():
    store = MemoryStore()
    store.remember_answers(MEMORY)
    for i in range(20000):  # 2,000 s of answers through 5 pairs, 10 a second
        answered(store, f"p{i % 5}", "s.test", 1000.0 + i * 0.1)
    log = store.answers["s.test"]
    assert len(log.times) - log.start <= (MEMORY + 1) / 0.1 + 1  # the last minute's, looked at within a second
    assert len(log.times) <= 2 * COMPACT_AFTER + 2 * (MEMORY + 1) / 0.1  # the ones looked at are dropped
    assert store.held == 5 and len(store.sweep) <= 2
