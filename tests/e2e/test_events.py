"""Events through both APIs: core/v1 and events.k8s.io/v1 serve one stored object.

As upstream, an Event written through either API is the same object through the other
(same uid, same resourceVersion), with the fields renamed: regarding/involvedObject,
note/message, reportingController/reportingComponent, deprecatedSource/source,
deprecatedFirstTimestamp/firstTimestamp, deprecatedLastTimestamp/lastTimestamp and
deprecatedCount/count. The clients here are the real ones: the official Python client's
CoreV1Api and EventsV1Api, and kubectl (`events`, `describe`, `get`, server-side apply).
"""
from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

UTC = dt.timezone.utc


@pytest.fixture
def core(api_client) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def events(api_client) -> client.EventsV1Api:
    return client.EventsV1Api(api_client)


def now_micro() -> str:
    return dt.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_seconds() -> str:
    return dt.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def v1_event(ns: str, name: str, *, regarding: dict | None = None, note: str = "pulled the image",
             reason: str = "Pulled", type_: str = "Normal", controller: str = "example.com/puller",
             **extra) -> dict:
    """An events.k8s.io/v1 Event as a new-style recorder writes it."""
    ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
          "metadata": {"name": name, "namespace": ns},
          "eventTime": now_micro(), "reportingController": controller,
          "reportingInstance": "puller-1", "action": "Pull", "reason": reason, "type": type_,
          "note": note,
          "regarding": regarding or {"apiVersion": "v1", "kind": "Pod", "namespace": ns,
                                     "name": "web-0", "uid": "11111111-2222-3333-4444-555555555555"}}
    ev.update(extra)
    return ev


def core_event(ns: str, name: str, *, involved: dict | None = None, message: str = "scheduled it",
               reason: str = "Scheduled", type_: str = "Normal", component: str = "old-recorder",
               count: int = 1) -> dict:
    """A core/v1 Event as client-go's old recorder (and kubelets) write it."""
    ts = now_seconds()
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
            "involvedObject": involved or {"apiVersion": "v1", "kind": "Pod", "namespace": ns,
                                           "name": "web-1", "uid": "66666666-7777-8888-9999-000000000000"},
            "reason": reason, "message": message, "type": type_,
            "source": {"component": component, "host": "node-a"},
            "firstTimestamp": ts, "lastTimestamp": ts, "count": count}


def raw_v1(events: client.EventsV1Api, ns: str, name: str) -> dict:
    """An events.k8s.io/v1 Event as JSON (an old-style Event has no eventTime, which the
    typed model insists on, as it does against upstream)."""
    resp = events.read_namespaced_event(name, ns, _preload_content=False)
    return json.loads(resp.data)


def raw_core(core: client.CoreV1Api, ns: str, name: str) -> dict:
    return json.loads(core.read_namespaced_event(name, ns, _preload_content=False).data)


def api_error(fn, *args, **kw) -> ApiException:
    with pytest.raises(ApiException) as e:
        fn(*args, **kw)
    return e.value


# -- one object, two shapes ------------------------------------------------------------------

def test_events_v1_write_is_a_core_event(core, events, namespace):
    body = v1_event(namespace, "pulled.1", related={"kind": "Node", "name": "node-a"})
    created = events.create_namespaced_event(namespace, body)
    assert created.regarding.name == "web-0" and created.note == "pulled the image"

    got = core.read_namespaced_event("pulled.1", namespace)
    assert got.kind == "Event" and got.api_version == "v1"
    assert got.metadata.uid == created.metadata.uid
    assert got.metadata.resource_version == created.metadata.resource_version
    assert got.involved_object.to_dict() == created.regarding.to_dict()
    assert got.message == "pulled the image"
    assert got.reporting_component == "example.com/puller"
    assert (got.reporting_instance, got.action, got.reason, got.type) == ("puller-1", "Pull", "Pulled", "Normal")
    assert got.related.name == "node-a"
    assert got.event_time == created.event_time

    # the raw core JSON has the core names only
    raw = raw_core(core, namespace, "pulled.1")
    for field in ("regarding", "note", "reportingController", "deprecatedSource"):
        assert field not in raw, raw
    assert raw["apiVersion"] == "v1"

    # and the core list holds the same object
    items = core.list_namespaced_event(namespace).items
    assert [e.metadata.name for e in items] == ["pulled.1"]


