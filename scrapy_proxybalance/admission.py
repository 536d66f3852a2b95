"""The scheduler's side of the balancer: what a request waits for, and its lease when it leaves.

When :class:`~.scheduler.ProxyScheduler` is about to hand a request to the engine it asks
:meth:`Admission.admit`: the request leaves with a lease (so the lease is fresh when the
request is sent), or waits in the scheduler's custody for as long as the :class:`Wait` says.
Requests that wait for the same thing share a :meth:`~Admission.wait_key`. With a shared store
(a fleet), the lease's pair is also claimed for the whole fleet just before the request is
sent (:meth:`Admission.claimed`). Admission holds the link to the scheduler: releases and pool
changes wake waiting requests through it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from scrapy.utils.httpobj import urlparse_cached

from .core.availability import Act, Unavailability
from .core.errors import NoProxyAvailable
from .core.explain import why_out
from .core.leases import Ask, Lease, Wait
from .core.proxy import plain_value
from .meta import FAIL, SESSION, SESSION_GENERATION, TIER, TIER_MIN, TRIED
from .stats import PREFIX

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.statscollectors import StatsCollector

    from .carriers import Carrier, Carriers
    from .config import Config
    from .core.balancer import Balancer
    from .core.store import StateStore
    from .ledger import Ledger

logger = logging.getLogger(__name__)
Asked = tuple[Ask, "Carrier"]  # what a request needs from the pool, and its download path

CLAIM_CANDIDATES = 8  # proxies one claim offers a shared store (the pick and seven alternates)
CLAIM_RETRY = 0.05  # seconds (times 0.5 to 1.5: processes fall out of step) a request waits when it lost twice
CARRIER_POLL = 0.5  # seconds a request waits when its download path has no room (or sooner, when a request ends)


class WaitingRoom(Protocol):
    """What admission needs of the scheduler that keeps waiting requests."""

    def released(self) -> None: ...

    def wake(self) -> None: ...

    def waiting(self) -> int: ...

    def waiting_by_site(self) -> Counter[str]: ...


class Admission:
    def __init__(self, config: Config, balancer: Balancer, ledger: Ledger, carriers: Carriers,
                 stats: StatsCollector, store: StateStore, close_spider: Callable[[str], None],
                 on_dry: Callable[[], None] = lambda: None) -> None:
        self.config = config
        self.balancer = balancer
        self.ledger = ledger
        self.carriers = carriers
        self.stats = stats
        self.store = store
        self.close_spider = close_spider
        self.on_dry = on_dry  # no proxy could serve a site: a pool source may know better
        self.alternates = CLAIM_CANDIDATES - 1 if store.shared else 0
        self.unavailability = Unavailability(config.rules.unavailable_timeout)
        self.scheduler: WaitingRoom | None = None
        self.refused = ""  # why nothing can be crawled (no proxy at all)
        self.closing = False
        ledger.on_success.append(self._served)
        ledger.on_release.append(self.released)

    # -- the link with the scheduler ---------------------------------------------------

    def attach(self, scheduler: WaitingRoom) -> None:
        self.scheduler = scheduler

    def released(self, lease: Lease | None = None) -> None:
        """A request through a proxy ended: a request waiting for capacity may go."""
        if self.scheduler is not None:
            self.scheduler.released()

    def wake(self) -> None:
        """Proxies came back or joined: every waiting request may ask again, now."""
        if self.scheduler is not None:
            self.scheduler.wake()

    def waiting(self) -> int:
        """Requests waiting for a proxy now."""
        return self.scheduler.waiting() if self.scheduler is not None else 0

    def waiting_by_site(self) -> Counter[str]:
        return self.scheduler.waiting_by_site() if self.scheduler is not None else Counter()

    def refuse(self) -> None:
        """Close the spider (once): there is no proxy to crawl through. The scheduler calls it
        and lets nothing leave meanwhile."""
        self._close("proxies_unavailable")

    def _close(self, reason: str) -> None:
        if not self.closing:
            self.closing = True
            self.close_spider(reason)

    # -- requests leaving the scheduler ------------------------------------------------

    def ask(self, request: Request) -> Asked | None:
        """What the request needs from the pool (its ask and download path), or ``None`` if it
        leaves at once: it needs no proxy from the pool, or it cannot have one (then it leaves
        to fail, with the reason)."""
        try:
            return self._ask(request)
        except NoProxyAvailable as exc:
            request.meta[FAIL] = str(exc)
            return None

    def wait_key(self, request: Request) -> Hashable | None:
        """What the request waits for (requests with the same key queue together), or
        ``None`` if it leaves at once (see :meth:`ask`)."""
        asked = self.ask(request)
        return None if asked is None else key_of(asked)

    def admit(self, request: Request, asked: Asked | None = None) -> Wait | None:
        """Lease a proxy for a request leaving the scheduler (``asked``: what :meth:`ask` said
        of it, if known). ``None``: it goes now (with a proxy, or needing none, or to fail
        with a reason); a :class:`Wait`: it stays."""
        try:
            if asked is None:
                asked = self._ask(request)
                if asked is None:
                    return None
            result = self._take(request, *asked)
        except NoProxyAvailable as exc:
            request.meta[FAIL] = str(exc)
            return None
        return result if isinstance(result, Wait) else None

    def still_held(self, request: Request) -> Lease | None:
        """The lease the request left the scheduler with, if it still holds; one whose proxy
        was ejected or taken out since is released (the request is leased anew)."""
        lease = self.ledger.held(request)
        if lease is not None and not lease.probe and not lease.state.in_rotation:  # (out of the pool: not either)
            self.ledger.release_unused(request)
            return None
        return lease

    def fail(self, request: Request, why: str) -> NoReturn:
        """The request left the scheduler to fail: no proxy can serve it (``why``)."""
        self.ledger.release_unused(request)
        self.stats.inc_value(f"{PREFIX}/no_proxy")
        raise NoProxyAvailable(f"{why} (for {request})")

    def lease_now(self, request: Request) -> Lease | Wait | None:
        """A lease for a request that came without the scheduler's admission (or whose lease
        went stale), or its wait; ``None`` if it needs no proxy from the pool. Raises
        :class:`NoProxyAvailable`."""
        try:
            asked = self._ask(request)
            if asked is None:
                return None
            return self._take(request, *asked)
        except NoProxyAvailable as exc:
            self.stats.inc_value(f"{PREFIX}/no_proxy")
            raise NoProxyAvailable(f"{exc} (for {request})") from None

    def _take(self, request: Request, ask: Ask, carrier: Carrier) -> Lease | Wait:
        result = self.balancer.acquire(ask, self.alternates)
        if not isinstance(result, Lease):
            return self._waiting(ask, result)
        if carrier.reserves and not carrier.hold(request, result):  # its path has no room now (a browser context)
            self.balancer.cancel(result)
            self.stats.inc_value(f"{PREFIX}/waits/{carrier.name}")
            return Wait(CARRIER_POLL, on_release=True)
        self.ledger.hold(request, result)
        if not result.unproven and not result.probe:
            self._served(result)
        return result

    def _served(self, lease: Lease) -> None:
        """The lease's site was served for real: its unavailability, if any, is over."""
        if self.unavailability.episodes:  # (none, nearly always)
            self.unavailability.served((lease.site, lease.region))

    def _waiting(self, ask: Ask, wait: Wait) -> Wait:
        """Count a wait, and apply ``PROXY_UNAVAILABLE_TIMEOUT`` to it (raises
        :class:`NoProxyAvailable` when it is over and its action is ``fail``)."""
        self.stats.inc_value(f"{PREFIX}/waits")
        if wait.unavailable:
            self.on_dry()
        what = ask.site + (f" in region {ask.region!r}" if ask.region else "")
        verdict = self.unavailability.waiting((ask.site, ask.region), wait.seconds, wait.unavailable,
                                              self.balancer.clock(), what)
        if not isinstance(verdict, Act):
            return replace(wait, seconds=verdict)
        if self.config.unavailable_action == "fail":
            self.stats.inc_value(f"{PREFIX}/unavailable/failed")
            raise NoProxyAvailable(verdict.message)
        if not self.closing:
            logger.error("%s; closing the spider. The proxies:\n  %s", verdict.message,
                         "\n  ".join(why_out(self.balancer, ask.site, ask.region)))
            self.stats.set_value(f"{PREFIX}/unavailable", ask.site)
            self._close("proxies_unavailable")
        return wait

    def queued(self, request: Request) -> None:
        """A request enters the scheduler: one of a sticky session notes the session's
        binding now (if it moves meanwhile, the request waits for the spider to renew it)."""
        meta = request.meta
        session = meta.get(SESSION)
        if session is not None and SESSION_GENERATION not in meta:
            key = self._session_key(session, meta, urlparse_cached(request).hostname or "")
            meta[SESSION_GENERATION] = self.balancer.sessions.generation(key, self.balancer.clock())

    def _session_key(self, session: object, meta: dict[str, Any], site: str) -> str:
        """The sticky session's key: its name, and its country where a gateway template has
        ``{country}`` (one session in two countries is two identities)."""
        if not self.balancer.gateways.countries:
            return str(session)
        region = meta.get("proxy_region") or self.config.region_for(site)
        return f"{session}@{region}" if region else str(session)

    def forget(self, request: Request) -> None:
        """The request goes (back) into the scheduler: release a lease it never used, and take
        off our proxy, its credentials and our slot, so that what is queued (and persisted to
        a JOBDIR) holds nothing of this process and no password."""
        self.ledger.release_unused(request)
        self.carriers.of(request).detach(request)
        request.meta.pop(FAIL, None)

    def _ask(self, request: Request) -> tuple[Ask, Carrier] | None:
        """What the request needs from the pool, or ``None`` if it needs no proxy from it.

        A request that comes back (a retry, a redirect) still carries the proxy we chose last
        time: that choice is undone here, credentials included, so they cannot travel to the
        next proxy. A proxy (or none) the request chose itself is kept.
        """
        carrier = self.carriers.of(request)
        carrier.detach(request)
        if carrier.own_choice(request):
            return None
        meta = request.meta
        site = urlparse_cached(request).hostname or ""
        region = meta.get("proxy_region") or self.config.region_for(site)
        prefer = carrier.prefer(request) if carrier.reserves else ()
        schemes = carrier.proxy_schemes(request)
        session = meta.get(SESSION)
        pin, tier_min = _tier_pin(meta), meta.get(TIER_MIN, 0)
        if session is None:
            return Ask(site, meta.get(TRIED, ()), region, prefer=prefer, schemes=schemes, pin=pin,
                       tier_min=tier_min), carrier
        self.queued(request)
        return Ask(site, meta.get(TRIED, ()), region, self._session_key(session, meta, site), meta[SESSION_GENERATION],
                   prefer, schemes, pin, tier_min), carrier

    # -- the fleet: a claim before the request is sent ---------------------------------

    def _switch(self, request: Request, lease: Lease, key: str) -> Lease:
        """The claim took an alternate's pair: the request rides on that proxy instead."""
        self.carriers.released(lease)
        switched = self.balancer.switch(lease, key)
        carrier = self.carriers.of(request)
        if carrier.reserves:
            carrier.hold(request, switched)  # (over its path's bound for a moment, at worst)
        return switched

    async def claimed(self, request: Request, lease: Lease) -> Lease | Wait:
        """The lease's pair (or an alternate's) taken for the whole fleet: the one round trip
        a request costs a shared store. When every candidate is held, the one whose gap ends
        soonest (within a gap) is booked and the request goes then, so processes do not race
        for it again; if none can be, once more with what the claim taught this process; then a
        short wait."""
        for _ in range(2):
            self.stats.inc_value(f"{PREFIX}/state/claims")
            gap, limit = self.balancer.pair_rule(lease.site, lease.at)
            keys = [lease.state.key, *lease.alternates]
            taken = await self.store.claim(lease.site, keys, lease.number, limit, gap, book=gap)
            if lease.released:  # the crawl closed meanwhile
                return Wait(CLAIM_RETRY)
            self.ledger.drop(request, lease)
            if taken is not None:
                key, at = taken
                claimed = lease if key == keys[0] else self._switch(request, lease, key)
                self.ledger.hold(request, claimed)
                return await self._booked(claimed, at)
            self.carriers.released(lease)
            self.balancer.cancel(lease)
            self.stats.inc_value(f"{PREFIX}/state/claims_lost")
            again = self.lease_now(request)
            if not isinstance(again, Lease):
                return again if again is not None else Wait(CLAIM_RETRY * (0.5 + random.random()))
            lease = again
        self.ledger.release_unused(request)
        return Wait(CLAIM_RETRY * (0.5 + random.random()), on_release=True)

    async def _booked(self, lease: Lease, at: float) -> Lease | Wait:
        """The lease, once its booked time has come (at once if it was not booked)."""
        delay = at - self.balancer.clock()
        if delay <= 0:
            return lease
        self.stats.inc_value(f"{PREFIX}/state/booked")
        await asyncio.sleep(delay)
        return Wait(CLAIM_RETRY) if lease.released else lease  # (the crawl closed meanwhile)


def key_of(asked: Asked) -> Hashable:
    """The wait key of a request (see :meth:`Admission.wait_key`): requests for the same site,
    region, tried proxies and session binding wait for the same thing."""
    ask = asked[0]
    return ask.site, ask.region, tuple(ask.tried), ask.session, ask.generation


def _tier_pin(meta: dict[str, Any]) -> int | None:
    """``meta['proxy_tier']``: a whole number, or ``None``; anything else is an error of the
    spider's, said in one line (the request then fails without a proxy)."""
    pin = meta.get(TIER)
    if pin is None or (isinstance(pin, int) and not isinstance(pin, bool) and pin >= 0):
        return pin
    raise NoProxyAvailable(f"meta['proxy_tier'] must be a price tier (a whole number >= 0), got {plain_value(pin)}")
