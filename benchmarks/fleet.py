"""One pool, many crawler processes: the shared state store (Redis) against each process's own.

Four tables (``--only`` picks one):

- ``fleet``: 3 crawler processes at once, 800 pages each (2,400 in all, each page asked for by
  one process), 20 healthy proxies of :mod:`scrapy_proxybalance.testing.farm`, a site that lets
  each (exit, site) pair make one request per 0.5 s and answers ``429 Retry-After: 10`` to the
  next one sooner. The shared store (``PROXY_STATE_URL=redis://127.0.0.1:6379/0``, a fresh
  random ``PROXY_STATE_NAMESPACE`` per run, its keys deleted after) against the memory store
  (each process alone), at the default cooldown; and the shared store at a cooldown equal to
  the site's limit (0.5 s). Pages ok, each page fetched once, the site's 429s, wall time (the
  first process's engine open to the last one's close) against what the limits allow
  (pairs x 2 requests/s; and pairs / cooldown, the stack's own pacing), claims (Redis round
  trips) per request sent, and CPU per page (the 3 processes' CPU over the pages).
- ``one``: one process, 2,400 pages through the same farm without the site's limit (10 sites,
  default settings): CPU per page and wall time, shared store against memory store.
- ``claims``: acquire + release pairs per second in this process, with the claim awaited per
  request as the middleware does (shared store) or not (memory store), pools of 20 and 1,000,
  10 sites, cooldown 0 (so that no acquire waits for a pair's gap: this measures the cost of a
  request, not pacing), one request at a time and 16 at once.
- ``keys``: 100,000 (``--requests``) acquire + claim + release against Redis, 16 at once,
  20 proxies x 50 sites, cooldown 0 (a gap would pace the run to pairs / gap requests per second),
  one failure in 1,000 (proxy facts written): the keys under the
  namespace and their memory after each quarter, the used_memory delta of ``INFO memory``
  (the server is shared: noisy), and each kind of key's TTLs (``PTTL``), which say when they
  would all be gone.

Every crawl runs in a child process (``python benchmarks/fleet.py --child JOB``); every server
binds 127.0.0.1; every loop is bounded in count and time.

    python benchmarks/fleet.py [--repeat N] [--only fleet|one|claims|keys] [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scrapy_proxybalance.config import DEFAULTS  # noqa: E402
from scrapy_proxybalance.testing.farm import Farm, ProxySpec  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/0"
PROXIES = 20
PROCESSES = 3
PAGES_EACH = 800
FLEET_SITES = 4
SITE_INTERVAL = 0.5  # the site's limit per (exit, site)
SITE_RETRY_AFTER = 10
ONE_SITES = 10
BASE = {
    "ADDONS": {"scrapy_proxybalance.Addon": 0},
    "LOG_LEVEL": "WARNING",
    "TELNETCONSOLE_ENABLED": False,
    "REMOTE_CONTROL_ENABLED": False,
    "DOWNLOAD_TIMEOUT": 10,
    "CONCURRENT_REQUESTS": 32,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 32,
    "PROXY_STATS_INTERVAL": 0,
}
FLEET_LIMIT = 90  # CLOSESPIDER_TIMEOUT of a fleet crawl with the shared store (seconds)
MEMORY_LIMIT = 60  # ... with the memory store (it provokes 429s: Retry-After 10 s holds)
ONE_LIMIT = 60
CLAIM_OPS = 20_000  # most pairs per run of the claims table
CLAIM_SECONDS = 4.0  # a run of the claims table stops after this long
CLAIM_SITES = [f"site-{i}.test" for i in range(10)]
KEYS_SITES = [f"site-{i}.test" for i in range(50)]
KEYS_POOL = 20
KEYS_SECONDS = 150.0  # the keys run stops after this long, whatever --requests says
WORKERS = 16
FAIL_EVERY = 1000  # the keys run: one request in this many fails (proxy facts are written)


def page_url(sites: int, i: int) -> str:
    """The i-th page of the whole crawl: the sites in turn."""
    return f"http://site-{i % sites}.test/page/{i // sites + 1}"


# -- the child: one crawler process -----------------------------------------------------------------


def child(job_path: str) -> None:
    """One crawl: pages ``first`` .. ``first + pages - 1``; writes the URLs it got right, its
    stats, engine open and close times (``time.monotonic``, one clock for every process of the
    machine) and its CPU time."""
    from scrapy import Request, Spider, signals
    from scrapy.crawler import CrawlerProcess

    from scrapy_proxybalance.testing.farm import token

    job = json.loads(Path(job_path).read_text())
    ok: list[str] = []
    counts = {"failed": 0, "wrong": 0}
    clock: dict[str, float] = {}

    class Fleet(Spider):
        name = "fleet"

        async def start(self):
            for i in range(job["first"], job["first"] + job["pages"]):
                yield Request(page_url(job["sites"], i), callback=self.parse, errback=self.failed, dont_filter=True)

        def parse(self, response):
            host, path = response.url.split("/", 3)[2], "/" + response.url.split("/", 3)[3]
            if token(host, path) in response.text:
                ok.append(response.url)
            else:
                counts["wrong"] += 1

        def failed(self, failure):
            counts["failed"] += 1

    def mark(key: str) -> Callable[[], None]:
        def at() -> None:
            clock.setdefault(key, time.monotonic())
            usage = resource.getrusage(resource.RUSAGE_SELF)
            clock.setdefault(f"cpu_{key}", usage.ru_utime + usage.ru_stime)

        return at

    process = CrawlerProcess(settings=job["settings"])
    crawler = process.create_crawler(Fleet)
    for key, signal in (("start", signals.spider_opened), ("end", signals.spider_closed)):
        crawler.signals.connect(mark(key), signal=signal, weak=False)
    process.crawl(crawler)
    process.start()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats = {k: v for k, v in crawler.stats.get_stats().items() if isinstance(v, int | float)}
    Path(job["out"]).write_text(json.dumps({
        **counts, "ok": ok, "start": clock["start"], "end": clock["end"], "stats": stats,
        "finish": str(crawler.stats.get_value("finish_reason")), "cpu": usage.ru_utime + usage.ru_stime,
        "cpu_crawl": clock["cpu_end"] - clock["cpu_start"],
    }))


# -- the parent: the farm and its records -----------------------------------------------------------


def on_farm_loop(farm: Farm, function: Callable[[], object]) -> object:
    """Run ``function`` in the farm's own thread (its records are that thread's)."""
    async def call() -> object:
        return function()

    return asyncio.run_coroutine_threadsafe(call(), farm.loop).result(timeout=30)


def reset_farm(farm: Farm, site_interval: float) -> None:
    def reset() -> None:
        for spec in farm.specs:
            spec.seen.clear()
            spec.last.clear()
            spec.ban_log.clear()
        farm.site_seen.clear()
        farm.site_limited.clear()
        farm.site_last.clear()
        farm.site.interval = site_interval
        farm.anchor = None

    on_farm_loop(farm, reset)


def farm_measures(farm: Farm) -> dict:
    """What the site saw: 429s, requests for pages, the least and the median gap between two
    requests of one exit to one site (across the whole fleet), and the time from the first
    request for a page to the last."""
    def measure() -> dict:
        pages = [s for s in farm.site_seen if s.path.startswith("/page/")]
        times: dict[tuple[str, str], list[float]] = {}
        for s in pages:
            times.setdefault((s.exit_ip, s.host), []).append(s.at)
        gaps = [b - a for ts in times.values() for a, b in zip(sorted(ts), sorted(ts)[1:], strict=False)]
        return {"site_429s": len(farm.site_limited), "proxy_429s": sum(len(s.ban_log) for s in farm.specs),
                "site_requests": len(pages), "min_gap": min(gaps) if gaps else None,
                "median_gap": statistics.median(gaps) if gaps else None,
                "span": pages[-1].at - pages[0].at if len(pages) > 1 else None}

    return on_farm_loop(farm, measure)  # type: ignore[return-value]


def delete_namespace(namespace: str) -> int:
    import redis

    server = redis.Redis.from_url(REDIS_URL)
    keys = list(server.scan_iter(f"{{{namespace}}}:*", count=1000))  # the pool's keys are under its hash tag
    for i in range(0, len(keys), 500):
        server.delete(*keys[i:i + 500])
    server.close()
    return len(keys)


def crawl_fleet(farm: Farm, tmp: Path, jobs: list[dict], limit: float) -> dict:
    """Crawl ``jobs`` (``first``, ``pages``, ``sites``, ``settings``) at once, one process each;
    the farm's measures and the processes' results together."""
    procs = []
    for n, job in enumerate(jobs):
        job_path, out = tmp / f"job-{n}.json", tmp / f"out-{n}.json"
        out.unlink(missing_ok=True)
        job_path.write_text(json.dumps({**job, "out": str(out)}))
        err = (tmp / f"err-{n}.txt").open("w")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs.append((subprocess.Popen([sys.executable, __file__, "--child", str(job_path)], env=env,
                                       stdout=subprocess.DEVNULL, stderr=err), out, err, tmp / f"err-{n}.txt"))
    deadline = time.monotonic() + limit + 60
    results, errors = [], []
    for proc, out, err, err_path in procs:
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()  # by its own handle: a child this script started
            proc.wait()
            errors.append(f"no end after {limit + 60:.0f} s (killed)")
        err.close()
        if out.exists() and proc.returncode == 0:
            results.append(json.loads(out.read_text()))
        elif proc.returncode is not None and proc.returncode >= 0:
            lines = err_path.read_text().strip().splitlines()
            errors.append(lines[-1] if lines else f"exit {proc.returncode}")
    measures = farm_measures(farm)
    ok = Counter(url for r in results for url in r["ok"])
    stats: Counter[str] = Counter()
    for r in results:
        stats.update(r["stats"])
    return {
        **measures, "errors": errors, "processes": len(results),
        "ok": len(ok), "once": all(n == 1 for n in ok.values()), "dupes": sum(n - 1 for n in ok.values()),
        "failed": sum(r["failed"] + r["wrong"] for r in results),
        "wall": max(r["end"] for r in results) - min(r["start"] for r in results) if results else None,
        "cpu": sum(r["cpu"] for r in results), "cpu_crawl": sum(r["cpu_crawl"] for r in results),
        "stats": dict(stats),
        "finish": Counter(r["finish"] for r in results), "per_process": [len(r["ok"]) for r in results],
    }


def crawl_settings(farm: Farm, shared: bool, limit: float, **extra: object) -> tuple[dict, str | None]:
    settings = {**BASE, "PROXY_POOL": farm.pool(), "CLOSESPIDER_TIMEOUT": limit, **extra}
    namespace = None
    if shared:
        namespace = f"fleet-bench-{secrets.token_hex(6)}"
        settings.update(PROXY_STATE_URL=REDIS_URL, PROXY_STATE_NAMESPACE=namespace)
    return settings, namespace


def run_crawl(farm: Farm, tmp: Path, processes: int, pages_each: int, sites: int, site_interval: float,
              shared: bool, limit: float, **extra: object) -> dict:
    reset_farm(farm, site_interval)
    settings, namespace = crawl_settings(farm, shared, limit, **extra)
    jobs = [{"first": n * pages_each, "pages": pages_each, "sites": sites, "settings": settings}
            for n in range(processes)]
    try:
        result = crawl_fleet(farm, tmp, jobs, limit)
    finally:
        if namespace is not None:
            delete_namespace(namespace)
    time.sleep(0.5)  # the last answers' gaps pass before the next run
    return result


# -- tables ----------------------------------------------------------------------------------------


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    sys.stdout.flush()


def med(values: list[float | None], fmt: str) -> str:
    """The median of the runs (± half their range when there are several)."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    m = statistics.median(values)
    spread = f" ±{(max(values) - min(values)) / 2:{fmt}}" if len(values) > 1 else ""
    return f"{m:{fmt}}{spread}"


