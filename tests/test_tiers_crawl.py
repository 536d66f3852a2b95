"""Price tiers in real crawls: three sites that accept different tiers, block pages of
anti-bot services, what it cost, and a site's tier kept across a JOBDIR pause."""

import json
from collections import Counter

from scrapy_proxybalance.testing.farm import Farm, ProxySpec
from scrapy_proxybalance.testing.site import Block

from .e2e import crawl, pages, valid

PRICES = {0: 0.0001, 1: 0.001, 2: {"request": 0.002, "gb": 8.0}}
SIZES = {0: 5, 1: 4, 2: 3}


def tiered_farm(blocks):
    specs = [ProxySpec(f"t{tier}-{i}", exit_ip=f"127.0.{5 + tier}.{i + 1}") for tier, n in SIZES.items()
             for i in range(n)]
    return Farm(specs, site_blocks=blocks)


def exits(*tiers):
    return frozenset(f"127.0.{5 + t}.{i + 1}" for t in tiers for i in range(SIZES[t]))


def tier_pool(farm):
    return [{"url": spec.url, "name": spec.name, "tier": int(spec.name[1]), "cost": PRICES[int(spec.name[1])]}
            for spec in farm.specs]


def requests_by_tier(farm, host):
    """What the proxies of each tier sent to ``host``."""
    return Counter(int(spec.name[1]) for spec in farm.specs for seen in spec.seen if seen.host == host)


def test_each_site_settles_on_the_cheapest_tier_it_accepts_and_the_crawl_says_what_it_cost(tmp_path):
    blocks = {"b.test": Block(exits(0), page="cloudflare", status=200), "c.test": Block(exits(0, 1), page="datadome")}
    with tiered_farm(blocks) as farm:
        urls = pages("a.test", 300) + pages("b.test", 300) + pages("c.test", 300)
        report = tmp_path / "report.json"
        result = crawl(tmp_path, farm, urls, PROXY_POOL=tier_pool(farm), PROXY_DOMAIN_COOLDOWN=0.02,
                       PROXY_REPORT_FILE=str(report), PROXY_STATS_PER_PROXY=True)
        assert result["errors"] == []
        assert sorted(p["url"] for p in result["pages"]) == sorted(urls) and all(map(valid, result["pages"]))
        a, b, c = (requests_by_tier(farm, host) for host in ("a.test", "b.test", "c.test"))
        assert a[0] >= 0.97 * sum(a.values()), a
        assert b[0] <= 10 and b[2] == 0, b  # a few tier-0 bans, then tier 1
        assert farm.site.refused["c.test"] <= 10 and c[2] <= 1.05 * 300, (c, farm.site.refused)

    stats = result["stats"]
    assert stats["proxybalance/blocks/cloudflare"] == farm.site.refused["b.test"]
    assert stats["proxybalance/blocks/datadome"] == farm.site.refused["c.test"]
    assert stats["proxybalance/tiers/climbs"] == 3  # b to 1, c to 1 and then 2
    seen = a + b + c
    for tier in (0, 1, 2):
        assert stats[f"proxybalance/tier/{tier}/requests"] == seen[tier]
    assert abs(stats["proxybalance/tier/0/cost"] - seen[0] * PRICES[0]) < 1e-9
    assert abs(stats["proxybalance/tier/1/cost"] - seen[1] * PRICES[1]) < 1e-9
    assert stats["proxybalance/tier/2/cost"] > seen[2] * PRICES[2]["request"]  # and its bytes
    total = sum(stats[f"proxybalance/tier/{tier}/cost"] for tier in (0, 1, 2))
    assert abs(stats["proxybalance/cost"] - total) <= 0.01 * total
    assert "requests through the pool moved" in result["log"] and f"cost {stats['proxybalance/cost']:.6g}" in result["log"]

    data = json.loads(report.read_text())
    assert {r["tier"]: r["requests"] for r in data["tiers"]} == {t: seen[t] for t in (0, 1, 2)}
    sites = {r["site"]: r for r in data["sites"]}
    assert (sites["a.test"]["tier"], sites["b.test"]["tier"], sites["c.test"]["tier"]) == (0, 1, 2)
    assert "tier 1 banned by" in sites["c.test"]["tier_why"] and sites["c.test"]["cost"] > sites["a.test"]["cost"]
    assert abs(data["totals"]["cost"] - stats["proxybalance/cost"]) < 1e-6


