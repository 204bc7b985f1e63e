"""Field ownership: sets of field paths, their fieldsV1 encoding, and metadata.managedFields.

This is the bookkeeping half of server-side apply (the merge itself is in shim.api.apply),
modelled on the semantics of sigs.k8s.io/structured-merge-diff and
k8s.io/apimachinery/pkg/util/managedfields:

* A path element (PE) is kept as its canonical fieldsV1 string: ``f:name`` (a struct or
  map field), ``k:{"name":"c"}`` (an item of a list keyed by its map keys), ``v:"x"`` (an
  item of a set list) or ``i:3`` (a list index). Strings make sets cheap to hash and
  their encoding trivial; ``pe_order`` gives the upstream sort order.
* ``FieldSet`` is upstream's fieldpath.Set: members (paths ending here) and children.
* ``TypeIndex`` turns the field types of ``schemas/`` into the structural types the
  walkers need: scalars, lists (atomic, set, or map keyed by x-kubernetes-list-map-keys),
  maps (granular or atomic, with declared fields and/or an element type).
* The walkers compute the field set of a value, compare two values, merge a configuration
  into a value, remove a set of fields from a value, and validate a configuration.
* ``go_normalize`` reshapes an object the way a round trip through the Go types would
  (fields a zero Go struct always encodes are filled in; omitempty fields that are empty
  are dropped), using facts generated from the Go types into ``gotypes.json``.
* The managedFields codec, manager identifiers, the default manager from the User-Agent,
  and ``track_create`` / ``track_update``: the ownership recorded for create, update,
  patch (non-apply) and subresource writes.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import os
import unicodedata
from functools import lru_cache
from typing import Any, Iterator

import orjson

from shim.api.objects import now_rfc3339, parse_rfc3339

# ---------------------------------------------------------------------------------------
# Path elements
# ---------------------------------------------------------------------------------------

MISSING: Any = object()  # "no value" (absent), as opposed to an explicit null (None)


_SPECIAL = frozenset('"\\<>&')


def _go_json(v) -> str:
    """JSON as Go's encoding/json writes it (HTML-safe escapes, no spaces)."""
    if type(v) is str and v.isascii() and v.isprintable() and not _SPECIAL.intersection(v):
        return '"' + v + '"'
    if type(v) is int:
        return str(v)
    s = json.dumps(v, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if "<" in s or ">" in s or "&" in s or "\u2028" in s or "\u2029" in s:
        s = (s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
             .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    return s


def pe_field(name: str) -> str:
    return "f:" + name


def pe_key(fields: list[tuple[str, Any]]) -> str:
    fields = sorted(fields, key=lambda kv: kv[0])
    return "k:{" + ",".join(_go_json(k) + ":" + _go_json(v) for k, v in fields) + "}"


def pe_value(v) -> str:
    return "v:" + _go_json(v)


def pe_index(i: int) -> str:
    return "i:" + str(i)


class PathError(ValueError):
    pass


def _value_order(v):
    if isinstance(v, bool):
        return (2, v)
    if isinstance(v, (int, float)):
        return (0, v)
    if isinstance(v, str):
        return (1, v)
    if isinstance(v, list):
        return (3, tuple(_value_order(x) for x in v))
    if isinstance(v, dict):
        return (4, tuple(sorted((k, _value_order(x)) for k, x in v.items())))
    return (5,)


@lru_cache(maxsize=65536)
def parse_pe(pe: str):
    """(kind, payload): ("f", name) | ("k", ((name, value), ...)) | ("v", value) | ("i", n)."""
    if len(pe) < 2 or pe[1] != ":":
        raise PathError(f"missing colon: {pe}")
    t, rest = pe[0], pe[2:]
    if t == "f":
        return ("f", rest)
    if t == "k":
        try:
            pairs = json.loads(rest, object_pairs_hook=lambda kv: kv)
        except ValueError as e:
            raise PathError(str(e)) from None
        if not isinstance(pairs, list):
            raise PathError(f"invalid key: {rest}")
        return ("k", tuple(sorted(((k, _freeze(v)) for k, v in pairs), key=lambda kv: kv[0])))
    if t == "v":
        try:
            return ("v", _freeze(json.loads(rest)))
        except ValueError as e:
            raise PathError(str(e)) from None
    if t == "i":
        try:
            return ("i", int(rest))
        except ValueError as e:
            raise PathError(str(e)) from None
    raise PathError("unknown path element type")


def _freeze(v):
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    return v


def _thaw(v):
    if isinstance(v, tuple):
        if v and all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) for x in v):
            return {k: _thaw(x) for k, x in v}
        return [_thaw(x) for x in v]
    return v


@lru_cache(maxsize=65536)
def pe_order(pe: str):
    """Sort key giving upstream's PathElement order (fields < keys < values < indexes)."""
    kind, payload = parse_pe(pe)
    if kind == "f":
        return (0, payload)
    if kind == "k":
        return (1, tuple((k, _value_order(_thaw(v))) for k, v in payload))
    if kind == "v":
        return (2, _value_order(_thaw(payload)))
    return (3, payload)


@lru_cache(maxsize=65536)
def canonical_pe(pe: str) -> str:
    """Re-encode a PE read from a client in the canonical form (sorted key fields...)."""
    kind, payload = parse_pe(pe)
    if kind == "f":
        return pe
    if kind == "k":
        return pe_key([(k, _thaw(v)) for k, v in payload])
    if kind == "v":
        return pe_value(_thaw(payload))
    return pe_index(payload)


