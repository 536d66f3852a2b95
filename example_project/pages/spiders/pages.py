"""Crawls every page of three sites of the local farm and checks each page's token."""

import os

import scrapy

from scrapy_proxybalance.farm import token

SITES = ("shop-a.test", "shop-b.test", "shop-c.test")


class PagesSpider(scrapy.Spider):
    name = "pages"

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
        yield {"url": response.url, "token": found, "valid": found == token(host, path)}
