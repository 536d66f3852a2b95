"""What a download path is to the balancer: a *carrier*.

A carrier says, for a request and a lease, how the chosen proxy rides on the request (and
how to take it off again before the request is queued or retried), which proxy schemes the
path can carry, and which of the path's exceptions mean that the proxy failed, timed out or
refused (:class:`Fault`). The middleware asks :class:`~scrapy_proxybalance.carriers.Carriers`
for the carrier of the request in hand; the balancer never knows which path carried a lease.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable
from enum import Enum
from typing import TYPE_CHECKING, ClassVar

from scrapy.utils.python import global_object_name

if TYPE_CHECKING:
    from scrapy import Request

    from ..core.leases import Lease
    from ..core.proxy import Proxy


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


class Carrier(ABC):
    """One download path (see the module's docstring). Subclasses say which requests they
    carry, how the proxy rides, and their fault table; the hooks below the line are for a
    path that must reserve something per request (a browser context)."""

    name: ClassVar[str]  # in stats and logs
    schemes: ClassVar[frozenset[str]]  # the proxy schemes it can carry
    faults: FaultTable
    reserves: ClassVar[bool] = False  # it uses the optional hooks (prefer, hold, released, ...)

    @abstractmethod
    def carries(self, request: Request) -> bool:
        """Whether ``request`` goes by this path."""

    def meta_keys(self) -> frozenset[str] | None:
        """Meta keys one of which every request this path carries has (so a request with none
        of them is not asked); ``None``: it may carry a request without any."""
        return None

    @abstractmethod
    def own_choice(self, request: Request) -> bool:
        """Whether the request decided its proxy itself (its own, or none): not leased.
        Called after :meth:`detach`, so what we set on an earlier attempt does not count."""

    @abstractmethod
    def attach(self, request: Request, lease: Lease) -> None:
        """Make the request go through the lease's proxy."""

    @abstractmethod
    def detach(self, request: Request) -> None:
        """Take off whatever :meth:`attach` put on the request (credentials included), so a
        retry, a redirect or a queued request carries nothing of the last proxy."""

    def proxy_schemes(self, request: Request) -> frozenset[str]:
        """The proxy schemes this path can carry for ``request``."""
        return self.schemes

    def fault(self, request: Request, exception: BaseException) -> Fault | None:
        """Whose fault ``exception`` was (``None``: an exception this path does not know)."""
        return self.faults.fault(exception)

    def fault_tables(self) -> list[FaultTable]:
        return [self.faults]

    def unfit(self, proxy: Proxy) -> str | None:
        """Why this path cannot carry ``proxy`` although it carries its scheme, or ``None``."""
        return None

    def schemes_carried(self) -> frozenset[str]:
        """Every proxy scheme this path can carry (for some request)."""
        return self.schemes

    def reason(self, exception: BaseException) -> str:
        """How stats and logs name an exception of this path (its class, by default)."""
        return global_object_name(type(exception))

    # -- optional hooks ----------------------------------------------------------------

    def prefer(self, request: Request) -> Collection[str]:
        """Proxies this path could use at once (picked first when the rules allow)."""
        return ()

    def hold(self, request: Request, lease: Lease) -> bool:
        """Reserve what the request needs to ride on ``lease``; ``False``: not now (it waits
        for a request to end)."""
        return True

    def released(self, lease: Lease) -> None:  # noqa: B027 (an optional hook)
        """A lease ended (its request answered, failed, or never went)."""

    def proxy_out(self, key: str) -> None:  # noqa: B027 (an optional hook)
        """The proxy was ejected or removed."""

    def banned(self, key: str, banning: set[str]) -> None:  # noqa: B027 (an optional hook)
        """The proxy was banned; ``banning``: every site that bans it now."""