def _go_sprint_value(v) -> str:
    """value.ToString: strings %q, numbers %v, bools, null."""
    from shim.api.validation import go_quote
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ",".join(_go_sprint_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "".join(f"{k}={_go_sprint_value(x)}" for k, x in v.items())
    return str(v)


def _go_float(f: float) -> str:
    if f == int(f) and abs(f) < 1e21:
        return str(int(f))
    r = repr(f)
    if "e" in r:
        mant, exp = r.split("e")
        sign = exp[0] if exp[0] in "+-" else "+"
        digits = exp.lstrip("+-").rjust(2, "0")
        return f"{mant}e{sign}{digits}"
    return r


def pe_string(pe: str) -> str:
    """PathElement.String(): `.name`, `[name="c"]`, `[=value]`, `[3]`."""
    kind, payload = parse_pe(pe)
    if kind == "f":
        return "." + payload
    if kind == "k":
        return "[" + ",".join(f"{k}={_go_sprint_value(_thaw(v))}" for k, v in payload) + "]"
    if kind == "v":
        return "[=" + _go_sprint_value(_thaw(payload)) + "]"
    return f"[{payload}]"


def path_string(path) -> str:
    return "".join(pe_string(pe) for pe in path)


# ---------------------------------------------------------------------------------------
# FieldSet (fieldpath.Set)
# ---------------------------------------------------------------------------------------

class FieldSet:
    """A set of paths as a trie: `members` end here, `children` continue (never empty)."""
    __slots__ = ("members", "children")

    def __init__(self, members=None, children=None):
        self.members: set[str] = members if members is not None else set()
        self.children: dict[str, FieldSet] = children if children is not None else {}

    @classmethod
    def of(cls, *paths) -> "FieldSet":
        s = cls()
        for p in paths:
            s.insert(p)
        return s

    def insert(self, path) -> None:
        if not path:
            return
        s = self
        for pe in path[:-1]:
            c = s.children.get(pe)
            if c is None:
                c = s.children[pe] = FieldSet()
            s = c
        s.members.add(path[-1])

    def has(self, path) -> bool:
        if not path:
            return False
        s = self
        for pe in path[:-1]:
            s = s.children.get(pe)
            if s is None:
                return False
        return path[-1] in s.members

    def empty(self) -> bool:
        if self.members:
            return False
        return all(c.empty() for c in self.children.values())

    def copy(self) -> "FieldSet":
        return FieldSet(set(self.members), {pe: c.copy() for pe, c in self.children.items()})

    def with_prefix(self, pe: str) -> "FieldSet":
        return self.children.get(pe) or _EMPTY

    def union(self, other: "FieldSet") -> "FieldSet":
        children = {pe: c.copy() for pe, c in self.children.items()}
        for pe, c in other.children.items():
            mine = children.get(pe)
            children[pe] = c.copy() if mine is None else mine.union(c)
        return FieldSet(self.members | other.members, children)

    def intersection(self, other: "FieldSet") -> "FieldSet":
        children = {}
        for pe, c in self.children.items():
            o = other.children.get(pe)
            if o is not None:
                r = c.intersection(o)
                if not r.empty():
                    children[pe] = r
        return FieldSet(self.members & other.members, children)

    def difference(self, other: "FieldSet") -> "FieldSet":
        children = {}
        for pe, c in self.children.items():
            o = other.children.get(pe)
            if o is None:
                children[pe] = c.copy()
            else:
                r = c.difference(o)
                if not r.empty():
                    children[pe] = r
        return FieldSet(self.members - other.members, children)

    def recursive_difference(self, other: "FieldSet") -> "FieldSet":
        """Difference that also drops everything below a member of `other`."""
        children = {}
        for pe, c in self.children.items():
            if pe in other.members:
                continue
            o = other.children.get(pe)
            if o is None:
                children[pe] = c.copy()
            else:
                r = c.recursive_difference(o)
                if not r.empty():
                    children[pe] = r
        return FieldSet(self.members - other.members, children)

    def paths(self, prefix: tuple = ()) -> Iterator[tuple]:
        """Every path, in upstream's iteration order (members, then children, sorted)."""
        for pe in sorted(self.members, key=pe_order):
            yield prefix + (pe,)
        for pe in sorted(self.children, key=pe_order):
            yield from self.children[pe].paths(prefix + (pe,))

    def __eq__(self, other) -> bool:
        if not isinstance(other, FieldSet):
            return NotImplemented
        return self.to_fields() == other.to_fields()

    def __repr__(self) -> str:
        return f"FieldSet({[path_string(p) for p in self.paths()]})"

    # -- fieldsV1 ---------------------------------------------------------------------
    def to_fields(self) -> dict:
        """The fieldsV1 object: nested `{"f:spec": {"f:replicas": {}}}`, `.` marking members."""
        return self._emit(False)

    def _emit(self, include_self: bool) -> dict:
        out: dict = {}
        if include_self and (self.members or self.children):
            out["."] = {}
        for pe in sorted(self.members | set(self.children), key=pe_order):
            child = self.children.get(pe)
            if child is None:
                out[pe] = {}
            else:
                out[pe] = child._emit(pe in self.members)
        return out

    @classmethod
    def from_fields(cls, fields) -> "FieldSet":
        if fields is None:
            return cls()
        if not isinstance(fields, dict):
            raise PathError("expected an object")
        s, _ = _read_fields(fields)
        return s if s is not None else cls()


_EMPTY = FieldSet()


def _read_fields(node: dict):
    """(children set or None, is_member) of one fieldsV1 node (as upstream's readIterV1)."""
    if not isinstance(node, dict):
        raise PathError(f"expected an object, got {type(node).__name__}")
    children = None
    is_member = False
    for key, val in node.items():
        if key == ".":
            is_member = True
            continue
        try:
            pe = canonical_pe(key)
        except PathError as e:
            if str(e) == "unknown path element type":
                continue
            raise
        grand, child_member = _read_fields(val)
        if child_member:
            if children is None:
                children = FieldSet()
            children.members.add(pe)
        if grand is not None:
            if children is None:
                children = FieldSet()
            mine = children.children.get(pe)
            children.children[pe] = grand if mine is None else mine.union(grand)
    if children is None:
        is_member = True
    return children, is_member


# ---------------------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------------------

class T:
    """A structural type: kind is "scalar", "list", "map", "untyped" or "deduced"."""
    __slots__ = ("kind", "fields", "elem", "atomic", "keys", "defn", "_index", "_field_refs",
                 "_elem_ref")

    def __init__(self, kind, *, atomic=False, keys=None, defn=None):
        self.kind = kind
        self.fields: dict[str, T] | None = None
        self.elem: T | None = None
        self.atomic = atomic
        self.keys: tuple | None = keys
        self.defn = defn
        self._index = None
        self._field_refs = None
        self._elem_ref = None

    def field(self, name: str) -> "T | None":
        """Type of a map entry: the declared field, else the element type (None: undeclared)."""
        if self._field_refs is not None:
            self._resolve_fields()
        if self.fields is not None:
            t = self.fields.get(name)
            if t is not None:
                return t
        return self.element()

    def declares(self, name: str) -> bool:
        if self._field_refs is not None:
            self._resolve_fields()
        return bool(self.fields) and name in self.fields

    def element(self) -> "T | None":
        if self._elem_ref is not None:
            ref, self._elem_ref = self._elem_ref, None
            self.elem = self._index.resolve(ref)
        return self.elem

    def _resolve_fields(self):
        refs, self._field_refs = self._field_refs, None
        self.fields = {name: self._index.resolve(ref) for name, ref in refs.items()}

    def __repr__(self):
        return f"T({self.kind}{' atomic' if self.atomic else ''}{' ' + self.defn if self.defn else ''})"


SCALAR = T("scalar")        # untyped scalar (quantities, int-or-string, times)
STRING = T("scalar", keys=("string",))
NUMERIC = T("scalar", keys=("numeric",))
BOOLEAN = T("scalar", keys=("boolean",))
UNTYPED = T("untyped")   # RawExtension: any scalar; lists and maps are atomic
DEDUCED = T("deduced")   # free-form: any scalar; lists atomic; maps granular


class TypeIndex:
    """Structural types from the generated field types (shim.schemas.load_types)."""

    def __init__(self, types: dict):
        self.types = types
        self._named: dict = {}

    def named(self, defn: str, map_type: str | None = None) -> T:
        key = (defn, map_type)
        t = self._named.get(key)
        if t is not None:
            return t
        entry = self.types.get(defn)
        if entry is None:
            t = DEDUCED
        elif entry.get("properties") is not None:
            mt = map_type or entry.get("x-kubernetes-map-type")
            t = T("map", atomic=(mt == "atomic"), defn=defn)
            t._index = self
            t._field_refs = entry["properties"]
            ap = entry.get("additionalProperties")
            if isinstance(ap, dict):
                t._elem_ref = ap
        else:
            t = self._leaf(entry)
        self._named[key] = t
        return t

    def _leaf(self, ref: dict) -> T:
        if ref.get("x-kubernetes-preserve-unknown-fields"):
            xdef = ref.get("x-definition") or ""
            return UNTYPED if xdef.endswith("runtime.RawExtension") else DEDUCED
        return _scalar_type(ref)

    def resolve(self, ref: dict) -> T:
        if not isinstance(ref, dict):
            return DEDUCED
        target = ref.get("$ref")
        if target:
            return self.named(target, ref.get("x-kubernetes-map-type"))
        typ = ref.get("type")
        if typ == "array":
            lt = ref.get("x-kubernetes-list-type")
            keys = None
            atomic = True
            if lt == "set":
                atomic = False
            elif lt == "map":
                atomic = False
                keys = tuple(ref.get("x-kubernetes-list-map-keys") or ())
            elif lt is None:
                strategy = ref.get("x-kubernetes-patch-strategy")
                if strategy in ("merge", "merge,retainKeys"):
                    atomic = False
                    mk = ref.get("x-kubernetes-patch-merge-key")
                    keys = (mk,) if mk else None
            t = T("list", atomic=atomic, keys=keys or None)
            t._index = self
            t._elem_ref = ref.get("items") or {}
            return t
        if typ == "object":
            if ref.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in ref:
                return self._leaf(ref)
            t = T("map", atomic=(ref.get("x-kubernetes-map-type") == "atomic"))
            t._index = self
            t.fields = {}
            ap = ref.get("additionalProperties")
            t._elem_ref = ap if isinstance(ap, dict) else {"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields": True}
            return t
        if ref.get("x-kubernetes-preserve-unknown-fields"):
            return self._leaf(ref)
        return _scalar_type(ref)


def _scalar_type(ref: dict) -> T:
    typ = ref.get("type")
    if typ == "string" and ref.get("format") in (None, "", "byte") and not ref.get("x-kubernetes-quantity"):
        return STRING
    if typ in ("integer", "number"):
        return NUMERIC
    if typ == "boolean":
        return BOOLEAN
    return SCALAR


@lru_cache(maxsize=1)
def type_index() -> TypeIndex:
    from shim.schemas import load_types
    return TypeIndex(load_types())


def object_type(defn: str) -> T:
    return type_index().named(defn)


# Defaults of list-map key fields (OpenAPI `default` on the key property): an item that
# omits such a key is identified with the default filled in.
_KEY_DEFAULTS = {
    ("io.k8s.api.core.v1.ContainerPort", "containerPort"): 0,
    ("io.k8s.api.core.v1.ContainerPort", "protocol"): "TCP",
    ("io.k8s.api.core.v1.ServicePort", "port"): 0,
    ("io.k8s.api.core.v1.ServicePort", "protocol"): "TCP",
}
_EMPTY_STRING_KEY_DEFAULTS = {
    "io.k8s.api.admissionregistration.v1.MatchCondition": ("name",),
    "io.k8s.api.admissionregistration.v1.MutatingWebhook": ("name",),
    "io.k8s.api.admissionregistration.v1.ValidatingWebhook": ("name",),
    "io.k8s.api.admissionregistration.v1.Variable": ("name",),
    "io.k8s.api.apps.v1.DaemonSetCondition": ("type",),
    "io.k8s.api.apps.v1.DeploymentCondition": ("type",),
    "io.k8s.api.apps.v1.ReplicaSetCondition": ("type",),
    "io.k8s.api.apps.v1.StatefulSetCondition": ("type",),
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerCondition": ("type",),
    "io.k8s.api.certificates.v1.CertificateSigningRequestCondition": ("type",),
    "io.k8s.api.core.v1.ComponentCondition": ("type",),
    "io.k8s.api.core.v1.Container": ("name",),
    "io.k8s.api.core.v1.EnvVar": ("name",),
    "io.k8s.api.core.v1.EphemeralContainer": ("name",),
    "io.k8s.api.core.v1.HostAlias": ("ip",),
    "io.k8s.api.core.v1.LocalObjectReference": ("name",),
    "io.k8s.api.core.v1.NamespaceCondition": ("type",),
    "io.k8s.api.core.v1.NodeAddress": ("type",),
    "io.k8s.api.core.v1.NodeCondition": ("type",),
    "io.k8s.api.core.v1.PersistentVolumeClaimCondition": ("type",),
    "io.k8s.api.core.v1.PodCondition": ("type",),
    "io.k8s.api.core.v1.PodIP": ("ip",),
    "io.k8s.api.core.v1.PodResourceClaim": ("name",),
    "io.k8s.api.core.v1.PodResourceClaimStatus": ("name",),
    "io.k8s.api.core.v1.PodSchedulingGate": ("name",),
    "io.k8s.api.core.v1.ReplicationControllerCondition": ("type",),
    "io.k8s.api.core.v1.ResourceClaim": ("name",),
    "io.k8s.api.core.v1.ResourceHealth": ("resourceID",),
    "io.k8s.api.core.v1.ResourceStatus": ("name",),
    "io.k8s.api.core.v1.TopologySpreadConstraint": ("topologyKey", "whenUnsatisfiable"),
    "io.k8s.api.core.v1.Volume": ("name",),
    "io.k8s.api.core.v1.VolumeDevice": ("devicePath",),
    "io.k8s.api.core.v1.VolumeMount": ("mountPath",),
    "io.k8s.api.core.v1.VolumeMountStatus": ("mountPath",),
    "io.k8s.api.storage.v1.CSINodeDriver": ("name",),
    "io.k8s.apimachinery.pkg.apis.meta.v1.Condition": ("type",),
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference": ("uid",),
}


def _key_default(item_t: T | None, name: str):
    if item_t is None or item_t.defn is None:
        return MISSING
    d = _KEY_DEFAULTS.get((item_t.defn, name), MISSING)
    if d is MISSING and name in _EMPTY_STRING_KEY_DEFAULTS.get(item_t.defn, ()):
        return ""
    return d


def item_pe(t: T, item) -> str:
    """The PE of an item of an associative list (raises ValueError as upstream words it)."""
    if t.keys:
        if item is None:
            raise ValueError("associative list with keys may not have a null element")
        if not isinstance(item, dict):
            raise ValueError("associative list with keys may not have non-map elements")
        elem = t.element()
        fields = []
        for k in t.keys:
            if k in item:
                fields.append((k, item[k]))
            else:
                d = _key_default(elem, k)
                if d is not MISSING:
                    fields.append((k, d))
        if not fields:
            keys = "[" + " ".join(_go_json(k) for k in t.keys) + "]"
            raise ValueError(f"associative list with keys has an element that omits all key fields {keys} "
                             f"(and doesn't have default values for any key fields)")
        return pe_key(fields)
    if isinstance(item, dict):
        raise ValueError("associative list without keys has an element that's a map type")
    if isinstance(item, list):
        raise ValueError("not supported: associative list with lists as elements")
    if item is None:
        raise ValueError("associative list without keys has an element that's an explicit null")
    return pe_value(item)


def _is_scalar(v) -> bool:
    return isinstance(v, (str, int, float, bool))


def _atom(t: T, v) -> str:
    """Which handler a value is walked with ("scalar", "list", "map")."""
    k = t.kind
    if k == "scalar":
        return "scalar"
    if k == "list":
        return "list"
    if k == "map":
        return "map"
    # untyped / deduced: decide by the value
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict) or v is None or v is MISSING:
        return "map" if not _is_scalar(v) else "scalar"
    return "scalar"


