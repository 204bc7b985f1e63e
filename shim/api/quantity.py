"""Kubernetes resource quantities (`100m`, `1Gi`, `1e3`) with upstream's semantics.

The server must accept exactly the texts kube-apiserver accepts, store the
same exact amounts, and print them back in the same canonical form (a
client that sends `1.5` CPU reads back `1500m`).  Upstream keeps a quantity
either as a small scaled int64 or as an arbitrary-precision decimal rounded
up to nano units, and a few observable results (rounding of negative
values, overflow in MilliValue/Value, which texts are echoed verbatim)
depend on which of the two a text lands in, so `Quantity` records that
choice alongside the exact amount.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

_SPLIT_RE_TEXT = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
ERR_FORMAT_WRONG = f"quantities must match the regular expression '{_SPLIT_RE_TEXT}'"
ERR_NUMERIC = "unable to parse numeric part of quantity"
ERR_SUFFIX = "unable to parse quantity's suffix"
# Ours, not upstream's: refuse amounts whose exact value would need a
# gigantic integer (upstream either stores them lazily or exhausts memory).
ERR_TOO_LARGE = "quantity exponent is too large to handle"
_MAX_MATERIALIZED_EXPONENT = 100_000

_INT64_MAX = (1 << 63) - 1
_INT64_MIN = -(1 << 63)
_DIGITS = "0123456789"
_SUFFIX_LETTERS = "eEinumkKMGTP"

_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXPONENT = {e: s for s, e in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_POWER = {e // 10: s for s, e in _BINARY_SUFFIXES.items()}


def _wrap64(v: int) -> int:
    """Two's-complement int64 wrap-around, as Go arithmetic does."""
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def _wrap32(v: int) -> int:
    v &= (1 << 32) - 1
    return v - (1 << 32) if v >= 1 << 31 else v


def _fits64(v: int) -> bool:
    return _INT64_MIN <= v <= _INT64_MAX


def _go_div(a: int, b: int) -> tuple[int, int]:
    """Go's truncating integer division and remainder."""
    q = abs(a) // abs(b)
    if (a < 0) != (b < 0):
        q = -q
    return q, a - q * b


