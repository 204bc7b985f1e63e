"""Unknown-field detection for ``fieldValidation=Strict|Warn``.

kube-apiserver decodes request bodies into Go structs with a strict decoder
that reports every field it has no place for, by JSON path, in the order it
meets them: ``spec.foo``, ``spec.containers[0].foo``, and for map values the
map key as a path segment (``spec.selector.matchLabels`` is a map, so nothing
inside it is ever unknown; a map of structs gives ``status.x.key.foo``).  The
400 reads ``strict decoding error: unknown field "spec.foo", unknown field
"bar"``; with ``Warn`` each ``unknown field "..."`` becomes a warning.

The walk is driven by ``shim.schemas.load_types()``.  Free-form values
(RawExtension, FieldsV1, IntOrString, Quantity, arbitrary JSON) and
definitions we do not know accept anything.
"""

from __future__ import annotations

from typing import Any, Iterable

_ALWAYS_KNOWN_TOP = ("apiVersion", "kind")


def unknown_fields(types: dict, definition: str, obj: Any, prune: bool = False) -> list[str]:
    """JSON paths of fields in ``obj`` that ``definition`` does not declare.

    With ``prune`` they are also removed from ``obj`` (in place), as decoding into
    upstream's typed structs drops them.

    Paths follow the upstream strict decoder: ``a.b``, ``a[0].b``; the order is
    the iteration order of ``obj`` (document order for parsed JSON).
    ``apiVersion`` and ``kind`` are always accepted at the top level, and
    ``metadata`` is checked against ObjectMeta where the kind declares it.
    """
    out: list[str] = []
    if not isinstance(obj, dict):
        return out
    entry = types.get(definition)
    props = entry.get("properties") if entry else None
    if props is None:
        return out
    for key, value in list(obj.items()):
        t = props.get(key)
        if t is None:
            if key in _ALWAYS_KNOWN_TOP:
                continue
            if key == "metadata":
                _walk_def(types, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                          value, "metadata", out, prune)
                continue
            out.append(key)
            if prune:
                del obj[key]
            continue
        _walk_ref(types, t, value, key, out, prune)
    return out


def _walk_def(types: dict, definition: str, obj: Any, path: str, out: list[str],
              prune: bool = False) -> None:
    if not isinstance(obj, dict):
        return
    entry = types.get(definition)
    if entry is None:
        return
    props = entry.get("properties")
    if props is None:  # leaf / free-form definition
        return
    for key, value in list(obj.items()):
        sub = f"{path}.{key}" if path else key
        t = props.get(key)
        if t is None:
            out.append(sub)
            if prune:
                del obj[key]
        else:
            _walk_ref(types, t, value, sub, out, prune)


def _walk_ref(types: dict, t: dict, value: Any, path: str, out: list[str],
              prune: bool = False) -> None:
    ref = t.get("$ref")
    if ref is not None:
        _walk_def(types, ref, value, path, out, prune)
        return
    items = t.get("items")
    if items is not None:
        if isinstance(value, list) and _has_structure(items):
            for i, item in enumerate(value):
                _walk_ref(types, items, item, f"{path}[{i}]", out, prune)
        return
    ap = t.get("additionalProperties")
    if isinstance(ap, dict):
        if isinstance(value, dict) and _has_structure(ap):
            for k, v in value.items():
                _walk_ref(types, ap, v, f"{path}.{k}" if path else k, out, prune)
        return
    # scalar, leaf or free-form: anything goes


def _has_structure(t: dict) -> bool:
    """Whether values of this typeRef can contain unknown fields at all."""
    return "$ref" in t or "items" in t or isinstance(t.get("additionalProperties"), dict)


# ---------------------------------------------------------------------------
# messages, worded as upstream


def go_quote(s: str) -> str:
    """Quote like Go's strconv.Quote (printable unicode kept, others escaped)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\v":
            out.append("\\v")
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif o < 0x80:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def unknown_field_messages(paths: Iterable[str]) -> list[str]:
    """``unknown field "spec.foo"`` per path (also the Warn-mode warning text)."""
    return ["unknown field " + go_quote(p) for p in paths]


def strict_decoding_message(paths: Iterable[str]) -> str:
    """The message of the 400 kube-apiserver returns for fieldValidation=Strict."""
    return "strict decoding error: " + ", ".join(unknown_field_messages(paths))
