"""Cluster DNS on real nodes: CoreDNS (built by `shim node install` from its Go module at
the version kubeadm v1.37 deploys), deployed by `shim node up` the way kubeadm's CoreDNS
addon is, answering on 10.96.0.10 (the kubelet's clusterDNS) through kube-proxy.

The control plane listens on 0.0.0.0, as in test_kube_proxy.py: CoreDNS's kubernetes
plugin reaches the API server through the `kubernetes` Service (10.96.0.1:443) with its
service account, the in-cluster config. Pods are busybox (`nslookup`, `wget`).
Same prerequisites as test_node.py (root, `shim node install`).
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from node.test_kube_proxy import (IDLE, _fetch_in_pod, _ready_endpoints, _running,  # noqa: F401
                                  _service, _web_pod, k)
from node.test_node import (_core, _get_node, _node_log_tail, _pod, _ready, _wait,  # noqa: F401
                            _wait_default_sa, node, node_prereqs, ready_node)

pytestmark = [pytest.mark.node, pytest.mark.timeout(2400)]

DNS_IP = "10.96.0.10"


@pytest.fixture(scope="module")
def server(tmp_path_factory, node_prereqs):
    """A control plane of this module's own, serving on every address, so that pods (CoreDNS
    among them) reach it through the `kubernetes` Service."""
    from conftest import Server, free_port
    port = free_port()
    s = Server(tmp_path_factory.mktemp("dns-cp"), port=port,
               extra_args=["--listen", f"0.0.0.0:{port}"]).start()
    yield s
    s.stop()


def _coredns_pods(v1):
    return v1.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns").items


def _pod_ready(p) -> bool:
    return p.status.phase == "Running" and any(
        c.type == "Ready" and c.status == "True" for c in p.status.conditions or ())


@pytest.fixture
def dns_ready(ready_node, api_client):
    """Both CoreDNS replicas Ready (their /ready on 8181 answers once the kubernetes plugin
    has synced its Services, EndpointSlices and Namespaces) and kube-dns has endpoints."""
    from kubernetes import client
    v1, disc = _core(api_client), client.DiscoveryV1Api(api_client)

    def ready():
        pods = _coredns_pods(v1)
        return len(pods) == 2 and all(_pod_ready(p) for p in pods) and pods
    try:
        pods = _wait(ready, 180, interval=1, what="2 coredns pods Ready")
    except AssertionError as e:
        statuses = [(p.metadata.name, p.status.phase, p.status.container_statuses)
                    for p in _coredns_pods(v1)]
        raise AssertionError(f"{e}\n{statuses}\nkubelet log:\n{_node_log_tail(ready_node)}") from None
    _wait(lambda: len(_ready_endpoints(disc, "kube-system", "kube-dns")) == 2, 30,
          what="kube-dns endpoints")
    return pods


def _exec(k, ns: str, pod: str, script: str) -> tuple[int, str]:
    p = k.run("exec", "-n", ns, pod, "--", "sh", "-c", script, check=False, timeout=60)
    return p.returncode, p.stdout + p.stderr


def _addresses(out: str, name: str) -> set[str]:
    """The A records busybox nslookup prints for `name` (after the server's own lines)."""
    _, _, answer = out.partition(f"Name:\t{name}")
    if not answer:
        _, _, answer = out.partition(f"Name: {name}")
    return set(re.findall(r"Address(?: \d+)?:\s*(\d+\.\d+\.\d+\.\d+)\s*$", answer, re.M))


def _client(v1, ns: str, node: str, name: str = "client") -> None:
    _wait_default_sa(v1, ns)
    v1.create_namespaced_pod(ns, _pod(name, node, IDLE))


# ---------------------------------------------------------------------------------------------


def test_addon_objects_are_kubeadms(ready_node, api_client):
    """`shim node up` created what kubeadm's CoreDNS addon creates."""
    from kubernetes import client
    v1, apps = _core(api_client), client.AppsV1Api(api_client)
    cm = v1.read_namespaced_config_map("coredns", "kube-system")
    corefile = cm.data["Corefile"]
    for line in ("errors", "health {", "lameduck 5s", "ready",
                 "kubernetes cluster.local in-addr.arpa ip6.arpa {", "pods insecure",
                 "fallthrough in-addr.arpa ip6.arpa", "prometheus :9153", "forward . /etc/resolv.conf {",
                 "cache 30 {", "loop", "reload", "loadbalance"):
        assert any(l.strip() == line for l in corefile.splitlines()), (line, corefile)
    v1.read_namespaced_service_account("coredns", "kube-system")
    svc = v1.read_namespaced_service("kube-dns", "kube-system")
    assert svc.spec.cluster_ip == DNS_IP
    assert svc.metadata.labels["k8s-app"] == "kube-dns"
    assert [(p.name, p.port, p.protocol) for p in svc.spec.ports] == [
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]
    dep = apps.read_namespaced_deployment("coredns", "kube-system")
    assert dep.spec.replicas == 2
    tpl = dep.spec.template.spec
    c = tpl.containers[0]
    assert c.image == "registry.k8s.io/coredns/coredns:v1.14.6"
    assert c.readiness_probe.http_get.path == "/ready" and c.readiness_probe.http_get.port == "readiness-probe"
    assert c.liveness_probe.http_get.path == "/health" and c.liveness_probe.http_get.port == "liveness-probe"
    assert c.security_context.capabilities.add == ["NET_BIND_SERVICE"]
    assert c.security_context.capabilities.drop == ["ALL"]
    assert c.security_context.read_only_root_filesystem is True
    assert tpl.dns_policy == "Default" and tpl.service_account_name == "coredns"
    assert tpl.priority_class_name == "system-cluster-critical"
    # RBAC names are path segments (upstream's ValidateRBACName): `system:` names are valid,
    # a `/` is not
    rbac = client.RbacAuthorizationV1Api(api_client)
    assert rbac.read_cluster_role_binding("system:coredns").role_ref.name == "system:coredns"
    assert "endpointslices" in rbac.read_cluster_role("system:coredns").rules[1].resources
    from kubernetes.client.rest import ApiException
    with pytest.raises(ApiException) as e:
        rbac.create_cluster_role({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                                  "metadata": {"name": "bad/name"}, "rules": []})
    assert e.value.status == 422 and "may not contain '/'" in e.value.body, e.value.body


def test_coredns_pods_become_ready(dns_ready, ready_node):
    for p in dns_ready:
        assert p.spec.node_name == ready_node.name
        assert p.spec.priority == 2000000000
        assert p.status.container_statuses[0].restart_count == 0
    # dnsPolicy Default: the node's resolv.conf (the host's nameservers), not 10.96.0.10, so
    # `forward . /etc/resolv.conf` does not send CoreDNS's misses back to itself (`loop`)
    resolv = Path(ready_node.data_dir, "nodes", ready_node.name, "resolv.conf").read_text()
    assert resolv == f"nameserver {ready_node.host_ip}\n", resolv


def test_names_outside_the_cluster_go_upstream(dns_ready, ready_node, api_client, namespace, k):
    """`forward . /etc/resolv.conf`: CoreDNS -> the node's forwarder on 10.200.<i>.1:53 -> the
    host's nameserver. A name under `.invalid` gets the upstream's NXDOMAIN (not a timeout),
    over UDP and over TCP (the forwarder relays both)."""
    v1 = _core(api_client)
    _client(v1, namespace, ready_node.name)
    _running(v1, namespace, ["client"], ready_node)
    rc, out = _exec(k, namespace, "client", f"nslookup no-such-name.invalid {DNS_IP}")
    assert "NXDOMAIN" in out and "timed out" not in out, out
    p = subprocess.run(["ip", "netns", "exec", ready_node.netns, "busybox", "nslookup", "no-such-name.invalid",
                        ready_node.host_ip], capture_output=True, text=True, timeout=30)
    assert "NXDOMAIN" in p.stdout + p.stderr, (p.stdout, p.stderr)


def test_nslookup_kubernetes_service(dns_ready, ready_node, api_client, namespace, k):
    v1 = _core(api_client)
    _client(v1, namespace, ready_node.name)
    _running(v1, namespace, ["client"], ready_node)
    name = "kubernetes.default.svc.cluster.local"
    rc, out = _wait(lambda: (r := _exec(k, namespace, "client", f"nslookup {name} {DNS_IP}"))
                    and "10.96.0.1" in r[1] and r, 30, what="nslookup of the kubernetes Service")
    assert f"Server:\t\t{DNS_IP}" in out or f"Server:    {DNS_IP}" in out or DNS_IP in out, out
    assert _addresses(out, name) == {"10.96.0.1"}, out
    # an unknown name in the cluster domain: NXDOMAIN from the kubernetes plugin
    rc, out = _exec(k, namespace, "client", f"nslookup nothing-here.default.svc.cluster.local {DNS_IP}")
    assert "NXDOMAIN" in out, out


def test_pod_resolv_conf_and_short_names(dns_ready, ready_node, api_client, namespace, k):
    """The kubelet's resolv.conf for ClusterFirst pods; a Service's short name resolves to its
    cluster IP through the search path, and `wget http://<name>/` goes through kube-proxy."""
    from kubernetes import client
    v1, disc = _core(api_client), client.DiscoveryV1Api(api_client)
    _wait_default_sa(v1, namespace)
    v1.create_namespaced_pod(namespace, _web_pod("web", ready_node.name, "web"))
    _client(v1, namespace, ready_node.name)
    svc = _service(v1, namespace, "web", "web")
    _running(v1, namespace, ["web", "client"], ready_node)
    _wait(lambda: _ready_endpoints(disc, namespace, "web"), 30, what="a ready endpoint")
    rc, resolv = _exec(k, namespace, "client", "cat /etc/resolv.conf")
    assert rc == 0, resolv
    lines = resolv.splitlines()
    assert f"nameserver {DNS_IP}" in lines, resolv
    assert f"search {namespace}.svc.cluster.local svc.cluster.local cluster.local" in lines, resolv
    assert "options ndots:5" in lines, resolv
    # nslookup with the pod's resolv.conf (its nameserver and search path)
    rc, out = _wait(lambda: (r := _exec(k, namespace, "client", "nslookup web")) and
                    svc.spec.cluster_ip in r[1] and r, 30, what="nslookup web")
    assert _addresses(out, f"web.{namespace}.svc.cluster.local") == {svc.spec.cluster_ip}, out
    # end to end: the C library's resolver (search path, ndots) then kube-proxy
    rc, out = _wait(lambda: (r := _fetch_in_pod(k, namespace, "client", "http://web/"))[0] == 0 and r, 30,
                    what="wget http://web/")
    assert out == "hello-from-web\n", out
    # busybox's nslookup applies the search path to dot-less names only; the C library's
    # resolver (ndots:5) to `web.<ns>` too
    for url in (f"http://web.{namespace}/", f"http://web.{namespace}.svc/",
                f"http://web.{namespace}.svc.cluster.local/"):
        assert _fetch_in_pod(k, namespace, "client", url) == (0, "hello-from-web\n"), url
    # a pod's own A record (`pods insecure`): dashed IP under <ns>.pod.cluster.local
    web_ip = v1.read_namespaced_pod("web", namespace).status.pod_ip
    dashed = f"{web_ip.replace('.', '-')}.{namespace}.pod.cluster.local"
    rc, out = _exec(k, namespace, "client", f"nslookup {dashed}")
    assert _addresses(out, dashed) == {web_ip}, out


def test_headless_service_resolves_to_pod_ips(dns_ready, ready_node, api_client, namespace, k):
    from kubernetes import client
    v1, disc = _core(api_client), client.DiscoveryV1Api(api_client)
    _wait_default_sa(v1, namespace)
    for n in ("web-a", "web-b"):
        v1.create_namespaced_pod(namespace, _web_pod(n, ready_node.name, "web"))
    _client(v1, namespace, ready_node.name)
    v1.create_namespaced_service(namespace, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-headless"},
        "spec": {"clusterIP": "None", "selector": {"app": "web"},
                 "ports": [{"name": "www", "port": 8080, "targetPort": "http"}]}})
    _running(v1, namespace, ["web-a", "web-b", "client"], ready_node)
    ips = {v1.read_namespaced_pod(n, namespace).status.pod_ip for n in ("web-a", "web-b")}
    _wait(lambda: _ready_endpoints(disc, namespace, "web-headless") == ips, 30, what="both endpoints")
    fqdn = f"web-headless.{namespace}.svc.cluster.local"
    rc, out = _wait(lambda: (r := _exec(k, namespace, "client", f"nslookup {fqdn}")) and
                    _addresses(r[1], fqdn) == ips and r, 30, what="the headless Service's pod IPs")
    # and a name served by the answer reaches a pod directly
    rc, out = _fetch_in_pod(k, namespace, "client", "http://web-headless:8080/")
    assert rc == 0 and out.startswith("hello-from-web-"), out