def _list_atomic(t: T) -> bool:
    return t.kind != "list" or t.atomic


def _map_atomic(t: T) -> bool:
    return t.kind == "untyped" or (t.kind == "map" and t.atomic)


def _map_child_type(t: T, key: str) -> T | None:
    if t.kind == "map":
        return t.field(key)
    if t.kind == "deduced":
        return DEDUCED
    return UNTYPED


def _list_elem(t: T) -> T:
    if t.kind == "list":
        return t.element() or DEDUCED
    return UNTYPED


def json_equal(a, b) -> bool:
    """Equality of JSON values as upstream's value.Equals (bools are not numbers)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict):
        if not isinstance(b, dict) or len(a) != len(b):
            return False
        for k, x in a.items():
            if k not in b or not json_equal(x, b[k]):
                return False
        return True
    if isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            return False
        return all(json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


# ---------------------------------------------------------------------------------------
# ToFieldSet
# ---------------------------------------------------------------------------------------

def to_field_set(value, t: T) -> FieldSet:
    out = FieldSet()
    _to_set(value, t, (), out)
    return out


def _to_set(v, t: T | None, path: tuple, out: FieldSet) -> None:
    if t is None:  # undeclared field: owned as a whole
        out.insert(path)
        return
    a = _atom(t, v)
    if a == "scalar":
        out.insert(path)
        return
    if a == "list":
        if _list_atomic(t):
            out.insert(path)
            return
        if not isinstance(v, list):
            return
        seen, dups = set(), set()
        pes = []
        for item in v:
            try:
                pe = item_pe(t, item)
            except ValueError:
                pe = None
            pes.append(pe)
            if pe is None:
                continue
            if pe in seen:
                if pe not in dups:
                    out.insert(path + (pe,))
                    dups.add(pe)
            else:
                seen.add(pe)
        elem = _list_elem(t)
        for item, pe in zip(v, pes):
            if pe is None or pe in dups:
                continue
            _to_set(item, elem, path + (pe,), out)
            out.insert(path + (pe,))
        return
    # map
    if _map_atomic(t):
        out.insert(path)
        return
    if not isinstance(v, dict):
        return
    for k, val in v.items():
        pe = "f:" + k
        ft = _map_child_type(t, k)
        _to_set(val, ft, path + (pe,), out)
        if val is None or (isinstance(val, dict) and not val):
            out.insert(path + (pe,))
        elif t.kind != "map" or not t.declares(k):
            out.insert(path + (pe,))


# ---------------------------------------------------------------------------------------
# Compare
# ---------------------------------------------------------------------------------------

class Comparison:
    __slots__ = ("added", "modified", "removed")

    def __init__(self):
        self.added = FieldSet()
        self.modified = FieldSet()
        self.removed = FieldSet()

    def filtered(self, reset: FieldSet | None) -> "Comparison":
        if reset is None or reset.empty():
            return self
        self.added = self.added.recursive_difference(reset)
        self.modified = self.modified.recursive_difference(reset)
        self.removed = self.removed.recursive_difference(reset)
        return self

    def is_same(self) -> bool:
        return self.added.empty() and self.modified.empty() and self.removed.empty()


def compare(lhs, rhs, t: T) -> Comparison:
    c = Comparison()
    _cmp(lhs, rhs, t, (), c)
    return c


def _cmp(l, r, t: T | None, path: tuple, c: Comparison) -> None:
    if t is None:
        t = DEDUCED
    al = _atom(t, l) if l is not MISSING else None
    ar = _atom(t, r) if r is not MISSING else None
    leaf = [False]
    if r is MISSING:
        _cmp_atom(al, l, r, t, path, c, leaf)
    elif l is MISSING or al == ar:
        _cmp_atom(ar, l, r, t, path, c, leaf)
    else:
        _cmp_atom(al, l, r, t, path, c, [False])
        _cmp_atom(ar, l, r, t, path, c, leaf)
    if not leaf[0]:
        if l is MISSING:
            c.added.insert(path)
        elif r is MISSING:
            c.removed.insert(path)


def _cmp_leaf(l, r, path, c, leaf) -> None:
    if leaf[0]:
        return
    leaf[0] = True
    if l is MISSING:
        c.added.insert(path)
    elif r is MISSING:
        c.removed.insert(path)
    elif not json_equal(l, r):
        c.modified.insert(path)


def _cmp_atom(a, l, r, t, path, c, leaf) -> None:
    if a == "scalar":
        _cmp_leaf(l, r, path, c, leaf)
        return
    if a == "list":
        ll = l if isinstance(l, list) else None
        rl = r if isinstance(r, list) else None
        if _list_atomic(t) or (not ll and not rl):
            _cmp_leaf(l, r, path, c, leaf)
            return
        _cmp_list_items(t, ll or [], rl or [], path, c)
        return
    lm = l if isinstance(l, dict) else None
    rm = r if isinstance(r, dict) else None
    if _map_atomic(t) or (not lm and not rm):
        _cmp_leaf(l, r, path, c, leaf)
        return
    lm = lm or {}
    rm = rm or {}
    for k in list(lm) + [k for k in rm if k not in lm]:
        _cmp(lm.get(k, MISSING), rm.get(k, MISSING), _map_child_type(t, k), path + ("f:" + k,), c)


def _index_items(t: T, items: list) -> tuple[list, dict]:
    order, values = [], {}
    for item in items:
        try:
            pe = item_pe(t, item)
        except ValueError:
            continue
        if pe in values:
            values[pe].append(item)
        else:
            values[pe] = [item]
            order.append(pe)
    return order, values


def _cmp_list_items(t: T, ll: list, rl: list, path, c) -> None:
    lorder, lvals = _index_items(t, ll)
    rorder, rvals = _index_items(t, rl)
    allpes = lorder + [pe for pe in rorder if pe not in lvals]
    elem = _list_elem(t)
    for pe in allpes:
        lv, rv = lvals.get(pe, []), rvals.get(pe, [])
        if len(lv) <= 1 and len(rv) <= 1:
            _cmp(lv[0] if lv else MISSING, rv[0] if rv else MISSING, elem, path + (pe,), c)
        elif len(lv) >= 2 and len(rv) >= 2:
            if len(lv) != len(rv) or not all(json_equal(x, y) for x, y in zip(lv, rv)):
                c.modified.insert(path + (pe,))
        elif len(lv) >= 2:
            if rv:
                _cmp(MISSING, rv[0], elem, path + (pe,), c)
            c.removed.insert(path + (pe,))
        else:
            if lv:
                _cmp(lv[0], MISSING, elem, path + (pe,), c)
            c.added.insert(path + (pe,))


# ---------------------------------------------------------------------------------------
# Merge (rule: keep the right-hand side)
# ---------------------------------------------------------------------------------------

class MergeError(Exception):
    """A validation error from merging, with upstream's path-prefixed message."""

    def __init__(self, path: tuple, message: str):
        super().__init__(message)
        self.path = path
        self.message = message

    def __str__(self):
        p = path_string(self.path)
        return f"{p}: {self.message}" if p else self.message


