"""The pool as a person (or Prometheus) reads it: what ``/status.json``, ``/metrics`` and the
closing report show, read from the crawl's parts (:class:`~..assembly.Crawl`).

No password appears: proxies are shown by ``Proxy.label`` (the entry's name, else the masked
URL) and by their masked URL. A view costs little even for a large pool and a broad crawl: it
asks the store only for the proxies with something to show (out, on trial, disabled, banned),
reads the rest's in-flight counts in one pass of attribute reads, and lists the top rows (the
report at close lists every one); the status server caches it and spaces its refreshes by how
long that takes.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from ..stats import PREFIX
from .record import OUTCOMES, ProxyRecord

if TYPE_CHECKING:
    from ..core.state import ProxyState
    from ..crawl import Crawl

MAX_PROXY_ROWS = 500  # proxies /status.json lists (those out or banned first, then the busiest)
MAX_SITE_ROWS = 200  # sites /status.json lists (the busiest)
VERSION = 1  # of the /status.json and report formats
STATES = ("healthy", "trial", "ejected", "disabled")
STATE_ORDER = {"ejected": 0, "disabled": 1, "trial": 2, "healthy": 3}  # most worth a look first


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


class View:
    """One look at the pool, now. ``proxies`` and ``pool`` come from one pass over it."""

    def __init__(self, crawl: Crawl) -> None:
        self.crawl = crawl
        self.balancer = b = crawl.balancer
        self.recorder = crawl.recorder
        self.now = b.clock()  # the balancer's clock (monotonic), for deadlines
        self.wall = time.time()
        store, now, by_key = b.store, self.now, b.by_key
        self.out: dict[str, str] = {}  # proxy key -> its state, for the proxies not healthy
        for key in store.noted():
            if key in by_key and (state := b.state_of(by_key[key], now)) != "healthy":
                self.out[key] = state
        self.banning = {key: store.banned_sites(key, now) for key in store.banned_proxies(now) if key in by_key}
        counts = Counter(self.out.values())
        counts["healthy"] = len(by_key) - len(self.out)
        in_flight = backups = backups_busy = 0
        self.busy: list[ProxyState] = []  # the proxies with requests in flight
        for p in by_key.values():  # attribute reads only
            if p.in_flight:
                in_flight += p.in_flight
                self.busy.append(p)
            if p.proxy.backup:
                backups += 1
                backups_busy += p.in_flight > 0
        waiting = crawl.admission.waiting()
        self.pool = {"total": len(by_key), **{s: counts[s] for s in STATES}, "banned": len(self.banning),
                     "backups": backups, "backups_in_use": backups_busy, "in_flight": in_flight, "waiting": waiting}

    # -- totals ------------------------------------------------------------------------

    def totals(self) -> dict[str, Any]:
        stats = self.crawl.stats
        outcomes = self.recorder.outcomes if self.recorder else Counter()

        def stat(key: str) -> int:
            return int(stats.get_value(f"{PREFIX}/{key}", 0) or 0)

        return {"requests": stat("requests"), "outcomes": {o: outcomes[o] for o in OUTCOMES},
                "retries": stat("retry/count"), "gave_up": stat("retry/max_reached"), "ejections": stat("ejections"),
                "waits": stat("waits"), "no_proxy": stat("no_proxy"), "pool_reloads": stat("pool/reloads"),
                "rendered": stat("requests/playwright"), "bytes": self.balancer.costs.all.bytes,
                "cost": round(self.balancer.costs.all.cost, 9)}

    def tiers(self) -> list[dict[str, Any]]:
        """Each price tier: its proxies, and the requests, bytes and cost through them."""
        b = self.balancer
        sizes, spent = b.tier_sizes(), b.costs.tiers
        sites = Counter(t.tier for t in b.store.tiers().values() if t.tier >= 0)
        return [{"tier": tier, "proxies": sizes.get(tier, 0), "sites": sites[tier],
                 "requests": spent[tier].requests if tier in spent else 0,
                 "bytes": spent[tier].bytes if tier in spent else 0,
                 "cost": round(spent[tier].cost, 9) if tier in spent else 0.0}
                for tier in sorted(set(sizes) | set(spent))]

    # -- proxies -----------------------------------------------------------------------

    def why(self, p: ProxyState, state: str, banning: list[str]) -> str:
        """Why a proxy is in its state, in a few words."""
        facts = self.balancer.facts(p)
        if state == "disabled":
            return "disabled by hand"
        if state == "ejected":
            left = facts.ejected_until - self.now
            return f"ejected for {left:.0f} s more: {facts.reason or 'failures'}"
        parts = []
        if state == "trial":
            parts.append(f"on trial after: {facts.reason}" if facts.reason else "on trial")
        if banning:
            parts.append(f"banned by {', '.join(sorted(banning)[:3])}" + (f" and {len(banning) - 3} more"
                                                                             if len(banning) > 3 else ""))
        if facts.failures:
            parts.append(f"{facts.failures} failure(s) in a row, last: {facts.reason}")
        return "; ".join(parts)

    def proxy(self, p: ProxyState, state: str, banning: list[str], history: bool = False) -> dict[str, Any]:
        m, facts = p.metrics, self.balancer.facts(p)
        record = self.recorder.proxies.get(p.key) if self.recorder else None
        checker = self.crawl.checker
        ejected_for = facts.ejected_until - self.now if state == "ejected" else None
        row: dict[str, Any] = {
            "id": p.id, "label": p.proxy.label, "name": p.proxy.name, "proxy": str(p.proxy),
            "state": state, "why": self.why(p, state, banning), "banned_by": sorted(banning),
            "in_flight": p.in_flight, "limit": p.limit.allowed, "requests": m.requests, "successes": m.successes,
            "failures": m.failures, "bans": m.bans, "rate_limited": m.rate_limits, "overloaded": m.overloads,
            "success_rate": _rate(m.successes, m.successes + m.failures + m.bans),
            "latency_ms": _ms(m.mean_latency), "latency_ewma_ms": _ms(m.latency),
            "ejections": facts.ejections, "next_trial_s": None if ejected_for is None else round(ejected_for, 1),
            "exit_ip": checker.ip_of.get(p.key) if checker else None,
            "region": p.proxy.region, "backup": p.proxy.backup, "weight": p.proxy.weight,
            "tier": p.proxy.tier, "bytes": m.bytes, "cost": round(m.cost, 9),
        }
        row.update(self._recorded(record or ProxyRecord(), history))
        return row

    def _recorded(self, record: ProxyRecord, history: bool) -> dict[str, Any]:
        """What the recorder kept of a proxy: bans by site, rendered pages, its histories."""
        row: dict[str, Any] = {"bans_by_site": {site: dict(c) for site, c in record.bans.items()},
                               "rendered": record.carried["playwright"]}
        if history:
            row["rate_limited_by_site"] = dict(record.rate_limits)
            row["failures_by_reason"] = dict(record.failures)
            row["ejection_history"] = [self._event(e) for e in record.ejections]
        elif record.ejections:
            row["last_ejection"] = self._event(record.ejections[-1])
        return row

    @staticmethod
    def _event(event: dict[str, Any]) -> dict[str, Any]:
        return {**event, "at": _iso(event["at"]),
                "back": event["back"] and {**event["back"], "at": _iso(event["back"]["at"])}}

    def proxies(self, limit: int | None = None, history: bool = False) -> list[dict[str, Any]]:
        """One row per proxy of the pool: all of them, or the ``limit`` most worth a look (see
        :meth:`chosen`), in pool order."""
        return [self.proxy(p, state, banning, history) for p, state, banning in self.chosen(limit)]

    def chosen(self, limit: int | None = None) -> list[tuple[ProxyState, str, list[str]]]:
        """(proxy, state, sites banning it now) of every proxy, or of the ``limit`` most worth a
        look: out or banned first (ejected, disabled, on trial, then the most used), then those
        with requests in flight, then the first in pool order; in pool order."""
        by_key = self.balancer.by_key
        if limit is None or len(by_key) <= limit:
            keys: list[str] = list(by_key)
        else:
            flagged = heapq.nsmallest(limit, {*self.out, *self.banning}, key=lambda k: (
                STATE_ORDER.get(self.out.get(k, "healthy"), 9) - 0.5 * (k in self.banning),
                -by_key[k].metrics.requests, by_key[k].id))
            picked = dict.fromkeys(flagged)
            for p in heapq.nlargest(limit, self.busy, key=lambda p: p.in_flight):
                if len(picked) >= limit:
                    break
                picked.setdefault(p.key)
            for key in by_key:
                if len(picked) >= limit:
                    break
                picked.setdefault(key)
            keys = sorted(picked, key=lambda k: by_key[k].id)
        return [(by_key[k], self.out.get(k, "healthy"), self.banning.get(k, [])) for k in keys]

    # -- sites -------------------------------------------------------------------------

    def sites(self, limit: int | None = None) -> list[dict[str, Any]]:
        """One row per site the crawl sent requests to (the busiest ``limit``)."""
        recorder = self.recorder
        if recorder is None:
            return []
        waiting = self.crawl.admission.waiting_by_site()
        sites = recorder.sites
        if limit is None:
            names = sorted(sites, key=lambda s: -sites[s].requests)
        else:
            names = heapq.nsmallest(limit, sites, key=lambda s: -sites[s].requests)
        names += [s for s in waiting if s not in sites]
        if limit is not None:
            names = names[:limit]
        store, b = self.balancer.store, self.balancer
        rows = []
        for site in names:
            record = recorder.sites.get(site)
            outcomes = record.outcomes if record else Counter()
            rows.append({
                "site": site, "requests": record.requests if record else 0, "pages": outcomes["success"],
                "failures": outcomes["failure"], "bans": outcomes["ban"], "rate_limited": outcomes["rate_limited"],
                "bans_by_status": dict(record.bans) if record else {},
                "pages_per_s": round(record.pages.per_second(self.wall, recorder.started), 2) if record else 0.0,
                "waiting": waiting.get(site, 0), "gap_s": round(b.pair_rule(site, self.now)[0], 3),
                "banned_proxies": len(store.banned(site, self.now)), **self._spent(site),
            })
        return rows

    def _spent(self, site: str) -> dict[str, Any]:
        """The site's price tier and why it is there, and what its requests moved and cost."""
        b = self.balancer
        state, spent = b.store.tier(site), b.costs.sites.get(site)
        return {"tier": state.tier if state.tier >= 0 else None, "tier_why": state.why or None,
                "bytes": spent.bytes if spent else 0, "cost": round(spent.cost, 9) if spent else 0.0}

    # -- whole documents ---------------------------------------------------------------

    def header(self) -> dict[str, Any]:
        spider = self.crawl.crawler.spider
        started = self.recorder.started if self.recorder else self.wall
        return {"version": VERSION, "spider": getattr(spider, "name", None), "now": _iso(self.wall),
                "started": _iso(started), "uptime_s": round(self.wall - started, 1)}

    def status(self, max_proxies: int = MAX_PROXY_ROWS, max_sites: int = MAX_SITE_ROWS) -> dict[str, Any]:
        """``/status.json``."""
        recorder, source = self.recorder, self.crawl.pool.source
        return {
            **self.header(),
            "pool": self.pool,
            "totals": self.totals(),
            "tiers": self.tiers(),
            "pages_per_s": round(recorder.pages_per_second(self.wall), 2) if recorder else 0.0,
            "throughput": {"step_s": 1, "points": recorder.throughput(self.wall) if recorder else []},
            "latency": self.latency(),
            "sites": self.sites(max_sites),
            "proxies": self.proxies(max_proxies),
            "proxies_shown": min(len(self.balancer.by_key), max_proxies),
            "source": source.status() if source is not None else None,
            "actions": bool(self.crawl.config.status and self.crawl.config.status.actions),
        }

    def report(self, reason: str | None) -> dict[str, Any]:
        """The closing report: every proxy and site, with their histories."""
        source = self.crawl.pool.source
        return {**self.header(), "finish_reason": reason, "pool": self.pool, "totals": self.totals(),
                "tiers": self.tiers(), "latency": self.latency(), "sites": self.sites(),
                "proxies": self.proxies(history=True), "source": source.status() if source is not None else None}

    def latency(self) -> dict[str, Any] | None:
        """The answered requests' download latency: count, mean, and cumulative buckets."""
        if self.recorder is None:
            return None
        h = self.recorder.latency
        return {"count": h.count, "mean_ms": _ms(h.total / h.count) if h.count else None,
                "buckets": dict(h.cumulative())}


def _iso(wall: float | None) -> str | None:
    """A wall-clock time as ISO 8601 UTC (seconds, with a ``Z``)."""
    if wall is None or not math.isfinite(wall):
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))
