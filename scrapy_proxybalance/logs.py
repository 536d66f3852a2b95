"""No proxy password in any log line, whoever writes it.

Our own lines mask passwords where they are written; a library's debug lines may not (httpx
logs a SOCKS proxy's login, for one). :class:`PasswordFilter` sits on the root logger's
handlers while the crawl runs and masks every password of the pool (as written, URL-quoted,
and inside the Base64 of a ``Proxy-Authorization`` header) in each record that holds one.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterable
from urllib.parse import quote

from .core.proxy import Proxy

MASK = "***"


def secrets_of(proxies: Iterable[Proxy]) -> list[str]:
    """The forms in which the proxies' passwords could be written (longest first)."""
    found: set[str] = set()
    for proxy in proxies:
        if proxy.password:
            found.update((proxy.password, quote(proxy.password, safe=""),
                          base64.b64encode(f"{proxy.username}:{proxy.password}".encode()).decode()))
    return sorted((s for s in found if s), key=len, reverse=True)


class PasswordFilter(logging.Filter):
    """Masks the pool's passwords in the records it sees (``secrets``: their current forms)."""

    def __init__(self, secrets: Callable[[], list[str]]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self.secrets()
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted is the logging module's to report
            return True
        if any(secret in message for secret in secrets):
            for secret in secrets:
                message = message.replace(secret, MASK)
            record.msg, record.args = message, ()
        return True

    def install(self) -> None:
        for handler in logging.getLogger().handlers:
            handler.addFilter(self)

    def remove(self) -> None:
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self)
