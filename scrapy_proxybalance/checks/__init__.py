"""Active health checks: one check (probe), checks during a crawl (active), and the
``scrapy proxycheck`` command (command)."""
