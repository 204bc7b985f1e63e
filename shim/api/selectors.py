"""Label and field selectors as kube-apiserver parses and applies them.

`?labelSelector=` and `?fieldSelector=` reach the server as text; a bad
one is answered with a 400 whose message is the parser's error, which
kubectl prints verbatim, so parsing mirrors upstream's lexer/parser
(k8s.io/apimachinery/pkg/labels and pkg/fields) including its messages.
Selectors embedded in objects (deployments, replicasets) use the
`metav1.LabelSelector` form; services use a plain map (`selector_from_set`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from shim.api.validation import FieldError, aggregate_message, go_quote, invalid, is_qualified_name, is_valid_label_value, not_supported


class SelectorError(ValueError):
    """A selector upstream would reject; `message` is upstream's text."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# ---------------------------------------------------------------------------
# Label selectors
# ---------------------------------------------------------------------------

# Operators (selection.Operator values).
DOES_NOT_EXIST = "!"
EQUALS = "="
DOUBLE_EQUALS = "=="
IN = "in"
NOT_EQUALS = "!="
NOT_IN = "notin"
EXISTS = "exists"
GREATER_THAN = "gt"
LESS_THAN = "lt"

_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_VALID_OPERATORS = _BINARY_OPERATORS + (EXISTS, DOES_NOT_EXIST)

_INT64_RE = re.compile(r"[+-]?[0-9]+")


def _parse_int64(text: str) -> int | None:
    """strconv.ParseInt(text, 10, 64), or None where Go reports an error."""
    if not _INT64_RE.fullmatch(text):
        return None
    value = int(text)
    return value if -(1 << 63) <= value < (1 << 63) else None


@dataclass(frozen=True)
class Requirement:
    """One `key op values` term; values keep the order they were given in."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GREATER_THAN, LESS_THAN):
            if self.key not in labels or len(self.values) != 1:
                return False
            have = _parse_int64(labels[self.key])
            want = _parse_int64(self.values[0])
            if have is None or want is None:
                return False
            return have > want if op == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        symbol = {EQUALS: "=", DOUBLE_EQUALS: "==", NOT_EQUALS: "!=", IN: " in ", NOT_IN: " notin ",
                  GREATER_THAN: ">", LESS_THAN: "<"}.get(op, "")
        # Output lists values sorted, whatever order they were given in.
        values = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if op in (IN, NOT_IN):
            values = f"({values})"
        return f"{self.key}{symbol}{values}"


def new_requirement(key: str, operator: str, values: Iterable[str], path: str | None = None) -> Requirement:
    """Build a checked Requirement (labels.NewRequirement), raising SelectorError.

    `path` prefixes field paths in messages; upstream's string parser passes
    none, so its messages start with `key:` / `values[0]...`.
    """
    vals = list(values)
    errs: list[FieldError] = []
    base = f"{path}." if path else ""
    key_errs = is_qualified_name(key)
    if key_errs:
        errs.append(invalid(f"{base}key", key, "; ".join(key_errs)))
    value_path = f"{base}values"
    shown: Any = vals if vals else None  # a nil Go slice renders as null
    if operator in (IN, NOT_IN):
        if not vals:
            errs.append(invalid(value_path, shown, "for 'in', 'notin' operators, values set can't be empty"))
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(vals) != 1:
            errs.append(invalid(value_path, shown, "exact-match compatibility requires one single value"))
    elif operator in (EXISTS, DOES_NOT_EXIST):
        if vals:
            errs.append(invalid(value_path, vals, "values set must be empty for exists and does not exist"))
    elif operator in (GREATER_THAN, LESS_THAN):
        if len(vals) != 1:
            errs.append(invalid(value_path, shown, "for 'Gt', 'Lt' operators, exactly one value is required"))
        for i, v in enumerate(vals):
            if _parse_int64(v) is None:
                errs.append(invalid(f"{value_path}[{i}]", v, "for 'Gt', 'Lt' operators, the value must be an integer"))
    else:
        errs.append(not_supported(f"{base}operator", operator, _VALID_OPERATORS))
    for i, v in enumerate(vals):
        value_errs = is_valid_label_value(v)
        if value_errs:
            errs.append(invalid(f"{value_path}[{i}][{key}]", v, "; ".join(value_errs)))
    if errs:
        raise SelectorError(aggregate_message(errs))
    return Requirement(key, operator, tuple(vals))


@dataclass(frozen=True)
class LabelSelector:
    """AND of requirements, kept sorted by key like upstream.

    `nothing` marks upstream's labels.Nothing() (what a nil metav1 selector
    becomes): it matches no object and is not empty.
    """

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        """True when the selector places no restriction (selects everything)."""
        return not self.nothing and not self.requirements

    def requires_exact_match(self, key: str) -> str | None:
        """The single value `key` must have, if the first term on `key` pins one."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def add(self, *reqs: Requirement) -> "LabelSelector":
        if self.nothing:
            return self
        return LabelSelector(tuple(sorted(self.requirements + reqs, key=lambda r: r.key)))

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)


