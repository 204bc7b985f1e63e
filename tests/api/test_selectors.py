"""Label and field selector parsing/matching against upstream's observed behaviour.

Expected strings and error messages were produced by running
k8s.io/apimachinery v0.37.0 (labels.Parse, fields.ParseSelector,
metav1.LabelSelectorAsSelector) on each input; they are facts about
upstream, including its quirks (the `<nil>:` field path in key errors,
the double space before `or`, `=` reported as its code point 61).
"""

import pytest

from shim.api.selectors import (
    EVERYTHING,
    NOTHING,
    FieldSelector,
    LabelSelector,
    Requirement,
    SelectorError,
    field_selector_from_set,
    label_selector_from_object,
    new_requirement,
    parse_field_selector,
    parse_label_selector,
    selector_from_set,
    unknown_field_selector_message,
    unsupported_field_message,
)

KEY_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
    "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)

# (selector text, String() of the parsed selector)
LABEL_OK = [
    ('', ''),
    ('  ', ''),
    ('a', 'a'),
    ('!a', '!a'),
    ('a=b', 'a=b'),
    ('a==b', 'a==b'),
    ('a!=b', 'a!=b'),
    ('a in (x,y)', 'a in (x,y)'),
    ('a notin (x)', 'a notin (x)'),
    ('a>1', 'a>1'),
    ('a<1', 'a<1'),
    ('a,b', 'a,b'),
    ('a=b,c=d', 'a=b,c=d'),
    ('c=d,a=b', 'a=b,c=d'),
    ('a in ()', 'a in ()'),
    ('a in (,)', 'a in ()'),
    ('a in (x,,y)', 'a in (,x,y)'),
    ('a in (,x)', 'a in (,x)'),
    ('a in (x,)', 'a in (,x)'),
    ('x in (foo,,baz),y,z notin ()', 'x in (,baz,foo),y,z notin ()'),
    ('a in (y,x,y)', 'a in (x,y)'),
    ('in in (in)', 'in in (in)'),
    ('notin notin (notin)', 'notin notin (notin)'),
    ('a!=', 'a!='),
    ('a=', 'a='),
    ('a==', 'a=='),
    ('  a  =  b  ', 'a=b'),
    ('a\tin\t(x)', 'a in (x)'),
    ('example.com/a=b', 'example.com/a=b'),
    ('a.b_c-d=e.f_g-h', 'a.b_c-d=e.f_g-h'),
    ('a=b,a=c', 'a=b,a=c'),
    ('a>1,a<5', 'a>1,a<5'),
    ('!a,!b', '!a,!b'),
    ('a notin ()', 'a notin ()'),
    ('a in (x),b in (y,z)', 'a in (x),b in (y,z)'),
    ('exists', 'exists'),
]
LABEL_ERRORS = [
    ('Foo/Bar/baz', 'unable to parse requirement: <nil>: Invalid value: "Foo/Bar/baz": a valid label key ' + KEY_MSG + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"),
    ('a=b=c', "found '=', expected: ',' or 'end of string'"),
    ('a<=1', "unable to parse requirement: found '=', expected: identifier"),
    ('a>=1', "unable to parse requirement: found '=', expected: identifier"),
    ('a=>1', "unable to parse requirement: found '>', expected: identifier"),
    ('a>b', 'unable to parse requirement: values[0]: Invalid value: "b": for \'Gt\', \'Lt\' operators, the value must be an integer'),
    ('a>-1', 'unable to parse requirement: values[0][a]: Invalid value: "-1": ' + VALUE_MSG),
    ('a>99999999999999999999', 'unable to parse requirement: values[0]: Invalid value: "99999999999999999999": for \'Gt\', \'Lt\' operators, the value must be an integer'),
    ('a b', "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ('a,', "found '', expected: identifier after ','"),
    (',a', "found ',', expected: !, identifier, or 'end of string'"),
    (',', "found ',', expected: !, identifier, or 'end of string'"),
    ('!', "unable to parse requirement: found '', expected: identifier"),
    ('!!a', "unable to parse requirement: found '!', expected: identifier"),
    ('!a=b', "found '=', expected: ',' or 'end of string'"),
    ('a in x', "unable to parse requirement: found 'x' expected: '('"),
    ('a in (x', "unable to parse requirement: found '', expected: ',' or ')'"),
    ('a in (x y)', "unable to parse requirement: found 'y', expected: ',' or ')'"),
    ('a=(b)', "unable to parse requirement: found '(', expected: identifier"),
    ('example.com/=b', 'unable to parse requirement: <nil>: Invalid value: "example.com/": name part must be non-empty; name part ' + KEY_MSG),
    ('/a', 'unable to parse requirement: <nil>: Invalid value: "/a": prefix part must be non-empty'),
    ('a/', 'unable to parse requirement: <nil>: Invalid value: "a/": name part must be non-empty; name part ' + KEY_MSG),
    ('-a=b', 'unable to parse requirement: <nil>: Invalid value: "-a": name part ' + KEY_MSG),
    ('a=-b', 'unable to parse requirement: values[0][a]: Invalid value: "-b": ' + VALUE_MSG),
    ('a=b_', 'unable to parse requirement: values[0][a]: Invalid value: "b_": ' + VALUE_MSG),
    ('a=' + 'x' * 64, 'unable to parse requirement: values[0][a]: Invalid value: "' + 'x' * 64 + '": must be no more than 63 bytes'),
    ('k' * 64 + '=v', 'unable to parse requirement: <nil>: Invalid value: "' + 'k' * 64 + '": name part must be no more than 63 bytes'),
    ('a exists', "unable to parse requirement: found 'exists', expected: in, notin, =, ==, !=, gt, lt"),
    ('(', "found '(', expected: !, identifier, or 'end of string'"),
    (')', "found ')', expected: !, identifier, or 'end of string'"),
    ('a in ((x))', "unable to parse requirement: found '(', expected: ',', ')' or identifier"),
    ('a=!b', "unable to parse requirement: found '!', expected: identifier"),
    ('a!b', "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt"),
    ('a==b==c', "found '==', expected: ',' or 'end of string'"),
    ('a=b,,c=d', "found ',', expected: identifier after ','"),
    ('a<>1', "unable to parse requirement: found '>', expected: identifier"),
    ('a in (x),', "found '', expected: identifier after ','"),
    ('a=b c=d', "found 'c', expected: ',' or 'end of string'"),
    ('é=b', 'unable to parse requirement: <nil>: Invalid value: "é": name part ' + KEY_MSG),
    ('a=é', 'unable to parse requirement: values[0][a]: Invalid value: "é": ' + VALUE_MSG),
    ('a in (b,c d)', "unable to parse requirement: found 'd', expected: ',' or ')'"),
    ('A/b=c', 'unable to parse requirement: <nil>: Invalid value: "A/b": prefix part ' + SUBDOMAIN_MSG),
    ('a_/b=c', 'unable to parse requirement: <nil>: Invalid value: "a_/b": prefix part ' + SUBDOMAIN_MSG),
    ('a=b\x00c', "found 'c', expected: ',' or 'end of string'"),
    ('a\x00b', "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
]


@pytest.mark.parametrize("text,canonical", LABEL_OK)
def test_label_parse(text, canonical):
    sel = parse_label_selector(text)
    assert str(sel) == canonical
    # the canonical form parses back to itself
    assert str(parse_label_selector(canonical)) == canonical


@pytest.mark.parametrize("text,message", LABEL_ERRORS)
def test_label_parse_errors(text, message):
    with pytest.raises(SelectorError) as info:
        parse_label_selector(text)
    assert info.value.message == message
    assert str(info.value) == message


LABEL_MATCH_SETS = [{}, {"a": "x"}, {"a": "y", "b": "1"}, {"a": "", "c": "5"}, {"b": "x", "c": "-3"}]

# (selector, matches for each of LABEL_MATCH_SETS)
LABEL_MATCHES = [
    ("", [True, True, True, True, True]),
    ("a", [False, True, True, True, False]),
    ("!a", [True, False, False, False, True]),
    ("a=x", [False, True, False, False, False]),
    ("a==x", [False, True, False, False, False]),
    ("a!=x", [True, False, True, True, True]),
    ("a in (x,y)", [False, True, True, False, False]),
    ("a notin (x)", [True, False, True, True, True]),
    ("a in ()", [False, False, False, True, False]),
    ("a=", [False, False, False, True, False]),
    ("a!=", [True, True, True, False, True]),
    ("c>1", [False, False, False, True, False]),
    ("c<1", [False, False, False, False, True]),
    ("c>-5", None),  # "-5" is not a valid label value: rejected at parse time
    ("b<2", [False, False, True, False, False]),  # "x" is not an integer: no match
    ("a,b", [False, False, True, False, False]),
    ("a,!b", [False, True, False, True, False]),
    ("a in (x,y),b=1", [False, False, True, False, False]),
]


@pytest.mark.parametrize("text,expected", LABEL_MATCHES)
def test_label_matches(text, expected):
    if expected is None:
        with pytest.raises(SelectorError):
            parse_label_selector(text)
        return
    sel = parse_label_selector(text)
    assert [sel.matches(labels) for labels in LABEL_MATCH_SETS] == expected


def test_label_matches_none_as_no_labels():
    assert parse_label_selector("!a").matches(None)
    assert not parse_label_selector("a").matches(None)


def test_gt_lt_compare_as_int64():
    sel = parse_label_selector("n>9")
    assert sel.matches({"n": "10"})
    assert sel.matches({"n": "+10"})
    assert not sel.matches({"n": "9"})
    assert not sel.matches({"n": "1_0"})
    assert not sel.matches({"n": "99999999999999999999"})  # out of int64 range


def test_empty_and_everything_nothing():
    assert parse_label_selector("").empty
    assert EVERYTHING.empty and EVERYTHING.matches({"x": "y"})
    assert not NOTHING.empty and not NOTHING.matches({}) and str(NOTHING) == ""
    assert not parse_label_selector("a").empty


def test_requires_exact_match():
    assert parse_label_selector("a=x,b in (y)").requires_exact_match("a") == "x"
    assert parse_label_selector("a=x,b in (y)").requires_exact_match("b") == "y"
    assert parse_label_selector("b in (y,z)").requires_exact_match("b") is None
    assert parse_label_selector("a!=x").requires_exact_match("a") is None
    assert parse_label_selector("a=x").requires_exact_match("c") is None


def test_requirements_are_sorted_by_key():
    sel = parse_label_selector("z=1,a=2,m")
    assert [r.key for r in sel.requirements] == ["a", "m", "z"]
    assert sel.requirements[1] == Requirement("m", "exists", ())


# --- metav1.LabelSelector form -------------------------------------------------


def test_object_none_selects_nothing_and_empty_everything():
    assert label_selector_from_object(None) is NOTHING
    assert label_selector_from_object({}).empty
    assert label_selector_from_object({"matchLabels": {}, "matchExpressions": []}).empty


@pytest.mark.parametrize(
    "obj,canonical,matching,not_matching",
    [
        ({"matchLabels": {"app": "web"}}, "app=web", {"app": "web", "x": "1"}, {"app": "db"}),
        (
            {"matchLabels": {"b": "1"}, "matchExpressions": [
                {"key": "a", "operator": "In", "values": ["z", "x", "z"]},
                {"key": "c", "operator": "DoesNotExist"},
            ]},
            "a in (x,z,z),b=1,!c",  # object-form values are neither deduplicated nor reordered in memory
            {"a": "x", "b": "1"},
            {"a": "x", "b": "1", "c": ""},
        ),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["x"]}]}, "a notin (x)", {}, {"a": "x"}),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, "a", {"a": ""}, {}),
    ],
)
def test_object_selectors(obj, canonical, matching, not_matching):
    sel = label_selector_from_object(obj)
    assert str(sel) == canonical
    assert sel.matches(matching)
    assert not sel.matches(not_matching)


