"""PodTopologySpread: keep matching pods evenly spread over topology domains.

DoNotSchedule constraints filter: placing the pod in a domain must not make that domain's
count of matching pods exceed the least-loaded domain's by more than maxSkew.
ScheduleAnyway constraints (and, for pods owned by a Service, ReplicaSet, StatefulSet or
ReplicationController without constraints of their own, the system defaults: hostname with
maxSkew 3 and zone with maxSkew 5) score: fewer matching pods in the domain, higher score.
"""
from __future__ import annotations

import math

from shim.api.selectors import EVERYTHING, IN, LabelSelector, Requirement, selector_from_set
from shim.scheduler.plugins.base import MAX_NODE_SCORE, SKIP, Plugin, unresolvable, unschedulable
from shim.scheduler.types import HOSTNAME_LABEL, ZONE_LABEL, NodeInfo, PodInfo, _selector, untolerated_taint

MAX_INT32 = 2**31 - 1

SYSTEM_DEFAULT_CONSTRAINTS = [
    {"topologyKey": HOSTNAME_LABEL, "whenUnsatisfiable": "ScheduleAnyway", "maxSkew": 3},
    {"topologyKey": ZONE_LABEL, "whenUnsatisfiable": "ScheduleAnyway", "maxSkew": 5},
]


class Constraint:
    __slots__ = ("max_skew", "topology_key", "selector", "min_domains", "honor_affinity", "honor_taints")

    def __init__(self, max_skew, topology_key, selector, min_domains=1, honor_affinity=True, honor_taints=False):
        self.max_skew = max_skew
        self.topology_key = topology_key
        self.selector = selector
        self.min_domains = min_domains
        self.honor_affinity = honor_affinity
        self.honor_taints = honor_taints

    def includes(self, pod: PodInfo, node: NodeInfo) -> bool:
        """matchNodeInclusionPolicies: does this node count for the constraint?"""
        if self.honor_affinity and not pod.required_node_affinity.matches(node.labels, node.name):
            return False
        if self.honor_taints and node.taints and untolerated_taint(node.taints, pod.tolerations) is not None:
            return False
        return True


def count_matching(node: NodeInfo, selector: LabelSelector, namespace: str) -> int:
    if selector.empty and not selector.nothing:
        return 0  # upstream counts nothing for an empty selector
    n = 0
    for p in node.pods.values():
        if p.terminating or p.namespace != namespace:
            continue
        if selector.matches(p.labels):
            n += 1
    return n


class _CriticalPaths:
    """The two domains with the fewest matching pods (upstream's criticalPaths)."""
    __slots__ = ("paths",)

    def __init__(self):
        self.paths = [["", MAX_INT32], ["", MAX_INT32]]

    def clone(self):
        c = _CriticalPaths()
        c.paths = [list(self.paths[0]), list(self.paths[1])]
        return c

    def update(self, value: str, num: int) -> None:
        p = self.paths
        i = 0 if value == p[0][0] else 1 if value == p[1][0] else -1
        if i >= 0:
            p[i][1] = num
            if p[0][1] > p[1][1]:
                p[0], p[1] = p[1], p[0]
        elif num < p[0][1]:
            p[1] = p[0]
            p[0] = [value, num]
        elif num < p[1][1]:
            p[1] = [value, num]


class _FilterState:
    __slots__ = ("constraints", "paths", "counts")

    def clone(self):
        c = _FilterState()
        c.constraints = self.constraints
        c.paths = [p.clone() for p in self.paths]
        c.counts = [dict(m) for m in self.counts]
        return c

    def min_match(self, i: int, c: Constraint) -> int:
        if len(self.counts[i]) < c.min_domains:
            return 0
        return self.paths[i].paths[0][1]


