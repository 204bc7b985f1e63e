"""The scheduling cycle, the queue, the cache and preemption, without an API server."""
from __future__ import annotations

import random

import pytest

from sched_helpers import World, node, pod
from shim.scheduler.cache import Cache
from shim.scheduler.framework import Diagnosis, FitError, Framework, NoNodesAvailable, fit_error_message
from shim.scheduler.plugins.base import Status, unresolvable, unschedulable
from shim.scheduler.preemption import Candidate, DefaultPreemption, filter_pdb_violations
from shim.scheduler.queue import SchedulingQueue
from shim.scheduler.types import PodInfo

TAINT = [{"key": "k", "value": "v", "effect": "NoSchedule"}]


# -- the failure message ---------------------------------------------------------------------------

def test_message_counts_reasons_and_sorts_them_as_strings():
    d = Diagnosis()
    d.node_to_status = {"a": unresolvable("node(s) had untolerated taint(s)"),
                        "b": unschedulable("Insufficient cpu"), "c": unschedulable("Insufficient cpu")}
    assert fit_error_message(3, d) == \
        "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 Insufficient cpu."
    d.node_to_status = {str(i): unschedulable("Insufficient cpu") for i in range(10)}
    d.node_to_status["x"] = unschedulable("Insufficient memory", "Insufficient cpu")
    d.node_to_status["y"] = unresolvable("node(s) were unschedulable")
    # "11 ..." sorts before "2 ..." and "1 ..." (byte order, as Go's sort.Strings)
    assert fit_error_message(12, d) == ("0/12 nodes are available: 1 Insufficient memory, "
                                        "1 node(s) were unschedulable, 11 Insufficient cpu.")


def test_message_with_prefilter_and_postfilter_parts():
    d = Diagnosis()
    d.prefilter_msg = "pod affinity terms conflict"
    d.postfilter_msg = "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    assert fit_error_message(2, d) == ("0/2 nodes are available: pod affinity terms conflict. preemption: "
                                       "0/2 nodes are available: 2 Preemption is not helpful for scheduling.")


@pytest.mark.parametrize("fast", [True, False])
def test_fit_error_from_a_cycle(fast):
    w = World([node("a", taints=TAINT), node("b", cpu="1"), node("c", cpu="1")], fast_path=fast)
    with pytest.raises(FitError) as e:
        w.schedule(pod("p", cpu="2"))
    assert str(e.value) == "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 Insufficient cpu."
    statuses = e.value.diagnosis.node_to_status
    assert statuses["b"].code == statuses["a"].code == 3  # 2 cpu never fit on a 1-cpu node


def test_first_failing_filter_decides_the_reason():
    # unschedulable comes before taints, taints before affinity, affinity before resources
    w = World([node("a", unschedulable=True, taints=TAINT), node("b", taints=TAINT, cpu="1"),
               node("c", cpu="1", labels={"disk": "hdd"})])
    with pytest.raises(FitError) as e:
        w.schedule(pod("p", cpu="2", spec={"nodeSelector": {"disk": "ssd"}}))
    assert str(e.value) == ("0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
                            "1 node(s) had untolerated taint(s), 1 node(s) were unschedulable.")


