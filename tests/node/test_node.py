"""A real node: the upstream kubelet (v1.37, built by `shim node install`) on containerd,
registered with the shim's API server, running pods.

Needs root, containerd, runc, the CNI plugins and the built binaries. The session fixture
runs `shim node install` (cached; the first build takes minutes). Outside CI a missing
prerequisite skips these tests with a message saying how to install it; in CI (CI=true)
it fails them.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.node, pytest.mark.timeout(2400)]  # the first install builds for minutes

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
INSTALL_HINT = "run `sudo .venv/bin/shim node install` (Debian 12, Go 1.26, network to the Go module proxy)"


def _missing(reason: str):
    if IN_CI:
        pytest.fail(f"real-node prerequisite missing in CI: {reason}")
    pytest.skip(f"{reason}; {INSTALL_HINT}")


@pytest.fixture(scope="module")
def server(tmp_path_factory, node_prereqs):
    """A control plane of these tests' own (overrides the session one): a Ready real node in
    the shared control plane would receive other tests' pods from the scheduler."""
    from conftest import Server
    s = Server(tmp_path_factory.mktemp("node-cp")).start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def node_prereqs():
    if os.geteuid() != 0:
        _missing("real nodes need root (network namespaces, cgroups, mounts)")
    shim = Path(sys.executable).parent / "shim"
    p = subprocess.run([str(shim), "node", "install"], capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        _missing(f"`shim node install` failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")


def _core(api_client):
    from kubernetes import client
    return client.CoreV1Api(api_client)


def _wait(fn, timeout: float, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def _ready(node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))


def _node_log_tail(state, n: int = 60) -> str:
    try:
        lines = Path(state.logs["kubelet"]).read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])
    except (OSError, KeyError):
        return ""


@pytest.fixture(scope="module")
def node(server, node_prereqs):
    """Node `n-<random>` against the session's control plane; down (and deleted) afterwards."""
    from shim.node.up import node_down, node_up
    name = "n-" + os.urandom(3).hex()
    state = node_up(server.data_dir, name, verbosity=2, log=lambda *a: None)
    try:
        yield state
    finally:
        node_down(server.data_dir, name, log=lambda *a: None)
        subprocess.run(["kubectl", "--kubeconfig", str(server.kubeconfig), "delete", "node", name,
                        "--ignore-not-found", "--wait=false"], capture_output=True)


@pytest.fixture
def ready_node(node, api_client):
    v1 = _core(api_client)
    try:
        _wait(lambda: (n := _get_node(v1, node.name)) is not None and _ready(n), 60,
              what=f"node {node.name} Ready")
    except AssertionError as e:
        raise AssertionError(f"{e}\nkubelet log:\n{_node_log_tail(node)}") from None
    return node


def _get_node(v1, name):
    from kubernetes.client.rest import ApiException
    try:
        return v1.read_node(name)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def _wait_default_sa(v1, ns: str) -> None:
    from kubernetes.client.rest import ApiException

    def have():
        try:
            return v1.read_namespaced_service_account("default", ns)
        except ApiException:
            return None
    _wait(have, 30, what=f"serviceaccount {ns}/default")


def _pod(name: str, node: str, command: list[str], image: str = "busybox:local",
         restart: str = "Always") -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name},
            "spec": {"nodeName": node, "restartPolicy": restart,
                     "terminationGracePeriodSeconds": 5,
                     "containers": [{"name": "main", "image": image, "command": command}]}}


# ---------------------------------------------------------------------------------------------


def test_node_registers_ready_with_status(ready_node, api_client):
    v1 = _core(api_client)
    n = v1.read_node(ready_node.name)
    st = n.status
    for key in ("cpu", "memory", "pods", "ephemeral-storage"):
        assert key in st.capacity and key in st.allocatable, (key, st.capacity, st.allocatable)
    assert int(st.capacity["cpu"]) >= 1 and int(st.capacity["pods"]) == 110
    addrs = {(a.type, a.address) for a in st.addresses}
    assert ("InternalIP", ready_node.node_ip) in addrs, addrs
    assert ("Hostname", ready_node.name) in addrs, addrs
    info = st.node_info
    assert info.kubelet_version == "v1.37.2"
    assert info.container_runtime_version.startswith("containerd://")
    assert info.operating_system == "linux" and info.architecture == "amd64"
    assert info.machine_id or info.system_uuid or info.boot_id
    assert st.daemon_endpoints.kubelet_endpoint.port == ready_node.kubelet_port
    assert n.metadata.labels["kubernetes.io/hostname"] == ready_node.name


