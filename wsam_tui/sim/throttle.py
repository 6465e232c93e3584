"""ARM's throttling as the simulator applies it.

ARM (2024+ model): a token bucket per subscription and operation kind — reads 250 burst refilling
25/s, writes 200 refilling 10/s, deletes 200 refilling 10/s; tenant-scope calls have their own
buckets. Resource Graph: about 15 queries per 5-second window per caller, reported in
``x-ms-user-quota-remaining`` / ``x-ms-user-quota-resets-after`` (research/arm-api.md §1.5, §5).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

ARM_LIMITS: dict[str, tuple[float, float]] = {  # kind -> (burst, refill per second)
    "reads": (250, 25),
    "writes": (200, 10),
    "deletes": (200, 10),
}


@dataclass
class TokenBucket:
    capacity: float
    refill_per_s: float
    tokens: float
    updated: float

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.refill_per_s)
        self.updated = now

    def take(self, now: float) -> tuple[bool, int, float]:
        """Take one token. Returns (allowed, remaining, seconds until a token is available)."""
        self._refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return True, int(self.tokens), 0.0
        return False, 0, (1 - self.tokens) / self.refill_per_s


@dataclass
class ArmThrottle:
    enabled: bool = True
    limits: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(ARM_LIMITS))
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[tuple[str, str], TokenBucket] = field(default_factory=dict)

    def take(self, scope: str, kind: str) -> tuple[bool, int, float]:
        """scope is 'subscription:<id>' or 'tenant'; kind is reads|writes|deletes."""
        now = self.clock()
        key = (scope.lower(), kind)
        bucket = self._buckets.get(key)
        if bucket is None:
            cap, refill = self.limits[kind]
            bucket = self._buckets[key] = TokenBucket(cap, refill, cap, now)
        if not self.enabled:
            bucket._refill(now)
            return True, int(bucket.tokens), 0.0
        return bucket.take(now)

    def reset(self) -> None:
        self._buckets.clear()


@dataclass
class GraphQuota:
    """Resource Graph's per-caller quota: ``limit`` queries per ``window_s`` seconds."""

    enabled: bool = True
    limit: int = 15
    window_s: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict)

    def take(self, caller: str) -> tuple[bool, int, float]:
        """Returns (allowed, remaining, seconds until the window resets)."""
        now = self.clock()
        if not self.enabled:
            return True, self.limit, self.window_s
        start, used = self._windows.get(caller, (now, 0))
        if now - start >= self.window_s:
            start, used = now, 0
        resets_after = max(0.0, self.window_s - (now - start))
        if used >= self.limit:
            self._windows[caller] = (start, used)
            return False, 0, resets_after
        used += 1
        self._windows[caller] = (start, used)
        return True, max(0, self.limit - used), resets_after

    def reset(self) -> None:
        self._windows.clear()


def hhmmss(seconds: float) -> str:
    s = math.ceil(seconds)
    return f"{s // 3600:02d}:{(s % 3600) // 60:02d}:{s % 60:02d}"
