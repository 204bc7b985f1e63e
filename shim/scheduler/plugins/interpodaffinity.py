"""InterPodAffinity: required pod (anti-)affinity as a filter, preferred terms as a score.

Filter (per topology domain, i.e. the value of the term's topologyKey on the node):
- every required affinity term must see a matching pod in the node's domain, unless no pod
  in the cluster matches and the pod matches its own terms (the first pod of a group);
- no required anti-affinity term of the pod may see a matching pod in the node's domain;
- no existing pod's required anti-affinity term may match the pod within the domain.
Score: the weights of the pod's preferred terms and of existing pods' terms (required
affinity counts with hardPodAffinityWeight 1) summed per domain, then scaled min..max to
0..100.
"""
from __future__ import annotations

from collections import defaultdict

from shim.scheduler.plugins.base import MAX_NODE_SCORE, SKIP, Plugin, unresolvable, unschedulable
from shim.scheduler.types import AffinityTerm, NodeInfo, PodInfo

HARD_POD_AFFINITY_WEIGHT = 1


def _all_match(terms: list[AffinityTerm], pod: PodInfo) -> bool:
    if not terms:
        return False
    for t in terms:
        if not t.matches(pod, None):
            return False
    return True


class _FilterState:
    __slots__ = ("pod", "affinity", "anti_affinity", "ns_labels", "existing_anti", "affinity_counts",
                 "anti_counts")

    def clone(self):
        c = _FilterState()
        c.pod, c.affinity, c.anti_affinity, c.ns_labels = self.pod, self.affinity, self.anti_affinity, self.ns_labels
        c.existing_anti = defaultdict(int, self.existing_anti)
        c.affinity_counts = defaultdict(int, self.affinity_counts)
        c.anti_counts = defaultdict(int, self.anti_counts)
        return c

    def update_with_pod(self, other: PodInfo, node: NodeInfo, delta: int) -> None:
        labels = node.labels
        for t in other.required_anti_affinity:
            if t.matches(self.pod, self.ns_labels):
                _bump(self.existing_anti, labels, t.topology_key, delta)
        if _all_match(self.affinity, other):
            for t in self.affinity:
                _bump(self.affinity_counts, labels, t.topology_key, delta)
        for t in self.anti_affinity:
            if t.matches(other, None):
                _bump(self.anti_counts, labels, t.topology_key, delta)


def _bump(counts, labels, key, delta):
    if key in labels:
        pair = (key, labels[key])
        counts[pair] += delta
        if counts[pair] == 0:
            del counts[pair]


