"""Pod startup latency on one real node: create -> Running, as seen through a watch.

Starts its own control plane (`shim up` on a free port, temporary data dir) and one real
node (`shim node up`), waits for the node to be Ready, then creates N pods bound to the
node (spec.nodeName; the image is local, so there is no pull) and watches them: latency is
the time from just before each POST to the watch event that first shows the pod Running.
Prints p50/p99/max.

Two shapes of load:
* burst (default): all N pods are posted back to back, so the node starts them all at
  once; the last ones wait for the first (two cores, one containerd).
* paced (`--interval S`): one pod every S seconds, the way upstream's density test creates
  its latency pods, so each start is measured on a node that is busy but not flooded.

The client is the project's own async client (orjson, one connection), not the official
Python client: this runs on the same two cores as the node, and the official client's
model decoding of every watch event would take CPU away from what is being measured.
Needs root and `shim node install`.

    sudo .venv/bin/python bench/pod_startup.py [--pods 20] [--interval 0] [--keep]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=20)
    ap.add_argument("--interval", type=float, default=0.0,
                    help="seconds between creates (0: burst, all at once)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    ap.add_argument("--cpu", action="store_true",
                    help="print where the machine's CPU went between the first create and the last Running")
    ap.add_argument("-v", "--verbosity", type=int, default=2, help="kubelet -v (>= 5: containerd debug)")
    args = ap.parse_args()
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
        lat = asyncio.run(_measure(data / "admin.kubeconfig", node, args.pods, args.interval, args.cpu))
        if len(lat) < args.pods:
            print(f"only {len(lat)}/{args.pods} pods reached Running")
        if lat:
            p50 = statistics.median(lat)
            p99 = lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]
            shape = f"interval={args.interval}s" if args.interval else "burst"
            print(f"pods={len(lat)} {shape} p50={p50:.3f}s p99={p99:.3f}s max={lat[-1]:.3f}s")
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


async def _measure(kubeconfig: Path, node: str, count: int, interval: float,
                   cpu: bool = False) -> list[float]:
    from shim.client.api import NAMESPACES, PODS, ApiError, Client, Resource
    sas = Resource("", "v1", "serviceaccounts", "ServiceAccount")
    async with Client.from_kubeconfig(kubeconfig) as c:
        deadline = time.monotonic() + 90
        while True:
            try:
                n = await c.get(Resource("", "v1", "nodes", "Node", namespaced=False), node)
                if any(x["type"] == "Ready" and x["status"] == "True"
                       for x in n.get("status", {}).get("conditions", [])):
                    break
            except ApiError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("node not Ready in 90 s")
            await asyncio.sleep(0.5)
        ns = "bench"
        await c.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        while True:
            try:
                await c.get(sas, "default", ns)
                break
            except ApiError:
                await asyncio.sleep(0.2)
        # warm-up pod: the first sandbox pays for unpacking images
        await c.create(PODS, _pod("warmup", node), ns)
        deadline = time.monotonic() + 60
        while (await c.get(PODS, "warmup", ns)).get("status", {}).get("phase") != "Running":
            if time.monotonic() > deadline:
                raise SystemExit("warmup pod not Running in 60 s")
            await asyncio.sleep(0.2)

        created: dict[str, float] = {}
        running: dict[str, float] = {}
        rv = (await c.list(PODS, ns))["metadata"]["resourceVersion"]
        all_running = asyncio.Event()

        async def watcher():
            async for ev in c.watch(PODS, ns, resource_version=rv, timeout_seconds=300):
                now = time.monotonic()
                name = ev.object.get("metadata", {}).get("name")
                if (ev.object.get("status", {}).get("phase") == "Running"
                        and name in created and name not in running):
                    running[name] = now
                    if len(running) == count:
                        all_running.set()
                        return

        w = asyncio.create_task(watcher())
        await asyncio.sleep(0.5)
        before = _cpu_snapshot() if cpu else None
        creates = []
        for i in range(count):
            name = f"p{i:03d}"
            created[name] = time.monotonic()
            creates.append(asyncio.create_task(c.create(PODS, _pod(name, node), ns)))
            if interval:
                await asyncio.sleep(interval)
        await asyncio.gather(*creates)
        try:
            await asyncio.wait_for(all_running.wait(), 300)
        except asyncio.TimeoutError:
            pass
        w.cancel()
        if before:
            _cpu_report(before, _cpu_snapshot())
        return sorted(running[n] - created[n] for n in running)


def _cpu_snapshot() -> tuple[float, list[int], dict[int, tuple[str, int]]]:
    """(wall time, /proc/stat cpu line, {pid: (command, ticks)})."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    procs = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            comm = st[st.index("(") + 1:st.rindex(")")]
            fields = st[st.rindex(")") + 2:].split()
            procs[int(pid)] = (comm, int(fields[11]) + int(fields[12]))
    return time.monotonic(), v, procs


def _cpu_report(a, b) -> None:
    """CPU seconds per command between two snapshots; processes that came and went in
    between (runc, CNI plugins, ...) and kernel threads' work show up only in the rest."""
    hz = os.sysconf("SC_CLK_TCK")
    per: dict[str, int] = {}
    for pid, (comm, ticks) in b[2].items():
        old = a[2].get(pid)
        d = ticks - old[1] if old and old[0] == comm else ticks if not old else 0
        if d > 0:
            key = comm.split("/")[0] if comm.startswith("kworker") else comm
            per[key] = per.get(key, 0) + d
    wall = b[0] - a[0]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (y - x for x, y in zip(a[1], b[1]))
    busy = user + nice + system + irq + softirq + steal
    print(f"cpu: {wall:.2f} s wall, {busy / hz:.2f} cpu-s busy of {wall * os.cpu_count():.2f} "
          f"(user {(user + nice) / hz:.2f}, system {system / hz:.2f}, irq {(irq + softirq) / hz:.2f}, "
          f"steal {steal / hz:.2f})")
    for comm, ticks in sorted(per.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {comm:<24} {ticks / hz:6.2f}")
    print(f"  {'(exited processes, irq)':<24} {(busy - sum(per.values())) / hz:6.2f}")


def _pod(name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "main", "image": "busybox:local",
                                     "command": ["sleep", "3600"]}]}}


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("needs root (a real node)")
    sys.exit(main())
