"""The ServiceCIDR controller and the periodic IPAddress repair, end to end.

A real `shim up` with its controller manager, the official Python client and kubectl:
the finalizer and Ready condition the controller manager's service-cidr-controller writes,
a range kept (Ready=False, Terminating) while a Service address depends on it alone and
never allocated from, a range covered by another going without waiting, and the API
server's ipallocator repair loop (a short --ip-repair-interval) putting back a deleted
IPAddress and cleaning up leaked and wrongly referenced ones, with upstream's Events.
"""
from __future__ import annotations

import ipaddress
import json
import os
import random
import time

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.timeout(240)

FINALIZER = "networking.k8s.io/service-cidr-finalizer"
READY_MESSAGE = "Kubernetes Service CIDR is ready"
TERMINATING_MESSAGE = ("There are still IPAddresses referencing the ServiceCIDR, please remove them or "
                       "create a new ServiceCIDR")
MANAGED = {"ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io", "ipaddress.kubernetes.io/ip-family": "IPv4"}
DEFAULT_RANGE = ipaddress.ip_network("10.96.0.0/12")
# how long the controller keeps the finalizer after a deletion at the least (upstream: 10s)
DELETION_GRACE = 10


@pytest.fixture
def core(api_client) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def net(api_client) -> client.NetworkingV1Api:
    return client.NetworkingV1Api(api_client)


def service(name: str, cluster_ip: str | None = None) -> dict:
    spec = {"type": "ClusterIP", "ports": [{"name": "http", "port": 80}]}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def service_cidr(name: str, *cidrs: str) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR", "metadata": {"name": name},
            "spec": {"cidrs": list(cidrs)}}


def ip_address(name: str, ref: dict, labels: dict | None = None) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IPAddress",
            "metadata": {"name": name, "labels": labels or {}}, "spec": {"parentRef": ref}}


def unique_net(prefix: int) -> str:
    """A /24 (or /16) nobody else uses: /24s in 10.200-219, /16s in 10.220-240, away from
    the default range and the 10.250 ranges of test_service_ips."""
    if prefix == 16:
        return f"10.{random.randint(220, 240)}.0.0/16"
    return f"10.{random.randint(200, 219)}.{random.randint(0, 255)}.0/24"


def wait_for(what, check, timeout: float = 20.0, interval: float = 0.2):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def read_or_none(read, name):
    try:
        return read(name)
    except ApiException as e:
        assert e.status == 404, e.body
        return None


def ready_of(cidr) -> client.V1Condition | None:
    return next((c for c in (cidr.status.conditions or []) if c.type == "Ready"), None) if cidr.status else None


def settled(net, name):
    """The ServiceCIDR once the controller has given it its finalizer and Ready=True."""
    def check():
        c = net.read_service_cidr(name)
        ready = ready_of(c)
        if FINALIZER in (c.metadata.finalizers or []) and ready is not None and ready.status == "True":
            return c
        return None
    return wait_for(f"ServiceCIDR {name} to be settled", check)


@pytest.fixture
def cidrs(net):
    """ServiceCIDRs a test made, deleted afterwards (whatever holds them up then is the
    controller's to wait for)."""
    made = []

    def make(*ranges: str) -> str:
        name = "t-" + os.urandom(4).hex()
        net.create_service_cidr(service_cidr(name, *ranges))
        made.append(name)
        return name
    yield make
    for name in made:
        try:
            net.delete_service_cidr(name)
        except ApiException:
            pass


# -- finalizer and Ready ------------------------------------------------------------------------

def test_user_service_cidr_gets_finalizer_and_ready(net, cidrs, kubectl):
    rng = unique_net(24)
    name = cidrs(rng)
    c = settled(net, name)
    assert c.metadata.finalizers == [FINALIZER]
    ready = ready_of(c)
    assert (ready.status, ready.reason, ready.message) == ("True", "", READY_MESSAGE)
    assert ready.last_transition_time is not None
    # written by server-side apply of the status, under upstream's manager name
    out = kubectl("get", "servicecidr", name, "-o", "json", "--show-managed-fields")
    managed = json.loads(out)["metadata"]["managedFields"]
    assert any(m["manager"] == "service-cidr-controller" and m["operation"] == "Apply" and
               m.get("subresource") == "status" for m in managed), managed
    rows = {ln.split()[0]: ln.split() for ln in kubectl("get", "servicecidrs").splitlines()[1:]}
    assert rows[name][1] == rng


def test_default_service_cidr_is_managed_like_any_other(net):
    """Upstream's controller manager treats the default range as any other: finalizer, and
    its own Ready message replaces the API server's first one."""
    c = wait_for("the default ServiceCIDR to carry the finalizer and the controller's message", lambda: (
        lambda c: c if FINALIZER in (c.metadata.finalizers or []) and ready_of(c) is not None and
        ready_of(c).message == READY_MESSAGE else None)(net.read_service_cidr("kubernetes")))
    assert c.spec.cidrs == [str(DEFAULT_RANGE)]
    assert ready_of(c).status == "True"


