"""Tests for shim.api.patch: JSON patch, merge patch and strategic merge patch.

The tables are facts observed from upstream (k8s.io/apimachinery v0.37.0 strategicpatch,
gopkg.in/evanphx/json-patch.v4 v4.13.0 as vendored by k8s.io/apiserver v0.37.0): for each
input, the exact output upstream's apply code produced (list order included) or its exact
error text.  The MergeItem schema below mirrors the struct upstream's strategicpatch tests
use; the Pod/Node schemas are a subset of the core/v1 patch metadata.
"""
from __future__ import annotations

import copy
import json
import random

import pytest

from shim.api.patch import (
    GENERIC_422_MESSAGE, JSON_PATCH, MAX_JSON_PATCH_OPERATIONS, MERGE_PATCH, STRATEGIC_MERGE_PATCH,
    DictPatchSchema, FieldMeta, PatchError, PatchSchema, _go_stable_sort, apply_json_patch,
    apply_merge_patch, apply_patch, apply_strategic_merge_patch, parse_patch_body,
    patch_precondition_uid,
)


# ---------------------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------------------

def _scalar() -> FieldMeta:
    return FieldMeta(None, False, None, ())


def _merge_item_schema() -> DictPatchSchema:
    """MergeItem / RetainKeysMergeItem as declared in upstream's strategicpatch tests."""
    mi = DictPatchSchema({}, name="MergeItem")
    rk = DictPatchSchema({}, name="RetainKeysMergeItem")
    common = {
        "name": _scalar(), "value": _scalar(), "other": _scalar(),
        "simpleMap": FieldMeta(None, False, None, (), is_map=True),
        "mergingIntList": FieldMeta(None, True, None, ("merge",)),
        "mergingList": FieldMeta(mi, True, "name", ("merge",)),
        "nonMergingList": FieldMeta(mi, True, None, ()),
    }
    mi.update(common)
    mi.update({
        "nonMergingIntList": FieldMeta(None, True, None, ()),
        "mergeItemPtr": FieldMeta(mi, False, "name", ("merge",)),
        "replacingItem": FieldMeta(DictPatchSchema({}, name="RawExtension"), False, None, ("replace",)),
        "jsonItem": FieldMeta(DictPatchSchema({}, name=""), False, None, ()),
        "retainKeysMap": FieldMeta(rk, False, None, ("retainKeys",)),
        "retainKeysMergingList": FieldMeta(mi, True, "name", ("merge", "retainKeys")),
    })
    rk.update(common)
    return mi


MERGE_ITEM = _merge_item_schema()

_S: dict = {}
_MAP = {"is_map": True}


def _list(items=None, key=None, strategy=""):
    return {"is_list": True, "merge_key": key, "strategy": strategy, "schema": items}


def _obj(fields, strategy=""):
    return {"schema": fields, "strategy": strategy}


_META = {
    "name": _S, "namespace": _S, "uid": _S, "resourceVersion": _S, "generation": _S,
    "labels": _MAP, "annotations": _MAP,
    "ownerReferences": _list({"apiVersion": _S, "kind": _S, "name": _S, "uid": _S}, "uid", "merge"),
    "finalizers": _list(None, None, "merge"),
    "managedFields": _list({"manager": _S, "operation": _S}),
}
_CONTAINER = {
    "name": _S, "image": _S, "args": _list(), "terminationMessagePath": _S,
    "env": _list({"name": _S, "value": _S}, "name", "merge"),
    "ports": _list({"containerPort": _S, "protocol": _S}, "containerPort", "merge"),
    "volumeMounts": _list({"name": _S, "mountPath": _S}, "mountPath", "merge"),
}
POD = DictPatchSchema({
    "apiVersion": _S, "kind": _S, "metadata": _obj(_META),
    "spec": _obj({
        "nodeName": _S,
        "containers": _list(_CONTAINER, "name", "merge"),
        "volumes": _list({"name": _S, "emptyDir": _obj({"medium": _S}), "hostPath": _obj({"path": _S})},
                         "name", "merge,retainKeys"),
        "tolerations": _list({"key": _S, "operator": _S}),
    }),
    "status": _obj({
        "phase": _S, "hostIP": _S,
        "conditions": _list({"type": _S, "status": _S, "reason": _S, "lastTransitionTime": _S}, "type", "merge"),
        "podIPs": _list({"ip": _S}, "ip", "merge"),
        "containerStatuses": _list({"name": _S, "ready": _S, "restartCount": _S}),
    }),
}, name="Pod")
NODE = DictPatchSchema({
    "apiVersion": _S, "kind": _S, "metadata": _obj(_META),
    "spec": _obj({"podCIDR": _S, "podCIDRs": _list(None, None, "merge"), "taints": _list({"key": _S})}),
    "status": _obj({
        "conditions": _list({"type": _S, "status": _S, "lastHeartbeatTime": _S}, "type", "merge"),
        "addresses": _list({"type": _S, "address": _S}, "type", "merge"),
        "capacity": _MAP, "nodeInfo": _obj({"kubeletVersion": _S}),
    }),
}, name="Node")
SCHEMAS = {"pod": POD, "node": NODE}


def _frozen(*values):
    """Deep copies to compare inputs against after a call (inputs must not be mutated)."""
    return copy.deepcopy(values)


# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------

