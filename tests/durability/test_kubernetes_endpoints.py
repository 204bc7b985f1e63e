"""Two `shim up` replicas on one etcd share the kubernetes Service's endpoints: each
advertises its own address, a clean stop takes its address out at once, and a replica
killed with -9 drops out once its 15-second address record runs out."""
from __future__ import annotations

import signal
import time

import pytest
from kubernetes import client

from etcd_harness import etcd, etcd_binary, etcd_factory  # noqa: F401  (fixtures)

from .common import core, etcd_args

pytestmark = pytest.mark.timeout(180)


def _addresses(v1) -> set[str]:
    ep = v1.read_namespaced_endpoints("kubernetes", "default")
    return {a.ip for s in ep.subsets or () for a in s.addresses or ()}


def _wait(fn, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if fn():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_replicas_share_the_kubernetes_endpoints(etcd, fresh_server, tmp_path, how):
    pki = tmp_path / "pki"
    a = fresh_server(extra_args=etcd_args([etcd.client_url], pki) + ["--advertise-address", "10.20.0.1"]).start()
    b = fresh_server(extra_args=etcd_args([etcd.client_url], pki) + ["--advertise-address", "10.20.0.2"]).start()
    va = core(a.kubeconfig)
    # B's first round may have run before A's record existed: within one interval both show
    _wait(lambda: _addresses(va) == {"10.20.0.1", "10.20.0.2"}, 15, "both addresses")
    disc = client.DiscoveryV1Api(va.api_client)
    slice_ips = lambda: {ep.addresses[0] for ep in  # noqa: E731
                         disc.read_namespaced_endpoint_slice("kubernetes", "default").endpoints or ()}
    _wait(lambda: slice_ips() == {"10.20.0.1", "10.20.0.2"}, 5, "both in the EndpointSlice")
    if how == "stop":
        b.stop(signal.SIGTERM)
        _wait(lambda: _addresses(va) == {"10.20.0.1"}, 3, "B's address gone at once")
    else:
        b.kill()
        time.sleep(5)
        assert "10.20.0.2" in _addresses(va), "a record outlives its replica for a while"
        _wait(lambda: _addresses(va) == {"10.20.0.1"}, 30, "B's address gone after its record expired")
    _wait(lambda: slice_ips() == {"10.20.0.1"}, 5, "the EndpointSlice follows")
