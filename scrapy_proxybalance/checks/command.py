"""``scrapy proxycheck``: check every proxy of the pool against a URL, print a table.

Found by Scrapy through the package's ``scrapy.commands`` entry point, so it works in any
project that installs the package (and outside one, with ``--pool``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy import Spider
from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from ..carriers.handlers import HTTPX, plain_handler
from ..config import HTTP_URL, HealthCheck
from ..core.entries import load_pool
from ..core.errors import ConfigError, InvalidProxy
from ..core.proxy import Proxy
from ..tables import text_table
from .probe import CheckResult, check_request, judge

if TYPE_CHECKING:
    import argparse
    from collections.abc import AsyncIterator

    from scrapy.http import Response
    from twisted.python.failure import Failure


class ProxyCheckSpider(Spider):
    """Fetches the check URL once through each proxy; no retries, redirects or cookies."""

    name = "proxycheck"

    def __init__(self, pool: list[Proxy], check: HealthCheck, results: list[CheckResult], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool, self.check, self.results = pool, check, results

    async def start(self) -> AsyncIterator[Any]:
        for proxy in self.pool:
            request = check_request(proxy, self.check)
            yield request.replace(callback=self.answered, errback=self.failed, cb_kwargs={"proxy": proxy})

    def answered(self, response: Response, proxy: Proxy) -> None:
        assert response.request is not None
        self._done(judge(proxy, self.check, response.request, response))

    def failed(self, failure: Failure) -> None:
        proxy = failure.request.cb_kwargs["proxy"]  # type: ignore[attr-defined]
        self._done(judge(proxy, self.check, failure.request, error=failure.value))  # type: ignore[attr-defined]

    def _done(self, result: CheckResult) -> None:
        self.results.append(result)
        shown = f"ok, {result.latency * 1000:.0f} ms" if result.ok and result.latency is not None else result.error
        print(f"[{len(self.results)}/{len(self.pool)}] {result.proxy.label}: {shown}", file=sys.stderr, flush=True)


class Command(ScrapyCommand):
    requires_project = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_LEVEL": "WARNING"}

    def syntax(self) -> str:
        return "[options]"

    def short_desc(self) -> str:
        return "Check every proxy of PROXY_POOL (or --pool FILE) against a URL"

    def long_desc(self) -> str:
        return (
            "Fetch a URL through every proxy of the project's PROXY_POOL (or of --pool FILE) at once,"
            " showing progress, then print a table: proxy (password masked), result, HTTP status,"
            " latency, exit IP (when the URL is an IP echo page such as /ip) and error. The URL,"
            " expected statuses, body pattern and timeout default to the PROXY_HEALTH_CHECK_*"
            " settings. Exits with status 1 when no proxy is healthy."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--pool", metavar="FILE", help="a proxy file to check instead of PROXY_POOL")
        parser.add_argument("--url", help="the URL to fetch (default: PROXY_HEALTH_CHECK_URL)")
        parser.add_argument("--timeout", type=float, help="seconds per proxy (default: PROXY_HEALTH_CHECK_TIMEOUT)")
        parser.add_argument("--concurrency", type=int, default=32, help="proxies checked at once (default: 32)")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
        parser.add_argument("--save-healthy", metavar="FILE",
                            help="write the healthy proxies, credentials included, to FILE (mode 0600),"
                                 " one URL per line")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if args:
            raise UsageError("proxycheck takes no arguments; see --help")
        settings = self.settings
        assert settings is not None and self.crawler_process is not None
        _check_options(opts)
        pool, check = _pool_and_check(settings, opts)
        results: list[CheckResult] = []
        spider = type("ProxyCheck", (ProxyCheckSpider,), {"custom_settings": {
            "PROXY_ENABLED": False, "ROBOTSTXT_OBEY": False, "RETRY_ENABLED": False, "COOKIES_ENABLED": False,
            "HTTPCACHE_ENABLED": False, "AUTOTHROTTLE_ENABLED": False, "DOWNLOAD_DELAY": 0,
            "TELNETCONSOLE_ENABLED": False, "LOG_LEVEL": "WARNING", "CONCURRENT_REQUESTS": opts.concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": opts.concurrency, **_handlers_for(pool, settings),
        }})
        self.crawler_process.crawl(spider, pool=pool, check=check, results=results)
        self.crawler_process.start()
        order = {p.key: i for i, p in enumerate(pool)}
        results.sort(key=lambda r: order[r.proxy.key])
        shared = shared_exit_ips(results)
        print(as_json(results, shared) if opts.json else as_table(results, shared))
        healthy = [r.proxy for r in results if r.ok]
        if opts.save_healthy:
            save_healthy(opts.save_healthy, healthy)
        self.exitcode = 0 if healthy else 1


def _handlers_for(pool: list[Proxy], settings: Any) -> dict[str, Any]:
    """The download handlers to check the pool with: the project's, unless they cannot carry a
    scheme of the pool that Scrapy's httpx handler can (SOCKS5)."""
    schemes = {p.scheme for p in pool}
    carried = set().union(*(plain_handler(settings, url).schemes for url in ("http", "https")))
    if schemes <= carried or not schemes <= HTTPX.schemes:
        return {}
    path = "scrapy.core.downloader.handlers._httpx.HttpxDownloadHandler"
    return {"DOWNLOAD_HANDLERS": {"http": path, "https": path}}


