"""The adapter's parts on their own, each built from settings and collaborators, no crawler:
admission, the ledger, the HTTP carrier, sending, the answers and their retries, pool control."""

import pytest
from scrapy import Request
from scrapy.exceptions import DownloadConnectionRefusedError, DownloadTimeoutError
from scrapy.http import HtmlResponse
from scrapy.settings import Settings
from twisted.internet.error import ConnectionRefusedError as TwistedRefused

from scrapy_proxybalance.admission import Admission
from scrapy_proxybalance.answers import Answers
from scrapy_proxybalance.carriers import Carriers, Fault, HttpCarrier, SplashCarrier, ZyteApiCarrier
from scrapy_proxybalance.config import Config
from scrapy_proxybalance.core.errors import NoProxyAvailable
from scrapy_proxybalance.core.leases import Lease, Wait
from scrapy_proxybalance.core.outcomes import BanPolicy, Outcome
from scrapy_proxybalance.ledger import Ledger
from scrapy_proxybalance.meta import FAIL, LEASE, OUR_PROXY, TRIED
from scrapy_proxybalance.policy import BanDetected, SpiderPolicy
from scrapy_proxybalance.pool_control import PoolControl
from scrapy_proxybalance.sending import Sending
from scrapy_proxybalance.stores.memory import MemoryStore

from .conftest import FakeClock, make_balancer

A, B, C = "http://10.0.0.1:8000", "http://u:secret@10.0.0.2:8000", "http://10.0.0.3:8000"


class Stats:
    def __init__(self):
        self.values = {}

    def inc_value(self, key, count=1, start=0):
        self.values[key] = self.values.get(key, start) + count

    def set_value(self, key, value):
        self.values[key] = value

    def max_value(self, key, value):
        self.values[key] = max(self.values.get(key, value), value)

    def get_value(self, key, default=None):
        return self.values.get(key, default)


class Parts:
    """The adapter's parts over a balancer on a fake clock."""

    def __init__(self, entries=(A, B), **settings):
        values = {"PROXY_POOL": list(entries), "PROXY_DOMAIN_COOLDOWN": 0, "PROXY_TRIAL_TIMEOUT": 5, **settings}
        self.settings = Settings(values)
        self.config = Config.from_settings(self.settings)
        self.clock = FakeClock()
        self.store = MemoryStore()
        self.balancer = make_balancer(self.clock, list(entries), store=self.store, unavailable_timeout=600.0)
        self.stats = Stats()
        self.ledger = Ledger(self.balancer, self.stats)
        self.carriers = Carriers([ZyteApiCarrier(), SplashCarrier(),
                                  HttpCarrier(self.config.trial_timeout, 180.0, frozenset())])
        self.closed: list[str] = []
        self.admission = Admission(self.config, self.balancer, self.ledger, self.carriers, self.stats, self.store,
                                   self.closed.append)
        self.sending = Sending(self.carriers, self.stats)
        policy = BanPolicy(failures=self.carriers.proxy_fault_types())
        self.answers = Answers(self.config, self.balancer, self.ledger, self.carriers, self.stats,
                               SpiderPolicy(policy, None, None, self.config))
        self.answers.spider = FakeSpider(self.settings, self.stats)

    def send(self, request):
        """Admit ``request`` and send it, as the scheduler and the middleware would."""
        assert self.admission.admit(request) is None
        lease = self.admission.still_held(request)
        self.sending.send(request, lease)
        return lease


class FakeSpider:
    def __init__(self, settings, stats):
        self.crawler = type("Crawler", (), {"settings": settings, "stats": stats})()


def proxy_of(request):
    return request.meta["proxy"].replace("u:secret@", "")


# -- admission ------------------------------------------------------------------------

def test_a_request_leaves_the_scheduler_with_a_lease_held_in_its_meta():
    parts = Parts()
    request = Request("http://shop.test/1")
    assert parts.admission.admit(request) is None
    lease = parts.ledger.held(request)
    assert isinstance(lease, Lease) and request.meta[LEASE] == (parts.ledger.token, lease.number)
    assert parts.admission.wait_key(Request("http://shop.test/2")) == ("shop.test", None, (), None, None)


def test_a_proxy_the_request_chose_itself_or_none_is_left_alone():
    parts = Parts()
    own = Request("http://shop.test/1", meta={"proxy": "http://mine:1"})
    direct = Request("http://shop.test/2", meta={"dont_proxy": True})
    zyte = Request("http://shop.test/3", meta={"zyte_api_automap": True})
    for request in (own, direct, zyte):
        assert parts.admission.wait_key(request) is None and parts.admission.admit(request) is None
        assert LEASE not in request.meta
    assert own.meta["proxy"] == "http://mine:1" and direct.meta["proxy"] is None and "proxy" not in zyte.meta


