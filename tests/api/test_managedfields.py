"""Field sets, the fieldsV1 encoding, managedFields bookkeeping and the server-side apply merge.

Expectations are hand-checked against the semantics of structured-merge-diff and
k8s.io/apimachinery/pkg/util/managedfields (what kube-apiserver records and answers).
"""
from __future__ import annotations

import copy
import json

import pytest

from shim.api import apply as ssa
from shim.api import errors
from shim.api import managedfields as mf
from shim.api.managedfields import FieldSet, Managed
from shim.schemas import find_resource

DEPLOY = "io.k8s.api.apps.v1.Deployment"


def P(*names):
    """A path of field names: P("spec", "replicas")."""
    return tuple("f:" + n for n in names)


def target(group="apps", version="v1", plural="deployments", subresource=""):
    info = find_resource(group, version, plural)
    return ssa.Target(mf.object_type(info.definition), info.definition, info.group_version, info.kind,
                      subresource, mf.reset_fields(info, subresource))


def deployment(**spec_extra):
    d = {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "web", "namespace": "default"},
         "spec": {"selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]}}}}
    d["spec"].update(spec_extra)
    return d


def stored(obj: dict, managed: Managed) -> dict:
    """What the registry would store: the object with its managedFields and identity."""
    obj = copy.deepcopy(obj)
    md = obj.setdefault("metadata", {})
    md.setdefault("uid", "u-1")
    md.setdefault("creationTimestamp", "2024-01-01T00:00:00Z")
    enc = mf.encode_managed_fields(managed)
    if enc:
        md["managedFields"] = enc
    return obj


def managers(obj_or_managed) -> dict:
    """{manager/operation[/subresource]: fieldsV1} of an object's managedFields or a Managed."""
    if isinstance(obj_or_managed, Managed):
        entries = mf.encode_managed_fields(obj_or_managed) or []
    else:
        entries = obj_or_managed["metadata"].get("managedFields") or []
    out = {}
    for e in entries:
        key = f'{e.get("manager", "")}/{e["operation"]}' + (f'/{e["subresource"]}' if e.get("subresource") else "")
        out[key] = e["fieldsV1"]
    return out


def apply(live, config, manager, force=False, tgt=None):
    tgt = tgt or target()
    obj, managed = ssa.apply_object(live, config, tgt, manager, force)
    return stored(obj, managed), managed


# -- path elements and the fieldsV1 encoding ---------------------------------------------------

class TestEncoding:
    def test_round_trip_with_members_and_children(self):
        s = FieldSet.of(P("metadata", "labels"), P("metadata", "labels", "app"), P("spec", "replicas"),
                        P("spec", "template", "spec", "containers") + ('k:{"name":"c"}',),
                        P("spec", "template", "spec", "containers") + ('k:{"name":"c"}', "f:image"))
        fields = s.to_fields()
        assert fields == {
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:replicas": {},
                       "f:template": {"f:spec": {"f:containers": {'k:{"name":"c"}': {".": {}, "f:image": {}}}}}}}
        assert list(fields["f:metadata"]["f:labels"]) == [".", "f:app"]  # "." first
        back = FieldSet.from_fields(json.loads(json.dumps(fields)))
        assert back == s
        assert back.has(P("metadata", "labels")) and not back.has(P("metadata"))

    def test_order_fields_keys_values_indexes(self):
        s = FieldSet.of(("i:2",), ('v:"b"',), ("v:10",), ('k:{"port":10}',), ('k:{"port":9}',), ("f:z",), ("f:a",))
        assert list(s.to_fields()) == ["f:a", "f:z", 'k:{"port":9}', 'k:{"port":10}', "v:10", 'v:"b"', "i:2"]

    def test_key_fields_are_canonical(self):
        s = FieldSet.from_fields({'k:{"protocol":"TCP","containerPort":80}': {}})
        assert list(s.to_fields()) == ['k:{"containerPort":80,"protocol":"TCP"}']
        assert mf.pe_key([("b", 1), ("a", "<x>")]) == 'k:{"a":"\\u003cx\\u003e","b":1}'

    def test_leaf_only_dot_and_unknown_prefixes(self):
        s = FieldSet.from_fields({"f:a": {".": {}}, "x:ignored": {}, "f:b": {}})
        assert s == FieldSet.of(("f:a",), ("f:b",))
        with pytest.raises(mf.PathError):
            FieldSet.from_fields({"f:a": "not an object"})

    def test_path_strings(self):
        assert mf.path_string(P("spec", "replicas")) == ".spec.replicas"
        assert mf.path_string(P("spec", "containers") + ('k:{"name":"c"}', "f:image")) == \
            '.spec.containers[name="c"].image'
        assert mf.path_string(('k:{"containerPort":80,"protocol":"TCP"}',)) == '[containerPort=80,protocol="TCP"]'
        assert mf.path_string(("f:finalizers", 'v:"x"')) == '.finalizers[="x"]'
        assert mf.path_string(("f:args", "i:3")) == ".args[3]"