def test_prefilter_node_name_restriction_and_conflict():
    restrict = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}]}}}}
    w = World([node("a", taints=TAINT), node("b"), node("c")])
    with pytest.raises(FitError) as e:
        w.schedule(pod("p", spec=restrict))
    assert str(e.value) == ("0/3 nodes are available: 1 node(s) had untolerated taint(s), "
                            "2 node(s) didn't satisfy plugin(s) [NodeAffinity].")
    conflict = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["a"]},
            {"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}}}}
    with pytest.raises(FitError) as e:
        w.schedule(pod("p", spec=conflict))
    assert str(e.value) == "0/3 nodes are available: pod affinity terms conflict."


def test_no_nodes():
    with pytest.raises(NoNodesAvailable) as e:
        World([]).schedule(pod("p"))
    assert str(e.value) == "no nodes available to schedule pods"


# -- placement -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("fast", [True, False])
def test_least_allocated_spreads_and_balanced_prefers_balance(fast):
    w = World([node("big", cpu="8", memory="16Gi"), node("small", cpu="2", memory="4Gi")], fast_path=fast)
    assert w.place(pod("p1", cpu="1", memory="1Gi")) == "big"
    # cpu-heavy load on "a" makes a memory-heavy pod prefer it (balance) over empty "b"
    w = World([node("a", cpu="4", memory="4Gi"), node("b", cpu="4", memory="4Gi")],
              [pod("x", cpu="3", node_name="a")], fast_path=fast)
    assert w.schedule(pod("p", memory="3Gi")) == "b"  # least-allocated outweighs here
    w = World([node("a", cpu="4", memory="4Gi"), node("b", cpu="4", memory="4Gi")], fast_path=fast)
    names = {w.place(pod(f"p{i}", cpu="1", memory="1Gi")) for i in range(2)}
    assert names == {"a", "b"}


@pytest.mark.parametrize("fast", [True, False])
def test_prefer_no_schedule_and_preferred_affinity(fast):
    w = World([node("tainted", taints=[{"key": "k", "effect": "PreferNoSchedule"}]), node("clean")],
              fast_path=fast)
    assert all(w.schedule(pod(f"p{i}")) == "clean" for i in range(5))
    pref = {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 50, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}}
    w = World([node("hdd", labels={"disk": "hdd"}), node("ssd", labels={"disk": "ssd"})], fast_path=fast)
    assert all(w.schedule(pod(f"p{i}", spec=pref)) == "ssd" for i in range(5))


def test_fast_path_agrees_with_general_path():
    rnd = random.Random(7)
    nodes = []
    for i in range(150):
        taints = [{"key": "soft", "effect": "PreferNoSchedule"}] if i % 7 == 0 else None
        if i % 11 == 0:
            taints = (taints or []) + TAINT
        nodes.append(node(f"n{i:03d}", cpu=str(rnd.choice([2, 4, 8, 16])), memory=f"{rnd.choice([4, 8, 32])}Gi",
                          labels={"disk": rnd.choice(["ssd", "hdd"])}, taints=taints))
    shapes = [dict(cpu="500m", memory="1Gi"), dict(cpu="2"), dict(memory="3Gi"), dict()]
    prefs = [None, {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 30, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}},
        {"nodeSelector": {"disk": "hdd"}}]
    fast, slow = World(nodes, fast_path=True), World(nodes, fast_path=False)
    for w in (fast, slow):
        w.framework.record_ties = True
    for i in range(400):
        p = pod(f"p{i}", **rnd.choice(shapes), spec=rnd.choice(prefs))
        infos = PodInfo(p), PodInfo(p)
        picks = []
        for w, info in zip((fast, slow), infos):
            w.framework.last_best = None
            try:
                n, _, _, _ = w.framework.schedule_pod(info)
            except FitError:
                picks.append((None, None))
                continue
            picks.append((n.name, w.framework.last_best or [n.name]))
        assert picks[0][1] == picks[1][1], f"pod {i}: {picks}"
        if picks[0][0] is None:
            continue
        # both assume the same node so the worlds stay identical
        for w, info in zip((fast, slow), infos):
            w.cache.assume(info, picks[1][0])
        assert fast.framework.next_start == slow.framework.next_start


def test_sampling_stops_after_enough_feasible_nodes():
    fw = Framework(Cache())
    assert fw.num_feasible_nodes_to_find(50) == 50
    assert fw.num_feasible_nodes_to_find(1000) == 420   # 50% - 1000/125 %
    assert fw.num_feasible_nodes_to_find(5000) == 500   # 10%
    assert fw.num_feasible_nodes_to_find(100_000) == 5000  # never below 5%
    assert fw.num_feasible_nodes_to_find(150) == 100     # 49% would be 73: at least 100


def test_zones_interleave_in_node_order():
    c = Cache()
    for name, zone in [("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b"), ("c1", "c"), ("c2", "c")]:
        c.add_or_update_node(node(name, labels={"topology.kubernetes.io/zone": zone}))
    assert [n.name for n in c.node_list] == ["a1", "b1", "c1", "a2", "c2", "a3"]


# -- the cache -------------------------------------------------------------------------------------------

