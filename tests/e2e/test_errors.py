"""Bad requests get upstream's Status (code, reason, message, details) and change nothing.

Raw HTTP over TLS, so the exact status line, content type and body are checked. Every
rejected write is bracketed by a snapshot of the namespace's objects (uid and
resourceVersion of each), which must come out identical.
"""
from __future__ import annotations

import asyncio
import json

import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from .rawhttp import Raw, status_of

IMAGE = "registry.k8s.io/pause:3.10"
SNAPSHOT_KINDS = ("/api/v1/namespaces/{ns}/configmaps", "/api/v1/namespaces/{ns}/pods",
                  "/apis/apps/v1/namespaces/{ns}/deployments", "/api/v1/namespaces/{ns}/secrets")
SYSTEM_OBJECTS = ("kube-root-ca.crt",)


@pytest.fixture
def raw(server) -> Raw:
    return Raw(server)


@pytest.fixture
def anon(server) -> Raw:
    return Raw(server, anonymous=True)


def snapshot(raw: Raw, ns: str) -> dict:
    """Every object of the namespace (of the kinds these tests write), with uid and resourceVersion."""
    out = {}
    for path in SNAPSHOT_KINDS:
        r = raw.get(path.format(ns=ns))
        assert r.status == 200, r.body
        for item in r.json()["items"]:
            m = item["metadata"]
            if m["name"] in SYSTEM_OBJECTS:
                continue  # written by controllers on their own schedule
            out[(path, m["name"])] = (m["uid"], m["resourceVersion"])
    return out


class Unchanged:
    """`with Unchanged(raw, ns): ...` asserts the namespace's objects are exactly as before."""

    def __init__(self, raw: Raw, ns: str):
        self.raw, self.ns = raw, ns

    def __enter__(self):
        self.before = snapshot(self.raw, self.ns)
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            assert snapshot(self.raw, self.ns) == self.before, "a rejected request changed the store"


def cm_body(name: str, **data) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data or {"k": "v"}}


def seed(raw: Raw, ns: str) -> dict:
    r = raw.request("POST", f"/api/v1/namespaces/{ns}/configmaps", cm_body("seed"))
    assert r.status == 201, r.body
    return r.json()


# -- bodies -------------------------------------------------------------------------------------

def test_malformed_json_is_400(raw, namespace):
    seeded = seed(raw, namespace)
    bad = b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "broken"'
    with Unchanged(raw, namespace):
        r = raw.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", bad,
                        {"Content-Type": "application/json"})
        body = status_of(r)
        assert (r.status, body["reason"]) == (400, "BadRequest")
        assert body["message"].startswith(
            "the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; "
            "json parse error: ")
        assert body["message"].endswith(f"({bad[:30].decode()} ...)")

        r = raw.request("PUT", f"/api/v1/namespaces/{namespace}/configmaps/seed", b"{not json}",
                        {"Content-Type": "application/json"})
        assert r.status == 400 and status_of(r)["reason"] == "BadRequest"

        r = raw.request("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/seed", b"{oops",
                        {"Content-Type": "application/merge-patch+json"})
        assert r.status == 400 and status_of(r)["reason"] == "BadRequest"
    assert raw.get(f"/api/v1/namespaces/{namespace}/configmaps/seed").json()["data"] == seeded["data"]


def test_yaml_body_is_accepted(raw, namespace):
    doc = yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "from-yaml", "labels": {"fmt": "yaml"}},
                          "data": {"multi": "line one\nline two\n", "n": "42"}})
    r = raw.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", doc.encode(),
                    {"Content-Type": "application/yaml"})
    assert r.status == 201, r.body
    assert r.content_type == "application/json"
    created = r.json()
    assert created["data"] == {"multi": "line one\nline two\n", "n": "42"}
    got = raw.get(f"/api/v1/namespaces/{namespace}/configmaps/from-yaml").json()
    assert got["metadata"]["uid"] == created["metadata"]["uid"] and got["metadata"]["labels"] == {"fmt": "yaml"}

    # a YAML PUT too, and a YAML answer when asked for
    got["data"]["n"] = "43"
    r = raw.request("PUT", f"/api/v1/namespaces/{namespace}/configmaps/from-yaml",
                    yaml.safe_dump(got).encode(), {"Content-Type": "application/yaml",
                                                   "Accept": "application/yaml"})
    assert r.status == 200 and r.content_type == "application/yaml"
    assert yaml.safe_load(r.body)["data"]["n"] == "43"


