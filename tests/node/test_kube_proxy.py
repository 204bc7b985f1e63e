"""Service traffic on real nodes: the upstream kube-proxy (v1.37, iptables mode) that
`shim node up` starts in each node's network namespace, programmed from the shim's
Services and EndpointSlices.

Pods are busybox (`httpd` serves, `wget` fetches); the in-cluster API client is the
static kubectl binary mounted into a pod. Same prerequisites as test_node.py (root,
`shim node install`).

The control plane here listens on 0.0.0.0 (as kube-apiserver's default bind address), so
the address it advertises in default/kubernetes (the host's primary address) is one it
serves, and pods reach it through the `kubernetes` Service.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from node.test_node import (_core, _get_node, _node_log_tail, _pod, _ready, _wait,  # noqa: F401
                            _wait_default_sa, node, node_prereqs, ready_node)

pytestmark = [pytest.mark.node, pytest.mark.timeout(2400)]

WEB = ["sh", "-c", "mkdir -p /www && echo hello-from-$HOSTNAME > /www/index.html && exec httpd -f -p 8080 -h /www"]
IDLE = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture(scope="module")
def server(tmp_path_factory, node_prereqs):
    """A control plane of this module's own, serving on every address (see the docstring)."""
    from conftest import Server, free_port
    port = free_port()
    s = Server(tmp_path_factory.mktemp("kube-proxy-cp"), port=port,
               extra_args=["--listen", f"0.0.0.0:{port}"]).start()
    yield s
    s.stop()


@pytest.fixture
def k(server, tmp_path):
    from conftest import Kubectl
    cache = tmp_path / "kube" / "cache"
    cache.mkdir(parents=True)
    return Kubectl(server.kubeconfig, cache)


def _fetch_in_pod(k, ns: str, pod: str, url: str) -> tuple[int, str]:
    """busybox wget in the pod (its -T crashes Debian's static busybox: `timeout` instead)."""
    p = k.run("exec", "-n", ns, pod, "--", "sh", "-c", f"timeout 10 wget -qO- {url} 2>&1", check=False)
    return p.returncode, p.stdout + p.stderr


def _fetch_from_host(url: str, netns: str | None = None) -> str:
    if netns:
        p = subprocess.run(["ip", "netns", "exec", netns, "busybox", "wget", "-qO-", url],
                           capture_output=True, text=True, timeout=20)
        assert p.returncode == 0, (url, p.returncode, p.stderr)
        return p.stdout
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def _web_pod(name: str, node: str, app: str) -> dict:
    body = _pod(name, node, WEB)
    body["metadata"]["labels"] = {"app": app}
    body["spec"]["terminationGracePeriodSeconds"] = 1
    body["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8080}]
    body["spec"]["containers"][0]["readinessProbe"] = {
        "tcpSocket": {"port": 8080}, "periodSeconds": 1}
    return body


def _service(v1, ns: str, name: str, app: str, type_: str = "ClusterIP"):
    return v1.create_namespaced_service(ns, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"type": type_, "selector": {"app": app},
                 "ports": [{"name": "www", "port": 80, "targetPort": "http"}]}})


def _running(v1, ns: str, names: list[str], node_state, timeout: float = 90) -> None:
    def ok():
        for n in names:
            p = v1.read_namespaced_pod(n, ns)
            if p.status.phase != "Running" or not all(c.ready for c in p.status.container_statuses or [None]):
                return False
        return True
    try:
        _wait(ok, timeout, what=f"pods {names} Running and ready")
    except AssertionError as e:
        raise AssertionError(f"{e}\nkubelet log:\n{_node_log_tail(node_state)}") from None


def _ready_endpoints(disc, ns: str, svc: str) -> set[str]:
    return {a for s in disc.list_namespaced_endpoint_slice(ns, label_selector=f"kubernetes.io/service-name={svc}").items
            for e in s.endpoints or () if e.conditions.ready for a in e.addresses}


