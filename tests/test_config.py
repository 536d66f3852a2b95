"""Settings are read and validated once, with messages that name the setting and the value
(passwords masked); every setting is checked, whatever type of value a config produces."""

import re
from pathlib import Path

import pytest
from scrapy.settings import Settings

from scrapy_proxybalance.config import DEFAULTS, Config
from scrapy_proxybalance.core.errors import ConfigError
from scrapy_proxybalance.core.strategies import LeastLatency, Strategy, WeightedRandom

from .strategy_plugin import AlwaysFirst

POOL = ["http://10.0.0.1:8000"]
SETTINGS_DOC = Path(__file__).parent.parent / "docs" / "reference" / "settings.rst"


def config(**values):
    return Config.from_settings(Settings({"PROXY_POOL": POOL, **values}))


def test_defaults():
    c = config()
    r = c.rules
    assert c.strategy is WeightedRandom
    assert (r.cooldown, r.max_failures, r.backoff.base, r.backoff.cap, r.retry_times) == (1.0, 3, 60.0, 1800.0, 3)
    assert (r.ban_backoff.base, r.ban_backoff.cap, r.retry_after_max, r.cooldown_max) == (60.0, 1800.0, 1800.0, 60.0)
    assert (c.ban_status_codes, c.rate_limit_status_codes, c.overload_status_codes) == ({403}, {429}, {503})
    assert c.stats_interval == 60.0 and not c.stats_per_proxy and c.max_waiting is None
    assert (r.max_banned_sites, c.trial_timeout, r.unavailable_timeout, c.unavailable_action) == (3, 30.0, 600.0, "close")
    assert c.ban_body_patterns == [] and c.pool_reload_interval == 5.0 and c.health_check is None
    assert r.pair_limit == 8  # Scrapy's CONCURRENT_REQUESTS_PER_DOMAIN, per (site, proxy)


def test_every_setting_has_an_entry_in_the_settings_reference_and_every_entry_a_setting():
    entries = set(re.findall(r"^\.\. setting:: (PROXY_[A-Z_]+)$", SETTINGS_DOC.read_text(), re.M))
    assert entries == set(DEFAULTS)


