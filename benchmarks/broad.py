"""Broad crawls: memory follows the active sites, not the sites ever seen.

Scrapy's *Broad Crawls*: millions of domains, each visited a few times. On the core alone
(a balancer over a memory store, fake clock): 1,000 proxies, PROXY_DOMAIN_COOLDOWN = 1 s, one
request per distinct site at 1,000 requests/s of fake time, each answered as a success after
50-500 ms. Only the last minute's sites can matter (a site's gap is at most
PROXY_DOMAIN_COOLDOWN_MAX, 60 s), so memory must be flat once a minute's worth of sites (60k)
has been seen. Prints the process's resident memory above the balancer's at the start, and the
pairs and sites the store holds, at each checkpoint; the baseline is the figure at the first
checkpoint (200k sites). Target: at 1M sites within 20% of it.

    python benchmarks/broad.py [--sites 1000000] [--checkpoints 200000,500000,1000000]
"""

from __future__ import annotations

import argparse
import gc
import heapq
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from selection import FakeClock, make_balancer, make_pool

from scrapy_proxybalance.core.balancer import Ask, Lease
from scrapy_proxybalance.core.outcomes import Outcome

PROXIES = 1000
RATE = 1000.0  # requests (and new sites) per second of fake time
TARGET = 1.20  # the most memory at the last checkpoint may be over the first's
SECONDS = 600.0  # the crawl stops after this long of real time even if its sites are not done


def rss_mb() -> float:
    """Resident memory now (MB), from /proc (ru_maxrss is a peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 1e6
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=1_000_000)
    parser.add_argument("--checkpoints", default="200000,500000,1000000")
    args = parser.parse_args()
    checkpoints = sorted(int(c) for c in args.checkpoints.split(",") if int(c) <= args.sites)

    clock = FakeClock()
    b = make_balancer("round_robin", make_pool(PROXIES), 1.0, 0, clock)
    rng = random.Random(0)
    latencies = [rng.uniform(0.05, 0.5) for _ in range(1024)]
    flying: list[tuple[float, int, Lease]] = []
    gc.collect()
    start_mb, started = rss_mb(), time.perf_counter()
    step, acquire, release, success = 1.0 / RATE, b.acquire, b.release, Outcome.SUCCESS
    rows = []
    print(f"{PROXIES:,} proxies, cooldown 1 s, one request per new site at {RATE:,.0f}/s (fake time); "
          f"resident memory at start {start_mb:.0f} MB")
    for i in range(args.sites):
        clock.now += step
        while flying and flying[0][0] <= clock.now:
            lease = heapq.heappop(flying)[2]
            release(lease, success, clock.now - lease.at)
        result = acquire(Ask(f"site-{i}.example"))
        if type(result) is Lease:
            heapq.heappush(flying, (clock.now + latencies[i & 1023], i, result))
        if i + 1 in checkpoints:
            gc.collect()
            store = b.store
            rows.append((i + 1, rss_mb() - start_mb, store.held, len(store.pairs), time.perf_counter() - started))
            print(f"  {i + 1:>9,} sites: +{rows[-1][1]:6.1f} MB, {store.held:,} pairs of {len(store.pairs):,} sites "
                  f"held ({rows[-1][4]:.0f} s)", flush=True)
        if not i & 4095 and time.perf_counter() - started > SECONDS:
            print(f"  stopped after {SECONDS:.0f} s at {i + 1:,} sites")
            break
    if len(rows) >= 2:
        ratio = rows[-1][1] / rows[0][1] if rows[0][1] > 0 else float("inf")
        verdict = "met" if ratio <= TARGET else "NOT met"
        print(f"at {rows[-1][0]:,} sites {ratio:.2f}x the memory at {rows[0][0]:,} (target {TARGET:.2f}x: {verdict}); "
              f"{(time.perf_counter() - started) / rows[-1][0] * 1e6:.1f} µs per request")


if __name__ == "__main__":
    main()
