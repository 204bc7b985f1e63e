"""Quantity parsing, rounding and printing against upstream's observed behaviour.

The tables were produced by running k8s.io/apimachinery v0.37.0's
resource.ParseQuantity, String(), MilliValue() and Value() on each text;
they are facts about upstream, including its odd corners (int64 wrap-around
in MilliValue, texts echoed verbatim, no suffix above E).
"""

from fractions import Fraction

import pytest

from shim.api.quantity import (
    BINARY_SI,
    DECIMAL_EXPONENT,
    DECIMAL_SI,
    ERR_FORMAT_WRONG,
    ERR_TOO_LARGE,
    Quantity,
    format_quantity,
    milli_value,
    parse_quantity,
    quantity_from_json,
    value,
)

FORMAT_WRONG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
SUFFIX = "unable to parse quantity's suffix"
NUMERIC = "unable to parse numeric part of quantity"

# (text, String(), MilliValue(), Value(), Format)
QUANTITY_CASES = [
    ('Ki', '0', 0, 0, 'BinarySI'),  # no digits at all still parses, as zero
    ('0', '0', 0, 0, 'DecimalSI'),
    ('1', '1', 1000, 1, 'DecimalSI'),
    ('100m', '100m', 100, 1, 'DecimalSI'),
    ('1Gi', '1Gi', 1073741824000, 1073741824, 'BinarySI'),
    ('2', '2', 2000, 2, 'DecimalSI'),
    ('1e3', '1e3', 1000000, 1000, 'DecimalExponent'),
    ('500Mi', '500Mi', 524288000000, 524288000, 'BinarySI'),
    ('1.5', '1500m', 1500, 2, 'DecimalSI'),
    ('1.5Gi', '1536Mi', 1610612736000, 1610612736, 'BinarySI'),
    ('0.5Gi', '512Mi', 536870912000, 536870912, 'BinarySI'),
    ('0.5Ki', '512', 512000, 512, 'BinarySI'),
    ('-1', '-1', -1000, -1, 'DecimalSI'),
    ('+1', '+1', 1000, 1, 'DecimalSI'),
    ('01', '01', 1000, 1, 'DecimalSI'),
    ('0.1', '100m', 100, 1, 'DecimalSI'),
    ('.5', '500m', 500, 1, 'DecimalSI'),
    ('.', '0', 0, 0, 'DecimalSI'),
    ('5.', '5.', 5000, 5, 'DecimalSI'),
    ('+', '0', 0, 0, 'DecimalSI'),
    ('1000', '1k', 1000000, 1000, 'DecimalSI'),
    ('1000m', '1', 1000, 1, 'DecimalSI'),
    ('1001m', '1001m', 1001, 2, 'DecimalSI'),
    ('1.001', '1.001', 1001, 2, 'DecimalSI'),
    ('0.001', '1m', 1, 1, 'DecimalSI'),
    ('0.0001', '100u', 1, 1, 'DecimalSI'),
    ('1n', '1n', 1, 1, 'DecimalSI'),
    ('1u', '1u', 1, 1, 'DecimalSI'),
    ('1m', '1m', 1, 1, 'DecimalSI'),
    ('1k', '1k', 1000000, 1000, 'DecimalSI'),
    ('1M', '1M', 1000000000, 1000000, 'DecimalSI'),
    ('1G', '1G', 1000000000000, 1000000000, 'DecimalSI'),
    ('1T', '1T', 1000000000000000, 1000000000000, 'DecimalSI'),
    ('1P', '1P', 1000000000000000000, 1000000000000000, 'DecimalSI'),
    ('1E', '1E', 0, 1000000000000000000, 'DecimalSI'),
    ('1Ki', '1Ki', 1024000, 1024, 'BinarySI'),
    ('8Ki', '8Ki', 8192000, 8192, 'BinarySI'),
    ('1024Ki', '1Mi', 1048576000, 1048576, 'BinarySI'),
    ('1025Ki', '1025Ki', 1049600000, 1049600, 'BinarySI'),
    ('1Mi', '1Mi', 1048576000, 1048576, 'BinarySI'),
    ('1Ti', '1Ti', 1099511627776000, 1099511627776, 'BinarySI'),
    ('1Pi', '1Pi', 1125899906842624000, 1125899906842624, 'BinarySI'),
    ('1Ei', '1Ei', -9223372036854775808, 1152921504606846976, 'BinarySI'),
    ('8Ei', '9223372036854775807', -1000, 9223372036854775807, 'BinarySI'),
    ('12e6', '12e6', 12000000000, 12000000, 'DecimalExponent'),
    ('12M', '12M', 12000000000, 12000000, 'DecimalSI'),
    ('12Mi', '12Mi', 12582912000, 12582912, 'BinarySI'),
    ('1e-3', '1e-3', 1, 1, 'DecimalExponent'),
    ('1E3', '1E3', 1000000, 1000, 'DecimalExponent'),
    ('1e+3', '1e+3', 1000000, 1000, 'DecimalExponent'),
    ('1e-9', '1e-9', 1, 1, 'DecimalExponent'),
    ('1e-10', '1e-9', 1, 1, 'DecimalExponent'),
    ('5e-10', '1e-9', 1, 1, 'DecimalExponent'),
    ('-5e-10', '-1e-9', 1, 1, 'DecimalExponent'),
    ('-0.0000000001', '-1n', 1, 1, 'DecimalSI'),
    ('0.0000000001', '1n', 1, 1, 'DecimalSI'),
    ('1000E', '1', 0, 0, 'DecimalSI'),
    ('1e21', '1e21', 0, 0, 'DecimalExponent'),
    ('1e2000', '100e1998', 0, 0, 'DecimalExponent'),
    ('+.5e-20', '1e-9', 1, 1, 'DecimalExponent'),
    ('0e-20', '0', 0, 0, 'DecimalExponent'),
    ('-1.5', '-1500m', -1500, -2, 'DecimalSI'),
    ('-1.5Ki', '-1536', -1536000, -1536, 'BinarySI'),
    ('-1500m', '-1500m', -1500, -2, 'DecimalSI'),
    ('1.5m', '1500u', 2, 1, 'DecimalSI'),
    ('1.23456789e3', '1234567890e-6', 1234568, 1235, 'DecimalExponent'),
    ('1.0000000001', '1000000001n', 1001, 2, 'DecimalSI'),
    ('999999999n', '999999999n', 1000, 1, 'DecimalSI'),
    ('1000000000n', '1', 1000, 1, 'DecimalSI'),
    ('2048', '2048', 2048000, 2048, 'DecimalSI'),
    ('2048Mi', '2Gi', 2147483648000, 2147483648, 'BinarySI'),
    ('1073741824', '1073741824', 1073741824000, 1073741824, 'DecimalSI'),
    ('3.14159', '3141590u', 3142, 4, 'DecimalSI'),
    ('9223372036854775807', '9223372036854775807', -1000, 9223372036854775807, 'DecimalSI'),
    ('9223372036854775808', '9223372036854775808', 0, -9223372036854775808, 'DecimalSI'),
    ('123456789012345678', '123456789012345678', -5670419503621183312, 123456789012345678, 'DecimalSI'),
    ('100000000000000000E', '100', 0, 0, 'DecimalSI'),
    ('0.75Gi', '768Mi', 805306368000, 805306368, 'BinarySI'),
    ('1.000', '1', 1000, 1, 'DecimalSI'),
    ('10', '10', 10000, 10, 'DecimalSI'),
    ('100', '100', 100000, 100, 'DecimalSI'),
    ('1000000', '1M', 1000000000, 1000000, 'DecimalSI'),
    ('1500000000n', '1500m', 1500, 2, 'DecimalSI'),
    ('0.5', '500m', 500, 1, 'DecimalSI'),
    ('4096Mi', '4Gi', 4294967296000, 4294967296, 'BinarySI'),
    ('128974848', '128974848', 128974848000, 128974848, 'DecimalSI'),
    ('129e6', '129e6', 129000000000, 129000000, 'DecimalExponent'),
    ('129M', '129M', 129000000000, 129000000, 'DecimalSI'),
    ('123Mi', '123Mi', 128974848000, 128974848, 'BinarySI'),
    ('1.1Gi', '1181116006400m', 1181116006400, 1181116007, 'BinarySI'),
    ('5e-3', '5e-3', 5, 1, 'DecimalExponent'),
]
QUANTITY_ERRORS = [
    ('', FORMAT_WRONG),
    (' 1', FORMAT_WRONG),
    ('1 ', FORMAT_WRONG),
    ('e', SUFFIX),
    ('1e', SUFFIX),
    ('1E+', SUFFIX),
    ('1k ', FORMAT_WRONG),
    ('1K', SUFFIX),
    ('1ki', SUFFIX),
    ('1Kib', FORMAT_WRONG),
    ('1.2.3', FORMAT_WRONG),
    ('--1', SUFFIX),
    ('+-1', SUFFIX),
    ('1-', SUFFIX),
    ('1e-', SUFFIX),
    ('1ee3', SUFFIX),
    ('1i', SUFFIX),
    ('abc', FORMAT_WRONG),
    ('.e-20', NUMERIC),
    ('+e-20', NUMERIC),
    ('1e99999999999999999999', SUFFIX),
    ('1,5', FORMAT_WRONG),
    ('١', FORMAT_WRONG),
]


