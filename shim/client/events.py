"""Recording core/v1 Events without slowing the caller down.

Like client-go's broadcaster, recording is fire-and-forget: `event()` puts the event on a
bounded queue and a few background senders write it. A repeat of the same event for the same
object (same reason, message and type) is folded into the existing Event by bumping `count`
and `lastTimestamp`, as the event correlator does. When the queue is full, events are dropped
(upstream drops them too) rather than blocking the scheduler or a controller.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
from collections import OrderedDict, deque

from shim.client.api import EVENTS, ApiError, Client

log = logging.getLogger("shim.client.events")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    def __init__(self, client: Client, component: str, *, host: str | None = None,
                 max_queued: int = 20000, senders: int = 4, idle_priority: bool = False):
        self.client = client
        self.component = component
        self.host = host or socket.gethostname()
        self.max_queued = max_queued
        self.senders = senders
        # One queue per sender; an object's events always go to the same one, so a repeat
        # is folded into the Event its predecessor created instead of racing it.
        self._queues: list[deque] = [deque() for _ in range(senders)]
        self._wakeups = [asyncio.Event() for _ in range(senders)]
        self._tasks: list[asyncio.Task] = []
        self._seen: OrderedDict = OrderedDict()  # (uid, type, reason, message) -> [name, ns, count]
        self.dropped = 0
        self.pause = None  # optional callable: True while the owner wants events held back

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._send_loop(i), name=f"events-{i}")
                           for i in range(self.senders)]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks = []

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self._queues)

    def event(self, obj: dict, etype: str, reason: str, message: str, action: str = "") -> None:
        """Record an event about `obj` (any object with metadata); never blocks."""
        if self.pending >= self.max_queued:
            self.dropped += 1
            return
        i = hash((obj.get("metadata") or {}).get("uid")) % self.senders
        self._queues[i].append((obj, etype, reason, message, action))
        self._wakeups[i].set()

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until queued events are written (tests)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while (self.pending or self._inflight) and loop.time() < end:
            await asyncio.sleep(0.02)

    _inflight = 0

    async def _send_loop(self, i: int) -> None:
        queue, wakeup = self._queues[i], self._wakeups[i]
        while True:
            if not queue:
                wakeup.clear()
                await wakeup.wait()
                continue
            if self.pause is not None and self.pause():
                await asyncio.sleep(0.05)
                continue
            item = queue.popleft()
            self._inflight += 1
            try:
                await self._write(*item)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.debug("dropping event: %s", e)
            finally:
                self._inflight -= 1

    async def _write(self, obj, etype, reason, message, action) -> None:
        md = obj.get("metadata") or {}
        ns = md.get("namespace") or "default"
        ref = {"kind": obj.get("kind", ""), "namespace": md.get("namespace", ""), "name": md.get("name", ""),
               "uid": md.get("uid", ""), "apiVersion": obj.get("apiVersion", ""),
               "resourceVersion": md.get("resourceVersion", "")}
        if not ref["namespace"]:
            ref.pop("namespace")
        key = (md.get("uid"), etype, reason, message)
        ts = _now()
        seen = self._seen.get(key)
        if seen is not None:
            name, count = seen
            try:
                await self.client.patch(EVENTS, name, {"count": count + 1, "lastTimestamp": ts,
                                                       "message": message}, ns)
                self._seen[key] = (name, count + 1)
                self._seen.move_to_end(key)
                return
            except ApiError as e:
                if e.code != 404:
                    raise
        name = f"{md.get('name', 'unknown')}.{os.urandom(8).hex()}"
        ev = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": ref, "reason": reason, "message": message, "type": etype,
            "source": {"component": self.component, "host": self.host},
            "firstTimestamp": ts, "lastTimestamp": ts, "count": 1, "eventTime": None,
            "reportingComponent": self.component, "reportingInstance": self.host,
        }
        await self.client.create(EVENTS, ev, ns)
        self._seen[key] = (name, 1)
        if len(self._seen) > 4096:
            self._seen.popitem(last=False)
