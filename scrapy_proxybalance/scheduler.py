"""The scheduler that keeps requests waiting for a proxy in its custody.

:class:`ProxyScheduler` wraps your scheduler (``PROXY_SCHEDULER``: Scrapy's own by default,
scrapy-redis's, or any that honours Scrapy's scheduler interface) and adds a waiting room.
When a request leaves, the middleware leases it a proxy; when no proxy can take it yet, the
request stays here instead, so:

- it holds no downloader slot, and other sites' requests keep flowing;
- memory is bounded: at most ``PROXY_MAX_WAITING`` requests wait in the room; when it is
  full, the request goes back to your scheduler's queue and no more are pulled until room
  frees up (your queue, on disk with ``JOBDIR``, keeps the rest of the frontier);
- a queue shared by a fleet (scrapy-redis's) is not hoarded: by default the room then holds
  only as many requests as the process sends at once (``CONCURRENT_REQUESTS``), so the
  fleet's other processes take the rest; and with a shared state store, what the process
  took from that queue is held for the fleet (:mod:`.custody`): if it dies, the others put it
  back;
- among requests for the same site it waits in priority order;
- when the crawl closes or pauses, every waiting request goes back into your scheduler before
  that closes, so resuming a ``JOBDIR`` job crawls it.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter, deque
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.core.scheduler import BaseScheduler, Scheduler
from scrapy.utils.asyncio import CallLaterResult, call_later
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.python import global_object_name

from .admission import key_of
from .config import enabled, scheduler_settings
from .core.errors import ConfigError
from .core.waiting import WaitingRoom
from .custody import Custody, Unshared
from .meta import DONT_FILTER, WAIT, WOKEN
from .stats import PREFIX

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

    from .admission import Admission, Asked
    from .refusal import RefusedAdmission


logger = logging.getLogger(__name__)


class ProxyScheduler(BaseScheduler):
    def __init__(self, crawler: Crawler, inner: Any, max_waiting: int) -> None:
        self.crawler = crawler
        self.inner = inner
        self.room: WaitingRoom[Request] = WaitingRoom(max_waiting)
        self.woken: deque[Request] = deque()
        self.admission: Admission | RefusedAdmission | None = None  # the middleware's
        self.timer: tuple[float, CallLaterResult] | None = None
        self.custody: Custody | Unshared = Unshared()  # what it took from a queue its fleet shares

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProxyScheduler:
        try:
            inner_cls, max_waiting = wrapped_scheduler(crawler.settings)
        except ConfigError as exc:  # the middleware refuses to crawl with it, and says why
            if not enabled(crawler.settings):
                logger.error("scrapy-proxybalance: %s; using Scrapy's own scheduler", exc)
            inner_cls, max_waiting = Scheduler, 1
        inner = build_from_crawler(inner_cls, crawler)
        return cls(crawler, inner, max_waiting or room_size(inner, crawler.settings))

    def open(self, spider: Spider) -> Any:
        """Find the middleware's admission (the downloader middleware that has one) and
        attach to it, then open the scheduler it wraps."""
        engine = self.crawler.engine
        middlewares = engine.downloader.middleware.middlewares if engine is not None else ()
        self.admission = next((m.admission for m in middlewares if hasattr(m, "admission")), None)
        if self.admission is not None:
            self.admission.attach(self)
            store = getattr(self.admission, "store", None)
            if store is not None and store.shared and shared_queue(self.inner):
                self.custody = custody = Custody(store, self.crawler, self._reclaimed)
                self.crawler.signals.connect(self._left_downloader, signal=signals.request_left_downloader)
                custody.start()
        return self.inner.open(spider) if hasattr(self.inner, "open") else None

    def close(self, reason: str) -> Any:
        """Every waiting request goes back into the scheduler before it closes (and persists
        its queue)."""
        if self.timer is not None:
            self.timer[1].cancel()
            self.timer = None
        self.custody.stop()
        for request in [*self.woken, *self.room.drain()]:
            self._requeue(request)
        self.woken.clear()
        return self.inner.close(reason) if hasattr(self.inner, "close") else None

    def has_pending_requests(self) -> bool:
        return bool(self.room) or bool(self.woken) or self.inner.has_pending_requests()

    def __len__(self) -> int:
        return self.waiting() + (len(self.inner) if hasattr(self.inner, "__len__") else 0)

    def waiting(self) -> int:
        """Requests waiting for a proxy."""
        return len(self.room) + len(self.woken)

    def waiting_by_site(self) -> Counter[str]:
        """Requests waiting for a proxy, by site (O(what waits): for the status page)."""
        counts: Counter[str] = Counter()
        for key, queue in self.room.queues.items():  # a wait key starts with the site (see Admission.wait_key)
            counts[key[0] if isinstance(key, tuple) else str(key)] += len(queue.items)
        for request in self.woken:
            counts[urlparse_cached(request).hostname or ""] += 1
        return counts

    def enqueue_request(self, request: Request) -> bool:
        admission = self.admission
        if admission is None:
            return self.inner.enqueue_request(request)
        meta = request.meta
        if meta.pop(WOKEN, False):
            self.woken.append(request)
            return True
        admission.queued(request)
        wait = meta.pop(WAIT, None)
        admission.forget(request)
        key = admission.wait_key(request) if wait is not None else None
        if key is None:
            self.custody.let_go(request)  # back in the shared queue
            return self.inner.enqueue_request(request)
        self._park(request, key, time.monotonic() + wait[0], wait[1])
        return True

    def next_request(self) -> Request | None:
        admission = self.admission
        if admission is None:
            return self.inner.next_request()
        if admission.refused:
            admission.refuse()  # misconfigured: nothing leaves; the spider closes
            return None
        now = time.monotonic()
        if not self.room.size and not self.woken:  # the common case: nothing waits
            request = self._pull(admission, now)
            if self.room.size:
                self._arm(now)
            return request
        try:
            while self.woken:
                request = self.woken.popleft()
                asked = admission.ask(request)
                if asked is None or self._admitted(request, key_of(asked), now, asked):
                    return _leaving(request)
            while (due := self.room.pop_due(now)) is not None:
                if self._admitted(due[1], due[0], now):
                    return _leaving(due[1])
            return self._pull(admission, now)
        finally:
            self._arm(now)

    def _pull(self, admission: Admission | RefusedAdmission, now: float) -> Request | None:
        """The next request from the wrapped scheduler that may go now; the ones that must
        wait go into the room (a full room pulls no more: the queue keeps the rest)."""
        while not self.room.full:
            request = self.inner.next_request()
            if request is None:
                return None
            self.custody.hold(request)
            asked = admission.ask(request)
            if asked is None:
                return _leaving(request)
            key = key_of(asked)
            if self.room.waiting(key):  # queue behind the requests that wait for the same
                if not self._park(request, key, math.inf, False):
                    return None
                continue
            wait = admission.admit(request, asked)
            if wait is None:
                return _leaving(request)
            if not self._park(request, key, now + wait.seconds, wait.on_release) or wait.capacity:
                return None  # the room is full, or every proxy is: pull no more for now
        return None

    def _admitted(self, request: Request, key: Hashable | None, now: float, asked: Asked | None = None) -> bool:
        """Ask for a proxy for a waiting request; if it must wait on, it goes back in place."""
        assert self.admission is not None
        if key is None:
            return True
        wait = self.admission.admit(request, asked)
        if wait is None:
            return True
        self.room.defer(key, request, request.priority, now + wait.seconds, wait.on_release)
        return False

    def _park(self, request: Request, key: Hashable, due: float, on_release: bool) -> bool:
        """Put ``request`` in the room; False if it did not fit (it went back to the queue)."""
        _pass_filter(request)
        self.custody.hold(request)
        out = self.room.add(request, key, request.priority, due, on_release)
        if out is not None:
            self._requeue(out)
            self.crawler.stats.inc_value(f"{PREFIX}/waiting/requeued")
        else:
            self.crawler.stats.max_value(f"{PREFIX}/waiting/max", len(self.room))
        return out is not request

    def _requeue(self, request: Request) -> None:
        """Back into the scheduler's own queue, past its duplicate filter (it was seen)."""
        assert self.admission is not None
        self.admission.forget(request)
        _pass_filter(request)
        self.custody.let_go(request)
        self.inner.enqueue_request(request)

    def _reclaimed(self, request: Request) -> None:
        """A request a dead process of the fleet held: into the shared queue, past its duplicate
        filter, through the engine (which then asks for requests at once)."""
        _pass_filter(request)
        assert self.crawler.engine is not None
        self.crawler.engine.crawl(request)

    def _left_downloader(self, request: Request, spider: Spider) -> None:
        """A download ended: its request is no longer this process's to hold (a retry is held
        again when it waits here)."""
        self.custody.let_go(request)

    def released(self) -> None:
        """A request through a proxy ended: a request waiting for capacity may go."""
        if self.room.releases:  # a request waits for one
            self.room.released(time.monotonic())

    def wake(self) -> None:
        """Proxies came back or joined: every waiting request may ask again, now."""
        now = time.monotonic()
        self.room.wake_all(now)
        self._arm(now, soon=True)

    def _arm(self, now: float, soon: bool = False) -> None:
        """Keep one timer, for the room's earliest due time, rounded up to the next
        :data:`WAKE_TICK`: requests due within one tick wake together, on one timer."""
        due = self.room.next_due()
        if due is None:
            return
        if soon:
            due = min(due, now)
        elif due > now:
            due = max(due, math.ceil(due / WAKE_TICK) * WAKE_TICK)
        if self.timer is not None:
            if self.timer[0] <= due:
                return
            self.timer[1].cancel()
        self.timer = (due, call_later(max(0.0, due - now), self._fire))

    def _fire(self) -> None:
        """The earliest waiting request is due: send it round through the engine, which then
        asks this scheduler for requests again."""
        self.timer = None
        now = time.monotonic()
        due = self.room.pop_due(now)
        if due is None:
            self._arm(now)
            return
        request = due[1]
        request.meta[WOKEN] = True
        self.crawler.engine.crawl(request)