# -- deletion -------------------------------------------------------------------------------------

def test_range_in_use_stays_terminating_until_its_addresses_go(core, net, cidrs, namespace, kubectl):
    rng = ipaddress.ip_network(unique_net(24))
    name = cidrs(str(rng))
    settled(net, name)
    held = str(rng.network_address + 10)
    core.create_namespaced_service(namespace, service("holder", held))
    assert net.read_ip_address(held).spec.parent_ref.name == "holder"
    deleted_at = time.time()
    net.delete_service_cidr(name)

    def terminating():
        c = net.read_service_cidr(name)
        r = ready_of(c)
        return c if c.metadata.deletion_timestamp and r is not None and r.status == "False" else None
    c = wait_for("Ready=False on the terminating range", terminating)
    ready = ready_of(c)
    assert (ready.reason, ready.message) == ("Terminating", TERMINATING_MESSAGE)
    assert c.metadata.finalizers == [FINALIZER]

    # nothing comes from a terminating range: neither a requested address...
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service(namespace, service("late", str(rng.network_address + 11)))
    assert e.value.status == 422
    assert "the provided network does not match the current range" in e.value.body
    # ...nor an automatic one
    for i in range(5):
        ip = core.create_namespaced_service(namespace, service(f"auto{i}")).spec.cluster_ip
        assert ipaddress.ip_address(ip) not in rng
    # still there well past the deletion grace, and kubectl still lists it
    time.sleep(max(0.0, deleted_at + DELETION_GRACE + 2 - time.time()))
    assert net.read_service_cidr(name).metadata.deletion_timestamp
    rows = {ln.split()[0]: ln.split() for ln in kubectl("get", "servicecidrs").splitlines()[1:]}
    assert rows[name][1] == str(rng)
    # the address it was kept for goes: so does the range
    core.delete_namespaced_service("holder", namespace)
    wait_for("the range to be gone", lambda: read_or_none(net.read_service_cidr, name) is None, timeout=20)
    assert "kubernetes" in kubectl("get", "servicecidrs", "-o", "name")


def test_range_covered_by_another_goes_at_once(core, net, cidrs, namespace):
    outer = ipaddress.ip_network(unique_net(16))
    inner = ipaddress.ip_network(f"{outer.network_address + 256 * random.randint(1, 254)}/24")
    outer_name, inner_name = cidrs(str(outer)), cidrs(str(inner))
    settled(net, outer_name)
    settled(net, inner_name)
    held = str(inner.network_address + 7)
    core.create_namespaced_service(namespace, service("covered", held))
    net.delete_service_cidr(inner_name)
    seen_false = []

    def gone():
        c = read_or_none(net.read_service_cidr, inner_name)
        if c is not None and ready_of(c) is not None and ready_of(c).status == "False":
            seen_false.append(ready_of(c).reason)
        return c is None
    wait_for("the covered range to be gone", gone, timeout=DELETION_GRACE + 15)
    assert not seen_false  # never held up
    # the address stays, within the outer range that still exists
    assert net.read_ip_address(held).spec.parent_ref.name == "covered"
    # a range the same as another one is covered too
    twin = cidrs(str(outer))
    settled(net, twin)
    net.delete_service_cidr(twin)
    wait_for("the twin range to be gone", lambda: read_or_none(net.read_service_cidr, twin) is None,
             timeout=DELETION_GRACE + 15)
    assert net.read_service_cidr(outer_name).metadata.deletion_timestamp is None


def test_unused_range_goes_after_the_grace(net, cidrs):
    name = cidrs(unique_net(24))
    settled(net, name)
    start = time.time()
    net.delete_service_cidr(name)
    wait_for("the unused range to be gone", lambda: read_or_none(net.read_service_cidr, name) is None,
             timeout=DELETION_GRACE + 15)
    # upstream waits out its grace so that no allocation in flight can land in the range
    assert time.time() - start >= DELETION_GRACE - 1.5


# -- periodic repair -------------------------------------------------------------------------------

def _api_client(server) -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(server.kubeconfig), client_configuration=cfg)
    return client.ApiClient(cfg)


def _events_about(ev_api, name: str, reason: str) -> list:
    return [e for e in ev_api.list_namespaced_event("default").items
            if e.regarding is not None and e.regarding.name == name and e.reason == reason]


