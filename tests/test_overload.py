"""End-to-end: overload and rate limits slow the crawl down instead of emptying the pool."""

from .e2e import Farm, ProxySpec, crawl, pages, valid


def test_a_pool_driven_past_its_capacity_keeps_serving_at_capacity_without_ejecting_anyone(tmp_path):
    specs = [ProxySpec(f"p{i}", kind="slow", delay=0.05, capacity=2, overflow="503") for i in range(5)]
    urls = [u for site in ("a", "b", "c", "d") for u in pages(f"shop-{site}.test", 60)]
    with Farm(specs) as farm:
        result = crawl(tmp_path, farm, urls, PROXY_DOMAIN_COOLDOWN=0, CONCURRENT_REQUESTS=32,
                       CONCURRENT_REQUESTS_PER_DOMAIN=32)
    assert result["errors"] == [] and sorted(p["url"] for p in result["pages"]) == sorted(urls)
    assert all(valid(p) for p in result["pages"])
    stats = result["stats"]
    assert "proxybalance/ejections" not in stats and "proxybalance/bans" not in stats  # no cascade
    overflows = sum(s.overflows for s in specs)
    assert overflows == stats.get("proxybalance/overloaded", 0) <= len(urls) // 4  # the limits found the capacity
    at = sorted(p["at"] for p in result["pages"])
    assert at[-1] - at[0] < 240 / 200 * 4  # the pool serves 10 at a time, 50 ms each: 200 pages/s


def test_rate_limited_sites_slow_the_pace_down_and_every_page_arrives(tmp_path):
    specs = [ProxySpec(f"p{i}") for i in range(4)]
    urls = pages("shop-a.test", 40) + pages("shop-b.test", 40)
    with Farm(specs, site_interval=0.3, site_retry_after=1) as farm:
        result = crawl(tmp_path, farm, urls, PROXY_DOMAIN_COOLDOWN=0, PROXY_STATS_INTERVAL=0)
    assert result["errors"] == [] and sorted(p["url"] for p in result["pages"]) == sorted(urls)
    stats = result["stats"]
    assert "proxybalance/ejections" not in stats and "proxybalance/bans" not in stats  # a pause, not a ban
    assert len(farm.site_limited) <= 3 * 8  # a few per (proxy, site) pair while the pace is learned


def test_a_cooldown_equal_to_the_site_s_limit_never_trips_it(tmp_path):
    specs = [ProxySpec(f"p{i}", kind="slow", delay=0.02) for i in range(4)]
    urls = pages("shop-a.test", 30) + pages("shop-b.test", 30)
    with Farm(specs, site_interval=0.3, site_retry_after=1) as farm:
        result = crawl(tmp_path, farm, urls, PROXY_DOMAIN_COOLDOWN=0.3, CONCURRENT_REQUESTS=32)
    assert len(result["pages"]) == 60 and farm.site_limited == []  # counted from the answer: the site sees >= 0.3 s
