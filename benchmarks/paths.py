"""Download paths: a rotating gateway's exits, and SOCKS proxies against HTTP ones.

Each crawl runs in a child process (``python benchmarks/paths.py --child JOB``) through proxies
on 127.0.0.1 (the farm's, and Debian's ``microsocks``); printed beside its baseline of the same
run:

- ``rotating``: 200 requests to one site through one rotating gateway (each new connection
  leaves from the next of its 250 exits) at CONCURRENT_REQUESTS_PER_DOMAIN = 8: the distinct
  exits the site saw, with the entry's ``rotating`` flag and without (Scrapy keeps connections
  alive: a handful of exits for everything);
- ``socks``: 1,000 pages through 5 proxies with Scrapy's httpx handler, SOCKS5 entries against
  HTTP ones (pages per second, CPU per page), and the HTTP entries through Scrapy's default
  handler (HTTP/1.1) for the CPU per page of the path itself.

    python benchmarks/paths.py [--only rotating|socks] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scrapy_proxybalance.testing.farm import Farm, ProxySpec  # noqa: E402
from scrapy_proxybalance.testing.socks import SocksServer, available  # noqa: E402

HTTPX = dict.fromkeys(("http", "https"), "scrapy.core.downloader.handlers._httpx.HttpxDownloadHandler")
BASE = {"ADDONS": {"scrapy_proxybalance.Addon": 0}, "LOG_LEVEL": "WARNING", "TELNETCONSOLE_ENABLED": False,
        "PROXY_DOMAIN_COOLDOWN": 0, "CONCURRENT_REQUESTS": 16, "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
        "PROXY_STATS_INTERVAL": 0, "RETRY_ENABLED": False}


def child(job_path: str) -> None:
    from scrapy import Request, Spider
    from scrapy.crawler import CrawlerProcess

    job = json.loads(Path(job_path).read_text())
    fetched = []

    class Pages(Spider):
        name = "pages"

        async def start(self):
            for url in job["urls"]:
                yield Request(url, dont_filter=True)

        def parse(self, response):
            fetched.append(response.status)

    process = CrawlerProcess(settings=job["settings"])
    crawler = process.create_crawler(Pages)
    process.crawl(crawler)
    started = time.monotonic()
    process.start()
    wall = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    Path(job["out"]).write_text(json.dumps({"pages": len(fetched), "wall": wall,
                                            "cpu": usage.ru_utime + usage.ru_stime}))


def run(settings: dict, urls: list[str], tmp: Path) -> dict:
    job, out = tmp / "job.json", tmp / "out.json"
    job.write_text(json.dumps({"settings": {**BASE, **settings}, "urls": urls, "out": str(out)}))
    subprocess.run([sys.executable, __file__, "--child", str(job)], check=True, timeout=600)
    return json.loads(out.read_text())


def rotating(repeat: int) -> None:
    exits = tuple(f"127.0.2.{i}" for i in range(1, 251))
    print("rotating gateway: 200 requests to one site, CONCURRENT_REQUESTS_PER_DOMAIN 8, 250 exits"
          " (one per new connection); distinct exits the site saw (target: at least 190 with the flag)")
    rows: dict[bool, list[int]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            for flag in (False, True):
                gate = ProxySpec("gate", kind="rotating", exits=exits)
                with Farm([gate]) as farm:
                    urls = [f"http://shop.test/page/{i}" for i in range(1, 201)]
                    run({"PROXY_POOL": [{"url": gate.url, "rotating": flag}]}, urls, Path(tmp))
                    rows[flag].append(len({s.exit_ip for s in farm.site_seen}))
    for flag in (False, True):
        print(f"  rotating {str(flag).lower():<5}  exits {statistics.median(rows[flag]):>5.0f}"
              f"  (runs: {', '.join(map(str, rows[flag]))})")


def socks(repeat: int) -> None:
    if not available("microsocks"):
        print("socks: needs Debian's microsocks")
        return
    print("SOCKS5 against HTTP proxies: 1,000 pages of one site through 5 proxies")
    with tempfile.TemporaryDirectory() as tmp, Farm([ProxySpec(f"h{i}") for i in range(5)]) as farm:
        servers = [SocksServer("microsocks", f"127.0.3.{i + 1}").start() for i in range(5)]
        try:
            urls = [f"http://127.0.0.1:{farm.site_port}/page/{i % 60 + 1}" for i in range(1000)]
            stacks = {
                "http / HTTP11 (default)": {"PROXY_POOL": farm.pool()},
                "http / httpx": {"PROXY_POOL": farm.pool(), "DOWNLOAD_HANDLERS": HTTPX},
                "socks5 / httpx": {"PROXY_POOL": [s.url() for s in servers], "DOWNLOAD_HANDLERS": HTTPX},
            }
            results = {name: [run(settings, urls, Path(tmp)) for _ in range(repeat)]
                       for name, settings in stacks.items()}
        finally:
            for server in servers:
                server.stop()
    base = statistics.median(r["cpu"] / r["pages"] for r in results["http / HTTP11 (default)"])
    print(f"  {'proxies / handler':<26} {'pages':>6} {'pages/s':>8} {'CPU ms/page':>12} {'vs default':>11}")
    for name, rs in results.items():
        rate = statistics.median(r["pages"] / r["wall"] for r in rs)
        cpu = statistics.median(r["cpu"] / r["pages"] for r in rs)
        print(f"  {name:<26} {min(r['pages'] for r in rs):>6} {rate:>8.0f} {cpu * 1000:>12.2f} {cpu / base:>10.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child")
    parser.add_argument("--only", choices=["rotating", "socks"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    print(f"Download paths ({time.strftime('%Y-%m-%d')}; medians of {args.repeat})")
    if args.only in (None, "rotating"):
        rotating(args.repeat)
    if args.only in (None, "socks"):
        socks(args.repeat)


if __name__ == "__main__":
    main()
