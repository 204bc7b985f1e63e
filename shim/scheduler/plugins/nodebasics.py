"""Filters that look at the node alone: NodeName, NodeUnschedulable, NodeAffinity, NodePorts,
and TaintToleration (which also scores PreferNoSchedule taints).

NodeName, NodeUnschedulable, TaintToleration and NodeAffinity filter on nothing but the node
object and the pod's spec (`static = True`), so the framework may cache their verdict per
node and pod shape.
"""
from __future__ import annotations

from shim.scheduler.plugins.base import SKIP, Plugin, default_normalize, unresolvable, unschedulable
from shim.scheduler.types import NodeInfo, PodInfo, tolerates, untolerated_taint

UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


class NodeName(Plugin):
    name = "NodeName"
    static = True
    REASON = "node(s) didn't match the requested node name"

    def filter(self, state, pod: PodInfo, node: NodeInfo):
        if pod.node_name and pod.node_name != node.name:
            return unresolvable(self.REASON, plugin=self.name)
        return None


class NodeUnschedulable(Plugin):
    name = "NodeUnschedulable"
    static = True
    REASON = "node(s) were unschedulable"

    def filter(self, state, pod: PodInfo, node: NodeInfo):
        if not node.unschedulable:
            return None
        if tolerates(pod.tolerations, UNSCHEDULABLE_TAINT):
            return None
        return unresolvable(self.REASON, plugin=self.name)


class TaintToleration(Plugin):
    name = "TaintToleration"
    static = True
    weight = 3
    REASON = "node(s) had untolerated taint(s)"

    def filter(self, state, pod: PodInfo, node: NodeInfo):
        if node.taints and untolerated_taint(node.taints, pod.tolerations) is not None:
            return unresolvable(self.REASON, plugin=self.name)
        return None

    def pre_score(self, state, pod: PodInfo, nodes):
        state[self.name] = [t for t in pod.tolerations if (t.get("effect") or "PreferNoSchedule") == "PreferNoSchedule"]
        return None

    def score(self, state, pod: PodInfo, node: NodeInfo) -> int:
        if not node.taints:
            return 0
        tols = state[self.name]
        return sum(1 for t in node.taints if t.get("effect") == "PreferNoSchedule" and not tolerates(tols, t))

    def normalize(self, state, pod, scores):
        default_normalize(scores, reverse=True)


class NodeAffinity(Plugin):
    name = "NodeAffinity"
    static = True
    weight = 2
    REASON = "node(s) didn't match Pod's node affinity/selector"
    CONFLICT = "pod affinity terms conflict"

    def pre_filter(self, state, pod: PodInfo):
        req = pod.required_node_affinity
        if req.empty:
            return SKIP
        # matchFields on metadata.name narrow the nodes worth looking at (PreFilterResult).
        if req.terms:
            names = None
            for t in req.terms:
                term_names = None
                for op, val in t.fields or ():
                    if op == "In":
                        term_names = {val} if term_names is None else term_names & {val}
                if term_names is None:
                    names = None
                    break
                names = term_names if names is None else names | term_names
            if names is not None:
                if not names:
                    return unresolvable(self.CONFLICT, plugin=self.name)
                state.setdefault("_node_names", {})[self.name] = names
        return None

    def filter(self, state, pod: PodInfo, node: NodeInfo):
        if not pod.required_node_affinity.matches(node.labels, node.name):
            return unresolvable(self.REASON, plugin=self.name)
        return None

    def pre_score(self, state, pod: PodInfo, nodes):
        return SKIP if not pod.preferred_node_terms else None

    def score(self, state, pod: PodInfo, node: NodeInfo) -> int:
        total = 0
        for weight, term in pod.preferred_node_terms:
            if term.matches(node.labels, node.name):
                total += weight
        return total

    def normalize(self, state, pod, scores):
        default_normalize(scores)


class NodePorts(Plugin):
    name = "NodePorts"
    REASON = "node(s) didn't have free ports for the requested pod ports"

    def pre_filter(self, state, pod: PodInfo):
        return None if pod.host_ports else SKIP

    def filter(self, state, pod: PodInfo, node: NodeInfo):
        if not node.used_ports:
            return None
        for ip, proto, port in pod.host_ports:
            if node.port_conflict(ip, proto, port):
                return unschedulable(self.REASON, plugin=self.name)
        return None


__all__ = ["NodeName", "NodeUnschedulable", "TaintToleration", "NodeAffinity", "NodePorts"]
