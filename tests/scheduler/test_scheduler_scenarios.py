"""The scheduler inside a real `shim up`, driven through the official Python client.

Nodes are plain Node objects created through the API (no kubelets), with different labels,
taints, capacities and Ready conditions. Each test starts from an empty set of nodes on a
control plane of this module's own, and checks where pods land, or the upstream message on
the PodScheduled condition and in the FailedScheduling event.
"""
from __future__ import annotations

import json
import os
import time

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from conftest import Server

IMAGE = "registry.k8s.io/pause:3.10"


class Kube:
    """Thin dict-in, dict-out helpers over the official client."""

    def __init__(self, api: client.ApiClient):
        self.api = api
        self.core = client.CoreV1Api(api)
        self.sched = client.SchedulingV1Api(api)
        self.policy = client.PolicyV1Api(api)

    def _raw(self, fn, *args, **kw) -> dict:
        return json.loads(fn(*args, _preload_content=False, **kw).data)

    def create_node(self, obj: dict) -> dict:
        return self._raw(self.core.create_node, obj)

    def nodes(self) -> list[dict]:
        return self._raw(self.core.list_node)["items"]

    def node(self, name: str) -> dict:
        return self._raw(self.core.read_node, name)

    def create_pod(self, ns: str, obj: dict) -> dict:
        return self._raw(self.core.create_namespaced_pod, ns, obj)

    def pod(self, ns: str, name: str) -> dict:
        return self._raw(self.core.read_namespaced_pod, name, ns)

    def pods(self, ns: str) -> list[dict]:
        return self._raw(self.core.list_namespaced_pod, ns)["items"]

    def events(self, ns: str, name: str) -> list[dict]:
        return self._raw(self.core.list_namespaced_event, ns,
                         field_selector=f"involvedObject.name={name}")["items"]


@pytest.fixture(scope="module")
def sched_server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("shim-sched")).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def kube(sched_server):
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(sched_server.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        yield Kube(api)


@pytest.fixture
def ns(kube, request):
    """A namespace for the test, on a cluster without nodes; everything is removed afterwards."""
    for n in kube.nodes():
        kube.core.delete_node(n["metadata"]["name"])
    time.sleep(0.3)  # the scheduler's cache forgets them
    name = "s-" + request.node.name.lower().replace("_", "-")[:30].strip("-") + "-" + os.urandom(2).hex()
    name = "".join(ch for ch in name if ch.isalnum() or ch == "-").strip("-")
    kube.core.create_namespace({"metadata": {"name": name}})
    yield name
    for p in kube.pods(name):
        try:
            kube.core.delete_namespaced_pod(p["metadata"]["name"], name, grace_period_seconds=0)
        except ApiException:
            pass
    for n in kube.nodes():
        kube.core.delete_node(n["metadata"]["name"])
    kube.core.delete_namespace(name)


def node(name: str, cpu: str = "4", memory: str = "8Gi", pods: str = "110", labels: dict | None = None,
         taints: list | None = None, unschedulable: bool = False, ready: str = "True") -> dict:
    alloc = {"cpu": cpu, "memory": memory, "pods": pods}
    obj = {"apiVersion": "v1", "kind": "Node",
           "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
           "spec": {"unschedulable": unschedulable} if unschedulable else {},
           "status": {"capacity": alloc, "allocatable": alloc,
                      "conditions": [{"type": "Ready", "status": ready, "reason": "Test"}]}}
    if taints:
        obj["spec"]["taints"] = taints
    return obj


def pod(name: str, cpu: str | None = None, memory: str | None = None, labels: dict | None = None,
        **spec) -> dict:
    req = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    c = {"name": "c", "image": IMAGE, "resources": {"requests": req} if req else {}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [c], **spec}}


