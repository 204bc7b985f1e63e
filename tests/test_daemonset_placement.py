"""The DaemonSet controller's pure rules: which nodes run a daemon pod, the tolerations and
node affinity it gets, the revision patch, and the status arithmetic helpers."""
from __future__ import annotations

import pytest

from shim.controllers.daemonset import (add_daemon_tolerations, is_pod_updated, node_should_run, revision_patch,
                                        surge_count, target_node, unavailable_count, with_node_affinity)


def ds(**pod_spec) -> dict:
    return {"metadata": {"name": "d", "annotations": {}},
            "spec": {"template": {"metadata": {"labels": {"app": "d"}}, "spec": pod_spec},
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%",
                                                                                   "maxSurge": 0}}}}


def node(name="n1", labels=None, taints=None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


@pytest.mark.parametrize("taint, expected", [
    ({"key": "x", "effect": "PreferNoSchedule"}, (True, True)),
    ({"key": "x", "effect": "NoSchedule"}, (False, True)),
    ({"key": "x", "effect": "NoExecute"}, (False, False)),
    ({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}, (True, True)),
    ({"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}, (True, True)),
    ({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}, (False, True)),
    ({"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}, (False, True)),
])
def test_taints(taint, expected):
    assert node_should_run(node(taints=[taint]), ds()) == expected


def test_host_network_tolerates_network_unavailable_and_template_tolerations_count():
    t = {"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}
    assert node_should_run(node(taints=[t]), ds(hostNetwork=True)) == (True, True)
    mine = {"key": "x", "operator": "Equal", "value": "y", "effect": "NoExecute"}
    assert node_should_run(node(taints=[{"key": "x", "value": "y", "effect": "NoExecute"}]),
                           ds(tolerations=[mine])) == (True, True)


def test_selector_affinity_and_node_name():
    d = ds(nodeSelector={"role": "edge"})
    assert node_should_run(node(labels={"role": "edge"}), d) == (True, True)
    assert node_should_run(node(labels={}), d) == (False, False)
    d = ds(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}}})
    assert node_should_run(node(labels={"zone": "b"}), d)[0] is True
    assert node_should_run(node(labels={"zone": "c"}), d) == (False, False)
    assert node_should_run(node("n2"), ds(nodeName="n1")) == (False, False)
    assert node_should_run(node("n1"), ds(nodeName="n1")) == (True, True)


def test_daemon_tolerations_replace_equal_ones_and_keep_the_rest():
    spec = {"tolerations": [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5},
        {"key": "mine", "operator": "Exists"}]}
    add_daemon_tolerations(spec)
    assert spec["tolerations"][0] == {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                      "effect": "NoExecute"}
    assert spec["tolerations"][1] == {"key": "mine", "operator": "Exists"}
    assert [t["key"] for t in spec["tolerations"][2:]] == [
        "node.kubernetes.io/unreachable", "node.kubernetes.io/disk-pressure", "node.kubernetes.io/memory-pressure",
        "node.kubernetes.io/pid-pressure", "node.kubernetes.io/unschedulable"]


def test_node_affinity_replaces_required_terms_only():
    aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
               {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
           "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {}}]},
           "podAntiAffinity": {}}
    out = with_node_affinity(aff, "n7")
    assert out["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]}
    assert out["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert "podAntiAffinity" in out and aff["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchExpressions"]  # the template's own affinity is untouched
    assert target_node({"spec": {"affinity": out}}) == "n7"
    assert target_node({"spec": {"nodeName": "n8", "affinity": out}}) == "n8"
    assert target_node({"spec": {}}) is None


def test_revision_patch_and_updated_pods():
    d = ds(containers=[{"name": "c", "image": "i"}])
    patch = revision_patch(d)
    assert list(patch["spec"]["template"]) == ["$patch", "metadata", "spec"]  # sorted as Go writes a map
    assert patch["spec"]["template"]["$patch"] == "replace"
    pod = {"metadata": {"labels": {"controller-revision-hash": "h1", "pod-template-generation": "2"}}}
    assert is_pod_updated(pod, "h1", None) and is_pod_updated(pod, "h2", 2)
    assert not is_pod_updated(pod, "h2", 3) and not is_pod_updated(pod, "", None)


def test_surge_and_unavailable_round_up():
    d = ds()
    assert unavailable_count(d, 5) == 2 and surge_count(d, 5) == 0
    d["spec"]["updateStrategy"] = {"type": "OnDelete"}
    assert unavailable_count(d, 5) == 0 and surge_count(d, 5) == 0