def test_a_site_that_stops_banning_is_probed_back_down_and_jobdir_keeps_a_sites_tier(tmp_path):
    probe = 0.3
    blocks = {"b.test": Block(exits(0), page="imperva", until=40), "c.test": Block(exits(0, 1), page="akamai")}
    with tiered_farm(blocks) as farm:
        urls = pages("b.test", 200)
        # (a probe needs a proxy of the tier below that the site does not hold off: bans here end soon)
        result = crawl(tmp_path, farm, urls, PROXY_POOL=tier_pool(farm), PROXY_DOMAIN_COOLDOWN=0.05,
                       PROXY_TIER_PROBE_INTERVAL=probe, PROXY_BAN_COOLDOWN=0.2, PROXY_BAN_MAX_COOLDOWN=0.4,
                       CONCURRENT_REQUESTS=4, run="probes")
        assert result["errors"] == [] and len(result["pages"]) == 200
        seen = sorted((s.at, s.exit_ip) for s in farm.site_seen if s.host == "b.test")
        stopped = seen[39][0]  # its 40th request: the last it refused
        back = next(at for at, ip in seen[40:] if ip in exits(0))  # the first tier-0 request taken
        assert back - stopped <= 2 * 2 * probe, (back - stopped)  # two intervals (after one failed probe, doubled)
        assert result["stats"]["proxybalance/tiers/descents"] == 1
        tail = [ip for _, ip in seen[-30:]]
        assert sum(ip in exits(0) for ip in tail) >= 27  # back at tier 0 for good

        jobdir = tmp_path / "job"
        crawl(tmp_path, farm, pages("c.test", 20), PROXY_POOL=tier_pool(farm), JOBDIR=str(jobdir),
              PROXY_DOMAIN_COOLDOWN=0.02, run="first")
        refused = farm.site.refused["c.test"]
        assert refused >= 2 and json.loads((jobdir / "proxybalance.tiers.json").read_text())["c.test"]["tier"] == 2
        again = crawl(tmp_path, farm, pages("c.test", 20, start=21), PROXY_POOL=tier_pool(farm), JOBDIR=str(jobdir),
                      PROXY_DOMAIN_COOLDOWN=0.02, run="resumed")
        assert len(again["pages"]) == 20 and farm.site.refused["c.test"] == refused  # went at tier 2 from the start


def test_a_direct_entry_is_the_cheapest_tier_and_a_site_that_refuses_it_goes_through_proxies(tmp_path):
    # direct requests reach the farm's site by its address: "localhost" and "127.0.0.1" are two sites
    with Farm([ProxySpec(f"p{i}", user="u", password="pw:secret") for i in range(3)],
              site_blocks={"127.0.0.1": Block(frozenset({"127.0.0.1"}), page="perimeterx")}) as farm:
        pool = ["direct://", *({"url": spec.url, "tier": 1, "cost": 0.01} for spec in farm.specs)]
        urls = [f"http://{host}:{farm.site_port}/page/{i}" for host in ("localhost", "127.0.0.1") for i in range(20)]
        result = crawl(tmp_path, farm, urls, PROXY_POOL=pool, PROXY_DOMAIN_COOLDOWN=0.02)
        assert result["errors"] == [] and sorted(p["url"] for p in result["pages"]) == sorted(urls)
        direct = [s for s in farm.site_seen if s.exit_ip == "127.0.0.1"]
        assert sum(s.host == "localhost" for s in direct) == 20  # none through a proxy
        assert sum(s.host == "127.0.0.1" for spec in farm.specs for s in spec.seen) == 20  # refused direct: proxies
        assert all("proxy-authorization" not in s.headers for s in farm.site_seen)
    stats = result["stats"]
    assert stats["proxybalance/tier/0/requests"] == len(direct) and stats["proxybalance/blocks/perimeterx"] >= 1
    assert abs(stats["proxybalance/cost"] - 0.01 * stats["proxybalance/tier/1/requests"]) < 1e-9
