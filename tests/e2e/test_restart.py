"""Restarts: state survives SIGTERM, a data dir has one owner, shutdown ends watches promptly."""
from __future__ import annotations

import signal
import subprocess
import threading
import time

from kubernetes import client, config, watch

from conftest import VENV_BIN, free_port

from .rawhttp import Raw

IMAGE = "registry.k8s.io/pause:3.10"


def _client(server) -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(server.kubeconfig), client_configuration=cfg)
    return client.ApiClient(cfg)


def _state(api: client.ApiClient, ns: str) -> dict:
    """name -> (uid, resourceVersion, content) of the test's objects."""
    v1, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    out = {}
    for kind, lst in (("cm", v1.list_namespaced_config_map(ns)), ("secret", v1.list_namespaced_secret(ns)),
                      ("svc", v1.list_namespaced_service(ns)), ("pod", v1.list_namespaced_pod(ns)),
                      ("sts", apps.list_namespaced_stateful_set(ns))):
        for o in lst.items:
            if o.metadata.name == "kube-root-ca.crt":
                continue
            d = api.sanitize_for_serialization(o)
            out[(kind, o.metadata.name)] = (o.metadata.uid, int(o.metadata.resource_version),
                                           {k: d.get(k) for k in ("data", "spec", "status")})
    return out


def test_objects_survive_sigterm_restart(fresh_server):
    s = fresh_server().start()
    with _client(s) as api:
        v1, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="keep", labels={"a": "b"})))
        for i in range(5):
            v1.create_namespaced_config_map("keep", client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=f"cm{i}", labels={"i": str(i)}), data={"i": str(i)}))
        v1.patch_namespaced_config_map("cm0", "keep", {"data": {"i": "zero"}})
        v1.delete_namespaced_config_map("cm4", "keep")
        v1.create_namespaced_secret("keep", client.V1Secret(metadata=client.V1ObjectMeta(name="s"),
                                                            string_data={"pw": "hunter2"}))
        svc = v1.create_namespaced_service("keep", {"metadata": {"name": "web"},
                                                    "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}})
        v1.create_namespaced_pod("keep", {"metadata": {"name": "p"}, "spec": {
            "nodeName": "n1", "containers": [{"name": "c", "image": IMAGE}]}})
        v1.create_namespaced_config_map("keep", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="held", finalizers=["example.com/x"])))
        v1.delete_namespaced_config_map("held", "keep")
        # a StatefulSet: no controller here writes it, so its state is only what the test wrote
        apps.create_namespaced_stateful_set("keep", {
            "metadata": {"name": "d"}, "spec": {
                "replicas": 2, "selector": {"matchLabels": {"app": "d"}},
                "template": {"metadata": {"labels": {"app": "d"}},
                             "spec": {"containers": [{"name": "c", "image": IMAGE}]}}}})
        apps.patch_namespaced_stateful_set_status("d", "keep", {"status": {"replicas": 2}})
        before = _state(api, "keep")
        ns_before = v1.read_namespace("keep")
        list_rv = int(v1.list_namespaced_config_map("keep").metadata.resource_version)
    assert len(before) == 9
    started = time.monotonic()
    assert s.stop() == 0
    assert time.monotonic() - started < 10

    s2 = fresh_server(data_dir=s.data_dir).start()
    with _client(s2) as api:
        v1, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        after = _state(api, "keep")
        assert after == before
        ns_after = v1.read_namespace("keep")
        assert (ns_after.metadata.uid, ns_after.metadata.labels, ns_after.metadata.resource_version) == \
            (ns_before.metadata.uid, ns_before.metadata.labels, ns_before.metadata.resource_version)
        assert v1.read_namespaced_secret("s", "keep").data == {"pw": "aHVudGVyMg=="}
        assert v1.read_namespaced_service("web", "keep").spec.cluster_ip == svc.spec.cluster_ip
        held = v1.read_namespaced_config_map("held", "keep")
        assert held.metadata.deletion_timestamp and held.metadata.finalizers == ["example.com/x"]
        assert apps.read_namespaced_stateful_set("d", "keep").status.replicas == 2

        # revisions keep increasing from where they were
        newest = max(rv for _, rv, _ in before.values())
        assert int(v1.list_namespaced_config_map("keep").metadata.resource_version) >= list_rv
        created = v1.create_namespaced_config_map("keep", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="new")))
        assert int(created.metadata.resource_version) > max(newest, list_rv)
        updated = v1.patch_namespaced_config_map("cm1", "keep", {"data": {"i": "one"}})
        assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
        # an old resourceVersion still means what it meant: a stale update conflicts
        stale = client.V1ConfigMap(metadata=client.V1ObjectMeta(
            name="cm1", resource_version=str(before[("cm", "cm1")][1])), data={"i": "stale"})
        try:
            v1.replace_namespaced_config_map("cm1", "keep", stale)
            raise AssertionError("a stale update after restart was accepted")
        except client.ApiException as e:
            assert e.status == 409
        # and the finalizer still works across the restart
        v1.patch_namespaced_config_map("held", "keep", {"metadata": {"finalizers": None}})
        assert "held" not in [c.metadata.name for c in v1.list_namespaced_config_map("keep").items]
        # a watch resumed from a pre-restart resourceVersion sees exactly what happened after it
        events = [(ev["type"], ev["object"].metadata.name) for ev in watch.Watch().stream(
            v1.list_namespaced_config_map, "keep", resource_version=str(list_rv), timeout_seconds=1)
            if ev["object"].metadata.name != "kube-root-ca.crt"]
        # (dropping the last finalizer deletes at once, as upstream's shouldDeleteDuringUpdate)
        assert events == [("ADDED", "new"), ("MODIFIED", "cm1"), ("DELETED", "held")]
    assert s2.stop() == 0


