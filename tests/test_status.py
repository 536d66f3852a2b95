"""Seeing the pool while it works, end to end: the status server of a real crawl (its JSON and
Prometheus metrics against the crawl's own stats, the token, the actions, the page in headless
Chromium), the closing report, and pools read from a provider (a URL, a function)."""

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

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
    parser = pytest.importorskip("prometheus_client.parser", reason="/metrics needs the metrics extra")
    text_string_to_metric_families = parser.text_string_to_metric_families
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


@pytest.mark.parametrize("setting", ["PROXY_STATUS_ADDRESS=127.0.0.1:6025", "PROXY_STATE_URL=redis://127.0.0.1:6379/0"])
def test_the_status_server_or_a_shared_store_with_another_reactor_stops_scrapy_crawl_with_one_line(tmp_path, setting):
    # (a non-loopback address without PROXY_STATUS_TOKEN is refused like any bad setting: tests/test_config.py)
    settings = [setting, "TWISTED_REACTOR=twisted.internet.epollreactor.EPollReactor"]
    name = setting.split("=")[0]
    message = f"{name} needs asyncio, but this crawl runs twisted.internet.epollreactor.EPollReactor"
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


class ProviderAPI(BaseHTTPRequestHandler):
    """A provider's list of proxies: the server's ``answers`` in turn (the last repeats; an int
    is an error status); it wants basic auth ``acme:pa55word`` and ``?key=hunter2-key``."""

    def do_GET(self):
        server = self.server
        server.calls.append(self.path)
        answer = server.answers[min(len(server.calls), len(server.answers)) - 1]
        authorized = self.headers.get("Authorization") == "Basic YWNtZTpwYTU1d29yZA=="
        if not authorized or not self.path.endswith("?key=hunter2-key"):
            answer = 401
        body = b"no" if isinstance(answer, int) else answer.encode()
        self.send_response(200 if isinstance(answer, str) else answer)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def provider(answers):
    server = ThreadingHTTPServer(("127.0.0.1", 0), ProviderAPI)
    server.answers, server.calls = answers, []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_pool_source_url_is_read_again_and_a_failing_one_keeps_the_last_good_pool(tmp_path):
    specs = [ProxySpec("fast-1"), ProxySpec("fast-2"), ProxySpec("fast-3")]
    with Farm(specs) as farm:
        first = f"# our proxies\n{specs[0].url}\n{specs[1].url}  # two of them\n"
        then = json.dumps([{"url": specs[1].url, "name": "fast-2"}, {"url": specs[2].url, "name": "fast-3"}])
        with provider([first, then, then, 500]) as api:
            source = f"http://acme:pa55word@127.0.0.1:{api.server_port}/proxies?key=hunter2-key"
            result = finish(start(tmp_path, farm, pages("shop.test", 16), "asyncio", "source", "list", PROXY_POOL=[],
                                  PROXY_POOL_SOURCE=source, PROXY_POOL_RELOAD_INTERVAL=0.2, PROXY_DOMAIN_COOLDOWN=0.2,
                                  PROXY_REPORT_FILE=str(tmp_path / "report.json")), 60)
            calls = len(api.calls)
    assert len(result["pages"]) == 16 and result["errors"] == []
    log, stats = result["log"], result["stats"]
    report = json.loads((tmp_path / "report.json").read_text())
    rows = {p["label"]: p for p in report["proxies"]}
    assert set(rows) == {"fast-2", "fast-3"}  # the last good pool, kept through the failures
    assert rows["fast-2"]["requests"] == len(specs[1].seen)  # it stayed: it kept its counts (and health)
    assert specs[2].seen and specs[0].seen  # fast-3 joined; fast-1 served before it left
    errors = stats["proxybalance/pool/source_errors"]
    assert calls >= 5 and calls - 4 <= errors <= calls - 3  # (a read may have been under way at the close)
    assert log.count("keeping the last good pool (2 proxies)") == 1  # said once, however often it failed
    assert f"http://acme:***@127.0.0.1:{api.server_port}/proxies?key=*** failed (HTTP 500)" in log
    assert "1 added, 1 removed, 1 updated, 2 in the pool" in log
    assert report["source"]["failing"] and report["source"]["errors"] == errors
    everything = log + json.dumps(report)
    assert "pa55word" not in everything and "hunter2" not in everything