def _all_endpoints(disc, ns: str, svc: str) -> set[str]:
    return {a for s in disc.list_namespaced_endpoint_slice(ns, label_selector=f"kubernetes.io/service-name={svc}").items
            for e in s.endpoints or () for a in e.addresses}


def _proxy_log(node_state) -> str:
    return Path(node_state.logs["kube-proxy"]).read_text(errors="replace")


# ---------------------------------------------------------------------------------------------


def test_kube_proxy_runs_healthy_and_says_so(ready_node, api_client):
    """The process runs in the node's namespace, its healthz answers on the node's address,
    and it announced itself with kube-proxy's `Starting` event on the Node."""
    from shim.node.up import _alive
    assert _alive(ready_node.pids["kube-proxy"])
    netns = os.readlink(f"/proc/{ready_node.pids['kube-proxy']}/ns/net")
    assert netns == os.readlink(f"/proc/{ready_node.pids['kubelet']}/ns/net") != os.readlink("/proc/self/ns/net")

    def healthy():
        try:
            with urllib.request.urlopen(f"http://{ready_node.node_ip}:10256/healthz", timeout=5) as r:
                return r.status == 200 and json.loads(r.read())
        except OSError:
            return None
    body = _wait(healthy, 30, what="kube-proxy healthz 200")
    assert body["healthy"] is True and body["nodeEligible"] is True, body

    from kubernetes import client
    events = client.EventsV1Api(api_client)

    def started():
        # raw JSON: the Python client refuses events.k8s.io Events without eventTime (the
        # kubelet's, written through core/v1), which the API returns as upstream does (null)
        items = json.loads(events.list_namespaced_event("default", _preload_content=False).data)["items"]
        for e in items:
            if (e.get("reason") == "Starting" and e.get("reportingController") == "kube-proxy"
                    and e["regarding"].get("kind") == "Node" and e["regarding"].get("name") == ready_node.name):
                return e
        return None
    ev = _wait(started, 30, what="kube-proxy's Starting event")
    assert ev["action"] == "StartKubeProxy" and ev["type"] == "Normal" and ev["eventTime"], ev
    cfg = Path(ready_node.data_dir, "nodes", ready_node.name, "kube-proxy-config.yaml").read_text()
    assert "mode: iptables" in cfg and "clusterCIDR: 10.244.0.0/16" in cfg


def test_cluster_ip_to_pods_on_the_node_and_back_to_itself(ready_node, api_client, namespace, k):
    """A client pod reaches the Service's pod through the cluster IP (answers come back over
    the bridge: br_netfilter), and the Service's own pod reaches itself (hairpin)."""
    from kubernetes import client
    v1, disc = _core(api_client), client.DiscoveryV1Api(api_client)
    _wait_default_sa(v1, namespace)
    v1.create_namespaced_pod(namespace, _web_pod("web", ready_node.name, "web"))
    v1.create_namespaced_pod(namespace, _pod("client", ready_node.name, IDLE))
    svc = _service(v1, namespace, "web", "web")
    ip = svc.spec.cluster_ip
    _running(v1, namespace, ["web", "client"], ready_node)
    _wait(lambda: _ready_endpoints(disc, namespace, "web"), 30, what="a ready endpoint")
    # kube-proxy applies changes within its minSyncPeriod (1 s)
    rc, out = _wait(lambda: (r := _fetch_in_pod(k, namespace, "client", f"http://{ip}/"))[0] == 0 and r, 20,
                    what="wget through the cluster IP")
    assert out == "hello-from-web\n", out
    rc, out = _fetch_in_pod(k, namespace, "web", f"http://{ip}:80/")
    assert (rc, out) == (0, "hello-from-web\n"), "hairpin: the pod through its own Service"
    # the rules kube-proxy wrote for it, in the node's namespace
    nat = subprocess.run(["ip", "netns", "exec", ready_node.netns, "iptables-save", "-t", "nat"],
                         capture_output=True, text=True, check=True).stdout
    assert f"-d {ip}/32 -p tcp -m comment --comment \"{namespace}/web:www cluster IP\"" in nat, nat