def claims_per_request(r: dict) -> float | None:
    sent = r["stats"].get("proxybalance/requests", 0)
    return r["stats"].get("proxybalance/state/claims", 0) / sent if sent else None


def cpu_per_page(r: dict, key: str = "cpu") -> float | None:
    """CPU ms per page ok: the processes' whole (``cpu``), or from engine open to close (``cpu_crawl``)."""
    return 1000 * r[key] / r["ok"] if r["ok"] else None


def notes_of(label: str, runs: list[dict]) -> list[str]:
    """What went wrong in a row's runs (errors, unfinished crawls, store trouble, open leases)."""
    lines = []
    for i, r in enumerate(runs, 1):
        bad = {k: v for k, v in r["finish"].items() if k != "finished"}
        stats = r["stats"]
        trouble = [f"{k.split('/', 1)[1]} {v}" for k, v in sorted(stats.items())
                   if k in ("proxybalance/state/errors", "proxybalance/leases_open_at_close", "proxybalance/no_proxy",
                            "proxybalance/retry/max_reached", "proxybalance/ejections")]
        parts = [f"errors: {r['errors']}" if r["errors"] else "", f"finish: {dict(bad)}" if bad else "",
                 f"{r['failed']} failed" if r["failed"] else "", ", ".join(trouble)]
        parts = [p for p in parts if p]
        split = "/".join(str(n) for n in r["per_process"])
        lines.append(f"- {label}, run {i}: pages per process {split}; requests sent "
                     f"{stats.get('proxybalance/requests', 0)}, claims {stats.get('proxybalance/state/claims', 0)}, "
                     f"claims lost {stats.get('proxybalance/state/claims_lost', 0)}, retries "
                     f"{stats.get('proxybalance/retry/count', 0)}, waits {stats.get('proxybalance/waits', 0)}"
                     + (f"; {'; '.join(parts)}" if parts else ""))
    return lines


