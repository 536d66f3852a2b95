"""Sticky sessions and session gateways, on a fake clock."""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scrapy_proxybalance.core.balancer import Ask, Wait
from scrapy_proxybalance.core.entries import parse_entry
from scrapy_proxybalance.core.errors import InvalidProxy
from scrapy_proxybalance.core.gateways import token
from scrapy_proxybalance.core.listener import PoolListener
from scrapy_proxybalance.core.outcomes import Outcome
from scrapy_proxybalance.core.sessions import IDLE_EXPIRY, RENEW_POLL, RENEW_TIMEOUT, SessionLimits

from .conftest import FakeClock, make_balancer, outcome

POOL = [f"http://10.0.0.{i}:1" for i in range(1, 11)]
GATEWAY = {"url": "http://user-session-{session}:secret@gate.test:7000", "sessions": 500, "name": "gate"}


class Told(PoolListener):
    def __init__(self):
        self.moves: list[tuple[str, str]] = []
        self.renewed: list[str] = []

    def session_moved(self, session, reason):
        self.moves.append((session, reason))

    def session_renewed(self, session):
        self.renewed.append(session)


def send(b, session, site="a", generation=None, result=Outcome.SUCCESS, region=None):
    """One request of ``session``: its lease (released with ``result`` unless None)."""
    lease = b.acquire(Ask(site, region=region, session=session, generation=generation))
    if result is not None and not isinstance(lease, Wait):
        b.release(lease, result)
    return lease


def test_a_session_keeps_its_proxy_and_waits_for_its_cooldown_rather_than_moving(clock):
    b = make_balancer(clock, POOL, strategy="weighted_random", cooldown=1.0)
    first = send(b, "s1")
    assert send(b, "s1", result=None) == Wait(1.0)  # other proxies are free, yet it waits for its own
    clock.advance(1.0)
    assert send(b, "s1").state is first.state
    assert send(b, "s2", result=None).state is not first.state  # another session, another proxy


def test_sessions_spread_over_the_pool(clock):
    b = make_balancer(clock, POOL, strategy="weighted_random")
    counts = Counter(send(b, f"s{i}").state.key for i in range(30))
    assert len(counts) == 10 and max(counts.values()) <= 4


def test_a_session_moves_once_when_its_proxy_is_ejected_and_its_first_request_is_told(clock):
    told = Told()
    b = make_balancer(clock, POOL, listener=told)
    bound = send(b, "s1").state
    outcome(b, bound.id, Outcome.FAILURE, times=3)  # ejected
    first = send(b, "s1")
    assert first.state is not bound and first.moved.startswith("proxy ejected")
    assert told.moves == [("s1", first.moved)]
    later = send(b, "s1")
    assert later.state is first.state and not later.moved  # told once


@pytest.mark.parametrize("how", ["ban", "remove", "disable"])
def test_a_session_moves_when_the_site_bans_its_proxy_or_it_leaves_the_pool(clock, how):
    b = make_balancer(clock, POOL)
    bound = send(b, "s1").state
    if how == "ban":
        outcome(b, bound.id, Outcome.BAN)
    elif how == "remove":
        b.remove(bound.key)
    else:
        b.disable(bound.key)
    moved = send(b, "s1")
    assert moved.state is not bound
    assert moved.moved == {"ban": "proxy banned by a", "remove": "proxy removed", "disable": "proxy disabled"}[how]


def test_a_session_is_bound_to_a_proxy_that_is_not_failing_while_there_is_one(clock):
    b = make_balancer(clock, POOL[:3])
    for pid in (0, 1):
        outcome(b, pid, Outcome.FAILURE)  # failing, not yet ejected (3 failures eject)
    assert [send(b, f"s{i}").state.id for i in range(2)] == [2, 2]  # on the sound one...
    assert send(b, "s2").state.id in (0, 1)  # ...while the spread allows
    outcome(b, 2, Outcome.FAILURE)
    assert send(b, "s9").state.id in (0, 1, 2)  # none is sound: bound anyway, no wait


def test_a_failure_does_not_move_a_session(clock):
    b = make_balancer(clock, POOL)
    bound = send(b, "s1", result=Outcome.FAILURE).state
    again = send(b, "s1")
    assert again.state is bound and not again.moved


@pytest.mark.parametrize(("limits", "why"), [
    (SessionLimits(max_age=0, max_requests=3, max_errors=0), "max requests"),
    (SessionLimits(max_age=60, max_requests=0, max_errors=0), "max age"),
    (SessionLimits(max_age=0, max_requests=0, max_errors=2), "max errors"),
])
def test_a_session_is_retired_at_its_limits(clock, limits, why):
    b = make_balancer(clock, POOL, sessions=limits, max_failures=10)
    result = Outcome.FAILURE if why == "max errors" else Outcome.SUCCESS
    leases = [send(b, "s1", result=result)]
    while not leases[-1].moved and len(leases) < 10:
        clock.advance(20)
        leases.append(send(b, "s1", result=result))
    assert leases[-1].moved == why and leases[-1].state is not leases[0].state
    assert len(leases) - 1 == {"max requests": 3, "max age": 3, "max errors": 2}[why]


