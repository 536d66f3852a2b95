"""State stores, chosen by the scheme of ``PROXY_STATE_URL`` (as ``limits`` chooses its storage).

========================================================  ================================
scheme                                                    store
========================================================  ================================
``memory://``                                             :class:`.memory.MemoryStore`: this process alone (the default)
``redis://``, ``rediss://``, ``redis+unix://``            :class:`.redis.RedisStore`: a fleet through Redis
``redis+cluster://``, ``rediss+cluster://``                 :class:`.redis.RedisStore` on a Redis Cluster
========================================================  ================================

A store implements :class:`~scrapy_proxybalance.core.store.StateStore` and a classmethod
``from_url(url, options)``. A third-party store plugs in with :func:`register` (say, in your
project's ``settings.py``) or, without any import, through an entry point of the group
``scrapy_proxybalance.stores`` whose name is the scheme and whose value the class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..core.store import StateStore

ENTRY_POINTS = "scrapy_proxybalance.stores"


@dataclass(frozen=True)
class StoreOptions:
    """What a store is built with besides its URL."""

    namespace: str = "proxybalance"  # PROXY_STATE_NAMESPACE: a shared store's key prefix
    lease_ttl: float = 30.0  # seconds a claim of a process that died holds its pair
    timeout: float = 0.5  # PROXY_STATE_TIMEOUT: a shared store's calls give up after this
    on_trouble: Callable[[str], None] = field(default=lambda message: None)  # a shared store cannot be reached


@dataclass(frozen=True)
class _Entry:
    target: str | type  # the class, or its dotted path (loaded when first used)
    extra: str = ""  # the package extra it needs, for the message when that is missing


_REGISTRY: dict[str, _Entry] = {
    "memory": _Entry("scrapy_proxybalance.stores.memory.MemoryStore"),
    **dict.fromkeys(("redis", "rediss", "redis+unix", "unix", "redis+cluster", "rediss+cluster"),
                    _Entry("scrapy_proxybalance.stores.redis.RedisStore", "redis")),
}


class StoreClass(Protocol):
    """What the registry maps a scheme to: a store class."""

    shared: bool  # other processes share its state

    def from_url(self, url: str, options: StoreOptions) -> StateStore: ...


class UnknownScheme(ValueError):
    """No store is registered for a URL's scheme."""


class MissingDependency(ImportError):
    """A store's library is not installed; the message says which extra to install."""


def register(scheme: str, store: str | type, extra: str = "") -> None:
    """Make ``scheme://`` URLs name ``store`` (a class or its dotted path)."""
    _REGISTRY[scheme.lower()] = _Entry(store, extra)


def schemes() -> list[str]:
    """Every scheme a store is registered for (entry points included)."""
    return sorted({*_REGISTRY, *(ep.name for ep in entry_points(group=ENTRY_POINTS))})


def scheme_of(url: str) -> str:
    return url.partition("://")[0].lower() if "://" in url else ""


def store_class(url: str) -> StoreClass:
    """The store class for ``url``'s scheme. Raises :class:`UnknownScheme` or
    :class:`MissingDependency`."""
    scheme = scheme_of(url)
    entry = _REGISTRY.get(scheme)
    if entry is None:
        found = [ep for ep in entry_points(group=ENTRY_POINTS) if ep.name == scheme]
        if not found:
            raise UnknownScheme(scheme)
        entry = _REGISTRY[scheme] = _Entry(found[0].value)
    try:
        cls: Any = _load(entry.target) if isinstance(entry.target, str) else entry.target
    except ImportError as exc:
        hint = f"pip install 'scrapy-proxybalance[{entry.extra}]'" if entry.extra else f"({exc})"
        raise MissingDependency(f"the store for {scheme}:// needs a package that is missing: {hint}") from None
    return cls


def _load(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)


def store_from_url(url: str, options: StoreOptions | None = None) -> StateStore:
    """The store ``url`` names, built with ``options``."""
    return store_class(url).from_url(url, options or StoreOptions())
