"""Tests for the declarative schemas, the field checker and the OpenAPI v3 output."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from shim import schemas
from shim.api import fieldcheck, openapi

POD = "io.k8s.api.core.v1.Pod"


def _res(group: str, plural: str) -> schemas.ResourceInfo:
    for r in schemas.load_resources():
        if r.group == group and r.plural == plural:
            return r
    raise AssertionError(f"{group}/{plural} not served")


# ---------------------------------------------------------------- resources


def test_resources_load():
    rs = schemas.load_resources()
    assert len(rs) >= 48
    assert len({(r.group, r.version, r.plural) for r in rs}) == len(rs)
    pods = _res("", "pods")
    assert pods.group_version == "v1"
    assert pods.kind == "Pod" and pods.singular == "pod" and pods.namespaced
    assert pods.list_kind == "PodList"
    assert pods.definition == POD
    assert pods.short_names == ("po",)
    assert pods.categories == ("all",)
    assert pods.verbs == ("create", "delete", "deletecollection", "get", "list", "patch",
                          "update", "watch")
    assert set(pods.subresources) == {"status", "binding", "eviction", "log", "exec", "attach",
                                      "portforward", "proxy", "ephemeralcontainers", "resize"}
    ev = pods.subresources["eviction"]
    assert (ev.group, ev.version, ev.kind, ev.verbs) == ("policy", "v1", "Eviction", ("create",))
    assert pods.subresources["log"].kind == "Pod" and pods.subresources["log"].verbs == ("get",)
    assert pods.subresources["exec"].kind == "PodExecOptions"
    assert pods.subresources["exec"].verbs == ("create", "get")
    with pytest.raises(TypeError):
        pods.subresources["foo"] = ev  # read-only mapping


def test_resource_facts():
    dep = _res("apps", "deployments")
    assert dep.group_version == "apps/v1"
    assert dep.short_names == ("deploy",) and dep.categories == ("all",)
    scale = dep.subresources["scale"]
    assert (scale.group, scale.version, scale.kind) == ("autoscaling", "v1", "Scale")
    assert dep.subresources["status"].kind == "Deployment"
    assert dep.definition == "io.k8s.api.apps.v1.Deployment"

    ns = _res("", "namespaces")
    assert not ns.namespaced and "deletecollection" not in ns.verbs
    assert ns.subresources["finalize"].verbs == ("update",)
    assert _res("", "nodes").short_names == ("no",)  # not YAML's boolean
    assert _res("", "bindings").verbs == ("create",)
    assert _res("", "serviceaccounts").subresources["token"].kind == "TokenRequest"
    assert _res("authentication.k8s.io", "tokenreviews").verbs == ("create",)
    assert not _res("authentication.k8s.io", "tokenreviews").namespaced
    assert _res("authorization.k8s.io", "localsubjectaccessreviews").namespaced
    assert _res("rbac.authorization.k8s.io", "clusterroles").definition == \
        "io.k8s.api.rbac.v1.ClusterRole"
    hpa = _res("autoscaling", "horizontalpodautoscalers")
    assert hpa.version == "v2" and hpa.short_names == ("hpa",)
    assert _res("certificates.k8s.io", "certificatesigningrequests").subresources[
        "approval"].verbs == ("get", "patch", "update")
    assert _res("", "pods").delete_returns_object
    assert not _res("", "configmaps").delete_returns_object


def test_preferred_versions():
    pv = schemas.preferred_versions()
    assert pv[""] == "v1"
    assert pv["apps"] == "v1"
    assert pv["autoscaling"] == "v2"
    served = {r.group for r in schemas.load_resources()}
    assert served == set(pv)


def test_every_definition_exists():
    types = schemas.load_types()
    for r in schemas.load_resources():
        assert r.definition in types, r.definition
        if "list" in r.verbs:
            assert r.definition + "List" in types
        for sub in r.subresources.values():
            if not sub.kind.endswith("Options"):
                assert sub.definition in types, sub.definition
        gvk = types[r.definition].get("x-kubernetes-group-version-kind")
        assert {"group": r.group, "version": r.version, "kind": r.kind} in gvk


def test_types_shapes():
    types = schemas.load_types()
    pod = types[POD]
    assert pod["properties"]["spec"] == {"$ref": "io.k8s.api.core.v1.PodSpec"}
    spec = types["io.k8s.api.core.v1.PodSpec"]
    assert spec["required"] == ["containers"]
    assert spec["properties"]["containers"]["items"] == {"$ref": "io.k8s.api.core.v1.Container"}
    assert spec["properties"]["nodeSelector"]["additionalProperties"] == {"type": "string"}
    assert spec["properties"]["priority"] == {"type": "integer", "format": "int32"}
    port = types["io.k8s.api.core.v1.ServicePort"]["properties"]["targetPort"]
    assert port["x-kubernetes-int-or-string"] is True
    limits = types["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"]
    assert limits["additionalProperties"]["x-kubernetes-quantity"] is True
    ts = types["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["creationTimestamp"]
    assert ts["format"] == "date-time"


def test_patch_metadata():
    types = schemas.load_types()
    containers = types["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-list-type"] == "map"
    assert containers["x-kubernetes-list-map-keys"] == ["name"]
    volumes = types["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"]
    assert volumes["x-kubernetes-patch-strategy"] == "merge,retainKeys"
    strategy = types["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    ports = types["io.k8s.api.core.v1.Container"]["properties"]["ports"]
    assert ports["x-kubernetes-patch-merge-key"] == "containerPort"
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    lor = types["io.k8s.api.core.v1.LocalObjectReference"]
    assert lor["x-kubernetes-map-type"] == "atomic"


# --------------------------------------------------------------- fieldcheck


def test_unknown_fields_nested():
    types = schemas.load_types()
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"any": "thing"}, "bogus": 1},
        "spec": {
            "containers": [
                {"name": "a", "image": "x", "ports": [{"containerPort": 80, "nope": True}]},
                {"name": "b", "image": "y", "foo": "bar",
                 "resources": {"limits": {"cpu": "1"}}},
            ],
            "foo": {"deep": 1},
            "nodeSelector": {"whatever": "ok"},
        },
        "extra": 1,
    }
    assert fieldcheck.unknown_fields(types, POD, pod) == [
        "metadata.bogus",
        "spec.containers[0].ports[0].nope",
        "spec.containers[1].foo",
        "spec.foo",
        "extra",
    ]
    msg = fieldcheck.strict_decoding_message(["spec.foo", "bar"])
    assert msg == 'strict decoding error: unknown field "spec.foo", unknown field "bar"'


def test_unknown_fields_ignores_known_and_free_form():
    types = schemas.load_types()
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "annotations": {"a": "b"},
                     "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {"x": {}}}}]},
        "spec": {"containers": [{"name": "a", "image": "x",
                                 "ports": [{"containerPort": 80}],
                                 "env": [{"name": "E", "value": "v"}],
                                 "resources": {"requests": {"memory": "1Gi"}}}],
                 "volumes": [{"name": "v", "emptyDir": {}}]},
        "status": {"phase": "Running"},
    }
    assert fieldcheck.unknown_fields(types, POD, pod) == []
    rev = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"},
           "revision": 1, "data": {"anything": {"goes": [1, 2]}}}
    assert fieldcheck.unknown_fields(types, "io.k8s.api.apps.v1.ControllerRevision", rev) == []
    svc = {"spec": {"ports": [{"port": 80, "targetPort": "http"}], "selector": {"a": "b"}}}
    assert fieldcheck.unknown_fields(types, "io.k8s.api.core.v1.Service", svc) == []
    # apiVersion/kind are accepted even where the definition lacks them
    assert fieldcheck.unknown_fields(types, "io.k8s.api.core.v1.PodSpec",
                                     {"kind": "x", "containers": []}) == []
    # wrong value shapes are not unknown fields
    assert fieldcheck.unknown_fields(types, POD, {"spec": "nope"}) == []


def test_go_quote():
    assert fieldcheck.go_quote('a"b') == '"a\\"b"'
    assert fieldcheck.go_quote("é\x01") == '"é\\x01"'


# ------------------------------------------------------------------ openapi


def _doc(path: str) -> dict:
    doc = openapi.openapi_v3_document(path)
    assert doc is not None, path
    return doc


def _prose(obj):
    """Schema-level description strings (a property may be *named* description)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "description" and isinstance(v, str):
                yield v
            else:
                yield from _prose(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _prose(v)


def test_openapi_index():
    idx = openapi.openapi_v3_index()
    paths = idx["paths"]
    for key in ("api", "api/v1", "apis", "apis/apps", "apis/apps/v1", "apis/autoscaling/v2",
                "apis/rbac.authorization.k8s.io/v1"):
        assert key in paths
    data, etag = openapi.openapi_v3_document_bytes("api/v1")
    assert etag == hashlib.sha512(data).hexdigest().upper()
    assert paths["api/v1"]["serverRelativeURL"] == f"/openapi/v3/api/v1?hash={etag}"
    assert openapi.openapi_v3_document_bytes("/openapi/v3/api/v1") == (data, etag)
    assert openapi.openapi_v3_document("apis/nope/v1") is None
    raw, _ = openapi.openapi_v3_index_bytes()
    assert json.loads(raw) == idx


def test_openapi_pod_patch():
    doc = _doc("api/v1")
    item = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]
    patch = item["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "kind": "Pod",
                                                       "version": "v1"}
    assert patch["x-kubernetes-action"] == "patch"
    names = {(p["name"], p["in"]) for p in patch["parameters"]}
    assert ("fieldValidation", "query") in names and ("force", "query") in names
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    for method in ("post",):
        op = doc["paths"]["/api/v1/namespaces/{namespace}/pods"][method]
        assert "fieldValidation" in {p["name"] for p in op["parameters"]}
    assert "fieldValidation" in {p["name"] for p in item["put"]["parameters"]}
    # every PATCH in every document offers fieldValidation (kubectl's verifier
    # looks at whichever PATCH of the GVK it meets first)
    for key in openapi.openapi_v3_index()["paths"]:
        d = _doc(key)
        for path, pi in d["paths"].items():
            op = pi.get("patch")
            if op and op.get("x-kubernetes-action") == "patch":
                params = op.get("parameters", []) + pi.get("parameters", [])
                assert "fieldValidation" in {p["name"] for p in params}, path


