"""Sphinx configuration of the scrapy-proxybalance documentation (``make docs``)."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

import scrapy_proxybalance  # noqa: E402

project = "scrapy-proxybalance"
author = "the scrapy-proxybalance authors"
copyright = "the scrapy-proxybalance authors"
release = scrapy_proxybalance.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "myst_parser",  # for CHANGELOG.md only; every page of the documentation is reStructuredText
    "proxybalancedocs",  # docs/_ext: the setting and reqmeta directives and roles
]

source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build"]
root_doc = "index"
language = "en"

html_theme = "furo"
html_title = f"scrapy-proxybalance {release}"
html_static_path: list[str] = []

# The docs build offline (no intersphinx). The signatures and docstrings of the public API
# name Scrapy's, Twisted's and Python's own types, and private modules of this package
# (the classes are documented under their top-level names, which stay put while modules
# move): nitpicky mode cannot resolve those, so they are listed here.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"

nitpick_ignore_regex = [
    # Python's builtins and standard library
    (r"py:.*", r"(str|int|float|bool|bytes|dict|list|tuple|set|object|None|type|Any|Exception|BaseException)"),
    (r"py:.*", r"(ValueError|LookupError|Enum|ABC)"),
    (r"py:.*", r"(typing|collections\.abc|enum|abc|re|random|pathlib|asyncio|datetime)\..*"),
    (r"py:.*", r"(Callable|Iterable|Iterator|Sequence|Mapping|Awaitable|Coroutine|Self)"),
    # Scrapy and Twisted (no intersphinx offline)
    (r"py:.*", r"(scrapy|twisted)(\..*)?"),
    (r"py:.*", r"(Crawler|Request|Response|Spider|BaseSettings|Settings|BaseScheduler|IgnoreRequest|Deferred)"),
    # this package's modules and private names, which the concurrent refactor may move
    (r"py:.*", r"scrapy_proxybalance\.[a-z_]+\..*"),
    (r"py:.*", r"\..*"),
    # the middleware's collaborators, named in its signature (see the architecture page)
    (r"py:class", r"(Admission|Sending|Answers|Crawl|Ledger|Carriers|Balancer|StateStore|Config|StatsCollector|Lifecycle)"),
    (r"py:mod", r".*"),
    (r"py:.*", r"(ProxyState|Accept|Ask|Released|Outcome|Lease|Wait|Config|Rules|StateStore|PairRecord|Clock)"),
]
nitpicky = True

myst_heading_anchors = 3
suppress_warnings = ["myst.header"]
