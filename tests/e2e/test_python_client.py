"""The official Python client (`kubernetes` 37.0.2) against a real `shim up`.

Everything here is what an ordinary program using the client does: typed CoreV1Api and
AppsV1Api calls, selectors, pagination, watches (including watch-list), the dynamic
client, and the delete options. Each test works in its own namespace.
"""
from __future__ import annotations

import json
import threading
import time

import pytest
from kubernetes import client, dynamic, watch
from kubernetes.client.rest import ApiException
from kubernetes.watch.watch import iter_resp_lines

from .rawhttp import Raw

IMAGE = "registry.k8s.io/pause:3.10"
ROOT_CA = "kube-root-ca.crt"


@pytest.fixture
def core(api_client) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def apps(api_client) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


def configmap(name: str, labels: dict | None = None, data: dict | None = None, **meta) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels, **meta),
                              data=data if data is not None else {"k": "v"})


def deployment(name: str, replicas: int = 1) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": IMAGE}]}}}}


def settled(apps, namespace: str, name: str, timeout: float = 20.0):
    """The Deployment once the deployment controller has caught up with its spec (with no
    nodes its pods stay pending, so after that nothing writes it until the spec changes)."""
    deadline = time.time() + timeout
    while True:
        d = apps.read_namespaced_deployment(name, namespace)
        st = d.status
        if st is not None and (st.observed_generation or 0) >= d.metadata.generation and \
                (st.replicas or 0) == d.spec.replicas and (st.updated_replicas or 0) == d.spec.replicas:
            time.sleep(0.2)
            again = apps.read_namespaced_deployment(name, namespace)
            if again.metadata.resource_version == d.metadata.resource_version:
                return d
        assert time.time() < deadline, f"deployment {name} did not settle: {st}"
        time.sleep(0.1)


def pod(name: str, labels: dict | None = None, node: str | None = None) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": IMAGE}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": spec}


def api_error(excinfo) -> dict:
    """The Status body of an ApiException."""
    body = json.loads(excinfo.value.body)
    assert body["kind"] == "Status" and body["code"] == excinfo.value.status
    return body


def rv(obj) -> int:
    return int(obj.metadata.resource_version)


# -- CoreV1Api CRUD ----------------------------------------------------------------------------

def test_configmap_crud(core, namespace):
    created = core.create_namespaced_config_map(namespace, configmap("cm", {"a": "1"}, {"x": "1"}))
    m = created.metadata
    assert (m.name, m.namespace, created.data) == ("cm", namespace, {"x": "1"})
    assert m.uid and m.resource_version and m.creation_timestamp
    assert m.generation is None  # configmaps do not track generation

    got = core.read_namespaced_config_map("cm", namespace)
    assert got.metadata.uid == m.uid and got.metadata.resource_version == m.resource_version

    names = [i.metadata.name for i in core.list_namespaced_config_map(namespace).items]
    assert "cm" in names

    got.data = {"x": "2"}
    replaced = core.replace_namespaced_config_map("cm", namespace, got)
    assert replaced.data == {"x": "2"} and rv(replaced) > rv(created)
    assert replaced.metadata.uid == m.uid

    patched = core.patch_namespaced_config_map("cm", namespace, {"data": {"y": "3"}})
    assert patched.data == {"x": "2", "y": "3"} and rv(patched) > rv(replaced)

    status = core.delete_namespaced_config_map("cm", namespace)  # this client returns a dict
    assert status["kind"] == "Status" and status["status"] == "Success"
    assert status["details"] == {"name": "cm", "kind": "configmaps", "uid": m.uid}
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("cm", namespace)
    body = api_error(e)
    assert (e.value.status, body["reason"], body["message"]) == (404, "NotFound", 'configmaps "cm" not found')
    assert body["details"] == {"name": "cm", "kind": "configmaps"}


