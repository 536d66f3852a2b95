"""Sticky sessions: memory per session, the cost of a session's request, a gateway's identities.

The balancer alone on a fake clock, cooldown 0, the other rules the settings' defaults (as in
``selection.py``), the default strategy; every request to one site and released at once as
a success (latency 5 ms), so none waits for a proxy.

- ``memory``: a balancer over 100 proxies binds ``--sessions`` sessions (each one request:
  ``acquire(Ask("site", session=...))``, then release): the bytes they add (tracemalloc,
  against the same balancer before binding), per session, and the parts of it that are the
  store's sessions dict, its expiry heap and the bindings.
- ``cost``: on a balancer over 100 proxies with 10,000 sessions bound, acquire + release pairs
  per second of requests spread over those sessions, against plain requests (no session) on
  the same balancer and clock; and how fast new sessions bind.
- ``gateway``: one session gateway template (``user-session-{session}``, ``sessions``
  identities) binds ``--sessions`` sessions, each to an identity of its own: bytes per
  identity, right after binding and once the store has forgotten their answers (the
  cooldown_max, 60 s, later).

    python benchmarks/sessions.py [--repeat 3] [--ops 20000] [--sessions 100000]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import TypeVar

# selection.py (next to this script) puts the repository on sys.path
from selection import SECONDS_PER_RUN, FakeClock, make_pool, make_rules, spread, table

from scrapy_proxybalance.config import DEFAULTS
from scrapy_proxybalance.core.balancer import Ask, Balancer, Lease
from scrapy_proxybalance.core.entries import parse_entry
from scrapy_proxybalance.core.outcomes import Outcome
from scrapy_proxybalance.core.strategies import STRATEGIES
from scrapy_proxybalance.stores.memory import MemoryStore

SITE = "site.test"
POOL = 100  # proxies of the memory and cost balancers
COST_SESSIONS = 10_000  # sessions bound before the cost runs
LATENCY = 0.005  # seconds, reported on each release
STEP = 0.0001  # fake seconds between two binds (100,000 binds: 10 s, well within every session limit)
OP_STEP = 0.001  # fake seconds between two requests of a cost run
BIND_SECONDS = 120.0  # the most one binding loop may take (under tracemalloc, it is slow); it stops early, reported
T = TypeVar("T")
GATEWAY = {"url": "http://user-session-{session}:pw@gate.test:7000"}


def balancer(entries: Sequence, strategy: str, clock: FakeClock) -> Balancer:
    pool = [parse_entry(e) if isinstance(e, dict) else e for e in entries]
    return Balancer(pool, STRATEGIES[strategy], make_rules(0.0), clock=clock, rng=random.Random(0), store=MemoryStore())


def bind(b: Balancer, clock: FakeClock, n: int, prefix: str = "s") -> tuple[int, int, float]:
    """Bind sessions ``prefix0`` .. (up to ``n``, or BIND_SECONDS): each one request, released
    at once. Return (sessions bound, requests that had to wait, seconds taken)."""
    acquire, release, success = b.acquire, b.release, Outcome.SUCCESS
    bound = waited = 0
    start = time.perf_counter()
    deadline = start + BIND_SECONDS
    for i in range(n):
        clock.now += STEP
        lease = acquire(Ask(SITE, session=f"{prefix}{i}"))
        if type(lease) is Lease:
            release(lease, success, LATENCY)
            bound += 1
        else:
            waited += 1
        if not i & 1023 and time.perf_counter() > deadline:
            break
    return bound, waited, time.perf_counter() - start


def plain_requests(b: Balancer, clock: FakeClock, n: int) -> None:
    """Untimed plain requests: the pool's per-proxy records (latency, pairs) exist before measuring."""
    for _ in range(n):
        clock.now += STEP
        lease = b.acquire(Ask(SITE))
        if type(lease) is Lease:
            b.release(lease, Outcome.SUCCESS, LATENCY)


