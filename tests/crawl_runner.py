"""Runs one real crawl for the end-to-end tests, in its own process (a fresh reactor).

``python tests/crawl_runner.py JOB.json``: JOB holds ``settings``, ``requests`` (url, meta,
priority) and ``out``; the runner writes pages, errors, stats and warnings to ``out``.
"""

import json
import sys
import time
import warnings

from scrapy import Request, Spider
from scrapy.crawler import AsyncCrawlerProcess, CrawlerProcess


def main(job_path: str) -> None:
    job = json.load(open(job_path))
    results = {"pages": [], "errors": [], "stats": {}, "warnings": []}
    t0 = time.monotonic()

    class ListSpider(Spider):
        name = "list"

        async def start(self):
            for r in job["requests"]:
                yield Request(r["url"], meta=r.get("meta", {}), priority=r.get("priority", 0),
                              callback=self.parse, errback=self.failed, dont_filter=True)

        def parse(self, response):
            results["pages"].append({
                "url": response.url, "status": response.status, "at": time.monotonic() - t0,
                "text": response.text, "proxy": response.request.meta.get("proxy"),
            })

        def failed(self, failure):
            results["errors"].append({"url": failure.request.url, "type": type(failure.value).__name__,
                                      "message": str(failure.value)})

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reactorless = job["settings"].get("TWISTED_REACTOR_ENABLED") is False
        process = (AsyncCrawlerProcess if reactorless else CrawlerProcess)(settings=job["settings"])
        crawler = process.create_crawler(ListSpider)
        process.crawl(crawler)
        process.start()
    # read after the crawl: every spider_closed handler has written its stats by now
    results["stats"] = {k: v for k, v in crawler.stats.get_stats().items() if isinstance(v, int | float | str)}
    results["warnings"] = [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught]
    json.dump(results, open(job["out"], "w"))


if __name__ == "__main__":
    main(sys.argv[1])