def test_node_port_from_the_host_and_the_node(ready_node, api_client, namespace, k):
    from kubernetes import client
    v1, disc = _core(api_client), client.DiscoveryV1Api(api_client)
    _wait_default_sa(v1, namespace)
    v1.create_namespaced_pod(namespace, _web_pod("np", ready_node.name, "np"))
    svc = _service(v1, namespace, "np", "np", type_="NodePort")
    port = svc.spec.ports[0].node_port
    assert 30000 <= port <= 32767
    _running(v1, namespace, ["np"], ready_node)
    _wait(lambda: _ready_endpoints(disc, namespace, "np"), 30, what="a ready endpoint")
    url = f"http://{ready_node.node_ip}:{port}/"
    out = _wait(lambda: _try(lambda: _fetch_from_host(url)), 20, what=f"{url} from the host")
    assert out == "hello-from-np\n"
    assert _fetch_from_host(url, netns=ready_node.netns) == "hello-from-np\n"
    # the cluster IP is for pods and nodes: from the node's namespace too
    assert _fetch_from_host(f"http://{svc.spec.cluster_ip}/", netns=ready_node.netns) == "hello-from-np\n"


def _try(fn):
    try:
        return fn()
    except Exception:
        return None


def test_no_endpoints_rejects_until_they_come_back(ready_node, api_client, namespace, k):
    """Scaled to zero, the Service has no endpoints and kube-proxy REJECTs (refused at once,
    not a timeout); scaled back, it answers again."""
    from kubernetes import client
    v1, apps, disc = _core(api_client), client.AppsV1Api(api_client), client.DiscoveryV1Api(api_client)
    _wait_default_sa(v1, namespace)
    template = _web_pod("unused", ready_node.name, "scaled")
    template = {"metadata": {"labels": template["metadata"]["labels"]}, "spec": template["spec"]}
    apps.create_namespaced_deployment(namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "scaled"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "scaled"}}, "template": template}})
    v1.create_namespaced_pod(namespace, _pod("client", ready_node.name, IDLE))
    ip = _service(v1, namespace, "scaled", "scaled").spec.cluster_ip
    _running(v1, namespace, ["client"], ready_node)
    _wait(lambda: _ready_endpoints(disc, namespace, "scaled"), 90, what="a ready endpoint")
    url = f"http://{ip}/"
    rc, out = _wait(lambda: (r := _fetch_in_pod(k, namespace, "client", url))[0] == 0 and r, 20,
                    what="wget through the cluster IP")
    assert out.startswith("hello-from-scaled-"), out

    apps.patch_namespaced_deployment_scale("scaled", namespace, {"spec": {"replicas": 0}})
    # gone from the slice altogether (a terminating pod stays there, not ready, for a moment)
    _wait(lambda: not _all_endpoints(disc, namespace, "scaled"), 60, what="no endpoints")
    _wait(lambda: (r := _fetch_in_pod(k, namespace, "client", url))[0] != 0 and "Connection refused" in r[1],
          20, what="wget refused without endpoints")
    t0 = time.monotonic()
    rc, out = _fetch_in_pod(k, namespace, "client", url)
    assert rc != 0 and "Connection refused" in out, (rc, out)
    assert time.monotonic() - t0 < 5, "refused at once, not timed out"
    flt = subprocess.run(["ip", "netns", "exec", ready_node.netns, "iptables-save", "-t", "filter"],
                         capture_output=True, text=True, check=True).stdout
    assert any(f"-d {ip}/32" in line and "has no endpoints" in line and "-j REJECT" in line
               for line in flt.splitlines()), flt

    apps.patch_namespaced_deployment_scale("scaled", namespace, {"spec": {"replicas": 1}})
    _wait(lambda: _ready_endpoints(disc, namespace, "scaled"), 90, what="an endpoint again")
    rc, out = _wait(lambda: (r := _fetch_in_pod(k, namespace, "client", url))[0] == 0 and r, 20,
                    what="wget working again")
    assert out.startswith("hello-from-scaled-"), out


