"""The connection a :class:`~.redis.RedisStore` keeps to Redis: its scripts, its clock, and
the two loops that keep this process's mirror and Redis in step.

- Writes are queued (:meth:`RedisLink.send`) and flushed in pipelines every
  :data:`FLUSH_INTERVAL`; while Redis is away they are kept (up to :data:`OUTBOX_LIMIT`).
- Every :data:`SYNC_INTERVAL` the change stream is read, and the records other processes
  changed are read back and handed to ``apply``.
- Every call is bounded by ``timeout``: on trouble the process goes on alone, says so once
  (``on_trouble``), and shares again when Redis answers.

Every key is under the namespace's hash tag (``{namespace}:...``), so on a Redis Cluster all
of a pool's keys live in one slot and each script stays atomic over the keys it touches. One
tag per namespace rather than per site: a claim reads the candidates' proxy records as well as
the site's pairs, and a write announces itself on the namespace's one change stream; a fleet's
claims (one per request) are far below what one node serves, and other namespaces, like the
crawl's own queue, spread over the cluster.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from importlib import resources
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import NoScriptError, RedisError

from ..core.proxy import mask

logger = logging.getLogger(__name__)

SYNC_INTERVAL = 0.25  # seconds between reads of the change stream
FLUSH_INTERVAL = 0.02  # seconds between writes of what this process changed
OUTBOX_LIMIT = 100_000  # writes kept while Redis is away; older ones are dropped
SCRIPTS = ("claim", "give_back", "untake", "ban", "unban", "put", "hold", "let_go", "reclaim")
ALIVE = 1.0  # seconds between this process's heartbeats (what says its custody is still its own)
ALIVE_FOR = 4000  # ms a heartbeat lasts: a process silent that long is dead, its requests reclaimed
CLOCK = "local t = redis.call('TIME') return {t[1], t[2]}"  # the clock of the node that holds the namespace


def lua(name: str) -> str:
    """A script of ``stores/lua/``, after the prelude that reads Redis's clock."""
    folder = resources.files(__package__).joinpath("lua")
    text = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    if name == "bind":  # the check, then the write of put.lua
        text += folder.joinpath("put.lua").read_text(encoding="utf-8")
    return folder.joinpath("now.lua").read_text(encoding="utf-8") + text


