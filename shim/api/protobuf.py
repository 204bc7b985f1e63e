"""Kubernetes protobuf request bodies (application/vnd.kubernetes.protobuf), decoded to JSON.

Typed client-go clients (kubectl create namespace/secret/deployment/..., kubectl drain,
controllers) send built-in objects as protobuf. A body is the magic prefix "k8s\\0" and a
runtime.Unknown envelope {typeMeta{apiVersion, kind}, raw, contentEncoding, contentType};
raw is the object's own message.

Upstream decodes that into the Go struct; the rest of the server then sees the same object
as a JSON client would have sent. We rebuild exactly the JSON encoding/json gives for the
decoded Go struct (declaration order, omitempty/omitzero, nil pointers/slices/maps, leaf types
such as Time and IntOrString), so the generic machinery only ever sees JSON.

The field table (protobuf_types.json) is generated from the Go API types by
hack/protobuf-types.
"""
from __future__ import annotations

import base64
import datetime as _dt
import json
import os
from functools import lru_cache

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

_OMITEMPTY, _INLINE, _POINTER, _OMITZERO = 1, 2, 4, 8
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
_SCALARS = ("b", "i32", "i64")
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


class ProtobufError(ValueError):
    pass


@lru_cache(maxsize=1)
def _table() -> tuple[dict, dict]:
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "protobuf_types.json")
    with open(path, "rb") as f:
        data = json.load(f)
    types = {tid: [tuple(fl) for fl in fields] for tid, fields in data["types"].items()}
    return data["kinds"], types


def decode(raw: bytes) -> dict:
    """A protobuf request body -> the JSON object (a dict) it stands for."""
    if not raw.startswith(MAGIC):
        raise ProtobufError(f"provided data does not appear to be a protobuf message, expected prefix "
                            f"{list(MAGIC)}")
    env = _collect(memoryview(raw)[len(MAGIC):])
    type_meta = _collect(_last(env, 1, b""))
    api_version = bytes(_last(type_meta, 1, b"")).decode()
    kind = bytes(_last(type_meta, 2, b"")).decode()
    encoding = bytes(_last(env, 3, b"")).decode()
    if encoding:
        raise ProtobufError(f"unsupported content encoding {encoding!r}")
    kinds, _ = _table()
    tid = kinds.get(f"{api_version}/{kind}")
    if tid is None:
        raise ProtobufError(f'no kind "{kind}" is registered for version "{api_version}" in scheme '
                            f'"k8s.io/kubernetes/pkg/api/legacyscheme/scheme.go:30"')
    obj = _message(tid, _last(env, 2, b""))
    out = {"kind": kind, "apiVersion": api_version}  # TypeMeta's field order
    out.update((k, v) for k, v in obj.items() if k not in ("apiVersion", "kind"))
    return out


# -- wire format --------------------------------------------------------------------------

def _varint(buf, i: int) -> tuple[int, int]:
    result = shift = 0
    n = len(buf)
    while True:
        if i >= n:
            raise ProtobufError("unexpected EOF")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7
        if shift >= 64:
            raise ProtobufError("integer overflow")


def _collect(buf) -> dict[int, list]:
    """field number -> [(wire type, value)...] in order of appearance."""
    out: dict[int, list] = {}
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if num <= 0:
            raise ProtobufError(f"illegal tag {num} (wire type {wt})")
        if wt == _VARINT:
            val, i = _varint(buf, i)
        elif wt == _BYTES:
            ln, i = _varint(buf, i)
            if i + ln > n:
                raise ProtobufError("unexpected EOF")
            val, i = buf[i:i + ln], i + ln
        elif wt == _FIXED64:
            val, i = int.from_bytes(buf[i:i + 8], "little"), i + 8
        elif wt == _FIXED32:
            val, i = int.from_bytes(buf[i:i + 4], "little"), i + 4
        else:
            raise ProtobufError(f"illegal wireType {wt} for field {num}")
        if i > n:
            raise ProtobufError("unexpected EOF")
        out.setdefault(num, []).append((wt, val))
    return out


def _last(fields: dict, num: int, default):
    vals = fields.get(num)
    return vals[-1][1] if vals else default


def _want_bytes(wt: int, val):
    if wt != _BYTES:
        raise ProtobufError(f"wrong wireType = {wt}, expected length-delimited")
    return val


