"""/status.json and /metrics of a large pool: right totals, the rows most worth a look, bounded answers."""

import time

import pytest
from scrapy import Spider
from scrapy.utils.test import get_crawler

from scrapy_proxybalance.addon import Addon
from scrapy_proxybalance.core.balancer import Ask
from scrapy_proxybalance.core.outcomes import Outcome
from scrapy_proxybalance.middleware import ProxyBalanceMiddleware
from scrapy_proxybalance.status.view import MAX_PROXY_ROWS, MAX_SITE_ROWS, View

N = 2000


class Quiet(Spider):
    name = "view"


@pytest.fixture
def crawl():
    pool = [f"http://10.0.{i >> 8}.{i & 255}:8000" for i in range(N)]
    crawler = get_crawler(Quiet, {"ADDONS": {Addon: 0}, "PROXY_POOL": pool, "PROXY_STATUS_ADDRESS": "127.0.0.1:0",
                                  "PROXY_DOMAIN_COOLDOWN": 0, "PROXY_MAX_FAILURES": 1})
    middleware = ProxyBalanceMiddleware.from_crawler(crawler)
    crawler.spider = Quiet.from_crawler(crawler)
    return middleware.crawl


def test_a_large_pool_s_view_counts_every_proxy_and_lists_the_ones_worth_a_look(crawl):
    b, recorder = crawl.balancer, crawl.recorder
    states = b.states
    for i in range(N):  # a site each; the last proxies are the busiest
        lease = b.lease(states[i], Ask(f"site-{i}.test"), b.clock())
        b.release(lease, Outcome.SUCCESS, 0.1)
        recorder.sent(lease.site, lease.state.key)
        recorder.answered(lease.state.key, lease.site, "success", time.time())
    ejected = [b.release(b.lease(states[i], Ask("x.test"), b.clock()), Outcome.FAILURE) for i in (10, 20)]
    banned = b.release(b.lease(states[30], Ask("y.test"), b.clock()), Outcome.BAN)
    crawl.pool.disable_proxy(str(states[40].proxy))
    in_flight = b.lease(states[1500], Ask("z.test"), b.clock())
    assert ejected and banned and in_flight
    view = View(crawl)
    assert view.pool["total"] == N and view.pool["in_flight"] == 1 and view.pool["banned"] == 1
    assert {s: view.pool[s] for s in ("healthy", "trial", "ejected", "disabled")} == \
        {s: b.state_counts()[s] for s in ("healthy", "trial", "ejected", "disabled")}
    status = view.status()
    rows = status["proxies"]
    assert len(rows) == MAX_PROXY_ROWS == status["proxies_shown"]
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids)  # pool order
    assert {states[i].id for i in (10, 20, 30, 40)} <= set(ids)  # out and banned first
    assert states[1500].id in ids  # then what is in flight
    assert len(status["sites"]) == MAX_SITE_ROWS
    assert len(view.report("finished")["proxies"]) == N  # the report: every proxy


def test_per_proxy_and_per_site_metrics_are_bounded_to_the_rows_the_page_lists(crawl):
    pytest.importorskip("prometheus_client")
    from scrapy_proxybalance.status.metrics import PoolCollector, exposition

    b, recorder = crawl.balancer, crawl.recorder
    for i in range(N):
        lease = b.acquire(Ask(f"site-{i}.test"))
        b.release(lease, Outcome.SUCCESS, 0.1)
        recorder.answered(lease.state.key, lease.site, "success", time.time())
    body = exposition(PoolCollector(lambda: View(crawl), True, True))[0].decode()
    proxies = {line.split('proxy="')[1].split('"')[0] for line in body.splitlines()
               if line.startswith("proxybalance_proxy_in_flight{")}
    sites = {line.split('site="')[1].split('"')[0] for line in body.splitlines()
             if line.startswith("proxybalance_site_waiting_requests{")}
    assert len(proxies) == MAX_PROXY_ROWS and len(sites) == MAX_SITE_ROWS
