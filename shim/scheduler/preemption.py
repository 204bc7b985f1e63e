"""DefaultPreemption: when no node fits, make room on one node by evicting lower-priority pods.

For each node that failed only for reasons eviction can fix (status Unschedulable, not
UnschedulableAndUnresolvable), a dry run removes every lower-priority pod, checks the pod
fits, then puts back as many as possible (most important first, pods protected by a
PodDisruptionBudget before the others). The node needing the "cheapest" evictions wins:
fewest PDB violations, then the lowest highest victim priority, the smallest priority sum,
the fewest victims, the latest start. The victims get a DisruptionTarget condition and are
deleted gracefully, in the background; the preemptor gets status.nominatedNodeName and is
retried once they are gone.
"""
from __future__ import annotations

import logging
import random

from shim.api.selectors import label_selector_from_object
from shim.scheduler.framework import Diagnosis, fit_error_message
from shim.scheduler.plugins.base import UNRESOLVABLE, UNSCHEDULABLE, CycleState, unresolvable
from shim.scheduler.types import NodeInfo, PodInfo

log = logging.getLogger("shim.scheduler.preemption")

MIN_CANDIDATE_NODES_PERCENTAGE = 10
MIN_CANDIDATE_NODES_ABSOLUTE = 100
MAX_INT32 = 2**31 - 1
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"


class Candidate:
    __slots__ = ("node", "victims", "pdb_violations")

    def __init__(self, node: str, victims: list[PodInfo], pdb_violations: int):
        self.node, self.victims, self.pdb_violations = node, victims, pdb_violations


class PreemptionResult:
    """What PostFilter decided: `nominated` is the node to nominate ("" clears), or None to
    leave the pod's nominatedNodeName as it is."""
    __slots__ = ("nominated", "candidate", "message")

    def __init__(self, nominated: str | None, message: str, candidate: Candidate | None = None):
        self.nominated, self.message, self.candidate = nominated, message, candidate


def more_important(a: PodInfo, b: PodInfo) -> bool:
    if a.priority != b.priority:
        return a.priority > b.priority
    return (a.start_time or "~") < (b.start_time or "~")