def wait_for(fn, timeout: float = 20, interval: float = 0.1, what: str = "condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


def bound_node(kube: Kube, ns: str, name: str, timeout: float = 20) -> str:
    return wait_for(lambda: (kube.pod(ns, name).get("spec") or {}).get("nodeName"), timeout,
                    what=f"pod {name} to be bound")


def scheduled_condition(p: dict) -> dict | None:
    return next((c for c in (p.get("status") or {}).get("conditions") or () if c["type"] == "PodScheduled"), None)


def wait_unschedulable(kube: Kube, ns: str, name: str, message: str, timeout: float = 20) -> dict:
    """Wait until the pod's PodScheduled condition carries `message` (it settles as the
    scheduler's informers catch up with nodes just created)."""
    def check():
        cond = scheduled_condition(kube.pod(ns, name))
        return cond if cond and cond.get("message") == message else None
    try:
        return wait_for(check, timeout, what=f"pod {name} unschedulable with {message!r}")
    except AssertionError:
        raise AssertionError(f"condition: {scheduled_condition(kube.pod(ns, name))}")


def add_nodes(kube: Kube, *objs: dict) -> None:
    for o in objs:
        kube.create_node(o)
    time.sleep(0.3)  # let the scheduler's node informer see them first


# -- placement ----------------------------------------------------------------------------------------------

def test_pod_lands_on_least_allocated_node_and_gets_scheduled_event(kube, ns):
    add_nodes(kube, node("small", cpu="2", memory="4Gi"), node("big", cpu="16", memory="64Gi"),
              node("mid", cpu="4", memory="8Gi"))
    kube.create_pod(ns, pod("web", cpu="500m", memory="512Mi"))
    assert bound_node(kube, ns, "web") == "big"
    p = kube.pod(ns, "web")
    cond = scheduled_condition(p)
    assert cond["status"] == "True"
    ev = wait_for(lambda: [e for e in kube.events(ns, "web") if e["reason"] == "Scheduled"], what="Scheduled event")
    assert ev[0]["message"] == f"Successfully assigned {ns}/web to big"
    assert ev[0]["type"] == "Normal" and ev[0]["source"]["component"] == "default-scheduler"
    assert ev[0]["involvedObject"]["uid"] == p["metadata"]["uid"]


def test_node_selector_required_affinity_and_preferred_affinity(kube, ns):
    add_nodes(kube, node("a", labels={"disk": "hdd", "zone": "z1"}), node("b", labels={"disk": "ssd", "zone": "z1"}),
              node("c", labels={"disk": "ssd", "zone": "z2"}))
    kube.create_pod(ns, pod("sel", nodeSelector={"disk": "hdd"}))
    assert bound_node(kube, ns, "sel") == "a"
    kube.create_pod(ns, pod("aff", affinity={"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]},
                                  {"key": "zone", "operator": "NotIn", "values": ["z1"]}]}]}}}))
    assert bound_node(kube, ns, "aff") == "c"
    kube.create_pod(ns, pod("pref", affinity={"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "preference": {"matchExpressions": [{"key": "zone", "operator": "In",
                                                                 "values": ["z1"]},
                                                                {"key": "disk", "operator": "In",
                                                                 "values": ["ssd"]}]}}]}}))
    assert bound_node(kube, ns, "pref") == "b"


def test_taints_and_tolerations(kube, ns):
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    add_nodes(kube, node("gpu", cpu="64", memory="256Gi", taints=[taint]), node("plain", cpu="2"),
              node("soft", cpu="64", memory="256Gi", taints=[{"key": "spot", "effect": "PreferNoSchedule"}]))
    # the big tainted node is out of reach; the soft-tainted big node loses to the untainted one
    kube.create_pod(ns, pod("p1", cpu="100m"))
    assert bound_node(kube, ns, "p1") == "plain"
    kube.create_pod(ns, pod("p2", cpu="100m", tolerations=[
        {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]))
    assert bound_node(kube, ns, "p2") == "gpu"


# -- why a pod does not fit -------------------------------------------------------------------------------------

def test_unschedulable_message_condition_and_event(kube, ns):
    add_nodes(kube, node("tainted", cpu="8", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]),
              node("n1", cpu="1"), node("n2", cpu="1"))
    kube.create_pod(ns, pod("big", cpu="1500m"))
    msg = ("0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 Insufficient cpu. "
           "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")
    cond = wait_unschedulable(kube, ns, "big", msg)
    assert cond["status"] == "False" and cond["reason"] == "Unschedulable"
    ev = wait_for(lambda: [e for e in kube.events(ns, "big") if e["reason"] == "FailedScheduling"
                           and e["message"] == msg], what="FailedScheduling event")
    assert ev[0]["type"] == "Warning" and ev[0]["source"]["component"] == "default-scheduler"
    assert kube.pod(ns, "big")["status"]["phase"] == "Pending"


