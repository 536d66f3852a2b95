"""One active check of one proxy: the request to send through it, and the verdict."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scrapy import Request

if TYPE_CHECKING:
    from scrapy.http import Response

    from ..config import HealthCheck
    from ..core.proxy import Proxy

CHECK = "_proxybalance_check"  # meta: this request is a health check (the proxy is set by hand)
_IP = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\b[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}\b")


@dataclass
class CheckResult:
    """How one proxy answered one check; ``str(proxy)`` is masked."""

    proxy: Proxy
    ok: bool
    status: int | None = None
    latency: float | None = None
    exit_ip: str | None = None
    error: str = ""

    def as_dict(self) -> dict:
        return {"proxy": str(self.proxy), "name": self.proxy.name, "ok": self.ok, "status": self.status,
                "latency_ms": None if self.latency is None else round(self.latency * 1000),
                "exit_ip": self.exit_ip, "error": self.error}


def check_request(proxy: Proxy, check: HealthCheck) -> Request:
    """A request for ``check.url`` through ``proxy`` alone: no retry, redirect, cookies or
    cache, every status let through, the check's own timeout."""
    return Request(
        check.url,
        dont_filter=True,
        meta={
            CHECK: time.monotonic(),
            "proxy": None if proxy.direct else proxy.url,
            "download_timeout": check.timeout,
            "dont_retry": True,
            "dont_redirect": True,
            "dont_merge_cookies": True,
            "dont_cache": True,
            "handle_httpstatus_all": True,
        },
    )


def judge(proxy: Proxy, check: HealthCheck, request: Request, response: Response | None = None,
          error: BaseException | None = None) -> CheckResult:
    """The verdict on a check's response (or the exception it ended with)."""
    latency = time.monotonic() - request.meta[CHECK]
    if response is None:
        return CheckResult(proxy, False, latency=latency, error=_describe(error))
    body = response.body[:65536]
    if response.status not in check.statuses:
        return CheckResult(proxy, False, response.status, latency, error=f"status {response.status}")
    if check.body is not None and not check.body.search(body.decode("utf-8", "replace")):
        return CheckResult(proxy, False, response.status, latency, find_ip(body),
                           error=f"body does not match {check.body.pattern!r}")
    return CheckResult(proxy, True, response.status, latency, find_ip(body))


def find_ip(body: bytes) -> str | None:
    """The exit IP an IP echo page shows: JSON ``origin`` or ``ip`` (httpbin, ipify), else
    the first address in the text."""
    text = body[:4096].decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("origin", "ip", "query"):
            if isinstance(data.get(key), str):
                return data[key].split(",")[0].strip()
    match = _IP.search(text)
    return match.group(0) if match else None


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "no answer"
    inner = getattr(error, "reasons", None)  # twisted's ResponseFailed and friends wrap failures
    if inner:
        error = getattr(inner[0], "value", error)
    return type(error).__name__