def test_download_delay_is_a_floor_of_the_cooldown():
    assert config(DOWNLOAD_DELAY=2.5).rules.cooldown == 2.5
    assert config(DOWNLOAD_DELAY=0.5, PROXY_DOMAIN_COOLDOWN=1.5).rules.cooldown == 1.5


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
        ({"PROXY_STRATEGY": "os.path.join"}, "'os.path.join' is not a concrete subclass"),
        ({"PROXY_STRATEGY": Strategy}, "is not a concrete subclass of scrapy_proxybalance.Strategy"),
        ({"PROXY_STRATEGY": "nope.Missing"}, "PROXY_STRATEGY: cannot load 'nope.Missing'"),
        ({"PROXY_STRATEGY": 5}, "PROXY_STRATEGY must be a name or a dotted path, got 5"),
        ({"PROXY_DOMAIN_COOLDOWN": -1}, "PROXY_DOMAIN_COOLDOWN must be >= 0, got -1"),
        ({"PROXY_DOMAIN_COOLDOWN": "soon"}, "PROXY_DOMAIN_COOLDOWN must be a number, got 'soon'"),
        ({"PROXY_DOMAIN_COOLDOWN": "nan"}, "PROXY_DOMAIN_COOLDOWN must be a finite number, got 'nan'"),
        ({"PROXY_DOMAIN_COOLDOWN": float("nan")}, "PROXY_DOMAIN_COOLDOWN must be a finite number, got nan"),
        ({"PROXY_DOMAIN_COOLDOWN": float("inf")}, "PROXY_DOMAIN_COOLDOWN must be a finite number, got inf"),
        ({"PROXY_DOMAIN_COOLDOWN": 1e308}, "PROXY_DOMAIN_COOLDOWN must be at most 31,536,000, got 1e+308"),
        ({"PROXY_DOMAIN_COOLDOWN": [1]}, "PROXY_DOMAIN_COOLDOWN must be a number, got [1]"),
        ({"PROXY_HEALTH_CHECK_INTERVAL": "nan"}, "PROXY_HEALTH_CHECK_INTERVAL must be a finite number"),
        ({"PROXY_HEALTH_CHECK_INTERVAL": -1}, "PROXY_HEALTH_CHECK_INTERVAL must be > 0, got -1"),  # checked with checks off
        ({"PROXY_MAX_FAILURES": 0}, "PROXY_MAX_FAILURES must be > 0, got 0"),
        ({"PROXY_MAX_FAILURES": 2.5}, "PROXY_MAX_FAILURES must be a whole number, got 2.5"),
        ({"PROXY_MAX_FAILURES": True}, "PROXY_MAX_FAILURES must be a whole number, got True"),
        ({"PROXY_MAX_WAITING": 0}, "PROXY_MAX_WAITING must be > 0, got 0"),
        ({"PROXY_RECOVERY_INTERVAL": 100, "PROXY_RECOVERY_MAX_INTERVAL": 10}, "must be >= PROXY_RECOVERY_INTERVAL"),
        ({"PROXY_BAN_STATUS_CODES": [403, "x"]}, "PROXY_BAN_STATUS_CODES must be a list of HTTP status codes"),
        ({"PROXY_BAN_STATUS_CODES": [999]}, "statuses 100-599"),
        ({"PROXY_RATE_LIMIT_STATUS_CODES": {"a": 1}}, "PROXY_RATE_LIMIT_STATUS_CODES must be a list of HTTP status"),
        ({"PROXY_DOMAIN_REGIONS": {"a.com": "asia"}}, "maps 'a.com' to region 'asia', but no proxy"),
        ({"PROXY_POOL": []}, "PROXY_POOL is empty"),
        ({"PROXY_POOL": ""}, "PROXY_POOL is empty"),
        ({"PROXY_POOL": ["ftp://u:secret@h:21"]}, "unsupported proxy scheme 'ftp' in 'ftp://u:***@h:21'"),
        ({"PROXY_POOL": ["gopher://h:70"]}, "unsupported proxy scheme 'gopher'"),
        ({"PROXY_POOL": ["http://u:secret@h:99999"]}, "'http://u:***@h:99999': the port must be a number from 1 to 65535"),
        ({"PROXY_POOL": ["http://h:0"]}, "'http://h:0': the port must be a number from 1 to 65535"),
        ({"PROXY_POOL": ["http://[::1]:8080"]}, "IPv6 addresses are not supported"),
        ({"PROXY_POOL": ["http://:8080"]}, "has no valid host"),
        ({"PROXY_POOL": ["http://h:1/path"]}, "must not have a path"),
        ({"PROXY_POOL": ["http://h:1", "http://h:1"]}, "duplicate proxy http://h:1"),
        ({"PROXY_POOL": [{"url": "http://h:1", "weight": 0}]}, "weight must be a number > 0 and <= 1,000,000, got 0"),
        ({"PROXY_POOL": [{"url": "http://h:1", "weight": 1e308}]}, "weight must be a number > 0 and <= 1,000,000"),
        ({"PROXY_POOL": [{"url": "http://h:1", "weight": float("inf")}]}, "got inf"),
        ({"PROXY_POOL": [{"url": "http://h:1", "weight": float("nan")}]}, "got nan"),
        ({"PROXY_POOL": [{"url": "http://h:1", "colour": "red"}]}, "unknown key(s) 'colour'"),
        ({"PROXY_POOL": [{"url": "http://h:1", "tags": 5}]}, "unknown key(s) 'tags'"),
        ({"PROXY_POOL": [{"url": "http://h:1", "backup": "no"}]}, "backup must be true or false"),
        ({"PROXY_POOL": [{"url": "http://h:1", "region": 3}]}, "region must be a non-empty string, got 3"),
        ({"PROXY_POOL": [42]}, "an entry must be a URL or a dict, got 42"),
        ({"PROXY_POOL": 42}, "PROXY_POOL must be a list of proxies, a comma-separated string or a file path, got 42"),
        ({"PROXY_POOL": "/nonexistent/proxies.txt"}, "cannot read proxy file '/nonexistent/proxies.txt'"),
        ({"PROXY_POOL": ["http://u:p@h:1"], "HTTPPROXY_ENABLED": False}, "HTTPPROXY_ENABLED is False"),
        ({"PROXY_POOL": ["http://u:p\u20ac@h:1"]}, "cannot be encoded as 'latin-1' (HTTPPROXY_AUTH_ENCODING)"),
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
        ({"PROXY_STATS_PER_PROXY": "yes"}, "PROXY_STATS_PER_PROXY must be True or False"),
        ({"PROXY_HEALTH_CHECK_URL": "http://exa mple/ip"}, "PROXY_HEALTH_CHECK_URL must be an http(s) URL"),
        ({"PROXY_STATUS_ADDRESS": "0.0.0.0:6025"},
         "PROXY_STATUS_ADDRESS '0.0.0.0:6025' is not a loopback address: set PROXY_STATUS_TOKEN"),
        ({"PROXY_STATUS_ADDRESS": "status.example:6025"}, "is not a loopback address: set PROXY_STATUS_TOKEN"),
        ({"PROXY_STATUS_ADDRESS": "127.0.0.1"}, "PROXY_STATUS_ADDRESS must be 'host:port'"),
        ({"PROXY_STATUS_ADDRESS": "127.0.0.1:70000"}, "PROXY_STATUS_ADDRESS must be 'host:port'"),
        ({"PROXY_STATUS_ADDRESS": 6025}, "PROXY_STATUS_ADDRESS must be 'host:port' (say '127.0.0.1:6025'"),
        ({"PROXY_STATUS_TOKEN": "secret"}, "PROXY_STATUS_TOKEN must be 16 to 256 printable ASCII characters without"
                                           " spaces (got 6 characters; it is not shown)"),
        ({"PROXY_STATUS_TOKEN": "a secret with spaces"}, "PROXY_STATUS_TOKEN must be 16 to 256 printable"),
        ({"PROXY_STATUS_ACTIONS": "maybe"}, "PROXY_STATUS_ACTIONS must be True or False"),
        ({"PROXY_METRICS_PER_PROXY": "yes"}, "PROXY_METRICS_PER_PROXY must be True or False"),
        ({"PROXY_REPORT_FILE": "s3://bucket/proxies.json"}, "PROXY_REPORT_FILE must be a local file path"),
        ({"PROXY_REPORT_FILE": "proxies-%(name"}, "PROXY_REPORT_FILE: 'proxies-%(name' has a placeholder that is not"),
        ({"PROXY_REPORT_FILE": 3}, "PROXY_REPORT_FILE must be a file path, got 3"),
        ({"PROXY_SITE_TIERS": ["shop.example"]}, "PROXY_SITE_TIERS must map domain names to tiers"),
        ({"PROXY_SITE_TIERS": {"shop.example": [2, 1]}}, "PROXY_SITE_TIERS['shop.example'] must be a tier from 0"),
        ({"PROXY_SITE_TIERS": {"shop.example": "high"}}, "PROXY_SITE_TIERS['shop.example'] must be a tier from 0"),
        ({"PROXY_TIER_PROBE_INTERVAL": 60, "PROXY_TIER_PROBE_MAX_INTERVAL": 30},
         "PROXY_TIER_PROBE_MAX_INTERVAL (30) must be >= PROXY_TIER_PROBE_INTERVAL (60)"),
        ({"PROXY_BLOCK_PRESETS": ["cloudflare", "kasada"]}, "PROXY_BLOCK_PRESETS: no block preset 'kasada'"),
        ({"PROXY_BLOCK_PRESETS": 3}, "PROXY_BLOCK_PRESETS must be a list of preset names"),
        ({"PROXY_POOL_SOURCE": "ftp://u:secret@h/list?key=secret"},
         "PROXY_POOL_SOURCE must be an http(s):// URL or the dotted path of a function, got 'ftp://u:***@h/list?key=***'"),
        ({"PROXY_POOL_SOURCE": "https://u:secret@exa mple/?key=secret"}, "PROXY_POOL_SOURCE: 'https://u:***@exa mple/?key=***' is not a valid http(s) URL"),
        ({"PROXY_POOL_SOURCE": "nope.missing"}, "PROXY_POOL_SOURCE: cannot load 'nope.missing'"),
        ({"PROXY_POOL_SOURCE": "os.sep"}, "PROXY_POOL_SOURCE: 'os.sep' is not a function"),
        ({"PROXY_POOL_SOURCE": "proxies.txt"}, "PROXY_POOL_SOURCE: cannot load 'proxies.txt'"),
    ],
)
def test_bad_values_are_reported_with_the_setting_and_the_value(values, message):
    with pytest.raises(ConfigError) as info:
        config(**values)
    assert message in str(info.value)
    assert "secret" not in str(info.value) and "\n" not in str(info.value)


