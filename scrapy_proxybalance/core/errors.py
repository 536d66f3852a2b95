"""Exceptions users can catch."""


class ProxyBalanceError(Exception):
    """Base class of every error raised by scrapy-proxybalance."""


class ConfigError(ProxyBalanceError, ValueError):
    """A setting has a bad value; the message names the setting and the (masked) value."""


class NoProxyAvailable(ProxyBalanceError):
    """No proxy of the pool can ever serve this request (all tried, or none in its region)."""
