"""The state store shared through Redis: one pool for every crawler process with the same
``PROXY_STATE_URL`` and ``PROXY_STATE_NAMESPACE``.

Each process keeps a mirror of the shared state in memory (a :class:`MemoryStore`) and reads
only that, so choosing a proxy never waits for Redis. What must be decided once for the whole
fleet is decided in Redis, atomically, by one Lua script per decision, timed by Redis's own
clock (``TIME``), so no process's clock can break a cooldown:

- ``claim``: a request takes a (proxy, site) pair for the whole fleet (the one round trip per
  request, awaited before it is sent; the candidates go in one call);
- ``give_back``, ``ban``, ``facts``, ``pace``, sessions: written behind, in pipelines, and
  announced on a stream that every process reads every :data:`SYNC_INTERVAL` to update its
  mirror. A session's binding is written only if no other process bound it first; two
  processes binding one new session at the same instant may each send its first request
  through its own choice, and from the next on the fleet uses one.

A claim of a process that died expires with its lease (``lease_ttl``). Every key is under the
namespace and expires when unused. If Redis is down or slow (``timeout``), the process goes on
with its mirror alone, says so once, counts it (``proxybalance/state/errors``), and goes back
to the shared state when Redis answers again.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ..core.ejection import ProxyFacts
from ..core.pace import SitePace
from ..core.proxy import mask
from ..core.sessions import Binding
from ..core.store import Listener, MemoryStore, PoolChangeListener

logger = logging.getLogger(__name__)

SYNC_INTERVAL = 0.25  # seconds between reads of the change stream
FLUSH_INTERVAL = 0.02  # seconds between writes of what this process changed
KEEP = 3600_000  # ms an unused key lives on past what it holds
STREAM_LENGTH = 10_000  # changes kept on the stream (approximately)
IN_FLIGHT_GUESS = 500  # ms a pair just claimed is reported held past its gap, until its answer says
HELD_REPORTED = 256  # pairs of a site held by the fleet that a claim reports back, the soonest free first
OUTBOX_LIMIT = 100_000  # writes kept while Redis is away; older ones are dropped

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

CLAIM = _NOW + """
-- KEYS: the site's held set, then for each candidate its pair hash, its in-flight set, its proxy hash
-- ARGV: candidates, lease member, limit, gap (ms), lease ttl (ms), how many held pairs to report
-- Returns: the candidate taken (1-based, 0: none), Redis's time, and the site's pairs held for a while
-- (proxy, until), so the process's picks avoid them
local n, member, limit, gap, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local held = KEYS[1]
redis.call('ZREMRANGEBYSCORE', held, '-inf', now)
local taken = 0
for i = 1, n do
  local pair, busy, proxy = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  local p = redis.call('HMGET', pair, 'answered', 'hold', 'ban')
  local free_at = math.max((tonumber(p[1]) or -1e15) + gap, tonumber(p[2]) or 0, tonumber(p[3]) or 0)
  local q = redis.call('HMGET', proxy, 'ejected_until', 'disabled')
  redis.call('ZREMRANGEBYSCORE', busy, '-inf', now)
  if free_at <= now and redis.call('ZCARD', busy) < limit and (tonumber(q[1]) or 0) <= now and q[2] ~= '1' then
    redis.call('ZADD', busy, now + ttl, member)
    redis.call('PEXPIRE', busy, ttl)
    -- held until its answer and gap: guessed for now, set when it is given back
    if limit == 1 or gap > 0 then redis.call('ZADD', held, now + gap + %d, ARGV[6 + i]) end
    taken = i
    break
  end
end
redis.call('PEXPIRE', held, ttl + gap)
return {taken, now, redis.call('ZRANGEBYSCORE', held, '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[6]))}
""".replace("%d", str(IN_FLIGHT_GUESS))

GIVE_BACK = _NOW + """
-- KEYS: pair hash, in-flight set, the site's held set; ARGV: lease member, answered (ms ago), pause (ms from the
-- answer, 0: none), gap (ms), keep (ms), proxy
redis.call('ZREM', KEYS[2], ARGV[1])
local answered = now - tonumber(ARGV[2])
if answered > (tonumber(redis.call('HGET', KEYS[1], 'answered')) or -1) then
  redis.call('HSET', KEYS[1], 'answered', answered)
end
local hold = tonumber(ARGV[3])
if hold > 0 and answered + hold > (tonumber(redis.call('HGET', KEYS[1], 'hold')) or 0) then
  redis.call('HSET', KEYS[1], 'hold', answered + hold)
end
local free_at = answered + math.max(hold, tonumber(ARGV[4]))
if free_at > now then redis.call('ZADD', KEYS[3], free_at, ARGV[6]) else redis.call('ZREM', KEYS[3], ARGV[6]) end
redis.call('PEXPIRE', KEYS[1], hold + tonumber(ARGV[5]))
"""

UNTAKE = """
-- KEYS: in-flight set, the site's held set; ARGV: lease member, proxy
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[2])
"""

BAN = _NOW + """
-- KEYS: pair hash, the site's held set; ARGV: ban length (ms), ban level, keep (ms), proxy
local ends = now + tonumber(ARGV[1])
if ends > (tonumber(redis.call('HGET', KEYS[1], 'ban')) or 0) then
  redis.call('HSET', KEYS[1], 'ban', ends)
  redis.call('ZADD', KEYS[2], ends, ARGV[4])
