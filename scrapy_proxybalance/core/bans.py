"""Outcomes of a request and the policy that tells them apart."""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any


class Outcome(Enum):
    SUCCESS = "success"  # the proxy delivered an answer
    FAILURE = "failure"  # the proxy's fault: hurts its global health
    BAN = "ban"  # the site refused this proxy: hurts only the (proxy, site) pair
    NEUTRAL = "neutral"  # no verdict on the proxy (cancelled, ignored, dropped)

    @property
    def retryable(self) -> bool:
        return self in (Outcome.FAILURE, Outcome.BAN)


PROXY_AUTH_REQUIRED = 407  # the proxy itself refused us: its failure, not a site's ban
BODY_SCAN_BYTES = 16384  # body patterns are searched in this much of the body only


class BanPolicy:
    """Decides whose fault a response or an exception was.

    - a status in ``ban_statuses`` is a ban (this site refused this proxy), except 407,
      which is the proxy's own refusal: a failure;
    - a 2xx whose first ``BODY_SCAN_BYTES`` match one of ``body_patterns`` (regexes, e.g. a
      captcha page served with status 200) is a ban;
    - any other response is the site's own answer, which the proxy delivered: a success
      for the proxy (a real 404 or 500 does not punish it);
    - an exception of one of the ``failures`` types (connection refused, timeouts, ...) is
      a failure of the proxy; any other exception is neutral.

    Responses and requests are duck-typed (``status``, ``body``), so this core module needs
    no Scrapy. Subclass it and set ``PROXY_BAN_POLICY`` to change the rules.
    """

    def __init__(
        self,
        ban_statuses: Iterable[int] = (403, 407, 429, 503),
        body_patterns: Iterable[str | re.Pattern[str]] = (),
        failures: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.ban_statuses = frozenset(ban_statuses)
        self.body_patterns = [re.compile(p) if isinstance(p, str) else p for p in body_patterns]
        self.failures = failures

    def response_outcome(self, request: Any, response: Any) -> Outcome:
        status = response.status
        if status in self.ban_statuses:
            return Outcome.FAILURE if status == PROXY_AUTH_REQUIRED else Outcome.BAN
        if self.body_patterns and 200 <= status < 300 and self.body_is_ban(response.body):
            return Outcome.BAN
        return Outcome.SUCCESS

    def body_is_ban(self, body: bytes) -> bool:
        head = body[:BODY_SCAN_BYTES].decode("utf-8", "replace")
        return any(p.search(head) for p in self.body_patterns)

    def exception_outcome(self, request: Any, exception: BaseException) -> Outcome:
        return Outcome.FAILURE if isinstance(exception, self.failures) else Outcome.NEUTRAL


def parse_retry_after(value: bytes | str | None, now_epoch: float) -> float | None:
    """Seconds asked by a ``Retry-After`` header (delta-seconds or HTTP-date), or ``None``."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_epoch)