@pytest.mark.parametrize(
    "obj,message",
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "In"}]},
            "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty",
        ),
        ({"matchExpressions": [{"key": "a", "operator": "Foo", "values": ["x"]}]}, '"Foo" is not a valid label selector operator'),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            'values: Invalid value: ["x"]: values set must be empty for exists and does not exist',
        ),
        (
            {"matchLabels": {"a/b/c": "x y"}},
            '[key: Invalid value: "a/b/c": a valid label key ' + KEY_MSG
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName'), "
            + 'values[0][a/b/c]: Invalid value: "x y": ' + VALUE_MSG + "]",
        ),
        (
            {"matchExpressions": [{"key": "", "operator": "In", "values": ["ok"]}]},
            'key: Invalid value: "": name part must be non-empty; name part ' + KEY_MSG,
        ),
    ],
)
def test_object_selector_errors(obj, message):
    with pytest.raises(SelectorError) as info:
        label_selector_from_object(obj)
    assert info.value.message == message


def test_new_requirement_operator_not_supported():
    with pytest.raises(SelectorError) as info:
        new_requirement("a", "like", ["x"])
    assert info.value.message == (
        'operator: Unsupported value: "like": supported values: "in", "notin", "=", "==", "!=", "gt", "lt", "exists", "!"'
    )


