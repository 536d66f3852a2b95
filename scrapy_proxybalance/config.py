"""Every ``PROXY_*`` setting: its default (:data:`DEFAULTS`, the one place defaults are written),
read and validated once into a frozen :class:`Config`.

Each bad value raises :class:`ConfigError` with one line naming the setting and the value
(passwords masked). A setting set to ``None`` means its default. Numbers may be given as
numbers or as strings (``-s``, environment variables); ``nan``, infinities and absurd sizes
are refused.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.utils.misc import load_object

from .core.ejection import Backoff
from .core.errors import ConfigError, InvalidProxy
from .core.outcomes import BAN_STATUSES, OVERLOAD_STATUSES, PROXY_AUTH_REQUIRED, RATE_LIMIT_STATUSES
from .core.proxy import Proxy, describe, load_pool, mask
from .core.rules import Rules
from .core.sessions import SessionLimits
from .core.strategies import STRATEGIES, Strategy
from .sources import mask_source
from .stores import MissingDependency, UnknownScheme, schemes, store_class

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

DEFAULTS: dict[str, Any] = {
    "PROXY_ENABLED": True,
    "PROXY_POOL": [],
    "PROXY_STRATEGY": "weighted_random",
    "PROXY_DOMAIN_COOLDOWN": 1.0,
    "PROXY_DOMAIN_COOLDOWN_MAX": 60.0,
    "PROXY_MAX_FAILURES": 3,
    "PROXY_RECOVERY_INTERVAL": 60.0,
    "PROXY_RECOVERY_MAX_INTERVAL": 1800.0,
    "PROXY_RETRY_TIMES": 3,
    "PROXY_BAN_STATUS_CODES": sorted(BAN_STATUSES),
    "PROXY_RATE_LIMIT_STATUS_CODES": sorted(RATE_LIMIT_STATUSES),
    "PROXY_OVERLOAD_STATUS_CODES": sorted(OVERLOAD_STATUSES),
    "PROXY_BAN_COOLDOWN": 60.0,
    "PROXY_BAN_MAX_COOLDOWN": 1800.0,
    "PROXY_RETRY_AFTER_MAX": 1800.0,
    "PROXY_BAN_BODY_PATTERNS": [],
    "PROXY_BAN_POLICY": "scrapy_proxybalance.BanPolicy",
    "PROXY_MAX_BANNED_SITES": 3,
    "PROXY_TRIAL_TIMEOUT": 30.0,
    "PROXY_UNAVAILABLE_TIMEOUT": 600.0,
    "PROXY_UNAVAILABLE_ACTION": "close",
    "PROXY_MAX_WAITING": 1000,
    "PROXY_SCHEDULER": "scrapy.core.scheduler.Scheduler",
    "PROXY_POOL_RELOAD_INTERVAL": 5.0,
    "PROXY_SESSION_MAX_AGE": 3000.0,
    "PROXY_SESSION_MAX_REQUESTS": 0,
    "PROXY_SESSION_MAX_ERRORS": 3,
    "PROXY_SESSION_COOKIEJAR": True,
    "PROXY_STATE_URL": "memory://",
    "PROXY_STATE_NAMESPACE": "proxybalance",
    "PROXY_STATE_TIMEOUT": 0.5,
    "PROXY_DOMAIN_REGIONS": {},
    "PROXY_STATS_INTERVAL": 60.0,
    "PROXY_STATS_PER_PROXY": False,
    "PROXY_HEALTH_CHECK_URL": None,
    "PROXY_HEALTH_CHECK_INTERVAL": 30.0,
    "PROXY_HEALTH_CHECK_STATUS": [200],
    "PROXY_HEALTH_CHECK_BODY": None,
    "PROXY_HEALTH_CHECK_TIMEOUT": 10.0,
    "PROXY_HEALTH_CHECK_CONCURRENCY": 8,
    "PROXY_HEALTH_CHECK_RISE": 1,
    "PROXY_HEALTH_CHECK_FALL": 3,
    "PROXY_POOL_SOURCE": None,
    "PROXY_STATUS_ADDRESS": None,
    "PROXY_STATUS_TOKEN": None,
    "PROXY_STATUS_ACTIONS": False,
    "PROXY_METRICS_PER_PROXY": False,
    "PROXY_METRICS_PER_SITE": False,
    "PROXY_REPORT_FILE": None,
}
UNAVAILABLE_ACTIONS = ("close", "fail")
HTTP_URL = re.compile(r"(?i)https?://[^/\s?#]+(?:[/?#]\S*)?$")  # a source's or a check's URL
MAX_SECONDS = 365 * 86400.0  # no duration setting may exceed a year
MAX_COUNT = 1_000_000  # nor a count a million


def _get(settings: BaseSettings, name: str) -> Any:
    value = settings.get(name)
    return DEFAULTS[name] if value is None else value


def _shown(value: object) -> str:
    """A setting's value as a message may show it: URLs masked, long values cut."""
    text = describe(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _number(settings: BaseSettings, name: str, *, integer: bool = False, positive: bool = False,
            largest: float | None = None) -> Any:
    """A finite number >= 0 (> 0 with ``positive``), at most ``largest`` (a year of seconds,
    or a million for counts); strings are read as numbers."""
    value = _get(settings, name)
    kind = "a whole number" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{name} must be {kind}, got {_shown(value)}")
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be {kind}, got {_shown(value)}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{name} must be a finite number, got {_shown(value)}")
    if integer and number != int(number):
        raise ConfigError(f"{name} must be {kind}, got {_shown(value)}")
    if number < 0 or (positive and number == 0):
        raise ConfigError(f"{name} must be {'> 0' if positive else '>= 0'}, got {_shown(value)}")
    largest = largest if largest is not None else (MAX_COUNT if integer else MAX_SECONDS)
    if number > largest:
        raise ConfigError(f"{name} must be at most {largest:,.0f}, got {_shown(value)}")
    return int(number) if integer else number


def _bool(settings: BaseSettings, name: str) -> bool:
    """A boolean as Scrapy's ``getbool`` reads it (``True``/``False``, ``1``/``0``, their strings,
    ``'true'``/``'false'``)."""
    value = _get(settings, name)
    try:
        return settings.getbool(name, value) if settings.get(name) is not None else bool(value)
    except (ValueError, TypeError):
        raise ConfigError(f"{name} must be True or False (or 1/0, 'true'/'false'), got {_shown(value)}") from None


def _class(settings: BaseSettings, name: str, check: Callable[[object], bool], what: str) -> Any:
    """A class given as itself or as a dotted path; ``check`` says whether it is the right kind."""
    value = _get(settings, name)
    if isinstance(value, str):
        try:
            value = load_object(value)
        except (ImportError, AttributeError, ValueError, NameError, TypeError) as exc:
            why = " ".join(str(exc).replace(value, "it").split())[:160]  # one line, the value shown once, masked
            raise ConfigError(f"{name}: cannot load {_shown(value)}: {mask(why)}") from None
    if not check(value):
        raise ConfigError(f"{name}: {_shown(_get(settings, name))} is not {what}")
    return value


def _strategy(settings: BaseSettings) -> type[Strategy]:
    value = _get(settings, "PROXY_STRATEGY")
    if isinstance(value, str) and value in STRATEGIES:
        return STRATEGIES[value]
    if isinstance(value, str) and "." not in value:
        raise ConfigError(
            f"PROXY_STRATEGY: unknown strategy {_shown(value)}; choose one of {sorted(STRATEGIES)}"
            " or give the dotted path of a Strategy subclass"
        )
    if not isinstance(value, str | type):
        raise ConfigError(f"PROXY_STRATEGY must be a name or a dotted path, got {_shown(value)}")
    return _class(
        settings, "PROXY_STRATEGY",
        lambda c: isinstance(c, type) and issubclass(c, Strategy) and not getattr(c, "__abstractmethods__", None),
        "a concrete subclass of scrapy_proxybalance.Strategy",
    )


def _statuses(settings: BaseSettings, name: str) -> frozenset[int]:
    value = _get(settings, name)
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    elif isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    try:
        if not isinstance(value, list | tuple | set | frozenset):
            raise TypeError
        codes = frozenset(_status(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a list of HTTP status codes, got {_shown(value)}") from None
    if any(not 100 <= c <= 599 for c in codes):
        raise ConfigError(f"{name} must hold statuses 100-599, got {sorted(codes)}")
    return codes


def _status(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError
    return int(value)


def _patterns(settings: BaseSettings, name: str) -> list[re.Pattern[str]]:
    value = _get(settings, name)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{name} must be a list of regular expressions, got {_shown(value)}")
    patterns = []
    for pattern in value:
        try:
            patterns.append(re.compile(pattern))
        except (re.error, TypeError) as exc:
            raise ConfigError(f"{name}: {_shown(pattern)} is not a valid regular expression: {exc}") from None
    return patterns


def _ban_policy(settings: BaseSettings) -> type:
    return _class(
        settings, "PROXY_BAN_POLICY",
        lambda c: isinstance(c, type) and all(callable(getattr(c, m, None))
                                              for m in ("response_outcome", "exception_outcome")),
        "a class with response_outcome() and exception_outcome() (subclass scrapy_proxybalance.BanPolicy)",
    )


def _scheduler(settings: BaseSettings) -> type:
    return _class(
        settings, "PROXY_SCHEDULER",
        lambda c: isinstance(c, type)
        and all(callable(getattr(c, m, None)) for m in ("enqueue_request", "next_request", "has_pending_requests")),
        "a scheduler class (enqueue_request, next_request, has_pending_requests)",
    )


def _choice(settings: BaseSettings, name: str, choices: tuple[str, ...]) -> str:
    value = _get(settings, name)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {list(choices)}, got {_shown(value)}")
    return value


def _pool(settings: BaseSettings, source: object = None) -> tuple[list[Proxy], Path | None]:
    """``PROXY_POOL``; it may be empty only when ``PROXY_POOL_SOURCE`` gives the proxies."""
    value = _get(settings, "PROXY_POOL")
    try:
        pool, path = load_pool(value)
    except InvalidProxy as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith("PROXY_POOL") else f"PROXY_POOL: {message}") from None
    if not pool and source is None:
        what = f"the file {str(path)!r} lists no proxies" if path else f"is empty ({_shown(value)})"
        raise ConfigError(
            f"PROXY_POOL {what} while scrapy-proxybalance is enabled; list proxies (or set PROXY_POOL_SOURCE),"
            " or set PROXY_ENABLED = False"
        )
    encoding = settings.get("HTTPPROXY_AUTH_ENCODING") or "latin-1"
    for proxy in pool:
        if proxy.username:
            try:
                f"{proxy.username}:{proxy.password}".encode(encoding)
            except (UnicodeEncodeError, LookupError):
                raise ConfigError(
                    f"PROXY_POOL: the credentials of {proxy} cannot be encoded as {encoding!r}"
                    " (HTTPPROXY_AUTH_ENCODING); set HTTPPROXY_AUTH_ENCODING = 'utf-8' if the proxy expects UTF-8"
                ) from None
    return pool, path


def _state_url(settings: BaseSettings) -> str:
    value = _get(settings, "PROXY_STATE_URL")
    if not isinstance(value, str) or "://" not in value:
        raise ConfigError(f"PROXY_STATE_URL must be a URL of {_schemes()}, got {_shown(value)}")
    try:
        store_class(value)
    except UnknownScheme:
        raise ConfigError(f"PROXY_STATE_URL must be a URL of {_schemes()}, got {_shown(value)}") from None
    except MissingDependency as exc:
        raise ConfigError(f"PROXY_STATE_URL is {_shown(value)}, but {exc}") from None
    return value


def _schemes() -> str:
    return ", ".join(f"{scheme}://" for scheme in schemes())


def _namespace(settings: BaseSettings) -> str:
    value = _get(settings, "PROXY_STATE_NAMESPACE")
    if not isinstance(value, str) or not re.fullmatch(r"[\w.:-]{1,100}", value):
        raise ConfigError(f"PROXY_STATE_NAMESPACE must be a key prefix of letters, digits, '.', ':', '_' or '-',"
                          f" got {_shown(value)}")
    return value


def _domain_regions(settings: BaseSettings, pool: list[Proxy], sourced: bool = False) -> dict[str, str]:
    """``PROXY_DOMAIN_REGIONS``; each region must be one of the pool's (unless a source gives
    the pool: its regions are known only once it is read)."""
    value = _get(settings, "PROXY_DOMAIN_REGIONS")
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConfigError(f"PROXY_DOMAIN_REGIONS must map domain names to region names, got {_shown(value)}")
    regions = {p.region for p in pool if p.region}
    for domain, region in value.items():
        if region not in regions and not sourced:
            raise ConfigError(
                f"PROXY_DOMAIN_REGIONS maps {domain!r} to region {region!r}, but no proxy of"
                f" PROXY_POOL has that region (regions: {sorted(regions)})"
            )
    return {k.lower().lstrip("."): v for k, v in value.items()}


def _pool_source(settings: BaseSettings) -> str | Callable[[], Any] | None:
    """``PROXY_POOL_SOURCE``: an http(s) URL that lists proxies, or a function (itself or its
    dotted path, loaded now) that returns them; ``None`` when unset."""
    value = _get(settings, "PROXY_POOL_SOURCE")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if callable(value) and not isinstance(value, type):
        return value
    if not isinstance(value, str):
        raise ConfigError(f"PROXY_POOL_SOURCE must be an http(s):// URL or the dotted path of a function,"
                          f" got {_shown(value)}")
    value = value.strip()
    if re.match(r"(?i)https?://", value):
        if not HTTP_URL.match(value):
            raise ConfigError(f"PROXY_POOL_SOURCE: {_shown(mask_source(value))} is not a valid http(s) URL")
        return value
    if "://" in value or not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+", value):
        raise ConfigError(f"PROXY_POOL_SOURCE must be an http(s):// URL or the dotted path of a function,"
                          f" got {_shown(mask_source(value))}")
    return _class(settings, "PROXY_POOL_SOURCE", lambda f: callable(f) and not isinstance(f, type),
                  "a function (it must return the pool's entries)")


@dataclass(frozen=True)
class StatusSettings:
    """Where the live status page listens (``PROXY_STATUS_*``) and what it may do."""

    host: str
    port: int  # 0: any free port (the log says which)
    token: str | None = field(default=None, repr=False)
    actions: bool = False  # POST disable / enable of a proxy
    loopback: bool = True

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _status_server(settings: BaseSettings) -> StatusSettings | None:
    """``PROXY_STATUS_ADDRESS`` (``host:port``; unset: no server), with ``PROXY_STATUS_TOKEN``
    (required unless the address is a loopback one) and ``PROXY_STATUS_ACTIONS``. All are
    checked, also when the server is off. The token is never shown."""
    token = _get(settings, "PROXY_STATUS_TOKEN")
    if token == "":
        token = None
    if token is not None and (not isinstance(token, str) or not re.fullmatch(r"[!-~]{16,256}", token)):
        what = f"{len(token)} characters" if isinstance(token, str) else f"a {type(token).__name__}"
        raise ConfigError(f"PROXY_STATUS_TOKEN must be 16 to 256 printable ASCII characters without spaces"
                          f" (got {what}; it is not shown)")
    actions = _bool(settings, "PROXY_STATUS_ACTIONS")
    value = _get(settings, "PROXY_STATUS_ADDRESS")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([A-Za-z0-9.-]+):(\d{1,5})",
                         value.strip()) if isinstance(value, str) else None
    if match is None or int(match[2] or match[4]) > 65535:
        raise ConfigError(f"PROXY_STATUS_ADDRESS must be 'host:port' (say '127.0.0.1:6025'; port 0: any free"
                          f" port), got {_shown(value)}")
    host, port = (match[1] or match[3]).lower(), int(match[2] or match[4])
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and token is None:
        raise ConfigError(f"PROXY_STATUS_ADDRESS {_shown(value)} is not a loopback address: set PROXY_STATUS_TOKEN"
                          " (every endpoint then asks for it), or listen on 127.0.0.1")
    return StatusSettings(host, port, token, actions, loopback)


REPORT_FIELD = re.compile(r"%\((\w+)\)s")


def _report_file(settings: BaseSettings) -> str | None:
    """``PROXY_REPORT_FILE``: a local path, with Scrapy's feed URI placeholders (``%(name)s``,
    ``%(time)s``, any spider attribute)."""
    value = _get(settings, "PROXY_REPORT_FILE")
    if isinstance(value, Path):
        value = str(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or "\0" in value:
        raise ConfigError(f"PROXY_REPORT_FILE must be a file path, got {_shown(value)}")
    if value.startswith("file://"):
        value = value[len("file://"):]
    elif re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", value):
        raise ConfigError(f"PROXY_REPORT_FILE must be a local file path (a file:// URI at most), got {_shown(value)}")
    if "%(" in REPORT_FIELD.sub("", value):
        raise ConfigError(f"PROXY_REPORT_FILE: {_shown(value)} has a placeholder that is not %(name)s, %(time)s or"
                          " %(<spider attribute>)s")
    return value


@dataclass(frozen=True)
class HealthCheck:
    """How to check a proxy actively: fetch ``url`` through it, expect one of ``statuses``
    (and ``body`` to match, if given) within ``timeout``."""

    url: str
    statuses: frozenset[int]
    body: re.Pattern[str] | None
    timeout: float
    concurrency: int
    interval: float
    rise: int
    fall: int

    @classmethod
    def from_settings(cls, settings: BaseSettings, url: str | None = None) -> HealthCheck | None:
        """The ``PROXY_HEALTH_CHECK_*`` settings (all checked, also when checks are off),
        or ``None`` when no URL is set."""
        url = url or _get(settings, "PROXY_HEALTH_CHECK_URL")
        if url is not None and (not isinstance(url, str) or not HTTP_URL.match(url)):
            raise ConfigError(f"PROXY_HEALTH_CHECK_URL must be an http(s) URL, got {_shown(url)}")
        body = _get(settings, "PROXY_HEALTH_CHECK_BODY")
        try:
            pattern = re.compile(body) if body is not None else None
        except (re.error, TypeError) as exc:
            raise ConfigError(
                f"PROXY_HEALTH_CHECK_BODY: {_shown(body)} is not a valid regular expression: {exc}") from None
        check = cls(
            url=url or "",
            statuses=_statuses(settings, "PROXY_HEALTH_CHECK_STATUS"),
            body=pattern,
            timeout=_number(settings, "PROXY_HEALTH_CHECK_TIMEOUT", positive=True),
            concurrency=_number(settings, "PROXY_HEALTH_CHECK_CONCURRENCY", integer=True, positive=True),
            interval=_number(settings, "PROXY_HEALTH_CHECK_INTERVAL", positive=True),
            rise=_number(settings, "PROXY_HEALTH_CHECK_RISE", integer=True, positive=True),
            fall=_number(settings, "PROXY_HEALTH_CHECK_FALL", integer=True, positive=True),
        )
        return check if url else None


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
    ban_policy: type
    trial_timeout: float
    unavailable_action: str
    max_waiting: int
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

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Config:
        """Read every setting; raise :class:`ConfigError` naming the first bad one."""
        source = _pool_source(settings)
        pool, pool_file = _pool(settings, source)
        recovery = _number(settings, "PROXY_RECOVERY_INTERVAL", positive=True)
        recovery_max = _number(settings, "PROXY_RECOVERY_MAX_INTERVAL", positive=True)
        if recovery_max < recovery:
            raise ConfigError(
                f"PROXY_RECOVERY_MAX_INTERVAL ({recovery_max:g}) must be >= PROXY_RECOVERY_INTERVAL ({recovery:g})"
            )
        ban_cooldown = _number(settings, "PROXY_BAN_COOLDOWN")
        ban_max = _number(settings, "PROXY_BAN_MAX_COOLDOWN")
        cooldown = _number(settings, "PROXY_DOMAIN_COOLDOWN")
        cooldown_max = _number(settings, "PROXY_DOMAIN_COOLDOWN_MAX", positive=True)
        if any(p.username for p in pool) and not settings.getbool("HTTPPROXY_ENABLED", True):
            raise ConfigError(
                "PROXY_POOL has proxies with credentials, but HTTPPROXY_ENABLED is False: Scrapy's"
                " HttpProxyMiddleware is what sends them; enable it"
            )
        download_delay = max(0.0, settings.getfloat("DOWNLOAD_DELAY"))
        statuses = {name: _statuses(settings, name) for name in
                    ("PROXY_BAN_STATUS_CODES", "PROXY_RATE_LIMIT_STATUS_CODES", "PROXY_OVERLOAD_STATUS_CODES")}
        return cls(
            pool=pool,
            pool_file=pool_file,
            strategy=_strategy(settings),
            rules=Rules(
                cooldown=max(cooldown, download_delay),
                cooldown_max=max(cooldown_max, cooldown, download_delay),
                pair_limit=max(0, settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN")),
                max_failures=_number(settings, "PROXY_MAX_FAILURES", integer=True, positive=True),
                backoff=Backoff(recovery, recovery_max),
                ban_backoff=Backoff(ban_cooldown, max(ban_cooldown, ban_max)),
                retry_after_max=_number(settings, "PROXY_RETRY_AFTER_MAX"),
                max_banned_sites=_number(settings, "PROXY_MAX_BANNED_SITES", integer=True),
                retry_times=_number(settings, "PROXY_RETRY_TIMES", integer=True),
                unavailable_timeout=_number(settings, "PROXY_UNAVAILABLE_TIMEOUT"),
                sessions=SessionLimits(
                    max_age=_number(settings, "PROXY_SESSION_MAX_AGE"),
                    max_requests=_number(settings, "PROXY_SESSION_MAX_REQUESTS", integer=True),
                    max_errors=_number(settings, "PROXY_SESSION_MAX_ERRORS", integer=True),
                ),
            ),
            session_cookiejar=_bool(settings, "PROXY_SESSION_COOKIEJAR"),
            ban_status_codes=statuses["PROXY_BAN_STATUS_CODES"] - {PROXY_AUTH_REQUIRED},
            rate_limit_status_codes=statuses["PROXY_RATE_LIMIT_STATUS_CODES"],
            overload_status_codes=statuses["PROXY_OVERLOAD_STATUS_CODES"],
            ban_body_patterns=_patterns(settings, "PROXY_BAN_BODY_PATTERNS"),
            ban_policy=_ban_policy(settings),
            trial_timeout=_number(settings, "PROXY_TRIAL_TIMEOUT"),
            unavailable_action=_choice(settings, "PROXY_UNAVAILABLE_ACTION", UNAVAILABLE_ACTIONS),
            max_waiting=_number(settings, "PROXY_MAX_WAITING", integer=True, positive=True),
            scheduler=_scheduler(settings),
            pool_reload_interval=_number(settings, "PROXY_POOL_RELOAD_INTERVAL"),
            state_url=_state_url(settings),
            state_namespace=_namespace(settings),
            state_timeout=_number(settings, "PROXY_STATE_TIMEOUT", positive=True, largest=60),
            domain_regions=_domain_regions(settings, pool, sourced=source is not None),
            stats_interval=_number(settings, "PROXY_STATS_INTERVAL"),
            stats_per_proxy=_bool(settings, "PROXY_STATS_PER_PROXY"),
            health_check=HealthCheck.from_settings(settings),
            pool_source=source,
            status=_status_server(settings),
            metrics_per_proxy=_bool(settings, "PROXY_METRICS_PER_PROXY"),
            metrics_per_site=_bool(settings, "PROXY_METRICS_PER_SITE"),
            report_file=_report_file(settings),
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


def scheduler_settings(settings: BaseSettings) -> tuple[type, int]:
    """``PROXY_SCHEDULER`` and ``PROXY_MAX_WAITING``, for the scheduler (read also when the
    middleware is off)."""
    return _scheduler(settings), _number(settings, "PROXY_MAX_WAITING", integer=True, positive=True)


def enabled(settings: BaseSettings) -> bool:
    """``PROXY_ENABLED``, checked like every other setting."""
    return _bool(settings, "PROXY_ENABLED")
