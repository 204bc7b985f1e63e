"""OpenAPI v2 (Swagger 2.0) at ``/openapi/v2``, derived from the v3 documents.

The v3 documents (shim/api/openapi.py, generated from ``schemas/``) are the one
source: their paths and component schemas are rewritten into one Swagger 2.0
document covering every served group-version, the way kube-apiserver serves
one aggregated v2 document:

* operations get ``consumes``/``produces``/``schemes`` and a ``body``
  parameter instead of a ``requestBody``; query and path parameters are
  flattened (``type``/``uniqueItems`` beside ``in``/``name``); they keep
  ``x-kubernetes-action`` and ``x-kubernetes-group-version-kind``;
* component schemas become ``definitions`` (``$ref`` without the ``allOf``
  wrapper, Quantity/IntOrString as formatted strings); the patch extensions
  (``x-kubernetes-patch-merge-key``/``-strategy``, list and map types) and
  the kinds' ``x-kubernetes-group-version-kind`` lists are kept.

Two encodings, chosen by ``Accept`` as kube-openapi's handler does:
``application/json``, and the protobuf encoding of gnostic's OpenAPI v2
``Document`` message (what client-go's ``OpenAPISchema()`` asks for and
always decodes).  The protobuf encoder is written here for exactly the
messages a Swagger document is made of; vendor extensions are ``Any``
messages carrying the value as YAML text, as gnostic's parser produces them.
Both encodings are built once and cached.
"""
from __future__ import annotations

import hashlib
import re
import struct
import threading

try:
    import orjson

    def _dumps(obj) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover
    import json

    def _dumps(obj) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

from shim import schemas as _schemas
from shim.api import openapi as _v3

JSON_CT = "application/json"
PROTO_SUBTYPE = "com.github.proto-openapi.spec.v2.v1.0+protobuf"
PROTO_SUBTYPE_OLD = "com.github.proto-openapi.spec.v2@v1.0+protobuf"
PROTO_CT = "application/" + PROTO_SUBTYPE

V3_REF = "#/components/schemas/"
V2_REF = "#/definitions/"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."

# media type order as kube-apiserver lists them
_CT_ORDER = ("text/plain", "application/json", "application/yaml",
             "application/vnd.kubernetes.protobuf", "application/cbor",
             "application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch",
             "application/cbor-seq",
             "application/json-patch+json", "application/merge-patch+json",
             "application/strategic-merge-patch+json", "application/apply-patch+yaml",
             "application/apply-patch+cbor")
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
# definitions whose v2 form differs from the v3 one (v2 has no oneOf)
_LEAF_V2 = {
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"},
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"format": "int-or-string", "type": "string"},
}
_MULTI_GV_KINDS = (META + "DeleteOptions", META + "WatchEvent")


# ------------------------------------------------------------------------------------------
# v3 -> v2


def _ct_sorted(cts) -> list[str]:
    rank = {c: i for i, c in enumerate(_CT_ORDER)}
    return sorted(cts, key=lambda c: (rank.get(c, len(rank)), c))


def _schema(s):
    """A v3 schema (as our generator writes them) in its v2 form."""
    if isinstance(s, list):
        return [_schema(x) for x in s]
    if not isinstance(s, dict):
        return s
    out: dict = {}
    all_of = s.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict) \
            and "$ref" in all_of[0]:
        out["$ref"] = _ref(all_of[0]["$ref"])
    for k, v in s.items():
        if k == "allOf" and "$ref" in out:
            continue
        if k == "$ref":
            out["$ref"] = _ref(v)
        elif k in ("properties", "definitions") and isinstance(v, dict):
            out[k] = {n: _schema(x) for n, x in v.items()}
        elif k in ("items", "additionalProperties", "allOf", "not"):
            out[k] = _schema(v)
        elif k in ("oneOf", "anyOf", "nullable"):
            continue  # not Swagger 2.0
        else:
            out[k] = v
    return dict(sorted(out.items()))


def _ref(r: str) -> str:
    return V2_REF + r[len(V3_REF):] if r.startswith(V3_REF) else r