@dataclass(frozen=True)
class Quantity:
    """A parsed quantity.

    Exactly one representation is used, like upstream:
    - scaled int64: amount = `mantissa * 10**exponent` (`decimal=False`);
    - decimal: amount = `mantissa / 10**exponent`, i.e. `exponent` is the
      number of fractional digits (`decimal=True`).
    `text` is the original text when upstream echoes it back unchanged.
    """

    mantissa: int
    exponent: int
    decimal: bool
    format: str
    text: str | None = None

    # -- construction --------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> "Quantity":
        """Parse like resource.ParseQuantity; raises ValueError with upstream's message."""
        return _parse(text)

    @classmethod
    def from_amount(cls, amount: Fraction | int, fmt: str = DECIMAL_SI) -> "Quantity":
        """A quantity for a computed amount, rounded up (away from zero) to nano units."""
        amount = Fraction(amount)
        scaled = amount * 10**9
        magnitude = -(-abs(scaled.numerator) // scaled.denominator)
        return cls(magnitude if amount >= 0 else -magnitude, 9, True, fmt)

    # -- values ----------------------------------------------------------------

    @property
    def amount(self) -> Fraction:
        """The exact amount (ValueError if it would be astronomically large)."""
        power = -self.exponent if self.decimal else self.exponent
        if abs(power) > _MAX_MATERIALIZED_EXPONENT and self.mantissa:
            raise ValueError(ERR_TOO_LARGE)
        return Fraction(self.mantissa) * Fraction(10) ** power

    def is_zero(self) -> bool:
        return self.mantissa == 0

    def sign(self) -> int:
        return (self.mantissa > 0) - (self.mantissa < 0)

    def scaled_value(self, scale: int) -> int:
        """Upstream's ScaledValue: the amount in units of 10**scale as an int64.

        Fractions round away from zero for scaled-int64 quantities but
        towards +1 for decimal ones (upstream truncates, then adds one);
        overflow gives 0 or wraps, as upstream does.
        """
        if not self.decimal:
            value, own = self.mantissa, self.exponent
            if own < scale:
                digits = scale - own
                if digits > 19 or not value:
                    return (1 if value > 0 else -1) if value else 0
                q, r = divmod(abs(value), 10**digits)
                q += 1 if r else 0
                return q if value > 0 else -q
            return _positive_scale(value, _wrap32(own - scale))
        unscaled, dif = self.mantissa, self.exponent + scale
        if unscaled == 0:
            return 0
        if dif == 0:
            return _wrap64(unscaled)
        if dif < 0:
            factor = 10 ** (-dif) if -dif <= 18 else _INT64_MIN
            return _wrap64(_wrap64(unscaled) * factor)
        if unscaled < _INT64_MAX and dif < 19:
            q, r = _go_div(_wrap64(unscaled), 10**dif)
            return _wrap64(q + 1) if r else q
        q, r = divmod(unscaled, 10**dif)
        return _wrap64(_wrap64(q) + (1 if r else 0))

    def value(self) -> int:
        """Upstream's Value(): whole units, fractions rounded up."""
        return self.scaled_value(0)

    def milli_value(self) -> int:
        """Upstream's MilliValue(): thousandths, fractions rounded up."""
        return self.scaled_value(-3)

    # -- printing ------------------------------------------------------------

    def __str__(self) -> str:
        if self.text:
            return self.text
        return self.canonical()

    def canonical(self) -> str:
        """The canonical form upstream serializes when it has no echoed text."""
        if self.mantissa == 0:
            return "0"
        fmt = self.format
        if fmt == BINARY_SI:
            if self._within_1024() or not self._is_integer():
                fmt = DECIMAL_SI
            else:
                number, power = _strip_factor(self._integer_value(), 1024)
                return f"{number}{_BINARY_BY_POWER.get(power, '')}"
        number, power = _strip_factor(self.mantissa, 10)
        power += -self.exponent if self.decimal else self.exponent
        shift = power % 3
        number, power = number * 10**shift, power - shift
        if fmt == DECIMAL_EXPONENT:
            return f"{number}e{power}" if power else str(number)
        # Upstream has no suffix beyond E (10**18) and then prints none at all.
        return f"{number}{_DECIMAL_BY_EXPONENT.get(power, '')}"

    def _within_1024(self) -> bool:
        if self.decimal:
            return abs(self.mantissa) < 1024 * 10**self.exponent if self.exponent >= 0 else False
        if self.exponent > 4:
            return False
        return abs(self.amount) < 1024

    def _is_integer(self) -> bool:
        if not self.decimal:
            return self.exponent >= 0
        return self.exponent <= 0 or self.mantissa % 10**self.exponent == 0

    def _integer_value(self) -> int:
        amount = self.amount
        return amount.numerator // amount.denominator


def _positive_scale(value: int, shift: int) -> int:
    """Upstream's positiveScaleInt64 as ScaledValue uses it.

    Shifts of 1, 2, 3, 6 and 9 digits multiply in one step and keep the
    wrapped product on overflow; other shifts go digit by digit and give 0.
    """
    if shift == 0:
        return value
    if shift in (1, 2, 3, 6, 9):
        if value in (0, 1):
            return value * 10**shift
        if value == _INT64_MIN:
            return 0
        return _wrap64(value * 10**shift)
    for _ in range(max(shift, 0)):
        if value in (0, 1):
            value *= 10
        elif value == _INT64_MIN or not _fits64(value * 10):
            return 0
        else:
            value *= 10
        if value == 0:
            return 0
    return value


def _strip_factor(value: int, factor: int) -> tuple[int, int]:
    times = 0
    negative = value < 0
    value = abs(value)
    while value and value % factor == 0:
        value //= factor
        times += 1
    return (-value if negative else value), times


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------


def _split(text: str) -> tuple[bool, str, str, str, str]:
    """Split into sign, numeric text, integer digits, fraction digits and suffix."""
    positive, pos, end = True, 0, len(text)
    if pos < end and text[0] in "+-":
        positive = text[0] == "+"
        pos += 1
    while True:  # leading zeros do not count as digits
        if pos >= end:
            return positive, "0", "0", "", ""
        if text[pos] != "0":
            break
        pos += 1
    i = pos
    while i < end and text[i] in _DIGITS:
        i += 1
    if i >= end:
        return positive, text, text[pos:], "", ""
    num, pos = text[pos:i] or "0", i
    denom = ""
    if text[pos] == ".":
        pos += 1
        i = pos
        while i < end and text[i] in _DIGITS:
            i += 1
        if i >= end:
            return positive, text, num, text[pos:], ""
        denom, pos = text[pos:i], i
    value = text[:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_LETTERS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise ValueError(ERR_FORMAT_WRONG)
    return positive, value, num, denom, text[suffix_start:]


def _interpret_suffix(suffix: str) -> tuple[int, int, str]:
    """(base, exponent, format) for a suffix, or ValueError."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        rest = suffix[1:]
        sign_less = rest[1:] if rest[:1] in ("+", "-") else rest
        if sign_less and all(c in _DIGITS for c in sign_less):
            parsed = int(rest)
            if _fits64(parsed):
                return 10, _wrap32(parsed), DECIMAL_EXPONENT
    raise ValueError(ERR_SUFFIX)


def _parse_decimal_text(value: str) -> tuple[int, int]:
    """inf.Dec's SetString for `[+-]digits[.digits]`: (unscaled, fractional digits)."""
    body = value[1:] if value[:1] in ("+", "-") else value
    whole, _, frac = body.partition(".")
    if not (whole + frac):
        raise ValueError(ERR_NUMERIC)
    unscaled = int(whole + frac)
    return (-unscaled if value.startswith("-") else unscaled), len(frac) if "." in body else 0


def _parse(text: str) -> Quantity:
    if not isinstance(text, str) or not text:
        raise ValueError(ERR_FORMAT_WRONG)
    if text == "0":
        return Quantity(0, 0, False, DECIMAL_SI, "0")
    positive, value, num, denom, suffix = _split(text)
    base, exponent, fmt = _interpret_suffix(suffix)

    mantissa = 1
    if fmt == BINARY_SI:
        scale = 0
        if exponent >= 0 and not denom:
            mantissa = 1 << exponent
            precision = 15 - len(num) - exponent * 3 // 10 - 1
        else:
            precision = -1
    else:
        scale = exponent
        precision = 18 - (len(num) + len(denom))

    if precision >= 0:
        scale = _wrap32(scale - len(denom))
        if scale >= -9:
            shifted = num + denom
            digits = int(shifted)
            result = digits * mantissa
            if _fits64(result):
                if not positive:
                    result = -result
                keep = None
                if fmt == BINARY_SI:
                    if exponent % 10 == 0 and digits & 7:
                        keep = text
                elif scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0":
                    keep = text
                return Quantity(result, scale, False, fmt, keep)

    unscaled, frac_digits = _parse_decimal_text(value)
    if base == 10:
        frac_digits = _wrap32(frac_digits - exponent)
    else:
        unscaled <<= exponent
    negative = unscaled < 0
    magnitude = abs(unscaled)
    if magnitude:
        magnitude, frac_digits = _round_up_to_nano(magnitude, frac_digits), 9
    if fmt == BINARY_SI:
        if magnitude > _INT64_MAX * 10**frac_digits:
            magnitude, frac_digits = _INT64_MAX, 0
        if 0 < magnitude < 10**frac_digits:
            fmt = DECIMAL_SI
    return Quantity(-magnitude if negative else magnitude, frac_digits, True, fmt)


def _round_up_to_nano(magnitude: int, frac_digits: int) -> int:
    """Re-express a non-negative decimal with 9 fractional digits, rounding up."""
    if frac_digits <= 9:
        if 9 - frac_digits > _MAX_MATERIALIZED_EXPONENT:
            raise ValueError(ERR_TOO_LARGE)
        return magnitude * 10 ** (9 - frac_digits)
    drop = frac_digits - 9
    if drop >= len(str(magnitude)):
        return 1  # a non-zero amount below one nano unit
    q, r = divmod(magnitude, 10**drop)
    return q + 1 if r else q


# ---------------------------------------------------------------------------
# Convenience functions over text.
# ---------------------------------------------------------------------------


def _as_quantity(q: "str | Quantity") -> Quantity:
    return q if isinstance(q, Quantity) else _parse(q)


def parse_quantity(text: str) -> Fraction:
    """The exact amount a quantity text denotes; ValueError with upstream's message."""
    return _parse(text).amount


def milli_value(q: "str | Quantity") -> int:
    return _as_quantity(q).milli_value()


def value(q: "str | Quantity") -> int:
    return _as_quantity(q).value()


def quantity_from_json(raw: "str | int | float") -> Quantity:
    """Parse a quantity as it appears in a decoded JSON object.

    Upstream trims surrounding space from the JSON string; a JSON number is
    parsed from its text, which for floats we can only approximate by repr.
    """
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise ValueError(ERR_FORMAT_WRONG)
    return _parse(raw.strip() if isinstance(raw, str) else repr(raw))


def format_quantity(q: "str | Quantity | Fraction | int", fmt: str = DECIMAL_SI) -> str:
    """How upstream serializes a quantity: text or Quantity as parsed, numbers in `fmt`."""
    if isinstance(q, (str, Quantity)):
        return str(_as_quantity(q))
    return str(Quantity.from_amount(q, fmt))
