"""The middleware on its own (no crawl): run-time pool API, timeouts, spider ban overrides."""

import pytest
from scrapy import Request, Spider
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from scrapy_proxybalance import Addon, NoProxyAvailable, ProxyBalanceMiddleware, UnknownProxy

from .strategy_plugin import StrictPolicy

A, B, C = "http://10.0.0.1:8000", "http://u:secret@10.0.0.2:8000", "http://10.0.0.3:8000"


class QuietSpider(Spider):
    name = "quiet"


def run(coroutine):
    """Run one of the middleware's coroutines (they await nothing) and return its result."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the middleware awaited something")


def middleware(spider_cls=QuietSpider, **settings):
    crawler = get_crawler(spider_cls, {"ADDONS": {Addon: 0}, "PROXY_POOL": [A, B], "PROXY_DOMAIN_COOLDOWN": 0,
                                       "PROXY_STATS_INTERVAL": 0, **settings})
    mw = ProxyBalanceMiddleware.from_crawler(crawler)
    crawler.spider = spider_cls.from_crawler(crawler)
    run(mw.lifecycle.opened())
    return mw


def fetch(mw, url="http://shop.test/", body=b"<p>ok</p>", status=200):
    """One attempt through the middleware; returns (request, what process_response gave)."""
    request = Request(url, meta={"download_timeout": 180.0})
    assert run(mw.process_request(request)) is None
    response = HtmlResponse(url, status=status, body=body, request=request)
    return request, run(mw.process_response(request, response))


def proxy_of(request):
    return request.meta["proxy"].replace("u:secret@", "")


def test_the_pool_can_be_changed_while_the_crawl_runs():
    mw = middleware()
    mw.pool.disable_proxy(A)
    assert {proxy_of(fetch(mw, f"http://s{i}.test/")[0]) for i in range(10)} == {"http://10.0.0.2:8000"}
    mw.pool.enable_proxy(A)
    mw.pool.add_proxy({"url": C, "weight": 2})
    mw.pool.remove_proxy("http://u@10.0.0.2:8000")  # the password is not needed to name it
    used = {proxy_of(fetch(mw, f"http://t{i}.test/")[0]) for i in range(40)}
    assert used == {A, C}
    listed = mw.pool.proxies()
    assert [p["proxy"] for p in listed] == [A, C] and listed[0]["requests"] >= 1
    assert "secret" not in repr(listed)
    with pytest.raises(UnknownProxy):
        mw.pool.disable_proxy("http://10.9.9.9:1")
    mw.pool.remove_proxy(A)
    mw.pool.remove_proxy(C)
    with pytest.raises(NoProxyAvailable):
        fetch(mw)


def test_an_unproven_proxy_gets_the_trial_timeout_and_a_proven_one_the_request_s_own():
    mw = middleware(PROXY_POOL=[A], PROXY_TRIAL_TIMEOUT=5)
    first, _ = fetch(mw)
    assert first.meta["download_timeout"] == 5
    retried = first.copy()  # carries the lowered timeout; now the proxy has proved itself
    run(mw.process_request(retried))
    assert retried.meta["download_timeout"] == 180.0


class PickySpider(QuietSpider):
    def response_is_ban(self, request, response):
        return b"blocked" in response.body or None


def test_a_spider_can_say_what_a_ban_is():
    mw = middleware(PickySpider)
    request, result = fetch(mw, body=b"<p>blocked</p>")
    assert isinstance(result, Request) and result.meta["proxy_retry_times"] == 1
    assert run(mw.process_request(result)) is None
    assert proxy_of(result) != proxy_of(request)  # retried on the other proxy
    fine = HtmlResponse(result.url, body=b"<p>ok</p>", request=result)
    assert run(mw.process_response(result, fine)) is fine
    assert mw.crawl.stats.get_value("proxybalance/bans") == 1


def test_a_project_ban_policy_by_dotted_path():
    mw = middleware(PROXY_BAN_POLICY="tests.strategy_plugin.StrictPolicy", PROXY_RETRY_TIMES=0)
    fetch(mw, status=502)
    assert mw.crawl.stats.get_value("proxybalance/failures") == 1


class OwnPolicySpider(QuietSpider):
    proxy_ban_policy = StrictPolicy

    def exception_is_ban(self, request, exception):
        return isinstance(exception, ValueError) or None


def test_a_spider_can_bring_its_own_policy_and_call_exceptions_bans():
    mw = middleware(OwnPolicySpider, PROXY_RETRY_TIMES=0)
    fetch(mw, status=502)  # StrictPolicy, from the spider: a 502 is the proxy's failure
    assert mw.crawl.stats.get_value("proxybalance/failures") == 1
    request = Request("http://shop.test/x")
    run(mw.process_request(request))
    run(mw.process_exception(request, ValueError("odd")))
    assert mw.crawl.stats.get_value("proxybalance/bans") == 1


def test_a_lease_is_checked_when_the_request_is_sent_and_taken_anew_if_the_proxy_left():
    mw = middleware()
    request = Request("http://shop.test/page/1")
    assert mw.admission.admit(request) is None  # leased as it left the scheduler
    leased = mw.crawl.ledger.held(request)
    mw.crawl.balancer.disable(leased.state.key)  # the proxy is taken out before the request is sent
    assert run(mw.process_request(request)) is None
    assert proxy_of(request) != leased.proxy.url.replace("u:secret@", "")
    assert leased.released and leased.state.in_flight == 0
