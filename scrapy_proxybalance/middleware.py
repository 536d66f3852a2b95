"""The Scrapy downloader middleware: Scrapy objects in, calls to the plugin's parts out.

Order: put it between RetryMiddleware (550) and HttpProxyMiddleware (750); the add-on uses
610. Its ``process_request`` must run before HttpProxyMiddleware's, which turns the chosen
proxy's credentials into ``Proxy-Authorization``; its ``process_response`` and
``process_exception`` must run before RetryMiddleware's, so that a proxy failure is retried
here on another proxy (see :mod:`.answers`). Failures that are not the proxy's (a site's 500)
are left to RetryMiddleware, whose retries come back through here.

A proxy is leased when a request leaves the scheduler (:mod:`.admission`), so the lease is
fresh when the request is sent; a request that must wait goes back to the scheduler's custody.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import NotConfigured

from .assembly import assemble
from .carriers import Carriers
from .config import Config, enabled
from .core.errors import ConfigError
from .core.leases import Wait
from .environment import check_asyncio, check_playwright, check_scheduler, check_schemes, warn_own_slots
from .lifecycle import Lifecycle
from .meta import FAIL, WAIT
from .refusal import RefusingMiddleware

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from .admission import Admission
    from .answers import Answers
    from .crawl import Crawl
    from .pool_control import PoolControl
    from .sending import Sending

logger = logging.getLogger(__name__)


class ProxyBalanceMiddleware:
    """Sends each request through a proxy chosen by the balancer; retries proxy failures and
    bans on another proxy.

    At run time, ``crawler.get_downloader_middleware(ProxyBalanceMiddleware).pool`` is the
    :class:`~scrapy_proxybalance.PoolControl` that changes and shows the pool.
    """

    def __init__(self, admission: Admission, sending: Sending, answers: Answers, pool: PoolControl,
                 shared: bool = False, crawl: Crawl | None = None, lifecycle: Lifecycle | None = None) -> None:
        self.admission = admission
        self.sending = sending
        self.answers = answers
        self.pool = pool
        self.shared = shared  # a fleet shares the store: each lease's pair is claimed before it is sent
        self.crawl = crawl  # every part, for tools and tests that look inside
        self.lifecycle = lifecycle

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProxyBalanceMiddleware | RefusingMiddleware:
        settings = crawler.settings
        try:
            if not enabled(settings):
                raise NotConfigured  # no message: Scrapy would log a warning for a deliberate choice
            config = Config.from_settings(settings)
            check_scheduler(settings)
            check_asyncio(config, settings)
            check_playwright(settings)
            carriers = Carriers.from_crawler(crawler, config)
            check_schemes(config.pool, carriers)
        except ConfigError as exc:
            logger.error("scrapy-proxybalance cannot start: %s", exc)
            return RefusingMiddleware(crawler, str(exc))
        crawl = assemble(crawler, config, carriers)
        lifecycle = Lifecycle(crawl)
        crawler.signals.connect(lifecycle.opened, signal=signals.spider_opened)
        crawler.signals.connect(lifecycle.closed, signal=signals.spider_closed)
        warn_own_slots(settings)
        return cls(crawl.admission, crawl.sending, crawl.answers, crawl.pool, crawl.store.shared, crawl, lifecycle)

    async def process_request(self, request: Request) -> Request | None:
        failure = request.meta.pop(FAIL, None)
        if failure is not None:
            self.admission.fail(request, failure)
        lease = self.admission.still_held(request)
        if lease is None:  # it came without the scheduler's admission, or its lease went stale
            result = self.admission.lease_now(request)
            if result is None:
                return None  # it needs no proxy from the pool
            if isinstance(result, Wait):
                return _to_wait(request, result)
            lease = result
        if self.shared:
            claimed = await self.admission.claimed(request, lease)
            if isinstance(claimed, Wait):
                return _to_wait(request, claimed)
            lease = claimed
        self.sending.send(request, lease)
        return None

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        return self.answers.on_response(request, response)

    async def process_exception(self, request: Request, exception: Exception) -> Request | None:
        return self.answers.on_exception(request, exception)


def _to_wait(request: Request, wait: Wait) -> Request:
    """Send ``request`` back to the scheduler to wait (it goes to its waiting room)."""
    request.meta[WAIT] = (wait.seconds, wait.on_release)
    return request
