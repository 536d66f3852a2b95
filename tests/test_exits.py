"""A rotating gateway's exits (named by its answers): the entry keeps no gap, each exit does,
and a site must ban several of its exits to ban the gateway."""

from scrapy_proxybalance.core.balancer import Ask, Lease
from scrapy_proxybalance.core.listener import PoolListener
from scrapy_proxybalance.core.outcomes import Outcome

from .conftest import make_balancer

GATE = {"url": "http://gate.example:7000", "rotating": True, "exit_header": "X-Exit"}


class Told(PoolListener):
    def __init__(self):
        self.same = []

    def same_exit(self, state, site):
        self.same.append(site)


def answered(b, exit_name, outcome=Outcome.SUCCESS, site="a"):
    lease = b.acquire(Ask(site))
    assert isinstance(lease, Lease), lease
    lease.exit = exit_name
    b.release(lease, outcome, retry_after=60 if outcome is Outcome.BAN else None)
    return lease


def test_a_rotating_entry_carries_several_requests_to_a_site_at_once_whatever_the_cooldown(clock):
    b = make_balancer(clock, [GATE], cooldown=1.0, pair_limit=4)
    for n in range(5):  # proven (its concurrency limit grows with each success), each answer from a new exit
        answered(b, f"10.0.0.{n}")
    leases = [b.acquire(Ask("a")) for _ in range(4)]
    assert all(isinstance(lease, Lease) for lease in leases)
    assert not isinstance(b.acquire(Ask("a")), Lease)  # CONCURRENT_REQUESTS_PER_DOMAIN at once


def test_an_exit_the_site_saw_within_its_gap_is_told(clock):
    told = Told()
    b = make_balancer(clock, [GATE], cooldown=1.0, listener=told)
    answered(b, "1.1.1.1")
    answered(b, "2.2.2.2")
    answered(b, "1.1.1.1")
    assert told.same == ["a"]
    clock.advance(1.5)
    answered(b, "1.1.1.1")
    assert told.same == ["a"]


def test_one_banned_exit_keeps_the_gateway_on_the_site_three_ban_it(clock):
    b = make_balancer(clock, [GATE], cooldown=0.0)
    key = b.states[0].key
    answered(b, "1.1.1.1", Outcome.BAN)
    answered(b, "2.2.2.2", Outcome.BAN)
    assert b.store.ban_of(key, "a")[0] < clock()  # two exits banned: the gateway serves the site still
    answered(b, "3.3.3.3", Outcome.BAN)
    assert b.store.ban_of(key, "a")[0] > clock()  # three exits banned at once: the site bans the gateway
    assert isinstance(b.acquire(Ask("b")), Lease)  # other sites still take it
