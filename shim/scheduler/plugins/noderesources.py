"""NodeResourcesFit (filter + LeastAllocated score) and NodeResourcesBalancedAllocation.

The filter compares the pod's requests with what the node has left (allocatable minus the
requests of the pods already bound or assumed there) and counts pods against
allocatable.pods. Scores use cpu and memory with weight 1 each, like the default profile:
LeastAllocated on "non-zero" requests (a container without a request counts as 100m and
200Mi), BalancedAllocation on the real requests.
"""
from __future__ import annotations

from shim.scheduler.plugins.base import MAX_NODE_SCORE, SKIP, Plugin, Status, UNRESOLVABLE, UNSCHEDULABLE
from shim.scheduler.types import NodeInfo, PodInfo


def _go_div(a: int, b: int) -> int:
    """Go's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


class Insufficient:
    """One resource a node lacks for a pod (upstream's InsufficientResource)."""
    __slots__ = ("resource", "reason", "requested", "used", "capacity", "unresolvable")

    def __init__(self, resource, reason, requested, used, capacity, unresolvable=False):
        self.resource, self.reason = resource, reason
        self.requested, self.used, self.capacity = requested, used, capacity
        self.unresolvable = unresolvable


def insufficient_resources(pod: PodInfo, node: NodeInfo) -> list[Insufficient]:
    out = []
    if len(node.pods) + 1 > node.alloc_pods:
        out.append(Insufficient("pods", "Too many pods", 1, len(node.pods), node.alloc_pods))
    cpu, mem, eph = pod.req_cpu, pod.req_mem, pod.req_eph
    if not cpu and not mem and not eph and not pod.req_scalar:
        return out
    if cpu > 0 and cpu > node.alloc_cpu - node.req_cpu:
        out.append(Insufficient("cpu", "Insufficient cpu", cpu, node.req_cpu, node.alloc_cpu, cpu > node.alloc_cpu))
    if mem > 0 and mem > node.alloc_mem - node.req_mem:
        out.append(Insufficient("memory", "Insufficient memory", mem, node.req_mem, node.alloc_mem, mem > node.alloc_mem))
    if eph > 0 and eph > node.alloc_eph - node.req_eph:
        out.append(Insufficient("ephemeral-storage", "Insufficient ephemeral-storage", eph, node.req_eph,
                                node.alloc_eph, eph > node.alloc_eph))
    if pod.req_scalar:
        for name in sorted(pod.req_scalar):
            q = pod.req_scalar[name]
            alloc = node.alloc_scalar.get(name, 0)
            used = node.req_scalar.get(name, 0)
            if q > alloc - used:
                out.append(Insufficient(name, f"Insufficient {name}", q, used, alloc, q > alloc))
    return out


class NodeResourcesFit(Plugin):
    name = "NodeResourcesFit"
    weight = 1

    def filter(self, state, pod: PodInfo, node: NodeInfo):
        # The common case first, inline: enough room for everything.
        if len(node.pods) < node.alloc_pods and not pod.req_scalar and \
                pod.req_cpu <= node.alloc_cpu - node.req_cpu and \
                pod.req_mem <= node.alloc_mem - node.req_mem and \
                pod.req_eph <= node.alloc_eph - node.req_eph:
            return None
        missing = insufficient_resources(pod, node)
        if not missing:
            return None
        code = UNRESOLVABLE if any(m.unresolvable for m in missing) else UNSCHEDULABLE
        return Status(code, *[m.reason for m in missing], plugin=self.name)

    def score(self, state, pod: PodInfo, node: NodeInfo) -> int:
        return least_allocated(pod.nz_cpu, pod.nz_mem, node)


def least_allocated(pod_cpu: int, pod_mem: int, node: NodeInfo) -> int:
    score = weights = 0
    cap = node.alloc_cpu
    if cap:
        req = node.nz_cpu + pod_cpu
        score += 0 if req > cap else (cap - req) * MAX_NODE_SCORE // cap
        weights += 1
    cap = node.alloc_mem
    if cap:
        req = node.nz_mem + pod_mem
        score += 0 if req > cap else (cap - req) * MAX_NODE_SCORE // cap
        weights += 1
    return score // weights if weights else 0


class NodeResourcesBalancedAllocation(Plugin):
    name = "NodeResourcesBalancedAllocation"
    weight = 1

    def pre_score(self, state, pod: PodInfo, nodes):
        if not pod.req_cpu and not pod.req_mem:
            return SKIP  # a best-effort pod does not change any node's balance
        return None

    def score(self, state, pod: PodInfo, node: NodeInfo) -> int:
        return balanced_allocation(pod.req_cpu, pod.req_mem, node)


def _balance(cpu: int, mem: int, node: NodeInfo) -> int:
    fractions = []
    if node.alloc_cpu:
        fractions.append(min(cpu / node.alloc_cpu, 1.0))
    if node.alloc_mem:
        fractions.append(min(mem / node.alloc_mem, 1.0))
    std = abs(fractions[0] - fractions[1]) / 2 if len(fractions) == 2 else 0.0
    return int((1 - std) * MAX_NODE_SCORE)


def balanced_allocation(pod_cpu: int, pod_mem: int, node: NodeInfo) -> int:
    with_pod = _balance(node.req_cpu + pod_cpu, node.req_mem + pod_mem, node)
    without = _balance(node.req_cpu, node.req_mem, node)
    return MAX_NODE_SCORE // 2 + _go_div(MAX_NODE_SCORE // 2 + with_pod - without, 2)


__all__ = ["NodeResourcesFit", "NodeResourcesBalancedAllocation", "insufficient_resources",
           "least_allocated", "balanced_allocation"]