def test_second_instance_on_same_data_dir_fails(fresh_server):
    s = fresh_server().start()
    p = subprocess.run([str(VENV_BIN / "shim"), "up", "--data-dir", str(s.data_dir),
                        "--listen", f"127.0.0.1:{free_port()}"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "serving" not in p.stdout
    assert f"data dir {s.data_dir} is in use by another shim process" in p.stderr, p.stderr
    # the first one is unharmed and still owns the data
    r = Raw(s).get("/readyz")
    assert (r.status, r.body) == (200, b"ok")
    with _client(s) as api:
        assert client.CoreV1Api(api).read_namespace("default").status.phase == "Active"
    assert s.stop() == 0
    # once it is gone the data dir is free again
    s2 = fresh_server(data_dir=s.data_dir).start()
    assert Raw(s2).get("/readyz").status == 200


def test_sigterm_ends_open_watches_and_exits_zero_promptly(fresh_server):
    s = fresh_server().start()
    ended = {}
    seen: list = []
    ready = threading.Event()

    def run(name, **kw):
        with _client(s) as api:
            v1 = client.CoreV1Api(api)
            try:
                for ev in watch.Watch().stream(v1.list_namespaced_config_map, "default",
                                               timeout_seconds=300, **kw):
                    seen.append((name, ev["type"], ev["object"].metadata.name))
                    if ev["object"].metadata.name == "ping":
                        ready.set()
                ended[name] = ("ended", time.monotonic())
            except Exception as e:  # noqa: BLE001 - recorded and asserted below
                ended[name] = (f"{type(e).__name__}: {e}", time.monotonic())

    with _client(s) as api:
        rv = client.CoreV1Api(api).list_namespaced_config_map("default").metadata.resource_version
    threads = [threading.Thread(target=run, args=("plain",), daemon=True),
               threading.Thread(target=run, args=("bookmarks",), kwargs={"resource_version": rv,
                                                                         "allow_watch_bookmarks": True},
                                daemon=True)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    with _client(s) as api:
        client.CoreV1Api(api).create_namespaced_config_map("default", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="ping")))
    deadline = time.time() + 10
    while time.time() < deadline and len({n for n, t, o in seen if o == "ping"}) < 2:
        time.sleep(0.05)
    assert {n for n, t, o in seen if o == "ping"} == {"plain", "bookmarks"}, seen

    sent = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    rc = s.proc.wait(timeout=15)
    exited = time.monotonic()
    for t in threads:
        t.join(10)
        assert not t.is_alive(), "a watch stream did not end on SIGTERM"
    assert rc == 0
    assert exited - sent < 5, f"took {exited - sent:.1f}s to exit"
    assert ended == {"plain": ("ended", ended["plain"][1]), "bookmarks": ("ended", ended["bookmarks"][1])}, ended
    assert all(when - sent < 5 for _, when in ended.values())
    assert s.stop() == 0
