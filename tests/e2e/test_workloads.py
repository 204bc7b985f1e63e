"""Deployments and ReplicaSets end to end: kubectl and the Python client against `shim up`.

There are no nodes here, so pods stay Pending; readiness is what a kubelet would report,
written by the test through the pods' status subresource.
"""
from __future__ import annotations

import datetime as dt
import re
import time
import textwrap

from kubernetes import client
from kubernetes.client.rest import ApiException

RS_REF_KEYS = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "controller": True, "blockOwnerDeletion": True}


def wait_for(fn, timeout: float = 20.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def as_dict(api_client, obj) -> dict:
    return api_client.sanitize_for_serialization(obj)


def live_pods(api_client, ns: str, selector: str | None = None) -> list[dict]:
    pods = client.CoreV1Api(api_client).list_namespaced_pod(ns, label_selector=selector).items
    return [as_dict(api_client, p) for p in pods if p.metadata.deletion_timestamp is None
            and p.status.phase not in ("Succeeded", "Failed")]


def replica_sets(api_client, ns: str) -> list[dict]:
    items = client.AppsV1Api(api_client).list_namespaced_replica_set(ns).items
    return sorted((as_dict(api_client, rs) for rs in items), key=lambda r: r["metadata"]["creationTimestamp"])


def deployment(api_client, ns: str, name: str) -> dict:
    return as_dict(api_client, client.AppsV1Api(api_client).read_namespaced_deployment(name, ns))


def mark_ready(api_client, ns: str, pods: list[dict]) -> None:
    """What a kubelet reports once the containers run and pass their readiness probes."""
    v1 = client.CoreV1Api(api_client)
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    for pod in pods:
        try:
            v1.patch_namespaced_pod_status(pod["metadata"]["name"], ns, {"status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now},
                               {"type": "ContainersReady", "status": "True", "lastTransitionTime": now}]}})
        except ApiException as e:
            if e.status != 404:
                raise


def not_ready(pods: list[dict]) -> list[dict]:
    return [p for p in pods if not any(c["type"] == "Ready" and c["status"] == "True"
                                       for c in (p.get("status") or {}).get("conditions") or ())]


def drive_rollout(api_client, ns: str, name: str, check=None, per_step: int = 100, timeout: float = 20.0):
    """Play kubelet until the Deployment's rollout is complete: make pending pods ready
    (`per_step` at a time), calling `check()` on the way."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check is not None:
            check()
        d = deployment(api_client, ns, name)
        st, want = d.get("status") or {}, d["spec"]["replicas"]
        if (st.get("observedGeneration", 0) >= d["metadata"]["generation"] and st.get("updatedReplicas", 0) == want
                and st.get("replicas", 0) == want and st.get("availableReplicas", 0) == want):
            return d
        mark_ready(api_client, ns, not_ready(live_pods(api_client, ns))[:per_step])
        time.sleep(0.15)
    raise AssertionError(f"rollout of {name} did not finish: {deployment(api_client, ns, name).get('status')}")


def events_for(api_client, ns: str, name: str) -> list[tuple[str, str, str]]:
    evs = client.CoreV1Api(api_client).list_namespaced_event(ns).items
    evs = [e for e in evs if e.involved_object.name == name]
    evs.sort(key=lambda e: int(e.metadata.resource_version))  # the order they were written in
    return [(e.type, e.reason, e.message) for e in evs]


def owner(obj: dict) -> dict | None:
    refs = obj["metadata"].get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), None)


def deploy_manifest(ns: str, name: str, replicas: int, strategy: str, image: str = "busybox:local") -> str:
    return textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: {name}, namespace: {ns}}}
        spec:
          replicas: {replicas}
          selector: {{matchLabels: {{app: {name}}}}}
          strategy: {strategy}
          template:
            metadata: {{labels: {{app: {name}}}}}
            spec:
              containers: [{{name: main, image: "{image}"}}]
        """)


# -- Deployments -------------------------------------------------------------------------------

