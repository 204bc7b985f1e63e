"""A rate-limited work queue with client-go's semantics, for controller loops.

- An item is queued at most once however often it is added ("dirty" set).
- An item being processed is never handed to a second worker; adding it meanwhile queues it
  again for after `done()`.
- `add_rate_limited` re-adds after a per-item exponential delay (base * 2**failures, capped),
  combined with an overall token bucket like client-go's default controller rate limiter;
  `forget` resets the item's failure count once it succeeds.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Hashable


class ShutDown(Exception):
    pass


class ItemExponentialBackoff:
    def __init__(self, base: float = 0.005, cap: float = 1000.0):
        self.base, self.cap = base, cap
        self.failures: dict[Hashable, int] = {}

    def when(self, item) -> float:
        n = self.failures.get(item, 0)
        self.failures[item] = n + 1
        return min(self.base * (2 ** n), self.cap)

    def forget(self, item) -> None:
        self.failures.pop(item, None)

    def num_requeues(self, item) -> int:
        return self.failures.get(item, 0)


class TokenBucket:
    """qps tokens per second, at most `burst` saved up; `when()` says how long to wait."""

    def __init__(self, qps: float = 10.0, burst: int = 100):
        self.qps, self.burst = qps, burst
        self.tokens = float(burst)
        self.last = time.monotonic()

    def when(self, item=None) -> float:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.qps)
        self.last = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.qps

    def forget(self, item) -> None:
        pass

    def num_requeues(self, item) -> int:
        return 0


class MaxOfRateLimiter:
    def __init__(self, *limiters):
        self.limiters = limiters

    def when(self, item) -> float:
        return max(lim.when(item) for lim in self.limiters)

    def forget(self, item) -> None:
        for lim in self.limiters:
            lim.forget(item)

    def num_requeues(self, item) -> int:
        return max(lim.num_requeues(item) for lim in self.limiters)


def default_rate_limiter() -> MaxOfRateLimiter:
    return MaxOfRateLimiter(ItemExponentialBackoff(0.005, 1000.0), TokenBucket(10.0, 100))


class WorkQueue:
    def __init__(self, rate_limiter=None):
        self.rate_limiter = rate_limiter or default_rate_limiter()
        self._queue: deque = deque()
        self._dirty: set = set()
        self._processing: set = set()
        self._waiting: dict[Hashable, asyncio.TimerHandle] = {}
        self._getters: deque[asyncio.Future] = deque()
        self._shutting_down = False

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, item) -> None:
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        if item in self._processing:
            return
        self._queue.append(item)
        self._wake()

    def add_after(self, item, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        existing = self._waiting.get(item)
        if existing is not None:
            if existing.when() <= due:
                return  # an earlier wake-up is already planned
            existing.cancel()

        def fire():
            self._waiting.pop(item, None)
            self.add(item)
        self._waiting[item] = loop.call_at(due, fire)

    def add_rate_limited(self, item) -> None:
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item) -> None:
        self.rate_limiter.forget(item)

    def num_requeues(self, item) -> int:
        return self.rate_limiter.num_requeues(item)

    async def get(self):
        """The next item (marked as processing); raises ShutDown once shut down and drained."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown()
            fut = asyncio.get_running_loop().create_future()
            self._getters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._wake()  # we were woken but leave: pass the item on
                raise
        item = self._queue.popleft()
        self._processing.add(item)
        self._dirty.discard(item)
        return item

    def done(self, item) -> None:
        self._processing.discard(item)
        if item in self._dirty:
            self._queue.append(item)
            self._wake()

    def shutdown(self) -> None:
        self._shutting_down = True
        for h in self._waiting.values():
            h.cancel()
        self._waiting.clear()
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)

    async def run_worker(self, sync, on_error) -> None:
        """One worker, until the queue shuts down: `await sync(item)` for each item taken;
        success forgets its failures; on an exception `on_error(item, exc)` decides what
        happens next (add_rate_limited, add_after, forget...). Cancellation propagates."""
        while True:
            try:
                item = await self.get()
            except ShutDown:
                return
            try:
                await sync(item)
                self.forget(item)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                on_error(item, e)
            finally:
                self.done(item)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def _wake(self) -> None:
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
