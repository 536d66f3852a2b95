"""The state store: everything processes sharing a pool must agree on, behind small protocols.

What lives there: per (proxy, site) pair its requests in flight, when it may be used again
(its cooldown) and its ban (until when, how many in a row); per site its learned pace and price tier; per
proxy its :class:`~.ejection.ProxyFacts` (failures, ejection and its deadline, checks,
disabled); per sticky session its binding; changes to the pool made at run time. What stays
per process, in :class:`~.state.ProxyState`: requests in flight per proxy, concurrency limits
and latency estimates.

The balancer reads and writes through these protocols, and only through them (as ``limits``
keeps rate-limit storage apart from policy). Each covers one capability; :class:`StateStore`
is all of them, what a store class implements. The stores themselves (memory, Redis) live in
:mod:`scrapy_proxybalance.stores`, chosen by URL scheme. Times are this process's clock; a
shared store converts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from .ejection import ProxyFacts
from .pace import SitePace
from .sessions import Binding
from .tiers import SiteTier

Listener = Callable[[str], None]  # called with the key of a proxy whose facts changed elsewhere
PoolChangeListener = Callable[[str, str], None]  # called with ("add", a pool entry as JSON) or ("remove", a proxy key)


class PairRecord(Protocol):
    """A pair as the store holds it in this process: the rules read it without a call (see
    :meth:`PairStore.pairs_of`), and a lease that takes the pair holds its record and gives it
    back with it (a pair with a request in flight is never forgotten, so the record stays the
    pair's)."""

    @property
    def busy(self) -> int:
        """Requests this process has in flight through the pair."""

    @property
    def answered(self) -> float:
        """The pair's last answer (-inf: none remembered)."""

    @property
    def hold(self) -> float:
        """The end of its pause (``Retry-After``; -inf: none)."""

    @property
    def fleet(self) -> float:
        """Until when another process holds it, as the shared store last said (-inf: none)."""

    @property
    def ban_until(self) -> float:
        """The end of the site's ban of the proxy (-inf: none)."""

    @property
    def ban_level(self) -> int:
        """The site's bans of the proxy in a row."""


class PairStore(Protocol):
    """(proxy, site) pairs: requests in flight, last answers, pauses and bans."""

    def pairs_of(self, site: str) -> Mapping[str, PairRecord]:
        """The records of the site's pairs held in this process, by proxy key (a pair without
        one is free and remembers no answer). Read it, never write it; it is good until the
        store is next written to."""

    def take(self, key: str, site: str, now: float, lease: int) -> PairRecord:
        """One more request (lease number ``lease``) in flight through the pair; its record."""

    def give_back(self, key: str, site: str, now: float, gap: float, lease: int,
                  hold_until: float = -math.inf, pair: PairRecord | None = None) -> None:
        """Lease ``lease`` through the pair was answered at ``now``: the site's ``gap`` (now)
        counts from here; with ``hold_until``, the pair also pauses until then (``Retry-After``).
        ``pair``: the record :meth:`take` returned for the lease, if at hand. A store that is
        not :attr:`~StateStore.shared` applies the site's gap when asked, and is given 0."""

    def untake(self, key: str, site: str, lease: int) -> None:
        """Lease ``lease`` was never used (its request went through another pair)."""

    async def claim(self, site: str, keys: Sequence[str], lease: int, limit: int, gap: float,
                    book: float = 0.0) -> tuple[str, float] | None:
        """Take, at once for every process sharing the pool, the first of ``keys`` whose pair
        with ``site`` is free (``limit`` in flight, ``gap`` since its last answer, no pause or
        ban, the proxy not ejected), for lease ``lease``; this process has taken ``keys[0]``
        already. If none is free now, book the one whose gap or pause ends soonest within
        ``book`` seconds (none in flight): the request goes then, and no other process takes
        the pair meanwhile. Returns the key taken and when the request may go (``-inf``: now),
        or ``None`` (then the store's view of them is brought up to date). The one round trip a
        request costs a shared store."""

    def ban(self, key: str, site: str, now: float, until: float, level: int) -> None:
        """The site refused the proxy: keep the pair off until ``until`` (never shortens a hold)."""

    def unban(self, key: str, site: str) -> None:
        """The site took the proxy again: forget its ban level there."""

    def ban_of(self, key: str, site: str) -> tuple[float, int]:
        """The pair's ban: (until, bans in a row); (-inf, 0) when none."""

    def soonest(self, site: str, now: float, gap: float) -> float | None:
        """The soonest time after ``now`` that a pair of ``site`` waiting out its gap, its
        pause or its ban frees up."""

    def banned(self, site: str, now: float) -> list[str]:
        """The proxies ``site`` bans at ``now``."""

    def banned_sites(self, key: str, now: float) -> list[str]:
        """The sites that ban proxy ``key`` at ``now``."""

    def banned_proxies(self, now: float) -> list[str]:
        """The proxies some site bans at ``now`` (O(bans): for the status page)."""

    def remember_answers(self, seconds: float) -> None:
        """A site's gap can grow to ``seconds``: keep each pair's last answer that long."""


class SiteStore(Protocol):
    """Each site's learned pace and price tier."""

    def pace(self, site: str) -> SitePace:
        """The site's learned pace."""

    def set_pace(self, site: str, pace: SitePace) -> None: ...

    def tier(self, site: str) -> SiteTier:
        """The site's tier (see :mod:`.tiers`; undecided if nothing is known)."""

    def set_tier(self, site: str, tier: SiteTier) -> None: ...

    def tiers(self) -> Mapping[str, SiteTier]:
        """Every site's tier known here (for reports, and to save them in a ``JOBDIR``)."""


class ProxyFactsStore(Protocol):
    """Each proxy's health facts."""

    def facts(self, key: str) -> ProxyFacts:
        """What is known of the proxy's health (a blank record if nothing)."""

    def set_facts(self, key: str, facts: ProxyFacts) -> None: ...

    def noted(self) -> list[str]:
        """The proxies whose facts are not a blank record (O(those): for the status page)."""

    def forget(self, key: str) -> None:
        """The proxy left the pool for good."""

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(key)`` when another process changes a proxy's facts."""


class PoolChanges(Protocol):
    """Changes to the pool made at run time, told to every process."""

    def share_pool_change(self, action: str, value: str) -> None:
        """This process added a proxy (``value``: its entry as JSON) or removed one (its key)."""

    def subscribe_pool(self, listener: PoolChangeListener) -> None:
        """Call ``listener(action, value)`` when another process changes the pool."""


class SessionStore(Protocol):
    """Sticky sessions' bindings."""

    def session(self, key: str, now: float) -> Binding | None:
        """A session's binding (``None`` if it has none, or went unused too long)."""

    def set_session(self, key: str, binding: Binding) -> None:
        """Record a session's binding (its counts, its move)."""

    def bind_session(self, key: str, binding: Binding) -> Binding:
        """Bind a session to ``binding.proxy`` unless a binding of that generation exists
        already (another process bound it first): returns the binding that holds."""


class Custody(Protocol):
    """Requests a process holds (waiting for a proxy, or downloading) after taking them from a
    queue its fleet shares: if the process dies, another one puts them back."""

    def hold(self, token: str, blob: bytes) -> None:
        """This process holds the request ``blob`` (serialized), known by ``token``."""

    def let_go(self, token: str) -> None:
        """The request ``token`` is done, or back in the shared queue."""

    async def reclaim(self) -> list[bytes]:
        """What processes that died held, each blob to one process only."""


class Lifecycle(Protocol):
    """A store's life with the crawl."""

    shared: bool  # other processes share it: each lease's pair is claimed through it

    async def start(self) -> None:
        """Begin (once the event loop runs): a shared store connects and starts keeping in step."""

    async def close(self) -> None:
        """End: a shared store writes what is left and disconnects."""


class StateStore(PairStore, SiteStore, ProxyFactsStore, PoolChanges, SessionStore, Custody, Lifecycle, Protocol):
    """Every capability: what a store class implements (see :mod:`scrapy_proxybalance.stores`)."""
