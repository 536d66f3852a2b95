"""What the middleware is when a setting is bad: the error was logged in one line; as soon as
the engine runs, the spider closes (reason ``proxybalance_misconfigured``) without sending
anything and without a traceback, and ``scrapy crawl`` exits with status 1, as for a crawl
that could not start. Requests stay in the scheduler (and in a ``JOBDIR`` queue)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import IgnoreRequest

from .lifecycle import close_spider_soon

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler


class RefusedAdmission:
    """The scheduler's side of a refused crawl: nothing is admitted; the spider closes."""

    def __init__(self, crawler: Crawler, reason: str) -> None:
        self.crawler = crawler
        self.refused = reason
        self.closing = False

    def refuse(self) -> None:
        """Close the spider (once); called when the engine asks for the first request."""
        if not self.closing:
            self.closing = True
            close_spider_soon(self.crawler, "proxybalance_misconfigured")

    def attach(self, scheduler: object) -> None:
        pass

    def ask(self, request: Request) -> None:
        return None

    def wait_key(self, request: Request) -> None:
        return None

    def admit(self, request: Request, asked: object = None) -> None:
        return None

    def queued(self, request: Request) -> None:
        pass

    def forget(self, request: Request) -> None:
        pass


class RefusingMiddleware:
    """Stands in for :class:`~.middleware.ProxyBalanceMiddleware` when a setting is bad."""

    def __init__(self, crawler: Crawler, reason: str) -> None:
        self.crawler = crawler
        self.admission = RefusedAdmission(crawler, reason)
        crawler.signals.connect(self.admission.refuse, signal=signals.spider_idle)
        crawler.signals.connect(self.engine_stopped, signal=signals.engine_stopped)

    def engine_stopped(self) -> None:
        self.crawler.spider = None  # the process then reports a crawl that could not start: exit status 1

    async def process_request(self, request: Request) -> None:
        self.admission.refuse()
        raise IgnoreRequest(f"scrapy-proxybalance is misconfigured: {self.admission.refused}")
