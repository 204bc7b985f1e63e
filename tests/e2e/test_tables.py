"""Server-side printing end to end: what the real kubectl prints for `kubectl get`.

Objects are made through the API (statuses written through the status subresource, as a
kubelet or controller would), then kubectl's own output is read back: the header names,
the `-o wide` columns, and the computed cells (pod STATUS/READY/RESTARTS, node STATUS and
ROLES, deployment READY, service PORT(S), ...). The expected header of every kind is
written out here from upstream v1.37's column definitions.
"""
from __future__ import annotations


import base64
import datetime as dt
import json
import os
import re
import subprocess
import time

import pytest
import yaml
from kubernetes import client

from .linereader import LineReader
from .rawhttp import Raw

pytestmark = pytest.mark.timeout(180)

TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


# -- helpers -----------------------------------------------------------------------------------

def header_columns(header: str) -> list[tuple[int, str]]:
    """(start, name) of each column; names may hold single spaces ("LAST SEEN")."""
    return [(m.start(), m.group(0)) for m in re.finditer(r"\S+(?: \S+)*", header)]


def parse(output: str) -> tuple[list[str], list[dict]]:
    """kubectl's table output -> (header names, rows keyed by header)."""
    lines = [ln for ln in output.splitlines() if ln.strip()]
    if not lines:
        return [], []
    cols = header_columns(lines[0])
    names = [n for _, n in cols]
    starts = [s for s, _ in cols] + [None]
    rows = []
    for ln in lines[1:]:
        rows.append({n: ln[starts[i]:starts[i + 1]].strip() if starts[i] < len(ln) else ""
                     for i, n in enumerate(names)})
    return names, rows


def get_table(kubectl, *args) -> tuple[list[str], dict[str, dict]]:
    names, rows = parse(kubectl("get", *args))
    key = "NAME" if "NAME" in names else names[-1]
    return names, {r[key]: r for r in rows}


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(3).hex()}"


def ts(seconds_ago: float = 0) -> str:
    t = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds_ago)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def create(kubectl, manifest, *args, check: bool = True) -> subprocess.CompletedProcess:
    if not isinstance(manifest, str):
        manifest = yaml.safe_dump_all(manifest if isinstance(manifest, list) else [manifest])
    return kubectl.run("create", "-f", "-", *args, input=manifest, check=check)


@pytest.fixture
def core(api_client) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def cluster_objects(kubectl):
    """Cluster-scoped objects a test made (kind/name), deleted afterwards."""
    made: list[str] = []
    yield made
    for ref in made:
        kubectl.run("delete", ref, "--ignore-not-found", "--wait=false", check=False)


# -- pods ----------------------------------------------------------------------------------------

def _pod(name: str, containers=("c",), init=(), node: str | None = None, finalizers=(), **spec) -> dict:
    md: dict = {"name": name}
    if finalizers:
        md["finalizers"] = list(finalizers)
    s = {"containers": [{"name": c, "image": f"registry.k8s.io/{c}:1"} for c in containers], **spec}
    if init:
        s["initContainers"] = [{"name": c, "image": "busybox"} for c in init]
    if node:
        s["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": s}


def _running(name="c", ready=True, restarts=0, **extra):
    return {"name": name, "image": "img", "imageID": "", "ready": ready, "restartCount": restarts,
            "state": {"running": {"startedAt": ts(60)}}, **extra}


def _waiting(name="c", reason="", restarts=0, **extra):
    return {"name": name, "image": "img", "imageID": "", "ready": False, "restartCount": restarts,
            "state": {"waiting": {"reason": reason} if reason else {}}, **extra}


def _terminated(name="c", exit_code=0, reason="", restarts=0, **extra):
    term = {"exitCode": exit_code, "startedAt": ts(120), "finishedAt": ts(100)}
    if reason:
        term["reason"] = reason
    return {"name": name, "image": "img", "imageID": "", "ready": False, "restartCount": restarts,
            "state": {"terminated": term}, **extra}


def _set_pod_status(core, ns: str, name: str, status: dict) -> None:
    from kubernetes.client.rest import ApiException
    for attempt in range(5):  # the scheduler may write the pod's status meanwhile
        pod = core.read_namespaced_pod(name, ns)
        body = core.api_client.sanitize_for_serialization(pod)
        body["status"] = status
        try:
            core.replace_namespaced_pod_status(name, ns, body)
            return
        except ApiException as e:
            if e.status != 409 or attempt == 4:
                raise


