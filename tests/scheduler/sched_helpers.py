"""Builders for node and pod objects used by the scheduler tests (plain dicts, as the API has them)."""
from __future__ import annotations

import itertools
import random

from shim.scheduler.cache import Cache
from shim.scheduler.framework import Framework
from shim.scheduler.queue import SchedulingQueue
from shim.scheduler.types import PodInfo

_uid = itertools.count(1)


def node(name: str, cpu: str = "4", memory: str = "8Gi", pods: str = "110", labels: dict | None = None,
         taints: list | None = None, unschedulable: bool = False, extra: dict | None = None,
         images: list | None = None, ready: str | None = "True") -> dict:
    alloc = {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}
    obj = {"apiVersion": "v1", "kind": "Node",
           "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
           "spec": {}, "status": {"capacity": dict(alloc), "allocatable": dict(alloc)}}
    if taints:
        obj["spec"]["taints"] = taints
    if unschedulable:
        obj["spec"]["unschedulable"] = True
    if images:
        obj["status"]["images"] = images
    if ready is not None:
        obj["status"]["conditions"] = [{"type": "Ready", "status": ready}]
    return obj


def pod(name: str, cpu: str | None = None, memory: str | None = None, *, namespace: str = "default",
        node_name: str | None = None, labels: dict | None = None, priority: int = 0, spec: dict | None = None,
        containers: list | None = None, start_time: str | None = None) -> dict:
    req = {}
    if cpu:
        req["cpu"] = cpu
    if memory:
        req["memory"] = memory
    c = {"name": "c", "image": "img", "resources": {"requests": req} if req else {}}
    obj = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{next(_uid)}",
                        "labels": labels or {}, "creationTimestamp": "2026-01-01T00:00:00Z"},
           "spec": {"containers": containers if containers is not None else [c], "priority": priority,
                    "schedulerName": "default-scheduler", **(spec or {})},
           "status": {"phase": "Pending"}}
    if node_name:
        obj["spec"]["nodeName"] = node_name
    if start_time:
        obj["status"]["startTime"] = start_time
    return obj


class World:
    """A cache, queue and framework over given nodes and bound pods (no API server)."""

    def __init__(self, nodes=(), pods=(), seed: int = 1, fast_path: bool = True):
        self.cache = Cache()
        self.queue = SchedulingQueue()
        self.framework = Framework(self.cache, self.queue, rng=random.Random(seed))
        self.framework.fast_path = fast_path
        for n in nodes:
            self.cache.add_or_update_node(n)
        for p in pods:
            self.cache.add_or_update_pod(PodInfo(p))

    def schedule(self, p: dict) -> str:
        n, _, _, _ = self.framework.schedule_pod(PodInfo(p))
        return n.name

    def place(self, p: dict) -> str:
        """Schedule and assume, like the scheduler loop."""
        info = PodInfo(p)
        n, _, _, _ = self.framework.schedule_pod(info)
        self.cache.assume(info, n.name)
        return n.name
