"""End-to-end: the waiting room wraps another scheduler (scrapy-redis's, against the local
Redis): a paused crawl resumes every request that was waiting, each page fetched once."""

from collections import Counter

import pytest

from .conftest import needs_redis
from .e2e import Farm, ProxySpec, crawl, pages, valid

redis = pytest.importorskip("redis", reason="the shared store and scrapy-redis need the redis extra")
pytestmark = needs_redis
REDIS_URL = "redis://127.0.0.1:6379/0"


def test_scrapy_redis_scheduler_pause_and_resume_loses_no_waiting_request(tmp_path, namespace):
    urls = pages("shop.test", 160)
    requests = [{"url": u, "dont_filter": False} for u in urls]
    settings = {
        "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "SCHEDULER_PERSIST": True,
        "REDIS_URL": REDIS_URL,
        "PROXY_DOMAIN_COOLDOWN": 0.05,
        "CONCURRENT_REQUESTS": 8,
    }
    with Farm([ProxySpec("p1"), ProxySpec("p2")]) as farm:
        first = crawl(tmp_path, farm, requests, run="first", spider=namespace, CLOSESPIDER_TIMEOUT=1.5, **settings)
        assert redis.Redis.from_url(REDIS_URL).zcard(f"{namespace}:requests") > 0  # the rest waits in Redis
        second = crawl(tmp_path, farm, requests, run="second", spider=namespace, **settings)
        hits = Counter(s.path for s in farm.site_seen)
    assert first["stats"]["proxybalance/waits"] > 0
    assert sorted(p["url"] for p in first["pages"] + second["pages"]) == sorted(urls)
    assert len(hits) == 160 and set(hits.values()) == {1}
    assert all(valid(p) for p in first["pages"] + second["pages"])
