"""DaemonSets end to end: the controller manager's DaemonSet controller and the scheduler of a
real `shim up`, driven with kubectl and the official Python client.

There is no kubelet: nodes are Node objects made here (Ready, with allocatable resources),
and the test plays kubelet for the pods bound to them, reporting them running and ready
through pods/status and finishing the deletion of terminating ones. The session's other
tests share the server, so every node name here is unique and every DaemonSet selects only
its test's nodes (a nodeSelector on a per-test label); nodes are deleted afterwards.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.timeout(180)

DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def wait_for(fn, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class Cluster:
    """Nodes of one test, and the kubelet's part for the pods on them."""

    def __init__(self, api_client, ns: str):
        self.api = api_client
        self.v1 = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.ns = ns
        self.tag = "ds-" + os.urandom(3).hex()  # the label value every node of this test carries
        self.nodes: list[str] = []

    def d(self, obj) -> dict:
        return self.api.sanitize_for_serialization(obj)

    # -- nodes ---------------------------------------------------------------------------------
    def add_node(self, suffix: str, labels: dict | None = None, taints: list | None = None) -> str:
        name = f"{self.tag}-{suffix}"
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "ds-test": self.tag,
                                                      **(labels or {})}},
                "spec": {"taints": taints} if taints else {}}
        self.v1.create_node(body)
        self.nodes.append(name)
        alloc = {"cpu": "4", "memory": "8Gi", "pods": "110"}
        self.v1.patch_node_status(name, {"status": {
            "capacity": alloc, "allocatable": alloc,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "lastHeartbeatTime": now(), "lastTransitionTime": now()}]}})
        # the node-condition tainter takes the not-ready taint every new node starts with away
        wait_for(lambda: not any(t.key == "node.kubernetes.io/not-ready"
                                 for t in self.v1.read_node(name).spec.taints or ()),
                 what=f"node {name} without the not-ready taint")
        return name

    def delete_node(self, name: str) -> None:
        self.v1.delete_node(name)
        self.nodes.remove(name)

    def cleanup(self) -> None:
        for name in list(self.nodes):
            try:
                self.v1.delete_node(name)
            except ApiException:
                pass

    # -- objects --------------------------------------------------------------------------------
    def daemonset(self, name: str, image: str = "busybox:1", strategy: dict | None = None,
                  node_selector: dict | None = None, **pod_spec) -> dict:
        spec = {"selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                             "spec": {"nodeSelector": {"ds-test": self.tag, **(node_selector or {})},
                                      "containers": [{"name": "app", "image": image}], **pod_spec}}}
        if strategy:
            spec["updateStrategy"] = strategy
        body = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name}, "spec": spec}
        return self.d(self.apps.create_namespaced_daemon_set(self.ns, body))

    def ds(self, name: str) -> dict:
        return self.d(self.apps.read_namespaced_daemon_set(name, self.ns))

    def pods(self, name: str, live: bool = True) -> list[dict]:
        items = [self.d(p) for p in self.v1.list_namespaced_pod(self.ns, label_selector=f"app={name}").items]
        if live:
            items = [p for p in items if not p["metadata"].get("deletionTimestamp")
                     and p["status"].get("phase") not in ("Succeeded", "Failed")]
        return items

    def revisions(self, name: str) -> list[dict]:
        items = self.apps.list_namespaced_controller_revision(self.ns, label_selector=f"app={name}").items
        return sorted((self.d(r) for r in items), key=lambda r: r["revision"])

    def events(self, reason: str) -> list[dict]:
        return [self.d(e) for e in self.v1.list_namespaced_event(self.ns).items if e.reason == reason]

    # -- the kubelet's part ---------------------------------------------------------------------
    def mark_ready(self, pod: dict) -> None:
        try:
            self.v1.patch_namespaced_pod_status(pod["metadata"]["name"], self.ns, {"status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now()},
                               {"type": "ContainersReady", "status": "True", "lastTransitionTime": now()}]}})
        except ApiException as e:
            if e.status != 404:
                raise

    def finish_terminating(self) -> int:
        """Remove the pods being deleted from our nodes (their containers have stopped)."""
        n = 0
        for p in self.v1.list_namespaced_pod(self.ns).items:
            if p.metadata.deletion_timestamp is not None:
                try:
                    self.v1.delete_namespaced_pod(p.metadata.name, self.ns, grace_period_seconds=0)
                    n += 1
                except ApiException as e:
                    if e.status != 404:
                        raise
        return n

    def kubelet_step(self, name: str, max_ready: int = 100) -> None:
        """Finish terminating pods; start (make ready) up to max_ready bound pods not ready yet."""
        self.finish_terminating()
        started = 0
        for p in self.pods(name):
            if started >= max_ready:
                break
            if p["spec"].get("nodeName") and not is_ready(p):
                self.mark_ready(p)
                started += 1

    def settle(self, name: str, check=None, timeout: float = 60.0) -> dict:
        """Play kubelet until the DaemonSet's status says every wanted pod is updated and
        available; `check(ds, pods)` is called on the way."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            ds = self.ds(name)
            if check is not None:
                check(ds, self.pods(name))
            st = ds.get("status") or {}
            want = st.get("desiredNumberScheduled", 0)
            if (st.get("observedGeneration", 0) >= ds["metadata"]["generation"]
                    and st.get("updatedNumberScheduled", 0) == want and st.get("numberAvailable", 0) == want
                    and st.get("currentNumberScheduled", 0) == want and not st.get("numberUnavailable")
                    and len(self.pods(name)) == want
                    and all(is_ready(p) for p in self.pods(name))):
                return ds
            self.kubelet_step(name)
            time.sleep(0.2)
        raise AssertionError(f"daemon set {name} did not settle: {self.ds(name).get('status')}")


def is_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or ())


def target(pod: dict) -> str:
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    return terms[0]["matchFields"][0]["values"][0]


def by_node(pods: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for p in pods:
        out.setdefault(target(p), []).append(p)
    return out


@pytest.fixture
def cluster(api_client, namespace):
    c = Cluster(api_client, namespace)
    yield c
    c.cleanup()


# -- tests ------------------------------------------------------------------------------------------

def test_one_daemon_pod_per_node(cluster, kubectl):
    nodes = [cluster.add_node(s) for s in ("a", "b", "c")]
    ds = cluster.daemonset("agent", hostNetwork=True)
    assert ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"
    pods = wait_for(lambda: (lambda p: p if len(p) == 3 else None)(cluster.pods("agent")), what="3 pods")
    assert sorted(target(p) for p in pods) == sorted(nodes)
    revs = wait_for(lambda: cluster.revisions("agent"), what="a ControllerRevision")
    assert len(revs) == 1 and revs[0]["revision"] == 1
    rev_hash = revs[0]["metadata"]["labels"]["controller-revision-hash"]
    assert revs[0]["metadata"]["name"] == f"agent-{rev_hash}"
    assert revs[0]["data"]["spec"]["template"]["$patch"] == "replace"
    assert revs[0]["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    for p in pods:
        md, spec = p["metadata"], p["spec"]
        assert md["generateName"] == "agent-"
        assert md["labels"] == {"app": "agent", "controller-revision-hash": rev_hash, "pod-template-generation": "1"}
        assert md["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                                          "uid": ds["metadata"]["uid"], "controller": True,
                                          "blockOwnerDeletion": True}]
        assert "nodeName" not in spec or spec["nodeName"] == target(p)  # the scheduler binds it
        assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                    "values": [target(p)]}]}]}
        assert spec["tolerations"] == DEFAULT_TOLERATIONS + [
            {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule"}]
    # the real scheduler binds each pod to its node
    wait_for(lambda: all(p["spec"].get("nodeName") == target(p) for p in cluster.pods("agent")), what="binding")

    st = wait_for(lambda: (lambda s: s if s.get("currentNumberScheduled") == 3 else None)(
        cluster.ds("agent").get("status") or {}), what="status")
    assert st["desiredNumberScheduled"] == 3 and st["numberReady"] == 0 and st["numberUnavailable"] == 3
    assert st["updatedNumberScheduled"] == 3 and st["numberMisscheduled"] == 0
    assert "numberAvailable" not in st  # zero: left out, as upstream serialises it

    ds = cluster.settle("agent")
    st = ds["status"]
    assert (st["desiredNumberScheduled"], st["currentNumberScheduled"], st["numberReady"],
            st["numberAvailable"], st["updatedNumberScheduled"], st["numberMisscheduled"]) == (3, 3, 3, 3, 3, 0)
    assert st["observedGeneration"] == ds["metadata"]["generation"] == 1
    created = wait_for(lambda: (lambda e: e if len(e) >= 3 else None)(cluster.events("SuccessfulCreate")),
                       what="events")
    assert all(e["source"]["component"] == "daemonset-controller" and e["involvedObject"]["kind"] == "DaemonSet"
               and e["message"].startswith("Created pod: agent-") for e in created)

    out = kubectl("get", "ds", "agent", "-n", cluster.ns).splitlines()
    assert out[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE",
                              "SELECTOR", "AGE"]
    assert out[1].split()[:7] == ["agent", "3", "3", "3", "3", "3", f"ds-test={cluster.tag}"]
    out = kubectl("get", "controllerrevisions", "-n", cluster.ns).splitlines()
    assert out[1].split()[:3] == [f"agent-{rev_hash}", "daemonset.apps/agent", "1"]
    out = kubectl("rollout", "status", "ds/agent", "-n", cluster.ns, "--timeout=10s")
    assert 'daemon set "agent" successfully rolled out' in out
    out = kubectl("describe", "ds", "agent", "-n", cluster.ns)
    assert "Desired Number of Nodes Scheduled: 3" in out and "Number of Nodes Misscheduled: 0" in out
    assert "Pods Status:  3 Running / 0 Waiting / 0 Succeeded / 0 Failed" in out
    assert "SuccessfulCreate" in out and "daemonset-controller" in out


def test_node_selector_taints_and_tolerations(cluster):
    a = cluster.add_node("a", labels={"role": "edge"})
    b = cluster.add_node("b")
    c = cluster.add_node("c", labels={"role": "edge"},
                         taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
    cluster.daemonset("edge", node_selector={"role": "edge"})
    cluster.daemonset("tolerant", node_selector={"role": "edge"},
                      tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}])
    wait_for(lambda: sorted(target(p) for p in cluster.pods("edge")) == [a], what="edge pod on a only")
    wait_for(lambda: sorted(target(p) for p in cluster.pods("tolerant")) == [a, c], what="tolerant on a and c")
    tol = cluster.pods("tolerant")[0]["spec"]["tolerations"]
    assert tol[0]["key"] == "dedicated" and tol[1:] == DEFAULT_TOLERATIONS  # no hostNetwork: no network taint

    # b gains the label: it gets a pod
    cluster.v1.patch_node(b, {"metadata": {"labels": {"role": "edge"}}})
    wait_for(lambda: sorted(target(p) for p in cluster.pods("edge")) == [a, b], what="edge pod on b")
    cluster.settle("edge")
    # a NoSchedule taint keeps the pod that is there, a NoExecute one evicts it. (As in
    # v1.37, a node change that neither needs a pod nor evicts one does not sync the
    # DaemonSet, so its status shows the pod as misscheduled only at the next sync.)
    cluster.v1.patch_node(b, {"spec": {"taints": [{"key": "maintenance", "effect": "NoSchedule"}]}})
    time.sleep(1)
    assert sorted(target(p) for p in cluster.pods("edge")) == [a, b]
    on_b = [p for p in cluster.pods("edge") if target(p) == b][0]
    cluster.mark_ready(on_b)  # any pod change syncs the DaemonSet
    wait_for(lambda: (lambda s: s.get("desiredNumberScheduled") == 1 and s.get("numberMisscheduled") == 1)(
        cluster.ds("edge")["status"]), what="misscheduled")
    cluster.v1.patch_node(b, {"spec": {"taints": [{"key": "maintenance", "effect": "NoExecute"}]}})
    wait_for(lambda: [target(p) for p in cluster.pods("edge")] == [a], what="pod on b deleted")
    # a loses the label: its pod goes
    cluster.v1.patch_node(a, {"metadata": {"labels": {"role": None}}})
    wait_for(lambda: cluster.pods("edge") == [], what="no edge pods")
    # the pods on a and b terminate (the kubelet's part), and the status counts nothing
    wait_for(lambda: cluster.finish_terminating() + 1 and (lambda s: (
        s.get("desiredNumberScheduled"), s.get("currentNumberScheduled"), s.get("numberMisscheduled"))
        == (0, 0, 0))(cluster.ds("edge")["status"]), what="edge status")
    deleted = cluster.events("SuccessfulDelete")
    assert any(e["involvedObject"]["name"] == "edge" for e in deleted)
    # node affinity in the template counts like the nodeSelector
    cluster.apps.patch_namespaced_daemon_set("tolerant", cluster.ns, {"spec": {"template": {"spec": {
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [c]}]}]}}}}}}})
    wait_for(lambda: [target(p) for p in cluster.pods("tolerant")] == [c], what="tolerant on c only")


def test_nodes_added_and_removed(cluster):
    cluster.add_node("a")
    cluster.add_node("b")
    cluster.daemonset("agent")
    cluster.settle("agent")
    c = cluster.add_node("c")
    wait_for(lambda: c in [target(p) for p in cluster.pods("agent")], what="pod for the new node")
    ds = cluster.settle("agent")
    assert ds["status"]["desiredNumberScheduled"] == 3
    cluster.delete_node(c)
    wait_for(lambda: (lambda s: (s.get("desiredNumberScheduled"), s.get("currentNumberScheduled"),
                                 s.get("numberReady"))
                      == (2, 2, 2))(cluster.ds("agent")["status"]), what="status after the node went")


def test_rolling_update_max_unavailable_rollout_history_and_undo(cluster, kubectl):
    for s in "abcd":
        cluster.add_node(s)
    cluster.daemonset("web", image="busybox:1",
                      strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}})
    cluster.settle("web")
    ns = cluster.ns
    kubectl("annotate", "ds/web", "-n", ns, "kubernetes.io/change-cause=second")
    kubectl("set", "image", "ds/web", "-n", ns, "app=busybox:2")
    ds = cluster.ds("web")
    assert ds["metadata"]["generation"] == 2
    assert ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "2"
    status = kubectl.popen("rollout", "status", "ds/web", "-n", ns, "--timeout=60s")

    def check(ds, pods):
        ready_nodes = {target(p) for p in pods if is_ready(p)}
        assert len(ready_nodes) >= 2, "more than maxUnavailable nodes without a ready pod"
    ds = cluster.settle("web", check=check)
    out, err = status.communicate(timeout=30)
    assert status.returncode == 0, err
    assert 'daemon set "web" successfully rolled out' in out
    assert "out of 4 new pods have been updated" in out or "updated pods are available" in out
    pods = cluster.pods("web")
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"busybox:2"}
    assert {p["metadata"]["labels"]["pod-template-generation"] for p in pods} == {"2"}
    revs = cluster.revisions("web")
    assert [r["revision"] for r in revs] == [1, 2]
    assert pods[0]["metadata"]["labels"]["controller-revision-hash"] == \
        revs[1]["metadata"]["labels"]["controller-revision-hash"]

    hist = kubectl("rollout", "history", "ds/web", "-n", ns).splitlines()
    assert hist[1].split() == ["REVISION", "CHANGE-CAUSE"]
    assert hist[2].split() == ["1", "<none>"] and hist[3].split() == ["2", "second"]
    detail = kubectl("rollout", "history", "ds/web", "-n", ns, "--revision=1")
    assert "busybox:1" in detail

    out = kubectl("rollout", "undo", "ds/web", "-n", ns)
    assert "rolled back" in out
    ds = cluster.settle("web")
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"
    assert {p["spec"]["containers"][0]["image"] for p in cluster.pods("web")} == {"busybox:1"}
    assert {p["metadata"]["labels"]["pod-template-generation"] for p in cluster.pods("web")} == {"3"}
    revs = cluster.revisions("web")
    assert [r["revision"] for r in revs] == [2, 3]  # revision 1 came back as 3
    assert revs[1]["metadata"]["name"] == cluster.revisions("web")[1]["metadata"]["name"]
    hist = kubectl("rollout", "history", "ds/web", "-n", ns).splitlines()
    assert [line.split()[0] for line in hist[2:] if line.strip()] == ["2", "3"]
    # undo to the revision in place already is skipped
    out = kubectl("rollout", "undo", "ds/web", "-n", ns, "--to-revision=3")
    assert "skipped rollback" in out


def test_rolling_update_max_surge(cluster):
    for s in "abc":
        cluster.add_node(s)
    cluster.daemonset("surge", strategy={"type": "RollingUpdate",
                                         "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})
    cluster.settle("surge")
    cluster.apps.patch_namespaced_daemon_set("surge", cluster.ns, {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "busybox:2"}]}}}})
    # one new pod beside an old one on a single node, the old one still there
    doubled = wait_for(lambda: [n for n, ps in by_node(cluster.pods("surge")).items() if len(ps) == 2],
                       what="a surge pod")
    assert len(doubled) == 1
    time.sleep(1)
    assert len(cluster.pods("surge")) == 4  # no more surge than maxSurge while the new pod is not ready

    def check(ds, pods):
        nodes = by_node(pods)
        assert sum(len(ps) - 1 for ps in nodes.values()) <= 1, "more than maxSurge extra pods"
        assert all(any(is_ready(p) for p in ps) for ps in nodes.values()) or \
            len(nodes) < 3, "a node without a ready pod during a surge update"
    cluster.settle("surge", check=check)
    assert {p["spec"]["containers"][0]["image"] for p in cluster.pods("surge")} == {"busybox:2"}
    assert len(cluster.pods("surge")) == 3


def test_on_delete_strategy(cluster):
    for s in "ab":
        cluster.add_node(s)
    cluster.daemonset("od", strategy={"type": "OnDelete"})
    cluster.settle("od")
    old = {p["metadata"]["name"] for p in cluster.pods("od")}
    cluster.apps.patch_namespaced_daemon_set("od", cluster.ns, {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "busybox:2"}]}}}})
    wait_for(lambda: (lambda d: d["status"].get("observedGeneration") == 2)(cluster.ds("od")), what="observed")
    time.sleep(1)
    st = cluster.ds("od")["status"]
    assert {p["metadata"]["name"] for p in cluster.pods("od")} == old
    assert st.get("updatedNumberScheduled", 0) == 0 and st["numberAvailable"] == 2
    victim = sorted(old)[0]
    cluster.v1.delete_namespaced_pod(victim, cluster.ns)
    cluster.finish_terminating()
    new = wait_for(lambda: [p for p in cluster.pods("od") if p["metadata"]["name"] not in old], what="replacement")
    assert new[0]["spec"]["containers"][0]["image"] == "busybox:2"
    assert new[0]["metadata"]["labels"]["pod-template-generation"] == "2"
    cluster.mark_ready(wait_for(lambda: [p for p in cluster.pods("od") if p["metadata"]["name"] not in old
                                         and p["spec"].get("nodeName")], what="bound")[0])
    wait_for(lambda: (cluster.ds("od")["status"].get("updatedNumberScheduled"),
                      cluster.ds("od")["status"].get("numberAvailable")) == (1, 2), what="one updated")


def test_failed_daemon_pod_is_replaced(cluster):
    node = cluster.add_node("a")
    cluster.daemonset("flaky")
    cluster.settle("flaky")
    pod = cluster.pods("flaky")[0]
    cluster.v1.patch_namespaced_pod_status(pod["metadata"]["name"], cluster.ns, {"status": {"phase": "Failed"}})
    replacement = wait_for(lambda: [p for p in cluster.pods("flaky")
                                    if p["metadata"]["name"] != pod["metadata"]["name"]], what="replacement")
    assert target(replacement[0]) == node
    with pytest.raises(ApiException) as e:
        cluster.v1.read_namespaced_pod(pod["metadata"]["name"], cluster.ns)
    assert e.value.status == 404
    ev = wait_for(lambda: cluster.events("FailedDaemonPod"), what="FailedDaemonPod event")
    assert ev[0]["type"] == "Warning"
    assert ev[0]["message"] == (f"Found failed daemon pod {cluster.ns}/{pod['metadata']['name']} on node {node}, "
                                "will try to kill it")
    # a second failure right away waits for the back-off (1 s, then 2 s) before the pod goes
    cluster.settle("flaky")
    second = cluster.pods("flaky")[0]
    cluster.v1.patch_namespaced_pod_status(second["metadata"]["name"], cluster.ns, {"status": {"phase": "Failed"}})
    wait_for(lambda: [p for p in cluster.pods("flaky") if p["metadata"]["name"] != second["metadata"]["name"]],
             what="second replacement")
    cluster.settle("flaky")


def test_deleting_a_daemonset_cascades(cluster, kubectl):
    for s in "ab":
        cluster.add_node(s)
    cluster.daemonset("gone")
    cluster.settle("gone")
    assert len(cluster.revisions("gone")) == 1
    kubectl("delete", "ds/gone", "-n", cluster.ns, "--wait=false")

    def all_gone():
        cluster.finish_terminating()  # the kubelet's part of the pods' graceful deletion
        return not cluster.pods("gone", live=False) and not cluster.revisions("gone")
    wait_for(all_gone, what="pods and revisions collected")


def test_template_generation_annotation_is_the_servers(cluster):
    ds = cluster.daemonset("gen")
    md = ds["metadata"]
    assert md["annotations"]["deprecated.daemonset.template.generation"] == "1"
    # an update may not set it, a label change on the DaemonSet does not bump it
    patched = cluster.d(cluster.apps.patch_namespaced_daemon_set("gen", cluster.ns, {"metadata": {
        "labels": {"x": "y"}, "annotations": {"deprecated.daemonset.template.generation": "7"}}}))
    assert patched["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"
    assert patched["metadata"]["generation"] == 1
    patched = cluster.d(cluster.apps.patch_namespaced_daemon_set("gen", cluster.ns, {"spec": {
        "minReadySeconds": 5}}))
    assert patched["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"
    assert patched["metadata"]["generation"] == 2
    patched = cluster.d(cluster.apps.patch_namespaced_daemon_set("gen", cluster.ns, {"spec": {"template": {
        "metadata": {"annotations": {"a": "b"}}}}}))
    assert patched["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "2"
    assert patched["metadata"]["generation"] == 3
    assert json.loads(json.dumps(patched["spec"]["updateStrategy"])) == {
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}


def test_daemonset_validation_and_defaults(cluster, kubectl):
    def create(strategy=None, **pod_spec):
        try:
            cluster.daemonset("bad", strategy=strategy, **pod_spec)
        except ApiException as e:
            assert e.status == 422
            return json.loads(e.body)["message"]
        cluster.apps.delete_namespaced_daemon_set("bad", cluster.ns)
        return ""
    assert create({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}) == (
        'DaemonSet.apps "bad" is invalid: spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: '
        "may not be set when maxUnavailable is non-zero")
    assert "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0" in \
        create({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}})
    assert 'spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: "120%": must not be greater than 100%' \
        in create({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "120%"}})
    assert 'spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always"' in \
        create(restartPolicy="OnFailure")
    assert create({"rollingUpdate": {"maxSurge": "10%", "maxUnavailable": 0}}) == ""
    ds = cluster.daemonset("defaults", strategy={"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert ds["spec"]["revisionHistoryLimit"] == 10
    # kubectl rollout status refuses OnDelete DaemonSets, as upstream's does
    cluster.daemonset("ondel", strategy={"type": "OnDelete"})
    p = kubectl.run("rollout", "status", "ds/ondel", "-n", cluster.ns, "--timeout=5s", check=False)
    assert p.returncode != 0 and "rollout status is only available for RollingUpdate strategy type" in p.stderr


def test_orphans_adopted_and_relabelled_pods_released(cluster):
    a = cluster.add_node("a")
    # a matching pod without an owner, already on node a: the DaemonSet adopts it, not a second
    # one (with OnDelete: a rolling update would replace it, as it carries no revision hash)
    cluster.v1.create_namespaced_pod(cluster.ns, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stray", "labels": {"app": "adopt"}},
        "spec": {"nodeName": a, "containers": [{"name": "app", "image": "busybox:1"}]}})
    ds = cluster.daemonset("adopt", strategy={"type": "OnDelete"})
    wait_for(lambda: (cluster.d(cluster.v1.read_namespaced_pod("stray", cluster.ns))["metadata"]
                      .get("ownerReferences") or [{}])[0].get("uid") == ds["metadata"]["uid"], what="adoption")
    time.sleep(1)
    assert [p["metadata"]["name"] for p in cluster.pods("adopt", live=False)] == ["stray"]
    # taken out of the selector: released, and a new pod takes its place
    cluster.v1.patch_namespaced_pod("stray", cluster.ns, {"metadata": {"labels": {"app": "other"}}})
    wait_for(lambda: not cluster.d(cluster.v1.read_namespaced_pod("stray", cluster.ns))["metadata"]
             .get("ownerReferences"), what="release")
    new = wait_for(lambda: cluster.pods("adopt"), what="a replacement")
    assert target(new[0]) == a and new[0]["metadata"]["name"] != "stray"
    cluster.v1.delete_namespaced_pod("stray", cluster.ns, grace_period_seconds=0)


def test_revision_history_limit(cluster):
    cluster.add_node("a")
    cluster.daemonset("hist", strategy={"type": "OnDelete"})
    cluster.apps.patch_namespaced_daemon_set("hist", cluster.ns, {"spec": {"revisionHistoryLimit": 1}})
    cluster.settle("hist")
    for image in ("busybox:2", "busybox:3"):
        cluster.apps.patch_namespaced_daemon_set("hist", cluster.ns, {"spec": {"template": {"spec": {
            "containers": [{"name": "app", "image": image}]}}}})
        wait_for(lambda: cluster.revisions("hist")[-1]["revision"] == (2 if image == "busybox:2" else 3),
                 what="a new revision")
    # the pod still runs revision 1, so it stays; revision 2 goes beyond the limit
    wait_for(lambda: [r["revision"] for r in cluster.revisions("hist")] == [1, 3], what="history cleaned up")
    cluster.v1.delete_namespaced_pod(cluster.pods("hist")[0]["metadata"]["name"], cluster.ns)
    cluster.settle("hist")
    assert cluster.pods("hist")[0]["spec"]["containers"][0]["image"] == "busybox:3"
    assert [r["revision"] for r in cluster.revisions("hist")] == [1, 3]  # one old revision is kept
    cluster.apps.patch_namespaced_daemon_set("hist", cluster.ns, {"spec": {"revisionHistoryLimit": 0}})
    wait_for(lambda: [r["revision"] for r in cluster.revisions("hist")] == [3], what="revision 1 gone too")