def _parameter(p: dict) -> dict:
    out = {"in": p["in"], "name": p["name"]}
    if p.get("required"):
        out["required"] = True
    sch = p.get("schema") or {}
    for k in ("type", "format", "uniqueItems"):
        if k in sch:
            out[k] = sch[k]
    if "items" in sch:
        out["items"] = sch["items"]
    return dict(sorted(out.items()))


def _operation(op: dict) -> dict:
    out: dict = {}
    req = op.get("requestBody")
    ok = next((r for code, r in sorted(op.get("responses", {}).items())
               if code.startswith("2") and "content" in r), None)
    produces = _ct_sorted(ok["content"]) if ok else []
    if req is not None:
        out["consumes"] = _ct_sorted(req.get("content", {}))
    elif "x-kubernetes-action" not in op and produces:
        out["consumes"] = list(produces)  # discovery endpoints
    else:
        out["consumes"] = ["*/*"]
    out["operationId"] = op["operationId"]
    params = []
    if req is not None:
        schema = next(iter(req.get("content", {}).values()), {}).get("schema", {})
        body = {"in": "body", "name": "body"}
        if req.get("required"):
            body["required"] = True
        body["schema"] = _schema(schema)
        params.append(body)
    params.extend(_parameter(p) for p in op.get("parameters", ()))
    if params:
        out["parameters"] = params
    if produces:
        out["produces"] = produces
    responses = {}
    for code, r in op.get("responses", {}).items():
        rr = {"description": r.get("description", "")}
        content = r.get("content")
        if content:
            rr["schema"] = _schema(next(iter(content.values())).get("schema", {}))
        responses[code] = rr
    out["responses"] = responses
    out["schemes"] = ["https"]
    for k in ("tags",):
        if k in op:
            out[k] = list(op[k])
    for k, v in op.items():
        if k.startswith("x-"):
            out[k] = v
    return out


def _path_item(item: dict) -> dict:
    out = {}
    for k, v in item.items():
        if k in _METHODS:
            out[k] = _operation(v)
        elif k == "parameters":
            out[k] = [_parameter(p) for p in v]
        elif k.startswith("x-"):
            out[k] = v
    return dict(sorted(out.items()))


def _served_gvs() -> set[tuple[str, str]]:
    return {(g.name, v) for g in _schemas.load_groups() for v in g.versions}


def build_document() -> dict:
    """The Swagger 2.0 document (a fresh dict)."""
    paths: dict = {}
    defs: dict = {}
    index = _v3.openapi_v3_index()["paths"]
    for key in index:
        doc = _v3.openapi_v3_document(key)
        if doc is None:
            continue
        for p, item in doc.get("paths", {}).items():
            paths.setdefault(p, _path_item(item))
        for name, sch in doc.get("components", {}).get("schemas", {}).items():
            if name not in defs:
                defs[name] = dict(_LEAF_V2[name]) if name in _LEAF_V2 else _schema(sch)
    types = _schemas.load_types()
    served = _served_gvs()
    for name in _MULTI_GV_KINDS:
        if name in defs:
            gvks = (types.get(name) or {}).get("x-kubernetes-group-version-kind") or []
            gvks = sorted((g for g in gvks if (g["group"], g["version"]) in served),
                          key=lambda g: (g["group"], g["version"]))
            if gvks:
                defs[name]["x-kubernetes-group-version-kind"] = [dict(g) for g in gvks]
    return {
        "definitions": dict(sorted(defs.items())),
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": dict(sorted(paths.items())),
        "security": [{"BearerToken": []}],
        "securityDefinitions": {
            "BearerToken": {"in": "header", "name": "authorization", "type": "apiKey"},
        },
        "swagger": "2.0",
    }


# ------------------------------------------------------------------------------------------
# YAML text of extension values (what gnostic stores in Any.yaml: yaml.v3 block style)

_PLAIN_RE = re.compile(r"^[A-Za-z_/][A-Za-z0-9_.,/()\-]*( [A-Za-z0-9_.,/()\-]+)*$")
_RESERVED = {"true", "false", "null", "~"}


