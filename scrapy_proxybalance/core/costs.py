"""What requests through the pool cost: bytes and money, per proxy, per price tier, per site.

Each attempt that went out is charged once, when it ends: its bytes (request and response,
as a proxy bills them) priced by its proxy's :class:`~.proxy.Cost` (nothing when the entry
names none). Totals per tier are kept here (tiers are few); per proxy in its metrics; per
site up to :data:`MAX_SITES` sites, the rest together under :data:`OTHER_SITES`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .leases import Lease

MAX_SITES = 10_000
OTHER_SITES = "(other sites)"


@dataclass(slots=True)
class Spent:
    requests: int = 0
    bytes: int = 0
    cost: float = 0.0

    def add(self, nbytes: int, cost: float) -> None:
        self.requests += 1
        self.bytes += nbytes
        self.cost += cost


class CostBook:
    def __init__(self) -> None:
        self.tiers: dict[int, Spent] = {}
        self.sites: dict[str, Spent] = {}
        self.priced = False  # an attempt went through a proxy with a price

    def charge(self, lease: Lease, nbytes: int) -> float:
        """Charge one attempt through the lease's proxy that moved ``nbytes``; its cost."""
        proxy = lease.proxy
        cost = 0.0
        if proxy.cost is not None:
            cost = proxy.cost.of(nbytes)
            self.priced = True
        metrics = lease.state.metrics
        metrics.bytes += nbytes
        metrics.cost += cost
        tier = self.tiers.get(proxy.tier)
        if tier is None:
            tier = self.tiers[proxy.tier] = Spent()
        tier.add(nbytes, cost)
        self._site(lease.site).add(nbytes, cost)
        return cost

    @property
    def all(self) -> Spent:
        """The totals over every tier."""
        total = Spent()
        for spent in self.tiers.values():
            total.requests += spent.requests
            total.bytes += spent.bytes
            total.cost += spent.cost
        return total

    def _site(self, site: str) -> Spent:
        spent = self.sites.get(site)
        if spent is None:
            if len(self.sites) >= MAX_SITES:
                site = OTHER_SITES
                spent = self.sites.get(site)
            if spent is None:
                spent = self.sites[site] = Spent()
        return spent