def merge(lhs, rhs, t: T):
    out = _merge(lhs, rhs, t, ())
    return None if out is MISSING else out


def _merge(l, r, t: T | None, path: tuple):
    if t is None:
        t = DEDUCED
    al = _atom(t, l) if l is not MISSING else None
    ar = _atom(t, r) if r is not MISSING else None
    if r is MISSING:
        return _merge_atom(al, l, r, t, path)
    if l is MISSING or al == ar:
        return _merge_atom(ar, l, r, t, path)
    _merge_atom(al, l, r, t, path)
    return _merge_atom(ar, l, r, t, path)


def _keep_rhs(l, r):
    if r is not MISSING:
        return _copy(r)
    if l is not MISSING:
        return _copy(l)
    return MISSING


def _copy(v):
    if isinstance(v, (dict, list)):
        return orjson.loads(orjson.dumps(v))
    return v


def _merge_atom(a, l, r, t, path):
    if a == "scalar":
        return _keep_rhs(l, r)
    if a == "list":
        ll = l if isinstance(l, list) else None
        rl = r if isinstance(r, list) else None
        if _list_atomic(t) or (not ll and not rl):
            return _keep_rhs(l, r)
        return _merge_list_items(t, ll or [], rl or [], path)
    lm = l if isinstance(l, dict) else None
    rm = r if isinstance(r, dict) else None
    if _map_atomic(t) or (not lm and not rm):
        return _keep_rhs(l, r)
    lm = lm or {}
    rm = rm or {}
    out = {}
    for k in list(lm) + [k for k in rm if k not in lm]:
        child = _merge(lm.get(k, MISSING), rm.get(k, MISSING), _map_child_type(t, k), path + ("f:" + k,))
        if child is not MISSING:
            out[k] = child
    return out if out else MISSING