def test_pod_status_columns(kubectl, namespace, core):
    crash_last = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": ts(400), "finishedAt": ts(330)}}
    cases = {
        # name: (pod, status)
        "running": (_pod("running", containers=("a", "b"), node="node-a",
                         readinessGates=[{"conditionType": "example.com/gate"}]),
                    {"phase": "Running", "podIP": "10.244.1.7", "podIPs": [{"ip": "10.244.1.7"}],
                     "conditions": [{"type": "Ready", "status": "True"},
                                    {"type": "example.com/gate", "status": "True"}],
                     "containerStatuses": [_running("a"), _running("b")]}),
        "half-ready": (_pod("half-ready", containers=("a", "b")),
                       {"phase": "Running",
                        "containerStatuses": [_running("a"), _running("b", ready=False)]}),
        "crashloop": (_pod("crashloop"),
                      {"phase": "Running", "containerStatuses": [
                          _waiting(reason="CrashLoopBackOff", restarts=4, lastState=crash_last)]}),
        "completed": (_pod("completed", restartPolicy="Never"),
                      {"phase": "Succeeded", "containerStatuses": [_terminated(reason="Completed")]}),
        "failed": (_pod("failed", restartPolicy="Never"),
                   {"phase": "Failed", "containerStatuses": [_terminated(exit_code=2, reason="Error")]}),
        "creating": (_pod("creating"),
                     {"phase": "Pending", "containerStatuses": [_waiting(reason="ContainerCreating")]}),
        "pending": (_pod("pending"), {"phase": "Pending"}),
        "initializing": (_pod("initializing", init=("setup",)),
                         {"phase": "Pending",
                          "initContainerStatuses": [_running("setup", ready=False)],
                          "containerStatuses": [_waiting(reason="PodInitializing")]}),
        "init-crash": (_pod("init-crash", init=("setup",)),
                       {"phase": "Pending",
                        "initContainerStatuses": [_waiting("setup", reason="CrashLoopBackOff", restarts=2)],
                        "containerStatuses": [_waiting(reason="PodInitializing")]}),
        "not-ready": (_pod("not-ready", containers=("a", "b")),
                      {"phase": "Running", "containerStatuses": [_terminated("a", reason="Completed"),
                                                                  _running("b")]}),
    }
    create(kubectl, [p for p, _ in cases.values()], "-n", namespace)
    for name, (_, status) in cases.items():
        _set_pod_status(core, namespace, name, status)

    # Terminating: a finalizer holds the pod after its deletion
    create(kubectl, _pod("leaving", finalizers=["example.com/hold"]), "-n", namespace)
    _set_pod_status(core, namespace, "leaving", {"phase": "Running", "containerStatuses": [_running()]})
    kubectl("delete", "pod", "leaving", "-n", namespace, "--wait=false")

    try:
        header, rows = get_table(kubectl, "pods", "-n", namespace)
        assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        seen = {n: (r["READY"], r["STATUS"], r["RESTARTS"]) for n, r in rows.items()}
        assert seen.pop("crashloop")[:2] == ("0/1", "CrashLoopBackOff")
        assert re.fullmatch(r"4 \(5m3\ds ago\)", rows["crashloop"]["RESTARTS"]), rows["crashloop"]
        assert seen == {
            "running": ("2/2", "Running", "0"),
            "half-ready": ("1/2", "Running", "0"),
            "completed": ("0/1", "Completed", "0"),
            "failed": ("0/1", "Error", "0"),
            "creating": ("0/1", "ContainerCreating", "0"),
            "pending": ("0/1", "Pending", "0"),
            "initializing": ("0/1", "Init:0/1", "0"),
            "init-crash": ("0/1", "Init:CrashLoopBackOff", "2"),
            "not-ready": ("1/2", "NotReady", "0"),
            "leaving": ("1/1", "Terminating", "0"),
        }
        assert all(re.fullmatch(r"\d+s", r["AGE"]) for r in rows.values())

        header, rows = get_table(kubectl, "pods", "-n", namespace, "-o", "wide")
        assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE",
                          "READINESS GATES"]
        assert [rows["running"][c] for c in header[5:]] == ["10.244.1.7", "node-a", "<none>", "1/1"]
        assert [rows["pending"][c] for c in header[5:]] == ["<none>", "<none>", "<none>", "<none>"]

        # a single object prints the same way
        header, rows = get_table(kubectl, "pod", "init-crash", "-n", namespace)
        assert rows["init-crash"]["STATUS"] == "Init:CrashLoopBackOff"
    finally:
        kubectl("patch", "pod", "leaving", "-n", namespace, "--type=json",
                "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')


def test_sort_by_uses_whole_objects(kubectl, namespace):
    create(kubectl, [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n, "labels": {"set": "s"}},
                      "data": {"order": order, **{f"k{i}": "x" for i in range(k)}}}
                     for n, k, order in (("charlie", 1, "b"), ("alpha", 3, "c"), ("bravo", 2, "a"))],
           "-n", namespace)
    _, rows = parse(kubectl("get", "cm", "-n", namespace, "--sort-by=.metadata.name"))
    assert [r["NAME"] for r in rows if r["NAME"] != "kube-root-ca.crt"] == ["alpha", "bravo", "charlie"]
    # a field outside metadata: kubectl asks for whole objects alongside the rows
    _, rows = parse(kubectl("get", "cm", "-l", "set=s", "-n", namespace, "--sort-by=.data.order"))
    assert [(r["NAME"], r["DATA"]) for r in rows] == [("bravo", "3"), ("charlie", "2"), ("alpha", "4")]
    _, rows = parse(kubectl("get", "cm", "-n", namespace, "--sort-by=.metadata.name", "-o", "wide"))
    assert rows[0]["NAME"] == "alpha"


def test_table_request_shapes(server, namespace, kubectl):
    create(kubectl, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one"}, "data": {"a": "b"}},
           "-n", namespace)
    raw = Raw(server)
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    for include, want in (("", "PartialObjectMetadata"), ("Metadata", "PartialObjectMetadata"),
                          ("Object", "ConfigMap"), ("None", None)):
        q = f"?includeObject={include}" if include else ""
        t = raw.get(base + "/one" + q, headers={"Accept": TABLE_ACCEPT}).json()
        assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
        assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Data", "Age"]
        assert t["columnDefinitions"][0]["format"] == "name"
        assert set(t["columnDefinitions"][0]) == {"name", "type", "format", "description", "priority"}
        assert t["rows"][0]["cells"][:2] == ["one", 1]
        assert t["metadata"]["resourceVersion"]
        assert (t["rows"][0].get("object") or {}).get("kind") == want
    for path in (base + "/one", base, base + "?watch=1"):
        bad = raw.get(path + ("&" if "?" in path else "?") + "includeObject=Everything",
                      headers={"Accept": TABLE_ACCEPT})
        assert bad.status == 400, (path, bad.body)
        assert bad.json()["message"] == ('Unable to convert to Table as requested: includeObject: Invalid value: '
                                         '"Everything": must be \'Metadata\', \'Object\', \'None\', or empty')
    lst = raw.get(base, headers={"Accept": TABLE_ACCEPT}).json()
    assert lst["kind"] == "Table" and "one" in [r["cells"][0] for r in lst["rows"]]
    assert lst["metadata"]["resourceVersion"]

    # watch: the first event carries the column definitions, later ones leave them out
    conn = raw.connect(timeout=15)
    try:
        conn.request("GET", base + "?watch=1&timeoutSeconds=5", headers={"Accept": TABLE_ACCEPT})
        resp = conn.getresponse()
        first = json.loads(resp.readline())
        create(kubectl, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "two"}}, "-n", namespace)
        events = [first]
        while len(events) < 3:
            line = resp.readline()
            if not line:
                break
            events.append(json.loads(line))
    finally:
        conn.close()
    assert first["type"] == "ADDED" and first["object"]["kind"] == "Table"
    assert [c["name"] for c in first["object"]["columnDefinitions"]] == ["Name", "Data", "Age"]
    later = [e for e in events[1:] if e["object"]["rows"][0]["cells"][0] == "two"]
    assert later and later[0]["object"]["columnDefinitions"] is None
    assert len(later[0]["object"]["rows"]) == 1


