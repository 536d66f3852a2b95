"""Crawl quality: whole Scrapy crawls through the local proxy farm, against the ideal.

Each run is a real crawl in a child process (``python benchmarks/crawl.py --child JOB``)
through proxies of :mod:`scrapy_proxybalance.testing.farm` on 127.0.0.1, and reports pages fetched
correctly (the page's token checks out), failed, captcha pages accepted, bans the proxies
answered, retries, wall time (engine open to close), CPU time of the crawl process, and the
ideal for the farm. Stacks: ``plain`` (one proxy set in ``meta``, no balancing), the six
proxybalance strategies, ``rotating`` (scrapy-rotating-proxies, when installed), and
``cycle`` (the spider cycles ``meta['proxy']`` over the pool: what using many proxies costs
Scrapy itself, with no balancing). A strategy with ``+checks`` also runs active health checks.

    python benchmarks/crawl.py [--repeat 3] [--scenario NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scrapy_proxybalance.testing.farm import Farm, ProxySpec  # noqa: E402

HOSTS = [f"site-{i}.test" for i in range(10)]
STRATEGIES = ["round_robin", "weighted_round_robin", "least_connections", "least_latency", "random",
              "weighted_random"]
BASE = {
    "LOG_LEVEL": "WARNING",
    "TELNETCONSOLE_ENABLED": False,
    "REMOTE_CONTROL_ENABLED": False,
    "DOWNLOAD_TIMEOUT": 10,  # the farm has proxies that never answer; Scrapy's default is 180 s
    "CONCURRENT_REQUESTS": 32,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 32,
    "CLOSESPIDER_TIMEOUT": 240,  # every crawl stops by itself
    "PROXY_STATS_INTERVAL": 0,
}
CRAWL_TIMEOUT = 300


@dataclass
class Scenario:
    name: str
    about: str
    specs: object  # () -> list[ProxySpec]
    pages: int
    stacks: list[str]
    settings: dict = field(default_factory=dict)
    blackout: tuple[float, float] | None = None
    target: str = ""

    def ideal(self, specs: list[ProxySpec], cpu_floor: float | None) -> float | None:
        """The larger of the farm's network bound (pages / summed throughput of its working
        proxies, within their capacity and rate limits) and the crawler's CPU floor."""
        rate = 0.0
        for s in specs:
            if s.kind in ("dead", "hung", "reset"):
                continue
            per_proxy = (s.capacity or 10**6) / max(s.delay, 1e-3)
            if s.kind == "banning":
                per_proxy = min(per_proxy, len(HOSTS) / s.min_interval)
            rate += per_proxy
        network = self.pages / rate if rate else None
        candidates = [v for v in (network, cpu_floor) if v]
        return max(candidates) if candidates else None


def _hetero() -> list[ProxySpec]:
    latencies, capacities = [0.02, 0.05, 0.1, 0.2, 0.5], [1, 2, 4, 2]
    return [ProxySpec(f"h{i}", kind="slow", delay=latencies[i % 5], capacity=capacities[i % 4]) for i in range(20)]


def _hostile() -> list[ProxySpec]:
    kinds = ["dead"] * 4 + ["hung"] * 3 + ["reset"] * 3
    return [ProxySpec(f"ok{i}") for i in range(20)] + [ProxySpec(f"{k}{i}", kind=k) for i, k in enumerate(kinds)]


def _hostile_full() -> list[ProxySpec]:
    """A third of 30 proxies dead, hung, resetting, rate limiting or serving captchas."""
    bad = [ProxySpec(f"{k}{i}", kind=k) for i, k in enumerate(["dead"] * 3 + ["hung"] * 2 + ["reset"] * 2)]
    bad += [ProxySpec("strict", kind="banning", min_interval=3.0, retry_after=5)]
    bad += [ProxySpec(f"cap{i}", captcha_hosts=frozenset(HOSTS[:3])) for i in range(2)]
    return [ProxySpec(f"ok{i}") for i in range(20)] + bad


CAPTCHA = {"PROXY_BAN_BODY_PATTERNS": ['<form class="captcha">']}


