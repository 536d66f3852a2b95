"""Ejections and returns: the one place where they happen, each ejection's end, and, while the
pool panics, probes.

New health facts are written here (:meth:`Recovery.set_facts`): an ejection or a return is
told to the listener and followed by the strategies. An ejected proxy returns on trial when
its backoff ends (a heap of ends, so nothing is scanned per request). In panic (under half the
region in rotation, Envoy's threshold) an ejected proxy gets one probe request every
:data:`PROBE_INTERVAL`; so do the proxies that were out when the panic began or went out
during it, until they answer a probe (a blackout costs only its length), unless one fails a
probe once the pool is back above half (then it keeps its backoff, like any proxy failing
while the rest works).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

from .clock import Clock
from .ejection import ProxyFacts
from .leases import Ask
from .listener import PoolListener
from .membership import Membership
from .state import ProxyState
from .store import ProxyFactsStore

PROBE_INTERVAL = 1.0  # in panic, an ejected proxy gets one probe request this often
PROBES_LOOKED_AT = 8  # due probes one request looks at before it gives up on probing


class Recovery:
    def __init__(self, members: Membership, store: ProxyFactsStore, clock: Clock, listener: PoolListener) -> None:
        self.members = members
        self.store = store
        self.clock = clock
        self.listener = listener
        self.ends: list[tuple[float, int, int]] = []  # (ejected until, seq, proxy id)
        self.probes: list[tuple[float, int, int]] = []  # (next probe due, seq, proxy id), ejected ones
        self.panicked: set[int] = set()  # proxies out in a panic: probed until they answer
        self.seq = itertools.count()

    def set_facts(self, p: ProxyState, old: ProxyFacts, new: ProxyFacts, now: float, how: str = "") -> None:
        """Write new facts, tell the listener of an ejection or a return (``how`` it came
        back), and follow them."""
        if new is old or new == old:
            return
        self.store.set_facts(p.key, new)
        was_out, is_out = old.ejected_until > now, new.ejected_until > now
        if is_out and new.ejected_until != old.ejected_until:
            self.out(p, new.ejected_until, now, went_out=not was_out)
        if is_out and not was_out:
            p.limit.restart()
            p.streak = 0
            self.listener.ejected(p, new, new.ejected_until - now)
        elif was_out and not is_out:
            p.limit.restart()
            self.back(p)
            self.listener.revived(p, how)
        self.members.sync(p, now)
        if is_out and not was_out:
            self.note_panic(p, now)

    def changed_elsewhere(self, key: str) -> None:
        """Another process changed a proxy's facts: follow them."""
        p = self.members.by_key.get(key)
        if p is None:
            return
        now = self.clock()
        facts = self.store.facts(key)
        was_in = p.in_rotation
        if facts.ejected_until > now:
            self.out(p, facts.ejected_until, now, went_out=True)
        self.members.sync(p, now)
        if was_in and not p.in_rotation and facts.ejected_until > now:
            self.note_panic(p, now)
        elif p.in_rotation:
            self.back(p)

    def revive_due(self, now: float) -> None:
        """Proxies whose ejection ended come back, on trial."""
        for p in self.due(now):
            p.limit.restart()
            self.members.sync(p, now)
            if p.in_rotation:
                self.back(p)
                self.listener.revived(p, "trial")

    def out(self, p: ProxyState, until: float, now: float, went_out: bool) -> None:
        """``p`` is out until ``until``; ``went_out``: it was in until now (probes start)."""
        heapq.heappush(self.ends, (until, next(self.seq), p.id))
        if went_out:
            self._probe_at(p, now + PROBE_INTERVAL)

    def back(self, p: ProxyState) -> None:
        self.panicked.discard(p.id)

    def _probe_at(self, p: ProxyState, at: float) -> None:
        heapq.heappush(self.probes, (at, next(self.seq), p.id))

    def note_panic(self, p: ProxyState, now: float) -> None:
        """``p`` went out: if the pool is in panic, it is probed until it answers, and so is
        every proxy already out when the panic began."""
        if not self.members.panicking(p):
            return
        facts = self.store.facts
        if not self.panicked:
            for q in self.members.by_key.values():
                f = facts(q.key)
                if not q.in_rotation and f.ejected_until > now and not f.for_bans:
                    self.panicked.add(q.id)
        if not facts(p.key).for_bans:
            self.panicked.add(p.id)

    def due(self, now: float) -> list[ProxyState]:
        """The proxies whose ejection has ended by ``now`` and are still out."""
        ends, states, back = self.ends, self.members.states, []
        while ends and ends[0][0] <= now:
            p = states[heapq.heappop(ends)[2]]
            if not p.in_rotation and not p.removed and self.store.facts(p.key).ejected_until <= now:
                back.append(p)
        return back

    def next_end(self) -> float | None:
        return self.ends[0][0] if self.ends else None

    def probing(self, region: str | None) -> bool:
        """Whether requests for the region may go to an ejected proxy as a probe."""
        return bool(self.probes) and (bool(self.panicked) or self.members.degraded(region))

    def next_probe(self) -> float | None:
        return self.probes[0][0] if self.probes else None

    def probe_for(self, ask: Ask, now: float, free: Callable[[ProxyState], bool]) -> ProxyState | None:
        """An ejected proxy due for a probe that may take this request (``free``: its pair
        with the site is), if one is: any, in panic; else one that went out in a panic."""
        probes, later = self.probes, []
        panicking = self.members.degraded(ask.region)
        chosen = None
        for _ in range(PROBES_LOOKED_AT):
            if not probes or probes[0][0] > now:
                break
            p = self.members.states[heapq.heappop(probes)[2]]
            f = self.store.facts(p.key)
            if p.removed or f.disabled or f.for_bans or f.ejected_until <= now:
                continue  # back already, or not for probing: drop the entry
            if not self._probe_wanted(p, ask, panicking):
                later.append((now + PROBE_INTERVAL, p))
            elif p.key in ask.tried or not free(p):
                later.append((now + PROBE_INTERVAL / 4, p))
            else:
                chosen = p
                break
        for at, p in later:
            self._probe_at(p, at)
        return chosen

    def _probe_wanted(self, p: ProxyState, ask: Ask, panicking: bool) -> bool:
        """Whether ``p`` may be probed by a request for ``ask.region`` now: nothing in flight
        through it, of that region, and the pool panics (or ``p`` went out in a panic)."""
        if p.probing or p.in_flight or (ask.region is not None and p.proxy.region != ask.region):
            return False
        return panicking or p.id in self.panicked

    def probe_ended(self, p: ProxyState, now: float, failed: bool) -> None:
        """A probe through ``p`` was answered (or failed): the next one is due later."""
        p.probing = False
        self._probe_at(p, now + PROBE_INTERVAL)
        if failed and not self.members.panicking(p):
            self.panicked.discard(p.id)  # failing while the rest works: it keeps its backoff