class TestSetOperations:
    a = FieldSet.of(P("spec", "replicas"), P("spec", "template"), P("spec", "template", "x"), P("metadata", "name"))
    b = FieldSet.of(P("spec", "template"), P("spec", "paused"), P("metadata", "name"))

    def test_union_intersection(self):
        u = self.a.union(self.b)
        assert all(u.has(p) for p in (P("spec", "replicas"), P("spec", "paused"), P("spec", "template", "x")))
        i = self.a.intersection(self.b)
        assert [mf.path_string(p) for p in i.paths()] == [".metadata.name", ".spec.template"]

    def test_difference_is_not_recursive(self):
        d = self.a.difference(self.b)
        assert [mf.path_string(p) for p in d.paths()] == [".spec.replicas", ".spec.template.x"]
        r = self.a.recursive_difference(self.b)
        assert [mf.path_string(p) for p in r.paths()] == [".spec.replicas"]

    def test_empty(self):
        assert FieldSet().empty()
        assert self.a.difference(self.a).empty()
        assert not self.a.empty()

    def test_iteration_order_members_first(self):
        s = FieldSet.of(P("spec", "template", "a"), P("spec", "b"), P("spec", "a"))
        assert [mf.path_string(p) for p in s.paths()] == [".spec.a", ".spec.b", ".spec.template.a"]


# -- field sets of objects -----------------------------------------------------------------------

class TestToFieldSet:
    def test_list_kinds(self):
        t = mf.object_type("io.k8s.api.core.v1.Pod")
        pod = {"metadata": {"finalizers": ["a/b", "c/d"]},
               "spec": {"tolerations": [{"key": "k", "operator": "Exists"}],
                        "containers": [{"name": "c", "args": ["x"], "ports": [{"containerPort": 80}]}],
                        "nodeSelector": {"disk": "ssd"}, "securityContext": {}}}
        f = mf.to_field_set(pod, t).to_fields()
        assert f["f:metadata"] == {"f:finalizers": {'v:"a/b"': {}, 'v:"c/d"': {}}}
        assert f["f:spec"]["f:tolerations"] == {}                      # atomic list
        assert f["f:spec"]["f:securityContext"] == {}                  # empty struct: a leaf
        assert f["f:spec"]["f:nodeSelector"] == {}                     # +mapType=atomic
        c = f["f:spec"]["f:containers"]['k:{"name":"c"}']
        assert c["f:args"] == {}
        assert c["f:ports"] == {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}

    def test_atomic_struct(self):
        t = mf.object_type(DEPLOY)
        f = mf.to_field_set(deployment(), t).to_fields()
        assert f["f:spec"]["f:selector"] == {}

    def test_validation_messages(self):
        t = mf.object_type(DEPLOY)
        d = deployment()
        d["spec"]["bogus"] = 1
        d["metadata"]["labels"] = {"a": 1}
        d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "x"
        d["spec"]["template"]["spec"]["containers"].append({"name": "nginx"})
        msgs = mf.validate(d, t)
        assert ".metadata.labels.a: expected string, got &value.valueUnstructured{Value:1}" in msgs
        assert ".spec.bogus: field not declared in schema" in msgs
        assert ".spec.template.spec.terminationGracePeriodSeconds: expected numeric (int or float), got string" \
            in msgs
        assert '.spec.template.spec.containers: duplicate entries for key [name="nginx"]' in msgs


