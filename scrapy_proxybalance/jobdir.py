"""What the pool learned that a paused crawl (``JOBDIR``) takes up again: each site's price
tier (see :mod:`.core.tiers`), in ``proxybalance.tiers.json`` beside Scrapy's own files."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy.utils.job import job_dir

from .core.tiers import restored, saved

if TYPE_CHECKING:
    from .crawl import Crawl

logger = logging.getLogger(__name__)
TIERS_FILE = "proxybalance.tiers.json"


def _path(crawl: Crawl) -> Path | None:
    folder = job_dir(crawl.crawler.settings)
    return Path(folder, TIERS_FILE) if folder else None


def load_tiers(crawl: Crawl) -> None:
    """The sites' tiers a paused crawl saved, into the store (a site another process of a
    fleet has decided meanwhile keeps the fleet's)."""
    path = _path(crawl)
    if path is None or not path.exists():
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        logger.warning("cannot read the sites' tiers from %s (%s); they are learned again", path, exc)
        return
    store, now = crawl.balancer.store, crawl.balancer.clock()
    for site, state in restored(data, now).items():
        if store.tier(site).tier < 0:
            store.set_tier(site, state)


def save_tiers(crawl: Crawl) -> None:
    path = _path(crawl)
    states = crawl.balancer.store.tiers()
    if path is None or not states:
        return
    try:
        path.write_text(json.dumps(saved(states, crawl.balancer.clock())), encoding="utf-8")
    except OSError as exc:
        logger.error("cannot save the sites' tiers to %s: %s", path, exc.strerror or exc)