def test_node_lease_is_renewed(ready_node, api_client):
    from kubernetes import client
    coord = client.CoordinationV1Api(api_client)
    lease = _wait(lambda: _lease(coord, ready_node.name), 30, what="node lease")
    assert lease.spec.holder_identity == ready_node.name
    assert lease.metadata.owner_references and lease.metadata.owner_references[0].kind == "Node"
    first = lease.spec.renew_time
    # the kubelet renews every leaseDurationSeconds/4 = 10 s
    renewed = _wait(lambda: (l := _lease(coord, ready_node.name)) and l.spec.renew_time > first and l,
                    30, what="lease renewal")
    assert renewed.spec.renew_time - first < dt.timedelta(seconds=30)


def _lease(coord, name):
    from kubernetes.client.rest import ApiException
    try:
        return coord.read_namespaced_lease(name, "kube-node-lease")
    except ApiException:
        return None


def test_csinode_created(ready_node, api_client):
    from kubernetes import client
    storage = client.StorageV1Api(api_client)
    csinode = _wait(lambda: _try(lambda: storage.read_csi_node(ready_node.name)), 30, what="CSINode")
    assert csinode.metadata.owner_references[0].name == ready_node.name


def _try(fn):
    try:
        return fn()
    except Exception:
        return None


def test_pod_with_node_name_runs(ready_node, api_client, namespace):
    v1 = _core(api_client)
    _wait_default_sa(v1, namespace)
    body = _pod("sleeper", ready_node.name,
                ["sh", "-c", "trap 'exit 0' TERM; echo started; while true; do sleep 1; done"])
    v1.create_namespaced_pod(namespace, body)

    def running():
        p = v1.read_namespaced_pod("sleeper", namespace)
        return p if p.status.phase == "Running" and p.status.pod_ip else None
    try:
        pod = _wait(running, 60, what="pod Running")
    except AssertionError as e:
        raise AssertionError(f"{e}\nkubelet log:\n{_node_log_tail(ready_node)}") from None
    assert ipaddress.ip_address(pod.status.pod_ip) in ipaddress.ip_network(ready_node.pod_cidr)
    assert pod.status.host_ip == ready_node.node_ip
    (cs,) = pod.status.container_statuses
    assert cs.name == "main" and cs.ready and cs.started
    assert cs.container_id.startswith("containerd://")
    assert cs.restart_count == 0
    assert cs.image_id.startswith("sha256:")
    assert cs.state.running.started_at is not None
    assert any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)

    # graceful delete: the kubelet stops the container, then removes the object (grace 0)
    v1.delete_namespaced_pod("sleeper", namespace)
    _wait(lambda: _try(lambda: v1.read_namespaced_pod("sleeper", namespace)) is None, 45,
          what="pod object gone after graceful delete")


def test_pod_never_restart_reports_exit_code(ready_node, api_client, namespace):
    v1 = _core(api_client)
    _wait_default_sa(v1, namespace)
    v1.create_namespaced_pod(namespace, _pod("fails", ready_node.name, ["sh", "-c", "exit 3"],
                                             restart="Never"))
    v1.create_namespaced_pod(namespace, _pod("works", ready_node.name, ["true"], restart="Never"))
    failed = _wait(lambda: (p := v1.read_namespaced_pod("fails", namespace)).status.phase == "Failed" and p,
                   60, what="pod Failed")
    term = failed.status.container_statuses[0].state.terminated
    assert term.exit_code == 3 and term.reason == "Error"
    done = _wait(lambda: (p := v1.read_namespaced_pod("works", namespace)).status.phase == "Succeeded" and p,
                 60, what="pod Succeeded")
    term = done.status.container_statuses[0].state.terminated
    assert term.exit_code == 0 and term.reason == "Completed"


def test_crashing_container_goes_to_crash_loop_back_off(ready_node, api_client, namespace):
    v1 = _core(api_client)
    _wait_default_sa(v1, namespace)
    from kubernetes import watch
    v1.create_namespaced_pod(namespace, _pod("crasher", ready_node.name, ["sh", "-c", "exit 1"]))
    # A v1.37 kubelet reports the waiting CrashLoopBackOff state when it resyncs the pod at
    # the end of each back-off, just before the restart, so it can be short-lived: watch.
    seen = None
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_pod, namespace, field_selector="metadata.name=crasher",
                       timeout_seconds=60):
        for cs in ev["object"].status.container_statuses or []:
            if cs.state.waiting and cs.state.waiting.reason == "CrashLoopBackOff":
                seen = cs
        if seen:
            w.stop()
    assert seen is not None, "no CrashLoopBackOff within 60 s"
    assert seen.restart_count >= 1
    assert seen.last_state.terminated.exit_code == 1


