"""The Scrapy downloader middleware: Scrapy objects in, balancer calls out.

Order: put it between RetryMiddleware (550) and HttpProxyMiddleware (750); the add-on uses
610. Its ``process_request`` must run before HttpProxyMiddleware's, which turns the chosen
proxy's credentials into ``Proxy-Authorization``; its ``process_response`` and
``process_exception`` must run before RetryMiddleware's, so that a proxy failure is retried
here on another proxy, and when this middleware gives up it sets ``dont_retry`` so that
RetryMiddleware does not retry the same failure again. Failures that are not the proxy's
(a site's 500) are left to RetryMiddleware, whose retries come back through here.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import load_object

from .config import Config
from .core.balancer import Balancer, Lease, Wait
from .core.bans import BanPolicy, Outcome, parse_retry_after
from .core.errors import ConfigError, NoProxyAvailable
from .core.health import Backoff
from .stats import PREFIX, record_proxies, summary, table
from .waiting import WOKEN, ParkingLot

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

# Private meta keys (all picklable, so requests survive a JOBDIR disk queue).
OUR_PROXY = "_proxybalance_proxy"  # the proxy URL we set: tells our choice from the user's
LEASE = "_proxybalance_lease"  # id of the lease this attempt holds
TRIED = "_proxybalance_tried"  # keys of the proxies this request already failed through
RETRIES = "proxy_retry_times"  # our own retry count, apart from RetryMiddleware's retry_times

USERINFO = re.compile(r"//[^@/]*@")

PROXY_FAILURES = tuple(
    load_object(path)
    for path in (
        "scrapy.exceptions.DownloadConnectionRefusedError",
        "scrapy.exceptions.DownloadTimeoutError",
        "scrapy.exceptions.DownloadFailedError",
        "scrapy.exceptions.ResponseDataLossError",
        "scrapy.exceptions.CannotResolveHostError",
        "twisted.internet.error.ConnectError",
        "twisted.internet.error.ConnectionDone",
        "twisted.internet.error.ConnectionLost",
        "twisted.internet.error.TimeoutError",
        "scrapy.core.downloader.handlers.http11.TunnelError",
    )
)


def _without_userinfo(url: str | None) -> str | None:
    return USERINFO.sub("//", url) if url else url


class ProxyBalanceMiddleware:
    """Sends each request through a proxy chosen by the balancer; retries proxy failures
    and bans on another proxy; keeps requests waiting for a proxy out of the downloader."""

    def __init__(self, crawler: Crawler, config: Config) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.config = config
        self.balancer = Balancer(
            config.pool,
            config.strategy,
            domain_cooldown=config.domain_cooldown,
            max_failures=config.max_failures,
            backoff=Backoff(config.recovery_interval, config.recovery_max_interval),
            ban_cooldown=config.ban_cooldown,
            max_hold=config.recovery_max_interval,
        )
        self.policy = BanPolicy(config.ban_status_codes)
        self.parking = ParkingLot(crawler, self._wake)
        self.leases: dict[int, Lease] = {}
        self.lease_ids = itertools.count(1)
        self.priority_adjust = crawler.settings.getint("RETRY_PRIORITY_ADJUST")
        self.summary_loop = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProxyBalanceMiddleware:
        if not crawler.settings.getbool("PROXY_ENABLED", True):
            raise NotConfigured("PROXY_ENABLED is False")
        try:
            config = Config.from_settings(crawler.settings)
        except ConfigError as exc:
            logger.error("scrapy-proxybalance cannot start: %s", exc)
            raise
        mw = cls(crawler, config)
        crawler.signals.connect(mw.parking.on_request_scheduled, signal=signals.request_scheduled)
        crawler.signals.connect(mw.parking.on_spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(mw.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        return mw

    # -- requests --------------------------------------------------------------------

    def process_request(self, request: Request) -> Request | None:
        meta = request.meta
        woken = meta.pop(WOKEN, False)
        lease_id = meta.pop(LEASE, None)
        if woken and lease_id in self.leases:  # the parking lot leased its proxy as it woke it
            meta[LEASE] = lease_id
            self.balancer.touch(self.leases[lease_id])  # its cooldown counts from now
            return None
        self._release(lease_id, Outcome.NEUTRAL)  # an earlier attempt that never reported
        ours = meta.pop(OUR_PROXY, None)
        if ours is not None and _without_userinfo(meta.get("proxy")) == _without_userinfo(ours):
            # Our choice from the previous attempt (a retry or redirect; HttpProxyMiddleware
            # has since removed its credentials from meta['proxy']): choose again, and make
            # sure the old proxy's credentials cannot travel to the next one.
            del meta["proxy"]
            meta.pop("_auth_proxy", None)
            request.headers.pop(b"Proxy-Authorization", None)
        if "proxy" in meta or meta.get("dont_proxy"):
            return None  # the user chose a proxy (or none) for this request
        domain = urlparse_cached(request).hostname or ""
        region = meta.get("proxy_region") or self.config.region_for(domain)
        tried = meta.get(TRIED, ())
        key = (domain, region, tuple(tried))
        if not woken and self.parking.waiting(key):
            self.stats.inc_value(f"{PREFIX}/waits")
            return self.parking.park(request, key, None)  # queue behind those already waiting
        try:
            result = self.balancer.acquire(domain, tried, region)
        except NoProxyAvailable as exc:
            self.stats.inc_value(f"{PREFIX}/no_proxy")
            raise NoProxyAvailable(f"{exc} (for {request})") from None
        if isinstance(result, Wait):
            self.stats.inc_value(f"{PREFIX}/waits")
            return self.parking.park(request, key, result.seconds)
        self._assign(request, result)
        return None

    def _wake(self, request: Request, key: tuple) -> float | None:
        """The parking lot is about to send ``request`` back: lease its proxy now, or say how
        long to wait. When no proxy can ever serve it, it goes back without one, and
        ``process_request`` fails it with the reason."""
        domain, region, tried = key
        try:
            result = self.balancer.acquire(domain, tried, region)
        except NoProxyAvailable:
            return None
        if isinstance(result, Wait):
            return result.seconds
        self._assign(request, result)
        return None

    def _assign(self, request: Request, lease: Lease) -> None:
        lease_id = next(self.lease_ids)
        self.leases[lease_id] = lease
        request.meta[LEASE] = lease_id
        request.meta["proxy"] = request.meta[OUR_PROXY] = lease.proxy.url
        self.stats.inc_value(f"{PREFIX}/requests")
        self.stats.inc_value(f"{PREFIX}/domain/{lease.domain}/requests")

    def process_response(self, request: Request, response: Response) -> Request | Response:
        lease = self.leases.pop(request.meta.pop(LEASE, None), None)
        if lease is None:
            return response
        if "cached" in response.flags:  # HttpCacheMiddleware answered: the proxy never saw it
            self.balancer.release(lease, Outcome.NEUTRAL)
            return response
        outcome = self.policy.response_outcome(response.status)
        retry_after = None
        if outcome is Outcome.BAN:
            retry_after = parse_retry_after(response.headers.get(b"Retry-After"), time.time())
        self._settle(lease, outcome, request.meta.get("download_latency"), retry_after)
        if outcome.retryable:
            return self._retry(request, lease, f"status {response.status}") or response
        return response

    def process_exception(self, request: Request, exception: Exception) -> Request | None:
        lease = self.leases.pop(request.meta.pop(LEASE, None), None)
        if lease is None:
            return None
        outcome = Outcome.FAILURE if isinstance(exception, PROXY_FAILURES) else Outcome.NEUTRAL
        self._settle(lease, outcome)
        if outcome.retryable:
            return self._retry(request, lease, type(exception).__name__)
        return None

    # -- bookkeeping -----------------------------------------------------------------

    def _release(self, lease_id: int | None, outcome: Outcome) -> None:
        lease = self.leases.pop(lease_id, None) if lease_id is not None else None
        if lease is not None:
            self.balancer.release(lease, outcome)

    def _settle(
        self, lease: Lease, outcome: Outcome, latency: float | None = None, retry_after: float | None = None
    ) -> None:
        ejected = self.balancer.release(lease, outcome, latency, retry_after)
        if outcome is Outcome.BAN:
            self.stats.inc_value(f"{PREFIX}/bans")
            self.stats.inc_value(f"{PREFIX}/bans/{lease.domain}")
        elif outcome is Outcome.FAILURE:
            self.stats.inc_value(f"{PREFIX}/failures")
        if ejected is not None:
            self.stats.inc_value(f"{PREFIX}/ejections")
            logger.warning(
                "proxybalance: ejected %s for %.0f s after %d failure(s) (ejection #%d)",
                lease.proxy, ejected, lease.state.health.consecutive_failures, lease.state.health.ejections,
            )

    def _retry(self, request: Request, lease: Lease, reason: str) -> Request | None:
        """A copy of ``request`` that will avoid every proxy it failed through, or ``None``
        (and ``dont_retry`` set) when the retry budget or the untried proxies run out."""
        meta = request.meta
        tried = [*meta.get(TRIED, ()), lease.proxy.key]
        retries = meta.get(RETRIES, 0) + 1
        region = meta.get("proxy_region") or self.config.region_for(lease.domain)
        untried = self.balancer.region_size[region] - len(tried)
        if meta.get("dont_retry") or retries > self.config.retry_times or untried <= 0:
            if not meta.get("dont_retry"):
                self.stats.inc_value(f"{PREFIX}/retries/max_reached")
                logger.error(
                    "proxybalance: gave up on %s after %d proxies (last: %s, %s)",
                    request, len(tried), lease.proxy, reason,
                )
            meta["dont_retry"] = True  # RetryMiddleware must not retry it yet again
            return None
        logger.debug("proxybalance: retrying %s on another proxy (%s through %s)", request, reason, lease.proxy)
        self.stats.inc_value(f"{PREFIX}/retries")
        retry = request.copy()
        retry.meta[TRIED] = tried
        retry.meta[RETRIES] = retries
        retry.dont_filter = True
        retry.priority = request.priority + self.priority_adjust
        return retry

    # -- signals ---------------------------------------------------------------------

    def spider_opened(self) -> None:
        if self.config.stats_interval:
            self.summary_loop = create_looping_call(self.log_summary)
            self.summary_loop.start(self.config.stats_interval, now=False)

    def log_summary(self) -> None:
        logger.info(summary(self.balancer, self.stats, len(self.parking)))

    def spider_closed(self) -> None:
        if self.summary_loop is not None and self.summary_loop.running:
            self.summary_loop.stop()
        waiting = self.parking.close()
        if waiting:
            logger.warning("proxybalance: %d request(s) were still waiting for a proxy at close", waiting)
            self.stats.set_value(f"{PREFIX}/waiting_at_close", waiting)
        if self.leases:  # requests whose download never reported back (e.g. cut off by the close)
            self.stats.set_value(f"{PREFIX}/leases_open_at_close", len(self.leases))
            for lease_id in list(self.leases):
                self._release(lease_id, Outcome.NEUTRAL)
        record_proxies(self.balancer, self.stats)
        logger.info("%s\n%s", summary(self.balancer, self.stats, 0), table(self.balancer))
