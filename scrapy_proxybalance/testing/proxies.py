"""The farm's proxies: what each kind does, and what each saw."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field

from .wire import HOST, basic, basic_user


@dataclass
class Seen:
    """One request as a proxy (or the site) received it."""

    at: float
    host: str
    path: str
    headers: dict[str, str]
    exit_ip: str = ""  # the address it reached the site from


@dataclass
class ProxySpec:
    name: str
    kind: str = "healthy"
    delay: float = 0.0
    min_interval: float = 0.0
    retry_after: int = 5
    user: str = ""
    password: str = ""
    capacity: int = 0  # requests served at once; 0 = unlimited
    overflow: str = "queue"  # above capacity: "queue" (wait their turn) or "503"
    captcha_hosts: frozenset[str] = frozenset()
    ban_hosts: frozenset[str] = frozenset()  # hosts that refuse it: a 403 "blocked" page
    exit_ip: str = ""  # the address it connects to the site from ("": one of its own)
    exits: tuple[str, ...] = ()  # gateway: the exit addresses its usernames choose among
    dead_exits: frozenset[str] = frozenset()  # gateway: exits that cut every request (their identities fail)
    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    last: dict[str, float] = field(default_factory=dict)
    ban_log: list[tuple[float, str]] = field(default_factory=list)  # (when, host) of each 429 it sent
    overflows: int = 0  # 503s sent above capacity
    connections: int = 0  # a rotating gateway's connections so far (the next picks the next exit)
    in_flight: int = 0
    server: asyncio.AbstractServer | None = None
    slots: asyncio.Semaphore | None = None
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        creds = f"{self.user}:{self.password}@" if self.user else ""
        return f"http://{creds}{HOST}:{self.port}"

    def exit_for(self, headers: dict[str, str]) -> str:
        """The address this request leaves from (a gateway's depends on the username)."""
        if not self.exits:
            return self.exit_ip
        user = basic_user(headers.get("proxy-authorization", ""))
        digest = int(hashlib.sha256(user.encode()).hexdigest(), 16)
        return self.exits[digest % len(self.exits)]


@dataclass
class Outage:
    after: float  # seconds after the farm's first request that it begins
    seconds: float
    names: frozenset[str] | None  # None: every proxy
    refuse: bool  # refuse connections (and cut open ones) rather than drop each request
    after_requests: int | None = None  # it begins instead when the proxies have received this many requests


def authorized(spec: ProxySpec, headers: dict[str, str]) -> bool:
    """``auth``: exactly its user and password; ``gateway``: any username, its password."""
    given = headers.get("proxy-authorization", "")
    if spec.kind == "gateway":
        user = basic_user(given)
        return bool(user) and given == basic(user, spec.password)
    return given == basic(spec.user, spec.password)


def demo_specs() -> list[ProxySpec]:
    """The demo farm, each proxy named by its role."""
    return [
        ProxySpec("fast-1", exit_ip="127.0.0.11"),
        ProxySpec("fast-2", exit_ip="127.0.0.12"),
        ProxySpec("fast-3", exit_ip="127.0.0.12"),  # two proxies behind one exit address
        ProxySpec("slow", kind="slow", delay=0.4, exit_ip="127.0.0.14"),
        ProxySpec("dead", kind="dead"),
        ProxySpec("hung", kind="hung"),
        ProxySpec("strict", kind="banning", min_interval=3.0, retry_after=5, exit_ip="127.0.0.17"),
        ProxySpec("private", kind="auth", user="demo", password="s3cret", exit_ip="127.0.0.18"),
        ProxySpec("sly", captcha_hosts=frozenset({"shop-b.test"}), exit_ip="127.0.0.19"),
    ]
