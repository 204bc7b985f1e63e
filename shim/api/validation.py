"""Field validation with kube-apiserver's exact wording.

Clients show validation failures verbatim (kubectl prints the Status
message of a 422), so every check here reproduces upstream's text, the
order in which upstream reports errors, and the way a bad value is
rendered inside the message.  Checks are pure functions over JSON-shaped
dicts; each returns a list of `FieldError` (empty means valid) or, for the
low-level string checks, a list of detail strings like upstream's
`k8s.io/apimachinery/pkg/util/validation`.

Map iteration in Go is random, so upstream's order of errors for several
bad labels/annotations is not fixed; we report them in dict order.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping, Sequence

# ---------------------------------------------------------------------------
# Error types (metav1.CauseType values) and their human text.
# ---------------------------------------------------------------------------

FIELD_VALUE_NOT_FOUND = "FieldValueNotFound"
FIELD_VALUE_REQUIRED = "FieldValueRequired"
FIELD_VALUE_DUPLICATE = "FieldValueDuplicate"
FIELD_VALUE_INVALID = "FieldValueInvalid"
FIELD_VALUE_NOT_SUPPORTED = "FieldValueNotSupported"
FIELD_VALUE_FORBIDDEN = "FieldValueForbidden"
FIELD_VALUE_TOO_LONG = "FieldValueTooLong"
FIELD_VALUE_TOO_MANY = "FieldValueTooMany"
FIELD_VALUE_TOO_FEW = "FieldValueTooFew"
FIELD_VALUE_TOO_SHORT = "FieldValueTooShort"
FIELD_VALUE_TYPE_INVALID = "FieldValueTypeInvalid"
INTERNAL_ERROR = "InternalError"

_TYPE_TEXT = {
    FIELD_VALUE_NOT_FOUND: "Not found",
    FIELD_VALUE_REQUIRED: "Required value",
    FIELD_VALUE_DUPLICATE: "Duplicate value",
    FIELD_VALUE_INVALID: "Invalid value",
    FIELD_VALUE_NOT_SUPPORTED: "Unsupported value",
    FIELD_VALUE_FORBIDDEN: "Forbidden",
    FIELD_VALUE_TOO_LONG: "Too long",
    FIELD_VALUE_TOO_MANY: "Too many",
    FIELD_VALUE_TOO_FEW: "Too few",
    FIELD_VALUE_TOO_SHORT: "Too short",
    FIELD_VALUE_TYPE_INVALID: "Invalid value",
    INTERNAL_ERROR: "Internal error",
}

# Types whose message never shows the bad value.
_VALUELESS_TYPES = frozenset(
    {FIELD_VALUE_REQUIRED, FIELD_VALUE_FORBIDDEN, FIELD_VALUE_TOO_LONG, FIELD_VALUE_TOO_SHORT, INTERNAL_ERROR}
)


class _Omitted:
    """Marker for a bad value that upstream leaves out of the message."""

    def __repr__(self) -> str:
        return "OMITTED"


OMITTED = _Omitted()

FIELD_IMMUTABLE_MESSAGE = "field is immutable"
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
IS_NEGATIVE_MESSAGE = "must be greater than or equal to 0"


# ---------------------------------------------------------------------------
# FieldError and its rendering.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldError:
    """One validation failure, like upstream's `field.Error`.

    `field` is the rendered path (`metadata.name`, `spec.containers[0].image`).
    `bad_value` is rendered like Go would render the typed value: str with
    Go's %q, bool/int/float with %v, anything else (list, dict, None) as Go
    JSON; dict keys keep their order (pass sorted dicts for Go maps).
    """

    type: str
    field: str
    bad_value: Any = ""
    detail: str = ""

    def body(self) -> str:
        """Upstream's ErrorBody(): the message without the field prefix."""
        text = _TYPE_TEXT.get(self.type)
        if text is None:
            s = f"Internal error: unhandled error code: {self.type}: please report this"
        elif self.type in _VALUELESS_TYPES or self.bad_value is OMITTED:
            s = text
        else:
            s = f"{text}: {render_bad_value(self.bad_value)}"
        if self.detail:
            s += f": {self.detail}"
        return s

    def message(self) -> str:
        """Upstream's Error(): `<field>: <body>`."""
        return f"{self.field}: {self.body()}"

    def to_cause(self) -> dict:
        """The metav1.StatusCause upstream puts in Status.details.causes."""
        cause: dict[str, str] = {"reason": self.type}
        body = self.body()
        if body:
            cause["message"] = body
        if self.field:
            cause["field"] = self.field
        return cause

    def __str__(self) -> str:
        return self.message()


