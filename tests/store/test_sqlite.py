"""SQLiteStore: the contract suite, plus what only a file-backed store can promise."""
from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shim.store import CompactedError, Event, UnavailableError, open_store
from shim.store.sqlite import SQLiteStore

from .contract import TIMEOUT, StoreContract, collect_events

ROOT = Path(__file__).resolve().parents[2]


def small_store(path: Path, **opts) -> SQLiteStore:
    """Tiny batch sizes, so the tests cross replay and compaction chunk boundaries."""
    return SQLiteStore(str(path), **{"replay_batch": 7, "compact_chunk": 5, **opts})


@pytest.fixture
async def store(tmp_path):
    s = small_store(tmp_path / "store.db")
    await s.start()
    yield s
    await s.close()


class TestSQLite(StoreContract):
    pass


# ---- durability and restart ----------------------------------------------------------


async def test_reopen_keeps_data_and_revision_continues(tmp_path):
    path = tmp_path / "store.db"
    s = small_store(path)
    await s.start()
    a = await s.create("/a", b"1")
    a2 = await s.update("/a", b"2", 0)
    await s.create("/b", b"x")
    await s.delete("/b")
    rev = await s.current_revision()
    await s.close()

    s = small_store(path)
    await s.start()
    try:
        assert await s.current_revision() == rev
        assert await s.get("/a") == a2
        assert await s.get("/a", a.mod_revision) == a
        assert await s.get("/b") is None
        c = await s.create("/c", b"y")
        assert c.mod_revision == rev + 1
        watch = s.watch("/", a.mod_revision)       # history survived, prev values too
        events = await collect_events(watch, c.mod_revision)
        watch.close()
        assert [e.type for e in events] == ["PUT", "PUT", "DELETE", "PUT"]
        assert events[0] == Event("PUT", a2, a)
    finally:
        await s.close()


async def test_delete_last_then_reopen_keeps_revision(tmp_path):
    path = tmp_path / "store.db"
    s = small_store(path)
    await s.start()
    await s.create("/a", b"1")
    await s.delete("/a")
    await s.compact(2)
    await s.close()
    s = small_store(path)
    await s.start()
    try:
        assert await s.current_revision() == 2
        assert (await s.create("/a", b"again")).mod_revision == 3
    finally:
        await s.close()


async def test_compact_revision_survives_restart(tmp_path):
    path = tmp_path / "store.db"
    s = small_store(path)
    await s.start()
    for i in range(30):
        await s.create(f"/k/{i % 4}", b"v") if i < 4 else await s.update(f"/k/{i % 4}", b"v", 0)
    await s.compact(20)
    at20 = await s.range("/k/", revision=20)
    await s.close()
    s = small_store(path)
    await s.start()
    try:
        assert s.compact_revision == 20
        with pytest.raises(CompactedError):
            await s.get("/k/0", 19)
        assert (await s.range("/k/", revision=20)).kvs == at20.kvs
        watch = s.watch("/k/", 10)
        with pytest.raises(CompactedError):
            await asyncio.wait_for(watch.__anext__(), TIMEOUT)
    finally:
        await s.close()


async def test_close_flushes_to_disk(tmp_path):
    path = tmp_path / "store.db"
    s = small_store(path)
    await s.start()
    tasks = [asyncio.create_task(s.create(f"/f/{i}", b"v")) for i in range(100)]
    await asyncio.sleep(0)
    await s.close()
    await asyncio.gather(*tasks)
    s = small_store(path)
    await s.start()
    try:
        assert len((await s.range("/f/")).kvs) == 100
    finally:
        await s.close()


_CHILD = textwrap.dedent("""
    import asyncio, sys
    from shim.store.sqlite import SQLiteStore

    async def main(path):
        store = SQLiteStore(path)
        await store.start()
        out = sys.stdout

        async def creator(n):
            i = 0
            while True:
                key = f"/k/{n}/{i}"
                kv = await store.create(key, b"x" * 512)
                if i % 3 == 0:
                    kv = await store.update(key, b"y" * 512, kv.mod_revision)
                out.write(f"{key} {kv.mod_revision} {kv.version}\\n")
                out.flush()
                i += 1

        await asyncio.gather(*(creator(n) for n in range(20)))

    asyncio.run(main(sys.argv[1]))
""")


