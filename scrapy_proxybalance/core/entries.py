"""Pool entries: a URL, or a dict with the URL and more about the proxy, and pools of them
(lists, comma-separated strings, files, a provider's text)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from .errors import InvalidProxy
from .proxy import MAX_SESSIONS, MAX_WEIGHT, Cost, Proxy, describe, mask_url, parse_url, plain_value, split_url

ENTRY_KEYS = ("url", "weight", "region", "backup", "name", "sessions", "rotating", "exit_header", "tier", "cost")
MAX_TIER = 99
COST_KEYS = ("request", "gb")


def parse_entry(entry: object) -> Proxy:
    """A :class:`Proxy` from a URL string or a dict (:data:`ENTRY_KEYS`); raise :class:`InvalidProxy`."""
    if isinstance(entry, str):
        return parse_url(entry)
    if not isinstance(entry, dict):
        raise InvalidProxy(f"an entry must be a URL or a dict, got {describe(entry)}")
    unknown = [k for k in entry if k not in ENTRY_KEYS]
    if unknown:
        names = ", ".join(repr(k) if isinstance(k, str) else f"a {type(k).__name__}" for k in unknown)
        raise InvalidProxy(f"unknown key(s) {names} in {describe(entry)}; allowed: {list(ENTRY_KEYS)}")
    url = entry.get("url")
    if not isinstance(url, str):
        raise InvalidProxy(f"a dict entry needs a 'url' string: {describe(entry)}")
    shown = mask_url(url)
    region = _text(entry, "region", shown)
    if "{region}" in url:
        if region is None:
            raise InvalidProxy(f"{shown!r} has a {{region}} field but the entry no 'region'")
        url = url.replace("{region}", region)
    proxy = parse_url(url, weight=_weight(entry, shown), region=region, backup=_bool(entry, "backup", shown),
                      name=_text(entry, "name", shown), sessions=_sessions(entry, url, shown),
                      rotating=_bool(entry, "rotating", shown), exit_header=_header(entry, shown),
                      tier=_tier(entry, shown), cost=_cost(entry, shown))
    if proxy.direct and (proxy.sessions or proxy.rotating or proxy.exit_header):
        raise InvalidProxy(f"{shown!r} is a direct connection (no proxy): it has no sessions, rotation or exit header")
    return proxy


def _weight(entry: dict, shown: str) -> float:
    weight = entry.get("weight", 1.0)
    if (isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight)
            or not 0 < weight <= MAX_WEIGHT):
        raise InvalidProxy(f"weight must be a number > 0 and <= {MAX_WEIGHT:,.0f}, got {plain_value(weight)}"
                           f" for {shown!r}")
    return float(weight)


def _tier(entry: dict, shown: str) -> int:
    tier = entry.get("tier", 0)
    if isinstance(tier, bool) or not isinstance(tier, int) or not 0 <= tier <= MAX_TIER:
        raise InvalidProxy(f"tier must be a whole number from 0 (the cheapest) to {MAX_TIER}, got"
                           f" {plain_value(tier)} for {shown!r}")
    return tier


def _cost(entry: dict, shown: str) -> Cost | None:
    """``cost``: a number (per request), or ``{"request": ..., "gb": ...}`` (either may be left out)."""
    cost = entry.get("cost")
    if cost is None:
        return None
    parts = cost if isinstance(cost, dict) else {"request": cost}
    wrong = [k for k in parts if k not in COST_KEYS]
    if wrong or not parts:
        raise InvalidProxy(f"cost must be a number (per request) or a dict with 'request' and/or 'gb', got"
                           f" {describe(cost)} for {shown!r}")
    for key, value in parts.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise InvalidProxy(f"cost {key!r} must be a number >= 0, got {plain_value(value)} for {shown!r}")
    return Cost(float(parts.get("request", 0.0)), float(parts.get("gb", 0.0)))


def _text(entry: dict, key: str, shown: str) -> str | None:
    """An optional non-empty string field (``region``, ``name``)."""
    value = entry.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise InvalidProxy(f"{key} must be a non-empty string, got {describe(value)} for {shown!r}")
    return value


def _sessions(entry: dict, url: str, shown: str) -> int:
    """A gateway template's ``sessions`` (0 for a plain proxy), checked against its URL."""
    sessions = entry.get("sessions")
    _, _, userinfo, hostpart = split_url(url if "://" in url else "http://" + url)
    # a plain entry's password is only a password (whatever braces it has): it says nothing here
    fields = url if sessions is not None else f"{userinfo.partition(':')[0]}@{hostpart}"
    if "{country}" in fields and (sessions is None or "region" in entry):
        raise InvalidProxy(f"{shown!r} has a {{country}} field: it must be a session gateway's template (with"
                           " 'sessions' and a {session} field) and have no 'region' (a request's region fills it)")
    if sessions is None:
        if "{session}" in fields:
            raise InvalidProxy(f"{shown!r} has a {{session}} field: give the entry 'sessions' (how many"
                               " identities the gateway may stand for)")
        return 0
    if isinstance(sessions, bool) or not isinstance(sessions, int) or not 0 < sessions <= MAX_SESSIONS:
        raise InvalidProxy(f"sessions must be a whole number from 1 to {MAX_SESSIONS:,}, got {plain_value(sessions)}"
                           f" for {shown!r}")
    if "{session}" not in userinfo:
        raise InvalidProxy(f"{shown!r} has 'sessions' but no {{session}} field in its username or password")
    return sessions


