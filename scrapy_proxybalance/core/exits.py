"""A rotating gateway's exits, as its responses name them (an entry's ``exit_header``).

A rotating entry stands for many exits, one per connection: the site sees the exit, not the
entry. So the entry itself keeps no gap with a site (its requests leave from different exits,
``CONCURRENT_REQUESTS_PER_DOMAIN`` at once), and what a site sees is kept per (exit, site) pair,
under the key ``<entry key>@<exit>``: each exit's last answer there (a request that lands on an
exit the site saw less than its gap ago is counted: the gateway, not we, chose that exit), and
each exit's bans. A ban holds that exit off the site; the gateway as a whole is held off a site
only once the site bans :data:`EXITS_TO_BAN_ENTRY` of its exits at once, so one flagged
address does not cost a site the whole gateway.
"""

from __future__ import annotations

from .candidates import pair_free_at
from .leases import Lease
from .listener import PoolListener
from .store import PairStore

EXITS_TO_BAN_ENTRY = 3  # a site banning this many of a gateway's exits at once bans the gateway


def exit_key(entry: str, exit_name: str) -> str:
    return f"{entry}@{exit_name}"


class Exits:
    def __init__(self, store: PairStore, listener: PoolListener) -> None:
        self.store = store
        self.listener = listener

    def answered(self, lease: Lease, now: float, gap: float) -> None:
        """The exit answered the site: its gap there counts from now."""
        key, site = exit_key(lease.state.key, lease.exit), lease.site
        if pair_free_at(self.store.pairs_of(site).get(key), now, 1 << 30, gap) > now:
            self.listener.same_exit(lease.state, site)
        self.store.take(key, site, now, lease.number)
        self.store.give_back(key, site, now, gap, lease.number)

    def banned(self, lease: Lease, now: float, until: float, level: int) -> bool:
        """The site banned the exit: held off it until ``until``. Returns whether the site now
        bans enough of the gateway's exits to hold the gateway itself off."""
        entry, site = lease.state.key, lease.site
        self.store.ban(exit_key(entry, lease.exit), site, now, until, level)
        prefix = f"{entry}@"
        return sum(1 for key in self.store.banned(site, now) if key.startswith(prefix)) >= EXITS_TO_BAN_ENTRY

    def level(self, lease: Lease) -> int:
        """Bans in a row of the exit at the site."""
        return self.store.ban_of(exit_key(lease.state.key, lease.exit), lease.site)[1]

    def taken_again(self, lease: Lease) -> None:
        """The site took the exit again: its ban level there is forgotten."""
        key = exit_key(lease.state.key, lease.exit)
        if self.store.ban_of(key, lease.site)[1]:
            self.store.unban(key, lease.site)
