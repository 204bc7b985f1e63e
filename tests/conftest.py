"""Shared fixtures: a real `shim up` process and the real clients pointed at it."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
KUBECTL = shutil.which("kubectl", path=str(VENV_BIN)) or shutil.which("kubectl")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A `shim up` child process on a free loopback port."""
    data_dir: Path
    port: int = 0
    extra_args: list = field(default_factory=list)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "admin.kubeconfig"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "Server":
        if not self.port:
            self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / "shim.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "shim"), "up", "--data-dir", str(self.data_dir),
             "--listen", f"127.0.0.1:{self.port}", *self.extra_args],
            stdout=subprocess.PIPE, stderr=log, cwd=ROOT)
        deadline = time.time() + timeout
        line = b""
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if b"serving" in line:
                return self
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError(f"shim up did not start: {line!r}\n{self.log_path.read_text()[-3000:]}")

    def stop(self, sig=signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc.stdout.close()
        self.proc = None
        return rc

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


class Kubectl:
    """The real kubectl binary with its own fresh discovery cache."""

    def __init__(self, kubeconfig: Path, cache_dir: Path):
        self.kubeconfig = kubeconfig
        self.cache_dir = cache_dir

    def run(self, *args, input: str | None = None, check: bool = True, timeout: float = 60,
            env: dict | None = None) -> subprocess.CompletedProcess:
        cmd = [KUBECTL, "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache_dir), *args]
        full_env = dict(os.environ, HOME=str(self.cache_dir.parent), **(env or {}))
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, env=full_env)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def __call__(self, *args, **kw) -> str:
        return self.run(*args, **kw).stdout

    def popen(self, *args) -> subprocess.Popen:
        cmd = [KUBECTL, "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache_dir), *args]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, HOME=str(self.cache_dir.parent)))


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    """One control plane shared by the session's tests (each test uses its own namespace)."""
    s = Server(tmp_path_factory.mktemp("shim-data")).start()
    yield s
    s.stop()


@pytest.fixture
def kubectl(server, tmp_path) -> Kubectl:
    cache = tmp_path / "kube" / "cache"
    cache.mkdir(parents=True)
    return Kubectl(server.kubeconfig, cache)


@pytest.fixture
def api_client(server):
    """The official Python client, configured from the admin kubeconfig."""
    from kubernetes import client, config
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(server.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as c:
        yield c


@pytest.fixture
def namespace(api_client, request):
    """A fresh namespace for one test, deleted afterwards."""
    from kubernetes import client
    name = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-") + "-" + os.urandom(2).hex()
    name = "".join(ch for ch in name if ch.isalnum() or ch == "-")[:63].strip("-")
    v1 = client.CoreV1Api(api_client)
    v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    # a settled namespace: the controllers have added its default account and CA ConfigMap
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            v1.read_namespaced_config_map("kube-root-ca.crt", name)
            v1.read_namespaced_service_account("default", name)
            break
        except client.exceptions.ApiException:
            time.sleep(0.05)
    yield name
    try:
        v1.delete_namespace(name)
    except Exception:
        pass


@pytest.fixture
def fresh_server(tmp_path):
    """A control plane of the test's own (for restart and crash tests)."""
    servers = []

    def make(data_dir: Path | None = None, **kw) -> Server:
        s = Server(data_dir or (tmp_path / f"data{len(servers)}"), **kw)
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.stop()