# Apply-side facts of apimachinery's strategicpatch tests (original, patch -> exact result,
# list order included), against the MergeItem test type.
SMP_UPSTREAM_CASES = [
    ('nil original', {}, {'name': 1, 'value': 1}, {'name': 1, 'value': 1}),
    ('nil original (three-way)', {'name': 1, 'other': 'a'}, {'value': 1}, {'name': 1, 'other': 'a', 'value': 1}),
    ('nil patch', {'name': 1}, {}, {'name': 1}),
    ('add field to map', {'name': 1}, {'value': 1}, {'name': 1, 'value': 1}),
    ('add field to map with conflict (three-way)',
     {'name': 'a', 'other': 'a'},
     {'name': 1, 'value': 1},
     {'name': 1, 'other': 'a', 'value': 1}),
    ('add field and delete field from map', {'name': 1}, {'name': None, 'value': 1}, {'value': 1}),
    ('add field and delete field from map (three-way)',
     {'name': 1, 'other': 'a'},
     {'name': None, 'value': 1},
     {'other': 'a', 'value': 1}),
    ('add field and delete field from map with conflict (three-way)',
     {'name': 'a', 'other': 'a'},
     {'name': None, 'value': 1},
     {'other': 'a', 'value': 1}),
    ('delete field from nested map',
     {'simpleMap': {'key1': 1, 'key2': 1}},
     {'simpleMap': {'key2': None}},
     {'simpleMap': {'key1': 1}}),
    ('delete field from nested map (three-way)',
     {'simpleMap': {'key1': 1, 'key2': 1, 'other': 'a'}},
     {'simpleMap': {'key2': None}},
     {'simpleMap': {'key1': 1, 'other': 'a'}}),
    ('delete field from nested map with conflict (three-way)',
     {'simpleMap': {'key1': 'a', 'key2': 1, 'other': 'a'}},
     {'simpleMap': {'key1': 1, 'key2': None}},
     {'simpleMap': {'key1': 1, 'other': 'a'}}),
    ('delete all fields from map', {'name': 1, 'value': 1}, {'name': None, 'value': None}, {}),
    ('delete all fields from map (three-way)',
     {'name': 1, 'other': 'a', 'value': 1},
     {'name': None, 'value': None},
     {'other': 'a'}),
    ('delete all fields from map with conflict (three-way)',
     {'name': 1, 'other': 'a', 'value': 'a'},
     {'name': None, 'value': None},
     {'other': 'a'}),
    ('add field and delete all fields from map',
     {'name': 1, 'value': 1},
     {'name': None, 'other': 'a', 'value': None},
     {'other': 'a'}),
    ('add field and delete all fields from map with conflict (three-way)',
     {'name': 1, 'other': 'b', 'value': 1},
     {'name': None, 'other': 'a', 'value': None},
     {'other': 'a'}),
    ('replace list of scalars',
     {'nonMergingIntList': [1, 2]},
     {'nonMergingIntList': [2, 3]},
     {'nonMergingIntList': [2, 3]}),
    ('replace list of scalars with conflict (three-way)',
     {'nonMergingIntList': [1, 4]},
     {'nonMergingIntList': [2, 3]},
     {'nonMergingIntList': [2, 3]}),
    ('delete all maps from merging list',
     {'mergingList': [{'name': 1}, {'name': 2}]},
     {'mergingList': [{'$patch': 'delete', 'name': 1}, {'$patch': 'delete', 'name': 2}]},
     {'mergingList': []}),
    ('delete all maps from merging list with conflict (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a'}, {'name': 2, 'other': 'b'}]},
     {'mergingList': [{'$patch': 'delete', 'name': 1}, {'$patch': 'delete', 'name': 2}]},
     {'mergingList': []}),
    ('delete all maps from empty merging list (three-way)',
     {'mergingList': []},
     {'mergingList': [{'$patch': 'delete', 'name': 1}, {'$patch': 'delete', 'name': 2}]},
     {'mergingList': []}),
    ('merge empty merging lists', {'mergingList': []}, {}, {'mergingList': []}),
    ('defined null values should propagate overwrite current fields (with conflict)',
     {'name': 2},
     {'name': 1, 'other': None, 'value': 1},
     {'name': 1, 'value': 1}),
    ('defined null values should propagate overwrite current fields (with conflict) (three-way)',
     {'name': 'a', 'other': 'a'},
     {'name': 1, 'other': None, 'value': 1},
     {'name': 1, 'value': 1}),
    ('defined null values should propagate removing original fields',
     {'name': 'original-name', 'value': 'original-value'},
     {'name': 'modified-name', 'value': None},
     {'name': 'modified-name'}),
    ('defined null values should propagate removing original fields (three-way)',
     {'name': 'original-name', 'other': 'current-other', 'value': 'original-value'},
     {'name': 'modified-name', 'value': None},
     {'name': 'modified-name', 'other': 'current-other'}),
    ('nil patch with retainKeys map',
     {'name': 'a', 'retainKeysMap': {'name': 'foo'}},
     {},
     {'name': 'a', 'retainKeysMap': {'name': 'foo'}}),
    ('nil patch with retainKeys map (three-way)',
     {'name': 'a', 'retainKeysMap': {'name': 'foo'}, 'value': 'b'},
     {},
     {'name': 'a', 'retainKeysMap': {'name': 'foo'}, 'value': 'b'}),
    ('retainKeys map with no change should not be present',
     {'name': 'a', 'retainKeysMap': {'name': 'foo'}},
     {'value': 'b'},
     {'name': 'a', 'retainKeysMap': {'name': 'foo'}, 'value': 'b'}),
    ('retainKeys map with no change should not be present (three-way)',
     {'name': 'a', 'other': 'c', 'retainKeysMap': {'name': 'foo'}},
     {'value': 'b'},
     {'name': 'a', 'other': 'c', 'retainKeysMap': {'name': 'foo'}, 'value': 'b'}),
    ('unique scalars when merging lists',
     {'mergingIntList': [1, 2]},
     {'mergingIntList': [2, 3]},
     {'mergingIntList': [1, 2, 3]}),
    ('delete map from nested map',
     {'simpleMap': {'key1': 1, 'key2': 1}},
     {'simpleMap': {'$patch': 'delete'}},
     {'simpleMap': {}}),
    ('delete all items from merging list',
     {'mergingList': [{'name': 1}, {'name': 2}]},
     {'mergingList': [{'$patch': 'replace'}]},
     {'mergingList': []}),
    ('merge empty merging lists #2', {'mergingList': []}, {'mergingList': []}, {'mergingList': []}),
    ('delete all keys from map', {'name': 1, 'value': 1}, {'$patch': 'replace'}, {}),
    ('add key and delete all keys from map', {'name': 1, 'value': 1}, {'$patch': 'replace', 'other': 'a'}, {'other': 'a'}),
    ('delete all duplicate entries in a merging list',
     {'mergingList': [{'name': 1}, {'name': 1}, {'name': 2, 'value': 'a'}, {'name': 3}, {'name': 3}]},
     {'mergingList': [{'$patch': 'delete', 'name': 1}, {'$patch': 'delete', 'name': 3}]},
     {'mergingList': [{'name': 2, 'value': 'a'}]}),
    ('retainKeys map can add a field when no retainKeys directive present',
     {'retainKeysMap': {'name': 'foo'}},
     {'retainKeysMap': {'value': 'bar'}},
     {'retainKeysMap': {'name': 'foo', 'value': 'bar'}}),
    ('retainKeys map can change a field when no retainKeys directive present',
     {'retainKeysMap': {'name': 'foo', 'value': 'a'}},
     {'retainKeysMap': {'value': 'b'}},
     {'retainKeysMap': {'name': 'foo', 'value': 'b'}}),
    ('retainKeys map can delete a field when no retainKeys directive present',
     {'retainKeysMap': {'name': 'foo', 'value': 'a'}},
     {'retainKeysMap': {'value': None}},
     {'retainKeysMap': {'name': 'foo'}}),
    ('retainKeys map merge an empty map',
     {'retainKeysMap': {'name': 'foo', 'value': 'a'}},
     {'retainKeysMap': {}},
     {'retainKeysMap': {'name': 'foo', 'value': 'a'}}),
    ('retainKeys list can add a field when no retainKeys directive present',
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo'}]},
     {'retainKeysMergingList': [{'name': 'foo', 'value': 'a'}]},
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'value': 'a'}]}),
    ('retainKeys list can change a field when no retainKeys directive present',
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'value': 'a'}]},
     {'retainKeysMergingList': [{'name': 'foo', 'value': 'b'}]},
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'value': 'b'}]}),
    ('retainKeys list can delete a field when no retainKeys directive present',
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'value': 'a'}]},
     {'retainKeysMergingList': [{'name': 'foo', 'value': None}]},
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo'}]}),
    ('preserve the order from the patch in a merging list',
     {'mergingList': [{'name': 1}, {'name': 2, 'value': 'b'}, {'name': 3}]},
     {'mergingList': [{'name': 3, 'value': 'c'}, {'name': 1, 'value': 'a'}, {'name': 2, 'other': 'x'}]},
     {'mergingList': [{'name': 3, 'value': 'c'}, {'name': 1, 'value': 'a'}, {'name': 2, 'other': 'x', 'value': 'b'}]}),
    ('preserve the order from the patch in a merging list 2',
     {'mergingList': [{'name': 1}, {'name': 2, 'value': 'b'}, {'name': 3}]},
     {'mergingList': [{'name': 3, 'value': 'c'}, {'name': 1, 'value': 'a'}]},
     {'mergingList': [{'name': 2, 'value': 'b'}, {'name': 3, 'value': 'c'}, {'name': 1, 'value': 'a'}]}),
    ('preserve the order from the patch in a merging int list',
     {'mergingIntList': [1, 2, 3]},
     {'mergingIntList': [3, 1, 2]},
     {'mergingIntList': [3, 1, 2]}),
    ('preserve the order from the patch in a merging int list #2',
     {'mergingIntList': [1, 2, 3]},
     {'mergingIntList': [3, 1]},
     {'mergingIntList': [2, 3, 1]}),
    ('nested patch merge with empty list',
     {'name': 'hi'},
     {'mergingList': [{'name': 'hello'}, {'$patch': 'delete', 'name': 'doesntexist'}]},
     {'mergingList': [{'name': 'hello'}], 'name': 'hi'}),
    ('nested patch merge with empty list (three-way)',
     {'mergingList': [{'name': 'hello2'}], 'name': 'hi'},
     {'$setElementOrder/mergingList': [{'name': 'hello'}, {'name': 'doesntexist'}], 'mergingList': [{'name': 'hello'}]},
     {'mergingList': [{'name': 'hello'}, {'name': 'hello2'}], 'name': 'hi'}),
    ('delete items in lists of scalars',
     {'mergingIntList': [1, 2, 3]},
     {'$deleteFromPrimitiveList/mergingIntList': [3], '$setElementOrder/mergingIntList': [1, 2]},
     {'mergingIntList': [1, 2]}),
    ('delete items in lists of scalars (three-way)',
     {'mergingIntList': [1, 2, 3, 4]},
     {'$deleteFromPrimitiveList/mergingIntList': [3], '$setElementOrder/mergingIntList': [1, 2]},
     {'mergingIntList': [1, 2, 4]}),
    ('delete all duplicate items in lists of scalars',
     {'mergingIntList': [1, 2, 3, 3]},
     {'$deleteFromPrimitiveList/mergingIntList': [3], '$setElementOrder/mergingIntList': [1, 2]},
     {'mergingIntList': [1, 2]}),
    ('delete all duplicate items in lists of scalars (three-way)',
     {'mergingIntList': [1, 2, 3, 3, 4]},
     {'$deleteFromPrimitiveList/mergingIntList': [3], '$setElementOrder/mergingIntList': [1, 2]},
     {'mergingIntList': [1, 2, 4]}),
    ('add and delete items in lists of scalars',
     {'mergingIntList': [1, 2, 3]},
     {'$deleteFromPrimitiveList/mergingIntList': [3],
      '$setElementOrder/mergingIntList': [1, 2, 4],
      'mergingIntList': [4]},
     {'mergingIntList': [1, 2, 4]}),
    ('add and delete items in lists of scalars (three-way)',
     {'mergingIntList': [1, 2, 3, 4]},
     {'$deleteFromPrimitiveList/mergingIntList': [3], '$setElementOrder/mergingIntList': [1, 2, 4]},
     {'mergingIntList': [1, 2, 4]}),
    ('merge lists of maps',
     {'mergingList': [{'name': 1}, {'name': 2, 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 4}, {'name': 1}, {'name': 2}, {'name': 3}],
      'mergingList': [{'name': 4, 'value': 4}, {'name': 3, 'value': 3}]},
     {'mergingList': [{'name': 4, 'value': 4}, {'name': 1}, {'name': 2, 'value': 2}, {'name': 3, 'value': 3}]}),
    ('merge lists of maps (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a'}, {'name': 2, 'other': 'b', 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 4}, {'name': 1}, {'name': 2}, {'name': 3}],
      'mergingList': [{'name': 4, 'value': 4}, {'name': 3, 'value': 3}]},
     {'mergingList': [{'name': 4, 'value': 4},
                      {'name': 1, 'other': 'a'},
                      {'name': 2, 'other': 'b', 'value': 2},
                      {'name': 3, 'value': 3}]}),
    ('merge lists of maps with conflict',
     {'mergingList': [{'name': 1}, {'name': 2, 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}, {'name': 3}], 'mergingList': [{'name': 3, 'value': 3}]},
     {'mergingList': [{'name': 1}, {'name': 2, 'value': 2}, {'name': 3, 'value': 3}]}),
    ('merge lists of maps with conflict (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a'}, {'name': 2, 'other': 'b', 'value': 3}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}, {'name': 3}],
      'mergingList': [{'name': 2, 'value': 2}, {'name': 3, 'value': 3}]},
     {'mergingList': [{'name': 1, 'other': 'a'}, {'name': 2, 'other': 'b', 'value': 2}, {'name': 3, 'value': 3}]}),
    ('add field to map in merging list',
     {'mergingList': [{'name': 1}, {'name': 2, 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}], 'mergingList': [{'name': 1, 'value': 1}]},
     {'mergingList': [{'name': 1, 'value': 1}, {'name': 2, 'value': 2}]}),
    ('add field to map in merging list (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a'}, {'name': 2, 'other': 'b', 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}], 'mergingList': [{'name': 1, 'value': 1}]},
     {'mergingList': [{'name': 1, 'other': 'a', 'value': 1}, {'name': 2, 'other': 'b', 'value': 2}]}),
    ('add field to map in merging list with conflict (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a'}, {'name': 3, 'other': 'b', 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}],
      'mergingList': [{'name': 1, 'value': 1}, {'name': 2, 'value': 2}]},
     {'mergingList': [{'name': 1, 'other': 'a', 'value': 1},
                      {'name': 2, 'value': 2},
                      {'name': 3, 'other': 'b', 'value': 2}]}),
    ('add duplicate field to map in merging list (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a', 'value': 1}, {'name': 2, 'other': 'b', 'value': 2}]},
     {},
     {'mergingList': [{'name': 1, 'other': 'a', 'value': 1}, {'name': 2, 'other': 'b', 'value': 2}]}),
    ('add an item that already exists in current object in merging list',
     {'mergingList': [{'name': 1, 'value': 'a'}, {'name': 2}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}, {'name': 3}], 'mergingList': [{'name': 3}]},
     {'mergingList': [{'name': 1, 'value': 'a'}, {'name': 2}, {'name': 3}]}),
    ('add an item that already exists in current object in merging list (three-way)',
     {'mergingList': [{'name': 1, 'other': 'x', 'value': 'a'}, {'name': 2}, {'name': 3}]},
     {},
     {'mergingList': [{'name': 1, 'other': 'x', 'value': 'a'}, {'name': 2}, {'name': 3}]}),
    ('add duplicate field to map in merging list with conflict (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a', 'value': 1}, {'name': 2, 'other': 'b', 'value': 3}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}], 'mergingList': [{'name': 2, 'value': 2}]},
     {'mergingList': [{'name': 1, 'other': 'a', 'value': 1}, {'name': 2, 'other': 'b', 'value': 2}]}),
    ('replace map field value in merging list',
     {'mergingList': [{'name': 1, 'value': 1}, {'name': 2, 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}], 'mergingList': [{'name': 1, 'value': 'a'}]},
     {'mergingList': [{'name': 1, 'value': 'a'}, {'name': 2, 'value': 2}]}),
    ('replace map field value in merging list (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a', 'value': 1}, {'name': 2, 'other': 'b', 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}], 'mergingList': [{'name': 1, 'value': 'a'}]},
     {'mergingList': [{'name': 1, 'other': 'a', 'value': 'a'}, {'name': 2, 'other': 'b', 'value': 2}]}),
    ('replace map field value in merging list with conflict (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a', 'value': 3}, {'name': 2, 'other': 'b', 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}], 'mergingList': [{'name': 1, 'value': 'a'}]},
     {'mergingList': [{'name': 1, 'other': 'a', 'value': 'a'}, {'name': 2, 'other': 'b', 'value': 2}]}),
    ('delete map from merging list',
     {'mergingList': [{'name': 1}, {'name': 2}]},
     {'$setElementOrder/mergingList': [{'name': 2}], 'mergingList': [{'$patch': 'delete', 'name': 1}]},
     {'mergingList': [{'name': 2}]}),
    ('delete map from merging list (three-way)',
     {'mergingList': [{'name': 1}, {'name': 2, 'other': 'b'}]},
     {'$setElementOrder/mergingList': [{'name': 2}], 'mergingList': [{'$patch': 'delete', 'name': 1}]},
     {'mergingList': [{'name': 2, 'other': 'b'}]}),
    ('delete map from merging list with conflict (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a'}, {'name': 2, 'other': 'b'}]},
     {'$setElementOrder/mergingList': [{'name': 2}], 'mergingList': [{'$patch': 'delete', 'name': 1}]},
     {'mergingList': [{'name': 2, 'other': 'b'}]}),
    ('delete missing map from merging list (three-way)',
     {'mergingList': [{'name': 2, 'other': 'b'}]},
     {'$setElementOrder/mergingList': [{'name': 2}], 'mergingList': [{'$patch': 'delete', 'name': 1}]},
     {'mergingList': [{'name': 2, 'other': 'b'}]}),
    ('delete missing map from merging list with conflict (three-way)',
     {'mergingList': [{'name': 3, 'other': 'a'}]},
     {'$setElementOrder/mergingList': [{'name': 2}], 'mergingList': [{'name': 2}, {'$patch': 'delete', 'name': 1}]},
     {'mergingList': [{'name': 2}, {'name': 3, 'other': 'a'}]}),
    ('add map and delete map from merging list',
     {'mergingList': [{'name': 1}, {'name': 2}]},
     {'$setElementOrder/mergingList': [{'name': 2}, {'name': 3}],
      'mergingList': [{'name': 3}, {'$patch': 'delete', 'name': 1}]},
     {'mergingList': [{'name': 2}, {'name': 3}]}),
    ('add map and delete map from merging list (three-way)',
     {'mergingList': [{'name': 1}, {'name': 2, 'other': 'b'}, {'name': 4, 'other': 'c'}]},
     {'$setElementOrder/mergingList': [{'name': 2}, {'name': 3}],
      'mergingList': [{'name': 3}, {'$patch': 'delete', 'name': 1}]},
     {'mergingList': [{'name': 2, 'other': 'b'}, {'name': 4, 'other': 'c'}, {'name': 3}]}),
    ('add map and delete map from merging list with conflict (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a'}, {'name': 4, 'other': 'c'}]},
     {'$setElementOrder/mergingList': [{'name': 2}, {'name': 3}],
      'mergingList': [{'name': 2}, {'name': 3}, {'$patch': 'delete', 'name': 1}]},
     {'mergingList': [{'name': 4, 'other': 'c'}, {'name': 2}, {'name': 3}]}),
    ('delete field from map in merging list',
     {'mergingList': [{'name': 1, 'value': 1}, {'name': 2, 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}], 'mergingList': [{'name': 1, 'value': None}]},
     {'mergingList': [{'name': 1}, {'name': 2, 'value': 2}]}),
    ('delete field from map in merging list (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a', 'value': 1}, {'name': 2, 'other': 'b', 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}], 'mergingList': [{'name': 1, 'value': None}]},
     {'mergingList': [{'name': 1, 'other': 'a'}, {'name': 2, 'other': 'b', 'value': 2}]}),
    ('delete field from map in merging list with conflict (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a', 'value': 'a'}, {'name': 2, 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}], 'mergingList': [{'name': 1, 'value': None}]},
     {'mergingList': [{'name': 1, 'other': 'a'}, {'name': 2, 'value': 2}]}),
    ('delete missing field from map in merging list (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a'}, {'name': 2, 'other': 'b', 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}], 'mergingList': [{'name': 1, 'value': None}]},
     {'mergingList': [{'name': 1, 'other': 'a'}, {'name': 2, 'other': 'b', 'value': 2}]}),
    ('delete missing field from map in merging list with conflict (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a'}, {'name': 2, 'other': 'b'}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}],
      'mergingList': [{'name': 1, 'value': None}, {'name': 2, 'value': 2}]},
     {'mergingList': [{'name': 1, 'other': 'a'}, {'name': 2, 'other': 'b', 'value': 2}]}),
    ('replace non merging list nested in merging list',
     {'mergingList': [{'name': 1, 'nonMergingList': [{'name': 1}, {'name': 2, 'value': 2}]}, {'name': 2}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}],
      'mergingList': [{'name': 1, 'nonMergingList': [{'name': 1, 'value': 1}]}]},
     {'mergingList': [{'name': 1, 'nonMergingList': [{'name': 1, 'value': 1}]}, {'name': 2}]}),
    ('replace non merging list nested in merging list (three-way)',
     {'mergingList': [{'name': 1, 'nonMergingList': [{'name': 1}, {'name': 2, 'value': 2}], 'other': 'a'},
                      {'name': 2, 'other': 'b'}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}],
      'mergingList': [{'name': 1, 'nonMergingList': [{'name': 1, 'value': 1}]}]},
     {'mergingList': [{'name': 1, 'nonMergingList': [{'name': 1, 'value': 1}], 'other': 'a'}, {'name': 2, 'other': 'b'}]}),
    ('replace non merging list nested in merging list with value conflict (three-way)',
     {'mergingList': [{'name': 1, 'nonMergingList': [{'name': 1, 'value': 'c'}], 'other': 'a'},
                      {'name': 2, 'other': 'b'}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}],
      'mergingList': [{'name': 1, 'nonMergingList': [{'name': 1, 'value': 1}]}]},
     {'mergingList': [{'name': 1, 'nonMergingList': [{'name': 1, 'value': 1}], 'other': 'a'}, {'name': 2, 'other': 'b'}]}),
    ('replace non merging list nested in merging list with deletion conflict (three-way)',
     {'mergingList': [{'name': 1, 'nonMergingList': [{'name': 2, 'value': 2}], 'other': 'a'}, {'name': 2, 'other': 'b'}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}],
      'mergingList': [{'name': 1, 'nonMergingList': [{'name': 1, 'value': 1}]}]},
     {'mergingList': [{'name': 1, 'nonMergingList': [{'name': 1, 'value': 1}], 'other': 'a'}, {'name': 2, 'other': 'b'}]}),
    ('add field to map in merging list nested in merging list',
     {'mergingList': [{'mergingList': [{'name': 1}, {'name': 2, 'value': 2}], 'name': 1}, {'name': 2}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}],
      'mergingList': [{'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}],
                       'mergingList': [{'name': 1, 'value': 1}],
                       'name': 1}]},
     {'mergingList': [{'mergingList': [{'name': 1, 'value': 1}, {'name': 2, 'value': 2}], 'name': 1}, {'name': 2}]}),
    ('add field to map in merging list nested in merging list (three-way)',
     {'mergingList': [{'mergingList': [{'name': 1}, {'name': 2, 'value': 2}], 'name': 1, 'other': 'a'},
                      {'name': 2, 'other': 'b'}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}],
      'mergingList': [{'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}],
                       'mergingList': [{'name': 1, 'value': 1}],
                       'name': 1}]},
     {'mergingList': [{'mergingList': [{'name': 1, 'value': 1}, {'name': 2, 'value': 2}], 'name': 1, 'other': 'a'},
                      {'name': 2, 'other': 'b'}]}),
    ('add field to map in merging list nested in merging list with value conflict (three-way)',
     {'mergingList': [{'mergingList': [{'name': 1, 'other': 'c', 'value': 'a'}, {'name': 2, 'other': 'd', 'value': 'b'}],
                       'name': 1,
                       'other': 'a'},
                      {'name': 2, 'other': 'b'}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}],
      'mergingList': [{'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}],
                       'mergingList': [{'name': 1, 'value': 1}, {'name': 2, 'value': 2}],
                       'name': 1}]},
     {'mergingList': [{'mergingList': [{'name': 1, 'other': 'c', 'value': 1}, {'name': 2, 'other': 'd', 'value': 2}],
                       'name': 1,
                       'other': 'a'},
                      {'name': 2, 'other': 'b'}]}),
    ('add field to map in merging list nested in merging list with deletion conflict (three-way)',
     {'mergingList': [{'mergingList': [{'name': 2, 'other': 'd', 'value': 2}], 'name': 1, 'other': 'a'},
                      {'name': 2, 'other': 'b'}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}],
      'mergingList': [{'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}],
                       'mergingList': [{'name': 1, 'value': 1}],
                       'name': 1}]},
     {'mergingList': [{'mergingList': [{'name': 1, 'value': 1}, {'name': 2, 'other': 'd', 'value': 2}],
                       'name': 1,
                       'other': 'a'},
                      {'name': 2, 'other': 'b'}]}),
    ('add field to map in merging list nested in merging list with deletion conflict',
     {'mergingList': [{'mergingList': [{'name': 1}, {'name': 2, 'value': 2}], 'name': 1}, {'name': 2}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}],
      'mergingList': [{'$setElementOrder/mergingList': [{'name': 2}, {'name': 1}],
                       'mergingList': [{'name': 1, 'value': 1}],
                       'name': 1}]},
     {'mergingList': [{'mergingList': [{'name': 2, 'value': 2}, {'name': 1, 'value': 1}], 'name': 1}, {'name': 2}]}),
    ('add field to map in merging list nested in merging list with deletion conflict (three-way) #2',
     {'mergingList': [{'mergingList': [{'name': 2, 'other': 'd', 'value': 2}], 'name': 1, 'other': 'a'},
                      {'name': 2, 'other': 'b'}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 2}],
      'mergingList': [{'$setElementOrder/mergingList': [{'name': 2}, {'name': 1}],
                       'mergingList': [{'name': 1, 'value': 1}],
                       'name': 1}]},
     {'mergingList': [{'mergingList': [{'name': 2, 'other': 'd', 'value': 2}, {'name': 1, 'value': 1}],
                       'name': 1,
                       'other': 'a'},
                      {'name': 2, 'other': 'b'}]}),
    ('add map to merging list by pointer',
     {'mergeItemPtr': [{'name': 1}]},
     {'$setElementOrder/mergeItemPtr': [{'name': 1}, {'name': 2}], 'mergeItemPtr': [{'name': 2}]},
     {'mergeItemPtr': [{'name': 1}, {'name': 2}]}),
    ('add map to merging list by pointer (three-way)',
     {'mergeItemPtr': [{'name': 1, 'other': 'a'}, {'name': 3}]},
     {'$setElementOrder/mergeItemPtr': [{'name': 1}, {'name': 2}], 'mergeItemPtr': [{'name': 2}]},
     {'mergeItemPtr': [{'name': 1, 'other': 'a'}, {'name': 2}, {'name': 3}]}),
    ('add map to merging list by pointer with conflict (three-way)',
     {'mergeItemPtr': [{'name': 3}]},
     {'$setElementOrder/mergeItemPtr': [{'name': 1}, {'name': 2}], 'mergeItemPtr': [{'name': 1}, {'name': 2}]},
     {'mergeItemPtr': [{'name': 1}, {'name': 2}, {'name': 3}]}),
    ('add field to map in merging list by pointer',
     {'mergeItemPtr': [{'mergeItemPtr': [{'name': 1}, {'name': 2, 'value': 2}], 'name': 1}, {'name': 2}]},
     {'$setElementOrder/mergeItemPtr': [{'name': 1}, {'name': 2}],
      'mergeItemPtr': [{'$setElementOrder/mergeItemPtr': [{'name': 1}, {'name': 2}],
                        'mergeItemPtr': [{'name': 1, 'value': 1}],
                        'name': 1}]},
     {'mergeItemPtr': [{'mergeItemPtr': [{'name': 1, 'value': 1}, {'name': 2, 'value': 2}], 'name': 1}, {'name': 2}]}),
    ('add field to map in merging list by pointer (three-way)',
     {'mergeItemPtr': [{'mergeItemPtr': [{'name': 1, 'other': 'a'}, {'name': 2, 'other': 'b', 'value': 2}],
                        'name': 1,
                        'other': 'a'},
                       {'name': 2, 'other': 'b'}]},
     {'$setElementOrder/mergeItemPtr': [{'name': 1}, {'name': 2}],
      'mergeItemPtr': [{'$setElementOrder/mergeItemPtr': [{'name': 1}, {'name': 2}],
                        'mergeItemPtr': [{'name': 1, 'value': 1}],
                        'name': 1}]},
     {'mergeItemPtr': [{'mergeItemPtr': [{'name': 1, 'other': 'a', 'value': 1}, {'name': 2, 'other': 'b', 'value': 2}],
                        'name': 1,
                        'other': 'a'},
                       {'name': 2, 'other': 'b'}]}),
    ('add field to map in merging list by pointer with conflict (three-way)',
     {'mergeItemPtr': [{'mergeItemPtr': [{'name': 1, 'value': 'a'}, {'name': 2, 'other': 'b', 'value': 2}],
                        'name': 1,
                        'other': 'a'},
                       {'name': 2, 'other': 'b'}]},
     {'$setElementOrder/mergeItemPtr': [{'name': 1}, {'name': 2}],
      'mergeItemPtr': [{'$setElementOrder/mergeItemPtr': [{'name': 1}, {'name': 2}],
                        'mergeItemPtr': [{'name': 1, 'value': 1}],
                        'name': 1}]},
     {'mergeItemPtr': [{'mergeItemPtr': [{'name': 1, 'value': 1}, {'name': 2, 'other': 'b', 'value': 2}],
                        'name': 1,
                        'other': 'a'},
                       {'name': 2, 'other': 'b'}]}),
    ('merge lists of scalars',
     {'mergingIntList': [1, 2]},
     {'$setElementOrder/mergingIntList': [1, 2, 3], 'mergingIntList': [3]},
     {'mergingIntList': [1, 2, 3]}),
    ('merge lists of scalars (three-way)',
     {'mergingIntList': [1, 2, 4]},
     {'$setElementOrder/mergingIntList': [1, 2, 3], 'mergingIntList': [3]},
     {'mergingIntList': [1, 2, 3, 4]}),
    ('add duplicate field to map in merging int list (three-way)',
     {'mergingIntList': [1, 2, 3]},
     {},
     {'mergingIntList': [1, 2, 3]}),
    ('add an item in a list of primitives and preserve order',
     {'mergingIntList': [1, 2]},
     {'$setElementOrder/mergingIntList': [3, 1, 2], 'mergingIntList': [3]},
     {'mergingIntList': [3, 1, 2]}),
    ('add an item in a list of primitives and preserve order (three-way)',
     {'mergingIntList': [1, 4, 2]},
     {'$setElementOrder/mergingIntList': [3, 1, 2], 'mergingIntList': [3]},
     {'mergingIntList': [3, 1, 4, 2]}),
    ('delete an item in a list of primitives and preserve order',
     {'mergingIntList': [1, 2, 3]},
     {'$deleteFromPrimitiveList/mergingIntList': [3], '$setElementOrder/mergingIntList': [2, 1]},
     {'mergingIntList': [2, 1]}),
    ('add an item in a list and preserve order',
     {'mergingList': [{'name': 1}, {'name': 2, 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 3}, {'name': 1}, {'name': 2}], 'mergingList': [{'name': 3, 'value': 3}]},
     {'mergingList': [{'name': 3, 'value': 3}, {'name': 1}, {'name': 2, 'value': 2}]}),
    ('add an item in a list and preserve order (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a'}, {'name': 2, 'other': 'b', 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 3}, {'name': 1}, {'name': 2}], 'mergingList': [{'name': 3, 'value': 3}]},
     {'mergingList': [{'name': 3, 'value': 3}, {'name': 1, 'other': 'a'}, {'name': 2, 'other': 'b', 'value': 2}]}),
    ('add multiple items in a list and preserve order',
     {'mergingList': [{'name': 1}, {'name': 2, 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 4}, {'name': 2}, {'name': 3}],
      'mergingList': [{'name': 4, 'value': 4}, {'name': 3, 'value': 3}]},
     {'mergingList': [{'name': 1}, {'name': 4, 'value': 4}, {'name': 2, 'value': 2}, {'name': 3, 'value': 3}]}),
    ('add multiple items in a list and preserve order (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a'}, {'name': 2, 'other': 'b', 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 1}, {'name': 4}, {'name': 2}, {'name': 3}],
      'mergingList': [{'name': 4, 'value': 4}, {'name': 3, 'value': 3}]},
     {'mergingList': [{'name': 1, 'other': 'a'},
                      {'name': 4, 'value': 4},
                      {'name': 2, 'other': 'b', 'value': 2},
                      {'name': 3, 'value': 3}]}),
    ('delete an item in a list and preserve order',
     {'mergingList': [{'name': 1}, {'name': 3, 'value': 3}, {'name': 2, 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 2}, {'name': 1}], 'mergingList': [{'$patch': 'delete', 'name': 3}]},
     {'mergingList': [{'name': 2, 'value': 2}, {'name': 1}]}),
    ('delete an item in a list and preserve order (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a'}, {'name': 2, 'other': 'b', 'value': 2}, {'name': 3, 'value': 3}]},
     {'$setElementOrder/mergingList': [{'name': 2}, {'name': 1}], 'mergingList': [{'$patch': 'delete', 'name': 3}]},
     {'mergingList': [{'name': 2, 'other': 'b', 'value': 2}, {'name': 1, 'other': 'a'}]}),
    ('change an item in a list and preserve order',
     {'mergingList': [{'name': 1}, {'name': 3, 'value': 3}, {'name': 2, 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 2}, {'name': 3}, {'name': 1}],
      'mergingList': [{'name': 3, 'value': 'x'}]},
     {'mergingList': [{'name': 2, 'value': 2}, {'name': 3, 'value': 'x'}, {'name': 1}]}),
    ('change an item in a list and preserve order (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a'}, {'name': 2, 'other': 'b', 'value': 2}, {'name': 3, 'value': 3}]},
     {'$setElementOrder/mergingList': [{'name': 2}, {'name': 3}, {'name': 1}],
      'mergingList': [{'name': 3, 'value': 'x'}]},
     {'mergingList': [{'name': 2, 'other': 'b', 'value': 2}, {'name': 3, 'value': 'x'}, {'name': 1, 'other': 'a'}]}),
    ('add and delete an item in a list and preserve order',
     {'mergingList': [{'name': 1}, {'name': 3, 'value': 3}, {'name': 2, 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 4}, {'name': 2}, {'name': 1}],
      'mergingList': [{'name': 4, 'value': 4}, {'$patch': 'delete', 'name': 3}]},
     {'mergingList': [{'name': 4, 'value': 4}, {'name': 2, 'value': 2}, {'name': 1}]}),
    ('add and delete an item in a list and preserve order (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a'}, {'name': 2, 'other': 'b', 'value': 2}, {'name': 3, 'value': 3}]},
     {'$setElementOrder/mergingList': [{'name': 4}, {'name': 2}, {'name': 1}],
      'mergingList': [{'name': 4, 'value': 4}, {'$patch': 'delete', 'name': 3}]},
     {'mergingList': [{'name': 4, 'value': 4}, {'name': 2, 'other': 'b', 'value': 2}, {'name': 1, 'other': 'a'}]}),
    ('set elements order in a list',
     {'mergingList': [{'name': 1}, {'name': 3, 'value': 3}, {'name': 4, 'value': 4}, {'name': 2, 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 4}, {'name': 2}, {'name': 3}, {'name': 1}]},
     {'mergingList': [{'name': 4, 'value': 4}, {'name': 2, 'value': 2}, {'name': 3, 'value': 3}, {'name': 1}]}),
    ('set elements order in a list (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a'},
                      {'name': 3, 'value': 3},
                      {'name': 4, 'value': 4},
                      {'name': 2, 'value': 2}]},
     {'$setElementOrder/mergingList': [{'name': 4}, {'name': 2}, {'name': 3}, {'name': 1}]},
     {'mergingList': [{'name': 4, 'value': 4},
                      {'name': 2, 'value': 2},
                      {'name': 3, 'value': 3},
                      {'name': 1, 'other': 'a'}]}),
    ('set elements order in a list with server-only items (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a'},
                      {'name': 3, 'value': 3},
                      {'name': 4, 'value': 4},
                      {'name': 2, 'value': 2},
                      {'name': 9}]},
     {'$setElementOrder/mergingList': [{'name': 4}, {'name': 2}, {'name': 3}, {'name': 1}]},
     {'mergingList': [{'name': 4, 'value': 4},
                      {'name': 2, 'value': 2},
                      {'name': 3, 'value': 3},
                      {'name': 1, 'other': 'a'},
                      {'name': 9}]}),
    ('set elements order in a list with server-only items 2',
     {'mergingList': [{'name': 1}, {'name': 2, 'value': 2}, {'name': 3, 'value': 3}, {'name': 4, 'value': 4}]},
     {'$setElementOrder/mergingList': [{'name': 2}, {'name': 1}, {'name': 4}, {'name': 3}]},
     {'mergingList': [{'name': 2, 'value': 2}, {'name': 1}, {'name': 4, 'value': 4}, {'name': 3, 'value': 3}]}),
    ('set elements order in a list with server-only items 2 (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a'},
                      {'name': 2, 'value': 2},
                      {'name': 9},
                      {'name': 3, 'value': 3},
                      {'name': 4, 'value': 4}]},
     {'$setElementOrder/mergingList': [{'name': 2}, {'name': 1}, {'name': 4}, {'name': 3}]},
     {'mergingList': [{'name': 2, 'value': 2},
                      {'name': 1, 'other': 'a'},
                      {'name': 9},
                      {'name': 4, 'value': 4},
                      {'name': 3, 'value': 3}]}),
    ('set elements order in a list with server-only items 3 (three-way)',
     {'mergingList': [{'name': 1, 'other': 'a'},
                      {'name': 2, 'value': 2},
                      {'name': 7},
                      {'name': 9},
                      {'name': 8},
                      {'name': 3, 'value': 3},
                      {'name': 4, 'value': 4}]},
     {'$setElementOrder/mergingList': [{'name': 2}, {'name': 1}, {'name': 4}, {'name': 3}]},
     {'mergingList': [{'name': 2, 'value': 2},
                      {'name': 1, 'other': 'a'},
                      {'name': 7},
                      {'name': 9},
                      {'name': 8},
                      {'name': 4, 'value': 4},
                      {'name': 3, 'value': 3}]}),
    ('add multiple items in a int list and preserve order',
     {'mergingIntList': [1, 2]},
     {'$setElementOrder/mergingIntList': [1, 4, 2, 3], 'mergingIntList': [4, 3]},
     {'mergingIntList': [1, 4, 2, 3]}),
    ('delete an item in a int list and preserve order',
     {'mergingIntList': [1, 3, 2]},
     {'$deleteFromPrimitiveList/mergingIntList': [3], '$setElementOrder/mergingIntList': [2, 1]},
     {'mergingIntList': [2, 1]}),
    ('add and delete an item in a int list and preserve order',
     {'mergingIntList': [1, 3, 2]},
     {'$deleteFromPrimitiveList/mergingIntList': [3],
      '$setElementOrder/mergingIntList': [4, 2, 1],
      'mergingIntList': [4]},
     {'mergingIntList': [4, 2, 1]}),
    ('add and delete an item in a int list and preserve order (three-way)',
     {'mergingIntList': [1, 2, 3]},
     {'$deleteFromPrimitiveList/mergingIntList': [3],
      '$setElementOrder/mergingIntList': [4, 2, 1],
      'mergingIntList': [4]},
     {'mergingIntList': [4, 2, 1]}),
    ('set elements order in a int list',
     {'mergingIntList': [1, 3, 4, 2]},
     {'$setElementOrder/mergingIntList': [4, 2, 3, 1]},
     {'mergingIntList': [4, 2, 3, 1]}),
    ('set elements order in a int list with server-only items (three-way)',
     {'mergingIntList': [1, 3, 4, 2, 9]},
     {'$setElementOrder/mergingIntList': [4, 2, 3, 1]},
     {'mergingIntList': [4, 2, 3, 1, 9]}),
    ('set elements order in a int list with server-only items 2',
     {'mergingIntList': [1, 2, 3, 4]},
     {'$setElementOrder/mergingIntList': [2, 1, 4, 3]},
     {'mergingIntList': [2, 1, 4, 3]}),
    ('set elements order in a int list with server-only items 2 (three-way)',
     {'mergingIntList': [1, 2, 9, 3, 4]},
     {'$setElementOrder/mergingIntList': [2, 1, 4, 3]},
     {'mergingIntList': [2, 1, 9, 4, 3]}),
    ('set elements order in a int list with server-only items 3 (three-way)',
     {'mergingIntList': [1, 2, 7, 9, 8, 3, 4]},
     {'$setElementOrder/mergingIntList': [2, 1, 4, 3]},
     {'mergingIntList': [2, 1, 7, 9, 8, 4, 3]}),
    ('behavior of set element order for a merging list with duplicate',
     {'mergingList': [{'name': 1}, {'name': 2, 'value': 'dup1'}, {'name': 3}, {'name': 2, 'value': 'dup2'}, {'name': 4}]},
     {'$setElementOrder/mergingList': [{'name': 2}, {'name': 1}, {'name': 4}, {'name': 3}, {'name': 2}]},
     {'mergingList': [{'name': 2, 'value': 'dup1'}, {'name': 2, 'value': 'dup2'}, {'name': 1}, {'name': 4}, {'name': 3}]}),
    ('behavior of set element order for a merging int list with duplicate',
     {'mergingIntList': [1, 2, 3, 2, 4]},
     {'$setElementOrder/mergingIntList': [2, 1, 4, 3, 2]},
     {'mergingIntList': [2, 2, 1, 4, 3]}),
    ('retainKeys map should clear defaulted field',
     {},
     {'retainKeysMap': {'other': 'bar'}},
     {'retainKeysMap': {'other': 'bar'}}),
    ('retainKeys map should clear defaulted field (three-way)',
     {'retainKeysMap': {'value': 'foo'}},
     {'retainKeysMap': {'$retainKeys': ['other'], 'other': 'bar'}},
     {'retainKeysMap': {'other': 'bar'}}),
    ('retainKeys map should clear defaulted field with conflict (discriminated union)',
     {},
     {'retainKeysMap': {'name': 'type2', 'other': 'bar'}},
     {'retainKeysMap': {'name': 'type2', 'other': 'bar'}}),
    ('retainKeys map should clear defaulted field with conflict (discriminated union) (three-way)',
     {'retainKeysMap': {'name': 'type1', 'value': 'foo'}},
     {'retainKeysMap': {'$retainKeys': ['name', 'other'], 'name': 'type2', 'other': 'bar'}},
     {'retainKeysMap': {'name': 'type2', 'other': 'bar'}}),
    ('retainKeys map adds a field',
     {'retainKeysMap': {'name': 'foo'}},
     {'retainKeysMap': {'$retainKeys': ['name', 'value'], 'value': 'bar'}},
     {'retainKeysMap': {'name': 'foo', 'value': 'bar'}}),
    ('retainKeys map adds a field and clear a field (three-way)',
     {'retainKeysMap': {'name': 'foo', 'other': 'a'}},
     {'retainKeysMap': {'$retainKeys': ['name', 'value'], 'value': 'bar'}},
     {'retainKeysMap': {'name': 'foo', 'value': 'bar'}}),
    ('retainKeys map deletes a field',
     {'retainKeysMap': {'name': 'foo', 'value': 'bar'}},
     {'retainKeysMap': {'$retainKeys': ['name'], 'value': None}},
     {'retainKeysMap': {'name': 'foo'}}),
    ('retainKeys map deletes a field and clears a field (three-way)',
     {'retainKeysMap': {'name': 'foo', 'other': 'a', 'value': 'bar'}},
     {'retainKeysMap': {'$retainKeys': ['name'], 'value': None}},
     {'retainKeysMap': {'name': 'foo'}}),
    ('retainKeys map clears a field',
     {'retainKeysMap': {'name': 'foo', 'value': 'bar'}},
     {},
     {'retainKeysMap': {'name': 'foo', 'value': 'bar'}}),
    ('retainKeys map clears a field (three-way)',
     {'retainKeysMap': {'name': 'foo', 'other': 'a', 'value': 'bar'}},
     {'retainKeysMap': {'$retainKeys': ['name', 'value']}},
     {'retainKeysMap': {'name': 'foo', 'value': 'bar'}}),
    ('retainKeys map nested map with no change',
     {'retainKeysMap': {'name': 'foo', 'simpleMap': {'key1': 'a'}}},
     {'retainKeysMap': {'$retainKeys': ['name', 'simpleMap', 'value'], 'value': 'bar'}},
     {'retainKeysMap': {'name': 'foo', 'simpleMap': {'key1': 'a'}, 'value': 'bar'}}),
    ('retainKeys map adds a field in a nested map',
     {'retainKeysMap': {'name': 'foo', 'simpleMap': {'key1': 'a'}, 'value': 'bar'}},
     {'retainKeysMap': {'$retainKeys': ['name', 'simpleMap', 'value'], 'simpleMap': {'key2': 'b'}}},
     {'retainKeysMap': {'name': 'foo', 'simpleMap': {'key1': 'a', 'key2': 'b'}, 'value': 'bar'}}),
    ('retainKeys map adds a field in a nested map (three-way)',
     {'retainKeysMap': {'name': 'foo', 'simpleMap': {'key1': 'a', 'key3': 'c'}, 'value': 'bar'}},
     {'retainKeysMap': {'$retainKeys': ['name', 'simpleMap', 'value'], 'simpleMap': {'key2': 'b'}}},
     {'retainKeysMap': {'name': 'foo', 'simpleMap': {'key1': 'a', 'key2': 'b', 'key3': 'c'}, 'value': 'bar'}}),
    ('retainKeys map deletes a field in a nested map',
     {'retainKeysMap': {'name': 'foo', 'simpleMap': {'key1': 'a', 'key2': 'b'}, 'value': 'bar'}},
     {'retainKeysMap': {'$retainKeys': ['name', 'simpleMap', 'value'], 'simpleMap': {'key2': None}}},
     {'retainKeysMap': {'name': 'foo', 'simpleMap': {'key1': 'a'}, 'value': 'bar'}}),
    ('retainKeys map deletes a field in a nested map (three-way)',
     {'retainKeysMap': {'name': 'foo', 'simpleMap': {'key1': 'a', 'key2': 'b', 'key3': 'c'}, 'value': 'bar'}},
     {'retainKeysMap': {'$retainKeys': ['name', 'simpleMap', 'value'], 'simpleMap': {'key2': None}}},
     {'retainKeysMap': {'name': 'foo', 'simpleMap': {'key1': 'a', 'key3': 'c'}, 'value': 'bar'}}),
    ('retainKeys map changes a field in a nested map',
     {'retainKeysMap': {'name': 'foo', 'simpleMap': {'key1': 'a', 'key2': 'b'}, 'value': 'bar'}},
     {'retainKeysMap': {'$retainKeys': ['name', 'simpleMap', 'value'], 'simpleMap': {'key1': 'x'}}},
     {'retainKeysMap': {'name': 'foo', 'simpleMap': {'key1': 'x', 'key2': 'b'}, 'value': 'bar'}}),
    ('retainKeys map changes a field in a nested map (three-way)',
     {'retainKeysMap': {'name': 'foo', 'simpleMap': {'key1': 'a', 'key2': 'b', 'key3': 'c'}, 'value': 'bar'}},
     {'retainKeysMap': {'$retainKeys': ['name', 'simpleMap', 'value'], 'simpleMap': {'key1': 'x'}}},
     {'retainKeysMap': {'name': 'foo', 'simpleMap': {'key1': 'x', 'key2': 'b', 'key3': 'c'}, 'value': 'bar'}}),
    ('retainKeys map changes a field in a nested map with conflict',
     {'retainKeysMap': {'name': 'foo', 'simpleMap': {'key1': 'old', 'key2': 'b'}, 'value': 'bar'}},
     {'retainKeysMap': {'$retainKeys': ['name', 'simpleMap', 'value'], 'simpleMap': {'key1': 'modified'}}},
     {'retainKeysMap': {'name': 'foo', 'simpleMap': {'key1': 'modified', 'key2': 'b'}, 'value': 'bar'}}),
    ('retainKeys map changes a field in a nested map with conflict (three-way)',
     {'retainKeysMap': {'name': 'foo', 'simpleMap': {'key1': 'new', 'key2': 'b', 'key3': 'c'}, 'value': 'bar'}},
     {'retainKeysMap': {'$retainKeys': ['name', 'simpleMap', 'value'], 'simpleMap': {'key1': 'modified'}}},
     {'retainKeysMap': {'name': 'foo', 'simpleMap': {'key1': 'modified', 'key2': 'b', 'key3': 'c'}, 'value': 'bar'}}),
    ('retainKeys map replaces non-merging list',
     {'retainKeysMap': {'name': 'foo', 'nonMergingList': [{'name': 'a'}, {'name': 'b'}], 'value': 'bar'}},
     {'retainKeysMap': {'$retainKeys': ['name', 'nonMergingList', 'value'],
                        'nonMergingList': [{'name': 'a'}, {'name': 'c'}, {'name': 'b'}]}},
     {'retainKeysMap': {'name': 'foo', 'nonMergingList': [{'name': 'a'}, {'name': 'c'}, {'name': 'b'}], 'value': 'bar'}}),
    ('retainKeys map nested non-merging list with no change',
     {'retainKeysMap': {'name': 'foo', 'nonMergingList': [{'name': 'a'}, {'name': 'b'}]}},
     {'retainKeysMap': {'$retainKeys': ['name', 'nonMergingList', 'value'], 'value': 'bar'}},
     {'retainKeysMap': {'name': 'foo', 'nonMergingList': [{'name': 'a'}, {'name': 'b'}], 'value': 'bar'}}),
    ('retainKeys map nested non-merging list with no change with conflict (three-way)',
     {'retainKeysMap': {'name': 'foo', 'nonMergingList': [{'name': 'a'}, {'name': 'b'}, {'name': 'c'}]}},
     {'retainKeysMap': {'$retainKeys': ['name', 'nonMergingList', 'value'],
                        'nonMergingList': [{'name': 'a'}, {'name': 'b'}],
                        'value': 'bar'}},
     {'retainKeysMap': {'name': 'foo', 'nonMergingList': [{'name': 'a'}, {'name': 'b'}], 'value': 'bar'}}),
    ('retainKeys map deletes nested non-merging list',
     {'retainKeysMap': {'name': 'foo', 'nonMergingList': [{'name': 'a'}, {'name': 'b'}]}},
     {'retainKeysMap': {'$retainKeys': ['name', 'value'], 'nonMergingList': None, 'value': 'bar'}},
     {'retainKeysMap': {'name': 'foo', 'value': 'bar'}}),
    ('retainKeys map delete nested non-merging list with conflict (three-way)',
     {'retainKeysMap': {'name': 'foo', 'nonMergingList': [{'name': 'a'}, {'name': 'b'}, {'name': 'c'}]}},
     {'retainKeysMap': {'$retainKeys': ['name', 'value'], 'nonMergingList': None, 'value': 'bar'}},
     {'retainKeysMap': {'name': 'foo', 'value': 'bar'}}),
    ('retainKeys map nested merging int list with no change',
     {'retainKeysMap': {'mergingIntList': [1, 2], 'name': 'foo'}},
     {'retainKeysMap': {'$retainKeys': ['mergingIntList', 'name', 'value'], 'value': 'bar'}},
     {'retainKeysMap': {'mergingIntList': [1, 2], 'name': 'foo', 'value': 'bar'}}),
    ('retainKeys map nested merging int list with no change (three-way)',
     {'retainKeysMap': {'mergingIntList': [1, 2, 3], 'name': 'foo'}},
     {'retainKeysMap': {'$retainKeys': ['mergingIntList', 'name', 'value'],
                        '$setElementOrder/mergingIntList': [1, 2],
                        'value': 'bar'}},
     {'retainKeysMap': {'mergingIntList': [1, 2, 3], 'name': 'foo', 'value': 'bar'}}),
    ('retainKeys map adds an item in nested merging int list',
     {'retainKeysMap': {'mergingIntList': [1, 2], 'name': 'foo'}},
     {'retainKeysMap': {'$retainKeys': ['mergingIntList', 'name'],
                        '$setElementOrder/mergingIntList': [1, 2, 4],
                        'mergingIntList': [4]}},
     {'retainKeysMap': {'mergingIntList': [1, 2, 4], 'name': 'foo'}}),
    ('retainKeys map adds an item in nested merging int list (three-way)',
     {'retainKeysMap': {'mergingIntList': [1, 2, 3], 'name': 'foo'}},
     {'retainKeysMap': {'$retainKeys': ['mergingIntList', 'name'],
                        '$setElementOrder/mergingIntList': [1, 2, 4],
                        'mergingIntList': [4]}},
     {'retainKeysMap': {'mergingIntList': [1, 2, 4, 3], 'name': 'foo'}}),
    ('retainKeys map deletes an item in nested merging int list',
     {'retainKeysMap': {'mergingIntList': [1, 2, 3], 'name': 'foo'}},
     {'retainKeysMap': {'$deleteFromPrimitiveList/mergingIntList': [2],
                        '$retainKeys': ['mergingIntList', 'name'],
                        '$setElementOrder/mergingIntList': [1, 3]}},
     {'retainKeysMap': {'mergingIntList': [1, 3], 'name': 'foo'}}),
    ('retainKeys map deletes an item in nested merging int list (three-way)',
     {'retainKeysMap': {'mergingIntList': [1, 2, 3, 4], 'name': 'foo'}},
     {'retainKeysMap': {'$deleteFromPrimitiveList/mergingIntList': [2],
                        '$retainKeys': ['mergingIntList', 'name'],
                        '$setElementOrder/mergingIntList': [1, 3]}},
     {'retainKeysMap': {'mergingIntList': [1, 3, 4], 'name': 'foo'}}),
    ('retainKeys map adds an item and deletes an item in nested merging int list',
     {'retainKeysMap': {'mergingIntList': [1, 2, 3], 'name': 'foo'}},
     {'retainKeysMap': {'$deleteFromPrimitiveList/mergingIntList': [2],
                        '$retainKeys': ['mergingIntList', 'name'],
                        '$setElementOrder/mergingIntList': [1, 3, 5],
                        'mergingIntList': [5]}},
     {'retainKeysMap': {'mergingIntList': [1, 3, 5], 'name': 'foo'}}),
    ('retainKeys map adds an item and deletes an item in nested merging int list (three-way)',
     {'retainKeysMap': {'mergingIntList': [1, 2, 3, 4], 'name': 'foo'}},
     {'retainKeysMap': {'$deleteFromPrimitiveList/mergingIntList': [2],
                        '$retainKeys': ['mergingIntList', 'name'],
                        '$setElementOrder/mergingIntList': [1, 3, 5],
                        'mergingIntList': [5]}},
     {'retainKeysMap': {'mergingIntList': [1, 3, 5, 4], 'name': 'foo'}}),
    ('retainKeys map deletes nested merging int list',
     {'retainKeysMap': {'mergingIntList': [1, 2, 3], 'name': 'foo'}},
     {'retainKeysMap': {'$retainKeys': ['name'], 'mergingIntList': None}},
     {'retainKeysMap': {'name': 'foo'}}),
    ('retainKeys map nested merging list with no change',
     {'retainKeysMap': {'mergingList': [{'name': 'a'}, {'name': 'b'}], 'name': 'foo'}},
     {'retainKeysMap': {'$retainKeys': ['mergingList', 'name', 'value'], 'value': 'bar'}},
     {'retainKeysMap': {'mergingList': [{'name': 'a'}, {'name': 'b'}], 'name': 'foo', 'value': 'bar'}}),
    ('retainKeys map nested merging list with no change (three-way)',
     {'retainKeysMap': {'mergingList': [{'name': 'a'}, {'name': 'b'}, {'name': 'c'}], 'name': 'foo'}},
     {'retainKeysMap': {'$retainKeys': ['mergingList', 'name', 'value'],
                        '$setElementOrder/mergingList': [{'name': 'a'}, {'name': 'b'}],
                        'value': 'bar'}},
     {'retainKeysMap': {'mergingList': [{'name': 'a'}, {'name': 'b'}, {'name': 'c'}], 'name': 'foo', 'value': 'bar'}}),
    ('retainKeys map adds an item in nested merging list',
     {'retainKeysMap': {'mergingList': [{'name': 'a'}, {'name': 'b'}], 'name': 'foo'}},
     {'retainKeysMap': {'$retainKeys': ['mergingList', 'name'],
                        '$setElementOrder/mergingList': [{'name': 'a'}, {'name': 'b'}, {'name': 'c'}],
                        'mergingList': [{'name': 'c'}]}},
     {'retainKeysMap': {'mergingList': [{'name': 'a'}, {'name': 'b'}, {'name': 'c'}], 'name': 'foo'}}),
    ('retainKeys map adds an item in nested merging list (three-way)',
     {'retainKeysMap': {'mergingList': [{'name': 'a'}, {'name': 'b'}, {'name': 'x'}], 'name': 'foo'}},
     {'retainKeysMap': {'$retainKeys': ['mergingList', 'name'],
                        '$setElementOrder/mergingList': [{'name': 'a'}, {'name': 'b'}, {'name': 'c'}],
                        'mergingList': [{'name': 'c'}]}},
     {'retainKeysMap': {'mergingList': [{'name': 'a'}, {'name': 'b'}, {'name': 'c'}, {'name': 'x'}], 'name': 'foo'}}),
    ('retainKeys map changes an item in nested merging list',
     {'retainKeysMap': {'mergingList': [{'name': 'a'}, {'name': 'b', 'value': 'foo'}], 'name': 'foo'}},
     {'retainKeysMap': {'$retainKeys': ['mergingList', 'name'],
                        '$setElementOrder/mergingList': [{'name': 'a'}, {'name': 'b'}],
                        'mergingList': [{'name': 'b', 'value': 'bar'}]}},
     {'retainKeysMap': {'mergingList': [{'name': 'a'}, {'name': 'b', 'value': 'bar'}], 'name': 'foo'}}),
    ('retainKeys map changes an item in nested merging list (three-way)',
     {'retainKeysMap': {'mergingList': [{'name': 'a'}, {'name': 'b', 'value': 'foo'}, {'name': 'x'}], 'name': 'foo'}},
     {'retainKeysMap': {'$retainKeys': ['mergingList', 'name'],
                        '$setElementOrder/mergingList': [{'name': 'a'}, {'name': 'b'}],
                        'mergingList': [{'name': 'b', 'value': 'bar'}]}},
     {'retainKeysMap': {'mergingList': [{'name': 'a'}, {'name': 'b', 'value': 'bar'}, {'name': 'x'}], 'name': 'foo'}}),
    ('retainKeys map deletes nested merging list',
     {'retainKeysMap': {'mergingList': [{'name': 'a'}, {'name': 'b'}], 'name': 'foo'}},
     {'retainKeysMap': {'$retainKeys': ['name', 'value'], 'mergingList': None, 'value': 'bar'}},
     {'retainKeysMap': {'name': 'foo', 'value': 'bar'}}),
    ('retainKeys map deletes an item in nested merging list',
     {'retainKeysMap': {'mergingList': [{'name': 'a'}, {'name': 'b'}], 'name': 'foo'}},
     {'retainKeysMap': {'$retainKeys': ['mergingList', 'name'],
                        '$setElementOrder/mergingList': [{'name': 'a'}],
                        'mergingList': [{'$patch': 'delete', 'name': 'b'}]}},
     {'retainKeysMap': {'mergingList': [{'name': 'a'}], 'name': 'foo'}}),
    ('retainKeys map deletes an item in nested merging list (three-way)',
     {'retainKeysMap': {'mergingList': [{'name': 'a'}, {'name': 'b'}, {'name': 'x'}], 'name': 'foo'}},
     {'retainKeysMap': {'$retainKeys': ['mergingList', 'name'],
                        '$setElementOrder/mergingList': [{'name': 'a'}],
                        'mergingList': [{'$patch': 'delete', 'name': 'b'}]}},
     {'retainKeysMap': {'mergingList': [{'name': 'a'}, {'name': 'x'}], 'name': 'foo'}}),
    ('retainKeys list of maps clears a field',
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'value': 'a'}]},
     {},
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'value': 'a'}]}),
    ('retainKeys list of maps clears a field (three-way)',
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'other': 'x', 'value': 'a'}]},
     {'$setElementOrder/retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo'}],
      'retainKeysMergingList': [{'$retainKeys': ['name', 'value'], 'name': 'foo'}]},
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'value': 'a'}]}),
    ('retainKeys list of maps clears a field with conflict',
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'value': 'old'}]},
     {'$setElementOrder/retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo'}],
      'retainKeysMergingList': [{'$retainKeys': ['name', 'value'], 'name': 'foo', 'value': 'modified'}]},
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'value': 'modified'}]}),
    ('retainKeys list of maps clears a field with conflict (three-way)',
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'other': 'x', 'value': 'new'}]},
     {'$setElementOrder/retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo'}],
      'retainKeysMergingList': [{'$retainKeys': ['name', 'value'], 'name': 'foo', 'value': 'modified'}]},
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'value': 'modified'}]}),
    ('retainKeys list of maps changes a field and clear a field',
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'value': 'old'}]},
     {'$setElementOrder/retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo'}],
      'retainKeysMergingList': [{'$retainKeys': ['name', 'value'], 'name': 'foo', 'value': 'new'}]},
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'value': 'new'}]}),
    ('retainKeys list of maps changes a field and clear a field (three-way)',
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'other': 'x', 'value': 'old'}]},
     {'$setElementOrder/retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo'}],
      'retainKeysMergingList': [{'$retainKeys': ['name', 'value'], 'name': 'foo', 'value': 'new'}]},
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'value': 'new'}]}),
    ('retainKeys list of maps changes a field and clear a field with conflict (three-way)',
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'other': 'x', 'value': 'modified'}]},
     {'$setElementOrder/retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo'}],
      'retainKeysMergingList': [{'$retainKeys': ['name', 'value'], 'name': 'foo', 'value': 'new'}]},
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'value': 'new'}]}),
    ('retainKeys list of maps adds a field',
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo'}]},
     {'$setElementOrder/retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo'}],
      'retainKeysMergingList': [{'$retainKeys': ['name', 'value'], 'name': 'foo', 'value': 'a'}]},
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'value': 'a'}]}),
    ('retainKeys list of maps adds a field and clear a field (three-way)',
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'other': 'x'}]},
     {'$setElementOrder/retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo'}],
      'retainKeysMergingList': [{'$retainKeys': ['name', 'value'], 'name': 'foo', 'value': 'a'}]},
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'value': 'a'}]}),
    ('retainKeys list of maps deletes a field',
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'value': 'a'}]},
     {'$setElementOrder/retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo'}],
      'retainKeysMergingList': [{'$retainKeys': ['name'], 'name': 'foo', 'value': None}]},
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo'}]}),
    ('retainKeys list of maps deletes a field and clear a field (three-way)',
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo', 'other': 'x', 'value': 'a'}]},
     {'$setElementOrder/retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo'}],
      'retainKeysMergingList': [{'$retainKeys': ['name'], 'name': 'foo', 'value': None}]},
     {'retainKeysMergingList': [{'name': 'bar'}, {'name': 'foo'}]}),
    ('delete and reorder in one list, reorder in another',
     {'mergeItemPtr': [{'name': 'c', 'value': 'c'}, {'name': 'd', 'value': 'd'}],
      'mergingList': [{'name': 'a', 'value': 'a'}, {'name': 'b', 'value': 'b'}]},
     {'$setElementOrder/mergeItemPtr': [{'name': 'd'}, {'name': 'c'}],
      '$setElementOrder/mergingList': [{'name': 'b'}],
      'mergingList': [{'$patch': 'delete', 'name': 'a'}]},
     {'mergeItemPtr': [{'name': 'd', 'value': 'd'}, {'name': 'c', 'value': 'c'}],
      'mergingList': [{'name': 'b', 'value': 'b'}]}),
    ('$setElementOrder contains item that is not present in the list to be merged',
     {'mergingList': [{'name': 1}, {'name': 3}]},
     {'$setElementOrder/mergingList': [{'name': 3}, {'name': 2}, {'name': 1}],
      'mergingList': [{'name': 3, 'value': 3}, {'name': 1, 'value': 1}]},
     {'mergingList': [{'name': 3, 'value': 3}, {'name': 1, 'value': 1}]}),
    ('$setElementOrder contains item that is not present in the int list to be merged',
     {'mergingIntList': [1, 3]},
     {'$setElementOrder/mergingIntList': [3, 2, 1]},
     {'mergingIntList': [3, 1]}),
    ('$deleteFromPrimitiveList of nonexistent item in primitive list should not add the item to the list',
     {'mergingIntList': [1, 2]},
     {'$deleteFromPrimitiveList/mergingIntList': [3]},
     {'mergingIntList': [1, 2]}),
    ('$deleteFromPrimitiveList on empty primitive list should not add the item to the list',
     {'mergingIntList': None},
     {'$deleteFromPrimitiveList/mergingIntList': [3]},
     {'mergingIntList': None}),
    ('$deleteFromPrimitiveList on nonexistent primitive list should not add the primitive list',
     {'foo': ['bar']},
     {'$deleteFromPrimitiveList/mergingIntList': [3]},
     {'foo': ['bar']}),
    ('$deleteFromPrimitiveList should delete item from a list with merge patch strategy',
     {'mergingIntList': [1, 2, 3]},
     {'$deleteFromPrimitiveList/mergingIntList': [2]},
     {'mergingIntList': [1, 3]}),
    ('$deleteFromPrimitiveList should delete item from a list without merge patch strategy',
     {'nonMergingIntList': [1, 2, 3]},
     {'$deleteFromPrimitiveList/nonMergingIntList': [2]},
     {'nonMergingIntList': [1, 3]}),
]


