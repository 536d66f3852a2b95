"""Crawls every page of three sites of the local farm and checks each page's token."""

import os

import scrapy

from scrapy_proxybalance.testing.site import PAGES, token

SITES = ("shop-a.test", "shop-b.test", "shop-c.test")


class PagesSpider(scrapy.Spider):
    name = "pages"
    valid = invalid = 0

    async def start(self):
        if "FARM_SITE" not in os.environ:
            raise RuntimeError("run this spider through the farm: make demo")
        for site in SITES:
            yield scrapy.Request(f"http://{site}/", callback=self.parse_index)

    def parse_index(self, response):
        for href in response.css("a::attr(href)").getall():
            yield response.follow(href, callback=self.parse_page)

    def parse_page(self, response):
        host = response.url.split("/")[2]
        path = "/" + response.url.split("/", 3)[3]
        found = response.css("p.token::text").get()
        ok = found == token(host, path)
        self.valid += ok
        self.invalid += not ok
        yield {"url": response.url, "token": found, "valid": ok}

    def closed(self, reason):
        expected = len(SITES) * PAGES
        self.logger.info(
            "pages: %d of %d pages fetched with a valid token, %d invalid", self.valid, expected, self.invalid
        )