def test_secret_crud(core, namespace):
    created = core.create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="s"), string_data={"user": "admin"}))
    assert created.type == "Opaque"
    assert created.data == {"user": "YWRtaW4="} and created.string_data is None
    got = core.read_namespaced_secret("s", namespace)
    got.data["pass"] = "c2VjcmV0"
    replaced = core.replace_namespaced_secret("s", namespace, got)
    assert replaced.data == {"user": "YWRtaW4=", "pass": "c2VjcmV0"}
    assert rv(replaced) > rv(created)
    core.delete_namespaced_secret("s", namespace)
    assert [s.metadata.name for s in core.list_namespaced_secret(namespace).items if s.metadata.name == "s"] == []


def test_service_crud(core, namespace):
    created = core.create_namespaced_service(namespace, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    spec = created.spec
    assert spec.type == "ClusterIP" and spec.cluster_ip and spec.cluster_ips == [spec.cluster_ip]
    assert spec.ports[0].protocol == "TCP" and spec.ports[0].target_port == 80
    got = core.read_namespaced_service("web", namespace)
    got.spec.ports[0].port = 8080
    got.spec.ports[0].target_port = 8080
    replaced = core.replace_namespaced_service("web", namespace, got)
    assert replaced.spec.ports[0].port == 8080 and replaced.spec.cluster_ip == spec.cluster_ip
    core.delete_namespaced_service("web", namespace)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_service("web", namespace)
    assert e.value.status == 404


def test_pod_crud(core, namespace):
    created = core.create_namespaced_pod(namespace, pod("p", {"app": "p"}))
    assert created.status.phase == "Pending"
    assert created.spec.restart_policy == "Always" and created.spec.service_account_name == "default"
    assert created.metadata.generation == 1
    patched = core.patch_namespaced_pod("p", namespace, {"metadata": {"labels": {"extra": "yes"}}})
    assert patched.metadata.labels == {"app": "p", "extra": "yes"}
    assert patched.metadata.generation == 1  # metadata changes are not spec changes
    lst = core.list_namespaced_pod(namespace, field_selector="status.phase=Pending")
    assert [p.metadata.name for p in lst.items] == ["p"]
    deleted = core.delete_namespaced_pod("p", namespace)  # unscheduled: removed at once
    assert isinstance(deleted, client.V1Pod) and deleted.metadata.name == "p"
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod("p", namespace)
    assert e.value.status == 404


def test_namespace_crud(core):
    name = "t-nscrud-" + str(int(time.time() * 1000) % 100000)
    created = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    assert created.status.phase == "Active"
    assert created.spec.finalizers == ["kubernetes"]
    assert created.metadata.labels == {"kubernetes.io/metadata.name": name}
    patched = core.patch_namespace(name, {"metadata": {"labels": {"team": "a"}}})
    assert patched.metadata.labels == {"kubernetes.io/metadata.name": name, "team": "a"}
    core.create_namespaced_config_map(name, configmap("inside"))
    core.delete_namespace(name)
    # the namespace controller empties it, then removes it
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            got = core.read_namespace(name)
        except ApiException as e:
            assert e.status == 404
            break
        assert got.status.phase == "Terminating" and got.metadata.deletion_timestamp
        time.sleep(0.2)
    else:
        pytest.fail(f"namespace {name} was never removed")
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map(name, configmap("late"))
    assert e.value.status == 404


# -- AppsV1Api ---------------------------------------------------------------------------------

def test_deployment_crud_and_stale_replace_conflicts(apps, namespace):
    created = apps.create_namespaced_deployment(namespace, deployment("d"))
    assert created.metadata.generation == 1
    assert created.spec.strategy.type == "RollingUpdate" and created.spec.revision_history_limit == 10
    settled(apps, namespace, "d")  # the deployment controller writes status meanwhile

    stale = apps.read_namespaced_deployment("d", namespace)
    fresh = apps.read_namespaced_deployment("d", namespace)
    fresh.spec.replicas = 2
    replaced = apps.replace_namespaced_deployment("d", namespace, fresh)
    assert replaced.spec.replicas == 2 and replaced.metadata.generation == 2
    assert rv(replaced) > rv(created)

    stale.spec.replicas = 7
    with pytest.raises(ApiException) as e:
        apps.replace_namespaced_deployment("d", namespace, stale)
    body = api_error(e)
    assert (e.value.status, body["reason"]) == (409, "Conflict")
    assert body["message"] == ('Operation cannot be fulfilled on deployments.apps "d": the object has been '
                               'modified; please apply your changes to the latest version and try again')
    assert body["details"] == {"name": "d", "group": "apps", "kind": "deployments"}
    after = settled(apps, namespace, "d")
    assert after.spec.replicas == 2 and after.metadata.generation == replaced.metadata.generation

    patched = apps.patch_namespaced_deployment("d", namespace, {"spec": {"replicas": 3}})
    assert patched.spec.replicas == 3 and patched.metadata.generation == 3
    patched = settled(apps, namespace, "d")
    noop = apps.patch_namespaced_deployment("d", namespace, {"spec": {"replicas": 3}})
    assert noop.metadata.resource_version == patched.metadata.resource_version  # no-op: no write

    listed = apps.list_namespaced_deployment(namespace)
    assert [d.metadata.name for d in listed.items] == ["d"]
    status = apps.delete_namespaced_deployment("d", namespace)
    assert status["status"] == "Success" and status["details"]["group"] == "apps"
    assert apps.list_namespaced_deployment(namespace).items == []


def test_status_subresource(apps, namespace):
    # a StatefulSet: no controller here writes its status, so the test alone does
    created = apps.create_namespaced_stateful_set(namespace, dict(deployment("d", replicas=2), kind="StatefulSet"))
    assert created.metadata.generation == 1
    assert created.status is None or not created.status.ready_replicas

    cur = apps.read_namespaced_stateful_set_status("d", namespace)
    cur.status = client.V1StatefulSetStatus(replicas=2, ready_replicas=1, observed_generation=1)
    cur.spec.replicas = 9  # ignored: the status subresource only writes status
    after_status = apps.replace_namespaced_stateful_set_status("d", namespace, cur)
    assert after_status.status.replicas == 2 and after_status.status.ready_replicas == 1
    assert after_status.spec.replicas == 2
    assert after_status.metadata.generation == 1
    assert rv(after_status) > rv(created)

    patched_status = apps.patch_namespaced_stateful_set_status("d", namespace, {"status": {"readyReplicas": 2}})
    assert patched_status.status.ready_replicas == 2 and patched_status.metadata.generation == 1

    spec_update = apps.read_namespaced_stateful_set("d", namespace)
    spec_update.spec.replicas = 4
    spec_update.status = client.V1StatefulSetStatus(replicas=100)  # ignored: status only via /status
    replaced = apps.replace_namespaced_stateful_set("d", namespace, spec_update)
    assert replaced.spec.replicas == 4 and replaced.metadata.generation == 2
    assert replaced.status.replicas == 2 and replaced.status.ready_replicas == 2
    assert replaced.status.observed_generation == 1

    label_only = apps.patch_namespaced_stateful_set("d", namespace, {"metadata": {"labels": {"x": "y"}}})
    assert label_only.metadata.generation == 2  # metadata is not spec


def test_deployment_scale_subresource(apps, namespace):
    apps.create_namespaced_deployment(namespace, deployment("d", replicas=2))
    settled(apps, namespace, "d")  # the deployment controller writes status meanwhile
    scale = apps.read_namespaced_deployment_scale("d", namespace)
    assert (scale.kind, scale.api_version) == ("Scale", "autoscaling/v1")
    assert scale.metadata.name == "d" and scale.spec.replicas == 2
    assert scale.status.selector == "app=d"

    stale = apps.read_namespaced_deployment_scale("d", namespace)
    scale.spec.replicas = 5
    new_scale = apps.replace_namespaced_deployment_scale("d", namespace, scale)
    assert new_scale.spec.replicas == 5
    dep = apps.read_namespaced_deployment("d", namespace)
    assert dep.spec.replicas == 5 and dep.metadata.generation == 2
    assert int(dep.metadata.resource_version) >= int(new_scale.metadata.resource_version)  # + controller writes

    stale.spec.replicas = 1
    with pytest.raises(ApiException) as e:
        apps.replace_namespaced_deployment_scale("d", namespace, stale)
    assert e.value.status == 409 and api_error(e)["reason"] == "Conflict"
    assert apps.read_namespaced_deployment("d", namespace).spec.replicas == 5

    patched = apps.patch_namespaced_deployment_scale("d", namespace, {"spec": {"replicas": 3}})
    assert patched.spec.replicas == 3
    assert apps.read_namespaced_deployment("d", namespace).spec.replicas == 3


# -- list: selectors and pagination -------------------------------------------------------------

def _names(lst) -> list[str]:
    return sorted(i.metadata.name for i in lst.items)


def test_list_with_label_and_field_selectors(core, namespace):
    for name, labels in [("a1", {"tier": "a", "env": "prod"}), ("a2", {"tier": "a"}),
                         ("b1", {"tier": "b", "env": "dev"}), ("c1", {"tier": "c"}), ("none", None)]:
        core.create_namespaced_config_map(namespace, configmap(name, labels))

    def names(**kw):
        return [n for n in _names(core.list_namespaced_config_map(namespace, **kw)) if n != ROOT_CA]

    assert names(label_selector="tier=a") == ["a1", "a2"]
    assert names(label_selector="tier==a,env") == ["a1"]
    assert names(label_selector="tier!=a") == ["b1", "c1", "none"]
    assert names(label_selector="tier in (a,b)") == ["a1", "a2", "b1"]
    assert names(label_selector="tier notin (a,b),tier") == ["c1"]
    assert names(label_selector="!env,tier") == ["a2", "c1"]
    assert names(field_selector="metadata.name=b1") == ["b1"]
    assert names(field_selector="metadata.name!=b1", label_selector="tier") == ["a1", "a2", "c1"]
    assert names(field_selector=f"metadata.namespace={namespace}", label_selector="env") == ["a1", "b1"]
    # across namespaces, a namespace pin in the field selector
    every = core.list_config_map_for_all_namespaces(field_selector=f"metadata.namespace={namespace}",
                                                    label_selector="tier=a")
    assert _names(every) == ["a1", "a2"]

    with pytest.raises(ApiException) as e:
        core.list_namespaced_config_map(namespace, field_selector="data.k=v")
    body = api_error(e)
    assert (e.value.status, body["reason"]) == (400, "BadRequest")
    assert body["message"] == '"data.k" is not a known field selector: only "metadata.name", "metadata.namespace"'
    with pytest.raises(ApiException) as e:
        core.list_namespaced_pod(namespace, field_selector="spec.foo=bar")
    assert e.value.status == 400 and api_error(e)["message"] == "field label not supported: spec.foo"
    with pytest.raises(ApiException) as e:
        core.list_namespaced_config_map(namespace, label_selector="tier in a")
    assert e.value.status == 400 and api_error(e)["reason"] == "BadRequest"

    core.create_namespaced_pod(namespace, pod("on-n1", node="n1"))
    core.create_namespaced_pod(namespace, pod("unscheduled"))
    pods = core.list_namespaced_pod(namespace, field_selector="spec.nodeName=n1")
    assert _names(pods) == ["on-n1"]
    assert _names(core.list_namespaced_pod(namespace, field_selector="spec.nodeName=")) == ["unscheduled"]


def test_pagination_walks_a_consistent_snapshot(core, namespace):
    for i in range(25):
        core.create_namespaced_config_map(namespace, configmap(f"cm-{i:02d}", {"page": "yes"}))
    first = core.list_namespaced_config_map(namespace, limit=10)
    snapshot_rv = first.metadata.resource_version
    # what the whole list was at that revision (robust to other objects in the namespace)
    expected = _names(core.list_namespaced_config_map(namespace, resource_version=snapshot_rv,
                                                      resource_version_match="Exact"))
    assert len(expected) >= 25 and len(first.items) == 10
    assert first.metadata.remaining_item_count == len(expected) - 10
    assert first.metadata._continue

    # changes after the first page must not show up in later pages
    core.create_namespaced_config_map(namespace, configmap("cm-99-late", {"page": "yes"}))
    core.delete_namespaced_config_map("cm-24", namespace)
    core.patch_namespaced_config_map("cm-23", namespace, {"data": {"k": "changed"}})

    seen = [i.metadata.name for i in first.items]
    page, pages = first, 1
    while page.metadata._continue:
        page = core.list_namespaced_config_map(namespace, limit=10, _continue=page.metadata._continue)
        pages += 1
        assert page.metadata.resource_version == snapshot_rv
        assert len(page.items) <= 10
        seen += [i.metadata.name for i in page.items]
        if page.metadata._continue:
            assert page.metadata.remaining_item_count == len(expected) - len(seen)
        else:
            assert page.metadata.remaining_item_count is None
        for item in page.items:
            if item.metadata.name == "cm-23":
                assert item.data == {"k": "v"}  # as of the snapshot
    assert pages == (len(expected) + 9) // 10
    assert len(seen) == len(set(seen)), "duplicates across pages"
    assert sorted(seen) == expected, "items missed or added across pages"
    assert "cm-24" in seen and "cm-99-late" not in seen

    # a new list (no continue) sees the present
    now = _names(core.list_namespaced_config_map(namespace, label_selector="page=yes"))
    assert "cm-99-late" in now and "cm-24" not in now


# -- watch --------------------------------------------------------------------------------------

def _collect(func, *args, stop_after: int | None = None, timeout: int = 3, **kw) -> list[tuple[str, str, dict]]:
    """(type, name, raw object) of the events of one watch; ends at stop_after events or the timeout."""
    out = []
    w = watch.Watch()
    for ev in w.stream(func, *args, timeout_seconds=timeout, **kw):
        obj = ev["raw_object"]
        if obj["metadata"].get("name") == ROOT_CA:
            continue  # published into every namespace by a controller, on its own schedule
        out.append((ev["type"], obj["metadata"].get("name"), obj))
        if stop_after is not None and len(out) >= stop_after:
            w.stop()
    return out


def test_watch_sees_changes_made_after_it_starts(core, namespace):
    start_rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    events: list = []
    started = threading.Event()

    def run():
        w = watch.Watch()
        started.set()
        for ev in w.stream(core.list_namespaced_config_map, namespace, resource_version=start_rv,
                           timeout_seconds=15):
            if ev["object"].metadata.name == ROOT_CA:
                continue
            events.append((ev["type"], ev["object"].metadata.name, ev["object"]))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    started.wait(5)
    time.sleep(0.3)
    created = core.create_namespaced_config_map(namespace, configmap("w"))
    modified = core.patch_namespaced_config_map("w", namespace, {"data": {"k": "v2"}})
    core.delete_namespaced_config_map("w", namespace)
    t.join(15)
    assert not t.is_alive()
    assert [(e[0], e[1]) for e in events] == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    assert isinstance(events[0][2], client.V1ConfigMap)
    assert events[0][2].metadata.resource_version == created.metadata.resource_version
    assert events[1][2].data == {"k": "v2"}
    assert events[1][2].metadata.resource_version == modified.metadata.resource_version
    assert rv(events[2][2]) > rv(modified)  # DELETED carries the deletion's revision


def test_watch_resumes_from_resource_version(core, namespace):
    a = core.create_namespaced_config_map(namespace, configmap("a"))
    core.create_namespaced_config_map(namespace, configmap("b"))
    core.patch_namespaced_config_map("a", namespace, {"data": {"k": "a2"}})
    core.delete_namespaced_config_map("b", namespace)
    core.create_namespaced_config_map(namespace, configmap("c"))
    events = _collect(core.list_namespaced_config_map, namespace,
                      resource_version=a.metadata.resource_version, timeout=2)
    assert [(t, n) for t, n, _ in events] == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b"), ("ADDED", "c")]
    rvs = [int(o["metadata"]["resourceVersion"]) for _, _, o in events]
    assert rvs == sorted(set(rvs)) and rvs[0] > rv(a)
    assert events[1][2]["data"] == {"k": "a2"}

    # from the last of them: nothing more
    assert _collect(core.list_namespaced_config_map, namespace, resource_version=str(rvs[-1]), timeout=1) == []
    # without a resourceVersion: the current state as ADDED events first
    initial = _collect(core.list_namespaced_config_map, namespace, timeout=1)
    assert sorted((t, n) for t, n, _ in initial if n != ROOT_CA) == [("ADDED", "a"), ("ADDED", "c")]


def test_watch_label_selector_object_leaving_selection_is_deleted(core, namespace):
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, configmap("x", {"sel": "yes"}))
    core.create_namespaced_config_map(namespace, configmap("y", {"sel": "no"}))
    core.patch_namespaced_config_map("x", namespace, {"data": {"k": "x2"}})
    moved = core.patch_namespaced_config_map("x", namespace, {"metadata": {"labels": {"sel": "no"}}})
    core.patch_namespaced_config_map("y", namespace, {"metadata": {"labels": {"sel": "yes"}}})
    core.delete_namespaced_config_map("x", namespace)  # no longer selected: no event
    events = _collect(core.list_namespaced_config_map, namespace, resource_version=start,
                      label_selector="sel=yes", timeout=2)
    assert [(t, n) for t, n, _ in events] == [("ADDED", "x"), ("MODIFIED", "x"), ("DELETED", "x"), ("ADDED", "y")]
    gone = events[2][2]
    assert gone["metadata"]["resourceVersion"] == moved.metadata.resource_version