# More strategic merge patch facts (MergeItem type).
SMP_CASES = [
    ('null deletes a key', {'name': 'a', 'value': 'b'}, {'value': None}, {'name': 'a'}),
    ('null for an absent key is dropped', {'name': 'a'}, {'other': None}, {'name': 'a'}),
    ('nulls inside a new object are dropped',
     {},
     {'mergeItemPtr': {'name': 'a', 'value': None}},
     {'mergeItemPtr': {'name': 'a'}}),
    ('scalar replaces object', {'mergeItemPtr': {'name': 'a'}}, {'mergeItemPtr': 'x'}, {'mergeItemPtr': 'x'}),
    ('map merge with null',
     {'simpleMap': {'a': '1', 'b': '2'}},
     {'simpleMap': {'b': None, 'c': '3'}},
     {'simpleMap': {'a': '1', 'c': '3'}}),
    ('replace directive on map',
     {'simpleMap': {'a': '1', 'b': '2'}},
     {'simpleMap': {'$patch': 'replace', 'c': '3'}},
     {'simpleMap': {'c': '3'}}),
    ('delete directive on map', {'simpleMap': {'a': '1'}}, {'simpleMap': {'$patch': 'delete'}}, {'simpleMap': {}}),
    ('directive map for an absent field is dropped', {}, {'simpleMap': {'$patch': 'replace', 'c': '3'}}, {}),
    ('replace strategy on a field',
     {'replacingItem': {'a': {'b': 1}, 'c': 2}},
     {'replacingItem': {'a': {'x': None}}},
     {'replacingItem': {'a': {'x': None}}}),
    ('non-merging list replaced verbatim',
     {'nonMergingList': [{'name': 'a'}, {'name': 'b'}]},
     {'nonMergingList': [{'name': 'c', 'value': None}]},
     {'nonMergingList': [{'name': 'c', 'value': None}]}),
    ('new merge keys go before live-only items',
     {'mergingList': [{'name': 'a'}, {'name': 'b'}]},
     {'mergingList': [{'name': 'c'}, {'name': 'a', 'value': '1'}]},
     {'mergingList': [{'name': 'c'}, {'name': 'a', 'value': '1'}, {'name': 'b'}]}),
    ('appended item keeps nulls and directives',
     {'mergingList': [{'name': 'a'}]},
     {'mergingList': [{'name': 'b', 'value': None, 'mergingList': [{'name': 'x', '$patch': 'delete'}]}]},
     {'mergingList': [{'mergingList': [{'$patch': 'delete', 'name': 'x'}], 'name': 'b', 'value': None}, {'name': 'a'}]}),
    ('delete directive removes all matches',
     {'mergingList': [{'name': 'a'}, {'name': 'b'}, {'name': 'a', 'value': '2'}]},
     {'mergingList': [{'name': 'a', '$patch': 'delete'}]},
     {'mergingList': [{'name': 'b'}]}),
    ('replace directive on merging list',
     {'mergingList': [{'name': 'a'}, {'name': 'b'}]},
     {'mergingList': [{'name': 'c'}, {'$patch': 'replace'}]},
     {'mergingList': [{'name': 'c'}]}),
    ('replace directive after delete',
     {'mergingList': [{'name': 'a'}, {'name': 'b'}]},
     {'mergingList': [{'name': 'a', '$patch': 'delete'}, {'name': 'b', 'value': '1'}, {'$patch': 'replace'}]},
     {'mergingList': [{'name': 'b', 'value': '1'}]}),
    ('primitive union keeps live then new',
     {'mergingIntList': [3, 1]},
     {'mergingIntList': [2, 1]},
     {'mergingIntList': [2, 3, 1]}),
    ('primitive union deduplicates',
     {'mergingIntList': [1, 1, 2]},
     {'mergingIntList': [2, 3, 3]},
     {'mergingIntList': [1, 2, 3]}),
    ('deleteFromPrimitiveList',
     {'mergingIntList': [1, 2, 3, 2]},
     {'$deleteFromPrimitiveList/mergingIntList': [2, 9]},
     {'mergingIntList': [1, 3]}),
    ('deleteFromPrimitiveList on non-merging list',
     {'nonMergingIntList': [1, 2, 3]},
     {'$deleteFromPrimitiveList/nonMergingIntList': [1]},
     {'nonMergingIntList': [2, 3]}),
    ('setElementOrder reorders without patch list',
     {'mergingList': [{'name': 'a', 'value': '1'}, {'name': 'b'}, {'name': 'c'}]},
     {'$setElementOrder/mergingList': [{'name': 'c'}, {'name': 'a'}, {'name': 'b'}]},
     {'mergingList': [{'name': 'c'}, {'name': 'a', 'value': '1'}, {'name': 'b'}]}),
    ('setElementOrder keeps unlisted live items in place',
     {'mergingList': [{'name': 'a'}, {'name': 'b'}, {'name': 'c'}, {'name': 'd'}]},
     {'$setElementOrder/mergingList': [{'name': 'd'}, {'name': 'b'}]},
     {'mergingList': [{'name': 'a'}, {'name': 'c'}, {'name': 'd'}, {'name': 'b'}]}),
    ('setElementOrder with added item',
     {'mergingList': [{'name': 'a'}, {'name': 'b'}]},
     {'$setElementOrder/mergingList': [{'name': 'b'}, {'name': 'x'}, {'name': 'a'}],
      'mergingList': [{'name': 'x', 'value': '1'}]},
     {'mergingList': [{'name': 'b'}, {'name': 'x', 'value': '1'}, {'name': 'a'}]}),
    ('setElementOrder with delete',
     {'mergingList': [{'name': 'a'}, {'name': 'b'}, {'name': 'c'}]},
     {'$setElementOrder/mergingList': [{'name': 'c'}, {'name': 'a'}], 'mergingList': [{'name': 'b', '$patch': 'delete'}]},
     {'mergingList': [{'name': 'c'}, {'name': 'a'}]}),
    ('setElementOrder for primitives',
     {'mergingIntList': [1, 2, 3]},
     {'$setElementOrder/mergingIntList': [3, 4, 1], 'mergingIntList': [4]},
     {'mergingIntList': [2, 3, 4, 1]}),
    ('setElementOrder creates absent list',
     {},
     {'$setElementOrder/mergingList': [{'name': 'b'}, {'name': 'a'}],
      'mergingList': [{'name': 'b'}, {'name': 'a', '$patch': 'delete'}]},
     {'mergingList': [{'name': 'b'}]}),
    ('retainKeys drops unlisted keys',
     {'retainKeysMap': {'name': 'a', 'value': 'b', 'other': 'c'}},
     {'retainKeysMap': {'$retainKeys': ['name', 'other'], 'other': 'd'}},
     {'retainKeysMap': {'name': 'a', 'other': 'd'}}),
    ('retainKeys allows nulls and directives',
     {'retainKeysMap': {'name': 'a', 'value': 'b', 'mergingIntList': [1]}},
     {'retainKeysMap': {'$retainKeys': ['mergingIntList'],
                        'value': None,
                        '$deleteFromPrimitiveList/mergingIntList': [1]}},
     {'retainKeysMap': {'mergingIntList': []}}),
    ('retainKeys inside merging list item',
     {'retainKeysMergingList': [{'name': 'a', 'value': '1', 'other': '2'}]},
     {'retainKeysMergingList': [{'name': 'a', '$retainKeys': ['name', 'value'], 'value': '3'}]},
     {'retainKeysMergingList': [{'name': 'a', 'value': '3'}]}),
    ('retainKeys applies without the strategy',
     {'mergeItemPtr': {'name': 'a', 'value': '1'}},
     {'mergeItemPtr': {'$retainKeys': ['name']}},
     {'mergeItemPtr': {'name': 'a'}}),
    ('top-level replace', {'name': 'a', 'value': 'b'}, {'$patch': 'replace', 'other': 'c'}, {'other': 'c'}),
    ('top-level delete', {'name': 'a'}, {'$patch': 'delete'}, {}),
    ('int and float merge keys differ',
     {'mergingList': [{'name': 1}]},
     {'mergingList': [{'name': 1.0, 'value': 'x'}]},
     {'mergingList': [{'name': 1, 'value': 'x'}, {'name': 1}]}),
    ('type change replaces',
     {'mergingList': [{'name': 'a'}]},
     {'mergingList': {'name': 'b', 'value': None}},
     {'mergingList': {'name': 'b'}}),
    ('delete list for absent field is ignored',
     {'name': 'a'},
     {'$deleteFromPrimitiveList/mergingIntList': [1]},
     {'name': 'a'}),
    ('null delete list deletes the field', {'mergingIntList': [1]}, {'$deleteFromPrimitiveList/mergingIntList': None}, {}),
]


