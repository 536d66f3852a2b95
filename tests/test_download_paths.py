"""Every download path with real servers nobody here wrote: SOCKS proxies (Debian's microsocks
and dante) through Scrapy's httpx handler, scrapy-impersonate (curl_cffi), and a rotating
gateway whose exits change with each connection."""

import threading
import time
from collections import Counter

import pytest

from scrapy_proxybalance.testing.socks import SocksServer, available

from .e2e import Farm, ProxySpec, crawl, valid

HTTPX = dict.fromkeys(("http", "https"), "scrapy.core.downloader.handlers._httpx.HttpxDownloadHandler")
IMPERSONATE = dict.fromkeys(("http", "https"), "scrapy_impersonate.ImpersonateDownloadHandler")
SECRET = "s0ck$:p@ss"  # a password with the characters URLs make hard


def site_pages(farm: Farm, n: int) -> list[str]:
    """Pages of the farm's site by its address (a SOCKS server resolves names itself: no .test)."""
    return [f"http://127.0.0.1:{farm.site_port}/page/{i}" for i in range(1, n + 1)]


def stop_after(farm: Farm, server: SocksServer, requests: int) -> threading.Thread:
    """Stop ``server`` once the site has seen ``requests`` requests (the crawl is under way)."""
    def watch() -> None:
        deadline = time.monotonic() + 60
        while len(farm.site_seen) < requests and time.monotonic() < deadline:
            time.sleep(0.01)
        server.stop()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.skipif(not (available("microsocks") and available("danted")),
                    reason="needs Debian's microsocks and dante-server")
def test_socks_and_http_proxies_through_the_httpx_handler_one_socks_server_stopped_midway(tmp_path):
    pytest.importorskip("socksio", reason="SOCKS through httpx needs scrapy[httpx]")
    specs = [ProxySpec("http-1", exit_ip="127.0.0.51"), ProxySpec("http-2", exit_ip="127.0.0.52")]
    with Farm(specs) as farm, SocksServer("microsocks", "127.0.0.53", "sockuser", SECRET) as login, \
            SocksServer("microsocks", "127.0.0.54") as dying, SocksServer("danted", "127.0.0.55") as dante:
        pool = [*farm.named_pool(), {"url": login.url("socks5h"), "name": "login"},
                {"url": dying.url(), "name": "dying"}, {"url": dante.url(), "name": "dante"}]
        watcher = stop_after(farm, dying, 30)
        result = crawl(tmp_path, farm, site_pages(farm, 100), PROXY_POOL=pool, DOWNLOAD_HANDLERS=HTTPX,
                       PROXY_DOMAIN_COOLDOWN=0, PROXY_STATS_PER_PROXY=True, PROXY_RECOVERY_INTERVAL=120,
                       CONCURRENT_REQUESTS=8, CONCURRENT_REQUESTS_PER_DOMAIN=2)
        watcher.join()
    assert result["errors"] == [] and len(result["pages"]) == 100 and all(valid(p) for p in result["pages"])
    exits = Counter(s.exit_ip for s in farm.site_seen)
    assert {"127.0.0.51", "127.0.0.52", "127.0.0.53", "127.0.0.54", "127.0.0.55"} <= set(exits)
    stats = result["stats"]
    assert stats["proxybalance/proxy/dying/ejections"] >= 1
    # PROXY_MAX_FAILURES (3) in a row eject it; the other request it carried when it died fails too
    assert stats["proxybalance/proxy/dying/failures"] <= 3 + 1
    assert stats["proxybalance/proxy/login/requests"] >= 5 and stats.get("proxybalance/proxy/login/failures", 0) == 0
    assert not any("proxy-authorization" in s.headers for s in farm.site_seen)
    for piece in (SECRET, SECRET[:4], SECRET[3:7], "p@ss"):
        assert piece not in result["log"]


