"""Crawl quality: whole Scrapy crawls through the local proxy farm, against the ideal.

Each run is a real crawl in a child process (``python benchmarks/crawl.py --child JOB``)
through proxies of :mod:`scrapy_proxybalance.testing.farm` on 127.0.0.1. Every stack of a
scenario crawls the same pages through the same farm, one after the other, in rounds (each
stack once, then each again: a drift of the machine's speed touches every stack alike); the farm's
records (and its outages, timed from each run's first proxied request) are reset between
runs. A table row per stack reports pages fetched correctly (the page's token checks out),
failed, the 429s the proxies or the site answered, retries, wall time (engine open to close),
CPU time of the crawl process, wall time against the ideal, CPU time against the plain crawl,
and the columns a scenario adds.

The *ideal* of a stack is the time to fetch every page at the most the farm allows (each
proxy's capacity over its latency, within CONCURRENT_REQUESTS; rate limits of proxies and
site; nothing through proxies while they are out) and no faster than the crawler's CPU floor
(the wall time of ``plain``), nor than the stack's own pacing (PROXY_DOMAIN_COOLDOWN per proxy
and site, DOWNLOAD_DELAY). The values used are printed under each table.

Stacks: ``plain`` (one fast, unlimited proxy set in ``meta``, outside the pool and its outages:
the CPU reference), the proxybalance strategies (with default settings unless the stack or
scenario says otherwise), a strategy with ``+checks`` (active health checks once a second),
``rotating`` (scrapy-rotating-proxies, when installed) and ``cycle`` (the spider cycles
``meta['proxy']`` over the pool: what many proxies cost Scrapy itself, with no health logic).

What the newer scenarios measure (``--list`` names them all):

- ``paced``: the CPU cost of pacing: 2,000 pages through 20 proxies at the default
  PROXY_DOMAIN_COOLDOWN (1 s), so most requests wait, in CPU ms per page against plain's.
- ``overload``: proxies of mixed latency that answer 503 above 4 requests at once: pages, 503s
  the proxies sent, ejections, and wall time against the farm's bound within CONCURRENT_REQUESTS.
- ``ratelimit-site``: the site (not the proxies) limits each exit address to one request per
  site per 0.5 s and answers 429 with Retry-After 20: 429s at cooldowns of 0, 0.5 and 0.25 s.
- ``dying``: half the pool refuses connections (open ones cut) from 3 s to 12 s: failed
  attempts, waits and ejections, and the wall time.
- ``blackout-10``: the whole pool of 10 refuses connections from 2 s to 8 s, default
  settings, 5 runs: whether every run ends within its ideal (work + blackout) + 3 s.
- ``fresh-project``: the settings ``scrapy startproject`` writes: the pool's throughput
  against one proxy, and the least gap between two requests of one exit to the site.

    python benchmarks/crawl.py [--repeat N] [--scenario NAME ...] [--log-dir DIR] [--list]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scrapy_proxybalance.config import DEFAULTS  # noqa: E402
from scrapy_proxybalance.testing.farm import Farm, Outage, ProxySpec  # noqa: E402

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
PROFILE = False  # --profile: each crawl's cProfile beside its log
PLAIN_PROXY = "plain-proxy"  # the plain stack's proxy: the farm's last
DEFAULT_REPEAT = 3


def hosts(n: int) -> list[str]:
    return [f"site-{i}.test" for i in range(n)]


def page_url(site_hosts: list[str], i: int) -> str:
    """The i-th page of a crawl: the sites in turn."""
    return f"http://{site_hosts[i % len(site_hosts)]}/page/{i // len(site_hosts) + 1}"


# -- stacks ---------------------------------------------------------------------------


@dataclass
class Stack:
    """What crawls: ``base`` is ``plain``, ``cycle``, ``rotating`` or a strategy (optionally
    with ``+checks``); ``settings`` are added to the scenario's."""

    base: str
    label: str = ""
    settings: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.label or self.base

    @property
    def plugin(self) -> bool:
        return self.base not in ("plain", "cycle", "rotating", "random-choice")


def plugin(strategy: str = "weighted_random", label: str = "", **settings: object) -> Stack:
    """A proxybalance stack with settings of its own."""
    return Stack(strategy, label, settings)


def cooldown_stack(seconds: float, strategy: str = "weighted_random") -> Stack:
    return plugin(strategy, f"{strategy} cooldown {seconds:g}", PROXY_DOMAIN_COOLDOWN=seconds)


# "+checks": the stack with active health checks once a second (the farm's site echoes /ip)
CHECKS = {"PROXY_HEALTH_CHECK_URL": "http://echo.test/ip", "PROXY_HEALTH_CHECK_INTERVAL": 1.0,
          "PROXY_HEALTH_CHECK_TIMEOUT": 2.0}