def test_openapi_paths_and_components():
    doc = _doc("api/v1")
    paths = doc["paths"]
    assert "/api/v1/pods" in paths
    assert paths["/api/v1/pods"]["get"]["operationId"] == "listCoreV1PodForAllNamespaces"
    assert "/api/v1/watch/namespaces/{namespace}/pods/{name}" in paths
    assert "/api/v1/namespaces/{namespace}/pods/{name}/proxy/{path}" in paths
    assert paths["/api/v1/namespaces/{namespace}/pods/{name}/exec"]["post"][
        "x-kubernetes-action"] == "connect"
    assert "delete" not in paths["/api/v1/namespaces"]  # no deletecollection
    schemas_ = doc["components"]["schemas"]
    pod = schemas_[POD]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod",
                                                       "version": "v1"}]
    containers = schemas_["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    assert "io.k8s.apimachinery.pkg.util.intstr.IntOrString" in schemas_
    # every $ref resolves inside the document
    text = json.dumps(doc)
    for chunk in text.split('"$ref": "#/components/schemas/')[1:]:
        assert chunk.split('"', 1)[0] in schemas_
    assert not list(_prose(doc["components"]["schemas"]))

    apps = _doc("apis/apps/v1")
    scale = apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["patch"]["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling", "kind": "Scale", "version": "v1"}
    assert "io.k8s.api.autoscaling.v1.Scale" in apps["components"]["schemas"]
    group = _doc("apis/apps")
    assert group["paths"]["/apis/apps/"]["get"]["operationId"] == "getAppsAPIGroup"


@pytest.fixture(scope="module")
def upstream_spec_dir():
    """api/openapi-spec/v3 of the pinned k8s.io/kubernetes module, fetched through the Go
    module proxy when not in the module cache yet (the node install needs it anyway)."""
    import shutil
    import subprocess
    from pathlib import Path
    from shim.node.install import K8S_VERSION
    go = shutil.which("go")
    if go is None:
        if os.environ.get("CI"):
            pytest.fail("no Go toolchain")
        pytest.skip("no Go toolchain to fetch the upstream OpenAPI spec")
    p = subprocess.run([go, "mod", "download", "-json", f"k8s.io/kubernetes@{K8S_VERSION}"],
                       capture_output=True, text=True, timeout=900, cwd="/")
    assert p.returncode == 0, p.stdout[-500:] + p.stderr[-500:]
    return Path(json.loads(p.stdout)["Dir"]) / "api" / "openapi-spec" / "v3"


def test_openapi_matches_upstream_shape(upstream_spec_dir):
    """Paths, operations and parameters equal upstream's for what we serve
    (descriptions and defaults aside)."""
    import os

    def strip(o):
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items() if k not in ("description", "default")}
        if isinstance(o, list):
            return [strip(x) for x in o]
        return o

    spec_dir = upstream_spec_dir
    for key in ("api/v1", "apis/apps/v1", "apis/batch/v1", "apis/rbac.authorization.k8s.io/v1"):
        with open(os.path.join(spec_dir, key.replace("/", "__") + "_openapi.json")) as f:
            real = strip(json.load(f))
        ours = strip(_doc(key))
        for path, item in ours["paths"].items():
            assert item == real["paths"].get(path), path
        rs = real["components"]["schemas"]
        for name, sch in ours["components"]["schemas"].items():
            assert sch == rs.get(name), name