class PodTopologySpread(Plugin):
    name = "PodTopologySpread"
    weight = 2
    REASON = "node(s) didn't match pod topology spread constraints"
    LABEL_REASON = REASON + " (missing required label)"

    def __init__(self, cache):
        self.cache = cache

    # -- constraints ------------------------------------------------------------------------
    def constraints(self, pod: PodInfo, action: str) -> list[Constraint]:
        if pod.spread_constraints:
            return self._explicit(pod, action)
        return self._defaults(pod, action)

    def _explicit(self, pod: PodInfo, action: str) -> list[Constraint]:
        out = []
        for c in pod.spread_constraints:
            if c.get("whenUnsatisfiable") != action:
                continue
            sel = _selector(c.get("labelSelector"))
            keys = c.get("matchLabelKeys") or ()
            extra = [Requirement(k, IN, (pod.labels[k],)) for k in keys if k in pod.labels]
            if extra and not sel.nothing:
                sel = LabelSelector().add(*extra, *sel.requirements)
            min_domains = c.get("minDomains") or 1
            out.append(Constraint(c.get("maxSkew") or 1, c.get("topologyKey") or "", sel, min_domains,
                                  (c.get("nodeAffinityPolicy") or "Honor") == "Honor",
                                  (c.get("nodeTaintsPolicy") or "Ignore") == "Honor"))
        return out

    def _defaults(self, pod: PodInfo, action: str) -> list[Constraint]:
        wanted = [c for c in SYSTEM_DEFAULT_CONSTRAINTS if c["whenUnsatisfiable"] == action]
        if not wanted:
            return []
        sel = self.cache.default_selector(pod)
        if sel.empty:
            return []
        return [Constraint(c["maxSkew"], c["topologyKey"], sel) for c in wanted]

    # -- filter -----------------------------------------------------------------------------
    def pre_filter(self, state, pod: PodInfo):
        constraints = self.constraints(pod, "DoNotSchedule")
        if not constraints:
            return SKIP
        s = _FilterState()
        s.constraints = constraints
        s.counts = [{} for _ in constraints]
        keys = [c.topology_key for c in constraints]
        for node in self.cache.node_list:
            labels = node.labels
            if any(k not in labels for k in keys):
                continue
            for i, c in enumerate(constraints):
                if not c.includes(pod, node):
                    continue
                value = labels[c.topology_key]
                s.counts[i][value] = s.counts[i].get(value, 0) + count_matching(node, c.selector, pod.namespace)
        s.paths = []
        for i in range(len(constraints)):
            p = _CriticalPaths()
            for value, num in s.counts[i].items():
                p.update(value, num)
            s.paths.append(p)
        state[self.name] = s
        return None

    def _update(self, state, pod: PodInfo, other: PodInfo, node: NodeInfo, delta: int) -> None:
        s: _FilterState | None = state.get(self.name)
        if s is None or other.namespace != pod.namespace:
            return
        labels = node.labels
        if any(c.topology_key not in labels for c in s.constraints):
            return
        for i, c in enumerate(s.constraints):
            if not c.selector.matches(other.labels) or not c.includes(pod, node):
                continue
            value = labels[c.topology_key]
            s.counts[i][value] = s.counts[i].get(value, 0) + delta
            s.paths[i].update(value, s.counts[i][value])

    def add_pod(self, state, pod, other, node):
        self._update(state, pod, other, node, 1)

    def remove_pod(self, state, pod, other, node):
        self._update(state, pod, other, node, -1)

    def filter(self, state, pod: PodInfo, node: NodeInfo):
        s: _FilterState = state[self.name]
        labels = node.labels
        for i, c in enumerate(s.constraints):
            value = labels.get(c.topology_key)
            if value is None:
                return unresolvable(self.LABEL_REASON, plugin=self.name)
            self_match = 1 if c.selector.matches(pod.labels) else 0
            skew = s.counts[i].get(value, 0) + self_match - s.min_match(i, c)
            if skew > c.max_skew:
                return unschedulable(self.REASON, plugin=self.name)
        return None

    # -- score ------------------------------------------------------------------------------
    def pre_score(self, state, pod: PodInfo, nodes: list[NodeInfo]):
        if not self.cache.node_list:
            return SKIP
        constraints = self.constraints(pod, "ScheduleAnyway")
        if not constraints:
            return SKIP
        require_all = bool(pod.spread_constraints)  # the system defaults tolerate missing labels
        ignored = set()
        counts: list[dict[str, int]] = [{} for _ in constraints]
        sizes = [0] * len(constraints)
        for node in nodes:
            if require_all and any(c.topology_key not in node.labels for c in constraints):
                ignored.add(node.name)
                continue
            for i, c in enumerate(constraints):
                if c.topology_key == HOSTNAME_LABEL:
                    continue
                value = node.labels.get(c.topology_key, "")
                if value not in counts[i]:
                    counts[i][value] = 0
                    sizes[i] += 1
        weights = []
        for i, c in enumerate(constraints):
            size = len(nodes) - len(ignored) if c.topology_key == HOSTNAME_LABEL else sizes[i]
            weights.append(math.log(size + 2))
        for node in self.cache.node_list:
            if require_all and any(c.topology_key not in node.labels for c in constraints):
                continue
            for i, c in enumerate(constraints):
                if c.topology_key == HOSTNAME_LABEL or not c.includes(pod, node):
                    continue
                value = node.labels.get(c.topology_key, "")
                if value in counts[i]:
                    counts[i][value] += count_matching(node, c.selector, pod.namespace)
        state[self.name + "/score"] = (constraints, ignored, counts, weights)
        return None

    def score(self, state, pod: PodInfo, node: NodeInfo) -> int:
        constraints, ignored, counts, weights = state[self.name + "/score"]
        if node.name in ignored:
            return 0
        total = 0.0
        for i, c in enumerate(constraints):
            value = node.labels.get(c.topology_key)
            if value is None:
                continue
            if c.topology_key == HOSTNAME_LABEL:
                cnt = count_matching(node, c.selector, pod.namespace)
            else:
                cnt = counts[i].get(value, 0)
            total += cnt * weights[i] + (c.max_skew - 1)
        return int(math.floor(total + 0.5))

    def normalize_named(self, state, pod, names: list[str], scores: list[int]) -> None:
        _, ignored, _, _ = state[self.name + "/score"]
        lo, hi = None, 0
        for name, s in zip(names, scores):
            if name in ignored:
                continue
            lo = s if lo is None or s < lo else lo
            hi = max(hi, s)
        for i, name in enumerate(names):
            if name in ignored:
                scores[i] = 0
            elif hi == 0:
                scores[i] = MAX_NODE_SCORE
            else:
                scores[i] = MAX_NODE_SCORE * (hi + lo - scores[i]) // hi


