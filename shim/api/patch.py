"""PATCH semantics: RFC 6902 JSON patch, RFC 7386 merge patch, strategic merge patch.

kube-apiserver applies the three patch types with three different engines, each with
its own quirks that clients (kubectl, kubelet, controllers) rely on:

* ``application/json-patch+json``: ``gopkg.in/evanphx/json-patch.v4`` (negative array
  indices, ``replace`` of a missing map key adds it, null and missing compare equal in
  ``test``, a leading path segment without ``/`` is ignored, ...).
* ``application/merge-patch+json``: the same library's ``MergePatch``.
* ``application/strategic-merge-patch+json``: ``k8s.io/apimachinery`` strategicpatch,
  driven by per-field patch metadata (``x-kubernetes-patch-strategy`` / ``-merge-key``).

Everything here works on decoded JSON values (dict/list/str/int/float/bool/None) and
never mutates its inputs.  Failures raise :class:`PatchError`, which carries the HTTP
status, Status reason and Status message kube-apiserver answers with (see
``k8s.io/apiserver/pkg/endpoints/handlers/patch.go``), so the HTTP layer only has to
serialise it.  Error texts reproduce the upstream Go error strings because some of them
(500s, 400s) reach clients verbatim.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

__all__ = [
    "JSON_PATCH", "MERGE_PATCH", "STRATEGIC_MERGE_PATCH", "APPLY_PATCH_YAML", "APPLY_PATCH_CBOR",
    "MAX_JSON_PATCH_OPERATIONS", "JSON_PATCH_MAX_COPY_BYTES", "GENERIC_422_MESSAGE",
    "PatchError", "PatchSchema", "FieldMeta", "DictPatchSchema",
    "parse_patch_body", "apply_patch", "apply_json_patch", "apply_merge_patch",
    "apply_strategic_merge_patch", "patch_precondition_uid",
]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH_YAML = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"

# handlers/patch.go maxJSONPatchOperations; server/config.go JSONPatchMaxCopyBytes default.
MAX_JSON_PATCH_OPERATIONS = 10000
JSON_PATCH_MAX_COPY_BYTES = 3 * 1024 * 1024


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------

# Status.message kube-apiserver sends for any JSON-patch application failure: it wraps the
# library error with NewGenericServerResponse(422, ...), which discards the error text.
GENERIC_422_MESSAGE = "the server rejected our request due to an error in our request"


class PatchError(Exception):
    """A patch that kube-apiserver would refuse, with the status it would answer.

    ``message`` is the underlying (Go) error text; ``code``/``reason``/``status_message``
    /``details`` are what goes on the wire as a meta/v1 Status.  They differ for JSON
    patch failures, where upstream replies 422 with a generic message.
    """

    def __init__(self, message: str, code: int, reason: str = "", *,
                 status_message: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.status_message = message if status_message is None else status_message
        self.details = details

    def __repr__(self) -> str:
        return f"PatchError({self.code}, {self.reason!r}, {self.message!r})"

    def status(self) -> dict[str, Any]:
        """The meta/v1 Status body upstream would send."""
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                "status": "Failure", "message": self.status_message}
        if self.reason:
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body

    def to_api_error(self):
        """As the project's ApiError, for handlers that raise those."""
        from shim.api.errors import ApiError
        return ApiError(self.code, self.reason, self.status_message, self.details)


def _bad_request(message: str) -> PatchError:
    """errors.NewBadRequest: 400 BadRequest, message verbatim."""
    return PatchError(message, 400, "BadRequest")


def _unprocessable(message: str) -> PatchError:
    """NewGenericServerResponse(422): reason Invalid, generic message, empty details."""
    return PatchError(message, 422, "Invalid", status_message=GENERIC_422_MESSAGE, details={})


def _internal(message: str) -> PatchError:
    """A plain Go error reaching ErrorToAPIStatus: 500, empty reason, message verbatim."""
    return PatchError(message, 500, "")


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------

def parse_patch_body(body: bytes | str) -> Any:
    """Decode a JSON/merge/strategic patch body; upstream rejects invalid JSON up front
    (validateAndTranscodePatch) with 400 "invalid JSON patch" for all three types."""
    def no_constants(name: str) -> Any:
        raise ValueError(name)
    try:
        return json.loads(body, parse_constant=no_constants)
    except (ValueError, UnicodeDecodeError):
        raise _bad_request("invalid JSON patch") from None


def apply_patch(patch_type: str, doc: dict, patch: Any, schema: "PatchSchema | None" = None) -> Any:
    """Dispatch on the (charset-stripped) Content-Type like PatchResource does."""
    if patch_type == JSON_PATCH:
        return apply_json_patch(doc, patch)
    if patch_type == MERGE_PATCH:
        return apply_merge_patch(doc, patch)
    if patch_type == STRATEGIC_MERGE_PATCH:
        return apply_strategic_merge_patch(doc, patch, schema)
    raise _internal(f"{patch_type}: unimplemented patch type")