def test_a_proxy_scheduler_cannot_wrap_itself():
    from scrapy.settings import Settings

    from scrapy_proxybalance.environment import check_scheduler

    settings = Settings({"SCHEDULER": "scrapy_proxybalance.ProxyScheduler",
                         "PROXY_SCHEDULER": "scrapy_proxybalance.ProxyScheduler"})
    with pytest.raises(ConfigError) as info:
        check_scheduler(settings)
    assert "PROXY_SCHEDULER: 'scrapy_proxybalance.ProxyScheduler' is a ProxyScheduler itself" in str(info.value)


def test_status_page_report_and_pool_source_settings():
    c = config()
    assert (c.status, c.report_file, c.pool_source, c.metrics_per_proxy, c.metrics_per_site) == (None, None, None,
                                                                                                False, False)
    assert config(PROXY_STATUS_ADDRESS="127.0.0.1:6025").status.address == "127.0.0.1:6025"
    ipv6 = config(PROXY_STATUS_ADDRESS="[::1]:0", PROXY_STATUS_ACTIONS="true").status
    assert (ipv6.host, ipv6.port, ipv6.loopback, ipv6.actions, ipv6.address) == ("::1", 0, True, True, "[::1]:0")
    token = "x" * 16
    anywhere = config(PROXY_STATUS_ADDRESS="0.0.0.0:6025", PROXY_STATUS_TOKEN=token).status
    assert anywhere.token == token and not anywhere.loopback and token not in repr(anywhere)
    assert config(PROXY_REPORT_FILE="file:///tmp/p-%(name)s-%(time)s.json").report_file == "/tmp/p-%(name)s-%(time)s.json"
    sourced = config(PROXY_POOL=[], PROXY_POOL_SOURCE="tests.pool_source.proxies", PROXY_DOMAIN_REGIONS={"a.de": "de"})
    assert sourced.pool == [] and sourced.pool_source.__name__ == "proxies"  # regions come with the source's pool
    assert config(PROXY_POOL="", PROXY_POOL_SOURCE=" https://api.example/list ").pool_source == "https://api.example/list"