# Strategic merge patch failures: upstream's exact error text.
SMP_ERRORS = [
    ('setElementOrder on non-merging list',
     {'nonMergingIntList': [1, 2, 3]},
     {'$setElementOrder/nonMergingIntList': [3, 2, 1], 'nonMergingIntList': [2, 3]},
     "The order in patch list:\n[2 3]\n doesn't match $setElementOrder list:\n[3 2 1]\n"),
    ('bool and int primitives differ',
     {'mergingIntList': [1, True]},
     {'mergingIntList': [True, 1]},
     'list element types are not identical: [[1 true] [true 1]]'),
    ('merge key missing in patch item',
     {'mergingList': [{'name': 'a'}]},
     {'mergingList': [{'value': 'b'}]},
     'map: map[value:b] does not contain declared merge key: name'),
    ('merge key missing in delete directive',
     {'mergingList': [{'name': 'a'}]},
     {'mergingList': [{'$patch': 'delete', 'value': 'a'}]},
     'map: map[$patch:delete value:a] does not contain declared merge key: name'),
    ('merge directive in list',
     {'mergingList': [{'name': 'a'}]},
     {'mergingList': [{'$patch': 'merge'}]},
     'merging lists cannot yet be specified in the patch'),
    ('unknown directive in list',
     {'mergingList': [{'name': 'a'}]},
     {'mergingList': [{'$patch': 'bogus', 'name': 'a'}]},
     'unknown patch type: bogus in map: map[$patch:bogus name:a]'),
    ('merge directive on map',
     {'simpleMap': {'a': '1'}},
     {'simpleMap': {'$patch': 'merge', 'b': '2'}},
     'unknown patch type: merge in map: map[$patch:merge b:2]'),
    ('unknown directive on top-level map',
     {'name': 'a'},
     {'$patch': 'bogus'},
     'unknown patch type: bogus in map: map[$patch:bogus]'),
    ('retainKeys not a list',
     {'retainKeysMap': {'name': 'a'}},
     {'retainKeysMap': {'$retainKeys': 'name'}},
     'invalid patch format of retainKeys'),
    ('patch key missing from retainKeys',
     {'retainKeysMap': {'name': 'a'}},
     {'retainKeysMap': {'$retainKeys': ['name'], 'value': 'b'}},
     'invalid patch format of retainKeys'),
    ('setElementOrder without field',
     {'mergingList': [{'name': 'a'}]},
     {'$setElementOrder': [{'name': 'a'}]},
     'invalid patch format of setElementOrder list'),
    ('setElementOrder with wrong prefix',
     {'mergingList': [{'name': 'a'}]},
     {'$setElementOrderX/mergingList': [{'name': 'a'}]},
     'invalid patch format of setElementOrder list'),
    ('setElementOrder not a list',
     {'mergingList': [{'name': 'a'}]},
     {'$setElementOrder/mergingList': {'name': 'a'}},
     'expected a []interface {}, but received a map[string]interface {}'),
    ('setElementOrder out of order with patch',
     {'mergingList': [{'name': 'a'}, {'name': 'b'}]},
     {'$setElementOrder/mergingList': [{'name': 'a'}, {'name': 'b'}],
      'mergingList': [{'name': 'b', 'value': '1'}, {'name': 'a', 'value': '2'}]},
     'The order in patch list:\n'
     '[map[name:b value:1] map[name:a value:2]]\n'
     " doesn't match $setElementOrder list:\n"
     '[map[name:a] map[name:b]]\n'),
    ('setElementOrder on two empty lists',
     {'mergingList': []},
     {'$setElementOrder/mergingList': [], 'mergingList': []},
     'no elements in any of the given slices'),
    ('setElementOrder for unknown field',
     {'name': 'a'},
     {'$setElementOrder/bogus': ['x']},
     'unable to find api field in struct MergeItem for the json field "bogus"'),
    ('setElementOrder item without merge key',
     {'mergingList': [{'name': 'a'}]},
     {'$setElementOrder/mergingList': [{'value': 'a'}]},
     'map: map[value:a] does not contain declared merge key: name'),
    ('deleteFromPrimitiveList without field',
     {'mergingIntList': [1]},
     {'$deleteFromPrimitiveList': [1]},
     'invalid patch format of primitive list'),
    ('list of lists', {'mergingIntList': [[1]]}, {'mergingIntList': [[2]]}, 'lists of lists are not supported'),
    ('mixed element types',
     {'mergingIntList': [1, 2]},
     {'mergingIntList': ['3']},
     'list element types are not identical: [[1 2] [3]]'),
    ('int and float elements differ',
     {'mergingIntList': [1]},
     {'mergingIntList': [1.5]},
     'list element types are not identical: [[1] [1.5]]'),
    ('maps in list without merge key',
     {'nonMergingList': [{'name': 'a'}]},
     {'$deleteFromPrimitiveList/nonMergingList': [{'name': 'a'}]},
     'cannot merge lists without merge key for struct'),
    ('nested object under map-typed field',
     {'simpleMap': {'a': {'x': '1'}}},
     {'simpleMap': {'a': {'y': '2'}}},
     'merging an object in json but data type is not struct, instead is: map'),
    ('nested object under free-form field',
     {'jsonItem': {'a': {'x': 1}}},
     {'jsonItem': {'a': {'y': 2}}},
     'unable to find api field in struct  for the json field "a"'),
    ('original list item not an object',
     {'mergingList': [{'name': 'a'}, 'b']},
     {'mergingList': [{'name': 'c'}]},
     'list element types are not identical: [[map[name:a] b] [map[name:c]]]'),
    ('live item without merge key',
     {'mergingList': [{'value': 'a'}]},
     {'mergingList': [{'name': 'b'}]},
     'map: map[value:a] does not contain declared merge key: name'),
]


