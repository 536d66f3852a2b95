"""The pool while the crawl runs: the run-time API, the pool file and ``PROXY_POOL_SOURCE``,
changes made by other processes of a fleet, and the status page's actions.

Get it with ``crawler.get_downloader_middleware(ProxyBalanceMiddleware).pool``; its
:meth:`~PoolControl.add_proxy`, :meth:`~PoolControl.remove_proxy`,
:meth:`~PoolControl.disable_proxy`, :meth:`~PoolControl.enable_proxy` and
:meth:`~PoolControl.proxies` change and show the pool (of every process sharing it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from .core.entries import parse_entry
from .core.errors import InvalidProxy, ProxyBalanceError
from .core.proxy import Proxy, mask
from .logs import secrets_of
from .reload import PoolFile
from .stats import PREFIX

if TYPE_CHECKING:
    from scrapy.statscollectors import StatsCollector

    from .checks.active import HealthChecker
    from .config import Config
    from .core.balancer import Balancer
    from .core.store import StateStore
    from .sources import PoolSource

logger = logging.getLogger(__name__)


class PoolControl:
    def __init__(self, config: Config, balancer: Balancer, store: StateStore, stats: StatsCollector,
                 wake: Callable[[], None], carried: Collection[str] = ("http", "https")) -> None:
        self.config = config
        self.balancer = balancer
        self.store = store
        self.stats = stats
        self.wake = wake  # waiting requests may ask again: a proxy joined or came back
        self.carried = frozenset(carried)  # proxy schemes some download path of this crawl carries
        self.pool_file = PoolFile(config.pool_file) if config.pool_file and config.pool_reload_interval else None
        self.static_pool = list(config.pool)  # PROXY_POOL (as its file reads now)
        self.source_pool: list[Proxy] = []  # what PROXY_POOL_SOURCE gave last
        self.source: PoolSource | None = None  # set by whoever builds the source (it needs the crawler)
        self.checker: HealthChecker | None = None  # active checks, for the exit IPs they found
        self.version = 0  # bumped by each change made here (a password may change with an entry)
        self._secrets: tuple[tuple[int, int], list[str]] = ((-1, -1), [])
        store.subscribe_pool(self.changed_elsewhere)

    def secrets(self) -> list[str]:
        """Every form of every password in the pool now (for :class:`~.logs.PasswordFilter`);
        worked out again only when the pool changed."""
        b = self.balancer
        stamp = (self.version, len(b.by_key) + len(b.gateways.by_key))
        if self._secrets[0] != stamp:
            proxies = [*(p.proxy for p in b.by_key.values()), *b.gateways.templates()]
            self._secrets = (stamp, secrets_of(proxies))
        return self._secrets[1]

    # -- the run-time API --------------------------------------------------------------

    def add_proxy(self, entry: str | dict) -> Proxy:
        """Add a proxy (a URL or a ``PROXY_POOL`` dict) to the running pool (of every process
        sharing it). Raises :class:`~.core.errors.InvalidProxy` or
        :class:`~.core.errors.DuplicateProxy`."""
        proxy = self._carriable(parse_entry(entry))
        self.balancer.add(proxy)
        self.store.share_pool_change("add", json.dumps(entry))
        logger.info("added %s", proxy.label)
        self.wake()
        return proxy

    def _carriable(self, proxy: Proxy) -> Proxy:
        if proxy.scheme not in self.carried:
            raise InvalidProxy(f"{proxy}: no download handler of this crawl carries {proxy.scheme} proxies")
        return proxy

    def remove_proxy(self, url: str) -> None:
        """Remove a proxy (from every process sharing the pool): no new requests; those in
        flight through it finish. Raises :class:`~.core.errors.UnknownProxy` if it is not in
        the pool."""
        key = parse_entry(url).key
        self.balancer.remove(key)
        self.store.share_pool_change("remove", key)

    def disable_proxy(self, url: str) -> None:
        """Stop using a proxy until :meth:`enable_proxy`; it keeps its health history."""
        self.balancer.disable(parse_entry(url).key)

    def enable_proxy(self, url: str) -> None:
        self.balancer.enable(parse_entry(url).key)
        self.wake()

    def proxies(self) -> list[dict]:
        """The pool now: one dict per proxy (URL masked), for monitoring."""
        b, ip_of = self.balancer, self.checker.ip_of if self.checker else {}
        return [{"proxy": str(p.proxy), "name": p.proxy.name, "state": b.state_of(p), "in_flight": p.in_flight,
                 "limit": p.limit.allowed, "requests": p.metrics.requests, "successes": p.metrics.successes,
                 "failures": p.metrics.failures, "bans": p.metrics.bans, "ejections": b.facts(p).ejections,
                 "exit_ip": ip_of.get(p.key)} for p in b.by_key.values()]

    def changed_elsewhere(self, action: str, value: str) -> None:
        """Another process added or removed a proxy: so does this one."""
        try:
            if action == "add":
                proxy = parse_entry(json.loads(value))
                if proxy.key not in self.balancer.by_key:
                    self.balancer.add(proxy)
                    logger.info("added %s (by another process)", proxy.label)
                    self.wake()
            elif action == "remove" and value in self.balancer.by_key:
                self.balancer.remove(value)
                logger.info("removed %s (by another process)", value)
        except (ValueError, ProxyBalanceError) as exc:
            logger.error("cannot apply a pool change from another process: %s", mask(str(exc)))

    # -- the pool file and the source --------------------------------------------------

    def reload_pool(self) -> None:
        """Apply the pool file if it changed; proxies that stay keep their health."""
        proxies = self.pool_file.changed() if self.pool_file else None
        if proxies:
            self.static_pool = proxies
            self._apply_pool(f"reloaded {self.config.pool_file}", always=True)

    def use_source_pool(self, proxies: list[Proxy]) -> None:
        """``PROXY_POOL_SOURCE`` gave a good pool: it joins ``PROXY_POOL``'s."""
        self.source_pool = proxies
        self._apply_pool("PROXY_POOL_SOURCE changed the pool")

    def ran_dry(self) -> None:
        """No proxy could serve a site: the provider may know better."""
        if self.source is not None:
            self.source.refresh("dry")

    def empty(self) -> bool:
        return not self.balancer.by_key and not self.balancer.gateways.by_key

    def _apply_pool(self, what: str, always: bool = False) -> None:
        """Make the pool ``PROXY_POOL``'s proxies and the source's (a proxy both list counts
        once); proxies that stay keep their health."""
        wanted: dict[str, Proxy] = {}
        for proxy in (*self.static_pool, *self.source_pool):
            if proxy.scheme not in self.carried:
                logger.error("%s: %s is left out: no download handler of this crawl carries %s proxies", what, proxy,
                             proxy.scheme)
                continue
            wanted.setdefault(proxy.key, proxy)
        added, removed, updated = self.balancer.replace(list(wanted.values()))
        self.version += 1
        if always or added or removed or updated:
            self.stats.inc_value(f"{PREFIX}/pool/reloads")
            logger.info("%s: %d added, %d removed, %d updated, %d in the pool", what, added, removed, updated,
                        len(self.balancer.by_key) + len(self.balancer.gateways.by_key))
            self.wake()

    # -- the status page's actions -----------------------------------------------------

    def status_action(self, proxy_id: int, action: str) -> dict[str, Any] | None:
        """``disable`` or ``enable`` the proxy with this id, from the status page
        (``PROXY_STATUS_ACTIONS``); ``None`` if no such proxy is in the pool."""
        states = self.balancer.states
        p = states[proxy_id] if 0 <= proxy_id < len(states) else None
        if p is None or self.balancer.by_key.get(p.key) is not p:
            return None
        if action == "disable":
            self.balancer.disable(p.key)
        else:
            self.balancer.enable(p.key)
            self.wake()
        logger.info("%sd %s from the status page", action, p.proxy.label)
        return {"id": p.id, "label": p.proxy.label, "state": self.balancer.state_of(p)}