def _yaml_scalar(v) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return repr(v) if isinstance(v, float) else str(v)
    s = str(v)
    if s and _PLAIN_RE.match(s) and s.lower() not in _RESERVED:
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _yaml_lines(v, indent: int, first: str | None = None) -> list[str]:
    """Block YAML of v as yaml.v3 writes it: nested blocks 4 deeper than their parent's
    indent; a mapping that is a sequence item starts after "- " but keeps the dash's
    indent for what it nests.  ``first``: prefix replacing the first line's padding."""
    pad = " " * indent
    out: list[str] = []
    if isinstance(v, dict) and v:
        key_pad = pad if first is None else " " * len(first)
        for i, (k, x) in enumerate(v.items()):
            lead = first if i == 0 and first is not None else key_pad
            key = _yaml_scalar(k)
            if isinstance(x, (dict, list)) and x:
                out.append(f"{lead}{key}:")
                out.extend(_yaml_lines(x, indent + 4))
            else:
                out.append(f"{lead}{key}: {_yaml_inline(x)}")
        return out
    if isinstance(v, list) and v:
        for x in v:
            lead = pad if first is None or out else first
            if isinstance(x, dict) and x:
                out.extend(_yaml_lines(x, indent, lead + "- "))
            elif isinstance(x, list) and x:
                out.extend(_yaml_lines(x, indent + 2, lead + "- "))
            else:
                out.append(f"{lead}- {_yaml_inline(x)}")
        return out
    return [(pad if first is None else first) + _yaml_inline(v)]


def _yaml_inline(x) -> str:
    if isinstance(x, dict):
        return "{}"
    if isinstance(x, list):
        return "[]"
    return _yaml_scalar(x)


def yaml_text(v) -> str:
    return "\n".join(_yaml_lines(v, 0)) + "\n"


# ------------------------------------------------------------------------------------------
# protobuf wire encoding of gnostic's openapi.v2 messages


def _varint(n: int) -> bytes:
    if n < 0:
        n &= (1 << 64) - 1
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint((field << 3) | wire)


def _len(field: int, data: bytes) -> bytes:
    return _key(field, 2) + _varint(len(data)) + data


def _str(field: int, s) -> bytes:
    if s is None or s == "":
        return b""
    if not isinstance(s, str):
        s = str(s)
    return _len(field, s.encode())


def _bool(field: int, b) -> bytes:
    return _key(field, 0) + b"\x01" if b is True else b""


def _int(field: int, n) -> bytes:
    if isinstance(n, bool) or not isinstance(n, (int, float)) or int(n) == 0:
        return b""
    return _key(field, 0) + _varint(int(n))


def _double(field: int, x) -> bytes:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or float(x) == 0.0:
        return b""
    return _key(field, 1) + struct.pack("<d", float(x))


def _strs(field: int, xs) -> bytes:
    if isinstance(xs, str):
        xs = [xs]
    return b"".join(_len(field, str(x).encode()) for x in xs or ())


def _any(v) -> bytes:
    """openapi.v2.Any {google.protobuf.Any value = 1; string yaml = 2}"""
    return _str(2, yaml_text(v))


def _ext(field: int, obj: dict) -> bytes:
    """repeated NamedAny vendor_extension: every "x-" key of obj, in order."""
    return b"".join(_len(field, _str(1, k) + _len(2, _any(v)))
                    for k, v in obj.items() if isinstance(k, str) and k.startswith("x-"))


def _msg(field: int, data: bytes | None) -> bytes:
    return b"" if data is None else _len(field, data)


# field layouts of the primitive-valued parameter/items/header messages: name -> field number
_PRIM_FIELDS = ("type", "format", "items", "collectionFormat", "default", "maximum",
                "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength",
                "pattern", "maxItems", "minItems", "uniqueItems", "enum", "multipleOf")
_KINDS = {"type": "s", "format": "s", "items": "items", "collectionFormat": "s",
          "default": "any", "maximum": "d", "exclusiveMaximum": "b", "minimum": "d",
          "exclusiveMinimum": "b", "maxLength": "i", "minLength": "i", "pattern": "s",
          "maxItems": "i", "minItems": "i", "uniqueItems": "b", "enum": "anys",
          "multipleOf": "d", "required": "b", "in": "s", "description": "s", "name": "s",
          "allowEmptyValue": "b"}