ROOM = 1000  # requests the waiting room holds by default (a queue of this process's own)
WAKE_TICK = 0.025  # seconds: waiting requests wake on this grid, each tick's together (at most this late)
SHARED_QUEUES = ("scrapy_redis.",)  # schedulers whose queue the processes of a fleet share


def shared_queue(inner: object) -> bool:
    """Whether the scheduler ``inner`` keeps a queue the processes of a fleet share."""
    return type(inner).__module__.startswith(SHARED_QUEUES)


def room_size(inner: object, settings: BaseSettings) -> int:
    """``PROXY_MAX_WAITING``'s default: :data:`ROOM`, or what the process sends at once
    (``CONCURRENT_REQUESTS``) when its queue is shared by a fleet, which then takes the rest."""
    return max(1, settings.getint("CONCURRENT_REQUESTS")) if shared_queue(inner) else ROOM


def wrapped_scheduler(settings: BaseSettings) -> tuple[type, int | None]:
    """``PROXY_SCHEDULER`` (the scheduler a :class:`ProxyScheduler` wraps: not one itself) and
    ``PROXY_MAX_WAITING``; read also when the middleware is off. Raises :class:`ConfigError`."""
    cls, max_waiting = scheduler_settings(settings)
    if is_proxy_scheduler(cls):
        value = settings.get("PROXY_SCHEDULER")
        name = value if isinstance(value, str) else global_object_name(cls)
        raise ConfigError(f"PROXY_SCHEDULER: {name!r} is a ProxyScheduler itself; name the scheduler it wraps"
                          " (Scrapy's, scrapy-redis's, ...)")
    return cls, max_waiting


def is_proxy_scheduler(cls: object) -> bool:
    """Whether ``cls`` is (a subclass of) :class:`ProxyScheduler`. (``issubclass`` cannot
    tell: Scrapy's scheduler metaclass says yes to any class with a scheduler's methods.)"""
    return isinstance(cls, type) and ProxyScheduler in cls.__mro__


def _pass_filter(request: Request) -> None:
    """Let the request past duplicate filters (it was seen once), remembering its own flag."""
    request.meta.setdefault(DONT_FILTER, request.dont_filter)
    request.dont_filter = True


def _leaving(request: Request) -> Request:
    """The request leaves the scheduler: it gets its own ``dont_filter`` back."""
    own = request.meta.pop(DONT_FILTER, None)
    if own is not None:
        request.dont_filter = own
    return request
