"""One scheduling cycle: filter the nodes, score the feasible ones, pick the best.

The plugin order and weights are those of upstream's default profile. Filters stop at the
first plugin that rejects a node, so each node carries one status, and the reasons of all
statuses add up to the "0/N nodes are available: ..." message. As upstream does, a cycle
looks at nodes starting where the previous one stopped and stops after finding enough
feasible nodes (percentageOfNodesToScore, adaptive by default: 50% minus 1% per 125 nodes,
at least 5% and at least 100 nodes).

The cycle is synchronous (it never awaits), so the cache it reads cannot change under it.
"""
from __future__ import annotations

import random
from bisect import bisect_left
from collections import Counter

from shim.scheduler.plugins.base import (MAX_NODE_SCORE, SKIP, CycleState,
                                         Status, unresolvable)
from shim.scheduler.plugins.imagelocality import ImageLocality
from shim.scheduler.plugins.interpodaffinity import InterPodAffinity
from shim.scheduler.plugins.nodebasics import NodeAffinity, NodeName, NodePorts, NodeUnschedulable, TaintToleration
from shim.scheduler.plugins.noderesources import (NodeResourcesBalancedAllocation, NodeResourcesFit,
                                                  balanced_allocation, least_allocated)
from shim.scheduler.plugins.podtopologyspread import PodTopologySpread
from shim.scheduler.types import NodeInfo, PodInfo, normalized_image_name, tolerates

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
NO_NODES_AVAILABLE = "no nodes available to schedule pods"


class Diagnosis:
    __slots__ = ("node_to_status", "absent_status", "unschedulable_plugins", "prefilter_msg", "postfilter_msg")

    def __init__(self):
        self.node_to_status: dict[str, Status] = {}
        self.absent_status: Status | None = None
        self.unschedulable_plugins: set[str] = set()
        self.prefilter_msg = ""
        self.postfilter_msg = ""

    def status_of(self, name: str) -> Status | None:
        st = self.node_to_status.get(name)
        return st if st is not None else self.absent_status


class FitError(Exception):
    """No node fits; str() is upstream's summary ("0/3 nodes are available: ...")."""

    def __init__(self, pod: PodInfo, num_all_nodes: int, diagnosis: Diagnosis):
        self.pod = pod
        self.num_all_nodes = num_all_nodes
        self.diagnosis = diagnosis
        super().__init__()

    def __str__(self) -> str:
        return fit_error_message(self.num_all_nodes, self.diagnosis)


class NoNodesAvailable(Exception):
    def __str__(self) -> str:
        return NO_NODES_AVAILABLE


def fit_error_message(num_all_nodes: int, d: Diagnosis) -> str:
    msg = f"0/{num_all_nodes} nodes are available:"
    if d.prefilter_msg:
        msg += f" {d.prefilter_msg}."
    else:
        reasons: Counter = Counter()
        for st in d.node_to_status.values():
            for r in st.reasons:
                reasons[r] += 1
        missing = num_all_nodes - len(d.node_to_status)
        if missing > 0 and d.absent_status is not None:
            for r in d.absent_status.reasons:
                reasons[r] += missing
        parts = sorted(f"{n} {r}" for r, n in reasons.items())
        if parts:
            msg += " " + ", ".join(parts) + "."
    if d.postfilter_msg:
        msg += " " + d.postfilter_msg
    return msg


