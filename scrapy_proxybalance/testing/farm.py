"""A local proxy farm for demos and tests: one site and forward proxies on 127.0.0.1.

Every proxy sends every host name to the one local site, so ``http://shop-a.test/`` and
``http://shop-b.test/`` are two sites without DNS. Each page carries a token
(:func:`token`) so a crawl can prove it got the real page. Proxy kinds:

- ``healthy``: forwards at once; ``slow``: forwards after ``delay`` seconds;
- ``dead``: nothing listens (connection refused); ``hung``: accepts, never answers;
- ``reset``: reads the request, then drops the connection;
- ``banning``: answers 429 (``Retry-After``) to a host it saw less than ``min_interval`` ago;
- ``auth``: wants ``Proxy-Authorization`` for ``user:password``, else answers 407;
- ``wrong``: answers 200 with a page of its own (a hotel Wi-Fi login, say) to everything;
- ``gateway``: a provider's session gateway: the username (``user-session-<id>``, say)
  picks one of its ``exits``, the same one for the same username;
- ``rotating``: a provider's rotating gateway: each new connection leaves from the next of
  its ``exits`` (named in an ``X-Exit-IP`` header), and connections are kept alive.

Any proxy can also serve ``captcha_hosts`` a captcha page (status 200), ``ban_hosts`` a
``403`` block page, have a ``capacity`` (requests at once; above it they wait, or get a 503
with ``overflow="503"``), and drop out for a while (:meth:`Farm.blackout`): its connections
dropped, or refused outright.

Each proxy connects to the site from its own ``exit_ip`` (an address of 127.0.0.0/8). The
site's ``/ip`` answers ``{"origin": "<the address it sees>"}``, like an IP echo service; with
``site_interval`` it answers 429 to an exit that asks for a host again too soon, as sites
rate limit an IP; ``/login`` starts a session bound to the exit that logged in, and
``/account/<n>`` answers 403 to that session's cookie from any other exit; ``/flaky/<n>``
answers 500 once, then the page.

Timing (blackouts) counts from the first request a proxy receives, so a crawl's start-up
time does not move it. Run ``python -m scrapy_proxybalance.testing.farm --run CMD ...`` to
start the demo farm, run CMD with ``FARM_POOL_FILE`` (a PROXY_POOL file) and ``FARM_SITE``
in its environment, then stop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from .proxies import Outage, ProxySpec, Seen, authorized, demo_specs
from .site import BLOCKED, CAPTCHA, PAGES, PORTAL, Block, Site, site_page, token
from .wire import HOST, closed_port, kept_alive, quietly, read_head, response, split_target

__all__ = ["CAPTCHA", "HOST", "PAGES", "PORTAL", "Farm", "Outage", "ProxySpec", "Seen", "demo_specs", "site_page",
           "token"]


class Farm:
    """The site and the proxies, served by one asyncio loop in a background thread.

    ``site_interval``: the site answers ``429`` (``Retry-After: site_retry_after``) to an exit
    address that asks for the same host again within that many seconds. ``site_blocks``: hosts
    that refuse some exit addresses (see :class:`~.site.Block`).
    """

    def __init__(self, specs: list[ProxySpec], site_interval: float = 0.0, site_retry_after: int = 20,
                 site_blocks: dict[str, Block] | None = None) -> None:
        self.specs = specs
        for i, spec in enumerate(specs):
            if not spec.exit_ip:
                spec.exit_ip = f"127.0.{1 + i // 250}.{1 + i % 250}"
        self.site = Site(site_interval, site_retry_after, site_blocks)
        self.site_seen: list[Seen] = []  # every request the site received
        self.site_port = 0
        self.outages: list[Outage] = []
        self.anchor: float | None = None  # when the first proxy saw its first request
        self.starts: dict[int, float] = {}  # id(outage) -> when it begins (or began)
        self.received = 0  # requests the proxies received
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="proxy-farm", daemon=True)
        self.hung: set[asyncio.StreamWriter] = set()
        self.open: set[asyncio.StreamWriter] = set()  # every connection the farm holds, either side

    @property
    def site_limited(self) -> list[tuple[float, str, str]]:
        """(when, exit, host) of each 429 the site sent."""
        return self.site.limited

    @property
    def site_last(self) -> dict[tuple[str, str], float]:
        return self.site.last

    def blackout(self, after: float = 0.0, seconds: float = 60.0, names: set[str] | None = None,
                 refuse: bool = False, after_requests: int | None = None) -> None:
        """Every proxy (or those in ``names``) drops each request from ``after`` seconds past
        the farm's first request (or, with ``after_requests``, from when the proxies have
        received that many requests: the crawl is under way however fast the machine), for
        ``seconds``; with ``refuse``, it stops accepting connections instead (and its open ones
        are cut), then listens again."""
        self.outages.append(Outage(after, seconds, frozenset(names) if names is not None else None, refuse,
                                   after_requests))

    def down(self, name: str | None = None) -> list[tuple[float, float]]:
        """The windows (monotonic times) in which a proxy (or every proxy) was out, or is."""
        return [(start, start + o.seconds) for o in self.outages
                if (start := self.starts.get(id(o))) is not None and (o.names is None or name in o.names)]

    def __enter__(self) -> Farm:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=60)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    async def _start(self) -> None:
        site = await asyncio.start_server(self._serve_site, HOST, 0, backlog=4096)
        self.site_port = site.sockets[0].getsockname()[1]
        self.site_server = site
        for spec in self.specs:
            if spec.kind == "dead":
                spec.port = closed_port()
                continue
            if spec.capacity and spec.overflow == "queue":
                spec.slots = asyncio.Semaphore(spec.capacity)
            await self._listen(spec)

    async def _listen(self, spec: ProxySpec) -> None:
        spec.server = await asyncio.start_server(functools.partial(self._serve_proxy, spec), HOST, spec.port,
                                                 backlog=1024)
        spec.port = spec.server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        for server in [self.site_server, *(s.server for s in self.specs if s.server)]:
            server.close()
        # connections still open (idle keep-alives, hung ones, some just accepted) end with the
        # farm: their sessions are cancelled and their sockets closed before the loop stops
        for _ in range(3):
            await asyncio.sleep(0)
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for writer in [*self.open, *self.hung]:
            writer.transport.abort()
        await asyncio.sleep(0)  # aborted transports close their sockets on the next turn

    def _started(self, now: float) -> None:
        """The first request: outages timed in seconds are timed from now."""
        self.anchor = now
        self.starts, self.received = {}, 0
        for outage in self.outages:
            if outage.after_requests is None:
                self._begin(outage, now + outage.after, now)

    def _arrived(self, spec: ProxySpec, head: tuple[str, dict[str, str]], exit_ip: str) -> tuple[str, str, str, float]:
        """A request reached ``spec`` (leaving from ``exit_ip``): noted; its method, host, path and time."""
        request_line, headers = head
        method, target, _ = request_line.split(" ", 2)
        host, path = split_target(target)
        now = time.monotonic()
        if self.anchor is None:
            self._started(now)
        self._received(now)
        spec.seen.append(Seen(now, host, path, headers, exit_ip))
        return method, host, path, now

    def _received(self, now: float) -> None:
        """A proxy received a request: outages waiting for that many begin now."""
        self.received += 1
        for outage in self.outages:
            if outage.after_requests == self.received:
                self._begin(outage, now, now)

    def _begin(self, outage: Outage, start: float, now: float) -> None:
        """``outage`` runs from ``start``; a refusing one closes its proxies' doors then."""
        self.starts[id(outage)] = start
        if outage.refuse:
            for spec in self.specs:
                if spec.kind != "dead" and (outage.names is None or spec.name in outage.names):
                    self.loop.call_later(start - now, self._refuse, spec)
                    self.loop.call_later(start - now + outage.seconds, self._accept, spec)

    def _refuse(self, spec: ProxySpec) -> None:
        if spec.server is not None:
            spec.server.close()
            spec.server = None
        for writer in list(spec.writers):
            writer.transport.abort()

    def _accept(self, spec: ProxySpec) -> None:
        self.loop.create_task(self._listen(spec))

    def _dropping(self, spec: ProxySpec, now: float) -> bool:
        return any(start <= now < start + o.seconds for o in self.outages
                   if not o.refuse and (o.names is None or spec.name in o.names)
                   and (start := self.starts.get(id(o))) is not None)

    def pool(self) -> list[str]:
        """The proxies' URLs, for ``PROXY_POOL``."""
        return [s.url for s in self.specs]

    def named_pool(self) -> list[dict[str, str]]:
        """``PROXY_POOL`` entries that name each proxy (``{"url": ..., "name": ...}``)."""
        return [{"url": s.url, "name": s.name} for s in self.specs]

    def write_pool(self, path: str) -> None:
        """A pool file naming each proxy by its role (``{"url": ..., "name": ...}`` lines)."""
        with open(path, "w", encoding="utf-8") as f:
            f.write("# written by scrapy_proxybalance.testing.farm\n")
            f.writelines(f'{json.dumps({"url": spec.url, "name": spec.name})}  # {spec.kind}\n'
                         for spec in self.specs)

    async def _serve_site(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open.add(writer)
        try:
            await quietly(self._site_session(reader, writer), writer)
        finally:
            self.open.discard(writer)

    async def _serve_proxy(self, spec: ProxySpec, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        spec.writers.add(writer)
        self.open.add(writer)
        try:
            await quietly(self._proxy_session(spec, reader, writer), writer)
        finally:
            spec.writers.discard(writer)
            self.open.discard(writer)

    async def _site_session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        if head is not None:
            request_line, headers = head
            path = request_line.split(" ")[1]
            host = headers.get("host", "").split(":")[0]
            peer = writer.get_extra_info("peername")[0]
            now = time.monotonic()
            self.site_seen.append(Seen(now, host, path, headers, peer))
            answer = self.site.answer(host, path, headers, peer, now)
            if answer is not None:
                writer.write(answer)
                await writer.drain()
        writer.close()

    async def _proxy_session(self, spec: ProxySpec, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        if head is None:
            writer.close()
            return
        if spec.kind == "rotating":
            await self._rotating(spec, reader, writer, head)
            return
        headers = head[1]
        method, host, path, now = self._arrived(spec, head, spec.exit_for(headers))
        if spec.kind == "hung":
            self.hung.add(writer)  # never answered; closed when the farm stops
            return
        if spec.kind == "reset" or self._dropping(spec, now) or spec.exit_for(headers) in spec.dead_exits:
            writer.transport.abort()
            return
        if spec.capacity and spec.overflow == "503" and spec.in_flight >= spec.capacity:
            spec.overflows += 1
            writer.write(response(503, b"proxy busy"))
            await writer.drain()
            writer.close()
            return
        spec.in_flight += 1
        try:
            if spec.slots is not None:
                async with spec.slots:
                    await self._answer(spec, method, host, path, headers, writer, now)
            else:
                await self._answer(spec, method, host, path, headers, writer, now)
        finally:
            spec.in_flight -= 1
        writer.close()

    async def _answer(self, spec: ProxySpec, method: str, host: str, path: str, headers: dict[str, str],
                      writer: asyncio.StreamWriter, now: float) -> None:
        if spec.kind in ("auth", "gateway") and not authorized(spec, headers):
            writer.write(response(407, b"proxy auth required", 'Proxy-Authenticate: Basic realm="farm"\r\n'))
        elif spec.kind == "banning" and now - spec.last.get(host, -1e9) < spec.min_interval:
            spec.last[host] = now
            spec.ban_log.append((now, host))
            writer.write(response(429, b"slow down", f"Retry-After: {spec.retry_after}\r\n"))
        else:
            spec.last[host] = now
            if spec.delay:
                await asyncio.sleep(spec.delay)
            if host in spec.captcha_hosts:
                writer.write(response(200, CAPTCHA))
            elif host in spec.ban_hosts:
                writer.write(response(403, BLOCKED))
            elif spec.kind == "wrong":
                writer.write(response(200, PORTAL))
            else:
                writer.write(await self._forward(spec.exit_for(headers), method, host, path, headers))
        await writer.drain()

    async def _rotating(self, spec: ProxySpec, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        head: tuple[str, dict[str, str]] | None) -> None:
        """A rotating gateway: each new connection leaves from the next of its ``exits``, named in
        an ``X-Exit-IP`` header; a connection is kept alive unless a request asks to close it."""
        exit_ip = spec.exits[spec.connections % len(spec.exits)]
        spec.connections += 1
        while head is not None:
            headers = head[1]
            method, host, path, _ = self._arrived(spec, head, exit_ip)
            close = "close" in (headers.get("connection", "").lower(), headers.get("proxy-connection", "").lower())
            writer.write(kept_alive(await self._forward(exit_ip, method, host, path, headers), exit_ip, close))
            await writer.drain()
            head = None if close else await read_head(reader)
        writer.close()

    async def _forward(self, exit_ip: str, method: str, host: str, path: str, headers: dict[str, str]) -> bytes:
        try:
            reader, writer = await asyncio.open_connection(HOST, self.site_port, local_addr=(exit_ip, 0))
        except OSError:
            return response(502, b"site down")
        hop = {"proxy-authorization", "proxy-connection", "connection", "keep-alive", "host"}
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k not in hop]
        self.open.add(writer)
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            await writer.drain()
            return await reader.read()
        finally:
            writer.close()
            self.open.discard(writer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scrapy_proxybalance.testing.farm",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3600, help="stop after this long without --run")
    parser.add_argument("--run", nargs=argparse.REMAINDER, help="command to run while the farm is up")
    args = parser.parse_args(argv)
    with Farm(demo_specs()) as farm, tempfile.TemporaryDirectory() as tmp:
        pool_file = os.path.join(tmp, "proxies.txt")
        farm.write_pool(pool_file)
        site = f"http://{HOST}:{farm.site_port}"
        print(f"farm: site {site}, {len(farm.specs)} proxies in {pool_file}", flush=True)
        if not args.run:
            print(f"farm: running for {args.seconds:.0f} s (Ctrl-C stops it)", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait(args.seconds)
            return 0
        env = {**os.environ, "FARM_POOL_FILE": pool_file, "FARM_SITE": site}
        return subprocess.call(args.run, env=env)


if __name__ == "__main__":
    sys.exit(main())
