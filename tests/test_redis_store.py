"""The Redis state store's scripts and mirror, against the real Redis at 127.0.0.1:6379."""

import asyncio
import math
import time

import pytest

from scrapy_proxybalance.core.candidates import pair_free_at
from scrapy_proxybalance.core.ejection import ProxyFacts
from scrapy_proxybalance.core.pace import SitePace
from scrapy_proxybalance.core.sessions import Binding
from scrapy_proxybalance.core.tiers import SiteTier

from .conftest import needs_redis

redis = pytest.importorskip("redis", reason="the shared store and scrapy-redis need the redis extra")
pytestmark = needs_redis
from scrapy_proxybalance.stores.redis import RedisStore  # noqa: E402

URL = "redis://127.0.0.1:6379/0"
A, B, C = "http://10.0.0.1:1", "http://10.0.0.2:1", "http://10.0.0.3:1"


def run(coroutine):
    return asyncio.run(coroutine)


async def stores(namespace, n=2, **kwargs):
    made = [RedisStore(URL, namespace, lease_ttl=kwargs.pop("lease_ttl", 10), **kwargs) for _ in range(n)]
    for store in made:
        await store.start()
    return made


async def close(*made):
    for store in made:
        await store.close()


def test_a_pair_is_claimed_once_for_the_whole_fleet_and_alternates_are_tried_in_order(namespace):
    async def scenario():
        one, two = await stores(namespace)
        assert (await one.claim("s", [A, B], 1, limit=1, gap=0.3))[0] == A
        assert (await two.claim("s", [A, B], 1, limit=1, gap=0.3))[0] == B  # A is in use elsewhere
        assert await two.claim("s", [A, B], 2, limit=1, gap=0.3) is None
        held_until = pair_free_at(two.pairs_of("s").get(A), time.monotonic(), 1, 0.3)
        assert held_until > time.monotonic()  # it learned both are held
        assert (await two.claim("other", [A], 3, limit=1, gap=0.3))[0] == A  # another site: another pair
        await close(one, two)

    run(scenario())


def test_what_a_claim_taught_of_a_pair_in_flight_is_shortened_once_its_answer_is_known(namespace):
    async def scenario():
        one, two = await stores(namespace)
        assert (await one.claim("s", [A], 1, limit=1, gap=0.5))[0] == A
        assert await two.claim("s", [A], 1, limit=1, gap=0.5) is None  # in flight: held for a guess
        now = time.monotonic()
        guessed = pair_free_at(two.pairs_of("s").get(A), now, 1, 0.5)
        assert guessed > now + 0.5
        one.give_back(A, "s", now, 0.5, 1)  # answered now: the pair is free half a second from now
        await one.flush()
        assert (await two.claim("s", [B], 2, limit=1, gap=0.5))[0] == B  # any claim brings the news
        assert abs(pair_free_at(two.pairs_of("s").get(A), time.monotonic(), 1, 0.5) - (now + 0.5)) < 0.1 < guessed - now - 0.5
        await close(one, two)

    run(scenario())


def test_the_gap_counts_from_the_answer_by_redis_s_clock(namespace):
    async def scenario():
        one, two = await stores(namespace)
        assert (await one.claim("s", [A], 1, limit=1, gap=0.3))[0] == A
        one.give_back(A, "s", time.monotonic(), 0.3, 1)
        await one.flush()
        assert await two.claim("s", [A], 1, limit=1, gap=0.3) is None  # within 0.3 s of the answer
        await asyncio.sleep(0.35)
        assert (await two.claim("s", [A], 2, limit=1, gap=0.3))[0] == A
        await close(one, two)

    run(scenario())


def test_a_pause_a_ban_and_an_ejection_hold_the_pair_for_every_process(namespace):
    async def scenario():
        one, two = await stores(namespace)
        now = time.monotonic()
        assert (await one.claim("s", [A], 1, limit=1, gap=0))[0] == A
        one.give_back(A, "s", now, 0, 1, hold_until=now + 0.3)  # Retry-After 0.3 s
        one.ban(B, "s", now, now + 30, 1)
        one.set_facts(C, ProxyFacts(ejected_until=now + 30, trial=True, level=1, ejections=1, reason="refused"))
        await one.flush()
        assert await two.claim("s", [A, B, C], 1, limit=1, gap=0) is None
        await asyncio.sleep(0.35)
        assert (await two.claim("s", [B, C, A], 2, limit=1, gap=0))[0] == A
        await close(one, two)

    run(scenario())


