"""The private ``Request.meta`` keys of scrapy-proxybalance, in one place.

What a request carries into the scheduler (and so into a ``JOBDIR`` queue, read perhaps by
another process on another day) means the same anywhere: the proxy, lease and download slot
of an attempt are taken off before it is queued, and nothing here holds a time or an id of
one process.
"""

OUR_PROXY = "_proxybalance_proxy"  # the proxy we set (no credentials): tells our choice from the user's
OUR_SLOT = "_proxybalance_slot"  # we set meta['download_slot'] (a slot per site and proxy)
OUR_CLOSE = "_proxybalance_close"  # we set the Connection: close header (a rotating gateway's request)
LEASE = "_proxybalance_lease"  # (process token, lease number) of the lease this attempt holds
TRIED = "_proxybalance_tried"  # keys of the proxies this request already failed through
TIMEOUT = "_proxybalance_timeout"  # (the request's own download_timeout,) while we lowered it
WAIT = "_proxybalance_wait"  # (seconds, on release): on its way to the scheduler's waiting room
LAST_TRY = "_proxybalance_last_try"  # this attempt is the one more try after the budget ran out
FAIL = "_proxybalance_fail"  # why this request fails without a proxy (set when it leaves the scheduler)
WOKEN = "_proxybalance_woken"  # a waiting request the room's timer sent round to wake the engine
DONT_FILTER = "_proxybalance_dont_filter"  # the request's own dont_filter, while the scheduler set it
SESSION_GENERATION = "_proxybalance_session"  # the binding of its sticky session it was queued under
OUR_JAR = "_proxybalance_jar"  # the cookie jar we chose for its sticky session
MOVED_AT = "_proxybalance_moved_at"  # the binding whose move it told (a copy of it tells nothing)
TIER_MIN = "_proxybalance_tier_min"  # the lowest price tier it may go at (it was banned a tier below)
CUSTODY = "_proxybalance_custody"  # its token in the fleet's custody while a process holds it (see custody.py)
SESSION = "proxy_session"  # public: the request's sticky session
MOVED = "proxy_session_moved"  # public: its session moved to another proxy with it, and why
RETRIES = "proxy_retry_times"  # public: moves to another proxy, apart from RetryMiddleware's retry_times
TIER = "proxy_tier"  # public: the only price tier this request may go at
MAX_RETRIES = "proxy_max_retry_times"  # public: this request's budget of charged moves (PROXY_RETRY_TIMES)
