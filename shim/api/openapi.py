"""OpenAPI v3 documents generated from ``schemas/`` (resources + field types).

Served as ``/openapi/v3`` (the index) and ``/openapi/v3/<path>`` (one
document per group-version, group and root), shaped like kube-apiserver
v1.37's so that kubectl and the Python client find what they look for:

* every operation carries ``x-kubernetes-action`` and (for resource
  operations) ``x-kubernetes-group-version-kind``;
* PATCH / POST / PUT list the ``fieldValidation`` query parameter (kubectl's
  query-param verifier takes the first PATCH operation whose GVK matches and
  requires a ``fieldValidation`` query parameter there);
* PATCH lists ``application/strategic-merge-patch+json`` in its request body
  (kubectl apply checks that before computing a strategic merge patch);
* component schemas carry the patch extensions
  (``x-kubernetes-patch-strategy`` / ``-merge-key``, list and map types) and
  top-level kinds carry ``x-kubernetes-group-version-kind`` (a list), which
  kubectl apply uses to find the schema of the object it patches.

No upstream description text is reproduced; documents carry no descriptions
except the HTTP reason phrases OpenAPI requires on responses.

Each document is built once, serialized once and cached together with its
hash (upper-case hex SHA-512 of the bytes, as kube-openapi computes it).
"""

from __future__ import annotations

import hashlib
import threading
from typing import Iterable

try:
    import orjson

    def _dumps(obj) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover
    import json

    def _dumps(obj) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

from shim.schemas import (ResourceInfo, Subresource, load_groups,
                          load_resources, load_types)

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
REF_PREFIX = "#/components/schemas/"

# --------------------------------------------------------------------------
# media types

STD_CT = ("application/cbor", "application/json", "application/vnd.kubernetes.protobuf",
          "application/yaml")
LIST_CT = ("application/cbor", "application/cbor-seq", "application/json",
           "application/json;stream=watch", "application/vnd.kubernetes.protobuf",
           "application/vnd.kubernetes.protobuf;stream=watch", "application/yaml")
LOG_CT = STD_CT + ("text/plain",)
PATCH_CT = ("application/apply-patch+cbor", "application/apply-patch+yaml",
            "application/json-patch+json", "application/merge-patch+json",
            "application/strategic-merge-patch+json")
REASON = {"200": "OK", "201": "Created", "202": "Accepted", "401": "Unauthorized"}

# --------------------------------------------------------------------------
# parameters (name, schema type)

LIST_Q = (("allowWatchBookmarks", "boolean"), ("continue", "string"),
          ("fieldSelector", "string"), ("labelSelector", "string"), ("limit", "integer"),
          ("resourceVersion", "string"), ("resourceVersionMatch", "string"),
          ("sendInitialEvents", "boolean"), ("shardSelector", "string"),
          ("timeoutSeconds", "integer"), ("watch", "boolean"))
DELETE_Q = (("dryRun", "string"), ("gracePeriodSeconds", "integer"),
            ("ignoreStoreReadErrorWithClusterBreakingPotential", "boolean"),
            ("orphanDependents", "boolean"), ("propagationPolicy", "string"))
DELETECOLLECTION_Q = DELETE_Q + tuple(p for p in LIST_Q
                                      if p[0] not in ("allowWatchBookmarks", "watch"))
WRITE_Q = (("dryRun", "string"), ("fieldManager", "string"), ("fieldValidation", "string"))
PATCH_Q = WRITE_Q + (("force", "boolean"),)
PRETTY_Q = (("pretty", "string"),)
LOG_Q = (("container", "string"), ("follow", "boolean"),
         ("insecureSkipTLSVerifyBackend", "boolean"), ("limitBytes", "integer"),
         ("previous", "boolean"), ("sinceSeconds", "integer"), ("stream", "string"),
         ("tailLines", "integer"), ("timestamps", "boolean"))
