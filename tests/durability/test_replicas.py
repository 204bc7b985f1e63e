"""Several `shim up` replicas on one etcd behave as one API server, and elect one leader
to run the controllers through a coordination.k8s.io Lease."""
from __future__ import annotations

import re
import threading
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from etcd_harness import etcd, etcd_binary, etcd_factory  # noqa: F401  (fixtures)

from .common import core, etcd_args, make_namespace

LEASE = "shim-controller-manager"


@pytest.fixture
def replicas(etcd, fresh_server, tmp_path):
    pki = tmp_path / "pki"
    a = fresh_server(extra_args=etcd_args([etcd.client_url], pki)).start()
    b = fresh_server(extra_args=etcd_args([etcd.client_url], pki)).start()
    return a, b


def test_one_api_server_across_replicas(replicas):
    a, b = replicas
    va = core(a.kubeconfig)
    vb = core(a.kubeconfig, server_url=b.url)      # A's kubeconfig works against B (shared PKI)
    make_namespace(va, "shared")
    start = vb.list_namespaced_config_map("shared").metadata.resource_version
    seen: list = []
    w = watch.Watch()

    def run():
        for ev in w.stream(vb.list_namespaced_config_map, "shared", resource_version=start,
                           timeout_seconds=30):
            if ev["object"].metadata.name == "x":
                seen.append((ev["type"], ev["object"].metadata.resource_version))
                if len(seen) == 2:
                    w.stop()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    created = va.create_namespaced_config_map("shared", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="x"), data={"v": "1"}))
    rv1 = created.metadata.resource_version
    # optimistic concurrency across replicas: B updates, A's stale copy is refused
    on_b = vb.read_namespaced_config_map("x", "shared")
    assert on_b.metadata.resource_version == rv1
    on_b.data = {"v": "2"}
    updated = vb.replace_namespaced_config_map("x", "shared", on_b)
    assert int(updated.metadata.resource_version) > int(rv1)
    created.data = {"v": "stale"}
    with pytest.raises(ApiException) as info:
        va.replace_namespaced_config_map("x", "shared", created)
    assert info.value.status == 409
    t.join(20)
    assert seen == [("ADDED", rv1), ("MODIFIED", updated.metadata.resource_version)]
    # lists agree on resourceVersions, whichever replica serves them
    la = va.list_namespaced_config_map("shared", resource_version=updated.metadata.resource_version,
                                       resource_version_match="Exact")
    lb = vb.list_namespaced_config_map("shared", resource_version=updated.metadata.resource_version,
                                       resource_version_match="Exact")
    assert [(i.metadata.name, i.metadata.resource_version) for i in la.items] == \
        [(i.metadata.name, i.metadata.resource_version) for i in lb.items]


def _holder(v1) -> tuple[str, int]:
    lease = client.CoordinationV1Api(v1.api_client).read_namespaced_lease(LEASE, "kube-system")
    return lease.spec.holder_identity or "", lease.spec.lease_transitions or 0


def _identity(server) -> str:
    m = re.search(r"leaderelection: (\S+): became leader", server.log_path.read_text())
    return m.group(1) if m else ""


def test_leader_election_and_failover(replicas):
    a, b = replicas
    va = core(a.kubeconfig)
    vb = core(a.kubeconfig, server_url=b.url)
    deadline = time.time() + 20
    while not (_identity(a) or _identity(b)):
        assert time.time() < deadline, "no replica became leader"
        time.sleep(0.2)
    time.sleep(3)
    assert bool(_identity(a)) != bool(_identity(b)), "both replicas lead"
    leader, follower, vf = (a, b, vb) if _identity(a) else (b, a, va)
    holder, transitions = _holder(vf)
    assert holder == _identity(leader)
    lease = client.CoordinationV1Api(vf.api_client).read_namespaced_lease(LEASE, "kube-system")
    assert lease.spec.lease_duration_seconds == 15
    assert lease.spec.acquire_time and lease.spec.renew_time

    leader.kill()                                   # kill -9: no release of the lease
    killed = time.monotonic()
    while True:
        holder, new_transitions = _holder(vf)
        if holder and holder != _identity(leader):
            break
        assert time.monotonic() - killed < 20, "no takeover within 20 s"
        time.sleep(0.1)
    took = time.monotonic() - killed
    assert holder == _identity(follower)
    assert new_transitions == transitions + 1
    assert took <= 15.5, f"takeover took {took:.1f}s"
    # the controllers run in the new leader: a deleted namespace is emptied and removed
    make_namespace(vf, "doomed")
    vf.create_namespaced_config_map("doomed", {"metadata": {"name": "c"}})
    vf.delete_namespace("doomed")
    deadline = time.time() + 30
    while True:
        try:
            vf.read_namespace("doomed")
        except ApiException as e:
            assert e.status == 404
            break
        assert time.time() < deadline, "namespace controller did not run in the new leader"
        time.sleep(0.3)


def test_graceful_stop_hands_over_at_once(replicas):
    a, b = replicas
    deadline = time.time() + 20
    while not (_identity(a) or _identity(b)):
        assert time.time() < deadline
        time.sleep(0.2)
    leader, follower = (a, b) if _identity(a) else (b, a)
    vf = core(follower.kubeconfig)
    leader.stop()                                   # SIGTERM: releases the lease
    t = time.monotonic()
    while _holder(vf)[0] != _identity(follower) or not _identity(follower):
        assert time.monotonic() - t < 6, "no prompt handover after a clean stop"
        time.sleep(0.1)