def required(field: str, detail: str = "") -> FieldError:
    return FieldError(FIELD_VALUE_REQUIRED, field, "", detail)


def invalid(field: str, value: Any, detail: str) -> FieldError:
    return FieldError(FIELD_VALUE_INVALID, field, value, detail)


def type_invalid(field: str, value: Any, detail: str) -> FieldError:
    return FieldError(FIELD_VALUE_TYPE_INVALID, field, value, detail)


def not_found(field: str, value: Any) -> FieldError:
    return FieldError(FIELD_VALUE_NOT_FOUND, field, value)


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError(FIELD_VALUE_DUPLICATE, field, value)


def forbidden(field: str, detail: str) -> FieldError:
    return FieldError(FIELD_VALUE_FORBIDDEN, field, "", detail)


def not_supported(field: str, value: Any, valid_values: Iterable[Any]) -> FieldError:
    """Upstream lists the allowed values, each Go-quoted, in the given order."""
    values = [go_quote(v if isinstance(v, str) else _go_sprint(v)) for v in valid_values]
    detail = "supported values: " + ", ".join(values) if values else ""
    return FieldError(FIELD_VALUE_NOT_SUPPORTED, field, value, detail)


def too_long(field: str, max_length: int) -> FieldError:
    if max_length >= 0:
        detail = f"may not be more than {max_length} {'byte' if max_length == 1 else 'bytes'}"
    else:
        detail = "value is too long"
    return FieldError(FIELD_VALUE_TOO_LONG, field, "<value omitted>", detail)


def too_many(field: str, actual: int, maximum: int) -> FieldError:
    if maximum >= 0:
        detail = f"must have at most {maximum} {'item' if maximum == 1 else 'items'}"
    else:
        detail = "has too many items"
    return FieldError(FIELD_VALUE_TOO_MANY, field, actual if actual >= 0 else OMITTED, detail)


def internal_error(field: str, err: str) -> FieldError:
    return FieldError(INTERNAL_ERROR, field, err, err)


def aggregate_message(errors: Sequence[FieldError]) -> str:
    """Upstream's ErrorList.ToAggregate().Error(): deduplicated, `[a, b]` if several."""
    seen: list[str] = []
    for err in errors:
        msg = err.message()
        if msg not in seen:
            seen.append(msg)
    if len(seen) == 1:
        return seen[0]
    return "[" + ", ".join(seen) + "]"


def qualified_kind(kind: str, group: str = "") -> str:
    """schema.GroupKind.String(): `Kind` for the core group, else `Kind.group`."""
    return f"{kind}.{group}" if group else kind


def invalid_status_message(kind: str, name: str, errors: Sequence[FieldError], group: str = "") -> str:
    """The message of upstream's 422 Invalid status (apierrors.NewInvalid)."""
    prefix = f"{qualified_kind(kind, group)} {go_quote(name)} is invalid"
    if not errors:
        return prefix
    return f"{prefix}: {aggregate_message(errors)}"


def invalid_status(kind: str, name: str, errors: Sequence[FieldError], group: str = "") -> dict:
    """The full metav1.Status body of a 422 Invalid response."""
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if kind:
        details["kind"] = kind
    if errors:
        details["causes"] = [e.to_cause() for e in errors]
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": invalid_status_message(kind, name, errors, group),
        "reason": "Invalid",
        "details": details,
        "code": 422,
    }


# ---------------------------------------------------------------------------
# Go value rendering (strconv.Quote, fmt %v, encoding/json).
# ---------------------------------------------------------------------------

_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(s: str) -> str:
    """Go's strconv.Quote (the %q verb) for a string."""
    out = ['"']
    for ch in s:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[ch])
        else:
            cp = ord(ch)
            if cp < 0x20 or cp == 0x7F:
                out.append(f"\\x{cp:02x}")
            elif cp < 0x10000:
                out.append(f"\\u{cp:04x}")
            else:
                out.append(f"\\U{cp:08x}")
    out.append('"')
    return "".join(out)


