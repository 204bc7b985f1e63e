"""Service cluster IPs reserved as networking.k8s.io/v1 IPAddress objects, end to end.

A real `shim up`, the official Python client and kubectl: the default ServiceCIDR, one
IPAddress per Service IP (parentRef, labels), upstream's 422s for a taken or out-of-range
address, release on delete and on a change to ExternalName, reservation under concurrency,
dry runs that reserve nothing, and the validation of the two kinds themselves.
"""
from __future__ import annotations

import ipaddress
import json
import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.timeout(180)

MANAGED_BY = "ipaddress.kubernetes.io/managed-by"
SERVICE_RANGE = ipaddress.ip_network("10.96.0.0/12")


@pytest.fixture
def core(api_client) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def net(api_client) -> client.NetworkingV1Api:
    return client.NetworkingV1Api(api_client)


def service(name: str, cluster_ip: str | None = None, stype: str = "ClusterIP") -> dict:
    spec = {"type": stype, "ports": [{"name": "http", "port": 80}]}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def status_of(exc: ApiException) -> dict:
    return json.loads(exc.body)


def ip_or_none(net, name: str):
    try:
        return net.read_ip_address(name)
    except ApiException as e:
        assert e.status == 404, e.body
        return None


def free_ip(net) -> str:
    """An address of the range no IPAddress holds (from the upper part, away from 10.96.0.x)."""
    for _ in range(50):
        cand = str(ipaddress.ip_address(int(SERVICE_RANGE.network_address) + random.randint(4096, 2 ** 20 - 2)))
        if ip_or_none(net, cand) is None:
            return cand
    raise AssertionError("no free address found")


def managed_ips(net, namespace: str) -> set[str]:
    """The allocator's IPAddresses for Services of one namespace (other tests' come and go)."""
    return {o.metadata.name for o in net.list_ip_address(label_selector=f"{MANAGED_BY}=ipallocator.k8s.io").items
            if o.spec.parent_ref.namespace == namespace}


# -- the default ServiceCIDR -------------------------------------------------------------------

def test_default_service_cidr(kubectl, net):
    out = kubectl("get", "servicecidrs")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "CIDRS", "AGE"]
    row = next(ln.split() for ln in lines[1:] if ln.split()[0] == "kubernetes")
    assert row[1] == "10.96.0.0/12"
    cidr = net.read_service_cidr("kubernetes")
    assert cidr.spec.cidrs == ["10.96.0.0/12"]
    ready = [c for c in cidr.status.conditions if c.type == "Ready"]
    assert len(ready) == 1 and ready[0].status == "True"
    # the API server's first word, or the controller manager's that replaces it
    # (test_servicecidrs.py follows the controller's part)
    assert ready[0].message in ("Kubernetes default Service CIDR is ready", "Kubernetes Service CIDR is ready")
    # the kubernetes Service's address is reserved like any other
    kip = net.read_ip_address("10.96.0.1")
    assert (kip.spec.parent_ref.resource, kip.spec.parent_ref.namespace, kip.spec.parent_ref.name) == \
        ("services", "default", "kubernetes")
    assert kip.metadata.labels[MANAGED_BY] == "ipallocator.k8s.io"


def test_discovery_lists_both_kinds(kubectl):
    out = kubectl("api-resources", "--api-group=networking.k8s.io", "-o", "wide")
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines()[1:]}
    assert rows["ipaddresses"][1] == "ip"          # SHORTNAMES
    assert rows["ipaddresses"][3] == "false"       # NAMESPACED
    assert rows["servicecidrs"][2] == "false"      # no short names: APIVERSION then NAMESPACED
    assert kubectl("get", "servicecidrs/kubernetes", "--subresource=status", "-o", "name").strip() == \
        "servicecidr.networking.k8s.io/kubernetes"


# -- allocation ----------------------------------------------------------------------------------

def test_service_gets_its_ipaddress(core, net, namespace):
    svc = core.create_namespaced_service(namespace, service("web"))
    ip = svc.spec.cluster_ip
    assert ipaddress.ip_address(ip) in SERVICE_RANGE and svc.spec.cluster_ips == [ip]
    obj = net.read_ip_address(ip)
    ref = obj.spec.parent_ref
    assert (ref.group or "", ref.resource, ref.namespace, ref.name) == ("", "services", namespace, "web")
    assert obj.metadata.labels == {MANAGED_BY: "ipallocator.k8s.io", "ipaddress.kubernetes.io/ip-family": "IPv4"}
    # automatic picks come from the upper part of the range, as upstream's allocator prefers
    assert int(ipaddress.ip_address(ip)) - int(SERVICE_RANGE.network_address) > 256