def test_pod_reads_the_api_through_the_kubernetes_service(ready_node, api_client, namespace, server):
    """A pod's in-cluster client: https://10.96.0.1 (DNAT to the advertised address), its
    service account token, the cluster CA from the service account volume."""
    from conftest import KUBECTL
    v1 = _core(api_client)
    _wait_default_sa(v1, namespace)
    script = (f"exec /kubectl --server=https://10.96.0.1:443 --certificate-authority={SA_DIR}/ca.crt "
              f"--token=\"$(cat {SA_DIR}/token)\" get --raw /api/v1/namespaces/default/services")
    body = _pod("incluster", ready_node.name, ["sh", "-c", script], restart="Never")
    body["spec"]["containers"][0]["volumeMounts"] = [{"name": "kubectl", "mountPath": "/kubectl",
                                                      "readOnly": True}]
    body["spec"]["volumes"] = [{"name": "kubectl", "hostPath": {"path": str(Path(KUBECTL).resolve()),
                                                                "type": "File"}}]
    v1.create_namespaced_pod(namespace, body)
    pod = _wait(lambda: (p := v1.read_namespaced_pod("incluster", namespace)).status.phase
                in ("Succeeded", "Failed") and p, 90, what="the in-cluster client to finish")
    out = v1.read_namespaced_pod_log("incluster", namespace)
    assert pod.status.phase == "Succeeded", out
    listed = json.loads(out)
    assert listed["kind"] == "ServiceList"
    assert "kubernetes" in {s["metadata"]["name"] for s in listed["items"]}
    # and the environment the kubelet gives every pod points there
    v1.create_namespaced_pod(namespace, _pod("env", ready_node.name, ["sh", "-c", "env; sleep 3600"]))
    _wait(lambda: "KUBERNETES_SERVICE_HOST=10.96.0.1" in (_try(lambda: v1.read_namespaced_pod_log("env", namespace))
                                                          or ""), 60, what="the kubernetes Service env")


def test_node_up_says_when_pods_cannot_reach_the_api_server(server, tmp_path):
    """Here the advertised address is served; a control plane on loopback only advertises one
    it does not serve, and `shim node up` says so (with what to do)."""
    from conftest import Server
    from shim.node.up import kubernetes_service_warnings
    assert kubernetes_service_warnings(server.kubeconfig) == []
    lo = Server(tmp_path / "loopback-cp", extra_args=["--no-scheduler"]).start()
    try:
        warnings = _wait(lambda: [w for w in kubernetes_service_warnings(lo.kubeconfig) if "answer" in w], 20,
                         what="a warning about the advertised address")
    finally:
        lo.stop()
    assert f"--listen 0.0.0.0:{lo.port}" in warnings[0] and "10.96.0.1:443" in warnings[0], warnings


def test_service_on_another_node_and_down_cleans_up(ready_node, server, api_client, namespace, k):
    """A pod on one node reaches a Service whose pod runs on a second node; `shim node down`
    stops that node's kube-proxy and runs `kube-proxy --cleanup` before the namespace goes."""
    from kubernetes import client
    from shim.node.up import _alive, node_down, node_up
    v1, disc = _core(api_client), client.DiscoveryV1Api(api_client)
    _wait_default_sa(v1, namespace)
    name = "n-" + os.urandom(3).hex()
    other = node_up(server.data_dir, name, log=lambda *a: None)
    try:
        _wait(lambda: (n := _get_node(v1, name)) is not None and _ready(n), 60, what=f"node {name} Ready")
        v1.create_namespaced_pod(namespace, _web_pod("far", name, "far"))
        v1.create_namespaced_pod(namespace, _pod("client", ready_node.name, IDLE))
        ip = _service(v1, namespace, "far", "far").spec.cluster_ip
        _running(v1, namespace, ["far"], other)
        _running(v1, namespace, ["client"], ready_node)
        _wait(lambda: _ready_endpoints(disc, namespace, "far"), 30, what="a ready endpoint")
        rc, out = _wait(lambda: (r := _fetch_in_pod(k, namespace, "client", f"http://{ip}/"))[0] == 0 and r,
                        20, what="wget across nodes")
        assert out == "hello-from-far\n"
        proxy_pid = other.pids["kube-proxy"]
        assert _alive(proxy_pid)
    finally:
        node_down(server.data_dir, name, log=lambda *a: None)
    assert not _alive(proxy_pid)
    log = _proxy_log(other)
    assert "--- shim node down: kube-proxy --cleanup" in log
    v1.delete_node(name)


