"""Why proxies cannot serve a site: one line each, for the log when the pool is unavailable."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .balancer import Balancer


def why_out(b: Balancer, site: str, region: str | None = None, limit: int = 20) -> list[str]:
    """Why each proxy of the region cannot serve ``site`` now, one line per proxy (at most
    ``limit``; O(n))."""
    now = b.clock()
    lines = []
    for p in b.by_key.values():
        if region is not None and p.proxy.region != region:
            continue
        facts = b.store.facts(p.key)
        until, _ = b.store.ban_of(p.key, site)
        if facts.disabled:
            why = "disabled"
        elif facts.ejected_until > now:
            why = f"ejected for {facts.ejected_until - now:.0f} s more after {facts.ejections} ejection(s)"
        elif until > now:
            why = f"banned by {site} for {until - now:.0f} s more"
        else:
            why = facts.state(now).value
        lines.append(f"{p.proxy.label}: {why}" + (f" (last: {facts.reason})" if facts.reason else ""))
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])