def _fields(obj: dict, layout: list[tuple[str, int]], ext_field: int) -> bytes:
    out = []
    for name, num in layout:
        if name not in obj:
            continue
        v = obj[name]
        kind = _KINDS[name]
        if kind == "s":
            out.append(_str(num, v))
        elif kind == "b":
            out.append(_bool(num, v))
        elif kind == "i":
            out.append(_int(num, v))
        elif kind == "d":
            out.append(_double(num, v))
        elif kind == "any":
            out.append(_len(num, _any(v)))
        elif kind == "anys":
            out.append(b"".join(_len(num, _any(x)) for x in v or ()))
        elif kind == "items":
            out.append(_len(num, _primitives_items(v)))
    out.append(_ext(ext_field, obj))
    return b"".join(out)


def _layout(prefix: tuple[str, ...], rest=_PRIM_FIELDS) -> list[tuple[str, int]]:
    names = list(prefix) + list(rest)
    return [(n, i + 1) for i, n in enumerate(names)]


_PRIMITIVES_ITEMS = _layout(())                                   # ext 18
_QUERY = _layout(("required", "in", "description", "name", "allowEmptyValue"))   # ext 23
_FORM = _QUERY                                                    # ext 23
_PATH = _layout(("required", "in", "description", "name"))       # ext 22
_HEADER_PARAM = _PATH                                             # ext 22
_HEADER = _layout((), _PRIM_FIELDS + ("description",))            # ext 19


def _primitives_items(obj: dict) -> bytes:
    return _fields(obj, _PRIMITIVES_ITEMS, 18)


def _non_body_parameter(p: dict) -> bytes:
    where = p.get("in")
    if where == "header":
        return _len(1, _fields(p, _HEADER_PARAM, 22))
    if where == "formData":
        return _len(2, _fields(p, _FORM, 23))
    if where == "query":
        return _len(3, _fields(p, _QUERY, 23))
    return _len(4, _fields(p, _PATH, 22))


def _body_parameter(p: dict) -> bytes:
    return b"".join((
        _str(1, p.get("description")), _str(2, p.get("name")), _str(3, p.get("in")),
        _bool(4, p.get("required")),
        _msg(5, _schema_msg(p["schema"]) if "schema" in p else None),
        _ext(6, p),
    ))


def _parameter_msg(p: dict) -> bytes:
    if p.get("in") == "body":
        return _len(1, _body_parameter(p))
    return _len(2, _non_body_parameter(p))


def _parameters_item(p: dict) -> bytes:
    if "$ref" in p:
        return _len(2, _str(1, p["$ref"]) + _str(2, p.get("description")))
    return _len(1, _parameter_msg(p))


def _named(field: int, mapping: dict, encode) -> bytes:
    return b"".join(_len(field, _str(1, k) + _len(2, encode(v))) for k, v in mapping.items())


def _schema_msg(s: dict) -> bytes:
    out = [
        _str(1, s.get("$ref")),
        _str(2, s.get("format")),
        _str(3, s.get("title")),
        _str(4, s.get("description")),
        _len(5, _any(s["default"])) if "default" in s else b"",
        _double(6, s.get("multipleOf")),
        _double(7, s.get("maximum")),
        _bool(8, s.get("exclusiveMaximum")),
        _double(9, s.get("minimum")),
        _bool(10, s.get("exclusiveMinimum")),
        _int(11, s.get("maxLength")),
        _int(12, s.get("minLength")),
        _str(13, s.get("pattern")),
        _int(14, s.get("maxItems")),
        _int(15, s.get("minItems")),
        _bool(16, s.get("uniqueItems")),
        _int(17, s.get("maxProperties")),
        _int(18, s.get("minProperties")),
        _strs(19, s.get("required")),
        b"".join(_len(20, _any(x)) for x in s.get("enum") or ()),
    ]
    if "additionalProperties" in s:
        ap = s["additionalProperties"]
        if isinstance(ap, bool):
            out.append(_len(21, _key(2, 0) + (b"\x01" if ap else b"\x00")))
        else:
            out.append(_len(21, _len(1, _schema_msg(ap))))
    if "type" in s:
        out.append(_len(22, _strs(1, s["type"])))
    if "items" in s:
        items = s["items"]
        items = items if isinstance(items, list) else [items]
        out.append(_len(23, b"".join(_len(1, _schema_msg(x)) for x in items)))
    out.append(b"".join(_len(24, _schema_msg(x)) for x in s.get("allOf") or ()))
    if "properties" in s:
        out.append(_len(25, _named(1, s["properties"], _schema_msg)))
    out.append(_str(26, s.get("discriminator")))
    out.append(_bool(27, s.get("readOnly")))
    if "xml" in s:
        x = s["xml"]
        out.append(_len(28, _str(1, x.get("name")) + _str(2, x.get("namespace")) +
                        _str(3, x.get("prefix")) + _bool(4, x.get("attribute")) +
                        _bool(5, x.get("wrapped")) + _ext(6, x)))
    if "externalDocs" in s:
        out.append(_len(29, _external_docs(s["externalDocs"])))
    if "example" in s:
        out.append(_len(30, _any(s["example"])))
    out.append(_ext(31, s))
    return b"".join(out)