def test_get_watch_prints_rows(kubectl, namespace):
    create(kubectl, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "early"},
                     "stringData": {"a": "1"}}, "-n", namespace)
    watch = LineReader(kubectl.popen("get", "secrets", "-n", namespace, "-w"))
    try:
        head = watch.wait_for(lambda ln: ln.startswith("NAME"))
        assert [n for _, n in header_columns(head)] == ["NAME", "TYPE", "DATA", "AGE"]
        line = watch.wait_for(lambda ln: ln.startswith("early"))
        assert line.split()[:3] == ["early", "Opaque", "1"]
        create(kubectl, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "late"},
                         "type": "example.com/custom", "stringData": {"a": "1", "b": "2"}}, "-n", namespace)
        line = watch.wait_for(lambda ln: ln.startswith("late"))
        assert line.split()[:3] == ["late", "example.com/custom", "2"]
        kubectl("label", "secret", "early", "x=y", "-n", namespace)
        watch.wait_for(lambda ln: ln.startswith("early"))
        assert not any(ln.startswith("NAME") for ln in watch.seen[1:])  # the header printed once
    finally:
        watch.stop()

    # --output-watch-events adds the EVENT column to the server's rows
    watch = LineReader(kubectl.popen("get", "secrets", "-n", namespace, "-w", "--output-watch-events",
                                     "--watch-only"))
    try:
        time.sleep(1)
        kubectl("delete", "secret", "late", "-n", namespace)
        line = watch.wait_for(lambda ln: "late" in ln)
        assert line.split()[:3] == ["DELETED", "late", "example.com/custom"]
    finally:
        watch.stop()


# -- nodes ---------------------------------------------------------------------------------------

def test_node_columns(kubectl, core, cluster_objects):
    ready_name, down_name, bare_name = unique("ready"), unique("down"), unique("bare")
    nodes = [
        {"apiVersion": "v1", "kind": "Node",
         "metadata": {"name": ready_name, "labels": {"node-role.kubernetes.io/control-plane": "",
                                                     "node-role.kubernetes.io/etcd": "",
                                                     "kubernetes.io/role": "master"}}},
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": down_name}, "spec": {"unschedulable": True}},
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": bare_name}},
    ]
    create(kubectl, nodes)
    cluster_objects.extend(f"node/{n}" for n in (ready_name, down_name, bare_name))
    statuses = {
        ready_name: {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                    {"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                     "addresses": [{"type": "InternalIP", "address": "192.168.5.10"},
                                   {"type": "ExternalIP", "address": "203.0.113.9"},
                                   {"type": "Hostname", "address": ready_name}],
                     "nodeInfo": {"kubeletVersion": "v1.37.2", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                  "kernelVersion": "6.1.0-18-amd64", "architecture": "amd64",
                                  "containerRuntimeVersion": "containerd://2.1.0", "machineID": "",
                                  "systemUUID": "", "bootID": "", "kubeProxyVersion": "",
                                  "operatingSystem": "linux"}},
        down_name: {"conditions": [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}]},
    }
    for name, status in statuses.items():
        node = core.api_client.sanitize_for_serialization(core.read_node(name))
        node["status"] = status
        core.replace_node_status(name, node)

    header, rows = get_table(kubectl, "nodes", ready_name, down_name, bare_name)
    assert header == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert [rows[ready_name][c] for c in ("STATUS", "ROLES", "VERSION")] == \
        ["Ready", "control-plane,etcd,master", "v1.37.2"]
    assert [rows[down_name][c] for c in ("STATUS", "ROLES", "VERSION")] == \
        ["NotReady,SchedulingDisabled", "<none>", ""]
    assert rows[bare_name]["STATUS"] == "Unknown"

    header, rows = get_table(kubectl, "nodes", ready_name, bare_name, "-o", "wide")
    assert header == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE",
                      "KERNEL-VERSION", "CONTAINER-RUNTIME"]
    assert [rows[ready_name][c] for c in header[5:]] == [
        "192.168.5.10", "203.0.113.9", "Debian GNU/Linux 12 (bookworm)", "6.1.0-18-amd64 (amd64)",
        "containerd://2.1.0"]
    assert [rows[bare_name][c] for c in header[5:]] == ["<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"]

    # cordoning shows up at once
    kubectl("cordon", ready_name)
    _, rows = get_table(kubectl, "node", ready_name)
    assert rows[ready_name]["STATUS"] == "Ready,SchedulingDisabled"


# -- workloads -----------------------------------------------------------------------------------

