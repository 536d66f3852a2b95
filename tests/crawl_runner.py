"""Runs one real crawl for the end-to-end tests, in its own process (a fresh reactor).

``python tests/crawl_runner.py JOB.json``: JOB holds ``settings``, ``requests`` and ``out``;
the runner writes pages, errors, stats and warnings to ``out``. A request is a dict: ``url``,
and optionally ``meta``, ``priority``, ``dont_filter`` (default True) and ``then``, requests
its callback yields once it has the page. With ``linger``, the crawl stays open that many
seconds after its last page; with ``open_until`` (a file's path), idle, until that file exists.
"""

import json
import os
import sys
import time
import warnings

if os.environ.get("CLOCK_SKEW"):  # a machine whose clocks are off: every clock of this process is
    _skew = float(os.environ["CLOCK_SKEW"])
    _monotonic, _time = time.monotonic, time.time
    time.monotonic = lambda: _monotonic() + _skew
    time.time = lambda: _time() + _skew

from scrapy import Request, Spider, signals
from scrapy.crawler import AsyncCrawlerProcess, CrawlerProcess
from scrapy.exceptions import DontCloseSpider


def main(job_path: str) -> None:
    with open(job_path) as f:
        job = json.load(f)
    results = {"pages": [], "errors": [], "stats": {}, "warnings": []}
    t0 = time.monotonic()

    def request(r, spider):
        return Request(r["url"], meta=r.get("meta", {}), priority=r.get("priority", 0),
                       callback=spider.parse, errback=spider.failed, dont_filter=r.get("dont_filter", True),
                       cb_kwargs={"then": r.get("then", [])})

    class ListSpider(Spider):
        name = job.get("spider", "list")

        @classmethod
        def from_crawler(cls, crawler, *args, **kwargs):
            spider = super().from_crawler(crawler, *args, **kwargs)
            if job.get("open_until"):
                crawler.signals.connect(spider.idle, signal=signals.spider_idle)
            return spider

        def idle(self):
            if not os.path.exists(job["open_until"]):
                raise DontCloseSpider

        async def start(self):
            for r in job["requests"]:
                yield request(r, self)

        def parse(self, response, then):
            context = response.meta.get("playwright_context_kwargs") or {}
            results["pages"].append({
                "url": response.url, "status": response.status, "at": time.monotonic() - t0,
                "text": response.text, "proxy": response.request.meta.get("proxy"),
                "meta": {k: v for k, v in response.meta.items() if isinstance(v, int | float | str | bool)},
                "server": context.get("proxy", {}).get("server"),  # a rendered page's proxy
            })
            for r in then:
                yield request(r, self)

        def failed(self, failure):
            results["errors"].append({"url": failure.request.url, "type": type(failure.value).__name__,
                                      "message": str(failure.value)})

    class LingeringSpider(ListSpider):
        """Stays open ``linger`` seconds after its last page, while nothing changes any more
        (the status server's tests read it then)."""

        async def parse(self, response, then):
            for r in ListSpider.parse(self, response, then):
                yield r
            if len(results["pages"]) == len(job["requests"]):
                from scrapy.utils.asyncio import sleep

                await sleep(job["linger"])

    class SessionSpider(Spider):
        """Logs in ``sessions`` sessions at ``host`` and fetches ``pages`` account pages each,
        logging in again only when told its session moved."""

        name = "sessions"
        handle_httpstatus_list = (403,)  # a site's "log in again" comes to the callback

        async def start(self):
            conf = job["sessions"]
            results.update(logins=[], moved=[], refused=[])
            for i in range(conf["sessions"]):
                urls = [f"http://{conf['host']}/account/s{i}/{n}" for n in range(conf["pages"])]
                yield self.login(f"s{i}", urls)

        def login(self, session, then):
            return Request(f"http://{job['sessions']['host']}/login?{session}-{len(results['logins'])}",
                           meta={"proxy_session": session}, callback=self.logged_in, errback=self.failed,
                           cb_kwargs={"then": then}, dont_filter=True)

        def logged_in(self, response, then):
            session = response.meta["proxy_session"]
            results["logins"].append(session)
            if "proxy_session_moved" in response.meta:
                results["moved"].append([session, response.meta["proxy_session_moved"], response.url])
            for url in then:
                yield Request(url, meta={"proxy_session": session}, callback=self.page, errback=self.failed,
                              dont_filter=True)  # a page fetched again after a new login

        def page(self, response):
            session = response.meta["proxy_session"]
            moved = response.meta.get("proxy_session_moved")
            if moved:
                results["moved"].append([session, moved, response.url])
            if response.status == 403:
                if not moved:
                    results["refused"].append(response.url)  # a mystery 403: must never happen
                    return
                yield self.login(session, [response.url])  # its proxy went: log in again, then this page
                return
            results["pages"].append({"url": response.url, "status": response.status, "text": response.text,
                                     "session": session, "proxy": response.meta.get("proxy")})

        def failed(self, failure):
            results["errors"].append({"url": failure.request.url, "type": type(failure.value).__name__,
                                      "message": str(failure.value)})

    if job.get("open_until"):  # idle, it looks at its queue (shared: others fill it) and the file 4 times a second
        from scrapy.core.engine import ExecutionEngine

        ExecutionEngine._SLOT_HEARTBEAT_INTERVAL = 0.25
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reactorless = job["settings"].get("TWISTED_REACTOR_ENABLED") is False
        process = (AsyncCrawlerProcess if reactorless else CrawlerProcess)(settings=job["settings"])
        spider_class = LingeringSpider if job.get("linger") else ListSpider
        crawler = process.create_crawler(SessionSpider if job.get("spider") == "sessions" else spider_class)
        process.crawl(crawler)
        process.start()
    # read after the crawl: every spider_closed handler has written its stats by now
    results["stats"] = {k: v for k, v in crawler.stats.get_stats().items() if isinstance(v, int | float | str)}
    results["warnings"] = [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught]
    results["exit_failed"] = process.bootstrap_failed
    with open(job["out"], "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(sys.argv[1])