def as_bool(value: object) -> bool:
    """A boolean as Scrapy's ``Settings.getbool`` reads one (the same rule, so an entry's flags
    and the settings agree): ``True``/``False``, a number (``int()`` of it), or one of the
    strings ``'True'``, ``'true'``, ``'False'``, ``'false'``. Raises ``ValueError``."""
    try:
        return bool(int(value))  # type: ignore[call-overload]
    except (ValueError, TypeError, OverflowError):
        if value in ("True", "true"):
            return True
        if value in ("False", "false"):
            return False
        raise ValueError(value) from None


def _bool(entry: dict, key: str, shown: str) -> bool:
    value = entry.get(key, False)
    try:
        return as_bool(value)
    except ValueError:
        raise InvalidProxy(f"{key} must be true or false (or 1/0, 'true'/'false'), got {describe(value)}"
                           f" for {shown!r}") from None


def _header(entry: dict, shown: str) -> str | None:
    """``exit_header``: the name of the response header that tells the exit (a rotating gateway's)."""
    value = entry.get("exit_header")
    if value is not None and (not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9-]{1,64}", value)):
        raise InvalidProxy(f"exit_header must be a header name, got {describe(value)} for {shown!r}")
    return value


# A pool value that is one proxy or a list of them rather than a file: URLs, host:port.
_LOOKS_LIKE_PROXIES = re.compile(r"^\s*[^\s,]+:\d+/?\s*(,\s*[^\s,]+:\d+/?\s*)*,?\s*$")


def pool_entries(value: object, setting: str = "PROXY_POOL") -> tuple[list[tuple[str, object]], Path | None]:
    """The entries a ``PROXY_POOL`` value names, each with where it came from, and the file
    it was read from (if any).

    A list or tuple is the entries; a string is JSON (``[...]``), one URL or a comma-separated
    list of URLs (``"http://a:1,b:2"``, ``"10.0.0.1:3128"``: what ``-s PROXY_POOL=...`` and
    environment variables give), or else the path of a pool file; a ``Path`` is a file.
    """
    if isinstance(value, str):
        text = value.strip().lstrip("\ufeff")
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise InvalidProxy(f"{setting} looks like JSON but is not valid JSON") from None
        elif not text:
            value = []
        elif "://" in text or _LOOKS_LIKE_PROXIES.match(text) or "," in text:
            value = [v for v in text.split(",") if v.strip()]
        else:
            value = Path(text)
    if isinstance(value, Path):
        return read_pool_file(value, setting), value
    if isinstance(value, list | tuple):
        return [(setting, e) for e in value], None
    raise InvalidProxy(f"{setting} must be a list of proxies, a comma-separated string or a file path,"
                       f" got {describe(value)}")


def read_pool_file(path: Path, setting: str = "PROXY_POOL") -> list[tuple[str, object]]:
    """Entries of a pool file (see :func:`pool_lines`), each with where it came from."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL in the path
        why = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text" \
            if isinstance(exc, UnicodeDecodeError) else "not a file path"
        raise InvalidProxy(f"{setting}: cannot read proxy file {str(path)!r}: {why}") from None
    return pool_lines(text, f"{setting} ({path}, line {{}})")


def pool_lines(text: str, where: str = "line {}") -> list[tuple[str, object]]:
    """The entries of a pool's text (a pool file, a provider's answer): one URL or JSON dict
    per line; ``#`` starts a comment at the start of a line or after white space, so a ``#``
    inside a password is kept. Each entry comes with ``where`` (its line number filled in).
    Raises :class:`InvalidProxy` for a line that is not valid JSON."""
    entries: list[tuple[str, object]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()
        if not line:
            continue
        here = where.format(lineno)
        if line.startswith("{"):
            try:
                entries.append((here, json.loads(line)))
            except ValueError:
                raise InvalidProxy(f"{here}: not a valid JSON entry") from None
        else:
            entries.append((here, line))
    return entries


def load_pool(value: object, setting: str = "PROXY_POOL") -> tuple[list[Proxy], Path | None]:
    """Parse a ``PROXY_POOL`` value (see :func:`pool_entries`) into proxies, and the file it
    came from. Two entries with the same identity are an error (they would double a weight).
    Every message starts with where the entry came from and masks passwords."""
    entries, path = pool_entries(value, setting)
    proxies: list[Proxy] = []
    seen: set[str] = set()
    for where, entry in entries:
        try:
            proxy = parse_entry(entry)
        except InvalidProxy as exc:
            raise InvalidProxy(f"{where}: {exc}") from None
        if proxy.key in seen:
            raise InvalidProxy(f"{where}: duplicate proxy {proxy}")
        seen.add(proxy.key)
        proxies.append(proxy)
    return proxies, path
