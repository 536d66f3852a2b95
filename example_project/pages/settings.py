"""Settings of the example project: a crawl through scrapy-proxybalance.

Run it against the local proxy farm from the repository root with ``make demo``.
"""

import os

BOT_NAME = "pages"
SPIDER_MODULES = ["pages.spiders"]
ROBOTSTXT_OBEY = False

# One line enables scrapy-proxybalance (its middleware at 610, see the README).
ADDONS = {"scrapy_proxybalance.Addon": 0}

# The farm writes its pool file and names it in FARM_POOL_FILE; a real project lists its
# proxies here, or in a file like proxies.txt (one URL per line, # comments).
PROXY_POOL = os.environ.get("FARM_POOL_FILE", "proxies.txt")
PROXY_STRATEGY = "least_latency"
PROXY_DOMAIN_COOLDOWN = 1.0  # a proxy is not used on the same site again within 1 s
PROXY_BAN_BODY_PATTERNS = [r'<form class="captcha">']  # a captcha page with status 200 is a ban
PROXY_RECOVERY_INTERVAL = 10.0  # an ejected proxy gets a trial request after ~10 s
PROXY_STATS_INTERVAL = 5.0
# Active checks: the farm's site echoes the address a proxy comes from at /ip (any host name)
PROXY_HEALTH_CHECK_URL = "http://echo.test/ip"
PROXY_HEALTH_CHECK_BODY = '"origin"'
PROXY_HEALTH_CHECK_INTERVAL = 5.0
PROXY_HEALTH_CHECK_TIMEOUT = 3.0
# At close, a JSON report of every proxy and site (see the README's "Watching the pool");
# `make demo STATUS=127.0.0.1:6025` also serves the live status page (PROXY_STATUS_ADDRESS).
PROXY_REPORT_FILE = "output-proxies-%(name)s.json"

CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 16  # the pool, not one IP, carries each site
DOWNLOAD_TIMEOUT = 5  # the farm has a proxy that never answers
LOG_LEVEL = "INFO"