def fleet_table(farm: Farm, tmp: Path, repeat: int) -> None:
    pages = PROCESSES * PAGES_EACH
    pairs = PROXIES * FLEET_SITES
    cooldown = float(DEFAULTS["PROXY_DOMAIN_COOLDOWN"])
    stacks = [("shared store (Redis), default cooldown", True, cooldown, {}, FLEET_LIMIT),
              ("memory store (each process alone), default cooldown", False, cooldown, {}, MEMORY_LIMIT),
              (f"shared store (Redis), cooldown {SITE_INTERVAL:g} s", True, SITE_INTERVAL,
               {"PROXY_DOMAIN_COOLDOWN": SITE_INTERVAL}, FLEET_LIMIT)]
    rows, notes = [], []
    for label, shared, gap, extra, limit in stacks:
        runs = [run_crawl(farm, tmp, PROCESSES, PAGES_EACH, FLEET_SITES, SITE_INTERVAL, shared, limit, **extra)
                for _ in range(repeat)]
        ideal = pages / (pairs / SITE_INTERVAL)
        paced = pages / (pairs / max(gap, SITE_INTERVAL))
        rows.append([label, med([r["ok"] for r in runs], ".0f") + f" / {pages:,}",
                     "yes" if all(r["once"] and r["ok"] == pages for r in runs) else "no",
                     med([r["site_429s"] + r["proxy_429s"] for r in runs], ".0f"),
                     med([r["site_requests"] for r in runs], ".0f"),
                     med([r["wall"] for r in runs], ".1f"), f"{ideal:.1f}", f"{paced:.1f}",
                     med([r["span"] for r in runs], ".1f"),
                     med([claims_per_request(r) for r in runs], ".3f"),
                     med([cpu_per_page(r) for r in runs], ".2f"),
                     med([cpu_per_page(r, "cpu_crawl") for r in runs], ".2f"),
                     med([r["min_gap"] for r in runs], ".3f"), med([r["median_gap"] for r in runs], ".3f")])
        notes += notes_of(label, runs)
    table(f"Fleet crawl: {PROCESSES} processes x {PAGES_EACH} pages over {FLEET_SITES} sites, {PROXIES} healthy"
          f" proxies; the site allows each (exit, site) one request per {SITE_INTERVAL:g} s, else 429 Retry-After:"
          f" {SITE_RETRY_AFTER}",
          ["stack", "pages ok", "each page once", "429s", "requests at the site", "wall s",
           f"ideal s (pairs x {1 / SITE_INTERVAL:g}/s)", "ideal s at the cooldown", "site's first to last page s",
           "claims per request", "CPU ms per page", "of it crawling (open to close)", "least gap (exit, site) s",
           "median gap s"], rows)
    print(f"\nideal: {pages:,} pages / ({pairs} pairs x {1 / SITE_INTERVAL:g} requests/s); at the cooldown: the "
          f"stack's own pacing (one request per pair per cooldown, default {cooldown:g} s), latency left out. "
          "Wall: the first process's engine open to the last one's close. CPU: the 3 processes' own (start-up "
          "included; 'of it crawling': from engine open to close), over the pages ok. Claims per request: "
          "proxybalance/state/claims over proxybalance/requests (requests sent).")
    for line in notes:
        print(line)