def test_nftables_mode(ready_node, server, api_client, namespace, k):
    """kind's other mode, on a node of its own: cluster IP (from a pod on the node, from the
    Service's pod itself, from a pod on the iptables node), node port from the host; the
    rules are in kube-proxy's nftables tables, not in iptables chains."""
    from kubernetes import client
    from shim.node.up import node_down, node_up
    v1, disc = _core(api_client), client.DiscoveryV1Api(api_client)
    _wait_default_sa(v1, namespace)
    name = "n-" + os.urandom(3).hex()
    nft = node_up(server.data_dir, name, proxy_mode="nftables", log=lambda *a: None)
    try:
        _wait(lambda: (n := _get_node(v1, name)) is not None and _ready(n), 60, what=f"node {name} Ready")
        v1.create_namespaced_pod(namespace, _web_pod("nweb", name, "nweb"))
        v1.create_namespaced_pod(namespace, _pod("nclient", name, IDLE))
        v1.create_namespaced_pod(namespace, _pod("iclient", ready_node.name, IDLE))
        svc = _service(v1, namespace, "nweb", "nweb", type_="NodePort")
        ip, port = svc.spec.cluster_ip, svc.spec.ports[0].node_port
        _running(v1, namespace, ["nweb", "nclient"], nft)
        _running(v1, namespace, ["iclient"], ready_node)
        _wait(lambda: _ready_endpoints(disc, namespace, "nweb"), 30, what="a ready endpoint")
        for pod in ("nclient", "nweb", "iclient"):
            rc, out = _wait(lambda: (r := _fetch_in_pod(k, namespace, pod, f"http://{ip}/"))[0] == 0 and r, 20,
                            what=f"wget through the cluster IP from {pod}")
            assert out == "hello-from-nweb\n", (pod, out)
        assert _fetch_from_host(f"http://{nft.node_ip}:{port}/") == "hello-from-nweb\n"
        table = subprocess.run(["ip", "netns", "exec", nft.netns, "nft", "list", "table", "ip", "kube-proxy"],
                               capture_output=True, text=True, check=True).stdout
        assert f"{ip} . tcp . 80 : goto service-" in table, table
        nat = subprocess.run(["ip", "netns", "exec", nft.netns, "iptables-save", "-t", "nat"],
                             capture_output=True, text=True, check=True).stdout
        assert "KUBE-SERVICES" not in nat
        # nft 1.0.6 (Debian 12) words "no such table" in a way kube-proxy does not recognise:
        # one error per IP family on its first sync, before it has made its tables
        errors = [line for line in _proxy_log(nft).splitlines() if line.startswith(("E", "F"))
                  and "Failed to list existing sets" not in line]
        assert not errors, "\n".join(errors[:20])
    finally:
        node_down(server.data_dir, name, log=lambda *a: None)
    v1.delete_node(name)


def test_kube_proxy_log_is_clean(ready_node):
    """After all of the above: no error lines and no failed API calls in kube-proxy's log."""
    errors = [line for line in _proxy_log(ready_node).splitlines()
              if line.startswith(("E", "F")) or "Failed to watch" in line or "failed to list" in line]
    assert not errors, "\n".join(errors[:20])
