"""Kinds a v1.37 cluster serves by default that a kubelet or kubectl reaches for:
resource.k8s.io/v1 (dynamic resource allocation), certificates.k8s.io/v1 pod certificate
requests and trust bundles, storage.k8s.io/v1 VolumeAttributesClass, and the
SelfSubjectReview behind `kubectl auth whoami`."""
from __future__ import annotations

import json

from .test_kubectl import names, table


def test_api_resources_lists_the_v1_37_default_kinds(kubectl):
    dra = names(kubectl("api-resources", "--api-group=resource.k8s.io", "-o", "name"))
    assert dra == {"deviceclasses.resource.k8s.io", "devicetaintrules.resource.k8s.io",
                   "resourceclaims.resource.k8s.io", "resourceclaimtemplates.resource.k8s.io",
                   "resourceslices.resource.k8s.io"}
    rows = {r["NAME"]: r for r in table(kubectl("api-resources", "--api-group=certificates.k8s.io"))}
    assert (rows["podcertificaterequests"]["NAMESPACED"], rows["podcertificaterequests"]["KIND"]) == \
        ("true", "PodCertificateRequest")
    assert rows["clustertrustbundles"]["NAMESPACED"] == "false"
    storage = names(kubectl("api-resources", "--api-group=storage.k8s.io", "-o", "name"))
    assert "volumeattributesclasses.storage.k8s.io" in storage


def _slice(name: str, node: str, driver: str = "example.com/gpu") -> str:
    return json.dumps({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
                       "metadata": {"name": name},
                       "spec": {"driver": driver, "nodeName": node,
                                "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                                "devices": [{"name": "gpu-0"}]}})


def test_resource_slices_select_and_delete_by_node(kubectl, api_client):
    """What a kubelet does on start: list its node's slices, then delete them as a collection."""
    from kubernetes import client
    for name, node in (("rs-a1", "node-a"), ("rs-a2", "node-a"), ("rs-b1", "node-b")):
        kubectl.run("apply", "-f", "-", input=_slice(name, node))
    try:
        api = client.ResourceV1Api(api_client)
        got = api.list_resource_slice(field_selector="spec.nodeName=node-a")
        assert sorted(s.metadata.name for s in got.items) == ["rs-a1", "rs-a2"]
        assert got.items[0].spec.devices[0].name == "gpu-0"
        out = kubectl("get", "resourceslices", "--field-selector", "spec.driver=example.com/gpu",
                      "-o", "name")
        assert names(out) == {"resourceslice.resource.k8s.io/rs-a1", "resourceslice.resource.k8s.io/rs-a2",
                              "resourceslice.resource.k8s.io/rs-b1"}
        bad = kubectl.run("get", "resourceslices", "--field-selector", "spec.bogus=x", check=False)
        assert bad.returncode != 0 and "field label not supported" in bad.stderr
        api.delete_collection_resource_slice(field_selector="spec.nodeName=node-a")
        left = api.list_resource_slice()
        assert [s.metadata.name for s in left.items] == ["rs-b1"]
        # generation follows spec changes
        before = api.read_resource_slice("rs-b1").metadata.generation
        kubectl("patch", "resourceslice", "rs-b1", "--type=merge", "-p",
                '{"spec":{"devices":[{"name":"gpu-0"},{"name":"gpu-1"}]}}')
        assert api.read_resource_slice("rs-b1").metadata.generation == before + 1
    finally:
        kubectl.run("delete", "resourceslices", "--all", check=False)


def test_resource_claim_state_column_and_status(kubectl, namespace):
    kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim", "metadata": {"name": "c1"},
        "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu"}}]}}}))
    rows = table(kubectl("get", "resourceclaims", "-n", namespace))
    assert [(r["NAME"], r["STATE"]) for r in rows] == [("c1", "pending")]
    # status is a subresource: a write to the main resource does not change it
    kubectl("patch", "resourceclaim", "c1", "-n", namespace, "--type=merge", "-p",
            '{"status":{"reservedFor":[{"resource":"pods","name":"p","uid":"u"}]}}')
    assert "reservedFor" not in json.loads(kubectl("get", "resourceclaim", "c1", "-n", namespace,
                                                   "-o", "json")).get("status", {})


def test_pod_certificate_requests_by_node(api_client, namespace):
    from kubernetes import client
    api = client.CertificatesV1Api(api_client)
    for pod, node in (("p1", "node-a"), ("p2", "node-b")):
        api.create_namespaced_pod_certificate_request(namespace, {
            "apiVersion": "certificates.k8s.io/v1", "kind": "PodCertificateRequest",
            "metadata": {"name": f"pcr-{pod}"},
            "spec": {"signerName": "example.com/signer", "podName": pod, "podUID": "u1",
                     "serviceAccountName": "default", "serviceAccountUID": "u2", "nodeName": node,
                     "nodeUID": "u3", "stubPKCS10Request": "AAAA"}})
    got = api.list_pod_certificate_request_for_all_namespaces(field_selector="spec.nodeName=node-b")
    assert [p.metadata.name for p in got.items] == ["pcr-p2"]


def test_auth_whoami(kubectl, server):
    out = json.loads(kubectl("auth", "whoami", "-o", "json"))
    assert out["kind"] == "SelfSubjectReview"
    assert out["apiVersion"] == "authentication.k8s.io/v1"
    user = out["status"]["userInfo"]
    assert user["username"] and "system:authenticated" in user["groups"]
    rows = table(kubectl("auth", "whoami"))
    assert rows[0]["ATTRIBUTE"] == "Username" and rows[0]["VALUE"] == user["username"]
