"""A request leaves through its lease's proxy: its carrier puts the proxy on it, a sticky
session's request gets its binding, the move it tells and its cookie jar, and it is counted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .meta import MOVED, MOVED_AT, OUR_JAR, SESSION_GENERATION
from .stats import PREFIX

REQUESTS = f"{PREFIX}/requests"

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.statscollectors import StatsCollector

    from .carriers import Carriers
    from .core.leases import Lease
    from .status.record import Recorder


class Sending:
    def __init__(self, carriers: Carriers, stats: StatsCollector, recorder: Recorder | None = None,
                 session_cookiejar: bool = True, per_site_stats: bool = False) -> None:
        self.carriers = carriers
        self.count = stats.inc_value  # (looked up once: a stats collector's attributes can cost a call)
        self.recorder = recorder
        self.session_cookiejar = session_cookiejar
        self.per_site_stats = per_site_stats

    def send(self, request: Request, lease: Lease) -> None:
        carrier = self.carriers.of(request)
        carrier.attach(request, lease)
        if lease.session is not None:
            self._session_meta(request.meta, lease, lease.session)
        self.count(REQUESTS)
        path = "" if carrier is self.carriers.default else carrier.name  # rendered, say: counted apart
        if path:
            self.count(f"{REQUESTS}/{path}")
        if self.per_site_stats:
            self.count(f"{PREFIX}/site/{lease.site}/requests")
        if self.recorder is not None:
            self.recorder.sent(lease.site, lease.state.key, path)

    def _session_meta(self, meta: dict[str, Any], lease: Lease, session: str) -> None:
        """The request's binding; the move it tells, if it is the first request since; the
        session's cookie jar (a fresh one for each binding)."""
        meta[SESSION_GENERATION] = lease.generation
        if lease.moved:
            meta[MOVED], meta[MOVED_AT] = lease.moved, lease.generation
        elif MOVED in meta and meta.get(MOVED_AT) != lease.generation:
            del meta[MOVED]  # a copy of a request that told an earlier move tells nothing
            meta.pop(MOVED_AT, None)
        if self.session_cookiejar:
            jar = session if not lease.generation else f"{session}#{lease.generation}"
            current = meta.get("cookiejar")
            if current is None or current == meta.get(OUR_JAR) or _session_jar(current, session):
                meta["cookiejar"] = meta[OUR_JAR] = jar


def _session_jar(jar: object, session: str) -> bool:
    """Whether ``jar`` is one we chose for ``session`` (a spider passing it along)."""
    return jar == session or (isinstance(jar, str) and jar.startswith(f"{session}#"))
