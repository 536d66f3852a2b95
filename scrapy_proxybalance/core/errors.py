"""Exceptions users can catch: every one is a :class:`ProxyBalanceError`."""


class ProxyBalanceError(Exception):
    """Base class of every error raised by scrapy-proxybalance."""


class ConfigError(ProxyBalanceError, ValueError):
    """A setting has a bad value; the message names the setting and the (masked) value."""


class InvalidProxy(ProxyBalanceError, ValueError):
    """A proxy entry cannot be used (bad URL, weight, ...); the message masks the password."""


class UnknownProxy(ProxyBalanceError, LookupError):
    """The run-time API named a proxy that is not in the pool."""


class DuplicateProxy(ProxyBalanceError, ValueError):
    """The run-time API added a proxy that is in the pool already."""


class NoProxyAvailable(ProxyBalanceError):
    """No proxy of the pool can serve this request (all tried, none in its region, or none
    for too long: ``PROXY_UNAVAILABLE_TIMEOUT``)."""
