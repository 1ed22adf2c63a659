"""Capped exponential backoff with jitter, as in sapha.js."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Backoff:
    """Reconnect delays: ``initial * factor**attempt``, capped at ``maximum``, jittered.

    Each delay is a random value in ``[(1 - jitter) * d, d]`` so that many clients
    dropped together do not come back in the same millisecond. ``quick=True`` (the hub
    said 1001 "going away": it is restarting) uses the first delay whatever the attempt.
    """

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5
    random: Callable[[], float] = field(default=random.random, repr=False)

    def delay(self, attempt: int, quick: bool = False) -> float:
        """The delay, in seconds, before attempt number ``attempt + 1`` (``attempt`` from 0)."""
        exponent = 0 if quick else max(0, attempt)
        # Cap the exponent too, so that a long outage cannot overflow the float.
        d = min(self.maximum, self.initial * self.factor ** min(exponent, 64))
        j = min(1.0, max(0.0, self.jitter))
        return d * (1.0 - j * self.random())
