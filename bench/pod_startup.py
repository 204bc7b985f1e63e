"""Pod startup latency on one real node: create -> Running, as seen through a watch.

Starts its own control plane (`shim up` on a free port, temporary data dir) and one real
node (`shim node up`), waits for the node to be Ready, then creates N pods bound to the
node (spec.nodeName; the image is local, so there is no pull) one after another and
watches them: latency is the time from just before each POST to the watch event that
first shows the pod Running. Prints p50/p99/max. Needs root and `shim node install`.

    sudo .venv/bin/python bench/pod_startup.py [--pods 20] [--keep]
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=20)
    ap.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    ap.add_argument("-v", "--verbosity", type=int, default=2, help="kubelet -v (>= 5: containerd debug)")
    args = ap.parse_args()
    from kubernetes import client, config, watch
    from shim.node.up import node_down, node_up

    data = Path(tempfile.mkdtemp(prefix="shim-bench-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    shim = Path(sys.executable).parent / "shim"
    log = open(data / "shim.log", "ab")
    cp = subprocess.Popen([str(shim), "up", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}"],
                          stdout=subprocess.PIPE, stderr=log)
    node = "bench-node"
    try:
        while b"serving" not in cp.stdout.readline():
            if cp.poll() is not None:
                raise SystemExit(f"shim up failed; see {data / 'shim.log'}")
        node_up(data, node, verbosity=args.verbosity, log=lambda *a: None)
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(data / "admin.kubeconfig"), client_configuration=cfg)
        api = client.ApiClient(cfg)
        v1 = client.CoreV1Api(api)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                n = v1.read_node(node)
                if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or []):
                    break
            except client.ApiException:
                pass
            time.sleep(0.5)
        else:
            raise SystemExit("node not Ready in 90 s")
        ns = "bench"
        v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        while True:
            try:
                v1.read_namespaced_service_account("default", ns)
                break
            except client.ApiException:
                time.sleep(0.2)
        # warm-up pod: the first sandbox pays for unpacking images
        _create(v1, ns, "warmup", node)
        _wait_running(v1, ns, "warmup")

        created: dict[str, float] = {}
        running: dict[str, float] = {}
        rv = v1.list_namespaced_pod(ns).metadata.resource_version
        done = threading.Event()

        def watcher():
            w = watch.Watch()
            for ev in w.stream(v1.list_namespaced_pod, ns, resource_version=rv, timeout_seconds=300):
                p = ev["object"]
                name = p.metadata.name
                if p.status and p.status.phase == "Running" and name in created and name not in running:
                    running[name] = time.monotonic()
                    if len(running) == args.pods:
                        w.stop()
            done.set()
        t = threading.Thread(target=watcher, daemon=True)
        t.start()
        time.sleep(0.5)
        for i in range(args.pods):
            name = f"p{i:03d}"
            created[name] = time.monotonic()
            _create(v1, ns, name, node)
        done.wait(300)
        lat = sorted(running[n] - created[n] for n in running)
        if len(lat) < args.pods:
            print(f"only {len(lat)}/{args.pods} pods reached Running")
        if lat:
            p50 = statistics.median(lat)
            p99 = lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]
            print(f"pods={len(lat)} p50={p50:.3f}s p99={p99:.3f}s max={lat[-1]:.3f}s")
        return 0
    finally:
        try:
            node_down(data, node, log=lambda *a: None)
        finally:
            cp.terminate()
            cp.wait(20)
            if not args.keep:
                shutil.rmtree(data, ignore_errors=True)
            else:
                print(f"data dir kept: {data}")


def _create(v1, ns: str, name: str, node: str) -> None:
    v1.create_namespaced_pod(ns, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "main", "image": "busybox:local",
                                 "command": ["sleep", "3600"]}]}})


def _wait_running(v1, ns: str, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if v1.read_namespaced_pod(name, ns).status.phase == "Running":
            return
        time.sleep(0.2)
    raise SystemExit(f"{name} not Running in {timeout} s")


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("needs root (a real node)")
    sys.exit(main())
