import random
import socket
import uuid

import pytest

from scrapy_proxybalance.core.balancer import Ask, Balancer
from scrapy_proxybalance.core.ejection import Backoff
from scrapy_proxybalance.core.entries import parse_entry
from scrapy_proxybalance.core.outcomes import Outcome
from scrapy_proxybalance.core.rules import Rules
from scrapy_proxybalance.core.sessions import SessionLimits
from scrapy_proxybalance.core.strategies import STRATEGIES
from scrapy_proxybalance.core.tiers import TierRules
from scrapy_proxybalance.stores.memory import MemoryStore

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_answers(host: str = "127.0.0.1", port: int = 6379) -> bool:
    """Whether a Redis server answers PING there."""
    try:
        with socket.create_connection((host, port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


needs_redis = pytest.mark.skipif(not redis_answers(), reason="no Redis answers at 127.0.0.1:6379"
                                 " (`redis-server --port 6379 --save ''` starts one; .ci/run does)")


@pytest.fixture
def namespace():
    """A fresh key prefix in the local Redis (and a spider name); its keys are deleted after."""
    redis = pytest.importorskip("redis", reason="the shared store needs the redis extra")
    if not redis_answers():
        pytest.skip("no Redis answers at 127.0.0.1:6379")
    name = f"proxybalance-test-{uuid.uuid4().hex[:8]}"
    yield name
    server = redis.Redis.from_url(REDIS_URL)
    keys = [*server.scan_iter(f"{{{name}}}:*"), *server.scan_iter(f"{name}:*")]  # the pool's (hash-tagged), scrapy-redis's
    if keys:
        server.delete(*keys)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


def make_rules(**changes) -> Rules:
    """Rules for unit tests: no cooldown, 3 failures eject for 60 s (no jitter), bans hold 60 s."""
    values = {"cooldown": 0.0, "cooldown_max": 60.0, "pair_limit": 0, "max_failures": 3,
              "backoff": Backoff(60.0, 600.0, jitter=0.0), "ban_backoff": Backoff(60.0, 1800.0, jitter=0.0),
              "retry_after_max": 1800.0, "max_banned_sites": 0, "retry_times": 3, "unavailable_timeout": 600.0,
              "sessions": SessionLimits(max_age=0, max_requests=0, max_errors=3),
              "tiers": TierRules(probe_after=300.0, probe_max=21_600.0)}
    values.update(changes)
    values.setdefault("pace_floor", values["cooldown"])  # PROXY_PACE_BELOW_COOLDOWN off
    return Rules(**values)


STORES: list = []  # a store class to build balancers with (tests/test_balancer.py sets it)


def make_balancer(clock, entries=None, strategy="round_robin", seed=0, store=None, listener=None, **changes):
    """A balancer over ``entries`` (URLs or dicts; default three plain proxies)."""
    entries = entries if entries is not None else [f"http://10.0.0.{i}:8000" for i in (1, 2, 3)]
    cls = STRATEGIES[strategy] if isinstance(strategy, str) else strategy
    if store is None:
        store = STORES[-1]() if STORES else MemoryStore()
    return Balancer([parse_entry(e) for e in entries], cls, make_rules(**changes), clock=clock, rng=random.Random(seed),
                    store=store, listener=listener)


def host(lease):
    """The last octet of a leased proxy's host: a short name for assertions."""
    return int(lease.proxy.host.rsplit(".", 1)[1])


def use(balancer, site, exclude=(), region=None):
    """Lease a proxy and release it at once as a success; return its short name."""
    lease = balancer.acquire(Ask(site, exclude, region))
    balancer.release(lease, Outcome.SUCCESS)
    return host(lease)


def lease_of(balancer, index, site="a"):
    """A lease on the proxy at ``index``, whatever the strategy would choose."""
    return balancer.lease(balancer.states[index], Ask(site), balancer.clock())


def outcome(balancer, index, result, times=1, site="a", **kwargs):
    """Lease proxy ``index`` ``times`` times, each released with ``result``."""
    for _ in range(times):
        balancer.release(lease_of(balancer, index, site), result, **kwargs)