def stack_settings(stack: Stack, pool: list[str]) -> dict:
    """The settings that turn a stack on, for a pool of proxy URLs."""
    base = stack.base.removesuffix("+checks")
    checks = CHECKS if stack.base.endswith("+checks") else {}
    if base in ("plain", "cycle"):
        own: dict = {}
    elif base == "random-choice":
        own = {"DOWNLOADER_MIDDLEWARES": {"benchmarks.bare.RandomChoiceMiddleware": 610}, "BARE_PROXY_LIST": pool}
    elif base == "rotating":
        own = {"DOWNLOADER_MIDDLEWARES": {"rotating_proxies.middlewares.RotatingProxyMiddleware": 610,
                                          "rotating_proxies.middlewares.BanDetectionMiddleware": 620},
               "ROTATING_PROXY_LIST": pool, "ROTATING_PROXY_PAGE_RETRY_TIMES": 5}
    else:
        own = {"ADDONS": {"scrapy_proxybalance.Addon": 0}, "PROXY_POOL": pool, "PROXY_STRATEGY": base}
    return {**own, **checks, **stack.settings}


# -- scenarios ------------------------------------------------------------------------


@dataclass
class Column:
    """An extra column: ``value(run)`` per run (None: not applicable), shown as the median;
    with ``count``, the number of runs for which it is true."""

    header: str
    value: Callable[[dict], float | bool | None]
    fmt: str = "{:.0f}"
    count: bool = False


@dataclass
class Scenario:
    """A farm (``specs``, plus the plain proxy), the pages to crawl and the stacks to compare."""

    name: str
    about: str
    specs: Callable[[], list[ProxySpec]]
    pages: int
    stacks: list[str | Stack]
    settings: dict = field(default_factory=dict)
    sites: int = 10
    outages: list[Outage] = field(default_factory=list)  # names None: the whole pool (never plain)
    site_interval: float = 0.0  # the site's limit per (exit, site); see Farm
    site_retry_after: int = 20
    columns: list[str] = field(default_factory=list)
    target: str = ""
    repeat: int | None = None  # runs per stack unless --repeat says otherwise
    notes: Callable[[dict[str, list[dict]]], list[str]] | None = None  # lines under the table

    @property
    def hosts(self) -> list[str]:
        return hosts(self.sites)

    def all_stacks(self) -> list[Stack]:
        """The scenario's stacks, with ``plain`` first (the CPU reference) if it is missing."""
        stacks = [Stack(s) if isinstance(s, str) else s for s in self.stacks]
        return stacks if any(s.base == "plain" for s in stacks) else [Stack("plain"), *stacks]

    def setting(self, stack: Stack, name: str) -> object:
        """A setting as the stack's crawl sees it (the plugin's default if nobody sets it)."""
        return {**BASE, **self.settings, **stack.settings}.get(name, DEFAULTS.get(name))


def blackout(after: float, seconds: float, names: set[str] | None = None, refuse: bool = False) -> Outage:
    return Outage(after, seconds, frozenset(names) if names is not None else None, refuse)


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
    bad += [ProxySpec(f"cap{i}", captcha_hosts=frozenset(hosts(10)[:3])) for i in range(2)]
    return [ProxySpec(f"ok{i}") for i in range(20)] + bad


def _overloaded() -> list[ProxySpec]:
    """20 proxies, latency 10 to 400 ms evenly spread, 4 requests at once each; a 503 above that."""
    return [ProxySpec(f"o{i}", kind="slow", delay=0.01 + i * (0.4 - 0.01) / 19, capacity=4, overflow="503")
            for i in range(20)]


def healthy(prefix: str, n: int) -> Callable[[], list[ProxySpec]]:
    return lambda: [ProxySpec(f"{prefix}{i}") for i in range(n)]


CAPTCHA = {"PROXY_BAN_BODY_PATTERNS": ['<form class="captcha">']}
# what `scrapy startproject` writes into settings.py (and Scrapy's default concurrency)
FRESH_PROJECT = {"ROBOTSTXT_OBEY": True, "CONCURRENT_REQUESTS_PER_DOMAIN": 1, "DOWNLOAD_DELAY": 1,
                 "CONCURRENT_REQUESTS": 16}
DYING = {f"d{i}" for i in range(10)}


def _median_of(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key)]
    return statistics.median(values) if values else None


def _fresh_notes(results: dict[str, list[dict]]) -> list[str]:
    """Throughput of the plugin against plain: pages/s at the site, and wall times."""
    plain, ours = results.get("plain", []), results.get("weighted_random", [])
    rates = _median_of(plain, "site_rate"), _median_of(ours, "site_rate")
    walls = _median_of(plain, "wall"), _median_of(ours, "wall")
    if None in rates or None in walls:
        return []
    return [f"throughput ratio, weighted_random / plain: {rates[1] / rates[0]:.1f}x in pages/s at the site, "
            f"{walls[0] / walls[1]:.1f}x in wall time (target >= 8x)"]


# plain, paced by DOWNLOAD_DELAY to the pool's pace (4 sites / 0.05 s = 20 proxies x 4 sites / 1 s)
PLAIN_PACED = Stack("plain", "plain paced", {"DOWNLOAD_DELAY": 0.05})


