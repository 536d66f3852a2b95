"""Invariants over random sequences of acquires, releases and clock steps.

An independent model, written here without the balancer's indexes, says which proxies are
eligible for a request; the balancer must never hand out one the model rejects, and must
never make a request wait while the model has an eligible proxy, nor fail one
that a proxy could serve later.
"""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from scrapy_proxybalance.core.balancer import Lease, Wait
from scrapy_proxybalance.core.bans import Outcome
from scrapy_proxybalance.core.errors import NoProxyAvailable
from scrapy_proxybalance.core.health import Backoff, State
from scrapy_proxybalance.core.strategies import STRATEGIES

from .conftest import FakeClock, make_balancer

COOLDOWN = 1.0
MAX_HOLD = 50.0
DOMAINS = ("a", "b", "c")

ENTRIES = [
    {"url": "http://10.0.0.1:1", "region": "eu", "weight": 3},
    {"url": "http://10.0.0.2:1", "region": "eu"},
    {"url": "http://10.0.0.3:1", "region": "us", "weight": 2},
    {"url": "http://10.0.0.4:1"},
    {"url": "http://10.0.0.5:1", "backup": True},
    {"url": "http://10.0.0.6:1", "region": "eu", "backup": True},
]

SMALL = [{"url": "http://10.0.0.1:1"}, {"url": "http://10.0.0.2:1", "region": "eu"}]
POOLS = {"mixed": ENTRIES, "small": SMALL, "single": SMALL[:1]}

acquire = st.tuples(
    st.just("acquire"),
    st.sampled_from(DOMAINS),
    st.sets(st.integers(0, len(ENTRIES) - 1), max_size=2),
    st.sampled_from([None, "eu", "us"]),
)
release = st.tuples(
    st.just("release"),
    st.integers(0, 10**6),
    st.sampled_from(list(Outcome)),
    st.one_of(st.none(), st.floats(0, 100)),
)
advance = st.tuples(st.just("advance"), st.floats(0, 40))
operations = st.lists(st.one_of(acquire, acquire, release, advance), min_size=20, max_size=150)


class Model:
    """What the rules say, computed the slow obvious way."""

    def __init__(self, balancer, clock):
        self.b, self.clock = balancer, clock
        self.hold: dict[tuple[int, str], float] = {}  # domain cooldowns
        self.ban: dict[tuple[int, str], float] = {}  # bans, until when
        self.level: dict[tuple[int, str], int] = {}  # bans in a row per (proxy, site)

    def usable(self, p) -> bool:
        h = p.health
        if h.state is State.EJECTED:
            return h.ejected_until <= self.clock() and p.in_flight == 0  # due for its trial
        if h.state is State.TRIAL:
            return p.in_flight == 0
        return p.in_flight < 2 ** min(h.ramp, 10)  # slow start

    def banned(self, p, domain) -> bool:
        return self.ban.get((p.id, domain), 0.0) > self.clock()

    def could_serve(self, p, domain, exclude) -> bool:
        """Not excluded, not banned by the site, and not ejected (or due back)."""
        h = p.health
        return (p.id not in exclude and not self.banned(p, domain)
                and (h.state is not State.EJECTED or h.ejected_until <= self.clock()))

    def eligible(self, domain, exclude, region) -> list:
        now = self.clock()
        in_region = [p for p in self.b.states if region is None or p.proxy.region == region]
        out = []
        for backup in (False, True):
            tier = [p for p in in_region if p.proxy.backup == backup]
            ok = [p for p in tier if self.usable(p) and self.could_serve(p, domain, exclude)
                  and self.hold.get((p.id, domain), 0.0) <= now]
            if ok:
                return ok
            # backups are for when every primary is ejected (not yet due), excluded or banned
            if any(self.could_serve(p, domain, exclude) for p in tier):
                return out
        return out

    def unavailable(self, domain, exclude, region) -> bool:
        return not any(self.could_serve(p, domain, exclude) for p in self.b.states
                       if region in (None, p.proxy.region))

    def record_ban(self, lease, retry_after) -> None:
        """A ban holds for Retry-After (clamped), else 7 s doubling per ban in a row on
        that site, jittered down by up to half: check the balancer's draw is in range."""
        key = (lease.state.id, lease.domain)
        self.level[key] = self.level.get(key, 0) + 1
        until = lease.state.bans[lease.domain][0]
        if retry_after is not None:
            assert until == self.clock() + min(retry_after, MAX_HOLD)
        else:
            full = min(MAX_HOLD, 7.0 * 2 ** (self.level[key] - 1))
            assert 0.5 * full - 1e-9 <= until - self.clock() <= full + 1e-9
        self.ban[key] = max(self.ban.get(key, 0.0), until)


@settings(max_examples=1500, deadline=None)
@given(
    pool=st.sampled_from(sorted(POOLS)),
    strategy=st.sampled_from(sorted(STRATEGIES)),
    ops=operations,
    seed=st.integers(0, 2**16),
)
def test_balancer_never_hands_out_an_ineligible_proxy_nor_waits_while_one_is_eligible(pool, strategy, ops, seed):
    clock = FakeClock()
    b = make_balancer(clock, POOLS[pool], strategy=strategy, seed=seed, domain_cooldown=COOLDOWN, max_failures=1,
                      backoff=Backoff(5.0, 20.0, jitter=0.5), ban_cooldown=7.0, max_hold=MAX_HOLD,
                      max_banned_sites=2)
    model = Model(b, clock)
    leases: list[Lease] = []
    rng = random.Random(seed)
    for op in ops:
        if op[0] == "acquire":
            _, domain, exclude_ids, region = op
            exclude_ids = {i for i in exclude_ids if i < len(b.states)}
            exclude = {b.states[i].key for i in exclude_ids}
            eligible = model.eligible(domain, exclude_ids, region)
            try:
                result = b.acquire(domain, exclude, region)
            except NoProxyAvailable:
                # only when nothing could ever serve it: every proxy of its region was tried
                assert all(p.id in exclude_ids for p in b.states if region in (None, p.proxy.region))
                continue
            if isinstance(result, Wait):
                assert not eligible, f"waited while {[str(p.proxy) for p in eligible]} were eligible"
                assert result.seconds > 0
                assert result.unavailable == model.unavailable(domain, exclude_ids, region)
                continue
            assert result.state in eligible
            leases.append(result)
            key = (result.state.id, domain)
            model.hold[key] = max(model.hold.get(key, 0.0), clock() + COOLDOWN)
        elif op[0] == "release" and leases:
            _, index, outcome, retry_after = op
            lease = leases.pop(index % len(leases))
            b.release(lease, outcome, latency=rng.random(), retry_after=retry_after)
            if outcome is Outcome.BAN:
                model.record_ban(lease, retry_after)
            elif outcome is Outcome.SUCCESS:
                model.level.pop((lease.state.id, lease.domain), None)
        elif op[0] == "advance":
            clock.advance(op[1])
        for p in b.states:
            assert p.in_flight == sum(1 for lease in leases if lease.state is p) >= 0
