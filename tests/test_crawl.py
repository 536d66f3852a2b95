"""End-to-end: real crawls through real proxies on 127.0.0.1 that misbehave on purpose."""

import itertools
import re
import subprocess
import sys

import pytest

from scrapy_proxybalance.testing.farm import HOST

from .e2e import ROOT, Farm, ProxySpec, attempts, crawl, pages, valid

COOLDOWN = 0.5
DELIVERY_JITTER = 0.1  # the cooldown holds at lease time; the way to the proxy adds jitter


@pytest.fixture
def hostile_farm():
    specs = [
        ProxySpec("ok-1"), ProxySpec("ok-2"), ProxySpec("ok-3"), ProxySpec("ok-4"),
        ProxySpec("dead", kind="dead"),
        ProxySpec("hung", kind="hung"),
        ProxySpec("reset", kind="reset"),
        ProxySpec("strict", kind="banning", min_interval=2.5, retry_after=4),
    ]
    with Farm(specs) as farm:
        yield farm


@pytest.mark.parametrize("reactor", ["asyncio", "plain", "reactorless"])
def test_pool_with_dead_hung_resetting_and_banning_proxies_fetches_every_page(tmp_path, hostile_farm, reactor):
    urls = pages("shop-a.test", 20) + pages("shop-b.test", 20)
    result = crawl(tmp_path, hostile_farm, urls, reactor=reactor, PROXY_DOMAIN_COOLDOWN=COOLDOWN,
                   PROXY_RECOVERY_INTERVAL=5.0, PROXY_STRATEGY="round_robin")
    assert result["errors"] == []
    assert sorted(p["url"] for p in result["pages"]) == sorted(urls)
    assert all(valid(p) for p in result["pages"])
    stats = result["stats"]
    assert stats["proxybalance/retry/count"] >= 3  # dead, hung and reset each failed at least once
    assert stats["proxybalance/ejections"] >= 2  # dead and reset (the hung: test_hostile.py, trial timeout)
    assert "retry/count" not in stats  # RetryMiddleware did not retry what we retried

    # a retry always goes to a proxy the request has not tried
    for (host, path), tries in attempts(hostile_farm).items():
        names = [name for _, name in tries]
        assert len(names) == len(set(names)), (host, path, names)

    # the cooldown holds, measured where it matters: at the proxies
    for spec in hostile_farm.specs:
        by_host: dict[str, list[float]] = {}
        for seen in spec.seen:
            by_host.setdefault(seen.host, []).append(seen.at)
        for times in by_host.values():
            gaps = [b - a for a, b in itertools.pairwise(times)]
            assert not gaps or min(gaps) >= COOLDOWN - DELIVERY_JITTER, (spec.name, min(gaps))

    # the closing table and the periodic summary are in the log
    assert "proxy" in result["log"] and "mean latency" in result["log"]
    assert "] INFO: 8 proxies (" in result["log"]


@pytest.mark.parametrize("reactor", ["asyncio", "reactorless"])
def test_credentials_reach_only_their_own_proxy_and_never_the_site(tmp_path, reactor):
    specs = [
        ProxySpec("locked-reset", kind="reset", user="alice", password="pw-alice"),
        ProxySpec("private", kind="auth", user="bob", password="pw-bob"),
        ProxySpec("open-1"), ProxySpec("open-2"),
    ]
    with Farm(specs) as farm:
        result = crawl(tmp_path, farm, pages("shop.test", 30), reactor=reactor, PROXY_DOMAIN_COOLDOWN=0.2,
                       PROXY_STRATEGY="round_robin", PROXY_MAX_FAILURES=100)
    assert len(result["pages"]) == 30 and result["errors"] == []
    locked, private, *open_proxies = specs
    assert locked.seen, "the credentialed proxy that fails must have been tried"
    assert result["stats"]["proxybalance/retry/count"] >= len(locked.seen)
    assert private.seen and all(s.headers.get("proxy-authorization") == "Basic Ym9iOnB3LWJvYg==" for s in private.seen)
    assert all(s.headers.get("proxy-authorization") == "Basic YWxpY2U6cHctYWxpY2U=" for s in locked.seen)
    for spec in open_proxies:
        assert spec.seen and not any("proxy-authorization" in s.headers for s in spec.seen)
    assert not any("proxy-authorization" in s.headers for s in farm.site_seen)
    everything = result["log"] + repr(result["stats"])
    assert "pw-alice" not in everything and "pw-bob" not in everything
    assert "alice:***@" in everything


