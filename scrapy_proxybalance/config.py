"""Every ``PROXY_*`` setting, read and validated once into a frozen :class:`Config`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.utils.misc import load_object

from .core.errors import ConfigError
from .core.bans import BanPolicy
from .core.proxy import Proxy, load_pool, mask
from .core.strategies import STRATEGIES, Strategy

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

DEFAULTS: dict[str, Any] = {
    "PROXY_ENABLED": True,
    "PROXY_POOL": [],
    "PROXY_STRATEGY": "weighted_random",
    "PROXY_DOMAIN_COOLDOWN": 1.0,
    "PROXY_MAX_FAILURES": 3,
    "PROXY_RECOVERY_INTERVAL": 60.0,
    "PROXY_RECOVERY_MAX_INTERVAL": 1800.0,
    "PROXY_RETRY_TIMES": 3,
    "PROXY_BAN_STATUS_CODES": [403, 407, 429, 503],
    "PROXY_BAN_COOLDOWN": 60.0,
    "PROXY_BAN_BODY_PATTERNS": [],
    "PROXY_BAN_POLICY": "scrapy_proxybalance.BanPolicy",
    "PROXY_MAX_BANNED_SITES": 3,
    "PROXY_TRIAL_TIMEOUT": 30.0,
    "PROXY_UNAVAILABLE_TIMEOUT": 600.0,
    "PROXY_UNAVAILABLE_ACTION": "close",
    "PROXY_POOL_RELOAD_INTERVAL": 5.0,
    "PROXY_DOMAIN_REGIONS": {},
    "PROXY_STATS_INTERVAL": 60.0,
    "PROXY_HEALTH_CHECK_URL": None,
    "PROXY_HEALTH_CHECK_INTERVAL": 30.0,
    "PROXY_HEALTH_CHECK_STATUS": [200],
    "PROXY_HEALTH_CHECK_BODY": None,
    "PROXY_HEALTH_CHECK_TIMEOUT": 10.0,
    "PROXY_HEALTH_CHECK_CONCURRENCY": 8,
    "PROXY_HEALTH_CHECK_RISE": 1,
    "PROXY_HEALTH_CHECK_FALL": 3,
}
UNAVAILABLE_ACTIONS = ("close", "fail")


def _get(settings: BaseSettings, name: str) -> Any:
    value = settings.get(name)
    return DEFAULTS[name] if value is None else value


def _number(settings: BaseSettings, name: str, *, integer: bool = False, positive: bool = False) -> Any:
    value = _get(settings, name)
    kind = int if integer else float
    try:
        if isinstance(value, bool) or (integer and isinstance(value, float)):
            raise ValueError
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be {'a whole' if integer else 'a'} number, got {value!r}") from None
    if number < 0 or (positive and number == 0):
        raise ConfigError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return number


def _strategy(settings: BaseSettings) -> type[Strategy]:
    value = _get(settings, "PROXY_STRATEGY")
    if isinstance(value, type) and issubclass(value, Strategy):
        return value
    if not isinstance(value, str):
        raise ConfigError(f"PROXY_STRATEGY must be a name or a dotted path, got {value!r}")
    if value in STRATEGIES:
        return STRATEGIES[value]
    if "." not in value:
        raise ConfigError(
            f"PROXY_STRATEGY: unknown strategy {value!r}; choose one of {sorted(STRATEGIES)}"
            " or give the dotted path of a Strategy subclass"
        )
    try:
        cls = load_object(value)
    except (ImportError, AttributeError, ValueError, NameError) as exc:
        raise ConfigError(f"PROXY_STRATEGY: cannot load {value!r}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(f"PROXY_STRATEGY: {value!r} is not a subclass of scrapy_proxybalance.Strategy")
    return cls


def _statuses(settings: BaseSettings, name: str = "PROXY_BAN_STATUS_CODES") -> frozenset[int]:
    value = _get(settings, name)
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    try:
        codes = frozenset(int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a list of HTTP status codes, got {value!r}") from None
    if any(not 100 <= c <= 599 for c in codes):
        raise ConfigError(f"{name} must hold statuses 100-599, got {sorted(codes)}")
    return codes


def _body_patterns(settings: BaseSettings) -> list[re.Pattern[str]]:
    value = _get(settings, "PROXY_BAN_BODY_PATTERNS")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ConfigError(f"PROXY_BAN_BODY_PATTERNS must be a list of regular expressions, got {value!r}")
    patterns = []
    for pattern in value:
        try:
            patterns.append(re.compile(pattern))
        except (re.error, TypeError) as exc:
            raise ConfigError(f"PROXY_BAN_BODY_PATTERNS: {pattern!r} is not a valid regular expression: {exc}") from None
    return patterns


def _ban_policy(settings: BaseSettings) -> type:
    value = _get(settings, "PROXY_BAN_POLICY")
    try:
        cls = load_object(value) if isinstance(value, str) else value
    except (ImportError, AttributeError, ValueError, NameError) as exc:
        raise ConfigError(f"PROXY_BAN_POLICY: cannot load {value!r}: {exc}") from None
    if not isinstance(cls, type) or not all(
        callable(getattr(cls, name, None)) for name in ("response_outcome", "exception_outcome")
    ):
        raise ConfigError(
            f"PROXY_BAN_POLICY: {value!r} is not a class with response_outcome() and exception_outcome()"
            " (subclass scrapy_proxybalance.BanPolicy)"
        )
    return cls


def _choice(settings: BaseSettings, name: str, choices: tuple[str, ...]) -> str:
    value = _get(settings, name)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def _pool_file(value: object) -> Path | None:
    """The file ``PROXY_POOL`` names, if it names one (then it is re-read when it changes)."""
    if isinstance(value, Path):
        return value
    if isinstance(value, str) and value.strip() and "://" not in value:
        return Path(value)
    return None


def _domain_regions(settings: BaseSettings, pool: list[Proxy]) -> dict[str, str]:
    value = _get(settings, "PROXY_DOMAIN_REGIONS")
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConfigError(f"PROXY_DOMAIN_REGIONS must map domain names to region names, got {value!r}")
    regions = {p.region for p in pool if p.region}
    for domain, region in value.items():
        if region not in regions:
            raise ConfigError(
                f"PROXY_DOMAIN_REGIONS maps {domain!r} to region {region!r}, but no proxy of"
                f" PROXY_POOL has that region (regions: {sorted(regions)})"
            )
    return {k.lower().lstrip("."): v for k, v in value.items()}


@dataclass(frozen=True)
class HealthCheck:
    """How to check a proxy actively: fetch ``url`` through it, expect one of ``statuses``
    (and ``body`` to match, if given) within ``timeout``."""

    url: str
    statuses: frozenset[int] = frozenset({200})
    body: re.Pattern[str] | None = None
    timeout: float = 10.0
    concurrency: int = 8
    interval: float = 30.0
    rise: int = 1
    fall: int = 3

    @classmethod
    def from_settings(cls, settings: BaseSettings, url: str | None = None) -> HealthCheck | None:
        """The ``PROXY_HEALTH_CHECK_*`` settings, or ``None`` when no URL is set."""
        url = url or _get(settings, "PROXY_HEALTH_CHECK_URL")
        if not url:
            return None
        if not isinstance(url, str) or not re.match(r"https?://[^/\s]+", url):
            raise ConfigError(f"PROXY_HEALTH_CHECK_URL must be an http(s) URL, got {mask(repr(url))}")
        body = _get(settings, "PROXY_HEALTH_CHECK_BODY")
        try:
            pattern = re.compile(body) if body else None
        except (re.error, TypeError) as exc:
            raise ConfigError(f"PROXY_HEALTH_CHECK_BODY: {body!r} is not a valid regular expression: {exc}") from None
        return cls(
            url=url,
            statuses=_statuses(settings, "PROXY_HEALTH_CHECK_STATUS"),
            body=pattern,
            timeout=_number(settings, "PROXY_HEALTH_CHECK_TIMEOUT", positive=True),
            concurrency=_number(settings, "PROXY_HEALTH_CHECK_CONCURRENCY", integer=True, positive=True),
            interval=_number(settings, "PROXY_HEALTH_CHECK_INTERVAL", positive=True),
            rise=_number(settings, "PROXY_HEALTH_CHECK_RISE", integer=True, positive=True),
            fall=_number(settings, "PROXY_HEALTH_CHECK_FALL", integer=True, positive=True),
        )


@dataclass(frozen=True)
class Config:
    """The validated settings of one crawl."""

    pool: list[Proxy]
    strategy: type[Strategy]
    domain_cooldown: float
    max_failures: int
    recovery_interval: float
    recovery_max_interval: float
    retry_times: int
    ban_status_codes: frozenset[int]
    ban_cooldown: float
    domain_regions: dict[str, str] = field(default_factory=dict)
    stats_interval: float = 60.0
    ban_body_patterns: list[re.Pattern[str]] = field(default_factory=list)
    ban_policy: type = BanPolicy
    max_banned_sites: int = 3
    trial_timeout: float = 30.0
    unavailable_timeout: float = 600.0
    unavailable_action: str = "close"
    pool_file: Path | None = None
    pool_reload_interval: float = 5.0
    health_check: HealthCheck | None = None

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Config:
        """Read every setting; raise :class:`ConfigError` naming the first bad one."""
        pool_value = _get(settings, "PROXY_POOL")
        pool_file = _pool_file(pool_value)
        pool = load_pool(pool_value)
        if not pool:
            what = f"the file {str(pool_file)!r} lists no proxies" if pool_file else f"is empty ({mask(repr(pool_value))})"
            raise ConfigError(
                f"PROXY_POOL {what} while scrapy-proxybalance is enabled; list proxies, or set PROXY_ENABLED = False"
            )
        recovery = _number(settings, "PROXY_RECOVERY_INTERVAL", positive=True)
        recovery_max = _number(settings, "PROXY_RECOVERY_MAX_INTERVAL", positive=True)
        if recovery_max < recovery:
            raise ConfigError(
                f"PROXY_RECOVERY_MAX_INTERVAL ({recovery_max}) must be >= PROXY_RECOVERY_INTERVAL ({recovery})"
            )
        if any(p.username for p in pool) and not settings.getbool("HTTPPROXY_ENABLED", True):
            raise ConfigError(
                "PROXY_POOL has proxies with credentials, but HTTPPROXY_ENABLED is False: Scrapy's"
                " HttpProxyMiddleware is what sends them; enable it"
            )
        return cls(
            pool=pool,
            strategy=_strategy(settings),
            domain_cooldown=_number(settings, "PROXY_DOMAIN_COOLDOWN"),
            max_failures=_number(settings, "PROXY_MAX_FAILURES", integer=True, positive=True),
            recovery_interval=recovery,
            recovery_max_interval=recovery_max,
            retry_times=_number(settings, "PROXY_RETRY_TIMES", integer=True),
            ban_status_codes=_statuses(settings),
            ban_cooldown=_number(settings, "PROXY_BAN_COOLDOWN"),
            domain_regions=_domain_regions(settings, pool),
            stats_interval=_number(settings, "PROXY_STATS_INTERVAL"),
            ban_body_patterns=_body_patterns(settings),
            ban_policy=_ban_policy(settings),
            max_banned_sites=_number(settings, "PROXY_MAX_BANNED_SITES", integer=True),
            trial_timeout=_number(settings, "PROXY_TRIAL_TIMEOUT"),
            unavailable_timeout=_number(settings, "PROXY_UNAVAILABLE_TIMEOUT"),
            unavailable_action=_choice(settings, "PROXY_UNAVAILABLE_ACTION", UNAVAILABLE_ACTIONS),
            pool_file=pool_file,
            pool_reload_interval=_number(settings, "PROXY_POOL_RELOAD_INTERVAL"),
            health_check=HealthCheck.from_settings(settings),
        )

    def region_for(self, hostname: str) -> str | None:
        """The region ``PROXY_DOMAIN_REGIONS`` gives a host or its closest parent domain."""
        if not self.domain_regions:
            return None
        labels = hostname.lower().split(".")
        for i in range(len(labels)):
            region = self.domain_regions.get(".".join(labels[i:]))
            if region is not None:
                return region
        return None