@pytest.mark.parametrize("ctype", ["text/html", "application/x-www-form-urlencoded"])
def test_unknown_media_type_is_415(raw, namespace, ctype):
    seed(raw, namespace)
    with Unchanged(raw, namespace):
        r = raw.request("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                        json.dumps(cm_body("nope")).encode(), {"Content-Type": ctype})
        body = status_of(r)
        assert (r.status, body["reason"]) == (415, "UnsupportedMediaType")
        assert body["message"] == ("the body of the request was in an unknown format - accepted media types "
                                   "include: application/json, application/yaml, "
                                   "application/vnd.kubernetes.protobuf")
        r = raw.request("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/seed",
                        b'{"data": {"k": "changed"}}', {"Content-Type": ctype})
        body = status_of(r)
        assert (r.status, body["reason"]) == (415, "UnsupportedMediaType")
        assert body["message"].startswith("the body of the request was in an unknown format - accepted media "
                                          "types include: application/json-patch+json, "
                                          "application/merge-patch+json, application/apply-patch+yaml")


def _too_large_body() -> bytes:
    return json.dumps(cm_body("huge", blob="x" * (3 * 1024 * 1024 + 100))).encode()


def test_body_over_3mib_is_413(raw, namespace):
    seed(raw, namespace)
    big = _too_large_body()
    with Unchanged(raw, namespace):
        r = raw.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", big,
                        {"Content-Type": "application/json"}, timeout=60)
        body = status_of(r)
        assert (r.status, body["reason"], body["message"]) == \
            (413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")

        # the same without a Content-Length (chunked): the limit holds while reading
        conn = raw.connect(60)
        try:
            chunks = (big[i:i + 65536] for i in range(0, len(big), 65536))
            conn.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", body=chunks,
                         headers={"Content-Type": "application/json"}, encode_chunked=True)
            resp = conn.getresponse()
            assert resp.status == 413
            assert json.loads(resp.read())["reason"] == "RequestEntityTooLarge"
        finally:
            conn.close()
    r = raw.get(f"/api/v1/namespaces/{namespace}/configmaps/huge")
    assert r.status == 404
    # a body just under the limit is fine
    ok = json.dumps(cm_body("big-but-fine", blob="y" * (1024 * 1024))).encode()
    r = raw.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", ok,
                    {"Content-Type": "application/json"}, timeout=60)
    assert r.status == 201, r.body[:300]


# -- authentication and authorization ---------------------------------------------------------

def test_anonymous_resource_request_is_forbidden(anon, raw, namespace):
    seed(raw, namespace)
    r = anon.get("/api/v1/pods")
    assert r.status == 403
    assert r.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods is forbidden: User "system:anonymous" cannot list resource "pods" '
                   'in API group "" at the cluster scope',
        "reason": "Forbidden", "details": {"kind": "pods"}, "code": 403}

    r = anon.get(f"/api/v1/namespaces/{namespace}/configmaps/seed")
    body = status_of(r)
    assert r.status == 403 and body["message"] == (
        f'configmaps "seed" is forbidden: User "system:anonymous" cannot get resource "configmaps" '
        f'in API group "" in the namespace "{namespace}"')
    assert body["details"] == {"name": "seed", "kind": "configmaps"}

    r = anon.get(f"/api/v1/namespaces/{namespace}")
    assert status_of(r)["message"] == (
        f'namespaces "{namespace}" is forbidden: User "system:anonymous" cannot get resource "namespaces" '
        f'in API group "" in the namespace "{namespace}"')

    r = anon.get("/apis/apps/v1/deployments")
    body = status_of(r)
    assert body["message"] == ('deployments.apps is forbidden: User "system:anonymous" cannot list resource '
                               '"deployments" in API group "apps" at the cluster scope')
    assert body["details"] == {"group": "apps", "kind": "deployments"}

    with Unchanged(raw, namespace):
        r = anon.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", cm_body("anon"))
        assert r.status == 403 and status_of(r)["message"].startswith(
            'configmaps is forbidden: User "system:anonymous" cannot create resource "configmaps"')
        r = anon.request("DELETE", f"/api/v1/namespaces/{namespace}/configmaps/seed")
        assert r.status == 403

    r = anon.get("/apis")
    assert r.status == 403 and status_of(r)["message"] == \
        'forbidden: User "system:anonymous" cannot get path "/apis"'
    assert r.json()["details"] == {}


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz"])
def test_anonymous_health_endpoints_are_allowed(anon, path):
    r = anon.get(path)
    assert (r.status, r.body, r.content_type) == (200, b"ok", "text/plain")
    r = anon.get(path + "?verbose")
    assert r.status == 200 and r.body.decode().rstrip().endswith(f"{path[1:]} check passed")