def test_what_one_process_changes_the_others_see_and_are_told_of(namespace):
    async def scenario():
        one, two = await stores(namespace)
        told = []
        two.subscribe(told.append)
        now = time.monotonic()
        one.set_facts(A, ProxyFacts(ejected_until=now + 60, trial=True, level=1, ejections=1, reason="refused"))
        one.set_pace("s", SitePace(gap=0.5, since=now, limited_by=B, limited_at=now))
        await one.flush()
        await two.sync()
        facts = two.facts(A)
        assert told == [A] and facts.ejections == 1 and facts.trial and facts.reason == "refused"
        assert abs(facts.ejected_until - (now + 60)) < 0.5  # Redis's clock, back in this process's
        pace = two.pace("s")
        assert pace.gap == 0.5 and pace.limited_by == B and abs(pace.since - now) < 0.5
        one.set_tier("s", SiteTier(2, now, (A, B), now - 5, now + 300, 300.0, -math.inf, "tier 1 banned"))
        one.set_tier("t", SiteTier(0, now, (), -math.inf, math.inf, 0.0, now, ""))
        await one.flush()
        await two.sync()
        tier, other = two.tier("s"), two.tier("t")
        assert (tier.tier, tier.banned_by, tier.probe_every, tier.why) == (2, (A, B), 300.0, "tier 1 banned")
        assert abs(tier.probe_at - (now + 300)) < 0.5 and abs(tier.banned_at - (now - 5)) < 0.5
        assert tier.probing == -math.inf and other.probe_at == math.inf and abs(other.probing - now) < 0.5
        assert other.banned_by == () and set(two.tiers()) == {"s", "t"}
        await close(one, two)

    run(scenario())


def test_a_claim_of_a_process_that_died_expires_with_its_lease(namespace):
    async def scenario():
        dead, alive = await stores(namespace, lease_ttl=0.3)
        assert (await dead.claim("s", [A], 1, limit=1, gap=0))[0] == A  # and never gives it back
        await dead.close()
        assert await alive.claim("s", [A], 1, limit=1, gap=0) is None
        await asyncio.sleep(0.35)
        assert (await alive.claim("s", [A], 2, limit=1, gap=0))[0] == A
        await alive.close()

    run(scenario())


def test_keys_expire_when_unused(namespace):
    async def scenario():
        (one,) = await stores(namespace, n=1)
        assert (await one.claim("s", [A], 1, limit=1, gap=0.1))[0] == A
        one.give_back(A, "s", time.monotonic(), 0.1, 1)
        one.set_facts(A, ProxyFacts(failures=1, reason="refused"))
        await one.flush()
        await one.close()
        server = redis.Redis.from_url(URL)
        keys = list(server.scan_iter(f"{{{namespace}}}:*"))
        assert keys and all(server.pttl(k) > 0 for k in keys)  # every key has an expiry

    run(scenario())


def test_a_pair_s_keys_live_as_long_as_its_answer_can_matter_and_a_ban_as_long_as_it_runs(namespace):
    async def scenario():
        (one,) = await stores(namespace, n=1)
        one.remember_answers(60.0)  # the longest a site's gap can be (PROXY_DOMAIN_COOLDOWN_MAX)
        for site in ("once.test", "banned.test"):
            assert (await one.claim(site, [A], 1, limit=1, gap=1.0))[0] == A
        now = time.monotonic()
        one.ban(A, "banned.test", now, now + 7200.0, 1)
        for site in ("once.test", "banned.test"):
            one.give_back(A, site, now, 1.0, 1)
        await one.flush()
        await one.close()
        server = redis.Redis.from_url(URL)
        once = one.link.key("pair", "once.test", A)
        banned = one.link.key("pair", "banned.test", A)
        assert 60_000 <= server.pttl(once) <= 66_000  # a site seen once is gone from Redis a minute later
        assert server.pttl(banned) > 7200_000  # a running ban is not cut short by the answer after it

    run(scenario())