async def test_kill9_loses_no_acknowledged_write(tmp_path):
    """A child writes as fast as it can and prints each write after it is
    acknowledged; SIGKILL it mid-stream; every printed write must be on disk."""
    path = tmp_path / "store.db"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acked = []
    try:
        while len(acked) < 3000:
            line = await asyncio.to_thread(child.stdout.readline)
            if not line:
                pytest.fail(f"child died: {child.stderr.read()}")
            acked.append(line.split())
        child.send_signal(signal.SIGKILL)
        # through the same buffered reader: communicate() would skip what it holds
        rest = await asyncio.to_thread(child.stdout.read)
        await asyncio.to_thread(child.wait, TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    child.stdout.close()
    child.stderr.close()
    # a line cut short by the kill was never acknowledged
    acked += [line.split() for line in rest.splitlines(keepends=True) if line.endswith("\n")]

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    s = SQLiteStore(str(path))
    await s.start()
    try:
        for key, rev, version in acked:
            kv = await s.get(key)
            assert kv is not None, f"acknowledged {key} lost"
            assert kv.mod_revision >= int(rev) and kv.version >= int(version)
        head = await s.current_revision()
        assert head >= max(int(rev) for _, rev, _ in acked)
        # the log is dense: no revision is missing or half-written
        everything = await s.range("/k/")
        assert all(kv.value in (b"x" * 512, b"y" * 512) for kv in everything.kvs)
        watch = s.watch("/", 1)
        events = await collect_events(watch, head, timeout=30)
        watch.close()
        assert [e.revision for e in events] == list(range(2, head + 1))
        assert (await s.create("/after", b"v")).mod_revision == head + 1
    finally:
        await s.close()


# ---- compaction internals ------------------------------------------------------------


def log_rows(path: Path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT id, name, deleted FROM log ORDER BY id").fetchall()
    finally:
        conn.close()


async def test_compaction_removes_superseded_rows(tmp_path):
    path = tmp_path / "store.db"
    s = small_store(path)
    await s.start()
    try:
        await s.create("/a", b"1")        # 1
        await s.update("/a", b"2", 0)     # 2
        await s.create("/b", b"1")        # 3
        await s.delete("/b")              # 4
        await s.update("/a", b"3", 0)     # 5
        await s.create("/c", b"1")        # 6
        await s.update("/c", b"2", 0)     # 7
        await s.update("/a", b"4", 0)     # 8
        await s.compact(7)
        # kept: each key's newest row below 7 unless a delete, and everything >= 7
        assert [r[0] for r in log_rows(path)] == [5, 6, 7, 8]
        await s.compact(8)
        assert [r[0] for r in log_rows(path)] == [5, 7, 8]
        assert (await s.get("/a", 8)).value == b"4"
        assert (await s.get("/c", 8)).value == b"2"
    finally:
        await s.close()


async def test_compaction_interrupted_resumes_on_start(tmp_path):
    path = tmp_path / "store.db"
    s = small_store(path)
    await s.start()
    for i in range(100):
        await (s.create("/a", b"0") if i == 0 else s.update("/a", f"{i}".encode(), 0))
    await s.close()
    # a compaction recorded but physically not done (as after a crash mid-way)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO meta (key, value) VALUES ('compact_revision', 90)")
    conn.commit()
    conn.close()
    s = small_store(path)
    await s.start()
    try:
        assert s.compact_revision == 90
        with pytest.raises(CompactedError):
            await s.get("/a", 50)
        for _ in range(500):
            if len(log_rows(path)) == 12:
                break
            await asyncio.sleep(0.01)
        assert [r[0] for r in log_rows(path)] == list(range(89, 101))
        assert (await s.get("/a", 90)).value == b"89"
    finally:
        await s.close()


async def test_compaction_racing_a_replaying_watch(tmp_path):
    """A watch replaying history that compaction overtakes must fail, not skip."""
    path = tmp_path / "store.db"
    s = small_store(path, replay_batch=5)
    await s.start()
    try:
        await s.create("/a", b"0")
        for i in range(1, 60):
            await s.update("/a", f"{i}".encode(), 0)
        watch = s.watch("/", 1)
        first = await asyncio.wait_for(watch.__anext__(), TIMEOUT)
        assert [e.revision for e in first.events] == [2, 3, 4, 5, 6]
        await s.compact(40)
        with pytest.raises(CompactedError):
            await asyncio.wait_for(watch.__anext__(), TIMEOUT)
        with pytest.raises(StopAsyncIteration):
            await watch.__anext__()
    finally:
        await s.close()


# ---- watch limits and misc -----------------------------------------------------------


async def test_slow_watcher_is_ended_with_compacted(tmp_path):
    s = small_store(tmp_path / "store.db", watch_queue_limit=10)
    await s.start()
    try:
        slow = s.watch("/", 0)
        fast = s.watch("/", 0)
        seen = []

        async def consume():
            async for resp in fast:
                seen.extend(resp.events)

        task = asyncio.create_task(consume())
        for i in range(30):
            await s.create(f"/k/{i}", b"v")
        with pytest.raises(CompactedError):
            async with asyncio.timeout(TIMEOUT):
                async for _ in slow:
                    pass
        await asyncio.sleep(0.05)
        assert len(seen) == 30          # the fast one is unaffected
        fast.close()
        await task
    finally:
        await s.close()


async def test_second_store_on_same_file_is_refused(tmp_path):
    path = tmp_path / "store.db"
    s = SQLiteStore(str(path))
    await s.start()
    try:
        other = SQLiteStore(str(path))
        with pytest.raises(UnavailableError):
            await other.start()
    finally:
        await s.close()
    again = SQLiteStore(str(path))      # released on close
    await again.start()
    await again.close()


async def test_closed_store_refuses_calls(tmp_path):
    s = SQLiteStore(str(tmp_path / "store.db"))
    await s.start()
    await s.close()
    await s.close()
    with pytest.raises(UnavailableError):
        await s.create("/a", b"v")
    with pytest.raises(UnavailableError):
        await s.get("/a")
    with pytest.raises(UnavailableError):
        s.watch("/", 0)


async def test_two_stores_in_one_process(tmp_path):
    a, b = SQLiteStore(str(tmp_path / "a.db")), SQLiteStore(str(tmp_path / "b.db"))
    await a.start()
    await b.start()
    try:
        wa, wb = a.watch("/", 0), b.watch("/", 0)
        await a.create("/x", b"a")
        await b.create("/y", b"b")
        assert [e.kv.key for e in await collect_events(wa, 1)] == ["/x"]
        assert [e.kv.key for e in await collect_events(wb, 1)] == ["/y"]
        assert await a.get("/y") is None
    finally:
        await a.close()
        await b.close()


async def test_bad_write_fails_alone(tmp_path):
    """A write SQLite rejects fails by itself; the writes batched with it commit."""
    s = SQLiteStore(str(tmp_path / "store.db"))
    await s.start()
    try:
        results = await asyncio.gather(
            s.create("/ok/1", b"v"), s.create("/bad/\ud800", b"v"), s.create("/ok/2", b"v"),
            return_exceptions=True)
        assert results[0].mod_revision == 1 and results[2].mod_revision == 2
        assert isinstance(results[1], UnicodeEncodeError)
        assert await s.current_revision() == 2
    finally:
        await s.close()


def test_open_store_factory(tmp_path):
    assert isinstance(open_store("sqlite", path=str(tmp_path / "x.db")), SQLiteStore)
    with pytest.raises(ValueError):
        open_store("nope")
    with pytest.raises(ValueError):
        SQLiteStore(":memory:")
    assert os.listdir(tmp_path) == []     # building does not touch the disk


async def test_watch_seam_with_committed_but_unpublished_writes(tmp_path):
    """Writes committed to the file whose events the loop has not published yet when a
    watch starts: the watch must get each of them exactly once (live, not replayed)."""
    s = small_store(tmp_path / "store.db")
    await s.start()
    try:
        for i in range(20):
            await s.create(f"/k/{i}", b"v")
        held = []
        publish = s._writer._on_commit
        s._writer._on_commit = lambda *args: held.append(args)
        writes = [asyncio.create_task(s.update(f"/k/{i}", b"w", 0)) for i in range(5)]
        async with asyncio.timeout(TIMEOUT):
            while await s.current_revision() < 25:      # committed, not yet announced
                await asyncio.sleep(0.001)
        watch = s.watch("/k/", 3)
        first = await asyncio.wait_for(watch.__anext__(), TIMEOUT)
        assert first.events[0].revision == 4
        s._writer._on_commit = publish
        for args in held:
            publish(*args)
        await asyncio.gather(*writes)
        events = first.events + await collect_events(watch, 25)
        watch.close()
        assert [e.revision for e in events] == list(range(4, 26))
    finally:
        await s.close()


async def test_sparse_prefix_replay_crosses_empty_windows(tmp_path):
    s = small_store(tmp_path / "store.db")       # 7 events / 70 revisions per step
    await s.start()
    try:
        wanted = []
        for i in range(600):
            await s.create(f"/noise/{i}", b"v")
            if i % 150 == 0:
                wanted.append((await s.create(f"/rare/{i}", b"v")).mod_revision)
        watch = s.watch("/rare/", 1)
        events = await collect_events(watch, wanted[-1])
        assert [e.revision for e in events] == wanted
        live = await s.create("/rare/live", b"v")
        assert [e.kv for e in await collect_events(watch, live.mod_revision)] == [live]
        watch.close()
    finally:
        await s.close()


def test_prefix_end():
    from shim.store.sqlite import _prefix_end
    assert _prefix_end("/a/") == "/a0"
    assert _prefix_end("") is None
    assert _prefix_end("a\U0010ffff") == "b"
    assert _prefix_end("\U0010ffff") is None
    assert _prefix_end("a\ud7ff") == "a\ue000"


async def test_unicode_keys_range_in_code_point_order(tmp_path):
    s = small_store(tmp_path / "store.db")
    await s.start()
    try:
        keys = ["/u/a", "/u/é", "/u/z", "/u/\U0001f600", "/u/\uffff", "/u\U0010ffff"]
        for key in keys:
            await s.create(key, key.encode())
        assert [kv.key for kv in (await s.range("/u/")).kvs] == sorted(keys[:5])
        assert [kv.key for kv in (await s.range("/u/é")).kvs] == ["/u/é"]
    finally:
        await s.close()


# ---- expiry: durable, swept in batches, migrated ----------------------------------------


def expiry_rows(path: Path) -> dict[str, tuple[int, float]]:
    conn = sqlite3.connect(path)
    try:
        return {name: (rev, at) for name, rev, at in
                conn.execute("SELECT name, id, at FROM expiry").fetchall()}
    finally:
        conn.close()


async def wait_until_gone(store: SQLiteStore, key: str, timeout: float = 8.0) -> None:
    async with asyncio.timeout(timeout):
        while await store.get(key) is not None:
            await asyncio.sleep(0.05)


async def test_expiry_survives_restart_and_overdue_keys_go_at_start(tmp_path):
    path = tmp_path / "store.db"
    s = small_store(path)
    await s.start()
    overdue = await s.create("/e/overdue", b"1", ttl=1)
    later = await s.create("/e/later", b"1", ttl=3.5)
    plain = await s.create("/e/plain", b"1")
    t0 = asyncio.get_running_loop().time()
    await s.close()
    assert set(expiry_rows(path)) == {"/e/overdue", "/e/later"}
    await asyncio.sleep(1.5)                            # /e/overdue falls due while closed

    s = small_store(path)
    await s.start()
    try:
        watch = s.watch("/e/", plain.mod_revision)
        deleted = await asyncio.wait_for(watch.__anext__(), 1.0)   # soon after start
        assert [(e.type, e.kv.key, e.prev_kv) for e in deleted.events] == \
            [("DELETE", "/e/overdue", overdue)]
        assert deleted.events[0].revision == plain.mod_revision + 1
        assert await s.get("/e/later") == later              # its expiry is still ahead
        await wait_until_gone(s, "/e/later")
        assert asyncio.get_running_loop().time() - t0 >= 3.4
        assert await s.get("/e/plain") == plain
        assert expiry_rows(path) == {}
        watch.close()
    finally:
        await s.close()


async def test_expiry_swept_in_batches_interleaved_with_writes(tmp_path):
    """Expired keys go max_batch per transaction, and writes queued meanwhile are committed
    between those transactions rather than wait for the whole sweep."""
    path = tmp_path / "store.db"
    s = small_store(path, max_batch=4)
    await s.start()
    try:
        start = await s.current_revision()
        await asyncio.gather(*(s.create(f"/b/{i:02}", b"v", ttl=0.5) for i in range(30)))
        watch = s.watch("/", start)
        done = asyncio.Event()
        async def keep_writing(n):
            i = 0
            while not done.is_set():
                await s.create(f"/w/{n}/{i}", b"v")
                i += 1
        writers = [asyncio.create_task(keep_writing(n)) for n in range(8)]
        try:
            async with asyncio.timeout(8):
                while (await s.range("/b/", count=True)).count:
                    await asyncio.sleep(0.02)
        finally:
            done.set()
            await asyncio.gather(*writers)
        events = await collect_events(watch, await s.current_revision())
        watch.close()
        deletes = [e.revision for e in events if e.type == "DELETE"]
        assert len(deletes) == 30
        writes_between = [e.revision for e in events
                          if e.type == "PUT" and deletes[0] < e.revision < deletes[-1]]
        assert writes_between, "the sweep held the writer for all 30 keys at once"
        assert expiry_rows(path) == {}
    finally:
        await s.close()


async def test_stale_expiry_row_never_deletes_a_newer_write(tmp_path):
    """The expiry row names the write it was set for; a key written since (by a build
    that knew no expiry, say) is left alone, and the row dropped."""
    path = tmp_path / "store.db"
    s = small_store(path)
    await s.start()
    await s.create("/s/first", b"1")
    kv = await s.create("/s/k", b"1", ttl=60)
    await s.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE expiry SET id = id - 1, at = 0")       # due, for an older write
    conn.commit()
    conn.close()
    s = small_store(path)
    await s.start()
    try:
        async with asyncio.timeout(5):
            while expiry_rows(path):
                await asyncio.sleep(0.05)
        assert await s.get("/s/k") == kv
        assert await s.current_revision() == kv.mod_revision     # nothing was written
    finally:
        await s.close()


async def test_database_from_before_expiry_opens_and_expires(tmp_path):
    """A file written before the expiry table existed (the same layout minus that table and
    its index) opens, keeps its data, and takes ttls from then on."""
    path = tmp_path / "store.db"
    s = small_store(path)
    await s.start()
    old = await s.create("/m/old", b"1")
    await s.close()
    conn = sqlite3.connect(path)
    conn.executescript("DROP INDEX expiry_at; DROP TABLE expiry;")
    conn.close()
    s = small_store(path)
    await s.start()
    try:
        assert await s.get("/m/old") == old
        await s.create("/m/new", b"1", ttl=0.5)
        await wait_until_gone(s, "/m/new")
        assert await s.get("/m/old") == old
    finally:
        await s.close()


_TTL_CHILD = textwrap.dedent("""
    import asyncio, sys
    from shim.store.sqlite import SQLiteStore

    async def main(path):
        store = SQLiteStore(path)
        await store.start()
        out = sys.stdout

        async def writer(n):
            i = 0
            while True:
                kv = await store.create(f"/t/{n}/{i}", b"x", ttl=2)
                if i % 2:
                    kv = await store.update(kv.key, b"y", kv.mod_revision, ttl=2)
                out.write(f"{kv.key} {kv.mod_revision}\\n")
                out.flush()
                i += 1

        await asyncio.gather(*(writer(n) for n in range(10)))

    asyncio.run(main(sys.argv[1]))
""")


async def test_kill9_keeps_every_acknowledged_expiry(tmp_path):
    """The expiry is committed with its write: after SIGKILL, every acknowledged write has
    its expiry row, and the keys still go once the store is open again."""
    path = tmp_path / "store.db"
    child = subprocess.Popen([sys.executable, "-c", _TTL_CHILD, str(path)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acked = []
    try:
        while len(acked) < 500:
            line = await asyncio.to_thread(child.stdout.readline)
            if not line:
                pytest.fail(f"child died: {child.stderr.read()}")
            acked.append(line.split())
        child.send_signal(signal.SIGKILL)
        await asyncio.to_thread(child.wait, TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
    rows = expiry_rows(path)
    conn = sqlite3.connect(path)
    live = dict(conn.execute("SELECT name, id FROM current").fetchall())
    conn.close()
    for key, rev in acked:
        if key in live:      # (the child's own sweeper may have deleted the first ones)
            assert rows[key][0] >= int(rev), f"the expiry of {key} was lost"
    assert set(rows) == set(live)
    s = SQLiteStore(str(path))
    await s.start()
    try:
        async with asyncio.timeout(10):
            while (await s.range("/t/", count=True)).count:
                await asyncio.sleep(0.1)
        assert expiry_rows(path) == {}
    finally:
        await s.close()