def test_selector_from_set():
    assert selector_from_set(None).empty
    assert selector_from_set({}).empty
    sel = selector_from_set({"tier": "fe", "app": "web"})
    assert str(sel) == "app=web,tier=fe"
    assert sel.matches({"app": "web", "tier": "fe", "x": "y"})
    assert not sel.matches({"app": "web"})
    # unvalidated by default, like upstream's SelectorFromSet
    assert str(selector_from_set({"bad key": "v"})) == "bad key=v"
    with pytest.raises(SelectorError):
        selector_from_set({"bad key": "v"}, validate=True)


def test_add_keeps_sorted_and_nothing_stays_nothing():
    sel = LabelSelector().add(Requirement("b", "=", ("1",)), Requirement("a", "exists"))
    assert str(sel) == "a,b=1"
    assert NOTHING.add(Requirement("a", "exists")) is NOTHING


# --- field selectors ---------------------------------------------------------------

FIELD_OK = [
    ('', '', []),
    (',', '', []),
    ('a=b', 'a=b', [('a', '=', 'b')]),
    ('a==b', 'a=b', [('a', '=', 'b')]),
    ('a!=b', 'a!=b', [('a', '!=', 'b')]),
    ('a=b,c!=d', 'a=b,c!=d', [('a', '=', 'b'), ('c', '!=', 'd')]),
    ('c!=d,a=b', 'a=b,c!=d', [('a', '=', 'b'), ('c', '!=', 'd')]),
    ('a=b\\=c', 'a=b\\=c', [('a', '=', 'b=c')]),
    ('a=b\\,c', 'a=b\\,c', [('a', '=', 'b,c')]),
    ('a=b\\\\', 'a=b\\\\', [('a', '=', 'b\\')]),
    ('=', '', []),
    ('=,a=b', 'a=b', [('a', '=', 'b')]),
    ('a=', 'a=', [('a', '=', '')]),
    ('=b', '=b', [('', '=', 'b')]),
    (' a = b ', ' a = b ', [(' a ', '=', ' b ')]),
    ('metadata.name=x,spec.nodeName=n1', 'metadata.name=x,spec.nodeName=n1', [('metadata.name', '=', 'x'), ('spec.nodeName', '=', 'n1')]),
    ('a=b,a=c', 'a=b,a=c', [('a', '=', 'b'), ('a', '=', 'c')]),
    ('a=!b', 'a=!b', [('a', '=', '!b')]),
    ('a=b,,c=d', 'a=b,c=d', [('a', '=', 'b'), ('c', '=', 'd')]),
    ('x\\,y=z', 'x\\,y=z', [('x\\,y', '=', 'z')]),
    ('a==', 'a=', [('a', '=', '')]),
    ('a=\\\\\\,', 'a=\\\\\\,', [('a', '=', '\\,')]),
    ('!=x', '!=x', [('', '!=', 'x')]),
    ('metadata.name!=', 'metadata.name!=', [('metadata.name', '!=', '')]),
    ('a=b,,', 'a=b', [('a', '=', 'b')]),
]
FIELD_ERRORS = [
    ('a!==b', 'invalid field selector: unescaped character in value: 61'),
    ('a', "invalid selector: 'a'; can't understand 'a'"),
    ('a=b,c', "invalid selector: 'a=b,c'; can't understand 'c'"),
    ('a=b=c', 'invalid field selector: unescaped character in value: 61'),
    ('a=b\\', 'invalid field selector: invalid escape sequence: \\'),
    ('a=\\x', 'invalid field selector: invalid escape sequence: \\x'),
    ('a=b,c=d=e', 'invalid field selector: unescaped character in value: 61'),
    ('a=b\\\\,c', "invalid selector: 'a=b\\\\,c'; can't understand 'c'"),
]


