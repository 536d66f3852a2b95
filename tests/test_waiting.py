"""End-to-end: requests that wait for a proxy stay in the scheduler's custody: a JOBDIR pause
loses none, memory stays bounded, priority order holds, other sites flow, and a fresh
project's per-site limits apply to each proxy."""

import itertools
from collections import Counter

import pytest

from .e2e import Farm, ProxySpec, crawl, pages, valid


def site_hits(farm):
    return Counter((s.host, s.path) for s in farm.site_seen)


def test_a_paused_jobdir_crawl_resumes_every_request_that_was_waiting(tmp_path):
    urls = pages("shop.test", 160)
    requests = [{"url": u, "dont_filter": False} for u in urls]  # as a spider's frontier is: filtered once
    settings = {"JOBDIR": str(tmp_path / "job"), "PROXY_DOMAIN_COOLDOWN": 0.05, "CONCURRENT_REQUESTS": 8}
    with Farm([ProxySpec("p1"), ProxySpec("p2")]) as farm:
        first = crawl(tmp_path, farm, requests, run="first", CLOSESPIDER_TIMEOUT=1.5, **settings)
        second = crawl(tmp_path, farm, requests, run="second", **settings)
        hits = site_hits(farm)
    assert first["stats"]["finish_reason"] == "closespider_timeout"
    assert 20 < len(first["pages"]) < 140 and first["stats"]["proxybalance/waits"] > 0
    assert sorted(p["url"] for p in first["pages"] + second["pages"]) == sorted(urls)  # every page, once
    assert all(n == 1 for n in hits.values()) and len(hits) == 160
    assert all(valid(p) for p in first["pages"] + second["pages"])


def test_waiting_requests_are_bounded_the_rest_stays_in_the_scheduler_s_queue(tmp_path):
    urls = pages("shop.test", 400)
    with Farm([ProxySpec("p1"), ProxySpec("p2")]) as farm:
        result = crawl(tmp_path, farm, [{"url": u, "dont_filter": False} for u in urls], JOBDIR=str(tmp_path / "job"),
                       PROXY_DOMAIN_COOLDOWN=0.2, PROXY_MAX_WAITING=25, CLOSESPIDER_TIMEOUT=2)
    stats = result["stats"]
    assert stats["proxybalance/waiting/max"] <= 25  # in memory; the engine did not pull the frontier in
    assert stats["scheduler/dequeued/disk"] < 100  # the rest of the frontier stayed in the disk queue...
    assert stats.get("proxybalance/waiting/requeued", 0) <= 5  # ...not pulled out only to be put back
    assert all(valid(p) for p in result["pages"]) and 15 < len(result["pages"]) < 40


def test_a_higher_priority_request_is_not_stuck_behind_waiting_ones_pulled_out_earlier(tmp_path):
    urgent = [{"url": u, "priority": 10} for u in pages("shop.test", 5, start=100)]
    requests = [{"url": pages("shop.test", 1)[0], "then": urgent}] + [{"url": u} for u in pages("shop.test", 15, 2)]
    with Farm([ProxySpec("only")]) as farm:
        result = crawl(tmp_path, farm, requests, PROXY_DOMAIN_COOLDOWN=0.15, CONCURRENT_REQUESTS=4)
    order = [p["url"] for p in result["pages"]]
    assert len(order) == 21
    first = order.index(pages("shop.test", 1)[0])
    # the five urgent pages arrive while the others wait, and leave before them
    assert sorted(order[first + 1:first + 6]) == sorted(r["url"] for r in urgent), order


@pytest.mark.parametrize("cooldown", [0.0, 1.0])
def test_a_fresh_project_gets_the_pool_s_speed_and_each_proxy_stays_polite(tmp_path, cooldown):
    specs = [ProxySpec(f"p{i}") for i in range(10)]
    fresh = {"CONCURRENT_REQUESTS_PER_DOMAIN": 1, "DOWNLOAD_DELAY": 1, "PROXY_DOMAIN_COOLDOWN": cooldown}
    with Farm(specs) as farm:
        result = crawl(tmp_path, farm, pages("shop.test", 30), **fresh)
    assert len(result["pages"]) == 30
    at = sorted(p["at"] for p in result["pages"])
    # one proxy would take 29 s after the first page (DOWNLOAD_DELAY = 1 s); ten, about 3
    assert at[-1] - at[0] < 29 / 6, at
    for spec in specs:
        times = sorted(s.at for s in spec.seen)
        assert all(b - a >= 1.0 for a, b in itertools.pairwise(times)), spec.name  # DOWNLOAD_DELAY per exit