def test_a_request_queued_again_carries_nothing_of_its_last_proxy():
    parts = Parts(entries=(B,))
    request = Request("http://shop.test/1")
    parts.send(request)
    request.headers[b"Proxy-Authorization"] = b"Basic dTpzZWNyZXQ="  # as HttpProxyMiddleware sets it
    parts.admission.forget(request)
    assert "proxy" not in request.meta and OUR_PROXY not in request.meta and LEASE not in request.meta
    assert b"Proxy-Authorization" not in request.headers and "download_slot" not in request.meta
    assert parts.balancer.states[0].in_flight == 0  # its lease was given back unused


def test_a_lease_whose_proxy_left_before_the_request_was_sent_is_taken_anew():
    parts = Parts()
    request = Request("http://shop.test/1")
    parts.admission.admit(request)
    lease = parts.ledger.held(request)
    parts.balancer.disable(lease.state.key)
    assert parts.admission.still_held(request) is None and lease.released
    again = parts.admission.lease_now(request)
    assert isinstance(again, Lease) and again.state is not lease.state


def test_when_no_proxy_can_serve_a_site_for_the_unavailable_timeout_it_fails_or_closes_the_spider():
    for action in ("fail", "close"):
        parts = Parts(entries=(A,), PROXY_UNAVAILABLE_ACTION=action)
        parts.balancer.disable(parts.balancer.states[0].key)  # only disabled proxies: the site waits
        request = Request("http://shop.test/1")
        assert isinstance(parts.admission.admit(request), Wait)
        for _ in range(121):  # it keeps looking, every few seconds, for 600 s
            parts.clock.advance(5)
            result = parts.admission.admit(request)
        if action == "fail":
            assert result is None and "PROXY_UNAVAILABLE_TIMEOUT" in request.meta[FAIL]
            with pytest.raises(NoProxyAvailable, match="PROXY_UNAVAILABLE_TIMEOUT"):
                parts.admission.fail(request, request.meta.pop(FAIL))
            assert parts.stats.values["proxybalance/no_proxy"] == 1
        else:
            assert isinstance(result, Wait) and parts.closed == ["proxies_unavailable"]
            parts.admission.admit(request)
            assert parts.closed == ["proxies_unavailable"]  # once


def test_a_request_of_a_sticky_session_notes_its_binding_when_queued():
    parts = Parts()
    request = Request("http://shop.test/1", meta={"proxy_session": "s1"})
    parts.admission.queued(request)
    assert request.meta["_proxybalance_session"] == 0
    lease = parts.send(request)
    assert lease.session == "s1" and request.meta["cookiejar"] == "s1"


# -- the ledger -----------------------------------------------------------------------

def test_the_ledger_finds_only_its_own_process_s_leases_and_counts_outcomes():
    parts = Parts()
    request = Request("http://shop.test/1")
    parts.admission.admit(request)
    stranger = request.copy()
    stranger.meta[LEASE] = ("another-process", request.meta[LEASE][1])
    assert parts.ledger.pop(stranger) is None and LEASE not in stranger.meta
    served = []
    parts.ledger.on_success.append(served.append)
    lease = parts.ledger.pop(request)
    assert parts.ledger.release(lease, Outcome.BAN) is Outcome.BAN
    assert parts.stats.values["proxybalance/bans"] == 1 and served == []
    request2 = Request("http://shop.test/2")
    parts.admission.admit(request2)
    lease2 = parts.ledger.pop(request2)
    parts.ledger.release(lease2, Outcome.SUCCESS)
    assert served == [lease2]


# -- the HTTP carrier -----------------------------------------------------------------

def test_the_http_carrier_puts_the_proxy_and_a_slot_per_site_and_proxy_on_the_request_and_takes_them_off():
    parts = Parts(entries=(B,))
    request = Request("http://shop.test/1", meta={"download_timeout": 180.0})
    lease = parts.send(request)
    meta = request.meta
    assert meta["proxy"] == "http://u:secret@10.0.0.2:8000" and meta[OUR_PROXY] == "http://10.0.0.2:8000"
    assert meta["download_slot"] == f"shop.test|{lease.state.id}"
    assert meta["download_timeout"] == 5  # an unproven proxy: the trial timeout
    parts.carriers.of(request).detach(request)
    assert "proxy" not in meta and "download_slot" not in meta and meta["download_timeout"] == 180.0


def test_a_site_download_slots_configures_keeps_scrapy_s_slot():
    carrier = HttpCarrier(own_slots=frozenset({"shop.test"}))
    parts = Parts()
    request = Request("http://shop.test/1")
    parts.admission.admit(request)
    carrier.attach(request, parts.ledger.held(request))
    assert "download_slot" not in request.meta


def test_the_http_carrier_reads_scrapy_s_and_twisted_s_exceptions():
    faults = HttpCarrier.faults
    assert faults.fault(DownloadConnectionRefusedError()) is Fault.REFUSED
    assert faults.fault(DownloadTimeoutError()) is Fault.TIMEOUT
    assert faults.fault(TwistedRefused()) is Fault.REFUSED
    assert faults.fault(ValueError()) is None  # unknown
    assert ZyteApiCarrier().carries(Request("http://x.test", meta={"zyte_api": {"browserHtml": True}}))
    assert ZyteApiCarrier(transparent=True).carries(Request("http://x.test"))
    assert not ZyteApiCarrier(transparent=True).carries(Request("http://x.test", meta={"zyte_api_automap": False}))