def test_taken_ip_is_refused_and_nothing_changes(core, net, namespace):
    first = core.create_namespaced_service(namespace, service("first"))
    ip = first.spec.cluster_ip
    before = net.read_ip_address(ip)
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service(namespace, service("second", ip))
    assert e.value.status == 422
    st = status_of(e.value)
    assert st["reason"] == "Invalid"
    assert st["message"] == (f'Service "second" is invalid: spec.clusterIPs: Invalid value: ["{ip}"]: '
                             f'failed to allocate IP {ip}: provided IP is already allocated')
    assert st["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec.clusterIPs",
                                        "message": f'Invalid value: ["{ip}"]: failed to allocate IP {ip}: '
                                                   f'provided IP is already allocated'}]
    after = net.read_ip_address(ip)
    assert after.metadata.uid == before.metadata.uid and after.spec.parent_ref.name == "first"
    with pytest.raises(ApiException) as e:
        core.read_namespaced_service("second", namespace)
    assert e.value.status == 404


def test_addresses_outside_every_range_are_refused(core, namespace):
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service(namespace, service("far", "10.250.3.4"))
    assert e.value.status == 422
    assert status_of(e.value)["message"] == (
        'Service "far" is invalid: spec.clusterIPs: Invalid value: ["10.250.3.4"]: failed to allocate IP '
        '10.250.3.4: the provided network does not match the current range')
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service(namespace, service("edge", "10.111.255.255"))
    assert status_of(e.value)["message"] == (
        'Service "edge" is invalid: spec.clusterIPs: Invalid value: ["10.111.255.255"]: failed to allocate IP '
        '10.111.255.255: the provided IP (10.111.255.255) is not in the valid range. '
        'The range of valid IPs is 10.96.0.0/12')


def test_delete_releases_the_address(core, net, namespace):
    ip = free_ip(net)
    core.create_namespaced_service(namespace, service("a", ip))
    assert net.read_ip_address(ip).spec.parent_ref.name == "a"
    core.delete_namespaced_service("a", namespace)
    assert ip_or_none(net, ip) is None
    b = core.create_namespaced_service(namespace, service("b", ip))
    assert b.spec.cluster_ip == ip
    assert net.read_ip_address(ip).spec.parent_ref.name == "b"


def test_a_create_that_fails_late_releases_what_it_reserved(core, net, namespace):
    """The address is reserved before the Service is written; when that write fails (here:
    the name exists), the reservation goes again."""
    core.create_namespaced_service(namespace, service("dup"))
    ip = free_ip(net)
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service(namespace, service("dup", ip))
    assert e.value.status == 409
    assert ip_or_none(net, ip) is None
    assert len(managed_ips(net, namespace)) == 1


def test_change_to_external_name_releases_and_back_reserves(core, net, namespace):
    svc = core.create_namespaced_service(namespace, service("flip"))
    ip = svc.spec.cluster_ip
    core.patch_namespaced_service("flip", namespace,
                                  {"spec": {"type": "ExternalName", "externalName": "example.com"}})
    got = core.read_namespaced_service("flip", namespace)
    assert got.spec.cluster_ip is None
    assert ip_or_none(net, ip) is None
    back = core.patch_namespaced_service("flip", namespace, {"spec": {"type": "ClusterIP", "externalName": None}})
    assert back.spec.cluster_ip and ip_or_none(net, back.spec.cluster_ip).spec.parent_ref.name == "flip"


def test_headless_services_reserve_nothing(core, net, namespace):
    svc = core.create_namespaced_service(namespace, service("headless", "None"))
    assert svc.spec.cluster_ips == ["None"]
    assert managed_ips(net, namespace) == set()


def test_concurrent_creates_get_distinct_addresses(api_client, net, namespace):
    api_client.configuration.connection_pool_maxsize = 16
    core = client.CoreV1Api(api_client)

    def make(i):
        return core.create_namespaced_service(namespace, service(f"s{i}")).spec.cluster_ip
    with ThreadPoolExecutor(16) as pool:
        ips = list(pool.map(make, range(50)))
    assert len(set(ips)) == 50
    held = {o.metadata.name: o.spec.parent_ref for o in net.list_ip_address().items}
    for i, ip in enumerate(ips):
        assert (held[ip].namespace, held[ip].name) == (namespace, f"s{i}")


def test_concurrent_requests_for_one_address_have_one_winner(api_client, net, namespace):
    """The reservation is the IPAddress create: of many Services asking at once for one
    address, exactly one gets it and the others are refused."""
    api_client.configuration.connection_pool_maxsize = 16
    core = client.CoreV1Api(api_client)
    ip = free_ip(net)
    barrier = threading.Barrier(12)

    def make(i):
        barrier.wait()
        try:
            core.create_namespaced_service(namespace, service(f"race{i}", ip))
            return "ok"
        except ApiException as e:
            return e.status
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(make, range(12)))
    assert results.count("ok") == 1 and results.count(422) == 11, results
    winner = f"race{results.index('ok')}"
    assert net.read_ip_address(ip).spec.parent_ref.name == winner
    assert [s.metadata.name for s in core.list_namespaced_service(namespace).items] == [winner]