def _external_docs(d: dict) -> bytes:
    return _str(1, d.get("description")) + _str(2, d.get("url")) + _ext(3, d)


def _response(r: dict) -> bytes:
    out = [_str(1, r.get("description"))]
    if "schema" in r:
        sch = r["schema"]
        if sch.get("type") == "file":
            out.append(_len(2, _len(2, _file_schema(sch))))
        else:
            out.append(_len(2, _len(1, _schema_msg(sch))))
    if "headers" in r:
        out.append(_len(3, _named(1, r["headers"], lambda h: _fields(h, _HEADER, 19))))
    if "examples" in r:
        out.append(_len(4, _named(1, r["examples"], _any)))
    out.append(_ext(5, r))
    return b"".join(out)


def _file_schema(s: dict) -> bytes:
    return b"".join((
        _str(1, s.get("format")), _str(2, s.get("title")), _str(3, s.get("description")),
        _len(4, _any(s["default"])) if "default" in s else b"",
        _strs(5, s.get("required")), _str(6, s.get("type")), _bool(7, s.get("readOnly")),
        _len(8, _external_docs(s["externalDocs"])) if "externalDocs" in s else b"",
        _len(9, _any(s["example"])) if "example" in s else b"",
        _ext(10, s),
    ))


def _response_value(r: dict) -> bytes:
    if "$ref" in r:
        return _len(2, _str(1, r["$ref"]) + _str(2, r.get("description")))
    return _len(1, _response(r))


def _responses(rs: dict) -> bytes:
    codes = {k: v for k, v in rs.items() if not k.startswith("x-")}
    return _named(1, codes, _response_value) + _ext(2, rs)


def _security_requirement(req: dict) -> bytes:
    return _named(1, req, lambda names: _strs(1, names))


def _operation_msg(op: dict) -> bytes:
    return b"".join((
        _strs(1, op.get("tags")),
        _str(2, op.get("summary")),
        _str(3, op.get("description")),
        _len(4, _external_docs(op["externalDocs"])) if "externalDocs" in op else b"",
        _str(5, op.get("operationId")),
        _strs(6, op.get("produces")),
        _strs(7, op.get("consumes")),
        b"".join(_len(8, _parameters_item(p)) for p in op.get("parameters") or ()),
        _len(9, _responses(op["responses"])) if "responses" in op else b"",
        _strs(10, op.get("schemes")),
        _bool(11, op.get("deprecated")),
        b"".join(_len(12, _security_requirement(r)) for r in op.get("security") or ()),
        _ext(13, op),
    ))


def _path_item_msg(item: dict) -> bytes:
    out = [_str(1, item.get("$ref"))]
    for i, m in enumerate(_METHODS, start=2):
        if m in item:
            out.append(_len(i, _operation_msg(item[m])))
    out.append(b"".join(_len(9, _parameters_item(p)) for p in item.get("parameters") or ()))
    out.append(_ext(10, item))
    return b"".join(out)


