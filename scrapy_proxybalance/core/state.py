"""Runtime state of one proxy of the pool, shared by the balancer and its strategies."""

from __future__ import annotations

from dataclasses import dataclass, field

from .health import Health
from .metrics import Metrics
from .proxy import Proxy


@dataclass(slots=True, eq=False)
class ProxyState:
    """A proxy plus everything the balancer knows about it. ``id`` is its dense index."""

    id: int
    proxy: Proxy
    health: Health
    in_flight: int = 0
    metrics: Metrics = field(default_factory=Metrics)
    in_rotation: bool = False  # held by its strategies: not ejected, disabled or removed
    disabled: bool = False  # taken out by hand (``Balancer.disable``)
    removed: bool = False  # no longer in the pool; its last requests may still be in flight
    bans: dict[str, tuple[float, int]] | None = None  # site -> (banned until, ban level)
    problem: str = ""  # what went wrong last, for reports

    @property
    def key(self) -> str:
        return self.proxy.key

    @property
    def weight(self) -> float:
        return self.proxy.weight

    def banned_sites(self, now: float) -> int:
        """How many sites ban this proxy at ``now``."""
        return sum(1 for until, _ in self.bans.values() if until > now) if self.bans else 0

    def can_take_request(self) -> bool:
        """Below its slow-start limit (one request at a time while on trial)."""
        return self.in_flight < self.health.max_in_flight
