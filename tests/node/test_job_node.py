"""Jobs on a real kubelet: the kubelet, not the test, runs the pods and reports their exit
codes; the Job controller counts them, removes its tracking finalizers and finishes the Job.

Same prerequisites as test_node.py (root, `shim node install`).
"""
from __future__ import annotations

import pytest

from node.test_node import _core, _wait, _wait_default_sa, node, node_prereqs, ready_node, server  # noqa: F401

pytestmark = [pytest.mark.node, pytest.mark.timeout(2400)]


def _job(name: str, script: str, **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {**spec, "template": {"spec": {
                "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "main", "image": "busybox:local", "command": ["sh", "-c", script]}]}}}}


def _conditions(batch, ns, name) -> dict:
    job = batch.read_namespaced_job(name, ns)
    return {c.type: c for c in job.status.conditions or ()}


def test_indexed_job_runs_to_completion_and_fail_job_policy(ready_node, api_client, namespace):
    from kubernetes import client
    v1, batch = _core(api_client), client.BatchV1Api(api_client)
    _wait_default_sa(v1, namespace)
    # each pod sees its own index; index 1 sleeps a little so both run in parallel
    batch.create_namespaced_job(namespace, _job(
        "idx", 'test "$JOB_COMPLETION_INDEX" = "$(hostname | sed s/idx-//)" && sleep "$JOB_COMPLETION_INDEX"',
        completions=2, parallelism=2, completionMode="Indexed"))
    _wait(lambda: "Complete" in _conditions(batch, namespace, "idx"), 120, what="indexed job complete")
    job = batch.read_namespaced_job("idx", namespace)
    assert job.status.succeeded == 2 and not job.status.failed and job.status.completed_indexes == "0,1"
    pods = v1.list_namespaced_pod(namespace, label_selector="batch.kubernetes.io/job-name=idx").items
    assert sorted(p.spec.hostname for p in pods) == ["idx-0", "idx-1"]
    assert all(p.status.phase == "Succeeded" and p.spec.node_name == ready_node.name for p in pods)
    assert all("batch.kubernetes.io/job-tracking" not in (p.metadata.finalizers or []) for p in pods)

    # a container exit code the kubelet reports matches the FailJob rule
    batch.create_namespaced_job(namespace, _job("fail", "exit 42", backoffLimit=3, podFailurePolicy={"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}}]}))
    _wait(lambda: "Failed" in _conditions(batch, namespace, "fail"), 120, what="job failed by policy")
    cond = _conditions(batch, namespace, "fail")["Failed"]
    assert cond.reason == "PodFailurePolicy"
    assert "failed with exit code 42 matching FailJob rule at index 0" in cond.message
    assert batch.read_namespaced_job("fail", namespace).status.failed == 1