class Framework:
    def __init__(self, cache, queue=None, *, percentage_of_nodes_to_score: int = 0, rng=None):
        self.cache = cache
        self.queue = queue
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score
        self.rng = rng or random.Random()
        self.next_start = 0
        self.fast_path = True
        self.record_ties = False  # tests: remember the set of best-scored nodes
        self.last_best: list[str] | None = None
        self._key_ids: dict = {}
        self._eligible_cache: dict = {}
        self._key_epoch = 0
        self.node_name = NodeName()
        self.node_unschedulable = NodeUnschedulable()
        self.taint_toleration = TaintToleration()
        self.node_affinity = NodeAffinity()
        self.node_ports = NodePorts()
        self.fit = NodeResourcesFit()
        self.spread = PodTopologySpread(cache)
        self.inter_pod_affinity = InterPodAffinity(cache)
        self.balanced = NodeResourcesBalancedAllocation()
        self.image_locality = ImageLocality(cache)
        # Upstream's default profile, in order.
        self.filter_plugins = [self.node_name, self.node_unschedulable, self.taint_toleration, self.node_affinity,
                               self.node_ports, self.fit, self.spread, self.inter_pod_affinity]
        self.score_plugins = [self.taint_toleration, self.node_affinity, self.fit, self.spread,
                              self.inter_pod_affinity, self.balanced, self.image_locality]

    # -- pre-filter -----------------------------------------------------------------------------
    def pre_filter(self, state: CycleState, pod: PodInfo):
        """Run PreFilter; returns (active filter plugins, allowed node names or None, status)."""
        active = []
        allowed = None
        for pl in self.filter_plugins:
            fn = getattr(pl, "pre_filter", None)
            if fn is not None:
                st = fn(state, pod)
                if st is SKIP:
                    continue
                if isinstance(st, Status):
                    st.plugin = st.plugin or pl.name
                    return active, allowed, st
                names = (state.get("_node_names") or {}).pop(pl.name, None)
                if names is not None:
                    allowed = set(names) if allowed is None else allowed & names
                    state.setdefault("_restricting", []).append(pl.name)
                    if not allowed:
                        plugins = sorted(state["_restricting"])
                        msg = (f"node(s) didn't satisfy plugin {plugins[0]}" if len(plugins) == 1 else
                               f"node(s) didn't satisfy plugin(s) [{' '.join(plugins)}] simultaneously")
                        return active, allowed, unresolvable(msg, plugin=pl.name)
            active.append(pl)
        return active, allowed, None

    # -- filters ---------------------------------------------------------------------------------
    def make_filter(self, state: CycleState, pod: PodInfo, active: list):
        """A function node -> Status | None running the active filters (with a per-node cache
        of the verdict of the filters that read only the node object)."""
        static = [pl.filter for pl in active if getattr(pl, "static", False)]
        dynamic = [pl.filter for pl in active if not getattr(pl, "static", False)]
        key = self._key_id(pod.node_static_key())
        queue = self.queue

        def run_static(node: NodeInfo):
            cache = node.static_cache
            st = cache.get(key, _MISSING)
            if st is _MISSING:
                st = None
                for f in static:
                    st = f(state, pod, node)
                    if st is not None:
                        break
                if len(cache) > 64:
                    cache.clear()
                cache[key] = st
            return st

        def run(node: NodeInfo, state=state):
            st = run_static(node)
            if st is not None:
                return st
            for f in dynamic:
                st = f(state, pod, node)
                if st is not None:
                    return st
            return None

        if queue is None:
            return run

        def run_with_nominated(node: NodeInfo):
            if queue.nominated and node.name in queue.nominated:
                return self._filter_with_nominated(state, pod, node, run)
            return run(node)
        return run_with_nominated

    def _filter_with_nominated(self, state, pod: PodInfo, node: NodeInfo, run) -> Status | None:
        """RunFilterPluginsWithNominatedPods: fit with higher-or-equal nominated pods, and without."""
        nominated = [p for p in self.queue.nominated_pods_for(node.name)
                     if p.priority >= pod.priority and p.uid != pod.uid]
        if not nominated:
            return run(node)
        with_pods = node.clone()
        state2 = state.clone()
        for p in nominated:
            with_pods.add_pod(p)
            self.add_pod_to_state(state2, pod, p, with_pods)
        st = run(with_pods, state2)
        if st is not None:
            return st
        return run(node)

    def add_pod_to_state(self, state, pod, other, node) -> None:
        self.inter_pod_affinity.add_pod(state, pod, other, node)
        self.spread.add_pod(state, pod, other, node)

    def remove_pod_from_state(self, state, pod, other, node) -> None:
        self.inter_pod_affinity.remove_pod(state, pod, other, node)
        self.spread.remove_pod(state, pod, other, node)

    def num_feasible_nodes_to_find(self, num_all: int) -> int:
        if num_all < MIN_FEASIBLE_NODES_TO_FIND:
            return num_all
        pct = self.percentage_of_nodes_to_score
        if pct == 0:
            pct = max(50 - num_all // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
        n = num_all * pct // 100
        return max(n, MIN_FEASIBLE_NODES_TO_FIND)

    def find_nodes_that_fit(self, state: CycleState, pod: PodInfo) -> tuple[list[NodeInfo], Diagnosis, list]:
        d = Diagnosis()
        all_nodes = self.cache.node_list
        active, allowed, st = self.pre_filter(state, pod)
        if st is not None:
            d.absent_status = st
            d.prefilter_msg = st.message
            d.unschedulable_plugins.add(st.plugin)
            return [], d, active
        state["_active_filters"] = active
        check = self.make_filter(state, pod, active)
        # A nominated node (after preemption) is tried first and alone.
        if pod.nominated_node:
            ni = self.cache.get_node(pod.nominated_node)
            if ni is not None and (allowed is None or ni.name in allowed):
                if check(ni) is None:
                    return [ni], d, active
        nodes = all_nodes
        if allowed is not None:
            nodes = [n for n in all_nodes if n.name in allowed]
            d.absent_status = unresolvable(
                f"node(s) didn't satisfy plugin(s) [{' '.join(sorted(state.get('_restricting', [])))}]")
        n = len(nodes)
        if n == 0:
            return [], d, active
        want = self.num_feasible_nodes_to_find(n)
        feasible: list[NodeInfo] = []
        statuses = d.node_to_status
        start = self.next_start % n if n else 0
        processed = 0
        for i in range(n):
            node = nodes[(start + i) % n]
            processed += 1
            st = check(node)
            if st is None:
                feasible.append(node)
                if len(feasible) >= want:
                    break
            else:
                statuses[node.name] = st
                d.unschedulable_plugins.add(st.plugin)
        if all_nodes:
            self.next_start = (self.next_start + processed) % len(all_nodes)
        return feasible, d, active

    # -- scoring -------------------------------------------------------------------------------------
    def prioritize(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        totals = [0] * len(nodes)
        for pl in self.score_plugins:
            pre = getattr(pl, "pre_score", None)
            if pre is not None and pre(state, pod, nodes) is SKIP:
                continue
            score = pl.score
            scores = [score(state, pod, n) for n in nodes]
            named = getattr(pl, "normalize_named", None)
            if named is not None:
                named(state, pod, [n.name for n in nodes], scores)
            else:
                norm = getattr(pl, "normalize", None)
                if norm is not None:
                    norm(state, pod, scores)
            w = pl.weight
            for i, s in enumerate(scores):
                totals[i] += s * w
        return totals

    def select_host(self, nodes: list[NodeInfo], totals: list[int]) -> NodeInfo:
        """The best-scored node; ties broken at random (reservoir sampling, as upstream)."""
        if self.record_ties:
            top = max(totals)
            self.last_best = sorted(n.name for n, t in zip(nodes, totals) if t == top)
        best = totals[0]
        chosen = nodes[0]
        ties = 1
        rnd = self.rng.random
        for node, score in zip(nodes[1:], totals[1:]):
            if score > best:
                best, chosen, ties = score, node, 1
            elif score == best:
                ties += 1
                if rnd() * ties < 1:
                    chosen = node
        return chosen

    # -- the whole algorithm --------------------------------------------------------------------------
    def schedule_pod(self, pod: PodInfo) -> tuple[NodeInfo, CycleState, int, int]:
        """Pick a node for the pod: (node, state, evaluated, feasible), or FitError."""
        if not self.cache.node_list:
            raise NoNodesAvailable()
        if self.fast_path and self._simple(pod):
            start = self.next_start
            node = self._schedule_simple(pod)
            if node is not None:
                return node, CycleState(), 0, 0
            self.next_start = start  # no node fits: the general path explains why
        state = CycleState()
        feasible, d, _ = self.find_nodes_that_fit(state, pod)
        if not feasible:
            err = FitError(pod, len(self.cache.node_list), d)
            err.state = state
            raise err
        evaluated = len(feasible) + len(d.node_to_status)
        if len(feasible) == 1:
            return feasible[0], state, evaluated, 1
        totals = self.prioritize(state, pod, feasible)
        return self.select_host(feasible, totals), state, evaluated, len(feasible)


    def _key_id(self, key) -> int:
        """A small int standing for a (deep, slow to hash) cache key."""
        ids = self._key_ids
        i = ids.get(key)
        if i is None:
            if len(ids) > 100_000:
                ids.clear()
                for n in self.cache.nodes.values():
                    n.static_cache.clear()
                    n.score_cache.clear()
            i = ids[key] = self._key_epoch
            self._key_epoch += 1
        return i

    # -- the same algorithm, specialised for the common pod --------------------------------------
    def _simple(self, pod: PodInfo) -> bool:
        """Whether only node-local plugins have a say for this pod in this cluster: no ports,
        no pod (anti-)affinity anywhere that could concern it, no topology spreading, no
        image already on a node, no nominated pods, no node-name restriction."""
        if pod.host_ports or pod.has_affinity_spec or pod.spread_constraints or pod.nominated_node:
            return False
        cache = self.cache
        if cache.any_affinity or cache._anti_affinity_nodes:
            return False
        if self.queue is not None and self.queue.nominated:
            return False
        terms = pod.required_node_affinity.terms
        if terms and any(t.fields for t in terms):
            return False
        if cache.image_nodes and any(normalized_image_name(i) in cache.image_nodes for i in pod.images):
            return False
        if not cache.default_selector(pod).empty:
            return False
        return True

    def _eligible(self, pod: PodInfo, key: int):
        """The nodes passing the node-only filters for pods shaped like `pod`, in node_list
        order: (positions, [(position, node, PreferNoSchedule count, node affinity score)],
        any non-zero score). Cached until a node object changes."""
        gen = self.cache.node_generation
        hit = self._eligible_cache.get(key)
        if hit is not None and hit[0] == gen:
            return hit[1]
        static = [pl.filter for pl in (self.node_name, self.node_unschedulable, self.taint_toleration)]
        if not pod.required_node_affinity.empty:
            static.append(self.node_affinity.filter)
        prefer_tols = [t for t in pod.tolerations if (t.get("effect") or "PreferNoSchedule") == "PreferNoSchedule"]
        preferred = pod.preferred_node_terms
        positions, entries = [], []
        scored = False
        for pos, node in enumerate(self.cache.node_list):
            st = None
            for f in static:
                st = f(None, pod, node)
                if st is not None:
                    break
            if st is not None:
                continue
            t = sum(1 for x in node.taints if x.get("effect") == "PreferNoSchedule"
                    and not tolerates(prefer_tols, x)) if node.taints else 0
            a = sum(w for w, term in preferred if term.matches(node.labels, node.name))
            scored = scored or bool(t or a)
            positions.append(pos)
            entries.append((node, t, a))
        result = (positions, entries, scored)
        if len(self._eligible_cache) > 256:
            self._eligible_cache.clear()
        self._eligible_cache[key] = (gen, result)
        return result

    def _schedule_simple(self, pod: PodInfo) -> NodeInfo | None:
        """Filters and scores as in the general path, reading the node-only verdicts from a
        per-pod-shape list and resource scores from a per-node cache (valid while the node's
        pods do not change)."""
        all_nodes = self.cache.node_list
        n = len(all_nodes)
        want = self.num_feasible_nodes_to_find(n)
        key = self._key_id(("simple", pod.node_static_key()))
        positions, entries, scored = self._eligible(pod, key)
        m = len(entries)
        start = self.next_start % n
        if m == 0:
            self.next_start = (self.next_start + n) % n
            return None
        cpu, mem, eph, scalar = pod.req_cpu, pod.req_mem, pod.req_eph, pod.req_scalar
        nz_cpu, nz_mem = pod.nz_cpu, pod.nz_mem
        balanced = bool(cpu or mem)
        class_key = self._key_id((nz_cpu, nz_mem, cpu, mem, balanced))
        fit = self.fit.filter
        feasible: list = []
        scores: list[int] = []
        j0 = bisect_left(positions, start)
        last = j0
        for j in range(j0, j0 + m):
            entry = entries[j % m] if j >= m else entries[j]
            node = entry[0]
            if not (len(node.pods) < node.alloc_pods and scalar is None and cpu <= node.alloc_cpu - node.req_cpu
                    and mem <= node.alloc_mem - node.req_mem and eph <= node.alloc_eph - node.req_eph):
                if fit(None, pod, node) is not None:
                    continue
            if node.score_key == class_key and node.score_gen == node.generation:
                score = node.score_val
            else:
                score = least_allocated(nz_cpu, nz_mem, node)
                if balanced:
                    score += balanced_allocation(cpu, mem, node)
                node.score_key, node.score_gen, node.score_val = class_key, node.generation, score
            feasible.append(entry)
            scores.append(score)
            if len(feasible) >= want:
                last = j
                break
        else:
            last = None
        if last is None:
            processed = n
        else:
            processed = (positions[last % m] - start) % n + 1
        self.next_start = (self.next_start + processed) % n
        if not feasible:
            return None
        if len(feasible) == 1:
            return feasible[0][0]
        if scored:
            top = max(e[1] for e in feasible)
            if top > 0:  # TaintToleration: reversed, weight 3 (all 100 when no node has such taints)
                scores = [s + 3 * (MAX_NODE_SCORE - MAX_NODE_SCORE * e[1] // top) for s, e in zip(scores, feasible)]
            if pod.preferred_node_terms:
                top = max(e[2] for e in feasible)
                if top > 0:  # NodeAffinity, weight 2
                    scores = [s + 2 * (MAX_NODE_SCORE * e[2] // top) for s, e in zip(scores, feasible)]
        return self._select_max([e[0] for e in feasible], scores)

    def _select_max(self, nodes, scores):
        best = max(scores)
        if self.record_ties:
            self.last_best = sorted(n.name for n, t in zip(nodes, scores) if t == best)
        idx = [i for i, s in enumerate(scores) if s == best]
        if len(idx) == 1:
            return nodes[idx[0]]
        # Upstream's reservoir sampling picks each tied node with equal probability.
        return nodes[idx[int(self.rng.random() * len(idx))]]


_MISSING = object()

__all__ = ["Framework", "FitError", "Diagnosis", "NoNodesAvailable", "fit_error_message"]