def test_a_password_with_special_characters_never_shows_in_an_error():
    for url in ("http://u:LEAK@B@host:port", "http://u:LEAKA/x@host:notaport", "http://u:LE#AK@host:0",
                "http://u:LEAK%@host:99999/path", "ftp://u:L@E/A#K@h:1"):
        with pytest.raises(ConfigError) as info:
            config(PROXY_POOL=[url])
        message = str(info.value)
        assert "u:***@" in message and not any(part in message for part in ("LEAK", "LE", "L@E", "A#K")), message


def test_passwords_may_hold_raw_or_encoded_special_characters():
    pool = config(PROXY_POOL=["http://u:p@ss:w/rd#1?@10.0.0.1:8000", "http://v:p%40ss%25@10.0.0.2:8000"]).pool
    assert [p.password for p in pool] == ["p@ss:w/rd#1?", "p@ss%"]
    assert pool[0].url == "http://u:p%40ss%3Aw%2Frd%231%3F@10.0.0.1:8000"  # Scrapy decodes exactly the password
    assert [str(p) for p in pool] == ["http://u:***@10.0.0.1:8000", "http://v:***@10.0.0.2:8000"]


def test_pool_file_with_comments_bom_passwords_and_line_numbers_in_errors(tmp_path):
    good = tmp_path / "proxies.txt"
    good.write_text("\ufeff# my proxies\nhttp://10.0.0.1:1\n\n10.0.0.2:3128  # no scheme means http\n"
                    "http://u:pa#ss@10.0.0.3:1\n"
                    '{"url": "http://10.0.0.4:1", "weight": 2, "name": "four"}\n', encoding="utf-8")
    pool = config(PROXY_POOL=str(good)).pool
    assert [p.key for p in pool] == ["http://10.0.0.1:1", "http://10.0.0.2:3128", "http://u@10.0.0.3:1",
                                     "http://10.0.0.4:1"]
    assert pool[2].password == "pa#ss" and pool[3].label == "four" and pool[3].weight == 2
    bad = tmp_path / "bad.txt"
    bad.write_text("http://10.0.0.1:1\nftp://u:LEAK#x@10.0.0.2:1\n")
    with pytest.raises(ConfigError, match=r"line 2\): unsupported proxy scheme 'ftp'") as info:
        config(PROXY_POOL=str(bad))
    assert "LEAK" not in str(info.value)
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