def test_repair_loop_recreates_and_releases(fresh_server):
    s = fresh_server(extra_args=["--ip-repair-interval", "2s"]).start()
    with _api_client(s) as api:
        core, net, ev = client.CoreV1Api(api), client.NetworkingV1Api(api), client.EventsV1Api(api)
        # a leaked reservation: the allocator's labels, a Service that does not exist
        leaked = net.create_ip_address(ip_address("10.96.201.1", {"resource": "services", "namespace": "default",
                                                                  "name": "ghost"}, MANAGED))
        leaked_at = time.time()
        # someone else's IPAddress: never the repair loop's business
        net.create_ip_address(ip_address("10.96.201.2", {"group": "example.com", "resource": "things",
                                                         "name": "x"}))

        # a Service whose IPAddress is deleted gets it back
        svc = core.create_namespaced_service("default", service("web"))
        ip = svc.spec.cluster_ip
        net.delete_ip_address(ip)
        back = wait_for("the IPAddress to be recreated", lambda: read_or_none(net.read_ip_address, ip), timeout=15)
        ref = back.spec.parent_ref
        assert (ref.resource, ref.namespace, ref.name) == ("services", "default", "web")
        assert back.metadata.labels == MANAGED
        evs = wait_for("the ClusterIPNotAllocated event", lambda: _events_about(ev, "web", "ClusterIPNotAllocated"))
        e = evs[0]
        assert e.type == "Warning" and e.action == "ClusterIPAllocation"
        assert e.note == f"Cluster IP [IPv4]: {ip} is not allocated; repairing"
        assert e.reporting_controller == "ipallocator-repair-controller"
        assert e.regarding.kind == "Service" and e.regarding.uid == svc.metadata.uid
        # the same Event seen through core/v1
        core_evs = [x for x in core.list_namespaced_event("default").items if x.metadata.name == e.metadata.name]
        assert core_evs[0].message == e.note and core_evs[0].involved_object.name == "web"

        # an allocator IPAddress naming a live Service that holds another address goes
        wrong = net.create_ip_address(ip_address("10.96.201.3", {"resource": "services", "namespace": "default",
                                                                 "name": "web"}, MANAGED))
        wait_for("the wrongly referenced IPAddress to go",
                 lambda: read_or_none(net.read_ip_address, "10.96.201.3") is None, timeout=20)
        evs = wait_for("the IPAddressWrongReference event",
                       lambda: _events_about(ev, "10.96.201.3", "IPAddressWrongReference"))
        assert evs[0].note == "IPAddress: 10.96.201.3 for Service default/web has a wrong reference; cleaning up"
        assert evs[0].action == "IPAddressAllocation" and evs[0].regarding.kind == "IPAddress"
        assert evs[0].regarding.uid == wrong.metadata.uid
        # the Service's own address is untouched
        assert net.read_ip_address(ip).spec.parent_ref.name == "web"

        # the leaked one is kept for upstream's 60s grace (a Service write may be on its way)...
        assert read_or_none(net.read_ip_address, "10.96.201.1") is not None
        assert time.time() - leaked_at < 55
        # ...then released, with an event
        wait_for("the leaked IPAddress to be released",
                 lambda: read_or_none(net.read_ip_address, "10.96.201.1") is None,
                 timeout=max(5.0, leaked_at + 60 + 15 - time.time()), interval=1.0)
        assert time.time() - leaked_at >= 58
        evs = wait_for("the IPAddressNotAllocated event",
                       lambda: _events_about(ev, "10.96.201.1", "IPAddressNotAllocated"))
        assert evs[0].note == "IPAddress: 10.96.201.1 for Service default/ghost appears to have leaked: cleaning up"
        assert evs[0].regarding.uid == leaked.metadata.uid
        # someone else's stays; the kubernetes Service's address was never touched
        assert net.read_ip_address("10.96.201.2").spec.parent_ref.group == "example.com"
        assert net.read_ip_address("10.96.0.1").spec.parent_ref.name == "kubernetes"
    # the loop stops with the server, promptly and cleanly
    t = time.time()
    assert s.stop() == 0
    assert time.time() - t < 10


def test_repair_interval_flag_is_checked(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    shim = Path(sys.executable).parent / "shim"
    p = subprocess.run([str(shim), "up", "--data-dir", str(tmp_path), "--ip-repair-interval", "soon"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    assert "invalid duration 'soon'" in p.stderr


def test_not_ready_range_is_not_allocated_from(fresh_server):
    """Without a controller manager nobody writes Ready for user ranges (they count as
    ready, as upstream's allocator assumes); a Ready=False verdict keeps the allocator out."""
    s = fresh_server(extra_args=["--no-controllers"]).start()
    with _api_client(s) as api:
        core, net = client.CoreV1Api(api), client.NetworkingV1Api(api)
        net.create_service_cidr(service_cidr("spare", "10.201.0.0/24"))
        assert core.create_namespaced_service("default", service("a", "10.201.0.5")).spec.cluster_ip == "10.201.0.5"
        c = net.read_service_cidr("spare")
        assert not c.metadata.finalizers and not (c.status and c.status.conditions)
        net.patch_service_cidr_status("spare", {"status": {"conditions": [{
            "type": "Ready", "status": "False", "reason": "Broken", "message": "not today",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
        with pytest.raises(ApiException) as e:
            core.create_namespaced_service("default", service("b", "10.201.0.6"))
        assert e.value.status == 422
        assert "the provided network does not match the current range" in e.value.body
        # the default range is still there for automatic picks
        assert ipaddress.ip_address(core.create_namespaced_service("default", service("c")).spec.cluster_ip) \
            in DEFAULT_RANGE
