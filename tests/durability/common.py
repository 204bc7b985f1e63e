"""Helpers for the durability and replica tests: API servers on etcd, clients, write loads."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from conftest import Server  # noqa: F401  (re-exported for the tests)


def core(kubeconfig: Path, server_url: str | None = None) -> client.CoreV1Api:
    """A CoreV1Api from an admin kubeconfig (optionally pointed at another replica)."""
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    if server_url:
        cfg.host = server_url
    cfg.retries = False
    return client.CoreV1Api(client.ApiClient(cfg))


def etcd_args(endpoints: list[str], pki_dir: Path | None = None) -> list[str]:
    args = ["--store", "etcd", "--etcd-endpoints", ",".join(endpoints)]
    if pki_dir is not None:
        args += ["--pki-dir", str(pki_dir)]
    return args


def make_namespace(v1: client.CoreV1Api, name: str) -> None:
    v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))


@dataclass
class Ack:
    name: str
    value: int          # the counter written into data["v"]
    rv: int             # the resourceVersion the server answered with


@dataclass
class WriteLoad:
    """Creates and updates ConfigMaps in one namespace, one request at a time, recording
    every write the server acknowledged. Each object's data["v"] counts its own writes,
    so what the store holds can be checked against what was acknowledged.

    `targets` are CoreV1Apis (replicas); a failed request is retried on the next target,
    as a client behind a load balancer would. Stops after `max_writes` or stop()."""
    targets: list
    namespace: str
    objects: int = 20
    max_writes: int = 5000
    request_timeout: float = 10
    acks: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    dead: set = field(default_factory=set)       # targets not to use any more

    def start(self) -> "WriteLoad":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(60)

    def wait_for(self, n: int, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while len(self.acks) < n:
            if time.time() > deadline:
                raise AssertionError(f"only {len(self.acks)} acknowledged writes; errors: {self.errors[-5:]}")
            time.sleep(0.05)

    def latest(self) -> dict[str, Ack]:
        out: dict[str, Ack] = {}
        for a in self.acks:
            out[a.name] = a
        return out

    def _run(self) -> None:
        counters: dict[str, int] = {}
        i = 0
        turn = 0
        while not self._stop.is_set() and i < self.max_writes:
            name = f"cm-{i % self.objects:03}"
            value = counters.get(name, 0) + 1
            live = [t for t in self.targets if id(t) not in self.dead]
            if not live:
                return
            v1 = live[turn % len(live)]
            turn += 1
            try:
                if value == 1:
                    out = v1.create_namespaced_config_map(self.namespace, client.V1ConfigMap(
                        metadata=client.V1ObjectMeta(name=name), data={"v": str(value)}),
                        _request_timeout=self.request_timeout)
                else:
                    out = v1.patch_namespaced_config_map(name, self.namespace, {"data": {"v": str(value)}},
                                                         _request_timeout=self.request_timeout)
            except ApiException as e:
                self.errors.append((name, value, e.status))
                if e.status == 409 and value == 1:   # created before; its answer was lost
                    counters[name] = self._read_back(live, name)
                    i += 1
                time.sleep(0.05)
                continue
            except Exception as e:                   # connection refused/reset: server gone
                self.errors.append((name, value, repr(e)[:80]))
                time.sleep(0.05)
                continue
            counters[name] = value
            self.acks.append(Ack(name, value, int(out.metadata.resource_version)))
            i += 1

    def _read_back(self, live, name) -> int:
        for v1 in live:
            try:
                cm = v1.read_namespaced_config_map(name, self.namespace, _request_timeout=5)
                return int(cm.data["v"])
            except Exception:
                continue
        return 1


class EventRecorder:
    """A watch on ConfigMaps in a namespace from a resourceVersion, in a thread, recording
    (type, name, value, rv) until stopped or the connection breaks."""

    def __init__(self, v1: client.CoreV1Api, namespace: str, resource_version: str):
        self.v1 = v1
        self.namespace = namespace
        self.resource_version = resource_version
        self.events: list[tuple[str, str, int, int]] = []
        self.ended = threading.Event()
        self._w = watch.Watch()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for ev in self._w.stream(self.v1.list_namespaced_config_map, self.namespace,
                                     resource_version=self.resource_version, timeout_seconds=120,
                                     _request_timeout=(5, 30)):
                obj = ev["object"]
                if not obj.metadata.name.startswith("cm-"):
                    continue          # e.g. kube-root-ca.crt, written by a controller
                self.events.append((ev["type"], obj.metadata.name, int((obj.data or {}).get("v", 0)),
                                    int(obj.metadata.resource_version)))
        except Exception:
            pass
        finally:
            self.ended.set()

    @property
    def last_rv(self) -> int:
        return self.events[-1][3] if self.events else int(self.resource_version)

    def wait_for_rv(self, rv: int, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while self.last_rv < rv:
            if time.time() > deadline:
                raise AssertionError(f"watch stopped at {self.last_rv}, wanted {rv}")
            time.sleep(0.05)

    def stop(self) -> None:
        self._w.stop()


def check_acknowledged(v1: client.CoreV1Api, namespace: str, load: WriteLoad) -> dict:
    """Every acknowledged write is there: each object holds its last acknowledged value
    or a later one (a write in flight may have landed unacknowledged), and every object
    decodes whole. Returns {name: value} as stored."""
    stored = {cm.metadata.name: int(cm.data["v"])
              for cm in v1.list_namespaced_config_map(namespace, _request_timeout=30).items
              if cm.metadata.name.startswith("cm-")}
    for name, ack in load.latest().items():
        assert name in stored, f"acknowledged {name} v{ack.value} (rv {ack.rv}) is missing"
        assert stored[name] >= ack.value, f"{name}: stored v{stored[name]} < acknowledged v{ack.value}"
        assert stored[name] <= ack.value + 1, f"{name}: v{stored[name]} was never written"
    return stored
