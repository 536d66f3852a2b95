"""Selection cost: acquire + release pairs per second, per strategy and pool size.

A simulated crawl on a fake clock: 10 domains in turn, PROXY_DOMAIN_COOLDOWN = 1 s, each
lease released as a success after its latency (drawn from 50-500 ms) has passed. The crawl
rate is 1,000 requests/s, or half the pool's capacity (pool x domains / cooldown) when that
is lower, so that acquires lease rather than wait: this measures choosing a proxy. The
``saturated`` table runs small pools at 1,000 requests/s, where most acquires must wait.

The ``steady state`` table runs at cooldown 0 once every proxy has answered at least once
(each proxy has a latency estimate, as deep into a crawl; the warm-up's answers are past
the time the store remembers them before timing starts): 1,000 requests/s, each released
after 2-8 ms of fake time, so few are in flight and an acquire is limited neither by a cooldown
nor by a proxy's concurrency limit (slow start). Target: within 2x from the smallest pool to
the largest, for every strategy.

The other rules are the settings' defaults (``scrapy_proxybalance.config.DEFAULTS``), with
Scrapy's default CONCURRENT_REQUESTS_PER_DOMAIN (8) as the pair limit.

``--baseline REV`` also runs the ``selection.py`` of git revision ``REV`` (the first release:
``95ae433``) from a copy of it, right after the leasing table, then this code's runs at the
largest pool again, and prints each strategy's cost a pair there (the median of this code's
runs before and after: the machine's speed drifts) beside that baseline's and the target
(:data:`TARGET_US`).

    python benchmarks/selection.py [--repeat 3] [--ops 20000] [--sizes 10,1000,100000] [--baseline 95ae433]
"""

from __future__ import annotations

import argparse
import gc
import heapq
import io
import random
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scrapy_proxybalance.config import DEFAULTS
from scrapy_proxybalance.core.balancer import Ask, Balancer, Lease
from scrapy_proxybalance.core.ejection import Backoff
from scrapy_proxybalance.core.outcomes import Outcome
from scrapy_proxybalance.core.proxy import Proxy
from scrapy_proxybalance.core.rules import Rules
from scrapy_proxybalance.core.sessions import SessionLimits
from scrapy_proxybalance.core.strategies import STRATEGIES
from scrapy_proxybalance.core.tiers import TierRules
from scrapy_proxybalance.stores.memory import MemoryStore

DOMAINS = [f"site-{i}.test" for i in range(10)]
ASKS = [Ask(d) for d in DOMAINS]
COOLDOWN = 1.0
PAIR_LIMIT = 8  # Scrapy's default CONCURRENT_REQUESTS_PER_DOMAIN, which the config reads as the pair limit
SECONDS_PER_RUN = 5.0  # a run stops after this long even if its ops are not done
STEADY_RATE = 1000.0  # requests/s of the steady-state table
STEADY_LATENCY = (0.002, 0.008)  # seconds a steady-state request is in flight (fake clock)
WARM_UP_SECONDS = 30.0  # the most a steady-state warm-up may take (it stops early, reported)
TARGET = 2.0  # the most a strategy may slow down from the smallest pool to the largest
TARGET_US = 5.0  # the most an acquire plus release may cost at the largest pool (µs)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_rules(cooldown: float) -> Rules:
    """The rules the settings' defaults make, at ``cooldown``."""
    d = DEFAULTS
    ban = d["PROXY_BAN_COOLDOWN"]
    return Rules(
        cooldown=cooldown,
        cooldown_max=max(d["PROXY_DOMAIN_COOLDOWN_MAX"], cooldown),
        pace_floor=cooldown,
        pair_limit=PAIR_LIMIT,
        max_failures=d["PROXY_MAX_FAILURES"],
        backoff=Backoff(d["PROXY_RECOVERY_INTERVAL"], d["PROXY_RECOVERY_MAX_INTERVAL"]),
        ban_backoff=Backoff(ban, max(ban, d["PROXY_BAN_MAX_COOLDOWN"])),
        retry_after_max=d["PROXY_RETRY_AFTER_MAX"],
        max_banned_sites=d["PROXY_MAX_BANNED_SITES"],
        retry_times=d["PROXY_RETRY_TIMES"],
        unavailable_timeout=d["PROXY_UNAVAILABLE_TIMEOUT"],
        sessions=SessionLimits(max_age=d["PROXY_SESSION_MAX_AGE"], max_requests=d["PROXY_SESSION_MAX_REQUESTS"],
                               max_errors=d["PROXY_SESSION_MAX_ERRORS"]),
        tiers=TierRules(d["PROXY_TIER_PROBE_INTERVAL"], d["PROXY_TIER_PROBE_MAX_INTERVAL"]),
    )