def _list_pes(t: T, items: list, allow_dups: bool, path: tuple):
    pes, observed = [], {}
    for i, item in enumerate(items):
        try:
            pe = item_pe(t, item)
        except ValueError as e:
            raise MergeError(path, f"element {i}: {e}") from None
        if pe in observed:
            if not allow_dups:
                raise MergeError(path, f"duplicate entries for key {pe_string(pe)}")
            observed[pe] = None  # duplicated: an explicit null stands for them
        else:
            observed[pe] = item
        pes.append(pe)
    return pes, observed


def _merge_list_items(t: T, ll: list, rl: list, path: tuple):
    rpes, robs = _list_pes(t, rl, False, path)
    lpes, lobs = _list_pes(t, ll, True, path)
    elem = _list_elem(t)
    shared = [pe for pe in rpes if pe in lobs]
    next_shared = shared.pop(0) if shared else None
    merged_rhs: set = set()
    out = []

    def item(pe, lc, rc):
        o = _merge(lc, rc, elem, path + (pe,))
        if o is not MISSING:
            out.append(o)

    li = ri = 0
    nl, nr = len(lpes), len(rpes)
    while li < nl or ri < nr:
        if li < nl and ri < nr:
            pe = lpes[li]
            if pe == rpes[ri]:
                merged_rhs.add(pe)
                item(pe, lobs[pe], robs[pe])
                li += 1
                ri += 1
                next_shared = shared.pop(0) if shared else None
                continue
            if pe in robs and next_shared is not None and next_shared != lpes[li]:
                li += 1
                continue
        if li < nl:
            pe = lpes[li]
            if pe not in robs:
                item(pe, ll[li], MISSING)
                li += 1
                continue
            elif pe in merged_rhs:
                li += 1
        if ri < nr:
            pe = rpes[ri]
            merged_rhs.add(pe)
            item(pe, lobs.get(pe, MISSING), robs[pe])
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.pop(0) if shared else None
    return out if out else MISSING


# ---------------------------------------------------------------------------------------
# RemoveItems and EnsureNamedFieldsAreMembers
# ---------------------------------------------------------------------------------------

def remove_items(value, to_remove: FieldSet, t: T):
    return _remove(value, to_remove, t)


def _remove(v, s: FieldSet, t: T | None):
    if t is None:
        t = DEDUCED
    a = _atom(t, v)
    if a == "scalar":
        return v
    if a == "list":
        if not isinstance(v, list) or not v or _list_atomic(t):
            return None
        elem = _list_elem(t)
        items = []
        for item in v:
            try:
                pe = item_pe(t, item)
            except ValueError:
                items.append(item)
                continue
            if pe in s.members:
                continue
            sub = s.children.get(pe)
            if sub is not None and not sub.empty():
                item = _remove(item, sub, elem)
            items.append(item)
        return items if items else None
    if not isinstance(v, dict) or not v or _map_atomic(t):
        return None
    out = {}
    for k, val in v.items():
        pe = "f:" + k
        if pe in s.members:
            continue
        sub = s.children.get(pe)
        if sub is not None and not sub.empty():
            val = _remove(val, sub, _map_child_type(t, k))
        out[k] = val
    return out if out else None


def ensure_named_fields_are_members(s: FieldSet, t: T | None) -> FieldSet:
    members = set(s.members)
    children = {}
    for pe, child in s.children.items():
        ct = None
        if pe.startswith("f:"):
            if t is not None and t.kind == "map":
                name = pe[2:]
                if t.declares(name):
                    members.add(pe)
                ct = t.field(name)
            elif t is not None and t.kind == "deduced":
                ct = DEDUCED
        elif pe.startswith("k:") and t is not None and t.kind == "list":
            ct = t.element()
        children[pe] = ensure_named_fields_are_members(child, ct)
    return FieldSet(members, children)


# ---------------------------------------------------------------------------------------
# Validation of a configuration (typed conversion of an applied object)
# ---------------------------------------------------------------------------------------

def validate(value, t: T, allow_duplicates: bool = False) -> list[str]:
    """Upstream's ValidationErrors of an unstructured value against its type (messages)."""
    errs: list[tuple[tuple, str]] = []
    _validate(value, t, (), errs, allow_duplicates)
    return [f"{path_string(p)}: {m}" if p else m for p, m in errs]


def _go_v(v) -> str:
    """%v of a value.Value holding v (a pointer to a struct: `&{x}`)."""
    if isinstance(v, bool):
        s = "true" if v else "false"
    elif isinstance(v, float):
        s = _go_float(v)
    elif isinstance(v, (dict, list)):
        s = _go_map_v(v)
    else:
        s = str(v)
    return "&{" + s + "}"


def _go_map_v(v) -> str:
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_go_map_v(x)}" for k, x in sorted(v.items())) + "]"
    if isinstance(v, list):
        return "[" + " ".join(_go_map_v(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "<nil>"
    if isinstance(v, float):
        return _go_float(v)
    return str(v)


def _go_sharp_v(v) -> str:
    """%#v of a value.Value holding v."""
    from shim.api.validation import go_quote
    if isinstance(v, bool):
        inner = "true" if v else "false"
    elif isinstance(v, str):
        inner = go_quote(v)
    elif isinstance(v, int):
        inner = str(v)
    elif isinstance(v, float):
        inner = _go_float(v)
    else:
        inner = _go_map_v(v)
    return "&value.valueUnstructured{Value:" + inner + "}"


def _go_type(v) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, str):
        return "string"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, list):
        return "[]interface {}"
    return "<nil>"


def _validate(v, t: T | None, path: tuple, errs: list, allow_dups: bool) -> None:
    if t is None:
        return
    a = _atom(t, v)
    if a == "scalar":
        if v is None:
            return
        want = t.keys[0] if (t.kind == "scalar" and t.keys) else "untyped"
        if want == "numeric":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                errs.append((path, f"expected numeric (int or float), got {_go_type(v)}"))
        elif want == "string":
            if not isinstance(v, str):
                errs.append((path, f"expected string, got {_go_sharp_v(v)}"))
        elif want == "boolean":
            if not isinstance(v, bool):
                errs.append((path, f"expected boolean, got {_go_v(v)}"))
        elif not _is_scalar(v):
            errs.append((path, f"expected any scalar, got {_go_v(v)}"))
        return
    if a == "list":
        if v is None:
            return
        if not isinstance(v, list):
            errs.append((path, f"expected list, got {_go_v(v)}"))
            return
        if t.kind != "list":
            return
        elem = _list_elem(t)
        seen = set()
        for i, item in enumerate(v):
            if t.atomic:
                pe = pe_index(i)
            else:
                try:
                    pe = item_pe(t, item)
                except ValueError as e:
                    errs.append((path, f"element {i}: {e}"))
                    return
                if pe in seen and not allow_dups:
                    errs.append((path, f"duplicate entries for key {pe_string(pe)}"))
                seen.add(pe)
            _validate(item, elem, path + (pe,), errs, allow_dups)
        return
    if v is None:
        return
    if not isinstance(v, dict):
        errs.append((path, f"expected map, got {_go_v(v)}"))
        return
    for k, val in v.items():
        pe = "f:" + k
        if t.kind == "map":
            ft = t.field(k)
            if ft is None:
                errs.append((path + (pe,), "field not declared in schema"))
                return
        else:
            ft = _map_child_type(t, k)
        _validate(val, ft, path + (pe,), errs, allow_dups)


# ---------------------------------------------------------------------------------------
# Go round trip (what the Go types would make of an object)
# ---------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def go_types() -> dict:
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gotypes.json")
    try:
        with open(path, "rb") as f:
            return orjson.loads(f.read())
    except OSError:  # pragma: no cover
        return {}


def zero_object(defn: str) -> dict:
    info = go_types().get(defn)
    return _copy(info["zero"]) if info else {}


