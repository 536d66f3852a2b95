"""Stats keys under ``proxybalance/``, the periodic pool summary and the closing table.

Keys (the README lists them): counts of requests, outcomes and waits; retries in Scrapy's
own shape (``proxybalance/retry/count``, ``.../reason_count/<reason>``, ``.../max_reached``);
pool gauges; per-proxy and per-site keys only with ``PROXY_STATS_PER_PROXY``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .tables import text_table

if TYPE_CHECKING:
    from scrapy.statscollectors import StatsCollector

    from .core.balancer import Balancer
    from .core.state import ProxyState

PREFIX = "proxybalance"
TABLE_ROWS = 50  # the closing table shows the busiest proxies


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.0f}%" if whole else "-"


def summary(balancer: Balancer, stats: StatsCollector, waiting: int, per_site: bool = False) -> str:
    """One line about the pool, and the ``proxybalance/pool/*`` gauges and the cost totals
    set to match."""
    record_costs(balancer, stats, per_site)
    counts = balancer.state_counts()
    for state in ("healthy", "trial", "ejected", "disabled"):
        stats.set_value(f"{PREFIX}/pool/{state}", counts[state])
    disabled = f", {counts['disabled']} disabled" if counts["disabled"] else ""
    return (
        f"{len(balancer.by_key)} proxies ({counts['healthy']} healthy,"
        f" {counts['trial']} on trial, {counts['ejected']} ejected{disabled});"
        f" {stats.get_value(f'{PREFIX}/requests', 0)} requests,"
        f" {stats.get_value(f'{PREFIX}/retry/count', 0)} retries,"
        f" {stats.get_value(f'{PREFIX}/bans', 0)} bans,"
        f" {stats.get_value(f'{PREFIX}/rate_limited', 0)} rate limited,"
        f" {stats.get_value(f'{PREFIX}/ejections', 0)} ejections; {waiting} waiting"
    )


def record_costs(balancer: Balancer, stats: StatsCollector, per_site: bool = False) -> None:
    """The cost book's totals into the stats: bytes and requests in all and per price tier,
    and costs where proxies have prices (per site too with ``PROXY_STATS_PER_PROXY``). Kept
    in the book as requests end and copied here with each summary, which keeps a request's
    path free of stats calls; exact at close."""
    book = balancer.costs
    priced = book.priced
    stats.set_value(f"{PREFIX}/bytes", book.all.bytes)
    if priced:
        stats.set_value(f"{PREFIX}/cost", book.all.cost)
    for tier, spent in book.tiers.items():
        stats.set_value(f"{PREFIX}/tier/{tier}/requests", spent.requests)
        stats.set_value(f"{PREFIX}/tier/{tier}/bytes", spent.bytes)
        if priced:
            stats.set_value(f"{PREFIX}/tier/{tier}/cost", spent.cost)
    if per_site:
        for site, spent in book.sites.items():
            stats.set_value(f"{PREFIX}/site/{site}/bytes", spent.bytes)
            if priced:
                stats.set_value(f"{PREFIX}/site/{site}/cost", spent.cost)


def record_proxies(balancer: Balancer, stats: StatsCollector) -> None:
    """Per-proxy stats, for every proxy that carried a request (``PROXY_STATS_PER_PROXY``)."""
    for p in balancer.states:
        m = p.metrics
        if m.requests:
            base = f"{PREFIX}/proxy/{p.proxy.label}"
            stats.set_value(f"{base}/requests", m.requests)
            stats.set_value(f"{base}/failures", m.failures)
            stats.set_value(f"{base}/bans", m.bans)
            stats.set_value(f"{base}/ejections", balancer.facts(p).ejections)
            stats.set_value(f"{base}/bytes", m.bytes)
            if p.proxy.cost is not None:
                stats.set_value(f"{base}/cost", m.cost)


def cost_line(balancer: Balancer) -> str:
    """What the crawl moved and cost, in all and per price tier (the closing line)."""
    book = balancer.costs
    total = book.all
    priced = any(p.proxy.cost is not None for p in balancer.states)
    line = f"{total.requests} requests through the pool moved {_size(total.bytes)}"
    if priced:
        line += f" and cost {total.cost:.6g}"
    if len(book.tiers) > 1 or priced:
        parts = [f"tier {tier}: {spent.requests} requests, {_size(spent.bytes)}"
                 + (f", {spent.cost:.6g}" if priced else "") for tier, spent in sorted(book.tiers.items())]
        line += f" ({'; '.join(parts)})"
    return line


def _size(nbytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"


def _row(balancer: Balancer, p: ProxyState) -> tuple[str, ...]:
    m = p.metrics
    latency = m.mean_latency
    return (
        p.proxy.label,
        balancer.state_of(p),
        str(m.requests),
        _pct(m.successes, m.successes + m.failures + m.bans),
        "-" if latency is None else f"{latency * 1000:.0f} ms",
        str(m.bans),
        str(balancer.facts(p).ejections),
    )


def table(balancer: Balancer) -> str:
    """The per-proxy table logged when the spider closes (the busiest :data:`TABLE_ROWS`)."""
    header = ("proxy", "state", "requests", "success", "mean latency", "bans", "ejections")
    ranked = sorted(balancer.states, key=lambda p: (-p.metrics.requests, p.id))
    lines = text_table(header, [_row(balancer, p) for p in ranked[:TABLE_ROWS]])
    if len(ranked) > TABLE_ROWS:
        lines.append(f"... and {len(ranked) - TABLE_ROWS} more proxies")
    return "\n".join(lines)
