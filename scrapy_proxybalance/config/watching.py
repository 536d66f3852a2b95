"""The settings of what watches the pool: the status server (``PROXY_STATUS_*``), the closing
report (``PROXY_REPORT_FILE``) and active health checks (``PROXY_HEALTH_CHECK_*``)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import ConfigError
from ..core.proxy import SCHEME
from .values import HTTP_URL, boolean, get, number, shown, statuses

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

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


def status_server(settings: BaseSettings) -> StatusSettings | None:
    """``PROXY_STATUS_ADDRESS`` (``host:port``; unset: no server), with ``PROXY_STATUS_TOKEN``
    (required unless the address is a loopback one) and ``PROXY_STATUS_ACTIONS``. All are
    checked, also when the server is off. The token is never shown."""
    token = _token(settings)
    actions = boolean(settings, "PROXY_STATUS_ACTIONS")
    value = get(settings, "PROXY_STATUS_ADDRESS")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    host, port = _address(value)
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and token is None:
        raise ConfigError(f"PROXY_STATUS_ADDRESS {shown(value)} is not a loopback address: set PROXY_STATUS_TOKEN"
                          " (every endpoint then asks for it), or listen on 127.0.0.1")
    return StatusSettings(host, port, token, actions, loopback)


def _token(settings: BaseSettings) -> str | None:
    token = get(settings, "PROXY_STATUS_TOKEN")
    if token == "":
        return None
    if token is not None and (not isinstance(token, str) or not re.fullmatch(r"[!-~]{16,256}", token)):
        what = f"{len(token)} characters" if isinstance(token, str) else f"a {type(token).__name__}"
        raise ConfigError(f"PROXY_STATUS_TOKEN must be 16 to 256 printable ASCII characters without spaces"
                          f" (got {what}; it is not shown)")
    return token


def _address(value: object) -> tuple[str, int]:
    """``(host, port)`` of a ``host:port`` or ``[v6]:port`` address."""
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([A-Za-z0-9.-]+):(\d{1,5})",
                         value.strip()) if isinstance(value, str) else None
    if match is None or int(match[2] or match[4]) > 65535:
        raise ConfigError(f"PROXY_STATUS_ADDRESS must be 'host:port' (say '127.0.0.1:6025'; port 0: any free"
                          f" port), got {shown(value)}")
    return (match[1] or match[3]).lower(), int(match[2] or match[4])


REPORT_FIELD = re.compile(r"%\((\w+)\)s")


def report_file(settings: BaseSettings) -> str | None:
    """``PROXY_REPORT_FILE``: a local path, with Scrapy's feed URI placeholders (``%(name)s``,
    ``%(time)s``, any spider attribute)."""
    value = get(settings, "PROXY_REPORT_FILE")
    if isinstance(value, Path):
        value = str(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or "\0" in value:
        raise ConfigError(f"PROXY_REPORT_FILE must be a file path, got {shown(value)}")
    if value.startswith("file://"):
        value = value[len("file://"):]
    elif SCHEME.match(value):
        raise ConfigError(f"PROXY_REPORT_FILE must be a local file path (a file:// URI at most), got {shown(value)}")
    if "%(" in REPORT_FIELD.sub("", value):
        raise ConfigError(f"PROXY_REPORT_FILE: {shown(value)} has a placeholder that is not %(name)s, %(time)s or"
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
        url = url or get(settings, "PROXY_HEALTH_CHECK_URL")
        if url is not None and (not isinstance(url, str) or not HTTP_URL.match(url)):
            raise ConfigError(f"PROXY_HEALTH_CHECK_URL must be an http(s) URL, got {shown(url)}")
        body = get(settings, "PROXY_HEALTH_CHECK_BODY")
        try:
            pattern = re.compile(body) if body is not None else None
        except (re.error, TypeError) as exc:
            raise ConfigError(
                f"PROXY_HEALTH_CHECK_BODY: {shown(body)} is not a valid regular expression: {exc}") from None
        check = cls(
            url=url or "",
            statuses=statuses(settings, "PROXY_HEALTH_CHECK_STATUS"),
            body=pattern,
            timeout=number(settings, "PROXY_HEALTH_CHECK_TIMEOUT", positive=True),
            concurrency=number(settings, "PROXY_HEALTH_CHECK_CONCURRENCY", integer=True, positive=True),
            interval=number(settings, "PROXY_HEALTH_CHECK_INTERVAL", positive=True),
            rise=number(settings, "PROXY_HEALTH_CHECK_RISE", integer=True, positive=True),
            fall=number(settings, "PROXY_HEALTH_CHECK_FALL", integer=True, positive=True),
        )
        return check if url else None
