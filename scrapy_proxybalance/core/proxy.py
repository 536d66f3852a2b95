"""Proxy entries: parsing, identity, and the masked form shown wherever a person reads.

How a URL is read (``scheme://user:password@host:port``):

- no scheme means ``http://``; only ``http`` and ``https`` (what Scrapy speaks);
- the credentials end at the **last** ``@``, and the username at the first ``:`` in them, so a
  password may hold raw ``@``, ``:``, ``/``, ``?`` or ``#``; a ``%`` must be written ``%25``,
  since percent escapes (``%40`` for ``@``, ``%23`` for ``#``) are decoded in both parts;
- the port must be 1-65535 (default 80 or 443); no path, query or fragment.

A proxy's password never appears in ``str()``, ``repr()`` or any message: they show
``scheme://user:***@host:port``, or the entry's ``name``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

from .errors import InvalidProxy

SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
ENTRY_KEYS = ("url", "weight", "region", "backup", "name", "sessions")
MAX_WEIGHT = 1e6
MAX_SESSIONS = 1_000_000  # identities one gateway template may stand for
_HOST = re.compile(r"^[A-Za-z0-9._-]+$")


def _split(text: str) -> tuple[str, str, str, str]:
    """``(scheme, sep, userinfo, hostpart)``: userinfo ends at the last ``@``."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    userinfo, at, hostpart = rest.rpartition("@")
    return scheme, sep, userinfo if at else "", hostpart if at else rest


def bare_url(url: str | None) -> str | None:
    """A proxy URL without its credentials (as ``HttpProxyMiddleware`` leaves ``meta['proxy']``)."""
    if not url:
        return url
    scheme, sep, _, hostpart = _split(url)
    return f"{scheme}{sep}{hostpart}"


def mask_url(text: str) -> str:
    """A URL as it may be shown: everything between the username and the last ``@`` is
    ``***``; without an ``@``, a port that is not a number is ``***`` (it may be a password)."""
    scheme, sep, userinfo, hostpart = _split(str(text))
    if userinfo:
        user, colon, _ = userinfo.partition(":")
        hostpart = f"{user}{':***' if colon else ''}@{hostpart}"
    else:
        host, colon, port = hostpart.rstrip("/").rpartition(":")
        if colon and not port.isdigit() and not host.endswith("]") and "]" not in port:
            hostpart = f"{host}:***"
    return f"{scheme}{sep}{hostpart}"


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def mask(text: str) -> str:
    """Mask the credentials of every URL in free text (log lines, exception messages): from a
    ``scheme://user:`` to the last ``@`` before the next URL on that line, whatever is between
    (a password may hold spaces), is ``***``."""
    return "\n".join(_mask_line(line) for line in str(text).split("\n"))


def _mask_line(line: str) -> str:
    starts: list[int] = []
    for m in _SCHEME.finditer(line):
        if starts and not _starts_url(line, m.start()):
            continue  # inside the previous URL's password
        starts.append(m.start())
    if not starts:
        return line
    parts = [line[:starts[0]]]
    for start, end in zip(starts, [*starts[1:], len(line)], strict=True):
        segment = line[start:end]
        scheme, sep, rest = segment.partition("://")
        userinfo, at, after = rest.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        parts.append(f"{scheme}{sep}{user}:***@{after}" if at and colon else segment)
    return "".join(parts)


def _starts_url(line: str, at: int) -> bool:
    """Whether a scheme at ``at`` starts a new URL (after a separator) rather than continue
    the password of the URL before it (``http://user:x://y@host``)."""
    return not at or line[at - 1].isspace() or line[at - 1] in "\"'(<[,;="


@dataclass(frozen=True, slots=True)
class Proxy:
    """One proxy of the pool.

    ``key`` is its identity (``scheme://user@host:port``): two entries that differ only by
    username are two proxies (gateways encode country or session there). ``str()`` never
    shows the password; ``label`` is the entry's ``name`` or that masked URL.
    """

    scheme: str
    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)
    weight: float = 1.0
    region: str | None = None
    backup: bool = False
    name: str | None = None
    sessions: int = 0  # a session gateway's template: the identities it stands for (see .gateways)
    gateway: str = ""  # an identity of a gateway: its key (the template's key, '#', its token)
    key: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        user = f"{quote(self.username, safe='')}@" if self.username else ""
        object.__setattr__(self, "key", self.gateway or f"{self.scheme}://{user}{self.hostport}")

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The URL to put in ``request.meta['proxy']``: credentials percent-encoded, so
        Scrapy's ``HttpProxyMiddleware`` decodes exactly this username and password."""
        if not self.username:
            return f"{self.scheme}://{self.hostport}"
        return f"{self.scheme}://{quote(self.username, safe='')}:{quote(self.password, safe='')}@{self.hostport}"

    @property
    def label(self) -> str:
        return self.name or str(self)

    def __str__(self) -> str:
        if not self.username:
            return self.key
        return f"{self.scheme}://{quote(self.username, safe='')}:***@{self.hostport}"


