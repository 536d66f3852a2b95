"""Invariants over random sequences of acquires, releases and clock steps.

An independent model, written here without the balancer's indexes, says which proxies are
eligible for a request; the balancer must never hand out one the model rejects (a panic
probe must be a valid probe), never make a request wait while the model has an eligible
proxy, nor fail one that a proxy could serve later; in-flight counts stay exact, no proxy is
leased above its concurrency limit, and no limit falls below 1.
"""

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from scrapy_proxybalance.core.balancer import Ask, Lease, Wait
from scrapy_proxybalance.core.ejection import Backoff
from scrapy_proxybalance.core.errors import NoProxyAvailable
from scrapy_proxybalance.core.outcomes import Outcome
from scrapy_proxybalance.core.pace import FIRST_STEP, PILOT_PATIENCE
from scrapy_proxybalance.core.strategies import STRATEGIES
from scrapy_proxybalance.core.tiers import TierRules

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

    def __init__(self, balancer, clock, cooldown):
        self.b, self.clock, self.cooldown = balancer, clock, cooldown
        self.answered: dict[tuple[int, str], float] = {}  # a pair's last answer: its site's gap counts from it
        self.hold: dict[tuple[int, str], float] = {}  # a pair's pause (Retry-After, a lone rate limit)
        self.busy: dict[tuple[int, str], int] = {}  # requests in flight per pair
        self.ban: dict[tuple[int, str], float] = {}  # bans, until when
        self.level: dict[tuple[int, str], int] = {}  # bans in a row per (proxy, site)
        self.level_until: dict[tuple[int, str], float] = {}  # when the store may forget that level
        self.leases: list[Lease] = []  # in flight

    def facts(self, p):
        return self.b.facts(p)

    def out(self, p) -> bool:
        """Ejected (and not yet due back) or disabled."""
        f = self.facts(p)
        return f.disabled or f.ejected_until > self.clock()

    def usable(self, p) -> bool:
        return not self.out(p) and p.in_flight < p.limit.allowed

    def banned(self, p, domain) -> bool:
        return self.ban.get((p.id, domain), 0.0) > self.clock()

    def pair_open(self, p, domain) -> bool:
        now, key = self.clock(), (p.id, domain)
        gap = self.b.pair_rule(domain, now)[0]  # the site's pace now (its arithmetic has unit tests)
        keep = self.keep(domain)  # while a pilot tries the gap, the gap the others keep
        limit = 1 if gap > 0 or keep > -math.inf else 1 << 30
        since = now - self.answered.get(key, float("-inf"))
        waits_for_pilot = since < keep and self.pilot_flying(domain)
        return (self.busy.get(key, 0) < limit and not self.banned(p, domain) and self.hold.get(key, 0.0) <= now
                and since >= gap and not waits_for_pilot)

    def keep(self, domain) -> float:
        """Below the least gap the site answered fine at (by more than jitter), one pilot at a time
        tries the site's gap; the others keep that least gap (an answer longer ago than the
        longest gap proves nothing)."""
        pace = self.b.store.pace(domain)
        if pace.unproven(self.b.pair_rule(domain, self.clock())[0]):
            return min(pace.good, self.b.longest_gap)
        return -math.inf

    def must_pilot(self, lease) -> bool:
        """A pair going again sooner than the gap the others keep."""
        since = self.clock() - self.answered.get((lease.state.id, lease.site), float("-inf"))
        return since < self.keep(lease.site)

    def pilot_flying(self, domain) -> bool:
        now = self.clock()  # a pilot slower than PILOT_PATIENCE lets another try
        return any(lease.site == domain and lease.pilot is not None and now - lease.at < PILOT_PATIENCE
                   for lease in self.leases)

    def could_serve(self, p, domain, exclude) -> bool:
        """Not excluded, not banned by the site, and not out."""
        return p.id not in exclude and not self.banned(p, domain) and not self.out(p)

    def eligible(self, domain, exclude, region) -> list:
        in_region = [p for p in self.b.states if region is None or p.proxy.region == region]
        for backup in (False, True):
            tier = [p for p in in_region if p.proxy.backup == backup]
            ok = [p for p in tier if self.usable(p) and self.could_serve(p, domain, exclude) and self.pair_open(p, domain)]
            if ok:
                return ok
            # backups are for when every primary is out, excluded or banned
            if any(self.could_serve(p, domain, exclude) for p in tier):
                return []
        return []

    def valid_probe(self, lease, exclude, region) -> bool:
        p, f = lease.state, self.facts(lease.state)
        return ((self.b.degraded(region) or p.id in self.b.recovery.panicked) and f.ejected_until > self.clock() and not f.for_bans and not f.disabled
                and p.id not in exclude and p.in_flight == 1 and region in (None, p.proxy.region)
                and self.pair_open(p, lease.site))

    def unavailable(self, domain, exclude, region) -> bool:
        return not any(self.could_serve(p, domain, exclude) for p in self.b.states
                       if region in (None, p.proxy.region))

    def leased(self, lease) -> None:
        key = (lease.state.id, lease.site)
        self.busy[key] = self.busy.get(key, 0) + 1

    def released(self, lease, outcome, retry_after, pace_before) -> None:
        key, now = (lease.state.id, lease.site), self.clock()
        self.busy[key] -= 1
        self.answered[key] = now
        gap = self.b.pair_rule(lease.site, now)[0]  # read after the release: a rate limit may have slowed the site
        hold = 0.0
        if outcome is Outcome.RATE_LIMITED and retry_after is not None:
            hold = now + min(retry_after, MAX_HOLD)
        elif outcome is Outcome.RATE_LIMITED and self.b.store.pace(lease.site).gap == pace_before.gap:
            hold = now + max(FIRST_STEP, 2 * gap)  # a lone exit limited: it pauses there
        self.hold[key] = max(self.hold.get(key, 0.0), hold)
        if outcome is Outcome.BAN:
            self.record_ban(lease, retry_after)
        elif outcome is Outcome.SUCCESS:
            self.level.pop(key, None)
            self.level_until.pop(key, None)

    def record_ban(self, lease, retry_after) -> None:
        """A ban holds for Retry-After (clamped), else 7 s doubling per ban in a row on that
        site, jittered down by up to half: check the balancer's draw is in range."""
        key, now = (lease.state.id, lease.site), self.clock()
        # a ban's level is remembered until as long again as the ban lasted has passed since it
        # ended; after that the store may have forgotten it (when it forgot the idle pair)
        may_restart = now >= self.level_until.get(key, math.inf)
        self.level[key] = self.level.get(key, 0) + 1
        until, before = self.b.store.ban_of(lease.state.key, lease.site)[0], self.ban.get(key, 0.0)
        if until != before:  # a ban never shortens one already running
            if retry_after is not None:
                assert until == now + min(retry_after, MAX_HOLD)
            else:
                full = min(MAX_HOLD, 7.0 * 2 ** (self.level[key] - 1))
                if may_restart and until - now <= 7.0 + 1e-9:  # forgotten: level 1 again
                    self.level[key], full = 1, 7.0
                assert 0.5 * full - 1e-9 <= until - now <= full + 1e-9
        assert until >= before
        self.ban[key] = until
        self.level_until[key] = max(self.level_until.get(key, -math.inf), until + max(0.0, until - now))


