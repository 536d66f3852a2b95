"""``/metrics``: the pool in Prometheus's text format, written by the official
``prometheus_client`` library (``pip install scrapy-proxybalance[metrics]``; this module needs
it) through a custom collector that reads a :class:`~.view.View` when scraped.

Per-proxy series (label ``proxy``: the entry's name, else its masked URL) only with
``PROXY_METRICS_PER_PROXY``, per-site series (label ``site``) only with
``PROXY_METRICS_PER_SITE``: a large pool or a broad crawl would otherwise make thousands of
series. Even then a scrape is bounded, to the proxies and sites ``/status.json`` lists
(:data:`~.view.MAX_PROXY_ROWS`: out or banned first, then the busiest;
:data:`~.view.MAX_SITE_ROWS`: the busiest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .record import OUTCOMES
from .view import MAX_PROXY_ROWS, MAX_SITE_ROWS, STATES, View

PROXY_OUTCOMES = (("success", "successes"), ("failure", "failures"), ("ban", "bans"),
                  ("rate_limited", "rate_limits"), ("overloaded", "overloads"))


class PoolCollector(Collector):
    """A ``prometheus_client`` collector: each scrape reads the pool as it is then."""

    def __init__(self, view: Callable[[], View], per_proxy: bool, per_site: bool) -> None:
        self.view = view
        self.per_proxy = per_proxy
        self.per_site = per_site

    def collect(self) -> Iterator[Metric]:
        v = self.view()
        totals, pool = v.totals(), v.pool
        requests = CounterMetricFamily("proxybalance_requests", "Requests through a proxy of the pool that ended,"
                                       " by outcome (as the balancer counted it)", labels=["outcome"])
        for outcome in OUTCOMES:
            requests.add_metric([outcome], totals["outcomes"][outcome])
        yield requests
        for name, key, doc in (
            ("proxybalance_requests_sent", "requests", "Requests sent through a proxy of the pool (each attempt)"),
            ("proxybalance_requests_rendered", "rendered", "Of them, pages rendered in a browser (scrapy-playwright)"),
            ("proxybalance_retries", "retries", "Requests retried on another proxy"),
            ("proxybalance_retries_gave_up", "gave_up", "Requests that ran out of proxy retries"),
            ("proxybalance_ejections", "ejections", "Proxies ejected from rotation"),
            ("proxybalance_waits", "waits", "Times a request had to wait for a proxy"),
            ("proxybalance_pool_reloads", "pool_reloads", "Times the pool file or source changed the pool"),
        ):
            yield CounterMetricFamily(name, doc, value=totals[key])
        yield from _tiers(v)
        proxies = GaugeMetricFamily("proxybalance_proxies", "Proxies of the pool by state", labels=["state"])
        for state in STATES:
            proxies.add_metric([state], pool[state])
        yield proxies
        yield GaugeMetricFamily("proxybalance_proxies_banned", "Proxies banned by at least one site now",
                                value=pool["banned"])
        yield GaugeMetricFamily("proxybalance_backups_in_use", "Backup proxies carrying requests now",
                                value=pool["backups_in_use"])
        yield GaugeMetricFamily("proxybalance_requests_in_flight", "Requests through a proxy of the pool now",
                                value=pool["in_flight"])
        yield GaugeMetricFamily("proxybalance_waiting_requests", "Requests waiting for a proxy now",
                                value=pool["waiting"])
        latency = v.recorder.latency if v.recorder is not None else None
        if latency is not None:
            histogram = HistogramMetricFamily("proxybalance_latency_seconds", "Download latency of the responses"
                                              " that came through a proxy of the pool", unit="")
            histogram.add_metric([], [(bound, float(n)) for bound, n in latency.cumulative()], latency.total)
            yield histogram
        source = v.crawl.pool.source
        if source is not None:
            yield GaugeMetricFamily("proxybalance_source_up", "1 if the last read of PROXY_POOL_SOURCE worked",
                                    value=0 if source.failing or not source.last_ok else 1)
            yield CounterMetricFamily("proxybalance_source_errors", "Failed reads of PROXY_POOL_SOURCE",
                                      value=source.errors)
        if self.per_proxy:
            yield from self._per_proxy(v)
        if self.per_site:
            yield from self._per_site(v)

    def _per_proxy(self, v: View) -> Iterator[Metric]:
        requests = CounterMetricFamily("proxybalance_proxy_requests", "Requests through each proxy that ended,"
                                       " by outcome", labels=["proxy", "outcome"])
        in_flight = GaugeMetricFamily("proxybalance_proxy_in_flight", "Requests through each proxy now",
                                      labels=["proxy"])
        states = GaugeMetricFamily("proxybalance_proxy_state", "Each proxy's state (1 for the one it is in)",
                                   labels=["proxy", "state"])
        ejections = CounterMetricFamily("proxybalance_proxy_ejections", "Ejections of each proxy", labels=["proxy"])
        latency = GaugeMetricFamily("proxybalance_proxy_latency_seconds", "Each proxy's recent latency"
                                    " (peak EWMA)", labels=["proxy"])
        banned = GaugeMetricFamily("proxybalance_proxy_banned_sites", "Sites banning each proxy now",
                                   labels=["proxy"])
        seen: set[str] = set()
        for p, state, banning in v.chosen(MAX_PROXY_ROWS):
            label = p.proxy.label
            if label in seen:  # two entries with one name: still two series
                label = f"{label} #{p.id}"
            seen.add(label)
            m = p.metrics
            for outcome, attribute in PROXY_OUTCOMES:
                requests.add_metric([label, outcome], getattr(m, attribute))
            in_flight.add_metric([label], p.in_flight)
            for s in STATES:
                states.add_metric([label, s], 1 if s == state else 0)
            ejections.add_metric([label], v.balancer.facts(p).ejections)
            if m.latency is not None:
                latency.add_metric([label], m.latency)
            banned.add_metric([label], len(banning))
        yield from (requests, in_flight, states, ejections, latency, banned)

    def _per_site(self, v: View) -> Iterator[Metric]:
        requests = CounterMetricFamily("proxybalance_site_requests", "Requests to each site through the pool"
                                       " that ended, by outcome", labels=["site", "outcome"])
        waiting = GaugeMetricFamily("proxybalance_site_waiting_requests", "Requests waiting for a proxy, by site",
                                    labels=["site"])
        gap = GaugeMetricFamily("proxybalance_site_gap_seconds", "The gap each proxy keeps between two requests"
                                " to the site", labels=["site"])
        banned = GaugeMetricFamily("proxybalance_site_banned_proxies", "Proxies the site bans now", labels=["site"])
        tier = GaugeMetricFamily("proxybalance_site_tier", "The price tier the site's requests go at now",
                                 labels=["site"])
        cost = CounterMetricFamily("proxybalance_site_cost", "What requests to the site cost (the pool entries'"
                                   " unit)", labels=["site"])
        recorder = v.recorder
        for row in v.sites(MAX_SITE_ROWS):
            site = row["site"]
            record = recorder.sites.get(site) if recorder is not None else None
            for outcome in OUTCOMES:
                requests.add_metric([site, outcome], record.outcomes[outcome] if record else 0)
            waiting.add_metric([site], row["waiting"])
            gap.add_metric([site], row["gap_s"])
            banned.add_metric([site], row["banned_proxies"])
            if row["tier"] is not None:
                tier.add_metric([site], row["tier"])
            cost.add_metric([site], row["cost"])
        yield from (requests, waiting, gap, banned, tier, cost)


def _tiers(v: View) -> Iterator[Metric]:
    """Requests, bytes and cost per price tier."""
    requests = CounterMetricFamily("proxybalance_tier_requests", "Requests through proxies of each price tier",
                                   labels=["tier"])
    sent = CounterMetricFamily("proxybalance_tier_bytes", "Bytes sent and received through proxies of each price"
                               " tier", labels=["tier"])
    cost = CounterMetricFamily("proxybalance_tier_cost", "What requests through proxies of each price tier cost"
                               " (the pool entries' unit)", labels=["tier"])
    for row in v.tiers():
        label = [str(row["tier"])]
        requests.add_metric(label, row["requests"])
        sent.add_metric(label, row["bytes"])
        cost.add_metric(label, row["cost"])
    yield from (requests, sent, cost)


def exposition(collector: PoolCollector, accept: str = "") -> tuple[bytes, str]:
    """The metrics as a scrape asked for them (``Accept``: Prometheus's text format, or
    OpenMetrics), and their content type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