# Patches as the kubelet / kubectl apply generate them (schema, live object, patch, result).
SMP_REAL_CASES = [
    ('pod',
     {'apiVersion': 'v1',
      'kind': 'Pod',
      'metadata': {'name': 'web',
                   'namespace': 'default',
                   'uid': '6b1d-uid',
                   'resourceVersion': '41',
                   'labels': {'app': 'web'}},
      'spec': {'nodeName': 'n1', 'containers': [{'name': 'app', 'image': 'nginx'}]},
      'status': {'phase': 'Pending',
                 'conditions': [{'type': 'PodScheduled', 'status': 'True', 'lastTransitionTime': '2026-01-01T00:00:00Z'},
                                {'type': 'Initialized', 'status': 'True', 'lastTransitionTime': '2026-01-01T00:00:01Z'},
                                {'type': 'Ready',
                                 'status': 'False',
                                 'reason': 'ContainersNotReady',
                                 'lastTransitionTime': '2026-01-01T00:00:01Z'}],
                 'hostIP': '10.0.0.5'}},
     {'metadata': {'uid': '6b1d-uid'},
      'status': {'$setElementOrder/conditions': [{'type': 'PodScheduled'},
                                                 {'type': 'Initialized'},
                                                 {'type': 'ContainersReady'},
                                                 {'type': 'Ready'}],
                 'conditions': [{'lastTransitionTime': '2026-01-01T00:00:09Z',
                                 'status': 'True',
                                 'type': 'ContainersReady'},
                                {'lastTransitionTime': '2026-01-01T00:00:09Z',
                                 'reason': None,
                                 'status': 'True',
                                 'type': 'Ready'}],
                 'containerStatuses': [{'name': 'app', 'ready': True, 'restartCount': 0}],
                 'phase': 'Running',
                 'podIPs': [{'ip': '10.244.0.7'}]}},
     {'apiVersion': 'v1',
      'kind': 'Pod',
      'metadata': {'labels': {'app': 'web'},
                   'name': 'web',
                   'namespace': 'default',
                   'resourceVersion': '41',
                   'uid': '6b1d-uid'},
      'spec': {'containers': [{'image': 'nginx', 'name': 'app'}], 'nodeName': 'n1'},
      'status': {'conditions': [{'lastTransitionTime': '2026-01-01T00:00:00Z', 'status': 'True', 'type': 'PodScheduled'},
                                {'lastTransitionTime': '2026-01-01T00:00:01Z', 'status': 'True', 'type': 'Initialized'},
                                {'lastTransitionTime': '2026-01-01T00:00:09Z',
                                 'status': 'True',
                                 'type': 'ContainersReady'},
                                {'lastTransitionTime': '2026-01-01T00:00:09Z', 'status': 'True', 'type': 'Ready'}],
                 'containerStatuses': [{'name': 'app', 'ready': True, 'restartCount': 0}],
                 'hostIP': '10.0.0.5',
                 'phase': 'Running',
                 'podIPs': [{'ip': '10.244.0.7'}]}}),
    ('node',
     {'apiVersion': 'v1',
      'kind': 'Node',
      'metadata': {'name': 'n1', 'uid': 'node-uid', 'resourceVersion': '7'},
      'spec': {'podCIDR': '10.244.0.0/24', 'podCIDRs': ['10.244.0.0/24']},
      'status': {'conditions': [{'type': 'MemoryPressure',
                                 'status': 'False',
                                 'lastHeartbeatTime': '2026-01-01T00:00:00Z'},
                                {'type': 'DiskPressure', 'status': 'False', 'lastHeartbeatTime': '2026-01-01T00:00:00Z'},
                                {'type': 'Ready', 'status': 'True', 'lastHeartbeatTime': '2026-01-01T00:00:00Z'}],
                 'addresses': [{'type': 'InternalIP', 'address': '10.0.0.5'}, {'type': 'Hostname', 'address': 'n1'}],
                 'capacity': {'cpu': '4', 'pods': '110'},
                 'nodeInfo': {'kubeletVersion': 'v1.37.0'}}},
     {'status': {'$setElementOrder/conditions': [{'type': 'MemoryPressure'}, {'type': 'DiskPressure'}, {'type': 'Ready'}],
                 'conditions': [{'lastHeartbeatTime': '2026-01-01T00:00:40Z', 'type': 'MemoryPressure'},
                                {'lastHeartbeatTime': '2026-01-01T00:00:40Z', 'type': 'DiskPressure'},
                                {'lastHeartbeatTime': '2026-01-01T00:00:40Z', 'type': 'Ready'}]}},
     {'apiVersion': 'v1',
      'kind': 'Node',
      'metadata': {'name': 'n1', 'resourceVersion': '7', 'uid': 'node-uid'},
      'spec': {'podCIDR': '10.244.0.0/24', 'podCIDRs': ['10.244.0.0/24']},
      'status': {'addresses': [{'address': '10.0.0.5', 'type': 'InternalIP'}, {'address': 'n1', 'type': 'Hostname'}],
                 'capacity': {'cpu': '4', 'pods': '110'},
                 'conditions': [{'lastHeartbeatTime': '2026-01-01T00:00:40Z',
                                 'status': 'False',
                                 'type': 'MemoryPressure'},
                                {'lastHeartbeatTime': '2026-01-01T00:00:40Z', 'status': 'False', 'type': 'DiskPressure'},
                                {'lastHeartbeatTime': '2026-01-01T00:00:40Z', 'status': 'True', 'type': 'Ready'}],
                 'nodeInfo': {'kubeletVersion': 'v1.37.0'}}}),
    ('pod',
     {'apiVersion': 'v1',
      'kind': 'Pod',
      'metadata': {'name': 'web',
                   'labels': {'app': 'web', 'tier': 'fe'},
                   'namespace': 'default',
                   'uid': 'u',
                   'annotations': {'k': 'v'}},
      'spec': {'containers': [{'name': 'app',
                               'image': 'nginx:1',
                               'env': [{'name': 'A', 'value': '1'},
                                       {'name': 'B', 'value': '2'},
                                       {'name': 'INJECTED', 'value': 'x'}],
                               'volumeMounts': [{'name': 'data', 'mountPath': '/data'}],
                               'terminationMessagePath': '/dev/termination-log'}],
               'volumes': [{'name': 'data', 'emptyDir': {}}],
               'nodeName': 'n1'}},
     {'metadata': {'labels': {'tier': None}},
      'spec': {'$setElementOrder/containers': [{'name': 'app'}, {'name': 'sidecar'}],
               '$setElementOrder/volumes': [{'name': 'data'}],
               'containers': [{'$setElementOrder/env': [{'name': 'C'}, {'name': 'A'}],
                               'env': [{'name': 'C', 'value': '3'}, {'$patch': 'delete', 'name': 'B'}],
                               'image': 'nginx:2',
                               'name': 'app'},
                              {'image': 'busybox', 'name': 'sidecar'}],
               'volumes': [{'$retainKeys': ['hostPath', 'name'],
                            'emptyDir': None,
                            'hostPath': {'path': '/srv'},
                            'name': 'data'}]}},
     {'apiVersion': 'v1',
      'kind': 'Pod',
      'metadata': {'annotations': {'k': 'v'},
                   'labels': {'app': 'web'},
                   'name': 'web',
                   'namespace': 'default',
                   'uid': 'u'},
      'spec': {'containers': [{'env': [{'name': 'INJECTED', 'value': 'x'},
                                       {'name': 'C', 'value': '3'},
                                       {'name': 'A', 'value': '1'}],
                               'image': 'nginx:2',
                               'name': 'app',
                               'terminationMessagePath': '/dev/termination-log',
                               'volumeMounts': [{'mountPath': '/data', 'name': 'data'}]},
                              {'image': 'busybox', 'name': 'sidecar'}],
               'nodeName': 'n1',
               'volumes': [{'hostPath': {'path': '/srv'}, 'name': 'data'}]}}),
    ('node',
     {'apiVersion': 'v1',
      'kind': 'Node',
      'metadata': {'name': 'n1', 'uid': 'node-uid', 'resourceVersion': '7'},
      'spec': {'podCIDR': '10.244.0.0/24', 'podCIDRs': ['10.244.0.0/24']},
      'status': {'conditions': [{'type': 'MemoryPressure',
                                 'status': 'False',
                                 'lastHeartbeatTime': '2026-01-01T00:00:00Z'},
                                {'type': 'DiskPressure', 'status': 'False', 'lastHeartbeatTime': '2026-01-01T00:00:00Z'},
                                {'type': 'Ready', 'status': 'True', 'lastHeartbeatTime': '2026-01-01T00:00:00Z'}],
                 'addresses': [{'type': 'InternalIP', 'address': '10.0.0.5'}, {'type': 'Hostname', 'address': 'n1'}],
                 'capacity': {'cpu': '4', 'pods': '110'},
                 'nodeInfo': {'kubeletVersion': 'v1.37.0'}}},
     {'status': {'addresses': [{'type': 'InternalIP', 'address': '10.0.0.9'},
                               {'type': 'Hostname', 'address': 'n1'},
                               {'$patch': 'replace'}]}},
     {'apiVersion': 'v1',
      'kind': 'Node',
      'metadata': {'name': 'n1', 'resourceVersion': '7', 'uid': 'node-uid'},
      'spec': {'podCIDR': '10.244.0.0/24', 'podCIDRs': ['10.244.0.0/24']},
      'status': {'addresses': [{'address': '10.0.0.9', 'type': 'InternalIP'}, {'address': 'n1', 'type': 'Hostname'}],
                 'capacity': {'cpu': '4', 'pods': '110'},
                 'conditions': [{'lastHeartbeatTime': '2026-01-01T00:00:00Z',
                                 'status': 'False',
                                 'type': 'MemoryPressure'},
                                {'lastHeartbeatTime': '2026-01-01T00:00:00Z', 'status': 'False', 'type': 'DiskPressure'},
                                {'lastHeartbeatTime': '2026-01-01T00:00:00Z', 'status': 'True', 'type': 'Ready'}],
                 'nodeInfo': {'kubeletVersion': 'v1.37.0'}}}),
]


