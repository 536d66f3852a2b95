"""Stats keys under ``proxybalance/``, the periodic pool summary and the closing table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .core.proxy import mask

if TYPE_CHECKING:
    from scrapy.statscollectors import StatsCollector

    from .core.balancer import Balancer
    from .core.state import ProxyState

PREFIX = "proxybalance"
TABLE_ROWS = 50  # the closing table shows the busiest proxies; stats keep them all


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.0f}%" if whole else "-"


def summary(balancer: Balancer, stats: StatsCollector, waiting: int) -> str:
    """One line about the pool, and the ``proxybalance/pool/*`` gauges set to match."""
    counts = balancer.state_counts()
    for state in ("healthy", "trial", "ejected"):
        stats.set_value(f"{PREFIX}/pool/{state}", counts[state])
    return (
        f"proxybalance: {len(balancer.states)} proxies ({counts['healthy']} healthy,"
        f" {counts['trial']} on trial, {counts['ejected']} ejected);"
        f" {stats.get_value(f'{PREFIX}/requests', 0)} requests,"
        f" {stats.get_value(f'{PREFIX}/retries', 0)} retries,"
        f" {stats.get_value(f'{PREFIX}/bans', 0)} bans,"
        f" {stats.get_value(f'{PREFIX}/ejections', 0)} ejections; {waiting} waiting"
    )


def record_proxies(balancer: Balancer, stats: StatsCollector) -> None:
    """Per-proxy stats, for every proxy that carried a request (names masked)."""
    for p in balancer.states:
        m = p.metrics
        if m.requests:
            base = f"{PREFIX}/proxy/{p.proxy}"
            stats.set_value(f"{base}/requests", m.requests)
            stats.set_value(f"{base}/failures", m.failures)
            stats.set_value(f"{base}/bans", m.bans)
            stats.set_value(f"{base}/ejections", p.health.ejections)


def _row(p: ProxyState) -> tuple[str, ...]:
    m = p.metrics
    latency = m.mean_latency
    return (
        str(p.proxy),
        p.health.state.value,
        str(m.requests),
        _pct(m.successes, m.successes + m.failures + m.bans),
        "-" if latency is None else f"{latency * 1000:.0f} ms",
        str(m.bans),
        str(p.health.ejections),
    )


def table(balancer: Balancer) -> str:
    """The per-proxy table logged when the spider closes."""
    header = ("proxy", "state", "requests", "success", "mean latency", "bans", "ejections")
    ranked = sorted(balancer.states, key=lambda p: (-p.metrics.requests, p.id))
    rows = [header] + [_row(p) for p in ranked[:TABLE_ROWS]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if len(ranked) > TABLE_ROWS:
        lines.append(f"... and {len(ranked) - TABLE_ROWS} more proxies (see proxybalance/proxy/* stats)")
    return mask("\n".join(lines))
