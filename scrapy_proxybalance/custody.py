"""Requests taken from a queue a fleet shares (scrapy-redis's) are held in the shared store
while this process has them, waiting for a proxy or downloading, so that a process killed
midway loses none: every :data:`RECLAIM_EVERY` seconds each process takes back what dead ones
held (their heartbeat stopped) and puts it in the shared queue again. At least once: a request
whose download ended just before its process died may be fetched again. See
:class:`~.core.store.Custody`.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from scrapy.utils.request import request_from_dict

from .meta import CUSTODY
from .stats import PREFIX

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

    from .core.store import StateStore

logger = logging.getLogger(__name__)

RECLAIM_EVERY = 1.0  # seconds between two looks for what dead processes held


class Unshared:
    """No custody: the queue is this process's own (a ``JOBDIR`` keeps what waits at a pause)."""

    def hold(self, request: Request) -> None:
        pass

    def let_go(self, request: Request) -> None:
        pass

    def stop(self) -> None:
        pass


class Custody:
    def __init__(self, store: StateStore, crawler: Crawler, requeue: Callable[[Request], None]) -> None:
        self.store = store
        self.crawler = crawler
        self.requeue = requeue  # into the shared queue, through the engine
        self.held: set[str] = set()
        self.task: asyncio.Task[None] | None = None
        self.refused = False  # a request that cannot be serialized was seen (said once)

    def hold(self, request: Request) -> None:
        """This process has the request now (taken from the shared queue, or waiting here)."""
        token = request.meta.setdefault(CUSTODY, secrets.token_hex(8))
        if token in self.held:
            return
        try:
            blob = pickle.dumps(request.to_dict(spider=self.crawler.spider), protocol=4)
        except (ValueError, TypeError, AttributeError, pickle.PicklingError) as exc:
            if not self.refused:
                self.refused = True
                logger.warning("a request cannot be held for the fleet if this process dies (%s): %s", exc, request)
            return
        self.held.add(token)
        self.store.hold(token, blob)

    def let_go(self, request: Request) -> None:
        """The request's download ended, or it went back into the shared queue."""
        token = request.meta.get(CUSTODY)
        if token in self.held:
            self.held.discard(token)
            self.store.let_go(token)

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._reclaiming())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None

    async def _reclaiming(self) -> None:
        while True:
            await asyncio.sleep(RECLAIM_EVERY)
            try:
                blobs = await self.store.reclaim()
                for blob in blobs:
                    self.requeue(request_from_dict(pickle.loads(blob), spider=self.crawler.spider))
            except Exception:  # a bad blob or a failing queue must not stop the next look
                logger.exception("taking back the requests of a fleet process that died failed (it will run again)")
                continue
            if blobs:
                self.crawler.stats.inc_value(f"{PREFIX}/custody/reclaimed", len(blobs))
                logger.warning("took back %d request(s) a fleet process that died had taken from the shared queue",
                               len(blobs))