# RFC 6902 (appendix A) and json-patch v4 behaviour.
JSON_PATCH_CASES = [
    ('A.1 add object member',
     {'foo': 'bar'},
     [{'op': 'add', 'path': '/baz', 'value': 'qux'}],
     {'baz': 'qux', 'foo': 'bar'}),
    ('A.2 add array element',
     {'foo': ['bar', 'baz']},
     [{'op': 'add', 'path': '/foo/1', 'value': 'qux'}],
     {'foo': ['bar', 'qux', 'baz']}),
    ('A.3 remove object member', {'baz': 'qux', 'foo': 'bar'}, [{'op': 'remove', 'path': '/baz'}], {'foo': 'bar'}),
    ('A.4 remove array element',
     {'foo': ['bar', 'qux', 'baz']},
     [{'op': 'remove', 'path': '/foo/1'}],
     {'foo': ['bar', 'baz']}),
    ('A.5 replace value',
     {'baz': 'qux', 'foo': 'bar'},
     [{'op': 'replace', 'path': '/baz', 'value': 'boo'}],
     {'baz': 'boo', 'foo': 'bar'}),
    ('A.6 move value',
     {'foo': {'bar': 'baz', 'waldo': 'fred'}, 'qux': {'corge': 'grault'}},
     [{'op': 'move', 'from': '/foo/waldo', 'path': '/qux/thud'}],
     {'foo': {'bar': 'baz'}, 'qux': {'corge': 'grault', 'thud': 'fred'}}),
    ('A.7 move array element',
     {'foo': ['all', 'grass', 'cows', 'eat']},
     [{'op': 'move', 'from': '/foo/1', 'path': '/foo/3'}],
     {'foo': ['all', 'cows', 'eat', 'grass']}),
    ('A.8 test success',
     {'baz': 'qux', 'foo': ['a', 2, 'c']},
     [{'op': 'test', 'path': '/baz', 'value': 'qux'}, {'op': 'test', 'path': '/foo/1', 'value': 2}],
     {'baz': 'qux', 'foo': ['a', 2, 'c']}),
    ('A.10 add nested member',
     {'foo': 'bar'},
     [{'op': 'add', 'path': '/child', 'value': {'grandchild': {}}}],
     {'child': {'grandchild': {}}, 'foo': 'bar'}),
    ('A.11 ignore unrecognized members',
     {'foo': 'bar'},
     [{'op': 'add', 'path': '/baz', 'value': 'qux', 'xyz': 123}],
     {'baz': 'qux', 'foo': 'bar'}),
    ('A.14 escape ordering', {'/': 9, '~1': 10}, [{'op': 'test', 'path': '/~01', 'value': 10}], {'/': 9, '~1': 10}),
    ('A.16 add array value',
     {'foo': ['bar']},
     [{'op': 'add', 'path': '/foo/-', 'value': ['abc', 'def']}],
     {'foo': ['bar', ['abc', 'def']]}),
    ('escaped slash', {'a/b': 1}, [{'op': 'replace', 'path': '/a~1b', 'value': 2}], {'a/b': 2}),
    ('add replaces existing member', {'a': 1}, [{'op': 'add', 'path': '/a', 'value': 2}], {'a': 2}),
    ('add without value adds null', {'a': 1}, [{'op': 'add', 'path': '/b'}], {'a': 1, 'b': None}),
    ('add at end index', {'a': [1, 2]}, [{'op': 'add', 'path': '/a/2', 'value': 3}], {'a': [1, 2, 3]}),
    ('add at negative index', {'a': [1, 2]}, [{'op': 'add', 'path': '/a/-1', 'value': 3}], {'a': [1, 2, 3]}),
    ('add with leading zero index', {'a': [1, 2]}, [{'op': 'add', 'path': '/a/01', 'value': 3}], {'a': [1, 3, 2]}),
    ('add with plus sign index', {'a': [1, 2]}, [{'op': 'add', 'path': '/a/+1', 'value': 3}], {'a': [1, 3, 2]}),
    ('path without leading slash ignores first segment',
     {'a': {'b': 1}, 'b': 2},
     [{'op': 'replace', 'path': 'a/b', 'value': 3}],
     {'a': {'b': 1}, 'b': 3}),
    ('traverse with negative index',
     {'a': [{'x': 1}, {'x': 2}]},
     [{'op': 'replace', 'path': '/a/-1/x', 'value': 3}],
     {'a': [{'x': 1}, {'x': 3}]}),
    ('remove null member', {'a': None}, [{'op': 'remove', 'path': '/a'}], {}),
    ('remove negative index', {'a': [1, 2, 3]}, [{'op': 'remove', 'path': '/a/-1'}], {'a': [1, 2]}),
    ('replace missing member adds it', {'a': 1}, [{'op': 'replace', 'path': '/b', 'value': 2}], {'a': 1, 'b': 2}),
    ('replace root with object', {'a': 1}, [{'op': 'replace', 'path': '', 'value': {'b': 1}}], {'b': 1}),
    ('copy value',
     {'a': {'b': [1]}},
     [{'op': 'copy', 'from': '/a', 'path': '/c'}, {'op': 'add', 'path': '/c/b/-', 'value': 2}],
     {'a': {'b': [1]}, 'c': {'b': [1, 2]}}),
    ('copy missing member copies null', {'a': 1}, [{'op': 'copy', 'from': '/b', 'path': '/c'}], {'a': 1, 'c': None}),
    ('test missing member against null', {'a': 1}, [{'op': 'test', 'path': '/b', 'value': None}], {'a': 1}),
    ('test missing member without value', {'a': 1}, [{'op': 'test', 'path': '/b'}], {'a': 1}),
    ('test null member against null', {'a': None}, [{'op': 'test', 'path': '/a', 'value': None}], {'a': None}),
    ('test object',
     {'a': {'x': [1, {'y': None}]}},
     [{'op': 'test', 'path': '/a', 'value': {'x': [1, {'y': None}]}}],
     {'a': {'x': [1, {'y': None}]}}),
    ('test whole document', {'a': 1}, [{'op': 'test', 'path': '', 'value': {'a': 1}}], {'a': 1}),
    ('operations apply in order',
     {'a': [1]},
     [{'op': 'add', 'path': '/a/0', 'value': 0},
      {'op': 'test', 'path': '/a', 'value': [0, 1]},
      {'op': 'remove', 'path': '/a/1'}],
     {'a': [0]}),
    ('empty patch', {'a': 1}, [], {'a': 1}),
]


