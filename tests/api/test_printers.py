"""Unit tests for shim.printers: pod STATUS/READY/RESTARTS and the other computed cells.

Expected values are what kube-apiserver v1.37's printers produce for the same objects.
"""
from __future__ import annotations

import datetime as dt
import re

import pytest

from shim import printers
from shim.api import tables
from shim.printers import pod_summary


def ts(seconds_ago: float = 0) -> str:
    t = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds_ago)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(containers=("c",), init=(), status=None, deleting=False, **spec) -> dict:
    md = {"name": "p", "namespace": "ns", "creationTimestamp": ts(30)}
    if deleting:
        md["deletionTimestamp"] = ts(0)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "spec": {"containers": [{"name": n, "image": "img"} for n in containers],
                     "initContainers": [dict(c) if isinstance(c, dict) else {"name": c, "image": "img"}
                                        for c in init], **spec},
            "status": status or {}}


def running(name="c", ready=True, restarts=0, **extra) -> dict:
    return {"name": name, "ready": ready, "restartCount": restarts,
            "state": {"running": {"startedAt": ts(60)}}, **extra}


def waiting(name="c", reason="", restarts=0, **extra) -> dict:
    w = {"reason": reason} if reason else {}
    return {"name": name, "ready": False, "restartCount": restarts, "state": {"waiting": w}, **extra}


def terminated(name="c", exit_code=0, reason="", signal=0, restarts=0, **extra) -> dict:
    t = {"exitCode": exit_code}
    if reason:
        t["reason"] = reason
    if signal:
        t["signal"] = signal
    return {"name": name, "ready": False, "restartCount": restarts, "state": {"terminated": t}, **extra}


READY = {"type": "Ready", "status": "True"}
INITIALIZED = {"type": "Initialized", "status": "True"}


def summary(p):
    s = pod_summary(p)
    return s["ready"], s["status"], s["restarts"]


# -- pod status -------------------------------------------------------------------------------

def test_pending_without_statuses():
    assert summary(pod(status={"phase": "Pending"})) == ("0/1", "Pending", 0)


def test_no_status_at_all_is_empty():
    assert summary(pod()) == ("0/1", "", 0)


def test_container_creating():
    p = pod(status={"phase": "Pending", "containerStatuses": [waiting(reason="ContainerCreating")]})
    assert summary(p) == ("0/1", "ContainerCreating", 0)


def test_running_ready():
    p = pod(containers=("a", "b"), status={"phase": "Running", "conditions": [READY],
                                           "containerStatuses": [running("a"), running("b")]})
    assert summary(p) == ("2/2", "Running", 0)


def test_running_one_of_two_ready():
    p = pod(containers=("a", "b"), status={"phase": "Running",
                                           "containerStatuses": [running("a"), running("b", ready=False)]})
    assert summary(p) == ("1/2", "Running", 0)


def test_crash_loop_back_off_with_restarts():
    last = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ts(330)}}
    p = pod(status={"phase": "Running",
                    "containerStatuses": [waiting(reason="CrashLoopBackOff", restarts=4, lastState=last)]})
    ready, status, restarts = summary(p)
    assert (ready, status, restarts) == ("0/1", "CrashLoopBackOff", 4)
    cells = printers.lookup("", "pods").row(p)
    assert re.fullmatch(r"4 \(5m3\ds ago\)", cells[3]), cells[3]


def test_restarts_without_last_termination_time_are_a_bare_count():
    p = pod(status={"phase": "Running", "containerStatuses": [running(restarts=2)]})
    assert printers.lookup("", "pods").row(p)[3] == "2"


def test_completed():
    p = pod(status={"phase": "Succeeded", "containerStatuses": [terminated(reason="Completed")]})
    assert summary(p) == ("0/1", "Completed", 0)