end
if tonumber(ARGV[2]) > (tonumber(redis.call('HGET', KEYS[1], 'level')) or 0) then
  redis.call('HSET', KEYS[1], 'level', ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[1]) + tonumber(ARGV[3]))
"""

UNBAN = """
-- KEYS: pair hash
redis.call('HDEL', KEYS[1], 'level')
"""

_PUT = """
-- KEYS: hash, stream; ARGV: kind, name, writer, keep (ms), stream length, then field, value pairs; a value
-- 'R<ms>' is a time that many ms from now (before now if negative) by Redis's clock
local fields = {}
for i = 6, #ARGV, 2 do
  local value = ARGV[i + 1]
  if string.sub(value, 1, 1) == 'R' then value = tostring(now + tonumber(string.sub(value, 2))) end
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = value
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'kind', ARGV[1], 'name', ARGV[2], 'writer', ARGV[3])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]))
return 1
"""
PUT = _NOW + _PUT

BIND = _NOW + """
-- a session's binding, unless the fleet bound that generation (or a later one) already
local generation
for i = 6, #ARGV, 2 do if ARGV[i] == 'generation' then generation = tonumber(ARGV[i + 1]) end end
local current = redis.call('HMGET', KEYS[1], 'generation', 'proxy')
local held = tonumber(current[1]) or -1
if held > generation or (held == generation and current[2] and current[2] ~= '') then return 0 end
""" + _PUT

_TIMES = {"ejected_until", "since", "limited_at", "used"}  # fields that hold times (sent relative, read back converted)


class RedisStore(MemoryStore):
    """A :class:`MemoryStore` mirror, kept in step with the fleet's state in Redis."""

    def __init__(self, url: str, namespace: str, *, lease_ttl: float, timeout: float = 0.5,
                 clock: Callable[[], float] = time.monotonic, on_trouble: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.redis = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self.shown_url = mask(url)
        self.ns = namespace
        self.lease_ttl_ms = int(lease_ttl * 1000)
        self.timeout = timeout
        self.clock = clock
        self.writer = secrets.token_hex(6)  # this process, on the stream and in lease members
        self.offset: float | None = None  # Redis ms minus this clock's ms
        self.outbox: list[tuple[Any, list[str], list[Any], int | None]] = []
        self.listeners: list[Listener] = []
        self.pool_listeners: list[PoolChangeListener] = []
        self.last_event = "$"
        self.healthy = True
        self.on_trouble = on_trouble or (lambda message: None)
        self.tasks: list[asyncio.Task[None]] = []
        self.scripts = {name: self.redis.register_script(lua) for name, lua in
                        (("claim", CLAIM), ("give_back", GIVE_BACK), ("untake", UNTAKE), ("ban", BAN),
                         ("unban", UNBAN), ("put", PUT), ("bind", BIND))}

    # -- keys
    def _k(self, *parts: str) -> str:
        return ":".join((self.ns, *parts))

    def _pair_keys(self, key: str, site: str) -> list[str]:
        return [self._k("pair", site, key), self._k("busy", site, key)]

    # -- time: this process's clock <-> Redis's
    def _note_time(self, redis_ms: int, sent: float) -> None:
        mid = (sent + self.clock()) / 2
        self.offset = redis_ms - mid * 1000

    def _local(self, redis_ms: float) -> float:
        return redis_ms / 1000 - (self.offset or 0.0) / 1000

    def _from_now_ms(self, local: float) -> int:
        return max(0, int((local - self.clock()) * 1000))

    # -- the life of the store
    async def start(self) -> None:
        """Check Redis, then keep the mirror in step (call once the event loop runs)."""
        await self._call(self._first_contact())
        self.tasks = [asyncio.ensure_future(self._every(SYNC_INTERVAL, self._sync)),
                      asyncio.ensure_future(self._every(FLUSH_INTERVAL, self._flush))]

    async def _first_contact(self) -> None:
        sent = self.clock()
        seconds, micros = await self.redis.time()
        self._note_time(seconds * 1000 + micros // 1000, sent)
        last = await self.redis.xrevrange(self._k("events"), count=1)
        self.last_event = _text(last[0][0]) if last else "0-0"

    async def close(self) -> None:
        """Stop keeping in step, write what is left, disconnect: within a few timeouts, whatever
        Redis does (a crawl's close must never hang on it)."""
        for task in self.tasks:
            task.cancel()
        try:
            async with asyncio.timeout(4 * self.timeout):
                await asyncio.gather(*self.tasks, return_exceptions=True)
                if self.healthy:
                    await self._flush()
                await self.redis.aclose()
        except TimeoutError:
            logger.warning("proxybalance: the shared state at %s did not close in time; left as it was",
                           self.shown_url)

    async def _every(self, seconds: float, step: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await step()
            except Exception:  # one bad step must not stop keeping the mirror in step
                logger.exception("proxybalance: the shared state store's %s failed (it will run again)",
                                 getattr(step, "__name__", step))

    async def _call(self, coroutine: Any) -> Any:
        """Await a Redis call within the timeout; on trouble, go on alone and say so once."""
        try:
            result = await asyncio.wait_for(coroutine, self.timeout)
        except (RedisError, OSError, TimeoutError) as exc:
            if self.healthy:
                self.healthy = False
                self.on_trouble(f"cannot reach the shared state at {self.shown_url} ({type(exc).__name__}):"
                                " going on with this process's own state until it answers again")
            return None
        if not self.healthy:
            self.healthy = True
            logger.info("proxybalance: the shared state at %s answers again: sharing the pool again", self.shown_url)
        return result

    # -- the one awaited decision
    async def claim(self, site: str, keys: Sequence[str], lease: int, limit: int, gap: float) -> str | None:
        script_keys = [self._k("held", site)]
        script_keys += [k for key in keys for k in (*self._pair_keys(key, site), self._k("proxy", key))]
        args: list[str | int] = [len(keys), f"{self.writer}:{lease}", limit, int(gap * 1000), self.lease_ttl_ms,
                                 HELD_REPORTED, *keys]
        sent = self.clock()
        reply = await self._call(self.scripts["claim"](keys=script_keys, args=args))
        if reply is None:
            return keys[0]  # Redis is away: this process decides alone
        index, now_ms, held = int(reply[0]), int(reply[1]), reply[2]
        self._note_time(now_ms, sent)
        self._learn(site, keys[index - 1] if index else None, held)
        return keys[index - 1] if index else None

    def _learn(self, site: str, taken: str | None, held: list[bytes]) -> None:
        """The pairs of ``site`` the fleet holds (in use, within their gap, paused or banned),
        soonest free first: held here too until then, so this process's picks avoid them. What
        it said before is replaced (a pair in flight is reported with a guess, shortened when
        its answer comes), and pairs it no longer reports are free as far as the fleet goes."""
        reported: dict[str, float] = {}
        for i in range(0, len(held), 2):
            reported[held[i].decode()] = self._local(float(held[i + 1]))
        complete = len(reported) < HELD_REPORTED
        last = max(reported.values(), default=math.inf)
        for key, pair in self.pairs.get(site, {}).items():
            if key not in reported and pair.fleet > -math.inf and (complete or pair.fleet <= last):
                pair.fleet = -math.inf
        for key, until in reported.items():
            if key != taken:
                pair = self._pair(key, site)
                pair.fleet = until
                self._push_hold(site, key, until)

    def _push_hold(self, site: str, key: str, until: float) -> None:
        heapq.heappush(self.holds.setdefault(site, []), (until, key))

    # -- writes: the mirror now, Redis behind
    def _send(self, script: str, keys: list[str], args: list[Any], since: int | None = None) -> None:
        """Queue a write; with ``since``, ``args[since]`` is a time of this clock, sent as ms ago."""
        if len(self.outbox) >= OUTBOX_LIMIT:
            del self.outbox[: OUTBOX_LIMIT // 10]
        self.outbox.append((self.scripts[script], keys, args, since))

    def give_back(self, key: str, site: str, now: float, gap: float, lease: int,
                  hold_until: float = -math.inf) -> None:
        super().give_back(key, site, now, gap, lease, hold_until)
        hold = int((hold_until - now) * 1000) if hold_until > now else 0
        self._send("give_back", [*self._pair_keys(key, site), self._k("held", site)],
                   [f"{self.writer}:{lease}", now, hold, int(gap * 1000), KEEP, key], since=1)

    def untake(self, key: str, site: str, lease: int) -> None:
        super().untake(key, site, lease)
        self._send("untake", [self._k("busy", site, key), self._k("held", site)], [f"{self.writer}:{lease}", key])

    def ban(self, key: str, site: str, now: float, until: float, level: int) -> None:
        super().ban(key, site, now, until, level)
        self._send("ban", [self._k("pair", site, key), self._k("held", site)],
                   [self._from_now_ms(until), level, KEEP, key])

    def unban(self, key: str, site: str) -> None:
        super().unban(key, site)
        self._send("unban", [self._k("pair", site, key)], [])

    def set_facts(self, key: str, facts: ProxyFacts) -> None:
        super().set_facts(key, facts)
        self._put("proxy", key, asdict(facts))

    def set_pace(self, site: str, pace: SitePace) -> None:
        super().set_pace(site, pace)
        self._put("site", site, asdict(pace))

    def set_session(self, key: str, binding: Binding) -> None:
        super().set_session(key, binding)
        self._put("session", key, asdict(binding))

    def bind_session(self, key: str, binding: Binding) -> Binding:
        """Bound here at once; in Redis only if no other process bound it first (then its
        binding reaches this mirror with the next sync, and the session follows it)."""
        held = MemoryStore.bind_session(self, key, binding)
        if held is binding:
            self._put("session", key, asdict(binding), script="bind")
        return held

    def _put(self, kind: str, name: str, values: dict[str, Any], script: str = "put") -> None:
        args: list[Any] = [kind, name, self.writer, KEEP, STREAM_LENGTH]
        for field, value in values.items():
            if field in _TIMES:  # this clock's times go as ms from now; 0 (or -inf) means never
                value = f"R{int((value - self.clock()) * 1000)}" if math.isfinite(value) else "0"
            elif isinstance(value, bool):
                value = int(value)
            args += [field, value]
        self._send(script, [self._k(kind, name), self._k("events")], args)

    def forget(self, key: str) -> None:
        super().forget(key)

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def share_pool_change(self, action: str, value: str) -> None:
        self._put("pool", f"{action}:{self.writer}:{secrets.token_hex(4)}", {"action": action, "value": value})

    def subscribe_pool(self, listener: PoolChangeListener) -> None:
        self.pool_listeners.append(listener)

    async def _flush(self) -> None:
        if not self.outbox or (not self.healthy and not await self._call(self.redis.ping())):
            return
        batch, self.outbox = self.outbox, []
        now = self.clock()
        async with self.redis.pipeline(transaction=False) as pipe:
            for script, keys, args, since in batch:
                if since is not None:
                    args = [*args[:since], max(0, int((now - args[since]) * 1000)), *args[since + 1:]]
                await script(keys=keys, args=args, client=pipe)
            done = await self._call(pipe.execute(raise_on_error=False))
        if done is None:
            self.outbox[:0] = batch  # keep them for when Redis answers again
            return
        failed = [result for result in done if isinstance(result, Exception)]
        if failed:
            logger.error("proxybalance: %d write(s) to the shared state failed, e.g. %s", len(failed), failed[0])

    # -- reads: what the others changed
    async def _sync(self) -> None:
        if not self.healthy and not await self._call(self.redis.ping()):
            return
        events = await self._call(self.redis.xread({self._k("events"): self.last_event}, count=1000))
        if not events:
            return
        changed: dict[tuple[str, str], None] = {}
        for _, entries in events:
            for event_id, data in entries:
                self.last_event = event_id.decode()
                if data[b"writer"].decode() != self.writer:
                    changed[data[b"kind"].decode(), data[b"name"].decode()] = None
        if not changed:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for kind, name in changed:
                pipe.hgetall(self._k(kind, name))
            values = await self._call(pipe.execute())
        if values is None:
            return
        for (kind, name), raw in zip(changed, values, strict=True):
            self._apply(kind, name, {k.decode(): v.decode() for k, v in raw.items()})

    def _apply(self, kind: str, name: str, raw: dict[str, str]) -> None:
        if not raw:
            return
        if kind == "proxy":
            MemoryStore.set_facts(self, name, _read(ProxyFacts, raw, self._local))
            for listener in self.listeners:
                listener(name)
        elif kind == "site":
            MemoryStore.set_pace(self, name, _read(SitePace, raw, self._local))
        elif kind == "session":
            MemoryStore.set_session(self, name, _read(Binding, raw, self._local))
        elif kind == "pool":
            for pool_listener in self.pool_listeners:
                pool_listener(raw["action"], raw["value"])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read(cls: Any, raw: dict[str, str], local: Callable[[float], float]) -> Any:
    """A record from its hash: numbers, flags and times (Redis ms -> this clock) as the class has them."""
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in raw:
            continue
        text = raw[f.name]
        if f.name in _TIMES:
            values[f.name] = local(float(text)) if float(text) > 0 else -math.inf
        elif f.type in ("bool", bool):
            values[f.name] = text in ("1", "True", "true")
        elif f.type in ("int", int):
            values[f.name] = int(float(text))
        elif f.type in ("float", float):
            values[f.name] = float(text)
        else:
            values[f.name] = text
    return cls(**values)
