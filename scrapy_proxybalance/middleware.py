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
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.httpobj import urlparse_cached

from .config import Config
from .core.balancer import Balancer, Lease, Wait
from .core.bans import Outcome, parse_retry_after
from .core.errors import ConfigError, NoProxyAvailable
from .core.health import Backoff
from .core.proxy import Proxy, parse_proxy
from .health_checks import HealthChecker
from .policy import BanDetected, SpiderPolicy, build_policy
from .reload import PoolFile
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
TIMEOUT = "_proxybalance_timeout"  # (the request's own download_timeout,) while we lowered it
RETRIES = "proxy_retry_times"  # our own retry count, apart from RetryMiddleware's retry_times
GRACE = "_proxybalance_grace"  # monotonic time until which a request waits before its last try

USERINFO = re.compile(r"//[^@/]*@")
FREE_RETRIES = 25  # uncharged retries one request may take on top of its budget: no endless loop
UNAVAILABLE_CHECK = 5.0  # while nothing is available, look again at least this often (s)
GRACE_SECONDS = 1.0  # a request out of retries waits this long, then tries once more


def _without_userinfo(url: str | None) -> str | None:
    return USERINFO.sub("//", url) if url else url


class ProxyBalanceMiddleware:
    """Sends each request through a proxy chosen by the balancer; retries proxy failures
    and bans on another proxy; keeps requests waiting for a proxy out of the downloader.

    At run time, ``crawler.get_downloader_middleware(ProxyBalanceMiddleware)`` gives the
    instance, whose :meth:`add_proxy`, :meth:`remove_proxy`, :meth:`disable_proxy`,
    :meth:`enable_proxy` and :meth:`proxies` change and show the pool.
    """

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
            max_banned_sites=config.max_banned_sites,
        )
        self.project_policy = build_policy(config.ban_policy, crawler, config)
        self.policy = SpiderPolicy(self.project_policy, None, crawler, config)
        self.parking = ParkingLot(crawler, self._wake)
        self.leases: dict[int, Lease] = {}
        self.lease_ids = itertools.count(1)
        self.priority_adjust = crawler.settings.getint("RETRY_PRIORITY_ADJUST")
        self.download_timeout = crawler.settings.getfloat("DOWNLOAD_TIMEOUT")
        self.unavailable: dict[tuple[str, str | None], tuple[float, float]] = {}  # -> (since, last seen)
        self.closing = None
        self.pool_file = PoolFile(config.pool_file) if config.pool_file and config.pool_reload_interval else None
        self.loops: list = []
        check = config.health_check
        self.checker = HealthChecker(crawler, self.balancer, check, self.parking) if check else None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProxyBalanceMiddleware:
        if not crawler.settings.getbool("PROXY_ENABLED", True):
            raise NotConfigured  # no message: Scrapy would log a warning for a deliberate choice
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

    async def process_request(self, request: Request) -> Request | None:
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
        grace = meta.get(GRACE)
        if grace and not woken and grace > time.monotonic():
            self.stats.inc_value(f"{PREFIX}/waits")
            return self.parking.park(request, key, grace - time.monotonic())
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
            return self.parking.park(request, key, self._wait_for(domain, region, result))
        self._assign(request, result, region)
        return None

    def _wake(self, request: Request, key: tuple) -> float | None:
        """The parking lot is about to send ``request`` back: lease its proxy now, or say how
        long to wait. When no proxy can ever serve it (or it is to fail after waiting too
        long), it goes back without a proxy, and ``process_request`` fails it with the reason."""
        domain, region, tried = key
        try:
            result = self.balancer.acquire(domain, tried, region)
            if isinstance(result, Wait):
                return self._wait_for(domain, region, result)
        except NoProxyAvailable:
            return None
        self._assign(request, result, region)
        return None

    def _wait_for(self, domain: str, region: str | None, wait: Wait) -> float:
        """How long a request must wait. When nothing has been able to serve ``domain`` for
        ``PROXY_UNAVAILABLE_TIMEOUT``, close the spider, or raise :class:`NoProxyAvailable`
        (``PROXY_UNAVAILABLE_ACTION = "fail"``)."""
        timeout = self.config.unavailable_timeout
        if not wait.unavailable or not timeout:
            self.unavailable.pop((domain, region), None)
            return wait.seconds
        now = time.monotonic()
        since, last = self.unavailable.get((domain, region), (now, now))
        if now - last > 2 * UNAVAILABLE_CHECK:  # nobody waited in between: a new episode
            since = now
        self.unavailable[(domain, region)] = (since, now)
        left = since + timeout - now
        if left > 0:
            return min(wait.seconds, left, UNAVAILABLE_CHECK)
        message = (f"no proxy could serve {domain}{f' in region {region!r}' if region else ''}"
                   f" for {now - since:.0f} s (PROXY_UNAVAILABLE_TIMEOUT)")
        if self.config.unavailable_action == "fail":
            self.stats.inc_value(f"{PREFIX}/unavailable/failed")
            raise NoProxyAvailable(message)
        self._close_unavailable(domain, region, message)
        return UNAVAILABLE_CHECK

    def _close_unavailable(self, domain: str, region: str | None, message: str) -> None:
        if self.closing is not None:
            return
        logger.error("proxybalance: %s; closing the spider. The proxies:\n  %s",
                     message, "\n  ".join(self.balancer.why_out(domain, region)))
        self.stats.set_value(f"{PREFIX}/unavailable", domain)
        self.closing = deferred_from_coro(self.crawler.engine.close_spider_async(reason="proxies_unavailable"))

    def _assign(self, request: Request, lease: Lease, region: str | None) -> None:
        lease_id = next(self.lease_ids)
        self.leases[lease_id] = lease
        meta = request.meta
        meta[LEASE] = lease_id
        meta["proxy"] = meta[OUR_PROXY] = lease.proxy.url
        self.unavailable.pop((lease.domain, region), None)
        own = meta.pop(TIMEOUT, None)
        if own is not None:  # we lowered it for an unproven proxy before: restore it
            meta["download_timeout"] = own[0]
        if lease.unproven and self.config.trial_timeout:
            current = meta.get("download_timeout") or self.download_timeout
            if not current or current > self.config.trial_timeout:
                meta[TIMEOUT] = (current,)
                meta["download_timeout"] = self.config.trial_timeout
        self.stats.inc_value(f"{PREFIX}/requests")
        self.stats.inc_value(f"{PREFIX}/domain/{lease.domain}/requests")

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        lease = self.leases.pop(request.meta.pop(LEASE, None), None)
        if lease is None:
            return response
        if "cached" in response.flags:  # HttpCacheMiddleware answered: the proxy never saw it
            self.balancer.release(lease, Outcome.NEUTRAL)
            return response
        outcome = self.policy.response_outcome(request, response)
        looks_fine = 200 <= response.status < 300
        reason = f"{'ban page' if looks_fine else 'status'} {response.status}"
        retry_after = None
        if outcome is Outcome.BAN:
            retry_after = parse_retry_after(response.headers.get(b"Retry-After"), time.time())
        self._settle(lease, outcome, reason, request.meta.get("download_latency"), retry_after)
        if outcome.retryable:
            retry = self._retry(request, lease, outcome, reason)
            if retry is not None:
                return retry
            if outcome is Outcome.BAN and looks_fine:  # never hand a ban page to the callback
                raise BanDetected(response, f"{reason} from {lease.proxy} for {request}")
        return response

    async def process_exception(self, request: Request, exception: Exception) -> Request | None:
        lease = self.leases.pop(request.meta.pop(LEASE, None), None)
        if lease is None:
            return None
        outcome = self.policy.exception_outcome(request, exception)
        reason = type(exception).__name__
        self._settle(lease, outcome, reason)
        if outcome.retryable:
            return self._retry(request, lease, outcome, reason)
        return None

    # -- bookkeeping -----------------------------------------------------------------

    def _release(self, lease_id: int | None, outcome: Outcome) -> None:
        lease = self.leases.pop(lease_id, None) if lease_id is not None else None
        if lease is not None:
            self.balancer.release(lease, outcome)

    def _settle(
        self, lease: Lease, outcome: Outcome, reason: str, latency: float | None = None,
        retry_after: float | None = None,
    ) -> None:
        ejected = self.balancer.release(lease, outcome, latency, retry_after, reason)
        if outcome is Outcome.BAN:
            self.stats.inc_value(f"{PREFIX}/bans")
            self.stats.inc_value(f"{PREFIX}/bans/{lease.domain}")
        elif outcome is Outcome.FAILURE:
            self.stats.inc_value(f"{PREFIX}/failures")
        if ejected is not None:
            self.stats.inc_value(f"{PREFIX}/ejections")
            logger.warning("proxybalance: ejected %s for %.0f s (%s; ejection #%d)",
                           lease.proxy, ejected, lease.state.problem, lease.state.health.ejections)

    def _retry(self, request: Request, lease: Lease, outcome: Outcome, reason: str) -> Request | None:
        """A copy of ``request`` for a proxy it has not failed through, or ``None`` (and
        ``dont_retry`` set) when its retry budget or the untried proxies run out.

        The budget (``PROXY_RETRY_TIMES``) counts the proxies this request failed through
        that are still in rotation: one ejected since was at fault itself, not the request.
        While fewer than half the proxies are in rotation (the pool is down, not the request)
        nothing is charged. A request that has tried every proxy may wait for those that were
        ejected to come back. So a blackout makes requests wait for the pool instead of
        failing them.
        """
        meta = request.meta
        if meta.get("dont_retry"):
            return None
        region = meta.get("proxy_region") or self.config.region_for(lease.domain)
        tried = [*meta.get(TRIED, ()), lease.proxy.key]
        degraded = self.balancer.degraded(region)
        innocent = [] if degraded else [k for k in tried if self.balancer.in_rotation(k)]
        moves = meta.get(RETRIES, 0) + 1
        if len(tried) >= self.balancer.region_size[region]:
            tried = innocent  # tried them all: wait for those that were at fault to come back
        out_of_budget = len(innocent) > self.config.retry_times
        if out_of_budget and not meta.get(GRACE) and len(tried) < self.balancer.region_size[region]:
            # The first instant of a blackout looks like this too: proxies fail everything
            # before enough failures eject them. Wait a moment, when they will be out (and
            # uncharged), and try once more before giving up.
            retry = self._copy(request, reason, lease, tried, moves)
            retry.meta[GRACE] = time.monotonic() + GRACE_SECONDS
            return retry
        if moves > self.config.retry_times + FREE_RETRIES or out_of_budget or (
            len(tried) >= self.balancer.region_size[region]
        ):
            self.stats.inc_value(f"{PREFIX}/retries/max_reached")
            logger.error("proxybalance: gave up on %s after %d attempts (last: %s, %s)",
                         request, moves, lease.proxy, reason)
            meta["dont_retry"] = True  # RetryMiddleware must not retry it yet again
            return None
        if degraded or not self.balancer.in_rotation(lease.proxy.key):
            self.stats.inc_value(f"{PREFIX}/retries/uncharged")
        return self._copy(request, reason, lease, tried, moves)

    def _copy(self, request: Request, reason: str, lease: Lease, tried: list[str], moves: int) -> Request:
        logger.debug("proxybalance: retrying %s on another proxy (%s through %s)", request, reason, lease.proxy)
        self.stats.inc_value(f"{PREFIX}/retries")
        retry = request.copy()
        retry.meta[TRIED] = tried
        retry.meta[RETRIES] = moves
        retry.dont_filter = True
        retry.priority = request.priority + self.priority_adjust
        return retry

    # -- run-time API ----------------------------------------------------------------

    def add_proxy(self, entry: str | dict) -> Proxy:
        """Add a proxy (a URL or a ``PROXY_POOL`` dict) to the running pool."""
        proxy = parse_proxy(entry, "add_proxy")
        self.balancer.add(proxy)
        logger.info("proxybalance: added %s", proxy)
        self.parking.wake_all()
        return proxy

    def remove_proxy(self, url: str) -> None:
        """Remove a proxy: no new requests; those in flight through it finish."""
        self.balancer.remove(parse_proxy(url, "remove_proxy").key)

    def disable_proxy(self, url: str) -> None:
        """Stop using a proxy until :meth:`enable_proxy`; it keeps its health history."""
        self.balancer.disable(parse_proxy(url, "disable_proxy").key)

    def enable_proxy(self, url: str) -> None:
        self.balancer.enable(parse_proxy(url, "enable_proxy").key)
        self.parking.wake_all()

    def proxies(self) -> list[dict]:
        """The pool now: one dict per proxy (URL masked), for monitoring."""
        return [
            {"proxy": str(p.proxy), "state": "disabled" if p.disabled else p.health.state.value,
             "in_flight": p.in_flight, "requests": p.metrics.requests, "successes": p.metrics.successes,
             "failures": p.metrics.failures, "bans": p.metrics.bans, "ejections": p.health.ejections,
             "exit_ip": self.checker.ip_of.get(p.key) if self.checker else None}
            for p in self.balancer.by_key.values()
        ]

    # -- signals ---------------------------------------------------------------------

    def spider_opened(self) -> None:
        self.policy = SpiderPolicy(self.project_policy, self.crawler.spider, self.crawler, self.config)
        if self.config.stats_interval:
            self._every(self.config.stats_interval, self.log_summary)
        if self.pool_file is not None:
            self._every(self.config.pool_reload_interval, self.reload_pool)
        if self.checker is not None:
            self.checker.start()

    def _every(self, seconds: float, function) -> None:
        loop = create_looping_call(function)
        loop.start(seconds, now=False)
        self.loops.append(loop)

    def log_summary(self) -> None:
        logger.info(summary(self.balancer, self.stats, len(self.parking)))

    def reload_pool(self) -> None:
        """Apply the pool file if it changed; proxies that stay keep their health."""
        proxies = self.pool_file.changed() if self.pool_file else None
        if proxies:
            added, removed, updated = self.balancer.replace(proxies)
            self.stats.inc_value(f"{PREFIX}/pool/reloads")
            logger.info("proxybalance: reloaded %s: %d added, %d removed, %d updated, %d in the pool",
                        self.config.pool_file, added, removed, updated, len(self.balancer.by_key))
            self.parking.wake_all()

    def spider_closed(self) -> None:
        if self.checker is not None:
            self.checker.stop()
        for loop in self.loops:
            if loop.running:
                loop.stop()
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