def test_error_and_exit_code_and_signal():
    p = pod(status={"phase": "Failed", "containerStatuses": [terminated(exit_code=2, reason="Error")]})
    assert summary(p)[1] == "Error"
    p = pod(status={"phase": "Failed", "containerStatuses": [terminated(exit_code=137)]})
    assert summary(p)[1] == "ExitCode:137"
    p = pod(status={"phase": "Failed", "containerStatuses": [terminated(exit_code=1, signal=9)]})
    assert summary(p)[1] == "Signal:9"


def test_completed_with_a_running_container():
    # the last container (printed first) completed while another still runs
    sts = [terminated("a", reason="Completed"), running("b")]
    p = pod(containers=("a", "b"), status={"phase": "Running", "containerStatuses": sts})
    assert summary(p) == ("1/2", "NotReady", 0)
    p["status"]["conditions"] = [READY]
    assert summary(p) == ("1/2", "Running", 0)
    sts = [terminated("a", reason="Completed"), terminated("b", exit_code=3, reason="Error")]
    p = pod(containers=("a", "b"), status={"phase": "Running", "containerStatuses": sts})
    # reversed walk: b sets Error (errorReason), then a sets Completed, which falls back to the error
    assert summary(p)[1] == "Error"


def test_terminating():
    p = pod(deleting=True, status={"phase": "Running", "containerStatuses": [running()]})
    assert summary(p)[1] == "Terminating"
    # a finished pod stays as it finished
    p = pod(deleting=True, status={"phase": "Succeeded", "containerStatuses": [terminated(reason="Completed")]})
    assert summary(p)[1] == "Completed"
    p = pod(deleting=True, status={"phase": "Running", "reason": "NodeLost"})
    assert summary(p)[1] == "Unknown"


def test_init_containers():
    p = pod(init=("i",), status={"phase": "Pending", "initContainerStatuses": [running("i", ready=False)],
                                 "containerStatuses": [waiting(reason="PodInitializing")]})
    assert summary(p) == ("0/1", "Init:0/1", 0)
    p = pod(init=("i", "j"), status={"phase": "Pending", "initContainerStatuses": [
        terminated("i", reason="Completed"), waiting("j", restarts=2)]})
    assert summary(p) == ("0/1", "Init:1/2", 2)
    p = pod(init=("i",), status={"phase": "Pending", "initContainerStatuses": [
        waiting("i", reason="CrashLoopBackOff", restarts=3)]})
    assert summary(p) == ("0/1", "Init:CrashLoopBackOff", 3)
    p = pod(init=("i",), status={"phase": "Pending", "initContainerStatuses": [
        terminated("i", exit_code=1, reason="Error")]})
    assert summary(p)[1] == "Init:Error"
    p = pod(init=("i",), status={"phase": "Pending", "initContainerStatuses": [terminated("i", exit_code=5)]})
    assert summary(p)[1] == "Init:ExitCode:5"
    p = pod(init=("i",), status={"phase": "Pending", "initContainerStatuses": [
        terminated("i", exit_code=1, signal=15)]})
    assert summary(p)[1] == "Init:Signal:15"
    # PodInitializing as an init container's waiting reason counts as plain progress
    p = pod(init=("i",), status={"phase": "Pending", "initContainerStatuses": [
        waiting("i", reason="PodInitializing")]})
    assert summary(p)[1] == "Init:0/1"


def test_init_done_then_running():
    p = pod(init=("i",), status={"phase": "Running", "conditions": [INITIALIZED, READY],
                                 "initContainerStatuses": [terminated("i", reason="Completed", restarts=1)],
                                 "containerStatuses": [running()]})
    # init restarts of ordinary init containers no longer count once initialized
    assert summary(p) == ("1/1", "Running", 0)


def test_sidecar_init_containers_count():
    sidecar = {"name": "s", "image": "img", "restartPolicy": "Always"}
    p = pod(init=(sidecar,), status={
        "phase": "Running", "conditions": [INITIALIZED, READY],
        "initContainerStatuses": [running("s", restarts=2, started=True)],
        "containerStatuses": [running(restarts=1)]})
    assert summary(p) == ("2/2", "Running", 3)


