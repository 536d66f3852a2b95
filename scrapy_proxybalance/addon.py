"""``ADDONS = {"scrapy_proxybalance.Addon": 0}`` enables scrapy-proxybalance in one line."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from scrapy.utils.misc import load_object

from .config import DEFAULTS
from .middleware import ProxyBalanceMiddleware
from .scheduler import ProxyScheduler, is_proxy_scheduler

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

MIDDLEWARE_PRIORITY = 610  # after RetryMiddleware (550), before HttpProxyMiddleware (750)


class Addon:
    """Adds :class:`ProxyBalanceMiddleware` to ``DOWNLOADER_MIDDLEWARES`` unless the project
    already placed it, makes :class:`ProxyScheduler` the ``SCHEDULER``, wrapping the one the
    project had (kept in ``PROXY_SCHEDULER``), and publishes every ``PROXY_*`` default at the
    add-on's priority, so other components (and ``scrapy settings --get``) see the real values.
    Changes no other setting."""

    def update_settings(self, settings: BaseSettings) -> None:
        for name, value in DEFAULTS.items():
            settings.set(name, copy.deepcopy(value), priority="addon")
        settings.setdefault_in_component_priority_dict(
            "DOWNLOADER_MIDDLEWARES", ProxyBalanceMiddleware, MIDDLEWARE_PRIORITY
        )
        current = settings["SCHEDULER"]
        if not is_proxy_scheduler(_loaded(current)):
            priority = settings.getpriority("SCHEDULER") or 0
            inner_priority = max(priority, settings.getpriority("PROXY_SCHEDULER") or 0)
            settings.set("PROXY_SCHEDULER", current, priority=inner_priority)
            settings.set("SCHEDULER", ProxyScheduler, priority=priority)


def _loaded(value: object) -> object:
    """The class a setting names (``None`` if it cannot be loaded: not ours, then)."""
    if not isinstance(value, str):
        return value
    try:
        return load_object(value)
    except (ImportError, AttributeError, ValueError, NameError):
        return None