def _security_definition(d: dict) -> bytes:
    t = d.get("type")
    if t == "apiKey":
        body = (_str(1, t) + _str(2, d.get("name")) + _str(3, d.get("in")) +
                _str(4, d.get("description")) + _ext(5, d))
        return _len(2, body)
    if t == "basic":
        return _len(1, _str(1, t) + _str(2, d.get("description")) + _ext(3, d))
    raise ValueError(f"unsupported security definition type {t!r}")


def _info(info: dict) -> bytes:
    return (_str(1, info.get("title")) + _str(2, info.get("version")) +
            _str(3, info.get("description")) + _str(4, info.get("termsOfService")) +
            _ext(7, info))


def encode_document(doc: dict) -> bytes:
    """gnostic openapi.v2.Document in protobuf wire format."""
    out = [_str(1, doc.get("swagger")),
           _len(2, _info(doc["info"])) if "info" in doc else b"",
           _str(3, doc.get("host")), _str(4, doc.get("basePath")),
           _strs(5, doc.get("schemes")), _strs(6, doc.get("consumes")),
           _strs(7, doc.get("produces"))]
    if "paths" in doc:
        paths = doc["paths"]
        out.append(_len(8, _ext(1, paths) + _named(
            2, {k: v for k, v in paths.items() if not k.startswith("x-")}, _path_item_msg)))
    if "definitions" in doc:
        out.append(_len(9, _named(1, doc["definitions"], _schema_msg)))
    if "parameters" in doc:
        out.append(_len(10, _named(1, doc["parameters"], _parameter_msg)))
    if "responses" in doc:
        out.append(_len(11, _named(1, doc["responses"], _response)))
    out.append(b"".join(_len(12, _security_requirement(r)) for r in doc.get("security") or ()))
    if "securityDefinitions" in doc:
        out.append(_len(13, _named(1, doc["securityDefinitions"], _security_definition)))
    out.append(_ext(16, doc))
    return b"".join(out)


# ------------------------------------------------------------------------------------------
# cache and content negotiation


class _Cached:
    __slots__ = ("doc", "json", "proto", "etag")

    def __init__(self, doc: dict):
        self.doc = doc
        self.json = _dumps(doc)
        self.proto = encode_document(doc)
        self.etag = hashlib.sha512(self.json).hexdigest().upper()


_lock = threading.Lock()
_cached: _Cached | None = None


def _get() -> _Cached:
    global _cached
    if _cached is None:
        with _lock:
            if _cached is None:
                _cached = _Cached(build_document())
    return _cached


def swagger_document() -> dict:
    """The cached Swagger 2.0 document (shared: do not modify)."""
    return _get().doc


def swagger_json() -> bytes:
    return _get().json


def swagger_protobuf() -> bytes:
    return _get().proto


def etag() -> str:
    return _get().etag


def _parse_accept(header: str) -> list[tuple[str, str]]:
    """Media ranges by preference (q descending, specific before wildcard; stable)."""
    clauses = []
    for i, part in enumerate(header.split(",")):
        bits = [b.strip() for b in part.split(";")]
        if not bits[0]:
            continue
        q = 1.0
        for b in bits[1:]:
            if b.startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        typ, _, sub = bits[0].lower().partition("/")
        clauses.append((-q, typ == "*", sub == "*", i, typ, sub or "*"))
    clauses.sort()
    return [(c[4], c[5]) for c in clauses if c[0] < 0]


_OFFERS = (("json", JSON_CT), (PROTO_SUBTYPE_OLD, PROTO_CT), (PROTO_SUBTYPE, PROTO_CT))


def negotiate(accept: str) -> str | None:
    """The content type to answer with, or None if nothing offered is acceptable."""
    for typ, sub in _parse_accept(accept or "*/*"):
        for offer_sub, ct in _OFFERS:
            if typ not in ("application", "*"):
                continue
            if sub not in (offer_sub, "*"):
                continue
            return ct
    return None


def openapi_v2_bytes(accept: str) -> tuple[bytes, str] | None:
    """(body, content type) for a GET /openapi/v2 with this Accept header;
    None if none of the offered encodings is acceptable."""
    ct = negotiate(accept)
    if ct is None:
        return None
    c = _get()
    return (c.json if ct == JSON_CT else c.proto), ct
