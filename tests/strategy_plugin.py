"""User-defined plug-ins (a strategy, a ban policy), loaded by dotted path in the tests."""

from scrapy_proxybalance import BanPolicy, Outcome
from scrapy_proxybalance.core.strategies import RoundRobin


class AlwaysFirst(RoundRobin):
    """Every pick starts from the first member."""

    name = "always_first"

    def pick(self, accept):
        self.cursor = 0
        return super().pick(accept)


class StrictPolicy(BanPolicy):
    """Also counts a 502 as the proxy's failure (a gateway that could not reach the site)."""

    def response_outcome(self, request, response):
        if response.status == 502:
            return Outcome.FAILURE
        return super().response_outcome(request, response)
