"""End-to-end: a hostile pool. Proxies die and revive, all go dark, hang, serve captchas,
ask to slow down; the pool file changes mid-crawl."""

import threading
import time

import pytest

from scrapy_proxybalance.testing.farm import CAPTCHA

from .e2e import Farm, ProxySpec, crawl, pages, valid

CAPTCHA_PATTERN = r'<form class="captcha">'


def fetched_all(result, urls):
    assert result["errors"] == []
    assert sorted(p["url"] for p in result["pages"]) == sorted(urls)
    assert all(valid(p) for p in result["pages"])


def test_proxies_that_die_mid_crawl_and_revive_carry_traffic_again(tmp_path):
    specs = [ProxySpec(f"p{i}") for i in range(6)]
    urls = pages("shop-a.test", 60) + pages("shop-b.test", 60) + pages("shop-c.test", 60)
    with Farm(specs) as farm:
        farm.blackout(after_requests=40, seconds=2.0, names={"p0", "p1", "p2"})
        result = crawl(tmp_path, farm, urls, PROXY_DOMAIN_COOLDOWN=0.5, PROXY_RECOVERY_INTERVAL=1.0)
    back = farm.down("p0")[0][1]
    fetched_all(result, urls)
    assert result["stats"]["proxybalance/ejections"] >= 3
    for spec in specs[:3]:
        assert sum(1 for s in spec.seen if s.at > back + 0.5) >= 5, spec.name  # revived and busy again


def test_a_full_blackout_loses_no_request_and_the_crawl_resumes_within_seconds_of_the_pool(tmp_path):
    specs = [ProxySpec(f"p{i}") for i in range(10)]
    urls = pages("shop-a.test", 60) + pages("shop-b.test", 60)
    with Farm(specs) as farm:
        farm.blackout(after_requests=30, seconds=3.0)
        result = crawl(tmp_path, farm, urls, PROXY_DOMAIN_COOLDOWN=0.3)  # PROXY_RECOVERY_INTERVAL: 60 s
    fetched_all(result, urls)
    stats = result["stats"]
    assert stats["proxybalance/ejections"] >= 5  # the pool went out
    assert stats["proxybalance/revivals/probe"] >= 1  # panic: probes found it back, no 60 s wait
    assert stats["proxybalance/retry/uncharged"] > 0  # the pool's fault: not charged to the requests
    assert "proxybalance/retry/max_reached" not in stats
    back = farm.down()[0][1]
    after = sorted(s.at for s in farm.site_seen if s.at > back)
    assert len(after) >= 40  # most of the crawl came after the blackout...
    assert after[0] - back < 2.5  # ...within seconds of the pool's return
    assert after[-1] - back < 2.5 + 3.0  # and the rest of the work (about 2 s) followed at full speed


@pytest.mark.parametrize("cooldown", [0.0, 0.3])  # with a cooldown, requests wait while it dies
def test_a_dying_proxy_costs_a_few_failed_attempts_and_gets_nothing_after_its_ejection(tmp_path, cooldown):
    specs = [ProxySpec(f"p{i}") for i in range(6)]
    urls = pages("shop-a.test", 60) + pages("shop-b.test", 60) + pages("shop-c.test", 60)
    with Farm(specs) as farm:
        farm.blackout(after_requests=30, seconds=60.0, names={"p0"})  # the crawl is under way
        result = crawl(tmp_path, farm, urls, PROXY_DOMAIN_COOLDOWN=cooldown, CONCURRENT_REQUESTS=16)
    fetched_all(result, urls)
    died = farm.down("p0")[0][0]
    after = [s for s in specs[0].seen if s.at >= died]
    assert 1 <= len(after) <= 5, len(after)  # what was in flight, then max_failures (3) and it is out
    assert result["stats"]["proxybalance/ejections"] == 1
    if not cooldown:
        assert result["stats"].get("proxybalance/waits", 0) <= 30  # the five healthy proxies carry the load at once


