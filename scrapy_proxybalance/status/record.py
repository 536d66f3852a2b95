"""What the status page, ``/metrics`` and the closing report show beyond the core's own
counts: outcomes by site, bans by site and status, failures by reason, the history of each
proxy's ejections, a latency histogram and the throughput of the last minutes.

Kept only while one of them is on (the middleware makes a :class:`Recorder` then), each event
in O(1). Scrapy-free: times are arguments (wall-clock seconds).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)  # seconds, Prometheus-style upper bounds
WINDOW = 300  # seconds of throughput kept (one point a second)
RATE_WINDOW = 10  # pages/s are counted over this many seconds
HISTORY = 20  # ejections kept per proxy (the count of all is the core's)
MAX_SITES = 10_000  # sites recorded one by one; the rest count together as OTHER_SITES
OTHER_SITES = "(other sites)"
OUTCOMES = ("success", "failure", "ban", "rate_limited", "overloaded", "neutral")


@dataclass(slots=True)
class Histogram:
    """Counts of observations per bucket (not cumulative), their sum and count."""

    bounds: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        i = 0
        bounds = self.bounds
        while i < len(bounds) and value > bounds[i]:
            i += 1
        self.counts[i] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """``(upper bound, observations <= it)`` pairs, ending with ``+Inf``."""
        out, running = [], 0
        for bound, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += n
            out.append(("+Inf" if bound == math.inf else f"{bound:g}", running))
        return out


@dataclass(slots=True)
class Rate:
    """Events per second over the last :data:`RATE_WINDOW` seconds, from per-second counts."""

    recent: deque[list[int]] = field(default_factory=lambda: deque(maxlen=RATE_WINDOW + 1))

    def add(self, second: int, n: int = 1) -> None:
        if self.recent and self.recent[-1][0] == second:
            self.recent[-1][1] += n
        else:
            self.recent.append([second, n])

    def per_second(self, now: float, since: float) -> float:
        second = int(now)
        counted = sum(n for s, n in self.recent if second - RATE_WINDOW < s <= second)
        return counted / max(1.0, min(float(RATE_WINDOW), now - since))


@dataclass(slots=True)
class SiteRecord:
    requests: int = 0  # attempts sent
    outcomes: Counter[str] = field(default_factory=Counter)
    bans: Counter[str] = field(default_factory=Counter)  # by status ("403", "200 ban page")
    pages: Rate = field(default_factory=Rate)


@dataclass(slots=True)
class ProxyRecord:
    bans: dict[str, Counter[str]] = field(default_factory=dict)  # site -> status -> bans
    rate_limits: Counter[str] = field(default_factory=Counter)  # site -> rate-limit answers
    failures: Counter[str] = field(default_factory=Counter)  # reason -> failures
    ejections: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=HISTORY))
    carried: Counter[str] = field(default_factory=Counter)  # download path (other than plain HTTP) -> attempts


class Recorder:
    def __init__(self, now: float) -> None:
        self.started = now
        self.outcomes: Counter[str] = Counter()  # answered attempts by outcome
        self.latency = Histogram()
        self.series: deque[list[int]] = deque()  # [second, pages, problems], one entry a second
        self.sites: dict[str, SiteRecord] = {}
        self.proxies: dict[str, ProxyRecord] = {}  # by proxy key, made at a proxy's first ban, failure or ejection

    def site(self, site: str) -> SiteRecord:
        record = self.sites.get(site)
        if record is None:
            if len(self.sites) >= MAX_SITES:
                site = OTHER_SITES
                record = self.sites.get(site)
            if record is None:
                record = self.sites[site] = SiteRecord()
        return record

    def proxy(self, key: str) -> ProxyRecord:
        record = self.proxies.get(key)
        if record is None:
            record = self.proxies[key] = ProxyRecord()
        return record

    def sent(self, site: str, key: str = "", path: str = "") -> None:
        """An attempt went out through proxy ``key`` to ``site``; ``path``: the download path
        that carried it, when not plain HTTP (``playwright``: a rendered page)."""
        self.site(site).requests += 1
        if path:
            self.proxy(key).carried[path] += 1

    def answered(self, key: str, site: str, outcome: str, now: float, status: str = "", reason: str = "",
                 latency: float | None = None) -> None:
        """An attempt through proxy ``key`` ended: ``outcome`` as the balancer counted it;
        ``status`` the response's status (``"403"``, ``"200 ban page"``) if there was one."""
        self.outcomes[outcome] += 1
        record = self.site(site)
        record.outcomes[outcome] += 1
        second = int(now)
        if outcome == "success":
            record.pages.add(second)
            self._tick(second, 1, 0)
        elif outcome in ("failure", "ban", "rate_limited", "overloaded"):
            self._tick(second, 0, 1)
        if latency is not None:
            self.latency.observe(latency)
        if outcome == "ban":
            record.bans[status or reason] += 1
            bans = self.proxy(key).bans
            by_status = bans.get(site)
            if by_status is None:
                by_status = bans[site] = Counter()
            by_status[status or reason] += 1
        elif outcome == "failure":
            self.proxy(key).failures[reason or "failure"] += 1
        elif outcome == "rate_limited":
            self.proxy(key).rate_limits[site] += 1

    def _tick(self, second: int, pages: int, problems: int) -> None:
        series = self.series
        if series and series[-1][0] == second:
            series[-1][1] += pages
            series[-1][2] += problems
            return
        if series:
            gap = min(second - series[-1][0] - 1, WINDOW)
            series.extend([second - gap + i, 0, 0] for i in range(gap))  # seconds without an answer
        series.append([second, pages, problems])
        while series and series[0][0] <= second - WINDOW:
            series.popleft()

    def ejected(self, key: str, now: float, seconds: float, reason: str) -> None:
        self.proxy(key).ejections.append({"at": now, "seconds": round(seconds, 1), "reason": reason, "back": None})

    def revived(self, key: str, now: float, how: str) -> None:
        """An ejected proxy came back (``how``: ``trial``, ``check`` or ``probe``)."""
        record = self.proxies.get(key)
        if record is not None and record.ejections and record.ejections[-1]["back"] is None:
            record.ejections[-1]["back"] = {"at": now, "how": how}

    def throughput(self, now: float) -> list[list[int]]:
        """``[second, pages, problems]`` for each second of the last :data:`WINDOW` since the
        crawl began, the last one now (seconds without answers count 0)."""
        second = int(now)
        first = max(second - WINDOW + 1, int(self.started))
        known = {s: (p, q) for s, p, q in self.series if s >= first}
        return [[s, *known.get(s, (0, 0))] for s in range(first, second + 1)]

    def pages_per_second(self, now: float) -> float:
        second = int(now)
        pages = sum(p for s, p, _ in self.series if second - RATE_WINDOW < s <= second)
        return pages / max(1.0, min(float(RATE_WINDOW), now - self.started))
