"""A state store that records every call and has nothing but the protocol's methods: a
balancer that reached into a store's internals would fail against it."""

from scrapy_proxybalance.core.store import StateStore
from scrapy_proxybalance.stores.memory import MemoryStore

PROTOCOL = sorted({name for cls in StateStore.__mro__[:-1] for name in vars(cls) if not name.startswith("_")})


class RecordingStore:
    shared = False

    def __init__(self) -> None:
        self._inner = MemoryStore()
        self.calls: list[str] = []


def _forward(name):
    def method(self, *args, **kwargs):
        self.calls.append(name)
        return getattr(self._inner, name)(*args, **kwargs)

    method.__name__ = name
    return method


for _name in PROTOCOL:
    setattr(RecordingStore, _name, _forward(_name))