class RedisLink:
    def __init__(self, url: str, cluster: bool, namespace: str, timeout: float, clock: Callable[[], float],
                 on_trouble: Callable[[str], None]) -> None:
        client = RedisCluster if cluster else Redis
        self.redis: Any = client.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self.shown_url = mask(url)
        self.ns = namespace
        self.timeout = timeout
        self.clock = clock
        self.on_trouble = on_trouble
        self.writer = secrets.token_hex(6)  # this process, on the stream and in lease members
        self.offset: float | None = None  # Redis ms minus this clock's ms
        self.outbox: list[tuple[Any, list[str], list[Any], int | None]] = []
        self.last_event = "$"
        self.healthy = True
        self.tasks: list[asyncio.Task[None]] = []
        self.apply: Callable[[str, str, dict[str, str]], None] = lambda kind, name, record: None
        self.scripts = {name: self.redis.register_script(lua(name)) for name in (*SCRIPTS, "bind")}
        self.clock_script = self.redis.register_script(CLOCK)
        self.loaded = not cluster  # a cluster's pipelines do not load scripts: this link does, on every node

    def key(self, *parts: str) -> str:
        return ":".join((f"{{{self.ns}}}", *parts))

    # -- time: this process's clock <-> Redis's
    def note_time(self, redis_ms: int, sent: float) -> None:
        mid = (sent + self.clock()) / 2
        self.offset = redis_ms - mid * 1000

    def local(self, redis_ms: float) -> float:
        return redis_ms / 1000 - (self.offset or 0.0) / 1000

    def from_now_ms(self, local: float) -> int:
        return max(0, int((local - self.clock()) * 1000))

    # -- the life of the link
    async def start(self, apply: Callable[[str, str, dict[str, str]], None]) -> None:
        """Check Redis, then keep in step: ``apply(kind, name, record)`` for each record
        another process changed."""
        self.apply = apply
        await self.call(self._first_contact())
        await self.alive()
        self.tasks = [asyncio.ensure_future(self._every(SYNC_INTERVAL, self.sync)),
                      asyncio.ensure_future(self._every(FLUSH_INTERVAL, self.flush)),
                      asyncio.ensure_future(self._every(ALIVE, self.alive))]

    async def alive(self) -> None:
        """Say this process is alive (its custody is its own) for :data:`ALIVE_FOR` ms more."""
        await self.call(self.redis.set(self.key("alive", self.writer), 1, px=ALIVE_FOR))

    async def _first_contact(self) -> None:
        sent = self.clock()
        seconds, micros = await self.clock_script(keys=[self.key("events")])
        self.note_time(int(seconds) * 1000 + int(micros) // 1000, sent)
        last = await self.redis.xrevrange(self.key("events"), count=1)
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
                    await self.flush()
                    # a clean close: what it still holds was dropped by the crawl (what waited went back to the queue)
                    await self.call(self.redis.delete(self.key("custody", self.writer), self.key("alive", self.writer)))
                await self.redis.aclose()
        except TimeoutError:
            logger.warning("the shared state at %s did not close in time; left as it was", self.shown_url)

    async def _every(self, seconds: float, step: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await step()
            except Exception:  # one bad step must not stop keeping the mirror in step
                logger.exception("the shared state store's background step failed (it will run again)")

    async def call(self, coroutine: Any) -> Any:
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
            logger.info("the shared state at %s answers again: sharing the pool again", self.shown_url)
        return result

    # -- writes
    def send(self, script: str, keys: list[str], args: list[Any], since: int | None = None) -> None:
        """Queue a write; with ``since``, ``args[since]`` is a time of this clock, sent as ms ago."""
        if len(self.outbox) >= OUTBOX_LIMIT:
            del self.outbox[: OUTBOX_LIMIT // 10]
        self.outbox.append((self.scripts[script], keys, args, since))

    async def flush(self) -> None:
        """Write what is queued (the flush loop does it every :data:`FLUSH_INTERVAL`)."""
        if not self.outbox or (not self.healthy and not await self.call(self.redis.ping())):
            return
        if not self.loaded:
            self.loaded = await self.call(self._load_scripts()) is not None
        batch, self.outbox = self.outbox, []
        now = self.clock()
        async with self.redis.pipeline(transaction=False) as pipe:
            for script, keys, args, since in batch:
                if since is not None:
                    args = [*args[:since], max(0, int((now - args[since]) * 1000)), *args[since + 1:]]
                await script(keys=keys, args=args, client=pipe)
            done = await self.call(pipe.execute(raise_on_error=False))
        if done is None:
            self.outbox[:0] = batch  # keep them for when Redis answers again
            return
        unloaded = [write for write, result in zip(batch, done, strict=True) if isinstance(result, NoScriptError)]
        if unloaded:  # a node restarted, or a slot moved, since the scripts were loaded: again, next flush
            self.loaded = False
            self.outbox[:0] = unloaded
        failed = [result for result in done if isinstance(result, Exception) and not isinstance(result, NoScriptError)]
        if failed:
            logger.error("%d write(s) to the shared state failed, e.g. %s", len(failed), failed[0])

    async def _load_scripts(self) -> bool:
        for script in self.scripts.values():
            await self.redis.script_load(script.script)
        return True

    # -- reads: what the others changed
    async def sync(self) -> None:
        """Read what the others changed (the sync loop does it every :data:`SYNC_INTERVAL`)."""
        if not self.healthy and not await self.call(self.redis.ping()):
            return
        events = await self.call(self.redis.xread({self.key("events"): self.last_event}, count=1000))
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
                pipe.hgetall(self.key(kind, name))
            values = await self.call(pipe.execute())
        if values is None:
            return
        for (kind, name), raw in zip(changed, values, strict=True):
            if raw:
                self.apply(kind, name, {k.decode(): v.decode() for k, v in raw.items()})


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