# query parameters of the connect subresources (fields of their *Options kinds)
CONNECT_Q = {
    "exec": (("command", "string"), ("container", "string"), ("stderr", "boolean"),
             ("stdin", "boolean"), ("stdout", "boolean"), ("tty", "boolean")),
    "attach": (("container", "string"), ("stderr", "boolean"), ("stdin", "boolean"),
               ("stdout", "boolean"), ("tty", "boolean")),
    "portforward": (("ports", "integer"),),
    "proxy": (("path", "string"),),
}
PROXY_METHODS = ("delete", "get", "head", "options", "patch", "post", "put")
CONNECT_VERB_METHOD = {"get": "get", "create": "post", "update": "put", "delete": "delete",
                       "patch": "patch"}


def _q(params: Iterable[tuple[str, str]]) -> list[dict]:
    return [{"in": "query", "name": n, "schema": {"type": t, "uniqueItems": True}}
            for n, t in params]


def _p(name: str) -> dict:
    return {"in": "path", "name": name, "required": True,
            "schema": {"type": "string", "uniqueItems": True}}


# --------------------------------------------------------------------------
# naming


def _group_camel(group: str) -> str:
    if not group:
        return "Core"
    g = group[: -len(".k8s.io")] if group.endswith(".k8s.io") else group
    return "".join(part[:1].upper() + part[1:] for part in g.split("."))


def _group_tag(group: str) -> str:
    c = _group_camel(group)
    return c[:1].lower() + c[1:]


def _ver_camel(version: str) -> str:
    return version[:1].upper() + version[1:]


def _ref(defn: str) -> dict:
    return {"$ref": REF_PREFIX + defn}


def _gvk(group: str, version: str, kind: str) -> dict:
    return {"group": group, "kind": kind, "version": version}


def _content(cts: Iterable[str], schema: dict) -> dict:
    return {ct: {"schema": schema} for ct in cts}


def _responses(codes: Iterable[str], cts: Iterable[str] | None, schema: dict | None) -> dict:
    out = {}
    for code in codes:
        r: dict = {"description": REASON[code]}
        if code != "401" and cts is not None:
            r["content"] = _content(cts, schema)
        out[code] = r
    return out


# --------------------------------------------------------------------------
# path items


class _Op:
    __slots__ = ("method", "body", "params")

    def __init__(self, method: str, params: list[dict], body: dict):
        self.method = method
        self.params = params
        self.body = body


def _param_key(p: dict) -> tuple[str, str]:
    return (p["name"], p["in"])


def _path_item(ops: list[_Op]) -> dict:
    """Assemble a path item; parameters shared by all operations move up."""
    keys = [{_param_key(p) for p in op.params} for op in ops]
    common = set.intersection(*keys) if keys else set()
    item: dict = {}
    shared: dict = {}
    for op in ops:
        own = []
        for p in op.params:
            k = _param_key(p)
            if k in common:
                shared[k] = p
            else:
                own.append(p)
        body = dict(op.body)
        if own:
            body["parameters"] = sorted(own, key=_param_key)
        item[op.method] = body
    if shared:
        item["parameters"] = [shared[k] for k in sorted(shared)]
    return dict(sorted(item.items()))


def _op_body(op_id: str, tag: str, action: str | None, gvk: dict | None, responses: dict,
             request: dict | None = None) -> dict:
    body: dict = {"operationId": op_id}
    if request is not None:
        body["requestBody"] = request
    body["responses"] = responses
    body["tags"] = [tag]
    if action is not None:
        body["x-kubernetes-action"] = action
    if gvk is not None:
        body["x-kubernetes-group-version-kind"] = gvk
    return body


