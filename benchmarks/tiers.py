"""What a crawl of three sites costs at three price tiers, learned per site, against baselines.

The farm world of the tiers' crawl test: tier 0 (5 proxies, and a sixth that is dead;
0.0001 a request), tier 1 (4 proxies, 0.001), tier 2 (3 proxies, 0.01). Site A accepts every
tier, B bans tier 0 (a Cloudflare challenge served with 200), C bans tiers 0 and 1 (DataDome
403s); 300 pages each. The cost is counted at the proxies (requests per tier times its
price), the same way for every run:

- ``learned``: this plugin, each site's tier learned (the defaults);
- ``oracle``: this plugin told each site's tier in advance (``PROXY_SITE_TIERS``): the least
  that fetches every page;
- ``top tier``: every request through tier 2;
- ``crawlee-style``: Crawlee's ``tiered_proxy_urls`` as it is documented and written (a
  per-domain histogram: each retry of a request adds an error at the tier it last used, every
  other tier's count decays by one per request, the tier moves to a neighbour with fewer
  errors), in a Scrapy middleware with the plugin off, retrying bans through Scrapy's
  RetryMiddleware and block pages through ``get_retry_request`` (recognised as the plugin
  recognises them), as a Scrapy user would port it.

Each crawl runs in a child process (``python benchmarks/tiers.py --child JOB``).

    python benchmarks/tiers.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scrapy_proxybalance.testing.farm import Farm, ProxySpec  # noqa: E402
from scrapy_proxybalance.testing.site import Block  # noqa: E402

PRICES = {0: 0.0001, 1: 0.001, 2: 0.01}
SIZES = {0: 5, 1: 4, 2: 3}
PAGES = 300
BASE = {"LOG_LEVEL": "WARNING", "TELNETCONSOLE_ENABLED": False, "CONCURRENT_REQUESTS": 16,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 16, "PROXY_STATS_INTERVAL": 0, "DOWNLOAD_TIMEOUT": 5}
PLUGIN = {"ADDONS": {"scrapy_proxybalance.Addon": 0}, "PROXY_DOMAIN_COOLDOWN": 0.02}


class CrawleeTiers:
    """Crawlee's ``ProxyTierTracker`` and its use by ``ProxyConfiguration`` (crawlee-python,
    ``proxy_configuration.py``), as a Scrapy downloader middleware: a request that comes back
    (a retry) adds an error at the tier it last used; each request predicts its domain's tier
    and goes through that tier's proxies in turn."""

    def __init__(self, tiers: list[list[str]], crawler=None) -> None:
        self.tiers = tiers
        self.crawler = crawler
        self.histogram: dict[str, list[int]] = {}
        self.current: dict[str, int] = {}
        self.turn = 0

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.settings.getlist("CRAWLEE_TIERS"), crawler)

    def process_request(self, request, spider=None):
        from urllib.parse import urlsplit

        host = urlsplit(request.url).hostname or ""
        last = request.meta.get("crawlee_last_tier")
        if last is not None:
            self.histogram.setdefault(host, [0] * len(self.tiers))[last] += 10
        tier = self.predict(host)
        request.meta["crawlee_last_tier"] = tier
        urls = self.tiers[tier]
        request.meta["proxy"] = urls[self.turn % len(urls)]
        self.turn += 1

    def process_response(self, request, response, spider=None):
        """A block page (recognised as the plugin recognises them) is retried, as a 403 is."""
        from scrapy.downloadermiddlewares.retry import get_retry_request

        from scrapy_proxybalance.core.blocks import PRESETS, BlockPages

        if response.status == 200 and BlockPages(PRESETS).match(response):
            spider = spider or self.crawler.spider
            return get_retry_request(request, spider=spider, reason="block page", max_retry_times=10) or response
        return response

    def predict(self, host: str) -> int:
        histogram = self.histogram.setdefault(host, [0] * len(self.tiers))
        current = self.current.get(host, 0)
        for index, value in enumerate(histogram):
            if index != current and value > 0:
                histogram[index] -= 1
        left = histogram[current - 1] if current > 0 else float("inf")
        right = histogram[current + 1] if current < len(histogram) - 1 else float("inf")
        if histogram[current] > min(left, right):
            self.current[host] = current - 1 if left <= right else current + 1
        elif histogram[current] == left:
            self.current[host] = current - 1
        return self.current.get(host, 0)


