"""What must hold on every Scrapy that pyproject.toml admits (``make compat`` runs this file
on the oldest): the package imports, and a real crawl through a pool with a dead proxy
fetches every page, retrying elsewhere, with requests waiting in the scheduler."""

import scrapy

import scrapy_proxybalance

from .e2e import Farm, ProxySpec, crawl, pages, valid


def test_the_package_imports_and_names_its_parts():
    assert scrapy_proxybalance.ProxyBalanceMiddleware and scrapy_proxybalance.ProxyScheduler
    assert tuple(int(x) for x in scrapy.__version__.split(".")[:2]) >= (2, 15)


def test_a_real_crawl_through_a_pool_with_a_dead_proxy(tmp_path):
    specs = [ProxySpec("ok-1"), ProxySpec("ok-2"), ProxySpec("dead", kind="dead")]
    urls = pages("shop-a.test", 20) + pages("shop-b.test", 20)
    with Farm(specs) as farm:
        result = crawl(tmp_path, farm, urls, PROXY_DOMAIN_COOLDOWN=0.1, PROXY_STRATEGY="round_robin")
    assert result["errors"] == [] and sorted(p["url"] for p in result["pages"]) == sorted(urls)
    assert all(valid(p) for p in result["pages"])
    stats = result["stats"]
    assert stats["proxybalance/retry/count"] >= 1 and stats["proxybalance/waits"] > 0
    assert not any(s.path for s in specs[2].seen)  # nothing listens there