def _per_page(run: dict) -> float | None:
    return run["cpu"] / run["ok"] if run.get("ok") else None


def _paired(results: dict[str, list[dict]], name: str, base: str) -> list[tuple[float, float]]:
    """(CPU per page of ``name``, of ``base``) round by round: the stacks of a round run back
    to back, so the machine's drift between rounds cancels out of their difference."""
    if base not in results:
        return []
    pairs = [(_per_page(a), _per_page(b)) for a, b in zip(results[name], results[base], strict=True)]
    return [(a, b) for a, b in pairs if a is not None and b is not None]


def _paced_notes(results: dict[str, list[dict]]) -> list[str]:
    """CPU per page of each stack against plain's, and against plain's at the same pace: the
    median of the rounds' own ratios (see :func:`_paired`)."""
    notes = []
    for base in ("plain", PLAIN_PACED.name):
        for name in results:
            if name not in ("plain", PLAIN_PACED.name) and (ratios := [a / b for a, b in _paired(results, name, base)]):
                notes.append(f"CPU per page, {name} / {base}: {statistics.median(ratios):.2f}x"
                             f" (rounds {min(ratios):.2f}x to {max(ratios):.2f}x)")
    return notes


def _limit_notes(results: dict[str, list[dict]]) -> list[str]:
    """Wall time of each stack against what the site's limits allow (the limits' ideal)."""
    limits = 1500 / (10 * 3 / 0.5)  # pages over (exits x sites / the site's interval)
    return [f"wall time, {name} / the limits ({limits:.0f} s): {statistics.median(r['wall'] for r in ok) / limits:.2f}x"
            for name, runs in results.items() if name != "plain" and (ok := [r for r in runs if "wall" in r])]


def _floor_notes(results: dict[str, list[dict]]) -> list[str]:
    """CPU per page of each plugin stack above random-choice's (ms) and against rotating's, each
    the median of the rounds' own differences and ratios (with their range)."""
    notes = []
    for name in results:
        if name in ("plain", "random-choice", "rotating"):
            continue
        if diffs := [(a - b) * 1000 for a, b in _paired(results, name, "random-choice")]:
            notes.append(f"CPU per page, {name} - random-choice: {statistics.median(diffs):+.3f} ms"
                         f" (rounds {min(diffs):+.3f} to {max(diffs):+.3f}; target <= +0.1 ms)")
        if ratios := [a / b for a, b in _paired(results, name, "rotating")]:
            notes.append(f"CPU per page, {name} / rotating: {statistics.median(ratios):.2f}x"
                         f" (rounds {min(ratios):.2f}x to {max(ratios):.2f}x; target <= 1.00x)")
    return notes


