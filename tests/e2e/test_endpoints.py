"""Services get endpoints: the EndpointSlice and Endpoints controllers, and the API server's
own default/kubernetes endpoints, end to end.

A real `shim up` (with its controller manager), the official Python client and kubectl.
There is no kubelet here: the test plays one, binding pods to a Node object it creates and
writing their status (podIP, phase Running, the Ready condition) through pods/status.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from shim.controllers.endpoints import repack_subsets, truncate

pytestmark = pytest.mark.timeout(240)

SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
TRIGGER = "endpoints.kubernetes.io/last-change-trigger-time"


def wait_for(fn, timeout: float = 20.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def core(api_client) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def disc(api_client) -> client.DiscoveryV1Api:
    return client.DiscoveryV1Api(api_client)


@pytest.fixture
def node(core):
    """A Node object (no kubelet behind it) in zone `zone-a`, for pods to be bound to."""
    name = "ep-node-" + os.urandom(3).hex()
    core.create_node({"apiVersion": "v1", "kind": "Node",
                      "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": "zone-a"}}})
    yield name
    core.delete_node(name)


def make_service(core, ns: str, name: str, selector: dict | None, ports=None, **spec) -> dict:
    if ports is None:
        ports = [{"name": "http", "port": 80, "targetPort": 8080}]
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"team": "blue"}},
            "spec": dict(spec, ports=ports)}
    if selector is not None:
        body["spec"]["selector"] = selector
    return core.api_client.sanitize_for_serialization(core.create_namespaced_service(ns, body))


def make_pod(core, ns: str, name: str, node: str, labels: dict, ports=None, **spec) -> dict:
    """A pod bound to `node` (spec.nodeName, as after scheduling)."""
    container = {"name": "app", "image": "busybox:local"}
    if ports:
        container["ports"] = ports
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": dict(spec, nodeName=node, containers=[container])}
    return core.api_client.sanitize_for_serialization(core.create_namespaced_pod(ns, body))


def set_status(core, ns: str, name: str, ip: str, ready: bool) -> None:
    """What a kubelet writes: running, an IP, and the Ready condition (moved on change)."""
    status = "True" if ready else "False"
    core.patch_namespaced_pod_status(name, ns, {"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": status, "lastTransitionTime": now()},
                       {"type": "ContainersReady", "status": status, "lastTransitionTime": now()}]}})


def slices(disc, ns: str, svc: str) -> list[dict]:
    items = disc.list_namespaced_endpoint_slice(ns, label_selector=f"{SERVICE_NAME}={svc}").items
    return [disc.api_client.sanitize_for_serialization(s) for s in items]


def endpoints(core, ns: str, name: str) -> dict | None:
    try:
        return core.api_client.sanitize_for_serialization(core.read_namespaced_endpoints(name, ns))
    except ApiException as e:
        assert e.status == 404, e.body
        return None


def slice_endpoints(disc, ns: str, svc: str) -> dict[str, dict]:
    """Endpoint per pod name, over all the Service's slices."""
    return {ep["targetRef"]["name"]: ep for s in slices(disc, ns, svc) for ep in s.get("endpoints") or ()}


def addresses(ep: dict | None) -> tuple[set, set]:
    """(ready IPs, not-ready IPs) of an Endpoints object."""
    ready, not_ready = set(), set()
    for subset in (ep or {}).get("subsets") or ():
        ready |= {a["ip"] for a in subset.get("addresses") or ()}
        not_ready |= {a["ip"] for a in subset.get("notReadyAddresses") or ()}
    return ready, not_ready


# -- the EndpointSlice and Endpoints of a Service -------------------------------------------------

