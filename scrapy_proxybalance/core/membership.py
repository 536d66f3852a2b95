"""Which proxies are in the pool, and which of them each group's strategy may hand out.

A group is a region (or ``None``: the whole pool), backups or not, and a price tier (see
:mod:`.tiers`); each group has one strategy holding the members in rotation. A proxy in
rotation is in the pool, not ejected and not disabled; the strategies see it join and leave as its facts change.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence

from .ejection import State
from .errors import UnknownProxy
from .proxy import Proxy
from .state import ProxyState
from .store import ProxyFactsStore
from .strategies import Strategy

Group = tuple[str | None, bool, int]  # (region or None for all, backups, price tier)


class Membership:
    def __init__(self, strategy: Callable[[random.Random], Strategy], rng: random.Random,
                 store: ProxyFactsStore) -> None:
        self.strategy = strategy
        self.rng = rng
        self.store = store
        self.groups: dict[Group, Strategy] = {}
        self.states: list[ProxyState] = []  # by id; removed proxies keep their slot
        self.by_key: dict[str, ProxyState] = {}  # the proxies of the pool now
        self.region_size: Counter[str | None] = Counter()
        self.schemes: Counter[str] = Counter()  # proxies of the pool by scheme (a direct entry has none)
        self.tiers: Counter[int] = Counter()  # proxies of the pool by price tier
        self.tier_order: list[int] = []  # the tiers of the pool, cheapest first
        self.orders: dict[str | None, list[Strategy]] = {}  # region -> its groups in picking order (see order)
        self.memberships: list[list[Strategy]] = []  # proxy id -> the strategies holding it
        self.on_acquire = self.on_release = False  # the strategies follow acquires, releases (most do not)
        self.disabled = 0
        # ``p`` took a request, a request through ``p`` ended: the strategies that follow acquires
        # and releases see it (callers check on_acquire, on_release first); while the pool has one
        # group, its strategy's own (each strategy ignores a proxy it does not hold)
        self.acquired: Callable[[ProxyState], None] = self._acquired_by_all
        self.released: Callable[[ProxyState], None] = self._released_by_all

    def new(self, proxy: Proxy) -> ProxyState:
        """A proxy joins the pool (out of rotation until :meth:`sync`)."""
        p = ProxyState.of(len(self.states), proxy)
        self.states.append(p)
        self.memberships.append([])
        self.join(p)
        return p

    def join(self, p: ProxyState) -> None:
        proxy = p.proxy
        self.by_key[p.key] = p
        if not proxy.direct:
            self.schemes[proxy.scheme] += 1
        if proxy.tier not in self.tiers:
            self.tier_order = sorted([*self.tiers, proxy.tier])
            self.orders.clear()
        self.tiers[proxy.tier] += 1
        groups: list[Group] = [(None, proxy.backup, proxy.tier)]
        self.region_size[None] += 1
        if proxy.region is not None:
            groups.append((proxy.region, proxy.backup, proxy.tier))
            self.region_size[proxy.region] += 1
        for g in groups:
            if g not in self.groups:
                s = self.groups[g] = self.strategy(self.rng)
                self.orders.clear()
                self.on_acquire |= type(s).on_acquire is not Strategy.on_acquire
                self.on_release |= type(s).on_release is not Strategy.on_release
                if len(self.groups) == 1:
                    self.acquired, self.released = s.on_acquire, s.on_release
                else:
                    self.acquired, self.released = self._acquired_by_all, self._released_by_all
        self.memberships[p.id] = [self.groups[g] for g in groups]
        if self.store.facts(p.key).disabled:
            self.disabled += 1

    def part(self, p: ProxyState) -> None:
        """``p`` leaves the pool (for good, or to join again changed)."""
        self.leave(p)
        del self.by_key[p.key]
        _drop(self.schemes, p.proxy.scheme)
        _drop(self.tiers, p.proxy.tier)
        if p.proxy.tier not in self.tiers:
            self.tier_order.remove(p.proxy.tier)
            self.orders.clear()
        self.region_size[None] -= 1
        if p.proxy.region is not None:
            self.region_size[p.proxy.region] -= 1
        self.memberships[p.id] = []
        if self.store.facts(p.key).disabled:
            self.disabled -= 1

    def sync(self, p: ProxyState, now: float) -> None:
        """Put ``p`` in rotation or take it out, as its facts say."""
        facts = self.store.facts(p.key)
        out = p.removed or facts.disabled or facts.state(now) is State.EJECTED
        if out:
            self.leave(p)
        elif not p.in_rotation and p.key in self.by_key:
            p.in_rotation = True
            for s in self.memberships[p.id]:
                s.add(p)

    def leave(self, p: ProxyState) -> None:
        if p.in_rotation:
            p.in_rotation = False
            for s in self.memberships[p.id]:
                s.remove(p)

    def _acquired_by_all(self, p: ProxyState) -> None:
        for s in self.memberships[p.id]:
            s.on_acquire(p)

    def _released_by_all(self, p: ProxyState) -> None:
        for s in self.memberships[p.id]:
            s.on_release(p)

    def get(self, key: str) -> ProxyState:
        p = self.by_key.get(key)
        if p is None:
            raise UnknownProxy(f"no proxy {key!r} in the pool")
        return p

    def in_rotation(self, key: str) -> bool:
        """Whether the proxy is in the pool and can be handed out (not ejected or disabled)."""
        p = self.by_key.get(key)
        return p is not None and p.in_rotation

    def beyond(self, schemes: frozenset[str]) -> bool:
        """Whether some proxy of the pool has a scheme outside ``schemes``."""
        return not self.schemes.keys() <= schemes

    def order(self, region: str | None, tiers: Sequence[int] | None = None) -> list[Strategy]:
        """The groups a request for ``region`` picks from, in order: cheapest tier first (of
        ``tiers``, else of the pool), each tier's primaries before its backups."""
        if tiers is None:
            found = self.orders.get(region)
            if found is None:
                found = self.orders[region] = self.order(region, self.tier_order)
            return found
        return [s for tier in tiers for backup in (False, True)
                if (s := self.groups.get((region, backup, tier))) is not None]

    def group(self, region: str | None, backup: bool, tier: int = 0) -> Strategy | None:
        return self.groups.get((region, backup, tier))

    def tiered(self) -> bool:
        """Whether the pool has proxies of more than one price tier."""
        return len(self.tiers) > 1

    def live(self, region: str | None) -> int:
        """Proxies of the region in rotation."""
        return sum(len(s) for (r, _, _), s in self.groups.items() if r == region)

    def degraded(self, region: str | None = None) -> bool:
        """Fewer than half the proxies of the region are in rotation (Envoy's panic
        threshold): failures now say more about the pool than about a request."""
        return 2 * self.live(region) < self.region_size[region]

    def panicking(self, p: ProxyState) -> bool:
        """Whether the pool, or ``p``'s region, is degraded."""
        region = p.proxy.region
        return self.degraded(None) or (region is not None and self.degraded(region))


def _drop(counter: Counter, value: object) -> None:
    """One fewer of ``value`` (none left: no entry)."""
    if value in counter:
        counter[value] -= 1
        if not counter[value]:
            del counter[value]
