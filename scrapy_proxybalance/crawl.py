"""Every part of the plugin in one crawl: what :func:`~.assembly.assemble` builds, and what the
lifecycle and the status page read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

    from .admission import Admission
    from .answers import Answers
    from .carriers import Carriers
    from .checks.active import HealthChecker
    from .config import Config
    from .core.balancer import Balancer
    from .core.store import StateStore
    from .ledger import Ledger
    from .pool_control import PoolControl
    from .sending import Sending
    from .status.record import Recorder


@dataclass
class Crawl:
    """Every part of the plugin in one crawl (see :mod:`.assembly` for who calls whom)."""

    crawler: Crawler
    config: Config
    stats: StatsCollector
    store: StateStore
    balancer: Balancer
    recorder: Recorder | None
    ledger: Ledger
    carriers: Carriers
    admission: Admission
    sending: Sending
    answers: Answers
    pool: PoolControl
    checker: HealthChecker | None
    project_policy: Any