@pytest.mark.parametrize("text,canonical,milli,whole,fmt", QUANTITY_CASES)
def test_matches_upstream(text, canonical, milli, whole, fmt):
    q = Quantity.parse(text)
    assert str(q) == canonical
    assert format_quantity(text) == canonical
    assert q.milli_value() == milli == milli_value(text)
    assert q.value() == whole == value(text)
    assert q.format == fmt


@pytest.mark.parametrize("text,message", QUANTITY_ERRORS)
def test_rejects_like_upstream(text, message):
    with pytest.raises(ValueError) as info:
        parse_quantity(text)
    assert str(info.value) == message


def test_format_message_is_upstream_text():
    assert ERR_FORMAT_WRONG == FORMAT_WRONG


@pytest.mark.parametrize(
    "text,amount",
    [
        ("100m", Fraction(1, 10)),
        ("1Gi", 2**30),
        ("1.5Gi", 3 * 2**29),
        ("1.1Gi", Fraction(1181116006400, 1000)),  # rounded up to nano units
        ("1e3", 1000),
        ("1.5", Fraction(3, 2)),
        ("500Mi", 500 * 2**20),
        ("2", 2),
        ("1e-10", Fraction(1, 10**9)),  # below a nano unit rounds up to one
        ("-5e-10", Fraction(-1, 10**9)),  # ...away from zero for negatives
        ("8Ei", 2**63 - 1),  # binary amounts clamp to int64
        ("-8Ei", -(2**63 - 1)),
        ("0", 0),
        ("-0", 0),
        (".5", Fraction(1, 2)),
        ("1e21", 10**21),
        ("3.14159", Fraction(314159, 100000)),
    ],
)
def test_exact_amount(text, amount):
    assert parse_quantity(text) == amount