def test_create_deployment_yields_replicaset_and_pods(kubectl, api_client, namespace):
    ns = namespace
    assert kubectl("create", "deployment", "web", "--image=busybox:local", "--replicas=3", "-n", ns).strip() == \
        "deployment.apps/web created"
    pods = wait_for(lambda: (p := live_pods(api_client, ns)) and len(p) == 3 and p, what="3 pods")
    [rs] = replica_sets(api_client, ns)
    d = deployment(api_client, ns, "web")
    h = rs["metadata"]["labels"]["pod-template-hash"]
    assert re.fullmatch(r"[bcdfghjklmnpqrstvwxz2456789]{6,10}", h)
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "web", "pod-template-hash": h}}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
    assert rs["spec"]["replicas"] == 3
    assert owner(rs) == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                         "uid": d["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
    ann = rs["metadata"]["annotations"]
    assert ann["deployment.kubernetes.io/revision"] == "1"
    assert ann["deployment.kubernetes.io/desired-replicas"] == "3"
    assert ann["deployment.kubernetes.io/max-replicas"] == "4"  # 3 + ceil(25% of 3)
    for pod in pods:
        assert pod["metadata"]["generateName"] == f"web-{h}-"
        assert pod["metadata"]["name"].startswith(f"web-{h}-")
        assert pod["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
        assert owner(pod) == dict(RS_REF_KEYS, name=rs["metadata"]["name"], uid=rs["metadata"]["uid"])
        assert pod["spec"]["containers"][0]["image"] == "busybox:local"

    d = wait_for(lambda: (x := deployment(api_client, ns, "web")).get("status", {}).get("replicas") == 3 and x)
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    st = d["status"]
    assert st["observedGeneration"] == d["metadata"]["generation"]
    assert st["updatedReplicas"] == 3 and st["unavailableReplicas"] == 3
    assert "availableReplicas" not in st and "readyReplicas" not in st  # zero counts are left out
    conds = {c["type"]: c for c in st["conditions"]}
    assert (conds["Available"]["status"], conds["Available"]["reason"], conds["Available"]["message"]) == \
        ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
    assert conds["Progressing"]["status"] == "True"
    assert conds["Progressing"]["reason"] in ("NewReplicaSetCreated", "ReplicaSetUpdated")

    rs_name = rs["metadata"]["name"]
    assert ("Normal", "ScalingReplicaSet", f"Scaled up replica set {rs_name} from 0 to 3") in \
        wait_for(lambda: events_for(api_client, ns, "web"), what="deployment events")
    created = wait_for(lambda: [m for t, r, m in events_for(api_client, ns, rs_name) if r == "SuccessfulCreate"]
                       if len(events_for(api_client, ns, rs_name)) >= 3 else None, what="rs events")
    assert sorted(created) == sorted(f"Created pod: {p['metadata']['name']}" for p in pods)

    # kubelet says they run: the Deployment becomes available and complete
    mark_ready(api_client, ns, pods)
    d = wait_for(lambda: (x := deployment(api_client, ns, "web"))["status"].get("availableReplicas") == 3 and x)
    conds = {c["type"]: c for c in d["status"]["conditions"]}
    assert (conds["Available"]["status"], conds["Available"]["reason"]) == ("True", "MinimumReplicasAvailable")
    assert conds["Available"]["message"] == "Deployment has minimum availability."
    assert (conds["Progressing"]["reason"], conds["Progressing"]["message"]) == \
        ("NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully progressed.')
    assert "unavailableReplicas" not in d["status"]


def test_get_deploy_and_rs_columns(kubectl, api_client, namespace):
    ns = namespace
    kubectl("create", "deployment", "web", "--image=busybox:local", "--replicas=2", "-n", ns)
    pods = wait_for(lambda: (p := live_pods(api_client, ns)) and len(p) == 2 and p)
    mark_ready(api_client, ns, pods)
    wait_for(lambda: deployment(api_client, ns, "web")["status"].get("availableReplicas") == 2)
    rs_name = replica_sets(api_client, ns)[0]["metadata"]["name"]

    def table():
        out = kubectl("get", "deploy,rs", "-n", ns)
        return [line.split() for line in out.splitlines() if line.strip()]
    rows = wait_for(lambda: (t := table()) and any(r[0] == f"replicaset.apps/{rs_name}" and r[3] == "2"
                                                   for r in t) and t)
    assert rows[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert rows[1][:4] == ["deployment.apps/web", "2/2", "2", "2"]
    assert rows[2] == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert rows[3][:4] == [f"replicaset.apps/{rs_name}", "2", "2", "2"]


def test_scale_up_and_down(kubectl, api_client, namespace):
    ns = namespace
    kubectl("create", "deployment", "web", "--image=busybox:local", "--replicas=2", "-n", ns)
    wait_for(lambda: len(live_pods(api_client, ns)) == 2, what="2 pods")
    assert kubectl("scale", "deployment/web", "--replicas=5", "-n", ns).strip() == "deployment.apps/web scaled"
    wait_for(lambda: len(live_pods(api_client, ns)) == 5, what="5 pods")
    [rs] = replica_sets(api_client, ns)
    assert rs["spec"]["replicas"] == 5
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "5"
    mark_ready(api_client, ns, live_pods(api_client, ns)[:3])  # the rest stay pending

    assert kubectl("scale", "deployment/web", "--replicas=3", "-n", ns).strip() == "deployment.apps/web scaled"
    wait_for(lambda: len(live_pods(api_client, ns)) == 3, what="3 pods")
    time.sleep(0.5)
    left = live_pods(api_client, ns)
    assert len(left) == 3 and len(replica_sets(api_client, ns)) == 1
    assert not not_ready(left), "the pending pods go first"
    rs_name = rs["metadata"]["name"]
    deleted = wait_for(lambda: [m for _, r, m in events_for(api_client, ns, rs_name) if r == "SuccessfulDelete"])
    assert all(m.startswith(f"Deleted pod: {rs_name}-") for m in deleted)
    wait_for(lambda: ("Normal", "ScalingReplicaSet", f"Scaled down replica set {rs_name} from 5 to 3")
             in events_for(api_client, ns, "web"))
    kubectl("scale", "deployment/web", "--replicas=0", "-n", ns)
    wait_for(lambda: not live_pods(api_client, ns), what="no pods")
    d = wait_for(lambda: (x := deployment(api_client, ns, "web"))["status"].get("observedGeneration")
                 == x["metadata"]["generation"] and "replicas" not in x["status"] and x)
    assert d["spec"]["replicas"] == 0


def test_rolling_update_respects_surge_and_unavailability(kubectl, api_client, namespace):
    ns = namespace
    strategy = "{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}"
    kubectl("apply", "-f", "-", input=deploy_manifest(ns, "web", 4, strategy))
    drive_rollout(api_client, ns, "web")
    [old] = replica_sets(api_client, ns)
    assert old["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "5"

    assert kubectl("set", "image", "deployment/web", "main=busybox:v2", "-n", ns).strip() == \
        "deployment.apps/web image updated"
    seen = {"max_total": 0, "min_available": 99, "steps": 0}

    def check():
        rss = replica_sets(api_client, ns)
        total = sum(rs["spec"]["replicas"] for rs in rss)
        available = sum((rs.get("status") or {}).get("availableReplicas", 0) for rs in rss)
        seen["max_total"] = max(seen["max_total"], total)
        seen["min_available"] = min(seen["min_available"], available)
        seen["steps"] += 1
        assert total <= 5, f"maxSurge 1 exceeded: {[(r['metadata']['name'], r['spec']['replicas']) for r in rss]}"
        assert len(live_pods(api_client, ns)) <= 5
    drive_rollout(api_client, ns, "web", check=check, per_step=1)
    assert seen["max_total"] == 5
    assert seen["min_available"] >= 4, "maxUnavailable 0: never fewer than 4 available pods"

    rss = {rs["metadata"]["name"]: rs for rs in replica_sets(api_client, ns)}
    assert len(rss) == 2
    old = rss.pop(old["metadata"]["name"])
    [new] = rss.values()
    assert old["spec"]["replicas"] == 0
    assert new["spec"]["replicas"] == 4
    assert new["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:v2"
    assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert all(p["metadata"]["labels"]["pod-template-hash"] == new["metadata"]["labels"]["pod-template-hash"]
               for p in live_pods(api_client, ns))
    evs = [m for _, r, m in events_for(api_client, ns, "web") if r == "ScalingReplicaSet"]
    new_name, old_name = new["metadata"]["name"], old["metadata"]["name"]
    assert f"Scaled up replica set {new_name} from 0 to 1" in evs
    assert f"Scaled down replica set {old_name} from 1 to 0" in evs

    p = kubectl.run("rollout", "status", "deployment/web", "-n", ns, "--timeout=20s")
    assert p.stdout.strip() == 'deployment "web" successfully rolled out'


def test_rollout_status_waits_for_availability(kubectl, api_client, namespace):
    ns = namespace
    kubectl("create", "deployment", "web", "--image=busybox:local", "--replicas=2", "-n", ns)
    wait_for(lambda: len(live_pods(api_client, ns)) == 2)
    proc = kubectl.popen("rollout", "status", "deployment/web", "-n", ns, "--timeout=20s")
    try:
        time.sleep(1.5)
        assert proc.poll() is None, "rollout status must wait while no pod is available"
        mark_ready(api_client, ns, live_pods(api_client, ns))
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    lines = out.strip().splitlines()
    assert 'Waiting for deployment "web" rollout to finish: 0 of 2 updated replicas are available...' in lines
    assert lines[-1] == 'deployment "web" successfully rolled out'


def test_rollout_history_and_undo(kubectl, api_client, namespace):
    ns = namespace
    kubectl("create", "deployment", "web", "--image=busybox:local", "--replicas=2", "-n", ns)
    drive_rollout(api_client, ns, "web")
    kubectl("set", "image", "deployment/web", "busybox=busybox:v2", "-n", ns)
    # annotations of the Deployment are copied to its current ReplicaSet (that of revision 2)
    kubectl("annotate", "deployment/web", "kubernetes.io/change-cause=to v2", "-n", ns)
    drive_rollout(api_client, ns, "web")

    out = kubectl("rollout", "history", "deployment/web", "-n", ns)
    rows = [line.split(None, 1) for line in out.strip().splitlines()[1:]]
    assert rows[0] == ["REVISION", "CHANGE-CAUSE"]
    assert rows[1:] == [["1", "<none>"], ["2", "to v2"]]
    out = kubectl("rollout", "history", "deployment/web", "-n", ns, "--revision=1")
    assert "Image:\tbusybox:local" in out.replace("      ", "\t") or "busybox:local" in out

    assert kubectl("rollout", "undo", "deployment/web", "-n", ns).strip() == "deployment.apps/web rolled back"
    d = drive_rollout(api_client, ns, "web")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:local"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    rss = replica_sets(api_client, ns)
    assert len(rss) == 2, "the first ReplicaSet is reused, not a third one made"
    image = lambda rs: rs["spec"]["template"]["spec"]["containers"][0]["image"]  # noqa: E731
    first, second = sorted(rss, key=lambda rs: image(rs) != "busybox:local")
    assert first["spec"]["replicas"] == 2 and second["spec"]["replicas"] == 0
    assert first["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert first["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    out = kubectl("rollout", "history", "deployment/web", "-n", ns)
    assert [line.split(None, 1)[0] for line in out.strip().splitlines()[2:]] == ["2", "3"]
    p = kubectl.run("rollout", "status", "deployment/web", "-n", ns, "--timeout=20s")
    assert p.stdout.strip() == 'deployment "web" successfully rolled out'


def test_recreate_strategy(kubectl, api_client, namespace):
    ns = namespace
    kubectl("apply", "-f", "-", input=deploy_manifest(ns, "web", 3, "{type: Recreate}"))
    drive_rollout(api_client, ns, "web")
    [old] = replica_sets(api_client, ns)
    assert old["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "3"  # no surge
    kubectl("set", "image", "deployment/web", "main=busybox:v2", "-n", ns)

    def check():
        pods = live_pods(api_client, ns)
        hashes = {p["metadata"]["labels"]["pod-template-hash"] for p in pods}
        assert len(hashes) <= 1, "Recreate never runs old and new pods together"
    drive_rollout(api_client, ns, "web", check=check)
    rss = {rs["metadata"]["name"]: rs for rs in replica_sets(api_client, ns)}
    assert rss.pop(old["metadata"]["name"])["spec"]["replicas"] == 0
    [new] = rss.values()
    evs = [m for _, r, m in events_for(api_client, ns, "web") if r == "ScalingReplicaSet"]
    down = evs.index(f"Scaled down replica set {old['metadata']['name']} from 3 to 0")
    up = evs.index(f"Scaled up replica set {new['metadata']['name']} from 0 to 3")
    assert down < up


def test_paused_deployment_does_not_roll_out(kubectl, api_client, namespace):
    ns = namespace
    kubectl("create", "deployment", "web", "--image=busybox:local", "--replicas=2", "-n", ns)
    drive_rollout(api_client, ns, "web")
    assert kubectl("rollout", "pause", "deployment/web", "-n", ns).strip() == "deployment.apps/web paused"
    kubectl("set", "image", "deployment/web", "busybox=busybox:v2", "-n", ns)
    d = wait_for(lambda: (x := deployment(api_client, ns, "web"))["status"].get("observedGeneration")
                 == x["metadata"]["generation"] and x)
    cond = next(c for c in d["status"]["conditions"] if c["type"] == "Progressing")
    assert (cond["status"], cond["reason"], cond["message"]) == ("Unknown", "DeploymentPaused", "Deployment is paused")
    time.sleep(0.5)
    assert len(replica_sets(api_client, ns)) == 1
    kubectl("scale", "deployment/web", "--replicas=3", "-n", ns)  # scaling still works while paused
    wait_for(lambda: len(live_pods(api_client, ns)) == 3)
    kubectl("rollout", "resume", "deployment/web", "-n", ns)
    d = drive_rollout(api_client, ns, "web")
    assert len(replica_sets(api_client, ns)) == 2
    assert d["status"]["updatedReplicas"] == 3


def test_replica_failure_condition_on_forbidden_create(kubectl, api_client, namespace):
    ns = namespace
    kubectl("create", "deployment", "web", "--image=busybox:local", "-n", ns)
    kubectl("patch", "deployment/web", "-n", ns, "-p", '{"spec":{"template":{"spec":{"serviceAccountName":"nobody"}}}}')

    def failed():
        for rs in replica_sets(api_client, ns):
            for c in (rs.get("status") or {}).get("conditions") or ():
                if c["type"] == "ReplicaFailure":
                    return rs, c
    rs, cond = wait_for(failed, what="ReplicaFailure condition")
    assert (cond["status"], cond["reason"]) == ("True", "FailedCreate")
    assert 'error looking up service account' in cond["message"] and 'serviceaccount "nobody" not found' in cond["message"]
    evs = wait_for(lambda: [m for t, r, m in events_for(api_client, ns, rs["metadata"]["name"])
                            if (t, r) == ("Warning", "FailedCreate")])
    assert evs[0] == f"Error creating: {cond['message']}"
    d = wait_for(lambda: (x := deployment(api_client, ns, "web")) and any(
        c["type"] == "ReplicaFailure" for c in x["status"].get("conditions") or ()) and x)
    dc = next(c for c in d["status"]["conditions"] if c["type"] == "ReplicaFailure")
    assert (dc["reason"], dc["message"]) == ("FailedCreate", cond["message"])


# -- a ReplicaSet of its own ------------------------------------------------------------------------

def test_standalone_replicaset_replaces_adopts_and_releases(api_client, namespace):
    ns = namespace
    apps, v1 = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    # an orphan that matches, made before the ReplicaSet: it is adopted and counted
    orphan = v1.create_namespaced_pod(ns, {"metadata": {"name": "orphan", "labels": {"app": "solo"}},
                                           "spec": {"containers": [{"name": "c", "image": "busybox:local"}]}})
    rs = apps.create_namespaced_replica_set(ns, {
        "metadata": {"name": "solo"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "solo"}},
                 "template": {"metadata": {"labels": {"app": "solo"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox:local"}]}}}})
    rs_ref = dict(RS_REF_KEYS, name="solo", uid=rs.metadata.uid)
    pods = wait_for(lambda: (p := live_pods(api_client, ns, "app=solo")) and len(p) == 2
                    and all(owner(x) == rs_ref for x in p) and p, what="2 owned pods")
    names = {p["metadata"]["name"] for p in pods}
    assert "orphan" in names
    adopted = as_dict(api_client, v1.read_namespaced_pod("orphan", ns))
    assert adopted["metadata"]["uid"] == orphan.metadata.uid
    st = wait_for(lambda: (s := as_dict(api_client, apps.read_namespaced_replica_set("solo", ns))["status"])
                  .get("replicas") == 2 and s.get("observedGeneration") == 1 and s)
    assert st["fullyLabeledReplicas"] == 2

    # a deleted pod is replaced
    other = next(n for n in names if n != "orphan")
    v1.delete_namespaced_pod(other, ns)
    pods = wait_for(lambda: (p := live_pods(api_client, ns, "app=solo")) and len(p) == 2
                    and other not in {x["metadata"]["name"] for x in p} and p, what="a replacement")
    replacement = next(p for p in pods if p["metadata"]["name"] != "orphan")
    assert replacement["metadata"]["generateName"] == "solo-"

    # relabelled so the selector no longer matches: released, and replaced
    v1.patch_namespaced_pod("orphan", ns, {"metadata": {"labels": {"app": "elsewhere"}}})
    wait_for(lambda: not as_dict(api_client, v1.read_namespaced_pod("orphan", ns))["metadata"].get("ownerReferences"),
             what="release of the relabelled pod")
    pods = wait_for(lambda: (p := live_pods(api_client, ns, "app=solo")) and len(p) == 2 and p)
    assert "orphan" not in {p["metadata"]["name"] for p in pods}
    assert live_pods(api_client, ns, "app=elsewhere")[0]["metadata"]["name"] == "orphan"

    # readiness and availability are counted
    mark_ready(api_client, ns, pods[:1])
    st = wait_for(lambda: (s := as_dict(api_client, apps.read_namespaced_replica_set("solo", ns))["status"])
                  .get("readyReplicas") == 1 and s)
    assert st["availableReplicas"] == 1 and st["replicas"] == 2

    # scaled down: the pending pod goes, the ready one stays
    apps.patch_namespaced_replica_set_scale("solo", ns, {"spec": {"replicas": 1}})
    left = wait_for(lambda: (p := live_pods(api_client, ns, "app=solo")) and len(p) == 1 and p)
    assert left[0]["metadata"]["name"] == pods[0]["metadata"]["name"]


def test_terminal_pods_are_not_counted(api_client, namespace):
    ns = namespace
    apps, v1 = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    apps.create_namespaced_replica_set(ns, {
        "metadata": {"name": "jobby"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "jobby"}},
                 "template": {"metadata": {"labels": {"app": "jobby"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox:local"}]}}}})
    [pod] = wait_for(lambda: (p := live_pods(api_client, ns)) and len(p) == 1 and p)
    v1.patch_namespaced_pod_status(pod["metadata"]["name"], ns, {"status": {"phase": "Failed"}})
    pods = wait_for(lambda: (p := live_pods(api_client, ns)) and p[0]["metadata"]["name"] != pod["metadata"]["name"]
                    and p)
    assert len(pods) == 1


# -- deletion cascades (needs the garbage collector) ----------------------------------------------------

def test_zz_deleting_deployment_removes_replicasets_and_pods(kubectl, api_client, namespace):
    ns = namespace
    kubectl("create", "deployment", "web", "--image=busybox:local", "--replicas=2", "-n", ns)
    wait_for(lambda: len(live_pods(api_client, ns)) == 2)
    assert kubectl("delete", "deployment", "web", "-n", ns).startswith('deployment.apps "web" deleted')
    wait_for(lambda: not replica_sets(api_client, ns), what="replica sets collected")
    wait_for(lambda: not client.CoreV1Api(api_client).list_namespaced_pod(ns).items, what="pods collected")