def test_scheduling_gated():
    p = pod(status={"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]})
    assert summary(p)[1] == "SchedulingGated"


def test_status_reason_overrides_phase():
    p = pod(status={"phase": "Failed", "reason": "Evicted"})
    assert summary(p)[1] == "Evicted"


def test_pod_wide_cells_and_conditions():
    p = pod(nodeName="n1", readinessGates=[{"conditionType": "x/a"}, {"conditionType": "x/b"}],
            status={"phase": "Running", "podIPs": [{"ip": "10.1.2.3"}, {"ip": "fd00::1"}],
                    "conditions": [{"type": "x/a", "status": "True"}, {"type": "x/b", "status": "False"}],
                    "containerStatuses": [running()]})
    cells = printers.lookup("", "pods").row(p)
    assert cells[0] == "p" and cells[4] == "30s"
    assert cells[5:] == ["10.1.2.3", "n1", "<none>", "1/2"]
    assert printers.lookup("", "pods").row(pod())[5:] == ["<none>", "<none>", "<none>", "<none>"]
    pr = printers.lookup("", "pods")
    assert "conditions" not in pr.rows([p])[0]
    done = pod(status={"phase": "Succeeded"})
    assert pr.rows([done])[0]["conditions"][0]["type"] == "Completed"


# -- durations --------------------------------------------------------------------------------

@pytest.mark.parametrize("seconds,expected", [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (59, "59s"), (119, "119s"), (120, "2m"), (130, "2m10s"),
    (599, "9m59s"), (600, "10m"), (3 * 3600 - 1, "179m"), (3 * 3600, "3h"), (3 * 3600 + 60, "3h1m"),
    (8 * 3600, "8h"), (47 * 3600, "47h"), (48 * 3600, "2d"), (49 * 3600, "2d1h"), (8 * 86400, "8d"),
    (2 * 365 * 86400, "2y"), (2 * 365 * 86400 + 86400, "2y1d"), (9 * 365 * 86400, "9y"),
])
def test_human_duration(seconds, expected):
    assert tables.human_duration(dt.timedelta(seconds=seconds)) == expected


# -- other kinds ------------------------------------------------------------------------------

def row(group, plural, obj):
    obj.setdefault("metadata", {}).setdefault("name", "x")
    obj["metadata"].setdefault("creationTimestamp", ts(5))
    return printers.lookup(group, plural).row(obj)


def test_node_cells():
    node = {"metadata": {"labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "edge",
                                    "node-role.kubernetes.io/": ""}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": "False"}],
                       "addresses": [{"type": "Hostname", "address": "h"},
                                     {"type": "InternalIP", "address": "10.0.0.2"}],
                       "nodeInfo": {"kubeletVersion": "v1.37.2", "kernelVersion": "6.1", "architecture": "arm64"}}}
    assert row("", "nodes", node)[1:] == ["NotReady,SchedulingDisabled", "control-plane,edge", "5s", "v1.37.2",
                                          "10.0.0.2", "<none>", "<unknown>", "6.1 (arm64)", "<unknown>"]
    assert row("", "nodes", {})[1:3] == ["Unknown", "<none>"]


def test_service_cells():
    def svc(**spec):
        return {"spec": spec, "status": {}}
    assert row("", "services", svc(type="ClusterIP", clusterIPs=["10.0.0.1"],
                                   ports=[{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
                                   selector={"b": "2", "a": "1"}))[1:] == \
        ["ClusterIP", "10.0.0.1", "<none>", "80/TCP,53/UDP", "5s", "a=1,b=2"]
    assert row("", "services", svc(type="NodePort", clusterIPs=["10.0.0.2"], externalIPs=["1.2.3.4"],
                                   ports=[{"port": 80, "nodePort": 30080, "protocol": "TCP"}]))[2:5] == \
        ["10.0.0.2", "1.2.3.4", "80:30080/TCP"]
    lb = svc(type="LoadBalancer", clusterIPs=["10.0.0.3"], ports=[])
    assert row("", "services", lb)[3:5] == ["<pending>", "<none>"]
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example.com"},
                                                 {"ip": "5.6.7.8"}]}}
    assert row("", "services", lb)[3] == "5.6.7.8,lb.example.com"
    lb["spec"]["externalIPs"] = ["9.9.9.9"]
    assert row("", "services", lb)[3] == "5.6.7.8,lb.example.com,9.9.9.9"
    ext = svc(type="ExternalName", externalName="db.example.com")
    assert row("", "services", ext)[1:4] == ["ExternalName", "<none>", "db.example.com"]


