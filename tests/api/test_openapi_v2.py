"""/openapi/v2: the Swagger 2.0 document and its gnostic protobuf encoding.

The document is checked for what clients read from it (operations with GVK and action,
body and query parameters, patch extensions on definitions); the protobuf encoding is
checked three ways: with a small wire-format reader here, byte for byte against gnostic's
own parser + proto.Marshal of our JSON (Go, when the toolchain and modules are present),
and by kubectl itself (`explain --output=plaintext-openapiv2` decodes the protobuf).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import textwrap

import pytest
import yaml

from shim.api import openapi, openapi_v2
from shim.schemas import load_resources

PROTO_ACCEPT = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
PROTO_CT = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
DEFS = "#/definitions/"


@pytest.fixture(scope="module")
def doc() -> dict:
    return openapi_v2.swagger_document()


# -- the document ---------------------------------------------------------------------------

def test_top_level(doc):
    assert doc["swagger"] == "2.0"
    assert doc["info"] == {"title": "Kubernetes", "version": "unversioned"}
    assert doc["securityDefinitions"]["BearerToken"] == {"in": "header", "name": "authorization",
                                                         "type": "apiKey"}
    assert doc["security"] == [{"BearerToken": []}]
    # no $ref dangles
    refs = set()

    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k == "$ref":
                    refs.add(v)
                else:
                    walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(doc)
    assert refs and all(r.startswith(DEFS) for r in refs)
    assert {r[len(DEFS):] for r in refs} <= set(doc["definitions"])


def test_every_served_resource_has_paths_with_gvk_and_action(doc):
    paths = doc["paths"]
    for r in load_resources():
        prefix = f"/apis/{r.group}/{r.version}" if r.group else f"/api/{r.version}"
        coll = prefix + ("/namespaces/{namespace}/" if r.namespaced else "/") + r.plural
        item = paths.get(coll + "/{name}")
        assert item is not None or "get" not in r.verbs, coll
        if "get" in r.verbs:
            get = item["get"]
            assert get["x-kubernetes-action"] == "get"
            assert get["x-kubernetes-group-version-kind"] == {"group": r.group, "kind": r.kind,
                                                              "version": r.version}
            assert get["responses"]["200"]["schema"] == {"$ref": DEFS + r.definition}
        if "patch" in r.verbs:
            patch = item["patch"]
            assert patch["x-kubernetes-action"] == "patch"
            names = {p["name"] for p in patch["parameters"]}
            assert {"body", "dryRun", "fieldManager", "fieldValidation", "force"} <= names
            assert "application/strategic-merge-patch+json" in patch["consumes"]
        if "list" in r.verbs:
            assert paths[coll]["get"]["x-kubernetes-action"] == "list"


def test_pod_operations_shape(doc):
    item = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]
    shared = {(p["in"], p["name"]) for p in item["parameters"]}
    assert {("path", "name"), ("path", "namespace"), ("query", "pretty")} <= shared
    name = next(p for p in item["parameters"] if p["name"] == "name")
    assert name == {"in": "path", "name": "name", "required": True, "type": "string",
                    "uniqueItems": True}
    put = item["put"]
    assert put["consumes"] == ["*/*"]
    assert put["produces"][:2] == ["application/json", "application/yaml"]
    assert put["schemes"] == ["https"]
    assert put["operationId"] == "replaceCoreV1NamespacedPod"
    assert put["parameters"][0] == {"in": "body", "name": "body", "required": True,
                                    "schema": {"$ref": DEFS + "io.k8s.api.core.v1.Pod"}}
    fv = next(p for p in put["parameters"] if p["name"] == "fieldValidation")
    assert fv == {"in": "query", "name": "fieldValidation", "type": "string", "uniqueItems": True}
    assert put["responses"]["401"] == {"description": "Unauthorized"}
    delete = item["delete"]
    assert delete["parameters"][0] == {
        "in": "body", "name": "body",
        "schema": {"$ref": DEFS + "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"}}
    patch = item["patch"]
    assert patch["consumes"] == ["application/json-patch+json", "application/merge-patch+json",
                                 "application/strategic-merge-patch+json",
                                 "application/apply-patch+yaml", "application/apply-patch+cbor"]
    assert patch["parameters"][0]["schema"] == {
        "$ref": DEFS + "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}
    watch = doc["paths"]["/api/v1/watch/namespaces/{namespace}/pods"]["get"]
    assert watch["x-kubernetes-action"] == "watchlist"
    assert "application/json;stream=watch" in watch["produces"]
    log = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"]
    assert log["produces"][0] == "text/plain"
    assert log["responses"]["200"]["schema"] == {"type": "string"}
    scale = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["put"]["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling", "kind": "Scale", "version": "v1"}
    assert doc["paths"]["/api/"]["get"]["consumes"] == doc["paths"]["/api/"]["get"]["produces"]


def test_definitions_carry_patch_and_list_extensions(doc):
    defs = doc["definitions"]
    pod = defs["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    assert pod["properties"]["spec"] == {"$ref": DEFS + "io.k8s.api.core.v1.PodSpec"}
    spec = defs["io.k8s.api.core.v1.PodSpec"]["properties"]
    assert spec["containers"] == {
        "items": {"$ref": DEFS + "io.k8s.api.core.v1.Container"}, "type": "array",
        "x-kubernetes-list-map-keys": ["name"], "x-kubernetes-list-type": "map",
        "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"}
    assert spec["volumes"]["x-kubernetes-patch-strategy"] == "merge,retainKeys"
    assert spec["nodeSelector"]["x-kubernetes-map-type"] == "atomic"
    assert spec["tolerations"]["x-kubernetes-list-type"] == "atomic"
    container = defs["io.k8s.api.core.v1.Container"]
    assert "name" in container["required"]
    ports = container["properties"]["ports"]
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    assert ports["x-kubernetes-patch-merge-key"] == "containerPort"
    assert container["properties"]["volumeMounts"]["x-kubernetes-patch-merge-key"] == "mountPath"
    assert defs["io.k8s.apimachinery.pkg.api.resource.Quantity"] == {"type": "string"}
    assert defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "format": "int-or-string", "type": "string"}
    # v2 has no oneOf / allOf-wrapped refs
    text = openapi_v2.swagger_json()
    assert b'"oneOf"' not in text and b'"allOf"' not in text
    # kinds served in many group-versions list them all
    gvks = defs["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"]["x-kubernetes-group-version-kind"]
    assert {"group": "", "kind": "DeleteOptions", "version": "v1"} in gvks
    assert {"group": "apps", "kind": "DeleteOptions", "version": "v1"} in gvks
    deploy = defs["io.k8s.api.apps.v1.Deployment"]
    assert deploy["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}]


def test_no_description_prose(doc):
    """Only the HTTP reason phrases on responses; no field or operation descriptions."""
    def walk(o, where):
        if isinstance(o, dict):
            for k, v in o.items():
                if k == "description":
                    assert where == "response" and v in ("OK", "Created", "Accepted",
                                                         "Unauthorized"), (where, v)
                elif k == "responses":
                    for r in v.values():
                        walk(r, "response")
                elif k == "properties" and isinstance(v, dict):
                    for sch in v.values():  # keys are field names here
                        walk(sch, "schema")
                else:
                    walk(v, k)
        elif isinstance(o, list):
            for v in o:
                walk(v, where)
    walk(doc["paths"], "paths")
    walk(doc["definitions"], "definitions")


# -- negotiation ------------------------------------------------------------------------------

@pytest.mark.parametrize("accept,ct", [
    ("application/json", "application/json"),
    ("", "application/json"),
    ("*/*", "application/json"),
    (PROTO_ACCEPT, PROTO_CT),
    (PROTO_CT, PROTO_CT),
    (f"{PROTO_ACCEPT}, application/json", PROTO_CT),
    (f"application/json;q=0.5, {PROTO_ACCEPT}", PROTO_CT),
    ("text/html, application/*;q=0.9", "application/json"),
    ("text/html", None),
])
def test_negotiation(accept, ct):
    found = openapi_v2.openapi_v2_bytes(accept)
    if ct is None:
        assert found is None
        return
    body, got = found
    assert got == ct
    if ct == "application/json":
        assert body == openapi_v2.swagger_json()
    else:
        assert body == openapi_v2.swagger_protobuf()
    # cached: the same bytes object each time
    assert openapi_v2.openapi_v2_bytes(accept)[0] is body


def test_openapi_module_exposes_v2():
    body, ct = openapi.openapi_v2_bytes(PROTO_ACCEPT)
    assert ct == PROTO_CT and body == openapi_v2.swagger_protobuf()


# -- YAML text of extension values (gnostic Any.yaml, as yaml.v3 writes it) ----------------------

@pytest.mark.parametrize("value,text", [
    ("merge", "merge\n"),
    ("merge,retainKeys", "merge,retainKeys\n"),
    ("", '""\n'),
    ("true", '"true"\n'),
    ("1", '"1"\n'),
    (["containerPort", "protocol"], "- containerPort\n- protocol\n"),
    ({"group": "", "kind": "Pod", "version": "v1"}, 'group: ""\nkind: Pod\nversion: v1\n'),
    ([{"group": "apps", "kind": "Deployment", "version": "v1"}],
     "- group: apps\n  kind: Deployment\n  version: v1\n"),
    ({"a": {"b": "c"}}, "a:\n    b: c\n"),
    ([{"a": {"b": {"c": "d"}}, "e": ["x", "y"]}],
     "- a:\n    b:\n        c: d\n  e:\n    - x\n    - y\n"),
    ({"a": [{"b": "c", "d": ["e"]}]}, "a:\n    - b: c\n      d:\n        - e\n"),
])
def test_yaml_text(value, text):
    assert openapi_v2.yaml_text(value) == text
    assert yaml.safe_load(text) == value


# -- protobuf, read back with a minimal wire-format reader ------------------------------------------

def _fields(buf: bytes):
    """[(field, wire type, value)] of one message (value: int, bytes)."""
    out, i = [], 0
    while i < len(buf):
        key, i = _uvarint(buf, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _uvarint(buf, i)
        elif wt == 2:
            n, i = _uvarint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise AssertionError(f"wire type {wt}")
        out.append((field, wt, v))
    assert i == len(buf)
    return out


def _uvarint(buf, i):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, i
        shift += 7


def _one(msg: bytes, field: int) -> bytes:
    vals = [v for f, _, v in _fields(msg) if f == field]
    assert len(vals) == 1, (field, len(vals))
    return vals[0]


def _named(msg: bytes, field: int) -> dict[str, bytes]:
    out = {}
    for f, _, v in _fields(msg):
        if f == field:
            out[_one(v, 1).decode()] = _one(v, 2)
    return out


def _extensions(msg: bytes, field: int) -> dict:
    return {name: yaml.safe_load(_one(anymsg, 2).decode())
            for name, anymsg in _named(msg, field).items()}


def test_protobuf_reads_back(doc):
    pb = openapi_v2.swagger_protobuf()
    assert _one(pb, 1) == b"2.0"
    info = _one(pb, 2)
    assert _one(info, 1) == b"Kubernetes"
    paths = _named(_one(pb, 8), 2)
    defs = _named(_one(pb, 9), 1)
    assert list(paths) == list(doc["paths"])
    assert list(defs) == list(doc["definitions"])

    # a path item: operations in their fields, extensions as YAML
    item = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    patch = _one(item, 8)  # PathItem.patch
    assert _one(patch, 5) == b"patchAppsV1NamespacedDeployment"
    assert _extensions(patch, 13) == {
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": {"group": "apps", "kind": "Deployment", "version": "v1"}}
    consumes = [v.decode() for f, _, v in _fields(patch) if f == 7]
    assert "application/strategic-merge-patch+json" in consumes
    params = [_one(v, 1) for f, _, v in _fields(patch) if f == 8]  # ParametersItem.parameter
    body = _one(params[0], 1)  # Parameter.body_parameter
    assert _one(body, 2) == b"body" and _one(body, 3) == b"body"
    query = [_one(_one(p, 2), 3) for p in params[1:]]  # NonBodyParameter.query_parameter_sub_schema
    names = {_one(q, 4).decode() for q in query}
    assert {"dryRun", "fieldManager", "fieldValidation", "force"} <= names

    # a definition: properties, items, extensions
    spec = defs["io.k8s.api.core.v1.PodSpec"]
    props = _named(_one(spec, 25), 1)
    containers = props["containers"]
    assert _one(_one(containers, 22), 1) == b"array"               # TypeItem
    items = _one(_one(containers, 23), 1)                            # ItemsItem.schema[0]
    assert _one(items, 1) == b"#/definitions/io.k8s.api.core.v1.Container"
    assert _extensions(containers, 31) == {
        "x-kubernetes-list-map-keys": ["name"], "x-kubernetes-list-type": "map",
        "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"}
    node_selector = props["nodeSelector"]
    ap = _one(_one(node_selector, 21), 1)                            # AdditionalPropertiesItem.schema
    assert _one(_one(ap, 22), 1) == b"string"
    pod = defs["io.k8s.api.core.v1.Pod"]
    assert _extensions(pod, 31) == {
        "x-kubernetes-group-version-kind": [{"group": "", "kind": "Pod", "version": "v1"}]}
    container = defs["io.k8s.api.core.v1.Container"]
    assert b"name" in [v for f, _, v in _fields(container) if f == 19]  # required


# -- protobuf, against gnostic itself ------------------------------------------------------------

GO_MAIN = textwrap.dedent('''\
    package main

    import (
    	"bytes"
    	"fmt"
    	"io"
    	"os"

    	openapi_v2 "github.com/google/gnostic-models/openapiv2"
    	"google.golang.org/protobuf/proto"
    )

    // usage: check <swagger.json> <document.pb>
    // Parses the JSON with gnostic (as kube-openapi's ToProtoBinary does), marshals it, and
    // compares with the given bytes; also decodes those bytes and counts paths/definitions.
    func main() {
    	j, _ := os.ReadFile(os.Args[1])
    	f, _ := os.Open(os.Args[2])
    	pb, _ := io.ReadAll(f)
    	ref, err := openapi_v2.ParseDocument(j)
    	if err != nil {
    		fmt.Println("parse error:", err)
    		os.Exit(1)
    	}
    	want, _ := proto.Marshal(ref)
    	got := &openapi_v2.Document{}
    	if err := proto.Unmarshal(pb, got); err != nil {
    		fmt.Println("decode error:", err)
    		os.Exit(1)
    	}
    	fmt.Printf("paths=%d definitions=%d equal=%v identical=%v\\n", len(got.Paths.Path),
    		len(got.Definitions.AdditionalProperties), proto.Equal(ref, got), bytes.Equal(want, pb))
    }
''')
GO_MOD = textwrap.dedent('''\
    module shimcheck

    go 1.22

    require (
    	github.com/google/gnostic-models v0.7.0
    	google.golang.org/protobuf v1.36.11
    	go.yaml.in/yaml/v3 v3.0.4
    )
''')


@pytest.fixture(scope="module")
def gnostic_check(tmp_path_factory):
    go = shutil.which("go")
    if go is None:
        if os.environ.get("CI"):
            pytest.fail("no Go toolchain")
        pytest.skip("no Go toolchain")
    d = tmp_path_factory.mktemp("gnostic")
    (d / "go.mod").write_text(GO_MOD)
    (d / "main.go").write_text(GO_MAIN)
    env = dict(os.environ, GOFLAGS="-mod=mod", GOWORK="off")   # modules come from the proxy
    p = subprocess.run([go, "build", "-o", str(d / "check"), "."], cwd=d, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"building the gnostic check failed: {p.stderr[-500:]}"
    return d / "check"


def test_protobuf_is_what_gnostic_makes_of_the_json(gnostic_check, tmp_path, doc):
    j = tmp_path / "swagger.json"
    pb = tmp_path / "swagger.pb"
    j.write_bytes(openapi_v2.swagger_json())
    pb.write_bytes(openapi_v2.swagger_protobuf())
    p = subprocess.run([str(gnostic_check), str(j), str(pb)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip() == (f"paths={len(doc['paths'])} definitions={len(doc['definitions'])} "
                                f"equal=true identical=true")


def test_encoder_handles_any_swagger_document(gnostic_check, tmp_path):
    """Constructs our own document does not use (refs to shared parameters and responses,
    header/formData parameters, file responses, enums, defaults, boolean additionalProperties)."""
    d = {
        "swagger": "2.0",
        "info": {"title": "t", "version": "1", "x-info": {"k": ["v"]}},
        "host": "h", "basePath": "/b", "schemes": ["https"], "consumes": ["a/b"],
        "produces": ["c/d"],
        "paths": {
            "x-paths": True,
            "/p/{id}": {
                "parameters": [{"$ref": "#/parameters/shared"}],
                "get": {"operationId": "g", "deprecated": True,
                        "parameters": [
                            {"in": "header", "name": "h", "type": "string", "required": True},
                            {"in": "formData", "name": "f", "type": "integer", "format": "int32",
                             "minimum": 1, "maximum": 10.5, "enum": [1, 2], "default": 2},
                            {"in": "query", "name": "q", "type": "array",
                             "items": {"type": "string", "enum": ["a"]},
                             "collectionFormat": "multi"}],
                        "responses": {"200": {"description": "ok",
                                              "schema": {"type": "file"},
                                              "headers": {"X": {"type": "string"}}},
                                      "404": {"$ref": "#/responses/nf"},
                                      "x-r": 1},
                        "security": [{"k": ["s1", "s2"]}]},
            },
        },
        "definitions": {
            "A": {"type": "object", "additionalProperties": False, "minProperties": 1,
                  "properties": {"b": {"type": ["string", "null"], "default": "x",
                                       "example": {"y": 1}, "readOnly": True,
                                       "maxLength": 3, "pattern": "^a$"},
                                 "c": {"items": {"type": "integer", "format": "int64"},
                                       "type": "array", "uniqueItems": True},
                                 "d": {"allOf": [{"$ref": "#/definitions/B"}],
                                       "x-ext": [{"a": {"b": "c"}}]}}},
            "B": {"type": "object", "additionalProperties": True, "discriminator": "kind",
                  "xml": {"name": "b", "wrapped": True}},
        },
        "parameters": {"shared": {"in": "path", "name": "id", "type": "string", "required": True},
                       "bodyp": {"in": "body", "name": "body", "schema": {"$ref": "#/definitions/A"}}},
        "responses": {"nf": {"description": "not found"}},
        "securityDefinitions": {"k": {"type": "apiKey", "name": "k", "in": "header"},
                                "basic": {"type": "basic"}},
        "security": [{"k": []}],
        "x-top": "v",
    }
    import json
    j = tmp_path / "doc.json"
    pb = tmp_path / "doc.pb"
    j.write_text(json.dumps(d))
    pb.write_bytes(openapi_v2.encode_document(d))
    p = subprocess.run([str(gnostic_check), str(j), str(pb)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip() == "paths=1 definitions=2 equal=true identical=true"
