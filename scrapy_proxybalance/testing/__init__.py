"""Tools to test spiders against proxies that misbehave on purpose: the local proxy farm."""
