"""What the balancer hands out and answers: a request's :class:`Ask`, a :class:`Lease` on a
proxy or a :class:`Wait`, and how a release was applied (:class:`Released`)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .outcomes import Outcome
from .proxy import Proxy
from .state import ProxyState

if TYPE_CHECKING:
    from .store import PairRecord


@dataclass(slots=True, eq=False)  # made for each request: not frozen, which would cost it twice the time
class Ask:
    """What a request needs: a proxy for ``site``, not one of ``tried``, in ``region``; of
    the sticky ``session``'s proxy, if it has one (``generation``: the binding it was first
    sent under). Proxies in ``prefer`` are picked first when the rules allow (its download
    path is ready to use them at once: a browser context is open). ``schemes``: the proxy
    schemes its download path can carry (``None``: any). ``pin``: the only price tier it may
    go at; ``tier_min``: the lowest (a retry after a ban one tier down); ``tiers``: the tiers
    the balancer chose for it, cheapest first (``None``: the pool has one)."""

    site: str
    tried: Collection[str] = ()
    region: str | None = None
    session: str | None = None
    generation: int | None = None
    prefer: Collection[str] = ()
    schemes: frozenset[str] | None = None
    pin: int | None = None
    tier_min: int = 0
    tiers: tuple[int, ...] | None = None


@dataclass(slots=True, eq=False)
class Lease:
    """One request's use of one proxy; released exactly once."""

    state: ProxyState
    site: str
    region: str | None  # the region the request asked for
    number: int  # leases are numbered: an overload answer cuts a limit once per round
    at: float  # when it was taken
    unproven: bool  # the proxy has not succeeded since it joined, came back or last failed
    pair: PairRecord  # the store's record of its (proxy, site) pair, given back with it
    probe: bool = False  # a panic probe of an ejected proxy
    released: bool = False
    alternates: tuple[str, ...] = ()  # other proxies that could serve it (for a shared store's claim)
    session: str | None = None  # the sticky session it serves
    generation: int = 0  # the session's binding
    moved: str = ""  # the first request of a session since it moved: why it moved
    exit: str = ""  # the exit a rotating gateway's answer named (its exit_header), once answered
    site_tier: int | None = None  # the site's price tier when leased (None: not tiered, or pinned)
    tier_probe: bool = False  # a probe of the tier below the site's
    pilot: float | None = None  # it tries a gap the site has not answered fine at: its pair's gap

    @property
    def proxy(self) -> Proxy:
        return self.state.proxy


@dataclass(frozen=True, slots=True)
class Wait:
    """No proxy can take the request now; ask again within ``seconds``.

    ``unavailable``: not merely pacing or capacity; every proxy that could serve the request
    is ejected, disabled, or banned by its site (or was tried by it already).
    ``on_release``: a proxy at its limit may free up sooner, when a request ends.
    ``capacity``: every proxy looked at was at its concurrency limit: the pool is full, and
    requests for other sites would wait too.
    """

    seconds: float
    unavailable: bool = False
    on_release: bool = False
    capacity: bool = False


@dataclass(frozen=True, slots=True)
class Released:
    """How a release was applied: the outcome as counted (an overload on a proxy that had
    nothing else in flight is the site's own answer) and the ejection it caused, if any."""

    outcome: Outcome
    ejected: float | None = None
