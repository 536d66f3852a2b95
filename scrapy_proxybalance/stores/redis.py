"""The state store shared through Redis: one pool for every crawler process with the same
``PROXY_STATE_URL`` and ``PROXY_STATE_NAMESPACE``.

Each process keeps a mirror of the shared state in memory (a :class:`~.memory.MemoryStore`)
and reads only that, so choosing a proxy never waits for Redis. What must be decided once for
the whole fleet is decided in Redis, atomically, by one Lua script per decision
(``stores/lua/*.lua``), timed by Redis's own clock (``TIME``), so no process's clock can break
a cooldown:

- ``claim``: a request takes a (proxy, site) pair for the whole fleet (the one round trip per
  request, awaited before it is sent; the candidates go in one call);
- ``give_back``, ``ban``, ``facts``, ``pace``, sessions: written to the mirror at once and to
  Redis behind, in pipelines, announced on a stream that every process reads to update its
  mirror (see :mod:`.redis_link`). A session's binding is written only if no other process
  bound it first; two processes binding one new session at the same instant may each send its
  first request through its own choice, and from the next on the fleet uses one.

Which calls reach Redis is written out below: reads go to the mirror; each write names its
script. A claim of a process that died expires with its lease (``lease_ttl``). Every key is
under the namespace and expires when unused. If Redis is down or slow (``timeout``), the
process goes on with its mirror alone, says so once, counts it (``proxybalance/state/errors``),
and goes back to the shared state when Redis answers again.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any

from ..core.ejection import ProxyFacts
from ..core.pace import SitePace
from ..core.sessions import Binding
from ..core.store import Listener, PairRecord, PoolChangeListener
from ..core.tiers import SiteTier
from .memory import MemoryStore
from .redis_link import RedisLink

if TYPE_CHECKING:
    from . import StoreOptions

KEEP = 3600_000  # ms an unused key lives on past what it holds (a pair's: ANSWER_MARGIN past its last answer's memory)
ANSWER_MARGIN = 5_000  # ms a pair's key outlives the longest a site's gap can be
RECLAIM_MAX = 1000  # requests of dead processes one reclaim takes back
BOOKING_MARGIN = 5  # ms a booked request waits past the latest this clock can put the booked time at
STREAM_LENGTH = 10_000  # changes kept on the stream (approximately)
IN_FLIGHT_GUESS = 500  # ms a pair just claimed is reported held past its gap, until its answer says
HELD_REPORTED = 256  # pairs of a site held by the fleet that a claim reports back, the soonest free first

# fields that hold times (sent relative, read back converted)
_TIMES = {"ejected_until", "since", "limited_at", "proved_at", "used", "banned_at", "probe_at", "probing"}
_RECORDS = {"proxy": ProxyFacts, "site": SitePace, "session": Binding, "tier": SiteTier}


class RedisStore:
    """A mirror in memory, kept in step with the fleet's state in Redis."""

    shared = True

    def __init__(self, url: str, namespace: str, *, lease_ttl: float, timeout: float = 0.5,
                 clock: Callable[[], float] = time.monotonic, on_trouble: Callable[[str], None] | None = None) -> None:
        self.mirror = MemoryStore()
        self.link = RedisLink(*_redis_url(url), namespace, timeout, clock, on_trouble or (lambda message: None))
        self.lease_ttl_ms = int(lease_ttl * 1000)
        self.clock = clock
        self.listeners: list[Listener] = []
        self.pool_listeners: list[PoolChangeListener] = []

    @classmethod
    def from_url(cls, url: str, options: StoreOptions) -> RedisStore:
        return cls(url, options.namespace, lease_ttl=options.lease_ttl, timeout=options.timeout,
                   on_trouble=options.on_trouble)

    def _pair_keys(self, key: str, site: str) -> list[str]:
        k = self.link.key
        return [k("pair", site, key), k("busy", site, key)]

    # -- the life of the store
    async def start(self) -> None:
        """Check Redis, then keep the mirror in step (call once the event loop runs)."""
        await self.link.start(self._apply)

    async def close(self) -> None:
        await self.link.close()

    async def flush(self) -> None:
        """Write this process's changes to Redis now (they are written every few ms anyway)."""
        await self.link.flush()

    async def sync(self) -> None:
        """Read the fleet's changes into the mirror now (they are read every 0.25 s anyway)."""
        await self.link.sync()

    # -- reads: the mirror's
    def pairs_of(self, site: str) -> Mapping[str, PairRecord]:
        return self.mirror.pairs_of(site)

    def ban_of(self, key: str, site: str) -> tuple[float, int]:
        return self.mirror.ban_of(key, site)

    def soonest(self, site: str, now: float, gap: float) -> float | None:
        return self.mirror.soonest(site, now, gap)

    def banned(self, site: str, now: float) -> list[str]:
        return self.mirror.banned(site, now)

    def banned_sites(self, key: str, now: float) -> list[str]:
        return self.mirror.banned_sites(key, now)

    def banned_proxies(self, now: float) -> list[str]:
        return self.mirror.banned_proxies(now)

    def noted(self) -> list[str]:
        return self.mirror.noted()

    def pace(self, site: str) -> SitePace:
        return self.mirror.pace(site)

    def tier(self, site: str) -> SiteTier:
        return self.mirror.tier(site)

    def tiers(self) -> dict[str, SiteTier]:
        return self.mirror.tiers()

    def facts(self, key: str) -> ProxyFacts:
        return self.mirror.facts(key)

    def session(self, key: str, now: float) -> Binding | None:
        return self.mirror.session(key, now)

    # -- this process only: its own bookkeeping (a claim takes the pair in Redis)
    def take(self, key: str, site: str, now: float, lease: int) -> PairRecord:
        return self.mirror.take(key, site, now, lease)

    def remember_answers(self, seconds: float) -> None:
        self.mirror.remember_answers(seconds)

    def forget(self, key: str) -> None:
        self.mirror.forget(key)  # its keys in Redis expire when unused

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def subscribe_pool(self, listener: PoolChangeListener) -> None:
        self.pool_listeners.append(listener)

    # -- the one awaited decision: Redis's claim script
    async def claim(self, site: str, keys: Sequence[str], lease: int, limit: int, gap: float,
                    book: float = 0.0) -> tuple[str, float] | None:
        link = self.link
        script_keys = [link.key("held", site)]
        script_keys += [k for key in keys for k in (*self._pair_keys(key, site), link.key("proxy", key))]
        args: list[str | int] = [len(keys), f"{link.writer}:{lease}", limit, int(gap * 1000), self.lease_ttl_ms,
                                 HELD_REPORTED, IN_FLIGHT_GUESS, int(book * 1000), *keys]
        sent = self.clock()
        reply = await link.call(link.scripts["claim"](keys=script_keys, args=args))
        if reply is None:
            return keys[0], -math.inf  # Redis is away: this process decides alone
        index, now_ms, held, at_ms = int(reply[0]), int(reply[1]), reply[2], int(reply[3])
        link.note_time(now_ms, sent)
        taken = keys[index - 1] if index else None
        reported = {held[i].decode(): link.local(float(held[i + 1])) for i in range(0, len(held), 2)}
        self.mirror.fleet_holds(site, reported, len(reported) < HELD_REPORTED, taken)
        if taken is None:
            return None
        if at_ms <= now_ms:
            return taken, -math.inf
        # the script ran before the reply came: the booked time is at most this long after it
        return taken, self.clock() + (at_ms - now_ms + BOOKING_MARGIN) / 1000

    # -- writes: the mirror now, Redis behind (each names its script)
    def give_back(self, key: str, site: str, now: float, gap: float, lease: int,
                  hold_until: float = -math.inf, pair: PairRecord | None = None) -> None:
        self.mirror.give_back(key, site, now, gap, lease, hold_until, pair)
        hold = int((hold_until - now) * 1000) if hold_until > now else 0
        keep = int(self.mirror.memory * 1000) + ANSWER_MARGIN  # the pair's answer matters that long
        self.link.send("give_back", [*self._pair_keys(key, site), self.link.key("held", site)],
                       [f"{self.link.writer}:{lease}", now, hold, int(gap * 1000), keep, key], since=1)

    def untake(self, key: str, site: str, lease: int) -> None:
        self.mirror.untake(key, site, lease)
        k = self.link.key
        self.link.send("untake", [k("busy", site, key), k("held", site)], [f"{self.link.writer}:{lease}", key])

    def ban(self, key: str, site: str, now: float, until: float, level: int) -> None:
        self.mirror.ban(key, site, now, until, level)
        k = self.link.key
        self.link.send("ban", [k("pair", site, key), k("held", site)], [self.link.from_now_ms(until), level, KEEP, key])

    def unban(self, key: str, site: str) -> None:
        self.mirror.unban(key, site)
        self.link.send("unban", [self.link.key("pair", site, key)], [])

    def set_facts(self, key: str, facts: ProxyFacts) -> None:
        self.mirror.set_facts(key, facts)
        self._put("proxy", key, asdict(facts))

    def set_pace(self, site: str, pace: SitePace) -> None:
        self.mirror.set_pace(site, pace)
        self._put("site", site, asdict(pace))

    def set_tier(self, site: str, tier: SiteTier) -> None:
        self.mirror.set_tier(site, tier)
        self._put("tier", site, asdict(tier))

    def set_session(self, key: str, binding: Binding) -> None:
        self.mirror.set_session(key, binding)
        self._put("session", key, asdict(binding))

    def bind_session(self, key: str, binding: Binding) -> Binding:
        """Bound here at once; in Redis only if no other process bound it first (then its
        binding reaches this mirror with the next sync, and the session follows it)."""
        held = self.mirror.bind_session(key, binding)
        if held is binding:
            self._put("session", key, asdict(binding), script="bind")
        return held

    # -- custody: this process's requests, in a hash of its own, while it is alive
    def hold(self, token: str, blob: bytes) -> None:
        k = self.link.key
        self.link.send("hold", [k("custody", self.link.writer), k("custodians")], [token, blob, self.link.writer])

    def let_go(self, token: str) -> None:
        self.link.send("let_go", [self.link.key("custody", self.link.writer)], [token])

    async def reclaim(self) -> list[bytes]:
        link = self.link
        script = link.scripts["reclaim"]
        reply = await link.call(script(keys=[link.key("custodians")], args=[link.key(""), RECLAIM_MAX]))
        return list(reply or [])

    def share_pool_change(self, action: str, value: str) -> None:
        self._put("pool", f"{action}:{self.link.writer}:{secrets.token_hex(4)}", {"action": action, "value": value})

    def _put(self, kind: str, name: str, values: dict[str, Any], script: str = "put") -> None:
        args: list[Any] = [kind, name, self.link.writer, KEEP, STREAM_LENGTH]
        for field, value in values.items():
            if field in _TIMES:  # this clock's times go as ms from now; 0 is -inf (long ago), inf stays
                value = f"R{int((value - self.clock()) * 1000)}" if math.isfinite(value) else \
                    "inf" if value > 0 else "0"
            elif isinstance(value, bool):
                value = int(value)
            elif isinstance(value, tuple):
                value = "\n".join(value)
            args += [field, value]
        self.link.send(script, [self.link.key(kind, name), self.link.key("events")], args)

    # -- what the others changed, into the mirror
    def _apply(self, kind: str, name: str, raw: dict[str, str]) -> None:
        if kind == "pool":
            for pool_listener in self.pool_listeners:
                pool_listener(raw["action"], raw["value"])
            return
        record = _read(_RECORDS[kind], raw, self.link.local)
        if kind == "proxy":
            self.mirror.set_facts(name, record)
            for listener in self.listeners:
                listener(name)
        elif kind == "site":
            self.mirror.set_pace(name, record)
        elif kind == "tier":
            self.mirror.set_tier(name, record)
        else:
            self.mirror.set_session(name, record)