def _check_options(opts: argparse.Namespace) -> None:
    """Refuse a bad ``--url``, ``--timeout`` or ``--concurrency``."""
    if opts.url is not None and not HTTP_URL.match(opts.url):
        raise UsageError(f"--url must be an http(s) URL without spaces, got {opts.url!r}", print_help=False)
    if opts.timeout is not None and not (math.isfinite(opts.timeout) and 0 < opts.timeout <= 3600):
        raise UsageError(f"--timeout must be a number of seconds > 0 and <= 3600, got {opts.timeout}",
                         print_help=False)
    if opts.concurrency < 1:
        raise UsageError(f"--concurrency must be >= 1, got {opts.concurrency}", print_help=False)


def _pool_and_check(settings: Any, opts: argparse.Namespace) -> tuple[list[Proxy], HealthCheck]:
    """The proxies to check (``--pool`` or ``PROXY_POOL``) and how (the options over the
    ``PROXY_HEALTH_CHECK_*`` settings)."""
    try:
        pool, _ = load_pool(Path(opts.pool), "--pool") if opts.pool else load_pool(settings.get("PROXY_POOL") or [])
        check = HealthCheck.from_settings(settings, url=opts.url)
    except (ConfigError, InvalidProxy) as exc:
        raise UsageError(str(exc), print_help=False) from None
    if check is None:
        raise UsageError("give --url URL or set PROXY_HEALTH_CHECK_URL", print_help=False)
    if not pool:
        raise UsageError("no proxies: set PROXY_POOL or give --pool FILE", print_help=False)
    return pool, dataclasses.replace(check, timeout=opts.timeout or check.timeout)


def save_healthy(path: str, proxies: list[Proxy]) -> None:
    """Write the proxies, credentials included, to a file only its owner can read (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file existed with a wider mode
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.writelines(f"{p.url}\n" for p in proxies)


def shared_exit_ips(results: list[CheckResult]) -> dict[str, list[str]]:
    """Exit IPs that more than one proxy showed, with those proxies (masked)."""
    by_ip: dict[str, list[str]] = defaultdict(list)
    for r in results:
        if r.exit_ip:
            by_ip[r.exit_ip].append(r.proxy.label)
    return {ip: proxies for ip, proxies in by_ip.items() if len(proxies) > 1}


def as_table(results: list[CheckResult], shared: dict[str, list[str]]) -> str:
    header = ("proxy", "result", "status", "latency", "exit IP", "error")
    ranked = sorted(results, key=lambda r: (not r.ok, r.latency or 0.0))
    rows = [
        (r.proxy.label, "ok" if r.ok else "FAILED", str(r.status or "-"),
         "-" if r.latency is None else f"{r.latency * 1000:.0f} ms", r.exit_ip or "-", r.error or "")
        for r in ranked
    ]
    lines = text_table(header, rows, left=(0, 1, 4, 5))
    lines.append(f"{sum(r.ok for r in results)} of {len(results)} proxies healthy")
    lines += [f"{len(proxies)} proxies share the exit IP {ip}: {', '.join(proxies)}" for ip, proxies in shared.items()]
    return "\n".join(lines)


def as_json(results: list[CheckResult], shared: dict[str, list[str]]) -> str:
    return json.dumps({"checked": len(results), "healthy": sum(r.ok for r in results),
                       "proxies": [r.as_dict() for r in results], "shared_exit_ips": shared}, indent=2)