def one_table(farm: Farm, tmp: Path, repeat: int) -> None:
    pages = PROCESSES * PAGES_EACH
    rows, notes, cpu = [], [], {}
    stacks = (("shared store (Redis)", True), ("memory store", False))
    results: dict[bool, list[dict]] = {shared: [] for _, shared in stacks}
    for _ in range(repeat):  # the stores in turn, so that a busier moment of the machine hits both
        for _, shared in stacks:
            results[shared].append(run_crawl(farm, tmp, 1, pages, ONE_SITES, 0.0, shared, ONE_LIMIT))
    for label, shared in stacks:
        runs = results[shared]
        per_page = [cpu_per_page(r, "cpu_crawl") for r in runs]
        cpu[shared] = statistics.median(v for v in per_page if v is not None) if any(per_page) else None
        rows.append([label, med([r["ok"] for r in runs], ".0f") + f" / {pages:,}",
                     med([cpu_per_page(r) for r in runs], ".2f"), med(per_page, ".2f"),
                     med([r["wall"] for r in runs], ".1f"), med([claims_per_request(r) for r in runs], ".3f"),
                     med([r["stats"].get("proxybalance/waits", 0) for r in runs], ".0f"),
                     med([r["median_gap"] for r in runs], ".3f")])
        notes += notes_of(label, runs)
    table(f"One process: shared store vs memory ({pages:,} pages over {ONE_SITES} sites, {PROXIES} proxies, "
          "no site limit, default settings)",
          ["store", "pages ok", "CPU ms per page", "of it crawling (open to close)", "wall s", "claims per request",
           "waits",
           "median gap (exit, site) s"], rows)
    if cpu.get(True) and cpu.get(False):
        print(f"\nCPU per page while crawling, shared / memory: {cpu[True] / cpu[False]:.2f}x")
    for line in notes:
        print(line)


