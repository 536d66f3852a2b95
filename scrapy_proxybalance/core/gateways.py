"""Session gateways: one pool entry whose credentials choose the exit.

Proxy providers sell one host where a token in the username (or password) picks the exit IP:
``{"url": "http://user-session-{session}:pw@gate.example.net:7000", "sessions": 500}``. Such
a template is not itself a proxy: it stands for up to ``sessions`` identities, each its own
proxy for health, bans, cooldowns and sessions, made when first needed: one per sticky
session bound to it (the token is the session's name when that is short and alphanumeric,
else a digest of it; a moved session gets a fresh one), and, for other requests, one more
whenever those made so far cannot take a request and most of them are in rotation.

A template may also hold ``{country}``: one entry then serves every country its provider
has. A request's country is its region (``meta['proxy_region']``, or the site's from
``PROXY_DOMAIN_REGIONS``); each (session, country) is an identity of its own, in that region.
Requests without a region do not use such a template.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .proxy import Proxy

if TYPE_CHECKING:
    from .balancer import Balancer
    from .state import ProxyState

PLACEHOLDER = "{session}"
COUNTRY = "{country}"
_SAFE = re.compile(r"[A-Za-z0-9]{1,32}")
_COUNTRY = re.compile(r"[A-Za-z0-9_-]{1,32}")


def token(session: str, generation: int) -> str:
    """The token of a sticky session's identity under its ``generation``-th binding."""
    if generation == 0 and _SAFE.fullmatch(session):
        return session
    return hashlib.sha256(f"{session}\0{generation}".encode()).hexdigest()[:16]


def identity(template: Proxy, tok: str) -> Proxy:
    """The proxy a template stands for with ``tok`` in its credentials (``country.token`` for
    a template with ``{country}``: that country, and the identity's region)."""
    country, _, bare = tok.rpartition(".") if COUNTRY in template.username + template.password else ("", "", tok)

    def filled(text: str) -> str:
        return text.replace(PLACEHOLDER, bare).replace(COUNTRY, country)

    made = replace(template, username=filled(template.username), password=filled(template.password), sessions=0,
                   gateway=f"{template.key}#{tok}", region=country or template.region)
    # a token in the password is shown as a digest: no piece of a password is ever shown
    shown = str(made) if PLACEHOLDER in template.username else f"{made} [{_digest(tok)}]"
    return replace(made, name=f"{template.name}[{tok}]" if template.name else shown)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(slots=True)
class Gateway:
    template: Proxy
    made: dict[str, ProxyState] = field(default_factory=dict)  # token -> identity
    plain: int = 0  # identities made for requests without a session

    @property
    def room(self) -> bool:
        return len(self.made) < self.template.sessions

    @property
    def countries(self) -> bool:
        return COUNTRY in self.template.username + self.template.password

    def token_for(self, tok: str, region: str | None) -> str | None:
        """The token of an identity for ``region`` (``None``: this gateway cannot serve it)."""
        if not self.countries:
            return tok if region in (None, self.template.region) else None
        return f"{region}.{tok}" if region is not None and _COUNTRY.fullmatch(region) else None


class Gateways:
    """The balancer's gateways: they add identities to its pool as they are needed."""

    def __init__(self, balancer: Balancer) -> None:
        self.b = balancer
        self.by_key: dict[str, Gateway] = {}

    def __bool__(self) -> bool:
        return bool(self.by_key)

    @property
    def countries(self) -> bool:
        """Whether a template takes ``{country}`` (sessions are then keyed ``name@country``)."""
        return any(g.countries for g in self.by_key.values())

    def add(self, template: Proxy) -> None:
        """A template joins, with no identity yet."""
        self.by_key[template.key] = Gateway(template)

    def remove(self, key: str) -> None:
        """A template leaves, with every identity it made."""
        gateway = self.by_key.pop(key)
        for p in gateway.made.values():
            if p.key in self.b.by_key:
                self.b.remove(p.key)

    def templates(self) -> list[Proxy]:
        return [g.template for g in self.by_key.values()]

    def update(self, template: Proxy) -> list[tuple[ProxyState, Proxy]]:
        """A template changed (weight, region, backup, name, password): its identities, each
        with what it becomes."""
        gateway = self.by_key[template.key]
        gateway.template = template
        return [(p, identity(template, tok)) for tok, p in gateway.made.items() if not p.removed]

    def for_session(self, session: str, generation: int, region: str | None) -> ProxyState | None:
        """The session's own identity, from a gateway of ``region`` with room (``None`` if none has)."""
        if region is not None:
            session = session.removesuffix(f"@{region}")  # its key names its country
        for gateway in self.by_key.values():
            tok = gateway.token_for(token(session, generation), region)
            if tok is not None:
                made = gateway.made.get(tok)
                if made is not None:
                    return made if made.in_rotation else None
                if gateway.room:
                    return self._make(gateway, tok)
        return None

    def grow(self, region: str | None) -> ProxyState | None:
        """One more identity for requests without a session, from a gateway of ``region``
        with room whose identities are mostly in rotation (a gateway that is down grows no
        more)."""
        for gateway in self.by_key.values():
            if gateway.room and gateway.token_for("", region) is not None:
                mine = [p for p in gateway.made.values() if region in (None, p.proxy.region)]  # only when all are busy
                if 2 * sum(1 for p in mine if p.in_rotation) >= len(mine):
                    tok = gateway.token_for(self._plain_token(gateway), region)
                    assert tok is not None
                    return self._make(gateway, tok)
        return None

    def made(self, key: str) -> ProxyState | None:
        """The identity with ``key``, made now if another process made it first."""
        p = self.b.by_key.get(key)
        if p is not None:
            return p
        template_key, _, tok = key.rpartition("#")
        gateway = self.by_key.get(template_key)
        if gateway is None or not tok or not gateway.room:
            return None
        return self._make(gateway, tok)

    @staticmethod
    def _plain_token(gateway: Gateway) -> str:
        gateway.plain += 1
        return f"pb{gateway.plain}"

    def _make(self, gateway: Gateway, tok: str) -> ProxyState:
        p = self.b.add_identity(identity(gateway.template, tok))
        gateway.made[tok] = p
        return p
