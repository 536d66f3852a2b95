"""Helpers for end-to-end tests: a farm in this process, a real crawl in a subprocess."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from scrapy_proxybalance.testing.farm import Farm, ProxySpec, token

RUNNER = Path(__file__).with_name("crawl_runner.py")
ROOT = Path(__file__).parent.parent

REACTORS = {
    "asyncio": {"TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor"},
    "plain": {"TWISTED_REACTOR": "twisted.internet.epollreactor.EPollReactor"},
    # Scrapy without a Twisted reactor, through its httpx handler
    "reactorless": {
        "TWISTED_REACTOR_ENABLED": False,
        "TWISTED_REACTOR": None,
        "DOWNLOAD_HANDLERS": dict.fromkeys(("http", "https"), "scrapy.core.downloader.handlers._httpx.HttpxDownloadHandler"),
    },
    # ... and through its default handler there (2.19: aiohttp, which tries a dropped request
    # again on a new connection by itself: a proxy that drops requests sees each one twice)
    "reactorless-default": {"TWISTED_REACTOR_ENABLED": False, "TWISTED_REACTOR": None},
}

BASE_SETTINGS = {
    "ADDONS": {"scrapy_proxybalance.Addon": 0},
    "LOG_LEVEL": "DEBUG",
    "TELNETCONSOLE_ENABLED": False,
    "REMOTE_CONTROL_ENABLED": False,
    "CONCURRENT_REQUESTS": 16,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
    "DOWNLOAD_TIMEOUT": 3,
    "PROXY_STATS_INTERVAL": 1.0,
    "RETRY_ENABLED": True,
}


def crawl(tmp_path: Path, farm: Farm, urls_or_requests: list, reactor: str = "asyncio", timeout: float = 120,
          run: str = "crawl", spider: str = "list", **settings) -> dict:
    """Crawl through ``farm``'s proxies (unless PROXY_POOL is given); return the results,
    with ``log`` holding the whole crawl log. ``run`` names the crawl's files (a test that
    crawls twice gives each its own)."""
    return finish(start(tmp_path, farm, urls_or_requests, reactor, run, spider, **settings), timeout)


def crawl_together(tmp_path: Path, farm: Farm, jobs: list[list], timeout: float = 120, envs: list | None = None,
                   **settings) -> list[dict]:
    """Several crawls at once (a fleet of crawler processes), one list of requests each (and
    extra environment variables each, in ``envs``)."""
    started = [start(tmp_path, farm, requests, "asyncio", f"crawl-{i}", "list", env=(envs or [{}] * len(jobs))[i],
                     **settings) for i, requests in enumerate(jobs)]
    return [finish(job, timeout) for job in started]


def start(tmp_path: Path, farm: Farm, urls_or_requests: list, reactor: str, run: str, spider: str,
          env: dict | None = None, **settings) -> tuple[subprocess.Popen | Forked, Path, Path]:
    requests = [r if isinstance(r, dict) else {"url": r} for r in urls_or_requests]
    log = tmp_path / f"{run}.log"
    sessions = settings.pop("sessions", None)  # the sessions spider's plan
    linger = settings.pop("linger", None)  # seconds the crawl stays open after its last page
    open_until = settings.pop("open_until", None)  # a file: the crawl stays open, idle, until it exists
    job = {
        "settings": {**BASE_SETTINGS, **REACTORS[reactor], "PROXY_POOL": farm.pool(), "LOG_FILE": str(log),
                     **settings},
        "requests": requests,
        "spider": spider,
        "out": str(tmp_path / f"{run}.json"),
        "sessions": sessions,
        "linger": linger,
        "open_until": open_until,
    }
    job_path = tmp_path / f"{run}-job.json"
    job_path.write_text(json.dumps(job))
    if env:  # (an environment of its own, say a clock set off before anything is imported)
        proc: subprocess.Popen | Forked = subprocess.Popen(
            [sys.executable, str(RUNNER), str(job_path)], env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    else:
        proc = Forked(job_path, tmp_path / f"{run}.stderr", tmp_path / f"{run}.rc")
    return proc, tmp_path / f"{run}.json", log


class Forked:
    """A crawl forked by this test worker's fork server (``crawl_forks.py``), handled like
    the ``subprocess.Popen`` of a crawl started from scratch."""

    server: subprocess.Popen | None = None

    def __init__(self, job: Path, stderr: Path, rc: Path) -> None:
        self.stderr, self.rc = stderr, rc
        self.returncode: int | None = None
        rc.unlink(missing_ok=True)  # (a crawl run again under the same name)
        server = self._server()
        assert server.stdin is not None and server.stdout is not None
        server.stdin.write(json.dumps({"job": str(job), "stderr": str(stderr), "rc": str(rc)}) + "\n")
        server.stdin.flush()
        self.pid = int(server.stdout.readline())

    @classmethod
    def _server(cls) -> subprocess.Popen:
        if cls.server is None or cls.server.poll() is not None:
            cls.server = subprocess.Popen([sys.executable, str(RUNNER.with_name("crawl_forks.py"))],
                                          env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True)
            atexit.register(cls.server.stdin.close)  # type: ignore[union-attr]
        return cls.server

    def poll(self) -> int | None:
        if self.returncode is None and self.rc.exists():
            self.returncode = int(self.rc.read_text())
        return self.returncode

    def communicate(self, timeout: float) -> tuple[str, str]:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(RUNNER), timeout)
            time.sleep(0.02)
        return "", self.stderr.read_text()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.returncode = self.returncode if self.returncode is not None else -signal.SIGKILL


def finish(job: tuple[subprocess.Popen | Forked, Path, Path], timeout: float) -> dict:
    proc, out, log = job
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, stderr[-3000:]
    results = json.loads(out.read_text())
    results["log"] = log.read_text()
    assert results["warnings"] == [], results["warnings"]  # a deprecation in Scrapy 2.19 fails here
    assert "proxybalance/leases_open_at_close" not in results["stats"]  # every lease was released
    return results


def pages(host: str, n: int, start: int = 1) -> list[str]:
    return [f"http://{host}/page/{i}" for i in range(start, start + n)]


def valid(page: dict) -> bool:
    host, path = page["url"].split("/", 3)[2].split(":")[0], "/" + page["url"].split("/", 3)[3]
    return token(host, path) in page["text"]


def attempts(farm: Farm) -> dict[tuple[str, str], list[tuple[float, str]]]:
    """Per (host, path): the (time, proxy name) of every attempt any proxy received, in order."""
    seen: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for spec in farm.specs:
        for s in spec.seen:
            seen.setdefault((s.host, s.path), []).append((s.at, spec.name))
    return {k: sorted(v) for k, v in seen.items()}


__all__ = ["Farm", "ProxySpec", "attempts", "crawl", "pages", "valid"]
