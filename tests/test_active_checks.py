"""End-to-end: active health checks in a crawl, and the ``scrapy proxycheck`` command."""

import json
import subprocess
import sys

from .e2e import ROOT, Farm, ProxySpec, crawl, pages, valid

ECHO = "http://echo.test/ip"
CHECKS = {"PROXY_HEALTH_CHECK_URL": ECHO, "PROXY_HEALTH_CHECK_BODY": '"origin"', "PROXY_HEALTH_CHECK_INTERVAL": 0.5,
          "PROXY_HEALTH_CHECK_TIMEOUT": 1.0}


def crawled(spec):
    return [s for s in spec.seen if s.host != "echo.test"]


def test_checks_bring_a_revived_proxy_back_long_before_its_backoff(tmp_path):
    specs = [ProxySpec("ok-1", exit_ip="127.0.0.11"), ProxySpec("ok-2", exit_ip="127.0.0.12"),
             ProxySpec("flaky", exit_ip="127.0.0.13")]
    urls = pages("shop-a.test", 50) + pages("shop-b.test", 50)
    with Farm(specs) as farm:
        farm.blackout(after_requests=10, seconds=1.5, names={"flaky"})
        result = crawl(tmp_path, farm, urls, PROXY_DOMAIN_COOLDOWN=0.3, PROXY_RECOVERY_INTERVAL=120,
                       PROXY_MAX_FAILURES=1, **CHECKS)
    assert result["errors"] == [] and len(result["pages"]) == 100 and all(valid(p) for p in result["pages"])
    stats = result["stats"]
    assert stats["proxybalance/checks/revived"] >= 1 and stats["proxybalance/checks"] > 6
    flaky = specs[2]
    # passively it would have stayed out for 90-120 s; the checks brought it back within seconds
    back = farm.down("flaky")[0][1]
    assert sum(1 for s in crawled(flaky) if s.at > back) >= 5
    assert "passed its health check: back on trial before its backoff ended" in result["log"]
    assert "proxybalance/exit_ip/shared" not in stats


def test_checks_eject_a_proxy_that_fails_them_and_spot_a_shared_exit_ip(tmp_path):
    specs = [ProxySpec("ok-1", exit_ip="127.0.0.21"), ProxySpec("twin", exit_ip="127.0.0.21"),
             ProxySpec("ok-3", exit_ip="127.0.0.23"),
             ProxySpec("odd", exit_ip="127.0.0.24", captcha_hosts=frozenset({"echo.test"}))]
    urls = pages("shop-a.test", 40) + pages("shop-b.test", 40)
    with Farm(specs) as farm:
        result = crawl(tmp_path, farm, urls, PROXY_DOMAIN_COOLDOWN=0.3, PROXY_HEALTH_CHECK_FALL=3, **CHECKS)
    assert result["errors"] == [] and len(result["pages"]) == 80
    stats = result["stats"]
    assert stats["proxybalance/checks/ejected"] == 1
    assert "ejected http://127.0.0.1" in result["log"] and "failed 3 health check(s): body does not match" in result["log"]
    assert stats["proxybalance/exit_ip/shared"] == 2
    assert "2 proxies share the exit IP 127.0.0.21" in result["log"]
    assert not any(s.host == "echo.test" for s in farm.site_seen if s.path != "/ip")  # checks only fetch /ip


def proxycheck(cwd, *args, env=None):
    return subprocess.run([sys.executable, "-m", "scrapy", "proxycheck", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env=env)


def test_proxycheck_prints_a_table_of_every_proxy(tmp_path):
    specs = [ProxySpec("fast", exit_ip="127.0.0.31"), ProxySpec("slow", kind="slow", delay=0.3, exit_ip="127.0.0.32"),
             ProxySpec("dead", kind="dead"), ProxySpec("hung", kind="hung"), ProxySpec("wrong", kind="wrong"),
             ProxySpec("locked", kind="auth", user="carol", password="pw-carol", exit_ip="127.0.0.31")]
    pool = tmp_path / "proxies.txt"
    with Farm(specs):
        wrong_password = specs[5].url.replace("carol:pw-carol", "dave:nope")
        pool.write_text("\n".join(s.url for s in specs) + "\n" + wrong_password + "\n")
        healthy_file = tmp_path / "healthy.txt"
        proc = proxycheck(tmp_path, "--pool", str(pool), "--url", ECHO, "--timeout", "1.5",
                          "-s", 'PROXY_HEALTH_CHECK_BODY="origin"', "--save-healthy", str(healthy_file))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("proxy") and "result  status  latency  exit IP" in out.splitlines()[0]
    fast, slow, dead, hung, wrong, locked = specs
    rows = {line.split()[0]: line for line in out.splitlines()[2:] if line.startswith("http://")}
    assert rows[fast.url].split()[1:3] == ["ok", "200"] and "127.0.0.31" in rows[fast.url]
    assert "DownloadConnectionRefusedError" in rows[dead.url]
    assert "DownloadTimeoutError" in rows[hung.url]
    assert "body does not match" in rows[wrong.url]
    assert "ok" in rows["http://carol:***@" + locked.url.split("@")[1]]
    assert "status 407" in rows["http://dave:***@" + locked.url.split("@")[1]]
    assert "3 of 7 proxies healthy" in out
    assert "2 proxies share the exit IP 127.0.0.31" in out
    assert "[7/7]" in proc.stderr  # progress while it runs
    assert "pw-carol" not in out + proc.stderr and "nope" not in out + proc.stderr
    assert sorted(healthy_file.read_text().split()) == sorted([fast.url, slow.url, locked.url])  # usable as a pool
    assert healthy_file.stat().st_mode & 0o777 == 0o600  # it holds credentials: its owner's only


def test_proxycheck_json_and_exit_status_when_nothing_is_healthy(tmp_path):
    pool = tmp_path / "proxies.txt"
    with Farm([ProxySpec("dead-1", kind="dead"), ProxySpec("dead-2", kind="dead")]) as farm:
        pool.write_text("\n".join(farm.pool()))
        proc = proxycheck(tmp_path, "--pool", str(pool), "--url", ECHO, "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["checked"] == 2 and report["healthy"] == 0
    assert {p["error"] for p in report["proxies"]} == {"DownloadConnectionRefusedError"}


def test_proxycheck_in_the_example_project_uses_its_settings(tmp_path):
    pool = tmp_path / "proxies.txt"
    with Farm([ProxySpec("one", exit_ip="127.0.0.41")]) as farm:
        pool.write_text(farm.pool()[0] + "\n")
        env = {"PATH": "", "PYTHONPATH": str(ROOT), "FARM_POOL_FILE": str(pool), "FARM_SITE": "unused"}
        proc = proxycheck(ROOT / "example_project", env=env)
        bad_url = proxycheck(ROOT / "example_project", "--url", "http://exa mple/ip", env=env)
        bad_timeout = proxycheck(ROOT / "example_project", "--timeout", "nan", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "1 of 1 proxies healthy" in proc.stdout and "127.0.0.41" in proc.stdout
    assert bad_url.returncode == 2 and "--url must be an http(s) URL without spaces, got 'http://exa mple/ip'" in bad_url.stderr
    assert bad_timeout.returncode == 2 and "--timeout must be a number of seconds > 0 and <= 3600, got nan" in bad_timeout.stderr
    assert "FAILED" not in bad_url.stdout + bad_timeout.stdout  # the proxies were not blamed