# JSON patch failures: the library's error text (sent to clients as a generic 422).
JSON_PATCH_ERRORS = [
    ('A.9 test failure',
     {'baz': 'qux'},
     [{'op': 'test', 'path': '/baz', 'value': 'bar'}],
     'testing value /baz failed: test failed'),
    ('A.12 add to nonexistent target',
     {'foo': 'bar'},
     [{'op': 'add', 'path': '/baz/bat', 'value': 'qux'}],
     'add operation does not apply: doc is missing path: "/baz/bat": missing value'),
    ('A.15 comparing strings and numbers',
     {'/': 9, '~1': 10},
     [{'op': 'test', 'path': '/~01', 'value': '10'}],
     'testing value /~01 failed: test failed'),
    ('add past end',
     {'a': [1, 2]},
     [{'op': 'add', 'path': '/a/3', 'value': 3}],
     "error in add for path: '/a/3': Unable to access invalid index: 3: invalid index referenced"),
    ('add at too negative index',
     {'a': [1, 2]},
     [{'op': 'add', 'path': '/a/-4', 'value': 3}],
     "error in add for path: '/a/-4': Unable to access invalid index: -4: invalid index referenced"),
    ('add with non-numeric index',
     {'a': [1, 2]},
     [{'op': 'add', 'path': '/a/x', 'value': 3}],
     'error in add for path: \'/a/x\': value was not a proper array index: \'x\': strconv.Atoi: parsing "x": invalid '
     'syntax'),
    ('add to root path',
     {'a': 1},
     [{'op': 'add', 'path': '', 'value': {'b': 2}}],
     'add operation does not apply: doc is missing path: "": missing value'),
    ('path without slash',
     {'a': 1},
     [{'op': 'remove', 'path': 'a'}],
     'remove operation does not apply: doc is missing path: "a": missing value'),
    ('traverse through null',
     {'a': None},
     [{'op': 'add', 'path': '/a/b', 'value': 1}],
     'add operation does not apply: doc is missing path: "/a/b": missing value'),
    ('traverse through scalar',
     {'a': 1},
     [{'op': 'add', 'path': '/a/b', 'value': 1}],
     'add operation does not apply: doc is missing path: "/a/b": missing value'),
    ('remove missing member',
     {'a': 1},
     [{'op': 'remove', 'path': '/b'}],
     "error in remove for path: '/b': Unable to remove nonexistent key: b: missing value"),
    ('remove out of range',
     {'a': [1]},
     [{'op': 'remove', 'path': '/a/1'}],
     "error in remove for path: '/a/1': Unable to access invalid index: 1: invalid index referenced"),
    ('remove dash index',
     {'a': [1]},
     [{'op': 'remove', 'path': '/a/-'}],
     'error in remove for path: \'/a/-\': strconv.Atoi: parsing "-": invalid syntax'),
    ('replace out of range',
     {'a': [1]},
     [{'op': 'replace', 'path': '/a/1', 'value': 2}],
     'replace operation does not apply: doc is missing key: /a/1: missing value'),
    ('replace root with scalar',
     {'a': 1},
     [{'op': 'replace', 'path': '', 'value': 1}],
     'replace operation value must be object or array: %!w(<nil>)'),
    ('move missing source',
     {'a': 1},
     [{'op': 'move', 'from': '/b', 'path': '/c'}],
     "error in move for path: 'b': Unable to remove nonexistent key: b: missing value"),
    ('move to missing parent',
     {'a': 1},
     [{'op': 'move', 'from': '/a', 'path': '/x/y'}],
     'move operation does not apply: doc is missing destination path: /x/y: missing value'),
    ('move without from',
     {'a': 1},
     [{'op': 'move', 'path': '/c'}],
     'move operation failed to decode from: operation, missing from field: missing value'),
    ('copy out of range',
     {'a': [1]},
     [{'op': 'copy', 'from': '/a/5', 'path': '/c'}],
     "error in copy for from: '/a/5': Unable to access invalid index: 5: invalid index referenced"),
    ('copy to missing parent',
     {'a': 1},
     [{'op': 'copy', 'from': '/a', 'path': '/x/y'}],
     'copy operation does not apply: doc is missing destination path: /x/y: missing value'),
    ('test member without value', {'a': 1}, [{'op': 'test', 'path': '/a'}], 'testing value /a failed: test failed'),
    ('test int against float',
     {'a': 1},
     [{'op': 'test', 'path': '/a', 'value': 1.0}],
     'testing value /a failed: test failed'),
    ('test bool against int',
     {'a': True},
     [{'op': 'test', 'path': '/a', 'value': 1}],
     'testing value /a failed: test failed'),
    ('test object with extra member',
     {'a': {'x': 1}},
     [{'op': 'test', 'path': '/a', 'value': {'x': 1, 'y': None}}],
     'testing value /a failed: test failed'),
    ('test out of range',
     {'a': [1]},
     [{'op': 'test', 'path': '/a/3', 'value': 1}],
     "error in test for path: '/a/3': Unable to access invalid index: 3: invalid index referenced"),
    ('test missing parent',
     {'a': 1},
     [{'op': 'test', 'path': '/x/y', 'value': 1}],
     'test operation does not apply: is missing path: /x/y: missing value'),
    ('unknown op', {'a': 1}, [{'op': 'frob', 'path': '/a'}], 'Unexpected kind: frob'),
    ('missing op', {'a': 1}, [{'path': '/a'}], 'Unexpected kind: unknown'),
    ('op not a string', {'a': 1}, [{'op': 5, 'path': '/a'}], 'Unexpected kind: unknown'),
    ('null operation', {'a': 1}, [None], 'Unexpected kind: unknown'),
    ('missing path on add', {'a': 1}, [{'op': 'add', 'value': 1}], 'add operation failed to decode path: missing value'),
    ('missing path on replace',
     {'a': 1},
     [{'op': 'replace', 'value': 1}],
     'replace operation failed to decode path: operation missing path field: missing value'),
    ('missing path on test',
     {'a': 1},
     [{'op': 'test', 'value': 1}],
     'test operation failed to decode path: operation missing path field: missing value'),
    ('non-string path on replace',
     {'a': 1},
     [{'op': 'replace', 'path': 5, 'value': 1}],
     'replace operation failed to decode path: json: cannot unmarshal number into Go value of type string'),
    ('missing from on copy',
     {'a': 1},
     [{'op': 'copy', 'path': '/b'}],
     'copy operation failed to decode from: operation, missing from field: missing value'),
    ('missing path on copy',
     {'a': 1},
     [{'op': 'copy', 'from': '/a'}],
     'copy operation failed to decode path: missing value'),
    ('failure discards earlier operations',
     {'a': 1},
     [{'op': 'add', 'path': '/b', 'value': 2}, {'op': 'test', 'path': '/a', 'value': 2}],
     'testing value /a failed: test failed'),
]


# RFC 7386 (appendix A) and json-patch v4 MergePatch behaviour.
MERGE_PATCH_CASES = [
    ('A.1', {'a': 'b'}, {'a': 'c'}, {'a': 'c'}),
    ('A.2', {'a': 'b'}, {'b': 'c'}, {'a': 'b', 'b': 'c'}),
    ('A.3', {'a': 'b'}, {'a': None}, {}),
    ('A.4', {'a': 'b', 'b': 'c'}, {'a': None}, {'b': 'c'}),
    ('A.5', {'a': ['b']}, {'a': 'c'}, {'a': 'c'}),
    ('A.6', {'a': 'c'}, {'a': ['b']}, {'a': ['b']}),
    ('A.7', {'a': {'b': 'c'}}, {'a': {'b': 'd', 'c': None}}, {'a': {'b': 'd'}}),
    ('A.8', {'a': [{'b': 'c'}]}, {'a': [1]}, {'a': [1]}),
    ('A.11', {'e': None}, {'a': 1}, {'a': 1, 'e': None}),
    ('A.13', {}, {'a': {'bb': {'ccc': None}}}, {'a': {'bb': {}}}),
    ('empty patch', {'a': {'b': [1, None]}}, {}, {'a': {'b': [1, None]}}),
    ('null member in doc is replaced', {'a': None}, {'a': {'b': None, 'c': 1}}, {'a': {'c': 1}}),
    ('nulls pruned in objects inside arrays replacing a scalar',
     {'a': 1},
     {'a': [{'x': None, 'y': 1}, None]},
     {'a': [{'y': 1}, None]}),
    ('nulls kept in arrays replacing an object', {'a': {'k': 1}}, {'a': [{'x': None}]}, {'a': [{'x': None}]}),
    ('nulls pruned in arrays for an absent key', {}, {'a': [{'x': None}]}, {'a': [{}]}),
    ('array patch replaces the document', {'a': 1}, [{'x': None}, None], [{}, None]),
    ('nested merge', {'a': {'b': {'c': 1, 'd': 2}}}, {'a': {'b': {'c': None, 'e': 3}}}, {'a': {'b': {'d': 2, 'e': 3}}}),
]


# Merge patches upstream refuses with 400.
MERGE_PATCH_ERRORS = [
    ('null patch', {'a': 1}, None, 'Invalid JSON Patch'),
    ('string patch', {'a': 1}, 'x', 'Invalid JSON Patch'),
    ('number patch', {'a': 1}, 5, 'Invalid JSON Patch'),
]


# ---------------------------------------------------------------------------------------
# JSON patch
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("desc,doc,ops,expected", JSON_PATCH_CASES, ids=[c[0] for c in JSON_PATCH_CASES])
def test_json_patch(desc, doc, ops, expected):
    before = _frozen(doc, ops)
    assert apply_json_patch(doc, ops) == expected
    assert (doc, ops) == before


@pytest.mark.parametrize("desc,doc,ops,message", JSON_PATCH_ERRORS, ids=[c[0] for c in JSON_PATCH_ERRORS])
def test_json_patch_errors(desc, doc, ops, message):
    before = _frozen(doc, ops)
    with pytest.raises(PatchError) as err:
        apply_json_patch(doc, ops)
    assert err.value.message == message
    # handlers/patch.go: NewGenericServerResponse(422, ...) drops the library's text
    assert (err.value.code, err.value.reason) == (422, "Invalid")
    assert err.value.status_message == GENERIC_422_MESSAGE
    assert err.value.details == {}
    assert (doc, ops) == before


def test_json_patch_type_distinctions():
    doc = {"i": 1, "f": 1.5, "b": True, "n": None, "s": "1"}
    for path, value in [("/i", 1), ("/f", 1.5), ("/b", True), ("/n", None), ("/s", "1")]:
        apply_json_patch(doc, [{"op": "test", "path": path, "value": value}])
    for path, value in [("/i", True), ("/i", 1.0), ("/b", 1), ("/s", 1), ("/i", None)]:
        with pytest.raises(PatchError):
            apply_json_patch(doc, [{"op": "test", "path": path, "value": value}])


