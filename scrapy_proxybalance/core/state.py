"""What this process knows of one proxy of the pool, shared by the balancer and its strategies."""

from __future__ import annotations

from dataclasses import dataclass, field

from .limits import ConcurrencyLimit
from .metrics import Metrics
from .proxy import Proxy


@dataclass(slots=True, eq=False)
class ProxyState:
    """A proxy plus this process's view of it. ``id`` is its dense index in the balancer.

    Its health facts (ejection, failures, checks) live in the state store; here are the
    things each process keeps for itself: requests in flight, the concurrency limit,
    latency and success-rate estimates.
    """

    id: int
    proxy: Proxy
    key: str  # the proxy's key, weight and whether it rotates, kept beside it: read for every request
    weight: float
    rotating: bool
    in_flight: int = 0
    limit: ConcurrencyLimit = field(default_factory=ConcurrencyLimit)
    metrics: Metrics = field(default_factory=Metrics)
    in_rotation: bool = False  # held by its strategies: not ejected, disabled or removed
    removed: bool = False  # no longer in the pool; its last requests may still be in flight
    streak: int = 0  # successes in a row, for forgiving old ejections
    probing: bool = False  # a panic probe is in flight through it

    @classmethod
    def of(cls, id: int, proxy: Proxy) -> ProxyState:
        """The state of a proxy joining the pool as member ``id``."""
        return cls(id, proxy, proxy.key, proxy.weight, proxy.rotating)

    def follow(self, proxy: Proxy) -> None:
        """Its proxy changed in place (the same key): what is kept beside it follows."""
        self.proxy, self.weight, self.rotating = proxy, proxy.weight, proxy.rotating
