"""How a request through a proxy ended: the response or exception read as an outcome (by the
ban policy and the download path's fault table), the lease released, and, when the proxy was
at fault or the site refused it, a retry on another proxy (see :mod:`.core.retry`), built by
Scrapy's own ``get_retry_request``.

A request's retries on other proxies are counted in ``meta['proxy_retry_times']``, apart from
``RetryMiddleware``'s ``retry_times``; their budget is ``PROXY_RETRY_TIMES``, or the request's
``meta['proxy_max_retry_times']``. When this module gives up it sets ``dont_retry``, so that
``RetryMiddleware`` does not retry the same failure again.
"""

from __future__ import annotations

import logging
import time
from functools import cache
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.downloadermiddlewares.stats import get_status_size

from .core.outcomes import Outcome, parse_retry_after
from .core.retry import GiveUp, decide_retry
from .meta import LAST_TRY, MAX_RETRIES, RETRIES, TIER_MIN, TRIED, WAIT
from .policy import BanDetected
from .stats import PREFIX

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.http import Headers, Response
    from scrapy.statscollectors import StatsCollector

    from .carriers import Carriers
    from .config import Config
    from .core.balancer import Balancer
    from .core.leases import Lease
    from .core.retry import Retry
    from .ledger import Ledger
    from .policy import SpiderPolicy

logger = logging.getLogger(__name__)
_ABSENT = object()
_SUCCESS = Outcome.SUCCESS


class Answers:
    def __init__(self, config: Config, balancer: Balancer, ledger: Ledger, carriers: Carriers,
                 stats: StatsCollector, policy: SpiderPolicy) -> None:
        self.config = config
        self.balancer = balancer
        self.ledger = ledger
        self.carriers = carriers
        self.stats = stats
        self.policy = policy  # the spider's, once it opens
        self.spider: Spider | None = None  # for get_retry_request, once it opens

    def on_response(self, request: Request, response: Response) -> Request | Response:
        lease = self.ledger.pop(request)
        if lease is None:
            return response
        if "cached" in response.flags:  # HttpCacheMiddleware answered: the proxy never saw it
            self.ledger.release(lease, Outcome.NEUTRAL)
            return response
        outcome = self.policy.response_outcome(request, response)
        retry_after = None
        if outcome is _SUCCESS:  # the common case: nothing to describe but the status
            ban_page = False
            reason, status = _status_words(response.status)
        else:
            ban_page = outcome is Outcome.BAN and 200 <= response.status < 300
            reason, status = self._described(response, outcome, ban_page)
            if outcome is Outcome.BAN or outcome is Outcome.RATE_LIMITED:
                retry_after = parse_retry_after(response.headers.get(b"Retry-After"), time.time())
        exit_header = lease.state.proxy.exit_header
        if exit_header:  # a rotating gateway names the exit it used
            lease.exit = (response.headers.get(exit_header) or b"").decode("latin-1").strip()[:64]
        outcome = self.ledger.release(lease, outcome, reason, request.meta.get("download_latency"), retry_after,
                                      status, nbytes=request_bytes(request) + response_bytes(response))
        if outcome is not _SUCCESS and outcome.retryable:
            retry = self._retry(request, lease, outcome, reason)
            if retry is not None:
                return retry
            if ban_page:  # never hand a ban page to the callback
                raise BanDetected(response, f"{reason} from {lease.proxy.label} for {request}")
        return response

    def _described(self, response: Response, outcome: Outcome, ban_page: bool) -> tuple[str, str]:
        """The answer's reason (as retry stats name it) and status (as reports show it): an
        anti-bot service's block page by the service's name."""
        block = self.policy.block_of(response) if outcome is Outcome.BAN else None
        if block is not None:
            self.stats.inc_value(f"{PREFIX}/blocks/{block}")
            return f"{block} page", f"{response.status} {block} page"
        if ban_page:
            return "ban page", f"{response.status} ban page"
        return _status_words(response.status)

    def on_exception(self, request: Request, exception: Exception) -> Request | None:
        lease = self.ledger.pop(request)
        if lease is None:
            return None
        carrier = self.carriers.of(request)
        reason = carrier.reason(exception)
        fault = carrier.fault(request, exception)
        if fault is None:  # a download path's exception we do not know: counted, so a user can report it
            self.stats.inc_value(f"{PREFIX}/exceptions/unknown/{reason}")
        outcome = self.policy.exception_outcome(request, exception, fault)
        outcome = self.ledger.release(lease, outcome, reason, nbytes=request_bytes(request))
        if outcome.retryable:
            return self._retry(request, lease, outcome, reason)
        return None

    def _retry(self, request: Request, lease: Lease, outcome: Outcome, reason: str) -> Request | None:
        """A copy of ``request`` for another proxy, or ``None`` with ``dont_retry`` set when it
        gives up."""
        meta = request.meta
        if meta.get("dont_retry"):
            return None
        region = meta.get("proxy_region") or self.config.region_for(lease.site)
        budget = meta.get(MAX_RETRIES)
        decision = decide_retry(
            proxy=lease.proxy.key, outcome=outcome, tried=meta.get(TRIED, ()), moves=meta.get(RETRIES, 0),
            had_last_try=bool(meta.get(LAST_TRY)), in_rotation=self.balancer.in_rotation,
            degraded=self.balancer.degraded(region), region_size=self.balancer.region_size[region],
            retry_times=self.config.rules.retry_times if budget is None else int(budget),
            sticky=lease.session is not None,
        )
        if isinstance(decision, GiveUp):
            meta["dont_retry"] = True  # RetryMiddleware must not retry it yet again
            short = reason.rsplit(".", 1)[-1]
            self._scrapy_retry(request, f"{short} through {lease.proxy.label}; {decision.reason}", give_up=True)
            return None
        retry = self._scrapy_retry(request, reason)
        assert retry is not None
        _carry(retry.meta, decision)
        if outcome is Outcome.BAN and lease.site_tier is not None:  # the waterfall: at once a tier up
            retry.meta[TIER_MIN] = max(retry.meta.get(TIER_MIN, 0), lease.proxy.tier + 1)
        if not decision.charged:
            self.stats.inc_value(f"{PREFIX}/retry/uncharged")
        return retry

    def _scrapy_retry(self, request: Request, reason: str, give_up: bool = False) -> Request | None:
        """Scrapy's ``get_retry_request`` (its copy, priority, stats under
        ``proxybalance/retry/`` and log lines), counting this module's retries instead of
        ``RetryMiddleware``'s."""
        meta = request.meta
        own: Any = meta.get("retry_times", _ABSENT)
        meta["retry_times"] = moves = meta.get(RETRIES, 0)
        try:
            retry = get_retry_request(request, spider=self.spider, reason=reason,  # type: ignore[arg-type]
                                      max_retry_times=moves if give_up else moves + 1, logger=logger,
                                      stats_base_key=f"{PREFIX}/retry")
        finally:
            _restore(meta, own)
        if retry is not None:
            retry.meta[RETRIES] = retry.meta["retry_times"]
            _restore(retry.meta, own)
        return retry


