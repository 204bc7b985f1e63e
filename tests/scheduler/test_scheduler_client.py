"""shim.client: requests, watches, informers, the work queue and the event recorder, against a
real `shim up` (the informer's relist and the queue's timing also without one)."""
from __future__ import annotations

import asyncio
import os
import time

import pytest

from shim.client import ApiError, Client, Informer, WorkQueue, load_kubeconfig
from shim.client.api import CONFIG_MAPS, EVENTS, NAMESPACES, NODES, PODS, WatchEvent
from shim.client.events import EventRecorder
from shim.client.workqueue import ItemExponentialBackoff, ShutDown, TokenBucket


def cm(name: str, data: dict | None = None, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}},
            "data": data or {"k": "v"}}


@pytest.fixture
async def kc(server):
    c = Client.from_kubeconfig(server.kubeconfig)
    yield c
    await c.close()


@pytest.fixture
async def cns(kc):
    name = "client-" + os.urandom(3).hex()
    await kc.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    await kc.delete(NAMESPACES, name)


def test_kubeconfig(server):
    cfg = load_kubeconfig(server.kubeconfig)
    assert cfg.server == server.url and cfg.ssl_context is not None


async def test_crud_and_patches(kc, cns):
    created = await kc.create(CONFIG_MAPS, cm("a"), cns)
    assert created["metadata"]["namespace"] == cns and created["metadata"]["uid"]
    got = await kc.get(CONFIG_MAPS, "a", cns)
    got["data"]["k"] = "changed"
    updated = await kc.update(CONFIG_MAPS, got)
    assert updated["data"] == {"k": "changed"}
    stale = dict(got, metadata=dict(got["metadata"]))
    with pytest.raises(ApiError) as e:
        await kc.update(CONFIG_MAPS, stale)  # the resourceVersion moved on
    assert e.value.code == 409 and e.value.reason == "Conflict"
    merged = await kc.patch(CONFIG_MAPS, "a", {"data": {"x": "1"}}, cns)
    assert merged["data"] == {"k": "changed", "x": "1"}
    strategic = await kc.patch(CONFIG_MAPS, "a", {"metadata": {"labels": {"l": "1"}}}, cns, type="strategic")
    assert strategic["metadata"]["labels"] == {"l": "1"}
    jsonp = await kc.patch(CONFIG_MAPS, "a", [{"op": "remove", "path": "/data/x"}], cns, type="json")
    assert jsonp["data"] == {"k": "changed"}
    await kc.create(CONFIG_MAPS, cm("b", labels={"sel": "yes"}), cns)
    lst = await kc.list(CONFIG_MAPS, cns, label_selector="sel=yes")
    assert [o["metadata"]["name"] for o in lst["items"]] == ["b"]
    items, rv = await kc.list_all(CONFIG_MAPS, cns, page_size=1)
    assert {o["metadata"]["name"] for o in items} >= {"a", "b"} and int(rv) > 0
    await kc.delete(CONFIG_MAPS, "a", cns)
    with pytest.raises(ApiError) as e:
        await kc.get(CONFIG_MAPS, "a", cns)
    assert e.value.code == 404 and e.value.message == 'configmaps "a" not found'