class _DocBuilder:
    def __init__(self, group: str, version: str):
        self.group = group
        self.version = version
        self.prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
        self.tag = f"{_group_tag(group)}_{version}"
        self.gv_camel = _group_camel(group) + _ver_camel(version)
        self.paths: dict[str, list[_Op]] = {}
        self.roots: set[str] = set()

    # -- helpers
    def add(self, path: str, method: str, op_id: str, action: str | None, gvk: dict | None,
            params: list[dict], responses: dict, request: dict | None = None) -> None:
        self.roots.update(_refs_in(responses))
        if request is not None:
            self.roots.update(_refs_in(request))
        body = _op_body(op_id, self.tag, action, gvk, responses, request)
        self.paths.setdefault(path, []).append(_Op(method, params, body))

    def resource(self, r: ResourceInfo) -> None:
        gc = self.gv_camel
        kind = r.kind
        ns = "Namespaced" if r.namespaced else ""
        obj = _ref(r.definition)
        gvk = _gvk(r.group, r.version, r.kind)
        ns_params = [_p("namespace")] if r.namespaced else []
        coll = self.prefix + ("/namespaces/{namespace}/" if r.namespaced else "/") + r.plural
        item = coll + "/{name}"
        verbs = set(r.verbs)

        if "list" in verbs:
            self.add(coll, "get", f"list{gc}{ns}{kind}", "list", gvk,
                     ns_params + _q(LIST_Q + PRETTY_Q),
                     _responses(("200", "401"), LIST_CT, _ref(r.list_definition)))
            if r.namespaced:
                self.add(f"{self.prefix}/{r.plural}", "get", f"list{gc}{kind}ForAllNamespaces",
                         "list", gvk, _q(LIST_Q + PRETTY_Q),
                         _responses(("200", "401"), LIST_CT, _ref(r.list_definition)))
        if "create" in verbs:
            self.add(coll, "post", f"create{gc}{ns}{kind}", "post", gvk,
                     ns_params + _q(WRITE_Q + PRETTY_Q),
                     _responses(("200", "201", "202", "401"), STD_CT, obj),
                     {"content": _content(("*/*",), obj), "required": True})
        if "deletecollection" in verbs:
            self.add(coll, "delete", f"delete{gc}Collection{ns}{kind}", "deletecollection", gvk,
                     ns_params + _q(DELETECOLLECTION_Q + PRETTY_Q),
                     _responses(("200", "401"), STD_CT, _ref(META + "Status")),
                     {"content": _content(("*/*",), _ref(META + "DeleteOptions"))})
        item_params = ns_params + [_p("name")]
        if "get" in verbs:
            self.add(item, "get", f"read{gc}{ns}{kind}", "get", gvk,
                     item_params + _q(PRETTY_Q), _responses(("200", "401"), STD_CT, obj))
        if "update" in verbs:
            self.add(item, "put", f"replace{gc}{ns}{kind}", "put", gvk,
                     item_params + _q(WRITE_Q + PRETTY_Q),
                     _responses(("200", "201", "401"), STD_CT, obj),
                     {"content": _content(("*/*",), obj), "required": True})
        if "patch" in verbs:
            self.add(item, "patch", f"patch{gc}{ns}{kind}", "patch", gvk,
                     item_params + _q(PATCH_Q + PRETTY_Q),
                     _responses(("200", "201", "401"), STD_CT, obj),
                     {"content": _content(PATCH_CT, _ref(META + "Patch")), "required": True})
        if "delete" in verbs:
            deleted = obj if r.delete_returns_object else _ref(META + "Status")
            self.add(item, "delete", f"delete{gc}{ns}{kind}", "delete", gvk,
                     item_params + _q(DELETE_Q + PRETTY_Q),
                     _responses(("200", "202", "401"), STD_CT, deleted),
                     {"content": _content(("*/*",), _ref(META + "DeleteOptions"))})
        if "watch" in verbs:
            watch_pfx = self.prefix + "/watch"
            wcoll = watch_pfx + ("/namespaces/{namespace}/" if r.namespaced else "/") + r.plural
            event = _ref(META + "WatchEvent")
            wq = _q(LIST_Q + PRETTY_Q)
            self.add(wcoll, "get", f"watch{gc}{ns}{kind}List", "watchlist", gvk,
                     ns_params + wq, _responses(("200", "401"), LIST_CT, event))
            self.add(wcoll + "/{name}", "get", f"watch{gc}{ns}{kind}", "watch", gvk,
                     item_params + wq, _responses(("200", "401"), LIST_CT, event))
            if r.namespaced:
                self.add(f"{watch_pfx}/{r.plural}", "get",
                         f"watch{gc}{kind}ListForAllNamespaces", "watchlist", gvk, wq,
                         _responses(("200", "401"), LIST_CT, event))
        for sub in r.subresources.values():
            self.subresource(r, sub, item, item_params)

    def subresource(self, r: ResourceInfo, sub: Subresource, item: str,
                    item_params: list[dict]) -> None:
        gc = self.gv_camel
        ns = "Namespaced" if r.namespaced else ""
        name = r.kind + sub.name[:1].upper() + sub.name[1:]
        path = f"{item}/{sub.name}"
        gvk = _gvk(sub.group, sub.version, sub.kind)
        verbs = set(sub.verbs)

        if sub.name in CONNECT_Q and sub.kind.endswith("Options"):
            q = _q(CONNECT_Q[sub.name])
            string = _responses(("200", "401"), ("*/*",), {"type": "string"})
            if sub.name == "proxy":
                for method in PROXY_METHODS:
                    m = method.capitalize()
                    self.add(path, method, f"connect{gc}{m}{ns}{name}", "connect", gvk,
                             item_params + q, string)
                    self.add(path + "/{path}", method, f"connect{gc}{m}{ns}{name}WithPath",
                             "connect", gvk, item_params + [_p("path")] + q, string)
            else:
                for verb in sorted(verbs):
                    method = CONNECT_VERB_METHOD[verb]
                    m = method.capitalize()
                    self.add(path, method, f"connect{gc}{m}{ns}{name}", "connect", gvk,
                             item_params + q, string)
            return
        if sub.name == "log":
            self.add(path, "get", f"read{gc}{ns}{name}", "get", gvk,
                     item_params + _q(LOG_Q + PRETTY_Q),
                     _responses(("200", "401"), LOG_CT, {"type": "string"}))
            return

        obj = _ref(sub.definition)
        if "get" in verbs:
            self.add(path, "get", f"read{gc}{ns}{name}", "get", gvk,
                     item_params + _q(PRETTY_Q), _responses(("200", "401"), STD_CT, obj))
        if "create" in verbs:
            self.add(path, "post", f"create{gc}{ns}{name}", "post", gvk,
                     item_params + _q(WRITE_Q + PRETTY_Q),
                     _responses(("200", "201", "202", "401"), STD_CT, obj),
                     {"content": _content(("*/*",), obj), "required": True})
        if "update" in verbs:
            self.add(path, "put", f"replace{gc}{ns}{name}", "put", gvk,
                     item_params + _q(WRITE_Q + PRETTY_Q),
                     _responses(("200", "201", "401"), STD_CT, obj),
                     {"content": _content(("*/*",), obj), "required": True})
        if "patch" in verbs:
            self.add(path, "patch", f"patch{gc}{ns}{name}", "patch", gvk,
                     item_params + _q(PATCH_Q + PRETTY_Q),
                     _responses(("200", "201", "401"), STD_CT, obj),
                     {"content": _content(PATCH_CT, _ref(META + "Patch")), "required": True})

    def build(self, resources: Iterable[ResourceInfo]) -> dict:
        self.add(self.prefix + "/", "get", f"get{self.gv_camel}APIResources", None, None, [],
                 _responses(("200", "401"), STD_CT, _ref(META + "APIResourceList")))
        for r in resources:
            self.resource(r)
        paths = {p: _path_item(ops) for p, ops in sorted(self.paths.items())}
        return _document(paths, self.roots, (self.group, self.version))


