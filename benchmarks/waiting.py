"""Requests that wait for a proxy: a JOBDIR pause and resume, and memory with a large frontier.

Each crawl is a real Scrapy crawl in a child process (the child of ``benchmarks/crawl.py``)
through the local farm (:mod:`scrapy_proxybalance.testing.farm`), with requests that go
through the duplicate filter, as a spider's frontier does.

``resume``: 3,000 pages of one site through 2 proxies at PROXY_DOMAIN_COOLDOWN 1 s (2 pages/s),
so nearly every request waits; ``JOBDIR`` set; the crawl is paused by CLOSESPIDER_TIMEOUT = 4 s,
then the same job is resumed to the end through another, faster pool (40 proxies, cooldown
0.1 s; the plugin keys proxies by URL, so the resumed run has its own). Counted at the site:
distinct pages fetched, and pages fetched more than once. Target: 3,000 of 3,000, none twice.

``memory``: a 100,000-request frontier for one site, ``JOBDIR`` set, crawled at about 2 pages/s
for CLOSESPIDER_TIMEOUT = 20 s: through the plugin (2 proxies, cooldown 1 s; up to
PROXY_MAX_WAITING requests wait in memory), and through plain Scrapy (one proxy in ``meta``,
DOWNLOAD_DELAY 0.5 s). Peak RSS (``ru_maxrss``, i.e. VmHWM) of each crawl process, measured
in that process at its end. Target: the plugin within 30 MB of plain.

    python benchmarks/waiting.py [--only resume|memory] [--repeat N] [--log-dir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

# crawl.py (next to this script) puts the repository on sys.path, and runs the child crawls
from crawl import BASE, PLAIN_PROXY, crawl_timeout, hosts, on_farm_loop, run_child

from scrapy_proxybalance.testing.farm import Farm, ProxySpec

PLUGIN = {"ADDONS": {"scrapy_proxybalance.Addon": 0}}
RESUME_PAGES = 3000
FRONTIER = 100_000
RSS_TARGET_MB = 30


def job(settings: dict, pages: int, proxies: list[str] | None = None, log: Path | None = None) -> dict:
    """A child crawl of ``pages`` pages of one site, through the duplicate filter."""
    settings = {**BASE, **settings}
    if log is not None:
        settings.update(LOG_FILE=str(log), LOG_LEVEL="INFO")
    return {"settings": settings, "hosts": hosts(1), "pages": pages, "proxies": proxies or [], "filter": True}


def crawl(spec: dict, tmp: Path) -> dict:
    """Run a child crawl; a failed one stops the benchmark with its error."""
    out = run_child(spec, tmp, crawl_timeout(spec["settings"]))
    if "error" in out:
        sys.exit(f"crawl failed: {out['error']}")
    return out


def site_hits(farm: Farm, since: int = 0) -> Counter:
    """Requests for each page the site received (from its ``since``-th request on)."""
    def count() -> Counter:
        return Counter(s.path for s in farm.site_seen[since:] if s.path.startswith("/page/"))

    return on_farm_loop(farm, count)  # type: ignore[return-value]


def resume(tmp: Path, log_dir: Path | None) -> None:
    """A JOBDIR crawl paused while nearly every request waits for a proxy, then resumed."""
    specs = [ProxySpec(f"a{i}") for i in range(2)] + [ProxySpec(f"b{i}") for i in range(40)]
    jobdir = {"JOBDIR": str(tmp / "resume-job")}
    runs = [("first (paused by CLOSESPIDER_TIMEOUT 4)", 2, 1.0, {"CLOSESPIDER_TIMEOUT": 4}),
            ("resumed", 40, 0.1, {"CLOSESPIDER_TIMEOUT": 180})]
    print(f"\n### resume: {RESUME_PAGES} pages of one site, JOBDIR, paused while requests wait, then resumed "
          "(target: every page once)\n")
    print("| run | pool | PROXY_DOMAIN_COOLDOWN | pages ok | failed | site requests | waits | most waiting "
          "| requeued (room full) | wall s | finish |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with Farm(specs) as farm:
        pools = {2: [s.url for s in specs[:2]], 40: [s.url for s in specs[2:]]}
        ok = 0
        for i, (name, size, cooldown, own) in enumerate(runs):
            settings = {**PLUGIN, **jobdir, **own, "PROXY_POOL": pools[size], "PROXY_DOMAIN_COOLDOWN": cooldown}
            log = log_dir / f"waiting-resume-{i + 1}.log" if log_dir else None
            before = on_farm_loop(farm, lambda: len(farm.site_seen))
            out = crawl(job(settings, RESUME_PAGES, log=log), tmp)
            hits = site_hits(farm, before)  # type: ignore[arg-type]
            ok += out["ok"]
            stats = out["stats"]
            print(f"| {name} | {size} proxies | {cooldown:g} s | {out['ok']} | {out['failed']} | "
                  f"{sum(hits.values())} | {stats.get('proxybalance/waits', 0)} "
                  f"| {stats.get('proxybalance/waiting/max', 0)} | {stats.get('proxybalance/waiting/requeued', 0)} "
                  f"| {out['wall']:.1f} | {out['finish']} |")
        total = site_hits(farm)
    print(f"\ndistinct pages fetched at the site: {len(total)} of {RESUME_PAGES}; fetched more than once: "
          f"{sum(1 for n in total.values() if n > 1)}; pages ok in the two runs: {ok}")


def memory_stacks(farm: Farm) -> dict[str, dict]:
    """The two ways to crawl the frontier at about 2 pages/s: settings, and a process proxy."""
    pool = [s.url for s in farm.specs if s.name != PLAIN_PROXY]
    plain = next(s.url for s in farm.specs if s.name == PLAIN_PROXY)
    return {"proxybalance (2 proxies, cooldown 1 s)": {"settings": {**PLUGIN, "PROXY_POOL": pool,
                                                                    "PROXY_DOMAIN_COOLDOWN": 1.0}},
            "plain (1 proxy as http_proxy, DOWNLOAD_DELAY 0.5 s)": {"settings": {"DOWNLOAD_DELAY": 0.5},
                                                                     "http_proxy": plain}}


def fill_frontier(farm: Farm, jobdir: Path, tmp: Path, log_dir: Path | None) -> dict:
    """Put the whole frontier into a JOBDIR's disk queue (and its seen set): a plain crawl at
    2 pages/s that takes every start request, then stops. Its requests carry no proxy, so
    either stack can resume the job."""
    stacks = memory_stacks(farm)
    plain = stacks[next(name for name in stacks if name.startswith("plain"))]
    settings = {**plain["settings"], "JOBDIR": str(jobdir), "CLOSESPIDER_TIMEOUT": 30}
    spec = job(settings, FRONTIER, log=log_dir / "waiting-memory-fill.log" if log_dir else None)
    return crawl({**spec, "http_proxy": plain["http_proxy"]}, tmp)


def memory_row(name: str, out: dict) -> str:
    stats = out["stats"]
    cells = [name, out["ok"], stats.get("scheduler/dequeued", 0), stats.get("proxybalance/waiting/max", "-"),
             stats.get("proxybalance/waiting/requeued", "-"), f"{out['maxrss_mb']:.1f}", f"{out['cpu']:.1f}",
             f"{out['wall']:.1f}", out["finish"]]
    return "| " + " | ".join(str(c) for c in cells) + " |"


def memory(tmp: Path, repeat: int, log_dir: Path | None) -> None:
    """Peak RSS of a crawl that resumes a JOBDIR holding a large frontier, with and without
    the plugin; each run resumes its own copy of the same filled JOBDIR."""
    print(f"\n### memory: a JOBDIR holding a {FRONTIER:,}-request frontier for one site, resumed at about "
          f"2 pages/s for CLOSESPIDER_TIMEOUT 20 s (target: within {RSS_TARGET_MB} MB of plain)\n")
    peaks: dict[str, list[float]] = {}
    with Farm([ProxySpec("m0"), ProxySpec("m1"), ProxySpec(PLAIN_PROXY)]) as farm:
        filled = fill_frontier(farm, tmp / "memory-frontier", tmp, log_dir)
        print(f"frontier: {filled['stats'].get('scheduler/enqueued', 0):,} requests queued on disk by a first run "
              f"(plain, {filled['ok']} pages fetched)\n")
        print("| stack | pages ok | requests dequeued | most waiting in memory | requeued (room full) | peak RSS MB "
              "| CPU s | wall s | finish |")
        print("|---|---|---|---|---|---|---|---|---|")
        for n, (name, stack) in enumerate(memory_stacks(farm).items(), 1):
            for i in range(1, repeat + 1):
                jobdir = tmp / f"memory-{n}-{i}"
                shutil.copytree(tmp / "memory-frontier", jobdir)
                settings = {**stack["settings"], "JOBDIR": str(jobdir), "CLOSESPIDER_TIMEOUT": 20}
                log = log_dir / f"waiting-memory-{n}-{i}.log" if log_dir else None
                out = crawl({**job(settings, FRONTIER, log=log), "http_proxy": stack.get("http_proxy")}, tmp)
                peaks.setdefault(name, []).append(out["maxrss_mb"])
                print(memory_row(name, out))
                shutil.rmtree(jobdir)
    ours, plain = (statistics.median(v) for v in peaks.values())
    print(f"\npeak RSS, proxybalance - plain: {ours - plain:+.1f} MB (median of {repeat} run(s) each)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["resume", "memory"])
    parser.add_argument("--repeat", type=int, default=1, help="runs per stack of the memory measurement")
    parser.add_argument("--log-dir", type=Path, help="keep each crawl's log (LOG_LEVEL INFO) in this directory")
    args = parser.parse_args()
    import scrapy

    if args.log_dir:
        args.log_dir.mkdir(parents=True, exist_ok=True)
    print(f"{time.strftime('%Y-%m-%d')}, Scrapy {scrapy.__version__}, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmpdir:
        if args.only in (None, "resume"):
            resume(Path(tmpdir), args.log_dir)
        if args.only in (None, "memory"):
            memory(Path(tmpdir), args.repeat, args.log_dir)


if __name__ == "__main__":
    main()