def test_resolvable_shortage_mentions_missing_victims(kube, ns):
    add_nodes(kube, node("n1", cpu="1"), node("n2", cpu="4", pods="1"))
    for i, n in enumerate(["n1", "n2"]):
        kube.create_pod(ns, pod(f"filler{i}", cpu="600m", nodeSelector={"kubernetes.io/hostname": n}))
        bound_node(kube, ns, f"filler{i}")
    kube.create_pod(ns, pod("p", cpu="500m"))
    wait_unschedulable(kube, ns, "p", (
        "0/2 nodes are available: 1 Insufficient cpu, 1 Too many pods. preemption: 0/2 nodes are available: "
        "2 No preemption victims found for incoming pod."))


def test_unschedulable_and_not_ready_nodes(kube, ns):
    add_nodes(kube, node("cordoned", unschedulable=True), node("down", ready="False"),
              node("lost", ready="Unknown"))
    # the node-condition tainter marks the last two
    wait_for(lambda: {t["key"] for t in (kube.node("down")["spec"].get("taints") or [])} ==
             {"node.kubernetes.io/not-ready"}, what="not-ready taint")
    wait_for(lambda: {t["key"] for t in (kube.node("lost")["spec"].get("taints") or [])} ==
             {"node.kubernetes.io/unreachable"}, what="unreachable taint")
    kube.create_pod(ns, pod("p"))
    wait_unschedulable(kube, ns, "p", (
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) had untolerated taint(s). "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."))
    # the node becomes Ready: the taint goes and the pod follows
    n = kube.node("down")
    n["status"]["conditions"] = [{"type": "Ready", "status": "True", "reason": "Test"}]
    kube.core.replace_node_status("down", n)
    assert bound_node(kube, ns, "p") == "down"


def test_no_nodes_at_all(kube, ns):
    kube.create_pod(ns, pod("p"))
    wait_unschedulable(kube, ns, "p", "no nodes available to schedule pods")


def test_pending_pod_is_scheduled_when_a_node_is_added(kube, ns):
    add_nodes(kube, node("tiny", cpu="500m"))
    kube.create_pod(ns, pod("p", cpu="2"))
    wait_unschedulable(kube, ns, "p", "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are "
                                      "available: 1 Preemption is not helpful for scheduling.")
    kube.create_node(node("roomy", cpu="8"))
    assert bound_node(kube, ns, "p") == "roomy"


def test_deleting_a_pod_makes_room(kube, ns):
    add_nodes(kube, node("only", cpu="1"))
    kube.create_pod(ns, pod("first", cpu="800m"))
    bound_node(kube, ns, "first")
    kube.create_pod(ns, pod("second", cpu="800m"))
    wait_for(lambda: scheduled_condition(kube.pod(ns, "second")), what="a verdict on the second pod")
    kube.core.delete_namespaced_pod("first", ns, grace_period_seconds=0)
    assert bound_node(kube, ns, "second") == "only"


def test_other_scheduler_names_are_left_alone(kube, ns):
    add_nodes(kube, node("n1"))
    kube.create_pod(ns, pod("mine"))
    kube.create_pod(ns, pod("theirs", schedulerName="my-custom-scheduler"))
    bound_node(kube, ns, "mine")
    time.sleep(1)
    p = kube.pod(ns, "theirs")
    assert not p["spec"].get("nodeName")
    assert scheduled_condition(p) is None
    assert kube.events(ns, "theirs") == []


def test_host_port_conflict(kube, ns):
    add_nodes(kube, node("a"), node("b"))
    port = [{"containerPort": 80, "hostPort": 8080}]
    for name in ("p1", "p2"):
        obj = pod(name)
        obj["spec"]["containers"][0]["ports"] = port
        kube.create_pod(ns, obj)
    assert {bound_node(kube, ns, "p1"), bound_node(kube, ns, "p2")} == {"a", "b"}
    obj = pod("p3")
    obj["spec"]["containers"][0]["ports"] = port
    kube.create_pod(ns, obj)
    wait_unschedulable(kube, ns, "p3", (
        "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports. preemption: "
        "0/2 nodes are available: 2 No preemption victims found for incoming pod."))