class InterPodAffinity(Plugin):
    name = "InterPodAffinity"
    weight = 2
    AFFINITY = "node(s) didn't match pod affinity rules"
    ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
    EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"

    def __init__(self, cache):
        self.cache = cache

    def _resolve(self, terms: list[AffinityTerm]) -> list[AffinityTerm]:
        """Turn namespace selectors of the incoming pod's terms into namespace names."""
        out = []
        for t in terms:
            if t.namespace_selector.nothing:
                out.append(t)
            else:
                out.append(t.with_namespaces(self.cache.namespaces_matching(t.namespace_selector)))
        return out

    # -- filter ---------------------------------------------------------------------------
    def pre_filter(self, state, pod: PodInfo):
        cache = self.cache
        ns_labels = cache.namespace_labels(pod.namespace)
        s = _FilterState()
        s.pod = pod
        s.ns_labels = ns_labels
        s.affinity = self._resolve(pod.required_affinity)
        s.anti_affinity = self._resolve(pod.required_anti_affinity)
        s.existing_anti = defaultdict(int)
        for node in cache.nodes_with_required_anti_affinity():
            labels = node.labels
            for other in node.pods_with_required_anti_affinity.values():
                for t in other.required_anti_affinity:
                    if t.matches(pod, ns_labels):
                        _bump(s.existing_anti, labels, t.topology_key, 1)
        s.affinity_counts = defaultdict(int)
        s.anti_counts = defaultdict(int)
        if s.affinity or s.anti_affinity:
            for node in cache.node_list:
                labels = node.labels
                for other in node.pods.values():
                    if s.affinity and _all_match(s.affinity, other):
                        for t in s.affinity:
                            _bump(s.affinity_counts, labels, t.topology_key, 1)
                    for t in s.anti_affinity:
                        if t.matches(other, None):
                            _bump(s.anti_counts, labels, t.topology_key, 1)
        if not s.existing_anti and not s.affinity and not s.anti_affinity:
            return SKIP
        state[self.name] = s
        return None

    def add_pod(self, state, pod: PodInfo, other: PodInfo, node: NodeInfo) -> None:
        s = state.get(self.name)
        if s is not None:
            s.update_with_pod(other, node, 1)

    def remove_pod(self, state, pod: PodInfo, other: PodInfo, node: NodeInfo) -> None:
        s = state.get(self.name)
        if s is not None:
            s.update_with_pod(other, node, -1)

    def filter(self, state, pod: PodInfo, node: NodeInfo):
        s: _FilterState = state[self.name]
        labels = node.labels
        if s.affinity:
            pods_exist = True
            for t in s.affinity:
                value = labels.get(t.topology_key)
                if value is None:
                    return unresolvable(self.AFFINITY, plugin=self.name)
                if s.affinity_counts.get((t.topology_key, value), 0) <= 0:
                    pods_exist = False
            if not pods_exist:
                # The first pod of a group may go anywhere its own terms would match it.
                if s.affinity_counts or not _all_match(s.affinity, pod):
                    return unresolvable(self.AFFINITY, plugin=self.name)
        if s.anti_counts:
            for t in s.anti_affinity:
                value = labels.get(t.topology_key)
                if value is not None and s.anti_counts.get((t.topology_key, value), 0) > 0:
                    return unschedulable(self.ANTI_AFFINITY, plugin=self.name)
        if s.existing_anti:
            for (k, v), n in s.existing_anti.items():
                if n > 0 and labels.get(k) == v:
                    return unschedulable(self.EXISTING_ANTI_AFFINITY, plugin=self.name)
        return None

    # -- score ----------------------------------------------------------------------------
    def pre_score(self, state, pod: PodInfo, nodes):
        cache = self.cache
        has_constraints = bool(pod.preferred_affinity or pod.preferred_anti_affinity)
        preferred = self._resolve(pod.preferred_affinity)
        preferred_anti = self._resolve(pod.preferred_anti_affinity)
        ns_labels = cache.namespace_labels(pod.namespace)
        scores: dict[str, dict[str, int]] = {}

        def add(term: AffinityTerm, weight: int, target: PodInfo, labels, target_ns_labels):
            if term.matches(target, target_ns_labels):
                value = labels.get(term.topology_key)
                if value is not None:
                    by_value = scores.setdefault(term.topology_key, {})
                    by_value[value] = by_value.get(value, 0) + weight

        node_source = cache.node_list if has_constraints else cache.nodes_with_affinity()
        for node in node_source:
            labels = node.labels
            if not labels:
                continue
            others = node.pods.values() if has_constraints else node.pods_with_affinity.values()
            for other in others:
                for t in preferred:
                    add(t, t.weight, other, labels, None)
                for t in preferred_anti:
                    add(t, -t.weight, other, labels, None)
                for t in other.required_affinity:
                    add(t, HARD_POD_AFFINITY_WEIGHT, pod, labels, ns_labels)
                for t in other.preferred_affinity:
                    add(t, t.weight, pod, labels, ns_labels)
                for t in other.preferred_anti_affinity:
                    add(t, -t.weight, pod, labels, ns_labels)
        if not scores:
            return SKIP
        state[self.name + "/score"] = scores
        return None

    def score(self, state, pod: PodInfo, node: NodeInfo) -> int:
        scores = state[self.name + "/score"]
        total = 0
        labels = node.labels
        for key, by_value in scores.items():
            value = labels.get(key)
            if value is not None:
                total += by_value.get(value, 0)
        return total

    def normalize(self, state, pod, scores):
        if not scores:
            return
        lo, hi = min(scores), max(scores)
        diff = hi - lo
        for i, s in enumerate(scores):
            scores[i] = int(MAX_NODE_SCORE * ((s - lo) / diff)) if diff > 0 else 0
