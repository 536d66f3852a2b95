"""Settings are read and validated once, with messages that name the setting and value."""

import pytest
from scrapy.settings import Settings

from scrapy_proxybalance.config import Config
from scrapy_proxybalance.core.errors import ConfigError
from scrapy_proxybalance.core.strategies import LeastLatency, WeightedRandom

from .strategy_plugin import AlwaysFirst

POOL = ["http://10.0.0.1:8000"]


def config(**values):
    return Config.from_settings(Settings({"PROXY_POOL": POOL, **values}))


def test_defaults():
    c = config()
    assert c.strategy is WeightedRandom
    assert (c.domain_cooldown, c.max_failures, c.recovery_interval, c.retry_times) == (1.0, 3, 60.0, 3)
    assert c.ban_status_codes == {403, 407, 429, 503}
    assert c.stats_interval == 60.0
    assert (c.max_banned_sites, c.trial_timeout, c.unavailable_timeout, c.unavailable_action) == (3, 30.0, 600.0, "close")
    assert c.ban_body_patterns == [] and c.pool_reload_interval == 5.0


def test_ban_body_patterns_and_policy():
    from scrapy_proxybalance import BanPolicy

    c = config(PROXY_BAN_BODY_PATTERNS=[r"(?i)captcha"], PROXY_BAN_POLICY=BanPolicy)
    assert c.ban_body_patterns[0].search("CAPTCHA") and c.ban_policy is BanPolicy
    assert config(PROXY_BAN_POLICY="tests.strategy_plugin.StrictPolicy").ban_policy.__name__ == "StrictPolicy"


def test_strategy_by_name_class_or_dotted_path():
    assert config(PROXY_STRATEGY="least_latency").strategy is LeastLatency
    assert config(PROXY_STRATEGY=AlwaysFirst).strategy is AlwaysFirst
    assert config(PROXY_STRATEGY="tests.strategy_plugin.AlwaysFirst").strategy is AlwaysFirst


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"PROXY_STRATEGY": "fastest"}, "PROXY_STRATEGY: unknown strategy 'fastest'; choose one of"),
        ({"PROXY_STRATEGY": "os.path.join"}, "'os.path.join' is not a subclass"),
        ({"PROXY_STRATEGY": "nope.Missing"}, "PROXY_STRATEGY: cannot load 'nope.Missing'"),
        ({"PROXY_DOMAIN_COOLDOWN": -1}, "PROXY_DOMAIN_COOLDOWN must be >= 0, got -1"),
        ({"PROXY_DOMAIN_COOLDOWN": "soon"}, "PROXY_DOMAIN_COOLDOWN must be a number, got 'soon'"),
        ({"PROXY_MAX_FAILURES": 0}, "PROXY_MAX_FAILURES must be > 0, got 0"),
        ({"PROXY_MAX_FAILURES": 2.5}, "PROXY_MAX_FAILURES must be a whole number, got 2.5"),
        ({"PROXY_RECOVERY_INTERVAL": 100, "PROXY_RECOVERY_MAX_INTERVAL": 10}, "must be >= PROXY_RECOVERY_INTERVAL"),
        ({"PROXY_BAN_STATUS_CODES": [403, "x"]}, "PROXY_BAN_STATUS_CODES must be a list of HTTP status codes"),
        ({"PROXY_BAN_STATUS_CODES": [999]}, "statuses 100-599"),
        ({"PROXY_DOMAIN_REGIONS": {"a.com": "asia"}}, "maps 'a.com' to region 'asia', but no proxy"),
        ({"PROXY_POOL": []}, "PROXY_POOL is empty"),
        ({"PROXY_POOL": ""}, "PROXY_POOL is empty"),
        ({"PROXY_POOL": ["ftp://u:secret@h:21"]}, "unsupported proxy scheme 'ftp' in 'ftp://u:***@h:21'"),
        ({"PROXY_POOL": ["socks5://h:1080"]}, "unsupported proxy scheme 'socks5'"),
        ({"PROXY_POOL": ["http://u:secret@h:99999"]}, "malformed proxy URL 'http://u:***@h:99999'"),
        ({"PROXY_POOL": ["http://:8080"]}, "has no host"),
        ({"PROXY_POOL": ["http://h:1/path"]}, "must not have a path"),
        ({"PROXY_POOL": ["http://h:1", "http://h:1"]}, "duplicate proxy http://h:1"),
        ({"PROXY_POOL": [{"url": "http://h:1", "weight": 0}]}, "weight must be a number > 0, got 0"),
        ({"PROXY_POOL": [{"url": "http://h:1", "colour": "red"}]}, "unknown key(s) ['colour']"),
        ({"PROXY_POOL": [42]}, "an entry must be a URL or a dict, got 42"),
        ({"PROXY_POOL": "/nonexistent/proxies.txt"}, "cannot read proxy file '/nonexistent/proxies.txt'"),
        ({"PROXY_POOL": ["http://u:p@h:1"], "HTTPPROXY_ENABLED": False}, "HTTPPROXY_ENABLED is False"),
        ({"PROXY_BAN_BODY_PATTERNS": ["captcha", "(unclosed"]},
         "PROXY_BAN_BODY_PATTERNS: '(unclosed' is not a valid regular expression: missing ), unterminated"),
        ({"PROXY_BAN_BODY_PATTERNS": 42}, "PROXY_BAN_BODY_PATTERNS must be a list of regular expressions, got 42"),
        ({"PROXY_BAN_POLICY": "nope.Policy"}, "PROXY_BAN_POLICY: cannot load 'nope.Policy'"),
        ({"PROXY_BAN_POLICY": "os.path.join"}, "PROXY_BAN_POLICY: 'os.path.join' is not a class with"),
        ({"PROXY_UNAVAILABLE_ACTION": "panic"}, "PROXY_UNAVAILABLE_ACTION must be one of ['close', 'fail'], got 'panic'"),
        ({"PROXY_UNAVAILABLE_TIMEOUT": -5}, "PROXY_UNAVAILABLE_TIMEOUT must be >= 0, got -5"),
        ({"PROXY_TRIAL_TIMEOUT": "fast"}, "PROXY_TRIAL_TIMEOUT must be a number, got 'fast'"),
        ({"PROXY_MAX_BANNED_SITES": -1}, "PROXY_MAX_BANNED_SITES must be >= 0, got -1"),
        ({"PROXY_POOL_RELOAD_INTERVAL": -1}, "PROXY_POOL_RELOAD_INTERVAL must be >= 0, got -1"),
    ],
)
def test_bad_values_are_reported_with_the_setting_and_the_value(values, message):
    with pytest.raises(ConfigError) as info:
        config(**values)
    assert message in str(info.value)
    assert "secret" not in str(info.value)