def _refs_in(obj) -> Iterable[str]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "$ref" and isinstance(v, str) and v.startswith(REF_PREFIX):
                yield v[len(REF_PREFIX):]
            else:
                yield from _refs_in(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _refs_in(v)


# --------------------------------------------------------------------------
# component schemas

# Leaf definitions as upstream publishes them (shape only).
_LEAF_SCHEMAS = {
    "io.k8s.apimachinery.pkg.api.resource.Quantity":
        {"oneOf": [{"type": "string"}, {"type": "number"}]},
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
        {"format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}]},
    META + "Time": {"format": "date-time", "type": "string"},
    META + "MicroTime": {"format": "date-time", "type": "string"},
}
# Our own markers in types.json that do not belong in the published schema.
_PRIVATE_KEYS = ("x-definition", "x-kubernetes-quantity", "x-kubernetes-int-or-string",
                 "x-kubernetes-preserve-unknown-fields")
_MULTI_GV_KINDS = (META + "DeleteOptions", META + "WatchEvent")


def _schema_for_ref(t: dict, top: bool, deps: set[str]) -> dict:
    """OpenAPI schema for a types.json typeRef.  ``top``: a property (wrap refs in allOf)."""
    ext = {k: v for k, v in t.items()
           if k.startswith("x-") and k not in _PRIVATE_KEYS}
    target = t.get("$ref") or t.get("x-definition")
    if target is not None:
        deps.add(target)
        if top:
            return {"allOf": [_ref(target)], **ext}
        return _ref(target)
    if t.get("type") == "array":
        return {"items": _schema_for_ref(t["items"], False, deps), "type": "array", **ext}
    if isinstance(t.get("additionalProperties"), dict):
        return {"additionalProperties": _schema_for_ref(t["additionalProperties"], False, deps),
                "type": "object", **ext}
    out = {k: v for k, v in t.items() if k in ("type", "format")}
    out.update(ext)
    return out


def _component(defn: str, entry: dict | None, gv: tuple[str, str], deps: set[str]) -> dict:
    if defn in _LEAF_SCHEMAS:
        return dict(_LEAF_SCHEMAS[defn])
    if entry is None or "properties" not in entry:
        return {"type": "object"}
    props = {name: _schema_for_ref(t, True, deps) for name, t in entry["properties"].items()}
    out: dict = {"properties": props} if props else {}
    if entry.get("required"):
        out["required"] = list(entry["required"])
    out["type"] = "object"
    for k in ("x-kubernetes-map-type", "x-kubernetes-unions"):
        if k in entry:
            out[k] = entry[k]
    gvks = entry.get("x-kubernetes-group-version-kind")
    if gvks:
        if defn in _MULTI_GV_KINDS:
            gvks = [g for g in gvks
                    if (g["group"], g["version"]) in (("", "v1"), gv)]
        out["x-kubernetes-group-version-kind"] = [dict(g) for g in gvks]
    return out


def _document(paths: dict, roots: Iterable[str], gv: tuple[str, str]) -> dict:
    types = load_types()
    schemas: dict = {}
    todo = sorted(set(roots))
    while todo:
        defn = todo.pop()
        if defn in schemas:
            continue
        deps: set[str] = set()
        schemas[defn] = _component(defn, types.get(defn), gv, deps)
        todo.extend(d for d in deps if d not in schemas)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "BearerToken": {"type": "apiKey", "name": "authorization", "in": "header"},
            },
        },
    }