def test_older_requests_of_a_moved_session_wait_until_the_new_binding_answers(clock):
    told = Told()
    b = make_balancer(clock, POOL, listener=told)
    bound = send(b, "s1").state
    b.remove(bound.key)
    moved = send(b, "s1", generation=0, result=None)  # the one that finds out goes first, and is told
    assert moved.moved == "proxy removed" and moved.generation == 1
    assert send(b, "s1", generation=0, result=None) == Wait(RENEW_POLL)  # queued before the move: waits
    b.release(moved, Outcome.BAN)  # the site refused the moved request (no login yet): not the proxy's ban
    assert b.store.ban_of(moved.state.key, "a")[0] < clock()
    assert send(b, "s1", generation=0, result=None) == Wait(RENEW_POLL)  # no answer yet: still waits
    login = send(b, "s1", generation=1, result=None)  # the spider's renewal (queued after the move) goes
    assert login.state is moved.state
    b.release(login, Outcome.SUCCESS)
    assert told.renewed == ["s1"]
    assert send(b, "s1", generation=0).state is moved.state  # renewed: the older ones follow


def test_older_requests_go_anyway_after_the_renewal_timeout(clock):
    b = make_balancer(clock, POOL)
    b.remove(send(b, "s1").state.key)
    send(b, "s1", result=Outcome.NEUTRAL)
    assert isinstance(send(b, "s1", generation=0, result=None), Wait)
    clock.advance(RENEW_TIMEOUT)
    assert not isinstance(send(b, "s1", generation=0), Wait)


def test_unused_sessions_expire(clock):
    b = make_balancer(clock, POOL)
    send(b, "s1")
    clock.advance(IDLE_EXPIRY)
    b.acquire(Ask("a"))  # any session lookup expires the idle ones
    assert b.store.session("s1", clock()) is None
    assert not send(b, "s1").moved  # a new session, nothing to tell


def test_a_gateway_template_makes_an_identity_per_session_lazily(clock):
    b = make_balancer(clock, [GATEWAY])
    assert not b.by_key  # no identity until one is needed
    leases = [send(b, f"account{i}") for i in range(500)]
    assert len({lease.state.key for lease in leases}) == 500 and len(b.by_key) == 500
    assert leases[7].proxy.username == "user-session-account7" and leases[7].proxy.password == "secret"
    assert leases[7].proxy.label == "gate[account7]"
    assert send(b, "account-500").state in {lease.state for lease in leases} | set(b.by_key.values())
    assert len(b.by_key) == 500  # no room left: the 501st session shares


def test_a_gateway_identity_has_its_own_health_and_a_moved_session_gets_a_fresh_identity(clock):
    b = make_balancer(clock, [GATEWAY])
    bound = send(b, "account1").state
    others = [send(b, f"other{i}").state for i in range(5)]
    outcome(b, bound.id, Outcome.FAILURE, times=3)
    assert not b.in_rotation(bound.key) and all(b.in_rotation(p.key) for p in others)
    moved = send(b, "account1")
    assert moved.moved and moved.proxy.username == f"user-session-{token('account1', 1)}"


def test_a_gateway_grows_for_plain_requests_while_its_identities_are_busy_and_stops_when_it_is_down(clock):
    b = make_balancer(clock, [dict(GATEWAY, sessions=5)], cooldown=1.0)
    leases = [b.acquire(Ask("a")) for _ in range(7)]
    assert len({lease.state.key for lease in leases if not isinstance(lease, Wait)}) == 5
    assert isinstance(leases[-1], Wait)  # no room beyond 5
    b2 = make_balancer(clock, [dict(GATEWAY, sessions=50)], cooldown=1.0, max_failures=1)
    for _ in range(10):
        lease = b2.acquire(Ask("a"))
        if not isinstance(lease, Wait):
            b2.release(lease, Outcome.FAILURE)  # the gateway is down: each identity fails
    assert len(b2.by_key) == 1  # it stops growing


def test_a_country_template_makes_an_identity_per_session_and_country_from_the_requests_region(clock):
    entry = {"url": "http://user-country-{country}-session-{session}:secret@gate:7000", "sessions": 100,
             "name": "geo"}
    b = make_balancer(clock, [entry, "http://10.0.0.1:1"])
    de, us = send(b, "acct@de", region="de"), send(b, "acct@us", region="us")  # the middleware's session keys
    assert de.state is not us.state and de.proxy.region == "de" and us.proxy.region == "us"
    assert de.proxy.username == "user-country-de-session-acct" and us.proxy.username == "user-country-us-session-acct"
    assert send(b, "acct@de", region="de").state is de.state  # the same (session, country): the same identity
    plain = b.acquire(Ask("a", region="fr"))
    assert plain.proxy.username.startswith("user-country-fr-session-pb") and plain.proxy.region == "fr"
    lone = b.acquire(Ask("a"))  # no region: not through the country template
    assert lone.proxy.key == "http://10.0.0.1:1"
    outcome(b, de.state.id, Outcome.FAILURE, times=3)
    assert not b.in_rotation(de.state.key) and b.in_rotation(us.state.key)  # each its own health