def test_dry_run_reserves_nothing(core, net, namespace):
    ip = free_ip(net)
    asked = core.create_namespaced_service(namespace, service("dry", ip), dry_run="All")
    assert asked.spec.cluster_ip == ip
    auto = core.create_namespaced_service(namespace, service("dry2"), dry_run="All")
    assert auto.spec.cluster_ip == "10.96.0.0"  # upstream's dry-run allocator shows the network
    assert managed_ips(net, namespace) == set()
    assert ip_or_none(net, ip) is None
    # a dry run still says no to what a real create would be refused
    taken = core.create_namespaced_service(namespace, service("real")).spec.cluster_ip
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service(namespace, service("dry3", "10.250.0.1"), dry_run="All")
    assert e.value.status == 422
    # and a dry-run delete releases nothing
    core.delete_namespaced_service("real", namespace, dry_run="All")
    assert net.read_ip_address(taken).spec.parent_ref.name == "real"


def test_kubectl_get_ipaddresses(kubectl, core, namespace):
    ip = core.create_namespaced_service(namespace, service("shown")).spec.cluster_ip
    for resource in ("ipaddresses", "ip", "ipaddress.networking.k8s.io"):
        lines = kubectl("get", resource, ip).splitlines()
        assert lines[0].split() == ["NAME", "PARENTREF"]
        assert lines[1].split() == [ip, f"services/{namespace}/shown"]
    listed = kubectl("get", "ipaddresses").splitlines()
    assert any(ln.split() == ["10.96.0.1", "services/default/kubernetes"] for ln in listed)


# -- a second ServiceCIDR ------------------------------------------------------------------------

def test_addresses_from_an_added_service_cidr(core, net, namespace):
    name = "extra-" + os.urandom(3).hex()
    third = random.randint(0, 255)
    cidr = f"10.250.{third}.0/24"
    net.create_service_cidr({"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR",
                             "metadata": {"name": name}, "spec": {"cidrs": [cidr]}})
    try:
        want = f"10.250.{third}.10"
        svc = core.create_namespaced_service(namespace, service("extra", want))
        assert svc.spec.cluster_ip == want
        assert net.read_ip_address(want).spec.parent_ref.name == "extra"
        # the ranges are immutable
        with pytest.raises(ApiException) as e:
            net.patch_service_cidr(name, {"spec": {"cidrs": ["10.251.0.0/24"]}})
        assert e.value.status == 422
        assert status_of(e.value)["message"] == (
            f'ServiceCIDR.networking.k8s.io "{name}" is invalid: spec.cidrs[0]: Invalid value: '
            f'"10.251.0.0/24": field is immutable')
    finally:
        net.delete_service_cidr(name)


# -- validation of the kinds themselves ---------------------------------------------------------

def _ip_body(name: str, ref: dict | None = None) -> dict:
    body = {"apiVersion": "networking.k8s.io/v1", "kind": "IPAddress", "metadata": {"name": name}, "spec": {}}
    if ref is not None:
        body["spec"]["parentRef"] = ref
    return body


@pytest.mark.parametrize("name,detail", [
    ("010.1.2.3", "must not have leading 0s"),
    ("2001:DB8::1", 'must be in canonical form (\\"2001:db8::1\\")'),
    ("not-an-ip", "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
    ("::ffff:10.1.2.3", "must not be an IPv4-mapped IPv6 address"),
])
def test_ipaddress_names_are_canonical_ips(net, name, detail):
    with pytest.raises(ApiException) as e:
        net.create_ip_address(_ip_body(name, {"resource": "things", "name": "x"}))
    assert e.value.status == 422
    msg = status_of(e.value)["message"]
    assert msg == f'IPAddress.networking.k8s.io "{name}" is invalid: metadata.name: Invalid value: ' \
                  f'"{name}": {detail}'.replace('\\"', '"')


def test_ipaddress_parent_ref_is_required_and_immutable(net, kubectl):
    name = f"192.0.2.{random.randint(1, 254)}"
    # (the typed client refuses to send an IPAddress without parentRef; kubectl sends it)
    out = kubectl.run("create", "-f", "-", input=json.dumps(_ip_body(name)), check=False)
    assert out.returncode != 0
    assert f'The IPAddress "{name}" is invalid: spec.parentRef: Required value' in out.stderr
    out = kubectl.run("create", "-f", "-", input=json.dumps(_ip_body(name, {"resource": "things"})), check=False)
    assert f'The IPAddress "{name}" is invalid: spec.parentRef.name: Required value' in out.stderr
    net.create_ip_address(_ip_body(name, {"group": "example.com", "resource": "things", "name": "a"}))
    try:
        with pytest.raises(ApiException) as e:
            net.patch_ip_address(name, {"spec": {"parentRef": {"name": "b"}}})
        assert e.value.status == 422
        assert "spec.parentRef: Invalid value:" in status_of(e.value)["message"]
        assert status_of(e.value)["message"].endswith("field is immutable")
    finally:
        net.delete_ip_address(name)
