"""End to end: server-side apply and managedFields, with the real kubectl and the Python client.

Checks what kubectl prints (its apply/conflict messages come from the server's answers) and the
metadata.managedFields the server stored: per manager and operation, with the fieldsV1 sets
upstream records for apply, create, update, patch, scale and status writes.
"""
from __future__ import annotations

import json
import os
import textwrap
import time

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from .rawhttp import Raw, status_of

pytestmark = pytest.mark.timeout(180)

APPLY = "application/apply-patch+yaml"


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(3).hex()}"


def get(kubectl, *args) -> dict:
    return json.loads(kubectl("get", *args, "-o", "json", "--show-managed-fields"))


def entries(obj: dict) -> dict:
    """{(manager, operation, subresource): entry} of an object's managedFields."""
    return {(e.get("manager"), e["operation"], e.get("subresource")): e
            for e in obj["metadata"].get("managedFields") or []}


def fields(obj: dict, manager: str, operation: str, subresource=None) -> dict:
    return entries(obj)[(manager, operation, subresource)]["fieldsV1"]


def deployment_yaml(name: str, ns: str, *, replicas: int | None = 2, image: str = "nginx:1.25",
                    labels: bool = True, port: bool = True, kind: str = "Deployment") -> str:
    doc = {"apiVersion": "apps/v1", "kind": kind,
           "metadata": {"name": name, "namespace": ns},
           "spec": {"selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "web", "image": image}]}}}}
    if labels:
        doc["metadata"]["labels"] = {"tier": "front"}
    if replicas is not None:
        doc["spec"]["replicas"] = replicas
    if port:
        doc["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    return json.dumps(doc)


def settled(kubectl, *args) -> dict:
    """The object once the deployment controller has caught up with it (no writes for a moment)."""
    deadline = time.time() + 20
    while True:
        obj = get(kubectl, *args)
        st = obj.get("status") or {}
        if st.get("observedGeneration", 0) >= obj["metadata"]["generation"]:
            time.sleep(0.3)
            again = get(kubectl, *args)
            if again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]:
                return obj
        assert time.time() < deadline, "the deployment controller did not settle"
        time.sleep(0.1)


def own_entries(obj: dict) -> list:
    """managedFields entries, leaving out the deployment controller's status writes."""
    return [k for k in entries(obj) if k != ("kube-controller-manager", "Update", "status")]


def apply_ss(kubectl, manifest: str, *flags, check=True):
    return kubectl.run("apply", "--server-side", *flags, "-f", "-", input=manifest, check=check)


# -- kubectl apply --server-side ----------------------------------------------------------------

def test_apply_creates_then_updates_and_prunes(kubectl, namespace):
    name = unique("web")
    out = apply_ss(kubectl, deployment_yaml(name, namespace)).stdout
    assert out.strip() == f"deployment.apps/{name} serverside-applied"
    obj = get(kubectl, "deployment", name, "-n", namespace)
    assert own_entries(obj) == [("kubectl", "Apply", None)]
    e = entries(obj)[("kubectl", "Apply", None)]
    assert e["apiVersion"] == "apps/v1" and e["fieldsType"] == "FieldsV1" and e["time"]
    assert e["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:tier": {}}},
        "f:spec": {"f:replicas": {}, "f:selector": {},
                   "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
                                  "f:spec": {"f:containers": {'k:{"name":"web"}': {
                                      ".": {}, "f:image": {}, "f:name": {},
                                      "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {
                                          ".": {}, "f:containerPort": {}}}}}}}}}
    # defaults are filled in but owned by nobody
    assert obj["spec"]["strategy"]["type"] == "RollingUpdate"
    assert obj["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]

    # re-apply with changes: new image, label and port dropped from the manifest
    apply_ss(kubectl, deployment_yaml(name, namespace, image="nginx:1.26", labels=False, port=False))
    obj = get(kubectl, "deployment", name, "-n", namespace)
    c = obj["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "nginx:1.26" and "ports" not in c
    assert "tier" not in (obj["metadata"].get("labels") or {})
    assert obj["metadata"]["generation"] == 2
    assert fields(obj, "kubectl", "Apply") == {
        "f:spec": {"f:replicas": {}, "f:selector": {},
                   "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
                                  "f:spec": {"f:containers": {'k:{"name":"web"}': {
                                      ".": {}, "f:image": {}, "f:name": {}}}}}}}

    # an unchanged re-apply changes nothing, not even the resourceVersion
    rv = settled(kubectl, "deployment", name, "-n", namespace)["metadata"]["resourceVersion"]
    apply_ss(kubectl, deployment_yaml(name, namespace, image="nginx:1.26", labels=False, port=False))
    assert get(kubectl, "deployment", name, "-n", namespace)["metadata"]["resourceVersion"] == rv


def test_scale_then_conflicting_apply_and_force(kubectl, namespace):
    name = unique("sc")
    apply_ss(kubectl, deployment_yaml(name, namespace, replicas=2))
    kubectl("scale", "deployment", name, "-n", namespace, "--replicas=3")
    obj = get(kubectl, "deployment", name, "-n", namespace)
    scale = entries(obj)[("kubectl", "Update", "scale")]
    assert scale["fieldsV1"] == {"f:spec": {"f:replicas": {}}} and scale["apiVersion"] == "apps/v1"
    assert "time" not in scale  # as upstream's scale handler records it
    assert "f:replicas" not in json.dumps(fields(obj, "kubectl", "Apply"))

    p = apply_ss(kubectl, deployment_yaml(name, namespace, replicas=5), check=False)
    assert p.returncode == 1
    assert p.stderr.startswith('error: Apply failed with 1 conflict: conflict with "kubectl" with subresource '
                               '"scale" using apps/v1: .spec.replicas\nPlease review the fields above--they '
                               'currently have other managers.')
    assert get(kubectl, "deployment", name, "-n", namespace)["spec"]["replicas"] == 3

    # the same value is no conflict: the field becomes shared
    apply_ss(kubectl, deployment_yaml(name, namespace, replicas=3))
    obj = get(kubectl, "deployment", name, "-n", namespace)
    assert fields(obj, "kubectl", "Apply")["f:spec"]["f:replicas"] == {}
    assert ("kubectl", "Update", "scale") in entries(obj)

    apply_ss(kubectl, deployment_yaml(name, namespace, replicas=5), "--force-conflicts")
    obj = get(kubectl, "deployment", name, "-n", namespace)
    assert obj["spec"]["replicas"] == 5
    assert ("kubectl", "Update", "scale") not in entries(obj)


def test_conflicts_between_managers(kubectl, namespace):
    name = unique("cm")
    cm = textwrap.dedent(f"""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {{name: {name}, namespace: {namespace}}}
        data: {{a: "1", b: "2", c: "3"}}
        """)
    apply_ss(kubectl, cm, "--field-manager=alice")
    other = cm.replace('a: "1", b: "2"', 'a: "x", b: "y"')
    p = apply_ss(kubectl, other, "--field-manager=bob", check=False)
    assert p.returncode == 1
    assert p.stderr.startswith('error: Apply failed with 2 conflicts: conflicts with "alice":\n- .data.a\n- .data.b\n'
                               'Please review the fields above')
    # a raw request shows the Status upstream sends
    raw = Raw(kubectl_server(kubectl))
    r = raw.request("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/{name}?fieldManager=bob",
                    other.encode(), {"Content-Type": APPLY})
    st = status_of(r)
    assert (r.status, st["reason"]) == (409, "Conflict")
    assert st["details"] == {"causes": [
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.a"},
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.b"}]}

    apply_ss(kubectl, other, "--field-manager=bob", "--force-conflicts")
    obj = get(kubectl, "configmap", name, "-n", namespace)
    assert obj["data"] == {"a": "x", "b": "y", "c": "3"}
    assert fields(obj, "alice", "Apply") == {"f:data": {"f:c": {}}}
    assert fields(obj, "bob", "Apply") == {"f:data": {"f:a": {}, "f:b": {}, "f:c": {}}}

    # alice stops applying c: bob still owns it, so it stays
    apply_ss(kubectl, cm.replace(', c: "3"', "").replace('a: "1", b: "2"', 'd: "4"'), "--field-manager=alice")
    obj = get(kubectl, "configmap", name, "-n", namespace)
    assert obj["data"] == {"a": "x", "b": "y", "c": "3", "d": "4"}


def kubectl_server(kubectl):
    """The Server behind a Kubectl fixture (the kubeconfig lives in its data dir)."""
    class _S:
        data_dir = kubectl.kubeconfig.parent
        port = int(open(kubectl.kubeconfig).read().split("127.0.0.1:")[1].split()[0].strip('"'))
    return _S


def test_server_side_apply_after_client_side_apply(kubectl, namespace):
    name = unique("csa")
    manifest = deployment_yaml(name, namespace, replicas=2)
    kubectl("apply", "-f", "-", input=manifest)
    obj = get(kubectl, "deployment", name, "-n", namespace)
    csa = entries(obj)[("kubectl-client-side-apply", "Update", None)]
    assert csa["fieldsV1"]["f:metadata"]["f:annotations"] == {
        ".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}
    assert csa["fieldsV1"]["f:spec"]["f:replicas"] == {}

    # switching to server-side apply with a change takes the fields over (migration)
    out = apply_ss(kubectl, deployment_yaml(name, namespace, replicas=4)).stdout
    assert out.strip() == f"deployment.apps/{name} serverside-applied"
    obj = get(kubectl, "deployment", name, "-n", namespace)
    assert obj["spec"]["replicas"] == 4
    assert fields(obj, "kubectl", "Apply")["f:spec"]["f:replicas"] == {}
    assert ("kubectl-client-side-apply", "Update", None) not in entries(obj)
    last = json.loads(obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 4  # kept current by the server for the "kubectl" manager


def test_other_verbs_record_updates(kubectl, namespace):
    name = unique("verbs")
    kubectl("create", "configmap", name, "-n", namespace, "--from-literal=a=1")
    obj = get(kubectl, "configmap", name, "-n", namespace)
    assert fields(obj, "kubectl-create", "Update") == {"f:data": {".": {}, "f:a": {}}}

    kubectl("label", "configmap", name, "-n", namespace, "env=dev")
    kubectl("patch", "configmap", name, "-n", namespace, "--type=merge", "-p", '{"data":{"a":"2","b":"3"}}')
    obj = get(kubectl, "configmap", name, "-n", namespace)
    assert fields(obj, "kubectl-label", "Update") == {"f:metadata": {"f:labels": {".": {}, "f:env": {}}}}
    assert fields(obj, "kubectl-patch", "Update") == {"f:data": {"f:a": {}, "f:b": {}}}
    assert fields(obj, "kubectl-create", "Update") == {"f:data": {}}  # a moved to kubectl-patch

    obj["data"]["c"] = "4"
    kubectl("replace", "-f", "-", input=json.dumps(obj))
    obj = get(kubectl, "configmap", name, "-n", namespace)
    assert fields(obj, "kubectl-replace", "Update") == {"f:data": {"f:c": {}}}

    # a client without fieldManager is named after its User-Agent
    raw = Raw(kubectl_server(kubectl))
    r = raw.request("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/{name}",
                    b'{"data":{"d":"5"}}', {"Content-Type": "application/merge-patch+json",
                                            "User-Agent": "my-tool/1.2 (linux)"})
    assert r.status == 200
    assert entries(r.json())[("my-tool", "Update", None)]["fieldsV1"] == {"f:data": {"f:d": {}}}

    # applying a field someone updated is a conflict naming the update manager and version
    p = apply_ss(kubectl, textwrap.dedent(f"""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {{name: {name}, namespace: {namespace}}}
        data: {{c: "9"}}
        """), check=False)
    assert 'conflict with "kubectl-replace" using v1: .data.c' in p.stderr


def test_status_subresource_and_reset_managed_fields(kubectl, namespace, api_client):
    name = unique("st")
    # a StatefulSet: no controller here writes its status, only the test does
    apply_ss(kubectl, deployment_yaml(name, namespace, kind="StatefulSet"))
    apps = client.AppsV1Api(api_client)
    body = {"status": {"observedGeneration": 1, "replicas": 2}}
    apps.patch_namespaced_stateful_set_status(name, namespace, body, field_manager="ctrl")
    obj = get(kubectl, "statefulset", name, "-n", namespace)
    assert fields(obj, "ctrl", "Update", "status") == {"f:status": {"f:observedGeneration": {},
                                                                    "f:replicas": {}}}

    # a Scale PUT without fieldManager: named after the client's User-Agent, recorded on the scale subresource
    scale = apps.read_namespaced_stateful_set_scale(name, namespace)
    scale.spec.replicas = 3
    apps.replace_namespaced_stateful_set_scale(name, namespace, scale)
    obj = get(kubectl, "statefulset", name, "-n", namespace)
    assert fields(obj, "OpenAPI-Generator", "Update", "scale") == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in json.dumps(fields(obj, "kubectl", "Apply"))

    # managedFields: [{}] clears the record, and plain updates are not tracked afterwards
    kubectl("patch", "statefulset", name, "-n", namespace, "--type=merge",
            "-p", '{"metadata":{"managedFields":[{}]}}')
    assert "managedFields" not in get(kubectl, "statefulset", name, "-n", namespace)["metadata"]
    kubectl("label", "statefulset", name, "-n", namespace, "x=y")
    assert "managedFields" not in get(kubectl, "statefulset", name, "-n", namespace)["metadata"]
    # until the next apply, which gives the existing fields to "before-first-apply"
    apply_ss(kubectl, deployment_yaml(name, namespace, replicas=3, kind="StatefulSet"))
    obj = get(kubectl, "statefulset", name, "-n", namespace)
    assert set(entries(obj)) == {("kubectl", "Apply", None), ("before-first-apply", "Update", None)}
    assert fields(obj, "before-first-apply", "Update")["f:metadata"]["f:labels"]["f:x"] == {}


def test_dry_run_and_diff(kubectl, namespace):
    name = unique("dry")
    out = apply_ss(kubectl, deployment_yaml(name, namespace), "--dry-run=server").stdout
    assert out.strip() == f"deployment.apps/{name} serverside-applied (server dry run)"
    assert kubectl.run("get", "deployment", name, "-n", namespace, check=False).returncode == 1
    apply_ss(kubectl, deployment_yaml(name, namespace, replicas=2))
    p = kubectl.run("diff", "--server-side", "-f", "-", input=deployment_yaml(name, namespace, replicas=7),
                    check=False)
    assert p.returncode == 1, p.stderr
    assert "-  replicas: 2" in p.stdout and "+  replicas: 7" in p.stdout
    assert get(kubectl, "deployment", name, "-n", namespace)["spec"]["replicas"] == 2


def test_errors_as_upstream(kubectl, namespace):
    name = unique("err")
    raw = Raw(kubectl_server(kubectl))
    path = f"/api/v1/namespaces/{namespace}/configmaps/{name}"
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}).encode()
    r = raw.request("PATCH", path, body, {"Content-Type": APPLY})
    st = status_of(r)
    assert (r.status, st["reason"], st["message"]) == (
        422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for '
                        'apply patch')
    assert st["details"] == {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
        {"reason": "FieldValueRequired", "message": "Required value: is required for apply patch",
         "field": "fieldManager"}]}

    r = raw.request("PATCH", path + "?fieldManager=m", json.dumps(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}}).encode(), {"Content-Type": APPLY})
    assert (r.status, status_of(r)["message"]) == (400, "invalid object type: /v1, Kind=Secret")

    r = raw.request("PATCH", path + "?fieldManager=m", json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "bogus": 1}).encode(),
        {"Content-Type": APPLY})
    st = status_of(r)
    assert r.status == 500 and "reason" not in st
    assert st["message"] == (f"failed to create typed patch object (/{name}; /v1, Kind=ConfigMap): "
                             ".bogus: field not declared in schema")

    r = raw.request("PATCH", path + "?force=true", b'{"data":{}}', {"Content-Type": "application/merge-patch+json"})
    assert (r.status, status_of(r)["message"]) == (
        422, 'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch')

    # kubectl prints the typed conversion error as upstream's server returns it
    bad = deployment_yaml(name, namespace).replace('"replicas": 2', '"replicas": 2, "bogus": true')
    p = apply_ss(kubectl, bad, check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == (f"Error from server: failed to create typed patch object ({namespace}/{name}; "
                                f"apps/v1, Kind=Deployment): .spec.bogus: field not declared in schema")


def test_duplicate_fields_follow_field_validation(kubectl, namespace):
    name = unique("dup")
    raw = Raw(kubectl_server(kubectl))
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}).encode()
    body = body[:-1] + b', "data": {"a": "1", "a": "2"}}'
    path = f"/api/v1/namespaces/{namespace}/configmaps/{name}?fieldManager=m"
    r = raw.request("PATCH", path + "&fieldValidation=Strict", body, {"Content-Type": APPLY})
    assert (r.status, status_of(r)["message"]) == (
        400, 'error strict decoding patch: error converting YAML to JSON: yaml: unmarshal errors:\n'
             '  line 1: key "a" already set in map')
    r = raw.request("PATCH", path + "&fieldValidation=Warn", body, {"Content-Type": APPLY})
    assert r.status == 201 and "already set in map" in r.headers.get("Warning")
    assert r.json()["data"] == {"a": "2"}