def test_watch_list_initial_events_end_bookmark(core, namespace):
    for n in ("wl-1", "wl-2", "wl-3"):
        last = core.create_namespaced_config_map(namespace, configmap(n))
    resp = core.list_namespaced_config_map(
        namespace, watch=True, send_initial_events=True, resource_version_match="NotOlderThan",
        allow_watch_bookmarks=True, timeout_seconds=10, _preload_content=False)
    try:
        assert resp.status == 200
        lines = iter_resp_lines(resp)
        added = []
        for line in lines:
            ev = json.loads(line)
            if ev["type"] == "BOOKMARK":
                bookmark = ev["object"]
                break
            assert ev["type"] == "ADDED", ev
            assert ev["object"]["kind"] == "ConfigMap"
            added.append(ev["object"]["metadata"]["name"])
        else:
            pytest.fail("the stream ended without the initial-events-end bookmark")
        assert sorted(n for n in added if n != ROOT_CA) == ["wl-1", "wl-2", "wl-3"]
        assert bookmark["kind"] == "ConfigMap" and bookmark["apiVersion"] == "v1"
        assert bookmark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
        assert int(bookmark["metadata"]["resourceVersion"]) >= rv(last)

        # then it goes on as an ordinary watch
        later = core.create_namespaced_config_map(namespace, configmap("wl-4"))
        for line in lines:
            ev = json.loads(line)
            if ev["type"] == "BOOKMARK" or ev["object"]["metadata"]["name"] == ROOT_CA:
                continue
            assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "wl-4")
            assert ev["object"]["metadata"]["resourceVersion"] == later.metadata.resource_version
            break
        else:
            pytest.fail("no event after the bookmark")
    finally:
        resp.close()
        resp.release_conn()

    # watch-list without allowWatchBookmarks is refused
    with pytest.raises(ApiException) as e:
        core.list_namespaced_config_map(namespace, watch=True, send_initial_events=True,
                                        resource_version_match="NotOlderThan", timeout_seconds=1)
    assert e.value.status == 422 and api_error(e)["reason"] == "Invalid"