def test_core_write_is_an_events_v1_event(core, events, namespace):
    created = core.create_namespaced_event(namespace, core_event(namespace, "sched.1", count=3))
    got = raw_v1(events, namespace, "sched.1")
    assert got["apiVersion"] == "events.k8s.io/v1" and got["kind"] == "Event"
    assert got["metadata"]["uid"] == created.metadata.uid
    assert got["metadata"]["resourceVersion"] == created.metadata.resource_version
    assert got["regarding"]["name"] == "web-1" and got["regarding"]["kind"] == "Pod"
    assert got["note"] == "scheduled it"
    assert got["deprecatedSource"] == {"component": "old-recorder", "host": "node-a"}
    assert got["deprecatedCount"] == 3
    assert got["deprecatedFirstTimestamp"] and got["deprecatedLastTimestamp"]
    for field in ("involvedObject", "message", "source", "firstTimestamp", "lastTimestamp", "count",
                  "reportingComponent"):
        assert field not in got, got

    # a new-style core Event reads through the typed events.k8s.io client
    new_style = core_event(namespace, "sched.2")
    for k in ("firstTimestamp", "lastTimestamp", "count", "source"):
        new_style.pop(k)
    new_style.update(eventTime=now_micro(), reportingComponent="example.com/scheduler",
                     reportingInstance="sched-0", action="Binding",
                     series={"count": 2, "lastObservedTime": now_micro()})
    core.create_namespaced_event(namespace, new_style)
    typed = events.read_namespaced_event("sched.2", namespace)
    assert typed.reporting_controller == "example.com/scheduler"
    assert typed.series.count == 2
    assert typed.regarding.name == "web-1"


def test_list_and_continue_through_both_views(core, events, namespace):
    for i in range(5):
        events.create_namespaced_event(namespace, v1_event(namespace, f"e{i}"))
    page = events.list_namespaced_event(namespace, limit=2)
    names = [e.metadata.name for e in page.items]
    while page.metadata._continue:
        page = events.list_namespaced_event(namespace, limit=2, _continue=page.metadata._continue)
        names += [e.metadata.name for e in page.items]
    assert names == [f"e{i}" for i in range(5)]
    core_names = [e.metadata.name for e in core.list_namespaced_event(namespace).items]
    assert core_names == names


# -- writes through one view, seen through the other -------------------------------------------

def test_update_patch_and_delete_cross_views(core, events, namespace):
    events.create_namespaced_event(namespace, v1_event(namespace, "cross"))

    # merge patch through events.k8s.io: a series starts
    patched = events.patch_namespaced_event(
        "cross", namespace, {"series": {"count": 2, "lastObservedTime": now_micro()}})
    assert core.read_namespaced_event("cross", namespace).series.count == 2
    assert core.read_namespaced_event("cross", namespace).metadata.resource_version == \
        patched.metadata.resource_version

    # strategic merge patch through core: labels and the message
    core.patch_namespaced_event("cross", namespace, {"metadata": {"labels": {"via": "core"}},
                                                     "message": "pulled it again"})
    got = events.read_namespaced_event("cross", namespace)
    assert got.metadata.labels == {"via": "core"} and got.note == "pulled it again"

    # replace (PUT) through events.k8s.io with the current resourceVersion
    body = raw_v1(events, namespace, "cross")
    body["series"]["count"] = 3
    replaced = events.replace_namespaced_event("cross", namespace, body)
    assert replaced.series.count == 3
    assert core.read_namespaced_event("cross", namespace).series.count == 3

    # a stale resourceVersion conflicts through the other view too
    stale = raw_core(core, namespace, "cross")
    stale["metadata"]["resourceVersion"] = patched.metadata.resource_version
    assert api_error(core.replace_namespaced_event, "cross", namespace, stale).status == 409

    # delete through core: gone from events.k8s.io
    core.delete_namespaced_event("cross", namespace)
    assert api_error(events.read_namespaced_event, "cross", namespace).status == 404

    # and the other way round
    core.create_namespaced_event(namespace, core_event(namespace, "back"))
    events.delete_namespaced_event("back", namespace)
    assert api_error(core.read_namespaced_event, "back", namespace).status == 404


