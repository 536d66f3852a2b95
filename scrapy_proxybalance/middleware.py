"""The Scrapy downloader middleware: Scrapy objects in, core calls out.

Order: put it between RetryMiddleware (550) and HttpProxyMiddleware (750); the add-on uses
610. Its ``process_request`` must run before HttpProxyMiddleware's, which turns the chosen
proxy's credentials into ``Proxy-Authorization``; its ``process_response`` and
``process_exception`` must run before RetryMiddleware's, so that a proxy failure is retried
here on another proxy, and when this middleware gives up it sets ``dont_retry`` so that
RetryMiddleware does not retry the same failure again. Failures that are not the proxy's
(a site's 500) are left to RetryMiddleware, whose retries come back through here.

A proxy is leased when a request leaves the scheduler (:class:`~.scheduler.ProxyScheduler`
asks :meth:`ProxyBalanceMiddleware.admit`), so the lease is fresh when the request is sent;
a request that must wait stays in the scheduler's custody.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import sys
import time
from collections.abc import Callable, Hashable
from dataclasses import replace
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.asyncio import call_later, create_looping_call
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import load_object
from scrapy.utils.python import global_object_name

from .checks.active import HealthChecker
from .config import Config, enabled
from .core.availability import Act, Unavailability
from .core.balancer import Ask, Balancer, Lease, Wait
from .core.errors import ConfigError, NoProxyAvailable, ProxyBalanceError
from .core.outcomes import Outcome, parse_retry_after
from .core.proxy import Proxy, _split, mask, parse_entry
from .core.retry import GiveUp, decide_retry
from .core.store import MemoryStore, StateStore
from .events import PoolEvents
from .meta import (
    FAIL,
    LAST_TRY,
    LEASE,
    MOVED,
    MOVED_AT,
    OUR_JAR,
    OUR_PROXY,
    OUR_SLOT,
    RETRIES,
    SESSION,
    SESSION_GENERATION,
    TIMEOUT,
    TRIED,
    WAIT,
)
from .policy import BanDetected, SpiderPolicy, build_policy
from .reload import PoolFile
from .sources import PoolSource
from .stats import PREFIX, record_proxies, summary, table
from .status.record import Recorder

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from .scheduler import ProxyScheduler

logger = logging.getLogger(__name__)



CLAIM_CANDIDATES = 8  # proxies one claim offers a shared store (the pick and seven alternates)
CLAIM_RETRY = 0.05  # seconds (times 0.5 to 1.5: processes fall out of step) a request waits when it lost twice

COUNTED = {Outcome.FAILURE: "failures", Outcome.BAN: "bans", Outcome.RATE_LIMITED: "rate_limited",
           Outcome.OVERLOADED: "overloaded"}  # outcomes counted in stats, by key


def _session_jar(jar: object, session: str) -> bool:
    """Whether ``jar`` is one we chose for ``session`` (a spider passing it along)."""
    return jar == session or (isinstance(jar, str) and jar.startswith(f"{session}#"))


def _bare(url: str | None) -> str | None:
    """A proxy URL without its credentials (as HttpProxyMiddleware leaves meta['proxy'])."""
    if not url:
        return url
    scheme, sep, _, hostpart = _split(url)
    return f"{scheme}{sep}{hostpart}"


class ProxyBalanceMiddleware:
    """Sends each request through a proxy chosen by the balancer; retries proxy failures and
    bans on another proxy.

    At run time, ``crawler.get_downloader_middleware(ProxyBalanceMiddleware)`` gives the
    instance, whose :meth:`add_proxy`, :meth:`remove_proxy`, :meth:`disable_proxy`,
    :meth:`enable_proxy` and :meth:`proxies` change and show the pool.
    """

    def __init__(self, crawler: Crawler, config: Config) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.config = config
        self.scheduler: ProxyScheduler | None = None  # attached when the scheduler opens
        # what the status page and the closing report show beyond the core's counts, kept
        # only while one of them is on
        observed = config.status is not None or config.report_file is not None
        self.recorder = Recorder(time.time()) if observed else None
        self.events = PoolEvents(crawler.stats, self._wake, self.recorder)
        self.store: StateStore = state_store(config, crawler)
        self.shared = type(self.store) is not MemoryStore  # a fleet shares it: claims go to it
        self.balancer = Balancer(config.pool, config.strategy, config.rules, store=self.store, listener=self.events)
        self.store.subscribe_pool(self._pool_changed_elsewhere)
        self.project_policy = build_policy(config.ban_policy, crawler, config)
        self.policy = SpiderPolicy(self.project_policy, None, crawler, config)
        self.token = secrets.token_hex(4)  # leases of this process; a request from elsewhere never matches
        self.leases: dict[int, Lease] = {}
        self.unavailability = Unavailability(config.rules.unavailable_timeout)
        self.download_timeout = crawler.settings.getfloat("DOWNLOAD_TIMEOUT")
        self.own_slots = set(crawler.settings.getdict("DOWNLOAD_SLOTS"))
        self.closing: Any = None
        self.pool_file = PoolFile(config.pool_file) if config.pool_file and config.pool_reload_interval else None
        self.static_pool = list(config.pool)  # PROXY_POOL (as its file reads now)
        self.source_pool: list[Proxy] = []  # what PROXY_POOL_SOURCE gave last
        source = config.pool_source
        self.source = PoolSource(source, crawler, self._use_source_pool) if source is not None else None
        self.status_server: Any = None
        self.loops: list[Any] = []
        check = config.health_check
        self.checker = HealthChecker(crawler, self.balancer, check, self.waiting) if check else None

    refused = ""  # why nothing can be crawled (bad settings: see Misconfigured; or no pool at all)

    def refuse(self) -> None:
        """Close the spider (once): there is no proxy to crawl through (``PROXY_POOL`` is
        empty and ``PROXY_POOL_SOURCE`` gave none). The scheduler calls it and lets nothing
        leave meanwhile."""
        if self.closing is None:
            self._close_soon("proxies_unavailable")

    def _close_soon(self, reason: str) -> None:
        """Close the spider on the next turn of the event loop, never from inside the engine's
        own call (with a Twisted reactor other than asyncio's, the close would run there and
        then, under the engine's feet)."""
        def close() -> None:
            self.closing = deferred_from_coro(self.crawler.engine.close_spider_async(reason=reason))

        self.closing = call_later(0, close)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProxyBalanceMiddleware:
        settings = crawler.settings
        try:
            if not enabled(settings):
                raise NotConfigured  # no message: Scrapy would log a warning for a deliberate choice
            config = Config.from_settings(settings)
            _check_scheduler(settings)
            _check_asyncio(config, settings)
        except ConfigError as exc:
            logger.error("scrapy-proxybalance cannot start: %s", exc)
            return Misconfigured(crawler, str(exc))
        mw = cls(crawler, config)
        crawler.signals.connect(mw.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        own = sorted(mw.own_slots)
        if own:
            logger.warning(
                "proxybalance: DOWNLOAD_SLOTS configures %s: requests to %s keep Scrapy's slot for the site,"
                " so its concurrency and delay limit the whole pool there, not each proxy (remove the"
                " entries to let each proxy keep its own pace)", ", ".join(own), "them" if len(own) > 1 else "it")
        return mw

    # -- admission: a request leaves the scheduler -----------------------------------

    def wait_key(self, request: Request) -> Hashable | None:
        """What the request waits for (requests with the same key queue together), or
        ``None`` if it needs no proxy from the pool."""
        ask = self._ask(request)
        return None if ask is None else (ask.site, ask.region, tuple(ask.tried), ask.session, ask.generation)

    def admit(self, request: Request) -> Wait | None:
        """Lease a proxy for a request leaving the scheduler. ``None``: it goes now (with a
        proxy, or needing none, or to fail with a reason); a :class:`Wait`: it stays."""
        ask = self._ask(request)
        if ask is None:
            return None
        try:
            result = self.balancer.acquire(ask, CLAIM_CANDIDATES - 1 if self.shared else 0)
        except NoProxyAvailable as exc:
            request.meta[FAIL] = str(exc)
            return None
        if isinstance(result, Lease):
            self._hold(request, result)
            if not result.unproven and not result.probe:
                self.unavailability.served((ask.site, ask.region))
            return None
        return self._waiting(request, ask, result)

    def _waiting(self, request: Request, ask: Ask, wait: Wait) -> Wait | None:
        """Count a wait, and apply ``PROXY_UNAVAILABLE_TIMEOUT`` to it."""
        self.stats.inc_value(f"{PREFIX}/waits")
        if wait.unavailable and self.source is not None:
            self.source.refresh("dry")  # the pool ran dry for this site: the provider may know better
        now = time.monotonic()
        what = ask.site + (f" in region {ask.region!r}" if ask.region else "")
        verdict = self.unavailability.waiting((ask.site, ask.region), wait.seconds, wait.unavailable, now, what)
        if not isinstance(verdict, Act):
            return replace(wait, seconds=verdict)
        if self.config.unavailable_action == "fail":
            self.stats.inc_value(f"{PREFIX}/unavailable/failed")
            request.meta[FAIL] = verdict.message
            return None
        self._close_unavailable(ask, verdict.message)
        return wait

    def queued(self, request: Request) -> None:
        """A request enters the scheduler: one of a sticky session notes the session's
        binding now (if it moves meanwhile, the request waits for the spider to renew it)."""
        meta = request.meta
        session = meta.get(SESSION)
        if session is not None and SESSION_GENERATION not in meta:
            meta[SESSION_GENERATION] = self.balancer.sessions.generation(str(session), self.balancer.clock())

    def forget(self, request: Request) -> None:
        """The request goes (back) into the scheduler: release a lease it never used, and take
        off our proxy, its credentials and our slot, so that what is queued (and persisted to
        a JOBDIR) holds nothing of this process and no password."""
        self._release_unused(request)
        self._clear_ours(request)
        _restore_timeout(request.meta)
        request.meta.pop(FAIL, None)

    # -- requests --------------------------------------------------------------------

    async def process_request(self, request: Request) -> Request | None:
        meta = request.meta
        failure = meta.pop(FAIL, None)
        lease = self._held(request)
        if lease is not None and not lease.probe and not self.balancer.in_rotation(lease.state.key):
            self._release_unused(request)  # ejected or taken out since it left the scheduler: lease anew
            lease = None
        if failure is not None:
            self._release_unused(request)
            self.stats.inc_value(f"{PREFIX}/no_proxy")
            raise NoProxyAvailable(f"{failure} (for {request})")
        if lease is None:  # it came without the scheduler's admission
            result = self._acquire(request)
            if result is None:
                return None  # it needs no proxy from the pool
            if isinstance(result, Wait):
                return self.to_wait(request, result)
            lease = result
        if self.shared:
            claimed = await self._claimed(request, lease)
            if isinstance(claimed, Wait):
                return self.to_wait(request, claimed)
            lease = claimed
        self._assign(request, lease)
        return None

    def _acquire(self, request: Request) -> Lease | Wait | None:
        """Lease a proxy for ``request`` now (held in its meta), or say how long it waits;
        ``None`` if it needs no proxy from the pool. Raises :class:`NoProxyAvailable`."""
        ask = self._ask(request)
        if ask is None:
            return None
        try:
            result = self.balancer.acquire(ask, CLAIM_CANDIDATES - 1 if self.shared else 0)
        except NoProxyAvailable as exc:
            self.stats.inc_value(f"{PREFIX}/no_proxy")
            raise NoProxyAvailable(f"{exc} (for {request})") from None
        if isinstance(result, Wait):
            wait = self._waiting(request, ask, result)
            if wait is None:
                raise NoProxyAvailable(f"{request.meta.pop(FAIL)} (for {request})")
            return wait
        self._hold(request, result)
        return result

    def _hold(self, request: Request, lease: Lease) -> None:
        """The request carries ``lease`` until its response or exception releases it."""
        request.meta[LEASE] = (self.token, lease.number)
        self.leases[lease.number] = lease

    async def _claimed(self, request: Request, lease: Lease) -> Lease | Wait:
        """The lease's pair (or an alternate's) taken for the whole fleet: the one round trip
        a request costs a shared store. If the fleet held every candidate, once more with what
        the claim taught this process; then a short wait."""
        for _ in range(2):
            self.stats.inc_value(f"{PREFIX}/state/claims")
            gap = self.balancer.gap(lease.site, lease.at)
            limit = 1 if gap > 0 else self.config.rules.pair_limit or 1 << 30
            keys = [lease.state.key, *lease.alternates]
            taken = await self.store.claim(lease.site, keys, lease.number, limit, gap)
            if lease.released:  # the crawl closed meanwhile
                return Wait(CLAIM_RETRY)
            self.leases.pop(lease.number, None)
            if taken is not None:
                claimed = lease if taken == keys[0] else self.balancer.switch(lease, taken)
                self._hold(request, claimed)
                return claimed
            self.balancer.cancel(lease)
            request.meta.pop(LEASE, None)
            self.stats.inc_value(f"{PREFIX}/state/claims_lost")
            again = self._acquire(request)
            if not isinstance(again, Lease):
                return again or Wait(CLAIM_RETRY * (0.5 + random.random()))
            lease = again
        self._release_unused(request)
        return Wait(CLAIM_RETRY * (0.5 + random.random()), on_release=True)

    def to_wait(self, request: Request, wait: Wait) -> Request:
        """Send ``request`` back to the scheduler to wait (it goes to its waiting room)."""
        request.meta[WAIT] = (wait.seconds, wait.on_release)
        return request

    def _ask(self, request: Request) -> Ask | None:
        """What the request needs from the pool, or ``None`` if it needs no proxy from it.

        A request that comes back (a retry, a redirect) still carries the proxy we chose last
        time: that choice is undone here, credentials included, so they cannot travel to the
        next proxy. A proxy the user set is kept; ``dont_proxy`` goes direct (also past
        ``http_proxy`` in the environment).
        """
        meta = request.meta
        self._clear_ours(request)
        if meta.get("dont_proxy"):
            meta["proxy"] = None  # HttpProxyMiddleware would otherwise apply the environment's proxy
            return None
        if "proxy" in meta:
            return None  # the user chose a proxy (or none) for this request
        site = urlparse_cached(request).hostname or ""
        region = meta.get("proxy_region") or self.config.region_for(site)
        session = meta.get(SESSION)
        if session is None:
            return Ask(site, meta.get(TRIED, ()), region)
        self.queued(request)
        return Ask(site, meta.get(TRIED, ()), region, str(session), meta[SESSION_GENERATION])

    def _clear_ours(self, request: Request) -> None:
        meta = request.meta
        ours = meta.pop(OUR_PROXY, None)
        if ours is not None and _bare(meta.get("proxy")) == ours:
            # HttpProxyMiddleware has since moved the credentials into a header: drop both
            del meta["proxy"]
            meta.pop("_auth_proxy", None)
            request.headers.pop(b"Proxy-Authorization", None)
        if meta.pop(OUR_SLOT, None):
            meta.pop("download_slot", None)

    def _held(self, request: Request) -> Lease | None:
        """The lease this process holds for the request, if any."""
        held = request.meta.get(LEASE)
        if not held or held[0] != self.token:
            request.meta.pop(LEASE, None)
            return None
        return self.leases.get(held[1])

    def _release_unused(self, request: Request) -> None:
        held = request.meta.pop(LEASE, None)
        if held and held[0] == self.token:
            lease = self.leases.pop(held[1], None)
            if lease is not None:
                self._release(lease, Outcome.NEUTRAL, sent=False)

    def _assign(self, request: Request, lease: Lease) -> None:
        meta = request.meta
        proxy = lease.proxy
        meta["proxy"] = proxy.url
        meta[OUR_PROXY] = _bare(proxy.url)
        if "download_slot" not in meta and lease.site not in self.own_slots:
            # Scrapy's per-site limits (CONCURRENT_REQUESTS_PER_DOMAIN, DOWNLOAD_DELAY,
            # AutoThrottle) apply to each exit a site sees: one slot per (site, proxy)
            meta["download_slot"] = f"{lease.site}|{lease.state.id}"
            meta[OUR_SLOT] = True
        _restore_timeout(meta)  # we may have lowered it for an unproven proxy before
        if lease.unproven and self.config.trial_timeout:
            current = meta.get("download_timeout") or self.download_timeout
            if not current or current > self.config.trial_timeout:
                meta[TIMEOUT] = (meta.get("download_timeout"),)
                meta["download_timeout"] = self.config.trial_timeout
        if lease.session is not None:
            self._session_meta(meta, lease, lease.session)
        self.stats.inc_value(f"{PREFIX}/requests")
        if self.config.stats_per_proxy:
            self.stats.inc_value(f"{PREFIX}/site/{lease.site}/requests")
        if self.recorder is not None:
            self.recorder.sent(lease.site)

    def _session_meta(self, meta: dict[str, Any], lease: Lease, session: str) -> None:
        """The request's binding; the move it tells, if it is the first request since; the
        session's cookie jar (a fresh one for each binding)."""
        meta[SESSION_GENERATION] = lease.generation
        if lease.moved:
            meta[MOVED], meta[MOVED_AT] = lease.moved, lease.generation
        elif MOVED in meta and meta.get(MOVED_AT) != lease.generation:
            del meta[MOVED]  # a copy of a request that told an earlier move tells nothing
            meta.pop(MOVED_AT, None)
        if self.config.session_cookiejar:
            jar = session if not lease.generation else f"{session}#{lease.generation}"
            current = meta.get("cookiejar")
            if current is None or current == meta.get(OUR_JAR) or _session_jar(current, session):
                meta["cookiejar"] = meta[OUR_JAR] = jar

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        lease = self._pop_lease(request)
        if lease is None:
            return response
        if "cached" in response.flags:  # HttpCacheMiddleware answered: the proxy never saw it
            self._release(lease, Outcome.NEUTRAL)
            return response
        outcome = self.policy.response_outcome(request, response)
        looks_fine = 200 <= response.status < 300
        reason = "ban page" if outcome is Outcome.BAN and looks_fine else _status_text(response.status)
        retry_after = None
        if outcome in (Outcome.BAN, Outcome.RATE_LIMITED):
            retry_after = parse_retry_after(response.headers.get(b"Retry-After"), time.time())
        status = f"{response.status} ban page" if reason == "ban page" else str(response.status)
        outcome = self._release(lease, outcome, reason, request.meta.get("download_latency"), retry_after, status)
        if outcome.retryable:
            retry = self._retry(request, lease, outcome, reason)
            if retry is not None:
                return retry
            if outcome is Outcome.BAN and looks_fine:  # never hand a ban page to the callback
                raise BanDetected(response, f"{reason} from {lease.proxy.label} for {request}")
        return response

    async def process_exception(self, request: Request, exception: Exception) -> Request | None:
        lease = self._pop_lease(request)
        if lease is None:
            return None
        outcome = self.policy.exception_outcome(request, exception)
        reason = global_object_name(type(exception))
        outcome = self._release(lease, outcome, reason)
        if outcome.retryable:
            return self._retry(request, lease, outcome, reason)
        return None

    def _pop_lease(self, request: Request) -> Lease | None:
        held = request.meta.pop(LEASE, None)
        if not held or held[0] != self.token:
            return None
        return self.leases.pop(held[1], None)

    # -- outcomes --------------------------------------------------------------------

    def _release(self, lease: Lease, outcome: Outcome, reason: str = "", latency: float | None = None,
                 retry_after: float | None = None, status: str = "", sent: bool = True) -> Outcome:
        """Release a lease (``sent``: its request went out through the proxy; ``status``: the
        response's, if there was one); return the outcome as the balancer counted it."""
        reason = reason.rsplit(".", 1)[-1]
        released = self.balancer.release(lease, outcome, latency, retry_after, reason)
        outcome = released.outcome
        if self.recorder is not None and sent:
            self.recorder.answered(lease.state.key, lease.site, outcome.value, time.time(), status, reason, latency)
        if outcome in COUNTED:
            self.stats.inc_value(f"{PREFIX}/{COUNTED[outcome]}")
            if self.config.stats_per_proxy and outcome is Outcome.BAN:
                self.stats.inc_value(f"{PREFIX}/site/{lease.site}/bans")
        elif outcome is Outcome.SUCCESS:
            self.unavailability.served((lease.site, lease.region))
        if self.scheduler is not None:
            self.scheduler.released()
        return outcome

    def _retry(self, request: Request, lease: Lease, outcome: Outcome, reason: str) -> Request | None:
        """A copy of ``request`` for another proxy (see :mod:`~.core.retry`), or ``None`` with
        ``dont_retry`` set when it gives up."""
        meta = request.meta
        if meta.get("dont_retry"):
            return None
        region = meta.get("proxy_region") or self.config.region_for(lease.site)
        decision = decide_retry(
            proxy=lease.proxy.key, outcome=outcome, tried=meta.get(TRIED, ()), moves=meta.get(RETRIES, 0),
            had_last_try=bool(meta.get(LAST_TRY)), in_rotation=self.balancer.in_rotation,
            degraded=self.balancer.degraded(region), region_size=self.balancer.region_size[region],
            retry_times=self.config.rules.retry_times, sticky=lease.session is not None,
        )
        if isinstance(decision, GiveUp):
            self.stats.inc_value(f"{PREFIX}/retry/max_reached")
            logger.error("proxybalance: gave up on %s after %d attempts (last: %s through %s; %s)",
                         request, meta.get(RETRIES, 0) + 1, reason, lease.proxy.label, decision.reason)
            meta["dont_retry"] = True  # RetryMiddleware must not retry it yet again
            return None
        logger.debug("proxybalance: retrying %s on another proxy (%s through %s)", request, reason, lease.proxy.label)
        self.stats.inc_value(f"{PREFIX}/retry/count")
        self.stats.inc_value(f"{PREFIX}/retry/reason_count/{reason}")
        if not decision.charged:
            self.stats.inc_value(f"{PREFIX}/retry/uncharged")
        retry = request.copy()
        retry.meta[TRIED] = list(decision.tried)
        retry.meta[RETRIES] = decision.moves
        if decision.last_try:
            retry.meta[LAST_TRY] = True
        if decision.delay:
            retry.meta[WAIT] = (decision.delay, False)
        retry.dont_filter = True
        retry.priority = request.priority + self.crawler.settings.getint("RETRY_PRIORITY_ADJUST")
        return retry

    def _close_unavailable(self, ask: Ask, message: str) -> None:
        if self.closing is not None:
            return
        logger.error("proxybalance: %s; closing the spider. The proxies:\n  %s",
                     message, "\n  ".join(self.balancer.why_out(ask.site, ask.region)))
        self.stats.set_value(f"{PREFIX}/unavailable", ask.site)
        self.closing = deferred_from_coro(self.crawler.engine.close_spider_async(reason="proxies_unavailable"))

    def _wake(self) -> None:
        if self.scheduler is not None:
            self.scheduler.wake()

    def waiting(self) -> int:
        """Requests waiting for a proxy now."""
        return self.scheduler.waiting() if self.scheduler is not None else 0

    # -- run-time API ----------------------------------------------------------------

    def add_proxy(self, entry: str | dict) -> Proxy:
        """Add a proxy (a URL or a ``PROXY_POOL`` dict) to the running pool (of every process
        sharing it). Raises :class:`~.core.errors.InvalidProxy` or
        :class:`~.core.errors.DuplicateProxy`."""
        proxy = parse_entry(entry)
        self.balancer.add(proxy)
        self.store.share_pool_change("add", json.dumps(entry))
        logger.info("proxybalance: added %s", proxy.label)
        self._wake()
        return proxy

    def remove_proxy(self, url: str) -> None:
        """Remove a proxy (from every process sharing the pool): no new requests; those in
        flight through it finish. Raises :class:`~.core.errors.UnknownProxy` if it is not in
        the pool."""
        key = parse_entry(url).key
        self.balancer.remove(key)
        self.store.share_pool_change("remove", key)

    def _pool_changed_elsewhere(self, action: str, value: str) -> None:
        """Another process added or removed a proxy: so does this one."""
        try:
            if action == "add":
                proxy = parse_entry(json.loads(value))
                if proxy.key not in self.balancer.by_key:
                    self.balancer.add(proxy)
                    logger.info("proxybalance: added %s (by another process)", proxy.label)
                    self._wake()
            elif action == "remove" and value in self.balancer.by_key:
                self.balancer.remove(value)
                logger.info("proxybalance: removed %s (by another process)", value)
        except (ValueError, ProxyBalanceError) as exc:
            logger.error("proxybalance: cannot apply a pool change from another process: %s", mask(str(exc)))

    def disable_proxy(self, url: str) -> None:
        """Stop using a proxy until :meth:`enable_proxy`; it keeps its health history."""
        self.balancer.disable(parse_entry(url).key)

    def enable_proxy(self, url: str) -> None:
        self.balancer.enable(parse_entry(url).key)
        self._wake()

    def proxies(self) -> list[dict]:
        """The pool now: one dict per proxy (URL masked), for monitoring."""
        out = []
        for p in self.balancer.by_key.values():
            m, facts = p.metrics, self.balancer.facts(p)
            out.append({"proxy": str(p.proxy), "name": p.proxy.name, "state": self.balancer.state_of(p),
                        "in_flight": p.in_flight, "limit": p.limit.allowed, "requests": m.requests,
                        "successes": m.successes, "failures": m.failures, "bans": m.bans,
                        "ejections": facts.ejections,
                        "exit_ip": self.checker.ip_of.get(p.key) if self.checker else None})
        return out

    # -- signals ---------------------------------------------------------------------

    async def spider_opened(self) -> None:
        self.policy = SpiderPolicy(self.project_policy, self.crawler.spider, self.crawler, self.config)
        if self.recorder is not None:
            self.recorder.started = time.time()
        await self.store.start()
        if self.source is not None:
            await self._read_source_first()
        if self.config.stats_interval:
            self._every(self.config.stats_interval, self.log_summary)
        if self.pool_file is not None:
            self._every(self.config.pool_reload_interval, self.reload_pool)
        if self.source is not None and self.config.pool_reload_interval:
            self._every(self.config.pool_reload_interval, self.source.refresh)
        if self.checker is not None:
            self.checker.start(self._every)
        if self.config.status is not None:
            await self._start_status_server()

    async def _read_source_first(self) -> None:
        """Read ``PROXY_POOL_SOURCE`` before the first request leaves; with no proxy at all
        then, the spider closes (reason ``proxies_unavailable``)."""
        assert self.source is not None
        await self.source.update("start")
        if not self.balancer.by_key and not self.balancer.gateways.by_key:
            self.refused = f"PROXY_POOL_SOURCE {self.source.shown} gave no proxies and PROXY_POOL lists none"
            logger.error("proxybalance: %s: nothing to crawl through; closing the spider", self.refused)

    async def _start_status_server(self) -> None:
        from .status.server import StatusServer

        assert self.config.status is not None
        server = StatusServer(self.config.status, self)
        try:
            await server.start()
        except OSError as exc:  # the crawl goes on without it
            logger.error("proxybalance: cannot serve the status page at %s (%s); crawling without it",
                         self.config.status.address, exc.strerror or exc)
        else:
            self.status_server = server

    def _every(self, seconds: float, function: Callable[[], None]) -> Any:
        """Call ``function`` every ``seconds``; an exception is logged and the loop goes on."""
        def guarded() -> None:
            try:
                function()
            except Exception:
                logger.exception("proxybalance: %s failed (it will run again)", function.__name__)

        loop = create_looping_call(guarded)
        loop.start(seconds, now=False)
        self.loops.append(loop)
        return loop

    def log_summary(self) -> None:
        logger.info(summary(self.balancer, self.stats, self.waiting()))

    def reload_pool(self) -> None:
        """Apply the pool file if it changed; proxies that stay keep their health."""
        proxies = self.pool_file.changed() if self.pool_file else None
        if proxies:
            self.static_pool = proxies
            self._apply_pool(f"reloaded {self.config.pool_file}", always=True)

    def _use_source_pool(self, proxies: list[Proxy]) -> None:
        """``PROXY_POOL_SOURCE`` gave a good pool: it joins ``PROXY_POOL``'s."""
        self.source_pool = proxies
        self._apply_pool("PROXY_POOL_SOURCE changed the pool")

    def _apply_pool(self, what: str, always: bool = False) -> None:
        """Make the pool ``PROXY_POOL``'s proxies and the source's (a proxy both list counts
        once); proxies that stay keep their health."""
        wanted: dict[str, Proxy] = {}
        for proxy in (*self.static_pool, *self.source_pool):
            wanted.setdefault(proxy.key, proxy)
        added, removed, updated = self.balancer.replace(list(wanted.values()))
        if always or added or removed or updated:
            self.stats.inc_value(f"{PREFIX}/pool/reloads")
            logger.info("proxybalance: %s: %d added, %d removed, %d updated, %d in the pool",
                        what, added, removed, updated, len(self.balancer.by_key) + len(self.balancer.gateways.by_key))
            self._wake()

    def status_action(self, proxy_id: int, action: str) -> dict[str, Any] | None:
        """``disable`` or ``enable`` the proxy with this id, from the status page
        (``PROXY_STATUS_ACTIONS``); ``None`` if no such proxy is in the pool."""
        states = self.balancer.states
        p = states[proxy_id] if 0 <= proxy_id < len(states) else None
        if p is None or self.balancer.by_key.get(p.key) is not p:
            return None
        if action == "disable":
            self.balancer.disable(p.key)
        else:
            self.balancer.enable(p.key)
            self._wake()
        logger.info("proxybalance: %sd %s from the status page", action, p.proxy.label)
        return {"id": p.id, "label": p.proxy.label, "state": self.balancer.state_of(p)}

    async def spider_closed(self, reason: str | None = None) -> None:
        if self.checker is not None:
            self.checker.stop()
        for loop in self.loops:
            if loop.running:
                loop.stop()
        if self.source is not None:
            self.source.close()
        if self.status_server is not None:
            await self.status_server.close()
            self.status_server = None
        if self.leases:  # requests whose download never reported back (e.g. cut off by the close)
            self.stats.set_value(f"{PREFIX}/leases_open_at_close", len(self.leases))
            for lease in list(self.leases.values()):
                self._release(lease, Outcome.NEUTRAL)
            self.leases.clear()
        if self.config.stats_per_proxy:
            record_proxies(self.balancer, self.stats)
        logger.info("%s\n%s", summary(self.balancer, self.stats, 0), table(self.balancer))
        if self.config.report_file is not None:
            self._write_report(self.config.report_file, reason)
        await self.store.close()

    def _write_report(self, template: str, reason: str | None) -> None:
        """``PROXY_REPORT_FILE``: the pool, every proxy and site, as JSON (see :mod:`.report`)."""
        from .report import report_path, write_report
        from .status.view import View

        started = self.recorder.started if self.recorder is not None else time.time()
        spider = self.crawler.spider
        assert spider is not None
        try:
            path = report_path(template, spider, started)
        except KeyError as exc:
            logger.error("proxybalance: PROXY_REPORT_FILE %r: the spider has no attribute %s; no report written",
                         template, exc)
            return
        try:
            write_report(path, View(self).report(reason))
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path (from a spider attribute)
            logger.error("proxybalance: cannot write the report to %r: %s", str(path), getattr(exc, "strerror", None)
                         or exc)
        else:
            logger.info("proxybalance: wrote the report to %s", path)


class Misconfigured(ProxyBalanceMiddleware):
    """What the middleware is when a setting is bad: the error was logged in one line; as soon
    as the engine runs, the spider closes (reason ``proxybalance_misconfigured``) without
    sending anything and without a traceback, and ``scrapy crawl`` exits with status 1, as for
    a crawl that could not start. Requests stay in the scheduler (and in a ``JOBDIR`` queue)."""

    def __init__(self, crawler: Crawler, reason: str) -> None:
        self.crawler = crawler
        self.refused = reason
        self.scheduler = None
        self.closing = None
        crawler.signals.connect(self.refuse, signal=signals.spider_idle)
        crawler.signals.connect(self.engine_stopped, signal=signals.engine_stopped)

    def refuse(self) -> None:
        """Close the spider (once); called when the engine asks for the first request."""
        if self.closing is None:
            self._close_soon("proxybalance_misconfigured")

    def engine_stopped(self) -> None:
        self.crawler.spider = None  # the process then reports a crawl that could not start: exit status 1

    async def process_request(self, request: Request) -> Request | None:
        self.refuse()
        raise IgnoreRequest(f"scrapy-proxybalance is misconfigured: {self.refused}")

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        return response

    async def process_exception(self, request: Request, exception: Exception) -> Request | None:
        return None

    async def spider_opened(self) -> None:
        pass

    async def spider_closed(self, reason: str | None = None) -> None:
        pass

    def forget(self, request: Request) -> None:
        pass

    def queued(self, request: Request) -> None:
        pass


def state_store(config: Config, crawler: Crawler) -> StateStore:
    """The store ``PROXY_STATE_URL`` names: this process's memory, or Redis shared by a fleet."""
    if config.state_url.startswith("memory://"):
        return MemoryStore()
    from .stores.redis import RedisStore

    def trouble(message: str) -> None:
        crawler.stats.inc_value(f"{PREFIX}/state/errors")
        logger.warning("proxybalance: %s", message)

    lease_ttl = 2 * max(crawler.settings.getfloat("DOWNLOAD_TIMEOUT"), 1.0) + 10
    return RedisStore(config.state_url, config.state_namespace, lease_ttl=lease_ttl, timeout=config.state_timeout,
                      on_trouble=trouble)


def _status_text(status: int) -> str:
    """``429 Too Many Requests``: a status as Scrapy's retry stats name it."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _restore_timeout(meta: dict) -> None:
    own = meta.pop(TIMEOUT, None)
    if own is not None:
        if own[0] is None:
            meta.pop("download_timeout", None)
        else:
            meta["download_timeout"] = own[0]


ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"


def _check_asyncio(config: Config, settings: Any) -> None:
    """The status server and the shared store (``redis.asyncio``) run on asyncio's event loop:
    Scrapy's default asyncio reactor, or Scrapy without a Twisted reactor. Refuse another
    reactor in one line naming the setting."""
    needs = [name for name, used in (("PROXY_STATUS_ADDRESS", config.status is not None),
                                     ("PROXY_STATE_URL", not config.state_url.startswith("memory://"))) if used]
    if not needs:
        return
    from scrapy.utils.asyncio import is_asyncio_available

    try:
        if is_asyncio_available():
            return
        reactor = sys.modules["twisted.internet.reactor"]
        running = f"{type(reactor).__module__}.{type(reactor).__name__}"
    except (RuntimeError, KeyError):  # no reactor installed yet: go by the settings
        if not settings.getbool("TWISTED_REACTOR_ENABLED", True) or settings.get("TWISTED_REACTOR") == ASYNCIO_REACTOR:
            return
        running = str(settings.get("TWISTED_REACTOR") or "the default Twisted reactor")
    raise ConfigError(f"{needs[0]} needs asyncio, but this crawl runs {running}: use Scrapy's default"
                      f" TWISTED_REACTOR ({ASYNCIO_REACTOR!r}) or TWISTED_REACTOR_ENABLED = False, or unset"
                      f" {needs[0]}")


def _check_scheduler(settings: Any) -> None:
    """Waiting requests live in :class:`~.scheduler.ProxyScheduler`: without it they would be
    sent back and forth (and lost at a JOBDIR pause), so refuse to start."""
    from .scheduler import is_proxy_scheduler

    value = settings.get("SCHEDULER")
    try:
        cls = load_object(value) if isinstance(value, str) else value
    except (ImportError, AttributeError, ValueError, NameError):
        return  # Scrapy reports a scheduler it cannot load itself
    if not is_proxy_scheduler(cls):
        name = value if isinstance(value, str) else global_object_name(value)
        raise ConfigError(
            f"SCHEDULER is {name!r}, but requests that wait for a proxy need"
            " 'scrapy_proxybalance.ProxyScheduler' (it keeps them in your scheduler's custody): enable the add-on"
            " (ADDONS = {'scrapy_proxybalance.Addon': 0}), or set SCHEDULER = 'scrapy_proxybalance.ProxyScheduler'"
            f" and PROXY_SCHEDULER = {name!r}"
        )
