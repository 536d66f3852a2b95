"""The floor a proxy middleware is measured against: a random proxy from a list per request.

``BARE_PROXY_LIST`` is the list; nothing else is done (no health, no retry, no pacing). Used by
``benchmarks/crawl.py``'s ``random-choice`` stack.
"""

from __future__ import annotations

import random


class RandomChoiceMiddleware:
    def __init__(self, proxies: list[str]) -> None:
        self.proxies = proxies

    @classmethod
    def from_crawler(cls, crawler):
        return cls(list(crawler.settings.getlist("BARE_PROXY_LIST")))

    def process_request(self, request, spider=None):
        request.meta["proxy"] = random.choice(self.proxies)