def test_a_crawl_without_a_reactor_through_scrapy_s_default_handler_there_survives_a_dead_proxy(tmp_path):
    specs = [ProxySpec("ok-1"), ProxySpec("ok-2"), ProxySpec("dead", kind="dead"), ProxySpec("reset", kind="reset")]
    with Farm(specs) as farm:
        result = crawl(tmp_path, farm, [f"http://shop.test/page/{i}" for i in range(1, 41)], reactor="reactorless-default",
                       PROXY_POOL=farm.named_pool(), PROXY_DOMAIN_COOLDOWN=0, PROXY_STATS_PER_PROXY=True,
                       PROXY_MAX_FAILURES=2, PROXY_STRATEGY="round_robin")
    assert result["errors"] == [] and len(result["pages"]) == 40 and all(valid(p) for p in result["pages"])
    assert "AiohttpDownloadHandler" in result["log"]  # Scrapy 2.19's default without a reactor
    stats = result["stats"]
    for name in ("dead", "reset"):
        assert stats[f"proxybalance/proxy/{name}/ejections"] >= 1 and stats[f"proxybalance/proxy/{name}/failures"] <= 2


@pytest.mark.skipif(not available("microsocks"), reason="needs Debian's microsocks")
def test_scrapy_impersonate_reads_curl_s_errors_a_dead_proxy_is_ejected(tmp_path):
    pytest.importorskip("scrapy_impersonate", reason="scrapy-impersonate (curl_cffi)")
    specs = [ProxySpec("ok-1", exit_ip="127.0.0.61"), ProxySpec("dead", kind="dead")]
    with Farm(specs) as farm, SocksServer("microsocks", "127.0.0.62", "curl", SECRET.replace(":", "#")) as socks:
        pool = [*farm.named_pool(), {"url": socks.url("socks5h"), "name": "socks"}]
        requests = [{"url": url, "meta": {"impersonate": "chrome"}} for url in site_pages(farm, 40)]
        result = crawl(tmp_path, farm, requests, PROXY_POOL=pool, DOWNLOAD_HANDLERS=IMPERSONATE,
                       PROXY_DOMAIN_COOLDOWN=0, PROXY_STATS_PER_PROXY=True, PROXY_MAX_FAILURES=2,
                       PROXY_STRATEGY="round_robin")
    assert result["errors"] == [] and len(result["pages"]) == 40 and all(valid(p) for p in result["pages"])
    stats = result["stats"]
    assert stats["proxybalance/proxy/dead/ejections"] >= 1 and stats["proxybalance/proxy/dead/failures"] <= 2
    assert stats["proxybalance/requests/impersonate"] >= 40
    assert "curl_cffi" in result["log"]  # its errors, by name (counted, not unknown)
    assert not any(k.startswith("proxybalance/exceptions/unknown") for k in stats)
    assert {s.exit_ip for s in farm.site_seen} == {"127.0.0.61", "127.0.0.62"}
    for piece in (socks.password, socks.password[:4], "p@ss"):
        assert piece not in result["log"]


def test_a_rotating_gateway_gives_every_request_a_fresh_connection_and_so_its_next_exit(tmp_path):
    exits = tuple(f"127.0.1.{i}" for i in range(1, 21))
    urls = [f"http://shop.test/page/{i}" for i in range(1, 61)]
    runs = {}
    for rotating in (False, True):
        gate = ProxySpec("gate", kind="rotating", exits=exits)
        with Farm([gate]) as farm:
            entry = {"url": gate.url, "name": "gate", "rotating": rotating}
            result = crawl(tmp_path, farm, urls, run=f"rotating-{rotating}", PROXY_POOL=[entry],
                           PROXY_DOMAIN_COOLDOWN=0, CONCURRENT_REQUESTS_PER_DOMAIN=8)
        assert result["errors"] == [] and len(result["pages"]) == 60 and all(valid(p) for p in result["pages"])
        runs[rotating] = (gate.connections, len({s.exit_ip for s in farm.site_seen}))
    assert runs[True] == (60, 20)  # a connection per request: every exit, evenly
    assert runs[False][0] <= 8 and runs[False][1] <= 8  # kept alive: a handful of exits for all 60