def test_anonymous_version_is_allowed(anon):
    r = anon.get("/version")
    assert r.status == 200 and r.content_type == "application/json"
    info = r.json()
    assert (info["major"], info["minor"]) == ("1", "37") and info["gitVersion"].startswith("v1.37.")


def test_bad_bearer_token_is_401(anon, raw, namespace):
    seed(raw, namespace)
    unauthorized = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
    with Unchanged(raw, namespace):
        for method, path in [("GET", "/api/v1/pods"), ("GET", "/healthz"), ("GET", "/version"),
                             ("DELETE", f"/api/v1/namespaces/{namespace}/configmaps/seed")]:
            r = anon.request(method, path, headers={"Authorization": "Bearer not-a-real-token"})
            assert r.status == 401, (method, path, r.body)
            assert r.json() == unauthorized


# -- addressing ----------------------------------------------------------------------------------

def test_unknown_paths_are_404(raw, namespace):
    r = raw.get("/this/does/not/exist")
    assert (r.status, r.body, r.content_type) == (404, b"404 page not found\n", "text/plain")

    for path in ("/api/v1/foos", f"/api/v1/namespaces/{namespace}/foos", "/apis/apps/v1/foos",
                 f"/api/v1/namespaces/{namespace}/configmaps/x/nosuchsub"):
        r = raw.get(path)
        body = status_of(r)
        assert (r.status, body["reason"], body["message"]) == \
            (404, "NotFound", "the server could not find the requested resource"), path

    r = raw.get(f"/api/v1/namespaces/{namespace}/configmaps/missing")
    body = status_of(r)
    assert (r.status, body["reason"], body["message"]) == (404, "NotFound", 'configmaps "missing" not found')
    assert body["details"] == {"name": "missing", "kind": "configmaps"}
    r = raw.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/missing")
    assert status_of(r)["message"] == 'deployments.apps "missing" not found'
    assert r.json()["details"] == {"name": "missing", "group": "apps", "kind": "deployments"}


def test_wrong_verb_is_405(raw, namespace):
    seed(raw, namespace)
    with Unchanged(raw, namespace):
        r = raw.request("POST", f"/api/v1/namespaces/{namespace}/configmaps/seed", cm_body("seed"))
        assert r.status == 405
        assert r.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": "the server does not allow this method on the requested resource",
                            "reason": "MethodNotAllowed", "details": {}, "code": 405}


# -- conflicts -------------------------------------------------------------------------------------

def test_already_exists_is_409(raw, namespace):
    seed(raw, namespace)
    with Unchanged(raw, namespace):
        r = raw.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", cm_body("seed", other="data"))
        assert r.status == 409
        assert r.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": 'configmaps "seed" already exists', "reason": "AlreadyExists",
                            "details": {"name": "seed", "kind": "configmaps"}, "code": 409}


def test_stale_update_is_409_conflict(raw, namespace):
    first = seed(raw, namespace)
    path = f"/api/v1/namespaces/{namespace}/configmaps/seed"
    current = dict(first, data={"k": "v2"})
    r = raw.request("PUT", path, current)
    assert r.status == 200
    stale = dict(first, data={"k": "stale"})
    with Unchanged(raw, namespace):
        r = raw.request("PUT", path, stale)
        assert r.status == 409
        assert r.json() == {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": 'Operation cannot be fulfilled on configmaps "seed": the object has been modified; '
                       'please apply your changes to the latest version and try again',
            "reason": "Conflict", "details": {"name": "seed", "kind": "configmaps"}, "code": 409}
        # a patch carrying a stale resourceVersion is a conflict too
        r = raw.request("PATCH", path, json.dumps({"metadata": {"resourceVersion": first["metadata"]["resourceVersion"]},
                                                   "data": {"k": "x"}}).encode(),
                        {"Content-Type": "application/merge-patch+json"})
        assert r.status == 409 and status_of(r)["reason"] == "Conflict"
    assert raw.get(path).json()["data"] == {"k": "v2"}


# -- validation --------------------------------------------------------------------------------