def request_bytes(request: Request) -> int:
    """The request's size on the wire to the proxy: its request line (with the absolute URL a
    proxy is sent), headers and body."""
    return len(request.method) + len(request.url) + 13 + header_size(request.headers) + 4 + len(request.body)


def response_bytes(response: Response) -> int:
    """The response's size as it came (before decompression): status line, headers, body."""
    return _status_size(response.status) + header_size(response.headers) + 4 + len(response.body)


def header_size(headers: Headers) -> int:
    """Scrapy's ``get_header_size`` (``Name: value`` lines and the line breaks between them),
    read off the stored lists: Scrapy's headers keep names and values as bytes already."""
    size = 2 * (len(headers) - 1)
    for key, values in dict.items(headers):
        size += (len(key) + 2) * len(values) + sum(map(len, values))
    return size


def _carry(meta: dict[str, Any], decision: Retry) -> None:
    meta[TRIED] = list(decision.tried)
    meta[RETRIES] = decision.moves
    if decision.last_try:
        meta[LAST_TRY] = True
    if decision.delay:
        meta[WAIT] = (decision.delay, False)


def _restore(meta: dict[str, Any], own: Any) -> None:
    if own is _ABSENT:
        meta.pop("retry_times", None)
    else:
        meta["retry_times"] = own


@cache
def _status_size(status: int) -> int:
    return get_status_size(status)


@cache  # a handful of statuses: each worked out once
def _status_words(status: int) -> tuple[str, str]:
    """A status as Scrapy's retry stats name it (``429 Too Many Requests``), and as reports
    show it (``429``)."""
    try:
        return f"{status} {HTTPStatus(status).phrase}", str(status)
    except ValueError:
        return str(status), str(status)