def test_deployment_columns(kubectl, namespace, api_client):
    kubectl("create", "deployment", "web", "--image=nginx:1.27", "--image=busybox:1.36", "--replicas=2",
            "-n", namespace)
    header, rows = get_table(kubectl, "deployments", "-n", namespace)
    assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert rows["web"]["READY"] == "0/2"

    # the controllers make two pods; the test plays kubelet and reports one of them ready
    v1 = client.CoreV1Api(api_client)
    deadline = time.time() + 20
    while len(pods := v1.list_namespaced_pod(namespace).items) < 2:
        assert time.time() < deadline
        time.sleep(0.1)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    v1.patch_namespaced_pod_status(pods[0].metadata.name, namespace, {"status": {
        "phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]}})
    while True:
        header, rows = get_table(kubectl, "deploy", "web", "-n", namespace, "-o", "wide")
        if rows["web"]["AVAILABLE"] == "1" or time.time() > deadline:
            break
        time.sleep(0.1)
    assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert [rows["web"][c] for c in header[1:4]] + [rows["web"][c] for c in header[5:]] == \
        ["1/2", "2", "1", "nginx,busybox", "nginx:1.27,busybox:1.36", "app=web"]

    # the scale subresource prints its own table; the status subresource the deployment's
    header, rows = get_table(kubectl, "deploy", "web", "-n", namespace, "--subresource=scale")
    assert header == ["NAME", "DESIRED", "AVAILABLE", "AGE"]
    assert [rows["web"]["DESIRED"], rows["web"]["AVAILABLE"]] == ["2", "2"]
    header, rows = get_table(kubectl, "deploy", "web", "-n", namespace, "--subresource=status")
    assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"] and rows["web"]["READY"] == "1/2"


def test_workload_columns(kubectl, namespace):
    template = {"metadata": {"labels": {"app": "w"}},
                "spec": {"containers": [{"name": "main", "image": "img:1"}], "restartPolicy": "Always"}}
    sel = {"matchLabels": {"app": "w"}, "matchExpressions": [{"key": "tier", "operator": "In",
                                                              "values": ["b", "a"]}]}
    job_tmpl = {"spec": {"containers": [{"name": "job", "image": "img:2"}], "restartPolicy": "Never"}}
    create(kubectl, [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs"},
         "spec": {"replicas": 3, "selector": sel,
                  "template": {**template, "metadata": {"labels": {"app": "w", "tier": "a"}}}}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "ds"},
         "spec": {"selector": {"matchLabels": {"app": "w"}},
                  "template": {**template, "spec": {**template["spec"], "nodeSelector": {"disk": "ssd"}}}}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "sts"},
         "spec": {"replicas": 2, "serviceName": "sts", "selector": {"matchLabels": {"app": "w"}},
                  "template": template}},
        {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
         "spec": {"replicas": 1, "selector": {"app": "w"}, "template": template}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "job"},
         "spec": {"parallelism": 2, "template": job_tmpl}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cron"},
         "spec": {"schedule": "*/5 * * * *", "timeZone": "Etc/UTC", "suspend": True,
                  "jobTemplate": {"spec": {"template": job_tmpl}}}},
    ], "-n", namespace)

    deadline = time.time() + 20
    while True:  # the replicaset controller makes its three pods
        header, rows = get_table(kubectl, "rs", "rs", "-n", namespace, "-o", "wide")
        if rows["rs"]["CURRENT"] == "3" or time.time() > deadline:
            break
        time.sleep(0.1)
    assert header == ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert [rows["rs"][c] for c in ("DESIRED", "CURRENT", "READY", "CONTAINERS", "IMAGES", "SELECTOR")] == \
        ["3", "3", "0", "main", "img:1", "app=w,tier in (a,b)"]

    header, rows = get_table(kubectl, "ds", "-n", namespace, "-o", "wide")
    assert header == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE",
                      "CONTAINERS", "IMAGES", "SELECTOR"]
    assert rows["ds"]["NODE SELECTOR"] == "disk=ssd" and rows["ds"]["DESIRED"] == "0"

    header, rows = get_table(kubectl, "sts", "-n", namespace, "-o", "wide")
    assert header == ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]
    assert rows["sts"]["READY"] == "0/2"

    header, rows = get_table(kubectl, "rc", "-n", namespace, "-o", "wide")
    assert header == ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert rows["rc"]["SELECTOR"] == "app=w"

    header, rows = get_table(kubectl, "jobs", "-n", namespace)
    assert header == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    # the Job controller has set startTime: the duration runs from there
    assert [rows["job"][c] for c in ("STATUS", "COMPLETIONS")] == ["Running", "0/1 of 2"]
    assert re.fullmatch(r"\d+s", rows["job"]["DURATION"])
    header, rows = get_table(kubectl, "jobs", "-n", namespace, "-o", "wide")
    assert header[5:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert rows["job"]["CONTAINERS"] == "job"

    header, rows = get_table(kubectl, "cronjobs", "-n", namespace)
    assert header == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"]
    assert [rows["cron"][c] for c in header[1:6]] == ["*/5 * * * *", "Etc/UTC", "True", "0", "<none>"]
    header, _ = get_table(kubectl, "cronjobs", "-n", namespace, "-o", "wide")
    assert header[7:] == ["CONTAINERS", "IMAGES", "SELECTOR"]


def test_job_status_cells(kubectl, namespace, api_client):
    # managed by someone else, so the Job controller leaves the status written here alone
    create(kubectl, {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "done"},
                     "spec": {"completions": 2, "managedBy": "example.com/test", "template": {"spec": {
                         "containers": [{"name": "c", "image": "img"}], "restartPolicy": "Never"}}}},
           "-n", namespace)
    batch = client.BatchV1Api(api_client)
    job = api_client.sanitize_for_serialization(batch.read_namespaced_job("done", namespace))
    job["status"] = {"succeeded": 2, "startTime": ts(200), "completionTime": ts(80),
                     "conditions": [{"type": "SuccessCriteriaMet", "status": "True",
                                     "lastTransitionTime": ts(80), "lastProbeTime": ts(80)},
                                    {"type": "Complete", "status": "True",
                                     "lastTransitionTime": ts(80), "lastProbeTime": ts(80)}]}
    batch.replace_namespaced_job_status("done", namespace, job)
    _, rows = get_table(kubectl, "job", "done", "-n", namespace)
    assert [rows["done"][c] for c in ("STATUS", "COMPLETIONS", "DURATION")] == ["Complete", "2/2", "2m"]