# -- answers and retries --------------------------------------------------------------

def test_a_banned_request_is_retried_on_another_proxy_by_scrapy_s_get_retry_request():
    parts = Parts()
    request = Request("http://shop.test/1", priority=5)
    parts.send(request)
    retry = parts.answers.on_response(request, HtmlResponse(request.url, status=403, request=request))
    assert isinstance(retry, Request) and retry is not request and retry.dont_filter
    assert (retry.meta["proxy_retry_times"] == 1 and retry.meta[TRIED] == [parts.balancer.states[0].key]) \
        or retry.meta[TRIED] == [parts.balancer.states[1].key]
    assert "retry_times" not in retry.meta  # RetryMiddleware's own count is untouched
    assert retry.priority == 5 + parts.settings.getint("RETRY_PRIORITY_ADJUST")
    assert parts.stats.values["proxybalance/retry/count"] == 1
    assert parts.stats.values["proxybalance/retry/reason_count/403 Forbidden"] == 1


def test_a_request_s_own_retry_budget_in_meta_overrides_proxy_retry_times():
    parts = Parts(entries=(A, B, C), PROXY_RETRY_TIMES=5)
    request = Request("http://shop.test/1", meta={"proxy_max_retry_times": 0, "retry_times": 1})
    parts.send(request)
    page = HtmlResponse(request.url, status=200, body=b"<p>captcha</p>", request=request)
    policy = BanPolicy(body_patterns=["captcha"])
    parts.answers.policy = SpiderPolicy(policy, None, None, parts.config)
    last_try = parts.answers.on_response(request, page)  # out of budget: one last try, a second later
    assert last_try.meta["_proxybalance_last_try"] and last_try.meta["_proxybalance_wait"] == (1.0, False)
    parts.send(last_try)
    page = HtmlResponse(request.url, status=200, body=b"<p>captcha</p>", request=last_try)
    with pytest.raises(BanDetected):  # a ban page never reaches the callback
        parts.answers.on_response(last_try, page)
    assert last_try.meta["dont_retry"] and last_try.meta["retry_times"] == 1
    assert parts.stats.values["proxybalance/retry/max_reached"] == 1


def test_an_exception_no_download_path_knows_is_counted_and_charged_to_nobody():
    parts = Parts()
    request = Request("http://shop.test/1")
    lease = parts.send(request)
    assert parts.answers.on_exception(request, KeyError("odd")) is None
    assert parts.stats.values["proxybalance/exceptions/unknown/builtins.KeyError"] == 1
    assert lease.state.metrics.failures == 0
    request2 = Request("http://shop.test/2")
    lease2 = parts.send(request2)
    retry = parts.answers.on_exception(request2, DownloadConnectionRefusedError())
    assert isinstance(retry, Request) and lease2.state.metrics.failures == 1


# -- pool control ---------------------------------------------------------------------

def test_pool_control_changes_the_pool_and_tells_other_processes():
    parts = Parts()
    woken, shared = [], []
    parts.store.share_pool_change = lambda action, value: shared.append((action, value))
    pool = PoolControl(parts.config, parts.balancer, parts.store, parts.stats, lambda: woken.append(1))
    pool.add_proxy({"url": C, "name": "third"})
    pool.remove_proxy("http://u@10.0.0.2:8000")
    assert [p["name"] for p in pool.proxies()] == [None, "third"] and woken == [1]
    assert shared[0][0] == "add" and shared[1] == ("remove", "http://u@10.0.0.2:8000")
    assert "secret" not in repr(pool.proxies())
    pool.changed_elsewhere("add", '{"url": "http://10.0.0.9:1"}')  # another process's change arrives
    assert "http://10.0.0.9:1" in parts.balancer.by_key
    row = pool.status_action(0, "disable")
    assert row["state"] == "disabled" and pool.status_action(99, "disable") is None


@pytest.mark.parametrize("headers", [{}, {"A": "b"}, {"Content-Type": "text/html", "Set-Cookie": ["a=1", "b=22"]},
                                     {"X-Raw": b"\xff\xfe", "Empty": ""}])
def test_a_requests_bytes_are_counted_as_scrapys_downloader_stats_count_them(headers):
    from scrapy.downloadermiddlewares.stats import get_header_size
    from scrapy.http import Headers

    from scrapy_proxybalance.answers import header_size

    assert header_size(Headers(headers)) == get_header_size(Headers(headers))


def test_a_bad_price_tier_in_meta_fails_the_request_with_its_reason_not_the_scheduler():
    parts = Parts()
    request = Request("http://shop.test/1", meta={"proxy_tier": "cheap"})
    assert parts.admission.ask(request) is None and parts.admission.wait_key(request) is None
    assert "meta['proxy_tier'] must be a price tier" in request.meta[FAIL]
