"""The pool's health events, counted and logged in one place."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .core.listener import PoolListener
from .stats import PREFIX

if TYPE_CHECKING:
    from scrapy.statscollectors import StatsCollector

    from .carriers import Carriers
    from .core.ejection import ProxyFacts
    from .core.state import ProxyState
    from .status.record import Recorder

logger = logging.getLogger(__name__)


class PoolEvents(PoolListener):
    """Every ejection and every return, from the balancer: a stat and a log line each, and an
    entry in the proxy's ejection history when a ``recorder`` keeps one (for the status page
    and the closing report); a return also wakes the requests waiting for a proxy."""

    def __init__(self, stats: StatsCollector, recorder: Recorder | None = None,
                 wake: Callable[[], None] = lambda: None) -> None:
        self.stats = stats
        self.recorder = recorder
        self.wake = wake  # waiting requests may ask again (a proxy came back)
        self.carriers: Carriers | None = None  # download paths that keep something per proxy (browser contexts)

    def ejected(self, state: ProxyState, facts: ProxyFacts, seconds: float) -> None:
        self.stats.inc_value(f"{PREFIX}/ejections")
        logger.warning("ejected %s for %.0f s (%s; ejection #%d)",
                       state.proxy.label, seconds, facts.reason, facts.ejections)
        if self.recorder is not None:
            self.recorder.ejected(state.key, time.time(), seconds, facts.reason)
        if self.carriers is not None:
            self.carriers.proxy_out(state.key)

    def removed(self, state: ProxyState) -> None:
        if self.carriers is not None:
            self.carriers.proxy_out(state.key)

    def banned(self, state: ProxyState, site: str, banning: set[str]) -> None:
        if self.carriers is not None:
            self.carriers.banned(state.key, banning)

    def same_exit(self, state: ProxyState, site: str) -> None:
        self.stats.inc_value(f"{PREFIX}/exits/same_exit")

    def revived(self, state: ProxyState, how: str) -> None:
        self.stats.inc_value(f"{PREFIX}/revivals/{how}")
        if self.recorder is not None:
            self.recorder.revived(state.key, time.time(), how)
        if how == "check":
            logger.info("%s passed its health check: back on trial before its backoff ended",
                        state.proxy.label)
        elif how == "probe":
            logger.info("%s answered a probe while most of the pool was out: back in rotation",
                        state.proxy.label)
        self.wake()

    def session_bound(self, session: str, state: ProxyState, generation: int) -> None:
        if not generation:
            self.stats.inc_value(f"{PREFIX}/sessions/bound")

    def session_moved(self, session: str, reason: str) -> None:
        cause = reason.split(" (")[0].replace("proxy ", "").split(" by ")[0].replace(" ", "_")
        self.stats.inc_value(f"{PREFIX}/sessions/moved")
        self.stats.inc_value(f"{PREFIX}/sessions/moved/{cause}")
        logger.info("session %r moves to another proxy: %s", session, reason)

    def session_renewed(self, session: str) -> None:
        self.stats.inc_value(f"{PREFIX}/sessions/renewed")
        self.wake()

    def slowed(self, site: str, gap: float) -> None:
        self.stats.inc_value(f"{PREFIX}/slowdowns")
        logger.info("%s is rate limiting: each proxy now waits %.2f s between requests there"
                    " (it speeds up again while the site answers fine)", site, gap)

    def tier_moved(self, site: str, before: int, after: int, why: str) -> None:
        self.stats.inc_value(f"{PREFIX}/tiers/{'climbs' if after > before else 'descents'}")
        logger.info("%s now goes through tier %d proxies (was tier %d): %s", site, after, before, why)
        self.wake()  # requests waiting for the old tier's proxies may go at the new one
