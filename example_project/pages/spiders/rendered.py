"""Renders pages of two sites of the local farm in headless Chromium (scrapy-playwright),
each page through a proxy of the pool, in a browser context of that proxy's own.

Run it with ``make demo-browser`` (it needs ``pip install scrapy-proxybalance[playwright]``
and a Chromium: Debian's ``chromium`` package, or ``playwright install chromium``).
"""

import os
import shutil
from typing import ClassVar

import scrapy

from scrapy_proxybalance.testing.site import PAGES

from .pages import checked

SITES = ("shop-a.test", "shop-b.test")
CHROMIUM = (os.environ.get("CHROMIUM") or shutil.which("chromium-headless-shell") or shutil.which("chromium")
            or shutil.which("chromium-browser"))


class RenderedSpider(scrapy.Spider):
    name = "rendered"
    valid = invalid = 0
    custom_settings: ClassVar[dict] = {
        "DOWNLOAD_HANDLERS": dict.fromkeys(("http", "https"),
                                           "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"),
        "PLAYWRIGHT_BROWSER_TYPE": "chromium",
        # Debian's Chromium; without it, Playwright's own browser (`playwright install chromium`)
        "PLAYWRIGHT_LAUNCH_OPTIONS": {"headless": True, **({"executable_path": CHROMIUM, "args": [
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"]} if CHROMIUM else {})},
        "PLAYWRIGHT_MAX_CONTEXTS": 4,  # browser contexts at once: one per proxy in use
        "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT": 5_000,
        "PROXY_HEALTH_CHECK_URL": None,
        "PROXY_REPORT_FILE": None,
    }

    async def start(self):
        if "FARM_SITE" not in os.environ:
            raise RuntimeError("run this spider through the farm: make demo-browser")
        for site in SITES:
            for n in range(1, PAGES // 2 + 1):
                yield scrapy.Request(f"http://{site}/page/{n}", meta={"playwright": True}, callback=self.parse_page)

    def parse_page(self, response):
        proxy = response.meta["playwright_context_kwargs"]["proxy"]["server"]
        yield {**checked(self, response), "proxy": proxy, "context": response.meta["playwright_context"]}

    def closed(self, reason):
        self.logger.info("rendered: %d of %d pages rendered with a valid token, %d invalid", self.valid,
                         len(SITES) * (PAGES // 2), self.invalid)
