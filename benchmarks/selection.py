"""Selection cost: acquire + release pairs per second, per strategy and pool size.

A simulated crawl on a fake clock: 10 domains in turn, PROXY_DOMAIN_COOLDOWN = 1 s, each
lease released as a success after its latency (drawn from 50-500 ms) has passed. The crawl
rate is 1,000 requests/s, or half the pool's capacity (pool × domains / cooldown) when that
is lower, so that acquires lease rather than wait: this measures choosing a proxy. The
``saturated`` table runs small pools at 1,000 requests/s, where most acquires must wait.

    python benchmarks/selection.py [--repeat 5] [--ops 50000] [--sizes 10,1000,100000]
"""

from __future__ import annotations

import argparse
import gc
import heapq
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scrapy_proxybalance.core.bans import Outcome

from scrapy_proxybalance.core.balancer import Balancer, Lease
from scrapy_proxybalance.core.proxy import Proxy
from scrapy_proxybalance.core.strategies import STRATEGIES

DOMAINS = [f"site-{i}.test" for i in range(10)]
COOLDOWN = 1.0
SECONDS_PER_RUN = 5.0  # a run stops after this long even if its ops are not done


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_pool(n: int) -> list[Proxy]:
    return [Proxy("http", f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", 8000 + i % 7, weight=1 + i % 3) for i in range(n)]


def run(strategy: str, pool: list[Proxy], ops: int, rate: float, seed: int) -> tuple[float, float]:
    """Return (acquire+release pairs per second, share of acquires that leased)."""
    clock = FakeClock()
    b = Balancer(pool, STRATEGIES[strategy], clock=clock, domain_cooldown=COOLDOWN, rng=random.Random(seed))
    rng = random.Random(seed)
    latencies = [rng.uniform(0.05, 0.5) for _ in range(1024)]
    flying: list[tuple[float, int, Lease]] = []  # (done at, seq, lease): a heap
    step, leased, done = 1.0 / rate, 0, 0
    gc.collect()
    start = time.perf_counter()
    deadline = start + SECONDS_PER_RUN
    for i in range(ops):
        clock.now += step
        while flying and flying[0][0] <= clock.now:
            lease = heapq.heappop(flying)[2]
            b.release(lease, Outcome.SUCCESS, clock.now - lease.started)
        result = b.acquire(DOMAINS[i % 10])
        if type(result) is Lease:
            leased += 1
            heapq.heappush(flying, (clock.now + latencies[i & 1023], i, result))
        done = i + 1
        if not i & 1023 and time.perf_counter() > deadline:
            break
    elapsed = time.perf_counter() - start
    return done / elapsed, leased / done


def memory_per_proxy(strategy: str, n: int) -> float:
    """Bytes per proxy of the pool plus a balancer over it (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    pool = make_pool(n)
    b = Balancer(pool, STRATEGIES[strategy], domain_cooldown=COOLDOWN)
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del b, pool
    return size / n


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "| " + " | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"
    lines = [f"\n{title}\n", fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return "\n".join(lines + [fmt(r) for r in rows])


def spread(values: list[float]) -> str:
    med = statistics.median(values)
    return f"{med / 1000:,.0f}k ±{(max(values) - min(values)) / 2 / med:.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ops", type=int, default=50_000)
    parser.add_argument("--sizes", default="10,1000,100000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"python {sys.version.split()[0]}, {args.repeat} runs of up to {args.ops:,} acquires each; median ±half-range")

    rows, medians = [], {}
    for name in sorted(STRATEGIES):
        row = [name]
        for n in sizes:
            pool = make_pool(n)
            rate = min(1000.0, 0.5 * n * len(DOMAINS) / COOLDOWN)
            runs = [run(name, pool, args.ops, rate, seed) for seed in range(args.repeat)]
            speeds = [r[0] for r in runs]
            medians[name, n] = statistics.median(speeds)
            row.append(f"{spread(speeds)} ({min(r[1] for r in runs):.0%} leased)")
        row.append(f"{medians[name, sizes[0]] / medians[name, sizes[-1]]:.2f}x")
        row.append(f"{memory_per_proxy(name, sizes[-1]):,.0f} B")
        rows.append(row)
    header = ["strategy", *(f"pool {n:,}: pairs/s" for n in sizes), f"slowdown {sizes[0]:,} -> {sizes[-1]:,}",
              f"memory/proxy at {sizes[-1]:,}"]
    print(table("Leasing (pool not saturated)", header, rows))

    rows = []
    for name in sorted(STRATEGIES):
        row = [name]
        for n in (10, 100):
            runs = [run(name, make_pool(n), args.ops, 1000.0, seed) for seed in range(args.repeat)]
            row.append(f"{spread([r[0] for r in runs])} ({statistics.median(r[1] for r in runs):.0%} leased)")
        rows.append(row)
    print(table("Saturated: 1,000 requests/s over 10 domains, most acquires must wait",
                ["strategy", "pool 10: acquires/s", "pool 100: acquires/s"], rows))


if __name__ == "__main__":
    main()