def apply_json_patch(doc: Any, ops: Any, *, max_copy_bytes: int = JSON_PATCH_MAX_COPY_BYTES) -> Any:
    """Apply an RFC 6902 patch the way json-patch v4 does inside kube-apiserver.

    Decode problems (not a list of objects) are 400, more than 10000 operations 413, and
    every failure while applying is 422 Invalid with upstream's generic message (the
    library's own error text is kept in ``PatchError.message``).
    """
    _decode_json_patch(ops)
    ops = ops or []
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchError(
            f"Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}", 413, "RequestEntityTooLarge")
    state = _JsonPatchState(_copy(doc), max_copy_bytes)
    for op in ops:
        try:
            state.apply(op if isinstance(op, dict) else {})
        except _OpError as e:
            raise _unprocessable(str(e)) from None
    return state.root


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch like json-patch v4's MergePatch.

    A null patch or a scalar patch is 400 "Invalid JSON Patch"; an array patch becomes
    the result (and then fails to decode as an object in the caller, as upstream).
    Unlike the RFC, nulls are pruned inside objects nested in arrays when the patch value
    replaces a non-object (upstream's pruneNulls).
    """
    if patch is None or not isinstance(patch, (dict, list)):
        raise _bad_request("Invalid JSON Patch")
    if isinstance(patch, list):
        return _prune_nulls(_copy(patch))
    if not isinstance(doc, dict):
        return _prune_nulls(_copy(patch))
    result = _copy(doc)
    _merge_docs(result, _copy(patch))
    return result


def apply_strategic_merge_patch(doc: dict, patch: Any, schema: "PatchSchema | None") -> dict:
    """Apply a strategic merge patch like StrategicMergeMapPatch for a built-in type.

    ``schema`` describes the object's fields; ``None`` means a type without patch
    metadata (custom resources), which upstream refuses.  Error statuses follow
    interpretStrategicMergePatchError: malformed directives 400, lists of lists 422,
    everything else (missing merge keys, bad ``$patch`` values, ...) 500.
    """
    if schema is None:
        raise _bad_request(_ERR_UNSUPPORTED_SMP)
    if patch is None:  # JSON null unmarshals into an empty map upstream
        patch = {}
    if not isinstance(patch, dict):
        raise _bad_request(f"json: cannot unmarshal {_json_kind(patch)} into Go value of type "
                           "map[string]interface {}")
    if not isinstance(doc, dict):
        raise _bad_request(_ERR_BAD_JSON_DOC)
    try:
        return _merge_map(_copy(doc), _copy(patch), schema)
    except _SmpError as e:
        raise _interpret_smp_error(e) from None


def patch_precondition_uid(patch: Any) -> str | None:
    """``metadata.uid`` carried by a merge/strategic patch, if any.

    Kubelets put the pod/node UID in status patches as a guard.  Upstream has no explicit
    check for it: the UID is simply patched in and ValidateObjectMetaUpdate rejects the
    change (422 ``metadata.uid: Invalid value: "...": field is immutable``); when the
    object does not exist a JSON/merge/strategic patch is 404 NotFound anyway.
    """
    if not isinstance(patch, dict):
        return None
    meta = patch.get("metadata")
    if not isinstance(meta, dict):
        return None
    uid = meta.get("uid")
    return uid if isinstance(uid, str) and uid else None


# ---------------------------------------------------------------------------------------
# Patch metadata (schema) protocol
# ---------------------------------------------------------------------------------------

@runtime_checkable
class PatchSchema(Protocol):
    """Field lookup for one object type; ``None`` for a field the type does not have.

    An optional ``name`` attribute (the Go type name) only feeds error messages.
    """

    def field(self, name: str) -> "FieldMeta | None": ...


@dataclass(frozen=True)
class FieldMeta:
    """Patch metadata of one field.

    ``schema`` is the schema of the value (for lists: of the items; for maps: of the map
    values); ``None`` means free-form or primitive.  ``strategy`` is
    ``x-kubernetes-patch-strategy`` split on ",".  Upstream looks fields up on Go
    structs, so merging an object or list that sits inside a map-typed (``is_map``) or
    free-form field fails with a 500, and so does it here.
    """

    schema: "PatchSchema | None"
    is_list: bool
    merge_key: str | None
    strategy: tuple[str, ...]
    is_map: bool = False


class DictPatchSchema:
    """A PatchSchema from nested dicts, for tests and hand-written metadata.

    ``fields`` maps a JSON field name to either a FieldMeta or a dict with keys
    ``schema`` (nested fields dict, a PatchSchema, or None), ``is_list``, ``merge_key``,
    ``strategy`` (list or comma-separated string) and ``is_map``.  ``name`` is the Go
    type name used in upstream's lookup error messages.
    """

    def __init__(self, fields: Mapping[str, Any] | None = None, name: str = ""):
        self._raw = dict(fields or {})
        self._cache: dict[str, FieldMeta] = {}
        self.name = name

    def update(self, fields: Mapping[str, Any]) -> "DictPatchSchema":
        """Add fields after construction (recursive types refer to themselves)."""
        self._raw.update(fields)
        self._cache.clear()
        return self

    def field(self, name: str) -> FieldMeta | None:
        if name in self._cache:
            return self._cache[name]
        spec = self._raw.get(name)
        if spec is None:
            return None
        if isinstance(spec, FieldMeta):
            meta = spec
        else:
            sub = spec.get("schema")
            if isinstance(sub, Mapping):
                sub = DictPatchSchema(sub)
            strategy = spec.get("strategy") or ()
            if isinstance(strategy, str):
                strategy = strategy.split(",")
            meta = FieldMeta(schema=sub, is_list=bool(spec.get("is_list", False)),
                             merge_key=spec.get("merge_key") or None,
                             strategy=tuple(strategy), is_map=bool(spec.get("is_map", False)))
        self._cache[name] = meta
        return meta


# ---------------------------------------------------------------------------------------
# JSON patch (RFC 6902, json-patch v4 semantics)
# ---------------------------------------------------------------------------------------

_MISSING = object()


class _OpError(Exception):
    """A failure while applying one operation (becomes the generic 422)."""


def _decode_json_patch(ops: Any) -> None:
    """DecodePatch: the body must unmarshal into []map[string]*RawMessage (null is an
    empty patch; null elements are operations of kind "unknown")."""
    if ops is None:
        return
    if not isinstance(ops, list):
        raise _bad_request(f"json: cannot unmarshal {_json_kind(ops)} into Go value of type "
                           "jsonpatch.Patch")
    for op in ops:
        if op is not None and not isinstance(op, dict):
            raise _bad_request(f"json: cannot unmarshal {_json_kind(op)} into Go value of type "
                               "jsonpatch.Operation")


class _JsonPatchState:
    """The document being patched plus the bytes copied so far (upstream caps copy
    amplification at JSONPatchMaxCopyBytes)."""

    def __init__(self, root: Any, max_copy_bytes: int):
        self.root = root
        self.copied = 0
        self.max_copy_bytes = max_copy_bytes

    def apply(self, op: dict) -> None:
        kind = op.get("op")
        handler = self._OPS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise _OpError(f"Unexpected kind: {kind if isinstance(kind, str) else 'unknown'}")
        handler(self, op)

    # -- operations ----------------------------------------------------------------------

    def _add(self, op: dict) -> None:
        path = _op_string(op, "path", "add operation failed to decode path: missing value")
        con, key = self._find(path, f'add operation does not apply: doc is missing path: "{path}"')
        try:
            _con_add(con, key, _copy(op.get("value")))
        except _OpError as e:
            raise _OpError(f"error in add for path: '{path}': {e}") from None

    def _remove(self, op: dict) -> None:
        path = _op_string(op, "path", "remove operation failed to decode path: missing value")
        con, key = self._find(path, f'remove operation does not apply: doc is missing path: "{path}"')
        try:
            _con_remove(con, key)
        except _OpError as e:
            raise _OpError(f"error in remove for path: '{path}': {e}") from None

    def _replace(self, op: dict) -> None:
        path = _op_string(op, "path", None, "replace operation failed to decode path: ")
        value = _copy(op.get("value"))
        if path == "":
            if not isinstance(value, (dict, list)):
                raise _OpError("replace operation value must be object or array: %!w(<nil>)")
            self.root = value
            return
        con, key = self._find(path, f"replace operation does not apply: doc is missing path: {path}")
        try:
            _con_get(con, key)
        except _OpError:
            raise _OpError(f"replace operation does not apply: doc is missing key: {path}: "
                           "missing value") from None
        _con_set(con, key, value)

    def _move(self, op: dict) -> None:
        frm = _op_string(op, "from", None, "move operation failed to decode from: ")
        con, key = self._find(frm, f"move operation does not apply: doc is missing from path: {frm}")
        try:
            value = _con_get(con, key)
            _con_remove(con, key)
        except _OpError as e:
            raise _OpError(f"error in move for path: '{key}': {e}") from None
        path = _op_string(op, "path", None, "move operation failed to decode path: ")
        con, key = self._find(path, f"move operation does not apply: doc is missing destination "
                                    f"path: {path}")
        try:
            _con_add(con, key, value)
        except _OpError as e:
            raise _OpError(f"error in move for path: '{path}': {e}") from None

    def _test(self, op: dict) -> None:
        path = _op_string(op, "path", None, "test operation failed to decode path: ")
        expected = op.get("value", _MISSING)
        if path == "":
            if expected is not _MISSING and _go_json_equal(self.root, expected):
                return
            raise _OpError(f"testing value {path} failed: test failed")
        con, key = self._find(path, f"test operation does not apply: is missing path: {path}")
        try:
            actual = _con_get(con, key)
        except _OpError as e:
            raise _OpError(f"error in test for path: '{path}': {e}") from None
        # json-patch v4 stores JSON null as a nil node, so null and absent look the same.
        if actual is None:
            if expected is _MISSING or expected is None:
                return
        elif expected is not _MISSING and _go_json_equal(actual, expected):
            return
        raise _OpError(f"testing value {path} failed: test failed")

    def _copy_op(self, op: dict) -> None:
        frm = _op_string(op, "from", None, "copy operation failed to decode from: ")
        con, key = self._find(frm, f"copy operation does not apply: doc is missing from path: {frm}")
        try:
            value = _con_get(con, key)
        except _OpError as e:
            raise _OpError(f"error in copy for from: '{frm}': {e}") from None
        path = _op_string(op, "path", "copy operation failed to decode path: missing value")
        con, key = self._find(path, f"copy operation does not apply: doc is missing destination "
                                    f"path: {path}")
        if value is not None:
            self.copied += len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        if 0 < self.max_copy_bytes < self.copied:
            raise _OpError(f"Unable to complete the copy, the accumulated size increase of copy is "
                           f"{self.copied}, exceeding the limit {self.max_copy_bytes}")
        try:
            _con_add(con, key, _copy(value))
        except _OpError as e:
            raise _OpError(f"error while adding value during copy: {e}") from None

    _OPS: dict[str, Callable[["_JsonPatchState", dict], None]] = {
        "add": _add, "remove": _remove, "replace": _replace,
        "move": _move, "test": _test, "copy": _copy_op,
    }

    # -- pointer resolution --------------------------------------------------------------

    def _find(self, path: str, missing: str) -> tuple[Any, str]:
        """findObject: walk all but the last segment; the text before the first "/" is
        ignored, as upstream splits the pointer on "/" and drops element 0."""
        parts = path.split("/")
        if len(parts) < 2:
            raise _OpError(f"{missing}: missing value")
        con = self.root
        for part in parts[1:-1]:
            try:
                nxt = _con_get(con, _unescape(part))
            except _OpError:
                nxt = None
            if not isinstance(nxt, (dict, list)):
                raise _OpError(f"{missing}: missing value")
            con = nxt
        return con, _unescape(parts[-1])


def _op_string(op: dict, name: str, fixed_error: str | None, prefix: str = "") -> str:
    """Operation.Path()/From(): a missing or null member is ErrMissing, a non-string one a
    json unmarshal error.  Some callers replace the whole error with ``fixed_error``."""
    value = op.get(name)
    if isinstance(value, str):
        return value
    if fixed_error is not None:
        raise _OpError(fixed_error)
    if value is None:
        what = "operation missing path field" if name == "path" else "operation, missing from field"
        raise _OpError(f"{prefix}{what}: missing value")
    raise _OpError(f"{prefix}json: cannot unmarshal {_json_kind(value)} into Go value of type string")


def _unescape(token: str) -> str:
    """RFC 6901 reference token decoding (~1 first, then ~0)."""
    return token.replace("~1", "/").replace("~0", "~")


def _con_get(con: Any, key: str) -> Any:
    if isinstance(con, dict):
        return con.get(key)
    idx = _array_index(con, key, len(con))
    if idx >= len(con):
        raise _OpError(f"Unable to access invalid index: {idx}: invalid index referenced")
    return con[idx]


def _con_set(con: Any, key: str, value: Any) -> None:
    if isinstance(con, dict):
        con[key] = value
    else:
        con[_array_index(con, key, len(con))] = value


def _con_add(con: Any, key: str, value: Any) -> None:
    if isinstance(con, dict):
        con[key] = value
        return
    if key == "-":
        con.append(value)
        return
    try:
        idx = _go_atoi(key)
    except _OpError as e:
        raise _OpError(f"value was not a proper array index: '{key}': {e}") from None
    size = len(con) + 1
    if idx >= size:
        raise _OpError(f"Unable to access invalid index: {idx}: invalid index referenced")
    if idx < 0:
        if idx < -size:
            raise _OpError(f"Unable to access invalid index: {idx}: invalid index referenced")
        idx += size
    con.insert(idx, value)


def _con_remove(con: Any, key: str) -> None:
    if isinstance(con, dict):
        if key not in con:
            raise _OpError(f"Unable to remove nonexistent key: {key}: missing value")
        del con[key]
        return
    idx = _go_atoi(key)
    if idx >= len(con):
        raise _OpError(f"Unable to access invalid index: {idx}: invalid index referenced")
    del con[_array_index(con, key, len(con))]


def _array_index(con: list, key: str, size: int) -> int:
    """strconv.Atoi plus json-patch v4's negative indices (counted from the end)."""
    idx = _go_atoi(key)
    if idx < 0:
        if idx < -size:
            raise _OpError(f"Unable to access invalid index: {idx}: invalid index referenced")
        idx += size
    return idx


def _go_atoi(s: str) -> int:
    """strconv.Atoi: optional sign, decimal digits, int64 range; Go's error texts."""
    body = s[1:] if s[:1] in ("+", "-") else s
    if not body or not body.isascii() or not body.isdigit():
        raise _OpError(f'strconv.Atoi: parsing {_go_quote(s)}: invalid syntax')
    value = int(s)
    if not -(1 << 63) <= value < (1 << 63):
        raise _OpError(f'strconv.Atoi: parsing {_go_quote(s)}: value out of range')
    return value


# ---------------------------------------------------------------------------------------
# Merge patch (RFC 7386, json-patch v4 semantics)
# ---------------------------------------------------------------------------------------

def _merge_docs(doc: dict, patch: dict) -> None:
    """mergeDocs: null deletes; a key that is absent or null in doc takes the pruned patch."""
    for key, value in patch.items():
        if value is None:
            doc.pop(key, None)
            continue
        current = doc.get(key)
        doc[key] = _prune_nulls(value) if current is None else _merge_value(current, value)


def _merge_value(current: Any, patch: Any) -> Any:
    if not isinstance(current, dict):
        return _prune_nulls(patch)
    if not isinstance(patch, dict):
        return patch  # upstream does not prune here
    _merge_docs(current, patch)
    return current


def _prune_nulls(value: Any) -> Any:
    """Drop null members of objects, recursively, also inside arrays (null array elements
    stay)."""
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for v in value.values():
            _prune_nulls(v)
    elif isinstance(value, list):
        for v in value:
            if v is not None:
                _prune_nulls(v)
    return value


# ---------------------------------------------------------------------------------------
# Strategic merge patch (apimachinery strategicpatch.StrategicMergeMapPatch, as the server runs it)
# ---------------------------------------------------------------------------------------

_DIRECTIVE = "$patch"
_DELETE, _REPLACE, _MERGE = "delete", "replace", "merge"
_RETAIN_KEYS = "retainKeys"
_RETAIN_KEYS_DIRECTIVE = "$retainKeys"
_DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
_SET_ELEMENT_ORDER = "$setElementOrder"

_ERR_BAD_JSON_DOC = "invalid JSON document"
_ERR_NO_LIST_OF_LISTS = "lists of lists are not supported"
_ERR_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
_ERR_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
_ERR_BAD_SET_ELEMENT_ORDER = "invalid patch format of setElementOrder list"
_ERR_CONTENT_NOT_MATCH_RETAIN_KEYS = "patch content doesn't match retainKeys list"
_ERR_UNSUPPORTED_SMP = "strategic merge patch format is not supported"

_BAD_REQUEST_ERRORS = {_ERR_BAD_JSON_DOC, _ERR_BAD_PRIMITIVE_LIST, _ERR_BAD_RETAIN_KEYS,
                       _ERR_BAD_SET_ELEMENT_ORDER, _ERR_UNSUPPORTED_SMP}
_UNPROCESSABLE_ERRORS = {_ERR_NO_LIST_OF_LISTS, _ERR_CONTENT_NOT_MATCH_RETAIN_KEYS}


class _SmpError(Exception):
    """An error from the merge engine, classified afterwards by its exact text."""


def _interpret_smp_error(e: _SmpError) -> PatchError:
    """interpretStrategicMergePatchError: sentinel errors map to 400/422, the rest is 500."""
    message = str(e)
    if message in _BAD_REQUEST_ERRORS:
        return _bad_request(message)
    if message in _UNPROCESSABLE_ERRORS:
        return _unprocessable(message)
    return _internal(message)


class _MapValues:
    """Schema of a map[string]X field: upstream looks fields up on Go struct types, so
    recursing into a map value that is itself an object or list fails."""

    name = "map"


def _lookup(schema: Any, key: str) -> tuple[Any, FieldMeta]:
    """LookupPatchMetadataForStruct/ForSlice over the PatchSchema protocol."""
    if isinstance(schema, _MapValues):
        raise _SmpError("merging an object in json but data type is not struct, instead is: map")
    meta = schema.field(key) if schema is not None else None
    if meta is None:
        name = getattr(schema, "name", "") if schema is not None else ""
        raise _SmpError(f"unable to find api field in struct {name} for the json field {_go_quote(key)}")
    # Upstream also refuses list values for a non-pointer struct field ("expected slice
    # or array type"), but accepts them for pointer fields; OpenAPI cannot tell the two
    # apart, so list values are always accepted here (typed originals never hit this).
    sub = _MapValues() if meta.is_map and not meta.is_list else meta.schema
    return sub, meta


def _strategy(meta: FieldMeta) -> str:
    """extractRetainKeysPatchStrategy: the non-retainKeys strategy ("" if none)."""
    strategies = list(meta.strategy)
    if len(strategies) == 0:
        return ""
    if len(strategies) == 1:
        return "" if strategies[0] == _RETAIN_KEYS else strategies[0]
    if len(strategies) == 2:
        if strategies[0] == _RETAIN_KEYS:
            return strategies[1]
        if strategies[1] == _RETAIN_KEYS:
            return strategies[0]
    raise _SmpError(f"unexpected patch strategy: {_go_v(strategies)}")


def _merge_map(original: Any, patch: dict, schema: Any) -> Any:
    """mergeMap: a ``$patch`` directive short-circuits; then $retainKeys, then the
    $setElementOrder lists, then every remaining key."""
    if _DIRECTIVE in patch:
        directive = patch[_DIRECTIVE]
        if directive == _REPLACE and isinstance(directive, str):
            del patch[_DIRECTIVE]
            return patch
        if directive == _DELETE and isinstance(directive, str):
            return {}
        raise _SmpError(_err_bad_patch_type(directive, patch))
    if original is None:
        original = {}
    _apply_retain_keys(original, patch)
    _merge_set_element_order(original, patch, schema)

    for key, pv in list(patch.items()):
        is_delete_list = False
        if key.startswith(_DELETE_FROM_PRIMITIVE_LIST):
            stripped = _extract_key(key, _DELETE_FROM_PRIMITIVE_LIST)
            is_delete_list = True
            if stripped:
                key = stripped
        if pv is None:
            original.pop(key, None)
            continue
        if key not in original or _go_type(original[key]) is not _go_type(pv):
            if not is_delete_list:
                _discard_nulls(pv)
                value, keep = _remove_directives(pv)
                if keep:
                    original[key] = value
                else:
                    original.pop(key, None)
            continue
        ov = original[key]
        if isinstance(ov, dict):
            sub, meta = _lookup(schema, key)
            strategy = _strategy(meta)
            original[key] = pv if strategy == _REPLACE else _merge_map(ov, pv, sub)
        elif isinstance(ov, list):
            sub, meta = _lookup(schema, key)
            original[key] = _merge_slice_handler(ov, pv, sub, _strategy(meta), meta.merge_key or "",
                                                 is_delete_list)
        else:
            original[key] = pv
    return original


def _apply_retain_keys(original: dict, patch: dict) -> None:
    """$retainKeys: every non-null patch key must be listed; unlisted original keys go."""
    if _RETAIN_KEYS_DIRECTIVE not in patch:
        return
    retain = patch.pop(_RETAIN_KEYS_DIRECTIVE)
    if not isinstance(retain, list):
        raise _SmpError(_ERR_BAD_RETAIN_KEYS)
    keep = {_go_key(v) for v in retain}
    for key, value in patch.items():
        if value is None or key.startswith(_DELETE_FROM_PRIMITIVE_LIST) \
                or key.startswith(_SET_ELEMENT_ORDER):
            continue
        if (str, key) not in keep:
            raise _SmpError(_ERR_BAD_RETAIN_KEYS)
    for key in [k for k in original if (str, k) not in keep]:
        del original[key]


def _merge_set_element_order(original: dict, patch: dict, schema: Any) -> None:
    """mergePatchIntoOriginal: merge each list named by a $setElementOrder directive now,
    then order it: $setElementOrder > order in the patch > order in the live list."""
    for key in [k for k in patch if k.startswith(_SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise _SmpError(_err_bad_arg_type([], order))
        field = _extract_key(key, _SET_ELEMENT_ORDER)
        found_original, found_patch = field in original, field in patch
        original_list = original.get(field)
        patch_list = patch.get(field)
        if found_original and not isinstance(original_list, list):
            raise _SmpError(_err_bad_arg_type([], original_list))
        if found_patch and not isinstance(patch_list, list):
            raise _SmpError(_err_bad_arg_type([], patch_list))
        sub, meta = _lookup(schema, field)
        strategy = _strategy(meta)
        merge_key = meta.merge_key or ""
        _validate_patch_with_set_order_list(patch_list or [], order, merge_key)

        if found_original and not found_patch:
            merged = original_list
        elif found_patch and not found_original:
            merged, _ = _remove_directives(patch_list)
        elif found_original and found_patch:
            merged = _merge_slice_handler(original_list, patch_list, sub, strategy, merge_key, False)
        else:
            continue

        if not merge_key:
            patch_items, server_only = _partition_primitives(merged, order)
        else:
            patch_items, server_only = _partition_maps(merged, order, merge_key)
        kind = _slice_element_type(original_list or [], patch_list or [])
        original[field] = _normalize_element_order(patch_items, server_only, order,
                                                   original_list or [], merge_key, kind)
        patch.pop(field, None)


def _validate_patch_with_set_order_list(patch_list: list, order: list, merge_key: str) -> None:
    """The patch list (minus deletions and directives) must be a subsequence of the
    $setElementOrder list."""
    if not order or not patch_list:
        return
    items = _extract_to_delete_items(patch_list)[0] if merge_key else patch_list
    pi = si = 0
    while pi < len(items) and si < len(order):
        if isinstance(items[pi], dict) and _DIRECTIVE in items[pi]:
            pi += 1
            continue
        if _merge_key_value_equal(items[pi], order[si], merge_key):
            pi += 1
        si += 1
    if pi < len(items) and si >= len(order):
        raise _SmpError(f"The order in patch list:\n{_go_v(patch_list)}\n doesn't match "
                        f"{_SET_ELEMENT_ORDER} list:\n{_go_v(order)}\n")


def _merge_key_value_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return _go_eq(left, right)
    if not isinstance(left, dict):
        raise _SmpError(_err_bad_arg_type({}, left))
    if not isinstance(right, dict):
        raise _SmpError(_err_bad_arg_type({}, right))
    if merge_key not in left:
        raise _SmpError(_err_no_merge_key(left, merge_key))
    if merge_key not in right:
        raise _SmpError(_err_no_merge_key(right, merge_key))
    return _go_eq(left[merge_key], right[merge_key])


def _merge_slice_handler(original: list, patch: list, schema: Any, strategy: str,
                         merge_key: str, is_delete_list: bool) -> list:
    """Lists merge only with strategy "merge" (or as a $deleteFromPrimitiveList target);
    otherwise the patch list replaces the original verbatim."""
    if strategy == _MERGE or is_delete_list:
        return _merge_slice(original, patch, schema, merge_key, is_delete_list)
    return patch


def _merge_slice(original: list, patch: list, schema: Any, merge_key: str,
                 is_delete_list: bool) -> list:
    """mergeSlice: union of primitives or merge-by-key of objects, then the order
    normalisation (patch order for patched items, live order for the rest)."""
    if not original and not patch:
        return original
    kind = _slice_element_type(original, patch)
    if kind is not dict:
        if is_delete_list:
            return _delete_from_slice(original, patch)
        # ``append(original, patch...)`` reallocates (typed slices have len == cap) unless
        # the patch is empty; then the dedupe below rewrites the live list in place and
        # the live order used further down sees that, as upstream.
        buf = original + patch if patch else original
        merged = buf[:_deduplicate_scalars(buf)]
    else:
        if not merge_key:
            # upstream names the Go kind of the item type: always "struct" for built-ins
            raise _SmpError("cannot merge lists without merge key for struct")
        live = _GoSlice(original)
        patch, replace = _merge_slice_with_special_elements(live, patch, merge_key)
        if replace:
            original = merged = patch
            patch = []
        else:
            original = live.items()
            merged = _merge_slice_without_special_elements(live, patch, merge_key, schema)
    if not merge_key:
        patch_items, server_only = _partition_primitives(merged, patch)
    else:
        patch_items, server_only = _partition_maps(merged, patch, merge_key)
    return _normalize_element_order(patch_items, server_only, patch, original, merge_key, kind)


class _GoSlice:
    """A Go slice over the caller's list, reproducing upstream's aliasing.

    Upstream deletes items with ``append(s[:i], s[i+1:]...)`` and adds new ones with
    ``append``, both writing into the backing array that the caller's (longer) slice
    header still shows.  mergePatchIntoOriginal later uses that header as the live
    order, so the shifted/overwritten contents change the resulting order.  Writes past
    the caller's length are invisible to it and go to ``extra``.
    """

    def __init__(self, buf: list):
        self.buf = buf
        self.length = len(buf)
        self.extra: list = []

    def items(self) -> list:
        return self.buf[:self.length] + self.extra

    def delete(self, idx: int) -> None:
        self.buf[idx:self.length - 1] = self.buf[idx + 1:self.length]
        self.length -= 1

    def append(self, value: Any) -> None:
        if self.length < len(self.buf) and not self.extra:
            self.buf[self.length] = value
            self.length += 1
        else:
            self.extra.append(value)

    def set(self, idx: int, value: Any) -> None:
        if idx < self.length:
            self.buf[idx] = value
        else:
            self.extra[idx - self.length] = value


def _merge_slice_with_special_elements(live: _GoSlice, patch: list,
                                       merge_key: str) -> tuple[list, bool]:
    """Items carrying ``$patch``: delete drops every live item with that key value,
    replace makes the other patch items the whole list, merge is refused.  Returns the
    patch items without directives and whether the list is replaced."""
    plain: list = []
    replace = False
    for item in patch:
        if _DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[_DIRECTIVE]
        if directive == _DELETE and isinstance(directive, str):
            if merge_key not in item:
                raise _SmpError(_err_no_merge_key(item, merge_key))
            while (idx := _find_map_in_slice(live.items(), merge_key, item[merge_key])) >= 0:
                live.delete(idx)
        elif directive == _REPLACE and isinstance(directive, str):
            replace = True
        elif directive == _MERGE and isinstance(directive, str):
            raise _SmpError("merging lists cannot yet be specified in the patch")
        else:
            raise _SmpError(_err_bad_patch_type(directive, item))
    return plain, replace


def _merge_slice_without_special_elements(live: _GoSlice, patch: list, merge_key: str,
                                          schema: Any) -> list:
    """Merge each patch item into the live item with the same key, or append it
    (appended items are taken verbatim, directives and nulls included, as upstream)."""
    for item in patch:
        if merge_key not in item:
            raise _SmpError(_err_no_merge_key(item, merge_key))
        items = live.items()
        idx = _find_map_in_slice(items, merge_key, item[merge_key])
        if idx >= 0:
            live.set(idx, _merge_map(items[idx], item, schema))
        else:
            live.append(item)
    return live.items()


def _find_map_in_slice(items: list, key: str, value: Any) -> int:
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _SmpError(f"value for key {i} is not a map")
        if key in item and _go_eq(item[key], value):
            return i
    return -1


def _delete_from_slice(current: list, to_delete: list) -> list:
    drop = {_go_key(v) for v in to_delete}
    return [v for v in current if _go_key(v) not in drop]


def _deduplicate_scalars(s: list) -> int:
    """Upstream's in-place dedupe (a duplicate is overwritten by the current last
    element); returns the new length, leaving the tail of ``s`` as Go leaves it."""
    length = len(s) - 1
    i = 0
    while i < length:
        j = i + 1
        while j <= length:
            if _go_eq(s[i], s[j]):
                s[j] = s[length]
                length -= 1
                j -= 1
            j += 1
        i += 1
    return length + 1


def _partition_primitives(items: list, by: list) -> tuple[list, list]:
    present = {_go_key(v) for v in by}
    inside = [v for v in items if _go_key(v) in present]
    outside = [v for v in items if _go_key(v) not in present]
    return inside, outside


def _partition_maps(items: list, by: list, merge_key: str) -> tuple[list, list]:
    inside: list = []
    outside: list = []
    for v in items:
        if not isinstance(v, dict):
            raise _SmpError(_err_bad_arg_type({}, v))
        if merge_key not in v:
            raise _SmpError(_err_no_merge_key(v, merge_key))
        (inside if _find_map_in_slice(by, merge_key, v[merge_key]) >= 0 else outside).append(v)
    return inside, outside


def _normalize_element_order(patch_items: list, server_only: list, patch_order: list,
                             server_order: list, merge_key: str, kind: type) -> list:
    """normalizeElementOrder: sort patch items by the patch order and server-only items
    by the live order, then interleave them using the live order."""
    patch_items = _normalize_slice_order(patch_items, patch_order, merge_key, kind)
    server_only = _normalize_slice_order(server_only, server_order, merge_key, kind)
    return _merge_sorted_slice(server_only, patch_items, server_order, merge_key, kind)


def _normalize_slice_order(to_sort: list, order: list, merge_key: str, kind: type) -> list:
    to_delete: list = []
    if kind is dict:
        for lst in (to_sort, order):
            for item in lst:
                if not isinstance(item, dict):
                    raise _SmpError(_err_bad_arg_type({}, item))
                if merge_key not in item:
                    raise _SmpError(_err_no_merge_key(item, merge_key))
        to_sort, to_delete = _extract_to_delete_items(to_sort)
    to_sort = list(to_sort)

    def less(a: Any, b: Any) -> bool:
        ia = _index(order, a, merge_key, kind)
        if ia >= 0:
            ib = _index(order, b, merge_key, kind)
            if ib >= 0:
                return ia < ib
        return True  # upstream's comparator; only consistent when both are found

    _go_stable_sort(to_sort, less)
    return to_sort + to_delete


def _extract_to_delete_items(items: list) -> tuple[list, list]:
    keep: list = []
    delete: list = []
    for v in items:
        if not isinstance(v, dict):
            raise _SmpError(_err_bad_arg_type({}, v))
        directive = v.get(_DIRECTIVE, _MISSING)
        (delete if directive == _DELETE and isinstance(directive, str) else keep).append(v)
    return keep, delete


def _merge_sorted_slice(left: list, right: list, server_order: list, merge_key: str,
                        kind: type) -> list:
    """Insert each ``left`` (server-only) item before the first ``right`` (patch) item
    that comes after it in the live list; unknown positions favour ``right``."""
    out: list = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _index(server_order, left[i], merge_key, kind)
            ri = _index(server_order, right[j], merge_key, kind)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _index(items: list, value: Any, merge_key: str, kind: type) -> int:
    if kind is dict:
        def get(v: Any) -> Any:
            return v.get(merge_key) if isinstance(v, dict) else None
    else:
        def get(v: Any) -> Any:
            return v
    target = get(value)
    for i, v in enumerate(items):
        if _go_eq(target, get(v)):
            return i
    return -1


def _slice_element_type(*lists: list) -> type:
    """sliceElementType: every element of every list must have the same Go type."""
    prev: type | None = None
    for lst in lists:
        for v in lst:
            t = _go_type(v)
            if prev is None:
                prev = t
                if t is list:
                    raise _SmpError(_ERR_NO_LIST_OF_LISTS)
            elif prev is not t:
                raise _SmpError(f"list element types are not identical: {_go_v(list(lists))}")
    if prev is None:
        raise _SmpError("no elements in any of the given slices")
    return prev


def _extract_key(key: str, prefix: str) -> str:
    """"$setElementOrder/containers" -> "containers"; a malformed directive is a 400."""
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        if prefix == _DELETE_FROM_PRIMITIVE_LIST:
            raise _SmpError(_ERR_BAD_PRIMITIVE_LIST)
        raise _SmpError(_ERR_BAD_SET_ELEMENT_ORDER)
    return rest


def _remove_directives(value: Any) -> tuple[Any, bool]:
    """Strip objects carrying ``$patch`` (they say "drop me"), recursively."""
    if isinstance(value, dict):
        if _DIRECTIVE in value:
            return None, False
        for key in list(value):
            sub, keep = _remove_directives(value[key])
            if keep:
                value[key] = sub
            else:
                del value[key]
        return value, True
    if isinstance(value, list):
        out = []
        for v in value:
            sub, keep = _remove_directives(v)
            if keep:
                out.append(sub)
        return out, True
    return value, True


def _discard_nulls(value: Any) -> None:
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for v in value.values():
            _discard_nulls(v)
    elif isinstance(value, list):
        for v in value:
            _discard_nulls(v)


def _err_no_merge_key(m: dict, key: str) -> str:
    return f"map: {_go_v(m)} does not contain declared merge key: {key}"


def _err_bad_arg_type(expected: Any, actual: Any) -> str:
    return f"expected a {_go_type_name(expected)}, but received a {_go_type_name(actual)}"


def _err_bad_patch_type(directive: Any, m: dict) -> str:
    return f"unknown patch type: {_go_s(directive)} in map: {_go_v(m)}"


# ---------------------------------------------------------------------------------------
# Go compatibility helpers
# ---------------------------------------------------------------------------------------

def _go_stable_sort(data: list, less: Callable[[Any, Any], bool]) -> None:
    """sort.SliceStable's exact algorithm (insertion-sorted blocks of 20 + SymMerge).

    Upstream's comparators are not always strict weak orders, so the result depends on
    the algorithm, not just on stability."""
    def lt(i: int, j: int) -> bool:
        return less(data[i], data[j])

    def swap(i: int, j: int) -> None:
        data[i], data[j] = data[j], data[i]

    def insertion_sort(a: int, b: int) -> None:
        for i in range(a + 1, b):
            j = i
            while j > a and lt(j, j - 1):
                swap(j, j - 1)
                j -= 1

    def swap_range(a: int, b: int, n: int) -> None:
        for i in range(n):
            swap(a + i, b + i)

    def rotate(a: int, m: int, b: int) -> None:
        i, j = m - a, b - m
        while i != j:
            if i > j:
                swap_range(m - i, m, j)
                i -= j
            else:
                swap_range(m - i, m + j - i, i)
                j -= i
        swap_range(m - i, m, i)

    def sym_merge(a: int, m: int, b: int) -> None:
        if m - a == 1:
            i, j = m, b
            while i < j:
                h = (i + j) >> 1
                if lt(h, a):
                    i = h + 1
                else:
                    j = h
            for k in range(a, i - 1):
                swap(k, k + 1)
            return
        if b - m == 1:
            i, j = a, m
            while i < j:
                h = (i + j) >> 1
                if not lt(m, h):
                    i = h + 1
                else:
                    j = h
            for k in range(m, i, -1):
                swap(k, k - 1)
            return
        mid = (a + b) >> 1
        n = mid + m
        if m > mid:
            start, r = n - b, mid
        else:
            start, r = a, m
        p = n - 1
        while start < r:
            c = (start + r) >> 1
            if not lt(p - c, c):
                start = c + 1
            else:
                r = c
        end = n - start
        if start < m < end:
            rotate(start, m, end)
        if a < start < mid:
            sym_merge(a, start, mid)
        if mid < end < b:
            sym_merge(mid, end, b)

    n = len(data)
    block = 20
    a, b = 0, block
    while b <= n:
        insertion_sort(a, b)
        a, b = b, b + block
    insertion_sort(a, n)
    while block < n:
        a, b = 0, 2 * block
        while b <= n:
            sym_merge(a, a + block, b)
            a, b = b, b + 2 * block
        if a + block < n:
            sym_merge(a, a + block, n)
        block *= 2


def _go_type(v: Any) -> type:
    """The Go dynamic type of a decoded JSON value (int64 vs float64 kept apart)."""
    return type(v)


def _go_eq(a: Any, b: Any) -> bool:
    """Go ``==`` on interface{} values: same dynamic type and equal (1 != 1.0 != true)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (dict, list)):
        raise _SmpError(f"runtime error: comparing uncomparable type {_go_type_name(a)}")
    return a == b


def _go_key(v: Any) -> tuple:
    """A map key with Go interface{} identity."""
    if isinstance(v, (dict, list)):
        raise _SmpError(f"runtime error: hash of unhashable type {_go_type_name(v)}")
    return (type(v), v)


def _go_json_equal(a: Any, b: Any) -> bool:
    """json-patch v4 lazyNode.equal: structural, scalars compared as JSON text (so an
    integer never equals a float or a bool)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and len(a) == len(b) and all(
            k in b and _go_json_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(
            _go_json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _go_type_name(v: Any) -> str:
    """reflect.TypeOf(v).String() formatted with %s, for ErrBadArgType."""
    if v is None:
        return "%!s(<nil>)"
    return {dict: "map[string]interface {}", list: "[]interface {}", str: "string",
            bool: "bool", int: "int64", float: "float64"}.get(type(v), type(v).__name__)


def _json_kind(v: Any) -> str:
    """encoding/json's UnmarshalTypeError value names."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return {dict: "object", list: "array", str: "string"}.get(type(v), "null")


def _go_quote(s: str) -> str:
    """strconv.Quote for the common (printable) case."""
    return json.dumps(s, ensure_ascii=False)


def _go_s(v: Any) -> str:
    """fmt %s of an interface{}."""
    if isinstance(v, str):
        return v
    if v is None:
        return "%!s(<nil>)"
    if isinstance(v, (dict, list)):
        return _go_v(v)
    return f"%!s({_go_type_name(v)}={_go_v(v)})"


def _go_v(v: Any) -> str:
    """fmt %v of decoded JSON (maps print with sorted keys, as fmt does)."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_go_v(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(_go_v(x) for x in v) + "]"
    return str(v)


def _go_float(f: float) -> str:
    """%v of a float64: shortest digits, exponent form when exp < -4 or exp >= 6."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if str(f).startswith("-") else "0"
    sign, digits, exp = Decimal(repr(f)).normalize().as_tuple()
    ds = "".join(map(str, digits))
    x = len(ds) - 1 + exp  # decimal exponent of the leading digit
    neg = "-" if sign else ""
    if x < -4 or x >= 6:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{neg}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if x < 0:
        return f"{neg}0.{'0' * (-x - 1)}{ds}"
    if len(ds) <= x + 1:
        return neg + ds + "0" * (x + 1 - len(ds))
    return f"{neg}{ds[:x + 1]}.{ds[x + 1:]}"


def _copy(v: Any) -> Any:
    """Deep copy of decoded JSON (much faster than copy.deepcopy)."""
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v
