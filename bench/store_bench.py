"""Store micro-benchmarks: write throughput, point reads, big ranges, watch fan-out.

    .venv/bin/python bench/store_bench.py [--uvloop] [--dir DIR]

Each figure runs against a fresh SQLiteStore in a temporary directory (or DIR), with
the store's production settings (WAL, synchronous=FULL, group commit).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time

from shim.store import open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    parser.add_argument("--dir", help="where to put the database files")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop
        uvloop.install()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        asyncio.run(run_all(tmp))


async def run_all(tmp: str) -> None:
    print(f"loop: {type(asyncio.get_running_loop()).__module__}")
    for name, bench in [("creates", bench_creates), ("cas updates", bench_updates),
                        ("gets", bench_gets), ("range", bench_range),
                        ("watch fan-out", bench_fanout), ("compaction", bench_compact)]:
        print(f"-- {name}")
        store = open_store("sqlite", path=os.path.join(tmp, f"{name.replace(' ', '_')}.db"))
        await store.start()
        try:
            await bench(store)
        finally:
            await store.close()


async def bench_creates(store) -> None:
    value = b"v" * 1024
    for concurrency, total in [(1, 2_000), (200, 20_000)]:
        per_task = total // concurrency

        async def creator(n: int) -> None:
            for i in range(per_task):
                await store.create(f"/c{concurrency}/{n}/{i}", value)

        t0 = time.perf_counter()
        await asyncio.gather(*(creator(n) for n in range(concurrency)))
        dt = time.perf_counter() - t0
        print(f"creates, concurrency {concurrency:>3}: {total / dt:>9,.0f}/s "
              f"({dt / per_task * 1e3:.2f} ms per create per task)")


async def bench_updates(store) -> None:
    keys = [f"/u/{i}" for i in range(200)]
    for key in keys:
        await store.create(key, b"0")
    rounds = 50

    async def updater(key: str) -> None:
        kv = await store.get(key)
        for i in range(rounds):
            kv = await store.update(key, str(i).encode() * 100, kv.mod_revision)

    t0 = time.perf_counter()
    await asyncio.gather(*(updater(k) for k in keys))
    dt = time.perf_counter() - t0
    print(f"CAS updates, concurrency 200: {len(keys) * rounds / dt:>9,.0f}/s")


async def bench_gets(store) -> None:
    n = 10_000
    value = b"g" * 2048
    kvs = await asyncio.gather(*(store.create(f"/g/{i:05}", value) for i in range(n)))
    keys = [f"/g/{random.randrange(n):05}" for _ in range(50_000)]
    t0 = time.perf_counter()
    for key in keys:
        await store.get(key)
    dt = time.perf_counter() - t0
    print(f"get latest (2 KB, {n:,} keys): {len(keys) / dt:>9,.0f}/s "
          f"({dt / len(keys) * 1e6:.1f} us each)")
    rev = max(kv.mod_revision for kv in kvs) // 2
    t0 = time.perf_counter()
    for key in keys[:10_000]:
        await store.get(key, rev)
    dt = time.perf_counter() - t0
    print(f"get at a past revision:       {10_000 / dt:>9,.0f}/s ({dt / 10_000 * 1e6:.1f} us each)")
    t0 = time.perf_counter()
    for _ in range(10_000):
        await store.get("/g/missing")
    dt = time.perf_counter() - t0
    print(f"get of a missing key:         {10_000 / dt:>9,.0f}/s ({dt / 10_000 * 1e6:.1f} us each)")


async def bench_range(store) -> None:
    n = 5_000
    value = b"r" * 2048
    await asyncio.gather(*(store.create(f"/r/{i:05}", value) for i in range(n)))
    for i in range(2_000):                      # other prefixes, and some history
        await store.create(f"/other/{i}", value)
    mid = await store.current_revision()
    await asyncio.gather(*(store.update(f"/r/{i:05}", value, 0) for i in range(0, n, 2)))

    async def timed(label: str, **kw) -> None:
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            result = await store.range("/r/", **kw)
            times.append(time.perf_counter() - t0)
        print(f"{label:<38} {len(result.kvs):>5} keys in {min(times) * 1e3:6.1f} ms "
              f"(median {statistics.median(times) * 1e3:.1f} ms)")

    await timed("range of 5,000 x 2 KB, latest:")
    await timed("range of 5,000 x 2 KB, past revision:", revision=mid)
    await timed("range limit 500, latest:", limit=500, count=True)
    await timed("range limit 500, past revision:", limit=500, revision=mid, count=True)


async def bench_fanout(store) -> None:
    watchers = 1_000
    writes = 100
    received = [0] * writes
    done = [asyncio.get_running_loop().create_future() for _ in range(writes)]
    first_seen: list[float] = [0.0] * writes
    last_seen: list[float] = [0.0] * writes

    async def consume(watch) -> None:
        async for resp in watch:
            now = time.perf_counter()
            for e in resp.events:
                i = int(e.kv.key.rsplit("/", 1)[1])
                if received[i] == 0:
                    first_seen[i] = now
                received[i] += 1
                if received[i] == watchers:
                    last_seen[i] = now
                    done[i].set_result(None)

    watches = [store.watch("/w/", 0) for _ in range(watchers)]
    tasks = [asyncio.create_task(consume(w)) for w in watches]
    await asyncio.sleep(0.1)
    first, last = [], []
    for i in range(writes):
        t0 = time.perf_counter()
        await store.create(f"/w/{i}", b"x" * 512)
        await done[i]
        first.append(first_seen[i] - t0)
        last.append(last_seen[i] - t0)
    for w in watches:
        w.close()
    await asyncio.gather(*tasks)

    def q(xs, p):
        return sorted(xs)[min(len(xs) - 1, int(len(xs) * p))] * 1e3

    print(f"write -> first of {watchers} watchers: p50 {q(first, .5):.2f} ms, "
          f"p99 {q(first, .99):.2f} ms")
    print(f"write -> all {watchers} watchers:      p50 {q(last, .5):.2f} ms, "
          f"p99 {q(last, .99):.2f} ms")


async def bench_compact(store) -> None:
    keys = 1_000
    await asyncio.gather(*(store.create(f"/k/{i}", b"v" * 256) for i in range(keys)))
    for _ in range(20):
        await asyncio.gather(*(store.update(f"/k/{i}", b"w" * 256, 0) for i in range(keys)))
    head = await store.current_revision()
    t0 = time.perf_counter()
    probe_lag = []

    async def probe() -> None:                  # how long writes wait meanwhile
        i = 0
        while True:
            t = time.perf_counter()
            await store.update(f"/k/{i % keys}", b"p", 0)
            probe_lag.append(time.perf_counter() - t)
            i += 1

    task = asyncio.create_task(probe())
    await store.compact(head)
    dt = time.perf_counter() - t0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    print(f"compact {head:,} revisions ({keys:,} keys): {dt * 1e3:.0f} ms; "
          f"a write meanwhile waited at most {max(probe_lag) * 1e3:.1f} ms "
          f"(median {statistics.median(probe_lag) * 1e3:.2f} ms)")


if __name__ == "__main__":
    main()