def test_invalid_objects_are_422_with_field_causes(raw, namespace):
    seed(raw, namespace)
    with Unchanged(raw, namespace):
        r = raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nocontainers"}, "spec": {"containers": []}})
        assert r.status == 422
        assert r.json() == {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": 'Pod "nocontainers" is invalid: spec.containers: Required value',
            "reason": "Invalid",
            "details": {"name": "nocontainers", "kind": "Pod",
                        "causes": [{"reason": "FieldValueRequired", "message": "Required value",
                                    "field": "spec.containers"}]},
            "code": 422}

        r = raw.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", cm_body("Bad_Name"))
        body = status_of(r)
        detail = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                  "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
                  "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
        assert (r.status, body["reason"]) == (422, "Invalid")
        assert body["message"] == f'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": {detail}'
        assert body["details"] == {"name": "Bad_Name", "kind": "ConfigMap", "causes": [
            {"reason": "FieldValueInvalid", "message": f'Invalid value: "Bad_Name": {detail}',
             "field": "metadata.name"}]}

        # several errors at once: all reported, each with its field path
        r = raw.request("POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": -1, "selector": {"matchLabels": {"app": "d"}},
                     "template": {"metadata": {"labels": {"app": "other"}},
                                  "spec": {"containers": [{"name": "c"}]}}}})
        body = status_of(r)
        assert (r.status, body["reason"]) == (422, "Invalid")
        assert body["message"].startswith('Deployment.apps "d" is invalid: [')
        fields = {c["field"] for c in body["details"]["causes"]}
        assert {"spec.replicas", "spec.template.metadata.labels",
                "spec.template.spec.containers[0].image"} <= fields
        assert body["details"]["group"] == "apps" and body["details"]["kind"] == "Deployment"

        # an update that breaks validation is rejected the same way
        cur = raw.get(f"/api/v1/namespaces/{namespace}/configmaps/seed").json()
        cur["metadata"]["labels"] = {"bad label!": "x"}
        r = raw.request("PUT", f"/api/v1/namespaces/{namespace}/configmaps/seed", cur)
        body = status_of(r)
        assert (r.status, body["reason"]) == (422, "Invalid")
        assert body["details"]["causes"][0]["field"] == "metadata.labels"


def test_unknown_field_with_strict_validation_is_400(raw, namespace):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "strict"},
           "spec": {"foo": "bar", "containers": [{"name": "c", "image": IMAGE}]}}
    seed(raw, namespace)
    with Unchanged(raw, namespace):
        r = raw.request("POST", f"/api/v1/namespaces/{namespace}/pods?fieldValidation=Strict", pod)
        assert r.status == 400
        assert r.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": 'strict decoding error: unknown field "spec.foo"',
                            "reason": "BadRequest", "code": 400}
        r = raw.request("POST", f"/api/v1/namespaces/{namespace}/pods?fieldValidation=Bogus", pod)
        assert r.status == 400 and status_of(r)["reason"] == "BadRequest"
    # the default (Warn) accepts it, drops the field and says so in a parseable Warning header
    r = raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod)
    assert r.status == 201
    assert r.headers.get_all("Warning") == ['299 - "unknown field \\"spec.foo\\""']
    assert "foo" not in r.json()["spec"]
    # Ignore: silently
    pod["metadata"]["name"] = "ignored"
    r = raw.request("POST", f"/api/v1/namespaces/{namespace}/pods?fieldValidation=Ignore", pod)
    assert r.status == 201 and r.headers.get_all("Warning") is None


# -- list and watch options -------------------------------------------------------------------------

def test_garbage_continue_token_is_400(raw, namespace):
    for i in range(3):
        raw.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", cm_body(f"c{i}"))
    for token in ("garbage", "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MCwic3RhcnQiOiJ4In0"):
        r = raw.get(f"/api/v1/namespaces/{namespace}/configmaps?limit=1&continue={token}")
        body = status_of(r)
        assert (r.status, body["reason"]) == (400, "BadRequest"), token
        assert body["message"].startswith("invalid continue token: continue key is not valid"), body
    # a good token still works
    first = raw.get(f"/api/v1/namespaces/{namespace}/configmaps?limit=1").json()
    r = raw.get(f"/api/v1/namespaces/{namespace}/configmaps?limit=1&continue={first['metadata']['continue']}")
    assert r.status == 200 and len(r.json()["items"]) == 1


