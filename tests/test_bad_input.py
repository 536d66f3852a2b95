"""Bad input, fuzzed: any URL a provider's credentials produce parses and round-trips or fails
with one clear error; no password, nor a piece of one, shows anywhere; any value of any
setting starts the crawler with a documented value or stops it with one ConfigError line."""

import base64
import logging
import math
import random

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from scrapy.downloadermiddlewares.httpproxy import HttpProxyMiddleware
from scrapy.settings import Settings

from scrapy_proxybalance.config import DEFAULTS, Config
from scrapy_proxybalance.core.balancer import Ask, Balancer
from scrapy_proxybalance.core.entries import parse_entry
from scrapy_proxybalance.core.errors import ConfigError, InvalidProxy
from scrapy_proxybalance.core.explain import why_out
from scrapy_proxybalance.core.outcomes import Outcome
from scrapy_proxybalance.core.proxy import describe, mask
from scrapy_proxybalance.core.strategies import RoundRobin
from scrapy_proxybalance.events import PoolEvents
from scrapy_proxybalance.stats import summary, table
from scrapy_proxybalance.stores.memory import MemoryStore

from .conftest import FakeClock, make_rules

# every printable character a provider might put in a password, raw; only '%' must be written %25
PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\ufeff")
PASSWORDS = st.text(PRINTABLE, min_size=1, max_size=24)
USERNAMES = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Zs"), blacklist_characters=":%\ufeff"),
                    min_size=1, max_size=16)


def written(user: str, password: str, port: str = "8080") -> str:
    """The URL as the README says to write it: raw, but '%' as %25 (and ':' in a username as %3A)."""
    return f"http://{user}:{password.replace('%', '%25')}@10.0.0.1:{port}"


def sent_credentials(url: str) -> str:
    """What Scrapy's HttpProxyMiddleware sends for ``meta['proxy'] = url`` (decoded)."""
    creds, _ = HttpProxyMiddleware(auth_encoding="utf-8")._get_proxy(url, "")
    return base64.b64decode(creds).decode("utf-8")


@settings(max_examples=400, deadline=None)
@given(user=USERNAMES, password=PASSWORDS)
def test_any_credentials_round_trip_to_exactly_what_the_proxy_receives(user, password):
    url = written(user, password)
    assume(url.strip() == url)  # a password cannot start or end the whole line with white space
    proxy = parse_entry(url)
    assert (proxy.username, proxy.password) == (user, password)
    assert sent_credentials(proxy.url) == f"{user}:{password}"
    assert parse_entry(proxy.url) == proxy  # and our own URL reads back the same


def shown_everywhere(url: str) -> str:
    """Everything a person may read about a proxy entry: its str, repr and label, messages of
    errors about it, log lines and stats of a balancer that used and ejected it."""
    out: list[str] = [describe(url), describe({"url": url, "weight": "heavy"}), mask(f"a log line with {url} in it")]
    for entry in (url, {"url": url, "weight": 0}, {"url": url.replace(":8080", ":http")}, {"url": url, "tags": 1}):
        try:
            proxy = parse_entry(entry)
        except InvalidProxy as exc:
            out.append(str(exc))
        else:
            out += [str(proxy), repr(proxy), proxy.label, proxy.key]
    try:
        Config.from_settings(Settings({"PROXY_POOL": [url, url]}))
    except ConfigError as exc:
        out.append(str(exc))
    proxy = parse_entry(url)
    records: list[str] = []

    class Stats:
        def __init__(self):
            self.values = {}

        def inc_value(self, key, count=1):
            self.values[key] = self.values.get(key, 0) + count

        def set_value(self, key, value):
            self.values[key] = value

        def get_value(self, key, default=None):
            return self.values.get(key, default)

    stats = Stats()
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("scrapy_proxybalance").addHandler(handler)
    try:
        b = Balancer([proxy], RoundRobin, make_rules(max_failures=1), clock=FakeClock(), store=MemoryStore(),
                     listener=PoolEvents(stats), rng=random.Random(0))
        b.release(b.acquire(Ask("shop.test")), Outcome.FAILURE, reason=f"refused by {url}")
        out += [summary(b, stats, 0), table(b), *why_out(b, "shop.test"), *records, repr(stats.values)]
    finally:
        logging.getLogger("scrapy_proxybalance").removeHandler(handler)
    return "\n".join(out)


def same_shape(password: str) -> str:
    """Another password that parses the same way: letters and digits changed, the rest kept."""
    return "".join(("Q" if c != "Q" else "Z") if c.isalnum() else c for c in password)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user=USERNAMES, password=PASSWORDS)