async def test_binding_and_status_subresources(kc, cns):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"schedulerName": "nobody", "containers": [{"name": "c", "image": "i"}]}}
    p = await kc.create(PODS, pod, cns)
    patched = await kc.patch(PODS, "p", {"status": {"conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "m"}]}},
        cns, type="strategic", subresource="status")
    assert patched["status"]["conditions"][0]["reason"] == "Unschedulable"
    await kc.bind(cns, "p", "some-node", p["metadata"]["uid"])
    bound = await kc.get(PODS, "p", cns)
    assert bound["spec"]["nodeName"] == "some-node"
    assert [c["status"] for c in bound["status"]["conditions"] if c["type"] == "PodScheduled"] == ["True"]
    with pytest.raises(ApiError) as e:
        await kc.bind(cns, "p", "other-node")
    assert e.value.code == 409
    await kc.delete(PODS, "p", cns, grace_period_seconds=0)


async def test_watch_from_resource_version(kc, cns):
    first = await kc.create(CONFIG_MAPS, cm("w1", labels={"t": "w"}), cns)
    rv = first["metadata"]["resourceVersion"]
    await kc.create(CONFIG_MAPS, cm("w2", labels={"t": "w"}), cns)
    await kc.delete(CONFIG_MAPS, "w1", cns)
    seen = []
    async for ev in kc.watch(CONFIG_MAPS, cns, resource_version=rv, label_selector="t=w", timeout_seconds=2):
        seen.append((ev.type, ev.object["metadata"]["name"]))
        if len(seen) == 2:
            break
    assert seen == [("ADDED", "w2"), ("DELETED", "w1")]


async def test_informer_follows_changes(kc, cns):
    await kc.create(CONFIG_MAPS, cm("before", labels={"t": "i"}), cns)
    inf = Informer(kc, CONFIG_MAPS, cns, label_selector="t=i")
    log = []
    inf.add_handlers(lambda o: log.append(("add", o["metadata"]["name"])),
                     lambda old, new: log.append(("update", new["metadata"]["name"], new["data"]["k"])),
                     lambda o: log.append(("delete", o["metadata"]["name"])))
    inf.start()
    try:
        await inf.wait_synced(10)
        assert inf.has_synced and inf.get(f"{cns}/before") is not None
        await kc.create(CONFIG_MAPS, cm("after", labels={"t": "i"}), cns)
        await kc.patch(CONFIG_MAPS, "after", {"data": {"k": "2"}}, cns)
        await kc.delete(CONFIG_MAPS, "before", cns)
        deadline = time.time() + 10
        while len(log) < 4 and time.time() < deadline:
            await asyncio.sleep(0.05)
        assert log == [("add", "before"), ("add", "after"), ("update", "after", "2"), ("delete", "before")]
        assert set(inf.store) == {f"{cns}/after"}
    finally:
        await inf.stop()


def test_informer_relist_reports_the_difference():
    inf = Informer(None, CONFIG_MAPS)
    log = []
    inf.add_handlers(lambda o: log.append(("add", o["metadata"]["name"])),
                     lambda old, new: log.append(("update", new["metadata"]["name"])),
                     lambda o: log.append(("delete", o["metadata"]["name"])))

    def obj(name, rv):
        return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}
    inf.replace([obj("a", "1"), obj("b", "1")], "1")
    log.clear()
    # what a relist after a 410 finds: a changed, b gone, c new
    inf.replace([obj("a", "5"), obj("c", "4")], "5")
    assert sorted(log) == [("add", "c"), ("delete", "b"), ("update", "a")]
    assert inf.resource_version == "5"


async def test_informer_relists_after_gone():
    """A watch that fails with 410 makes the informer list again and carry on."""
    calls = {"list": 0, "watch": 0}

    class FakeClient:
        async def list_all(self, res, ns, **kw):
            calls["list"] += 1
            return [{"metadata": {"name": f"x{calls['list']}", "resourceVersion": str(calls["list"])}}], \
                str(calls["list"])

        async def watch(self, res, ns, **kw):
            calls["watch"] += 1
            if calls["watch"] == 1:
                raise ApiError(410, {"reason": "Expired", "message": "too old resource version"})
            yield WatchEvent("ADDED", {"metadata": {"name": "late", "resourceVersion": "9"}})
            await asyncio.sleep(3600)

    inf = Informer(FakeClient(), NODES)
    inf.start()
    try:
        deadline = time.time() + 5
        while "late" not in inf.store and time.time() < deadline:
            await asyncio.sleep(0.01)
        assert calls["list"] == 2 and set(inf.store) == {"x2", "late"} and inf.resource_version == "9"
    finally:
        await inf.stop()


async def test_work_queue_semantics():
    q = WorkQueue()
    q.add("a")
    q.add("a")
    q.add("b")
    assert len(q) == 2
    item = await q.get()
    assert item == "a"
    q.add("a")           # re-added while being processed: queued again only after done()
    assert len(q) == 1
    assert await q.get() == "b"
    q.done("b")
    q.done("a")
    assert await asyncio.wait_for(q.get(), 1) == "a"
    q.done("a")
    t = time.monotonic()
    q.add_after("later", 0.2)
    assert await asyncio.wait_for(q.get(), 2) == "later"
    assert time.monotonic() - t >= 0.19
    q.done("later")
    q.shutdown()
    with pytest.raises(ShutDown):
        await q.get()


def test_rate_limiters():
    b = ItemExponentialBackoff(0.005, 1.0)
    assert [b.when("x") for _ in range(4)] == [0.005, 0.01, 0.02, 0.04]
    assert b.num_requeues("x") == 4
    b.forget("x")
    assert b.when("x") == 0.005
    assert max(b.when("y") for _ in range(20)) == 1.0
    bucket = TokenBucket(qps=10, burst=2)
    assert bucket.when() == 0 and bucket.when() == 0
    assert bucket.when() > 0


async def test_rate_limited_requeue_backs_off():
    q = WorkQueue()
    q.add_rate_limited("x")
    assert await asyncio.wait_for(q.get(), 1) == "x"
    assert q.num_requeues("x") == 1
    q.done("x")
    q.forget("x")
    assert q.num_requeues("x") == 0


async def test_event_recorder_creates_and_aggregates(kc, cns):
    rec = EventRecorder(kc, "test-component", host="h1")
    rec.start()
    try:
        obj = await kc.create(CONFIG_MAPS, cm("ev"), cns)
        rec.event(obj, "Warning", "Broken", "it broke")
        rec.event(obj, "Warning", "Broken", "it broke")
        await rec.flush()
        lst = await kc.list(EVENTS, cns, field_selector="involvedObject.name=ev")
        assert len(lst["items"]) == 1
        ev = lst["items"][0]
        assert (ev["reason"], ev["message"], ev["type"], ev["count"]) == ("Broken", "it broke", "Warning", 2)
        assert ev["source"] == {"component": "test-component", "host": "h1"}
        assert ev["involvedObject"]["uid"] == obj["metadata"]["uid"]
    finally:
        await rec.stop()