def parse_url(text: str, **extra: object) -> Proxy:
    """Build a :class:`Proxy` from a URL (see the module's rules); raise :class:`InvalidProxy`."""
    url = text.strip().lstrip("\ufeff")
    shown = mask_url(url)
    if not url:
        raise InvalidProxy("an empty proxy URL")
    if "://" not in url:
        url = "http://" + url
    scheme, _, userinfo, hostpart = _split(url)
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidProxy(f"unsupported proxy scheme {scheme!r} in {shown!r}; Scrapy speaks to"
                           f" {' and '.join(SCHEMES)} proxies only")
    if hostpart.endswith("/"):
        hostpart = hostpart[:-1]
    if any(c in hostpart for c in "/?#"):
        raise InvalidProxy(f"proxy URL {shown!r} must not have a path, query or fragment")
    if hostpart.startswith("["):
        raise InvalidProxy(f"proxy URL {shown!r}: IPv6 addresses are not supported by Scrapy's"
                           " HTTP proxy support; use a host name or an IPv4 address")
    host, colon, port_text = hostpart.partition(":")
    if not host or not _HOST.match(host):
        raise InvalidProxy(f"proxy URL {shown!r} has no valid host")
    if colon:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InvalidProxy(f"proxy URL {shown!r}: the port must be a number from 1 to 65535")
        port = int(port_text)
    else:
        port = _DEFAULT_PORTS[scheme]
    user, has_password, password = userinfo.partition(":")
    if has_password and not user:
        raise InvalidProxy(f"proxy URL {shown!r} has a password but no username")
    return Proxy(scheme=scheme, host=host.lower(), port=port, username=unquote(user),
                 password=unquote(password), **extra)  # type: ignore[arg-type]


def describe(entry: object) -> str:
    """An entry as it may be shown in a message: URLs masked, other values by type."""
    if isinstance(entry, str):
        return repr(mask_url(entry) if "://" in entry or "@" in entry else entry)
    if isinstance(entry, list | tuple):
        return "[" + ", ".join(describe(v) for v in entry[:10]) + (", ..." if len(entry) > 10 else "") + "]"
    if isinstance(entry, dict):
        parts = []
        for k, v in entry.items():
            shown = describe(v)
            parts.append(f"{k!r}: {shown}" if isinstance(k, str) else f"{type(k).__name__} key: {shown}")
        return "{" + ", ".join(parts) + "}"
    return _plain(entry)


def _plain(value: object) -> str:
    """Numbers, booleans and None as they are; anything else by its type only."""
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    return f"a {type(value).__name__}"


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
    weight = entry.get("weight", 1.0)
    if (isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight)
            or not 0 < weight <= MAX_WEIGHT):
        raise InvalidProxy(f"weight must be a number > 0 and <= {MAX_WEIGHT:,.0f}, got {_plain(weight)} for {shown!r}")
    region = entry.get("region")
    if region is not None and (not isinstance(region, str) or not region.strip()):
        raise InvalidProxy(f"region must be a non-empty string, got {describe(region)} for {shown!r}")
    name = entry.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise InvalidProxy(f"name must be a non-empty string, got {describe(name)} for {shown!r}")
    sessions = _sessions(entry, url, shown)
    if "{region}" in url:
        if region is None:
            raise InvalidProxy(f"{shown!r} has a {{region}} field but the entry no 'region'")
        url = url.replace("{region}", region)
    return parse_url(url, weight=float(weight), region=region, backup=_bool(entry.get("backup", False), shown),
                     name=name, sessions=sessions)


def _sessions(entry: dict, url: str, shown: str) -> int:
    """A gateway template's ``sessions`` (0 for a plain proxy), checked against its URL."""
    sessions = entry.get("sessions")
    userinfo = _split(url if "://" in url else "http://" + url)[2]
    if sessions is None:
        if "{session}" in url:
            raise InvalidProxy(f"{shown!r} has a {{session}} field: give the entry 'sessions' (how many"
                               " identities the gateway may stand for)")
        return 0
    if isinstance(sessions, bool) or not isinstance(sessions, int) or not 0 < sessions <= MAX_SESSIONS:
        raise InvalidProxy(f"sessions must be a whole number from 1 to {MAX_SESSIONS:,}, got {_plain(sessions)}"
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
    except (ValueError, TypeError):
        if value in ("True", "true"):
            return True
        if value in ("False", "false"):
            return False
        raise ValueError(value) from None


def _bool(value: object, shown: str) -> bool:
    try:
        return as_bool(value)
    except ValueError:
        raise InvalidProxy(f"backup must be true or false (or 1/0, 'true'/'false'), got {describe(value)}"
                           f" for {shown!r}") from None


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
