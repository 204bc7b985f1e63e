"""Scheduler throughput: pods bound per second against a fresh `shim up`.

Creates N node objects (no kubelets: Ready, allocatable cpu/memory/pods, hostname and zone
labels), waits for the scheduler to have them, then creates M pending pods as fast as the API
accepts them and watches until every one has spec.nodeName. The figure is M divided by the
time from the first create to the last binding seen on the watch; the server process (API
server + in-process scheduler) and this client share the machine.

    .venv/bin/python bench/scheduler_bench.py                 # 1,000 x 5,000 and 5,000 x 10,000
    .venv/bin/python bench/scheduler_bench.py --nodes 1000 --pods 5000
    .venv/bin/python bench/scheduler_bench.py --kubeconfig K  # against a running server
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shim.client import ApiError, Client  # noqa: E402
from shim.client.api import NAMESPACES, NODES, PODS  # noqa: E402

ZONES = 10


def node_object(i: int) -> dict:
    name = f"bench-node-{i:05d}"
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
            "topology.kubernetes.io/zone": f"zone-{i % ZONES}", "shim.bench/node": "true"}},
        "spec": {},
        "status": {
            "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "bench node (no kubelet)"}],
        },
    }


def pod_object(ns: str, i: int) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"bench-pod-{i:06d}", "namespace": ns, "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
    }


async def gather_limited(n: int, limit: int, make) -> None:
    it = iter(range(n))

    async def worker():
        for i in it:
            for attempt in range(5):
                try:
                    await make(i)
                    break
                except ApiError as e:
                    if e.code == 409:
                        break
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.1 * (attempt + 1))
    await asyncio.gather(*(worker() for _ in range(limit)))


async def run_case(kubeconfig: Path, nodes: int, pods: int, concurrency: int) -> dict:
    client = Client.from_kubeconfig(kubeconfig, max_connections=concurrency + 8, timeout=120)
    ns = f"bench-{os.urandom(3).hex()}"
    try:
        await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        t0 = time.monotonic()
        await gather_limited(nodes, concurrency, lambda i: client.create(NODES, node_object(i)))
        node_secs = time.monotonic() - t0
        # The scheduler has the nodes when a probe pod lands on one of them.
        probe = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe", "namespace": ns},
                 "spec": {"nodeSelector": {"kubernetes.io/hostname": f"bench-node-{nodes - 1:05d}"},
                          "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}
        await client.create(PODS, probe, ns)
        while not ((await client.get(PODS, "probe", ns)).get("spec") or {}).get("nodeName"):
            await asyncio.sleep(0.1)
        await client.delete(PODS, "probe", ns, grace_period_seconds=0)

        lst = await client.list(PODS, ns, limit=1)
        rv = lst["metadata"]["resourceVersion"]
        bound: set[str] = set()
        done = asyncio.Event()
        first_bound = last_bound = None

        async def watch():
            nonlocal first_bound, last_bound, rv
            while not done.is_set():
                try:
                    async for ev in client.watch(PODS, ns, resource_version=rv, timeout_seconds=600):
                        md = ev.object.get("metadata") or {}
                        if md.get("resourceVersion"):
                            rv = md["resourceVersion"]
                        if ev.type in ("ADDED", "MODIFIED") and (ev.object.get("spec") or {}).get("nodeName"):
                            if md["name"] not in bound:
                                bound.add(md["name"])
                                last_bound = time.monotonic()
                                first_bound = first_bound or last_bound
                                if len(bound) >= pods:
                                    done.set()
                                    return
                except (ApiError, OSError, asyncio.TimeoutError):
                    await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.2)
        start = time.monotonic()
        await gather_limited(pods, concurrency, lambda i: client.create(PODS, pod_object(ns, i), ns))
        created = time.monotonic()
        bound_at_created = len(bound)
        try:
            await asyncio.wait_for(done.wait(), timeout=max(600, pods / 5))
        finally:
            watcher.cancel()
        end = last_bound or time.monotonic()
        return {"nodes": nodes, "pods": pods, "node_create_s": node_secs,
                "create_s": created - start, "total_s": end - start,
                "bound_while_creating": bound_at_created,
                "after_create_per_s": (pods - bound_at_created) / max(end - created, 1e-9),
                "pods_per_s": pods / (end - start), "namespace": ns}
    finally:
        await client.close()


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "shim"), "up", "--data-dir", str(data_dir),
                             "--listen", f"127.0.0.1:{port}", "--log-level", "WARNING"],
                            stdout=subprocess.PIPE, stderr=open(data_dir.parent / "shim.log", "ab"), cwd=ROOT)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        if b"serving" in line:
            return proc
        if not line and proc.poll() is not None:
            break
    raise SystemExit(f"shim up did not start; see {data_dir.parent / 'shim.log'}")


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, action="append", help="node count (repeat with --pods)")
    ap.add_argument("--pods", type=int, action="append", help="pod count")
    ap.add_argument("--concurrency", type=int, default=64, help="parallel create requests")
    ap.add_argument("--kubeconfig", type=Path, help="use a running server instead of a fresh one")
    args = ap.parse_args()
    cases = list(zip(args.nodes or [1000, 5000], args.pods or [5000, 10000]))
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    results = []
    for nodes, pods in cases:
        tmp = Path(tempfile.mkdtemp(prefix="shim-sched-bench-"))
        proc = None
        try:
            kubeconfig = args.kubeconfig
            if kubeconfig is None:
                proc = start_server(tmp / "data", free_port())
                kubeconfig = tmp / "data" / "admin.kubeconfig"
            r = asyncio.run(run_case(kubeconfig, nodes, pods, args.concurrency))
            results.append(r)
            print(f"{nodes:>6} nodes x {pods:>6} pods: {r['pods_per_s']:7.0f} pods/s bound "
                  f"(all bound {r['total_s']:.1f}s after the first create; creates took {r['create_s']:.1f}s; "
                  f"{r['bound_while_creating']} bound by then, {r['after_create_per_s']:.0f} pods/s after; "
                  f"{nodes} nodes created in {r['node_create_s']:.1f}s)", flush=True)
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