def test_server_side_apply_through_events_v1_shows_in_core(kubectl, core, namespace):
    manifest = v1_event(namespace, "applied", note="applied note")
    kubectl("apply", "--server-side", "--field-manager=ev-applier", "-f", "-", input=json.dumps(manifest))
    got = core.read_namespaced_event("applied", namespace)
    assert got.message == "applied note"
    managers = {(m.manager, m.operation, m.api_version) for m in got.metadata.managed_fields}
    assert ("ev-applier", "Apply", "events.k8s.io/v1") in managers
    # a label added through core by another manager; a re-apply through events.k8s.io keeps it
    core.patch_namespaced_event("applied", namespace, {"metadata": {"labels": {"by": "core"}}},
                                field_manager="core-labeller")
    manifest["metadata"]["labels"] = {"team": "x"}
    kubectl("apply", "--server-side", "--field-manager=ev-applier", "-f", "-", input=json.dumps(manifest))
    got = core.read_namespaced_event("applied", namespace)
    assert got.metadata.labels == {"by": "core", "team": "x"}
    managers = {(m.manager, m.api_version) for m in got.metadata.managed_fields}
    assert {("ev-applier", "events.k8s.io/v1"), ("core-labeller", "v1")} <= managers

    # ownership moves across the APIs: a core writer changing the message takes the note
    # from the events.k8s.io applier, whose next apply of its old note then conflicts
    core.patch_namespaced_event("applied", namespace, {"message": "core note"}, field_manager="core-writer")
    entries = {m.manager: m for m in core.read_namespaced_event("applied", namespace).metadata.managed_fields}
    assert "f:message" in entries["core-writer"].fields_v1 and entries["core-writer"].api_version == "v1"
    assert "f:note" not in entries["ev-applier"].fields_v1, entries["ev-applier"].fields_v1
    assert "f:regarding" in entries["ev-applier"].fields_v1  # still in its own API's names
    p = kubectl.run("apply", "--server-side", "--field-manager=ev-applier", "-f", "-",
                    input=json.dumps(manifest), check=False)
    assert p.returncode != 0 and "conflict" in p.stderr and "core-writer" in p.stderr, p.stderr


# -- watch ----------------------------------------------------------------------------------------

def _watch_in_background(list_fn, namespace: str, rv: str, stop_on_delete: str):
    seen: list = []
    started = threading.Event()

    def run():
        w = watch.Watch()
        started.set()
        # JSON, not models: an old-style Event has no eventTime, which EventsV1Event requires
        for ev in w.stream(list_fn, namespace, resource_version=rv, timeout_seconds=15,
                           deserialize=False):
            obj = ev["object"]
            seen.append((ev["type"], obj["metadata"]["name"], obj))
            if ev["type"] == "DELETED" and obj["metadata"]["name"] == stop_on_delete:
                w.stop()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    started.wait(5)
    time.sleep(0.3)
    return t, seen


def test_watch_on_each_api_sees_writes_through_the_other(core, events, namespace):
    rv = core.list_namespaced_event(namespace).metadata.resource_version
    t_v1, on_v1 = _watch_in_background(events.list_namespaced_event, namespace, rv, "from-core")
    t_core, on_core = _watch_in_background(core.list_namespaced_event, namespace, rv, "from-core")

    events.create_namespaced_event(namespace, v1_event(namespace, "from-v1"))
    core.create_namespaced_event(namespace, core_event(namespace, "from-core", count=1))
    core.patch_namespaced_event("from-core", namespace, {"count": 2, "lastTimestamp": now_seconds()})
    core.delete_namespaced_event("from-core", namespace)
    t_v1.join(15)
    t_core.join(15)
    assert not t_v1.is_alive() and not t_core.is_alive()

    expected = [("ADDED", "from-v1"), ("ADDED", "from-core"), ("MODIFIED", "from-core"),
                ("DELETED", "from-core")]
    assert [(t, n) for t, n, _ in on_v1] == expected
    assert [(t, n) for t, n, _ in on_core] == expected
    # each watcher gets its own API's shape of the same change
    for _, _, obj in on_v1:
        assert obj["apiVersion"] == "events.k8s.io/v1" and "regarding" in obj and "involvedObject" not in obj
    for _, _, obj in on_core:
        assert obj["apiVersion"] == "v1" and "involvedObject" in obj and "regarding" not in obj
    assert on_v1[2][2]["deprecatedCount"] == 2 and on_core[2][2]["count"] == 2
    assert on_v1[0][2]["note"] == on_core[0][2]["message"] == "pulled the image"
    assert [o["metadata"]["resourceVersion"] for _, _, o in on_v1] == \
        [o["metadata"]["resourceVersion"] for _, _, o in on_core]


