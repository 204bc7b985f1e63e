"""Taint nodes by condition, the part of the node lifecycle controller the scheduler relies on.

A node whose Ready condition is False gets `node.kubernetes.io/not-ready:NoSchedule`, one
whose Ready condition is Unknown gets `node.kubernetes.io/unreachable:NoSchedule`, the
pressure conditions map to their own NoSchedule taints and a cordoned node gets
`node.kubernetes.io/unschedulable:NoSchedule`; the taints go again when the condition clears.
As upstream, the API server gives every new node the not-ready taint at creation (the
TaintNodesByCondition admission plugin), so no pod lands on a node before its conditions
have been looked at. The scheduler's TaintToleration filter then keeps pods off such nodes.
(Heartbeat monitoring and NoExecute eviction are not done here.)

It is an API client like any controller: a node informer feeds a work queue, and a worker
rewrites the node's taints with optimistic concurrency.
"""
from __future__ import annotations

import asyncio
import logging

from shim.client.api import NODES, ApiError, Client
from shim.client.informer import Informer
from shim.client.workqueue import WorkQueue

log = logging.getLogger("shim.controllers.nodelifecycle")

# condition type -> {status: taint key}
CONDITION_TAINTS = {
    "Ready": {"False": "node.kubernetes.io/not-ready", "Unknown": "node.kubernetes.io/unreachable"},
    "MemoryPressure": {"True": "node.kubernetes.io/memory-pressure"},
    "DiskPressure": {"True": "node.kubernetes.io/disk-pressure"},
    "PIDPressure": {"True": "node.kubernetes.io/pid-pressure"},
    "NetworkUnavailable": {"True": "node.kubernetes.io/network-unavailable"},
}
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
MANAGED_KEYS = {k for m in CONDITION_TAINTS.values() for k in m.values()} | {UNSCHEDULABLE_TAINT}


def install_admission(api) -> None:
    """TaintNodesByCondition: new nodes start with the not-ready taint."""
    api.admission_hooks.append(_taint_new_nodes)


async def _taint_new_nodes(operation, rs, obj, old, user) -> None:
    if operation != "CREATE" or rs.info.plural != "nodes" or rs.info.group != "":
        return
    spec = obj.setdefault("spec", {})
    taints = spec.get("taints") or []
    if not any(t.get("key") == NOT_READY_TAINT and t.get("effect") == "NoSchedule" for t in taints):
        spec["taints"] = taints + [{"key": NOT_READY_TAINT, "effect": "NoSchedule"}]


def desired_condition_taints(node: dict) -> set[str]:
    keys = set()
    for c in (node.get("status") or {}).get("conditions") or ():
        key = CONDITION_TAINTS.get(c.get("type"), {}).get(c.get("status"))
        if key:
            keys.add(key)
    if (node.get("spec") or {}).get("unschedulable"):
        keys.add(UNSCHEDULABLE_TAINT)
    return keys


def current_condition_taints(node: dict) -> set[str]:
    return {t.get("key") for t in (node.get("spec") or {}).get("taints") or ()
            if t.get("key") in MANAGED_KEYS and t.get("effect") == "NoSchedule"}


class NodeConditionTaints:
    def __init__(self, client: Client, workers: int = 2):
        self.client = client
        self.workers = workers
        self.informer = Informer(client, NODES)
        self.queue = WorkQueue()
        self.informer.add_handlers(self._enqueue, lambda old, new: self._enqueue(new), None)

    def _enqueue(self, node: dict) -> None:
        if desired_condition_taints(node) != current_condition_taints(node):
            self.queue.add(node["metadata"]["name"])

    async def run(self) -> None:
        self.informer.start()
        try:
            await self.informer.wait_synced()
            await asyncio.gather(*(self._worker() for _ in range(self.workers)))
        finally:
            self.queue.shutdown()
            await self.informer.stop()

    async def _worker(self) -> None:
        await self.queue.run_worker(self.sync, self._sync_failed)

    def _sync_failed(self, name: str, e: Exception) -> None:
        log.info("tainting node %s: %s", name, e)
        self.queue.add_rate_limited(name)

    async def sync(self, name: str) -> None:
        node = self.informer.get(name)
        if node is None:
            return
        want, have = desired_condition_taints(node), current_condition_taints(node)
        if want == have:
            return
        taints = [t for t in (node.get("spec") or {}).get("taints") or ()
                  if not (t.get("key") in MANAGED_KEYS and t.get("effect") == "NoSchedule")]
        taints += [{"key": k, "effect": "NoSchedule"} for k in sorted(want)]
        patch = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                 "spec": {"taints": taints or None}}
        try:
            await self.client.patch(NODES, name, patch)
        except ApiError as e:
            if e.code == 404:
                return
            raise