def _redis_url(url: str) -> tuple[str, bool]:
    """The URL as redis-py reads it (``redis+unix://`` is ``unix://`` there), and whether it
    names a Redis Cluster (``redis+cluster://``, ``rediss+cluster://``: any of its nodes)."""
    scheme, _, rest = url.partition("://")
    if scheme.lower() == "redis+unix":
        return "unix://" + rest, False
    if scheme.lower().endswith("+cluster"):
        return scheme[: -len("+cluster")] + "://" + rest, True
    return url, False


def _read(cls: Any, raw: dict[str, str], local: Callable[[float], float]) -> Any:
    """A record from its hash: numbers, flags and times (Redis ms -> this clock) as the class has them."""
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in raw:
            continue
        text = raw[f.name]
        if f.name in _TIMES:
            values[f.name] = math.inf if text == "inf" else local(float(text)) if float(text) > 0 else -math.inf
        elif f.type in ("bool", bool):
            values[f.name] = text in ("1", "True", "true")
        elif f.type in ("int", int):
            values[f.name] = int(float(text))
        elif f.type in ("float", float):
            values[f.name] = float(text)
        elif f.type.startswith("tuple"):
            values[f.name] = tuple(text.split("\n")) if text else ()
        else:
            values[f.name] = text
    return cls(**values)