@example(user="0", password="{country}")  # (a gateway template's fields, as a plain password)
@example(user="0", password="{session}")
def test_no_message_log_line_or_stat_shows_a_password_or_a_piece_of_one(user, password):
    url = written(user, password)
    assume(url.strip() == url)
    other = written(user, same_shape(password))
    shown, shown_other = shown_everywhere(url), shown_everywhere(other)
    # what a person reads does not depend on the password at all...
    assert shown == shown_other
    # ...so no piece of it can be there unless the text around it has it anyway
    for i in range(len(password) - 2):
        piece = password[i:i + 3]
        assert piece not in shown or piece in shown_other, piece


SETTING_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "nan", "inf", "-1", "1e308", "0", "1", "true", "no", "http://u:p@10.0.0.1:1", "a.b.C"]),
    st.text(max_size=12), st.lists(st.integers(0, 999), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


@settings(max_examples=600, deadline=2000)
@given(name=st.sampled_from(sorted(DEFAULTS)), value=SETTING_VALUES)
def test_any_value_of_any_setting_gives_a_config_or_one_config_error_line(name, value):
    values = {"PROXY_POOL": ["http://10.0.0.1:8000"], name: value}
    try:
        config = Config.from_settings(Settings(values))
    except ConfigError as exc:
        message = str(exc)
        assert message and "\n" not in message and len(message) < 600
        assert name in message or name in ("PROXY_POOL", "PROXY_ENABLED") or "PROXY_" in message
    else:
        rules = config.rules
        for number in (rules.cooldown, rules.cooldown_max, rules.backoff.base, rules.backoff.cap,
                       rules.retry_after_max, config.trial_timeout, config.stats_interval):
            assert math.isfinite(number) and number >= 0


# -- end to end ----------------------------------------------------------------------

def test_passwords_with_special_characters_lose_no_page_and_stay_with_their_proxy(tmp_path):
    from .e2e import Farm, ProxySpec, crawl, pages, valid

    specs = [ProxySpec("at", kind="auth", user="u1", password="p@ss@word"),
             ProxySpec("slashes", kind="auth", user="u2", password="a/b:c#d%e"),
             ProxySpec("resets", kind="reset", user="u3", password="x@y"),  # fails: the retry must move on
             ProxySpec("open")]
    pool = tmp_path / "proxies.txt"
    with Farm(specs) as farm:
        # written the documented way: raw, but '%' as %25; '#' starts a comment only after a space
        lines = [f"http://{s.user}:{s.password.replace('%', '%25')}@127.0.0.1:{s.port}" if s.user else s.url
                 for s in specs]
        pool.write_text("\n".join(lines) + "  # the last one has no credentials\n")
        result = crawl(tmp_path, farm, pages("shop.test", 24), PROXY_POOL=str(pool), PROXY_DOMAIN_COOLDOWN=0.05,
                       PROXY_STRATEGY="round_robin", PROXY_MAX_FAILURES=100)
    assert result["errors"] == [] and len(result["pages"]) == 24 and all(valid(p) for p in result["pages"])
    assert specs[2].seen and result["stats"]["proxybalance/retry/count"] >= len(specs[2].seen)  # moved every time
    for spec in specs:
        expected = "Basic " + base64.b64encode(f"{spec.user}:{spec.password}".encode()).decode() if spec.user else None
        assert spec.seen and {s.headers.get("proxy-authorization") for s in spec.seen} == {expected}, spec.name
    everything = result["log"] + repr(result["stats"])
    assert not any(s.password and s.password in everything for s in specs)


def test_dont_proxy_goes_direct_even_with_a_proxy_in_the_environment(tmp_path, monkeypatch):
    from scrapy_proxybalance.testing.farm import HOST

    from .e2e import Farm, ProxySpec, crawl

    specs = [ProxySpec("pooled"), ProxySpec("environment")]
    with Farm(specs) as farm:
        monkeypatch.setenv("http_proxy", specs[1].url)
        site = f"http://{HOST}:{farm.site_port}"
        result = crawl(tmp_path, farm, [{"url": f"{site}/page/1", "meta": {"dont_proxy": True}}],
                       PROXY_POOL=[specs[0].url])
    assert len(result["pages"]) == 1
    assert not specs[0].seen and not specs[1].seen and farm.site_seen[0].path == "/page/1"


def test_an_unavailable_pool_acts_within_the_timeout_however_often_its_proxies_are_retried(tmp_path):
    from .e2e import Farm, ProxySpec, crawl, pages

    with Farm([ProxySpec(f"dead-{i}", kind="dead") for i in range(3)]) as farm:
        result = crawl(tmp_path, farm, pages("shop.test", 10), PROXY_UNAVAILABLE_TIMEOUT=2.0, PROXY_MAX_FAILURES=1)
    stats = result["stats"]
    assert stats["finish_reason"] == "proxies_unavailable"
    assert stats["proxybalance/waits"] > 0
    assert stats["elapsed_time_seconds"] < 2.0 + 5.0 + 2.0  # the timeout, one check interval, start-up