SCENARIOS = [
    Scenario("uniform-20", "20 healthy proxies: CPU overhead against a plain one-proxy crawl",
             healthy("p", 20), 2000, ["cycle", "weighted_random", "rotating"], target="CPU ratio to plain <= 1.10"),
    Scenario("uniform-5000", "5,000 healthy proxies: CPU overhead against a plain one-proxy crawl",
             healthy("p", 5000), 2000, ["cycle", "weighted_random", "rotating"], target="CPU ratio to plain <= 1.10"),
    Scenario("floor", "5,000 healthy proxies, no cooldown: CPU per page against a bare random-choice middleware",
             healthy("p", 5000), 3000, ["random-choice", cooldown_stack(0), cooldown_stack(0, "round_robin"),
                                        "rotating"],
             {"PROXY_DOMAIN_COOLDOWN": 0}, columns=["cpu_per_page"], notes=_floor_notes,
             target="<= 0.1 ms of CPU per page above random-choice; <= rotating's CPU"),
    Scenario("hetero", "20 proxies, latency 20-500 ms, capacity 1-4 at once; no cooldown", _hetero, 1500,
             [*STRATEGIES, "rotating"], {"PROXY_DOMAIN_COOLDOWN": 0, "CONCURRENT_REQUESTS": 64,
                                         "CONCURRENT_REQUESTS_PER_DOMAIN": 64},
             target="best strategy within 1.5x of the ideal wall time"),
    Scenario("ratelimit", "20 proxies that answer 429 to a site seen < 0.9 s ago; default settings",
             lambda: [ProxySpec(f"r{i}", kind="banning", min_interval=0.9, retry_after=5) for i in range(20)],
             2000, ["weighted_random", "rotating"], target="no 429s; throughput >= 80% of the limits"),
    Scenario("hostile", "30 proxies, a third dead, hung or resetting", _hostile, 2000,
             ["weighted_random", "least_latency", "rotating"], {"PROXY_RECOVERY_INTERVAL": 30},
             target="100% of pages"),
    Scenario("blackout", "20 healthy proxies, all down (requests dropped) from 2 s to 7 s", healthy("b", 20), 2000,
             ["weighted_random", "weighted_random+checks", "rotating"], outages=[blackout(2.0, 5.0)],
             target="100% of pages"),
    Scenario("captcha", "10 healthy proxies + 2 that serve a captcha (status 200) for one site",
             lambda: [ProxySpec(f"c{i}") for i in range(10)]
             + [ProxySpec(f"cap{i}", captcha_hosts=frozenset(hosts(10)[:1])) for i in range(2)],
             1000, ["weighted_random", "rotating"], CAPTCHA, columns=["captcha"],
             target="no captcha page accepted"),
    Scenario("hostile-full", "30 proxies, a third dead, hung, resetting, rate limiting or serving captchas;"
             " all down (requests dropped) from 3 s to 7 s", _hostile_full, 3000,
             ["weighted_random", "weighted_random+checks", "least_latency", "rotating"],
             {**CAPTCHA, "PROXY_RECOVERY_INTERVAL": 10}, outages=[blackout(3.0, 4.0)], columns=["captcha"],
             target="100% of pages, no captcha accepted"),
    Scenario("paced", "20 healthy proxies, default settings (PROXY_DOMAIN_COOLDOWN 1 s): the cost of pacing",
             healthy("p", 20), 2000, ["plain", PLAIN_PACED, "weighted_random", cooldown_stack(0)], sites=4,
             columns=["cpu_per_page", "waits"], notes=_paced_notes,
             target="CPU per page of weighted_random (cooldown 1 s) <= 1.10x plain's"),
    Scenario("overload", "20 proxies, latency 10-400 ms, 4 requests at once each (a 503 above); no cooldown",
             _overloaded, 2000, ["weighted_random", "least_latency", "round_robin", "random", "rotating", "cycle"],
             {"PROXY_DOMAIN_COOLDOWN": 0, "CONCURRENT_REQUESTS": 32, "CONCURRENT_REQUESTS_PER_DOMAIN": 32,
              "CLOSESPIDER_TIMEOUT": 120}, sites=4, columns=["overflows", "ejections"],
             target="every page, few 503s, wall time near the ideal"),
    Scenario("ratelimit-site", "10 healthy proxies; the site answers 429 (Retry-After: 20) to an exit that asks"
             " for the same site again within 0.5 s", healthy("s", 10), 1500,
             [cooldown_stack(0), cooldown_stack(0.5), cooldown_stack(0.25), "weighted_random",
              plugin(label="weighted_random below cooldown", PROXY_PACE_BELOW_COOLDOWN=True), "rotating"],
             {"CLOSESPIDER_TIMEOUT": 120}, sites=3, site_interval=0.5, site_retry_after=20,
             columns=["waits", "slowdowns"],
             notes=_limit_notes,
             target="no 429s at a cooldown equal to the limit; within 1.25x of the limits (25 s) at cooldown 0,"
                    " and at the default cooldown with PROXY_PACE_BELOW_COOLDOWN"),
    Scenario("dying", "20 healthy proxies, 10 of which refuse connections (open ones cut) from 3 s to 12 s;"
             " no cooldown", healthy("d", 20), 3000, ["weighted_random", "rotating"],
             {"PROXY_DOMAIN_COOLDOWN": 0, "CLOSESPIDER_TIMEOUT": 120}, sites=4,
             outages=[blackout(3.0, 9.0, DYING, refuse=True)], columns=["failed_attempts", "waits", "ejections"],
             target="every page; few failed attempts after the first ones; wall time near the ideal"),
    Scenario("blackout-10", "10 healthy proxies, all refusing connections (open ones cut) from 2 s to 8 s;"
             " default settings", healthy("k", 10), 800, ["weighted_random", "rotating"],
             {"CLOSESPIDER_TIMEOUT": 150}, sites=4, outages=[blackout(2.0, 6.0, refuse=True)],
             columns=["within", "failed_attempts", "ejections"], repeat=5,
             target="every run finishes within blackout + work + 3 s (the ideal + 3 s)"),
    Scenario("fresh-project", "10 healthy proxies, one site, the settings `scrapy startproject` writes"
             " (CONCURRENT_REQUESTS_PER_DOMAIN 1, DOWNLOAD_DELAY 1, ROBOTSTXT_OBEY)", healthy("f", 10), 30,
             ["plain", "weighted_random"], {**FRESH_PROJECT, "CLOSESPIDER_TIMEOUT": 120}, sites=1,
             columns=["site_rate", "min_gap"], notes=_fresh_notes,
             target="throughput >= 8x plain; each proxy >= 1 s apart at the site"),
]

def plugin_stat(key: str) -> Callable[[dict], float | None]:
    """A ``proxybalance/`` stat of the run (0 if never set); None for the other stacks."""
    return lambda r: r["stats"].get(f"proxybalance/{key}", 0) if r["plugin"] else None


