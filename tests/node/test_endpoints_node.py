"""Endpoints of a pod a real kubelet runs: its readiness probe, not the test, moves the
address between ready and not ready in the Service's EndpointSlice and Endpoints.

Same prerequisites as test_node.py (root, `shim node install`).
"""
from __future__ import annotations

import pytest

from node.test_node import (_core, _get_node, _pod, _ready, _wait, _wait_default_sa,  # noqa: F401
                            node, node_prereqs, ready_node, server)

pytestmark = [pytest.mark.node, pytest.mark.timeout(2400)]


def _slice_endpoint(disc, ns: str, svc: str, pod: str):
    for s in disc.list_namespaced_endpoint_slice(ns, label_selector=f"kubernetes.io/service-name={svc}").items:
        for ep in s.endpoints or ():
            if ep.target_ref and ep.target_ref.name == pod:
                return ep
    return None


def _endpoints_split(v1, ns: str, svc: str) -> tuple[set, set]:
    ep = v1.read_namespaced_endpoints(svc, ns)
    ready, not_ready = set(), set()
    for subset in ep.subsets or ():
        ready |= {a.ip for a in subset.addresses or ()}
        not_ready |= {a.ip for a in subset.not_ready_addresses or ()}
    return ready, not_ready


def test_readiness_probe_moves_the_endpoint(ready_node, api_client, namespace):
    from kubernetes import client
    v1, disc = _core(api_client), client.DiscoveryV1Api(api_client)
    _wait_default_sa(v1, namespace)
    v1.create_namespaced_service(namespace, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "probed"},
        "spec": {"selector": {"app": "probed"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
    # ready once /tmp/ready exists (after ~8 s), not ready again once it is gone (~15 s later)
    body = _pod("probed", ready_node.name,
                ["sh", "-c", "trap 'exit 0' TERM; sleep 8; touch /tmp/ready; sleep 15; rm /tmp/ready; "
                             "while true; do sleep 1; done"])
    body["metadata"]["labels"] = {"app": "probed"}
    c = body["spec"]["containers"][0]
    c["ports"] = [{"name": "http", "containerPort": 8080}]
    c["readinessProbe"] = {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1, "failureThreshold": 1}
    v1.create_namespaced_pod(namespace, body)

    first = _wait(lambda: _slice_endpoint(disc, namespace, "probed", "probed"), 60,
                  what="the pod's endpoint (once it has an IP)")
    ip = first.addresses[0]
    assert first.node_name == ready_node.name
    assert first.conditions.ready is False and first.conditions.serving is False
    _wait(lambda: _endpoints_split(v1, namespace, "probed") == (set(), {ip}), 10, what="not ready in Endpoints")

    _wait(lambda: (e := _slice_endpoint(disc, namespace, "probed", "probed")) is not None
          and e.conditions.ready, 30, what="ready after the probe passes")
    _wait(lambda: _endpoints_split(v1, namespace, "probed") == ({ip}, set()), 10, what="ready in Endpoints")
    ports = disc.list_namespaced_endpoint_slice(
        namespace, label_selector="kubernetes.io/service-name=probed").items[0].ports
    assert [(p.name, p.port) for p in ports] == [("http", 8080)]

    _wait(lambda: (e := _slice_endpoint(disc, namespace, "probed", "probed")) is not None
          and e.conditions.ready is False and e.conditions.serving is False, 40,
          what="not ready after the probe fails")
    _wait(lambda: _endpoints_split(v1, namespace, "probed") == (set(), {ip}), 10, what="not ready in Endpoints")
