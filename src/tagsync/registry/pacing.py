"""Pacing requests to a registry: a token bucket for `requests_per_second`, and Docker Hub's
`ratelimit-remaining` header read as the pulls left."""

from __future__ import annotations

import asyncio
import time

from tagsync.http_policy import header_int


class RateLimiter:
    """A token bucket: `rate` requests per second on average, bursts of up to `burst`."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self._tokens = self.capacity
        self._last = time.monotonic()
        self._lock = asyncio.Lock()
        self.waited = 0.0

    async def acquire(self) -> None:
        async with self._lock:  # waiters queue here, in order
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens < 1:
                wait = (1 - self._tokens) / self.rate
                self.waited += wait
                await asyncio.sleep(wait)
                self._last = time.monotonic()
                self._tokens = 1.0
            self._tokens -= 1


def parse_ratelimit(value: str | None) -> int | None:
    """`ratelimit-remaining: 76;w=21600` → 76."""
    if not value:
        return None
    return header_int(value.split(";", 1)[0])