def _shortest_digits(f: float) -> tuple[str, int]:
    """Shortest round-trip digits and decimal point position (0.DIGITS x 10^dp)."""
    sign, digits, exponent = Decimal(repr(abs(f))).normalize().as_tuple()
    text = "".join(map(str, digits))
    return text, len(text) + exponent


def _go_float_v(f: float) -> str:
    """fmt's %v for float64 (strconv 'g' with shortest precision)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    neg = "-" if f < 0 else ""
    digits, dp = _shortest_digits(f)
    exp = dp - 1
    # Shortest %v switches to exponent form outside 1e-4 <= |f| < 1e6.
    if exp < -4 or exp >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{neg}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return neg + _fixed(digits, dp)


def _fixed(digits: str, dp: int) -> str:
    if dp <= 0:
        return "0." + "0" * (-dp) + digits
    if dp >= len(digits):
        return digits + "0" * (dp - len(digits))
    return digits[:dp] + "." + digits[dp:]


def _go_json_float(f: float) -> str:
    """encoding/json's float64 form: %f unless the exponent is < -6 or >= 21."""
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    neg = "-" if f < 0 else ""
    digits, dp = _shortest_digits(f)
    exp = dp - 1
    if exp < -6 or exp >= 21:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{neg}{mant}e{'-' if exp < 0 else '+'}{abs(exp)}"
    return neg + _fixed(digits, dp)


def go_json(value: Any) -> str:
    """Compact JSON as Go's json.Marshal writes it (HTML-safe escaping)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_json_float(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return (
            text.replace("<", "\\u003c")
            .replace(">", "\\u003e")
            .replace("&", "\\u0026")
            .replace("\u2028", "\\u2028")
            .replace("\u2029", "\\u2029")
        )
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{go_json(str(k))}:{go_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    return go_json(str(value))


def _go_sprint(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float_v(value)
    return str(value)


def render_bad_value(value: Any) -> str:
    """How field.Error.ErrorBody() shows a bad value."""
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, (bool, int, float)):
        return _go_sprint(value)
    return go_json(value)


# ---------------------------------------------------------------------------
# String format checks (k8s.io/apimachinery/pkg/util/validation and
# pkg/api/validate/content).  Two families of length messages exist upstream:
# the older package says "characters", the newer content package (label keys
# and values) says "bytes"; we keep each where upstream uses it.
# ---------------------------------------------------------------------------

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _LABEL_KEY_FMT + ")?"

_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL_FMT)
_LABEL_KEY_RE = re.compile(_LABEL_KEY_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)

_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character"
)
_LABEL_KEY_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
DNS1035_LABEL_MAX_LENGTH = 63
LABEL_KEY_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """Upstream's RegexError text, including its double space before `or`."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    parts = [msg, " (e.g. "]
    for i, example in enumerate(examples):
        if i > 0:
            parts.append(" or ")
        parts.append(f"'{example}', ")
    parts.append(f"regex used for validation is '{fmt}')")
    return "".join(parts)


def _max_len_chars(n: int) -> str:
    return f"must be no more than {n} characters"


def _max_len_bytes(n: int) -> str:
    return f"must be no more than {n} bytes"