def test_slice_and_endpoints_contents(core, disc, namespace, node):
    ns = namespace
    svc = make_service(core, ns, "web", {"app": "web"}, ports=[
        {"name": "http", "port": 80, "targetPort": "web", "appProtocol": "http"},
        {"name": "metrics", "port": 9090, "targetPort": 9100}])
    pod = make_pod(core, ns, "web-0", node, {"app": "web"},
                   ports=[{"name": "web", "containerPort": 8080}], hostname="web-0", subdomain="web")
    make_pod(core, ns, "other", node, {"app": "other"})
    set_status(core, ns, "web-0", "10.244.0.10", ready=True)
    set_status(core, ns, "other", "10.244.0.11", ready=True)

    def ready_slice():
        got = slices(disc, ns, "web")
        return got if len(got) == 1 and got[0].get("endpoints") else None
    [s] = wait_for(ready_slice, what="a slice with the pod")
    md = s["metadata"]
    assert md["name"].startswith("web-") and md["generateName"] == "web-"
    assert md["labels"] == {SERVICE_NAME: "web", MANAGED_BY: "endpointslice-controller.k8s.io", "team": "blue"}
    assert md["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                      "uid": svc["metadata"]["uid"], "controller": True,
                                      "blockOwnerDeletion": True}]
    dt.datetime.fromisoformat(md["annotations"][TRIGGER].replace("Z", "+00:00"))
    assert s["addressType"] == "IPv4"
    assert sorted(s["ports"], key=lambda p: p["name"]) == [
        {"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"},
        {"name": "metrics", "port": 9100, "protocol": "TCP"}]
    assert s["endpoints"] == [{
        "addresses": ["10.244.0.10"], "conditions": {"ready": True, "serving": True, "terminating": False},
        "hostname": "web-0", "nodeName": node, "zone": "zone-a",
        "targetRef": {"kind": "Pod", "namespace": ns, "name": "web-0", "uid": pod["metadata"]["uid"]}}]

    ep = wait_for(lambda: (e := endpoints(core, ns, "web")) and e.get("subsets") and e, what="Endpoints")
    assert ep["metadata"]["labels"] == {"endpoints.kubernetes.io/managed-by": "endpoint-controller", "team": "blue"}
    assert TRIGGER in ep["metadata"]["annotations"]
    [subset] = ep["subsets"]
    assert subset["addresses"] == [{"ip": "10.244.0.10", "hostname": "web-0", "nodeName": node, "targetRef": {
        "kind": "Pod", "namespace": ns, "name": "web-0", "uid": pod["metadata"]["uid"]}}]
    assert "notReadyAddresses" not in subset
    assert sorted(subset["ports"], key=lambda p: p["name"]) == [
        {"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"},
        {"name": "metrics", "port": 9100, "protocol": "TCP"}]


