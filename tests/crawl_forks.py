"""A fork server for the end-to-end tests: it imports Scrapy and the crawl runner once, then
forks a fresh process for each crawl it is asked for (a crawl then starts in milliseconds
instead of spending most of a CPU second on imports; the reactor is installed in the child).

Reads one JSON line per crawl on stdin: ``job`` (the runner's job file), ``stderr`` (where the
child's output goes) and ``rc`` (where its exit code is written when it ends); answers each
with the child's PID on a line of its own. Ends when stdin closes.
"""

import contextlib
import importlib
import json
import os
import random
import signal
import sys
import traceback

import crawl_runner

# What every crawl imports, imported once here (none of it installs a reactor): the plugin, the
# components Scrapy enables by default, scrapy-redis. A child then starts in a fraction of the CPU.
PRELOADED = (
    "scrapy_proxybalance.addon", "scrapy_proxybalance.middleware", "scrapy_proxybalance.scheduler",
    "scrapy.core.engine", "scrapy.core.scheduler", "scrapy.core.downloader", "scrapy.core.scraper",
    "scrapy.core.downloader.handlers.http11", "scrapy.pqueues", "scrapy.squeues", "scrapy.dupefilters",
    "scrapy.statscollectors", "scrapy.logformatter", "scrapy.resolver", "scrapy.extensions.remote_control",
    "scrapy.extensions.telnet", "scrapy.extensions.feedexport", "scrapy.extensions.memusage",
    "scrapy.extensions.logstats", "scrapy.extensions.corestats", "scrapy.extensions.throttle",
    "scrapy.downloadermiddlewares.retry", "scrapy.downloadermiddlewares.redirect",
    "scrapy.downloadermiddlewares.httpcompression", "scrapy.downloadermiddlewares.cookies",
    "scrapy.downloadermiddlewares.offsite", "scrapy.downloadermiddlewares.robotstxt",
    "scrapy.downloadermiddlewares.httpcache", "scrapy.spidermiddlewares.referer", "scrapy.spidermiddlewares.depth",
    "scrapy.spidermiddlewares.httperror", "scrapy.spidermiddlewares.urllength", "scrapy.spidermiddlewares.start",
    "scrapy_redis.scheduler", "scrapy_redis.dupefilter", "redis.asyncio",
)
for name in PRELOADED:
    with contextlib.suppress(ImportError):  # (an optional extra that is not installed)
        importlib.import_module(name)

assert "twisted.internet.reactor" not in sys.modules  # each child installs its own


def child(request: dict) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    random.seed()  # not the same jitter in every crawl of a fleet
    out = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    code = 1
    try:
        crawl_runner.main(request["job"])
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        with open(request["rc"] + ".tmp", "w") as f:
            f.write(str(code))
        os.replace(request["rc"] + ".tmp", request["rc"])
        os._exit(code)


def serve() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            child(request)
        print(pid, flush=True)


if __name__ == "__main__":
    serve()
