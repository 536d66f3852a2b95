"""What each download handler Scrapy may use does with ``meta['proxy']``: which proxy schemes it
can carry, and what its exceptions mean. One table per path, checked against each library's
real exception types in the tests.

==========================  ===========================  ======================================
handler                     proxy schemes                its exceptions
==========================  ===========================  ======================================
HTTP/1.1 (Twisted)          http, https                  Scrapy's unified ones, Twisted's,
                                                         ``TunnelError`` (a CONNECT refused)
aiohttp (2.19, no reactor)  http, https                  Scrapy's unified ones
httpx (``scrapy[httpx]``)   http, https, socks5,         Scrapy's unified ones (a refused
                            socks5h                      connection, a ``407`` on CONNECT and a
                                                         SOCKS login refused look alike: the
                                                         message tells them apart)
scrapy-impersonate          http, https, socks4,         curl_cffi's, by curl error code
(``meta['impersonate']``)   socks5, socks5h
a handler not known here    http, https                  Scrapy's unified ones; others counted
                                                         (``proxybalance/exceptions/unknown/*``)
==========================  ===========================  ======================================

Scrapy 2.15's httpx handler (Scrapy's default without a reactor there) ignores
``meta['proxy']`` and sends ``Proxy-Authorization`` to the site: it carries no proxy at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from typing import TYPE_CHECKING

from scrapy import __version__ as scrapy_version
from scrapy.core.downloader.handlers.http11 import TunnelError
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    ResponseDataLossError,
    UnsupportedURLSchemeError,
)
from scrapy.utils.misc import load_object
from twisted.internet.defer import CancelledError
from twisted.internet.error import ConnectError, ConnectionDone, ConnectionLost, ConnectionRefusedError, TimeoutError

from .base import Fault, FaultTable

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

HTTP = frozenset({"http", "https"})
SOCKS5 = frozenset({"socks5", "socks5h"})
CURL = HTTP | SOCKS5 | {"socks4"}


def _says(*words: str) -> Callable[[BaseException], bool]:
    """A matcher: the exception's message holds one of ``words``."""
    return lambda exception: any(word in str(exception) for word in words)


SCRAPY_FAULTS = FaultTable([
    (DownloadConnectionRefusedError, Fault.REFUSED),
    (DownloadTimeoutError, Fault.TIMEOUT),
    ((DownloadFailedError, ResponseDataLossError, CannotResolveHostError), Fault.FAILURE),
    ((DownloadCancelledError, UnsupportedURLSchemeError), Fault.NOT_PROXY),
])
TWISTED_FAULTS = FaultTable([
    (lambda e: isinstance(e, TunnelError) and _says("407")(e), Fault.CREDENTIALS),  # a CONNECT refused our login
    (ConnectionRefusedError, Fault.REFUSED),
    (TimeoutError, Fault.TIMEOUT),
    ((TunnelError, ConnectError, ConnectionDone, ConnectionLost), Fault.FAILURE),
    (CancelledError, Fault.NOT_PROXY),
])
# httpx words a proxy's refusal of our credentials as a refused connection: told by the message
HTTPX_CREDENTIALS = FaultTable([
    (lambda e: isinstance(e, DownloadConnectionRefusedError)
     and _says("407", "Invalid username/password", "NO ACCEPTABLE METHODS")(e), Fault.CREDENTIALS),
])


def _curl_faults() -> FaultTable:
    """scrapy-impersonate raises curl_cffi's errors as they are: read by their curl error code."""
    try:
        from curl_cffi.curl import CurlError
    except ImportError:  # scrapy-impersonate is not installed: nothing of its can be raised
        return FaultTable([])

    def code(*codes: int) -> Callable[[BaseException], bool]:
        return lambda e: isinstance(e, CurlError) and int(getattr(e, "code", 0) or 0) in codes

    return FaultTable([
        (lambda e: code(7)(e) and _says("response 407")(e), Fault.CREDENTIALS),  # CONNECT refused our login
        (lambda e: code(97)(e) and _says("rejected", "authentication")(e), Fault.CREDENTIALS),  # SOCKS login
        (code(7), Fault.REFUSED),  # could not connect (to the proxy, or its CONNECT failed)
        (code(28), Fault.TIMEOUT),
        (code(5, 18, 35, 52, 55, 56, 97), Fault.FAILURE),  # proxy unresolvable, cut, empty, SOCKS failed
        (code(6), Fault.NOT_PROXY),  # the site's host does not resolve
    ])