def terminating_by_preemption(p: PodInfo) -> bool:
    if not p.terminating:
        return False
    for c in (p.pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "DisruptionTarget":
            return c.get("status") == "True" and c.get("reason") == "PreemptionByScheduler"
    return False


class DefaultPreemption:
    name = "DefaultPreemption"

    def __init__(self, framework, pdbs=None, rng=None):
        self.framework = framework
        self.cache = framework.cache
        self.queue = framework.queue
        self.pdbs = pdbs if pdbs is not None else (lambda: [])
        self.rng = rng or random.Random()
        self.preempting: set[str] = set()   # preemptors whose victims are being evicted

    # -- PostFilter ---------------------------------------------------------------------------
    def post_filter(self, state: CycleState, pod: PodInfo, d: Diagnosis) -> PreemptionResult:
        result = self._evaluate(state, pod, d)
        if result.message:
            result.message = "preemption: " + result.message
        return result

    def _evaluate(self, state: CycleState, pod: PodInfo, d: Diagnosis) -> PreemptionResult:
        ok, msg = self.eligible(pod, d.status_of(pod.nominated_node) if pod.nominated_node else None)
        if not ok:
            return PreemptionResult(None, msg)
        all_nodes = self.cache.node_list
        potential = [n for n in all_nodes if (st := d.status_of(n.name)) is not None and st.code == UNSCHEDULABLE]
        statuses = Diagnosis()
        candidates: list[Candidate] = []
        if potential:
            candidates = self.dry_run(state, pod, potential, statuses)
        if not candidates:
            statuses.absent_status = unresolvable(NOT_HELPFUL)
            return PreemptionResult("", fit_error_message(len(all_nodes), statuses))
        best = self.select_candidate(candidates)
        return PreemptionResult(best.node, f"found a potential placement for pod on node {best.node}, "
                                           f"preempting {len(best.victims)} victims", best)

    def eligible(self, pod: PodInfo, nominated_status) -> tuple[bool, str]:
        if pod.preemption_policy == "Never":
            return False, "not eligible due to preemptionPolicy=Never."
        if pod.nominated_node:
            if nominated_status is not None and nominated_status.code == UNRESOLVABLE:
                return True, ""
            node = self.cache.get_node(pod.nominated_node)
            if node is not None:
                for p in node.pods.values():
                    if p.priority < pod.priority and terminating_by_preemption(p):
                        return False, "not eligible due to a terminating pod on the nominated node."
        return True, ""

    def num_candidates(self, n: int) -> int:
        k = n * MIN_CANDIDATE_NODES_PERCENTAGE // 100
        return min(max(k, MIN_CANDIDATE_NODES_ABSOLUTE), n)

    def dry_run(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], statuses: Diagnosis) -> list[Candidate]:
        pdbs = self.pdbs()
        want = self.num_candidates(len(nodes))
        offset = self.rng.randrange(len(nodes))
        non_violating: list[Candidate] = []
        violating: list[Candidate] = []
        for i in range(len(nodes)):
            node = nodes[(offset + i) % len(nodes)]
            victims, violations, st = self.select_victims_on_node(state.clone(), pod, node.clone(), pdbs)
            if st is None and victims:
                (non_violating if violations == 0 else violating).append(Candidate(node.name, victims, violations))
                if non_violating and len(non_violating) + len(violating) >= want:
                    break
                continue
            if st is None:
                st = unresolvable(f'expected at least one victim pod on node "{node.name}"')
            statuses.node_to_status[node.name] = st
        return non_violating + violating

    def select_victims_on_node(self, state: CycleState, pod: PodInfo, node: NodeInfo, pdbs):
        fw = self.framework
        potential = [p for p in node.pods.values() if p.priority < pod.priority]
        if not potential:
            return [], 0, unresolvable(NO_VICTIMS)
        for p in potential:
            node.remove_pod(p)
            fw.remove_pod_from_state(state, pod, p, node)
        active = state.get("_active_filters")
        check = fw.make_filter(state, pod, active if active is not None else fw.filter_plugins)
        st = check(node)
        if st is not None:
            return [], 0, st
        potential.sort(key=_importance_key)
        violating, non_violating = filter_pdb_violations(potential, pdbs)
        victims: list[PodInfo] = []
        violations = 0

        def reprieve(p: PodInfo) -> bool:
            node.add_pod(p)
            fw.add_pod_to_state(state, pod, p, node)
            if check(node) is None:
                return True
            node.remove_pod(p)
            fw.remove_pod_from_state(state, pod, p, node)
            victims.append(p)
            return False

        for p in violating:
            if not reprieve(p):
                violations += 1
        for p in non_violating:
            reprieve(p)
        if violating and non_violating:
            victims.sort(key=_importance_key)
        return victims, violations, None

    def select_candidate(self, candidates: list[Candidate]) -> Candidate:
        if len(candidates) == 1:
            return candidates[0]

        def earliest_start_of_top(c: Candidate) -> str:
            top = max(p.priority for p in c.victims)
            return min((p.start_time or "~") for p in c.victims if p.priority == top)

        score_funcs = [
            lambda c: -c.pdb_violations,
            lambda c: -c.victims[0].priority,
            lambda c: -sum(p.priority + MAX_INT32 + 1 for p in c.victims),
            lambda c: -len(c.victims),
        ]
        pool = candidates
        for f in score_funcs:
            best = max(f(c) for c in pool)
            pool = [c for c in pool if f(c) == best]
            if len(pool) == 1:
                return pool[0]
        latest = max(earliest_start_of_top(c) for c in pool)
        pool = [c for c in pool if earliest_start_of_top(c) == latest]
        return pool[0]

    # -- actuation -------------------------------------------------------------------------------
    async def actuate(self, client, events, pod: PodInfo, candidate: Candidate) -> None:
        """Evict the victims (condition, then graceful delete) and clear lower nominations."""
        from shim.client.api import PODS, ApiError
        self.preempting.add(pod.uid)
        try:
            for other in self.queue.nominated_pods_for(candidate.node) if self.queue else ():
                if other.priority < pod.priority:
                    try:
                        await client.patch(PODS, other.name, {"status": {"nominatedNodeName": None}},
                                           other.namespace, subresource="status")
                    except ApiError as e:
                        log.debug("clearing nomination of %s: %s", other.key, e)
            for victim in candidate.victims:
                if victim.terminating:
                    continue
                try:
                    await client.patch(PODS, victim.name, {"status": {"conditions": [{
                        "type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                        "message": f"{pod.scheduler_name}: preempting to accommodate a higher priority pod",
                        "lastTransitionTime": _now()}]}}, victim.namespace, type="strategic",
                        subresource="status")
                    await client.delete(PODS, victim.name, victim.namespace, preconditions={"uid": victim.uid})
                except ApiError as e:
                    if e.code != 404:
                        log.warning("preempting %s: %s", victim.key, e)
                    continue
                events.event(victim.pod, "Normal", "Preempted",
                             f"Preempted by pod {pod.uid} on node {candidate.node}", "Preempting")
        finally:
            self.preempting.discard(pod.uid)


def _importance_key(p: PodInfo):
    return (-p.priority, p.start_time or "~")


def filter_pdb_violations(pods: list[PodInfo], pdbs: list[dict]) -> tuple[list[PodInfo], list[PodInfo]]:
    """Split victims into those whose eviction would break a PodDisruptionBudget and the rest."""
    allowed = [((pdb.get("status") or {}).get("disruptionsAllowed") or 0) for pdb in pdbs]
    selectors = []
    for pdb in pdbs:
        try:
            selectors.append(label_selector_from_object((pdb.get("spec") or {}).get("selector")))
        except Exception:
            selectors.append(None)
    violating, ok = [], []
    for p in pods:
        bad = False
        if p.labels:
            for i, pdb in enumerate(pdbs):
                if (pdb.get("metadata") or {}).get("namespace") != p.namespace:
                    continue
                sel = selectors[i]
                if sel is None or sel.empty or sel.nothing or not sel.matches(p.labels):
                    continue
                if p.name in ((pdb.get("status") or {}).get("disruptedPods") or {}):
                    continue
                allowed[i] -= 1
                if allowed[i] < 0:
                    bad = True
        (violating if bad else ok).append(p)
    return violating, ok


def _now() -> str:
    import datetime as dt
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