def _go_empty(v, kind: str, field_t: T | None) -> bool:
    if v is None:
        return True
    if kind == "s":
        return v == "" or v is False or (type(v) in (int, float) and v == 0)
    if kind == "c":
        return v == [] or v == {}
    if kind == "b":
        return v == "" or v == []
    if kind == "t":
        if field_t is not None and field_t.defn:
            info = go_types().get(field_t.defn)
            return info is not None and isinstance(v, dict) and json_equal(v, info["zero"])
    return False


def go_normalize(v, t: T | None, fill: bool = True):
    """A copy of v as the Go types would encode it (zero structs filled in when `fill`)."""
    if t is None:
        return _copy(v)
    if isinstance(v, dict):
        if t.kind == "map" and t.defn is not None:
            info = go_types().get(t.defn)
            out = {}
            omit = info.get("omit", {}) if info else None
            zero = info["zero"] if info else None
            for k, x in v.items():
                ft = t.field(k)
                if info is not None and k not in zero and k not in omit and k not in ("apiVersion", "kind"):
                    continue  # not a field of the Go type: dropped by decoding
                if omit is not None:
                    kind = omit.get(k)
                    if kind is not None and _go_empty(x, kind, ft):
                        continue
                if x is None:
                    if zero is not None and k in zero:
                        out[k] = _copy(zero[k])
                    elif zero is None:
                        out[k] = None
                    continue
                out[k] = go_normalize(x, ft, fill)
            if fill and zero:
                for k, z in zero.items():
                    if k not in out:
                        out[k] = _copy(z)
            return out
        if t.kind in ("map", "deduced"):
            return {k: go_normalize(x, _map_child_type(t, k), fill) for k, x in v.items()}
        return _copy(v)
    if isinstance(v, list):
        if t.kind == "list":
            elem = t.element()
            return [go_normalize(x, elem, fill) for x in v]
        return _copy(v)
    return v


