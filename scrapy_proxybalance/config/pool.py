"""The pool's settings (``PROXY_POOL``, ``PROXY_POOL_SOURCE``, ``PROXY_DOMAIN_REGIONS``) and
the shared state's (``PROXY_STATE_URL``, ``PROXY_STATE_NAMESPACE``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.entries import load_pool
from ..core.errors import ConfigError, InvalidProxy
from ..core.proxy import Proxy
from ..core.tiers import TOP, TierRules
from ..sources import mask_source
from ..stores import MissingDependency, UnknownScheme, schemes, store_class
from .values import HTTP_URL, get, load_class, number, shown

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

def read_pool(settings: BaseSettings, source: object = None) -> tuple[list[Proxy], Path | None]:
    """``PROXY_POOL``; it may be empty only when ``PROXY_POOL_SOURCE`` gives the proxies."""
    value = get(settings, "PROXY_POOL")
    try:
        pool, path = load_pool(value)
    except InvalidProxy as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith("PROXY_POOL") else f"PROXY_POOL: {message}") from None
    if not pool and source is None:
        what = f"the file {str(path)!r} lists no proxies" if path else f"is empty ({shown(value)})"
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


def state_url(settings: BaseSettings) -> str:
    value = get(settings, "PROXY_STATE_URL")
    if not isinstance(value, str) or "://" not in value:
        raise ConfigError(f"PROXY_STATE_URL must be a URL of {state_schemes()}, got {shown(value)}")
    try:
        store_class(value)
    except UnknownScheme:
        raise ConfigError(f"PROXY_STATE_URL must be a URL of {state_schemes()}, got {shown(value)}") from None
    except MissingDependency as exc:
        raise ConfigError(f"PROXY_STATE_URL is {shown(value)}, but {exc}") from None
    return value


def state_schemes() -> str:
    return ", ".join(f"{scheme}://" for scheme in schemes())


def namespace(settings: BaseSettings) -> str:
    value = get(settings, "PROXY_STATE_NAMESPACE")
    if not isinstance(value, str) or not re.fullmatch(r"[\w.:-]{1,100}", value):
        raise ConfigError(f"PROXY_STATE_NAMESPACE must be a key prefix of letters, digits, '.', ':', '_' or '-',"
                          f" got {shown(value)}")
    return value


def domain_regions(settings: BaseSettings, pool: list[Proxy], sourced: bool = False) -> dict[str, str]:
    """``PROXY_DOMAIN_REGIONS``; each region must be one of the pool's (unless a source gives
    the pool: its regions are known only once it is read)."""
    value = get(settings, "PROXY_DOMAIN_REGIONS")
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConfigError(f"PROXY_DOMAIN_REGIONS must map domain names to region names, got {shown(value)}")
    regions = {p.region for p in pool if p.region}
    for domain, region in value.items():
        if region not in regions and not sourced:
            raise ConfigError(
                f"PROXY_DOMAIN_REGIONS maps {domain!r} to region {region!r}, but no proxy of"
                f" PROXY_POOL has that region (regions: {sorted(regions)})"
            )
    return {k.lower().lstrip("."): v for k, v in value.items()}


def tier_rules(settings: BaseSettings) -> TierRules:
    """``PROXY_SITE_TIERS`` (a domain's floor, or ``[floor, ceiling]``, or ``{"floor": ...,
    "ceiling": ...}``) and the probes' intervals."""
    value = get(settings, "PROXY_SITE_TIERS")
    if not isinstance(value, dict) or not all(isinstance(k, str) and k.strip(".") for k in value):
        raise ConfigError(f"PROXY_SITE_TIERS must map domain names to tiers, got {shown(value)}")
    bounds = {domain.lower().strip("."): _bounds(domain, given) for domain, given in value.items()}
    every = number(settings, "PROXY_TIER_PROBE_INTERVAL", positive=True)
    most = number(settings, "PROXY_TIER_PROBE_MAX_INTERVAL", positive=True)
    if most < every:
        raise ConfigError(f"PROXY_TIER_PROBE_MAX_INTERVAL ({most:g}) must be >= PROXY_TIER_PROBE_INTERVAL ({every:g})")
    return TierRules(every, most, bounds)


def _bounds(domain: str, given: object) -> tuple[int, int]:
    if isinstance(given, dict) and set(given) <= {"floor", "ceiling"}:
        floor, ceiling = given.get("floor", 0), given.get("ceiling", TOP)
    elif isinstance(given, list | tuple) and len(given) == 2:
        floor, ceiling = given
    else:
        floor, ceiling = given, TOP
    if not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t <= TOP for t in (floor, ceiling)) \
            or floor > ceiling:  # type: ignore[operator]
        raise ConfigError(f"PROXY_SITE_TIERS[{domain!r}] must be a tier from 0 to {TOP} (the floor), [floor,"
                          f" ceiling] or {{'floor': ..., 'ceiling': ...}} with floor <= ceiling, got {shown(given)}")
    return floor, ceiling  # type: ignore[return-value]


def pool_source(settings: BaseSettings) -> str | Callable[[], Any] | None:
    """``PROXY_POOL_SOURCE``: an http(s) URL that lists proxies, or a function (itself or its
    dotted path, loaded now) that returns them; ``None`` when unset."""
    value = get(settings, "PROXY_POOL_SOURCE")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if callable(value) and not isinstance(value, type):
        return value
    if not isinstance(value, str):
        raise ConfigError(f"PROXY_POOL_SOURCE must be an http(s):// URL or the dotted path of a function,"
                          f" got {shown(value)}")
    value = value.strip()
    if re.match(r"(?i)https?://", value):
        if not HTTP_URL.match(value):
            raise ConfigError(f"PROXY_POOL_SOURCE: {shown(mask_source(value))} is not a valid http(s) URL")
        return value
    if "://" in value or not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+", value):
        raise ConfigError(f"PROXY_POOL_SOURCE must be an http(s):// URL or the dotted path of a function,"
                          f" got {shown(mask_source(value))}")
    return load_class(settings, "PROXY_POOL_SOURCE", lambda f: callable(f) and not isinstance(f, type),
                  "a function (it must return the pool's entries)")
