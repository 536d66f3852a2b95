"""scrapy-proxybalance: balance a Scrapy crawl over a pool of proxies."""

from .addon import Addon
from .core.balancer import Balancer, Lease, Wait
from .core.errors import (
    ConfigError,
    DuplicateProxy,
    InvalidProxy,
    NoProxyAvailable,
    ProxyBalanceError,
    UnknownProxy,
)
from .core.outcomes import BanPolicy, Outcome
from .core.proxy import Proxy
from .core.strategies import Strategy
from .middleware import ProxyBalanceMiddleware
from .policy import BanDetected
from .pool_control import PoolControl
from .scheduler import ProxyScheduler

__all__ = [
    "Addon",
    "Balancer",
    "BanDetected",
    "BanPolicy",
    "ConfigError",
    "DuplicateProxy",
    "InvalidProxy",
    "Lease",
    "NoProxyAvailable",
    "Outcome",
    "PoolControl",
    "Proxy",
    "ProxyBalanceError",
    "ProxyBalanceMiddleware",
    "ProxyScheduler",
    "Strategy",
    "UnknownProxy",
    "Wait",
]

__version__ = "0.3.0"
