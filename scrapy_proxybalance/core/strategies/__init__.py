"""Selection strategies: one small class each, behind the :class:`Strategy` interface.

A strategy holds the proxies currently eligible in one group (healthy or on trial, one region
and tier) and picks one in its order of preference. ``pick(accept)`` offers candidates to
``accept`` (which rejects proxies excluded, cooling on the domain, or busy on trial) and
returns the first one accepted, or ``None`` when it accepts none of its members.

Cost per pick: the preferred candidate is found in O(1) or O(log n); only when nearly
every member is rejected does a pick sweep the members, and a pick that sweeps finds the
pool saturated for that domain, which bounds how often it can happen (see README).
"""

from __future__ import annotations

from .base import Accept, Strategy
from .least import LeastConnections, LeastLatency
from .simple import Random, RoundRobin
from .weighted import WeightedRandom, WeightedRoundRobin

__all__ = ["STRATEGIES", "Accept", "LeastConnections", "LeastLatency", "Random", "RoundRobin", "Strategy",
           "WeightedRandom", "WeightedRoundRobin"]

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (RoundRobin, WeightedRoundRobin, LeastConnections, LeastLatency, Random, WeightedRandom)
}