# -- services, namespaces, config ----------------------------------------------------------------

def test_service_columns(kubectl, namespace, core):
    create(kubectl, [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"selector": {"app": "web", "tier": "fe"},
                  "ports": [{"name": "http", "port": 80, "targetPort": 8080},
                            {"name": "dns", "port": 53, "protocol": "UDP"}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np"},
         "spec": {"type": "NodePort", "selector": {"app": "np"}, "externalIPs": ["198.51.100.7"],
                  "ports": [{"port": 80, "nodePort": 30080}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
         "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
         "spec": {"type": "ExternalName", "externalName": "db.example.com"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "headless"},
         "spec": {"clusterIP": "None", "selector": {"app": "h"}, "ports": [{"port": 5432}]}},
    ], "-n", namespace)
    header, rows = get_table(kubectl, "services", "-n", namespace)
    assert header == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    web = rows["web"]
    assert web["TYPE"] == "ClusterIP" and re.fullmatch(r"\d+\.\d+\.\d+\.\d+", web["CLUSTER-IP"])
    assert (web["EXTERNAL-IP"], web["PORT(S)"]) == ("<none>", "80/TCP,53/UDP")
    assert [rows["np"][c] for c in ("TYPE", "EXTERNAL-IP", "PORT(S)")] == \
        ["NodePort", "198.51.100.7", "80:30080/TCP"]
    lb = rows["lb"]
    assert lb["TYPE"] == "LoadBalancer" and lb["EXTERNAL-IP"] == "<pending>"
    assert re.fullmatch(r"443:3\d{4}/TCP", lb["PORT(S)"]), lb  # a node port was allocated
    assert [rows["ext"][c] for c in ("TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)")] == \
        ["ExternalName", "<none>", "db.example.com", "<none>"]
    assert rows["headless"]["CLUSTER-IP"] == "None"

    svc = core.api_client.sanitize_for_serialization(core.read_namespaced_service("lb", namespace))
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.20"}, {"hostname": "lb.example.com"}]}}
    core.replace_namespaced_service_status("lb", namespace, svc)
    header, rows = get_table(kubectl, "services", "-n", namespace, "-o", "wide")
    assert header == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]
    assert rows["lb"]["EXTERNAL-IP"] == "203.0.113.20,lb.example.com"
    assert rows["web"]["SELECTOR"] == "app=web,tier=fe"
    assert rows["lb"]["SELECTOR"] == "<none>"


def test_namespace_configmap_secret_columns(kubectl, namespace, core):
    header, rows = get_table(kubectl, "namespace", namespace)
    assert header == ["NAME", "STATUS", "AGE"] and rows[namespace]["STATUS"] == "Active"

    create(kubectl, [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"},
         "data": {"a": "1", "b": "2"}, "binaryData": {"c": base64.b64encode(b"\x00").decode()}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "empty"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"u": "x", "p": "y"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls"}, "type": "kubernetes.io/tls",
         "data": {"tls.crt": "", "tls.key": ""}},
    ], "-n", namespace)
    header, rows = get_table(kubectl, "configmaps", "-n", namespace)
    assert header == ["NAME", "DATA", "AGE"]
    assert (rows["cm"]["DATA"], rows["empty"]["DATA"]) == ("3", "0")
    header, rows = get_table(kubectl, "secrets", "-n", namespace)
    assert header == ["NAME", "TYPE", "DATA", "AGE"]
    assert [rows["s"]["TYPE"], rows["s"]["DATA"]] == ["Opaque", "2"]
    assert [rows["tls"]["TYPE"], rows["tls"]["DATA"]] == ["kubernetes.io/tls", "2"]

    # a namespace being deleted shows Terminating
    other = unique("gone")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="held", finalizers=["example.com/hold"]))
    core.create_namespaced_config_map(other, cm)
    try:
        core.delete_namespace(other)
        deadline = time.monotonic() + 10
        while True:
            _, rows = get_table(kubectl, "namespace", other)
            if rows[other]["STATUS"] == "Terminating" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert rows[other]["STATUS"] == "Terminating"
    finally:
        core.patch_namespaced_config_map("held", other, {"metadata": {"finalizers": None}})


# -- every served kind: the header kubectl prints ------------------------------------------------

def _csr_pem() -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    req = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])).sign(key, hashes.SHA256())
    return base64.b64encode(req.public_bytes(serialization.Encoding.PEM)).decode()


TEMPLATE = {"metadata": {"labels": {"app": "h"}},
            "spec": {"containers": [{"name": "c", "image": "img"}]}}
JOB_TEMPLATE = {"spec": {"containers": [{"name": "c", "image": "img"}], "restartPolicy": "Never"}}