COLUMNS = {
    "captcha": Column("captcha accepted", lambda r: r["captcha"]),
    "overflows": Column("503s from proxies", lambda r: r["overflows"]),
    "ejections": Column("ejections", plugin_stat("ejections")),
    "failed_attempts": Column("failed attempts", lambda r: r["failed_attempts"]),
    "waits": Column("waits", plugin_stat("waits")),
    "slowdowns": Column("site slow-downs", plugin_stat("slowdowns")),
    "cpu_per_page": Column("CPU ms/page", lambda r: 1000 * r["cpu"] / r["ok"] if r["ok"] else None, "{:.2f}"),
    "within": Column("runs within ideal + 3 s", lambda r: r["wall"] <= r["ideal"] + 3 if r["ideal"] else None,
                     count=True),
    "site_rate": Column("pages/s at the site", lambda r: r["site_rate"], "{:.2f}"),
    "min_gap": Column("min gap s (exit, site)", lambda r: r["min_gap"], "{:.2f}"),
}


# -- the ideal ------------------------------------------------------------------------


def proxy_rate(spec: ProxySpec, sites: int, site_interval: float, gap: float) -> float:
    """The most pages/s one proxy can deliver: its capacity over its latency, within its own
    rate limit, the site's per exit, and the stack's pacing (``gap`` s per site; 0: none)."""
    if spec.kind in ("dead", "hung", "reset"):
        return 0.0
    limits = [(spec.capacity or math.inf) / max(spec.delay, 1e-3)]
    if spec.kind == "banning":
        limits.append(sites / spec.min_interval)
    if site_interval:
        limits.append(sites / site_interval)
    if gap:
        limits.append(sites / (gap + spec.delay))  # a cooldown counts from the answer
    return min(limits)


def network_rate(specs: list[ProxySpec], sites: int, site_interval: float, gap: float, concurrency: int) -> float:
    """Pages/s through ``specs`` with ``concurrency`` requests in flight at most, the fastest
    proxies filled first (a proxy at ``rate`` holds ``rate x latency`` of them)."""
    rate, slots = 0.0, float(concurrency)
    for spec in sorted(specs, key=lambda s: s.delay):
        latency = max(spec.delay, 1e-3)
        best = min(proxy_rate(spec, sites, site_interval, gap), slots / latency)
        rate += best
        slots -= best * latency
        if slots <= 1e-9:
            break
    return rate


def time_to_fetch(pages: int, rate_at: Callable[[float], float], edges: list[float]) -> float | None:
    """Seconds to fetch ``pages`` at ``rate_at(t)`` pages/s, a rate that changes only at ``edges``."""
    t, left = 0.0, float(pages)
    for edge in [*sorted(e for e in edges if e > 0), math.inf]:
        rate = rate_at(t)
        if rate > 0 and left <= rate * (edge - t):
            return t + left / rate
        if edge == math.inf:
            return None
        left -= rate * (edge - t)
        t = edge
    return None


def out_at(outage: Outage, name: str, t: float) -> bool:
    return (outage.names is None or name in outage.names) and outage.after <= t < outage.after + outage.seconds


def ideal(scenario: Scenario, stack: Stack, specs: list[ProxySpec], cpu_floor: float | None) -> float | None:
    """The stack's ideal wall time (see the module's docstring); ``specs``: the pool, then
    plain's proxy."""
    delay = float(scenario.setting(stack, "DOWNLOAD_DELAY") or 0)
    gap = max(float(scenario.setting(stack, "PROXY_DOMAIN_COOLDOWN") or 0), delay) if stack.plugin else 0.0
    # without the plugin, DOWNLOAD_DELAY holds each site's one slot (rotating: one slot for 127.0.0.1)
    slot_rate = (1 if stack.base == "rotating" else scenario.sites) / delay if delay and not stack.plugin else math.inf
    cpu_rate = scenario.pages / cpu_floor if cpu_floor else math.inf
    concurrency = int(scenario.setting(stack, "CONCURRENT_REQUESTS") or 16)
    # plain's proxy is outside the pool, its outages and the site's limit (see farms())
    plain = stack.base == "plain"
    pool, outages = ([specs[-1]], []) if plain else (specs[:-1], scenario.outages)
    site_interval = 0.0 if plain else scenario.site_interval

    def rate_at(t: float) -> float:
        up = [s for s in pool if not any(out_at(o, s.name, t) for o in outages)]
        return min(cpu_rate, slot_rate, network_rate(up, scenario.sites, site_interval, gap, concurrency))

    edges = [e for o in outages for e in (o.after, o.after + o.seconds)]
    return time_to_fetch(scenario.pages, rate_at, edges)


def cpu_floor(scenario: Scenario, results: dict[str, list[dict]]) -> float | None:
    """The plain crawl's wall time, when nothing but the CPU paces it."""
    runs = [r for r in results.get("plain", []) if "error" not in r]
    if not runs or scenario.settings.get("DOWNLOAD_DELAY"):
        return None
    return statistics.median(r["wall"] for r in runs)


# -- the farm -------------------------------------------------------------------------


