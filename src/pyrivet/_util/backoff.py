"""How long a client waits between attempts: `Backoff`.

Used by a connection to reconnect after its socket dropped (RivetKit's JavaScript client
waits 250 ms, then doubles up to 30 s, forever) and by handles retrying an actor that
is starting or stopping. The first attempt runs at once; `delay(n)` is the wait before
attempt ``n + 1``. The waits themselves go through a `pyrivet._util.clock.Clock`, so
tests run them on a mock clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``initial * factor**n``, capped at ``maximum``.

    Attributes:
        initial: the first wait, in seconds.
        maximum: the longest wait, in seconds.
        factor: how much each wait grows.
        jitter: the fraction of each wait that is random (0 = exact waits). A jittered
            wait lies in ``[(1 - jitter) * w, w]``, so clients that lost the same server
            do not all come back at the same instant.
    """

    initial: float = 0.25
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial:
            raise ValueError("Backoff needs 0 <= initial <= maximum")
        if self.factor < 1:
            raise ValueError("Backoff.factor must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("Backoff.jitter must be between 0 and 1")

    def delay(self, failures: int, rng: Callable[[], float] = random.random) -> float:
        """The wait after ``failures`` consecutive failed attempts (``failures >= 1``).

        Args:
            failures: how many attempts failed in a row.
            rng: a source of floats in ``[0, 1)`` for the jitter.
        """
        exponent = max(0, failures - 1)
        # Cap the exponent: beyond it the result is `maximum` anyway, and huge powers overflow.
        base = self.initial * self.factor ** min(exponent, 64)
        wait = min(self.maximum, base)
        if self.jitter:
            wait *= 1.0 - self.jitter * rng()
        return wait
