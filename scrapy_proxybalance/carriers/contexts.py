"""The browser contexts the Playwright carrier keeps: one per proxy (or per sticky session's
binding), at most ``cap`` per download handler, the least recently used idle one closed when a
new one needs its place.

scrapy-playwright creates a context on demand, from the first request that names it, and
closes contexts only at the end of the crawl; with ``PLAYWRIGHT_MAX_CONTEXTS`` reached, a
request for a new context waits while holding the handler's lock, and the crawl hangs. So the
carrier counts contexts itself: a request is admitted to ride only if its context is open, or
can be opened, or an idle one can be closed for it (:meth:`ContextPool.hold`); otherwise it
waits for a request to end. Closing goes through the handler's own context objects
(``context_wrappers``, stable from scrapy-playwright 0.0.47 to 0.0.48).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.leases import Lease
from ..core.proxy import Proxy

logger = logging.getLogger(__name__)

PREFIX = "proxybalance-"  # the names of our contexts start so (the user's own are left alone)


@dataclass
class Context:
    name: str
    proxy: Proxy  # what it was opened with: a changed password needs a new context
    key: str  # the proxy's key
    session: str | None
    in_flight: int = 0
    last_used: int = 0  # a counter, not a time: only the order matters
    sites: set[str] = field(default_factory=set)  # what it carried, for "banned by every site it serves"
    doomed: bool = False  # close it once its requests end


class ContextPool:
    """Our contexts in one download handler (see the module's docstring)."""

    def __init__(self, cap: int, handler: Callable[[], Any], stats: Any | None = None) -> None:
        self.cap = cap
        self.handler = handler  # the scrapy-playwright handler (found once the engine runs)
        self.stats = stats
        self.contexts: dict[str, Context] = {}  # name -> context (open, or reserved by a request)
        self.by_lease: dict[int, Context] = {}
        self.uses = itertools.count(1)
        self.closing: set[asyncio.Task[None]] = set()

    def name_for(self, lease: Lease) -> str:
        """The context a lease rides in: its proxy's, or its session's binding's."""
        base = f"{PREFIX}{lease.state.id}"
        if lease.session is None:
            return base
        digest = hashlib.sha256(f"{lease.session}\0{lease.generation}".encode()).hexdigest()[:12]
        return f"{base}-s{digest}"

    def open_keys(self) -> set[str]:
        """Proxies with an open context that is not being closed: picked first."""
        return {c.key for c in self.contexts.values() if not c.doomed and c.session is None}

    def hold(self, lease: Lease) -> str | None:
        """Reserve the lease's context for its request: its name, or ``None`` if every context
        is busy and no more may open (the request waits for one to end)."""
        name = self.name_for(lease)
        ctx = self.contexts.get(name)
        if ctx is not None and ctx.proxy != lease.proxy:  # the entry changed (a new password): a new context
            self._close(ctx)
            ctx = None
        if ctx is None:
            if len(self.contexts) >= self.cap and not self._make_room():
                return None
            ctx = self.contexts[name] = Context(name, lease.proxy, lease.state.key, lease.session)
            if self.stats is not None:
                self.stats.max_value("proxybalance/playwright/contexts/max", len(self.contexts))
        ctx.in_flight += 1
        ctx.last_used = next(self.uses)
        ctx.sites.add(lease.site)
        self.by_lease[lease.number] = ctx
        return name

    def released(self, lease: Lease) -> None:
        """The lease's request ended (or never went): its context may be idle now."""
        ctx = self.by_lease.pop(lease.number, None)
        if ctx is None:
            return
        ctx.in_flight -= 1
        if ctx.doomed and not ctx.in_flight:
            self._close(ctx)

    def proxy_out(self, key: str) -> None:
        """The proxy was ejected or removed: its contexts close (at once if idle)."""
        for ctx in list(self.contexts.values()):
            if ctx.key == key:
                self._retire(ctx)

    def banned(self, key: str, banning: set[str]) -> None:
        """Sites ban the proxy: a context whose every site bans it is of no more use."""
        for ctx in list(self.contexts.values()):
            if ctx.key == key and ctx.sites <= banning:
                self._retire(ctx)

    def _retire(self, ctx: Context) -> None:
        ctx.doomed = True
        if not ctx.in_flight and not _pages(getattr(self.handler(), "context_wrappers", {}).get(ctx.name)):
            self._close(ctx)

    def _make_room(self) -> bool:
        """Close the least recently used idle context; ``False`` if every one is busy."""
        wrappers = getattr(self.handler(), "context_wrappers", {})
        idle = [c for c in self.contexts.values() if not c.in_flight and not _pages(wrappers.get(c.name))]
        if not idle:
            return False
        self._close(min(idle, key=lambda c: (not c.doomed, c.last_used)))
        return True

    def _close(self, ctx: Context) -> None:
        """Forget ``ctx`` and close the browser's context of that name, in the background
        (a request for a new context waits for it in the handler, for a moment)."""
        self.contexts.pop(ctx.name, None)
        handler = self.handler()
        wrapper = getattr(handler, "context_wrappers", {}).get(ctx.name) if handler is not None else None
        if wrapper is None:
            return  # never opened (its request did not go), or closed by the browser already
        if self.stats is not None:
            self.stats.inc_value("proxybalance/playwright/contexts/closed")
        task = asyncio.ensure_future(_close_quietly(wrapper.context, ctx.name))
        self.closing.add(task)
        task.add_done_callback(self.closing.discard)


def _pages(wrapper: Any) -> int:
    """Pages open in a context (a spider that kept one, ``playwright_include_page``, still uses it)."""
    return len(wrapper.context.pages) if wrapper is not None else 0


async def _close_quietly(context: Any, name: str) -> None:
    try:
        await context.close()
    except Exception as exc:  # the browser went away meanwhile: nothing left to close
        logger.debug("closing the browser context %s: %s", name, exc)
