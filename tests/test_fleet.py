"""End-to-end: several crawler processes share one pool through Redis (PROXY_STATE_URL)."""

import uuid
from collections import Counter

import pytest

from .e2e import Farm, ProxySpec, crawl_together, pages, valid

redis = pytest.importorskip("redis")
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def namespace():
    name = f"proxybalance-test-{uuid.uuid4().hex[:8]}"
    yield name
    server = redis.Redis.from_url(REDIS_URL)
    keys = list(server.scan_iter(f"{name}:*"))
    if keys:
        server.delete(*keys)


def test_three_processes_keep_each_proxy_s_pace_on_a_site_fleet_wide(tmp_path, namespace):
    specs = [ProxySpec(f"p{i}") for i in range(6)]
    jobs = [pages("shop-a.test", 24, start=1 + 24 * i) + pages("shop-b.test", 24, start=1 + 24 * i) for i in range(3)]
    with Farm(specs, site_interval=0.3, site_retry_after=5) as farm:
        results = crawl_together(tmp_path, farm, jobs, PROXY_STATE_URL=REDIS_URL, PROXY_STATE_NAMESPACE=namespace,
                                 PROXY_DOMAIN_COOLDOWN=0.3)
        hits = Counter((s.host, s.path) for s in farm.site_seen)
    for job, result in zip(jobs, results, strict=True):
        assert result["errors"] == [] and sorted(p["url"] for p in result["pages"]) == sorted(job)
        assert all(valid(p) for p in result["pages"])
        assert "proxybalance/state/errors" not in result["stats"]
    assert farm.site_limited == []  # no exit asked a site again sooner than 0.3 s, across the fleet
    assert len(hits) == 144 and set(hits.values()) == {1}