def test_waiting_for_one_domain_does_not_starve_another(tmp_path):
    specs = [ProxySpec("p1"), ProxySpec("p2"), ProxySpec("p3")]
    busy = [{"url": u, "priority": 10} for u in pages("busy.test", 24)]
    quiet = [{"url": u, "priority": 0} for u in pages("quiet.test", 6)]
    with Farm(specs) as farm:
        result = crawl(tmp_path, farm, busy + quiet, CONCURRENT_REQUESTS=3, PROXY_DOMAIN_COOLDOWN=COOLDOWN)
    done = {}
    for page in result["pages"]:
        done.setdefault(page["url"].split("/")[2], []).append(page["at"])
    assert len(done["busy.test"]) == 24 and len(done["quiet.test"]) == 6
    # busy.test is held to 6 pages/s by the cooldown (about 4 s); quiet.test must not queue behind it
    assert max(done["busy.test"]) >= 3.0
    assert max(done["quiet.test"]) < 0.5 * max(done["busy.test"]), done
    assert result["stats"]["proxybalance/waits"] > 0


def test_user_proxy_and_dont_proxy_are_respected(tmp_path):
    specs = [ProxySpec("pooled"), ProxySpec("outside")]
    with Farm(specs) as farm:
        site = f"http://{HOST}:{farm.site_port}"
        requests = [
            {"url": "http://shop.test/page/1", "meta": {"proxy": specs[1].url}},
            {"url": f"{site}/page/2", "meta": {"dont_proxy": True}},
            {"url": "http://shop.test/page/3"},
        ]
        result = crawl(tmp_path, farm, requests, PROXY_POOL=[specs[0].url])
    assert len(result["pages"]) == 3
    assert [s.path for s in specs[1].seen] == ["/page/1"]
    assert [s.path for s in specs[0].seen] == ["/page/3"]
    assert any(s.path == "/page/2" and s.host == HOST for s in farm.site_seen)


def test_domain_regions_route_requests_and_meta_overrides(tmp_path):
    specs = [ProxySpec("eu-1"), ProxySpec("eu-2"), ProxySpec("us-1")]
    with Farm(specs) as farm:
        pool = [{"url": specs[0].url, "region": "eu"}, {"url": specs[1].url, "region": "eu"},
                {"url": specs[2].url, "region": "us"}]
        requests = pages("www.shop.eu", 10) + [{"url": u, "meta": {"proxy_region": "us"}} for u in pages("x.test", 3)]
        result = crawl(tmp_path, farm, requests, PROXY_POOL=pool, PROXY_DOMAIN_REGIONS={"shop.eu": "eu"},
                       PROXY_DOMAIN_COOLDOWN=0)
    assert len(result["pages"]) == 13
    assert {s.host for s in specs[2].seen} == {"x.test"}
    assert {s.host for s in specs[0].seen + specs[1].seen} == {"www.shop.eu"}


def test_gives_up_after_retries_on_distinct_proxies_with_a_clear_reason(tmp_path):
    specs = [ProxySpec(f"ok-{i}") for i in range(5)]
    broken = [f"http://shop.test/broken/{i}" for i in range(3)]  # the site never answers these
    with Farm(specs) as farm:
        good = pages("shop.test", 30)
        mixed = good[:10] + broken[:1] + good[10:20] + broken[1:2] + good[20:] + broken[2:]  # sparse, as in life
        result = crawl(tmp_path, farm, mixed, PROXY_RETRY_TIMES=2,
                       PROXY_DOMAIN_COOLDOWN=0.1, CONCURRENT_REQUESTS=4)
    assert len(result["pages"]) == 30
    assert sorted(e["url"] for e in result["errors"]) == broken
    for (_host, path), tries in attempts(farm).items():
        names = [name for _, name in tries]
        if path.startswith("/broken/"):
            # first try + PROXY_RETRY_TIMES + one last try after a grace second, each elsewhere
            assert len(names) == 4 == len(set(names))
    assert result["stats"]["proxybalance/retry/max_reached"] == 3
    assert "retry/count" not in result["stats"]
    assert "Gave up retrying <GET http://shop.test/broken/" in result["log"]


def test_a_cached_response_is_not_credited_to_a_proxy(tmp_path):
    with Farm([ProxySpec("only")]) as farm:
        settings = {"HTTPCACHE_ENABLED": True, "HTTPCACHE_DIR": str(tmp_path / "cache"), "PROXY_STATS_PER_PROXY": True,
                    "PROXY_DOMAIN_COOLDOWN": 0.1}
        first = crawl(tmp_path, farm, pages("shop.test", 3), **settings)
        second = crawl(tmp_path, farm, pages("shop.test", 3), **settings)
    assert len(first["pages"]) == len(second["pages"]) == 3
    assert len(farm.specs[0].seen) == 3  # the second crawl came from the cache
    proxy = f"proxybalance/proxy/{farm.specs[0].url}"
    assert first["stats"][f"{proxy}/requests"] == second["stats"][f"{proxy}/requests"] == 3
    # the cache's answers are no evidence about the proxy: no success rate, no latency
    assert re.search(r"http://127\.0\.0\.1:\d+\s+healthy\s+3\s+-\s+-\s+0\s+0", second["log"]), second["log"][-2000:]
    assert re.search(r"http://127\.0\.0\.1:\d+\s+healthy\s+3\s+100%\s+\d+ ms", first["log"])


