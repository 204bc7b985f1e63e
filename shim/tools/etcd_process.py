"""Running real etcd servers on loopback: one member, or a cluster of several.

Used by the tests and the benchmark; each member gets free ports and a data dir of its
own, and is stopped (or killed) by the caller. Nothing here is used by `shim up`.
"""
from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class EtcdMember:
    binary: Path
    data_dir: Path
    name: str = "default"
    client_port: int = 0
    peer_port: int = 0
    initial_cluster: str = ""          # "name=http://127.0.0.1:port,..." ("" = just this one)
    cluster_state: str = "new"
    extra_args: list = field(default_factory=list)
    tls: tuple | None = None           # (ca, cert, key, client_cert, client_key): serve clients
                                       # over TLS, requiring client certificates signed by ca;
                                       # the client pair is what the health check uses
    proc: subprocess.Popen | None = None

    def __post_init__(self):
        self.client_port = self.client_port or free_port()
        self.peer_port = self.peer_port or free_port()

    @property
    def client_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def start(self, wait: bool = True, timeout: float = 30) -> "EtcdMember":
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        cluster = self.initial_cluster or f"{self.name}={self.peer_url}"
        cmd = [str(self.binary), "--name", self.name, "--data-dir", str(self.data_dir),
               "--listen-client-urls", self.client_url, "--advertise-client-urls", self.client_url,
               "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
               "--initial-cluster", cluster, "--initial-cluster-state", self.cluster_state,
               "--initial-cluster-token", "shim-test", "--log-level", "warn",
               "--heartbeat-interval", "50", "--election-timeout", "500", *self.extra_args]
        if self.tls:
            ca, cert, key = self.tls[:3]
            cmd += ["--trusted-ca-file", str(ca), "--cert-file", str(cert), "--key-file", str(key),
                    "--client-cert-auth"]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        if wait:
            self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"etcd {self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            if self.healthy():
                return
            time.sleep(0.1)
        raise RuntimeError(f"etcd {self.name} not healthy after {timeout}s:\n{self.tail()}")

    def healthy(self) -> bool:
        ctx = None
        if self.tls:
            ctx = ssl.create_default_context(cafile=str(self.tls[0]))
            ctx.load_cert_chain(str(self.tls[3]), str(self.tls[4]))
        try:
            with urllib.request.urlopen(self.client_url + "/health", timeout=1, context=ctx) as r:
                return b'"health":"true"' in r.read()
        except OSError:
            return False

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGCONT)   # a paused member must be able to exit
                self.proc.send_signal(sig)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def pause(self) -> None:
        """SIGSTOP: the member keeps its sockets but answers nothing (an unreachable etcd)."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)


class EtcdCluster:
    """n members on loopback forming one cluster (n = 1 is a plain single-node etcd)."""

    def __init__(self, binary: Path, base_dir: Path, size: int = 1, extra_args: list | None = None):
        self.members = [EtcdMember(binary, base_dir / f"etcd{i}", name=f"m{i}",
                                   extra_args=list(extra_args or [])) for i in range(size)]
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for m in self.members:
            m.initial_cluster = initial

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    def start(self, timeout: float = 60) -> "EtcdCluster":
        for m in self.members:
            m.start(wait=False)
        for m in self.members:
            m.wait_healthy(timeout)
        return self

    def stop(self) -> None:
        for m in self.members:
            m.stop()
