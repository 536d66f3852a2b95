"""Every ``PROXY_*`` setting: its default (:data:`DEFAULTS`, in :mod:`.defaults`, the one place
defaults are written), read and validated once into a frozen :class:`Config`.

Each bad value raises :class:`ConfigError` with one line naming the setting and the value
(passwords masked). A setting set to ``None`` means its default. Numbers may be given as
numbers or as strings (``-s``, environment variables); ``nan``, infinities and absurd sizes
are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.blocks import BlockPages
from ..core.ejection import Backoff
from ..core.errors import ConfigError
from ..core.outcomes import PROXY_AUTH_REQUIRED
from ..core.proxy import Proxy
from ..core.rules import Rules
from ..core.sessions import SessionLimits
from ..core.strategies import Strategy
from ..core.tiers import closest
from .defaults import DEFAULTS
from .pool import domain_regions, namespace, pool_source, read_pool, state_url, tier_rules
from .values import (
    HTTP_URL,
    UNAVAILABLE_ACTIONS,
    ban_policy,
    block_pages,
    boolean,
    choice,
    number,
    optional_number,
    patterns,
    scheduler,
    statuses,
    strategy,
)
from .watching import REPORT_FIELD, HealthCheck, StatusSettings, report_file, status_server

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

__all__ = ["DEFAULTS", "HTTP_URL", "REPORT_FIELD", "Config", "ConfigError", "HealthCheck", "StatusSettings",
           "enabled", "scheduler_settings"]


@dataclass(frozen=True)
class Config:
    """The validated settings of one crawl."""

    pool: list[Proxy]
    pool_file: Path | None
    strategy: type[Strategy]
    rules: Rules
    ban_status_codes: frozenset[int]
    rate_limit_status_codes: frozenset[int]
    overload_status_codes: frozenset[int]
    ban_body_patterns: list[re.Pattern[str]]
    block_pages: BlockPages
    ban_policy: type
    trial_timeout: float
    unavailable_action: str
    max_waiting: int | None  # None: the scheduler decides (see scheduler.room_size)
    scheduler: type
    pool_reload_interval: float
    state_url: str
    state_namespace: str
    state_timeout: float
    domain_regions: dict[str, str]
    stats_interval: float
    stats_per_proxy: bool
    session_cookiejar: bool
    health_check: HealthCheck | None
    pool_source: str | Callable[[], Any] | None = None
    status: StatusSettings | None = None
    metrics_per_proxy: bool = False
    metrics_per_site: bool = False
    report_file: str | None = None
    playwright_max_contexts: int | None = None  # browser contexts at once per handler (None: PLAYWRIGHT_'s, or 16)

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Config:
        """Read every setting; raise :class:`ConfigError` naming the first bad one."""
        source = pool_source(settings)
        pool, pool_file = read_pool(settings, source)
        recovery = number(settings, "PROXY_RECOVERY_INTERVAL", positive=True)
        recovery_max = number(settings, "PROXY_RECOVERY_MAX_INTERVAL", positive=True)
        if recovery_max < recovery:
            raise ConfigError(
                f"PROXY_RECOVERY_MAX_INTERVAL ({recovery_max:g}) must be >= PROXY_RECOVERY_INTERVAL ({recovery:g})"
            )
        ban_cooldown = number(settings, "PROXY_BAN_COOLDOWN")
        ban_max = number(settings, "PROXY_BAN_MAX_COOLDOWN")
        cooldown = number(settings, "PROXY_DOMAIN_COOLDOWN")
        cooldown_max = number(settings, "PROXY_DOMAIN_COOLDOWN_MAX", positive=True)
        if any(p.username for p in pool) and not settings.getbool("HTTPPROXY_ENABLED", True):
            raise ConfigError(
                "PROXY_POOL has proxies with credentials, but HTTPPROXY_ENABLED is False: Scrapy's"
                " HttpProxyMiddleware is what sends them; enable it"
            )
        download_delay = max(0.0, settings.getfloat("DOWNLOAD_DELAY"))
        codes = {name: statuses(settings, name) for name in
                    ("PROXY_BAN_STATUS_CODES", "PROXY_RATE_LIMIT_STATUS_CODES", "PROXY_OVERLOAD_STATUS_CODES")}
        return cls(
            pool=pool,
            pool_file=pool_file,
            strategy=strategy(settings),
            rules=Rules(
                cooldown=max(cooldown, download_delay),
                cooldown_max=max(cooldown_max, cooldown, download_delay),
                pace_floor=download_delay if boolean(settings, "PROXY_PACE_BELOW_COOLDOWN")
                else max(cooldown, download_delay),
                pair_limit=max(0, settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN")),
                max_failures=number(settings, "PROXY_MAX_FAILURES", integer=True, positive=True),
                backoff=Backoff(recovery, recovery_max),
                ban_backoff=Backoff(ban_cooldown, max(ban_cooldown, ban_max)),
                retry_after_max=number(settings, "PROXY_RETRY_AFTER_MAX"),
                max_banned_sites=number(settings, "PROXY_MAX_BANNED_SITES", integer=True),
                retry_times=number(settings, "PROXY_RETRY_TIMES", integer=True),
                unavailable_timeout=number(settings, "PROXY_UNAVAILABLE_TIMEOUT"),
                sessions=SessionLimits(
                    max_age=number(settings, "PROXY_SESSION_MAX_AGE"),
                    max_requests=number(settings, "PROXY_SESSION_MAX_REQUESTS", integer=True),
                    max_errors=number(settings, "PROXY_SESSION_MAX_ERRORS", integer=True),
                ),
                tiers=tier_rules(settings),
            ),
            session_cookiejar=boolean(settings, "PROXY_SESSION_COOKIEJAR"),
            ban_status_codes=codes["PROXY_BAN_STATUS_CODES"] - {PROXY_AUTH_REQUIRED},
            rate_limit_status_codes=codes["PROXY_RATE_LIMIT_STATUS_CODES"],
            overload_status_codes=codes["PROXY_OVERLOAD_STATUS_CODES"],
            ban_body_patterns=patterns(settings, "PROXY_BAN_BODY_PATTERNS"),
            block_pages=block_pages(settings),
            ban_policy=ban_policy(settings),
            trial_timeout=number(settings, "PROXY_TRIAL_TIMEOUT"),
            unavailable_action=choice(settings, "PROXY_UNAVAILABLE_ACTION", UNAVAILABLE_ACTIONS),
            max_waiting=optional_number(settings, "PROXY_MAX_WAITING", integer=True, positive=True),
            scheduler=scheduler(settings),
            pool_reload_interval=number(settings, "PROXY_POOL_RELOAD_INTERVAL"),
            state_url=state_url(settings),
            state_namespace=namespace(settings),
            state_timeout=number(settings, "PROXY_STATE_TIMEOUT", positive=True, largest=60),
            domain_regions=domain_regions(settings, pool, sourced=source is not None),
            stats_interval=number(settings, "PROXY_STATS_INTERVAL"),
            stats_per_proxy=boolean(settings, "PROXY_STATS_PER_PROXY"),
            health_check=HealthCheck.from_settings(settings),
            pool_source=source,
            status=status_server(settings),
            metrics_per_proxy=boolean(settings, "PROXY_METRICS_PER_PROXY"),
            metrics_per_site=boolean(settings, "PROXY_METRICS_PER_SITE"),
            report_file=report_file(settings),
            playwright_max_contexts=optional_number(settings, "PROXY_PLAYWRIGHT_MAX_CONTEXTS", integer=True,
                                                    positive=True, largest=10_000),
        )

    def region_for(self, hostname: str) -> str | None:
        """The region ``PROXY_DOMAIN_REGIONS`` gives a host or its closest parent domain."""
        return closest(self.domain_regions, hostname)  # type: ignore[return-value]


def scheduler_settings(settings: BaseSettings) -> tuple[type, int | None]:
    """``PROXY_SCHEDULER`` and ``PROXY_MAX_WAITING`` (``None``: the scheduler's default), for
    the scheduler (read also when the middleware is off)."""
    return scheduler(settings), optional_number(settings, "PROXY_MAX_WAITING", integer=True, positive=True)


def enabled(settings: BaseSettings) -> bool:
    """``PROXY_ENABLED``, checked like every other setting."""
    return boolean(settings, "PROXY_ENABLED")
