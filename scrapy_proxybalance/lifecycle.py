"""What starts when the spider opens and ends when it closes.

Opening: the state store connects, ``PROXY_POOL_SOURCE`` is read before the first request
leaves, the periodic work starts (the pool summary, the pool file's reload, the source's
reads, active checks) and the status server listens. Closing: all of that stops; leases whose
downloads never reported back are released; the closing table is logged, the per-proxy stats
and the report (``PROXY_REPORT_FILE``) are written; the store writes what is left.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from scrapy.utils.asyncio import call_later, create_looping_call
from scrapy.utils.defer import deferred_from_coro

from .jobdir import load_tiers, save_tiers
from .logs import PasswordFilter
from .policy import SpiderPolicy
from .report import report_path, write_report
from .stats import PREFIX, cost_line, record_proxies, summary, table
from .status.server import StatusServer
from .status.view import View

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from .crawl import Crawl

logger = logging.getLogger(__name__)


def close_spider_soon(crawler: Crawler, reason: str) -> None:
    """Close the spider on the next turn of the event loop, never from inside the engine's
    own call (with a Twisted reactor other than asyncio's, the close would run there and then,
    under the engine's feet)."""
    def close() -> None:
        deferred_from_coro(crawler.engine.close_spider_async(reason=reason))

    call_later(0, close)


class Lifecycle:
    def __init__(self, crawl: Crawl) -> None:
        self.crawl = crawl
        self.loops: list[Any] = []
        self.status_server: Any = None
        self.passwords = PasswordFilter(crawl.pool.secrets)  # masks them in every log line

    async def opened(self) -> None:
        c = self.crawl
        self.passwords.install()
        crawler = c.crawler
        c.answers.policy = SpiderPolicy(c.project_policy, crawler.spider, crawler, c.config,
                                        c.carriers.proxy_fault_types())
        c.answers.spider = crawler.spider
        if c.recorder is not None:
            c.recorder.started = time.time()
        await c.store.start()
        load_tiers(c)
        source, config = c.pool.source, c.config
        if source is not None:
            await self._read_source_first()
        if config.stats_interval:
            self.every(config.stats_interval, self.log_summary)
        if c.pool.pool_file is not None:
            self.every(config.pool_reload_interval, c.pool.reload_pool)
        if source is not None and config.pool_reload_interval:
            self.every(config.pool_reload_interval, source.refresh)
        if c.checker is not None:
            c.checker.start(self.every)
        if config.status is not None:
            await self._start_status_server()

    async def _read_source_first(self) -> None:
        """Read ``PROXY_POOL_SOURCE`` before the first request leaves; with no proxy at all
        then, the spider closes (reason ``proxies_unavailable``)."""
        source = self.crawl.pool.source
        assert source is not None
        await source.update("start")
        if self.crawl.pool.empty():
            refused = f"PROXY_POOL_SOURCE {source.shown} gave no proxies and PROXY_POOL lists none"
            self.crawl.admission.refused = refused
            logger.error("%s: nothing to crawl through; closing the spider", refused)

    async def _start_status_server(self) -> None:
        settings = self.crawl.config.status
        assert settings is not None
        server = StatusServer(settings, self.crawl)
        try:
            await server.start()
        except OSError as exc:  # the crawl goes on without it
            logger.error("cannot serve the status page at %s (%s); crawling without it", settings.address,
                         exc.strerror or exc)
        else:
            self.status_server = server

    def every(self, seconds: float, function: Callable[[], None]) -> Any:
        """Call ``function`` every ``seconds``; an exception is logged and the loop goes on."""
        def guarded() -> None:
            try:
                function()
            except Exception:
                logger.exception("%s failed (it will run again)", function.__name__)

        loop = create_looping_call(guarded)
        loop.start(seconds, now=False)
        self.loops.append(loop)
        return loop

    def log_summary(self) -> None:
        c = self.crawl
        logger.info(summary(c.balancer, c.stats, c.admission.waiting(), c.config.stats_per_proxy))

    async def closed(self, reason: str | None = None) -> None:
        c = self.crawl
        if c.checker is not None:
            c.checker.stop()
        for loop in self.loops:
            if loop.running:
                loop.stop()
        if c.pool.source is not None:
            c.pool.source.close()
        if self.status_server is not None:
            await self.status_server.close()
            self.status_server = None
        cut_off = c.ledger.release_all()  # requests whose download never reported back
        if cut_off:
            c.stats.set_value(f"{PREFIX}/leases_open_at_close", cut_off)
        if c.config.stats_per_proxy:
            record_proxies(c.balancer, c.stats)
        logger.info("%s\n%s", summary(c.balancer, c.stats, 0, c.config.stats_per_proxy), table(c.balancer))
        logger.info("%s", cost_line(c.balancer))
        if c.config.report_file is not None:
            self._write_report(c.config.report_file, reason)
        save_tiers(c)
        await c.store.close()
        self.passwords.remove()

    def _write_report(self, template: str, reason: str | None) -> None:
        """``PROXY_REPORT_FILE``: the pool, every proxy and site, as JSON (see :mod:`.report`)."""
        c = self.crawl
        started = c.recorder.started if c.recorder is not None else time.time()
        spider = c.crawler.spider
        assert spider is not None
        try:
            path = report_path(template, spider, started)
        except KeyError as exc:
            logger.error("PROXY_REPORT_FILE %r: the spider has no attribute %s; no report written", template, exc)
            return
        try:
            write_report(path, View(c).report(reason))
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path (from a spider attribute)
            logger.error("cannot write the report to %r: %s", str(path), getattr(exc, "strerror", None) or exc)
        else:
            logger.info("wrote the report to %s", path)