def make_pool(n: int) -> list[Proxy]:
    return [Proxy("http", f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", 8000 + i % 7, weight=1 + i % 3) for i in range(n)]


def make_balancer(strategy: str, pool: list[Proxy], cooldown: float, seed: int = 0,
                  clock: FakeClock | None = None) -> Balancer:
    return Balancer(pool, STRATEGIES[strategy], make_rules(cooldown), clock=clock or FakeClock(),
                    rng=random.Random(seed), store=MemoryStore())


def crawl(b: Balancer, clock: FakeClock, ops: int, rate: float, latencies: list[float],
          flying: list[tuple[float, int, Lease]]) -> tuple[float, float]:
    """Up to ``ops`` acquires at ``rate`` on the fake clock, each lease released as a success
    once its latency has passed (``flying``: a heap of (done at, seq, lease), left as it is at
    the end). Return (acquires per second of real time, share of acquires that leased)."""
    step, leased, done = 1.0 / rate, 0, 0
    acquire, release, success = b.acquire, b.release, Outcome.SUCCESS
    gc.collect()
    start = time.perf_counter()
    deadline = start + SECONDS_PER_RUN
    for i in range(ops):
        clock.now += step
        while flying and flying[0][0] <= clock.now:
            lease = heapq.heappop(flying)[2]
            release(lease, success, clock.now - lease.at)
        result = acquire(ASKS[i % 10])
        if type(result) is Lease:
            leased += 1
            heapq.heappush(flying, (clock.now + latencies[i & 1023], i, result))
        done = i + 1
        if not i & 1023 and time.perf_counter() > deadline:
            break
    elapsed = time.perf_counter() - start
    return done / elapsed, leased / max(1, done)


def leasing_rate(n: int) -> float:
    """The leasing table's crawl rate at a pool of ``n``: 1,000 requests/s, or half the pool's capacity."""
    return min(1000.0, 0.5 * n * len(DOMAINS) / COOLDOWN)


def run(strategy: str, pool: list[Proxy], ops: int, rate: float, seed: int) -> tuple[float, float]:
    """A fresh balancer at COOLDOWN: (acquire+release pairs per second, share of acquires that leased)."""
    clock = FakeClock()
    b = make_balancer(strategy, pool, COOLDOWN, seed, clock)
    rng = random.Random(seed)
    latencies = [rng.uniform(0.05, 0.5) for _ in range(1024)]
    return crawl(b, clock, ops, rate, latencies, [])


def warm_up(b: Balancer, clock: FakeClock, rng: random.Random) -> int:
    """Lease every proxy once and release it as a success with a latency, so each has a
    latency estimate and has left slow start's first step. Return the proxies warmed (all,
    unless WARM_UP_SECONDS ran out)."""
    deadline = time.perf_counter() + WARM_UP_SECONDS
    low, high = STEADY_LATENCY
    warmed = 0
    for i, p in enumerate(list(b.by_key.values())):
        lease = b.lease(p, ASKS[i % 10], clock.now)  # this proxy, whatever the strategy would pick
        clock.now += 0.0001
        b.release(lease, Outcome.SUCCESS, rng.uniform(low, high))
        warmed += 1
        if not i & 1023 and time.perf_counter() > deadline:
            break
    return warmed


def steady(strategy: str, pool: list[Proxy], ops: int, repeat: int) -> tuple[list[float], list[float], int]:
    """One warmed balancer at cooldown 0, timed ``repeat`` times: (pairs/s of each run,
    share leased of each run, proxies warmed)."""
    clock = FakeClock()
    b = make_balancer(strategy, pool, 0.0, 0, clock)
    rng = random.Random(0)
    warmed = warm_up(b, clock, rng)
    # The warm-up's answers are remembered for cooldown_max (60 s), then dropped, a whole
    # site's batch on its next release: let that happen before timing, as it would not in a
    # steady state. The proxies keep their latency estimates.
    clock.now += b.rules.cooldown_max + 1.0
    latencies = [rng.uniform(*STEADY_LATENCY) for _ in range(1024)]
    flying: list[tuple[float, int, Lease]] = []
    crawl(b, clock, min(ops, 2000), STEADY_RATE, latencies, flying)  # untimed: in-flight counts settle
    runs = [crawl(b, clock, ops, STEADY_RATE, latencies, flying) for _ in range(repeat)]
    return [r[0] for r in runs], [r[1] for r in runs], warmed


def memory_per_proxy(strategy: str, n: int) -> float:
    """Bytes per proxy of the pool plus a balancer over it (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    pool = make_pool(n)
    b = make_balancer(strategy, pool, COOLDOWN)
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del b, pool
    return size / n


def baseline_speeds(rev: str, size: int, repeat: int, ops: int) -> dict[str, float] | str:
    """Pairs/s per strategy at ``size`` proxies by the ``selection.py`` of git revision ``rev``
    (its leasing table), run from a copy of that revision; or why it could not run."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(root), "archive", rev], capture_output=True)
    if archive.returncode:
        return f"git archive {rev}: {archive.stderr.decode(errors='replace').strip()}"
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        script = Path(tmp) / "benchmarks" / "selection.py"
        done = subprocess.run([sys.executable, str(script), "--repeat", str(repeat), "--ops", str(ops),
                               "--sizes", str(size)], capture_output=True, text=True, timeout=900, cwd=tmp)
    if done.returncode:
        return f"{rev}'s selection.py failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}"
    lines = done.stdout.split("Leasing", 1)[-1].splitlines()
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines if line.startswith("| ")]
    if not rows or f"pool {size:,}: pairs/s" not in rows[0]:
        return f"{rev}'s selection.py printed no leasing table at {size:,} proxies"
    column = rows[0].index(f"pool {size:,}: pairs/s")
    speeds = {}
    for row in rows[1:]:
        found = re.match(r"([\d.,]+)k", row[column])
        if found:
            speeds[row[0]] = float(found.group(1).replace(",", "")) * 1000
    return speeds


def against_baseline(rev: str, size: int, ours: dict[str, float], theirs: dict[str, float] | str) -> str:
    """Each strategy's µs a pair at ``size`` proxies beside revision ``rev``'s and the target."""
    if isinstance(theirs, str):
        return f"\nbaseline {rev}: {theirs}"
    rows = []
    for name, speed in sorted(ours.items()):
        base = theirs.get(name)
        us = 1e6 / speed
        rows.append([name, f"{us:.1f}", f"{1e6 / base:.1f}" if base else "-", f"{base / speed:.2f}x" if base else "-",
                     "yes" if us <= TARGET_US else "no"])
    return table(f"Against {rev} (run between this code's runs; this code: the median of its runs before and"
                 f" after): acquire + release at {size:,} proxies, µs a pair",
                 ["strategy", "this code", rev, "this / baseline", f"<= {TARGET_US:g} µs"], rows)


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(r: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if i else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(r, widths, strict=True))) + " |"

    lines = [f"\n{title}\n", fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return "\n".join(lines + [fmt(r) for r in rows])


def spread(values: list[float]) -> str:
    med = statistics.median(values)
    return f"{med / 1000:,.0f}k ±{(max(values) - min(values)) / 2 / med:.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--sizes", default="10,1000,100000")
    parser.add_argument("--baseline", metavar="REV", help="a git revision to compare with (the first release: 95ae433)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    repeat, ops = max(1, args.repeat), max(1, args.ops)
    print(f"python {sys.version.split()[0]}, {repeat} runs of up to {ops:,} acquires each "
          f"(each stops after {SECONDS_PER_RUN:g} s); median ±half-range")
    pools = {n: make_pool(n) for n in sizes}

    rows, medians, largest = [], {}, sizes[-1]
    at_largest: dict[str, list[float]] = {}  # each strategy's runs at the largest pool
    for name in sorted(STRATEGIES):
        row = [name]
        for n in sizes:
            runs = [run(name, pools[n], ops, leasing_rate(n), seed) for seed in range(repeat)]
            speeds = [r[0] for r in runs]
            if n == largest:
                at_largest[name] = speeds
            medians[name, n] = statistics.median(speeds)
            row.append(f"{spread(speeds)} ({min(r[1] for r in runs):.0%} leased)")
        row.append(f"{medians[name, sizes[0]] / medians[name, sizes[-1]]:.2f}x")
        row.append(f"{memory_per_proxy(name, sizes[-1]):,.0f} B")
        rows.append(row)
    header = ["strategy", *(f"pool {n:,}: pairs/s" for n in sizes), f"slowdown {sizes[0]:,} -> {sizes[-1]:,}",
              f"memory/proxy at {sizes[-1]:,}"]
    print(table(f"Leasing (pool not saturated): cooldown {COOLDOWN:g} s, {len(DOMAINS)} domains", header, rows))
    if args.baseline:  # this code's runs before and after the baseline's: the machine's speed drifts
        theirs = baseline_speeds(args.baseline, largest, repeat, ops)
        again = {name: [run(name, pools[largest], ops, leasing_rate(largest), seed)[0] for seed in range(repeat)]
                 for name in sorted(STRATEGIES)}
        ours = {name: statistics.median(at_largest[name] + again[name]) for name in again}
        print(against_baseline(args.baseline, largest, ours, theirs))

    rows = []
    for name in sorted(STRATEGIES):
        row = [name]
        for n in (10, 100):
            runs = [run(name, make_pool(n), ops, 1000.0, seed) for seed in range(repeat)]
            row.append(f"{spread([r[0] for r in runs])} ({statistics.median(r[1] for r in runs):.0%} leased)")
        rows.append(row)
    print(table("Saturated: 1,000 requests/s over 10 domains, most acquires must wait",
                ["strategy", "pool 10: acquires/s", "pool 100: acquires/s"], rows))

    rows, short = [], []
    for name in sorted(STRATEGIES):
        row, speed = [name], {}
        for n in sizes:
            speeds, shares, warmed = steady(name, pools[n], ops, repeat)
            speed[n] = statistics.median(speeds)
            row.append(f"{spread(speeds)} ({min(shares):.0%} leased)")
            if warmed < n:
                short.append(f"{name} at {n:,}: warm-up stopped after {warmed:,} proxies")
        ratio = speed[sizes[0]] / speed[sizes[-1]]
        row += [f"{ratio:.2f}x", "yes" if ratio <= TARGET else "no"]
        rows.append(row)
    header = ["strategy", *(f"pool {n:,}: pairs/s" for n in sizes), f"slowdown {sizes[0]:,} -> {sizes[-1]:,}",
              f"within {TARGET:g}x"]
    print(table(f"Steady state (cooldown 0, every proxy measured): {STEADY_RATE:,.0f} requests/s over "
                f"{len(DOMAINS)} domains, each answered after {STEADY_LATENCY[0] * 1000:g}-"
                f"{STEADY_LATENCY[1] * 1000:g} ms", header, rows))
    for line in short:
        print(f"\n{line}")


if __name__ == "__main__":
    main()