def test_label_selectors():
    f = printers.format_label_selector
    assert f(None) == "<none>" and f({}) == "<none>"
    assert f({"matchLabels": {"b": "2", "a": "1"},
              "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]},
                                   {"key": "c", "operator": "NotIn", "values": ["x"]},
                                   {"key": "d", "operator": "Exists"},
                                   {"key": "e", "operator": "DoesNotExist"}]}) == \
        "a=1,b=2,c notin (x),d,!e,env in (dev,prod)"
    assert f({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}) == "<error>"
    assert printers.format_labels({}) == "<none>"
    # sorted as key=value strings, like upstream
    assert printers.format_labels({"a": "1", "a.b": "2"}) == "a.b=2,a=1"


def test_deployment_and_job_cells():
    d = {"spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"spec": {"containers": [{"name": "a", "image": "ia"}, {"name": "b", "image": "ib"}]}}},
         "status": {"readyReplicas": 1, "updatedReplicas": 2, "availableReplicas": 1}}
    assert row("apps", "deployments", d)[1:] == ["1/3", 2, 1, "5s", "a,b", "ia,ib", "app=web"]
    job = {"spec": {"parallelism": 3, "template": {"spec": {"containers": []}}},
           "status": {"succeeded": 1, "startTime": ts(100), "completionTime": ts(40),
                      "conditions": [{"type": "Complete", "status": "True"}]}}
    assert row("batch", "jobs", job)[1:4] == ["Complete", "1/1 of 3", "60s"]
    job = {"spec": {"completions": 2}, "status": {}, "metadata": {"deletionTimestamp": ts(0)}}
    assert row("batch", "jobs", job)[1:4] == ["Terminating", "0/2", ""]


def test_storage_class_default_marker_only_in_lists():
    ann = {"storageclass.kubernetes.io/is-default-class": "true"}
    old = {"metadata": {"name": "old", "annotations": ann, "creationTimestamp": ts(100)}, "provisioner": "p"}
    new = {"metadata": {"name": "new", "annotations": ann, "creationTimestamp": ts(10)}, "provisioner": "p"}
    pr = printers.lookup("storage.k8s.io", "storageclasses")
    rows = pr.rows([old, new], is_list=True)
    assert [r["cells"][0] for r in rows] == ["old", "new (default)"]
    assert rows[1]["cells"][1:5] == ["p", "Delete", "Immediate", False]
    assert pr.rows([new], is_list=False)[0]["cells"][0] == "new"


def test_events_print_alike_in_both_groups():
    core = {"metadata": {"name": "e1"}, "type": "Warning", "reason": "BackOff",
            "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{c}"},
            "message": " restarting \n", "firstTimestamp": ts(600), "lastTimestamp": ts(30), "count": 7,
            "source": {"component": "kubelet", "host": "n1"}}
    v1 = {"metadata": {"name": "e1"}, "type": "Warning", "reason": "BackOff",
          "regarding": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{c}"},
          "note": " restarting \n", "deprecatedFirstTimestamp": ts(600), "deprecatedLastTimestamp": ts(30),
          "deprecatedCount": 7, "deprecatedSource": {"component": "kubelet", "host": "n1"}}
    expected = ["30s", "Warning", "BackOff", "pod/p", "spec.containers{c}", "kubelet, n1", "restarting",
                "10m", 7, "e1"]
    assert row("", "events", core) == expected
    assert row("events.k8s.io", "events", v1) == expected
    series = {"metadata": {"name": "e2"}, "regarding": {"kind": "Node"}, "eventTime": ts(300),
              "reportingController": "ctrl", "series": {"count": 3, "lastObservedTime": ts(20)}}
    assert row("events.k8s.io", "events", series) == ["20s", "", "", "node", "", "ctrl", "", "5m", 3, "e2"]