def test_pool_file_with_comments_and_line_numbers_in_errors(tmp_path):
    good = tmp_path / "proxies.txt"
    good.write_text("# my proxies\nhttp://10.0.0.1:1\n\n10.0.0.2:3128  # no scheme means http\n")
    assert [p.key for p in config(PROXY_POOL=str(good)).pool] == ["http://10.0.0.1:1", "http://10.0.0.2:3128"]
    bad = tmp_path / "bad.txt"
    bad.write_text("http://10.0.0.1:1\nsocks5://10.0.0.2:1\n")
    with pytest.raises(ConfigError, match=r"line 2\): unsupported proxy scheme 'socks5'"):
        config(PROXY_POOL=str(bad))
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here yet\n")
    with pytest.raises(ConfigError, match=r"PROXY_POOL the file '.*empty.txt' lists no proxies"):
        config(PROXY_POOL=str(empty))
    unreadable = tmp_path / "locked.txt"
    unreadable.mkdir()  # a directory cannot be read as a file, even by root
    with pytest.raises(ConfigError, match=r"cannot read proxy file '.*locked.txt'"):
        config(PROXY_POOL=str(unreadable))
    assert config(PROXY_POOL=str(good)).pool_file == good
    assert config().pool_file is None


def test_pool_from_a_comma_separated_command_line_value():
    pool = config(PROXY_POOL="http://10.0.0.1:1,http://u:p@10.0.0.2:2").pool
    assert [str(p) for p in pool] == ["http://10.0.0.1:1", "http://u:***@10.0.0.2:2"]


def test_proxy_identity_includes_the_username_and_hides_the_password():
    pool = config(PROXY_POOL=["http://user-de:pw@gw:1", "http://user-fr:pw@gw:1", "http://[::1]:3128"]).pool
    assert [p.key for p in pool] == ["http://user-de@gw:1", "http://user-fr@gw:1", "http://[::1]:3128"]
    assert pool[0].url == "http://user-de:pw@gw:1" and "pw" not in str(pool[0]) + repr(pool[0])


def test_domain_regions_match_subdomains():
    c = config(PROXY_POOL=[{"url": "http://h:1", "region": "eu"}], PROXY_DOMAIN_REGIONS={"shop.eu": "eu"})
    assert c.region_for("shop.eu") == c.region_for("www.SHOP.eu") == "eu"
    assert c.region_for("shop.com") is None