@dataclass(frozen=True)
class Handler:
    """What one download handler does with ``meta['proxy']``."""

    name: str
    schemes: frozenset[str]  # proxy schemes it carries
    faults: FaultTable


HTTP11 = Handler("HTTP11DownloadHandler", HTTP, SCRAPY_FAULTS + TWISTED_FAULTS)
AIOHTTP = Handler("AiohttpDownloadHandler", HTTP, SCRAPY_FAULTS)
HTTPX = Handler("HttpxDownloadHandler", HTTP | (SOCKS5 if find_spec("socksio") else frozenset()),
                HTTPX_CREDENTIALS + SCRAPY_FAULTS)
HTTPX_WITHOUT_PROXIES = Handler("HttpxDownloadHandler (Scrapy < 2.16)", frozenset(), SCRAPY_FAULTS)


@cache
def impersonate_handler() -> Handler:
    """scrapy-impersonate's handler: its fault table reads curl_cffi's errors, so curl_cffi is
    imported only by a crawl that uses it."""
    return Handler("ImpersonateDownloadHandler", CURL, _curl_faults())


UNKNOWN = Handler("a download handler scrapy-proxybalance does not know", HTTP, SCRAPY_FAULTS + TWISTED_FAULTS)

_KNOWN = {  # the handler a class is, by the dotted path of it or of one of its bases
    "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler": HTTP11,
    "scrapy.core.downloader.handlers._aiohttp.AiohttpDownloadHandler": AIOHTTP,
    "scrapy.core.downloader.handlers._httpx.HttpxDownloadHandler": HTTPX,
}
IMPERSONATE_PATH = "scrapy_impersonate.handler.ImpersonateDownloadHandler"


def configured(settings: BaseSettings, url_scheme: str) -> tuple[str, type | None]:
    """The class ``DOWNLOAD_HANDLERS`` gives ``url_scheme`` (its dotted path, and the class if it
    loads)."""
    value = settings.getwithbase("DOWNLOAD_HANDLERS").get(url_scheme)
    if value is None:
        return "", None
    path = value if isinstance(value, str) else f"{value.__module__}.{value.__qualname__}"
    try:
        cls = load_object(value) if isinstance(value, str) else value
    except (ImportError, AttributeError, ValueError, NameError):
        return path, None
    return path, cls if isinstance(cls, type) else None


def plain_handler(settings: BaseSettings, url_scheme: str) -> Handler:
    """What carries a plain request (``meta['proxy']``) of ``url_scheme`` in this crawl."""
    path, cls = configured(settings, url_scheme)
    names = [f"{k.__module__}.{k.__qualname__}" for k in cls.__mro__] if cls is not None else [path]
    for name in names:
        handler = _KNOWN.get(name)
        if handler is HTTPX and _scrapy_before(2, 16):
            return HTTPX_WITHOUT_PROXIES
        if handler is not None:
            return handler
    return UNKNOWN


def is_impersonate(settings: BaseSettings, url_scheme: str) -> bool:
    path, cls = configured(settings, url_scheme)
    if cls is None:
        return path == IMPERSONATE_PATH
    return any(f"{k.__module__}.{k.__qualname__}" == IMPERSONATE_PATH for k in cls.__mro__)


def _scrapy_before(major: int, minor: int) -> bool:
    parts = scrapy_version.split(".")
    return (int(parts[0]), int(parts[1])) < (major, minor)