def test_yaml_body_and_create_status_code(kubectl, namespace):
    name = unique("yaml")
    raw = Raw(kubectl_server(kubectl))
    doc = textwrap.dedent(f"""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {name}
        data:
          when: 2024-01-01
        """).encode()
    r = raw.request("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/{name}?fieldManager=yaml-tool", doc,
                    {"Content-Type": APPLY})
    assert r.status == 201, r.body
    assert r.json()["data"] == {"when": "2024-01-01"}
    r = raw.request("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/{name}?fieldManager=yaml-tool", doc,
                    {"Content-Type": APPLY})
    assert r.status == 200


# -- the Python client ----------------------------------------------------------------------------

def test_python_client_apply(api_client, namespace):
    dyn = dynamic.DynamicClient(api_client)
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    name = unique("py")
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": {"k": "1"}}
    obj = cms.server_side_apply(body=body, field_manager="py-one", namespace=namespace)
    mf = obj.to_dict()["metadata"]["managedFields"]
    assert [(e["manager"], e["operation"], e["fieldsV1"]) for e in mf] == [("py-one", "Apply", {"f:data": {"f:k": {}}})]

    body["data"]["k"] = "2"
    with pytest.raises(ApiException) as e:
        cms.server_side_apply(body=body, field_manager="py-two", namespace=namespace)
    assert e.value.status == 409
    st = json.loads(e.value.body)
    assert st["message"] == 'Apply failed with 1 conflict: conflict with "py-one": .data.k'
    obj = cms.server_side_apply(body=body, field_manager="py-two", namespace=namespace, force_conflicts=True)
    assert obj.data["k"] == "2"

    # the typed API with the apply content type
    core = client.CoreV1Api(api_client)
    got = core.patch_namespaced_config_map(name, namespace, {"apiVersion": "v1", "kind": "ConfigMap",
                                                             "metadata": {"name": name}, "data": {"z": "9"}},
                                           field_manager="py-three", _content_type=APPLY)
    assert got.data == {"k": "2", "z": "9"}
    managers = {(e.manager, e.operation) for e in got.metadata.managed_fields}
    assert managers == {("py-two", "Apply"), ("py-three", "Apply")}
