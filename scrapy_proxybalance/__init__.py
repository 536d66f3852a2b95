"""scrapy-proxybalance: balance a Scrapy crawl over a pool of HTTP(S) proxies."""

from .addon import Addon
from .core.balancer import Balancer, Lease, Wait
from .core.bans import BanPolicy, Outcome
from .core.errors import ConfigError, NoProxyAvailable, ProxyBalanceError
from .core.proxy import Proxy
from .core.strategies import Strategy
from .middleware import ProxyBalanceMiddleware
from .policy import BanDetected

__all__ = [
    "Addon",
    "Balancer",
    "BanDetected",
    "BanPolicy",
    "ConfigError",
    "Lease",
    "NoProxyAvailable",
    "Outcome",
    "Proxy",
    "ProxyBalanceError",
    "ProxyBalanceMiddleware",
    "Strategy",
    "Wait",
]

__version__ = "0.1.0"
