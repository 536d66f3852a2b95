"""The head of a response's body as the site wrote it, for the ban policy to read.

The policy reads a response before Scrapy's ``HttpCompressionMiddleware`` (590) decodes it:
the middleware must see the answer before ``RedirectMiddleware`` (600) and ``RetryMiddleware``
(550) do. A site (or an anti-bot service) answers compressed whenever the request says it
accepts that, as Scrapy's requests do, so the head is decoded here by the response's
``Content-Encoding`` (gzip, deflate, br, zstd), and no further than :data:`BODY_SCAN_BYTES`:
a compression bomb costs nothing. A body that cannot be decoded is read as it came.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from typing import Any

BODY_SCAN_BYTES = 16384  # what a body's markers and patterns are looked for in
_has = dict.__contains__  # a dict's own lookup, past a case-insensitive subclass's Python-level one


def header_keys(name: str) -> tuple[bytes, str, str]:
    """The keys a dict of headers may hold header ``name`` under: Scrapy's are title-cased
    bytes; a test's may be strings."""
    return name.title().encode("latin-1"), name.lower(), name.title()


def may_have(headers: Any, keys: tuple[bytes, str, str]) -> bool:
    """Whether ``headers`` may hold the header of ``keys`` (:func:`header_keys`): a dict that
    holds none of them is told at C speed, the common case (a header's absence), past a
    case-insensitive subclass's Python-level ``get``."""
    return not isinstance(headers, dict) or _has(headers, keys[0]) or _has(headers, keys[1]) or _has(headers, keys[2])


def header_value(headers: Any, name: str, keys: tuple[bytes, str, str]) -> Any:
    """``headers.get(name)``; ``None`` told at C speed where a dict of headers holds none of
    ``keys`` (:func:`header_keys` of ``name``)."""
    return headers.get(name) if may_have(headers, keys) else None


_CONTENT_ENCODING = header_keys("Content-Encoding")


def decoded_head(response: Any, limit: int = BODY_SCAN_BYTES) -> bytes:
    """The first ``limit`` bytes of the response's body, decoded by its ``Content-Encoding``."""
    body = getattr(response, "body", b"")
    headers = getattr(response, "headers", None)
    if headers is None or not may_have(headers, _CONTENT_ENCODING):
        return body[:limit]
    coding = headers.get("content-encoding")
    if not coding:
        return body[:limit]
    data = body
    for name in reversed((coding if isinstance(coding, bytes) else str(coding).encode("latin-1")).split(b",")):
        decode = _DECODERS.get(name.strip().lower())
        if decode is None:
            return body[:limit]  # a coding we do not know: as it came
        try:
            data = decode(data, limit)
        except Exception:  # a broken stream, whatever the library raises: read it as it came
            return body[:limit]
    return data[:limit]


def _gunzip(data: bytes, limit: int) -> bytes:
    return zlib.decompressobj(wbits=32 + zlib.MAX_WBITS).decompress(data, limit)


def _inflate(data: bytes, limit: int) -> bytes:
    try:
        return zlib.decompressobj().decompress(data, limit)
    except zlib.error:  # raw deflate, as some servers send it
        return zlib.decompressobj(wbits=-zlib.MAX_WBITS).decompress(data, limit)


def _unbrotli(data: bytes, limit: int) -> bytes:
    try:
        import brotli
    except ImportError:
        import brotlicffi as brotli  # type: ignore[no-redef]
    return brotli.Decompressor().process(data, output_buffer_limit=limit)  # type: ignore[no-any-return]


def _unzstd(data: bytes, limit: int) -> bytes:
    try:
        from compression import zstd  # type: ignore[import-not-found]
    except ImportError:
        from backports import zstd  # type: ignore[import-not-found,no-redef]
    try:
        return zstd.ZstdFile(io.BytesIO(data)).read(limit)  # type: ignore[no-any-return]
    except EOFError:  # truncated: what came before it
        return b""


_DECODERS: dict[bytes, Callable[[bytes, int], bytes]] = {
    b"gzip": _gunzip, b"x-gzip": _gunzip, b"deflate": _inflate, b"br": _unbrotli, b"zstd": _unzstd,
    b"identity": lambda data, limit: data,
}