def test_assume_confirm_and_forget():
    c = Cache()
    c.add_or_update_node(node("a", cpu="2"))
    p = PodInfo(pod("p", cpu="1"))
    c.assume(p, "a")
    assert c.get_node("a").req_cpu == 1000 and c.is_assumed(p.uid)
    c.forget(p)
    assert c.get_node("a").req_cpu == 0
    c.assume(p, "a")
    bound = pod("p", cpu="1", node_name="a")
    bound["metadata"]["uid"] = p.uid
    c.add_or_update_pod(PodInfo(bound))
    assert not c.is_assumed(p.uid) and c.get_node("a").req_cpu == 1000 and len(c.get_node("a").pods) == 1
    c.remove_pod(p.uid)
    assert c.get_node("a").req_cpu == 0


def test_pods_on_unknown_nodes_are_kept_until_the_node_appears():
    c = Cache()
    c.add_or_update_pod(PodInfo(pod("p", cpu="1", node_name="later")))
    assert c.node_list == []
    c.add_or_update_node(node("later", cpu="2"))
    assert c.get_node("later").req_cpu == 1000
    c.remove_node("later")
    assert c.node_list == [] and "later" in c.nodes  # ghost keeps the pod's accounting


# -- the queue ---------------------------------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_queue_orders_by_priority_then_age():
    clock = Clock()
    q = SchedulingQueue(clock)
    for name, prio in [("low", 0), ("high", 100), ("low2", 0)]:
        q.add(PodInfo(pod(name, priority=prio)))
        clock.t += 1
    assert [q.pop_nowait().info.name for _ in range(3)] == ["high", "low", "low2"]
    assert q.pop_nowait() is None


def test_queue_backoff_and_moves():
    clock = Clock()
    q = SchedulingQueue(clock)
    q.add(PodInfo(pod("p")))
    qp = q.pop_nowait()
    q.requeue_unschedulable(qp)
    assert q.pop_nowait() is None
    q.move_for_plugins({"NodeResourcesFit"})  # no plugins recorded: any event moves it
    assert q.pop_nowait() is None               # ... into backoff (1s after the first attempt)
    clock.t += 1.01
    qp = q.pop_nowait()
    assert qp is not None and qp.attempts == 2
    q.requeue_unschedulable(qp, {"TaintToleration"})
    q.move_for_plugins({"NodeResourcesFit"})   # not what rejected it
    clock.t += 30
    assert q.pop_nowait() is None
    q.move_for_plugins(None)
    assert q.pop_nowait().info.name == "p"


def test_queue_event_during_attempt_sends_pod_to_backoff():
    clock = Clock()
    q = SchedulingQueue(clock)
    q.add(PodInfo(pod("p")))
    qp = q.pop_nowait()
    q.move_for_plugins(None)     # a node was added while the pod was being tried
    q.requeue_unschedulable(qp)
    clock.t += 1.01
    assert q.pop_nowait() is not None


def test_queue_backoff_doubles_up_to_ten_seconds():
    q = SchedulingQueue(Clock())
    qp = type("QP", (), {})()
    for attempts, want in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10)]:
        qp.attempts = attempts
        assert q.backoff_duration(qp) == want


def test_gated_pods_wait_for_their_gates():
    q = SchedulingQueue(Clock())
    gated = pod("g", spec={"schedulingGates": [{"name": "x"}]})
    q.add(PodInfo(gated))
    assert q.pop_nowait() is None
    del gated["spec"]["schedulingGates"]
    q.update(PodInfo(gated))
    assert q.pop_nowait().info.name == "g"


# -- preemption ----------------------------------------------------------------------------------------------

def _preemption_world(nodes, pods):
    w = World(nodes, pods)
    return w, DefaultPreemption(w.framework, rng=random.Random(3))


def _fail(w, p):
    with pytest.raises(FitError) as e:
        w.framework.schedule_pod(p)
    return e.value


def test_preemption_picks_fewest_lowest_priority_victims():
    nodes = [node("a", cpu="2"), node("b", cpu="2")]
    pods = [pod("a-low", cpu="1", node_name="a", priority=1, start_time="2026-01-01T00:00:00Z"),
            pod("a-mid", cpu="1", node_name="a", priority=5, start_time="2026-01-01T00:00:00Z"),
            pod("b-mid", cpu="1", node_name="b", priority=5, start_time="2026-01-01T00:00:00Z"),
            pod("b-mid2", cpu="1", node_name="b", priority=5, start_time="2026-01-01T00:00:00Z")]
    w, pre = _preemption_world(nodes, pods)
    p = PodInfo(pod("high", cpu="1", priority=10))
    err = _fail(w, p)
    assert str(err) == "0/2 nodes are available: 2 Insufficient cpu."
    r = pre.post_filter(err.state, p, err.diagnosis)
    assert r.nominated == "a"
    assert [v.name for v in r.candidate.victims] == ["a-low"]
    assert r.message == "preemption: found a potential placement for pod on node a, preempting 1 victims"