def test_a_service_created_later_resolves_and_deleted_goes(dns_ready, ready_node, api_client, namespace, k):
    """CoreDNS watches: a Service made after it started resolves, and stops once deleted."""
    v1 = _core(api_client)
    _client(v1, namespace, ready_node.name)
    _running(v1, namespace, ["client"], ready_node)
    svc = _service(v1, namespace, "late", "nothing")
    fqdn = f"late.{namespace}.svc.cluster.local"
    _wait(lambda: _addresses(_exec(k, namespace, "client", f"nslookup {fqdn} {DNS_IP}")[1], fqdn)
          == {svc.spec.cluster_ip}, 30, what="the new Service in DNS")
    v1.delete_namespaced_service("late", namespace)
    _wait(lambda: "NXDOMAIN" in _exec(k, namespace, "client", f"nslookup {fqdn} {DNS_IP}")[1], 30,
          what="the deleted Service gone from DNS")


def test_addon_is_created_once_and_left_alone(dns_ready, server, api_client):
    """A later `node up` creates nothing and keeps a user's changes (here: the Corefile)."""
    from shim.node.coredns import ensure_addon
    v1 = _core(api_client)
    cm = v1.read_namespaced_config_map("coredns", "kube-system")
    v1.patch_namespaced_config_map("coredns", "kube-system",
                                   {"metadata": {"annotations": {"test": "edited"}}})
    assert ensure_addon(server.data_dir / "admin.kubeconfig", log=lambda *a: None) == []
    after = v1.read_namespaced_config_map("coredns", "kube-system")
    assert after.metadata.annotations.get("test") == "edited"
    assert after.data == cm.data


def test_coredns_log_is_clean(dns_ready, ready_node, api_client):
    """After all of the above: each CoreDNS logged its start and no error, warning or failed
    list/watch (the kubernetes plugin's Services, EndpointSlices, Namespaces, Pods); nor did
    kube-proxy, which carried the UDP and TCP traffic to kube-dns."""
    v1 = _core(api_client)
    for p in _coredns_pods(v1):
        log = v1.read_namespaced_pod_log(p.metadata.name, "kube-system")
        assert "CoreDNS-1.14.6" in log, log
        bad = [line for line in log.splitlines()
               if "[ERROR]" in line or "[WARNING]" in line or "[FATAL]" in line
               or "Failed to watch" in line or "failed to list" in line]
        assert not bad, log
        assert p.status.container_statuses[0].restart_count == 0, log
    proxy_log = Path(ready_node.logs["kube-proxy"]).read_text(errors="replace")
    errors = [line for line in proxy_log.splitlines()
              if line.startswith(("E", "F")) or "Failed to watch" in line or "failed to list" in line]
    assert not errors, "\n".join(errors[:20])
