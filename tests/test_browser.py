"""Pages rendered by scrapy-playwright in headless Chromium (Debian's), through the balancer's
proxies: a browser context per proxy, bounded, with failures, bans and credentials."""

import re
import shutil
from collections import defaultdict
from itertools import pairwise

import pytest

from .e2e import Farm, ProxySpec, crawl, pages, valid

CHROMIUM = shutil.which("chromium-headless-shell") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="needs a Chromium (Debian's chromium-headless-shell or chromium)"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
BROWSER = {
    "DOWNLOAD_HANDLERS": dict.fromkeys(("http", "https"), "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"),
    "PLAYWRIGHT_BROWSER_TYPE": "chromium",
    "PLAYWRIGHT_LAUNCH_OPTIONS": {"executable_path": CHROMIUM, "headless": True, "args": [
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync", "--disable-dev-shm-usage",
        "--renderer-process-limit=1", "--disable-features=IsolateOrigins,site-per-process"]},  # less CPU
    "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT": 10_000,
}
COOLDOWN = 0.05


def rendered(urls, **meta):
    return [{"url": url, "meta": {"playwright": True, **meta}} for url in urls]


def test_rendered_pages_go_through_the_balancer_s_proxies_one_bounded_browser_context_each(tmp_path):
    pytest.importorskip("scrapy_playwright", reason="the playwright extra")
    specs = [ProxySpec("ok-1"), ProxySpec("ok-2"), ProxySpec("ok-3"), ProxySpec("dead", kind="dead"),
             ProxySpec("picky", ban_hosts=frozenset({"shop-b.test"})),
             ProxySpec("private", kind="auth", user="render", password="p@ss:w0rd")]
    plain = rendered(pages("shop-a.test", 14) + pages("shop-b.test", 14))
    sticky = rendered(pages("shop-a.test", 6, start=101), proxy_session="s1")
    with Farm(specs) as farm:
        result = crawl(tmp_path, farm, plain + sticky, timeout=150, PLAYWRIGHT_MAX_CONTEXTS=3,
                       PROXY_DOMAIN_COOLDOWN=COOLDOWN, CONCURRENT_REQUESTS=8, PROXY_STATS_PER_PROXY=True,
                       PROXY_POOL=farm.named_pool(), PROXY_RECOVERY_INTERVAL=120, **BROWSER)
    assert result["errors"] == []
    assert len(result["pages"]) == 34 and all(valid(p) for p in result["pages"])  # every page, the real one
    stats = result["stats"]
    assert stats["proxybalance/requests/playwright"] >= 34
    # never more than 3 live browser contexts (scrapy-playwright's own count, and ours)
    assert stats["playwright/context_count/max_concurrent"] <= 3
    assert stats["proxybalance/playwright/contexts/max"] <= 3
    # the page came from the exit of the proxy its meta names; no credential reached the site
    exit_of = {f"http://127.0.0.1:{s.port}": s.exit_ip for s in specs}
    seen_from = {(s.host, s.path): s.exit_ip for s in farm.site_seen}
    for page in result["pages"]:
        host, path = page["url"].split("/", 3)[2], "/" + page["url"].split("/", 3)[3]
        assert page["proxy"] is None and page["server"] in exit_of  # not meta['proxy']: the browser's context
        assert seen_from[host, path] == exit_of[page["server"]], page["url"]
    assert not any("proxy-authorization" in s.headers for s in farm.site_seen)
    # the dead proxy: tried, never a page, out at its PROXY_MAX_FAILURES-th browser error (if the crawl got there)
    failures = stats.get("proxybalance/proxy/dead/failures", 0)
    assert 1 <= failures <= 3 and (failures < 3 or stats["proxybalance/proxy/dead/ejections"] >= 1)
    assert all(page["server"] != f"http://127.0.0.1:{specs[3].port}" for page in result["pages"])
    # its retries name the browser's error: Chromium's (ERR_PROXY_CONNECTION_FAILED), or, on a
    # busy machine, the trial timeout an unproven proxy gets
    assert re.search(r"\(failed \d+ times\): playwright\.(ERR_PROXY_CONNECTION_FAILED|TimeoutError)", result["log"])
    # the proxy shop-b bans: kept off shop-b after its bans; the one wanting credentials carried pages
    assert stats["proxybalance/proxy/picky/bans"] >= 1
    picky = [s for s in specs[4].seen if s.host == "shop-b.test"]
    assert len(picky) <= 3, len(picky)
    private = specs[5]
    assert private.exit_ip in {s.exit_ip for s in farm.site_seen}
    assert any("proxy-authorization" in s.headers for s in private.seen)  # Chromium answered its 407 challenge
    # the per-(proxy, site) cooldown held for navigations
    arrivals = defaultdict(list)
    for spec in specs:
        for s in spec.seen:
            if spec.kind != "auth" or "proxy-authorization" in s.headers:  # (not the challenge's first try)
                arrivals[spec.name, s.host].append(s.at)
    for (name, host), times in arrivals.items():
        times.sort()
        gaps = [b - a for a, b in pairwise(times)]
        assert min(gaps, default=COOLDOWN) >= COOLDOWN - 0.02, (name, host, gaps)
    # a sticky session's pages: one context, one exit
    session = [p for p in result["pages"] if p["meta"].get("proxy_session") == "s1"]
    assert len(session) == 6
    assert len({p["meta"]["playwright_context"] for p in session}) == 1
    assert len({seen_from["shop-a.test", "/" + p["url"].split("/", 3)[3]] for p in session}) == 1
