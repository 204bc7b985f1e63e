"""Durability under crashes: kill -9 of API servers and etcd members under a write load.

What "durable" means here, from a client's point of view:
- every write the server acknowledged is there after a restart (each ConfigMap holds its
  last acknowledged value, or the one write that was in flight when the process died);
- nothing half-written is visible (every object decodes whole, with a value once written);
- a client resuming its watch from the last resourceVersion it saw gets every later event
  exactly once, in order, across the crash.
"""
from __future__ import annotations

import signal
import ssl
import time
import urllib.error
import urllib.request

import pytest

from etcd_harness import etcd, etcd_binary, etcd_factory  # noqa: F401  (fixtures)

from .common import EventRecorder, WriteLoad, check_acknowledged, core, etcd_args, make_namespace

NS = "durable"


@pytest.mark.parametrize("backend", ["sqlite", "etcd"])
def test_kill9_api_server_during_writes(backend, fresh_server, request):
    extra = []
    if backend == "etcd":
        member = request.getfixturevalue("etcd")
        extra = etcd_args([member.client_url])
    srv = fresh_server(extra_args=extra).start()
    v1 = core(srv.kubeconfig)
    make_namespace(v1, NS)
    start_rv = v1.list_namespaced_config_map(NS).metadata.resource_version
    before = EventRecorder(v1, NS, start_rv)
    load = WriteLoad([v1], NS).start()
    load.wait_for(200)
    srv.kill()                                            # SIGKILL mid-stream
    load.stop()
    assert before.ended.wait(30)
    assert load.acks and before.events

    srv.start()                                           # same data dir, same port
    v1 = core(srv.kubeconfig)
    stored = check_acknowledged(v1, NS, load)

    # later writes, then resume the watch from the last resourceVersion seen before the crash
    later = [v1.patch_namespaced_config_map(name, NS, {"data": {"v": str(value + 1)}})
             for name, value in sorted(stored.items())[:5]]
    after = EventRecorder(v1, NS, str(before.last_rv))
    after.wait_for_rv(int(later[-1].metadata.resource_version))
    after.stop()
    events = before.events + after.events
    revs = [e[3] for e in events]
    assert revs == sorted(set(revs)), "events duplicated or out of order across the crash"
    seen = set(revs)
    missing = [a for a in load.acks if a.rv not in seen]
    assert not missing, f"acknowledged writes never seen by the watch: {missing[:5]}"
    assert {int(o.metadata.resource_version) for o in later} <= seen
    for kind, name, value, rv in events:                  # each event's object is whole
        assert kind in ("ADDED", "MODIFIED") and name.startswith("cm-") and value >= 1


def test_etcd_cluster_member_and_replica_loss(etcd_factory, fresh_server, tmp_path):
    """Three etcd members, two API server replicas, a write load spread over both;
    kill -9 one etcd member and one replica: the load goes on against the other replica,
    and no acknowledged write is missing afterwards."""
    cluster = etcd_factory(3)
    pki = tmp_path / "pki"
    a = fresh_server(extra_args=etcd_args(cluster.endpoints, pki)).start()
    b = fresh_server(extra_args=etcd_args(cluster.endpoints, pki)).start()
    va, vb = core(a.kubeconfig), core(b.kubeconfig)
    make_namespace(va, NS)
    load = WriteLoad([va, vb], NS, objects=30, request_timeout=8).start()
    load.wait_for(150)
    cluster.members[0].kill()
    a.kill()
    load.dead.add(id(va))
    killed_at = len(load.acks)
    load.wait_for(killed_at + 150, timeout=90)            # the load went on through b
    load.stop()
    check_acknowledged(vb, NS, load)
    # and b still serves reads and writes with the two members left
    vb.patch_namespaced_config_map("cm-000", NS, {"data": {"extra": "1"}})


def _get(url: str, ctx: ssl.SSLContext, timeout: float = 30) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _client_ctx(server) -> ssl.SSLContext:
    pki = server.data_dir / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return ctx


@pytest.mark.parametrize("outage", ["paused", "killed"])
def test_etcd_unreachable_gives_503_and_recovers(outage, etcd, fresh_server):
    srv = fresh_server(extra_args=etcd_args([etcd.client_url])).start()
    ctx = _client_ctx(srv)
    assert _get(srv.url + "/readyz", ctx)[0] == 200
    if outage == "paused":
        etcd.pause()            # the worst case: connections stay open, nothing answers
    else:
        etcd.kill()
    try:
        for path in ("/api/v1/namespaces/default", "/api/v1/namespaces/default/configmaps"):
            t = time.monotonic()
            code, body = _get(srv.url + path, ctx)
            elapsed = time.monotonic() - t
            assert code in (503, 504), (code, body[:200])
            assert b'"kind":"Status"' in body.replace(b" ", b"")
            assert elapsed < 12, f"{path} took {elapsed:.1f}s"
        t = time.monotonic()
        code, _ = _get(srv.url + "/readyz", ctx)
        assert code != 200 and time.monotonic() - t < 5
        assert _get(srv.url + "/livez", ctx)[0] == 200     # alive, just not ready
    finally:
        if outage == "paused":
            etcd.resume()
        else:
            etcd.start()
    deadline = time.monotonic() + 20
    while _get(srv.url + "/readyz", ctx)[0] != 200:
        assert time.monotonic() < deadline, "not ready again 20 s after etcd came back"
        time.sleep(0.2)
    v1 = core(srv.kubeconfig)
    v1.create_namespaced_config_map("default", {"metadata": {"name": "after-outage"}})
    assert v1.read_namespaced_config_map("after-outage", "default").metadata.name == "after-outage"
    assert srv.proc.poll() is None
    srv.stop(signal.SIGTERM)