def child(job_path: str) -> None:
    from scrapy import Request, Spider
    from scrapy.crawler import CrawlerProcess

    from scrapy_proxybalance.core.blocks import PRESETS, BlockPages

    blocks = BlockPages(PRESETS)
    job = json.loads(Path(job_path).read_text())
    fetched: list[str] = []
    failed: list[str] = []

    class Pages(Spider):
        name = "pages"

        async def start(self):
            for url in job["urls"]:
                yield Request(url, dont_filter=True, errback=self.failed)

        def parse(self, response):
            if not blocks.match(response):  # a block page is not a page
                fetched.append(response.url)

        def failed(self, failure):
            failed.append(failure.request.url)

    process = CrawlerProcess(settings=job["settings"])
    crawler = process.create_crawler(Pages)
    process.crawl(crawler)
    started = time.monotonic()
    process.start()
    stats = crawler.stats.get_stats()
    Path(job["out"]).write_text(json.dumps({"pages": len(set(fetched)), "failed": len(failed),
                                            "wall": time.monotonic() - started,
                                            "cost": stats.get("proxybalance/cost")}))


def farm() -> Farm:
    specs = [ProxySpec(f"t{tier}-{i}", exit_ip=f"127.0.{5 + tier}.{i + 1}") for tier, n in SIZES.items()
             for i in range(n)]
    specs.append(ProxySpec("t0-dead", kind="dead"))  # proxies die: a failure is not a site's refusal
    exits = {t: {f"127.0.{5 + t}.{i + 1}" for i in range(SIZES[t])} for t in SIZES}
    return Farm(specs, site_blocks={"b.test": Block(frozenset(exits[0]), page="cloudflare", status=200),
                                    "c.test": Block(frozenset(exits[0] | exits[1]), page="datadome")})


def settings_for(name: str, f: Farm) -> dict:
    pool = [{"url": s.url, "tier": int(s.name[1]), "cost": PRICES[int(s.name[1])]} for s in f.specs]
    if name == "learned":
        return {**PLUGIN, "PROXY_POOL": pool}
    if name == "oracle":
        return {**PLUGIN, "PROXY_POOL": pool,
                "PROXY_SITE_TIERS": {"a.test": [0, 0], "b.test": [1, 1], "c.test": [2, 2]}}
    if name == "top tier":
        return {**PLUGIN, "PROXY_POOL": pool, "PROXY_SITE_TIERS": {"test": [2, 2]}}
    tiers = [[s.url for s in f.specs if s.name.startswith(f"t{t}")] for t in SIZES]
    return {"CRAWLEE_TIERS": tiers, "RETRY_TIMES": 10, "RETRY_HTTP_CODES": [403, 429, 500, 502, 503],
            "DOWNLOADER_MIDDLEWARES": {"tiers.CrawleeTiers": 740}}


def run(name: str, tmp: Path) -> dict:
    with farm() as f:
        urls = [f"http://{site}/page/{i}" for site in ("a.test", "b.test", "c.test") for i in range(1, PAGES + 1)]
        job, out = tmp / "job.json", tmp / "out.json"
        job.write_text(json.dumps({"settings": {**BASE, **settings_for(name, f)}, "urls": urls, "out": str(out)}))
        subprocess.run([sys.executable, __file__, "--child", str(job)], check=True, timeout=600,
                       env={"PYTHONPATH": f"{ROOT}:{ROOT / 'benchmarks'}", "PATH": "/usr/bin:/bin"})
        result = json.loads(out.read_text())
        sent = Counter(int(s.name[1]) for s in f.specs for _ in s.seen)
    result["sent"] = dict(sent)
    result["farm_cost"] = sum(PRICES[t] * n for t, n in sent.items())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    print(f"Tiers and cost ({time.strftime('%Y-%m-%d')}; medians of {args.repeat}): 3 sites x {PAGES} pages;"
          f" site A takes every tier, B bans tier 0, C bans tiers 0 and 1; prices per request {PRICES}")
    names = ("oracle", "learned", "top tier", "crawlee-style")
    results: dict[str, list[dict]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for name in names:
                results[name].append(run(name, Path(tmp)))
    oracle = statistics.median(r["farm_cost"] for r in results["oracle"])
    print(f"  {'run':<14} {'pages':>6} {'failed':>7} {'tier 0':>7} {'tier 1':>7} {'tier 2':>7} {'cost':>8}"
          f" {'vs oracle':>10} {'wall s':>7}")
    for name in names:
        rs = results[name]
        cost = statistics.median(r["farm_cost"] for r in rs)
        sent = {t: statistics.median(r["sent"].get(t, 0) for r in rs) for t in SIZES}
        print(f"  {name:<14} {min(r['pages'] for r in rs):>6} {max(r['failed'] for r in rs):>7}"
              f" {sent[0]:>7.0f} {sent[1]:>7.0f} {sent[2]:>7.0f} {cost:>8.4f} {cost / oracle:>9.3f}x"
              f" {statistics.median(r['wall'] for r in rs):>7.1f}")
    own = [r for r in results["learned"] if r["cost"] is not None]
    if own:
        gap = max(abs(r["cost"] - r["farm_cost"]) / r["farm_cost"] for r in own)
        print(f"  the plugin's own count of its cost differs from the proxies' by at most {gap:.2%}")


if __name__ == "__main__":
    main()
