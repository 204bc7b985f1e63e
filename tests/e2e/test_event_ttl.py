"""Events expire: a real `shim up --event-ttl 3s`, driven by the official Python client and
kubectl. As with kube-apiserver's --event-ttl, an Event is deleted the TTL after its last
write (watchers see DELETED, GET answers 404), an Event written again lives on, and nothing
but Events expires. Every test runs against both stores: the embedded one (its own expiry
sweeper) and a real etcd (leases).
"""
from __future__ import annotations

import subprocess
import threading
import time

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from conftest import VENV_BIN, Kubectl, Server
from etcd_harness import EtcdCluster, etcd_binary  # noqa: F401  (fixture)
from .test_events import core_event, v1_event

TTL = 3.0


@pytest.fixture(scope="module", params=["sqlite", "etcd"])
def ttl_server(request, tmp_path_factory) -> Server:
    args = ["--event-ttl", "3s", "--no-controllers"]
    cluster = None
    if request.param == "etcd":
        binary = request.getfixturevalue("etcd_binary")
        cluster = EtcdCluster(binary, tmp_path_factory.mktemp("etcd-event-ttl")).start()
        args += ["--store", "etcd", "--etcd-endpoints", ",".join(cluster.endpoints)]
    s = Server(tmp_path_factory.mktemp(f"shim-event-ttl-{request.param}"), extra_args=args)
    try:
        yield s.start()
    finally:
        s.stop()
        if cluster is not None:
            cluster.stop()


@pytest.fixture(scope="module")
def ttl_client(ttl_server):
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(ttl_server.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as c:
        yield c


@pytest.fixture
def core(ttl_client) -> client.CoreV1Api:
    return client.CoreV1Api(ttl_client)


@pytest.fixture
def ns(core, request) -> str:
    name = "ttl-" + request.node.originalname.lower().replace("_", "-")[5:40].strip("-")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def watch_until_deleted(list_fn, ns: str, rv: str, name: str, timeout: float = 20):
    """Watch from rv in a thread; returns (thread, seen) where seen fills with (type, name, obj)."""
    seen: list = []
    started = threading.Event()

    def run():
        w = watch.Watch()
        started.set()
        for ev in w.stream(list_fn, ns, resource_version=rv, timeout_seconds=int(timeout),
                           deserialize=False):
            obj = ev["object"]
            seen.append((ev["type"], obj["metadata"]["name"], obj, time.monotonic()))
            if ev["type"] == "DELETED" and obj["metadata"]["name"] == name:
                w.stop()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    started.wait(5)
    return t, seen


def wait_for_404(read, *args, timeout: float = 15) -> float:
    """Poll read(*args) until it answers 404; returns when (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            read(*args)
        except ApiException as e:
            if e.status == 404:
                return time.monotonic()
            raise
        time.sleep(0.1)
    raise AssertionError(f"{args} still there after {timeout}s")


def test_event_expires_watchers_see_deleted_and_get_404s(core, ns):
    rv = core.list_namespaced_event(ns).metadata.resource_version
    t, seen = watch_until_deleted(core.list_namespaced_event, ns, rv, "expiring")
    time.sleep(0.3)
    t0 = time.monotonic()
    created = core.create_namespaced_event(ns, core_event(ns, "expiring"))
    core.create_namespaced_config_map(ns, {"metadata": {"name": "stays"}, "data": {"a": "b"}})
    assert core.read_namespaced_event("expiring", ns).metadata.uid == created.metadata.uid
    t.join(20)
    assert not t.is_alive(), f"no DELETED within 20s: {[(s[0], s[1]) for s in seen]}"
    assert [(typ, name) for typ, name, _, _ in seen] == [("ADDED", "expiring"), ("DELETED", "expiring")]
    deleted, when = seen[-1][2], seen[-1][3]
    assert TTL - 0.5 <= when - t0 <= TTL + 5
    # the last state of the object, at the delete's resourceVersion
    assert deleted["metadata"]["uid"] == created.metadata.uid
    assert deleted["message"] == "scheduled it"
    assert int(deleted["metadata"]["resourceVersion"]) > int(created.metadata.resource_version)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_event("expiring", ns)
    assert e.value.status == 404
    assert core.list_namespaced_event(ns).items == []
    # nothing but Events expires
    assert core.read_namespaced_config_map("stays", ns).data == {"a": "b"}


def test_event_written_again_lives_on(core, ns):
    t0 = time.monotonic()
    core.create_namespaced_event(ns, core_event(ns, "recurring", count=1))
    count = 1
    while time.monotonic() - t0 < 2 * TTL:          # well past the first write's TTL
        time.sleep(1.0)
        count += 1
        core.patch_namespaced_event("recurring", ns, {"count": count})
    last_write = time.monotonic()
    assert core.read_namespaced_event("recurring", ns).count == count
    gone = wait_for_404(core.read_namespaced_event, "recurring", ns)
    assert TTL - 0.5 <= gone - last_write <= TTL + 5


def test_events_v1_write_expires_on_both_apis(core, ttl_client, ns):
    events = client.EventsV1Api(ttl_client)
    rv = events.list_namespaced_event(ns).metadata.resource_version
    t, seen = watch_until_deleted(events.list_namespaced_event, ns, rv, "pulled")
    time.sleep(0.3)
    events.create_namespaced_event(ns, v1_event(ns, "pulled"))
    assert core.read_namespaced_event("pulled", ns).message == "pulled the image"
    t.join(20)
    assert [(typ, name) for typ, name, _, _ in seen] == [("ADDED", "pulled"), ("DELETED", "pulled")]
    assert seen[-1][2]["apiVersion"] == "events.k8s.io/v1" and seen[-1][2]["note"] == "pulled the image"
    wait_for_404(core.read_namespaced_event, "pulled", ns, timeout=1)


def test_kubectl_get_events_shows_it_then_not(core, ttl_server, ns, tmp_path):
    cache = tmp_path / "kube" / "cache"
    cache.mkdir(parents=True)
    kubectl = Kubectl(ttl_server.kubeconfig, cache)
    core.create_namespaced_event(ns, core_event(ns, "seen-by-kubectl", message="hello from the test"))
    out = kubectl("get", "events", "-n", ns)
    assert "hello from the test" in out and "Scheduled" in out
    deadline = time.monotonic() + TTL + 10
    while time.monotonic() < deadline:
        p = kubectl.run("get", "events", "-n", ns)
        if "hello from the test" not in p.stdout:
            assert "No resources found" in p.stderr
            break
        time.sleep(0.5)
    else:
        raise AssertionError("kubectl still lists the event")
    p = kubectl.run("get", "event", "seen-by-kubectl", "-n", ns, check=False)
    assert p.returncode != 0 and "NotFound" in p.stderr


def test_event_ttl_flag_refuses_a_bare_number(tmp_path):
    p = subprocess.run([str(VENV_BIN / "shim"), "up", "--data-dir", str(tmp_path / "d"),
                        "--event-ttl", "3600"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    assert "--event-ttl" in p.stderr and "invalid duration" in p.stderr
