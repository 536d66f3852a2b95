"""Each download path on its own: what its library's real exceptions mean, and, for the browser,
its bounded contexts."""

import asyncio

import pytest
from scrapy import Request
from scrapy.core.downloader.handlers.http11 import TunnelError
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    ResponseDataLossError,
)
from twisted.internet import error as twisted_error

from scrapy_proxybalance.carriers import Fault, HttpCarrier
from scrapy_proxybalance.carriers.contexts import ContextPool
from scrapy_proxybalance.carriers.playwright import playwright_faults

from .conftest import FakeClock, make_balancer

# -- Scrapy's own handlers (HTTP/1.1 with Twisted; aiohttp and httpx raise Scrapy's unified exceptions)


@pytest.mark.parametrize(("exception", "fault"), [
    (DownloadConnectionRefusedError("refused"), Fault.REFUSED),
    (DownloadTimeoutError("slow"), Fault.TIMEOUT),
    (DownloadFailedError("dropped"), Fault.FAILURE),
    (ResponseDataLossError("cut"), Fault.FAILURE),
    (CannotResolveHostError("proxy.example"), Fault.FAILURE),
    (DownloadCancelledError(), Fault.NOT_PROXY),
    (twisted_error.ConnectionRefusedError(), Fault.REFUSED),
    (twisted_error.TimeoutError(), Fault.TIMEOUT),
    (twisted_error.ConnectionLost(), Fault.FAILURE),
    (TunnelError("Could not open CONNECT tunnel with proxy 10.0.0.1:8000 [{'status': 407}]"), Fault.CREDENTIALS),
    (TunnelError("Could not open CONNECT tunnel with proxy 10.0.0.1:8000 [{'status': 502}]"), Fault.FAILURE),
    (KeyError("a spider's bug"), None),
])
def test_scrapy_s_handlers_faults(exception, fault):
    assert HttpCarrier.faults.fault(exception) is fault


# -- scrapy-playwright (Playwright's own exception classes, as Chromium words them)

@pytest.mark.parametrize(("message", "fault"), [
    ("Page.goto: net::ERR_PROXY_CONNECTION_FAILED at http://shop.test/1\nCall log:", Fault.REFUSED),
    ("Page.goto: net::ERR_TUNNEL_CONNECTION_FAILED at https://shop.test/1", Fault.FAILURE),
    ("Page.goto: net::ERR_EMPTY_RESPONSE at http://shop.test/1", Fault.FAILURE),
    ("Page.goto: net::ERR_INVALID_AUTH_CREDENTIALS at http://shop.test/1", Fault.CREDENTIALS),
    ("Page.goto: net::ERR_HTTP_RESPONSE_CODE_FAILURE at https://shop.test/1", Fault.CREDENTIALS),
    ("Page.goto: net::ERR_ABORTED; maybe frame was detached?", Fault.NOT_PROXY),
    ("Page.evaluate: ReferenceError: x is not defined", Fault.NOT_PROXY),
])
def test_playwright_errors_name_their_fault_in_chromium_s_words(message, fault):
    errors = pytest.importorskip("playwright._impl._errors", reason="the playwright extra")
    from scrapy_proxybalance.carriers.playwright import PlaywrightCarrier

    error = errors.Error(message)
    assert playwright_faults().fault(error) is fault
    assert playwright_faults().fault(errors.TimeoutError("Page.goto: Timeout 30000ms exceeded.")) is Fault.TIMEOUT
    assert playwright_faults().fault(errors.TargetClosedError()) is Fault.NOT_PROXY
    carrier = PlaywrightCarrier.__new__(PlaywrightCarrier)
    assert carrier.reason(errors.Error("Page.goto: net::ERR_PROXY_CONNECTION_FAILED at x")) == \
        "playwright.ERR_PROXY_CONNECTION_FAILED"


# -- the browser's contexts, bounded