# -- pods and pods --------------------------------------------------------------------------------------------------

def test_pod_anti_affinity_and_affinity(kube, ns):
    add_nodes(kube, node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z1"}),
              node("c", labels={"zone": "z2"}))
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}]}}
    kube.create_pod(ns, pod("db1", labels={"app": "db"}, affinity=anti))
    first = bound_node(kube, ns, "db1")
    kube.create_pod(ns, pod("db2", labels={"app": "db"}, affinity=anti))
    second = bound_node(kube, ns, "db2")
    zone = {"a": "z1", "b": "z1", "c": "z2"}
    assert zone[first] != zone[second]
    kube.create_pod(ns, pod("db3", labels={"app": "db"}, affinity=anti))
    wait_unschedulable(kube, ns, "db3", (
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes are "
        "available: 3 No preemption victims found for incoming pod."))
    # affinity: next to the db in zone z2 only
    kube.create_pod(ns, pod("cache", affinity={"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}))
    assert bound_node(kube, ns, "cache") in (first, second)


def test_topology_spread_do_not_schedule(kube, ns):
    add_nodes(kube, node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"}))
    spread = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "web"}}}]
    zones = []
    for i in range(4):
        kube.create_pod(ns, pod(f"w{i}", labels={"app": "web"}, topologySpreadConstraints=spread))
        zones.append(bound_node(kube, ns, f"w{i}"))
    assert sorted(zones) == ["a", "a", "b", "b"]
    # a zone without room: the other zone would exceed the skew
    kube.core.patch_node("a", {"spec": {"taints": [{"key": "full", "effect": "NoSchedule"}]}})
    time.sleep(0.3)
    kube.create_pod(ns, pod("w4", labels={"app": "web"}, topologySpreadConstraints=spread))
    kube.create_pod(ns, pod("w5", labels={"app": "web"}, topologySpreadConstraints=spread))
    assert bound_node(kube, ns, "w4") == "b"
    wait_unschedulable(kube, ns, "w5", (
        "0/2 nodes are available: 1 node(s) didn't match pod topology spread constraints, 1 node(s) had "
        "untolerated taint(s). preemption: 0/2 nodes are available: 1 No preemption victims found for "
        "incoming pod, 1 Preemption is not helpful for scheduling."))


# -- priority and preemption ------------------------------------------------------------------------------------

def test_priority_class_admission(kube, ns):
    kube.sched.create_priority_class({"metadata": {"name": f"{ns}-high"}, "value": 1000})
    try:
        p = kube.create_pod(ns, pod("p", priorityClassName=f"{ns}-high"))
        assert p["spec"]["priority"] == 1000 and p["spec"]["preemptionPolicy"] == "PreemptLowerPriority"
        p = kube.create_pod(ns, pod("sys", priorityClassName="system-node-critical"))
        assert p["spec"]["priority"] == 2000001000
        with pytest.raises(ApiException) as e:
            kube.create_pod(ns, pod("missing", priorityClassName="nope"))
        assert e.value.status == 403
        assert json.loads(e.value.body)["message"] == \
            'pods "missing" is forbidden: no PriorityClass with name nope was found'
        p = kube.create_pod(ns, pod("plain"))
        assert p["spec"]["priority"] == 0 and "priorityClassName" not in p["spec"]
        # a global default applies to pods without a class
        kube.sched.create_priority_class({"metadata": {"name": f"{ns}-default"}, "value": 7, "globalDefault": True,
                                          "preemptionPolicy": "Never"})
        try:
            p = kube.create_pod(ns, pod("defaulted"))
            assert (p["spec"]["priority"], p["spec"]["priorityClassName"], p["spec"]["preemptionPolicy"]) == \
                (7, f"{ns}-default", "Never")
            with pytest.raises(ApiException) as e:
                kube.sched.create_priority_class({"metadata": {"name": f"{ns}-other"}, "value": 8,
                                                  "globalDefault": True})
            assert e.value.status == 403
        finally:
            kube.sched.delete_priority_class(f"{ns}-default")
    finally:
        kube.sched.delete_priority_class(f"{ns}-high")


