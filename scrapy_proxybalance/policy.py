"""The ban policy as the middleware uses it: the core :class:`BanPolicy`, the
``PROXY_BAN_POLICY`` class, the download path's own reading of its exceptions, and a spider's
own overrides."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy.exceptions import IgnoreRequest

from .carriers import Fault
from .core.errors import ProxyBalanceError
from .core.outcomes import BanPolicy, Outcome

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from .config import Config


class BanDetected(IgnoreRequest, ProxyBalanceError):
    """A ban page that looked like a success (e.g. a captcha with status 200) was all the
    proxies gave for this request; it goes to the errback instead of the callback."""

    def __init__(self, response: Response, *args: Any) -> None:
        self.response = response
        super().__init__(*args)


def build_policy(cls: type, crawler: Crawler, config: Config, failures: tuple[type[BaseException], ...]) -> Any:
    """An instance of ``PROXY_BAN_POLICY``: through its ``from_crawler`` if it has one,
    else built like :class:`BanPolicy` from the settings (``failures``: the exception types
    the download paths count against a proxy)."""
    if hasattr(cls, "from_crawler"):
        return cls.from_crawler(crawler)
    return cls(ban_statuses=config.ban_status_codes, body_patterns=config.ban_body_patterns, failures=failures,
               rate_limit_statuses=config.rate_limit_status_codes, overload_statuses=config.overload_status_codes,
               blocks=config.block_pages)


class SpiderPolicy:
    """The project's policy, overridden by the spider where it says so.

    A spider can set ``proxy_ban_policy`` (a policy class or instance) to replace the
    project's, or define ``response_is_ban(request, response)`` and
    ``exception_is_ban(request, exception)`` as scrapy-rotating-proxies allows: ``True``
    means a ban, ``False`` not a ban, ``None`` leaves the decision to the policy.

    An exception is first read by the download path that raised it (its carrier's fault
    table); a policy class with its own ``exception_outcome`` decides instead.
    """

    def __init__(self, policy: Any, spider: Spider | None, crawler: Crawler, config: Config,
                 failures: tuple[type[BaseException], ...] = ()) -> None:
        own = getattr(spider, "proxy_ban_policy", None)
        if isinstance(own, type):
            own = build_policy(own, crawler, config, failures)
        self.policy = own or policy
        self.own_exceptions = getattr(type(self.policy), "exception_outcome", None) is not BanPolicy.exception_outcome
        self.response_is_ban = getattr(spider, "response_is_ban", None)
        self.exception_is_ban = getattr(spider, "exception_is_ban", None)

    def response_outcome(self, request: Request, response: Response) -> Outcome:
        outcome = self.policy.response_outcome(request, response)
        if self.response_is_ban is None:  # the spider has no say
            return outcome
        return _overridden(outcome, self.response_is_ban, request, response, not_a_ban=Outcome.SUCCESS)

    def block_of(self, response: Response) -> str | None:
        """The anti-bot service whose block page a banned response is, if the policy knows."""
        block_of = getattr(self.policy, "block_of", None)
        return block_of(response) if block_of is not None else None

    def exception_outcome(self, request: Request, exception: BaseException, fault: Fault | None) -> Outcome:
        """``fault``: what the download path's fault table says of the exception."""
        if self.own_exceptions:
            outcome = self.policy.exception_outcome(request, exception)
        else:
            outcome = Outcome.FAILURE if fault is not None and fault.proxy else Outcome.NEUTRAL
        return _overridden(outcome, self.exception_is_ban, request, exception, not_a_ban=Outcome.NEUTRAL)


def _overridden(outcome: Outcome, is_ban: Any, *args: Any, not_a_ban: Outcome) -> Outcome:
    """The policy's ``outcome`` after the spider's say: ``True`` makes it a ban, ``False``
    turns a ban into ``not_a_ban``, ``None`` (or no method) leaves it."""
    verdict = is_ban(*args) if is_ban is not None else None
    if verdict is True:
        return Outcome.BAN
    if verdict is False and outcome is Outcome.BAN:
        return not_a_ban
    return outcome