# -- in-process: claims per second, keys ------------------------------------------------------------


def make_balancer(pool_size: int, store: object, cooldown: float) -> tuple[object, object]:
    from scrapy_proxybalance.core.balancer import Balancer
    from scrapy_proxybalance.core.proxy import Proxy
    from scrapy_proxybalance.core.strategies import STRATEGIES

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from selection import make_rules

    rules = make_rules(cooldown)
    pool = [Proxy("http", f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", 8000 + i % 7) for i in range(pool_size)]
    return Balancer(pool, STRATEGIES[DEFAULTS["PROXY_STRATEGY"]], rules, store=store, rng=random.Random(0)), rules


async def requests_loop(balancer, rules, store, shared: bool, sites: list[str], ops: int, seconds: float,
                        workers: int, fail_every: int = 0, checkpoint: Callable[[int], object] | None = None,
                        every: int = 0) -> dict:
    """``workers`` coroutines, each acquiring a proxy, claiming its pair (shared store: the
    middleware's one awaited round trip, its alternates offered), releasing it at once; up to
    ``ops`` requests in all, for at most ``seconds``. ``checkpoint(done)`` every ``every`` requests."""
    from scrapy_proxybalance.core.leases import Ask, Lease
    from scrapy_proxybalance.core.outcomes import Outcome

    asks = [Ask(s) for s in sites]
    counts = Counter()
    issued = 0
    deadline = time.monotonic() + seconds
    alternates = 3 if shared else 0  # the middleware's CLAIM_CANDIDATES - 1

    async def worker() -> None:
        nonlocal issued
        while issued < ops and time.monotonic() < deadline:
            i = issued
            issued += 1
            ask = asks[i % len(asks)]
            result = balancer.acquire(ask, alternates)
            if not isinstance(result, Lease):
                counts["waits"] += 1
                await asyncio.sleep(min(result.seconds, 0.05))
                continue
            lease = result
            if shared:
                gap, limit = balancer.pair_rule(lease.site, lease.at)
                keys = [lease.state.key, *lease.alternates]
                counts["claims"] += 1
                claimed = await store.claim(lease.site, keys, lease.number, limit, gap)
                if claimed is None:
                    counts["lost"] += 1
                    balancer.cancel(lease)
                    continue
                if claimed[0] != keys[0]:
                    counts["switched"] += 1
                    lease = balancer.switch(lease, claimed[0])
            else:
                await asyncio.sleep(0)  # the middleware's request yields to the loop too
            failed = fail_every and i % fail_every == fail_every - 1
            balancer.release(lease, Outcome.FAILURE if failed else Outcome.SUCCESS, None if failed else 0.005,
                             reason="bench failure" if failed else "")
            counts["done"] += 1
            if checkpoint is not None and every and counts["done"] % every == 0:
                await checkpoint(counts["done"])

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    counts["elapsed"] = time.perf_counter() - started
    return dict(counts)


def redis_store(namespace: str):
    from scrapy_proxybalance.stores.redis import RedisStore

    lease_ttl = 2 * 180.0 + 10  # what the middleware uses at Scrapy's default DOWNLOAD_TIMEOUT
    return RedisStore(REDIS_URL, namespace, lease_ttl=lease_ttl, timeout=0.5)


async def claims_run(shared: bool, pool_size: int, workers: int) -> dict:
    from scrapy_proxybalance.stores.memory import MemoryStore

    namespace = f"fleet-bench-{secrets.token_hex(6)}"
    store = redis_store(namespace) if shared else MemoryStore()
    balancer, rules = make_balancer(pool_size, store, 0.0)
    errors: list[str] = []
    if shared:
        store.on_trouble = errors.append
    await store.start()
    try:
        counts = await requests_loop(balancer, rules, store, shared, CLAIM_SITES, CLAIM_OPS, CLAIM_SECONDS, workers)
    finally:
        await store.close()
        if shared:
            delete_namespace(namespace)
    counts["errors"] = len(errors)
    return counts


def claims_table(repeat: int) -> None:
    rows = []
    results: dict[tuple[bool, int, int], list[dict]] = {}
    for pool_size in (20, 1000):
        for workers in (1, WORKERS):
            for shared in (True, False):
                runs = [asyncio.run(claims_run(shared, pool_size, workers)) for _ in range(repeat)]
                results[shared, pool_size, workers] = runs
                rate = [r.get("done", 0) / r["elapsed"] for r in runs]
                rows.append([f"{'shared (Redis)' if shared else 'memory'}", f"{pool_size:,}", str(workers),
                             med(rate, ",.0f"), med([1e6 / x if x else None for x in rate], ",.0f"),
                             med([r.get("claims", 0) / r["done"] if r.get("done") else None for r in runs], ".3f"),
                             med([r.get("lost", 0) for r in runs], ".0f"),
                             med([r.get("switched", 0) for r in runs], ".0f"),
                             med([r.get("waits", 0) for r in runs], ".0f"),
                             med([r["errors"] for r in runs], ".0f")])
    table(f"Claims per second: acquire (+ claim) + release in one process, {len(CLAIM_SITES)} sites, cooldown 0, "
          f"up to {CLAIM_OPS:,} requests or {CLAIM_SECONDS:g} s per run",
          ["store", "pool", "at once", "pairs/s", "us per pair", "claims per pair", "claims lost", "switched to an "
           "alternate", "waits", "store errors"], rows)
    print("\nA claim is one Lua script call (EVALSHA) awaited per request; the other writes go behind, in "
          "pipelines, every 20 ms. 'at once': coroutines with a request each (a crawl has CONCURRENT_REQUESTS).")


async def keys_run(requests: int) -> dict:
    import redis.asyncio as aredis

    namespace = f"fleet-bench-{secrets.token_hex(6)}"
    store = redis_store(namespace)
    balancer, rules = make_balancer(KEYS_POOL, store, 0.0)
    errors: list[str] = []
    store.on_trouble = errors.append
    admin = aredis.Redis.from_url(REDIS_URL)
    before = (await admin.info("memory"))["used_memory"]
    snapshots: list[dict] = []

    async def look(done: int) -> None:
        snapshots.append({"done": done, **await survey(admin, namespace)})

    await store.start()
    try:
        counts = await requests_loop(balancer, rules, store, True, KEYS_SITES, requests, KEYS_SECONDS, WORKERS,
                                     fail_every=FAIL_EVERY, checkpoint=look, every=max(1, requests // 4))
    finally:
        await store.close()
    final = await survey(admin, namespace)
    after = (await admin.info("memory"))["used_memory"]
    stream = await admin.xlen(f"{namespace}:events")
    deleted = delete_namespace(namespace)
    await asyncio.sleep(0.2)
    cleaned = (await admin.info("memory"))["used_memory"]
    await admin.aclose()
    return {"counts": counts, "snapshots": snapshots, "final": final, "before": before, "after": after,
            "cleaned": cleaned, "stream": stream, "deleted": deleted, "errors": errors}


async def survey(admin, namespace: str) -> dict:
    """Keys under ``namespace`` by kind (the part after the namespace), with their memory and TTLs."""
    keys = [k async for k in admin.scan_iter(f"{{{namespace}}}:*", count=1000)]
    kinds: dict[str, dict] = {}
    for i in range(0, len(keys), 500):
        chunk = keys[i:i + 500]
        async with admin.pipeline(transaction=False) as pipe:
            for k in chunk:
                pipe.pttl(k)
                pipe.memory_usage(k)
            replies = await pipe.execute()
        for j, k in enumerate(chunk):
            kind = k.decode()[len(namespace) + 3:].split(":", 1)[0]
            pttl, size = replies[2 * j], replies[2 * j + 1] or 0
            entry = kinds.setdefault(kind, {"keys": 0, "bytes": 0, "no_ttl": 0, "min_ttl": None, "max_ttl": None})
            entry["keys"] += 1
            entry["bytes"] += size
            if pttl < 0:
                entry["no_ttl"] += 1
            else:
                entry["min_ttl"] = pttl if entry["min_ttl"] is None else min(entry["min_ttl"], pttl)
                entry["max_ttl"] = pttl if entry["max_ttl"] is None else max(entry["max_ttl"], pttl)
    return {"keys": len(keys), "bytes": sum(e["bytes"] for e in kinds.values()), "kinds": kinds}


def keys_table(requests: int) -> None:
    r = asyncio.run(keys_run(requests))
    counts = r["counts"]
    done = counts.get("done", 0)
    rows = [[f"{s['done']:,}", f"{s['keys']:,}", f"{s['bytes'] / 1024:,.0f}"] for s in r["snapshots"]]
    rows.append([f"{done:,} (end, after the last writes)", f"{r['final']['keys']:,}",
                 f"{r['final']['bytes'] / 1024:,.0f}"])
    table(f"Keys after N requests: acquire + claim + release against Redis, {KEYS_POOL} proxies x {len(KEYS_SITES)} "
          f"sites, cooldown 0, {WORKERS} at once, one in {FAIL_EVERY:,} a failure",
          ["requests done", "keys under the namespace", "their memory KiB (MEMORY USAGE)"], rows)
    kinds = r["final"]["kinds"]
    table("Keys by kind at the end, and their TTLs",
          ["kind", "keys", "KiB", "keys without a TTL", "least TTL s", "most TTL s"],
          [[kind, f"{e['keys']:,}", f"{e['bytes'] / 1024:,.0f}", str(e["no_ttl"]),
            f"{e['min_ttl'] / 1000:,.0f}" if e["min_ttl"] is not None else "-",
            f"{e['max_ttl'] / 1000:,.0f}" if e["max_ttl"] is not None else "-"] for kind, e in sorted(kinds.items())])
    most = max((e["max_ttl"] or 0 for e in kinds.values()), default=0)
    no_ttl = sum(e["no_ttl"] for e in kinds.values())
    rate = done / counts["elapsed"] if counts.get("elapsed") else 0
    print(f"\n{done:,} of {requests:,} requests in {counts.get('elapsed', 0):.1f} s ({rate:,.0f}/s), "
          f"claims {counts.get('claims', 0):,}, lost {counts.get('lost', 0):,}, waits {counts.get('waits', 0):,}, "
          f"store errors {len(r['errors'])}; the events stream holds {r['stream']:,} entries. INFO memory "
          f"used_memory: {r['before'] / 1e6:.2f} MB before, {r['after'] / 1e6:.2f} MB after "
          f"({(r['after'] - r['before']) / 1e6:+.2f} MB; the server is shared, so this is noisy), "
          f"{r['cleaned'] / 1e6:.2f} MB once the {r['deleted']:,} keys were deleted. "
          f"Every key would be gone {most / 1000:,.0f} s after the last request"
          + (f"; {no_ttl} key(s) have no TTL and would never go" if no_ttl else " (each key has a TTL)") + ". "
          "A pair's in-flight set (busy) is gone when its last request ends; a site's held set exists only "
          "while its gap is above 0 (one per site).")


# -- main ------------------------------------------------------------------------------------------


TABLES = ("fleet", "one", "claims", "keys")
DEFAULT_REPEAT = {"one": 3}  # runs per row unless --repeat says otherwise (else 1): about 5 minutes in all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, help="runs per row (default: 3 for the table 'one', else 1)")
    parser.add_argument("--only", choices=TABLES, action="append", help="only this table (may be repeated)")
    parser.add_argument("--requests", type=int, default=100_000, help="requests of the keys table (default 100,000)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    import redis
    import scrapy

    try:
        server = redis.Redis.from_url(REDIS_URL)
        version = server.info("server")["redis_version"]
        server.close()
    except redis.RedisError as exc:
        parser.error(f"no Redis at {REDIS_URL}: {exc}")
    repeats = {name: max(1, args.repeat) if args.repeat else DEFAULT_REPEAT.get(name, 1) for name in TABLES}
    only = args.only or list(TABLES)
    started = time.monotonic()
    print(f"{time.strftime('%Y-%m-%d')}, Scrapy {scrapy.__version__}, python {sys.version.split()[0]}, "
          f"Redis {version} at 127.0.0.1:6379, {os.cpu_count()} cores; runs per row: "
          f"{', '.join(f'{name} {repeats[name]}' for name in only if name != 'keys')} (median ±half-range)")
    if "fleet" in only or "one" in only:
        specs = [ProxySpec(f"p{i}") for i in range(PROXIES)]
        with Farm(specs, site_interval=SITE_INTERVAL, site_retry_after=SITE_RETRY_AFTER) as farm, \
                tempfile.TemporaryDirectory() as tmpdir:
            if "fleet" in only:
                fleet_table(farm, Path(tmpdir), repeats["fleet"])
            if "one" in only:
                one_table(farm, Path(tmpdir), repeats["one"])
    if "claims" in only:
        claims_table(repeats["claims"])
    if "keys" in only:
        keys_table(max(1, args.requests))
    print(f"\n(took {time.monotonic() - started:.0f} s)")
    return None


if __name__ == "__main__":
    main()
