"""Validation messages against upstream's exact text.

Expected strings were produced by running k8s.io/apimachinery v0.37.0's
validation functions (util/validation, api/validation, meta/v1/validation,
api/errors.NewInvalid) on the same inputs; they are facts about upstream,
including its double space before `or` in examples and the per-function
choice between "characters" and "bytes".
"""

import pytest

from shim.api import validation as v
from shim.api.validation import FieldError

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
KEY_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
    "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
BAD_KEY_MSG = (
    "a valid label key " + KEY_MSG + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
)
VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)

# --- string format checks -----------------------------------------------------------


@pytest.mark.parametrize(
    "value,errors",
    [
        ("example.com", []),
        ("a", []),
        ("a-b.c-d", []),
        ("a" * 253, []),
        ("", [SUBDOMAIN_MSG]),
        ("Foo", [SUBDOMAIN_MSG]),
        ("a..b", [SUBDOMAIN_MSG]),
        ("-a", [SUBDOMAIN_MSG]),
        ("a_b", [SUBDOMAIN_MSG]),
        ("a" * 254, ["must be no more than 253 characters"]),
        ("A" * 254, ["must be no more than 253 characters", SUBDOMAIN_MSG]),
    ],
)
def test_dns1123_subdomain(value, errors):
    assert v.is_dns1123_subdomain(value) == errors


@pytest.mark.parametrize(
    "value,errors",
    [
        ("my-name", []),
        ("123-abc", []),
        ("a" * 63, []),
        ("a" * 64, ["must be no more than 63 characters"]),
        ("a.b", ["must not contain dots"]),
        ("", [LABEL_MSG]),
        ("Foo", [LABEL_MSG]),
        ("a-", [LABEL_MSG]),
        ("a" * 64 + ".b", ["must be no more than 63 characters", "must not contain dots"]),
    ],
)
def test_dns1123_label(value, errors):
    assert v.is_dns1123_label(value) == errors


@pytest.mark.parametrize(
    "value,errors",
    [
        ("my-name", []),
        ("abc-123", []),
        ("1abc", [DNS1035_MSG]),
        ("a.b", [DNS1035_MSG]),
        ("", [DNS1035_MSG]),
        ("a" * 64, ["must be no more than 63 characters"]),
    ],
)
def test_dns1035_label(value, errors):
    assert v.is_dns1035_label(value) == errors


@pytest.mark.parametrize(
    "value,errors",
    [
        ("a", []),
        ("MyName", []),
        ("my.name", []),
        ("123-abc", []),
        ("example.com/MyName", []),
        ("k8s.io/a_b", []),
        ("", ["name part must be non-empty", "name part " + KEY_MSG]),
        ("-a", ["name part " + KEY_MSG]),
        ("a b", ["name part " + KEY_MSG]),
        ("a/b/c", [BAD_KEY_MSG]),
        ("/a", ["prefix part must be non-empty"]),
        ("a/", ["name part must be non-empty", "name part " + KEY_MSG]),
        ("Example.com/a", ["prefix part " + SUBDOMAIN_MSG]),
        ("a" * 64, ["name part must be no more than 63 bytes"]),
        ("x" * 254 + "/y", ["prefix part must be no more than 253 bytes"]),
        ("é", ["name part " + KEY_MSG]),
    ],
)
def test_qualified_name(value, errors):
    assert v.is_qualified_name(value) == errors


@pytest.mark.parametrize(
    "value,errors",
    [
        ("", []),
        ("MyValue", []),
        ("my_value", []),
        ("12345", []),
        ("a" * 63, []),
        ("a" * 64, ["must be no more than 63 bytes"]),
        ("-a", [VALUE_MSG]),
        ("a b", [VALUE_MSG]),
        ("é" * 32, ["must be no more than 63 bytes", VALUE_MSG]),  # bytes, not characters
    ],
)
def test_label_value(value, errors):
    assert v.is_valid_label_value(value) == errors


