"""State stores other than the memory one: Redis (``PROXY_STATE_URL = "redis://..."``)."""