def test_kubelet_api_authenticates_and_authorizes_through_the_api_server(ready_node, server,
                                                                        api_client, namespace):
    """The kubelet's port 10250: x509 or TokenReview for who, SubjectAccessReview for may."""
    import ssl
    import urllib.error
    import urllib.request
    v1 = _core(api_client)
    _wait_default_sa(v1, namespace)
    v1.create_namespaced_pod(namespace, _pod("talker", ready_node.name,
                                             ["sh", "-c", "echo hello-from-pod; sleep 3600"]))
    _wait(lambda: v1.read_namespaced_pod("talker", namespace).status.phase == "Running", 60,
          what="pod Running")
    pki = server.data_dir / "pki"
    base = f"https://{ready_node.node_ip}:{ready_node.kubelet_port}"

    def get(path, cert=None, token=None):
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.check_hostname = False      # the serving cert names the node IP; urllib passes it as SNI
        if cert:
            ctx.load_cert_chain(pki / f"{cert}.crt", pki / f"{cert}.key")
        req = urllib.request.Request(base + path)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    logs = f"/containerLogs/{namespace}/talker/main"
    code, body = _wait(lambda: (r := get(logs, cert="apiserver-kubelet-client")) and
                       "hello-from-pod" in r[1] and r, 30, what="container logs through the kubelet")
    assert code == 200
    assert get("/pods")[0] == 401                      # anonymous is off
    assert get("/pods", token="not-a-token")[0] == 401  # TokenReview says no
    from kubernetes import client
    tr = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    token = v1.create_namespaced_service_account_token("default", namespace, tr).status.token
    code, body = get("/pods", token=token)            # TokenReview, then SubjectAccessReview
    assert code == 200 and "talker" in body


def test_absent_image_fails_to_pull(ready_node, api_client, namespace):
    v1 = _core(api_client)
    _wait_default_sa(v1, namespace)
    v1.create_namespaced_pod(namespace, _pod("noimage", ready_node.name, ["true"],
                                             image="example.invalid/nothing:1"))

    def waiting_reason():
        p = v1.read_namespaced_pod("noimage", namespace)
        for cs in p.status.container_statuses or []:
            if cs.state.waiting and cs.state.waiting.reason in ("ErrImagePull", "ImagePullBackOff"):
                return cs.state.waiting.reason
        return None
    assert _wait(waiting_reason, 60, what="ErrImagePull/ImagePullBackOff")


def test_second_node_and_down_leaves_nothing(ready_node, server, api_client):
    """Two nodes share the host (own netns, containerd, cgroups); `down` removes every trace."""
    from shim.node.up import NodePaths, _cgroup_dirs, node_down, node_up
    v1 = _core(api_client)
    name = "n-" + os.urandom(3).hex()
    state = node_up(server.data_dir, name, log=lambda *a: None)
    try:
        _wait(lambda: (n := _get_node(v1, name)) is not None and _ready(n), 60, what=f"node {name} Ready")
        assert state.node_ip != ready_node.node_ip and state.pod_cidr != ready_node.pod_cidr
    finally:
        node_down(server.data_dir, name, log=lambda *a: None)
    paths = NodePaths(server.data_dir, name)
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert state.netns not in netns
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert state.veth not in links
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(paths.root) not in mounts and str(paths.run) not in mounts
    assert not any(d.exists() for d in _cgroup_dirs(state.cgroup_parent))
    for pid in state.pids.values():
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[-1][:3]
    assert not paths.state_file.exists()
    # the first node is unaffected
    assert _ready(v1.read_node(ready_node.name))
    v1.delete_node(name)