# resource (as kubectl names it) -> (manifest, upstream's default columns, extra -o wide columns)
KINDS: dict[str, tuple[dict, list[str], list[str]]] = {
    "configmaps": ({"apiVersion": "v1", "kind": "ConfigMap"}, ["NAME", "DATA", "AGE"], []),
    "endpoints": ({"apiVersion": "v1", "kind": "Endpoints",
                   "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]},
                  ["NAME", "ENDPOINTS", "AGE"], []),
    "events": ({"apiVersion": "v1", "kind": "Event", "involvedObject": {"kind": "Pod", "name": "p"},
                "reason": "Tested", "message": "hello", "type": "Normal", "count": 1,
                "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:00:00Z",
                "source": {"component": "tests"}},
               ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
               ["SUBOBJECT", "SOURCE", "FIRST SEEN", "COUNT", "NAME"]),
    "limitranges": ({"apiVersion": "v1", "kind": "LimitRange",
                     "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}}]}},
                    ["NAME", "CREATED AT"], []),
    "persistentvolumeclaims": ({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                "spec": {"accessModes": ["ReadWriteOnce"],
                                         "resources": {"requests": {"storage": "1Gi"}}}},
                               ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS",
                                "VOLUMEATTRIBUTESCLASS", "AGE"], ["VOLUMEMODE"]),
    "persistentvolumes": ({"apiVersion": "v1", "kind": "PersistentVolume",
                           "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                    "hostPath": {"path": "/tmp/pv"}}},
                          ["NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM", "STORAGECLASS",
                           "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"], ["VOLUMEMODE"]),
    "pods": ({"apiVersion": "v1", "kind": "Pod", "spec": TEMPLATE["spec"]},
             ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]),
    "podtemplates": ({"apiVersion": "v1", "kind": "PodTemplate", "template": TEMPLATE},
                     ["NAME", "CONTAINERS", "IMAGES", "POD LABELS"], []),
    "replicationcontrollers": ({"apiVersion": "v1", "kind": "ReplicationController",
                                "spec": {"replicas": 0, "selector": {"app": "h"}, "template": TEMPLATE}},
                               ["NAME", "DESIRED", "CURRENT", "READY", "AGE"], ["CONTAINERS", "IMAGES", "SELECTOR"]),
    "resourcequotas": ({"apiVersion": "v1", "kind": "ResourceQuota", "spec": {"hard": {"pods": "10"}}},
                       ["NAME", "REQUEST", "LIMIT", "AGE"], []),
    "secrets": ({"apiVersion": "v1", "kind": "Secret"}, ["NAME", "TYPE", "DATA", "AGE"], []),
    "serviceaccounts": ({"apiVersion": "v1", "kind": "ServiceAccount"}, ["NAME", "AGE"], []),
    "services": ({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 80}]}},
                 ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"], ["SELECTOR"]),
    "nodes": ({"apiVersion": "v1", "kind": "Node"}, ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
              ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]),
    "namespaces": ({"apiVersion": "v1", "kind": "Namespace"}, ["NAME", "STATUS", "AGE"], []),
    "controllerrevisions.apps": ({"apiVersion": "apps/v1", "kind": "ControllerRevision", "revision": 1},
                                 ["NAME", "CONTROLLER", "REVISION", "AGE"], []),
    "daemonsets.apps": ({"apiVersion": "apps/v1", "kind": "DaemonSet",
                         "spec": {"selector": {"matchLabels": {"app": "h"}}, "template": TEMPLATE}},
                        ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"],
                        ["CONTAINERS", "IMAGES", "SELECTOR"]),
    "deployments.apps": ({"apiVersion": "apps/v1", "kind": "Deployment",
                          "spec": {"selector": {"matchLabels": {"app": "h"}}, "template": TEMPLATE}},
                         ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"], ["CONTAINERS", "IMAGES", "SELECTOR"]),
    "replicasets.apps": ({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                          "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "h"}}, "template": TEMPLATE}},
                         ["NAME", "DESIRED", "CURRENT", "READY", "AGE"], ["CONTAINERS", "IMAGES", "SELECTOR"]),
    "statefulsets.apps": ({"apiVersion": "apps/v1", "kind": "StatefulSet",
                           "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "h"}}, "template": TEMPLATE}},
                          ["NAME", "READY", "AGE"], ["CONTAINERS", "IMAGES"]),
    "events.events.k8s.io": ({"apiVersion": "events.k8s.io/v1", "kind": "Event",
                              "eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "tests/ctl",
                              "reportingInstance": "tests-1", "action": "Testing", "reason": "Tested",
                              "regarding": {"kind": "Pod", "name": "p"}, "note": "hi", "type": "Normal"},
                             ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
                             ["SUBOBJECT", "SOURCE", "FIRST SEEN", "COUNT", "NAME"]),
    "horizontalpodautoscalers.autoscaling": (
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                  "minReplicas": 1, "maxReplicas": 3,
                  "metrics": [{"type": "Resource", "resource": {
                      "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}},
        ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"], []),
    "cronjobs.batch": ({"apiVersion": "batch/v1", "kind": "CronJob",
                        "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": JOB_TEMPLATE}}}},
                       ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"],
                       ["CONTAINERS", "IMAGES", "SELECTOR"]),
    "jobs.batch": ({"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": JOB_TEMPLATE}},
                   ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"], ["CONTAINERS", "IMAGES", "SELECTOR"]),
    "certificatesigningrequests.certificates.k8s.io": (
        {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
         "spec": {"request": None, "signerName": "kubernetes.io/kube-apiserver-client",
                  "usages": ["client auth"]}},
        ["NAME", "AGE", "SIGNERNAME", "REQUESTOR", "REQUESTEDDURATION", "CONDITION"], []),
    "ingressclasses.networking.k8s.io": ({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                                          "spec": {"controller": "example.com/ingress"}},
                                         ["NAME", "CONTROLLER", "PARAMETERS", "AGE"], []),
    "ingresses.networking.k8s.io": (
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
         "spec": {"rules": [{"host": "a.example.com", "http": {"paths": [
             {"path": "/", "pathType": "Prefix",
              "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]}},
        ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"], []),
    "networkpolicies.networking.k8s.io": ({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                           "spec": {"podSelector": {}}}, ["NAME", "POD-SELECTOR", "AGE"], []),
    "servicecidrs.networking.k8s.io": ({"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR",
                                        "spec": {"cidrs": ["10.240.0.0/24"]}}, ["NAME", "CIDRS", "AGE"], []),
    # named by an address (the test picks one); upstream fills an age cell but declares no column
    "ipaddresses.networking.k8s.io": ({"apiVersion": "networking.k8s.io/v1", "kind": "IPAddress",
                                       "spec": {"parentRef": {"resource": "services", "namespace": "default",
                                                              "name": "nowhere"}}},
                                      ["NAME", "PARENTREF"], []),
    "poddisruptionbudgets.policy": ({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                                     "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "h"}}}},
                                    ["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"], []),
    "clusterrolebindings.rbac.authorization.k8s.io": (
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
         "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]},
        ["NAME", "ROLE", "AGE"], ["USERS", "GROUPS", "SERVICEACCOUNTS"]),
    "clusterroles.rbac.authorization.k8s.io": (
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
        ["NAME", "CREATED AT"], []),
    "rolebindings.rbac.authorization.k8s.io": (
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
         "subjects": [{"kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io"}]},
        ["NAME", "ROLE", "AGE"], ["USERS", "GROUPS", "SERVICEACCOUNTS"]),
    "roles.rbac.authorization.k8s.io": (
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
        ["NAME", "CREATED AT"], []),
    "csidrivers.storage.k8s.io": ({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
                                   "spec": {"attachRequired": False}},
                                  ["NAME", "ATTACHREQUIRED", "PODINFOONMOUNT", "STORAGECAPACITY", "TOKENREQUESTS",
                                   "REQUIRESREPUBLISH", "MODES", "AGE"], []),
    "csinodes.storage.k8s.io": ({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode", "spec": {"drivers": []}},
                                ["NAME", "DRIVERS", "AGE"], []),
    "csistoragecapacities.storage.k8s.io": ({"apiVersion": "storage.k8s.io/v1", "kind": "CSIStorageCapacity",
                                             "storageClassName": "standard", "capacity": "10Gi"},
                                            ["NAME", "STORAGECLASSNAME", "CAPACITY"], []),
    "storageclasses.storage.k8s.io": ({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                       "provisioner": "example.com/p"},
                                      ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE",
                                       "ALLOWVOLUMEEXPANSION", "AGE"], []),
    "volumeattachments.storage.k8s.io": ({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
                                          "spec": {"attacher": "example.com/csi", "nodeName": "n1",
                                                   "source": {"persistentVolumeName": "pv1"}}},
                                         ["NAME", "ATTACHER", "PV", "NODE", "ATTACHED", "AGE"], []),
    "priorityclasses.scheduling.k8s.io": ({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                           "value": 1000},
                                          ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"], []),
    "leases.coordination.k8s.io": ({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                    "spec": {"holderIdentity": "me"}}, ["NAME", "HOLDER", "AGE"], []),
    "runtimeclasses.node.k8s.io": ({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "handler": "runc"},
                                   ["NAME", "HANDLER", "AGE"], []),
    "clustertrustbundles.certificates.k8s.io": (
        {"apiVersion": "certificates.k8s.io/v1", "kind": "ClusterTrustBundle",
         "spec": {"trustBundle": "-----BEGIN CERTIFICATE-----\\n-----END CERTIFICATE-----\\n"}},
        ["NAME", "SIGNERNAME"], []),
    "podcertificaterequests.certificates.k8s.io": (
        {"apiVersion": "certificates.k8s.io/v1", "kind": "PodCertificateRequest",
         "spec": {"signerName": "example.com/s", "podName": "p", "podUID": "u1", "serviceAccountName": "default",
                  "serviceAccountUID": "u2", "nodeName": "n1", "nodeUID": "u3",
                  "stubPKCS10Request": "AAAA"}},
        ["NAME", "PODNAME", "SERVICEACCOUNTNAME", "NODENAME", "SIGNERNAME", "STATE"],
        ["UNVERIFIEDUSERANNOTATIONS"]),
    "volumeattributesclasses.storage.k8s.io": (
        {"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttributesClass", "driverName": "example.com/csi"},
        ["NAME", "DRIVERNAME", "AGE"], []),
    "deviceclasses.resource.k8s.io": ({"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass", "spec": {}},
                                      ["NAME", "AGE"], []),
    "devicetaintrules.resource.k8s.io": (
        {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceTaintRule",
         "spec": {"taint": {"key": "example.com/broken", "effect": "NoSchedule"}}},
        ["NAME", "KEY", "VALUE", "EFFECT", "TIMEADDED", "AGE"], []),
    "resourceclaims.resource.k8s.io": ({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
                                        "spec": {}}, ["NAME", "STATE", "AGE"], []),
    "resourceclaimtemplates.resource.k8s.io": ({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
                                                "spec": {"spec": {}}}, ["NAME", "AGE"], []),
    "resourceslices.resource.k8s.io": (
        {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
         "spec": {"driver": "example.com/d", "nodeName": "n1",
                  "pool": {"name": "p1", "generation": 1, "resourceSliceCount": 1}}},
        ["NAME", "NODE", "DRIVER", "POOL", "AGE"], []),
    "endpointslices.discovery.k8s.io": ({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                                         "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}],
                                         "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
                                        ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"], []),
}


def _served_listable_kinds() -> set[tuple[str, str]]:
    from shim.schemas import load_resources  # noqa: PLC0415
    return {(r.group, r.plural) for r in load_resources() if "list" in r.verbs}


def test_every_served_kind_is_covered():
    from shim import printers
    kinds = set()
    for resource in KINDS:
        plural, _, group = resource.partition(".")
        kinds.add((group, plural))
    assert kinds == _served_listable_kinds()
    for group, plural in kinds:
        p = printers.lookup(group, plural)
        assert p is not None, (group, plural)
        shown = [c["name"].upper() for c in p.columns if c["priority"] == 0]
        wide = [c["name"].upper() for c in p.columns if c["priority"] == 1]
        key = plural + (f".{group}" if group else "")
        assert (shown, wide) == (KINDS[key][1], KINDS[key][2]), key


def test_every_kind_prints_upstream_headers(kubectl, namespace, api_client, cluster_objects):
    from shim.schemas import load_resources
    scoped = {(r.group, r.plural): r.namespaced for r in load_resources()}
    failures = []
    for resource, (manifest, columns, wide) in KINDS.items():
        plural, _, group = resource.partition(".")
        obj = json.loads(json.dumps(manifest))
        if plural == "certificatesigningrequests":
            obj["spec"]["request"] = _csr_pem()
        for ref in ("involvedObject", "regarding"):
            if isinstance(obj.get(ref), dict):  # an Event is about an object of its namespace
                obj[ref]["namespace"] = namespace
        name = namespace if plural == "namespaces" else unique(plural[:20].rstrip("s"))
        if plural == "ipaddresses":
            name = "192.0.2." + str(1 + os.urandom(1)[0] % 254)  # the name is the address
        args = ["-n", namespace] if scoped[(group, plural)] else []
        if plural != "namespaces":
            obj["metadata"] = {"name": name}
            made = create(kubectl, obj, *args, check=False)
            if made.returncode != 0:
                failures.append(f"{resource}: create failed: {made.stderr.strip()}")
                continue
            if not scoped[(group, plural)]:
                cluster_objects.append(f"{resource}/{name}")
        for extra, want in (((), columns), (("-o", "wide"), _wide(columns, wide))):
            out = kubectl.run("get", resource, name, *args, *extra, check=False)
            got = [n for _, n in header_columns(out.stdout.splitlines()[0])] if out.stdout.strip() else []
            if got != want:
                failures.append(f"{resource} {' '.join(extra)}: {got} != {want} ({out.stderr.strip()})")
            elif len(out.stdout.strip().splitlines()) != 2:
                failures.append(f"{resource}: expected one row:\n{out.stdout}")
    assert not failures, "\n".join(failures)


def _wide(columns: list[str], wide: list[str]) -> list[str]:
    """The -o wide header: wide columns in their upstream places (after AGE, or interleaved)."""
    if not wide:
        return columns
    if columns[0] == "LAST SEEN":  # events interleave the wide columns
        return ["LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE", "FIRST SEEN", "COUNT",
                "NAME"]
    return columns + wide


def test_kind_specific_cells(kubectl, namespace, cluster_objects, api_client, core):
    create(kubectl, [
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "pdb"},
         "spec": {"maxUnavailable": "25%", "selector": {"matchLabels": {"app": "x"}}}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np"},
         "spec": {"podSelector": {"matchLabels": {"role": "db"}}}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "ing"},
         "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"]}],
                  "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}]}},
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ep"},
         "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 8080}]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
         "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"},
                      {"kind": "ServiceAccount", "name": "bot", "namespace": namespace}]},
        {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "lease"},
         "spec": {"holderIdentity": "node-a"}},
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "rq"},
         "spec": {"hard": {"pods": "10", "limits.cpu": "2"}}},
    ], "-n", namespace)
    _, rows = get_table(kubectl, "pdb", "pdb", "-n", namespace)
    assert [rows["pdb"][c] for c in ("MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS")] == ["N/A", "25%", "0"]
    _, rows = get_table(kubectl, "netpol", "np", "-n", namespace)
    assert rows["np"]["POD-SELECTOR"] == "role=db"
    _, rows = get_table(kubectl, "ingress", "ing", "-n", namespace)
    assert [rows["ing"][c] for c in ("CLASS", "HOSTS", "ADDRESS", "PORTS")] == \
        ["nginx", "a.example.com,b.example.com", "", "80, 443"]
    _, rows = get_table(kubectl, "endpoints", "ep", "-n", namespace)
    assert rows["ep"]["ENDPOINTS"] == "10.0.0.1:8080,10.0.0.2:8080"
    _, rows = get_table(kubectl, "rolebinding", "rb", "-n", namespace, "-o", "wide")
    assert [rows["rb"][c] for c in ("ROLE", "USERS", "GROUPS", "SERVICEACCOUNTS")] == \
        ["Role/reader", "alice", "", f"{namespace}/bot"]
    _, rows = get_table(kubectl, "lease", "lease", "-n", namespace)
    assert rows["lease"]["HOLDER"] == "node-a"
    quota = api_client.sanitize_for_serialization(core.read_namespaced_resource_quota("rq", namespace))
    quota["status"] = {"hard": {"pods": "10", "limits.cpu": "2", "requests.memory": "1Gi"},
                       "used": {"pods": "3", "limits.cpu": "500m"}}
    core.replace_namespaced_resource_quota_status("rq", namespace, quota)
    _, rows = get_table(kubectl, "quota", "rq", "-n", namespace)
    assert (rows["rq"]["REQUEST"], rows["rq"]["LIMIT"]) == ("pods: 3/10, requests.memory: 0/1Gi", "limits.cpu: 500m/2")

    # storage classes: the effective default is marked in lists only
    old, new = unique("sc-old"), unique("sc-new")
    ann = {"storageclass.kubernetes.io/is-default-class": "true"}
    create(kubectl, {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                     "metadata": {"name": old, "annotations": ann}, "provisioner": "example.com/p"})
    cluster_objects.append(f"storageclass/{old}")
    time.sleep(1.1)
    create(kubectl, {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                     "metadata": {"name": new, "annotations": ann}, "provisioner": "example.com/p",
                     "reclaimPolicy": "Retain", "volumeBindingMode": "WaitForFirstConsumer",
                     "allowVolumeExpansion": True})
    cluster_objects.append(f"storageclass/{new}")
    _, rows = parse(kubectl("get", "storageclasses"))
    byname = {r["NAME"]: r for r in rows}
    assert old in byname and f"{new} (default)" in byname
    assert [byname[f"{new} (default)"][c] for c in ("RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION")] \
        == ["Retain", "WaitForFirstConsumer", "true"]
    _, rows = get_table(kubectl, "storageclass", new)
    assert new in rows

    # roles print upstream's generic table: the creation time itself
    create(kubectl, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "reader"},
                     "rules": []}, "-n", namespace)
    _, rows = get_table(kubectl, "role", "reader", "-n", namespace)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows["reader"]["CREATED AT"])
