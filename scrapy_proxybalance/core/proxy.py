"""Proxy entries: parsing, identity, and the masked form shown wherever a person reads.

How a URL is read (``scheme://user:password@host:port``):

- no scheme means ``http://``; ``http``, ``https``, ``socks4``, ``socks5`` and ``socks5h``
  (which of them a crawl can use depends on its download handlers: see the carriers);
- the credentials end at the **last** ``@``, and the username at the first ``:`` in them, so a
  password may hold raw ``@``, ``:``, ``/``, ``?`` or ``#``; a ``%`` must be written ``%25``,
  since percent escapes (``%40`` for ``@``, ``%23`` for ``#``) are decoded in both parts;
- the port must be 1-65535 (default 80, 443 or 1080); no path, query or fragment;
- ``direct://`` is no proxy at all: a direct connection, as an entry of the pool (a tier of its
  own, for sites that need no proxy).

A proxy's password never appears in ``str()``, ``repr()`` or any message: they show
``scheme://user:***@host:port``, or the entry's ``name``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from .errors import InvalidProxy

SCHEMES = ("http", "https", "socks4", "socks5", "socks5h")
DIRECT = "direct"  # the scheme of the entry that means no proxy
_DEFAULT_PORTS = {"http": 80, "https": 443, "socks4": 1080, "socks5": 1080, "socks5h": 1080}
MAX_WEIGHT = 1e6
MAX_SESSIONS = 1_000_000  # identities one gateway template may stand for
_HOST = re.compile(r"^[A-Za-z0-9._-]+$")


def split_url(text: str) -> tuple[str, str, str, str]:
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
    scheme, sep, _, hostpart = split_url(url)
    return f"{scheme}{sep}{hostpart}"


def mask_url(text: str) -> str:
    """A URL as it may be shown: everything between the username and the last ``@`` is
    ``***``; without an ``@``, a port that is not a number is ``***`` (it may be a password)."""
    scheme, sep, userinfo, hostpart = split_url(str(text))
    if userinfo:
        user, colon, _ = userinfo.partition(":")
        hostpart = f"{user}{':***' if colon else ''}@{hostpart}"
    else:
        host, colon, port = hostpart.rstrip("/").rpartition(":")
        if colon and not port.isdigit() and not host.endswith("]") and "]" not in port:
            hostpart = f"{host}:***"
    return f"{scheme}{sep}{hostpart}"


SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")  # where a URL starts


def mask(text: str) -> str:
    """Mask the credentials of every URL in free text (log lines, exception messages): from a
    ``scheme://user:`` to the last ``@`` before the next URL on that line, whatever is between
    (a password may hold spaces), is ``***``."""
    return "\n".join(_mask_line(line) for line in str(text).split("\n"))


def _mask_line(line: str) -> str:
    starts: list[int] = []
    for m in SCHEME.finditer(line):
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
class Cost:
    """What a request through a proxy costs, in the user's own unit: ``per_request`` each, plus
    ``per_gb`` per gigabyte (10**9 bytes) sent and received."""

    per_request: float = 0.0
    per_gb: float = 0.0

    def of(self, nbytes: int) -> float:
        """The cost of one request that moved ``nbytes`` bytes."""
        return self.per_request + self.per_gb * nbytes / 1e9


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
    rotating: bool = False  # a rotating gateway: a new exit for each connection
    exit_header: str | None = None  # the response header that names the exit a request left from
    tier: int = 0  # 0 the cheapest (see .tiers)
    cost: Cost | None = None  # what a request through it costs
    key: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        user = f"{quote(self.username, safe='')}@" if self.username else ""
        key = f"{DIRECT}://" if self.scheme == DIRECT else f"{self.scheme}://{user}{self.hostport}"
        object.__setattr__(self, "key", self.gateway or key)

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def direct(self) -> bool:
        """No proxy: a direct connection."""
        return self.scheme == DIRECT

    @property
    def url(self) -> str:
        """The URL to put in ``request.meta['proxy']``: credentials percent-encoded, so
        Scrapy's ``HttpProxyMiddleware`` decodes exactly this username and password
        (``direct://`` for a direct entry: put ``None`` in the meta for it)."""
        if self.direct:
            return self.key
        if not self.username:
            return f"{self.scheme}://{self.hostport}"
        return f"{self.scheme}://{quote(self.username, safe='')}:{quote(self.password, safe='')}@{self.hostport}"

    @property
    def bare(self) -> str:
        """Its URL without credentials, as ``HttpProxyMiddleware`` leaves ``meta['proxy']``."""
        return f"{self.scheme}://{self.hostport}"

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
    raw = url  # as written: masked only in a message (most entries never need one)
    if not url:
        raise InvalidProxy("an empty proxy URL")
    if url.lower().rstrip("/") == f"{DIRECT}:":
        return Proxy(scheme=DIRECT, host="", port=0, **extra)  # type: ignore[arg-type]
    if "://" not in url:
        url = "http://" + url
    scheme, _, userinfo, hostpart = split_url(url)
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidProxy(f"unsupported proxy scheme {scheme!r} in {mask_url(raw)!r}; Scrapy speaks to"
                           f" {', '.join(SCHEMES)} proxies only")
    if hostpart.endswith("/"):
        hostpart = hostpart[:-1]
    if any(c in hostpart for c in "/?#"):
        raise InvalidProxy(f"proxy URL {mask_url(raw)!r} must not have a path, query or fragment")
    if hostpart.startswith("["):
        raise InvalidProxy(f"proxy URL {mask_url(raw)!r}: IPv6 addresses are not supported by Scrapy's"
                           " HTTP proxy support; use a host name or an IPv4 address")
    host, colon, port_text = hostpart.partition(":")
    if not host or not _HOST.match(host):
        raise InvalidProxy(f"proxy URL {mask_url(raw)!r} has no valid host")
    port = _port(port_text, raw) if colon else _DEFAULT_PORTS[scheme]
    user, has_password, password = userinfo.partition(":")
    if has_password and not user:
        raise InvalidProxy(f"proxy URL {mask_url(raw)!r} has a password but no username")
    return Proxy(scheme=scheme, host=host.lower(), port=port, username=unquote(user),
                 password=unquote(password), **extra)  # type: ignore[arg-type]


def _port(text: str, raw: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InvalidProxy(f"proxy URL {mask_url(raw)!r}: the port must be a number from 1 to 65535")
    return int(text)


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
    return plain_value(entry)


def plain_value(value: object) -> str:
    """Numbers, booleans and None as they are; anything else by its type only."""
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    return f"a {type(value).__name__}"
