"""Local Sphinx extension of the scrapy-proxybalance docs, after Scrapy's own ``docs/_ext``.

- ``.. setting:: NAME`` marks where a setting is documented, puts it in the index, and
  ``:setting:`NAME``` links to it (an unknown name is a warning, so an error with ``-W -n``).
- ``.. reqmeta:: key`` and ``:reqmeta:`key``` do the same for ``Request.meta`` keys.
- At the end of the build, every ``PROXY_*`` setting the package knows (its ``DEFAULTS``)
  must have a ``.. setting::`` entry, and every entry must be a real setting.
"""

from __future__ import annotations

import importlib

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

# Where the package keeps every setting's default. If the code moves it, change this line.
DEFAULTS_AT = ("scrapy_proxybalance.config", "DEFAULTS")


def known_settings() -> set[str] | None:
    module, name = DEFAULTS_AT
    try:
        return set(getattr(importlib.import_module(module), name))
    except (ImportError, AttributeError) as exc:
        logger.warning("cannot read the package's settings from %s.%s (%s): update DEFAULTS_AT in "
                       "docs/_ext/proxybalancedocs.py", module, name, exc)
        return None


def check_settings(app: Sphinx, env) -> None:
    known = known_settings()
    if known is None:
        return
    documented = {name for (kind, name) in env.get_domain("std").objects if kind == "setting"}
    for name in sorted(known - documented):
        logger.warning("setting %s has no '.. setting:: %s' entry in docs/reference/settings.rst", name, name)
    for name in sorted(documented - known):
        logger.warning("'.. setting:: %s' documents a setting the package does not have", name)


def setup(app: Sphinx) -> dict:
    app.add_crossref_type(directivename="setting", rolename="setting", indextemplate="pair: %s; setting")
    app.add_crossref_type(directivename="reqmeta", rolename="reqmeta", indextemplate="pair: %s; reqmeta")
    app.connect("env-check-consistency", check_settings)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
