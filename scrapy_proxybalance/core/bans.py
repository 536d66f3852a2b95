"""Outcomes of a request and the policy that tells them apart."""

from __future__ import annotations

from collections.abc import Iterable
from email.utils import parsedate_to_datetime
from enum import Enum


class Outcome(Enum):
    SUCCESS = "success"  # the proxy delivered an answer
    FAILURE = "failure"  # the proxy's fault: hurts its global health
    BAN = "ban"  # the site refused this proxy: hurts only the (proxy, site) pair
    NEUTRAL = "neutral"  # no verdict on the proxy (cancelled, ignored, dropped)

    @property
    def retryable(self) -> bool:
        return self in (Outcome.FAILURE, Outcome.BAN)


PROXY_AUTH_REQUIRED = 407  # the proxy itself refused us: its failure, not a site's ban


class BanPolicy:
    """Classifies a response status: ban statuses are bans (407 a failure of the proxy);
    everything else is the site's own answer, which the proxy delivered."""

    def __init__(self, ban_statuses: Iterable[int]) -> None:
        self.ban_statuses = frozenset(ban_statuses)

    def response_outcome(self, status: int) -> Outcome:
        if status in self.ban_statuses:
            return Outcome.FAILURE if status == PROXY_AUTH_REQUIRED else Outcome.BAN
        return Outcome.SUCCESS


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
