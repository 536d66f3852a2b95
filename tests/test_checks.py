"""Active health checks: the verdict on one check, and the settings."""

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse
from scrapy.settings import Settings

from scrapy_proxybalance.checks.probe import check_request, find_ip, judge
from scrapy_proxybalance.config import HealthCheck
from scrapy_proxybalance.core.entries import parse_entry
from scrapy_proxybalance.core.errors import ConfigError

PROXY = parse_entry("http://u:secret@10.0.0.1:8000")


def health_check(**values):
    return HealthCheck.from_settings(Settings(values))


def answer(request, status=200, body=b'{"origin": "203.0.113.7"}'):
    return HtmlResponse(request.url, status=status, body=body, request=request)


def test_a_check_request_goes_through_that_proxy_alone():
    check = health_check(PROXY_HEALTH_CHECK_URL="http://echo.test/ip", PROXY_HEALTH_CHECK_TIMEOUT=3)
    request = check_request(PROXY, check)
    assert isinstance(request, Request) and request.url == "http://echo.test/ip"
    assert request.meta["proxy"] == PROXY.url and request.meta["download_timeout"] == 3
    assert request.meta["dont_retry"] and request.meta["dont_redirect"] and request.meta["handle_httpstatus_all"]


def test_the_verdict_on_status_body_and_errors():
    check = health_check(PROXY_HEALTH_CHECK_URL="http://echo.test/ip", PROXY_HEALTH_CHECK_BODY='"origin"')
    request = check_request(PROXY, check)
    good = judge(PROXY, check, request, answer(request))
    assert good.ok and good.status == 200 and good.exit_ip == "203.0.113.7" and good.latency >= 0
    assert judge(PROXY, check, request, answer(request, 502)).error == "status 502"
    portal = judge(PROXY, check, request, answer(request, body=b"<h1>Hotel Wi-Fi</h1>"))
    assert not portal.ok and portal.error == "body does not match '\"origin\"'"
    refused = judge(PROXY, check, request, error=ConnectionRefusedError())
    assert not refused.ok and refused.error == "ConnectionRefusedError"
    assert "secret" not in repr(good.as_dict())


def test_find_ip_reads_the_usual_echo_services():
    assert find_ip(b'{"origin": "198.51.100.2, 10.0.0.1"}') == "198.51.100.2"  # httpbin behind a proxy chain
    assert find_ip(b'{"ip":"2001:db8::1"}') == "2001:db8::1"  # ipify
    assert find_ip(b"Your IP is 192.0.2.44\n") == "192.0.2.44"
    assert find_ip(b"<html>no address here</html>") is None


def test_health_check_settings():
    assert health_check() is None  # off unless a URL is set
    check = health_check(PROXY_HEALTH_CHECK_URL="https://echo.test/ip", PROXY_HEALTH_CHECK_STATUS="200,204",
                         PROXY_HEALTH_CHECK_RISE=2)
    assert check.statuses == {200, 204} and (check.rise, check.fall, check.interval, check.concurrency) == (2, 3, 30.0, 8)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"PROXY_HEALTH_CHECK_URL": "echo.test/ip"}, "PROXY_HEALTH_CHECK_URL must be an http(s) URL, got 'echo.test/ip'"),
        ({"PROXY_HEALTH_CHECK_URL": "http://e.test/", "PROXY_HEALTH_CHECK_BODY": "(x"}, "PROXY_HEALTH_CHECK_BODY: '(x' is not"),
        ({"PROXY_HEALTH_CHECK_URL": "http://e.test/", "PROXY_HEALTH_CHECK_INTERVAL": 0}, "PROXY_HEALTH_CHECK_INTERVAL must be > 0"),
        ({"PROXY_HEALTH_CHECK_URL": "http://e.test/", "PROXY_HEALTH_CHECK_FALL": 0}, "PROXY_HEALTH_CHECK_FALL must be > 0"),
        ({"PROXY_HEALTH_CHECK_URL": "http://e.test/", "PROXY_HEALTH_CHECK_STATUS": [700]}, "PROXY_HEALTH_CHECK_STATUS must hold"),
    ],
)
def test_bad_health_check_settings(values, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        health_check(**values)
