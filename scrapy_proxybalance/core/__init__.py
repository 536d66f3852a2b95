"""The Scrapy-free core: proxies, strategies, health, cooldowns and the balancer.

Nothing under this package imports Scrapy or Twisted; time comes from an injected clock.
"""