# -- field selectors ----------------------------------------------------------------------------

def test_field_selectors_on_both_apis(core, events, namespace):
    events.create_namespaced_event(namespace, v1_event(
        namespace, "warn", type_="Warning", reason="Failed", controller="example.com/a",
        regarding={"apiVersion": "v1", "kind": "Pod", "namespace": namespace, "name": "p1", "uid": "u1"}))
    events.create_namespaced_event(namespace, v1_event(
        namespace, "norm", controller="example.com/b",
        regarding={"apiVersion": "apps/v1", "kind": "Deployment", "namespace": namespace, "name": "d1"}))
    core.create_namespaced_event(namespace, core_event(
        namespace, "old", component="kubelet",
        involved={"apiVersion": "v1", "kind": "Pod", "namespace": namespace, "name": "p1", "uid": "u1"}))

    def v1_names(sel):
        return sorted(e["metadata"]["name"] for e in json.loads(events.list_namespaced_event(
            namespace, field_selector=sel, _preload_content=False).data)["items"])

    def core_names(sel):
        return sorted(e.metadata.name for e in core.list_namespaced_event(namespace, field_selector=sel).items)

    assert v1_names("regarding.name=p1") == ["old", "warn"]
    assert v1_names("regarding.kind=Deployment") == ["norm"]
    assert v1_names("regarding.uid=u1,type=Warning") == ["warn"]
    assert v1_names("reportingController=example.com/b") == ["norm"]
    assert v1_names("reason=Scheduled") == ["old"]
    assert v1_names("regarding.apiVersion=apps/v1") == ["norm"]
    assert v1_names("metadata.name=norm") == ["norm"]

    assert core_names("involvedObject.name=p1") == ["old", "warn"]
    assert core_names("involvedObject.kind=Deployment,type=Normal") == ["norm"]
    assert core_names("reportingComponent=example.com/a") == ["warn"]
    # source: the old recorder's component, else the reporting controller
    assert core_names("source=kubelet") == ["old"]
    assert core_names("source=example.com/b") == ["norm"]
    assert core_names("reason!=Scheduled") == ["norm", "warn"]

    # each API knows only its own field names
    e = api_error(events.list_namespaced_event, namespace, field_selector="involvedObject.name=p1")
    assert e.status == 400 and "field label not supported: involvedObject.name" in e.body
    e = api_error(core.list_namespaced_event, namespace, field_selector="regarding.name=p1")
    assert e.status == 400 and "field label not supported: regarding.name" in e.body


def test_watch_field_selector_on_events_v1(core, events, namespace):
    rv = core.list_namespaced_event(namespace).metadata.resource_version
    core.create_namespaced_event(namespace, core_event(namespace, "other", involved={
        "kind": "Pod", "namespace": namespace, "name": "p2"}))
    core.create_namespaced_event(namespace, core_event(namespace, "mine", involved={
        "kind": "Pod", "namespace": namespace, "name": "p1"}))
    w = watch.Watch()
    seen = []
    for ev in w.stream(events.list_namespaced_event, namespace, resource_version=rv,
                       field_selector="regarding.name=p1", timeout_seconds=2, deserialize=False):
        seen.append((ev["type"], ev["object"]["metadata"]["name"], ev["object"]["regarding"]["name"]))
    assert seen == [("ADDED", "mine", "p1")]


# -- validation ------------------------------------------------------------------------------

