"""API server benchmark: GET/s, CREATE/s, LIST latency, watch delivery latency.

Runs against a server it starts itself (`shim up` on a temp data dir, the embedded store)
unless --kubeconfig points at a running one. The load generator is an aiohttp client in
this process, on the same machine: its CPU use counts against the server's, so the
figures are a floor. Usage:

    .venv/bin/python bench/api_bench.py [--kubeconfig K] [--quick]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import os
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
import yaml

ROOT = Path(__file__).resolve().parent.parent


def ssl_from_kubeconfig(path: Path) -> tuple[str, ssl.SSLContext]:
    cfg = yaml.safe_load(path.read_text())
    cluster = cfg["clusters"][0]["cluster"]
    user = cfg["users"][0]["user"]
    tmp = Path(tempfile.mkdtemp())
    for name, key in (("ca", "certificate-authority-data"), ("crt", "client-certificate-data"),
                      ("key", "client-key-data")):
        (tmp / name).write_bytes(base64.b64decode(cluster.get(key) or user.get(key)))
    ctx = ssl.create_default_context(cafile=str(tmp / "ca"))
    ctx.load_cert_chain(str(tmp / "crt"), str(tmp / "key"))
    return cluster["server"], ctx


def pod(name: str, ns: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": "bench", "tier": "x"}},
            "spec": {"containers": [{"name": "c", "image": "busybox:local",
                                     "command": ["sleep", "3600"],
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}


async def timed_concurrent(n: int, concurrency: int, fn) -> float:
    """Run fn(i) for i in range(n) with `concurrency` workers; returns ops/s."""
    it = iter(range(n))

    async def worker():
        for i in it:
            await fn(i)
    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - t)


async def main(args) -> dict:
    server, ctx = ssl_from_kubeconfig(Path(args.kubeconfig))
    conn = aiohttp.TCPConnector(ssl=ctx, limit=0)
    results: dict = {}
    async with aiohttp.ClientSession(server, connector=conn) as s:
        ns = f"bench-{os.getpid()}"
        async with s.post("/api/v1/namespaces", json={"metadata": {"name": ns}}) as r:
            assert r.status == 201, await r.text()
        # pods name a service account; without the controller manager nobody makes `default`
        async with s.post(f"/api/v1/namespaces/{ns}/serviceaccounts",
                          json={"metadata": {"name": "default"}}) as r:
            assert r.status in (201, 409), await r.text()

        n_create = 1000 if args.quick else 5000

        async def create(i):
            async with s.post(f"/api/v1/namespaces/{ns}/pods", data=orjson.dumps(pod(f"p{i}", ns)),
                              headers={"Content-Type": "application/json"}) as r:
                if r.status != 201:
                    raise RuntimeError(await r.text())
                await r.read()
        results["create_per_s"] = await timed_concurrent(n_create, args.concurrency, create)

        n_get = 5000 if args.quick else 20000

        async def get(i):
            async with s.get(f"/api/v1/namespaces/{ns}/pods/p{i % 1000}") as r:
                if r.status != 200:
                    raise RuntimeError(await r.text())
                await r.read()
        results["get_per_s"] = await timed_concurrent(n_get, args.concurrency, get)

        for size in ((1000,) if args.quick else (1000, 5000)):
            times = []
            for _ in range(5):
                t = time.perf_counter()
                async with s.get(f"/api/v1/namespaces/{ns}/pods", params={"limit": str(size)}) as r:
                    body = await r.read()
                times.append(time.perf_counter() - t)
                assert len(orjson.loads(body)["items"]) == min(size, n_create)
            results[f"list_{size}_s"] = statistics.median(times)

        results.update(await watch_latency(server, ctx, ns, args.watchers, args.events))

        async with s.delete(f"/api/v1/namespaces/{ns}") as r:
            await r.read()
    return results


async def watch_latency(server: str, ctx: ssl.SSLContext, ns: str, watchers: int, events: int) -> dict:
    """Start `watchers` watches on one ConfigMap, update it `events` times, time each delivery."""
    conn = aiohttp.TCPConnector(ssl=ctx, limit=0)
    lat: list[float] = []
    sent: dict[str, float] = {}
    async with aiohttp.ClientSession(server, connector=conn, timeout=aiohttp.ClientTimeout(total=None)) as s:
        async with s.post(f"/api/v1/namespaces/{ns}/configmaps",
                          json={"metadata": {"name": "w"}, "data": {"seq": "0"}}) as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        ready = 0
        all_ready = asyncio.Event()
        done = asyncio.Event()
        received = 0

        async def watcher():
            nonlocal ready, received
            async with s.get(f"/api/v1/namespaces/{ns}/configmaps",
                             params={"watch": "1", "resourceVersion": rv,
                                     "fieldSelector": "metadata.name=w"}) as r:
                ready += 1
                if ready == watchers:
                    all_ready.set()
                async for line in r.content:
                    ev = orjson.loads(line)
                    seq = ev["object"]["data"]["seq"]
                    t = sent.get(seq)
                    if t is not None:
                        lat.append(time.perf_counter() - t)
                        received += 1
                        if received == watchers * events:
                            done.set()
                    if seq == str(events):
                        return
        tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
        await asyncio.wait_for(all_ready.wait(), 120)
        await asyncio.sleep(1)
        for i in range(1, events + 1):
            body = {"metadata": {"name": "w"}, "data": {"seq": str(i)}}
            sent[str(i)] = time.perf_counter()
            async with s.put(f"/api/v1/namespaces/{ns}/configmaps/w", json=body) as r:
                await r.read()
            await asyncio.sleep(0.3)
        try:
            await asyncio.wait_for(done.wait(), 60)
        except asyncio.TimeoutError:
            pass
        for t in tasks:
            t.cancel()
    lat.sort()
    return {"watchers": watchers, "watch_events_delivered": len(lat),
            "watch_p50_ms": 1000 * lat[len(lat) // 2] if lat else None,
            "watch_p99_ms": 1000 * lat[int(len(lat) * 0.99) - 1] if lat else None}


def start_server(store: str = "sqlite", controllers: bool = False) -> tuple[subprocess.Popen, Path, object]:
    """`shim up` on a temp data dir; with store "etcd", on a fresh single-member etcd
    (built by shim/tools/etcd_install.py) started here too. Returns (proc, kubeconfig, etcd)."""
    data = Path(tempfile.mkdtemp(prefix="shim-bench-"))
    port = 20000 + os.getpid() % 10000
    extra, etcd = [], None
    if store == "etcd":
        sys.path.insert(0, str(ROOT))
        from shim.tools.etcd_install import ensure_etcd
        from shim.tools.etcd_process import EtcdMember
        etcd = EtcdMember(ensure_etcd(), data / "etcd").start()
        extra = ["--store", "etcd", "--etcd-endpoints", etcd.client_url]
    proc = subprocess.Popen([str(ROOT / ".venv/bin/shim"), "up", "--data-dir", str(data),
                             "--listen", f"127.0.0.1:{port}", "--log-level", "WARNING",
                             # by default the API server alone (--no-controllers); with
                             # --controllers, what `shim up` runs by default minus the scheduler
                             # (with no nodes it would answer every created pod with a status
                             # patch and an event)
                             "--no-scheduler" if controllers else "--no-controllers", *extra],
                            stdout=subprocess.PIPE, cwd=ROOT)
    for line in proc.stdout:
        if b"serving" in line:
            break
    return proc, data / "admin.kubeconfig", etcd


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--watchers", type=int, default=1000)
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--store", choices=["sqlite", "etcd"], default="sqlite",
                    help="backend of the server this starts (ignored with --kubeconfig)")
    ap.add_argument("--controllers", action="store_true",
                    help="run the controller manager beside the server this starts (it competes for "
                         "the same cores and watches every pod)")
    args = ap.parse_args()
    proc = etcd = None
    if not args.kubeconfig:
        proc, kc, etcd = start_server(args.store, args.controllers)
        args.kubeconfig = str(kc)
    try:
        res = asyncio.run(main(args))
    finally:
        if proc:
            proc.terminate()
            proc.wait()
        if etcd:
            etcd.stop()
    res["store"] = args.store if proc else "external"
    res["controllers"] = bool(proc and args.controllers)
    res["machine"] = f"{platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}"
    print(orjson.dumps(res, option=orjson.OPT_INDENT_2).decode())