# -- dynamic client ------------------------------------------------------------------------------

def test_dynamic_client_discovery_and_crud(api_client, namespace):
    dyn = dynamic.DynamicClient(api_client)
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    assert (cms.name, cms.namespaced, cms.group) == ("configmaps", True, "")
    deps = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    assert (deps.name, deps.namespaced, deps.group) == ("deployments", True, "apps")
    assert dyn.resources.get(api_version="apps/v1", kind="Deployment").subresources["scale"]

    created = cms.create(body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dyn"},
                               "data": {"a": "1"}}, namespace=namespace)
    assert created.metadata.name == "dyn" and created.data.a == "1"
    got = cms.get(name="dyn", namespace=namespace)
    assert got.metadata.uid == created.metadata.uid
    body = got.to_dict()
    body["data"]["b"] = "2"
    replaced = cms.replace(body=body, namespace=namespace)
    assert replaced.data.b == "2"
    patched = cms.patch(name="dyn", namespace=namespace, body={"data": {"c": "3"}},
                        content_type="application/merge-patch+json")
    assert patched.data.to_dict() == {"a": "1", "b": "2", "c": "3"}
    listed = cms.get(namespace=namespace)
    assert "dyn" in [i.metadata.name for i in listed.items]
    cms.delete(name="dyn", namespace=namespace)
    with pytest.raises(dynamic.exceptions.NotFoundError):
        cms.get(name="dyn", namespace=namespace)

    dep = deps.create(body=deployment("dd"), namespace=namespace)
    assert dep.metadata.generation == 1 and dep.spec.replicas == 1
    patched = deps.patch(name="dd", namespace=namespace, body={"spec": {"replicas": 2}})
    assert patched.spec.replicas == 2 and patched.metadata.generation == 2
    scale = deps.subresources["scale"].get(name="dd", namespace=namespace)
    assert scale.spec.replicas == 2
    stale = dep.to_dict()
    stale["spec"]["replicas"] = 5
    with pytest.raises(dynamic.exceptions.ConflictError):
        deps.replace(body=stale, namespace=namespace)
    deps.delete(name="dd", namespace=namespace)
    assert deps.get(namespace=namespace).items == []


