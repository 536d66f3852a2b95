import random

import pytest

from scrapy_proxybalance.core.balancer import Balancer
from scrapy_proxybalance.core.health import Backoff
from scrapy_proxybalance.core.proxy import parse_proxy
from scrapy_proxybalance.core.strategies import STRATEGIES


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


def make_balancer(clock, entries=None, strategy="round_robin", seed=0, **kwargs):
    """A balancer over ``entries`` (URLs or dicts; default three plain proxies)."""
    entries = entries if entries is not None else [f"http://10.0.0.{i}:8000" for i in (1, 2, 3)]
    kwargs.setdefault("domain_cooldown", 0.0)
    kwargs.setdefault("backoff", Backoff(60.0, 600.0, jitter=0.0))
    cls = STRATEGIES[strategy] if isinstance(strategy, str) else strategy
    return Balancer([parse_proxy(e) for e in entries], cls, clock=clock, rng=random.Random(seed), **kwargs)


def host(lease):
    """The last octet of a leased proxy's host: a short name for assertions."""
    return int(lease.proxy.host.rsplit(".", 1)[1])


def use(balancer, domain, exclude=(), region=None):
    """Lease a proxy and release it at once as a success; return its short name."""
    from scrapy_proxybalance.core.bans import Outcome

    lease = balancer.acquire(domain, exclude, region)
    balancer.release(lease, Outcome.SUCCESS)
    return host(lease)
