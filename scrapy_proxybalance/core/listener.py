"""What the balancer tells the world: the pool's health events, from one place."""

from __future__ import annotations

from .ejection import ProxyFacts
from .state import ProxyState


class PoolListener:
    """Told of changes in the pool's health (stats, logs, status pages subscribe); does nothing."""

    def ejected(self, state: ProxyState, facts: ProxyFacts, seconds: float) -> None: ...

    def revived(self, state: ProxyState, how: str) -> None: ...

    def removed(self, state: ProxyState) -> None:
        """A proxy left the pool for good."""

    def banned(self, state: ProxyState, site: str, banning: set[str]) -> None:
        """``site`` banned the proxy; ``banning``: every site that bans it now."""

    def same_exit(self, state: ProxyState, site: str) -> None:
        """A rotating gateway's request left from an exit the site saw less than its gap ago."""

    def session_bound(self, session: str, state: ProxyState, generation: int) -> None: ...

    def session_moved(self, session: str, reason: str) -> None: ...

    def session_renewed(self, session: str) -> None:
        """A moved session's new binding answered: its older requests may go."""

    def slowed(self, site: str, gap: float) -> None:
        """Rate limits from ``site``: each proxy now keeps ``gap`` seconds between requests there."""

    def tier_moved(self, site: str, before: int, after: int, why: str) -> None:
        """``site`` moved from price tier ``before`` to ``after`` (see :mod:`.tiers`)."""