def test_no_proxy_in_the_requested_region_fails_the_request_clearly(tmp_path):
    with Farm([ProxySpec("only")]) as farm:
        result = crawl(tmp_path, farm, [{"url": "http://shop.test/page/1", "meta": {"proxy_region": "mars"}}])
    assert [(e["type"], e["message"]) for e in result["errors"]] == [
        ("NoProxyAvailable", "no proxy in region 'mars' (for <GET http://shop.test/page/1>)")
    ]


@pytest.mark.parametrize(
    ("setting", "message", "reactorless"),
    [
        ("PROXY_STRATEGY=fastest", "PROXY_STRATEGY: unknown strategy 'fastest'", True),
        ("PROXY_POOL=socks5://user:pw@10.1.1.1:1080", "PROXY_POOL has socks5 proxies (socks5://user:***@10.1.1.1:1080), but DOWNLOAD_HANDLERS gives http and https to HTTP11DownloadHandler, which carries http and https proxies only: use Scrapy's httpx handler", False),
        ("PROXY_POOL=ftp://user:pw@10.1.1.1:21", "PROXY_POOL: unsupported proxy scheme 'ftp' in 'ftp://user:***@10.1.1.1:21'", False),
        ("PROXY_POOL=http://u:QX@ZJ/x@h:0", "'http://u:***@h:0': the port must be a number from 1 to 65535", False),
        ("PROXY_DOMAIN_COOLDOWN=-1", "PROXY_DOMAIN_COOLDOWN must be >= 0, got '-1'", False),
        ("PROXY_HEALTH_CHECK_INTERVAL=nan", "PROXY_HEALTH_CHECK_INTERVAL must be a finite number, got 'nan'", False),
        ("PROXY_POOL=", "PROXY_POOL is empty", False),
    ],
)
def test_bad_settings_stop_scrapy_crawl_at_once_with_one_clear_line(tmp_path, setting, message, reactorless):
    pool = tmp_path / "proxies.txt"
    pool.write_text("http://127.0.0.1:9\n")
    extra = ["-s", "TWISTED_REACTOR_ENABLED=False"] if reactorless else []
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "pages", "-s", setting, *extra],
        cwd=ROOT / "example_project", capture_output=True, text=True, timeout=60,
        env={"PATH": "", "FARM_POOL_FILE": str(pool), "FARM_SITE": "unused", "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 1  # as for a crawl that could not start
    lines = [line for line in proc.stderr.splitlines() if "scrapy-proxybalance cannot start" in line]
    assert len(lines) == 1 and message in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "CRITICAL" not in proc.stderr
    assert ":pw@" not in proc.stderr and "QX" not in proc.stderr and "ZJ" not in proc.stderr
    assert "proxybalance_misconfigured" in proc.stderr


def test_a_redirect_is_credited_to_the_proxy_that_delivered_it(tmp_path):
    with Farm([ProxySpec("only")]) as farm:
        result = crawl(tmp_path, farm, [f"http://shop.test/redirect/{i}" for i in (1, 2, 3)], PROXY_STATS_PER_PROXY=True,
                       PROXY_POOL=farm.named_pool(), PROXY_DOMAIN_COOLDOWN=0.1)
    assert sorted(p["url"] for p in result["pages"]) == pages("shop.test", 3)
    stats = result["stats"]
    assert stats["proxybalance/proxy/only/requests"] == 6 and stats["proxybalance/proxy/only/failures"] == 0
    assert "proxybalance/retry/count" not in stats and stats["downloader/response_status_count/302"] == 3
    assert [s.path for s in farm.specs[0].seen].count("/redirect/1") == 1


def test_a_site_s_own_500_goes_to_retrymiddleware_and_comes_back_for_a_fresh_proxy(tmp_path):
    specs = [ProxySpec("p1"), ProxySpec("p2")]
    with Farm(specs) as farm:
        result = crawl(tmp_path, farm, [f"http://shop.test/flaky/{i}" for i in range(1, 5)], PROXY_STATS_PER_PROXY=True,
                       PROXY_DOMAIN_COOLDOWN=0.1)
    assert len(result["pages"]) == 4 and result["errors"] == []
    stats = result["stats"]
    assert stats["retry/count"] == 4  # Scrapy's RetryMiddleware retried the site's own errors
    assert "proxybalance/retry/count" not in stats and "proxybalance/failures" not in stats  # no proxy blamed
    assert stats["proxybalance/requests"] == 8  # each retry took a lease of its own
