"""The add-on changes exactly the settings it says; the core never imports Scrapy or Twisted."""

import subprocess
import sys
from pathlib import Path

import pytest
from scrapy.settings import SETTINGS_PRIORITIES, Settings
from scrapy.utils.test import get_crawler

from scrapy_proxybalance import Addon, ProxyBalanceMiddleware, ProxyScheduler
from scrapy_proxybalance.config import DEFAULTS

CORE = Path(__file__).parent.parent / "scrapy_proxybalance" / "core"


def test_addon_adds_the_middleware_at_610_and_wraps_the_scheduler():
    settings = Settings()
    before = {k: settings[k] for k in settings}
    Addon().update_settings(settings)
    changed = {k for k in settings if settings[k] != before.get(k)}
    assert changed == {"DOWNLOADER_MIDDLEWARES", "SCHEDULER", *(k for k, v in DEFAULTS.items() if v is not None)}
    assert all(settings[k] == DEFAULTS[k] for k in DEFAULTS if k != "PROXY_SCHEDULER")
    assert all(settings.getpriority(k) == SETTINGS_PRIORITIES["addon"] for k in DEFAULTS)
    assert settings["DOWNLOADER_MIDDLEWARES"] == {ProxyBalanceMiddleware: 610}
    assert settings["SCHEDULER"] is ProxyScheduler
    assert settings["PROXY_SCHEDULER"] == "scrapy.core.scheduler.Scheduler"


def test_addon_wraps_the_project_s_own_scheduler_at_its_priority():
    settings = Settings()
    settings.set("SCHEDULER", "scrapy_redis.scheduler.Scheduler", priority="project")
    Addon().update_settings(settings)
    assert settings["SCHEDULER"] is ProxyScheduler and settings.getpriority("SCHEDULER") == 20
    assert settings["PROXY_SCHEDULER"] == "scrapy_redis.scheduler.Scheduler"
    Addon().update_settings(settings)  # a second time changes nothing
    assert settings["PROXY_SCHEDULER"] == "scrapy_redis.scheduler.Scheduler"


def test_addon_keeps_a_priority_the_project_chose():
    settings = Settings({"DOWNLOADER_MIDDLEWARES": {"scrapy_proxybalance.ProxyBalanceMiddleware": 620}})
    Addon().update_settings(settings)
    assert settings["DOWNLOADER_MIDDLEWARES"] == {"scrapy_proxybalance.ProxyBalanceMiddleware": 620}


def test_addon_enables_the_middleware_between_retry_and_httpproxy():
    crawler = get_crawler(settings_dict={"ADDONS": {Addon: 0}, "PROXY_POOL": ["http://10.0.0.1:1"]})
    order = crawler.settings.get_component_priority_dict_with_base("DOWNLOADER_MIDDLEWARES")
    names = [getattr(k, "__name__", str(k).rsplit(".", 1)[-1]) for k, _ in sorted(order.items(), key=lambda kv: kv[1])
             if _ is not None]
    assert names.index("RetryMiddleware") < names.index("ProxyBalanceMiddleware") < names.index("HttpProxyMiddleware")


def test_proxy_enabled_false_disables_the_middleware():
    import pytest
    from scrapy.exceptions import NotConfigured

    crawler = get_crawler(settings_dict={"PROXY_ENABLED": False})
    with pytest.raises(NotConfigured):
        ProxyBalanceMiddleware.from_crawler(crawler)


def test_core_imports_neither_scrapy_nor_twisted():
    modules = sorted(f"scrapy_proxybalance.core.{p.stem}" for p in CORE.glob("*.py") if p.stem != "__init__")
    code = (
        "import sys\n"
        f"for m in {modules!r}: __import__(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('scrapy', 'twisted'))\n"
        "print(bad)\n"
    )
    # import the core package without running scrapy_proxybalance/__init__.py
    loader = (
        "import importlib.util, sys, types\n"
        f"pkg = types.ModuleType('scrapy_proxybalance'); pkg.__path__ = [{str(CORE.parent)!r}]\n"
        "sys.modules['scrapy_proxybalance'] = pkg\n"
    )
    out = subprocess.run([sys.executable, "-c", loader + code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_proxycheck_command_is_registered_for_scrapy():
    from importlib.metadata import entry_points

    from scrapy_proxybalance.checks.command import Command

    found = {e.name: e for e in entry_points(group="scrapy.commands")}
    assert found["proxycheck"].load() is Command


def test_modules_classes_and_functions_stay_small():
    """No module over 400 lines, no class over 300, no function over cyclomatic complexity 15."""
    radon = pytest.importorskip("radon.complexity", reason="radon is in the lint extra")
    package = CORE.parent
    too_big = []
    for path in sorted(package.rglob("*.py")):
        source = path.read_text()
        if source.count("\n") > 400:
            too_big.append(f"{path.relative_to(package)}: {source.count(chr(10))} lines")
        for block in radon.cc_visit(source):
            methods = getattr(block, "methods", None)
            for item in [block, *(methods or [])]:
                if item.complexity > 15:
                    too_big.append(f"{path.relative_to(package)}: {item.fullname} has complexity {item.complexity}")
            if methods is not None and block.endline - block.lineno + 1 > 300:
                too_big.append(f"{path.relative_to(package)}: class {block.name} has"
                               f" {block.endline - block.lineno + 1} lines")
    assert too_big == []
