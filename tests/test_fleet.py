"""End-to-end: several crawler processes share one pool through Redis (PROXY_STATE_URL)."""

import time
from collections import Counter

import pytest

from .conftest import needs_redis
from .e2e import Farm, ProxySpec, crawl_together, pages, valid

redis = pytest.importorskip("redis", reason="the shared store and scrapy-redis need the redis extra")
pytestmark = needs_redis
REDIS_URL = "redis://127.0.0.1:6379/0"


def test_three_processes_keep_each_proxy_s_pace_on_a_site_fleet_wide(tmp_path, namespace):
    specs = [ProxySpec(f"p{i}") for i in range(6)]
    jobs = [pages("shop-a.test", 24, start=1 + 24 * i) + pages("shop-b.test", 24, start=1 + 24 * i) for i in range(3)]
    skewed = [{}, {"CLOCK_SKEW": "3600"}, {"CLOCK_SKEW": "-86400"}]  # machines whose clocks are off
    with Farm(specs, site_interval=0.3, site_retry_after=5) as farm:
        results = crawl_together(tmp_path, farm, jobs, envs=skewed, PROXY_STATE_URL=REDIS_URL,
                                 PROXY_STATE_NAMESPACE=namespace, PROXY_DOMAIN_COOLDOWN=0.3)
        hits = Counter((s.host, s.path) for s in farm.site_seen)
    for job, result in zip(jobs, results, strict=True):
        assert result["errors"] == [] and sorted(p["url"] for p in result["pages"]) == sorted(job)
        assert all(valid(p) for p in result["pages"])
        assert "proxybalance/state/errors" not in result["stats"]
    assert farm.site_limited == []  # no exit asked a site again sooner than 0.3 s, across the fleet
    assert len(hits) == 144 and set(hits.values()) == {1}


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_server(port):
    import shutil
    import subprocess
    import time

    server = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1", "--port", str(port),
                               "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            return server
        except redis.ConnectionError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("redis-server did not start")


def test_redis_going_away_and_coming_back_costs_no_page(tmp_path, namespace):
    import threading

    from .e2e import finish, start

    port = free_port()
    servers = [redis_server(port)]

    def outage():
        deadline = time.monotonic() + 60
        while sum(len(spec.seen) for spec in farm.specs) < 10 and time.monotonic() < deadline:
            threading.Event().wait(0.05)  # the crawl is under way, however slow the machine is to start it
        servers[0].kill()  # by its PID: the one this test started
        servers[0].wait()
        threading.Event().wait(1.5)
        servers.append(redis_server(port))

    urls = pages("shop-a.test", 60) + pages("shop-b.test", 60)
    try:
        with Farm([ProxySpec(f"p{i}") for i in range(4)]) as farm:
            job = start(tmp_path, farm, urls, "asyncio", "crawl", "list", PROXY_STATE_URL=f"redis://127.0.0.1:{port}/0",
                        PROXY_DOMAIN_COOLDOWN=0.25, PROXY_STATE_TIMEOUT=0.2)  # about 4 s of crawling
            timer = threading.Thread(target=outage)
            timer.start()
            result = finish(job, 120)
            timer.join()
    finally:
        for server in servers:
            server.kill()
            server.wait()
    assert result["errors"] == [] and sorted(p["url"] for p in result["pages"]) == sorted(urls)
    assert result["stats"]["proxybalance/state/errors"] >= 1
    assert result["log"].count("cannot reach the shared state") == 1  # said once, not once per request
    assert "answers again: sharing the pool again" in result["log"]


def test_a_fleet_of_scrapy_redis_workers_shares_its_queue_and_its_pool(tmp_path, namespace):
    specs = [ProxySpec(f"p{i}") for i in range(6)]
    urls = pages("shop-a.test", 50) + pages("shop-b.test", 50)  # long enough for workers that start late to join
    every_worker = [{"url": u, "dont_filter": False} for u in urls]  # each seeds all; the shared filter keeps one
    settings = {"SCHEDULER": "scrapy_redis.scheduler.Scheduler", "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
                "REDIS_URL": REDIS_URL, "SCHEDULER_QUEUE_KEY": f"{namespace}:queue", "SCHEDULER_DUPEFILTER_KEY": f"{namespace}:seen",
                "PROXY_STATE_URL": REDIS_URL, "PROXY_STATE_NAMESPACE": namespace, "PROXY_DOMAIN_COOLDOWN": 0.4,
                "SCHEDULER_PERSIST": True}  # else a worker that ends first flushes the shared filter: a late one re-seeds
    with Farm(specs, site_interval=0.4, site_retry_after=5) as farm:
        results = crawl_together(tmp_path, farm, [every_worker] * 3, timeout=40, **settings)
        hits = Counter((s.host, s.path) for s in farm.site_seen)
    fetched = [p["url"] for result in results for p in result["pages"]]
    assert sorted(fetched) == sorted(urls) and all(valid(p) for r in results for p in r["pages"])
    assert sum(1 for result in results if result["pages"]) >= 2  # the work was shared
    assert farm.site_limited == [] and set(hits.values()) == {1}


def test_a_fleet_process_killed_midway_loses_no_request_the_others_take_back_what_it_held(tmp_path, namespace):
    import re

    from .e2e import finish, start

    specs = [ProxySpec(f"p{i}") for i in range(4)]
    urls = pages("shop-a.test", 40) + pages("shop-b.test", 40)
    every_worker = [{"url": u, "dont_filter": False} for u in urls]
    done = tmp_path / "every-page-seen"  # the survivors stay open (idle) until the site has seen every page
    settings = {"SCHEDULER": "scrapy_redis.scheduler.Scheduler", "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
                "REDIS_URL": REDIS_URL, "SCHEDULER_QUEUE_KEY": f"{namespace}:queue", "SCHEDULER_DUPEFILTER_KEY": f"{namespace}:seen",
                "PROXY_STATE_URL": REDIS_URL, "PROXY_STATE_NAMESPACE": namespace, "PROXY_DOMAIN_COOLDOWN": 0.4,
                "SCHEDULER_PERSIST": True, "open_until": str(done)}
    with Farm(specs, site_interval=0.4, site_retry_after=5) as farm:
        victim = start(tmp_path, farm, every_worker, "asyncio", "victim", "list", **settings)
        deadline = time.monotonic() + 30
        while len(farm.site_seen) < 6 and time.monotonic() < deadline:  # it has taken the queue's head
            time.sleep(0.02)
        others = [start(tmp_path, farm, every_worker, "asyncio", f"crawl-{i}", "list", **settings) for i in range(2)]
        time.sleep(0.3)
        victim[0].kill()  # SIGKILL: no close, no flush of its queue, its leases and custody left as they were
        while {(s.host, s.path) for s in farm.site_seen} < {(u.split("/")[2], "/" + u.split("/", 3)[3]) for u in urls} \
                and time.monotonic() < deadline + 30:
            time.sleep(0.05)
        done.touch()
        results = [finish(job, 60) for job in others]
    victim_log = victim[2].read_text()
    crawled_by_victim = set(re.findall(r"Crawled \(200\) <GET (\S+)>", victim_log))
    fetched = {p["url"] for r in results for p in r["pages"]}
    assert fetched | crawled_by_victim >= set(urls), sorted(set(urls) - fetched - crawled_by_victim)
    assert all(r["errors"] == [] for r in results) and all(valid(p) for r in results for p in r["pages"])
    assert sum(r["stats"].get("proxybalance/custody/reclaimed", 0) for r in results) >= 1  # it held some
    assert farm.site_limited == []  # the survivors kept the sites' limits (the dead one's claims expired)