def test_gateway_templates_are_removed_and_updated_with_their_identities(clock):
    b = make_balancer(clock, [GATEWAY, "http://10.0.0.1:1"])
    for i in range(3):
        send(b, f"s{i}")
    template = parse_entry(GATEWAY)
    changed = parse_entry(dict(GATEWAY, url=GATEWAY["url"].replace("secret", "new")))
    assert b.replace([changed, parse_entry("http://10.0.0.1:1")]) == (0, 0, 1)
    assert {p.proxy.password for p in b.by_key.values() if p.proxy.gateway} == {"new"}
    b.remove(template.key)
    assert list(b.by_key) == ["http://10.0.0.1:1"]


@pytest.mark.parametrize(("entry", "message"), [
    ({"url": "http://u-{session}:p@g:1"}, "give the entry 'sessions'"),
    ({"url": "http://u:p@g:1", "sessions": 5}, "no {session} field"),
    ({"url": "http://u-{session}:p@g:1", "sessions": 0}, "sessions must be a whole number"),
    ({"url": "http://u-{session}:p@g:1", "sessions": True}, "sessions must be a whole number"),
    ({"url": "http://u-{region}-{session}:p@g:1", "sessions": 5}, "no 'region'"),
    ({"url": "http://u-{country}:p@g:1"}, "must be a session gateway"),
    ({"url": "http://u-{country}-{session}:p@g:1", "sessions": 5, "region": "de"}, "no 'region'"),
])
def test_bad_gateway_entries_say_what_is_wrong(entry, message):
    with pytest.raises(InvalidProxy, match=message.replace("{", r"\{").replace("}", r"\}")):
        parse_entry(entry)


def test_a_region_field_is_filled_from_the_entry():
    proxy = parse_entry({"url": "http://u-{region}-s-{session}:p@g:1", "sessions": 5, "region": "de"})
    assert proxy.username == "u-de-s-{session}" and proxy.region == "de"


def test_a_token_in_the_password_is_never_shown(clock):
    b = make_balancer(clock, [{"url": "http://user:pw_session-{session}@gate.test:1", "sessions": 5}])
    lease = send(b, "account1")
    assert lease.proxy.password == "pw_session-account1"
    assert "account1" not in lease.proxy.label and "pw_" not in lease.proxy.label


session_ops = st.lists(st.one_of(
    st.tuples(st.just("acquire"), st.integers(0, 5), st.sampled_from("ab")),
    st.tuples(st.just("release"), st.integers(0, 30), st.sampled_from(list(Outcome))),
    st.tuples(st.just("advance"), st.floats(0, 50)),
    st.tuples(st.just("remove"), st.integers(0, 5)),
    st.tuples(st.just("disable"), st.integers(0, 5)),
), min_size=10, max_size=120)


@settings(max_examples=300, deadline=None)
@given(ops=session_ops, seed=st.integers(0, 2**16), gateway=st.booleans())
def test_a_session_stays_on_one_proxy_per_binding_moves_told_once_and_never_through_one_out(ops, seed, gateway):
    clock = FakeClock()
    pool = [dict(GATEWAY, sessions=8)] if gateway else POOL[:6]
    b = make_balancer(clock, pool, strategy="weighted_random", seed=seed, max_failures=2,
                      sessions=SessionLimits(max_age=100, max_requests=6, max_errors=2))
    leases, bound = [], {}  # bound: session -> (generation, proxy key)
    for op in ops:
        if op[0] == "acquire":
            session = f"s{op[1]}"
            result = b.acquire(Ask(op[2], session=session))
            if isinstance(result, Wait):
                continue
            p = result.state
            assert p.in_rotation and not b.store.facts(p.key).disabled  # never through a proxy that is out
            before = bound.get(session)
            if before is not None and before[0] == result.generation:
                assert p.key == before[1] and not result.moved  # one proxy per binding
            elif before is not None:
                assert result.generation > before[0]
                assert result.moved  # the first request of a new binding tells why it moved...
            bound[session] = (result.generation, p.key)
            leases.append(result)
        elif op[0] == "release" and leases:
            lease = leases.pop(op[1] % len(leases))
            b.release(lease, op[2], latency=0.1)
        elif op[0] == "advance":
            clock.advance(op[1])
        elif op[0] in ("remove", "disable"):
            keys = sorted(b.by_key)
            if len(keys) > 1:
                key = keys[op[1] % len(keys)]
                getattr(b, op[0])(key)
        for p in b.states:
            assert p.in_flight == sum(1 for lease in leases if lease.state is p)