def test_hung_proxies_are_found_out_by_the_trial_timeout(tmp_path):
    specs = [ProxySpec("ok-1"), ProxySpec("ok-2"), ProxySpec("hung-1", kind="hung"), ProxySpec("hung-2", kind="hung"),
             ProxySpec("reset", kind="reset")]
    urls = pages("shop-a.test", 30) + pages("shop-b.test", 30)
    with Farm(specs) as farm:
        result = crawl(tmp_path, farm, urls, DOWNLOAD_TIMEOUT=60, PROXY_TRIAL_TIMEOUT=1.0,
                       PROXY_DOMAIN_COOLDOWN=0.2, PROXY_RECOVERY_INTERVAL=30)
    fetched_all(result, urls)
    # each hung proxy held a request for the trial timeout, not DOWNLOAD_TIMEOUT: the crawl
    # (about 3 s of work) ends long before 60 s
    assert max(p["at"] for p in result["pages"]) < 20
    for spec in specs[2:4]:
        assert 1 <= len(spec.seen) <= 3  # one request at a time until ejected
    assert "DownloadTimeoutError" in result["log"]


def test_a_captcha_served_with_status_200_never_reaches_the_callback(tmp_path):
    specs = [ProxySpec("ok-1"), ProxySpec("ok-2"), ProxySpec("sly", captcha_hosts=frozenset({"shop-a.test"}))]
    urls = pages("shop-a.test", 30) + pages("shop-b.test", 30)
    with Farm(specs) as farm:
        result = crawl(tmp_path, farm, urls, PROXY_BAN_BODY_PATTERNS=[CAPTCHA_PATTERN], PROXY_DOMAIN_COOLDOWN=0.2,
                       PROXY_STRATEGY="round_robin", PROXY_BAN_COOLDOWN=30, PROXY_STATS_PER_PROXY=True)
    fetched_all(result, urls)
    assert not any(CAPTCHA.decode() in p["text"] for p in result["pages"])
    sly = specs[2]
    assert 1 <= sum(1 for s in sly.seen if s.host == "shop-a.test") <= 2  # banned by shop-a after its captcha
    assert sum(1 for p in result["pages"] if p["proxy"] == sly.url and "shop-b" in p["url"]) >= 5  # still serves b
    assert result["stats"]["proxybalance/site/shop-a.test/bans"] >= 1


def test_a_captcha_from_every_proxy_goes_to_the_errback_not_the_callback(tmp_path):
    specs = [ProxySpec(f"sly-{i}", captcha_hosts=frozenset({"shop-a.test"})) for i in range(2)]
    with Farm(specs) as farm:
        result = crawl(tmp_path, farm, pages("shop-a.test", 2), PROXY_BAN_BODY_PATTERNS=[CAPTCHA_PATTERN],
                       PROXY_DOMAIN_COOLDOWN=0, PROXY_BAN_COOLDOWN=0.5)  # each waits for the other's ban to end
    assert result["pages"] == []
    assert {e["type"] for e in result["errors"]} == {"BanDetected"}
    assert "ban page from http://127.0.0.1:" in result["errors"][0]["message"]


def test_retry_after_keeps_that_proxy_off_that_site_for_the_time_asked(tmp_path):
    strict = ProxySpec("strict", kind="banning", min_interval=10.0, retry_after=2)
    specs = [strict, ProxySpec("ok-1"), ProxySpec("ok-2")]
    urls = pages("shop-a.test", 24) + pages("shop-b.test", 10)
    with Farm(specs) as farm:
        result = crawl(tmp_path, farm, urls, PROXY_DOMAIN_COOLDOWN=0.3, PROXY_STRATEGY="round_robin")
    fetched_all(result, urls)
    assert strict.ban_log, "the strict proxy must have asked to slow down"
    for at, host in strict.ban_log:
        later = [s.at for s in strict.seen if s.host == host and s.at > at]
        assert not later or min(later) >= at + 2.0 - 0.1, (host, min(later) - at)
    assert any(s.host == "shop-b.test" for s in strict.seen)  # a 429 from one site only keeps it off that site