def _byte_len(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def is_dns1123_label(value: str) -> list[str]:
    errs = []
    if _byte_len(value) > DNS1123_LABEL_MAX_LENGTH:
        errs.append(_max_len_chars(DNS1123_LABEL_MAX_LENGTH))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def _subdomain_errors(value: str, max_len_msg: Callable[[int], str]) -> list[str]:
    errs = []
    if _byte_len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_len_msg(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    return _subdomain_errors(value, _max_len_chars)


def is_dns1035_label(value: str) -> list[str]:
    errs = []
    if _byte_len(value) > DNS1035_LABEL_MAX_LENGTH:
        errs.append(_max_len_chars(DNS1035_LABEL_MAX_LENGTH))
    if not _DNS1035_LABEL_RE.fullmatch(value):
        errs.append(regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """Label key / annotation key / finalizer rules: `[prefix/]name`."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in _subdomain_errors(prefix, _max_len_bytes))
    else:
        return [
            "a valid label key "
            + regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif _byte_len(name) > LABEL_KEY_MAX_LENGTH:
        errs.append("name part " + _max_len_bytes(LABEL_KEY_MAX_LENGTH))
    if not _LABEL_KEY_RE.fullmatch(name):
        errs.append("name part " + regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc"))
    return errs


def is_valid_label_value(value: str) -> list[str]:
    errs = []
    if _byte_len(value) > LABEL_VALUE_MAX_LENGTH:
        errs.append(_max_len_bytes(LABEL_VALUE_MAX_LENGTH))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


# ---------------------------------------------------------------------------
# Object name validators (ValidateNameFunc): `prefix` is true for
# generateName, whose trailing dash gets masked before checking.
# ---------------------------------------------------------------------------

NameValidator = Callable[[str, bool], list[str]]


def _mask_trailing_dash(name: str) -> str:
    # Upstream replaces the last *two* characters with "a" (so "ab-" checks "aa").
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool = False) -> list[str]:
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool = False) -> list[str]:
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool = False) -> list[str]:
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


validate_namespace_name = name_is_dns_label


# ---------------------------------------------------------------------------
# Metadata validation.
# ---------------------------------------------------------------------------

FINALIZER_ORPHAN = "orphan"
FINALIZER_FOREGROUND = "foregroundDeletion"
STANDARD_FINALIZERS = frozenset({"kubernetes", FINALIZER_ORPHAN, FINALIZER_FOREGROUND})
_BANNED_OWNERS = frozenset({("", "v1", "Event")})
FIELD_MANAGER_MAX_LENGTH = 128
MAX_SUBRESOURCE_NAME_LENGTH = 256


def validate_labels(labels: Mapping[str, str] | None, path: str = "metadata.labels") -> list[FieldError]:
    """Upstream reports key errors with the key and value errors with the value, both at `path`."""
    errs: list[FieldError] = []
    for key, value in (labels or {}).items():
        errs.extend(validate_label_name(key, path))
        errs.extend(invalid(path, value, m) for m in is_valid_label_value(value if isinstance(value, str) else str(value)))
    return errs


def validate_label_name(name: str, path: str) -> list[FieldError]:
    return [invalid(path, name, m) for m in is_qualified_name(name)]


def validate_annotations(annotations: Mapping[str, str] | None, path: str = "metadata.annotations") -> list[FieldError]:
    """Keys must be qualified names (checked lower-cased); keys+values at most 256 KiB."""
    errs: list[FieldError] = []
    annotations = annotations or {}
    for key in annotations:
        errs.extend(invalid(path, key, m) for m in is_qualified_name(key.lower()))
    total = sum(_byte_len(k) + _byte_len(v if isinstance(v, str) else str(v)) for k, v in annotations.items())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


def parse_group_version(gv: str) -> tuple[str, str]:
    """schema.ParseGroupVersion; raises ValueError for more than one slash."""
    if gv in ("", "/"):
        return "", ""
    count = gv.count("/")
    if count == 0:
        return "", gv
    if count == 1:
        group, version = gv.split("/")
        return group, version
    raise ValueError(f"unexpected GroupVersion string: {gv}")


def _owner_ref_json(ref: Mapping[str, Any]) -> dict:
    """An owner reference in metav1.OwnerReference's JSON field order."""
    out: dict[str, Any] = {
        "apiVersion": ref.get("apiVersion", ""),
        "kind": ref.get("kind", ""),
        "name": ref.get("name", ""),
        "uid": ref.get("uid", ""),
    }
    for opt in ("controller", "blockOwnerDeletion"):
        if ref.get(opt) is not None:
            out[opt] = ref[opt]
    return out


def validate_owner_references(refs: Sequence[Mapping[str, Any]] | None, path: str = "metadata.ownerReferences") -> list[FieldError]:
    errs: list[FieldError] = []
    first_controller = ""
    for i, ref in enumerate(refs or []):
        p = f"{path}[{i}]"
        api_version = ref.get("apiVersion") or ""
        group = version = ""
        if not api_version:
            errs.append(required(f"{p}.apiVersion", "must not be empty"))
        else:
            try:
                group, version = parse_group_version(api_version)
                bad = not version
            except ValueError:
                bad = True
            if bad:
                errs.append(invalid(f"{p}.apiVersion", api_version, "must be <group>/<version> or <version>"))
        kind = ref.get("kind") or ""
        for key in ("kind", "name", "uid"):
            if not ref.get(key):
                errs.append(required(f"{p}.{key}", "must not be empty"))
        if (group, version, kind) in _BANNED_OWNERS:
            errs.append(invalid(p, _owner_ref_json(ref), f"{group}/{version}, Kind={kind} is disallowed from being an owner"))
        if ref.get("controller") is True:
            current = f"{kind}/{ref.get('name') or ''}"
            if first_controller:
                errs.append(
                    invalid(
                        path,
                        [_owner_ref_json(r) for r in refs or []],
                        "Only one reference can have Controller set to true. "
                        f'Found "true" in references for {first_controller} and {current}',
                    )
                )
            else:
                first_controller = current
    return errs


def validate_finalizers(finalizers: Sequence[str] | None, path: str = "metadata.finalizers") -> list[FieldError]:
    errs: list[FieldError] = []
    finalizers = list(finalizers or [])
    for name in finalizers:
        errs.extend(invalid(path, name, m) for m in is_qualified_name(name))
    if FINALIZER_ORPHAN in finalizers and FINALIZER_FOREGROUND in finalizers:
        errs.append(
            invalid(path, finalizers, f"finalizer {FINALIZER_ORPHAN} and {FINALIZER_FOREGROUND} cannot be both set")
        )
    return errs


def validate_kube_finalizer_names(finalizers: Sequence[str] | None, path: str = "metadata.finalizers") -> list[FieldError]:
    """Built-in kinds also require unprefixed finalizers to be standard ones."""
    return [
        invalid(f"{path}[{i}]", name, "name is neither a standard finalizer name nor is it fully qualified")
        for i, name in enumerate(finalizers or [])
        if "/" not in name and name not in STANDARD_FINALIZERS
    ]


def validate_field_manager(manager: str, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if _byte_len(manager) > FIELD_MANAGER_MAX_LENGTH:
        errs.append(too_long(path, FIELD_MANAGER_MAX_LENGTH))
    position = 0
    for ch in manager:
        if not ch.isprintable():
            shown = f"U+{ord(ch):04X}"
            errs.append(invalid(path, manager, f"invalid character {shown} (at position {position})"))
        position += _byte_len(ch)
    return errs


def validate_managed_fields(entries: Sequence[Mapping[str, Any]] | None, path: str = "metadata.managedFields") -> list[FieldError]:
    errs: list[FieldError] = []
    for i, entry in enumerate(entries or []):
        p = f"{path}[{i}]"
        operation = entry.get("operation") or ""
        if not operation:
            errs.append(required(f"{p}.operation", "must not be empty"))
        elif operation not in ("Apply", "Update"):
            errs.append(not_supported(f"{p}.operation", operation, ["Apply", "Update"]))
        fields_type = entry.get("fieldsType") or ""
        if fields_type and fields_type != "FieldsV1":
            errs.append(invalid(f"{p}.fieldsType", fields_type, "must be `FieldsV1`"))
        errs.extend(validate_field_manager(entry.get("manager") or "", f"{p}.manager"))
        if _byte_len(entry.get("subresource") or "") > MAX_SUBRESOURCE_NAME_LENGTH:
            errs.append(too_long(f"{p}.subresource", MAX_SUBRESOURCE_NAME_LENGTH))
    return errs


def validate_nonnegative(value: int, path: str) -> list[FieldError]:
    return [invalid(path, value, IS_NEGATIVE_MESSAGE)] if value < 0 else []


def validate_object_meta(
    meta: Mapping[str, Any] | None,
    namespaced: bool,
    name_validator: NameValidator = name_is_dns_subdomain,
    path: str = "metadata",
    *,
    kube_finalizers: bool = True,
) -> list[FieldError]:
    """ObjectMeta checks on create, in upstream's order.

    `kube_finalizers` adds the built-in kinds' extra finalizer rule
    (pkg/apis/core/validation); custom resources leave it off.
    """
    meta = meta or {}
    errs: list[FieldError] = []
    generate_name = meta.get("generateName") or ""
    name = meta.get("name") or ""
    if generate_name:
        errs.extend(invalid(f"{path}.generateName", generate_name, m) for m in name_validator(generate_name, True))
    if not name:
        errs.append(required(f"{path}.name", "name or generateName is required"))
    else:
        errs.extend(invalid(f"{path}.name", name, m) for m in name_validator(name, False))
    errs.extend(_common_meta(meta, namespaced, path))
    if kube_finalizers:
        errs.extend(validate_kube_finalizer_names(meta.get("finalizers"), f"{path}.finalizers"))
    return errs


def _common_meta(meta: Mapping[str, Any], namespaced: bool, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    namespace = meta.get("namespace") or ""
    if namespaced:
        if not namespace:
            errs.append(required(f"{path}.namespace"))
        else:
            errs.extend(invalid(f"{path}.namespace", namespace, m) for m in validate_namespace_name(namespace, False))
    elif namespace:
        errs.append(forbidden(f"{path}.namespace", "not allowed on this type"))
    errs.extend(validate_nonnegative(int(meta.get("generation") or 0), f"{path}.generation"))
    errs.extend(validate_labels(meta.get("labels"), f"{path}.labels"))
    errs.extend(validate_annotations(meta.get("annotations"), f"{path}.annotations"))
    errs.extend(validate_owner_references(meta.get("ownerReferences"), f"{path}.ownerReferences"))
    errs.extend(validate_finalizers(meta.get("finalizers"), f"{path}.finalizers"))
    errs.extend(validate_managed_fields(meta.get("managedFields"), f"{path}.managedFields"))
    return errs


def validate_immutable(new: Any, old: Any, path: str) -> list[FieldError]:
    """Upstream's ValidateImmutableField: the error carries the new value."""
    return [] if new == old else [invalid(path, new, FIELD_IMMUTABLE_MESSAGE)]


def validate_object_meta_update(
    new: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    path: str = "metadata",
    *,
    kube_finalizers: bool = True,
) -> list[FieldError]:
    """ObjectMeta checks on update (ValidateObjectMetaUpdate), in upstream's order."""
    new = new or {}
    old = old or {}
    errs: list[FieldError] = []
    if old.get("deletionTimestamp") is not None:
        extra = sorted(set(new.get("finalizers") or []) - set(old.get("finalizers") or []))
        if extra:
            shown = "[]string{" + ", ".join(go_quote(f) for f in extra) + "}"
            errs.append(
                forbidden(
                    f"{path}.finalizers",
                    f"no new finalizers can be added if the object is being deleted, found new finalizers {shown}",
                )
            )
    if not new.get("resourceVersion"):
        errs.append(invalid(f"{path}.resourceVersion", new.get("resourceVersion") or "", "must be specified for an update"))
    new_gen = int(new.get("generation") or 0)
    errs.extend(validate_nonnegative(new_gen, f"{path}.generation"))
    if new_gen < int(old.get("generation") or 0):
        errs.append(invalid(f"{path}.generation", new_gen, "must not be decremented"))
    for key, default in (
        ("name", ""),
        ("namespace", ""),
        ("uid", ""),
        ("creationTimestamp", None),
        ("deletionTimestamp", None),
        ("deletionGracePeriodSeconds", None),
    ):
        if default is None:  # pointer-like fields: absent differs from 0
            errs.extend(validate_immutable(new.get(key), old.get(key), f"{path}.{key}"))
        else:
            errs.extend(validate_immutable(new.get(key) or default, old.get(key) or default, f"{path}.{key}"))
    errs.extend(validate_labels(new.get("labels"), f"{path}.labels"))
    errs.extend(validate_annotations(new.get("annotations"), f"{path}.annotations"))
    errs.extend(validate_owner_references(new.get("ownerReferences"), f"{path}.ownerReferences"))
    errs.extend(validate_managed_fields(new.get("managedFields"), f"{path}.managedFields"))
    if kube_finalizers:
        errs.extend(validate_kube_finalizer_names(new.get("finalizers"), f"{path}.finalizers"))
    return errs


def validate_label_selector(selector: Mapping[str, Any] | None, path: str) -> list[FieldError]:
    """metav1.LabelSelector checks (ValidateLabelSelector with default options)."""
    errs: list[FieldError] = []
    if selector is None:
        return errs
    errs.extend(validate_labels(selector.get("matchLabels"), f"{path}.matchLabels"))
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        p = f"{path}.matchExpressions[{i}]"
        operator = expr.get("operator") or ""
        values = expr.get("values") or []
        if operator in ("In", "NotIn"):
            if not values:
                errs.append(required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errs.append(forbidden(f"{p}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(invalid(f"{p}.operator", operator, "not a valid selector operator"))
        errs.extend(validate_label_name(expr.get("key") or "", f"{p}.key"))
        for j, value in enumerate(values):
            errs.extend(invalid(f"{p}.values[{j}]", value, m) for m in is_valid_label_value(value))
    return errs