def test_events_v1_validation(kubectl, core, events, namespace):
    # (the typed client refuses an Event without eventTime itself; kubectl sends it)
    body = v1_event(namespace, "bad")
    body.pop("eventTime")
    p = kubectl.run("create", "-f", "-", input=json.dumps(body), check=False)
    assert p.returncode != 0 and "eventTime: Required value" in p.stderr, p.stderr

    body = v1_event(namespace, "bad", deprecatedCount=2, deprecatedSource={"component": "x"}, type_="Odd")
    msg = json.loads(api_error(events.create_namespaced_event, namespace, body).body)["message"]
    assert 'count: Invalid value: "": needs to be unset' in msg
    assert 'source: Invalid value: "": needs to be unset' in msg
    assert 'type: Invalid value: "": has invalid value: Odd' in msg

    body = v1_event(namespace, "bad", action="", reportingInstance="")
    msg = json.loads(api_error(events.create_namespaced_event, namespace, body).body)["message"]
    assert "action: Required value" in msg and "reportingInstance: Required value" in msg

    body = v1_event(namespace, "bad", series={"count": 1, "lastObservedTime": now_micro()})
    msg = json.loads(api_error(events.create_namespaced_event, namespace, body).body)["message"]
    assert 'series.count: Invalid value: "": should be at least 2' in msg

    # through events.k8s.io the note is immutable; through core the old recorder may change it
    events.create_namespaced_event(namespace, v1_event(namespace, "good"))
    e = api_error(events.patch_namespaced_event, "good", namespace, {"note": "rewritten"})
    assert e.status == 422
    assert 'message: Invalid value: "rewritten": field is immutable' in json.loads(e.body)["message"]
    core.patch_namespaced_event("good", namespace, {"message": "rewritten"})
    assert events.read_namespaced_event("good", namespace).note == "rewritten"

    # a new-style core event names its reporter (the core field name in the message)
    new_style = core_event(namespace, "nameless")
    new_style.update(eventTime=now_micro(), action="Do", reportingInstance="i")
    msg = json.loads(api_error(core.create_namespaced_event, namespace, new_style).body)["message"]
    assert "reportingComponent: Required value" in msg
    # and an old-style one belongs to its object's namespace
    wrong_ns = core_event(namespace, "elsewhere", involved={"kind": "Pod", "namespace": "other", "name": "p"})
    msg = json.loads(api_error(core.create_namespaced_event, namespace, wrong_ns).body)["message"]
    assert 'involvedObject.namespace: Invalid value: "other": does not match event.namespace' in msg


# -- kubectl ------------------------------------------------------------------------------------

def test_kubectl_events_and_describe_show_events_v1_writes(kubectl, core, events, namespace):
    core.create_namespaced_pod(namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name="web-0"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="registry.k8s.io/pause:3.10")])))
    pod = core.read_namespaced_pod("web-0", namespace)
    events.create_namespaced_event(namespace, v1_event(
        namespace, "web-0.pulled", note="pulled through events.k8s.io", type_="Warning", reason="BackOff",
        regarding={"apiVersion": "v1", "kind": "Pod", "namespace": namespace, "name": "web-0",
                   "uid": pod.metadata.uid}))

    out = kubectl("events", "-n", namespace)
    line = next((ln for ln in out.splitlines() if "pulled through events.k8s.io" in ln), None)
    assert line is not None, out
    assert "Warning" in line and "BackOff" in line and "Pod/web-0" in line

    out = kubectl("describe", "pod", "web-0", "-n", namespace)
    tail = out[out.index("Events:"):]
    assert "BackOff" in tail and "pulled through events.k8s.io" in tail, out
    assert "example.com/puller" in tail  # the From column: the reporting controller

    # the other way: kubectl reads a core write through events.k8s.io
    core.create_namespaced_event(namespace, core_event(namespace, "web-0.sched", message="via core"))
    got = json.loads(kubectl("get", "events.v1.events.k8s.io", "web-0.sched", "-n", namespace, "-o", "json"))
    assert got["apiVersion"] == "events.k8s.io/v1" and got["note"] == "via core"
    assert got["deprecatedSource"]["component"] == "old-recorder"