@settings(max_examples=250, deadline=None)
@given(
    pool=st.sampled_from(sorted(POOLS)),
    strategy=st.sampled_from(sorted(STRATEGIES)),
    ops=operations,
    seed=st.integers(0, 2**16),
    cooldown=st.sampled_from([0.0, COOLDOWN]),
    below=st.booleans(),  # PROXY_PACE_BELOW_COOLDOWN (with DOWNLOAD_DELAY 0)
)
def test_balancer_never_hands_out_an_ineligible_proxy_nor_waits_while_one_is_eligible(pool, strategy, ops, seed,
                                                                                     cooldown, below):
    clock = FakeClock()
    floor = 0.0 if below else cooldown
    b = make_balancer(clock, POOLS[pool], strategy=strategy, seed=seed, cooldown=cooldown, pace_floor=floor,
                      max_failures=1,
                      backoff=Backoff(5.0, 20.0, jitter=0.5), ban_backoff=Backoff(7.0, MAX_HOLD, jitter=0.5),
                      retry_after_max=MAX_HOLD, max_banned_sites=2)
    model = Model(b, clock, cooldown)
    leases: list[Lease] = model.leases
    rng = random.Random(seed)
    for op in ops:
        if op[0] == "acquire":
            _, domain, exclude_ids, region = op
            exclude_ids = {i for i in exclude_ids if i < len(b.states)}
            exclude = {b.states[i].key for i in exclude_ids}
            eligible = model.eligible(domain, exclude_ids, region)
            try:
                result = b.acquire(Ask(domain, exclude, region))
            except NoProxyAvailable:
                # only when nothing could ever serve it: every proxy of its region was tried
                assert all(p.id in exclude_ids for p in b.states if region in (None, p.proxy.region))
                continue
            if isinstance(result, Wait):
                assert not eligible, f"waited while {[str(p.proxy) for p in eligible]} were eligible"
                assert result.seconds > 0
                assert result.unavailable == model.unavailable(domain, exclude_ids, region)
                continue
            if result.probe:
                assert model.valid_probe(result, exclude_ids, region)
            else:
                assert result.state in eligible
                assert result.state.in_flight <= result.state.limit.allowed  # never above its limit
            assert result.pilot is None or not model.pilot_flying(domain)  # one pilot per site at a time
            assert result.probe or (result.pilot is not None) == model.must_pilot(result)
            leases.append(result)
            model.leased(result)
        elif op[0] == "release" and leases:
            _, index, outcome, retry_after = op
            lease = leases.pop(index % len(leases))
            pace_before = b.store.pace(lease.site)
            applied = b.release(lease, outcome, latency=rng.random(), retry_after=retry_after).outcome
            model.released(lease, applied, retry_after, pace_before)
        elif op[0] == "advance":
            clock.advance(op[1])
        for p in b.states:
            assert p.in_flight == sum(1 for lease in leases if lease.state is p) >= 0
            assert p.limit.limit >= 1  # a limit never falls below 1
            assert sum(1 for lease in leases if lease.state is p and lease.probe) <= 1  # one probe at a time
        for domain in DOMAINS:  # a pace never goes below its floor: the cooldown, unless it may
            assert b.pair_rule(domain, clock())[0] >= floor


