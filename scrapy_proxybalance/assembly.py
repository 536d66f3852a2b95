"""The plugin's parts for one crawl, built from the settings and wired together.

Who calls whom (each arrow a call; the core below the line knows nothing of Scrapy)::

    ProxyScheduler ──> Admission ──> Balancer ─────────> StateStore (memory / Redis)
          ▲               │   └──> Ledger ──> Balancer
          │ wake/released └──> Carriers (detach, own choice)
    ProxyBalanceMiddleware ──> Admission (lease now, claim)
                           ──> Sending ──> Carriers (attach)
                           ──> Answers ──> SpiderPolicy, Carriers (faults), Ledger, core.retry
    Lifecycle ──> store start/close, PoolControl (source, reloads), HealthChecker, StatusServer
    StatusServer ──> View ──> Crawl (read only), PoolControl (actions)
    ───────────────────────────────────────────────────────────────────────────────────────
    core: Balancer ──> Membership, Recovery, OutcomeRules, Candidates, Sessions, Gateways,
          strategies; every rule reads the injected clock
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from .admission import Admission
from .answers import Answers
from .carriers import Carriers
from .checks.active import HealthChecker
from .core.balancer import Balancer
from .crawl import Crawl
from .events import PoolEvents
from .ledger import Ledger
from .lifecycle import close_spider_soon
from .policy import SpiderPolicy, build_policy
from .pool_control import PoolControl
from .sending import Sending
from .sources import PoolSource
from .stats import PREFIX
from .status.record import Recorder
from .stores import StoreOptions, store_from_url

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from .config import Config
    from .core.store import StateStore

logger = logging.getLogger(__name__)


def assemble(crawler: Crawler, config: Config, carriers: Carriers) -> Crawl:
    stats = crawler.stats
    assert stats is not None
    # what the status page and the closing report show beyond the core's counts, kept only
    # while one of them is on
    observed = config.status is not None or config.report_file is not None
    recorder = Recorder(time.time()) if observed else None
    store = state_store(config, crawler)
    events = PoolEvents(stats, recorder)
    balancer = Balancer(config.pool, config.strategy, config.rules, store=store, listener=events)
    ledger = Ledger(balancer, stats, recorder, config.stats_per_proxy)
    admission = Admission(config, balancer, ledger, carriers, stats, store,
                          lambda reason: close_spider_soon(crawler, reason))
    events.wake = admission.wake
    events.carriers = carriers
    if carriers.holding:  # (the others keep nothing per lease)
        ledger.on_release.append(carriers.released)
    pool = PoolControl(config, balancer, store, stats, admission.wake, carriers.carried)
    admission.on_dry = pool.ran_dry
    if config.pool_source is not None:
        pool.source = PoolSource(config.pool_source, crawler, pool.use_source_pool)
    if config.health_check is not None:
        pool.checker = HealthChecker(crawler, balancer, config.health_check, admission.waiting)
    failures = carriers.proxy_fault_types()
    project_policy = build_policy(config.ban_policy, crawler, config, failures)
    answers = Answers(config, balancer, ledger, carriers, stats, SpiderPolicy(project_policy, None, crawler, config))
    return Crawl(crawler, config, stats, store, balancer, recorder, ledger, carriers, admission,
                 Sending(carriers, stats, recorder, config.session_cookiejar, config.stats_per_proxy), answers,
                 pool, pool.checker, project_policy)


def state_store(config: Config, crawler: Crawler) -> StateStore:
    """The store ``PROXY_STATE_URL`` names (see :mod:`.stores`)."""
    def trouble(message: str) -> None:
        crawler.stats.inc_value(f"{PREFIX}/state/errors")
        logger.warning("%s", message)

    lease_ttl = 2 * max(crawler.settings.getfloat("DOWNLOAD_TIMEOUT"), 1.0) + 10
    return store_from_url(config.state_url, StoreOptions(config.state_namespace, lease_ttl, config.state_timeout,
                                                         trouble))
