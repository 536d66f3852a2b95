"""Outcomes of a request and the policy that tells them apart."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any

from .blocks import BlockPages
from .bodies import BODY_SCAN_BYTES, decoded_head


class Outcome(Enum):
    SUCCESS = "success"  # the proxy delivered an answer (a site's own 404 or 500 included)
    FAILURE = "failure"  # the proxy's fault: hurts its health, may eject it
    BAN = "ban"  # the site refused this proxy: hurts only the (proxy, site) pair
    RATE_LIMITED = "rate_limited"  # the site wants this proxy to slow down there: a pause, not a ban
    OVERLOADED = "overloaded"  # the proxy (or the site) is full: lower the proxy's concurrency
    NEUTRAL = "neutral"  # no verdict on the proxy (cancelled, ignored, dropped)

    @property
    def retryable(self) -> bool:
        """Whether the request is retried on another proxy."""
        return self in (Outcome.FAILURE, Outcome.BAN, Outcome.RATE_LIMITED, Outcome.OVERLOADED)

    @property
    def charged(self) -> bool:
        """Whether a retry after it counts against the request's ``PROXY_RETRY_TIMES``: a pause
        or a full proxy says nothing about the request."""
        return self in (Outcome.FAILURE, Outcome.BAN)


PROXY_AUTH_REQUIRED = 407  # the proxy itself refused us: its failure, never a site's answer
BAN_STATUSES = frozenset({403})  # the defaults of PROXY_BAN_STATUS_CODES,
RATE_LIMIT_STATUSES = frozenset({429})  # PROXY_RATE_LIMIT_STATUS_CODES
OVERLOAD_STATUSES = frozenset({503})  # and PROXY_OVERLOAD_STATUS_CODES


class BanPolicy:
    """Decides whose fault a response or an exception was. For a response, in this order:

    - ``407``: the proxy refused us, a failure;
    - a status in ``ban_statuses``: a ban (this site refused this proxy);
    - a status in ``rate_limit_statuses`` (``429``), or in ``overload_statuses`` with a
      ``Retry-After``: rate limited (that proxy pauses on that site, the site's pace slows);
    - a status in ``overload_statuses`` (``503``): overloaded (the proxy's concurrency limit
      falls; the balancer treats it as the site's own answer if the proxy had nothing else
      in flight);
    - a 2xx whose first ``BODY_SCAN_BYTES`` match one of ``body_patterns`` (a captcha page
      served with status 200), or any response that is the block or challenge page of one of
      the ``blocks`` presets (Cloudflare, DataDome, ...: see :mod:`.blocks`): a ban;
    - anything else is the site's own answer, delivered: a success for the proxy.

    An exception of one of the ``failures`` types (connection refused, timeouts, ...) is a
    failure; any other is neutral. Responses are duck-typed (``status``, ``headers``,
    ``body``), so this core module needs no Scrapy. Subclass it and set
    ``PROXY_BAN_POLICY`` to change the rules; a status listed in ``ban_statuses`` wins.
    """

    def __init__(
        self,
        ban_statuses: Iterable[int] = BAN_STATUSES,
        body_patterns: Iterable[str | re.Pattern[str]] = (),
        failures: tuple[type[BaseException], ...] = (),
        rate_limit_statuses: Iterable[int] = RATE_LIMIT_STATUSES,
        overload_statuses: Iterable[int] = OVERLOAD_STATUSES,
        blocks: BlockPages | None = None,
    ) -> None:
        self.ban_statuses = frozenset(ban_statuses)
        self.rate_limit_statuses = frozenset(rate_limit_statuses)
        self.overload_statuses = frozenset(overload_statuses)
        self.body_patterns = [re.compile(p) if isinstance(p, str) else p for p in body_patterns]
        self.failures = failures
        self.blocks = blocks if blocks else None  # (no presets: nothing to match)

    def response_outcome(self, request: Any, response: Any) -> Outcome:
        status = response.status
        if status == PROXY_AUTH_REQUIRED:
            return Outcome.FAILURE
        if status in self.ban_statuses or (self.blocks is not None and self.blocks.match(response)):
            return Outcome.BAN
        if status in self.rate_limit_statuses:
            return Outcome.RATE_LIMITED
        if status in self.overload_statuses:
            asked = getattr(response, "headers", {}).get(b"Retry-After")
            return Outcome.RATE_LIMITED if asked else Outcome.OVERLOADED
        if self.body_patterns and 200 <= status < 300 and self.body_is_ban(decoded_head(response)):
            return Outcome.BAN
        return Outcome.SUCCESS

    def block_of(self, response: Any) -> str | None:
        """The anti-bot service whose block page ``response`` is (``None``: none known)."""
        return self.blocks.match(response) if self.blocks is not None else None

    def body_is_ban(self, body: bytes) -> bool:
        head = body[:BODY_SCAN_BYTES].decode("utf-8", "replace")
        return any(p.search(head) for p in self.body_patterns)

    def exception_outcome(self, request: Any, exception: BaseException) -> Outcome:
        return Outcome.FAILURE if isinstance(exception, self.failures) else Outcome.NEUTRAL


def parse_retry_after(value: bytes | str | None, now_epoch: float) -> float | None:
    """Seconds asked by a ``Retry-After`` header (delta-seconds or HTTP-date), or ``None``."""
    if not value:
        return None
    text = (value.decode("latin-1") if isinstance(value, bytes) else value).strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_epoch)
