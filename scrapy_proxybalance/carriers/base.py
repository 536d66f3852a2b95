"""What a download path is to the balancer: a *carrier*.

A carrier says, for a request and a lease, how the chosen proxy rides on the request (and
how to take it off again before the request is queued or retried), which proxy schemes the
path can carry, and which of the path's exceptions mean that the proxy failed, timed out or
refused (:class:`Fault`). The middleware asks :class:`~scrapy_proxybalance.carriers.Carriers`
for the carrier of the request in hand; the balancer never knows which path carried a lease.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from scrapy import Request

    from ..core.leases import Lease


class Fault(Enum):
    """Whose fault an exception of a download path was."""

    FAILURE = "failure"  # the proxy dropped, garbled or could not make the exchange
    TIMEOUT = "timeout"  # the proxy (or what is behind it) did not answer in time
    REFUSED = "refused"  # the proxy refused the connection
    CREDENTIALS = "credentials"  # the proxy refused our credentials
    NOT_PROXY = "not_proxy"  # not the proxy's doing (a cancelled download, a bad URL)

    @property
    def proxy(self) -> bool:
        """Whether it counts against the proxy (a failure for its health)."""
        return self is not Fault.NOT_PROXY


Matcher = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]


class FaultTable:
    """One download path's exceptions, row by row: the first row whose matcher fits (an
    exception type, a tuple of them, or a predicate on the exception) gives the fault. An
    exception no row fits is unknown: the middleware counts it (``proxybalance/exceptions/
    unknown/<type>``) and lets it pass as nobody's fault."""

    def __init__(self, rows: Iterable[tuple[Matcher, Fault]]) -> None:
        self.rows = list(rows)

    def fault(self, exception: BaseException) -> Fault | None:
        for matcher, fault in self.rows:
            if isinstance(matcher, type | tuple):
                if isinstance(exception, matcher):
                    return fault
            elif matcher(exception):
                return fault
        return None

    def proxy_types(self) -> tuple[type[BaseException], ...]:
        """The exception types whose rows are proxy faults (for a ban policy's ``failures``)."""
        found: list[type[BaseException]] = []
        for matcher, fault in self.rows:
            if fault.proxy and isinstance(matcher, type | tuple):
                found.extend(matcher if isinstance(matcher, tuple) else (matcher,))
        return tuple(found)

    def __add__(self, other: FaultTable) -> FaultTable:
        return FaultTable([*self.rows, *other.rows])


class Carrier(Protocol):
    """One download path (see the module's docstring)."""

    name: ClassVar[str]  # in stats and logs
    schemes: ClassVar[frozenset[str]]  # the proxy schemes it can carry
    faults: FaultTable

    def carries(self, request: Request) -> bool:
        """Whether ``request`` goes by this path."""

    def own_choice(self, request: Request) -> bool:
        """Whether the request decided its proxy itself (its own, or none): not leased.
        Called after :meth:`detach`, so what we set on an earlier attempt does not count."""

    def attach(self, request: Request, lease: Lease) -> None:
        """Make the request go through the lease's proxy."""

    def detach(self, request: Request) -> None:
        """Take off whatever :meth:`attach` put on the request (credentials included), so a
        retry, a redirect or a queued request carries nothing of the last proxy."""