class Wrapper:
    def __init__(self, name, handler):
        self.name, self.handler, self.pages, self.closed = name, handler, [], False
        self.context = self

    async def close(self):
        self.closed = True
        self.handler.context_wrappers.pop(self.name, None)


class Handler:
    """Stands for scrapy-playwright's handler: the contexts it opened, by name."""

    def __init__(self):
        self.context_wrappers = {}

    def open(self, name):
        self.context_wrappers[name] = Wrapper(name, self)


def pool_and_leases(n=4, cap=2, **kwargs):
    clock = FakeClock()
    b = make_balancer(clock, [f"http://10.0.0.{i}:8000" for i in range(1, n + 1)])
    handler = Handler()
    return ContextPool(cap, lambda: handler, **kwargs), handler, b


def lease(b, index, site="shop.test", session=None, generation=0):
    from scrapy_proxybalance.core.leases import Ask

    lease = b.lease(b.states[index], Ask(site), b.clock())
    lease.session, lease.generation = session, generation
    return lease


def test_a_context_per_proxy_never_more_than_the_cap_the_least_recently_used_idle_one_closes():
    async def scenario():
        pool, handler, b = pool_and_leases()
        first, second = lease(b, 0), lease(b, 1)
        assert pool.hold(first) == "proxybalance-0" and pool.hold(second) == "proxybalance-1"
        handler.open("proxybalance-0"), handler.open("proxybalance-1")  # their requests reached the browser
        assert pool.open_keys() == {b.states[0].key, b.states[1].key}
        assert pool.hold(lease(b, 2)) is None  # both busy: the request waits
        pool.released(first)
        third = lease(b, 2)
        assert pool.hold(third) == "proxybalance-2"  # the idle one made room
        await asyncio.sleep(0)
        assert "proxybalance-0" not in handler.context_wrappers and len(pool.contexts) == 2
        again = lease(b, 1)
        assert pool.hold(again) == "proxybalance-1"  # its own context, reused
        assert pool.contexts["proxybalance-1"].in_flight == 2

    asyncio.run(scenario())


def test_a_context_with_a_page_the_spider_kept_is_not_closed_under_it():
    async def scenario():
        pool, handler, b = pool_and_leases(cap=1)
        first = lease(b, 0)
        pool.hold(first)
        handler.open("proxybalance-0")
        handler.context_wrappers["proxybalance-0"].pages.append("page")  # playwright_include_page
        pool.released(first)
        assert pool.hold(lease(b, 1)) is None

    asyncio.run(scenario())


def test_an_ejected_proxy_s_context_closes_at_once_if_idle_else_when_its_requests_end():
    async def scenario():
        pool, handler, b = pool_and_leases()
        busy, idle = lease(b, 0), lease(b, 1)
        pool.hold(busy), pool.hold(idle)
        handler.open("proxybalance-0"), handler.open("proxybalance-1")
        pool.released(idle)
        pool.proxy_out(b.states[1].key)
        pool.proxy_out(b.states[0].key)
        await asyncio.sleep(0)
        assert set(handler.context_wrappers) == {"proxybalance-0"}  # in flight: closed after
        pool.released(busy)
        await asyncio.sleep(0)
        assert handler.context_wrappers == {}

    asyncio.run(scenario())


def test_a_context_every_site_of_which_bans_its_proxy_closes():
    async def scenario():
        pool, handler, b = pool_and_leases()
        a, c = lease(b, 0, "a.test"), lease(b, 0, "c.test")
        pool.hold(a), pool.hold(c)
        handler.open("proxybalance-0")
        pool.released(a), pool.released(c)
        pool.banned(b.states[0].key, {"a.test"})
        assert "proxybalance-0" in pool.contexts  # c.test still takes it
        pool.banned(b.states[0].key, {"a.test", "c.test"})
        await asyncio.sleep(0)
        assert handler.context_wrappers == {}

    asyncio.run(scenario())