# -- delete options, finalizers, generateName, deletecollection -----------------------------------

def test_delete_with_grace_period(core, namespace):
    core.create_namespaced_pod(namespace, pod("bound", node="node-1"))
    marked = core.delete_namespaced_pod("bound", namespace, grace_period_seconds=30)
    assert marked.metadata.deletion_timestamp is not None
    assert marked.metadata.deletion_grace_period_seconds == 30
    still = core.read_namespaced_pod("bound", namespace)  # waits for the kubelet
    assert still.metadata.deletion_grace_period_seconds == 30
    shorter = core.delete_namespaced_pod("bound", namespace, grace_period_seconds=10)
    assert shorter.metadata.deletion_grace_period_seconds == 10
    core.delete_namespaced_pod("bound", namespace, grace_period_seconds=0)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod("bound", namespace)
    assert e.value.status == 404

    core.create_namespaced_pod(namespace, pod("bound2", node="node-1"))
    core.delete_namespaced_pod("bound2", namespace, body=client.V1DeleteOptions(grace_period_seconds=0))
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod("bound2", namespace)
    assert e.value.status == 404


def test_delete_preconditions(core, apps, namespace):
    cm = core.create_namespaced_config_map(namespace, configmap("pre"))
    uid = cm.metadata.uid
    with pytest.raises(ApiException) as e:
        core.delete_namespaced_config_map("pre", namespace, body=client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid="00000000-0000-0000-0000-000000000000")))
    body = api_error(e)
    assert (e.value.status, body["reason"]) == (409, "Conflict")
    assert body["message"] == (
        'Operation cannot be fulfilled on ConfigMap "pre": the UID in the precondition '
        f'(00000000-0000-0000-0000-000000000000) does not match the UID in record ({uid}). '
        'The object might have been deleted and then recreated')
    assert body["details"] == {"name": "pre", "kind": "ConfigMap"}
    with pytest.raises(ApiException) as e:
        core.delete_namespaced_config_map("pre", namespace, body=client.V1DeleteOptions(
            preconditions=client.V1Preconditions(resource_version="1")))
    body = api_error(e)
    assert e.value.status == 409 and body["message"] == (
        'Operation cannot be fulfilled on ConfigMap "pre": the ResourceVersion in the precondition (1) '
        f'does not match the ResourceVersion in record ({cm.metadata.resource_version}). '
        'The object might have been modified')
    assert core.read_namespaced_config_map("pre", namespace).metadata.resource_version == \
        cm.metadata.resource_version
    core.delete_namespaced_config_map("pre", namespace, body=client.V1DeleteOptions(
        preconditions=client.V1Preconditions(uid=uid, resource_version=cm.metadata.resource_version)))
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("pre", namespace)

    dep = apps.create_namespaced_deployment(namespace, deployment("dp"))
    with pytest.raises(ApiException) as e:
        apps.delete_namespaced_deployment("dp", namespace, body=client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid="nope")))
    body = api_error(e)
    assert body["message"].startswith('Operation cannot be fulfilled on Deployment.apps "dp": the UID in')
    assert body["details"] == {"name": "dp", "group": "apps", "kind": "Deployment"}
    assert apps.read_namespaced_deployment("dp", namespace).metadata.uid == dep.metadata.uid


