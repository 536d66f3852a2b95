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
        yield checked(self, response)

    def closed(self, reason):
        expected = len(SITES) * PAGES
        self.logger.info(
            "pages: %d of %d pages fetched with a valid token, %d invalid", self.valid, expected, self.invalid
        )


def checked(spider, response):
    """The page's item: its token, and whether it is the one the farm's site put there (counted
    on ``spider``)."""
    host = response.url.split("/")[2]
    path = "/" + response.url.split("/", 3)[3]
    found = response.css("p.token::text").get()
    ok = found == token(host, path)
    spider.valid += ok
    spider.invalid += not ok
    return {"url": response.url, "token": found, "valid": ok}