@pytest.mark.parametrize(
    ("value", "keys"),
    [
        ("http://10.0.0.1:1,http://u:p@10.0.0.2:2", ["http://10.0.0.1:1", "http://u@10.0.0.2:2"]),
        ("127.0.0.1:8080", ["http://127.0.0.1:8080"]),
        ("10.0.0.1:1, 10.0.0.2:2", ["http://10.0.0.1:1", "http://10.0.0.2:2"]),
        ('["http://10.0.0.1:1", {"url": "http://10.0.0.2:2", "backup": "true"}]',
         ["http://10.0.0.1:1", "http://10.0.0.2:2"]),
    ],
)
def test_pool_from_command_line_and_environment_strings(value, keys):
    assert [p.key for p in config(PROXY_POOL=value).pool] == keys


def test_backup_is_read_as_scrapy_reads_booleans():
    pool = config(PROXY_POOL=[{"url": "http://h:1", "backup": "false"}, {"url": "http://h:2", "backup": 1},
                              {"url": "http://h:3", "backup": "True"}]).pool
    assert [p.backup for p in pool] == [False, True, True]


def test_proxy_identity_includes_the_username_and_hides_the_password():
    pool = config(PROXY_POOL=["http://user-de:pw@gw:1", "http://user-fr:pw@gw:1"]).pool
    assert [p.key for p in pool] == ["http://user-de@gw:1", "http://user-fr@gw:1"]
    assert pool[0].url == "http://user-de:pw@gw:1" and "pw" not in str(pool[0]) + repr(pool[0])


def test_domain_regions_match_subdomains():
    c = config(PROXY_POOL=[{"url": "http://h:1", "region": "eu"}], PROXY_DOMAIN_REGIONS={"shop.eu": "eu"})
    assert c.region_for("shop.eu") == c.region_for("www.SHOP.eu") == "eu"
    assert c.region_for("shop.com") is None
