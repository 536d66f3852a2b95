"""Active health checks during a crawl (``PROXY_HEALTH_CHECK_URL``).

Every ``PROXY_HEALTH_CHECK_INTERVAL`` seconds each proxy of the pool is checked, at most
``PROXY_HEALTH_CHECK_CONCURRENCY`` at a time, through Scrapy's own downloader
(``engine.download_async``: downloader middlewares only, so the proxy's credentials apply,
and the spider and its middlewares never see a check). Results feed the balancer's rise and
fall counts, and the exit IPs the check page shows reveal proxies that share one.

A round starts only while the crawl has other work (requests scheduled, downloading, or
waiting for a proxy), so checks never keep a finished crawl open.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from scrapy.utils.defer import deferred_from_coro

from ..core.ejection import CheckVerdict
from ..stats import PREFIX
from .probe import CHECK, CheckResult, check_request, judge

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy.crawler import Crawler

    from ..config import HealthCheck
    from ..core.balancer import Balancer
    from ..core.state import ProxyState

logger = logging.getLogger(__name__)


class HealthChecker:
    def __init__(self, crawler: Crawler, balancer: Balancer, check: HealthCheck, waiting: Callable[[], int]) -> None:
        self.crawler = crawler
        self.balancer = balancer
        self.check = check
        self.waiting = waiting
        self.queue: deque[ProxyState] = deque()
        self.running = 0  # checks in flight
        self.ip_of: dict[str, str] = {}  # proxy key -> exit IP
        self.sharing: dict[str, set[str]] = {}  # exit IP -> proxy keys
        self.stopped = False

    def start(self, every: Callable[[float, Callable[[], None]], Any]) -> None:
        """Run a round every interval (``every`` runs a function at intervals, logging its errors)."""
        self.round()
        every(self.check.interval, self.round)

    def stop(self) -> None:
        self.stopped = True
        self.queue.clear()

    def _crawl_busy(self) -> bool:
        """Whether the crawl has work besides our checks."""
        engine = self.crawler.engine
        if self.waiting() or any(CHECK not in r.meta for r in engine.downloader.active):
            return True
        scheduler = getattr(engine, "scheduler", None)  # public since Scrapy 2.19
        if scheduler is None and engine._slot is not None:
            scheduler = engine._slot.scheduler
        return scheduler is not None and scheduler.has_pending_requests()

    def round(self) -> None:
        """Queue a check of every proxy of the pool, unless the last round still runs."""
        if self.queue or self.running or not self._crawl_busy():
            return
        self.queue.extend(self.balancer.by_key.values())
        for _ in range(min(self.check.concurrency, len(self.queue))):
            self.running += 1
            deferred_from_coro(self._worker()).addErrback(
                lambda f: logger.error("health check failed: %s", f.getErrorMessage())
            )

    async def _worker(self) -> None:
        try:
            while self.queue and not self.stopped:
                p = self.queue.popleft()
                if p.removed:
                    continue
                request = check_request(p.proxy, self.check)
                try:
                    response = await self.crawler.engine.download_async(request)
                except Exception as exc:  # the check failed: that is its result
                    result = judge(p.proxy, self.check, request, error=exc)
                else:
                    result = judge(p.proxy, self.check, request, response)
                if not self.stopped:
                    self._apply(p, result)
        finally:
            self.running -= 1

    def _apply(self, p: ProxyState, result: CheckResult) -> None:
        stats = self.crawler.stats
        stats.inc_value(f"{PREFIX}/checks")
        if not result.ok:
            stats.inc_value(f"{PREFIX}/checks/failed")
        verdict = self.balancer.record_check(p.key, result.ok, self.check.rise, self.check.fall, result.error)
        if verdict is not CheckVerdict.NONE:  # the balancer's listener logs and counts it
            stats.inc_value(f"{PREFIX}/checks/{verdict.value}")
        if result.exit_ip:
            self._note_exit_ip(p, result.exit_ip)

    def _note_exit_ip(self, p: ProxyState, ip: str) -> None:
        old = self.ip_of.get(p.key)
        if old == ip:
            return
        if old is not None:
            self.sharing[old].discard(p.key)
        self.ip_of[p.key] = ip
        group = self.sharing.setdefault(ip, set())
        group.add(p.key)
        if len(group) > 1:
            names = ", ".join(self.balancer.by_key[k].proxy.label for k in sorted(group) if k in self.balancer.by_key)
            logger.warning("%d proxies share the exit IP %s: %s", len(group), ip, names)
        shared = sum(len(g) for g in self.sharing.values() if len(g) > 1)
        key = f"{PREFIX}/exit_ip/shared"
        if shared or self.crawler.stats.get_value(key) is not None:
            self.crawler.stats.set_value(key, shared)