def test_with_redis_away_a_store_goes_on_alone_and_says_so_once():
    async def scenario():
        said = []
        store = RedisStore("redis://127.0.0.1:1/0", "nowhere", lease_ttl=10, timeout=0.2, on_trouble=said.append)
        await store.start()
        assert (await store.claim("s", [A, B], 1, limit=1, gap=0))[0] == A  # its own pick stands
        assert (await store.claim("s", [B], 2, limit=1, gap=0))[0] == B
        store.give_back(A, "s", time.monotonic(), 0, 1)
        await store.flush()
        assert len(said) == 1 and "cannot reach the shared state at redis://127.0.0.1:1/0" in said[0]
        assert store.link.outbox  # kept for when it answers again
        await store.close()

    run(scenario())


def test_a_proxy_added_or_removed_by_one_process_is_added_or_removed_by_the_others(namespace):
    async def scenario():
        one, two = await stores(namespace)
        changes = []
        two.subscribe_pool(lambda action, value: changes.append((action, value)))
        one.share_pool_change("add", '{"url": "http://u:pw@10.0.0.9:1", "name": "new"}')
        one.share_pool_change("remove", A)
        await one.flush()
        await two.sync()
        assert changes == [("add", '{"url": "http://u:pw@10.0.0.9:1", "name": "new"}'), ("remove", A)]
        await close(one, two)

    run(scenario())


def test_a_session_binding_is_shared_and_the_first_process_to_bind_it_wins(namespace):
    async def scenario():
        one, two = await stores(namespace)
        now = time.monotonic()
        assert one.bind_session("s1", Binding(A, 0, now, used=now)).proxy == A
        assert two.bind_session("s1", Binding(B, 0, now, used=now)).proxy == B  # its own mirror, for now
        await one.flush()
        await two.flush()  # refused in Redis: one bound it first
        await two.sync()
        assert two.session("s1", now).proxy == A  # the session follows the fleet's binding
        one.set_session("s1", Binding("", 1, now, renewed=False, used=now, why="proxy removed"))
        await one.flush()
        await two.sync()
        moved = two.session("s1", now)
        assert (moved.proxy, moved.generation, moved.renewed, moved.why) == ("", 1, False, "proxy removed")
        assert abs(moved.since - now) < 0.5
        await close(one, two)

    run(scenario())


def test_what_a_process_that_died_held_is_reclaimed_once_by_another(namespace):
    async def scenario():
        dying, other, third = await stores(namespace, n=3)
        dying.hold("t1", b"request one")
        dying.hold("t2", b"request two")
        dying.let_go("t2")  # done before it died
        await dying.flush()
        assert await other.reclaim() == []  # its heartbeat runs: its requests are its own
        for task in dying.link.tasks:  # it dies: no heartbeat, no close
            task.cancel()
        server = redis.Redis.from_url(URL)
        server.delete(dying.link.key("alive", dying.link.writer))  # (rather than wait out ALIVE_FOR)
        taken = [await other.reclaim(), await third.reclaim()]
        assert sorted(map(len, taken)) == [0, 1] and b"request one" in taken[0] + taken[1]
        other.hold("t3", b"request three")
        await close(other, third)
        assert not server.exists(other.link.key("custody", other.link.writer))  # a clean close keeps nothing
        await dying.link.redis.aclose()

    run(scenario())


def test_with_every_candidate_held_the_one_whose_gap_ends_soonest_is_booked_for_one_process(namespace):
    async def scenario():
        one, two, three = await stores(namespace, n=3)
        for lease, key in ((1, A), (2, B)):
            assert (await one.claim("s", [key], lease, limit=1, gap=0.4))[0] == key
        now = time.monotonic()
        one.give_back(A, "s", now, 0.4, 1)  # A's gap ends 0.4 s from now; B is still in flight
        await one.flush()
        key, at = await two.claim("s", [B, A], 1, limit=1, gap=0.4, book=0.4)
        assert key == A and now + 0.3 < at < now + 0.5  # booked: it goes when A's gap ends
        assert await three.claim("s", [A, B], 1, limit=1, gap=0.4, book=0.4) is None  # A is booked, B in flight
        assert await three.claim("s", [A], 2, limit=1, gap=0.4) is None  # without booking, as before
        await close(one, two, three)

    run(scenario())