def test_misc_kinds():
    assert row("", "persistentvolumeclaims", {"spec": {"volumeName": "pv1"},
                                              "status": {"phase": "Bound", "capacity": {"storage": "1Gi"},
                                                         "accessModes": ["ReadWriteMany", "ReadWriteOnce"]}}) == \
        ["x", "Bound", "pv1", "1Gi", "RWO,RWX", "", "<unset>", "5s", "<unset>"]
    assert row("", "persistentvolumes", {"spec": {"claimRef": {"namespace": "n", "name": "c"}}})[1:7] == \
        ["0", "", "", "", "n/c", ""]
    assert row("", "resourcequotas", {"status": {"hard": {"pods": "10", "limits.cpu": "2", "cpu": "1"},
                                                 "used": {"pods": "3"}}})[1:3] == \
        ["cpu: 0/1, pods: 3/10", "limits.cpu: 0/2"]
    assert row("", "endpoints", {"subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}],
                                              "ports": [{"port": 80}, {"port": 443}]}]})[1] == \
        "10.0.0.1:80,[fd00::1]:80,10.0.0.1:443 + 1 more..."
    assert row("", "endpoints", {})[1] == "<none>"
    assert row("discovery.k8s.io", "endpointslices", {"addressType": "IPv4", "ports": [{"name": "http"}, {}],
                                                      "endpoints": []})[1:4] == ["IPv4", "http,*", "<unset>"]
    assert row("policy", "poddisruptionbudgets", {"spec": {"minAvailable": "50%"},
                                                  "status": {"disruptionsAllowed": 1}})[1:4] == ["50%", "N/A", 1]
    assert row("apps", "controllerrevisions", {"metadata": {"ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "controller": True}]},
        "revision": 4})[1:3] == ["daemonset.apps/ds", 4]
    assert row("batch", "cronjobs", {"spec": {"schedule": "*/5 * * * *"}})[1:6] == \
        ["*/5 * * * *", "<none>", "<unset>", 0, "<none>"]
    assert row("certificates.k8s.io", "certificatesigningrequests", {
        "spec": {"signerName": "s", "username": "u", "expirationSeconds": 3600},
        "status": {"conditions": [{"type": "Approved"}], "certificate": "Y2VydA=="}})[2:] == \
        ["s", "u", "60m", "Approved,Issued"]
    hpa = {"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5, "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}},
        {"type": "Resource", "resource": {"name": "memory",
                                          "target": {"type": "AverageValue", "averageValue": "1Gi"}}}]},
        "status": {"currentReplicas": 2, "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12}}}]}}
    assert row("autoscaling", "horizontalpodautoscalers", hpa)[1:6] == \
        ["Deployment/web", "cpu: 12%/50%, <unknown>/1k + 1 more...", "<unset>", 5, 2]
    assert row("rbac.authorization.k8s.io", "rolebindings", {
        "roleRef": {"kind": "Role", "name": "r"},
        "subjects": [{"kind": "User", "name": "a"}, {"kind": "User", "name": "b"},
                     {"kind": "ServiceAccount", "namespace": "n", "name": "sa"}]})[1:] == \
        ["Role/r", "5s", "a, b", "", "n/sa"]
    created = row("rbac.authorization.k8s.io", "roles", {"metadata": {"creationTimestamp": "2024-05-06T07:08:09Z"}})
    assert created == ["x", "2024-05-06T07:08:09Z"]
    assert printers.lookup("rbac.authorization.k8s.io", "roles").columns[1]["type"] == "date"