def on_farm_loop(farm: Farm, function: Callable[[], object]) -> object:
    """Run ``function`` in the farm's own thread (its records are that thread's)."""
    async def call() -> object:
        return function()

    return asyncio.run_coroutine_threadsafe(call(), farm.loop).result(timeout=30)


def reset_farm(farm: Farm, outages: list[Outage]) -> None:
    """Forget the last run's records, and time ``outages`` from this run's first request."""
    def reset() -> None:
        for spec in farm.specs:
            spec.seen.clear()
            spec.last.clear()
            spec.ban_log.clear()
            spec.overflows = 0
        farm.site_seen.clear()
        farm.site_limited.clear()
        farm.site_last.clear()
        farm.outages[:] = outages
        farm.anchor = None

    on_farm_loop(farm, reset)


def settle_farm(farm: Farm, limit: float = 60.0) -> None:
    """Wait until the run's outages are over and every proxy listens again (so that none of
    them spills into the next run); at most ``limit`` seconds."""
    deadline = time.monotonic() + limit
    if farm.anchor is not None and farm.outages:
        end = farm.anchor + max(o.after + o.seconds for o in farm.outages)
        time.sleep(max(0.0, min(end, deadline) - time.monotonic()))
    while time.monotonic() < deadline and any(s.server is None for s in farm.specs if s.kind != "dead"):
        time.sleep(0.1)


def farm_measures(farm: Farm) -> dict:
    """What the farm saw in a run: 429s, 503s, pages asked for (twice?), pacing at the site."""
    def measure() -> dict:
        pages = [s for s in farm.site_seen if s.path.startswith("/page/")]
        hits = Counter((s.host, s.path) for s in pages)
        return {"proxy_429s": sum(len(s.ban_log) for s in farm.specs), "site_429s": len(farm.site_limited),
                "overflows": sum(s.overflows for s in farm.specs), "distinct": len(hits),
                "twice": sum(1 for n in hits.values() if n > 1), "min_gap": min_gap(farm.site_seen),
                "site_rate": (len(pages) - 1) / (pages[-1].at - pages[0].at) if len(pages) > 1 else None}

    return on_farm_loop(farm, measure)  # type: ignore[return-value]


def min_gap(seen: list) -> float | None:
    """The shortest time between two requests of one exit address to one site, at the site."""
    times: dict[tuple[str, str], list[float]] = {}
    for s in seen:
        times.setdefault((s.exit_ip, s.host), []).append(s.at)
    gaps = [b - a for ts in times.values() for a, b in itertools.pairwise(sorted(ts))]
    return min(gaps) if gaps else None


@contextlib.contextmanager
def farms(scenario: Scenario) -> Iterator[tuple[Farm, Farm]]:
    """The scenario's farm (its pool, then the plain proxy), and the farm ``plain`` crawls
    through: the same, unless the site rate limits each exit; then one without that limit,
    so that plain stays the CPU reference."""
    specs = [*scenario.specs(), ProxySpec(PLAIN_PROXY)]
    with Farm(specs, site_interval=scenario.site_interval, site_retry_after=scenario.site_retry_after) as farm:
        if not scenario.site_interval:
            yield farm, farm
            return
        with Farm([ProxySpec(PLAIN_PROXY)]) as plain_farm:
            yield farm, plain_farm


# -- one crawl ------------------------------------------------------------------------


