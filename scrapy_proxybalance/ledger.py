"""The leases this process holds for requests under way, and how each is released.

A request carries ``meta[LEASE] = (process token, lease number)``; only this process's token
finds its lease, so a request queued by another process (scrapy-redis) or before a resume
(``JOBDIR``) carries nothing that could release the wrong one.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .core.leases import Lease
from .core.outcomes import Outcome
from .meta import LEASE
from .stats import PREFIX

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.statscollectors import StatsCollector

    from .core.balancer import Balancer
    from .status.record import Recorder

COUNTED = {Outcome.FAILURE: "failures", Outcome.BAN: "bans", Outcome.RATE_LIMITED: "rate_limited",
           Outcome.OVERLOADED: "overloaded"}  # outcomes counted in stats, by key
_SUCCESS = Outcome.SUCCESS


class Ledger:
    def __init__(self, balancer: Balancer, stats: StatsCollector, recorder: Recorder | None = None,
                 per_site_stats: bool = False) -> None:
        self.balancer = balancer
        self.stats = stats
        self.recorder = recorder
        self.per_site_stats = per_site_stats
        self.token = secrets.token_hex(4)  # leases of this process; a request from elsewhere never matches
        self.leases: dict[int, Lease] = {}
        self.on_success: list[Callable[[Lease], None]] = []  # a site was served for real
        self.on_release: list[Callable[[Lease], None]] = []  # a request through a proxy ended

    def hold(self, request: Request, lease: Lease) -> None:
        """The request carries ``lease`` until its response or exception releases it."""
        request.meta[LEASE] = (self.token, lease.number)
        self.leases[lease.number] = lease

    def held(self, request: Request) -> Lease | None:
        """The lease this process holds for the request, if any."""
        held = request.meta.get(LEASE)
        if not held or held[0] != self.token:
            request.meta.pop(LEASE, None)
            return None
        return self.leases.get(held[1])

    def pop(self, request: Request) -> Lease | None:
        """Take the request's lease off it (its answer came), if this process holds it."""
        held = request.meta.pop(LEASE, None)
        if not held or held[0] != self.token:
            return None
        return self.leases.pop(held[1], None)

    def release_unused(self, request: Request) -> None:
        """The request never went out through its lease's proxy (it waits, or is queued again)."""
        lease = self.pop(request)
        if lease is not None:
            self.release(lease, Outcome.NEUTRAL, sent=False)

    def drop(self, request: Request, lease: Lease) -> None:
        """The balancer undid ``lease`` (a claim lost it): forget it."""
        self.leases.pop(lease.number, None)
        request.meta.pop(LEASE, None)

    def release(self, lease: Lease, outcome: Outcome, reason: str = "", latency: float | None = None,
                retry_after: float | None = None, status: str = "", sent: bool = True, nbytes: int = 0) -> Outcome:
        """Release a lease (``sent``: its request went out through the proxy, moving
        ``nbytes``; ``status``: the response's, if there was one); return the outcome as the
        balancer counted it."""
        if "." in reason:
            reason = reason.rsplit(".", 1)[-1]
        outcome = self.balancer.release(lease, outcome, latency, retry_after, reason).outcome
        if sent:  # what it cost (see .core.costs; the stats take the totals: see .stats.record_costs)
            self.balancer.costs.charge(lease, nbytes)
        if self.recorder is not None and sent:
            self.recorder.answered(lease.state.key, lease.site, outcome.value, time.time(), status, reason, latency)
        if outcome is _SUCCESS:  # (first: an enum's hash is a Python call)
            for served in self.on_success:
                served(lease)
        elif outcome in COUNTED:
            self.stats.inc_value(f"{PREFIX}/{COUNTED[outcome]}")
            if self.per_site_stats and outcome is Outcome.BAN:
                self.stats.inc_value(f"{PREFIX}/site/{lease.site}/bans")
        for ended in self.on_release:
            ended(lease)
        return outcome

    def release_all(self) -> int:
        """The crawl closes: release every lease whose download never reported back (cut off
        by the close); return how many there were."""
        open_leases = list(self.leases.values())
        for lease in open_leases:
            self.release(lease, Outcome.NEUTRAL)
        self.leases.clear()
        return len(open_leases)