def _simple_doc(path: str, op_id: str, tag: str, defn: str, cts=STD_CT) -> dict:
    item = {"get": _op_body(op_id, tag, None, None,
                            _responses(("200", "401"), cts, _ref(defn)))}
    return _document({path: item}, [defn], ("", "v1"))


# --------------------------------------------------------------------------
# cache and public API


class _Entry:
    __slots__ = ("doc", "data", "etag")

    def __init__(self, doc: dict):
        self.doc = doc
        self.data = _dumps(doc)
        self.etag = hashlib.sha512(self.data).hexdigest().upper()


_lock = threading.Lock()
_cache: dict[str, _Entry] | None = None
_index: _Entry | None = None


def _build_all() -> dict[str, _Entry]:
    docs: dict[str, dict] = {}
    by_gv: dict[tuple[str, str], list[ResourceInfo]] = {}
    for r in load_resources():
        by_gv.setdefault((r.group, r.version), []).append(r)
    for group in load_groups():
        for version in group.versions:
            key = f"apis/{group.name}/{version}" if group.name else f"api/{version}"
            rs = sorted(by_gv.get((group.name, version), ()), key=lambda r: r.plural)
            docs[key] = _DocBuilder(group.name, version).build(rs)
        if group.name:
            docs[f"apis/{group.name}"] = _simple_doc(
                f"/apis/{group.name}/", f"get{_group_camel(group.name)}APIGroup",
                _group_tag(group.name), META + "APIGroup")
    docs["api"] = _simple_doc("/api/", "getCoreAPIVersions", "core", META + "APIVersions")
    docs["apis"] = _simple_doc("/apis/", "getAPIVersions", "apis", META + "APIGroupList")
    docs["version"] = _simple_doc("/version/", "getCodeVersion", "version",
                                  "io.k8s.apimachinery.pkg.version.Info", ("application/json",))
    return {k: _Entry(v) for k, v in sorted(docs.items())}


