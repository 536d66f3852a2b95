"""Seeing the pool while it works: the live status page, ``/status.json`` and ``/metrics``
(:mod:`.server`), built from :mod:`.view`, with what :mod:`.record` keeps beyond the core's
counts. ``/metrics`` needs the optional ``prometheus_client`` (``scrapy-proxybalance[metrics]``).
"""