def test_a_sticky_session_gets_a_context_of_its_own_and_a_fresh_one_when_it_moves():
    pool, _, b = pool_and_leases(cap=4)
    plain, first, moved = lease(b, 0), lease(b, 0, session="s1"), lease(b, 1, session="s1", generation=1)
    names = {pool.hold(plain), pool.hold(first), pool.hold(moved)}
    assert len(names) == 3 and pool.open_keys() == {b.states[0].key}  # a session's context is its own


def test_the_carrier_puts_the_proxy_in_the_context_and_gives_the_request_its_own_options_back():
    pytest.importorskip("scrapy_playwright", reason="the playwright extra")
    from scrapy_proxybalance.carriers.playwright import PlaywrightCarrier

    b = make_balancer(FakeClock(), ["http://user:p%40ss@10.0.0.1:8000"])
    carrier = PlaywrightCarrier.__new__(PlaywrightCarrier)
    carrier.__init__(crawler=type("C", (), {"engine": None, "stats": None})(), schemes=["http"], cap=2,
                     trial_timeout=5, navigation_timeout=30_000)
    request = Request("http://shop.test/1", meta={"playwright": True, "playwright_context_kwargs": {"locale": "fr-FR"}})
    assert carrier.carries(request) and not carrier.own_choice(request)
    leased = lease(b, 0)
    assert carrier.hold(request, leased)
    carrier.attach(request, leased)
    meta = request.meta
    assert "proxy" not in meta and meta["playwright_context"] == "proxybalance-0"
    assert meta["playwright_context_kwargs"] == {"locale": "fr-FR", "proxy": {
        "server": "http://10.0.0.1:8000", "username": "user", "password": "p@ss"}}
    assert meta["playwright_page_goto_kwargs"] == {"timeout": 5000}  # unproven: the trial timeout
    carrier.detach(request)
    assert meta["playwright_context_kwargs"] == {"locale": "fr-FR"} and "playwright_context" not in meta
    assert "playwright_page_goto_kwargs" not in meta and "download_slot" not in meta
    own = Request("http://shop.test/2", meta={"playwright": True, "playwright_context": "mine"})
    assert carrier.own_choice(own)


def test_a_scrapy_playwright_whose_contexts_we_do_not_know_stops_the_crawl_in_one_line(monkeypatch):
    from scrapy.settings import Settings

    from scrapy_proxybalance.carriers import playwright
    from scrapy_proxybalance.core.errors import ConfigError
    from scrapy_proxybalance.environment import check_playwright

    settings = Settings({"DOWNLOAD_HANDLERS": {"https": playwright.HANDLER}})
    monkeypatch.setattr(playwright, "version", lambda name: "0.0.46")
    with pytest.raises(ConfigError) as info:
        check_playwright(settings)
    assert str(info.value) == ("DOWNLOAD_HANDLERS names scrapy-playwright, but scrapy-playwright 0.0.46 is installed;"
                               " scrapy-proxybalance balances browser contexts with scrapy-playwright 0.0.47 to"
                               " 0.0.48 only: pip install 'scrapy-playwright>=0.0.47,<=0.0.48'")
    monkeypatch.setattr(playwright, "version", lambda name: "0.0.48")
    check_playwright(settings)
    check_playwright(Settings())  # no browser: nothing to check


def test_a_socks_password_scrapy_impersonate_cannot_pass_stops_the_crawl_in_one_line():
    from scrapy_proxybalance.carriers import Carriers, HttpCarrier, ImpersonateCarrier
    from scrapy_proxybalance.core.entries import parse_entry
    from scrapy_proxybalance.core.errors import ConfigError
    from scrapy_proxybalance.environment import check_schemes

    carriers = Carriers([ImpersonateCarrier(["http", "https"]), HttpCarrier()])
    check_schemes([parse_entry("socks5h://user:p#ss@10.0.0.1:1080")], carriers)
    with pytest.raises(ConfigError) as info:
        check_schemes([parse_entry("socks5h://user:p:ss@10.0.0.1:1080")], carriers)
    assert str(info.value) == ("PROXY_POOL: socks5h://user:***@10.0.0.1:1080 cannot be used: scrapy-impersonate splits"
                               " a SOCKS login at ':', so its password must not hold one")
    with pytest.raises(ConfigError, match="PROXY_POOL has socks5 proxies"):
        check_schemes([parse_entry("socks5://10.0.0.1:1080")], Carriers([HttpCarrier()]))


