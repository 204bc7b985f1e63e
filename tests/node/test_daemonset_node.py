"""A DaemonSet on a real node: the controller's pod is bound by the scheduler, started by the
upstream kubelet, counted ready and available, and replaced by a rolling update, all without
the test writing any pod status.

Same prerequisites as test_node.py (root, `shim node install`).
"""
from __future__ import annotations

import pytest

from node.test_node import (_core, _get_node, _ready, _wait, _wait_default_sa,  # noqa: F401
                            node, node_prereqs, ready_node, server)

pytestmark = [pytest.mark.node, pytest.mark.timeout(2400)]


def _status(apps, ns: str, name: str) -> dict:
    return apps.api_client.sanitize_for_serialization(apps.read_namespaced_daemon_set(name, ns)).get("status") or {}


def _running(v1, ns: str, selector: str) -> list:
    return [p for p in v1.list_namespaced_pod(ns, label_selector=selector).items
            if p.metadata.deletion_timestamp is None and p.status.phase == "Running"
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or ())]


def test_daemonset_runs_and_rolls_on_a_real_node(ready_node, api_client, namespace, kubectl):
    from kubernetes import client
    v1, apps = _core(api_client), client.AppsV1Api(api_client)
    _wait_default_sa(v1, namespace)
    apps.create_namespaced_daemon_set(namespace, {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"terminationGracePeriodSeconds": 2,
                                       "containers": [{"name": "main", "image": "busybox:local",
                                                       "command": ["sh", "-c", "trap 'exit 0' TERM; "
                                                                   "while true; do sleep 1; done"],
                                                       "env": [{"name": "V", "value": "1"}]}]}}}})
    pods = _wait(lambda: _running(v1, namespace, "app=agent"), 90, what="the daemon pod running")
    assert len(pods) == 1 and pods[0].spec.node_name == ready_node.name
    first = pods[0].metadata.name
    _wait(lambda: (lambda s: (s.get("desiredNumberScheduled"), s.get("numberReady"), s.get("numberAvailable"))
                   == (1, 1, 1))(_status(apps, namespace, "agent")), 30, what="status counts")

    kubectl("set", "env", "ds/agent", "-n", namespace, "V=2")
    out = kubectl("rollout", "status", "ds/agent", "-n", namespace, "--timeout=120s")
    assert 'daemon set "agent" successfully rolled out' in out
    pods = _wait(lambda: [p for p in _running(v1, namespace, "app=agent") if p.metadata.name != first], 60,
                 what="the replacement running")
    assert pods[0].spec.node_name == ready_node.name
    assert pods[0].metadata.labels["pod-template-generation"] == "2"
    # the old pod went through the kubelet's graceful termination
    _wait(lambda: not [p for p in v1.list_namespaced_pod(namespace).items if p.metadata.name == first], 60,
          what="the old pod gone")
    hist = kubectl("rollout", "history", "ds/agent", "-n", namespace).split()
    assert "1" in hist and "2" in hist