def test_too_large_resource_version_is_504(raw, namespace):
    r = raw.get(f"/api/v1/namespaces/{namespace}/configmaps?resourceVersion=999999999"
                f"&resourceVersionMatch=NotOlderThan")
    body = status_of(r)
    assert (r.status, body["reason"]) == (504, "Timeout")
    assert body["message"].startswith("Too large resource version: 999999999, current: ")
    r = raw.get(f"/api/v1/namespaces/{namespace}/configmaps?resourceVersion=abc")
    assert r.status == 400 and status_of(r)["reason"] == "BadRequest"


# -- compacted history: expired continue tokens and too-old watches -------------------------------

def _client(server) -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(server.kubeconfig), client_configuration=cfg)
    return client.ApiClient(cfg)


def _compact_offline(data_dir) -> int:
    """Compact the stopped server's store to its current revision (the API has no compaction verb)."""
    from shim.store import open_store

    async def run() -> int:
        store = open_store("sqlite", path=str(data_dir / "state.db"))
        await store.start()
        try:
            rev = await store.current_revision()
            await store.compact(rev)
            return rev
        finally:
            await store.close()
    return asyncio.run(run())


def test_compacted_history_expires_continue_tokens_and_old_watches(fresh_server):
    s = fresh_server().start()
    with _client(s) as api:
        v1 = client.CoreV1Api(api)
        v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="hist")))
        first = v1.create_namespaced_config_map("hist", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="c0"), data={"n": "0"}))
        for i in range(1, 6):
            v1.create_namespaced_config_map("hist", client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=f"c{i}"), data={"n": str(i)}))
        page = v1.list_namespaced_config_map("hist", limit=2)
        token = page.metadata._continue
        assert token
        for i in range(6):
            v1.patch_namespaced_config_map(f"c{i}", "hist", {"data": {"n": f"{i}b"}})
    assert s.stop() == 0
    compacted_at = _compact_offline(s.data_dir)
    old_rv = int(first.metadata.resource_version)
    assert compacted_at > int(page.metadata.resource_version) > old_rv

    s2 = fresh_server(data_dir=s.data_dir).start()
    raw = Raw(s2)
    # the continue token's snapshot is gone
    r = raw.get(f"/api/v1/namespaces/hist/configmaps?limit=2&continue={token}")
    body = status_of(r)
    assert (r.status, body["reason"]) == (410, "Expired")
    assert body["message"].startswith("The provided continue parameter is too old to display a consistent "
                                      "list result. You can start a new list without the continue parameter")
    # so is an exact read of the past
    r = raw.get(f"/api/v1/namespaces/hist/configmaps?resourceVersion={old_rv}&resourceVersionMatch=Exact")
    assert r.status == 410 and status_of(r)["reason"] == "Expired"

    # a watch from before the compaction: 200, then one ERROR event (410 Expired), then the end
    conn, resp = raw.stream(f"/api/v1/namespaces/hist/configmaps?watch=1&resourceVersion={old_rv}",
                            timeout=10)
    try:
        assert resp.status == 200
        lines = [ln for ln in resp.read().splitlines() if ln.strip()]
    finally:
        conn.close()
    assert len(lines) == 1, lines
    ev = json.loads(lines[0])
    assert ev["type"] == "ERROR"
    st = ev["object"]
    assert (st["kind"], st["status"], st["code"], st["reason"]) == ("Status", "Failure", 410, "Expired")
    assert st["message"].startswith(f"too old resource version: {old_rv} ("), st

    with _client(s2) as api:
        v1 = client.CoreV1Api(api)
        # the official client surfaces it as a 410 (it retries only without a timeout)
        with pytest.raises(ApiException) as e:
            for _ in watch.Watch().stream(v1.list_namespaced_config_map, "hist",
                                          resource_version=str(old_rv), timeout_seconds=5):
                pass
        assert e.value.status == 410
        # the present is fine: a fresh list, and a watch from its resourceVersion
        lst = v1.list_namespaced_config_map("hist")
        assert sorted(c.data["n"] for c in lst.items if c.metadata.name.startswith("c")) == \
            [f"{i}b" for i in range(6)]
        v1.create_namespaced_config_map("hist", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="new")))
        events = [(ev["type"], ev["object"].metadata.name) for ev in watch.Watch().stream(
            v1.list_namespaced_config_map, "hist", resource_version=lst.metadata.resource_version,
            timeout_seconds=1) if ev["object"].metadata.name != "kube-root-ca.crt"]
        assert events == [("ADDED", "new")]
