"""``PROXY_REPORT_FILE``: a JSON report of the pool, written when the spider closes.

Per proxy and per site, what the closing table shows and more: bans by site and status,
failures by reason, ejections with their reasons and times, exit IPs (from active checks), the
latency histogram; the format of ``/status.json`` (see the README), with every proxy and site
and their histories. The path takes Scrapy's feed URI placeholders: ``%(name)s`` (the spider's
name), ``%(time)s`` (when the crawl started, UTC, as Scrapy's feeds write it) and any other
spider attribute. The file is written aside and renamed, so a reader never sees half of it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import REPORT_FIELD

if TYPE_CHECKING:
    from scrapy import Spider

logger = logging.getLogger(__name__)


def report_path(template: str, spider: Spider, started: float) -> Path:
    """The report's path for this crawl (see the module's doc). Raises ``KeyError`` for a
    placeholder the spider has no attribute for."""
    params: dict[str, Any] = {"name": spider.name,
                              "time": datetime.fromtimestamp(started, tz=UTC).replace(microsecond=0).isoformat()
                              .replace(":", "-")}

    def value(match: Any) -> str:
        field = match[1]
        if field not in params and not hasattr(spider, field):
            raise KeyError(field)
        return str(params[field] if field in params else getattr(spider, field))

    return Path(REPORT_FIELD.sub(value, template))


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write ``report`` to ``path`` as JSON, atomically (a temporary file renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