def test_nothing_available_for_too_long_closes_the_spider_saying_why(tmp_path):
    specs = [ProxySpec(f"dead-{i}", kind="dead") for i in range(3)]
    with Farm(specs) as farm:
        result = crawl(tmp_path, farm, pages("shop.test", 10), PROXY_UNAVAILABLE_TIMEOUT=2.0,
                       PROXY_RECOVERY_INTERVAL=600, PROXY_MAX_FAILURES=1)
    assert result["pages"] == []
    assert result["stats"]["finish_reason"] == "proxies_unavailable"
    log = result["log"]
    assert "no proxy could serve shop.test for 2 s (PROXY_UNAVAILABLE_TIMEOUT); closing the spider" in log
    assert f"{specs[0].url}: ejected for " in log and "(last: " in log


def test_nothing_available_for_too_long_can_fail_the_waiting_requests_instead(tmp_path):
    specs = [ProxySpec(f"dead-{i}", kind="dead") for i in range(2)]
    with Farm(specs) as farm:
        result = crawl(tmp_path, farm, pages("shop.test", 6), PROXY_UNAVAILABLE_TIMEOUT=1.5,
                       PROXY_UNAVAILABLE_ACTION="fail", PROXY_RECOVERY_INTERVAL=600, PROXY_MAX_FAILURES=1)
    assert result["stats"]["finish_reason"] == "finished"
    assert sorted(e["url"] for e in result["errors"]) == sorted(pages("shop.test", 6))
    assert {e["type"] for e in result["errors"]} <= {"NoProxyAvailable", "ConnectionRefusedError"}
    assert any("PROXY_UNAVAILABLE_TIMEOUT" in e["message"] for e in result["errors"])


def test_the_pool_file_is_reloaded_when_it_changes(tmp_path):
    specs = [ProxySpec("old"), ProxySpec("kept"), ProxySpec("new")]
    urls = pages("shop.test", 60)
    pool_file = tmp_path / "proxies.txt"
    with Farm(specs) as farm:
        pool_file.write_text(f"{specs[0].url}\n{specs[1].url}\n")
        applied = []

        def rewrite():
            deadline = time.monotonic() + 30
            while len(specs[0].seen) < 3 and time.monotonic() < deadline:  # the crawl is under way (however slow
                threading.Event().wait(0.05)  # the machine is to start it)
            bad = tmp_path / "bad.txt"
            bad.write_text("not a proxy ::\n")
            bad.replace(pool_file)  # a broken file is reported and ignored...
            threading.Event().wait(0.5)
            good = tmp_path / "good.txt"
            good.write_text(f"# rewritten\n{specs[1].url}\n{specs[2].url}\n")
            good.replace(pool_file)  # ...then the good one applies
            applied.append(time.monotonic())

        timer = threading.Thread(target=rewrite)
        timer.start()
        result = crawl(tmp_path, farm, urls, PROXY_POOL=str(pool_file), PROXY_POOL_RELOAD_INTERVAL=0.2,
                       PROXY_DOMAIN_COOLDOWN=0.2)
        timer.join()
    fetched_all(result, urls)
    old, kept, new = specs
    assert old.seen and new.seen and kept.seen
    # within a reload interval (plus a request already in flight, and a loaded machine's lag), old got no more
    assert max(s.at for s in old.seen) < applied[0] + 0.2 + 1.5
    assert min(s.at for s in new.seen) > applied[0]
    assert len(kept.seen) > len(old.seen)  # kept served all along
    assert "line 1" in result["log"] and "keeping the current one" in result["log"]
    assert "reloaded" in result["log"] and "1 added, 1 removed" in result["log"]