TIERED = [
    {"url": "http://10.0.0.1:1", "tier": 0}, {"url": "http://10.0.0.2:1", "tier": 0},
    {"url": "http://10.0.0.3:1", "tier": 1}, {"url": "http://10.0.0.4:1", "tier": 1, "region": "eu"},
    {"url": "http://10.0.0.5:1", "tier": 2}, {"url": "direct://", "tier": 0, "backup": True},
]
BOUNDS = {"b": (1, 2), "c": (0, 1)}  # a: any tier


@settings(max_examples=300, deadline=None)
@given(
    ops=st.lists(st.one_of(
        st.tuples(st.just("acquire"), st.sampled_from(DOMAINS), st.sampled_from([None, None, 0, 2]), st.integers(0, 2),
                  st.sampled_from([None, "eu"])),
        st.tuples(st.just("release"), st.integers(0, 10**6), st.sampled_from(list(Outcome)), st.none()),
        st.tuples(st.just("advance"), st.floats(0, 200)),
    ), min_size=20, max_size=150),
    seed=st.integers(0, 2**16),
)
def test_a_request_never_goes_below_its_sites_floor_nor_above_its_ceiling(ops, seed):
    clock = FakeClock()
    b = make_balancer(clock, TIERED, strategy="least_connections", seed=seed, cooldown=COOLDOWN,
                      ban_backoff=Backoff(7.0, MAX_HOLD, jitter=0.5), max_failures=2,
                      tiers=TierRules(60.0, 240.0, BOUNDS))
    leases: list[Lease] = []
    for op in ops:
        if op[0] == "acquire":
            _, domain, pin, tier_min, region = op
            floor, ceiling = BOUNDS.get(domain, (0, 99))
            site_tier = b.store.tier(domain).tier
            try:
                result = b.acquire(Ask(domain, (), region, pin=pin, tier_min=tier_min if pin is None else 0))
            except NoProxyAvailable:
                continue
            if isinstance(result, Wait):
                continue
            tier = result.proxy.tier
            if pin is not None:
                assert tier == pin
            else:
                assert floor <= tier <= ceiling, (domain, tier)
                if result.tier_probe:
                    assert tier_min <= tier < b.store.tier(domain).tier
                else:
                    assert tier >= min(max(tier_min, site_tier, floor), ceiling)
            leases.append(result)
        elif op[0] == "release" and leases:
            b.release(leases.pop(op[1] % len(leases)), op[2])
        elif op[0] == "advance":
            clock.advance(op[1])
        for domain in DOMAINS:
            state = b.store.tier(domain)
            floor, ceiling = BOUNDS.get(domain, (0, 99))
            assert state.tier == -1 or floor <= state.tier <= ceiling
