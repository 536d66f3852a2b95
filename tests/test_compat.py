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


def test_without_a_reactor_the_default_handler_carries_the_pool_or_the_crawl_says_why_not(tmp_path):
    """Scrapy 2.19's default handler without a reactor (aiohttp) carries proxies; Scrapy 2.15's
    (httpx) ignores meta['proxy'] and would send the credentials to the site: refused in one line."""
    specs = [ProxySpec("ok-1"), ProxySpec("ok-2")]
    with Farm(specs) as farm:
        result = crawl(tmp_path, farm, pages("shop.test", 10), reactor="reactorless-default", PROXY_DOMAIN_COOLDOWN=0)
    if tuple(int(x) for x in scrapy.__version__.split(".")[:2]) >= (2, 16):
        assert result["errors"] == [] and len(result["pages"]) == 10
    else:
        assert result["pages"] == [] and not any(s.path for spec in specs for s in spec.seen)
        assert "ignores meta['proxy']" in result["log"] and "use Scrapy 2.16 or newer" in result["log"]
