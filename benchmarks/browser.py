"""Browser crawls: pages rendered by scrapy-playwright in headless Chromium, through the pool.

Each run renders the same pages of two farm sites (``--pages``, 8 at once, no cooldown, so the
browser is the limit), in a child process (``python benchmarks/browser.py --child JOB``):

- ``single``: the baseline, without the plugin: every page in one browser context through one
  proxy (what a project without a pool does);
- ``pool-N``: the plugin with N proxies and at most ``--contexts`` browser contexts at once.

Printed per run: pages rendered with their token, wall time, pages per second, against the
baseline's, contexts opened and closed, and the peak memory (PSS) of the whole process tree
(the crawl, Playwright's driver, Chromium), sampled every 0.1 s: it follows the context cap,
not the pool.

    python benchmarks/browser.py [--pages 120] [--contexts 4] [--pools 3 10 30] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scrapy_proxybalance.testing.farm import Farm, ProxySpec  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
SITES = ("shop-a.test", "shop-b.test")
BROWSER = {
    "DOWNLOAD_HANDLERS": dict.fromkeys(("http", "https"), "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"),
    "PLAYWRIGHT_BROWSER_TYPE": "chromium",
    "PLAYWRIGHT_LAUNCH_OPTIONS": {"executable_path": CHROMIUM, "headless": True, "args": [
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"]},
    "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT": 10_000,
    "LOG_LEVEL": "INFO", "TELNETCONSOLE_ENABLED": False, "CONCURRENT_REQUESTS": 8,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
}


def child(job_path: str) -> None:
    """One crawl: render every page, write what it fetched and its stats."""
    from scrapy import Request, Spider
    from scrapy.crawler import CrawlerProcess

    from scrapy_proxybalance.testing.site import token

    job = json.loads(Path(job_path).read_text())
    valid = []

    class Rendered(Spider):
        name = "rendered"

        async def start(self):
            for url in job["urls"]:
                yield Request(url, meta={"playwright": True, **job["meta"]}, dont_filter=True)

        def parse(self, response):
            host, path = response.url.split("/")[2], "/" + response.url.split("/", 3)[3]
            valid.append(token(host, path) in response.text)

    process = CrawlerProcess(settings=job["settings"])
    crawler = process.create_crawler(Rendered)
    process.crawl(crawler)
    process.start()
    stats = {k: v for k, v in crawler.stats.get_stats().items() if isinstance(v, int | float)}
    Path(job["out"]).write_text(json.dumps({"valid": sum(valid), "pages": len(valid), "stats": stats}))


def tree_pss(root: int) -> int:
    """PSS (bytes) of ``root`` and every process descended from it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def run(name: str, settings: dict, meta: dict, urls: list[str], tmp: Path) -> dict:
    job, out = tmp / f"{name}.json", tmp / f"{name}-out.json"
    job.write_text(json.dumps({"settings": settings, "meta": meta, "urls": urls, "out": str(out)}))
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(job)], stdout=subprocess.DEVNULL,
                            stderr=open(tmp / f"{name}.log", "w"))  # noqa: SIM115 (closed with the process)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_pss(proc.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    sampler.join(timeout=5)
    result = json.loads(out.read_text())
    result.update(wall=result["stats"].get("elapsed_time_seconds", time.monotonic() - started), peak=peak[0])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child")
    parser.add_argument("--pages", type=int, default=120)
    parser.add_argument("--contexts", type=int, default=4)
    parser.add_argument("--pools", type=int, nargs="+", default=[3, 10, 30])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    if CHROMIUM is None:
        sys.exit("needs a Chromium (Debian's chromium package, or CHROMIUM=/path)")
    urls = [f"http://{SITES[i % 2]}/page/{i // 2 + 1}" for i in range(args.pages)]
    specs = [ProxySpec(f"p{i}") for i in range(max(args.pools))]
    print(f"Browser crawls: {args.pages} pages of {len(SITES)} sites rendered in headless Chromium, 8 at once,"
          f" cooldown 0; pools at most {args.contexts} browser contexts at once; medians of {args.repeat}"
          f" ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs)")
    with Farm(specs) as farm, tempfile.TemporaryDirectory() as tmp:
        first = f"http://127.0.0.1:{specs[0].port}"
        runs = {"single": ({**BROWSER}, {"playwright_context": "single",
                                         "playwright_context_kwargs": {"proxy": {"server": first}}})}
        for n in args.pools:
            settings = {**BROWSER, "ADDONS": {"scrapy_proxybalance.Addon": 0}, "PROXY_POOL": farm.pool()[:n],
                        "PROXY_DOMAIN_COOLDOWN": 0, "PLAYWRIGHT_MAX_CONTEXTS": args.contexts,
                        "PROXY_STATS_INTERVAL": 0}
            runs[f"pool-{n}"] = (settings, {})
        results: dict[str, list[dict]] = {}
        for _ in range(args.repeat):
            for name, (settings, meta) in runs.items():
                results.setdefault(name, []).append(run(name, settings, meta, urls, Path(tmp)))
    base = statistics.median(r["pages"] / r["wall"] for r in results["single"])
    print(f"{'run':<10} {'pages':>7} {'wall s':>7} {'pages/s':>8} {'vs single':>9} {'contexts':>9} {'closed':>7}"
          f" {'peak MiB':>9}")
    for name, rs in results.items():
        wall = statistics.median(r["wall"] for r in rs)
        rate = statistics.median(r["pages"] / r["wall"] for r in rs)
        opened = statistics.median(r["stats"].get("playwright/context_count", 0) for r in rs)
        closed = statistics.median(r["stats"].get("proxybalance/playwright/contexts/closed", 0) for r in rs)
        peak = statistics.median(r["peak"] for r in rs) / 2**20
        pages = f"{min(r['valid'] for r in rs)}/{args.pages}"
        print(f"{name:<10} {pages:>7} {wall:>7.1f} {rate:>8.1f} {rate / base:>8.2f}x {opened:>9.0f} {closed:>7.0f}"
              f" {peak:>9.0f}")


if __name__ == "__main__":
    main()