@pytest.mark.parametrize("text,canonical,requirements", FIELD_OK)
def test_field_parse(text, canonical, requirements):
    sel = parse_field_selector(text)
    assert str(sel) == canonical
    assert [(r.field, r.operator, r.value) for r in sel.requirements] == requirements
    assert sel.empty == (not requirements)


@pytest.mark.parametrize("text,message", FIELD_ERRORS)
def test_field_parse_errors(text, message):
    with pytest.raises(SelectorError) as info:
        parse_field_selector(text)
    assert info.value.message == message


FIELD_SETS = [{}, {"a": "b"}, {"a": "", "b": "c"}, {"metadata.name": "x", "spec.nodeName": "n1"}, {"a": "b=c"}]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("", [True, True, True, True, True]),
        ("a=b", [False, True, False, False, False]),
        ("a!=b", [True, False, True, True, True]),
        ("a=", [True, False, True, True, False]),  # a missing field reads as ""
        ("a=b\\=c", [False, False, False, False, True]),
        ("metadata.name=x,spec.nodeName=n1", [False, False, False, True, False]),
        ("metadata.name=x,spec.nodeName!=n1", [False, False, False, False, False]),
    ],
)
def test_field_matches(text, expected):
    sel = parse_field_selector(text)
    assert [sel.matches(f) for f in FIELD_SETS] == expected


