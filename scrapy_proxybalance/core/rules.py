"""Every number the core's rules use, in one frozen object (the settings, read once).

The defaults are the settings' defaults, written once in ``scrapy_proxybalance/config.py``;
this class has none of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ejection import Backoff
from .sessions import SessionLimits
from .tiers import TierRules


@dataclass(frozen=True, slots=True)
class Rules:
    cooldown: float  # least gap between two requests of one proxy to one site (seconds)
    cooldown_max: float  # the most a site's learned gap may grow to
    pace_floor: float  # the least a site's learned gap may fall to (the cooldown, or DOWNLOAD_DELAY)
    pair_limit: int  # requests at once through one (proxy, site) pair while its gap is 0 (0: no limit)
    max_failures: int  # failures in a row that eject a proxy
    backoff: Backoff  # how long an ejection lasts
    ban_backoff: Backoff  # how long a ban without Retry-After lasts
    retry_after_max: float  # the longest Retry-After honoured
    max_banned_sites: int  # sites banning a proxy at once that eject it (0: never)
    retry_times: int  # charged retries of one request on other proxies
    unavailable_timeout: float  # seconds without any proxy for a site before acting (0: never)
    sessions: SessionLimits  # when a sticky session is retired
    tiers: TierRules  # when a site probes a cheaper tier, and each site's floor and ceiling