@pytest.mark.parametrize(
    "validator,name,prefix,errors",
    [
        (v.name_is_dns_subdomain, "foo-", True, []),
        (v.name_is_dns_subdomain, "foo-", False, [SUBDOMAIN_MSG]),
        (v.name_is_dns_label, "a.b-", True, ["must not contain dots"]),
        (v.name_is_dns1035_label, "x-", True, []),
        (v.name_is_dns_subdomain, "-", True, [SUBDOMAIN_MSG]),  # a lone dash is not masked
        (v.name_is_dns_subdomain, "a_-", True, []),  # the masking drops the character before the dash too
    ],
)
def test_name_validators_mask_generate_name_dash(validator, name, prefix, errors):
    assert validator(name, prefix) == errors


# --- FieldError rendering ---------------------------------------------------------


@pytest.mark.parametrize(
    "error,message",
    [
        (v.required("spec.containers[0].image"), "spec.containers[0].image: Required value"),
        (v.required("metadata.name", "name or generateName is required"), "metadata.name: Required value: name or generateName is required"),
        (v.invalid("metadata.name", "Foo", "bad"), 'metadata.name: Invalid value: "Foo": bad'),
        (v.invalid("spec.replicas", -1, "must be greater than or equal to 0"), "spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
        (v.invalid("x", True, "d"), "x: Invalid value: true: d"),
        (v.invalid("x", 1.5, "d"), "x: Invalid value: 1.5: d"),
        (v.invalid("x", 1e6, "d"), "x: Invalid value: 1e+06: d"),
        (v.invalid("x", None, "d"), "x: Invalid value: null: d"),
        (v.invalid("x", ["a", "<b>"], "d"), 'x: Invalid value: ["a","\\u003cb\\u003e"]: d'),
        (v.invalid("x", {"k": 1.0}, "d"), 'x: Invalid value: {"k":1}: d'),
        (v.invalid("x", 'a"b\n\x07é', ""), 'x: Invalid value: "a\\"b\\n\\aé"'),
        (v.type_invalid("x", "s", "expected int"), 'x: Invalid value: "s": expected int'),
        (v.not_supported("spec.restartPolicy", "Sometimes", ["Always", "OnFailure", "Never"]),
         'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'),
        (v.not_supported("x", "y", []), 'x: Unsupported value: "y"'),
        (v.forbidden("metadata.namespace", "not allowed on this type"), "metadata.namespace: Forbidden: not allowed on this type"),
        (v.duplicate("spec.ports[1].name", "http"), 'spec.ports[1].name: Duplicate value: "http"'),
        (v.too_long("metadata.annotations", 262144), "metadata.annotations: Too long: may not be more than 262144 bytes"),
        (v.too_long("x", 1), "x: Too long: may not be more than 1 byte"),
        (v.too_many("x", 5, 3), "x: Too many: 5: must have at most 3 items"),
        (v.too_many("x", -1, 1), "x: Too many: must have at most 1 item"),
        (v.not_found("x", "y"), 'x: Not found: "y"'),
        (v.internal_error("x", "boom"), 'x: Internal error: boom'),
    ],
)
def test_field_error_message(error, message):
    assert error.message() == message
    assert str(error) == message


def test_cause_is_body_without_field():
    err = v.invalid("metadata.name", "Foo", "bad")
    assert err.to_cause() == {"reason": "FieldValueInvalid", "message": 'Invalid value: "Foo": bad', "field": "metadata.name"}
    assert v.required("spec.x").to_cause() == {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.x"}
    assert FieldError(v.FIELD_VALUE_FORBIDDEN, "", "", "no").to_cause() == {"reason": "FieldValueForbidden", "message": "Forbidden: no"}


def test_invalid_status_message_forms():
    one = [v.required("spec.containers[0].image")]
    two = one + [v.forbidden("metadata.namespace", "not allowed on this type")]
    assert v.invalid_status_message("Pod", "p", one) == 'Pod "p" is invalid: spec.containers[0].image: Required value'
    assert v.invalid_status_message("Deployment", "d", two, group="apps") == (
        'Deployment.apps "d" is invalid: [spec.containers[0].image: Required value, '
        "metadata.namespace: Forbidden: not allowed on this type]"
    )
    assert v.invalid_status_message("Pod", "p", []) == 'Pod "p" is invalid'
    # duplicates collapse, and a list that collapses to one loses its brackets
    assert v.invalid_status_message("Pod", "p", one + one) == 'Pod "p" is invalid: spec.containers[0].image: Required value'
    assert v.invalid_status_message("ConfigMap", 'a"b', one).startswith('ConfigMap "a\\"b" is invalid')


def test_invalid_status_body():
    errs = [v.required("metadata.name", "name or generateName is required"), v.required("metadata.namespace")]
    status = v.invalid_status("Pod", "", errs)
    assert status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'Pod "" is invalid: [metadata.name: Required value: name or generateName is required, metadata.namespace: Required value]',
        "reason": "Invalid",
        "details": {
            "kind": "Pod",
            "causes": [
                {"reason": "FieldValueRequired", "message": "Required value: name or generateName is required", "field": "metadata.name"},
                {"reason": "FieldValueRequired", "message": "Required value", "field": "metadata.namespace"},
            ],
        },
        "code": 422,
    }
    assert v.invalid_status("Deployment", "d", [], group="apps")["details"] == {"name": "d", "group": "apps", "kind": "Deployment"}


# --- object metadata --------------------------------------------------------------


def _messages(errors):
    return [e.message() for e in errors]


@pytest.mark.parametrize(
    "meta,namespaced,validator,expected",
    [
        ({"name": "ok", "namespace": "default"}, True, v.name_is_dns_subdomain, []),
        ({"name": "ok"}, False, v.name_is_dns_subdomain, []),
        ({"name": "Foo"}, False, v.name_is_dns_subdomain, ['metadata.name: Invalid value: "Foo": ' + SUBDOMAIN_MSG]),
        ({}, True, v.name_is_dns_subdomain,
         ["metadata.name: Required value: name or generateName is required", "metadata.namespace: Required value"]),
        ({"generateName": "Foo-", "namespace": "default"}, True, v.name_is_dns_subdomain,
         ['metadata.generateName: Invalid value: "Foo-": ' + SUBDOMAIN_MSG, "metadata.name: Required value: name or generateName is required"]),
        ({"name": "foo", "namespace": "default"}, False, v.name_is_dns_subdomain, ["metadata.namespace: Forbidden: not allowed on this type"]),
        ({"name": "foo", "namespace": "Bad_NS"}, True, v.name_is_dns_subdomain, ['metadata.namespace: Invalid value: "Bad_NS": ' + LABEL_MSG]),
        ({"name": "foo.bar", "namespace": "d"}, True, v.name_is_dns_label, ['metadata.name: Invalid value: "foo.bar": must not contain dots']),
        ({"name": "1abc", "namespace": "d"}, True, v.name_is_dns1035_label, ['metadata.name: Invalid value: "1abc": ' + DNS1035_MSG]),
        ({"name": "ok", "namespace": "d", "generation": -1}, True, v.name_is_dns_subdomain,
         ["metadata.generation: Invalid value: -1: must be greater than or equal to 0"]),
        ({"name": "ok", "namespace": "d", "labels": {"a/b/c": "x y"}}, True, v.name_is_dns_subdomain,
         ['metadata.labels: Invalid value: "a/b/c": ' + BAD_KEY_MSG, 'metadata.labels: Invalid value: "x y": ' + VALUE_MSG]),
        ({"name": "ok", "namespace": "d", "annotations": {"Bad Key": "v", "Example.COM/X": "ok"}}, True, v.name_is_dns_subdomain,
         ['metadata.annotations: Invalid value: "Bad Key": name part ' + KEY_MSG]),  # keys are checked lower-cased
        ({"name": "ok", "namespace": "d", "finalizers": ["orphan", "foregroundDeletion", "a/b/c"]}, True, v.name_is_dns_subdomain,
         ['metadata.finalizers: Invalid value: "a/b/c": ' + BAD_KEY_MSG,
          'metadata.finalizers: Invalid value: ["orphan","foregroundDeletion","a/b/c"]: finalizer orphan and foregroundDeletion cannot be both set']),
        ({"name": "ok", "namespace": "d", "ownerReferences": [{}]}, True, v.name_is_dns_subdomain,
         ["metadata.ownerReferences[0].apiVersion: Required value: must not be empty",
          "metadata.ownerReferences[0].kind: Required value: must not be empty",
          "metadata.ownerReferences[0].name: Required value: must not be empty",
          "metadata.ownerReferences[0].uid: Required value: must not be empty"]),
        ({"name": "ok", "namespace": "d", "ownerReferences": [
            {"apiVersion": "a/b/c", "kind": "K", "name": "n", "uid": "u"},
            {"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "u2", "controller": True},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u3", "controller": True, "blockOwnerDeletion": True},
        ]}, True, v.name_is_dns_subdomain,
         ['metadata.ownerReferences[0].apiVersion: Invalid value: "a/b/c": must be <group>/<version> or <version>',
          'metadata.ownerReferences[1]: Invalid value: {"apiVersion":"v1","kind":"Event","name":"e","uid":"u2","controller":true}: '
          "/v1, Kind=Event is disallowed from being an owner",
          'metadata.ownerReferences: Invalid value: [{"apiVersion":"a/b/c","kind":"K","name":"n","uid":"u"},'
          '{"apiVersion":"v1","kind":"Event","name":"e","uid":"u2","controller":true},'
          '{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"u3","controller":true,"blockOwnerDeletion":true}]: '
          'Only one reference can have Controller set to true. Found "true" in references for Event/e and ReplicaSet/rs']),
        ({"name": "ok", "namespace": "d", "managedFields": [{"manager": "a\x07b", "operation": "Patch", "fieldsType": "FieldsV2"}]}, True,
         v.name_is_dns_subdomain,
         ['metadata.managedFields[0].operation: Unsupported value: "Patch": supported values: "Apply", "Update"',
          'metadata.managedFields[0].fieldsType: Invalid value: "FieldsV2": must be `FieldsV1`',
          'metadata.managedFields[0].manager: Invalid value: "a\\ab": invalid character U+0007 (at position 1)']),
    ],
)
def test_object_meta(meta, namespaced, validator, expected):
    assert _messages(v.validate_object_meta(meta, namespaced, validator, kube_finalizers=False)) == expected


def test_object_meta_status_message_for_bad_name():
    errs = v.validate_object_meta({"name": 'a"bé\n', "namespace": "default"}, True)
    assert v.invalid_status_message("ConfigMap", 'a"bé\n', errs) == (
        'ConfigMap "a\\"bé\\n" is invalid: metadata.name: Invalid value: "a\\"bé\\n": ' + SUBDOMAIN_MSG
    )


def test_kube_finalizer_names():
    meta = {"name": "ok", "namespace": "d", "finalizers": ["kubernetes", "orphan", "example.com/x", "custom"]}
    assert _messages(v.validate_object_meta(meta, True)) == [
        'metadata.finalizers[3]: Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified'
    ]
    assert v.validate_object_meta(meta, True, kube_finalizers=False) == []


def test_annotation_size_limit():
    assert v.validate_annotations({"k": "x" * (256 * 1024 - 1)}) == []
    assert _messages(v.validate_annotations({"k": "x" * (256 * 1024)})) == [
        "metadata.annotations: Too long: may not be more than 262144 bytes"
    ]
    assert v.TOTAL_ANNOTATION_SIZE_LIMIT == 262144


def test_validate_labels_custom_path():
    assert _messages(v.validate_labels({"a": "-x"}, "spec.template.metadata.labels")) == [
        'spec.template.metadata.labels: Invalid value: "-x": ' + VALUE_MSG
    ]
    assert v.validate_labels(None) == []


# --- updates and immutability --------------------------------------------------------


def test_validate_immutable():
    assert v.validate_immutable("a", "a", "spec.selector") == []
    assert _messages(v.validate_immutable("b", "a", "metadata.name")) == ['metadata.name: Invalid value: "b": field is immutable']
    assert _messages(v.validate_immutable({"app": "x"}, {"app": "y"}, "spec.selector")) == [
        'spec.selector: Invalid value: {"app":"x"}: field is immutable'
    ]
    assert v.FIELD_IMMUTABLE_MESSAGE == "field is immutable"


def test_object_meta_update():
    old = {"name": "a", "namespace": "x", "uid": "u1", "resourceVersion": "5", "generation": 2,
           "creationTimestamp": "2024-01-01T00:00:00Z", "deletionGracePeriodSeconds": 0}
    assert v.validate_object_meta_update(dict(old), old) == []
    new = {"name": "b", "namespace": "x", "uid": "u2", "generation": 1, "creationTimestamp": "2024-01-02T00:00:00Z"}
    assert _messages(v.validate_object_meta_update(new, old)) == [
        'metadata.resourceVersion: Invalid value: "": must be specified for an update',
        "metadata.generation: Invalid value: 1: must not be decremented",
        'metadata.name: Invalid value: "b": field is immutable',
        'metadata.uid: Invalid value: "u2": field is immutable',
        'metadata.creationTimestamp: Invalid value: "2024-01-02T00:00:00Z": field is immutable',
        "metadata.deletionGracePeriodSeconds: Invalid value: null: field is immutable",
    ]


def test_no_new_finalizers_while_deleting():
    old = {"name": "a", "resourceVersion": "1", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["a/b"]}
    new = dict(old, finalizers=["a/b", "e/f", "c/d"])
    assert _messages(v.validate_object_meta_update(new, old)) == [
        'metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, '
        'found new finalizers []string{"c/d", "e/f"}'
    ]


# --- metav1.LabelSelector ---------------------------------------------------------------


def test_label_selector_validation():
    sel = {
        "matchLabels": {"app": "-x"},
        "matchExpressions": [
            {"key": "a", "operator": "In"},
            {"key": "b", "operator": "Exists", "values": ["x"]},
            {"key": "c/d/e", "operator": "Foo", "values": ["bad value"]},
        ],
    }
    assert _messages(v.validate_label_selector(sel, "spec.selector")) == [
        'spec.selector.matchLabels: Invalid value: "-x": ' + VALUE_MSG,
        "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
        "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        'spec.selector.matchExpressions[2].operator: Invalid value: "Foo": not a valid selector operator',
        'spec.selector.matchExpressions[2].key: Invalid value: "c/d/e": ' + BAD_KEY_MSG,
        'spec.selector.matchExpressions[2].values[0]: Invalid value: "bad value": ' + VALUE_MSG,
    ]
    assert v.validate_label_selector(None, "spec.selector") == []
    assert v.validate_label_selector({}, "spec.selector") == []


# --- Go value rendering ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text,quoted",
    [
        ("", '""'),
        ("plain", '"plain"'),
        ('q"b\\s', '"q\\"b\\\\s"'),
        ("\t\n\r\x0b\x0c\x07\x08", '"\\t\\n\\r\\v\\f\\a\\b"'),
        ("\x00\x1f\x7f", '"\\x00\\x1f\\x7f"'),
        ("é\U0001F600", '"é\U0001F600"'),
        ("\u2028\u00ad\ufeff", '"\\u2028\\u00ad\\ufeff"'),
    ],
)
def test_go_quote(text, quoted):
    assert v.go_quote(text) == quoted


@pytest.mark.parametrize(
    "value,rendered",
    [
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (100.0, "100"),
        (-2.5, "-2.5"),
        (1e21, "1e+21"),
        (float("inf"), "+Inf"),
    ],
)
def test_float_bad_values_render_like_go(value, rendered):
    assert v.render_bad_value(value) == rendered


@pytest.mark.parametrize(
    "value,rendered",
    [
        ([1e20, 1e21, 1e-7, 0.5], "[100000000000000000000,1e+21,1e-7,0.5]"),
        ({"a": "<&>", "b": [True, None]}, '{"a":"\\u003c\\u0026\\u003e","b":[true,null]}'),
        ("\u2028\x01", '"\\u2028\\u0001"'),
    ],
)
def test_go_json(value, rendered):
    assert v.go_json(value) == rendered


def test_regex_error_without_examples():
    assert v.regex_error("Invalid path", "[a-z]+") == "Invalid path (regex used for validation is '[a-z]+')"