def test_preemption_not_helpful_messages():
    w, pre = _preemption_world([node("a", cpu="1", taints=TAINT), node("b", cpu="1")],
                               [pod("x", cpu="1", node_name="b", priority=100)])
    p = PodInfo(pod("p", cpu="1", priority=10))
    err = _fail(w, p)
    r = pre.post_filter(err.state, p, err.diagnosis)
    assert r.nominated == ""
    assert r.message == ("preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, "
                         "1 Preemption is not helpful for scheduling.")
    never = PodInfo(pod("p", cpu="1", priority=1000, spec={"preemptionPolicy": "Never"}))
    err = _fail(w, never)
    r = pre.post_filter(err.state, never, err.diagnosis)
    assert r.nominated is None and r.message == "preemption: not eligible due to preemptionPolicy=Never."


def test_preemption_reprieves_victims_that_are_not_needed():
    nodes = [node("a", cpu="3")]
    pods = [pod("v1", cpu="1", node_name="a", priority=1, start_time="2026-01-01T00:00:01Z"),
            pod("v2", cpu="1", node_name="a", priority=2, start_time="2026-01-01T00:00:00Z"),
            pod("v3", cpu="1", node_name="a", priority=3, start_time="2026-01-01T00:00:00Z")]
    w, pre = _preemption_world(nodes, pods)
    p = PodInfo(pod("high", cpu="2", priority=10))
    err = _fail(w, p)
    r = pre.post_filter(err.state, p, err.diagnosis)
    # the two most important are tried first: v3 stays, v2 must go with v1
    assert sorted(v.name for v in r.candidate.victims) == ["v1", "v2"]


def test_pdb_protected_pods_are_victims_last():
    pods = [PodInfo(pod("a", labels={"app": "db"})), PodInfo(pod("b", labels={"app": "db"})),
            PodInfo(pod("c", labels={"app": "web"}))]
    pdb = {"metadata": {"name": "db", "namespace": "default"}, "spec": {"selector": {"matchLabels": {"app": "db"}}},
           "status": {"disruptionsAllowed": 1}}
    violating, ok = filter_pdb_violations(pods, [pdb])
    assert [p.name for p in violating] == ["b"] and [p.name for p in ok] == ["a", "c"]


def test_candidate_selection_order():
    pre = DefaultPreemption(Framework(Cache()))
    low = PodInfo(pod("l", priority=1, start_time="2026-01-01T00:00:00Z"))
    mid = PodInfo(pod("m", priority=5, start_time="2026-01-01T00:00:00Z"))
    assert pre.select_candidate([Candidate("x", [mid], 0), Candidate("y", [low], 1)]).node == "x"  # PDBs first
    assert pre.select_candidate([Candidate("x", [mid], 0), Candidate("y", [low], 0)]).node == "y"
    assert pre.select_candidate([Candidate("x", [low, low], 0), Candidate("y", [low], 0)]).node == "y"
    newer = PodInfo(pod("n", priority=1, start_time="2026-06-01T00:00:00Z"))
    assert pre.select_candidate([Candidate("x", [low], 0), Candidate("y", [newer], 0)]).node == "y"


def test_nominated_pods_hold_their_room():
    w = World([node("a", cpu="2"), node("b", cpu="1")])
    nominated = PodInfo(pod("n", cpu="2", priority=100, spec={}))
    w.queue.nominate(nominated, "a")
    # a lower-priority pod must not take the room the nominated pod is waiting for
    assert w.schedule(pod("low", cpu="1", priority=1)) == "b"
    with pytest.raises(FitError):
        w.schedule(pod("low2", cpu="2", priority=1))
    # a higher-priority one may
    assert w.schedule(pod("higher", cpu="2", priority=1000)) == "a"


def test_status_helpers():
    st = Status(2, "x", "y")
    assert st.message == "x, y" and not st.unresolvable