# -- Scrapy's aiohttp and httpx handlers wrap their library's errors in Scrapy's own, as below


def test_the_aiohttp_handler_s_errors_wrapped_as_it_wraps_them():
    aiohttp = pytest.importorskip("aiohttp")
    from scrapy_proxybalance.carriers.handlers import AIOHTTP

    def wrapped(scrapy_type, cause):
        try:
            raise scrapy_type(str(cause)) from cause
        except scrapy_type as exc:
            return exc

    key = type("Key", (), {"ssl": None, "host": "10.0.0.1", "port": 8000})()
    refused = aiohttp.ClientProxyConnectionError(key, ConnectionRefusedError(111, "refused"))
    assert AIOHTTP.faults.fault(wrapped(DownloadConnectionRefusedError, refused)) is Fault.REFUSED
    assert AIOHTTP.faults.fault(wrapped(DownloadFailedError, aiohttp.ServerDisconnectedError())) is Fault.FAILURE
    assert AIOHTTP.faults.fault(wrapped(DownloadTimeoutError, TimeoutError())) is Fault.TIMEOUT


def test_the_httpx_handler_says_which_refusal_was_a_login_refused():
    httpx = pytest.importorskip("httpx2", reason="scrapy[httpx]")
    from scrapy_proxybalance.carriers.handlers import HTTPX

    for message, fault in [("All connection attempts failed", Fault.REFUSED),
                           ("407 Proxy Authentication Required", Fault.CREDENTIALS),
                           ("Invalid username/password", Fault.CREDENTIALS),
                           ("Proxy Server could not connect: General SOCKS server failure.", Fault.REFUSED)]:
        try:
            raise DownloadConnectionRefusedError(message) from httpx.ProxyError(message)
        except DownloadConnectionRefusedError as exc:
            assert HTTPX.faults.fault(exc) is fault, message
    assert "socks5" in HTTPX.schemes and "socks4" not in HTTPX.schemes


# -- scrapy-impersonate: curl_cffi's errors as they are, by curl error code


@pytest.mark.parametrize(("kind", "code", "message", "fault"), [
    ("ConnectionError", 7, "Failed to connect to 10.0.0.1 port 8000 after 0 ms: Could not connect to server", Fault.REFUSED),
    ("ConnectionError", 7, "CONNECT tunnel failed, response 407", Fault.CREDENTIALS),
    ("Timeout", 28, "Operation timed out after 30001 milliseconds", Fault.TIMEOUT),
    ("ConnectionError", 52, "Empty reply from server", Fault.FAILURE),
    ("ProxyError", 56, "Proxy CONNECT aborted", Fault.FAILURE),
    ("ProxyError", 97, "Failed to receive SOCKS response, proxy closed connection", Fault.FAILURE),
    ("ProxyError", 97, "User was rejected by the SOCKS5 server (1 2).", Fault.CREDENTIALS),
    ("DNSError", 6, "Could not resolve host: shop.invalid", Fault.NOT_PROXY),
    ("IncompleteRead", 18, "transfer closed with 100 bytes remaining to read", Fault.FAILURE),
])
def test_curl_cffi_s_errors_read_by_their_curl_code(kind, code, message, fault):
    errors = pytest.importorskip("curl_cffi.requests.exceptions", reason="scrapy-impersonate (curl_cffi)")
    from scrapy_proxybalance.carriers import ImpersonateCarrier

    error = getattr(errors, kind)(message, code)
    carrier = ImpersonateCarrier(["https"])
    assert carrier.fault(Request("https://shop.test/"), error) is fault
