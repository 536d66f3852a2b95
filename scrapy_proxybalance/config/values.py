"""Readers of one setting's value each: a number, a boolean, a class, status codes, patterns, a
choice. Each bad value raises :class:`ConfigError` with one line naming the setting and the
value (passwords masked); a setting set to ``None`` means its default."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from scrapy.utils.misc import load_object

from ..core.blocks import PRESETS, BlockPages
from ..core.errors import ConfigError
from ..core.proxy import describe, mask
from ..core.strategies import STRATEGIES, Strategy
from .defaults import DEFAULTS

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

UNAVAILABLE_ACTIONS = ("close", "fail")
HTTP_URL = re.compile(r"(?i)https?://[^/\s?#]+(?:[/?#]\S*)?$")  # a source's or a check's URL
MAX_SECONDS = 365 * 86400.0  # no duration setting may exceed a year
MAX_COUNT = 1_000_000  # nor a count a million


def get(settings: BaseSettings, name: str) -> Any:
    value = settings.get(name)
    return DEFAULTS[name] if value is None else value


def shown(value: object) -> str:
    """A setting's value as a message may show it: URLs masked, long values cut."""
    text = describe(value)
    return text if len(text) <= 80 else text[:77] + "..."


def number(settings: BaseSettings, name: str, *, integer: bool = False, positive: bool = False,
            largest: float | None = None) -> Any:
    """A finite number >= 0 (> 0 with ``positive``), at most ``largest`` (a year of seconds,
    or a million for counts); strings are read as numbers."""
    value = get(settings, name)
    kind = "a whole number" if integer else "a number"
    found = _finite(value, name, kind)
    if integer and found != int(found):
        raise ConfigError(f"{name} must be {kind}, got {shown(value)}")
    if found < 0 or (positive and found == 0):
        raise ConfigError(f"{name} must be {'> 0' if positive else '>= 0'}, got {shown(value)}")
    largest = largest if largest is not None else (MAX_COUNT if integer else MAX_SECONDS)
    if found > largest:
        raise ConfigError(f"{name} must be at most {largest:,.0f}, got {shown(value)}")
    return int(found) if integer else found


def optional_number(settings: BaseSettings, name: str, **kwargs: Any) -> Any:
    """:func:`number`, or ``None`` when the setting (and its default) is ``None``."""
    return None if get(settings, name) is None else number(settings, name, **kwargs)


def _finite(value: object, name: str, kind: str) -> float:
    """``value`` (a number or its text) as a finite float."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{name} must be {kind}, got {shown(value)}")
    try:
        found = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be {kind}, got {shown(value)}") from None
    if not math.isfinite(found):
        raise ConfigError(f"{name} must be a finite number, got {shown(value)}")
    return found


def boolean(settings: BaseSettings, name: str) -> bool:
    """A boolean as Scrapy's ``getbool`` reads it (``True``/``False``, ``1``/``0``, their strings,
    ``'true'``/``'false'``)."""
    value = get(settings, name)
    try:
        return settings.getbool(name, value) if settings.get(name) is not None else bool(value)
    except (ValueError, TypeError, OverflowError):
        raise ConfigError(f"{name} must be True or False (or 1/0, 'true'/'false'), got {shown(value)}") from None


def load_class(settings: BaseSettings, name: str, check: Callable[[object], bool], what: str) -> Any:
    """A class given as itself or as a dotted path; ``check`` says whether it is the right kind."""
    value = get(settings, name)
    if isinstance(value, str):
        try:
            value = load_object(value)
        except (ImportError, AttributeError, ValueError, NameError, TypeError) as exc:
            why = " ".join(str(exc).replace(value, "it").split())[:160]  # one line, the value shown once, masked
            raise ConfigError(f"{name}: cannot load {shown(value)}: {mask(why)}") from None
    if not check(value):
        raise ConfigError(f"{name}: {shown(get(settings, name))} is not {what}")
    return value


def strategy(settings: BaseSettings) -> type[Strategy]:
    value = get(settings, "PROXY_STRATEGY")
    if isinstance(value, str) and value in STRATEGIES:
        return STRATEGIES[value]
    if isinstance(value, str) and "." not in value:
        raise ConfigError(
            f"PROXY_STRATEGY: unknown strategy {shown(value)}; choose one of {sorted(STRATEGIES)}"
            " or give the dotted path of a Strategy subclass"
        )
    if not isinstance(value, str | type):
        raise ConfigError(f"PROXY_STRATEGY must be a name or a dotted path, got {shown(value)}")
    return load_class(
        settings, "PROXY_STRATEGY",
        lambda c: isinstance(c, type) and issubclass(c, Strategy) and not getattr(c, "__abstractmethods__", None),
        "a concrete subclass of scrapy_proxybalance.Strategy",
    )


def statuses(settings: BaseSettings, name: str) -> frozenset[int]:
    value = get(settings, name)
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    elif isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    try:
        if not isinstance(value, list | tuple | set | frozenset):
            raise TypeError
        codes = frozenset(status_code(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a list of HTTP status codes, got {shown(value)}") from None
    if any(not 100 <= c <= 599 for c in codes):
        raise ConfigError(f"{name} must hold statuses 100-599, got {sorted(codes)}")
    return codes


def status_code(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError
    return int(value)


def patterns(settings: BaseSettings, name: str) -> list[re.Pattern[str]]:
    value = get(settings, name)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{name} must be a list of regular expressions, got {shown(value)}")
    patterns = []
    for pattern in value:
        try:
            patterns.append(re.compile(pattern))
        except (re.error, TypeError) as exc:
            raise ConfigError(f"{name}: {shown(pattern)} is not a valid regular expression: {exc}") from None
    return patterns


def block_pages(settings: BaseSettings) -> BlockPages:
    """``PROXY_BLOCK_PRESETS``: the anti-bot services whose block pages are bans (see
    :mod:`..core.blocks`); a list of names, or a comma-separated string."""
    value = get(settings, "PROXY_BLOCK_PRESETS")
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"PROXY_BLOCK_PRESETS must be a list of preset names ({', '.join(PRESETS)}),"
                          f" got {shown(value)}")
    try:
        return BlockPages(v.lower() for v in value)
    except ValueError as exc:
        raise ConfigError(f"PROXY_BLOCK_PRESETS: {exc}") from None


def ban_policy(settings: BaseSettings) -> type:
    return load_class(
        settings, "PROXY_BAN_POLICY",
        lambda c: isinstance(c, type) and all(callable(getattr(c, m, None))
                                              for m in ("response_outcome", "exception_outcome")),
        "a class with response_outcome() and exception_outcome() (subclass scrapy_proxybalance.BanPolicy)",
    )


def scheduler(settings: BaseSettings) -> type:
    return load_class(
        settings, "PROXY_SCHEDULER",
        lambda c: isinstance(c, type)
        and all(callable(getattr(c, m, None)) for m in ("enqueue_request", "next_request", "has_pending_requests")),
        "a scheduler class (enqueue_request, next_request, has_pending_requests)",
    )


def choice(settings: BaseSettings, name: str, choices: tuple[str, ...]) -> str:
    value = get(settings, name)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {list(choices)}, got {shown(value)}")
    return value