@pytest.mark.parametrize(
    "text,kept",
    [
        ("100m", True),
        ("+1", True),
        ("01", True),
        ("5.", True),
        ("1e3", True),
        ("1025Ki", True),
        ("1.5", False),  # not a multiple of 10**3: printed as 1500m
        ("1000", False),  # trailing 000: printed as 1k
        ("0.1", False),  # leading 0 after shifting: printed as 100m
        ("1024Ki", False),  # divisible by 8: printed as 1Mi
        ("8Ki", False),
        ("1.5Gi", False),
    ],
)
def test_echoes_original_text_only_where_upstream_does(text, kept):
    assert (Quantity.parse(text).text == text) is kept


@pytest.mark.parametrize(
    "amount,fmt,expected",
    [
        (Fraction(3, 2), DECIMAL_SI, "1500m"),
        (1000, DECIMAL_SI, "1k"),
        (0, DECIMAL_SI, "0"),
        (2**30, BINARY_SI, "1Gi"),
        (1536 * 2**20, BINARY_SI, "1536Mi"),
        (1023, BINARY_SI, "1023"),  # under 1024 prints decimal
        (Fraction(1, 2), BINARY_SI, "500m"),
        (12 * 10**6, DECIMAL_EXPONENT, "12e6"),
        (Fraction(1, 3), DECIMAL_SI, "333333334n"),  # rounded up to nano
        (-Fraction(1, 3), DECIMAL_SI, "-333333334n"),
        (10**21, DECIMAL_SI, "1"),  # upstream has no suffix past E and prints none
    ],
)
def test_format_amount(amount, fmt, expected):
    assert format_quantity(amount, fmt) == expected


def test_from_json_values():
    assert str(quantity_from_json(" 100m ")) == "100m"
    assert str(quantity_from_json(2)) == "2"
    assert str(quantity_from_json(0.5)) == "500m"
    with pytest.raises(ValueError):
        quantity_from_json(True)
    with pytest.raises(ValueError):
        quantity_from_json(None)


def test_huge_exponent_is_lazy_but_exact_amount_refused():
    q = Quantity.parse("1e999999999")
    assert str(q) == "1e999999999"
    assert q.value() == 0 and q.milli_value() == 0  # upstream's int64 overflow result
    with pytest.raises(ValueError) as info:
        parse_quantity("1e999999999")
    assert str(info.value) == ERR_TOO_LARGE


def test_tiny_exponent_rounds_to_one_nano():
    assert parse_quantity("1e-999999999") == Fraction(1, 10**9)
    assert str(Quantity.parse("1e-999999999")) == "1e-9"


def test_non_string_input_is_rejected():
    with pytest.raises(ValueError):
        parse_quantity(5)  # type: ignore[arg-type]
