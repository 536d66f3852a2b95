"""A user-defined strategy, loaded by dotted path in the tests."""

from scrapy_proxybalance.core.strategies import RoundRobin


class AlwaysFirst(RoundRobin):
    """Every pick starts from the first member."""

    name = "always_first"

    def pick(self, accept):
        self.cursor = 0
        return super().pick(accept)
