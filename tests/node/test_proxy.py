"""logs, exec, attach, cp, port-forward and proxy through the API server to a real kubelet.

Real kubectl and the Python client against the shim, a real node (upstream kubelet v1.37 on
containerd) behind it. Same prerequisites as test_node.py (root, `shim node install`).
"""
from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request

import pytest

from node.test_node import (_core, _get_node, _node_log_tail, _pod, _ready, _wait,  # noqa: F401
                            _wait_default_sa,
                            node, node_prereqs, ready_node, server)

pytestmark = [pytest.mark.node, pytest.mark.timeout(2400)]

TICKER = ["sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.5; done"]
WEB = ["sh", "-c", "mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 8080 -h /www"]
READER = ["sh", "-c", "while read l; do echo got $l; done"]
# runs once, fails; every later run stays up: `--previous` then has the first run's output
RESTARTS_ONCE = ["sh", "-c", "if [ -f /data/ran ]; then echo second-run; exec sleep 3600; fi; "
                             "touch /data/ran; echo first-run; exit 1"]


@pytest.fixture(scope="module")
def pods(node, server):
    """A namespace with the pods these tests talk to, all Running."""
    from kubernetes import client, config
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(server.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        v1 = _core(api)
        ready_node = node
        _wait(lambda: (n := _get_node(v1, node.name)) is not None and _ready(n), 60,
              what=f"node {node.name} Ready")
        ns = "proxy-" + os.urandom(2).hex()
        v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        _wait_default_sa(v1, ns)
        name = ready_node.name
        bodies = [_pod("ticker", name, TICKER), _pod("web", name, WEB), _pod("reader", name, READER)]
        bodies[1]["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8080}]
        bodies[1]["metadata"]["labels"] = {"app": "web"}
        bodies[2]["spec"]["containers"][0]["stdin"] = True
        two = _pod("two", name, ["sh", "-c", "echo from-a; exec sleep 3600"])
        two["spec"]["containers"].append({"name": "b", "image": "busybox:local",
                                          "command": ["sh", "-c", "echo from-b; exec sleep 3600"]})
        two["spec"]["containers"][0]["name"] = "a"
        restarts = _pod("restarts", name, RESTARTS_ONCE)
        restarts["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
        restarts["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
        for b in bodies + [two, restarts]:
            v1.create_namespaced_pod(ns, b)

        def all_running():
            ps = [p for p in v1.list_namespaced_pod(ns).items if p.metadata.name != "restarts"]
            return len(ps) == 4 and all(p.status.phase == "Running" and p.status.container_statuses and all(
                c.ready for c in p.status.container_statuses) for p in ps)
        try:
            _wait(all_running, 90, what="proxy test pods Running")
        except AssertionError as e:
            raise AssertionError(f"{e}\nkubelet log:\n{_node_log_tail(ready_node)}") from None
        yield ns
        try:
            v1.delete_namespace(ns)
        except Exception:
            pass


def _kubectl(server, tmp_path_factory):
    from conftest import Kubectl
    cache = tmp_path_factory.mktemp("kube") / "cache"
    cache.mkdir(parents=True)
    return Kubectl(server.kubeconfig, cache)


@pytest.fixture
def k(server, tmp_path_factory):
    return _kubectl(server, tmp_path_factory)


SPDY = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}


# -- logs ---------------------------------------------------------------------------------------

def test_logs_tail_timestamps_limit(k, pods):
    _wait(lambda: k("logs", "-n", pods, "ticker").count("\n") >= 3, 10, what="three lines")
    out = k("logs", "-n", pods, "ticker")
    assert out.startswith("line 0\nline 1\nline 2\n"), out
    tail = k("logs", "-n", pods, "ticker", "--tail=2").splitlines()
    assert len(tail) == 2 and all(l.startswith("line ") for l in tail), tail
    ts = k("logs", "-n", pods, "ticker", "--tail=1", "--timestamps").strip()
    assert ts.split(" ", 1)[1].startswith("line ") and "T" in ts.split(" ", 1)[0], ts
    assert k("logs", "-n", pods, "ticker", "--limit-bytes=4") == "line"
    since = k("logs", "-n", pods, "ticker", "--since=1s").splitlines()
    assert 0 < len(since) <= 6, since


def test_logs_follow_streams(k, pods):
    p = k.popen("logs", "-n", pods, "ticker", "-f", "--tail=1")
    try:
        seen, deadline = [], time.monotonic() + 10
        while len(seen) < 4 and time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            seen.append(line.strip())
        assert len(seen) >= 4, (seen, p.poll())
        nums = [int(s.split()[1]) for s in seen]
        assert nums == sorted(nums) and nums[-1] - nums[0] >= 3, nums
        assert p.poll() is None   # still following
    finally:
        p.kill()
        p.wait()


def test_logs_previous_after_restart(k, pods, api_client):
    v1 = _core(api_client)
    _wait(lambda: v1.read_namespaced_pod("restarts", pods).status.container_statuses[0].restart_count >= 1,
          60, what="a restart")
    assert k("logs", "-n", pods, "restarts", "--previous").strip() == "first-run"
    _wait(lambda: k("logs", "-n", pods, "restarts").strip() == "second-run", 30, what="current log")
    p = k.run("logs", "-n", pods, "ticker", "--previous", check=False)
    assert p.returncode == 1
    assert 'previous terminated container "main" in pod "ticker" not found' in p.stderr, p.stderr


def test_logs_container_selection_and_errors(k, pods, api_client, ready_node):
    assert k("logs", "-n", pods, "two", "-c", "b").strip() == "from-b"
    p = k.run("get", "--raw", f"/api/v1/namespaces/{pods}/pods/two/log", check=False)
    assert "a container name must be specified for pod two, choose one of: [a b]" in p.stderr, p.stderr
    p = k.run("logs", "-n", pods, "two", "-c", "zz", check=False)
    assert "container zz is not valid for pod two" in p.stderr, p.stderr
    p = k.run("get", "--raw", f"/api/v1/namespaces/{pods}/pods/ticker/log?tailLines=-1", check=False)
    assert 'PodLogOptions "ticker" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0' \
        in p.stderr, p.stderr
    p = k.run("logs", "-n", pods, "nosuch", check=False)
    assert 'pods "nosuch" not found' in p.stderr, p.stderr


def test_logs_and_exec_of_a_pod_not_running(k, pods, api_client, ready_node):
    v1 = _core(api_client)
    v1.create_namespaced_pod(pods, _pod("noimage", ready_node.name, ["true"], image="absent.invalid/x:1"))
    unbound = _pod("unbound", "", ["true"])
    del unbound["spec"]["nodeName"]
    unbound["spec"]["schedulerName"] = "nobody"
    v1.create_namespaced_pod(pods, unbound)
    _wait(lambda: v1.read_namespaced_pod("noimage", pods).status.container_statuses, 30,
          what="noimage container status")
    p = k.run("logs", "-n", pods, "noimage", check=False)
    assert p.returncode == 1
    assert 'container "main" in pod "noimage" is waiting to start:' in p.stderr, p.stderr
    p = k.run("exec", "-n", pods, "noimage", "--", "true", check=False)
    # the kubelet's answer, passed through as upstream does
    assert p.returncode == 1 and 'unable to upgrade connection: container not found ("main")' in p.stderr, \
        p.stderr
    # a pod without a node: no logs yet, and nowhere to exec
    assert k("logs", "-n", pods, "unbound") == ""
    p = k.run("exec", "-n", pods, "unbound", "--", "true", check=False)
    assert "pod unbound does not have a host assigned" in p.stderr, p.stderr


# -- exec / attach / cp ----------------------------------------------------------------------------

@pytest.mark.parametrize("env", [None, SPDY], ids=["websocket", "spdy"])
def test_exec_non_interactive_exit_code(k, pods, env):
    p = k.run("exec", "-n", pods, "ticker", "--", "sh", "-c", "echo out; echo err >&2; exit 3",
              check=False, env=env)
    assert p.returncode == 3, (p.returncode, p.stderr)
    assert p.stdout == "out\n"
    assert "err\n" in p.stderr and "command terminated with exit code 3" in p.stderr, p.stderr
    assert k("exec", "-n", pods, "ticker", "--", "echo", "a b", env=env) == "a b\n"


@pytest.mark.parametrize("env", [None, SPDY], ids=["websocket", "spdy"])
def test_exec_interactive_stdin(k, pods, env):
    data = "".join(f"row {i}\n" for i in range(2000))   # more than one frame
    out = k("exec", "-i", "-n", pods, "ticker", "--", "sh", "-c", "wc -l; echo done", input=data, env=env)
    assert out.split() == ["2000", "done"], out
    out = k("exec", "-i", "-n", pods, "ticker", "--", "cat", input="hello\nworld\n", env=env)
    assert out == "hello\nworld\n"


def test_exec_upgrade_required(k, pods):
    p = k.run("get", "--raw", f"/api/v1/namespaces/{pods}/pods/ticker/exec?command=true", check=False)
    assert "Upgrade request required" in p.stderr, p.stderr


def test_attach(k, pods):
    p = subprocess.Popen(
        [*_kubectl_cmd(k), "attach", "-i", "-n", pods, "reader"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, HOME=str(k.cache_dir.parent)))
    try:
        time.sleep(1.5)
        p.stdin.write("one\n")
        p.stdin.flush()
        seen = p.stdout.readline()
        assert seen == "got one\n", (seen, p.poll())
        p.stdin.write("two\n")
        p.stdin.flush()
        assert p.stdout.readline() == "got two\n"
    finally:
        p.kill()
        p.wait()
    # attach without stdin shows what the container prints
    p = k.popen("attach", "-n", pods, "ticker")
    try:
        line = p.stdout.readline()
        assert line.startswith("line "), line
    finally:
        p.kill()
        p.wait()


def _kubectl_cmd(k):
    from conftest import KUBECTL
    return [KUBECTL, "--kubeconfig", str(k.kubeconfig), "--cache-dir", str(k.cache_dir)]


@pytest.mark.parametrize("env", [None, SPDY], ids=["websocket", "spdy"])
def test_cp_both_ways(k, pods, tmp_path, env):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.txt").write_text("alpha\n")
    (src / "big.bin").write_bytes(os.urandom(300_000))
    dest = "/tmp/copied-" + os.urandom(3).hex()
    k("cp", str(src), f"{pods}/ticker:{dest}", env=env)
    assert k("exec", "-n", pods, "ticker", "--", "cat", f"{dest}/a.txt") == "alpha\n"
    back = tmp_path / "back"
    k("cp", f"{pods}/ticker:{dest}", str(back), env=env)
    assert (back / "a.txt").read_text() == "alpha\n"
    assert (back / "big.bin").read_bytes() == (src / "big.bin").read_bytes()


# -- port-forward ----------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("env", [None, {"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}],
                         ids=["websocket-tunnel", "spdy"])
def test_port_forward_to_http_server(k, pods, env):
    port = _free_port()
    p = subprocess.Popen([*_kubectl_cmd(k), "port-forward", "-n", pods, "pod/web", f"{port}:8080"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, HOME=str(k.cache_dir.parent), **(env or {})))
    try:
        line = p.stdout.readline()
        assert "Forwarding from" in line, (line, p.poll(), p.poll() is not None and p.stderr.read())
        for _ in range(3):   # several connections over the one tunnel
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as r:
                assert r.read() == b"hello-from-pod\n"
    finally:
        p.kill()
        p.wait()


# -- Python client ---------------------------------------------------------------------------------

def test_python_client_stream_exec(api_client, pods):
    from kubernetes.stream import stream
    v1 = _core(api_client)
    out = stream(v1.connect_get_namespaced_pod_exec, "ticker", pods, command=["sh", "-c", "echo out"],
                 stderr=True, stdin=False, stdout=True, tty=False)
    assert out == "out\n"
    resp = stream(v1.connect_get_namespaced_pod_exec, "ticker", pods, command=["sh", "-c", "cat; exit 7"],
                  stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
    try:
        resp.write_stdin("abc\n")
        got = ""
        deadline = time.monotonic() + 10
        while "abc" not in got and time.monotonic() < deadline:
            resp.update(timeout=1)
            got += resp.read_stdout(timeout=0.1) or ""
        assert got == "abc\n", got
    finally:
        resp.close()
    resp = stream(v1.connect_get_namespaced_pod_exec, "ticker", pods, command=["sh", "-c", "exit 7"],
                  stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=10)
    assert resp.returncode == 7


# -- proxy -----------------------------------------------------------------------------------------

def test_pod_and_node_proxy(k, pods, ready_node):
    assert k("get", "--raw", f"/api/v1/namespaces/{pods}/pods/web/proxy/index.html") == "hello-from-pod\n"
    assert k("get", "--raw", f"/api/v1/namespaces/{pods}/pods/web:8080/proxy/") == "hello-from-pod\n"
    assert k("get", "--raw", f"/api/v1/nodes/{ready_node.name}/proxy/healthz") == "ok"
    import json
    summary = json.loads(k("get", "--raw", f"/api/v1/nodes/{ready_node.name}/proxy/stats/summary"))
    assert summary["node"]["nodeName"] == ready_node.name
    pods_on_node = json.loads(k("get", "--raw", f"/api/v1/nodes/{ready_node.name}/proxy/pods"))
    assert any(p["metadata"]["name"] == "web" for p in pods_on_node["items"])


def test_service_proxy_through_the_endpoint_slices(k, pods, api_client):
    """A Service selecting the web pod gets an EndpointSlice from the controller (named
    targetPort resolved to 8080); services/proxy then reaches the pod."""
    from kubernetes import client
    v1 = client.CoreV1Api(api_client)
    v1.create_namespaced_service(pods, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                                        "spec": {"selector": {"app": "web"},
                                                 "ports": [{"name": "www", "port": 80, "targetPort": "http"}]}})
    disc = client.DiscoveryV1Api(api_client)

    def ready_slice():
        for sl in disc.list_namespaced_endpoint_slice(pods, label_selector="kubernetes.io/service-name=web").items:
            if sl.ports and sl.ports[0].port == 8080 and any(e.conditions.ready for e in sl.endpoints or []):
                return sl
        return None
    _wait(ready_slice, 30, what="a ready endpoint for Service web")
    for path in ("web:www", "web:80", "http:web:www"):
        assert k("get", "--raw", f"/api/v1/namespaces/{pods}/services/{path}/proxy/index.html") == "hello-from-pod\n"
    # the Python client escapes the colon in the name (web%3Awww)
    out = v1.connect_get_namespaced_service_proxy_with_path("web:www", pods, "index.html")
    assert out == "hello-from-pod\n"
    out = v1.connect_get_namespaced_pod_proxy_with_path("web:8080", pods, "index.html")
    assert out == "hello-from-pod\n"