SCENARIOS = [
    Scenario("uniform-20", "20 healthy proxies: CPU overhead against a plain one-proxy crawl",
             lambda: [ProxySpec(f"p{i}") for i in range(20)], 2000, ["plain", "cycle", "weighted_random", "rotating"],
             target="CPU ratio to plain <= 1.10"),
    Scenario("uniform-5000", "5,000 healthy proxies: CPU overhead against a plain one-proxy crawl",
             lambda: [ProxySpec(f"p{i}") for i in range(5000)], 2000, ["plain", "cycle", "weighted_random", "rotating"],
             target="CPU ratio to plain <= 1.10"),
    Scenario("hetero", "20 proxies, latency 20-500 ms, capacity 1-4 at once; no cooldown", _hetero, 1500,
             ["plain", *STRATEGIES, "rotating"], {"PROXY_DOMAIN_COOLDOWN": 0, "CONCURRENT_REQUESTS": 64,
                                                  "CONCURRENT_REQUESTS_PER_DOMAIN": 64},
             target="best strategy within 1.5x of the ideal wall time"),
    Scenario("ratelimit", "20 proxies that answer 429 to a site seen < 0.9 s ago; default settings",
             lambda: [ProxySpec(f"r{i}", kind="banning", min_interval=0.9, retry_after=5) for i in range(20)],
             2000, ["plain", "weighted_random", "rotating"], target="no bans; throughput >= 80% of the limits"),
    Scenario("hostile", "30 proxies, a third dead, hung or resetting", _hostile, 2000,
             ["plain", "weighted_random", "least_latency", "rotating"], {"PROXY_RECOVERY_INTERVAL": 30},
             target="100% of pages"),
    Scenario("blackout", "20 healthy proxies, all down from 2 s to 7 s", lambda: [ProxySpec(f"b{i}") for i in range(20)],
             2000, ["plain", "weighted_random", "weighted_random+checks", "rotating"], blackout=(2.0, 5.0),
             target="100% of pages"),
    Scenario("captcha", "10 healthy proxies + 2 that serve a captcha (status 200) for one site",
             lambda: [ProxySpec(f"c{i}") for i in range(10)]
             + [ProxySpec(f"cap{i}", captcha_hosts=frozenset({HOSTS[0]})) for i in range(2)],
             1000, ["plain", "weighted_random", "rotating"], CAPTCHA, target="no captcha page accepted"),
    Scenario("hostile-full", "30 proxies, a third dead, hung, resetting, rate limiting or serving captchas;"
             " all down from 3 s to 7 s", _hostile_full, 3000,
             ["plain", "weighted_random", "weighted_random+checks", "least_latency", "rotating"],
             {**CAPTCHA, "PROXY_RECOVERY_INTERVAL": 10}, blackout=(3.0, 4.0),
             target="100% of pages, no captcha accepted"),
]


# "+checks": the stack with active health checks once a second (the farm's site echoes /ip)
CHECKS = {"PROXY_HEALTH_CHECK_URL": "http://echo.test/ip", "PROXY_HEALTH_CHECK_INTERVAL": 1.0,
          "PROXY_HEALTH_CHECK_TIMEOUT": 2.0}


def stack_settings(stack: str, pool: list[str]) -> dict:
    if stack.endswith("+checks"):
        return {**stack_settings(stack.removesuffix("+checks"), pool), **CHECKS}
    if stack in ("plain", "cycle"):
        return {}
    if stack == "rotating":
        return {"DOWNLOADER_MIDDLEWARES": {"rotating_proxies.middlewares.RotatingProxyMiddleware": 610,
                                           "rotating_proxies.middlewares.BanDetectionMiddleware": 620},
                "ROTATING_PROXY_LIST": pool, "ROTATING_PROXY_PAGE_RETRY_TIMES": 5}
    return {"ADDONS": {"scrapy_proxybalance.Addon": 0}, "PROXY_POOL": pool, "PROXY_STRATEGY": stack}