def test_env_and_volumes_inside_the_container(ready_node, api_client, namespace, server):
    """env from a ConfigMap and a Secret; configMap, secret, emptyDir, downwardAPI and the
    projected service account token readable inside; the token is accepted by the API server."""
    import base64
    import ssl
    import urllib.request
    v1 = _core(api_client)
    _wait_default_sa(v1, namespace)
    v1.create_namespaced_config_map(namespace, {"metadata": {"name": "cfg"}, "data": {"color": "blue"}})
    v1.create_namespaced_secret(namespace, {"metadata": {"name": "sec"},
                                            "data": {"pw": base64.b64encode(b"hunter2").decode()}})
    script = ("echo ENV_COLOR=$COLOR; echo ENV_PW=$PW; echo CM=$(cat /cfg/color); "
              "echo SEC=$(cat /sec/pw); echo hi > /scratch/f && echo EMPTY=$(cat /scratch/f); "
              "echo LABEL=$(grep tier /info/labels); "
              "echo NS=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace); "
              "echo TOKEN=$(cat /var/run/secrets/kubernetes.io/serviceaccount/token); "
              "test -s /var/run/secrets/kubernetes.io/serviceaccount/ca.crt && echo CA=ok; "
              "trap 'exit 0' TERM; while true; do sleep 1; done")
    body = _pod("mounts", ready_node.name, ["sh", "-c", script])
    body["metadata"]["labels"] = {"tier": "web"}
    c = body["spec"]["containers"][0]
    c["env"] = [{"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "color"}}},
                {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "pw"}}}]
    c["volumeMounts"] = [{"name": "cfg", "mountPath": "/cfg"}, {"name": "sec", "mountPath": "/sec"},
                         {"name": "scratch", "mountPath": "/scratch"}, {"name": "info", "mountPath": "/info"}]
    body["spec"]["volumes"] = [
        {"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "sec", "secret": {"secretName": "sec"}},
        {"name": "scratch", "emptyDir": {}},
        {"name": "info", "downwardAPI": {"items": [{"path": "labels",
                                                    "fieldRef": {"fieldPath": "metadata.labels"}}]}}]
    v1.create_namespaced_pod(namespace, body)

    def printed():
        text = _try(lambda: v1.read_namespaced_pod_log("mounts", namespace)) or ""
        return text if "CA=ok" in text else None
    try:
        text = _wait(printed, 60, what="the pod's output")
    except AssertionError as e:
        raise AssertionError(f"{e}\nkubelet log:\n{_node_log_tail(ready_node)}") from None
    out = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    assert out["ENV_COLOR"] == "blue" and out["ENV_PW"] == "hunter2"
    assert out["CM"] == "blue" and out["SEC"] == "hunter2" and out["EMPTY"] == "hi"
    assert out["LABEL"] == 'tier="web"' and out["NS"] == namespace
    token = out["TOKEN"].strip()
    assert token.count(".") == 2
    ctx = ssl.create_default_context(cafile=str(server.data_dir / "pki" / "ca.crt"))
    req = urllib.request.Request(f"{server.url}/api/v1/namespaces/{namespace}/pods",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        assert resp.status == 200
    # deleting the pod revokes its bound token
    v1.delete_namespaced_pod("mounts", namespace, grace_period_seconds=0)
    _wait(lambda: _try(lambda: v1.read_namespaced_pod("mounts", namespace)) is None, 45,
          what="pod gone")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, context=ctx, timeout=10)
    assert e.value.code == 401


def test_exec_probes_change_readiness_and_restart(ready_node, api_client, namespace):
    v1 = _core(api_client)
    _wait_default_sa(v1, namespace)
    # ready once /tmp/ready exists (after ~4 s); alive until /tmp/die appears (after ~12 s)
    body = _pod("probed", ready_node.name,
                ["sh", "-c", "trap 'exit 0' TERM; sleep 4; touch /tmp/ready; sleep 8; touch /tmp/die; "
                             "while true; do sleep 1; done"])
    c = body["spec"]["containers"][0]
    c["readinessProbe"] = {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1,
                           "failureThreshold": 1}
    c["livenessProbe"] = {"exec": {"command": ["sh", "-c", "test ! -f /tmp/die"]}, "periodSeconds": 1,
                          "failureThreshold": 1, "initialDelaySeconds": 1}
    v1.create_namespaced_pod(namespace, body)

    def status():
        p = v1.read_namespaced_pod("probed", namespace)
        return p.status.container_statuses[0] if p.status.container_statuses else None
    first = _wait(lambda: (s := status()) is not None and s.state.running is not None and s, 60,
                  what="container running")
    assert not first.ready  # the readiness probe has not passed yet
    _wait(lambda: (s := status()) is not None and s.ready, 30, what="ready after the probe passes")
    restarted = _wait(lambda: (s := status()) is not None and s.restart_count >= 1 and s, 60,
                      what="a restart after the liveness probe fails")
    assert restarted.restart_count >= 1
    events = v1.list_namespaced_event(namespace, field_selector="involvedObject.name=probed").items
    assert any(e.reason == "Unhealthy" and "Liveness probe failed" in (e.message or "") for e in events)
