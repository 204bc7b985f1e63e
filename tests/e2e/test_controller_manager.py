"""`shim up` runs its controllers and scheduler in a child process, `shim controller-manager`:
restarted when it dies, stopped with the API server, absent with --no-controllers."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from kubernetes import client, config

pytestmark = pytest.mark.timeout(120)


def _managers(parent: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(parent), "-f", "controller-manager"],
                         capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _core(server) -> client.CoreV1Api:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(server.kubeconfig), client_configuration=cfg)
    return client.CoreV1Api(client.ApiClient(cfg))


def _has_default_account(v1, ns: str, wait: float) -> bool:
    deadline = time.time() + wait
    while True:
        try:
            v1.read_namespaced_service_account("default", ns)
            return True
        except client.exceptions.ApiException as e:
            assert e.status == 404
        if time.time() > deadline:
            return False
        time.sleep(0.1)


def _wait_for(fn, timeout: float = 20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    return fn()


def test_manager_is_a_child_restarted_and_stopped_with_the_server(fresh_server):
    s = fresh_server().start()
    first = _wait_for(lambda: _managers(s.proc.pid))
    assert len(first) == 1
    v1 = _core(s)
    v1.create_namespace({"metadata": {"name": "before"}})
    assert _has_default_account(v1, "before", 15)

    os.kill(first[0], signal.SIGKILL)
    second = _wait_for(lambda: [p for p in _managers(s.proc.pid) if p != first[0]])
    assert len(second) == 1, "the controller manager was not started again"
    v1.create_namespace({"metadata": {"name": "after"}})
    assert _has_default_account(v1, "after", 20), "controllers do not run after the restart"

    assert s.stop() == 0
    assert _wait_for(lambda: not _pid_alive(second[0]), 10), "the controller manager outlived shim up"


def test_killed_server_takes_its_manager_along(fresh_server):
    s = fresh_server().start()
    child = _wait_for(lambda: _managers(s.proc.pid))[0]
    s.kill()
    assert _wait_for(lambda: not _pid_alive(child), 10), "an orphaned controller manager kept running"


def test_no_controllers(fresh_server):
    s = fresh_server(extra_args=["--no-controllers"]).start()
    v1 = _core(s)
    v1.create_namespace({"metadata": {"name": "bare"}})
    assert not _has_default_account(v1, "bare", 3)
    assert _managers(s.proc.pid) == []


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