@pytest.mark.parametrize("ops,message", [
    ({"op": "add"}, "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
    ("[]", "json: cannot unmarshal string into Go value of type jsonpatch.Patch"),
    ([1], "json: cannot unmarshal number into Go value of type jsonpatch.Operation"),
    ([["add"]], "json: cannot unmarshal array into Go value of type jsonpatch.Operation"),
])
def test_json_patch_decode_errors_are_bad_request(ops, message):
    with pytest.raises(PatchError) as err:
        apply_json_patch({}, ops)
    assert (err.value.code, err.value.reason, err.value.message) == (400, "BadRequest", message)


def test_json_patch_null_is_empty():
    assert apply_json_patch({"a": 1}, None) == {"a": 1}


def test_json_patch_operation_limit():
    ops = [{"op": "test", "path": "/a", "value": 1}] * MAX_JSON_PATCH_OPERATIONS
    assert apply_json_patch({"a": 1}, ops) == {"a": 1}
    with pytest.raises(PatchError) as err:
        apply_json_patch({"a": 1}, ops + ops[:1])
    assert (err.value.code, err.value.reason) == (413, "RequestEntityTooLarge")
    assert err.value.message == ("Request entity too large: The allowed maximum operations in a JSON "
                                 "patch is 10000, got 10001")


def test_json_patch_copy_size_limit():
    doc = {"a": "x" * 100}
    ops = [{"op": "copy", "from": "/a", "path": f"/c{i}"} for i in range(3)]
    assert len(apply_json_patch(doc, ops, max_copy_bytes=400)) == 4
    with pytest.raises(PatchError) as err:
        apply_json_patch(doc, ops, max_copy_bytes=250)
    assert err.value.code == 422
    assert err.value.message == ("Unable to complete the copy, the accumulated size increase of copy "
                                 "is 306, exceeding the limit 250")


def test_json_patch_replace_root_with_array():
    assert apply_json_patch({"a": 1}, [{"op": "replace", "path": "", "value": [1]}]) == [1]


def test_json_patch_result_shares_nothing_with_inputs():
    doc = {"a": {"b": [1]}}
    value = {"x": [1]}
    out = apply_json_patch(doc, [{"op": "add", "path": "/v", "value": value}])
    out["a"]["b"].append(2)
    out["v"]["x"].append(2)
    assert doc == {"a": {"b": [1]}} and value == {"x": [1]}


# ---------------------------------------------------------------------------------------
# Merge patch
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("desc,doc,patch,expected", MERGE_PATCH_CASES, ids=[c[0] for c in MERGE_PATCH_CASES])
def test_merge_patch(desc, doc, patch, expected):
    before = _frozen(doc, patch)
    assert apply_merge_patch(doc, patch) == expected
    assert (doc, patch) == before


@pytest.mark.parametrize("desc,doc,patch,message", MERGE_PATCH_ERRORS, ids=[c[0] for c in MERGE_PATCH_ERRORS])
def test_merge_patch_errors(desc, doc, patch, message):
    with pytest.raises(PatchError) as err:
        apply_merge_patch(doc, patch)
    assert (err.value.code, err.value.reason, err.value.message) == (400, "BadRequest", message)


# ---------------------------------------------------------------------------------------
# Strategic merge patch
# ---------------------------------------------------------------------------------------

def _check_smp(original, patch, expected, schema=MERGE_ITEM):
    before = _frozen(original, patch)
    result = apply_strategic_merge_patch(original, patch, schema)
    # json round trip: equal including list order, and only JSON types in the result
    assert json.loads(json.dumps(result)) == expected
    assert result == expected
    assert (original, patch) == before


@pytest.mark.parametrize("desc,original,patch,expected", SMP_UPSTREAM_CASES,
                         ids=[c[0] for c in SMP_UPSTREAM_CASES])
def test_smp_upstream(desc, original, patch, expected):
    _check_smp(original, patch, expected)


@pytest.mark.parametrize("desc,original,patch,expected", SMP_CASES, ids=[c[0] for c in SMP_CASES])
def test_smp(desc, original, patch, expected):
    _check_smp(original, patch, expected)


# interpretStrategicMergePatchError: these sentinels are 400 / 422, anything else 500.
_SMP_400 = {"invalid patch format of retainKeys", "invalid patch format of setElementOrder list",
            "invalid patch format of primitive list"}
_SMP_422 = {"lists of lists are not supported"}


@pytest.mark.parametrize("desc,original,patch,message", SMP_ERRORS, ids=[c[0] for c in SMP_ERRORS])
def test_smp_errors(desc, original, patch, message):
    before = _frozen(original, patch)
    with pytest.raises(PatchError) as err:
        apply_strategic_merge_patch(original, patch, MERGE_ITEM)
    e = err.value
    assert e.message == message
    if message in _SMP_400:
        assert (e.code, e.reason, e.status_message) == (400, "BadRequest", message)
    elif message in _SMP_422:
        assert (e.code, e.reason, e.status_message, e.details) == (422, "Invalid", GENERIC_422_MESSAGE, {})
    else:
        assert (e.code, e.reason, e.status_message) == (500, "", message)
    assert (original, patch) == before


@pytest.mark.parametrize("kind,live,patch,expected", SMP_REAL_CASES, ids=[
    "kubelet pod status", "kubelet node heartbeat", "kubectl apply three-way", "kubelet node addresses"])
def test_smp_real_world(kind, live, patch, expected):
    _check_smp(live, patch, expected, SCHEMAS[kind])


def test_smp_status_body_for_500():
    with pytest.raises(PatchError) as err:
        apply_strategic_merge_patch({"mergingList": [{"name": "a"}]}, {"mergingList": [{"value": 1}]}, MERGE_ITEM)
    assert err.value.status() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "map: map[value:1] does not contain declared merge key: name", "code": 500}


def test_smp_without_schema_is_unsupported():
    with pytest.raises(PatchError) as err:
        apply_strategic_merge_patch({}, {}, None)
    assert (err.value.code, err.value.message) == (400, "strategic merge patch format is not supported")


@pytest.mark.parametrize("patch,kind", [([], "array"), ("x", "string"), (1, "number"), (True, "bool")])
def test_smp_patch_must_be_an_object(patch, kind):
    with pytest.raises(PatchError) as err:
        apply_strategic_merge_patch({}, patch, MERGE_ITEM)
    assert err.value.code == 400
    assert err.value.message == f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"


def test_smp_null_patch_is_noop():
    assert apply_strategic_merge_patch({"name": "a"}, None, MERGE_ITEM) == {"name": "a"}


def test_smp_unknown_field_only_matters_when_merging():
    # a new field is taken as is; merging an existing object needs its metadata
    assert apply_strategic_merge_patch({}, {"bogus": {"a": 1}}, MERGE_ITEM) == {"bogus": {"a": 1}}
    with pytest.raises(PatchError) as err:
        apply_strategic_merge_patch({"bogus": {"a": 1}}, {"bogus": {"b": 2}}, MERGE_ITEM)
    assert err.value.message == 'unable to find api field in struct MergeItem for the json field "bogus"'
    assert err.value.code == 500


def test_dict_schema_spec_forms():
    s = DictPatchSchema({"l": {"is_list": True, "merge_key": "k", "strategy": "merge,retainKeys",
                               "schema": {"x": {}}}})
    meta = s.field("l")
    assert meta.strategy == ("merge", "retainKeys") and meta.merge_key == "k" and meta.is_list
    assert isinstance(meta.schema, DictPatchSchema) and meta.schema.field("x") == _scalar()
    assert s.field("nope") is None
    assert isinstance(s, PatchSchema)


def test_unexpected_patch_strategy():
    s = DictPatchSchema({"l": {"is_list": True, "strategy": "merge,replace"}})
    with pytest.raises(PatchError) as err:
        apply_strategic_merge_patch({"l": [1]}, {"l": [2]}, s)
    assert (err.value.code, err.value.message) == (500, "unexpected patch strategy: [merge replace]")


# ---------------------------------------------------------------------------------------
# Properties over generated documents (seeded, no hypothesis)
# ---------------------------------------------------------------------------------------

_NAMES = ["a", "b", "c", "d", "e", "f"]


def _gen_item(r: random.Random, name, depth: int) -> dict:
    item = {"name": name}
    for f in ("value", "other"):
        if r.random() < 0.5:
            item[f] = r.choice(["x", "y", 1, 2.5, True])
    if depth and r.random() < 0.4:
        item["mergingList"] = _gen_list(r, depth - 1)
    if depth and r.random() < 0.3:
        item["mergingIntList"] = r.sample(range(10), r.randint(1, 5))
    if r.random() < 0.3:
        item["simpleMap"] = {k: r.choice(["1", "2"]) for k in r.sample(["k1", "k2", "k3"], r.randint(0, 3))}
    return item


def _gen_list(r: random.Random, depth: int) -> list:
    return [_gen_item(r, n, depth) for n in r.sample(_NAMES, r.randint(1, 5))]


def _gen_doc(r: random.Random) -> dict:
    doc = _gen_item(r, r.choice(_NAMES), 2)
    doc["mergingList"] = _gen_list(r, 2)
    doc["mergingIntList"] = r.sample(range(10), r.randint(1, 6))
    if r.random() < 0.5:
        doc["nonMergingList"] = _gen_list(r, 0)
    if r.random() < 0.5:
        doc["mergeItemPtr"] = _gen_item(r, "p", 1)
    return doc


def _gen_json(r: random.Random, depth: int):
    roll = r.random()
    if depth and roll < 0.35:
        return {r.choice(["a", "b", "c/d", "e~f", ""]): _gen_json(r, depth - 1) for _ in range(r.randint(0, 4))}
    if depth and roll < 0.55:
        return [_gen_json(r, depth - 1) for _ in range(r.randint(0, 3))]
    return r.choice([0, 1, -7, 2.5, "s", "", True, False])


def _pointers(doc, prefix=""):
    yield prefix, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _pointers(v, prefix + "/" + k.replace("~", "~0").replace("/", "~1"))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _pointers(v, f"{prefix}/{i}")


DOCS = [_gen_doc(random.Random(seed)) for seed in range(150)]
JSON_DOCS = [{"root": _gen_json(random.Random(seed), 4)} for seed in range(150)]


@pytest.mark.parametrize("doc", JSON_DOCS)
def test_prop_merge_patch_empty_is_identity(doc):
    assert apply_merge_patch(doc, {}) == doc


@pytest.mark.parametrize("doc", DOCS)
def test_prop_smp_empty_is_identity(doc):
    assert apply_strategic_merge_patch(doc, {}, MERGE_ITEM) == doc


def _diff(old: dict, new: dict) -> dict:
    """A merge patch turning ``old`` into ``new`` (objects recurse, the rest replaces)."""
    patch = {k: None for k in old if k not in new}
    for k, v in new.items():
        if k not in old:
            patch[k] = v
        elif isinstance(v, dict) and isinstance(old[k], dict):
            sub = _diff(old[k], v)
            if sub:
                patch[k] = sub
        elif v != old[k] or type(v) is not type(old[k]):
            patch[k] = v
    return patch


@pytest.mark.parametrize("seed", range(100))
def test_prop_merge_patch_of_diff_yields_target(seed):
    r = random.Random(seed)
    old, new = _gen_json(r, 4), _gen_json(r, 4)
    old = {"x": old, "y": {"z": old}}
    new = {"x": new, "y": {"z": new, "w": 1}}
    assert apply_merge_patch(old, _diff(old, new)) == new


@pytest.mark.parametrize("doc", DOCS)
def test_prop_set_element_order_with_current_order_is_identity(doc):
    patch = {"$setElementOrder/mergingList": [{"name": i["name"]} for i in doc["mergingList"]],
             "$setElementOrder/mergingIntList": list(doc["mergingIntList"])}
    assert apply_strategic_merge_patch(doc, patch, MERGE_ITEM) == doc


@pytest.mark.parametrize("doc", DOCS)
def test_prop_set_element_order_applies_requested_order(doc):
    r = random.Random(len(json.dumps(doc)))
    order = [i["name"] for i in doc["mergingList"]]
    r.shuffle(order)
    ints = list(doc["mergingIntList"])
    r.shuffle(ints)
    patch = {"$setElementOrder/mergingList": [{"name": n} for n in order],
             "$setElementOrder/mergingIntList": ints}
    out = apply_strategic_merge_patch(doc, patch, MERGE_ITEM)
    assert [i["name"] for i in out["mergingList"]] == order
    assert out["mergingIntList"] == ints
    by_name = {i["name"]: i for i in doc["mergingList"]}
    assert all(i == by_name[i["name"]] for i in out["mergingList"])


@pytest.mark.parametrize("doc", DOCS)
def test_prop_merge_by_key_updates_only_that_item(doc):
    target = doc["mergingList"][len(doc["mergingList"]) // 2]["name"]
    out = apply_strategic_merge_patch(doc, {"mergingList": [{"name": target, "value": "new"}]}, MERGE_ITEM)
    assert [i["name"] for i in out["mergingList"]] == [i["name"] for i in doc["mergingList"]]
    for before, after in zip(doc["mergingList"], out["mergingList"]):
        assert after == ({**before, "value": "new"} if before["name"] == target else before)


@pytest.mark.parametrize("doc", DOCS)
def test_prop_delete_directive_removes_exactly_that_item(doc):
    target = doc["mergingList"][0]["name"]
    out = apply_strategic_merge_patch(doc, {"mergingList": [{"name": target, "$patch": "delete"}]}, MERGE_ITEM)
    assert out["mergingList"] == doc["mergingList"][1:]


@pytest.mark.parametrize("doc", DOCS)
def test_prop_replace_directive_replaces(doc):
    r = random.Random(len(doc["mergingList"]))
    items = _gen_list(r, 1)
    smap = {"z": "9"}
    patch = {"mergingList": items + [{"$patch": "replace"}], "simpleMap": {"$patch": "replace", **smap},
             "mergeItemPtr": {"$patch": "replace", "name": "q"}}
    out = apply_strategic_merge_patch(doc, patch, MERGE_ITEM)
    assert out["mergingList"] == items
    assert out.get("simpleMap") == (smap if "simpleMap" in doc else None)
    assert out.get("mergeItemPtr") == ({"name": "q"} if "mergeItemPtr" in doc else None)


@pytest.mark.parametrize("doc", DOCS)
def test_prop_primitive_union_and_delete(doc):
    ints = doc["mergingIntList"]
    out = apply_strategic_merge_patch(doc, {"mergingIntList": [100, ints[0]]}, MERGE_ITEM)
    assert sorted(out["mergingIntList"]) == sorted(set(ints) | {100})
    out = apply_strategic_merge_patch(doc, {"$deleteFromPrimitiveList/mergingIntList": ints[:1]}, MERGE_ITEM)
    assert out["mergingIntList"] == ints[1:]


@pytest.mark.parametrize("doc", JSON_DOCS)
def test_prop_json_patch_test_every_pointer(doc):
    ops = [{"op": "test", "path": p, "value": v} for p, v in _pointers(doc)]
    assert apply_json_patch(doc, ops) == doc


@pytest.mark.parametrize("doc", JSON_DOCS)
def test_prop_json_patch_inverse_operations(doc):
    for path, value in _pointers(doc):
        if not path or not isinstance(value, (dict, list)):
            continue  # json-patch v4 cannot address the root as a member
        key = "/-" if isinstance(value, list) else "/new~1key"
        added = apply_json_patch(doc, [{"op": "add", "path": path + key, "value": {"v": 1}}])
        undo = path + ("/" + str(len(value)) if isinstance(value, list) else key)
        assert apply_json_patch(added, [{"op": "remove", "path": undo}]) == doc
        copied = apply_json_patch(doc, [{"op": "copy", "from": path, "path": "/copy"},
                                        {"op": "test", "path": "/copy", "value": value}])
        assert apply_json_patch(copied, [{"op": "remove", "path": "/copy"}]) == doc
        moved = apply_json_patch(doc, [{"op": "move", "from": "/root", "path": "/moved"},
                                       {"op": "move", "from": "/moved", "path": "/root"}])
        assert moved == doc


@pytest.mark.parametrize("seed", range(20))
def test_prop_inputs_never_mutated(seed):
    r = random.Random(seed)
    doc = _gen_doc(r)
    items = [{"name": doc["mergingList"][0]["name"], "$patch": "delete"},
             {"name": "new", "mergingList": [{"name": "x", "value": None}]}]
    if len(doc["mergingList"]) > 1:
        items.append({"name": doc["mergingList"][-1]["name"], "value": None, "simpleMap": {"k9": "1"}})
    patch = {
        "mergingList": items,
        "$setElementOrder/mergingList": [{"name": "new"}] + [{"name": i["name"]} for i in doc["mergingList"][1:]],
        "$deleteFromPrimitiveList/mergingIntList": doc["mergingIntList"][:2],
        "mergingIntList": [42],
        "retainKeysMap": {"$retainKeys": ["name"], "name": "r"},
        "mergeItemPtr": {"$patch": "replace", "name": "p2"},
    }
    before = _frozen(doc, patch)
    out = apply_strategic_merge_patch(doc, patch, MERGE_ITEM)
    assert (doc, patch) == before
    # nor does the result alias the inputs
    out["mergingList"][0]["name"] = "changed"
    assert (doc, patch) == before


def test_go_stable_sort_matches_stable_sort_for_consistent_order():
    r = random.Random(7)
    for n in (0, 1, 5, 19, 20, 21, 47, 130):
        data = [(r.randint(0, 9), i) for i in range(n)]
        out = list(data)
        _go_stable_sort(out, lambda a, b: a[0] < b[0])
        assert out == sorted(data, key=lambda t: t[0])


# ---------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------

def test_parse_patch_body():
    assert parse_patch_body(b'{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
    for body in (b"{", b"NaN", b'{"a": Infinity}', b"\xff"):
        with pytest.raises(PatchError) as err:
            parse_patch_body(body)
        assert (err.value.code, err.value.reason, err.value.message) == (400, "BadRequest", "invalid JSON patch")


def test_apply_patch_dispatch():
    doc = {"mergingList": [{"name": "a"}]}
    assert apply_patch(JSON_PATCH, doc, [{"op": "add", "path": "/x", "value": 1}]) == {**doc, "x": 1}
    assert apply_patch(MERGE_PATCH, doc, {"mergingList": [{"name": "b"}]}) == {"mergingList": [{"name": "b"}]}
    assert apply_patch(STRATEGIC_MERGE_PATCH, doc, {"mergingList": [{"name": "b"}]}, MERGE_ITEM) == {
        "mergingList": [{"name": "b"}, {"name": "a"}]}
    with pytest.raises(PatchError) as err:
        apply_patch("application/apply-patch+yaml", doc, {})
    assert err.value.code == 500


def test_patch_precondition_uid():
    assert patch_precondition_uid({"metadata": {"uid": "u-1"}, "status": {}}) == "u-1"
    for patch in ({}, {"metadata": {}}, {"metadata": {"uid": ""}}, {"metadata": {"uid": None}},
                  {"metadata": "x"}, [], None):
        assert patch_precondition_uid(patch) is None


def test_patch_error_to_api_error():
    e = PatchError("testing value /a failed: test failed", 422, "Invalid",
                   status_message=GENERIC_422_MESSAGE, details={})
    api = e.to_api_error()
    assert (api.code, api.reason, api.message, api.details) == (422, "Invalid", GENERIC_422_MESSAGE, {})
    assert e.status()["details"] == {} and e.status()["reason"] == "Invalid"
