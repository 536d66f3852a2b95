"""Seeing the pool while it works, end to end: the status server of a real crawl (its JSON and
Prometheus metrics against the crawl's own stats, the token, the actions, the page in headless
Chromium), and the closing report."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .e2e import ROOT, Farm, ProxySpec, finish, pages, start, valid

PASSWORD = "s3cret-Pw"  # the credentialed proxy's: it must show nowhere
TOKEN = "t0ken-for-the-status-page-42"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str, method: str = "GET", headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def poll_until(job, url: str, done, headers: dict | None = None, seconds: float = 40) -> dict:
    """``/status.json`` of a running crawl, read every 0.1 s until ``done(data)``; every read is
    checked against the last (counts only grow). Returns the first that is done."""
    deadline, last = time.monotonic() + seconds, None
    while time.monotonic() < deadline and job[0].poll() is None:
        try:
            status, _, body = fetch(url, headers=headers)
        except OSError:  # not listening yet
            time.sleep(0.05)
            continue
        assert status == 200, body
        data = json.loads(body)
        if last is not None:
            assert data["totals"]["requests"] >= last["totals"]["requests"]
            assert all(data["totals"]["outcomes"][k] >= n for k, n in last["totals"]["outcomes"].items())
        last = data
        if done(data):
            return data
        time.sleep(0.1)
    raise AssertionError(f"the status server never showed what was expected; last: {last}")


def metrics_of(text: str) -> dict[tuple, float]:
    """``{(sample name, (label, value), ...): value}`` of a Prometheus exposition."""
    return {(s.name, *sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def farm():
    specs = [ProxySpec("fast-1"), ProxySpec("fast-2"), ProxySpec("dead", kind="dead"),
             ProxySpec("sly", captcha_hosts=frozenset({"shop-b.test"})),
             ProxySpec("private", kind="auth", user="demo", password=PASSWORD)]
    with Farm(specs) as farm:
        yield farm


def test_status_json_and_metrics_match_the_crawl_s_stats_and_the_report_has_every_proxy(tmp_path, farm):
    port = free_port()
    urls = pages("shop-a.test", 20) + pages("shop-b.test", 20)
    job = start(tmp_path, farm, urls, "asyncio", "status", "list", PROXY_POOL=farm.named_pool(),
                PROXY_STATUS_ADDRESS=f"127.0.0.1:{port}", PROXY_METRICS_PER_PROXY=True, PROXY_METRICS_PER_SITE=True,
                PROXY_REPORT_FILE=str(tmp_path / "reports" / "proxies-%(name)s-%(time)s.json"),
                PROXY_BAN_BODY_PATTERNS=['class="captcha"'], PROXY_DOMAIN_COOLDOWN=0.1, PROXY_MAX_FAILURES=1,
                PROXY_RECOVERY_INTERVAL=60, linger=1.5)
    base = f"http://127.0.0.1:{port}"
    data = poll_until(job, f"{base}/status.json", lambda d: d["totals"]["outcomes"]["success"] == 40)
    _, headers, metrics_text = fetch(f"{base}/metrics")
    page_status, page_headers, page = fetch(f"{base}/")
    assert fetch(f"{base}/status.json", headers={"Host": "rebound.example:80"})[0] == 403  # DNS rebinding
    assert fetch(f"{base}/proxies/0/disable", method="POST")[0] == 403  # no actions without PROXY_STATUS_ACTIONS
    result = finish(job, 60)
    stats = result["stats"]

    # what the status server showed in the end is what the crawl's stats say
    totals = data["totals"]
    assert len(result["pages"]) == 40 and all(valid(p) for p in result["pages"])
    assert totals["requests"] == stats["proxybalance/requests"] == sum(totals["outcomes"].values())
    assert totals["outcomes"]["failure"] == stats["proxybalance/failures"] >= 1  # the dead one
    assert totals["outcomes"]["ban"] == stats["proxybalance/bans"] >= 1  # the captcha
    assert (totals["retries"], totals["ejections"]) == (stats["proxybalance/retry/count"], stats["proxybalance/ejections"])
    assert data["pool"] == {"total": 5, "healthy": 4, "trial": 0, "ejected": 1, "disabled": 0, "banned": 1,
                            "backups": 0, "backups_in_use": 0, "in_flight": 0, "waiting": 0}
    rows = {p["label"]: p for p in data["proxies"]}
    assert set(rows) == {"fast-1", "fast-2", "dead", "sly", "private"}  # names, not URLs
    assert rows["dead"]["state"] == "ejected" and "DownloadConnectionRefusedError" in rows["dead"]["why"]
    assert 0 < rows["dead"]["next_trial_s"] <= 60 and rows["dead"]["last_ejection"]["reason"]
    assert rows["sly"]["banned_by"] == ["shop-b.test"] and rows["sly"]["bans_by_site"] == {
        "shop-b.test": {"200 ban page": totals["outcomes"]["ban"]}}
    assert rows["private"]["proxy"] == f"http://demo:***@127.0.0.1:{farm.specs[4].port}"
    sites = {s["site"]: s for s in data["sites"]}
    assert sites["shop-a.test"]["pages"] == sites["shop-b.test"]["pages"] == 20
    assert sites["shop-b.test"]["bans_by_status"] == {"200 ban page": totals["outcomes"]["ban"]}
    assert sum(p for _, p, _ in data["throughput"]["points"]) == 40

    # /metrics: the same numbers, written by prometheus_client
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    m = metrics_of(metrics_text.decode())
    for outcome, n in totals["outcomes"].items():
        assert m["proxybalance_requests_total", ("outcome", outcome)] == n
    assert m["proxybalance_requests_sent_total",] == stats["proxybalance/requests"]
    assert m["proxybalance_proxies", ("state", "ejected")] == 1 and m["proxybalance_proxies", ("state", "healthy")] == 4
    assert m["proxybalance_waiting_requests",] == 0 and m["proxybalance_proxies_banned",] == 1
    assert m["proxybalance_latency_seconds_count",] == 40 + totals["outcomes"]["ban"]  # every response
    assert m["proxybalance_latency_seconds_bucket", ("le", "+Inf")] == 40 + totals["outcomes"]["ban"]
    assert m["proxybalance_proxy_requests_total", ("outcome", "ban"), ("proxy", "sly")] == totals["outcomes"]["ban"]
    assert m["proxybalance_proxy_state", ("proxy", "dead"), ("state", "ejected")] == 1
    assert m["proxybalance_site_requests_total", ("outcome", "success"), ("site", "shop-a.test")] == 20

    # the page: self-contained, locked down
    assert page_status == 200 and b"<svg" in page and b"status.json" in page
    assert not re.search(rb"<script[^>]+src=|<link[^>]+stylesheet|@import|https?://(?!www\.w3\.org/2000/svg)", page)
    assert "script-src 'nonce-" in page_headers["Content-Security-Policy"]

    # the report, written at close: what the stats say, every proxy with its history
    [report_file] = (tmp_path / "reports").iterdir()
    assert re.fullmatch(r"proxies-list-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\+00-00\.json", report_file.name)
    report = json.loads(report_file.read_text())
    assert report["finish_reason"] == "finished" and report["totals"] == {**totals, "waits": stats["proxybalance/waits"]}
    by_name = {p["label"]: p for p in report["proxies"]}
    assert by_name["dead"]["ejection_history"][0]["reason"] == "DownloadConnectionRefusedError"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", by_name["dead"]["ejection_history"][0]["at"])
    assert by_name["dead"]["failures_by_reason"] == {"DownloadConnectionRefusedError": stats["proxybalance/failures"]}
    assert by_name["sly"]["bans_by_site"] == rows["sly"]["bans_by_site"]
    assert sum(p["successes"] for p in report["proxies"]) == 40 and report["latency"]["count"] == 40 + totals["outcomes"]["ban"]
    assert {s["site"]: s["pages"] for s in report["sites"]} == {"shop-a.test": 20, "shop-b.test": 20}

    everything = json.dumps(data) + metrics_text.decode() + page.decode() + report_file.read_text() + result["log"]
    assert PASSWORD not in everything


def test_a_token_guards_every_endpoint_and_actions_disable_and_enable_a_proxy_without_a_reactor(tmp_path, farm):
    port = free_port()
    job = start(tmp_path, farm, pages("shop.test", 16), "reactorless", "token", "list", PROXY_POOL=farm.named_pool()[:2],
                PROXY_STATUS_ADDRESS=f"127.0.0.1:{port}", PROXY_STATUS_TOKEN=TOKEN, PROXY_STATUS_ACTIONS=True,
                PROXY_DOMAIN_COOLDOWN=0.15, linger=1.0)
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {TOKEN}"}
    data = poll_until(job, f"{base}/status.json", lambda d: d["totals"]["requests"] > 0, headers=auth)
    for path in ("/", "/status.json", "/metrics"):
        status, headers, _ = fetch(base + path)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer"), path
        assert fetch(base + path, headers={"Authorization": "Bearer " + TOKEN[:-1] + "x"})[0] == 401
        assert fetch(f"{base}{path}?token={TOKEN}")[0] == 200
        assert fetch(base + path, headers=auth)[0] == 200
    fast_2 = next(p for p in data["proxies"] if p["label"] == "fast-2")
    action = f"{base}/proxies/{fast_2['id']}/disable"
    assert fetch(action, method="POST")[0] == 401
    assert fetch(action, method="POST", headers={**auth, "Origin": "http://elsewhere.example"})[0] == 403
    status, _, body = fetch(action, method="POST", headers=auth)
    assert status == 200 and json.loads(body)["proxy"] == {"id": fast_2["id"], "label": "fast-2", "state": "disabled"}
    data = json.loads(fetch(f"{base}/status.json", headers=auth)[2])
    assert data["pool"]["disabled"] == 1 and data["actions"] is True
    assert fetch(f"{base}/proxies/{fast_2['id']}/enable", method="POST", headers=auth)[0] == 200
    assert fetch(f"{base}/proxies/99/enable", method="POST", headers=auth)[0] == 404
    result = finish(job, 60)
    assert len(result["pages"]) == 16 and result["errors"] == []
    assert "disabled fast-2 from the status page" in result["log"] and "enabled fast-2 from the status page" in result["log"]
    assert TOKEN not in result["log"]


def test_the_status_server_with_another_reactor_stops_scrapy_crawl_with_one_line(tmp_path):
    # (a non-loopback address without PROXY_STATUS_TOKEN is refused like any bad setting: tests/test_config.py)
    settings = ["PROXY_STATUS_ADDRESS=127.0.0.1:6025", "TWISTED_REACTOR=twisted.internet.epollreactor.EPollReactor"]
    message = "PROXY_STATUS_ADDRESS needs asyncio, but this crawl runs twisted.internet.epollreactor.EPollReactor"
    pool = tmp_path / "proxies.txt"
    pool.write_text("http://127.0.0.1:9\n")
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "pages", *(a for s in settings for a in ("-s", s))],
        cwd=ROOT / "example_project", capture_output=True, text=True, timeout=60,
        env={"PATH": "", "FARM_POOL_FILE": str(pool), "FARM_SITE": "unused", "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if "scrapy-proxybalance cannot start" in line]
    assert len(lines) == 1 and message in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(not (CHROMIUM and os.path.exists(CHROMEDRIVER)), reason="needs Debian's chromium and chromium-driver")
def test_the_status_page_fills_its_tables_and_draws_its_chart_in_headless_chromium(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from scrapy_proxybalance.testing.farm import demo_specs

    picture = bool(os.environ.get("UPDATE_SCREENSHOT"))  # `make screenshot`: the demo farm, longer, for the README
    if picture:
        specs, sites, n, pace, points = demo_specs(), ("shop-a.test", "shop-b.test", "shop-c.test"), 60, 2.5, 25
    else:
        specs = [ProxySpec("fast-1"), ProxySpec("fast-2"), ProxySpec("dead", kind="dead"),
                 ProxySpec("sly", captcha_hosts=frozenset({"shop-b.test"})),
                 ProxySpec("private", kind="auth", user="demo", password=PASSWORD)]
        sites, n, pace, points = ("shop-a.test", "shop-b.test"), 20, 0.4, 2
    urls = [f"http://{site}/page/{i}" for i in range(1, n + 1) for site in sites]
    port = free_port()
    with Farm(specs) as farm:
        job = start(tmp_path, farm, urls, "asyncio", "page", "list", PROXY_POOL=farm.named_pool(),
                    PROXY_STATUS_ADDRESS=f"127.0.0.1:{port}", PROXY_STATUS_TOKEN=TOKEN, PROXY_DOMAIN_COOLDOWN=pace,
                    PROXY_BAN_BODY_PATTERNS=['class="captcha"'], PROXY_MAX_FAILURES=1, PROXY_RECOVERY_INTERVAL=60,
                    PROXY_HEALTH_CHECK_URL="http://echo.test/ip", PROXY_HEALTH_CHECK_INTERVAL=2, linger=2)
        options = webdriver.ChromeOptions()
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1400,1250"):
            options.add_argument(argument)
        options.binary_location = CHROMIUM
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # starts while the crawl does
        try:
            poll_until(job, f"http://127.0.0.1:{port}/status.json", lambda d: d["totals"]["outcomes"]["success"] > 0,
                       headers={"Authorization": f"Bearer {TOKEN}"})
            driver.get(f"http://127.0.0.1:{port}/?token={TOKEN}")
            wait = WebDriverWait(driver, 60 if picture else 15, poll_frequency=0.1)
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#proxies tbody tr")) == len(specs))
            wait.until(lambda d: int(d.find_element(By.ID, "chart").get_attribute("data-points") or 0) >= points)
            line = driver.find_element(By.ID, "line-pages").get_attribute("points")
            names = {e.text for e in driver.find_elements(By.CSS_SELECTOR, "#proxies tbody td:first-child")}
            shown_sites = {e.text for e in driver.find_elements(By.CSS_SELECTOR, "#sites tbody td:first-child")}
            states = driver.find_element(By.ID, "proxies").text
            live = driver.find_element(By.ID, "conn").text
            errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            screenshot = driver.get_screenshot_as_png()
        except BaseException:
            job[0].kill()
            raise
        finally:
            driver.quit()
        finished = finish(job, 90)
    assert names == {spec.name for spec in specs} and shown_sites == set(sites)
    assert len(line.split()) >= points and "ejected" in states and live.startswith("live")
    assert errors == []
    assert screenshot.startswith(b"\x89PNG") and len(screenshot) > 10_000
    (tmp_path / "status-page.png").write_bytes(screenshot)
    if picture:
        (ROOT / "docs" / "status-page.png").write_bytes(screenshot)
    assert len(finished["pages"]) == len(urls)
