"""``PROXY_POOL_SOURCE`` functions for tests/test_status.py, run inside the crawl's process.

Each call answers the next step of the plan in the JSON file that ``POOL_SOURCE_PLAN`` names
(the last step repeats; ``"fail"`` raises, with a password in the message) and notes the call
as a line in that file + ``.calls``.
"""

import asyncio
import json
import os
import threading


def _next_step():
    plan_path = os.environ["POOL_SOURCE_PLAN"]
    with open(plan_path + ".calls", "a+", encoding="utf-8") as f:
        f.write(f"{threading.current_thread().name}\n")
        f.seek(0)
        calls = len(f.read().splitlines())
    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    step = plan[min(calls, len(plan)) - 1]
    if step == "fail":
        raise ConnectionError("provider down: https://acme:hunter2-pw@provider.example/list")
    return step


def proxies():
    """A plain function (the middleware runs it in a thread)."""
    return _next_step()


async def proxies_async():
    """An async function (run on the event loop)."""
    await asyncio.sleep(0.01)
    return _next_step()
