"""The status page and /metrics at scale: the crawl's CPU for one poll, and the size of the answer.

A crawl's parts as the add-on builds them (Scrapy's test crawler, no download), a pool of N
proxies that has served N distinct sites (one request each, every 50th a ban), then, for each
pool size, the CPU of building ``/status.json``, ``/metrics`` and ``/metrics`` with the per-proxy
and per-site series, against the baseline of the same run: the closing report, which lists every
proxy and site. Target: at 100,000 proxies and 100,000 sites, at most 50 ms a poll and an answer
bounded whatever the pool (the top rows and the totals).

    python benchmarks/status.py [--sizes 1000,10000,100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scrapy import Spider
from scrapy.utils.test import get_crawler

from scrapy_proxybalance.addon import Addon
from scrapy_proxybalance.core.balancer import Ask
from scrapy_proxybalance.core.outcomes import Outcome
from scrapy_proxybalance.crawl import Crawl
from scrapy_proxybalance.middleware import ProxyBalanceMiddleware
from scrapy_proxybalance.status.metrics import PoolCollector, exposition
from scrapy_proxybalance.status.view import View

TARGET_MS = 50.0


class Quiet(Spider):
    name = "status-bench"


def crawl_of(n: int) -> Crawl:
    """The crawl's parts over ``n`` proxies, after one request to each of ``n`` sites."""
    pool = [f"http://10.{i >> 16}.{(i >> 8) & 255}.{i & 255}:{8000 + i % 7}" for i in range(n)]
    crawler = get_crawler(Quiet, {"ADDONS": {Addon: 0}, "PROXY_POOL": pool, "PROXY_STATUS_ADDRESS": "127.0.0.1:0",
                                  "PROXY_DOMAIN_COOLDOWN": 0, "LOG_LEVEL": "ERROR"})
    middleware = ProxyBalanceMiddleware.from_crawler(crawler)
    crawler.spider = Quiet.from_crawler(crawler)
    c = middleware.crawl
    balancer, recorder, now = c.balancer, c.recorder, time.time()
    for i in range(n):
        site = f"site-{i}.example"
        lease = balancer.acquire(Ask(site))
        outcome = Outcome.BAN if i % 50 == 0 else Outcome.SUCCESS
        recorder.sent(site, lease.state.key)
        balancer.release(lease, outcome, 0.1)
        recorder.answered(lease.state.key, site, outcome.value, now, latency=0.1)
    return c


def cpu_ms(build: Callable[[], bytes]) -> tuple[float, int]:
    """CPU (ms) to build an answer, and its size (bytes)."""
    started = time.process_time()
    body = build()
    return (time.process_time() - started) * 1000, len(body)


def answers(c: Crawl) -> dict[str, Callable[[], bytes]]:
    plain, detailed = PoolCollector(lambda: View(c), False, False), PoolCollector(lambda: View(c), True, True)
    return {
        "/status.json": lambda: json.dumps(View(c).status()).encode(),
        "/metrics": lambda: exposition(plain)[0],
        "/metrics, per proxy and site": lambda: exposition(detailed)[0],
        "report (every row; baseline)": lambda: json.dumps(View(c).report("finished")).encode(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| proxies = sites | answer | CPU ms (median) | vs report | size |")
    print("|---|---|---|---|---|")
    verdicts = []
    for n in (int(s) for s in args.sizes.split(",")):
        c = crawl_of(n)
        measured = {name: [cpu_ms(build) for _ in range(args.repeat)] for name, build in answers(c).items()}
        baseline = statistics.median(ms for ms, _ in measured["report (every row; baseline)"])
        for name, runs in measured.items():
            ms = statistics.median(m for m, _ in runs)
            print(f"| {n:,} | {name} | {ms:.1f} | {ms / baseline:.2f}x | {runs[-1][1] / 1e3:,.0f} kB |")
            if n == 100_000 and name in ("/status.json", "/metrics"):
                verdicts.append(f"{name} {ms:.0f} ms ({'met' if ms <= TARGET_MS else 'NOT met'})")
    if verdicts:
        print(f"target at 100,000 proxies and sites: {TARGET_MS:.0f} ms a poll: " + ", ".join(verdicts))


if __name__ == "__main__":
    main()