def strip_nulls(v):
    """Drop null map entries and empty results (an unstructured object on its way to Go)."""
    if isinstance(v, dict):
        return {k: strip_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [strip_nulls(x) for x in v]
    return v


# ---------------------------------------------------------------------------------------
# managedFields: managers, encoding, decoding
# ---------------------------------------------------------------------------------------

class Managed:
    """Decoded managedFields: identifier -> (set, apiVersion, applied), and times."""
    __slots__ = ("fields", "times")

    def __init__(self, fields=None, times=None):
        self.fields: dict[str, tuple[FieldSet, str, bool]] = fields if fields is not None else {}
        self.times: dict[str, str | None] = times if times is not None else {}

    def copy(self) -> "Managed":
        return Managed(dict(self.fields), dict(self.times))


class ManagedFieldsError(ValueError):
    pass


def manager_identifier(manager: str, operation: str, api_version: str, subresource: str = "") -> str:
    """BuildManagerIdentifier: the JSON of the entry without fields and time (apply: no apiVersion)."""
    d: dict = {}
    if manager:
        d["manager"] = manager
    if operation:
        d["operation"] = operation
    if api_version and operation != "Apply":
        d["apiVersion"] = api_version
    if subresource:
        d["subresource"] = subresource
    return _go_json(d)


def decode_managed_fields(entries) -> Managed:
    m = Managed()
    if entries is None:
        return m
    if not isinstance(entries, list):
        raise ManagedFieldsError("managedFields must be a list")
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise ManagedFieldsError(f"managed fields entry {i} is not an object")
        op = e.get("operation") or ""
        if op not in ("Apply", "Update"):
            raise ManagedFieldsError("operation must be `Apply` or `Update`")
        api_version = e.get("apiVersion") or ""
        if not api_version:
            raise ManagedFieldsError("apiVersion must not be empty")
        ft = e.get("fieldsType") or ""
        if ft == "":
            raise ManagedFieldsError(f"missing fieldsType in managed fields entry {i}")
        if ft != "FieldsV1":
            raise ManagedFieldsError(f'invalid fieldsType "{ft}" in managed fields entry {i}')
        ident = manager_identifier(e.get("manager") or "", op, api_version, e.get("subresource") or "")
        try:
            s = FieldSet.from_fields(e.get("fieldsV1") if e.get("fieldsV1") is not None else {})
        except PathError as err:
            raise ManagedFieldsError(f"error decoding versioned set: {err}") from None
        m.fields[ident] = (s, api_version, op == "Apply")
        m.times[ident] = e.get("time")
    return m


def convert_versions(m: Managed, renames: dict[str, dict[str, str]], back: bool = False) -> Managed:
    """Entries recorded through another resource serving the same objects, in our field names.

    `renames` maps such an entry's apiVersion to {its top-level field name: ours} (a
    Strategy's managed_fields_renames); with `back`, our names return to the entry's. The
    entries keep their apiVersion, as upstream keeps each manager's version; reading them in
    the request's terms lets ownership move between managers of either API (upstream compares
    in each manager's version, which for renamed top-level fields comes to the same).
    """
    if not renames:
        return m
    for ident, (fs, av, applied) in list(m.fields.items()):
        names = renames.get(av)
        if names:
            if back:
                names = {ours: theirs for theirs, ours in names.items()}
            m.fields[ident] = (_rename_top(fs, names), av, applied)
    return m


def _rename_top(fs: FieldSet, names: dict[str, str]) -> FieldSet:
    def pe(p: str) -> str:
        return "f:" + names[p[2:]] if p.startswith("f:") and p[2:] in names else p
    return FieldSet({pe(p) for p in fs.members}, {pe(p): c for p, c in fs.children.items()})


def _time_seconds(t) -> float:
    if not t:
        return 0
    try:
        return parse_rfc3339(t).timestamp() // 1
    except (ValueError, TypeError):
        return 0


def encode_managed_fields(m: Managed) -> list | None:
    if not m.fields:
        return None
    out = []
    for ident, (s, api_version, applied) in m.fields.items():
        info = json.loads(ident)
        e: dict = {}
        if info.get("manager"):
            e["manager"] = info["manager"]
        e["operation"] = "Apply" if applied else (info.get("operation") or "Update")
        e["apiVersion"] = api_version
        t = m.times.get(ident)
        if t:
            e["time"] = t
        e["fieldsType"] = "FieldsV1"
        e["fieldsV1"] = s.to_fields()
        if info.get("subresource"):
            e["subresource"] = info["subresource"]
        out.append(e)
    out.sort(key=lambda e: (e["operation"], _time_seconds(e.get("time")), e.get("manager", ""),
                            e["apiVersion"], e.get("subresource", "")))
    return out


def is_reset(entries) -> bool:
    """managedFields: [] or [{}] asks to clear ownership (isResetManagedFields)."""
    if not isinstance(entries, list):
        return False
    if not entries:
        return True
    if len(entries) == 1 and isinstance(entries[0], dict):
        return all(v is None or v == "" for v in entries[0].values())
    return False


def print_manager(ident: str) -> str:
    """printManager: `"kubectl" with subresource "scale" using apps/v1` (Update ops)."""
    from shim.api.validation import go_quote
    try:
        info = json.loads(ident)
        if not isinstance(info, dict):
            raise ValueError
    except ValueError:
        return go_quote(ident)
    s = go_quote(info.get("manager") or "")
    if info.get("subresource"):
        s += f" with subresource {go_quote(info['subresource'])}"
    if info.get("operation") == "Update":
        return f"{s} using {info.get('apiVersion', '')}"
    return s


# ---------------------------------------------------------------------------------------
# The manager name of a request
# ---------------------------------------------------------------------------------------

#: the User-Agent of the request being served (None: an in-process writer)
USER_AGENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("shim_user_agent", default=None)
#: the manager in-process writers are recorded as (controllers run as the controller manager)
IN_PROCESS_MANAGER: contextvars.ContextVar[str] = contextvars.ContextVar(
    "shim_in_process_manager", default="kube-controller-manager")

FIELD_MANAGER_MAX_LENGTH = 128


def _is_print(ch: str) -> bool:
    """Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and ASCII space."""
    if ch == " ":
        return True
    cat = unicodedata.category(ch)
    return cat[0] in "LMNPS"


def prefix_from_user_agent(ua: str) -> str:
    m = ua.split("/")[0]
    out, size = [], 0
    for ch in m:
        if not _is_print(ch):
            continue
        n = len(ch.encode("utf-8"))
        if size + n > FIELD_MANAGER_MAX_LENGTH:
            break
        out.append(ch)
        size += n
    return "".join(out)


def request_manager(field_manager: str) -> str:
    """managerOrUserAgent: the fieldManager parameter, else the User-Agent's first segment."""
    if field_manager:
        return field_manager
    ua = USER_AGENT.get()
    if ua is None:
        return IN_PROCESS_MANAGER.get()
    return prefix_from_user_agent(ua)


@contextlib.contextmanager
def acting_as(manager: str):
    """Record in-process writes made inside the block under `manager` (e.g. "kubelet")."""
    token = IN_PROCESS_MANAGER.set(manager)
    try:
        yield
    finally:
        IN_PROCESS_MANAGER.reset(token)


# ---------------------------------------------------------------------------------------
# Reset fields (fields a strategy resets, never owned through that endpoint)
# ---------------------------------------------------------------------------------------

def _paths(*dotted) -> FieldSet:
    return FieldSet.of(*(tuple("f:" + p for p in d.split(".")) for d in dotted))


_STATUS_EXTRA = {
    ("", "pods"): ("metadata.deletionTimestamp", "metadata.ownerReferences"),
    ("apps", "deployments"): ("metadata.labels",),
    ("certificates.k8s.io", "certificatesigningrequests"): ("status.conditions",),
    ("storage.k8s.io", "volumeattachments"): ("metadata",),
    ("storage.k8s.io", "csinodes"): ("metadata",),
    ("flowcontrol.apiserver.k8s.io", "flowschemas"): ("metadata",),
    ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations"): ("metadata",),
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"): ("metadata",),
}
_MAIN_EXTRA = {
    ("certificates.k8s.io", "certificatesigningrequests"): ("spec",),
}


def reset_fields(info, subresource: str) -> FieldSet | None:
    key = (info.group, info.plural)
    if subresource == "":
        if "status" not in info.subresources:
            return None
        return _paths("status", *_MAIN_EXTRA.get(key, ()))
    if subresource == "status":
        return _paths("spec", *_STATUS_EXTRA.get(key, ()))
    if subresource == "approval":
        return _paths("spec", "status.certificate")
    if subresource == "finalize":
        return _paths("status")
    return None


# Fields set on create by admission or by the registry (after field tracking upstream), which
# the creator owns only when it sent them.
_SET_AFTER_TRACKING = {
    ("", "pods"): ("spec.serviceAccountName", "spec.serviceAccount", "spec.priority",
                   "spec.preemptionPolicy", "spec.tolerations"),
    ("", "services"): ("spec.clusterIP", "spec.clusterIPs", "spec.ipFamilies", "spec.ipFamilyPolicy"),
    ("", "namespaces"): ("spec.finalizers",),
}

# metadata fields never recorded (stripMetaManager)
_STRIP = FieldSet.of(("f:apiVersion",), ("f:kind",), ("f:metadata",),
                     *(("f:metadata", "f:" + n) for n in (
                         "name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName",
                         "generation", "managedFields", "resourceVersion")))

MAX_UPDATE_MANAGERS = 10


# ---------------------------------------------------------------------------------------
# The updater (merge.Updater): ownership changes of an update or an apply
# ---------------------------------------------------------------------------------------

class Conflict:
    __slots__ = ("manager", "path")

    def __init__(self, manager: str, path: tuple):
        self.manager = manager
        self.path = path


class Conflicts(Exception):
    def __init__(self, conflicts: list[Conflict]):
        super().__init__(conflict_message(conflicts))
        self.conflicts = conflicts


def conflict_message(conflicts: list[Conflict]) -> str:
    if len(conflicts) == 1:
        c = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {print_manager(c.manager)}: {path_string(c.path)}"
    by: dict[str, list] = {}
    for c in conflicts:
        by.setdefault(c.manager, []).append(c.path)
    lines = []
    for m in sorted(by):
        lines.append(f"conflicts with {print_manager(m)}:")
        lines.extend(f"- {path_string(p)}" for p in by[m])
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


def _update(old, new, t: T, version: str, managed: Managed, workflow: str, force: bool,
            reset: FieldSet | None) -> Comparison:
    """Updater.update: take changed fields from other managers (or report them as conflicts)."""
    cmp = compare(old, new, t).filtered(reset)
    changed = cmp.modified.union(cmp.added)
    conflicts: dict[str, FieldSet] = {}
    removed = not cmp.removed.empty()
    for ident, (s, av, applied) in managed.fields.items():
        if ident == workflow:
            continue
        cs = s.intersection(changed)
        if not cs.empty():
            conflicts[ident] = cs
    if not force and conflicts:
        out = []
        for ident in conflicts:
            out.extend(Conflict(ident, p) for p in conflicts[ident].paths())
        raise Conflicts(out)
    for ident, cs in conflicts.items():
        s, av, applied = managed.fields[ident]
        managed.fields[ident] = (s.difference(cs), av, applied)
    if removed:
        for ident, (s, av, applied) in list(managed.fields.items()):
            if ident == workflow:
                continue
            managed.fields[ident] = (s.difference(cmp.removed), av, applied)
    for ident in [i for i, (s, _, _) in managed.fields.items() if s.empty()]:
        del managed.fields[ident]
    return cmp


def _strip_meta(managed: Managed, ident: str) -> None:
    entry = managed.fields.get(ident)
    if entry is None:
        return
    s = entry[0].difference(_STRIP)
    if s.empty():
        del managed.fields[ident]
    else:
        managed.fields[ident] = (s, entry[1], entry[2])


def _cap_update_managers(managed: Managed) -> None:
    updaters = [i for i, (_, _, applied) in managed.fields.items() if not applied]
    if len(updaters) <= MAX_UPDATE_MANAGERS:
        return
    updaters.sort(key=lambda i: (_time_seconds(managed.times.get(i)), i))
    first_by_version: dict[str, str] = {}
    length = len(updaters)
    for ident in updaters:
        if length <= MAX_UPDATE_MANAGERS:
            break
        s, av, applied = managed.fields[ident]
        t = managed.times.get(ident)
        bucket = manager_identifier("ancient-changes", "Update", av)
        if av in first_by_version:
            if bucket not in managed.fields:
                first = first_by_version[av]
                managed.fields[bucket] = managed.fields.pop(first)
                managed.times.pop(first, None)
            bs = managed.fields[bucket][0]
            managed.fields[bucket] = (s.union(bs), av, applied)
            del managed.fields[ident]
            managed.times.pop(ident, None)
            length -= 1
            managed.times[bucket] = t
        else:
            first_by_version[av] = ident


def update_ownership(live, new, t: T, version: str, managed: Managed, manager: str, subresource: str,
                     reset: FieldSet | None, live_has_uid: bool) -> Managed:
    """FieldManager.Update below the request layer: record `manager`'s changes live -> new.

    live and new are Go-normalized objects without managedFields.
    """
    if not managed.fields and live_has_uid:
        return managed  # skipNonAppliedManager: nothing is tracked until the first apply
    ident = manager_identifier(manager or "unknown", "Update", version, subresource)
    work = "current-operation"
    cmp = _update(live, new, t, version, managed, work, True, reset)
    prev = managed.fields.get(work)
    s = (prev[0] if prev else FieldSet()).difference(cmp.removed).union(cmp.modified).union(cmp.added)
    if reset is not None:
        s = s.recursive_difference(reset)
    if s.empty():
        managed.fields.pop(work, None)
    else:
        managed.fields[work] = (s, version, False)
    _strip_meta(managed, work)
    cur = managed.fields.pop(work, None)
    if cur is not None:
        previous = managed.fields.get(ident)
        merged = cur[0].union(previous[0]) if previous else cur[0]
        managed.fields[ident] = (merged, cur[1], cur[2])
        managed.times[ident] = now_rfc3339()
    _cap_update_managers(managed)
    return managed


# ---------------------------------------------------------------------------------------
# Hooks for the generic registry: ownership of create / update / patch / subresources
# ---------------------------------------------------------------------------------------

def _prepared(obj: dict, t: T) -> dict:
    """The Go view of an object for comparison, without managedFields."""
    m = obj.get("metadata")
    if isinstance(m, dict) and ("managedFields" in m or "resourceVersion" in m):
        obj = dict(obj)
        obj["metadata"] = {k: v for k, v in m.items() if k not in ("managedFields", "resourceVersion")}
    return go_normalize(obj, t)


def _path_present(obj: dict, dotted: str) -> bool:
    cur = obj
    for p in dotted.split("."):
        if not isinstance(cur, dict) or p not in cur:
            return False
        cur = cur[p]
    return True


def _drop_path(obj: dict, dotted: str) -> None:
    parts = dotted.split(".")
    cur = obj
    for p in parts[:-1]:
        cur = cur.get(p) if isinstance(cur, dict) else None
        if not isinstance(cur, dict):
            return
    if isinstance(cur, dict):
        cur.pop(parts[-1], None)


def _request_managed(new_meta: dict, live_meta: dict | None, is_subresource: bool) -> Managed:
    """decodeLiveOrNew: the request's managedFields unless absent/invalid (then the live ones)."""
    live_entries = (live_meta or {}).get("managedFields")
    if not is_subresource:
        entries = new_meta.get("managedFields")
        if is_reset(entries):
            return Managed()
        try:
            m = decode_managed_fields(entries)
            if m.fields:
                return m
        except ManagedFieldsError:
            pass
    try:
        return decode_managed_fields(live_entries)
    except ManagedFieldsError:
        return Managed()


def track_create(rs, obj: dict, opts) -> None:
    """Record the creator's fields in obj.metadata.managedFields (before status/defaults reset).

    Upstream tracks the decoded (defaulted) request object before PrepareForCreate and
    admission; here the strategy's defaulting runs on a copy to stand in for decode-time
    defaults, and fields that admission or the registry would set are not claimed.
    """
    if getattr(opts, "server_side_apply", False):
        return
    m = obj.get("metadata")
    if not isinstance(m, dict):
        return
    try:
        info = rs.info
        t = object_type(info.definition)
        snapshot = _copy(obj)
        rs.strategy.default(snapshot)
        for dotted in _SET_AFTER_TRACKING.get((info.group, info.plural), ()):
            if not _path_present(obj, dotted):
                _drop_path(snapshot, dotted)
        renames = rs.strategy.managed_fields_renames
        managed = convert_versions(_request_managed(m, None, False), renames)
        new = _prepared(snapshot, t)
        live = zero_object(info.definition)
        managed = update_ownership(live, new, t, info.group_version, managed,
                                   request_manager(opts.field_manager), "",
                                   reset_fields(info, ""), live_has_uid=False)
        encoded = encode_managed_fields(convert_versions(managed, renames, back=True))
    except Exception:  # never fail a write over bookkeeping (UpdateNoErrors)
        m.pop("managedFields", None)
        return
    if encoded:
        m["managedFields"] = encoded
    else:
        m.pop("managedFields", None)


def track_update(rs, new: dict, old: dict, opts, subresource: str) -> None:
    """Record the writer's changes old -> new in new.metadata.managedFields."""
    if getattr(opts, "server_side_apply", False) or subresource in ("binding",):
        return
    nm = new.get("metadata")
    if not isinstance(nm, dict):
        return
    om = old.get("metadata") or {}
    try:
        if subresource == "scale":
            encoded = _track_scale(rs, new, old, opts)
        else:
            info = rs.info
            t = object_type(info.definition)
            renames = rs.strategy.managed_fields_renames
            managed = convert_versions(_request_managed(nm, om, subresource != ""), renames)
            live_t = _prepared(old, t)
            new_t = _prepared(new, t)
            managed = update_ownership(live_t, new_t, t, info.group_version, managed,
                                       request_manager(opts.field_manager), subresource,
                                       reset_fields(info, subresource), live_has_uid=bool(om.get("uid")))
            encoded = encode_managed_fields(convert_versions(managed, renames, back=True))
    except Exception:  # UpdateNoErrors: keep the live object's managedFields
        encoded = om.get("managedFields")
    if encoded:
        nm["managedFields"] = encoded
    else:
        nm.pop("managedFields", None)


# -- the scale subresource (managedfields.ScaleHandler) -------------------------------------

SCALE_GV = "autoscaling/v1"
SCALE_DEFN = "io.k8s.api.autoscaling.v1.Scale"
_REPLICAS = ("f:spec", "f:replicas")


def scale_to_subresource(parent: Managed, parent_gv: str) -> Managed:
    out = Managed()
    for ident, (s, av, applied) in parent.fields.items():
        if av != parent_gv or not s.has(_REPLICAS):
            continue
        out.fields[ident] = (FieldSet.of(_REPLICAS), SCALE_GV, applied)
        out.times[ident] = parent.times.get(ident)
    # round trip through the encoding, as upstream: identifiers now carry autoscaling/v1
    return decode_managed_fields(encode_managed_fields(out) or [])


def scale_to_parent(parent: Managed, scale: Managed, parent_gv: str) -> Managed:
    out = Managed()
    scale_fields = dict(scale.fields)
    for ident, (s, av, applied) in parent.fields.items():
        if av != parent_gv:
            continue
        if not s.has(_REPLICAS):
            out.fields[ident] = (s, av, applied)
            out.times[ident] = parent.times.get(ident)
            continue
        if ident not in scale_fields:
            ns = s.difference(FieldSet.of(_REPLICAS))
            if not ns.empty():
                out.fields[ident] = (ns, av, applied)
                out.times[ident] = parent.times.get(ident)
        else:
            out.fields[ident] = (s, av, applied)
            out.times[ident] = parent.times.get(ident)
            del scale_fields[ident]
    for ident, (s, av, applied) in scale_fields.items():
        if not s.has(_REPLICAS):
            continue
        out.fields[ident] = (FieldSet.of(_REPLICAS), parent_gv, applied)
        out.times[ident] = parent.times.get(ident)
    return out


def _scale_views(rs):
    from shim.api.apiset import scale_view
    return scale_view(rs)


def _track_scale(rs, new: dict, old: dict, opts):
    info = rs.info
    parent = decode_managed_fields((old.get("metadata") or {}).get("managedFields"))
    scale_managed = scale_to_subresource(parent, info.group_version)
    to_view, _ = _scale_views(rs)
    st = object_type(SCALE_DEFN)
    old_scale = _prepared(to_view(old), st)
    new_scale = _prepared(to_view(new), st)
    scale_managed = update_ownership(old_scale, new_scale, st, SCALE_GV, scale_managed,
                                     request_manager(opts.field_manager), "scale", None,
                                     live_has_uid=bool((old.get("metadata") or {}).get("uid")))
    return encode_managed_fields(scale_to_parent(parent, scale_managed, info.group_version))