class TestCompare:
    def test_added_modified_removed(self):
        t = mf.object_type(DEPLOY)
        a = deployment(replicas=1, paused=True)
        b = deployment(replicas=2, minReadySeconds=5)
        c = mf.compare(a, b, t)
        assert [mf.path_string(p) for p in c.modified.paths()] == [".spec.replicas"]
        assert [mf.path_string(p) for p in c.added.paths()] == [".spec.minReadySeconds"]
        assert [mf.path_string(p) for p in c.removed.paths()] == [".spec.paused"]

    def test_new_struct_and_list_item_claim_themselves(self):
        t = mf.object_type(DEPLOY)
        a = deployment()
        b = deployment()
        b["metadata"]["labels"] = {"x": "y"}
        b["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox"})
        c = mf.compare(a, b, t)
        added = c.added.to_fields()
        assert added["f:metadata"] == {"f:labels": {".": {}, "f:x": {}}}
        assert added["f:spec"]["f:template"]["f:spec"]["f:containers"] == {
            'k:{"name":"side"}': {".": {}, "f:image": {}, "f:name": {}}}


# -- the apply merge ------------------------------------------------------------------------------

class TestApplyMerge:
    def test_create_records_only_applied_fields(self):
        obj, managed = apply(None, deployment(replicas=2), "mgr")
        assert managers(obj) == {"mgr/Apply": {
            "f:spec": {"f:replicas": {}, "f:selector": {},
                       "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
                                      "f:spec": {"f:containers": {'k:{"name":"nginx"}': {
                                          ".": {}, "f:image": {}, "f:name": {}}}}}}}}
        e = obj["metadata"]["managedFields"][0]
        assert e["operation"] == "Apply" and e["apiVersion"] == "apps/v1" and e["time"]
        assert "status" not in obj or obj["status"] == {}

    def test_removed_field_is_pruned_unless_shared(self):
        live, _ = apply(None, deployment(replicas=2, minReadySeconds=3), "a")
        live, _ = apply(live, deployment(minReadySeconds=3), "b")   # b co-owns minReadySeconds
        out, _ = apply(live, deployment(), "a")                     # a drops replicas and minReadySeconds
        assert "replicas" not in out["spec"]
        assert out["spec"]["minReadySeconds"] == 3
        assert "f:minReadySeconds" not in json.dumps(managers(out)["a/Apply"])
        assert managers(out)["b/Apply"]["f:spec"]["f:minReadySeconds"] == {}

    def test_atomic_list_replaced_and_map_list_merged(self):
        live, _ = apply(None, deployment(), "a")
        cfg = deployment()
        cfg["spec"]["template"]["spec"]["containers"] = [{"name": "side", "image": "busybox", "args": ["1", "2"]}]
        live, _ = apply(live, cfg, "b")
        names = [c["name"] for c in live["spec"]["template"]["spec"]["containers"]]
        assert names == ["nginx", "side"]                      # merged by key, a's container kept
        cfg["spec"]["template"]["spec"]["containers"][0]["args"] = ["3"]
        live, _ = apply(live, cfg, "b")
        side = live["spec"]["template"]["spec"]["containers"][1]
        assert side["args"] == ["3"]                           # atomic list: replaced

    def test_set_list_union(self):
        tgt = target("", "v1", "configmaps")
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["x.io/a"]}}
        live, _ = apply(None, cm, "a", tgt=tgt)
        cm2 = copy.deepcopy(cm)
        cm2["metadata"]["finalizers"] = ["x.io/b"]
        live, _ = apply(live, cm2, "b", tgt=tgt)
        assert live["metadata"]["finalizers"] == ["x.io/a", "x.io/b"]
        assert managers(live)["b/Apply"] == {"f:metadata": {"f:finalizers": {'v:"x.io/b"': {}}}}

    def test_conflict_and_force(self):
        live, _ = apply(None, deployment(replicas=2), "a")
        with pytest.raises(errors.ApiError) as e:
            apply(live, deployment(replicas=3), "b")
        assert e.value.code == 409 and e.value.reason == "Conflict"
        assert e.value.message == 'Apply failed with 1 conflict: conflict with "a": .spec.replicas'
        assert e.value.details == {"causes": [{"reason": "FieldManagerConflict",
                                               "message": 'conflict with "a"', "field": ".spec.replicas"}]}
        out, _ = apply(live, deployment(replicas=3), "b", force=True)
        assert out["spec"]["replicas"] == 3
        assert "f:replicas" not in json.dumps(managers(out)["a/Apply"])
        assert managers(out)["b/Apply"]["f:spec"]["f:replicas"] == {}

    def test_same_value_is_shared_not_a_conflict(self):
        live, _ = apply(None, deployment(replicas=2), "a")
        out, _ = apply(live, deployment(replicas=2), "b")
        assert managers(out)["a/Apply"]["f:spec"]["f:replicas"] == {}
        assert managers(out)["b/Apply"]["f:spec"]["f:replicas"] == {}

    def test_multi_conflict_message(self):
        live, _ = apply(None, deployment(replicas=2, minReadySeconds=1), "a")
        cfg = deployment(replicas=3, minReadySeconds=2)
        cfg["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
        with pytest.raises(errors.ApiError) as e:
            apply(live, cfg, "b")
        assert e.value.message == (
            'Apply failed with 3 conflicts: conflicts with "a":\n- .spec.minReadySeconds\n- .spec.replicas\n'
            '- .spec.template.spec.containers[name="nginx"].image')
        assert len(e.value.details["causes"]) == 3

    def test_update_manager_conflict_names_version_and_subresource(self):
        live, managed = apply(None, deployment(replicas=2), "kubectl")
        t = mf.object_type(DEPLOY)
        new = copy.deepcopy(live)
        new["spec"]["replicas"] = 5
        managed = mf.update_ownership(mf._prepared(live, t), mf._prepared(new, t), t, "apps/v1", managed,
                                      "kubectl-edit", "", target().reset, True)
        live = stored(new, managed)
        live["metadata"]["managedFields"] = mf.encode_managed_fields(managed)
        assert managers(live)["kubectl-edit/Update"] == {"f:spec": {"f:replicas": {}}}
        assert "f:replicas" not in json.dumps(managers(live)["kubectl/Apply"])
        with pytest.raises(errors.ApiError) as e:
            apply(live, deployment(replicas=3), "kubectl")
        assert e.value.message == \
            'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas'
        s = Managed({mf.manager_identifier("kubectl", "Update", "apps/v1", "scale"): (FieldSet(), "apps/v1", False)})
        assert mf.print_manager(next(iter(s.fields))) == '"kubectl" with subresource "scale" using apps/v1'

    def test_noop_apply_keeps_time_and_object(self):
        live, managed = apply(None, deployment(replicas=2), "a")
        live["metadata"]["managedFields"][0]["time"] = "2020-01-01T00:00:00Z"
        out, _ = apply(live, deployment(replicas=2), "a")
        assert out["metadata"]["managedFields"][0]["time"] == "2020-01-01T00:00:00Z"
        assert out["spec"] == live["spec"]

    def test_before_first_apply(self):
        live = stored(deployment(replicas=2), Managed())
        out, _ = apply(live, deployment(replicas=2, minReadySeconds=1), "a")
        m = managers(out)
        assert "before-first-apply/Update" in m
        assert m["before-first-apply/Update"]["f:spec"]["f:replicas"] == {}
        with pytest.raises(errors.ApiError) as e:
            apply(stored(deployment(replicas=2), Managed()), deployment(replicas=4), "a")
        assert '"before-first-apply" using apps/v1' in e.value.message

    def test_status_is_reset_on_the_main_resource(self):
        cfg = deployment()
        cfg["status"] = {"replicas": 3}
        obj, _ = apply(None, cfg, "a")
        assert "f:status" not in managers(obj)["a/Apply"]

    def test_errors(self):
        with pytest.raises(errors.ApiError) as e:
            apply(None, {**deployment(), "kind": "Pod"}, "a")
        assert (e.value.code, e.value.message) == (400, "invalid object type: apps/v1, Kind=Pod")
        cfg = deployment()
        cfg["metadata"]["managedFields"] = []
        with pytest.raises(errors.ApiError) as e:
            apply(None, cfg, "a")
        assert (e.value.code, e.value.message) == (400, "metadata.managedFields must be nil")
        cfg = deployment()
        cfg["spec"]["foo"] = 1
        with pytest.raises(errors.ApiError) as e:
            apply(None, cfg, "a")
        assert e.value.code == 500 and "reason" not in e.value.status()
        assert e.value.message == ("failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
                                   ".spec.foo: field not declared in schema")

    def test_kubectl_takes_over_fields_matching_last_applied(self):
        csa = deployment(replicas=2)
        last = json.dumps(csa, sort_keys=True, separators=(",", ":")) + "\n"
        live = copy.deepcopy(csa)
        live["metadata"]["annotations"] = {ssa.LAST_APPLIED: last}
        t = mf.object_type(DEPLOY)
        managed = mf.update_ownership(mf.zero_object(DEPLOY), mf._prepared(live, t), t, "apps/v1", Managed(),
                                      "kubectl-client-side-apply", "", target().reset, False)
        live = stored(live, managed)
        cfg = deployment(replicas=3)
        cfg["metadata"]["annotations"] = {ssa.LAST_APPLIED: last}
        out, _ = apply(live, cfg, "kubectl")      # replicas still matches last-applied: no conflict
        assert out["spec"]["replicas"] == 3
        assert json.loads(out["metadata"]["annotations"][ssa.LAST_APPLIED])["spec"]["replicas"] == 3
        with pytest.raises(errors.ApiError):
            apply(live, deployment(replicas=3), "other")


# -- managedFields ---------------------------------------------------------------------------------

class TestManagedFields:
    def test_decode_errors(self):
        with pytest.raises(mf.ManagedFieldsError, match="operation must be `Apply` or `Update`"):
            mf.decode_managed_fields([{"manager": "a", "operation": "X", "apiVersion": "v1", "fieldsType": "FieldsV1"}])
        with pytest.raises(mf.ManagedFieldsError, match="apiVersion must not be empty"):
            mf.decode_managed_fields([{"manager": "a", "operation": "Update", "fieldsType": "FieldsV1"}])
        with pytest.raises(mf.ManagedFieldsError, match="missing fieldsType in managed fields entry 0"):
            mf.decode_managed_fields([{"manager": "a", "operation": "Update", "apiVersion": "v1"}])

    def test_encode_sorts_and_identifies(self):
        m = Managed()
        for name, op, t in (("z", "Update", "2024-01-01T00:00:02Z"), ("b", "Update", "2024-01-01T00:00:01Z"),
                            ("a", "Apply", "2024-01-01T00:00:09Z")):
            ident = mf.manager_identifier(name, op, "v1")
            m.fields[ident] = (FieldSet.of(("f:data", "f:" + name)), "v1", op == "Apply")
            m.times[ident] = t
        enc = mf.encode_managed_fields(m)
        assert [(e["manager"], e["operation"]) for e in enc] == [("a", "Apply"), ("b", "Update"), ("z", "Update")]
        assert list(enc[0]) == ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1"]
        assert mf.manager_identifier("a", "Apply", "v1", "status") == '{"manager":"a","operation":"Apply","subresource":"status"}'
        back = mf.decode_managed_fields(json.loads(json.dumps(enc)))
        assert mf.encode_managed_fields(back) == enc

    def test_reset_markers(self):
        assert mf.is_reset([]) and mf.is_reset([{}])
        assert not mf.is_reset(None) and not mf.is_reset([{"manager": "a"}])

    def test_user_agent_prefix(self):
        assert mf.prefix_from_user_agent("kubectl/v1.37.0 (linux/amd64) kubernetes/abc") == "kubectl"
        assert mf.prefix_from_user_agent("Go-http-client/2.0") == "Go-http-client"
        assert mf.prefix_from_user_agent("OpenAPI-Generator/37.0.2/python") == "OpenAPI-Generator"
        assert mf.prefix_from_user_agent("a\x07b") == "ab"
        assert len(mf.prefix_from_user_agent("x" * 300)) == 128

    def test_update_moves_ownership_and_records_subresource(self):
        t = mf.object_type(DEPLOY)
        live, managed = apply(None, deployment(replicas=2), "a")
        new = copy.deepcopy(live)
        new["status"] = {"replicas": 2}
        managed = mf.update_ownership(mf._prepared(live, t), mf._prepared(new, t), t, "apps/v1", managed,
                                      "ctrl", "status", mf.reset_fields(find_resource("apps", "v1", "deployments"),
                                                                        "status"), True)
        assert managers(managed)["ctrl/Update/status"] == {"f:status": {"f:replicas": {}}}

    def test_untracked_until_first_apply(self):
        t = mf.object_type(DEPLOY)
        live = stored(deployment(replicas=1), Managed())
        new = copy.deepcopy(live)
        new["spec"]["replicas"] = 2
        m = mf.update_ownership(mf._prepared(live, t), mf._prepared(new, t), t, "apps/v1", Managed(),
                                "x", "", None, True)
        assert not m.fields

    def test_cap_update_managers(self):
        t = mf.object_type("io.k8s.api.core.v1.ConfigMap")
        m = Managed()
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "uid": "u"}, "data": {}}
        for i in range(12):
            new = copy.deepcopy(obj)
            new["data"][f"k{i}"] = "v"
            m = mf.update_ownership(mf._prepared(obj, t), mf._prepared(new, t), t, "v1", m, f"m{i:02d}", "", None,
                                    False)
            for ident in m.times:
                m.times[ident] = m.times[ident] or "2024-01-01T00:00:00Z"
            m.times[mf.manager_identifier(f"m{i:02d}", "Update", "v1")] = f"2024-01-01T00:00:{i:02d}Z"
            obj = new
        names = sorted(json.loads(i)["manager"] for i in m.fields)
        assert len(names) == 10 and "ancient-changes" in names
        ancient = m.fields[mf.manager_identifier("ancient-changes", "Update", "v1")][0]
        assert ancient.has(("f:data", "f:k0")) and ancient.has(("f:data", "f:k2"))

    def test_scale_mapping(self):
        parent = Managed()
        a = mf.manager_identifier("kubectl", "Apply", "")
        u = mf.manager_identifier("other", "Update", "apps/v1")
        parent.fields[a] = (FieldSet.of(P("spec", "replicas"), P("spec", "paused")), "apps/v1", True)
        parent.fields[u] = (FieldSet.of(P("spec", "minReadySeconds")), "apps/v1", False)
        scale = mf.scale_to_subresource(parent, "apps/v1")
        assert [(json.loads(i)["manager"], v[1]) for i, v in scale.fields.items()] == [("kubectl", "autoscaling/v1")]
        # a scale update by "hpa" takes replicas
        scale.fields = {mf.manager_identifier("hpa", "Update", "autoscaling/v1", "scale"):
                        (FieldSet.of(P("spec", "replicas")), "autoscaling/v1", False)}
        back = mf.encode_managed_fields(mf.scale_to_parent(parent, scale, "apps/v1"))
        got = {(e["manager"], e["operation"], e.get("subresource")): e["fieldsV1"] for e in back}
        assert got[("hpa", "Update", "scale")] == {"f:spec": {"f:replicas": {}}}
        assert got[("kubectl", "Apply", None)] == {"f:spec": {"f:paused": {}}}
        assert got[("other", "Update", None)] == {"f:spec": {"f:minReadySeconds": {}}}
        assert all(e["apiVersion"] == "apps/v1" for e in back)


class TestGoNormalize:
    def test_zero_fill_and_omitempty(self):
        t = mf.object_type(DEPLOY)
        d = deployment(paused=False, replicas=0)
        n = mf.go_normalize(d, t)
        assert "paused" not in n["spec"]          # omitempty bool
        assert n["spec"]["replicas"] == 0         # pointer: kept
        assert n["spec"]["strategy"] == {}        # non-pointer struct: always encoded
        assert n["spec"]["template"]["spec"]["containers"][0]["resources"] == {}
        assert mf.zero_object(DEPLOY)["spec"]["template"]["spec"]["containers"] is None
