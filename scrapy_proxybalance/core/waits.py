"""How long a request that no proxy can take now waits: the soonest moment one may.

The moments a proxy may free up for it, each from its own source:

- a pair of the site ends its gap, its pause or its ban (the store knows the soonest);
- an ejected proxy's backoff ends;
- an ejected proxy is due for a probe, while the pool panics;
- a pair busy with a request answers, then keeps its gap;
- a request ends somewhere (a proxy at its concurrency limit, a pair at its limit without a
  gap, or a pilot trying the site's gap): looked at again every :data:`RELEASE_POLL`, or
  sooner when a release wakes it;
- only disabled proxies are left: looked at again every :data:`DISABLED_POLL`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .candidates import Candidates
from .errors import NoProxyAvailable
from .leases import Ask, Wait

if TYPE_CHECKING:
    from .balancer import Balancer

MIN_WAIT = 0.01  # never ask a request to wait less than this (seconds)
RELEASE_POLL = 0.5  # waiting for a release (capacity): look again at least this often
DISABLED_POLL = 1.0  # only disabled proxies left: look again this often


def servable(b: Balancer, ask: Ask) -> None:
    """Raise :class:`NoProxyAvailable` if no proxy of the request's region could ever serve it."""
    region = ask.region
    size = b.region_size[region]
    if not size:
        raise NoProxyAvailable(f"no proxy in region {region!r}")
    tried = sum(1 for k in set(ask.tried) if (p := b.by_key.get(k)) and region in (None, p.proxy.region))
    if tried >= size:
        raise NoProxyAvailable(f"all {size} proxies{_in(region)} were tried already")


def next_wait(b: Balancer, ask: Ask, now: float, blocked: Candidates, usable: int) -> Wait:
    """The wait for a request no proxy could take (``blocked`` says what stopped them;
    ``usable``: members that could serve it once free). Raises :class:`NoProxyAvailable`
    when nothing will ever free up for it."""
    servable(b, ask)
    gap = blocked.gap
    on_release = blocked.freed_by_a_release
    moments = [
        b.store.soonest(ask.site, now, gap),
        b.recovery.next_end(),
        b.recovery.next_probe() if b.recovery.probing(ask.region) else None,
        now + gap if blocked.pair_busy and gap > 0 else None,
        now + RELEASE_POLL if on_release else None,
    ]
    delays = [t - now for t in moments if t is not None]
    if not delays and b.members.disabled:
        delays.append(DISABLED_POLL)
    if not delays:
        raise NoProxyAvailable(f"no proxy{_in(ask.region)} can serve {ask.site}")
    return Wait(max(MIN_WAIT, min(delays)), unavailable=usable <= 0, on_release=on_release,
                capacity=blocked.busy and not (blocked.held or blocked.pair_busy or blocked.piloted))


def _in(region: str | None) -> str:
    return f" in region {region!r}" if region else ""