def test_built_in_priority_classes_exist(kube):
    classes = {c.metadata.name: c.value for c in kube.sched.list_priority_class().items}
    assert classes["system-cluster-critical"] == 2000000000
    assert classes["system-node-critical"] == 2000001000


def test_higher_priority_pod_preempts_lower_priority_pod(kube, ns):
    kube.sched.create_priority_class({"metadata": {"name": f"{ns}-low"}, "value": 10})
    kube.sched.create_priority_class({"metadata": {"name": f"{ns}-high"}, "value": 1000})
    try:
        add_nodes(kube, node("only", cpu="2"))
        kube.create_pod(ns, pod("victim", cpu="1500m", priorityClassName=f"{ns}-low"))
        assert bound_node(kube, ns, "victim") == "only"
        kube.create_pod(ns, pod("vip", cpu="1", priorityClassName=f"{ns}-high"))
        # the victim is evicted gracefully and the preemptor waits for it, nominated to the node
        vip = wait_for(lambda: (lambda p: p if p["status"].get("nominatedNodeName") else None)(
            kube.pod(ns, "vip")), what="nominatedNodeName")
        assert vip["status"]["nominatedNodeName"] == "only"
        assert scheduled_condition(vip)["message"] == (
            "0/1 nodes are available: 1 Insufficient cpu. preemption: found a potential placement for pod "
            "on node only, preempting 1 victims")
        victim = wait_for(lambda: (lambda p: p if p["metadata"].get("deletionTimestamp") else None)(
            kube.pod(ns, "victim")), what="victim terminating")
        cond = next(c for c in victim["status"]["conditions"] if c["type"] == "DisruptionTarget")
        assert (cond["status"], cond["reason"]) == ("True", "PreemptionByScheduler")
        ev = wait_for(lambda: [e for e in kube.events(ns, "victim") if e["reason"] == "Preempted"],
                      what="Preempted event")
        assert ev[0]["message"] == f"Preempted by pod {vip['metadata']['uid']} on node only"
        assert not kube.pod(ns, "vip")["spec"].get("nodeName")
        # the kubelet would now stop the victim's containers and delete it for good
        kube.core.delete_namespaced_pod("victim", ns, grace_period_seconds=0)
        assert bound_node(kube, ns, "vip") == "only"
    finally:
        kube.sched.delete_priority_class(f"{ns}-low")
        kube.sched.delete_priority_class(f"{ns}-high")


def test_equal_priority_does_not_preempt(kube, ns):
    add_nodes(kube, node("only", cpu="1"))
    kube.create_pod(ns, pod("first", cpu="800m"))
    bound_node(kube, ns, "first")
    kube.create_pod(ns, pod("second", cpu="800m"))
    wait_unschedulable(kube, ns, "second", (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 No preemption victims found for incoming pod."))
    assert not kube.pod(ns, "first")["metadata"].get("deletionTimestamp")


def test_higher_priority_pods_are_scheduled_first(kube, ns):
    kube.sched.create_priority_class({"metadata": {"name": f"{ns}-high"}, "value": 100,
                                      "preemptionPolicy": "Never"})
    try:
        # no room at first: both wait; then one slot opens and the high-priority pod takes it
        add_nodes(kube, node("n", cpu="1", pods="1"))
        kube.create_pod(ns, pod("filler", nodeSelector={"kubernetes.io/hostname": "n"}))
        bound_node(kube, ns, "filler")
        kube.create_pod(ns, pod("low"))
        kube.create_pod(ns, pod("high", priorityClassName=f"{ns}-high"))
        wait_for(lambda: scheduled_condition(kube.pod(ns, "low")), what="low tried")
        wait_for(lambda: scheduled_condition(kube.pod(ns, "high")), what="high tried")
        time.sleep(2)  # both out of their first backoff: the queue, not the backoff, decides
        kube.core.delete_namespaced_pod("filler", ns, grace_period_seconds=0)
        assert bound_node(kube, ns, "high") == "n"
        time.sleep(0.5)
        assert not kube.pod(ns, "low")["spec"].get("nodeName")
    finally:
        kube.sched.delete_priority_class(f"{ns}-high")