def selector_from_set(labels: Mapping[str, str] | None, *, validate: bool = False) -> LabelSelector:
    """Selector matching exactly the given map (a Service's `spec.selector`).

    None and {} select everything.  Upstream does not validate here unless
    asked (ValidatedSelectorFromSet); `validate=True` raises SelectorError.
    """
    if not labels:
        return EVERYTHING
    reqs = []
    for key in sorted(labels):
        if validate:
            reqs.append(new_requirement(key, EQUALS, [labels[key]]))
        else:
            reqs.append(Requirement(key, EQUALS, (labels[key],)))
    return LabelSelector(tuple(reqs))


_OBJECT_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def label_selector_from_object(obj: Mapping[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: None selects nothing, {} selects everything."""
    if obj is None:
        return NOTHING
    match_labels = obj.get("matchLabels") or {}
    expressions = obj.get("matchExpressions") or []
    if not match_labels and not expressions:
        return EVERYTHING
    reqs = [new_requirement(k, EQUALS, [v]) for k, v in match_labels.items()]
    for expr in expressions:
        operator = expr.get("operator") or ""
        op = _OBJECT_OPERATORS.get(operator)
        if op is None:
            raise SelectorError(f"{go_quote(operator)} is not a valid label selector operator")
        reqs.append(new_requirement(expr.get("key") or "", op, expr.get("values") or []))
    return LabelSelector().add(*reqs)


# --- the query-string parser ------------------------------------------------

_ERROR, _END, _CLOSE_PAR, _COMMA, _NOT, _DOUBLE_EQ, _EQ, _GT, _IDENT, _IN, _LT, _NOT_EQ, _NOT_IN, _OPEN_PAR = range(14)

_LITERAL_TOKENS = {
    ")": _CLOSE_PAR,
    ",": _COMMA,
    "!": _NOT,
    "==": _DOUBLE_EQ,
    "=": _EQ,
    ">": _GT,
    "in": _IN,
    "<": _LT,
    "!=": _NOT_EQ,
    "notin": _NOT_IN,
    "(": _OPEN_PAR,
}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_TOKEN_OPERATOR = {_IN: IN, _EQ: EQUALS, _DOUBLE_EQ: DOUBLE_EQUALS, _GT: GREATER_THAN, _LT: LESS_THAN,
                   _NOT_IN: NOT_IN, _NOT_EQ: NOT_EQUALS}


def _lex(text: str) -> list[tuple[int, str]]:
    """Tokenize like upstream's Lexer; a NUL character ends the input as the end of string does."""
    tokens: list[tuple[int, str]] = []
    pos, n = 0, len(text)

    def read() -> str:
        nonlocal pos
        if pos < n:
            pos += 1
            return text[pos - 1]
        return "\0"

    while True:
        ch = read()
        while ch in _WHITESPACE:
            ch = read()
        if ch == "\0":
            tokens.append((_END, ""))
            return tokens
        if ch in _SPECIAL:
            # Longest run of special characters that still forms a known token
            # (every single special character is one, so this never fails).
            buf, token = ch, (_LITERAL_TOKENS[ch], ch)
            while True:
                ch = read()
                if ch == "\0":
                    break
                if ch in _SPECIAL and (buf + ch) in _LITERAL_TOKENS:
                    buf += ch
                    token = (_LITERAL_TOKENS[buf], buf)
                    continue
                pos -= 1
                break
            tokens.append(token)
            continue
        buf = ch
        while True:
            ch = read()
            if ch == "\0":
                break
            if ch in _SPECIAL or ch in _WHITESPACE:
                pos -= 1
                break
            buf += ch
        tokens.append((_LITERAL_TOKENS.get(buf, _IDENT), buf))


class _Parser:
    """Recursive-descent parser over the scanned tokens (upstream's grammar)."""

    def __init__(self, text: str):
        self.items = _lex(text)
        self.position = 0

    def _token(self, index: int, values: bool) -> tuple[int, str]:
        tok, lit = self.items[index]
        if values and tok in (_IN, _NOT_IN):
            tok = _IDENT
        return tok, lit

    def lookahead(self, values: bool = True) -> tuple[int, str]:
        return self._token(self.position, values)

    def consume(self, values: bool = True) -> tuple[int, str]:
        self.position += 1
        return self._token(self.position - 1, values)

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok in (_IDENT, _NOT):
                try:
                    reqs.append(self.parse_requirement())
                except SelectorError as e:
                    raise SelectorError(f"unable to parse requirement: {e.message}") from None
                tok, lit = self.consume()
                if tok == _END:
                    return reqs
                if tok == _COMMA:
                    tok2, lit2 = self.lookahead()
                    if tok2 not in (_IDENT, _NOT):
                        raise SelectorError(f"found '{lit2}', expected: identifier after ','")
                else:
                    raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            elif tok == _END:
                return reqs
            else:
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def parse_requirement(self) -> Requirement:
        key, operator = self.parse_key_and_infer_operator()
        if operator in (EXISTS, DOES_NOT_EXIST):
            return new_requirement(key, operator, [])
        operator = self.parse_operator()
        if operator in (IN, NOT_IN):
            values = self.parse_values()
        else:
            values = self.parse_exact_value()
        return new_requirement(key, operator, sorted(values))

    def parse_key_and_infer_operator(self) -> tuple[str, str]:
        operator = ""
        tok, lit = self.consume()
        if tok == _NOT:
            operator = DOES_NOT_EXIST
            tok, lit = self.consume()
        if tok != _IDENT:
            raise SelectorError(f"found '{lit}', expected: identifier")
        key_errs = is_qualified_name(lit)
        if key_errs:
            # Upstream validates the key against a nil field path here.
            raise SelectorError(invalid("<nil>", lit, "; ".join(key_errs)).message())
        if self.lookahead()[0] in (_END, _COMMA) and operator != DOES_NOT_EXIST:
            operator = EXISTS
        return lit, operator

    def parse_operator(self) -> str:
        tok, lit = self.consume(values=False)
        if tok in _TOKEN_OPERATOR:
            return _TOKEN_OPERATOR[tok]
        raise SelectorError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")

    def parse_values(self) -> set[str]:
        tok, lit = self.consume()
        if tok != _OPEN_PAR:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok in (_IDENT, _COMMA):
            values = self.parse_identifiers_list()
            if self.consume()[0] != _CLOSE_PAR:
                raise SelectorError(f"found '{lit}', expected: ')'")
            return values
        if tok == _CLOSE_PAR:
            self.consume()
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def parse_identifiers_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok == _IDENT:
                values.add(lit)
                tok2, lit2 = self.lookahead()
                if tok2 == _COMMA:
                    continue
                if tok2 == _CLOSE_PAR:
                    return values
                raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _COMMA:
                # Empty entries ("(,a" / "a,,b" / "a,)") stand for the empty value.
                if not values:
                    values.add("")
                tok2 = self.lookahead()[0]
                if tok2 == _CLOSE_PAR:
                    values.add("")
                    return values
                if tok2 == _COMMA:
                    values.add("")
                continue
            raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def parse_exact_value(self) -> set[str]:
        if self.lookahead()[0] in (_END, _COMMA):
            return {""}
        tok, lit = self.consume()
        if tok == _IDENT:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse `?labelSelector=` text (labels.Parse); raises SelectorError."""
    reqs = _Parser(text).parse()
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


# ---------------------------------------------------------------------------
# Field selectors
# ---------------------------------------------------------------------------


def unsupported_field_message(field_name: str) -> str:
    """Message of kinds with their own field list (pods, nodes, services, ...)."""
    return f"field label not supported: {field_name}"


def unknown_field_selector_message(field_name: str) -> str:
    """Message of kinds that only allow metadata.name / metadata.namespace (the default)."""
    return f'{go_quote(field_name)} is not a known field selector: only "metadata.name", "metadata.namespace"'


def escape_field_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_field_value(value: str) -> str:
    """Undo `\\` escaping of `\\`, `,` and `=`; raise SelectorError like upstream."""
    if not any(c in value for c in "\\,="):
        return value
    out: list[str] = []
    in_slash = False
    for ch in value:
        if in_slash:
            if ch not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            # Upstream prints the rune with %v, i.e. as its code point number.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if in_slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # "=" (also for "==") or "!="
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        have = fields.get(self.field, "")
        return have == self.value if self.operator == EQUALS else have != self.value

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{escape_field_value(self.value)}"


@dataclass(frozen=True)
class FieldSelector:
    """AND of field terms in upstream's (sorted-text) order; a missing field reads as ""."""

    requirements: tuple[FieldRequirement, ...] = ()
    nothing: bool = False

    def matches(self, fields: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        fields = fields or {}
        return all(r.matches(fields) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.nothing and not self.requirements

    def exact(self, field_name: str) -> str | None:
        """The value the selector pins `field_name` to with `=`, if any (RequiresExactMatch)."""
        for r in self.requirements:
            if r.field == field_name and r.operator == EQUALS:
                return r.value
        return None

    def fields(self) -> list[str]:
        """Distinct field names used, in order, for the caller's per-kind check."""
        seen: list[str] = []
        for r in self.requirements:
            if r.field not in seen:
                seen.append(r.field)
        return seen

    def transform(self, fn: Callable[[str, str], tuple[str, str]]) -> "FieldSelector":
        """Rewrite each term like upstream's Transform (fn may raise SelectorError).

        A term mapped to an empty field and value is dropped.
        """
        out = []
        for r in self.requirements:
            name, value = fn(r.field, r.value)
            if name or value:
                out.append(FieldRequirement(name, r.operator, value))
        return FieldSelector(tuple(out), self.nothing)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


FIELDS_EVERYTHING = FieldSelector()


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not backslash-escaped."""
    if not text:
        return []
    terms, start, in_slash = [], 0, False
    for i, ch in enumerate(text):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def parse_field_selector(text: str) -> FieldSelector:
    """Parse `?fieldSelector=` text (fields.ParseSelector); raises SelectorError.

    Terms are taken in sorted order, and field names are not trimmed.
    """
    reqs = []
    for part in sorted(_split_terms(text)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        lhs, op, rhs = split
        value = unescape_field_value(rhs)
        if not lhs and not value:
            continue  # upstream's parse-time Transform drops an empty term
        reqs.append(FieldRequirement(lhs, NOT_EQUALS if op == "!=" else EQUALS, value))
    return FieldSelector(tuple(reqs))


def field_selector_from_set(fields: Mapping[str, str] | None) -> FieldSelector:
    if not fields:
        return FIELDS_EVERYTHING
    return FieldSelector(tuple(FieldRequirement(k, EQUALS, fields[k]) for k in sorted(fields)))