def run_child(job: dict, tmp: Path, timeout: float) -> dict:
    """Run one crawl in a child process; its counts, stats and CPU time, or ``{"error"}``.
    The job's ``http_proxy``, if any, is the process's (Scrapy's HttpProxyMiddleware then
    sends every request without ``meta['proxy']`` through it, robots.txt included)."""
    job = {**job, "out": str(tmp / "out.json")}
    (tmp / "job.json").write_text(json.dumps(job))
    (tmp / "out.json").unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if job.get("http_proxy"):
        env["http_proxy"] = job["http_proxy"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        proc = subprocess.run([sys.executable, __file__, "--child", str(tmp / "job.json")], capture_output=True,
                              text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"no end after {timeout:.0f} s (killed)"}
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or not (tmp / "out.json").exists():
        lines = proc.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit {proc.returncode}"}
    out = json.loads((tmp / "out.json").read_text())
    out["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out


def crawl_timeout(settings: dict) -> float:
    """The child's own limit (CLOSESPIDER_TIMEOUT) plus room to start and close."""
    return float(settings.get("CLOSESPIDER_TIMEOUT") or BASE["CLOSESPIDER_TIMEOUT"]) + 60


def run_crawl(scenario: Scenario, stack: Stack, farm: Farm, tmp: Path, log: Path | None = None) -> dict:
    """One crawl of the scenario by one stack, with the farm's measures of it."""
    pool = [s.url for s in farm.specs if s.name != PLAIN_PROXY]
    plain = next(s.url for s in farm.specs if s.name == PLAIN_PROXY)
    settings = {**BASE, **scenario.settings, **stack_settings(stack, pool)}
    if log is not None:
        settings.update(LOG_FILE=str(log), LOG_LEVEL="INFO")
    profile = str(log.with_suffix(".pstats")) if log is not None and PROFILE else None
    proxies = [plain] if stack.base == "plain" else pool if stack.base == "cycle" else []
    # Scrapy's own requests (robots.txt) take the first proxy too
    job = {"settings": settings, "hosts": scenario.hosts, "pages": scenario.pages, "proxies": proxies,
           "http_proxy": proxies[0] if proxies else None, "profile": profile}
    pool_names = {s.name for s in farm.specs if s.name != PLAIN_PROXY}
    outages = [replace(o, names=o.names or frozenset(pool_names)) for o in scenario.outages]
    reset_farm(farm, outages if stack.base != "plain" else [])
    out = run_child(job, tmp, crawl_timeout(settings))
    if "error" not in out:
        out.update(farm_measures(farm), plugin=stack.plugin)
        out.update(retries=retries(out["stats"], stack), failed_attempts=failed_attempts(out["stats"], stack))
    settle_farm(farm)
    return out


def retries(stats: dict, stack: Stack) -> int:
    """Requests sent again: the plugin's moves to another proxy and Scrapy's retries; for
    rotating, the bans it saw (each retried on another proxy until its tries run out)."""
    own = stats.get("proxybalance/retry/count", 0)
    if stack.base == "rotating":
        own = sum(v for k, v in stats.items() if k.startswith("bans/status/") or k.startswith("bans/error/"))
    return own + stats.get("retry/count", 0)


def failed_attempts(stats: dict, stack: Stack) -> int:
    """Attempts that failed for want of a proxy (connection refused, reset, timeout): the
    plugin's failures, rotating's ``bans/error/*``, else Scrapy's download exceptions."""
    if stack.plugin:
        return stats.get("proxybalance/failures", 0)
    if stack.base == "rotating":
        return sum(v for k, v in stats.items() if k.startswith("bans/error/"))
    return stats.get("downloader/exception_count", 0)


def child(job_path: str) -> None:
    """Run one crawl (in the child process) and write its counts, numeric stats and peak RSS.

    The job: ``settings``, ``hosts`` and ``pages`` (the URLs, see :func:`page_url`),
    ``proxies`` (cycled through ``meta['proxy']``; empty: none set), ``filter`` (requests go
    through the duplicate filter, as a spider's frontier does; default: not), ``out``, and
    ``http_proxy`` (see :func:`run_child`).
    """
    from scrapy import Request, Spider, signals
    from scrapy.crawler import CrawlerProcess

    from scrapy_proxybalance.testing.farm import token

    job = json.loads(Path(job_path).read_text())
    counts = {"ok": 0, "failed": 0, "captcha": 0, "wrong": 0}
    clock: dict[str, float] = {}

    class Bench(Spider):
        name = "bench"

        async def start(self):
            proxies, site_hosts = job["proxies"], job["hosts"]
            for i in range(job["pages"]):
                meta = {"proxy": proxies[i % len(proxies)]} if proxies else {}
                yield Request(page_url(site_hosts, i), meta=meta, callback=self.parse, errback=self.failed,
                              dont_filter=not job.get("filter", False))

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
    if job.get("profile"):
        import cProfile

        cProfile.runctx("process.start()", globals(), {"process": process}, job["profile"])
    else:
        process.start()
    stats = {k: v for k, v in crawler.stats.get_stats().items() if isinstance(v, int | float)}
    Path(job["out"]).write_text(json.dumps({
        **counts, "wall": clock["end"] - clock["start"], "stats": stats,
        "finish": str(crawler.stats.get_value("finish_reason")),
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
    }))


# -- the tables -----------------------------------------------------------------------


def median_spread(values: list[float], fmt: str) -> str:
    med = statistics.median(values)
    return fmt.format(med) + (f" ±{(max(values) - min(values)) / 2:{fmt[2:-1]}}" if len(values) > 1 else "")


def cell(runs: list[dict], value: Callable[[dict], float | bool | None], fmt: str, count: bool = False) -> str:
    values = [v for v in (value(r) for r in runs) if v is not None]
    if not values:
        return "-"
    return f"{sum(bool(v) for v in values)}/{len(values)}" if count else median_spread(values, fmt)


def row(stack: str, runs: list[dict], plain_cpu: float | None, columns: list[Column]) -> str:
    errors = [r["error"] for r in runs if "error" in r]
    runs = [r for r in runs if "error" not in r]
    if not runs:
        return f"| {stack} | error: {errors[0][:100]} |"
    cells = [
        cell(runs, lambda r: r["ok"], "{:.0f}"), cell(runs, lambda r: r["failed"], "{:.0f}"),
        cell(runs, lambda r: r["proxy_429s"] + r["site_429s"], "{:.0f}"), cell(runs, lambda r: r["retries"], "{:.0f}"),
        cell(runs, lambda r: r["wall"], "{:.1f}"), cell(runs, lambda r: r["cpu"], "{:.1f}"),
        cell(runs, lambda r: r["wall"] / r["ideal"] if r["ideal"] else None, "{:.2f}"),
        cell(runs, lambda r: r["cpu"] / plain_cpu if plain_cpu else None, "{:.2f}"),
        *(cell(runs, c.value, c.fmt, c.count) for c in columns),
    ]
    unfinished = Counter(r["finish"] for r in runs if r["finish"] != "finished")
    note = f" ({', '.join(f'{n}x {reason}' for reason, n in unfinished.items())})" if unfinished else ""
    failed = f" ({len(errors)} runs failed: {errors[0][:80]})" if errors else ""
    return f"| {stack}{note}{failed} | " + " | ".join(cells) + " |"


def print_table(scenario: Scenario, results: dict[str, list[dict]], ideals: dict[str, float | None]) -> None:
    columns = [COLUMNS[c] for c in scenario.columns]
    headers = ["stack", "pages ok", "failed", "429s (site or proxies)", "retries", "wall s", "CPU s",
               "wall / ideal", "CPU / plain", *(c.header for c in columns)]
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    plain_runs = [r for r in results.get("plain", []) if "error" not in r]
    plain_cpu = statistics.median(r["cpu"] for r in plain_runs) if plain_runs else None
    for stack, runs in results.items():
        print(row(stack, runs, plain_cpu, columns))
    print()
    for value, names in itertools.groupby(ideals.items(), key=lambda item: item[1]):
        if value is not None:
            print(f"ideal wall time {value:.1f} s: {', '.join(n for n, _ in names)}")
    for line in scenario.notes(results) if scenario.notes else []:
        print(line)


def run_scenario(scenario: Scenario, repeat: int, have_rotating: bool, log_dir: Path | None) -> None:
    """Every stack of a scenario, ``repeat`` runs each, through one farm; then its table."""
    stacks = [s for s in scenario.all_stacks() if s.base != "rotating" or have_rotating]
    print(f"\n### {scenario.name}: {scenario.about} ({scenario.pages} pages over {scenario.sites} sites; "
          f"target: {scenario.target})\n")
    results: dict[str, list[dict]] = {}
    started = time.monotonic()
    with farms(scenario) as (farm, plain_farm), tempfile.TemporaryDirectory() as tmpdir:
        for stack in stacks:
            results[stack.name] = []
        for i in range(repeat):  # round by round: a drift of the machine's speed touches every stack alike
            for stack in stacks:
                through = plain_farm if stack.base == "plain" else farm
                results[stack.name].append(
                    run_crawl(scenario, stack, through, Path(tmpdir), log_file(log_dir, scenario, stack, i)))
        specs = [s for s in farm.specs if s.name != PLAIN_PROXY] + [plain_farm.specs[-1]]
    floor = cpu_floor(scenario, results)
    ideals = {s.name: ideal(scenario, s, specs, floor) for s in stacks}
    for stack in stacks:
        for run in results[stack.name]:
            run["ideal"] = ideals[stack.name]
    print_table(scenario, results, ideals)
    print(f"(the scenario took {time.monotonic() - started:.0f} s)")
    sys.stdout.flush()


def log_file(log_dir: Path | None, scenario: Scenario, stack: Stack, i: int) -> Path | None:
    if log_dir is None:
        return None
    return log_dir / f"{scenario.name}--{stack.name.replace(' ', '-').replace('+', '-')}--{i + 1}.log"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, help=f"runs per stack (default: {DEFAULT_REPEAT}, or the scenario's)")
    parser.add_argument("--scenario", nargs="*", default=[s.name for s in SCENARIOS], metavar="NAME")
    parser.add_argument("--log-dir", type=Path, help="keep each crawl's log (LOG_LEVEL INFO) in this directory")
    parser.add_argument("--profile", action="store_true", help="with --log-dir: each crawl's cProfile there too")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    if args.list:
        for s in SCENARIOS:
            print(f"{s.name}: {s.about}")
        return None
    unknown = set(args.scenario) - {s.name for s in SCENARIOS}
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))} (see --list)")
    try:
        import rotating_proxies  # noqa: F401
        have_rotating = True
    except ImportError:
        have_rotating = False
        print("scrapy-rotating-proxies is not installed here: its rows are skipped (make bench installs it)")
    import scrapy

    global PROFILE
    PROFILE = args.profile
    if args.log_dir:
        args.log_dir.mkdir(parents=True, exist_ok=True)
    print(f"{time.strftime('%Y-%m-%d')}, Scrapy {scrapy.__version__}, python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores; median ±half-range of the runs")
    for scenario in [s for s in SCENARIOS if s.name in args.scenario]:
        repeat = args.repeat or scenario.repeat or DEFAULT_REPEAT
        run_scenario(scenario, repeat, have_rotating, args.log_dir)
    return None


if __name__ == "__main__":
    main()
