"""The farm's wire: reading an HTTP head, writing an answer, and small helpers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket

HOST = "127.0.0.1"
REASONS = {200: "OK", 302: "Found", 403: "Forbidden", 404: "Not Found", 407: "Proxy Authentication Required",
           429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


async def read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]] | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = raw.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def response(status: int, body: bytes, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\nContent-Type: text/html\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n"
    ).encode() + body


async def quietly(session, writer: asyncio.StreamWriter) -> None:
    """Run a connection's session; a peer gone or the farm stopping just ends it."""
    try:
        await session
    except (asyncio.CancelledError, ConnectionError):
        writer.close()


def split_target(target: str) -> tuple[str, str]:
    """``http://host:port/path`` -> (host, /path)."""
    rest = target.split("://", 1)[-1]
    hostport, _, path = rest.partition("/")
    return hostport.split(":")[0], "/" + path


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def basic_user(header: str) -> str:
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        return base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")[0]
    return ""


def cookie(header: str, name: str) -> str:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


def closed_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def kept_alive(answer: bytes, exit_ip: str, close: bool) -> bytes:
    """A site's answer (framed by its Content-Length) as a keep-alive proxy passes it on,
    naming the exit it left from."""
    head, sep, body = answer.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    lines += [b"Connection: close" if close else b"Connection: keep-alive", f"X-Exit-IP: {exit_ip}".encode()]
    return b"\r\n".join(lines) + sep + body