def run_crawl(scenario: Scenario, stack: str, farm: Farm, tmp: Path) -> dict:
    urls = [f"http://{HOSTS[i % len(HOSTS)]}/page/{i // len(HOSTS) + 1}" for i in range(scenario.pages)]
    # plain goes through the farm's last proxy: one fast, unlimited proxy outside the scenario's pool
    pool = farm.pool()[:-1]
    proxies = [farm.specs[-1].url] if stack == "plain" else pool if stack == "cycle" else []
    settings = {**BASE, **scenario.settings, **stack_settings(stack, pool)}
    job = {"settings": settings, "urls": urls, "proxies": proxies, "out": str(tmp / "out.json")}
    (tmp / "job.json").write_text(json.dumps(job))
    for spec in farm.specs:
        spec.ban_log.clear()
        spec.last.clear()
    if scenario.blackout:
        farm.blackout(*scenario.blackout)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, __file__, "--child", str(tmp / "job.json")], capture_output=True,
                          text=True, timeout=CRAWL_TIMEOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    out = json.loads((tmp / "out.json").read_text())
    out["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out["bans"] = sum(len(s.ban_log) for s in farm.specs)
    return out


def child(job_path: str) -> None:
    """Run one crawl (in the child process) and write its counts."""
    from scrapy import Request, Spider, signals
    from scrapy.crawler import CrawlerProcess

    from scrapy_proxybalance.testing.farm import token

    job = json.loads(Path(job_path).read_text())
    counts = {"ok": 0, "failed": 0, "captcha": 0, "wrong": 0}
    clock: dict[str, float] = {}

    class Bench(Spider):
        name = "bench"

        async def start(self):
            proxies = job["proxies"]
            for i, url in enumerate(job["urls"]):
                meta = {"proxy": proxies[i % len(proxies)]} if proxies else {}
                yield Request(url, meta=meta, callback=self.parse, errback=self.failed, dont_filter=True)

        def parse(self, response):
            host, path = response.url.split("/", 3)[2], "/" + response.url.split("/", 3)[3]
            if token(host, path) in response.text:
                counts["ok"] += 1
            elif "captcha" in response.text:
                counts["captcha"] += 1
            else:
                counts["wrong"] += 1

        def failed(self, failure):
            counts["failed"] += 1

    process = CrawlerProcess(settings=job["settings"])
    crawler = process.create_crawler(Bench)
    for key, signal in (("start", signals.spider_opened), ("end", signals.spider_closed)):
        # weak=False: the dispatcher would otherwise drop these lambdas before they fire
        crawler.signals.connect(lambda key=key: clock.setdefault(key, time.monotonic()), signal=signal, weak=False)
    process.crawl(crawler)
    process.start()
    stats = crawler.stats.get_stats()
    retries = stats.get("proxybalance/retries", 0) + stats.get("retry/count", 0) + stats.get("bans/error", 0) \
        + sum(v for k, v in stats.items() if k.startswith("bans/status/"))
    Path(job["out"]).write_text(json.dumps({**counts, "wall": clock["end"] - clock["start"], "retries": retries,
                                            "finish": str(stats.get("finish_reason"))}))


def median_spread(values: list[float], fmt: str) -> str:
    med = statistics.median(values)
    return (fmt.format(med) + (f" ±{(max(values) - min(values)) / 2:{fmt[2:-1]}}" if len(values) > 1 else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scenario", nargs="*", default=[s.name for s in SCENARIOS])
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    try:
        import rotating_proxies  # noqa: F401
        have_rotating = True
    except ImportError:
        have_rotating = False
        print("scrapy-rotating-proxies is not installed here: its rows are skipped (make bench installs it)")
    import scrapy

    print(f"{time.strftime('%Y-%m-%d')}, Scrapy {scrapy.__version__}, python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores; median ±half-range of {args.repeat} runs")
    for scenario in [s for s in SCENARIOS if s.name in args.scenario]:
        specs = scenario.specs()
        specs.append(ProxySpec("plain-proxy"))  # the plain stack's one fast, unlimited proxy
        print(f"\n### {scenario.name}: {scenario.about} ({scenario.pages} pages over {len(HOSTS)} sites; "
              f"target: {scenario.target})\n")
        print("| stack | pages ok | failed | captcha accepted | bans | retries | wall s | CPU s | wall / ideal "
              "| CPU / plain |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        with Farm(specs) as farm, tempfile.TemporaryDirectory() as tmpdir:
            results: dict[str, list[dict]] = {}
            for stack in scenario.stacks:
                if stack == "rotating" and not have_rotating:
                    continue
                results[stack] = [run_crawl(scenario, stack, farm, Path(tmpdir)) for _ in range(args.repeat)]
            plain_cpu = statistics.median(r["cpu"] for r in results["plain"]) if "plain" in results else None
            plain_wall = statistics.median(r["wall"] for r in results["plain"]) if "plain" in results else None
            ideal = scenario.ideal(specs[:-1], plain_wall)
            for stack, runs in results.items():
                errors = [r["error"] for r in runs if "error" in r]
                runs = [r for r in runs if "error" not in r]
                if not runs:
                    print(f"| {stack} | error: {errors[0][:80]} |")
                    continue
                col = lambda key, fmt: median_spread([r[key] for r in runs], fmt)  # noqa: E731
                ratio_ideal = median_spread([r["wall"] / ideal for r in runs], "{:.2f}") if ideal else "-"
                ratio_cpu = median_spread([r["cpu"] / plain_cpu for r in runs], "{:.2f}") if plain_cpu else "-"
                print(f"| {stack} | {col('ok', '{:.0f}')} | {col('failed', '{:.0f}')} | {col('captcha', '{:.0f}')} "
                      f"| {col('bans', '{:.0f}')} | {col('retries', '{:.0f}')} | {col('wall', '{:.1f}')} "
                      f"| {col('cpu', '{:.1f}')} | {ratio_ideal} | {ratio_cpu} |")
            if ideal:
                print(f"\nideal wall time: {ideal:.1f} s")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