def test_finalizers_hold_deletion(core, namespace):
    core.create_namespaced_config_map(namespace, configmap("fin", finalizers=["example.com/hold"]))
    core.delete_namespaced_config_map("fin", namespace)
    held = core.read_namespaced_config_map("fin", namespace)
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.finalizers == ["example.com/hold"]
    assert held.metadata.deletion_grace_period_seconds == 0
    # deleting again changes nothing
    core.delete_namespaced_config_map("fin", namespace)
    again = core.read_namespaced_config_map("fin", namespace)
    assert again.metadata.deletion_timestamp == held.metadata.deletion_timestamp
    # new finalizers cannot be added once deleting; other updates still work
    updated = core.patch_namespaced_config_map("fin", namespace, {"data": {"k": "still"}})
    assert updated.data == {"k": "still"} and updated.metadata.deletion_timestamp
    # removing the last finalizer lets it go
    core.patch_namespaced_config_map("fin", namespace, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("fin", namespace)
    assert e.value.status == 404


def test_generate_name(core, namespace):
    a = core.create_namespaced_config_map(namespace, configmap(None, generate_name="gen-"))
    b = core.create_namespaced_config_map(namespace, configmap(None, generate_name="gen-"))
    for obj in (a, b):
        assert obj.metadata.name.startswith("gen-") and len(obj.metadata.name) == len("gen-") + 5
        assert obj.metadata.generate_name == "gen-"
    assert a.metadata.name != b.metadata.name
    assert core.read_namespaced_config_map(a.metadata.name, namespace).metadata.uid == a.metadata.uid


def test_deletecollection_with_label_selector(core, namespace):
    for i in range(3):
        core.create_namespaced_config_map(namespace, configmap(f"del-{i}", {"del": "yes"}))
    for i in range(2):
        core.create_namespaced_config_map(namespace, configmap(f"keep-{i}", {"del": "no"}))
    core.delete_collection_namespaced_config_map(namespace, label_selector="del=yes")
    left = [n for n in _names(core.list_namespaced_config_map(namespace)) if n != ROOT_CA]
    assert left == ["keep-0", "keep-1"]


def test_delete_status_body_is_upstreams(server, core, apps, namespace):
    """The Success Status of a delete carries name, kind (the resource) and uid; group only if any."""
    raw = Raw(server)
    cm = core.create_namespaced_config_map(namespace, configmap("st"))
    r = raw.request("DELETE", f"/api/v1/namespaces/{namespace}/configmaps/st")
    assert r.status == 200
    assert r.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                        "details": {"name": "st", "kind": "configmaps", "uid": cm.metadata.uid}}
    dep = apps.create_namespaced_deployment(namespace, deployment("st"))
    r = raw.request("DELETE", f"/apis/apps/v1/namespaces/{namespace}/deployments/st")
    assert r.json()["details"] == {"name": "st", "group": "apps", "kind": "deployments",
                                   "uid": dep.metadata.uid}
