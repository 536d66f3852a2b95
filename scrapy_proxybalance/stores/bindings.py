"""Sticky sessions' bindings in this process's memory (the memory store's, and a shared store's mirror)."""

from __future__ import annotations

import heapq

from ..core.sessions import IDLE_EXPIRY, Binding


class Bindings:
    """Sticky sessions' bindings, each forgotten once unused for :data:`.IDLE_EXPIRY`."""

    def __init__(self) -> None:
        self.bindings: dict[str, Binding] = {}
        self.expiry: list[tuple[float, str]] = []  # (when it may expire, session), lazily

    def get(self, key: str, now: float) -> Binding | None:
        expiry = self.expiry
        while expiry and expiry[0][0] <= now:
            _, name = heapq.heappop(expiry)
            binding = self.bindings.get(name)
            if binding is not None:
                if binding.used + IDLE_EXPIRY <= now:
                    del self.bindings[name]
                else:
                    heapq.heappush(expiry, (binding.used + IDLE_EXPIRY, name))
        return self.bindings.get(key)

    def bind(self, key: str, binding: Binding) -> Binding:
        """Bind unless a binding of that generation exists already; return the one that holds."""
        current = self.bindings.get(key)
        if current is not None and (current.proxy or current.generation != binding.generation):
            return current
        self.keep(key, binding)
        return binding

    def keep(self, key: str, binding: Binding) -> None:
        if key not in self.bindings:
            heapq.heappush(self.expiry, (binding.used + IDLE_EXPIRY, key))
        self.bindings[key] = binding
