"""Per-(proxy, domain) earliest next use.

:class:`CooldownStore` is the storage interface (as ``limits`` keeps storage apart from
policy); :class:`MemoryCooldowns` keeps it in this process.
"""

from __future__ import annotations

import heapq
from typing import Protocol


class CooldownStore(Protocol):
    def hold(self, proxy_id: int, domain: str, until: float, now: float) -> None:
        """Keep ``proxy_id`` off ``domain`` until ``until`` (never shortens a hold)."""

    def ready_at(self, proxy_id: int, domain: str) -> float:
        """When ``proxy_id`` may next be used on ``domain`` (0.0 if it is free)."""

    def earliest(self, domain: str, now: float) -> float | None:
        """The soonest time after ``now`` that some held proxy frees up on ``domain``."""


class MemoryCooldowns:
    """Per domain: a dict ``proxy -> until`` and a heap to expire holds lazily.

    Expired holds are dropped as new ones arrive, so memory follows the proxies
    actually cooling, not pool size times domains.
    """

    __slots__ = ("until", "heaps")

    def __init__(self) -> None:
        self.until: dict[str, dict[int, float]] = {}
        self.heaps: dict[str, list[tuple[float, int]]] = {}

    def hold(self, proxy_id: int, domain: str, until: float, now: float) -> None:
        self._expire(domain, now)
        held = self.until.setdefault(domain, {})
        if held.get(proxy_id, 0.0) >= until:
            return
        held[proxy_id] = until
        heapq.heappush(self.heaps.setdefault(domain, []), (until, proxy_id))

    def ready_at(self, proxy_id: int, domain: str) -> float:
        held = self.until.get(domain)
        return held.get(proxy_id, 0.0) if held else 0.0

    def earliest(self, domain: str, now: float) -> float | None:
        self._expire(domain, now)
        heap = self.heaps.get(domain)
        return heap[0][0] if heap else None

    def _expire(self, domain: str, now: float) -> None:
        """Drop holds that ended by ``now``, and heap entries superseded by longer holds."""
        heap, held = self.heaps.get(domain), self.until.get(domain)
        if heap is None or held is None:
            return
        while heap:
            until, pid = heap[0]
            current = held.get(pid) == until
            if current and until > now:
                break
            heapq.heappop(heap)
            if current:
                del held[pid]
        if not heap:
            del self.heaps[domain], self.until[domain]
