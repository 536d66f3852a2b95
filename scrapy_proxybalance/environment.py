"""What the crawl around the plugin must be: checked once, at start, each refusal one line
naming the setting to change."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

from scrapy.utils.asyncio import is_asyncio_available
from scrapy.utils.misc import load_object
from scrapy.utils.python import global_object_name

from .carriers.playwright import playwright_schemes, supported_version
from .core.errors import ConfigError
from .scheduler import is_proxy_scheduler, wrapped_scheduler
from .stores import store_class

if TYPE_CHECKING:
    from .carriers import Carriers
    from .config import Config
    from .core.proxy import Proxy

logger = logging.getLogger(__name__)

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"


def check_asyncio(config: Config, settings: Any) -> None:
    """The status server and the shared store (``redis.asyncio``) run on asyncio's event loop:
    Scrapy's default asyncio reactor, or Scrapy without a Twisted reactor. Refuse another
    reactor in one line naming the setting."""
    needs = [name for name, used in (("PROXY_STATUS_ADDRESS", config.status is not None),
                                     ("PROXY_STATE_URL", store_class(config.state_url).shared),
                                     ("DOWNLOAD_HANDLERS (scrapy-playwright)", bool(playwright_schemes(settings))))
             if used]
    if not needs:
        return
    try:
        if is_asyncio_available():
            return
        reactor = sys.modules["twisted.internet.reactor"]
        running = f"{type(reactor).__module__}.{type(reactor).__name__}"
    except (RuntimeError, KeyError):  # no reactor installed yet: go by the settings
        if not settings.getbool("TWISTED_REACTOR_ENABLED", True) or settings.get("TWISTED_REACTOR") == ASYNCIO_REACTOR:
            return
        running = str(settings.get("TWISTED_REACTOR") or "the default Twisted reactor")
    raise ConfigError(f"{needs[0]} needs asyncio, but this crawl runs {running}: use Scrapy's default"
                      f" TWISTED_REACTOR ({ASYNCIO_REACTOR!r}) or TWISTED_REACTOR_ENABLED = False, or unset"
                      f" {needs[0]}")


def check_schemes(pool: list[Proxy], carriers: Carriers) -> None:
    """Every proxy scheme of the pool must ride on some download path of this crawl: refuse one
    that none carries (it would fail on every request, or go direct)."""
    for scheme in carriers.uncarried({p.scheme for p in pool}):
        first = next(p for p in pool if p.scheme == scheme)
        raise ConfigError(f"PROXY_POOL has {scheme} proxies ({first}), but {carriers.why_not(scheme)}")
    for proxy in pool:
        why = carriers.unfit(proxy)
        if why is not None:
            raise ConfigError(f"PROXY_POOL: {proxy} cannot be used: {why}")


def check_playwright(settings: Any) -> None:
    """A crawl that renders pages with scrapy-playwright needs a version whose browser contexts
    this plugin knows how to bound (it reaches into them)."""
    if playwright_schemes(settings):
        why = supported_version()
        if why is not None:
            raise ConfigError(f"DOWNLOAD_HANDLERS names scrapy-playwright, but {why}")


def check_scheduler(settings: Any) -> None:
    """Waiting requests live in :class:`~.scheduler.ProxyScheduler`: without it they would be
    sent back and forth (and lost at a JOBDIR pause), so refuse to start; nor may it wrap
    itself."""
    value = settings.get("SCHEDULER")
    try:
        cls = load_object(value) if isinstance(value, str) else value
    except (ImportError, AttributeError, ValueError, NameError):
        return  # Scrapy reports a scheduler it cannot load itself
    if not is_proxy_scheduler(cls):
        name = value if isinstance(value, str) else global_object_name(value)
        raise ConfigError(
            f"SCHEDULER is {name!r}, but requests that wait for a proxy need"
            " 'scrapy_proxybalance.ProxyScheduler' (it keeps them in your scheduler's custody): enable the add-on"
            " (ADDONS = {'scrapy_proxybalance.Addon': 0}), or set SCHEDULER = 'scrapy_proxybalance.ProxyScheduler'"
            f" and PROXY_SCHEDULER = {name!r}"
        )
    wrapped_scheduler(settings)


def warn_own_slots(settings: Any) -> None:
    """Sites ``DOWNLOAD_SLOTS`` configures keep Scrapy's slot (one for the whole pool): say so."""
    own = sorted(settings.getdict("DOWNLOAD_SLOTS"))
    if own:
        logger.warning(
            "DOWNLOAD_SLOTS configures %s: requests to %s keep Scrapy's slot for the site, so its concurrency"
            " and delay limit the whole pool there, not each proxy (remove the entries to let each proxy keep"
            " its own pace)", ", ".join(own), "them" if len(own) > 1 else "it")