def _entries() -> dict[str, _Entry]:
    global _cache
    if _cache is None:
        with _lock:
            if _cache is None:
                _cache = _build_all()
    return _cache


def _norm(gv_path: str) -> str:
    p = gv_path.split("?", 1)[0].strip("/")
    if p.startswith("openapi/v3/"):
        p = p[len("openapi/v3/"):]
    return p


def server_relative_url(gv_path: str, etag: str) -> str:
    return f"/openapi/v3/{gv_path}?hash={etag}"


def openapi_v3_index() -> dict:
    """``{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=..."}, ...}}``"""
    return {"paths": {k: {"serverRelativeURL": server_relative_url(k, e.etag)}
                      for k, e in _entries().items()}}


def openapi_v3_index_bytes() -> tuple[bytes, str]:
    """Serialized index and its etag (cached)."""
    global _index
    if _index is None:
        entry = _Entry(openapi_v3_index())
        with _lock:
            if _index is None:
                _index = entry
    return _index.data, _index.etag


def openapi_v3_document(gv_path: str) -> dict | None:
    """The document for "api/v1", "apis/apps/v1", "apis/apps", "api", "apis",
    "version" (leading "/" or "/openapi/v3/" tolerated); None if not served.
    The returned dict is shared: do not modify it."""
    e = _entries().get(_norm(gv_path))
    return e.doc if e else None


def openapi_v3_document_bytes(gv_path: str) -> tuple[bytes, str] | None:
    """(serialized JSON, etag) of a document; the etag is what goes in ``?hash=``
    and in the ``ETag`` header (quoted).  None if not served."""
    e = _entries().get(_norm(gv_path))
    return (e.data, e.etag) if e else None


def openapi_v2_bytes(accept: str) -> tuple[bytes, str] | None:
    """GET /openapi/v2: (body, content type) -- JSON or gnostic protobuf, chosen by
    ``accept``; the Swagger 2.0 document is derived from these v3 documents
    (shim/api/openapi_v2.py).  Raises a 406 ApiError if neither is acceptable."""
    from shim.api import errors, openapi_v2
    found = openapi_v2.openapi_v2_bytes(accept)
    if found is None:
        raise errors.not_acceptable(f"application/json, {openapi_v2.PROTO_CT}")
    return found
