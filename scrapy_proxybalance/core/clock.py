"""The clock the core reads: a callable returning monotonic seconds."""

import time
from collections.abc import Callable

Clock = Callable[[], float]

monotonic: Clock = time.monotonic