def traced(action: Callable[[], T]) -> tuple[int, T]:
    """(bytes ``action()`` leaves allocated, its result), by tracemalloc."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = action()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before, result
    finally:
        tracemalloc.stop()


def store_parts(store: MemoryStore) -> dict[str, int]:
    """Shallow sizes of the store's session records: the dict, its keys, the bindings (each
    with its floats), the expiry heap and its entries."""
    sessions, expiry = store.sessions, store.session_expiry
    floats = {id(x): sys.getsizeof(x) for b in sessions.values() for x in (b.since, b.used) if type(x) is float}
    return {
        "sessions dict": sys.getsizeof(sessions),
        "keys (str)": sum(sys.getsizeof(k) for k in sessions),
        "bindings": sum(sys.getsizeof(b) for b in sessions.values()) + sum(floats.values()),
        "expiry heap": sys.getsizeof(expiry) + sum(sys.getsizeof(e) + sys.getsizeof(e[0]) for e in expiry),
    }


def memory(strategy: str, n: int) -> tuple[list[list[str]], float]:
    """Rows of the memory table, and bytes per session."""
    clock = FakeClock()
    b = balancer(make_pool(POOL), strategy, clock)
    plain_requests(b, clock, 2000)
    added, result = traced(lambda: bind(b, clock, n))
    bound, waited, _ = result
    per = added / max(1, bound)
    assert isinstance(b.store, MemoryStore)
    rows = [["all the sessions add (tracemalloc)", f"{added:,}", f"{per:,.0f}"]]
    rows += [[f"of which the store's {part}", f"{size:,}", f"{size / max(1, bound):,.0f}"]
             for part, size in store_parts(b.store).items()]
    rows.append([f"sessions bound (of {n:,}; waits: {waited:,}), {len(b.store.sessions):,} in the store",
                 f"{bound:,}", ""])
    return rows, per


def cost(strategy: str, ops: int, repeat: int) -> list[list[str]]:
    """Rows of the cost table: session requests against plain ones, one balancer and clock."""
    clock = FakeClock()
    b = balancer(make_pool(POOL), strategy, clock)
    plain_requests(b, clock, 2000)
    gc.collect()
    bound, waited, seconds = bind(b, clock, COST_SESSIONS)
    rng = random.Random(0)
    session_asks = [Ask(SITE, session=f"s{rng.randrange(bound or 1)}") for _ in range(4096)]
    plain_asks = [Ask(SITE)] * 4096
    speeds: dict[str, list[float]] = {"plain": [], "session": []}
    leased: dict[str, list[float]] = {"plain": [], "session": []}
    for _ in range(repeat):
        for kind, asks in (("plain", plain_asks), ("session", session_asks)):
            speed, share = run(b, clock, asks, ops)
            speeds[kind].append(speed)
            leased[kind].append(share)
    ratio = statistics.median(speeds["plain"]) / statistics.median(speeds["session"])
    return [
        ["plain requests: pairs/s", f"{spread(speeds['plain'])} ({min(leased['plain']):.0%} leased)"],
        [f"requests of {bound:,} bound sessions: pairs/s",
         f"{spread(speeds['session'])} ({min(leased['session']):.0%} leased)"],
        ["a session's request costs (plain pairs/s / session pairs/s)", f"{ratio:.2f}x"],
        [f"binding new sessions: first requests/s ({bound:,} bound, {waited:,} waits)",
         f"{bound / seconds / 1000:,.0f}k" if seconds else "-"],
    ]


def run(b: Balancer, clock: FakeClock, asks: list[Ask], ops: int) -> tuple[float, float]:
    """Up to ``ops`` requests from ``asks`` in turn, each released at once: (pairs/s, share leased)."""
    acquire, release, success = b.acquire, b.release, Outcome.SUCCESS
    leased = done = 0
    gc.collect()
    start = time.perf_counter()
    deadline = start + SECONDS_PER_RUN
    for i in range(ops):
        clock.now += OP_STEP
        lease = acquire(asks[i & 4095])
        if type(lease) is Lease:
            release(lease, success, LATENCY)
            leased += 1
        done = i + 1
        if not i & 1023 and time.perf_counter() > deadline:
            break
    return done / (time.perf_counter() - start), leased / max(1, done)


def gateway(strategy: str, n: int, per_session: float) -> list[list[str]]:
    """Rows of the gateway table."""
    clock = FakeClock()
    b = balancer([{**GATEWAY, "sessions": n}], strategy, clock)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        bound, waited, seconds = bind(b, clock, n)
        gc.collect()
        bound_at = tracemalloc.get_traced_memory()[0]
        clock.now += b.rules.cooldown_max + 1.0  # the store forgets the answers on the site's next release
        lease = b.acquire(Ask(SITE, session="s0"))
        if type(lease) is Lease:
            b.release(lease, Outcome.SUCCESS, LATENCY)
        gc.collect()
        later_at = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    identities = sum(len(g.made) for g in b.gateways.by_key.values())
    first, later = (bound_at - before) / max(1, identities), (later_at - before) / max(1, identities)
    return [
        ["identities made (sessions bound; waits)", f"{identities:,} ({bound:,}; {waited:,})"],
        ["bytes per identity, right after binding", f"{first:,.0f}"],
        [f"bytes per identity, {b.rules.cooldown_max + 1:g} s later (answers forgotten)", f"{later:,.0f}"],
        ["of which beyond its session's binding (memory table)", f"{later - per_session:,.0f}"],
        ["bound per second (under tracemalloc)", f"{bound / seconds / 1000:,.1f}k" if seconds else "-"],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--strategy", default=DEFAULTS["PROXY_STRATEGY"], choices=sorted(STRATEGIES))
    args = parser.parse_args()
    repeat, ops, n = max(1, args.repeat), max(1, args.ops), max(1, args.sessions)
    print(f"python {sys.version.split()[0]}, strategy {args.strategy}, cooldown 0, one site; "
          f"{repeat} runs of up to {ops:,} requests each (each stops after {SECONDS_PER_RUN:g} s); "
          "median ±half-range")

    rows, per_session = memory(args.strategy, n)
    print(table(f"Memory: {n:,} sessions bound over {POOL} proxies", ["", "bytes", "per session"], rows))
    print(table(f"Cost: {POOL} proxies, one balancer and clock", ["", "measured"], cost(args.strategy, ops, repeat)))
    print(table(f"Gateway: one template, {n:,} sessions, each its own identity", ["", "measured"],
                gateway(args.strategy, n, per_session)))


if __name__ == "__main__":
    main()