def test_service_without_pods_gets_placeholder(core, disc, namespace):
    ns = namespace
    make_service(core, ns, "lonely", {"app": "nobody"})
    [s] = wait_for(lambda: slices(disc, ns, "lonely"), what="the placeholder slice")
    assert not s.get("endpoints") and not s.get("ports")
    ep = wait_for(lambda: endpoints(core, ns, "lonely"), what="empty Endpoints")
    assert not ep.get("subsets")
    # headless: the marker label on both
    make_service(core, ns, "headless", {"app": "nobody"}, clusterIP="None")
    [h] = wait_for(lambda: slices(disc, ns, "headless"), what="headless slice")
    assert h["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    hep = wait_for(lambda: endpoints(core, ns, "headless"), what="headless Endpoints")
    assert hep["metadata"]["labels"]["service.kubernetes.io/headless"] == ""


def test_readiness_flip_and_pod_deletion(core, disc, namespace, node):
    ns = namespace
    make_service(core, ns, "flip", {"app": "flip"})
    for i in range(2):
        make_pod(core, ns, f"flip-{i}", node, {"app": "flip"})
        set_status(core, ns, f"flip-{i}", f"10.244.1.{i + 1}", ready=True)
    wait_for(lambda: len(slice_endpoints(disc, ns, "flip")) == 2, what="two endpoints")
    [first] = slices(disc, ns, "flip")

    set_status(core, ns, "flip-1", "10.244.1.2", ready=False)
    wait_for(lambda: slice_endpoints(disc, ns, "flip")["flip-1"]["conditions"] ==
             {"ready": False, "serving": False, "terminating": False}, what="not ready in the slice")
    wait_for(lambda: addresses(endpoints(core, ns, "flip")) == ({"10.244.1.1"}, {"10.244.1.2"}),
             what="not-ready address in Endpoints")
    [same] = slices(disc, ns, "flip")
    assert same["metadata"]["name"] == first["metadata"]["name"], "updated in place, not replaced"
    assert slice_endpoints(disc, ns, "flip")["flip-0"]["conditions"]["ready"] is True

    set_status(core, ns, "flip-1", "10.244.1.2", ready=True)
    wait_for(lambda: slice_endpoints(disc, ns, "flip")["flip-1"]["conditions"]["ready"] is True,
             what="ready again")
    wait_for(lambda: addresses(endpoints(core, ns, "flip")) == ({"10.244.1.1", "10.244.1.2"}, set()),
             what="both ready in Endpoints")

    core.delete_namespaced_pod("flip-0", ns, grace_period_seconds=0)
    wait_for(lambda: set(slice_endpoints(disc, ns, "flip")) == {"flip-1"}, what="deleted pod gone")
    wait_for(lambda: addresses(endpoints(core, ns, "flip")) == ({"10.244.1.2"}, set()),
             what="deleted pod gone from Endpoints")
    assert [s["metadata"]["name"] for s in slices(disc, ns, "flip")] == [first["metadata"]["name"]]


def test_terminating_pods(core, disc, namespace, node):
    """A pod being deleted (grace period running) stays in the slice as serving and
    terminating, not ready; the Endpoints object drops it; publishNotReadyAddresses keeps it."""
    ns = namespace
    make_service(core, ns, "plain", {"app": "term"})
    make_service(core, ns, "publish", {"app": "term"}, publishNotReadyAddresses=True)
    make_pod(core, ns, "term-0", node, {"app": "term"})
    set_status(core, ns, "term-0", "10.244.2.1", ready=True)
    wait_for(lambda: "term-0" in slice_endpoints(disc, ns, "plain"), what="endpoint")
    core.delete_namespaced_pod("term-0", ns, grace_period_seconds=300)
    wait_for(lambda: slice_endpoints(disc, ns, "plain")["term-0"]["conditions"] ==
             {"ready": False, "serving": True, "terminating": True}, what="terminating endpoint")
    wait_for(lambda: addresses(endpoints(core, ns, "plain")) == (set(), set()),
             what="terminating pod out of Endpoints")
    wait_for(lambda: slice_endpoints(disc, ns, "publish").get("term-0", {}).get("conditions") ==
             {"ready": True, "serving": True, "terminating": True}, what="published terminating endpoint")
    wait_for(lambda: addresses(endpoints(core, ns, "publish")) == ({"10.244.2.1"}, set()),
             what="published terminating pod in Endpoints")
    core.delete_namespaced_pod("term-0", ns, grace_period_seconds=0)
    wait_for(lambda: not slice_endpoints(disc, ns, "plain") and not slice_endpoints(disc, ns, "publish"),
             what="pod gone from the slices")
    wait_for(lambda: addresses(endpoints(core, ns, "publish")) == (set(), set()), what="gone from Endpoints")


def test_publish_not_ready_addresses(core, disc, namespace, node):
    ns = namespace
    make_service(core, ns, "pub", {"app": "pub"}, publishNotReadyAddresses=True)
    make_pod(core, ns, "pub-0", node, {"app": "pub"})
    set_status(core, ns, "pub-0", "10.244.3.1", ready=False)
    wait_for(lambda: slice_endpoints(disc, ns, "pub").get("pub-0", {}).get("conditions") ==
             {"ready": True, "serving": False, "terminating": False}, what="published not-ready endpoint")
    wait_for(lambda: addresses(endpoints(core, ns, "pub")) == ({"10.244.3.1"}, set()),
             what="published address")
    # a pod on a Node that does not exist: left out of slices (upstream retries until the
    # Node shows up) unless not-ready addresses are published
    make_service(core, ns, "strict", {"app": "pub"})
    make_pod(core, ns, "pub-1", "no-such-node", {"app": "pub"})
    set_status(core, ns, "pub-1", "10.244.3.2", ready=True)
    wait_for(lambda: set(slice_endpoints(disc, ns, "pub")) == {"pub-0", "pub-1"}, what="both published")
    wait_for(lambda: set(slice_endpoints(disc, ns, "strict")) == {"pub-0"}, what="nodeless pod skipped")
    assert "zone" not in slice_endpoints(disc, ns, "pub")["pub-1"]


def test_selector_change_and_removal(core, disc, namespace, node):
    ns = namespace
    make_service(core, ns, "sel", {"tier": "a"})
    make_pod(core, ns, "a-0", node, {"tier": "a"})
    make_pod(core, ns, "b-0", node, {"tier": "b"})
    set_status(core, ns, "a-0", "10.244.4.1", ready=True)
    set_status(core, ns, "b-0", "10.244.4.2", ready=True)
    wait_for(lambda: set(slice_endpoints(disc, ns, "sel")) == {"a-0"}, what="tier a")
    core.patch_namespaced_service("sel", ns, {"spec": {"selector": {"tier": "b"}}})
    wait_for(lambda: set(slice_endpoints(disc, ns, "sel")) == {"b-0"}, what="tier b")
    wait_for(lambda: addresses(endpoints(core, ns, "sel")) == ({"10.244.4.2"}, set()), what="Endpoints tier b")
    # relabelling a pod moves it between Services
    core.patch_namespaced_pod("a-0", ns, {"metadata": {"labels": {"tier": "b"}}})
    wait_for(lambda: set(slice_endpoints(disc, ns, "sel")) == {"a-0", "b-0"}, what="relabelled pod joins")
    # without a selector the controllers leave the Service's endpoints to whoever writes
    # them (upstream keeps what is there rather than deleting it)
    before = {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in slices(disc, ns, "sel")}
    core.patch_namespaced_service("sel", ns, [{"op": "remove", "path": "/spec/selector"}])
    core.delete_namespaced_pod("b-0", ns, grace_period_seconds=0)
    time.sleep(2)
    assert {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in slices(disc, ns, "sel")} == before
    assert addresses(endpoints(core, ns, "sel")) == ({"10.244.4.1", "10.244.4.2"}, set())


def test_service_deletion_removes_slices_and_endpoints(core, disc, namespace, node):
    ns = namespace
    make_service(core, ns, "gone", {"app": "gone"})
    make_pod(core, ns, "gone-0", node, {"app": "gone"})
    set_status(core, ns, "gone-0", "10.244.5.1", ready=True)
    wait_for(lambda: slice_endpoints(disc, ns, "gone"), what="a slice")
    wait_for(lambda: addresses(endpoints(core, ns, "gone"))[0], what="Endpoints")
    core.delete_namespaced_service("gone", ns)
    wait_for(lambda: not slices(disc, ns, "gone"), what="slices collected")
    wait_for(lambda: endpoints(core, ns, "gone") is None, what="Endpoints deleted")


def test_many_pods_split_into_slices(core, disc, namespace, node):
    ns = namespace
    n = 130
    make_service(core, ns, "big", {"app": "big"})
    for i in range(n):
        make_pod(core, ns, f"big-{i}", node, {"app": "big"})
        set_status(core, ns, f"big-{i}", f"10.245.{i // 250}.{i % 250 + 1}", ready=True)

    def spread():
        got = slices(disc, ns, "big")
        counts = sorted(len(s.get("endpoints") or ()) for s in got)
        return counts if sum(counts) == n else None
    counts = wait_for(spread, timeout=60, what=f"{n} endpoints")
    assert counts == [30, 100], counts
    wait_for(lambda: len(addresses(endpoints(core, ns, "big"))[0]) == n, timeout=30, what="all in Endpoints")
    # ten go: the slices shrink in place, no new slice
    names = {s["metadata"]["name"] for s in slices(disc, ns, "big")}
    for i in range(10):
        core.delete_namespaced_pod(f"big-{i}", ns, grace_period_seconds=0)
    wait_for(lambda: sum(len(s.get("endpoints") or ()) for s in slices(disc, ns, "big")) == n - 10,
             what="ten fewer")
    assert {s["metadata"]["name"] for s in slices(disc, ns, "big")} == names
    assert all(len(s["endpoints"]) <= 100 for s in slices(disc, ns, "big"))


# -- the API server's own endpoints ------------------------------------------------------------------

def test_default_kubernetes_endpoints(core, disc, server):
    ep = wait_for(lambda: endpoints(core, "default", "kubernetes"), what="default/kubernetes Endpoints")
    assert ep["metadata"]["labels"] == {"endpointslice.kubernetes.io/skip-mirror": "true"}
    [subset] = ep["subsets"]
    [addr] = subset["addresses"]
    ip = ipaddress.ip_address(addr["ip"])
    assert not ip.is_loopback and not ip.is_unspecified
    assert subset["ports"] == [{"name": "https", "port": server.port, "protocol": "TCP"}]
    s = disc.api_client.sanitize_for_serialization(disc.read_namespaced_endpoint_slice("kubernetes", "default"))
    assert s["metadata"]["labels"] == {SERVICE_NAME: "kubernetes"}
    assert not s["metadata"].get("ownerReferences")
    assert s["addressType"] == "IPv4"
    assert s["endpoints"] == [{"addresses": [addr["ip"]], "conditions": {"ready": True}}]
    assert s["ports"] == [{"name": "https", "port": server.port, "protocol": "TCP"}]
    svc = core.read_namespaced_service("kubernetes", "default")
    assert svc.spec.ports[0].target_port == server.port


def test_advertise_address_and_repair(fresh_server):
    from kubernetes import config
    s = fresh_server(extra_args=["--advertise-address", "10.11.12.13"]).start()
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(s.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        core = client.CoreV1Api(api)
        ep = wait_for(lambda: endpoints(core, "default", "kubernetes"), what="Endpoints")
        assert ep["subsets"][0]["addresses"] == [{"ip": "10.11.12.13"}]
        # someone changes it: the API server puts it back within its 10 s interval
        core.patch_namespaced_endpoints("kubernetes", "default", {"subsets": [
            {"addresses": [{"ip": "10.9.9.9"}], "ports": [{"name": "https", "port": 1, "protocol": "TCP"}]}]})
        wait_for(lambda: addresses(endpoints(core, "default", "kubernetes")) == ({"10.11.12.13"}, set()),
                 timeout=25, what="repaired Endpoints")


def test_restart_rewrites_nothing(fresh_server):
    """A controller manager starting afresh over existing slices and Endpoints finds them
    right and leaves them alone (no churn on restart)."""
    from kubernetes import config
    s = fresh_server().start()

    def clients():
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(s.kubeconfig), client_configuration=cfg)
        api = client.ApiClient(cfg)
        return api, client.CoreV1Api(api), client.DiscoveryV1Api(api)
    api, core, disc = clients()
    core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    make_service(core, "default", "steady", {"app": "steady"})
    for i in range(3):
        make_pod(core, "default", f"steady-{i}", "n1", {"app": "steady"})
        set_status(core, "default", f"steady-{i}", f"10.244.7.{i + 1}", ready=i != 2)
    wait_for(lambda: len(slice_endpoints(disc, "default", "steady")) == 3, what="three endpoints")
    wait_for(lambda: addresses(endpoints(core, "default", "steady"))[1], what="Endpoints")
    time.sleep(1.5)
    before = ({x["metadata"]["name"]: x["metadata"]["resourceVersion"] for x in slices(disc, "default", "steady")},
              endpoints(core, "default", "steady")["metadata"]["resourceVersion"])
    api.close()
    s.stop()
    s.start()
    api, core, disc = clients()
    # a Service made now gets its slice and Endpoints only once the new manager runs
    # (and has had the existing Services in its queue since its first list)
    make_service(core, "default", "probe", {"app": "nothing"})
    wait_for(lambda: slices(disc, "default", "probe") and endpoints(core, "default", "probe"), timeout=30,
             what="the restarted controllers at work")
    time.sleep(1)
    after = ({x["metadata"]["name"]: x["metadata"]["resourceVersion"] for x in slices(disc, "default", "steady")},
             endpoints(core, "default", "steady")["metadata"]["resourceVersion"])
    api.close()
    assert after == before


# -- kubectl --------------------------------------------------------------------------------------------

def test_kubectl_get_endpoints_and_slices(kubectl, core, disc, namespace, node):
    ns = namespace
    make_service(core, ns, "shown", {"app": "shown"})
    make_pod(core, ns, "shown-0", node, {"app": "shown"})
    set_status(core, ns, "shown-0", "10.244.6.1", ready=True)
    wait_for(lambda: slice_endpoints(disc, ns, "shown"), what="a slice")
    wait_for(lambda: addresses(endpoints(core, ns, "shown"))[0], what="Endpoints")
    [name] = [s["metadata"]["name"] for s in slices(disc, ns, "shown")]
    p = kubectl.run("get", "endpointslices", "-n", ns)
    out = p.stdout.splitlines()
    assert out[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    assert out[1].split()[:4] == [name, "IPv4", "8080", "10.244.6.1"]
    assert "deprecated" not in p.stderr
    p = kubectl.run("get", "endpoints", "-n", ns)
    out = p.stdout.splitlines()
    assert out[0].split() == ["NAME", "ENDPOINTS", "AGE"]
    assert out[1].split()[:2] == ["shown", "10.244.6.1:8080"]
    # v1 Endpoints is deprecated since v1.33: the API server says so on every request
    assert p.stderr.strip() == "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"
    # kubectl describe reads the Service's endpoints from its slices
    assert any(line.split() == ["Endpoints:", "10.244.6.1:8080"]
               for line in kubectl("describe", "service", "shown", "-n", ns).splitlines())
    got = kubectl("get", "endpointslices", "-n", ns, "-l", f"{SERVICE_NAME}=shown",
                  "-o", "jsonpath={.items[0].endpoints[0].conditions.ready}")
    assert got == "true"


# -- the Endpoints packing rules, as functions --------------------------------------------------------

def _addr(ip: str) -> dict:
    return {"ip": ip, "nodeName": "n", "targetRef": {"kind": "Pod", "namespace": "d", "name": ip, "uid": ip}}


def test_repack_groups_addresses_by_ports():
    p80 = {"name": "a", "port": 80, "protocol": "TCP"}
    p81 = {"name": "b", "port": 81, "protocol": "TCP"}
    packed = repack_subsets([
        {"addresses": [_addr("10.0.0.2")], "ports": [p80]},
        {"addresses": [_addr("10.0.0.1")], "ports": [p80]},
        {"addresses": [_addr("10.0.0.1")], "ports": [p81]},
        {"notReadyAddresses": [_addr("10.0.0.2")], "ports": [p81]},
    ])
    by_ports = {tuple(p["port"] for p in s["ports"]): s for s in packed}
    assert [a["ip"] for a in by_ports[(80,)]["addresses"]] == ["10.0.0.1", "10.0.0.2"]
    assert [a["ip"] for a in by_ports[(81,)]["addresses"]] == ["10.0.0.1"]
    assert [a["ip"] for a in by_ports[(81,)]["notReadyAddresses"]] == ["10.0.0.2"]


def test_truncation_over_capacity():
    ready = [_addr(f"10.1.{i // 250}.{i % 250}") for i in range(900)]
    not_ready = [_addr(f"10.2.{i // 250}.{i % 250}") for i in range(300)]
    subsets, cut = truncate([{"addresses": ready, "notReadyAddresses": not_ready, "ports": []}])
    assert cut and len(subsets[0]["addresses"]) == 900 and len(subsets[0]["notReadyAddresses"]) == 100
    subsets, cut = truncate([{"addresses": ready + [_addr(f"10.3.0.{i}") for i in range(200)],
                              "notReadyAddresses": not_ready}])
    assert cut and len(subsets[0]["addresses"]) == 1000 and "notReadyAddresses" not in subsets[0]
    assert truncate([{"addresses": ready}]) == ([{"addresses": ready}], False)


# -- what the API accepts --------------------------------------------------------------------------------

def _invalid(exc: ApiException) -> tuple[str, list[tuple[str, str, str]]]:
    import json
    st = json.loads(exc.body)
    assert exc.status == 422 and st["reason"] == "Invalid", exc.body
    return st["message"], [(c["reason"], c["field"], c["message"]) for c in st["details"]["causes"]]


def test_endpointslice_validation(disc, namespace):
    ns = namespace
    body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "manual"},
            "addressType": "IPv5", "endpoints": [], "ports": [{"port": 80, "protocol": "XTP"}]}
    with pytest.raises(ApiException) as e:
        disc.create_namespaced_endpoint_slice(ns, body)
    _, causes = _invalid(e.value)
    assert ("FieldValueNotSupported", "addressType",
            'Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"') in causes
    assert any(c[1] == "ports[0].protocol" for c in causes)

    body.update(addressType="IPv4", ports=[{"port": 80}, {"port": 81}],
                endpoints=[{"addresses": ["127.0.0.1"]}, {"addresses": ["2001:db8::1"]}, {"addresses": []}])
    with pytest.raises(ApiException) as e:
        disc.create_namespaced_endpoint_slice(ns, body)
    _, causes = _invalid(e.value)
    assert ("FieldValueDuplicate", "ports[1].name", 'Duplicate value: ""') in causes
    assert ("FieldValueInvalid", "endpoints[0].addresses[0]",
            'Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)') in causes
    assert ("FieldValueInvalid", "endpoints[1].addresses",
            'Invalid value: "2001:db8::1": must be an IPv4 address') in causes
    assert ("FieldValueRequired", "endpoints[2].addresses",
            "Required value: must contain at least 1 address") in causes

    body.update(ports=[{"port": 80}], endpoints=[{"addresses": ["10.1.2.3"]}])
    made = disc.create_namespaced_endpoint_slice(ns, body)
    assert made.ports[0].protocol == "TCP" and made.ports[0].name == ""
    assert made.metadata.generation == 1
    relabelled = disc.patch_namespaced_endpoint_slice("manual", ns, {"metadata": {"labels": {"a": "b"}}})
    assert relabelled.metadata.generation == 2, "a label change is a new generation of a slice"
    annotated = disc.patch_namespaced_endpoint_slice("manual", ns, {"metadata": {"annotations": {"a": "b"}}})
    assert annotated.metadata.generation == 2
    with pytest.raises(ApiException) as e:
        disc.patch_namespaced_endpoint_slice("manual", ns, {"addressType": "IPv6"})
    _, causes = _invalid(e.value)
    assert ("FieldValueInvalid", "addressType", 'Invalid value: "IPv6": field is immutable') in causes


def test_endpoints_validation(core, namespace):
    body = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "manual"},
            "subsets": [{"addresses": [{"ip": "169.254.1.1"}], "ports": [{"port": 0}, {"name": "b", "port": 1}]},
                        {"ports": [{"port": 80}]}]}
    with pytest.raises(ApiException) as e:
        core.create_namespaced_endpoints(namespace, body)
    _, causes = _invalid(e.value)
    assert ("FieldValueInvalid", "subsets[0].addresses[0].ip",
            'Invalid value: "169.254.1.1": may not be in the link-local range (169.254.0.0/16, fe80::/10)') in causes
    assert ("FieldValueRequired", "subsets[0].ports[0].name", "Required value") in causes
    assert ("FieldValueInvalid", "subsets[0].ports[0].port",
            "Invalid value: 0: must be between 1 and 65535, inclusive") in causes
    assert ("FieldValueRequired", "subsets[1]",
            "Required value: must specify `addresses` or `notReadyAddresses`") in causes
