"""Re-reads a ``PROXY_POOL`` file when it changes."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .core.entries import load_pool
from .core.errors import InvalidProxy
from .core.proxy import Proxy

logger = logging.getLogger(__name__)


class PoolFile:
    """Watches one pool file by modification time and size (a ``stat`` per check; the
    file is read only when it changed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.signature = self._signature()

    def _signature(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def changed(self) -> list[Proxy] | None:
        """The new pool if the file changed and parses, else ``None``. A file that is
        missing, unreadable, empty or has a bad line is reported and the pool kept."""
        signature = self._signature()
        if signature == self.signature:
            return None
        self.signature = signature
        if signature is None:
            logger.error("PROXY_POOL file %r is gone; keeping the current pool", str(self.path))
            return None
        try:
            proxies, _ = load_pool(self.path)
        except InvalidProxy as exc:
            logger.error("not reloading the pool, keeping the current one: %s", exc)
            return None
        if not proxies:
            logger.error("PROXY_POOL file %r lists no proxies; keeping the current pool",
                         str(self.path))
            return None
        return proxies
