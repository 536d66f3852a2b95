"""Proxy entries: parsing, identity and the masked form shown in logs and stats."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from .errors import ConfigError

SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_DICT_KEYS = {"url", "weight", "region", "tags", "backup"}
_CREDENTIALS = re.compile(r"(//[^:/@\s]*:)[^@\s]*@")


def mask(text: str) -> str:
    """Replace every password in ``scheme://user:password@host`` forms with ``***``."""
    return _CREDENTIALS.sub(r"\1***@", str(text))


@dataclass(frozen=True, slots=True)
class Proxy:
    """One proxy of the pool.

    ``key`` is its identity (``scheme://user@host:port``): two entries that differ only
    by username are two proxies (gateways encode country or session there).
    ``str()`` never shows the password.
    """

    scheme: str
    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)
    weight: float = 1.0
    region: str | None = None
    tags: frozenset[str] = frozenset()
    backup: bool = False

    @property
    def hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The URL to put in ``request.meta['proxy']`` (with credentials)."""
        if not self.username:
            return f"{self.scheme}://{self.hostport}"
        return f"{self.scheme}://{self._userinfo(self.password)}@{self.hostport}"

    @property
    def key(self) -> str:
        user = f"{quote(self.username, safe='')}@" if self.username else ""
        return f"{self.scheme}://{user}{self.hostport}"

    def _userinfo(self, password: str) -> str:
        return f"{quote(self.username, safe='')}:{password}"

    def __str__(self) -> str:
        if not self.username:
            return self.key
        return f"{self.scheme}://{self._userinfo('***')}@{self.hostport}"


def parse_proxy(entry: object, setting: str = "PROXY_POOL") -> Proxy:
    """Build a :class:`Proxy` from a URL string or a dict; raise :class:`ConfigError`."""
    if isinstance(entry, str):
        return _parse_url(entry, setting)
    if isinstance(entry, dict):
        return _parse_dict(entry, setting)
    raise ConfigError(f"{setting}: an entry must be a URL or a dict, got {mask(repr(entry))}")


def _parse_url(text: str, setting: str, **extra: object) -> Proxy:
    url = text.strip()
    shown = mask(url)
    if "://" not in url:
        url = "http://" + url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{setting}: malformed proxy URL {shown!r} ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ConfigError(
            f"{setting}: unsupported proxy scheme {scheme!r} in {shown!r};"
            f" Scrapy speaks to {' and '.join(SCHEMES)} proxies only"
        )
    if not parts.hostname:
        raise ConfigError(f"{setting}: proxy URL {shown!r} has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{setting}: proxy URL {shown!r} must not have a path or query")
    return Proxy(
        scheme=scheme,
        host=parts.hostname,
        port=port or _DEFAULT_PORTS[scheme],
        username=unquote(parts.username or ""),
        password=parts.password or "",
        **extra,  # type: ignore[arg-type]
    )


def _parse_dict(entry: dict, setting: str) -> Proxy:
    unknown = set(entry) - _DICT_KEYS
    if unknown:
        raise ConfigError(
            f"{setting}: unknown key(s) {sorted(unknown)} in {mask(repr(entry))};"
            f" allowed: {sorted(_DICT_KEYS)}"
        )
    if not isinstance(entry.get("url"), str):
        raise ConfigError(f"{setting}: a dict entry needs a 'url' string: {mask(repr(entry))}")
    weight = entry.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
        raise ConfigError(
            f"{setting}: weight must be a number > 0, got {weight!r} for {mask(entry['url'])!r}"
        )
    region = entry.get("region")
    if region is not None and not isinstance(region, str):
        raise ConfigError(f"{setting}: region must be a string, got {region!r}")
    tags = entry.get("tags", ())
    if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
        raise ConfigError(f"{setting}: tags must be a list of strings, got {tags!r}")
    return _parse_url(
        entry["url"],
        setting,
        weight=float(weight),
        region=region,
        tags=frozenset(tags),
        backup=bool(entry.get("backup", False)),
    )


def load_pool(value: object, setting: str = "PROXY_POOL") -> list[Proxy]:
    """Parse ``PROXY_POOL``: a list of URLs/dicts, a comma-separated string of URLs
    (as ``-s PROXY_POOL=...`` gives), or a path to a file of URLs.

    Duplicate entries (same key) are an error, since they would silently double a weight.
    """
    if isinstance(value, str) and ("://" in value or not value.strip()):
        value = [v for v in value.split(",") if v.strip()]
    if isinstance(value, str | Path):
        entries = _read_file(Path(value), setting)
    elif isinstance(value, list | tuple):
        entries = [(None, e) for e in value]
    else:
        raise ConfigError(f"{setting}: expected a list or a file path, got {type(value).__name__}")
    proxies: list[Proxy] = []
    seen: set[str] = set()
    for lineno, entry in entries:
        where = f"{setting} ({value}, line {lineno})" if lineno else setting
        proxy = parse_proxy(entry, where)
        if proxy.key in seen:
            raise ConfigError(f"{where}: duplicate proxy {proxy}")
        seen.add(proxy.key)
        proxies.append(proxy)
    return proxies


def _read_file(path: Path, setting: str) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read proxy file {str(path)!r}: {exc.strerror}") from None
    entries = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if line:
            entries.append((lineno, line))
    return entries