def test_a_pool_source_function_is_read_at_once_when_the_pool_runs_dry(tmp_path):
    specs = [ProxySpec("dead", kind="dead"), ProxySpec("fresh")]
    plan = tmp_path / "plan.json"
    with Farm(specs) as farm:
        plan.write_text(json.dumps([[specs[0].url], [specs[0].url, {"url": specs[1].url, "name": "fresh"}], "fail"]))
        job = start(tmp_path, farm, pages("shop.test", 8), "asyncio", "dry", "list", PROXY_POOL=[],
                    PROXY_POOL_SOURCE="tests.pool_source.proxies", PROXY_POOL_RELOAD_INTERVAL=60,
                    PROXY_MAX_FAILURES=1, PROXY_RECOVERY_INTERVAL=60, PROXY_DOMAIN_COOLDOWN=0.05,
                    env={"POOL_SOURCE_PLAN": str(plan)})
        result = finish(job, 60)
    assert len(result["pages"]) == 8 and result["errors"] == []
    assert all(p["proxy"].endswith(str(specs[1].port)) for p in result["pages"])
    calls = Path(f"{plan}.calls").read_text().splitlines()
    assert len(calls) == 2  # at the start, and once when the pool (the dead proxy) ran dry: not the 60 s interval
    assert "MainThread" not in calls[0] and "MainThread" not in calls[1]  # a plain function runs in a thread
    assert "read PROXY_POOL_SOURCE at once: no proxy could serve a site" in result["log"]
    assert result["stats"]["elapsed_time_seconds"] < 15


def test_what_a_source_may_give_and_how_its_url_is_shown(tmp_path, monkeypatch):
    from scrapy_proxybalance.sources import PoolSource, SourceError, mask_source, parse_source

    assert mask_source("https://acme:pa55@api.example/v1/list?key=k3y&country=de#x") == \
        "https://acme:***@api.example/v1/list?key=***&country=***#***"
    text = "# provider list\nhttp://10.0.0.1:1\n10.0.0.2:2  # no scheme\n{\"url\": \"http://u:p@10.0.0.3:3\", \"name\": \"three\"}\n"
    assert [p.label for p in parse_source(text)] == ["http://10.0.0.1:1", "http://10.0.0.2:2", "three"]
    assert [p.key for p in parse_source(b'["http://10.0.0.1:1", {"url": "http://10.0.0.1:1"}]')] == ["http://10.0.0.1:1"]
    assert [p.key for p in parse_source(iter(["10.0.0.9:9"]))] == ["http://10.0.0.9:9"]
    for bad, message in [("[]", "listed no proxies"), ("[1, ", "not valid JSON"), ("http://ok:1\nftp://u:LEAK@h:1", "line 2"),
                         ({"proxies": []}, "a list of entries or text"), (b"\xff\xfe", "not UTF-8")]:
        with pytest.raises(SourceError, match=re.escape(message)) as info:
            parse_source(bad)
        assert "LEAK" not in str(info.value)

    # a plain function runs in a thread, an async one on the loop; a failing one says why, masked
    import asyncio

    from . import pool_source

    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps([["http://10.0.0.1:1"], ["http://10.0.0.2:2"], "fail"]))
    monkeypatch.setenv("POOL_SOURCE_PLAN", str(plan))
    assert [p.key for p in asyncio.run(PoolSource(pool_source.proxies, None, print).read())] == ["http://10.0.0.1:1"]
    source = PoolSource(pool_source.proxies_async, None, print)
    assert [p.key for p in asyncio.run(source.read())] == ["http://10.0.0.2:2"]
    with pytest.raises(SourceError) as info:
        asyncio.run(source.read())
    assert source.hide(str(info.value)) == "ConnectionError: provider down: https://acme:***@provider.example/list"
    assert Path(f"{plan}.calls").read_text().splitlines()[1] == "MainThread"


@pytest.mark.skipif(not (CHROMIUM and os.path.exists(CHROMEDRIVER)), reason="needs Debian's chromium and chromium-driver")
def test_the_status_page_fills_its_tables_and_draws_its_chart_in_headless_chromium(tmp_path):
    pytest.importorskip("selenium", reason="drives Chromium through selenium (the test extra)")
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
        sites, n, pace, points = ("shop-a.test", "shop-b.test"), 12, 0.4, 2
    urls = [f"http://{site}/page/{i}" for i in range(1, n + 1) for site in sites]
    port = free_port()
    with Farm(specs) as farm:
        job = start(tmp_path, farm, urls, "asyncio", "page", "list", PROXY_POOL=farm.named_pool(),
                    PROXY_STATUS_ADDRESS=f"127.0.0.1:{port}", PROXY_STATUS_TOKEN=TOKEN, PROXY_DOMAIN_COOLDOWN=pace,
                    PROXY_BAN_BODY_PATTERNS=['class="captcha"'], PROXY_MAX_FAILURES=1, PROXY_RECOVERY_INTERVAL=60,
                    PROXY_HEALTH_CHECK_URL="http://echo.test/ip" if picture else None,  # exit IPs in the picture
                    PROXY_HEALTH_CHECK_INTERVAL=2, linger=2)
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
            wait.until(lambda d: "ejected" in d.find_element(By.ID, "proxies").text)  # once the dead one was tried
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
