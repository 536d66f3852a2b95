"""``ADDONS = {"scrapy_proxybalance.Addon": 0}`` enables the middleware in its place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .middleware import ProxyBalanceMiddleware

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

MIDDLEWARE_PRIORITY = 610  # after RetryMiddleware (550), before HttpProxyMiddleware (750)


class Addon:
    """Adds :class:`ProxyBalanceMiddleware` to ``DOWNLOADER_MIDDLEWARES`` unless the
    project already placed it; changes no other setting."""

    def update_settings(self, settings: BaseSettings) -> None:
        settings.setdefault_in_component_priority_dict(
            "DOWNLOADER_MIDDLEWARES", ProxyBalanceMiddleware, MIDDLEWARE_PRIORITY
        )