def _signed(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _scalar(ref: str, wt: int, val):
    if wt != _VARINT:
        raise ProtobufError(f"wrong wireType = {wt}, expected varint")
    if ref == "b":
        return val != 0
    return _signed(val, 32 if ref == "i32" else 64)


# -- values ---------------------------------------------------------------------------------

def _message(tid: str, buf) -> dict:
    fields = _table()[1][tid]
    got = _collect(buf)
    out: dict = {}
    for num, name, flags, ref in fields:
        occ = got.get(num) if num else None
        if flags & _INLINE:
            if occ is None and flags & _POINTER:
                continue
            sub = _value(ref, occ) if occ else _zero(ref)
            if isinstance(sub, dict):
                out.update(sub)
            continue
        if flags & _POINTER:
            if not occ:
                if not flags & _OMITEMPTY:
                    out[name] = None
                continue
            out[name] = _value(ref, occ)
            continue
        val = _value(ref, occ) if occ else _zero(ref)
        if flags & _OMITEMPTY and _empty(ref, val):
            continue
        if flags & _OMITZERO and val is None:  # only metav1.Time carries omitzero
            continue
        out[name] = val
    return out


def _value(ref, occ: list):
    """The Go-JSON value of one field from all its occurrences on the wire."""
    if isinstance(ref, str):
        wt, val = occ[-1]
        if ref in _SCALARS:
            return _scalar(ref, wt, val)
        return _leaf(ref, _want_bytes(wt, val))
    if "m" in ref:
        return _message(ref["m"], _want_bytes(*occ[-1]))
    if "p" in ref:
        return _value(ref["p"], occ)
    if "l" in ref:
        elem = ref["l"]
        items = []
        for wt, val in occ:
            if isinstance(elem, str) and elem in _SCALARS and wt == _BYTES:  # packed
                i = 0
                while i < len(val):
                    v, i = _varint(val, i)
                    items.append(_scalar(elem, _VARINT, v))
            else:
                items.append(_value(elem, [(wt, val)]))
        return items
    if "lm" in ref:  # a named slice carried as a message {repeated items = 1}
        inner = _collect(_want_bytes(*occ[-1]))
        return _value({"l": ref["lm"]}, inner[1]) if inner.get(1) else []
    if "k" in ref:
        out = {}
        for wt, val in occ:
            entry = _collect(_want_bytes(wt, val))
            key = _value(ref["k"], entry[1]) if entry.get(1) else _zero(ref["k"])
            out[key] = _value(ref["v"], entry[2]) if entry.get(2) else _zero(ref["v"])
        return {k: out[k] for k in sorted(out)}  # encoding/json sorts map keys
    raise ProtobufError(f"unsupported type reference {ref!r}")


def _leaf(ref: str, buf):
    if ref == "s":
        return bytes(buf).decode("utf-8", errors="replace")
    if ref == "bytes":
        return base64.b64encode(bytes(buf)).decode()
    if ref in ("time", "mtime"):
        if not len(buf):
            return None
        f = _collect(buf)
        secs = _signed(_last(f, 1, 0), 64)
        t = _EPOCH + _dt.timedelta(seconds=secs)
        if ref == "time":
            return t.strftime("%Y-%m-%dT%H:%M:%SZ")
        micros = _signed(_last(f, 2, 0), 32) // 1000
        return (t + _dt.timedelta(microseconds=micros)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    f = _collect(buf)
    if ref == "dur":
        return go_duration(_signed(_last(f, 1, 0), 64))
    if ref == "qty":
        return bytes(_last(f, 1, b"")).decode() or "0"
    if ref == "ios":
        if _last(f, 1, 0) == 1:
            return bytes(_last(f, 3, b"")).decode()
        return _signed(_last(f, 2, 0), 32)
    if ref in ("raw", "fv1"):
        raw = bytes(_last(f, 1, b""))
        if not raw:
            return None
        if raw.startswith(MAGIC):
            return decode(raw)
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ProtobufError(f"embedded object is not JSON: {e}") from None
    raise ProtobufError(f"unsupported leaf type {ref!r}")


def _zero(ref):
    """The Go-JSON form of a field's zero value (what an absent non-pointer field encodes to)."""
    if isinstance(ref, str):
        return {"s": "", "b": False, "i32": 0, "i64": 0, "dur": "0s", "qty": "0", "ios": 0}.get(ref)
    if "m" in ref:
        return _message(ref["m"], b"")
    return None  # slices, maps and pointers are nil


def _empty(ref, val) -> bool:
    """encoding/json's isEmptyValue; structs (messages and leaf structs) are never empty."""
    if isinstance(ref, str):
        if ref in ("s", "b", "i32", "i64"):
            return not val
        if ref == "bytes":
            return not val
        return False
    if "m" in ref:
        return False
    return not val  # nil or empty slice / map


def go_duration(ns: int) -> str:
    """time.Duration.String()."""
    if ns == 0:
        return "0s"
    neg, u = ns < 0, abs(ns)
    if u < 1_000_000_000:
        for unit, size in (("ns", 1), ("µs", 1_000), ("ms", 1_000_000)):
            if u < size * 1000:
                s = _frac(u, size) + unit
                break
    else:
        secs, frac = divmod(u, 1_000_000_000)
        h, rem = divmod(secs, 3600)
        m, s_ = divmod(rem, 60)
        s = _frac(s_ * 1_000_000_000 + frac, 1_000_000_000) + "s"
        if h:
            s = f"{h}h{m}m{s}"
        elif m:
            s = f"{m}m{s}"
    return ("-" if neg else "") + s


def _frac(v: int, size: int) -> str:
    whole, frac = divmod(v, size)
    if not frac:
        return str(whole)
    digits = len(str(size)) - 1
    return f"{whole}." + f"{frac:0{digits}d}".rstrip("0")
