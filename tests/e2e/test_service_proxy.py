"""services/proxy through a real `shim up`, with kubectl and the official Python client.

No node here: the "pod" is an HTTP server of this test on the host's own address (an
endpoint may not be loopback), made a pod's address by writing the pod's status as a
kubelet would, and the Service is selectorless with an
EndpointSlice of our own (how a user points a Service at endpoints they manage). The proxy
must pick only ready endpoints that really are pods of the namespace, map a port number to
the Service port's name, and answer upstream's 503s when there is nowhere to go.
"""
from __future__ import annotations

import http.server
import json
import threading

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.timeout(120)


class _Echo(http.server.BaseHTTPRequestHandler):
    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        out = json.dumps({"method": self.command, "path": self.path, "body": body.decode(),
                          "server": self.server.tag}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def host_ip() -> str:
    from shim.kubernetesservice import primary_host_address
    ip = primary_host_address()
    assert ip, "this host has no address besides loopback"
    return ip


@pytest.fixture
def echo(host_ip):
    """Two HTTP servers on the host's address (two 'pods' behind one Service)."""
    servers = []
    for tag in ("a", "b"):
        s = http.server.ThreadingHTTPServer((host_ip, 0), _Echo)
        s.tag = tag
        threading.Thread(target=s.serve_forever, daemon=True).start()
        servers.append(s)
    yield servers
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture
def core(api_client) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


def _pod(core, ns: str, name: str, ip: str) -> dict:
    """A pod whose status says it has `ip` (as its kubelet would report)."""
    core.create_namespaced_pod(ns, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                                    "spec": {"containers": [{"name": "c", "image": "busybox:local"}]}})
    pod = core.patch_namespaced_pod_status(name, ns, {"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}})
    return pod


def _service(core, ns: str, name: str, ports: list[dict]) -> None:
    core.create_namespaced_service(ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                                        "spec": {"ports": ports}})


def _slice(api_client, ns: str, service: str, ports: list[dict], endpoints: list[dict], name: str = "") -> None:
    client.DiscoveryV1Api(api_client).create_namespaced_endpoint_slice(ns, {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name or f"{service}-mine", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4", "ports": ports, "endpoints": endpoints})


def _ep(pod, ip: str, ready: bool = True) -> dict:
    return {"addresses": [ip], "conditions": {"ready": ready},
            "targetRef": {"kind": "Pod", "namespace": pod.metadata.namespace, "name": pod.metadata.name,
                          "uid": pod.metadata.uid}}


def test_proxy_by_port_name_and_number(kubectl, api_client, core, namespace, echo, host_ip):
    a = _pod(core, namespace, "a", host_ip)
    _service(core, namespace, "web", [{"name": "http", "port": 80}, {"name": "other", "port": 81}])
    _slice(api_client, namespace, "web", [{"name": "http", "port": echo[0].server_port, "protocol": "TCP"},
                                          {"name": "other", "port": 1, "protocol": "TCP"}],
           [_ep(a, host_ip)])
    base = f"/api/v1/namespaces/{namespace}/services"
    got = json.loads(kubectl("get", "--raw", f"{base}/web:http/proxy/some/path?x=1&y=two"))
    assert got == {"method": "GET", "path": "/some/path?x=1&y=two", "body": "", "server": "a"}
    # a port number is the Service's port, looked up by its name
    got = json.loads(kubectl("get", "--raw", f"{base}/web:80/proxy/"))
    assert got["path"] == "/" and got["server"] == "a"
    got = json.loads(kubectl("get", "--raw", f"{base}/http:web:80/proxy/x/"))
    assert got["path"] == "/x/"          # a trailing slash is kept
    # the Python client's proxy verbs (POST carries its body)
    out = client.CoreV1Api(api_client).connect_post_namespaced_service_proxy_with_path(
        "web:http", namespace, "submit", _preload_content=False)
    got = json.loads(out.data)
    assert (got["method"], got["path"]) == ("POST", "/submit")


def test_only_ready_pod_endpoints_are_used(kubectl, api_client, core, namespace, echo, host_ip):
    a = _pod(core, namespace, "a", host_ip)
    b = _pod(core, namespace, "b", "10.255.255.1")   # its address is not the endpoint's
    _service(core, namespace, "web", [{"port": 80}])
    port = [{"name": "", "port": echo[0].server_port, "protocol": "TCP"}]
    _slice(api_client, namespace, "web", port, [_ep(a, host_ip, ready=False), _ep(b, host_ip)])
    path = f"/api/v1/namespaces/{namespace}/services/web/proxy/"
    r = kubectl.run("get", "--raw", path, check=False)
    assert r.returncode != 0
    assert 'no endpoints available for service \\"web\\"' in r.stderr or \
        'no endpoints available for service "web"' in r.stderr, r.stderr
    # once a's endpoint is ready, every request goes to it
    sl = client.DiscoveryV1Api(api_client)
    sl.patch_namespaced_endpoint_slice("web-mine", namespace, {"endpoints": [_ep(a, host_ip), _ep(b, host_ip)]})
    for _ in range(5):
        assert json.loads(kubectl("get", "--raw", path))["server"] == "a"


def test_spread_over_slices(kubectl, api_client, core, namespace, echo, host_ip):
    a = _pod(core, namespace, "a", host_ip)
    _service(core, namespace, "web", [{"name": "http", "port": 80}])
    for i, s in enumerate(echo):
        _slice(api_client, namespace, "web", [{"name": "http", "port": s.server_port, "protocol": "TCP"}],
               [_ep(a, host_ip)], name=f"web-{i}")
    seen = {json.loads(kubectl("get", "--raw", f"/api/v1/namespaces/{namespace}/services/web:http/proxy/"))["server"]
            for _ in range(24)}
    assert seen == {"a", "b"}


def test_errors(api_client, core, namespace):
    v1 = client.CoreV1Api(api_client)
    _service(core, namespace, "lonely", [{"name": "http", "port": 80}])

    def status(fn, *args):
        with pytest.raises(ApiException) as info:
            fn(*args)
        body = json.loads(info.value.body)
        return info.value.status, body.get("reason"), body.get("message")

    assert status(v1.connect_get_namespaced_service_proxy, "lonely", namespace) == \
        (503, "ServiceUnavailable", 'no endpoints available for service "lonely"')
    assert status(v1.connect_get_namespaced_service_proxy, "lonely:81", namespace) == \
        (503, "ServiceUnavailable", 'no service port 81 found for service "lonely"')
    # a port number needs the Service; a name does not (upstream answers 503 either way)
    code, reason, _ = status(v1.connect_get_namespaced_service_proxy, "missing:80", namespace)
    assert (code, reason) == (404, "NotFound")
    assert status(v1.connect_get_namespaced_service_proxy, "missing", namespace)[0] == 503
    code, reason, msg = status(v1.connect_get_namespaced_service_proxy, "a:b:c:d", namespace)
    assert (code, reason, msg) == (400, "BadRequest", 'invalid service request "a:b:c:d"')
