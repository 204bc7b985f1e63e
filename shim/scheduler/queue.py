"""The scheduling queue: which pending pod is tried next, and when a failed one is retried.

Three places a pod can wait, as in upstream's PriorityQueue:
- activeQ: ready to be tried, highest priority first, then the one queued earliest;
- backoffQ: failed recently; it waits 1s, 2s, 4s ... (at most 10s) per attempt;
- unschedulable: failed and nothing has changed since. A cluster event that may help
  (a node added or changed, a pod deleted, ...) moves these to backoffQ or activeQ; so does
  a periodic flush after 5 minutes.
A cluster event that arrives while a pod is being tried sends it to backoffQ rather than
unschedulable when it fails, so the event is not lost.

Pods with scheduling gates wait outside all three until their gates are gone. Nominated
pods (waiting for preemption victims to leave) are tracked per node, so filters can account
for them.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time

from shim.scheduler.types import PodInfo

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_IN_UNSCHEDULABLE = 300.0


class QueuedPod:
    __slots__ = ("info", "timestamp", "attempts", "initial_attempt", "backoff_until", "cycle",
                 "unschedulable_since", "unschedulable_plugins", "seq")

    def __init__(self, info: PodInfo, now: float):
        self.info = info
        self.timestamp = now
        self.attempts = 0
        self.initial_attempt = None
        self.backoff_until = 0.0
        self.cycle = 0
        self.unschedulable_since = 0.0
        self.unschedulable_plugins: set = set()
        self.seq = 0


class SchedulingQueue:
    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._active: list = []             # heap of (-priority, timestamp, seq, uid)
        self._backoff: list = []            # heap of (backoff_until, seq, uid)
        self._where: dict[str, str] = {}    # uid -> "active" | "backoff" | "unschedulable" | "gated" | "inflight"
        self._pods: dict[str, QueuedPod] = {}
        self._unschedulable: dict[str, QueuedPod] = {}
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self.scheduling_cycle = 0
        self.move_request_cycle = -1
        self.nominated: dict[str, dict[str, PodInfo]] = {}   # node -> uid -> pod
        self._nominated_node: dict[str, str] = {}             # uid -> node
        self.closed = False

    # -- sizes -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._pods)

    @property
    def active_len(self) -> int:
        return len(self._active)

    def pending_counts(self) -> dict[str, int]:
        out = {"active": 0, "backoff": 0, "unschedulable": 0, "gated": 0}
        for where in self._where.values():
            if where in out:
                out[where] += 1
        return out

    def has(self, uid: str) -> bool:
        return uid in self._pods

    # -- adding and updating -----------------------------------------------------------------------
    def add(self, info: PodInfo) -> None:
        """A new pending pod."""
        if info.uid in self._pods:
            self.update(info)
            return
        qp = QueuedPod(info, self.clock())
        self._pods[info.uid] = qp
        self._track_nomination(info)
        if info.gated:
            self._set_where(info.uid, "gated")
            return
        self._push_active(qp)

    def update(self, info: PodInfo, moved: bool = True) -> None:
        """A pending pod changed; `moved` says whether beyond its status (only then may the
        change let it fit, so only then does an unschedulable pod get another try)."""
        qp = self._pods.get(info.uid)
        if qp is None:
            self.add(info)
            return
        qp.info = info
        self._track_nomination(info)
        where = self._where.get(info.uid)
        if where == "gated" and not info.gated:
            self._push_active(qp)
        elif where == "unschedulable" and moved:
            self._move(qp)

    def delete(self, uid: str) -> None:
        qp = self._pods.pop(uid, None)
        self._where.pop(uid, None)  # heap entries become stale and are skipped on pop
        self._unschedulable.pop(uid, None)
        if qp is not None:
            self._untrack_nomination(uid)

    def _set_where(self, uid: str, where: str | None) -> None:
        if where is None:
            self._where.pop(uid, None)
        else:
            self._where[uid] = where
        if where == "unschedulable":
            self._unschedulable[uid] = self._pods[uid]
        else:
            self._unschedulable.pop(uid, None)

    def _push_active(self, qp: QueuedPod) -> None:
        qp.seq = next(self._seq)
        heapq.heappush(self._active, (-qp.info.priority, qp.timestamp, qp.seq, qp.info.uid))
        self._set_where(qp.info.uid, "active")
        self._wakeup.set()

    def _push_backoff(self, qp: QueuedPod) -> None:
        qp.seq = next(self._seq)
        heapq.heappush(self._backoff, (qp.backoff_until, qp.seq, qp.info.uid))
        self._set_where(qp.info.uid, "backoff")
        self._wakeup.set()

    # -- popping ----------------------------------------------------------------------------------
    async def pop(self) -> QueuedPod:
        """The next pod to try; waits while there is none."""
        while True:
            self._flush_backoff()
            qp = self._pop_active()
            if qp is not None:
                return qp
            self._wakeup.clear()
            timeout = None
            if self._backoff:
                timeout = max(self._backoff[0][0] - self.clock(), 0.001)
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    def pop_nowait(self) -> QueuedPod | None:
        self._flush_backoff()
        return self._pop_active()

    def _pop_active(self) -> QueuedPod | None:
        while self._active:
            _, _, seq, uid = heapq.heappop(self._active)
            qp = self._pods.get(uid)
            if qp is None or qp.seq != seq or self._where.get(uid) != "active":
                continue
            self._set_where(uid, "inflight")
            qp.attempts += 1
            self.scheduling_cycle += 1
            qp.cycle = self.scheduling_cycle
            return qp
        return None

    def _flush_backoff(self) -> None:
        now = self.clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, seq, uid = heapq.heappop(self._backoff)
            qp = self._pods.get(uid)
            if qp is None or qp.seq != seq or self._where.get(uid) != "backoff":
                continue
            self._push_active(qp)

    # -- after an attempt ----------------------------------------------------------------------------
    def done(self, uid: str) -> None:
        """The pod was scheduled (assumed): it leaves the queue."""
        self._pods.pop(uid, None)
        self._where.pop(uid, None)
        self._unschedulable.pop(uid, None)
        self._untrack_nomination(uid)

    def requeue_unschedulable(self, qp: QueuedPod, plugins: set | None = None) -> None:
        """A failed attempt: wait for a cluster change (or in backoff if one came meanwhile)."""
        uid = qp.info.uid
        if uid not in self._pods:
            return
        qp.backoff_until = self.clock() + self.backoff_duration(qp)
        qp.unschedulable_plugins = plugins or set()
        if self.move_request_cycle >= qp.cycle:
            self._push_backoff(qp)
        else:
            qp.unschedulable_since = self.clock()
            self._set_where(uid, "unschedulable")

    def requeue_backoff(self, qp: QueuedPod) -> None:
        """An error (not a verdict): retry after the backoff."""
        if qp.info.uid not in self._pods:
            self._pods[qp.info.uid] = qp
        qp.backoff_until = self.clock() + self.backoff_duration(qp)
        self._push_backoff(qp)

    def readd(self, info: PodInfo) -> None:
        """A pod whose binding failed comes back like a new one (keeping its attempts)."""
        qp = self._pods.get(info.uid)
        if qp is None:
            qp = QueuedPod(info, self.clock())
            self._pods[info.uid] = qp
        qp.info = info
        qp.backoff_until = self.clock() + self.backoff_duration(qp)
        self._push_backoff(qp)

    def backoff_duration(self, qp: QueuedPod) -> float:
        d = INITIAL_BACKOFF * (2 ** max(qp.attempts - 1, 0))
        return min(d, MAX_BACKOFF)

    # -- cluster events ---------------------------------------------------------------------------------
    def move_all_to_active_or_backoff(self, reason: str = "") -> None:
        """Something changed that may let unschedulable pods fit."""
        self.move_for_plugins(None)

    def move_for_plugins(self, plugins: set | None) -> None:
        """Move the unschedulable pods rejected by one of `plugins` (None: all of them)."""
        now = self.clock()
        for qp in list(self._unschedulable.values()):
            if plugins is None or not qp.unschedulable_plugins or qp.unschedulable_plugins & plugins:
                self._move(qp, now)
        self.move_request_cycle = self.scheduling_cycle

    def _move(self, qp: QueuedPod, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        if qp.backoff_until > now:
            self._push_backoff(qp)
        else:
            self._push_active(qp)

    def activate(self, uid: str) -> None:
        qp = self._pods.get(uid)
        if qp is not None and self._where.get(uid) in ("unschedulable", "backoff"):
            self._push_active(qp)

    def flush_unschedulable_leftover(self) -> None:
        now = self.clock()
        for qp in list(self._unschedulable.values()):
            if now - qp.unschedulable_since > MAX_IN_UNSCHEDULABLE:
                self._move(qp, now)

    # -- nominated pods ------------------------------------------------------------------------------------
    def _track_nomination(self, info: PodInfo) -> None:
        self._untrack_nomination(info.uid)
        if info.nominated_node:
            self.nominated.setdefault(info.nominated_node, {})[info.uid] = info
            self._nominated_node[info.uid] = info.nominated_node

    def nominate(self, info: PodInfo, node: str) -> None:
        self._untrack_nomination(info.uid)
        if node:
            self.nominated.setdefault(node, {})[info.uid] = info
            self._nominated_node[info.uid] = node

    def _untrack_nomination(self, uid: str) -> None:
        node = self._nominated_node.pop(uid, None)
        if node is not None:
            pods = self.nominated.get(node)
            if pods is not None:
                pods.pop(uid, None)
                if not pods:
                    del self.nominated[node]

    def nominated_pods_for(self, node: str) -> list[PodInfo]:
        pods = self.nominated.get(node)
        return list(pods.values()) if pods else []

    def close(self) -> None:
        self.closed = True
        self._wakeup.set()