def test_field_exact_and_fields():
    sel = parse_field_selector("spec.nodeName=n1,metadata.namespace=ns,status.phase!=Running")
    assert sel.exact("metadata.namespace") == "ns"
    assert sel.exact("spec.nodeName") == "n1"
    assert sel.exact("status.phase") is None
    assert sel.exact("metadata.name") is None
    assert sel.fields() == ["metadata.namespace", "spec.nodeName", "status.phase"]
    assert parse_field_selector("a=1,a=2").exact("a") == "1"
    assert parse_field_selector("a=1,a=2").fields() == ["a"]


def test_field_transform():
    sel = parse_field_selector("spec.host=n1,metadata.name=x")

    def convert(name, value):
        if name == "spec.host":
            return "spec.nodeName", value
        if name == "metadata.name":
            return "", ""
        raise SelectorError(unsupported_field_message(name))

    out = sel.transform(convert)
    assert str(out) == "spec.nodeName=n1"
    with pytest.raises(SelectorError) as info:
        parse_field_selector("bogus=1").transform(convert)
    assert info.value.message == "field label not supported: bogus"


def test_field_unknown_messages():
    assert unsupported_field_message("spec.foo") == "field label not supported: spec.foo"
    assert unknown_field_selector_message("spec.foo") == (
        '"spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )


def test_field_selector_from_set():
    assert field_selector_from_set(None).empty
    sel = field_selector_from_set({"metadata.name": "a,b", "metadata.namespace": "ns"})
    assert str(sel) == "metadata.name=a\\,b,metadata.namespace=ns"
    assert str(parse_field_selector(str(sel))) == str(sel)
    assert FieldSelector().matches(None)
