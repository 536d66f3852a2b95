"""Sticky sessions: every request with the same ``proxy_session`` goes through one proxy.

A session is bound to a proxy by its first request (the strategy chooses among the proxies
holding the fewest sessions, passing over any whose last answer was a failure while another
can serve; a session gateway makes it an identity of its own) and stays
there while that proxy stays usable for the site: its requests wait for that proxy's
cooldown rather than move, and a request that fails through it is tried there again. The
session moves, as a whole and once, when the proxy is ejected, removed, disabled or banned
by the site, and is retired (moved too) when it reaches a limit (age, requests, errors), as
Crawlee's SessionPool retires its sessions.

The first request through the new binding carries the reason (``Lease.moved``): the spider
sees it on that response and renews what the site tied to the old exit (logs in again); a
site's refusal of that first request is the session's, not the proxy's. The session's older
requests (queued under an earlier binding) wait until the new binding has answered once, or
:data:`RENEW_TIMEOUT`, then follow through it.

Bindings live in the state store, so a session keeps its proxy across a fleet.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .errors import NoProxyAvailable
from .leases import Ask, Lease, Wait
from .outcomes import Outcome

if TYPE_CHECKING:
    from .balancer import Balancer
    from .state import ProxyState

RENEW_TIMEOUT = 30.0  # seconds older requests of a moved session wait for it to be renewed
RENEW_POLL = 0.5  # how often they look
IDLE_EXPIRY = 3600.0  # a binding unused this long is forgotten


@dataclass(frozen=True, slots=True)
class SessionLimits:
    max_age: float  # seconds a binding may last (0: no limit)
    max_requests: int  # requests through one binding (0: no limit)
    max_errors: int  # failures and bans through one binding (0: no limit)


@dataclass(frozen=True, slots=True)
class Binding:
    """A session's binding. ``proxy`` is empty between a move and the next request, which
    binds it anew and is told ``why`` it moved."""

    proxy: str
    generation: int  # bindings before this one
    since: float  # when it began
    requests: int = 0
    errors: int = 0
    renewed: bool = True  # the binding has answered once (always true for a first binding)
    used: float = 0.0  # last use, for expiry
    why: str = ""  # why the session left its last proxy (until the next binding)


def spent(binding: Binding, now: float, limits: SessionLimits) -> str | None:
    """Why the binding must end now because of a limit, or ``None``."""
    if limits.max_age and now - binding.since >= limits.max_age:
        return "max age"
    if limits.max_requests and binding.requests >= limits.max_requests:
        return "max requests"
    if limits.max_errors and binding.errors >= limits.max_errors:
        return "max errors"
    return None


def moved(binding: Binding, now: float, why: str) -> Binding:
    """The session after leaving its proxy: bound to none until its next request."""
    return Binding("", binding.generation + 1, now, renewed=False, used=now, why=why)


def stale(binding: Binding, generation: int | None, now: float) -> bool:
    """Whether a request queued under ``generation`` waits for the new binding to answer."""
    return (generation is not None and generation < binding.generation and bool(binding.proxy)
            and not binding.renewed and now - binding.since < RENEW_TIMEOUT)


def counted(binding: Binding, now: float, error: bool, answered: bool) -> Binding:
    """One more request through the binding (and an error, or its first answer)."""
    return replace(binding, requests=binding.requests + 1, errors=binding.errors + error,
                   renewed=binding.renewed or answered, used=now)


class Sessions:
    """The balancer's sticky sessions (see the module's docstring)."""

    def __init__(self, balancer: Balancer, limits: SessionLimits) -> None:
        self.b = balancer
        self.limits = limits
        self.on: Counter[int] = Counter()  # proxy id -> sessions this process bound to it
        self.bound = 0  # their sum

    def generation(self, key: str, now: float) -> int:
        """The session's current binding (0 for a new session): what a request queued now is
        queued under."""
        binding = self.b.store.session(key, now)
        return binding.generation if binding is not None else 0

    def acquire(self, ask: Ask, now: float) -> Lease | Wait:
        b, key = self.b, ask.session
        assert key is not None
        binding = b.store.session(key, now)
        if binding is not None and binding.proxy:
            why = self._lost(binding.proxy, ask.site, now) or spent(binding, now, self.limits)
            if why is None:
                if stale(binding, ask.generation, now):
                    return Wait(RENEW_POLL)
                p = b.gateways.made(binding.proxy)
                if p is None:
                    return Wait(RENEW_POLL)  # bound by another process to an identity this one cannot make
                # its proxy, whatever the site's tier now (a ban there moves the session)
                return self._tag(b.pick(replace(ask, tried=(), tiers=None), now, only=p), binding, key)
            self._unbind(binding.proxy)
            binding = moved(binding, now, why)
            b.store.set_session(key, binding)
            b.listener.session_moved(key, why)
        elif binding is not None and stale(binding, ask.generation, now):
            return Wait(RENEW_POLL)
        return self._bind(ask, now, key, binding)

    def _bind(self, ask: Ask, now: float, key: str, old: Binding | None) -> Lease | Wait:
        """A session's first request, or the first since it moved: choose its proxy."""
        b = self.b
        generation = old.generation if old is not None else 0
        result: Lease | Wait
        identity = b.gateways.for_session(key, generation, ask.region)
        if identity is not None:
            result = b.pick(ask, now, only=identity)
        else:
            most = self.bound / max(1, len(b.by_key)) + 1
            try:  # not a dying one
                sound: Lease | Wait | None = b.pick(ask, now, accept=self._spread(most, sound=True), binding=True)
            except NoProxyAvailable:  # every one that could serve failed last: take one anyway
                sound = None
            result = sound if isinstance(sound, Lease) else b.pick(ask, now, accept=self._spread(most), binding=True)
            if not isinstance(result, Lease) and self.bound >= len(b.by_key):  # more sessions than proxies: share
                result = b.pick(ask, now, accept=self._spread(math.inf), binding=True)
        if not isinstance(result, Lease):
            return result
        new = Binding(result.state.key, generation, now, renewed=old is None, used=now)
        held = b.store.bind_session(key, new)
        if held.proxy != result.state.key:  # another process bound it first: go there
            b.cancel(result)
            p = b.gateways.made(held.proxy)
            return Wait(RENEW_POLL) if p is None else self._tag(b.pick(replace(ask, tried=()), now, only=p), held, key)
        self.on[result.state.id] += 1
        self.bound += 1
        b.listener.session_bound(key, result.state, generation)
        if old is not None and old.why:
            result.moved = old.why
        return self._tag(result, new, key)

    def _spread(self, most: float, sound: bool = False) -> Callable[[ProxyState], bool]:
        """A candidate filter for binding: proxies holding at most ``most`` sessions (and,
        ``sound``, whose last answer was not a failure: they may be dying)."""
        on, facts = self.on, self.b.store.facts
        if sound:
            return lambda p: on[p.id] <= most and not facts(p.key).failures
        return lambda p: on[p.id] <= most

    @staticmethod
    def _tag(result: Lease | Wait, binding: Binding, key: str) -> Lease | Wait:
        if isinstance(result, Lease):
            result.session, result.generation = key, binding.generation
        return result

    def _lost(self, proxy: str, site: str, now: float) -> str | None:
        """Why a session's proxy can no longer serve it on ``site``, or ``None``."""
        b = self.b
        if proxy not in b.by_key and b.gateways.made(proxy) is None:
            return "proxy removed"
        facts = b.store.facts(proxy)
        if facts.disabled:
            return "proxy disabled"
        if facts.ejected_until > now:
            return f"proxy ejected ({facts.reason})" if facts.reason else "proxy ejected"
        if b.store.ban_of(proxy, site)[0] > now:
            return f"proxy banned by {site}"
        return None

    def _unbind(self, proxy: str) -> None:
        p = self.b.by_key.get(proxy)
        if p is not None and self.on[p.id]:
            self.on[p.id] -= 1
            self.bound -= 1

    def released(self, lease: Lease, outcome: Outcome, now: float) -> None:
        """One more request through the session's binding; its first answer renews it."""
        assert lease.session is not None
        b = self.b
        binding = b.store.session(lease.session, now)
        if binding is None or binding.generation != lease.generation or binding.proxy != lease.state.key:
            return  # it moved meanwhile
        answered = outcome is Outcome.SUCCESS
        error = outcome in (Outcome.FAILURE, Outcome.BAN) and not lease.moved  # a move's first refusal is the session's
        b.store.set_session(lease.session, counted(binding, now, error, answered))
        if answered and not binding.renewed:
            b.listener.session_renewed(lease.session)