def default_selector(pod: PodInfo, services, replication_controllers, replica_sets, stateful_sets) -> LabelSelector:
    """helper.DefaultSelector: what the pod's Services and controller select, combined."""
    label_set: dict = {}
    for svc in services:
        sel = (svc.get("spec") or {}).get("selector")
        if sel is None:
            continue
        if selector_from_set(sel).matches(pod.labels):
            label_set.update(sel)
    selector = selector_from_set(label_set) if label_set else EVERYTHING
    owner = pod.owner
    if owner is None:
        return selector
    api_version, kind, name = owner.get("apiVersion"), owner.get("kind"), owner.get("name")
    if api_version == "v1" and kind == "ReplicationController":
        rc = replication_controllers.get(f"{pod.namespace}/{name}")
        if rc is not None:
            label_set.update((rc.get("spec") or {}).get("selector") or {})
            selector = selector_from_set(label_set) if label_set else EVERYTHING
    elif api_version == "apps/v1" and kind in ("ReplicaSet", "StatefulSet"):
        src = replica_sets if kind == "ReplicaSet" else stateful_sets
        obj = src.get(f"{pod.namespace}/{name}")
        if obj is not None:
            other = _selector((obj.get("spec") or {}).get("selector"))
            if not other.nothing and other.requirements:
                selector = selector.add(*other.requirements)
    return selector
