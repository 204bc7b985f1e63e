"""The store contract as tests, for every backend.

A backend's test module subclasses StoreContract and provides a `store` fixture that
yields a started, empty store and closes it afterwards (closing twice must be fine).
The class name does not start with "Test", so pytest collects it only through
subclasses.
"""
from __future__ import annotations

import asyncio

import pytest

from shim.store import (
    CompactedError,
    ConflictError,
    Event,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    Store,
    Watch,
    WatchResponse,
)

TIMEOUT = 10.0


async def next_response(watch: Watch, timeout: float = TIMEOUT) -> WatchResponse:
    return await asyncio.wait_for(watch.__anext__(), timeout)


async def collect_events(watch: Watch, until_revision: int,
                         timeout: float = TIMEOUT) -> list[Event]:
    """Events from watch until one at or beyond until_revision has arrived."""
    events: list[Event] = []
    async with asyncio.timeout(timeout):
        async for resp in watch:
            events.extend(resp.events)
            if events and events[-1].revision >= until_revision:
                return events
    raise AssertionError(f"watch ended before revision {until_revision}: {events}")


async def expect_quiet(watch: Watch, wait: float = 0.2) -> None:
    """Assert that the watch yields nothing within `wait` seconds."""
    with pytest.raises(TimeoutError):
        resp = await asyncio.wait_for(watch.__anext__(), wait)
        pytest.fail(f"unexpected watch response {resp}")


class StoreContract:
    """Backend-agnostic tests of the Store contract (shim/store/base.py)."""

    # ---- create / get ------------------------------------------------------------------

    async def test_empty_store(self, store: Store):
        assert await store.current_revision() == store.initial_revision
        assert store.compact_revision == 0
        assert await store.get("/nope") is None
        result = await store.range("/")
        assert result.kvs == [] and result.more is False

    async def test_create_and_get(self, store: Store):
        kv = await store.create("/a/1", b"one")
        assert kv == KeyValue("/a/1", b"one", kv.mod_revision, kv.mod_revision, 1)
        assert kv.mod_revision >= 1
        assert await store.get("/a/1") == kv
        assert await store.get("/a/2") is None
        assert await store.current_revision() == kv.mod_revision

    async def test_create_existing_raises(self, store: Store):
        kv = await store.create("/a/1", b"one")
        with pytest.raises(KeyExistsError) as info:
            await store.create("/a/1", b"again")
        assert info.value.key == "/a/1"
        assert await store.get("/a/1") == kv
        assert await store.current_revision() == kv.mod_revision   # no revision consumed

    async def test_values_are_binary_safe(self, store: Store):
        value = bytes(range(256)) * 10
        await store.create("/bin", value)
        assert (await store.get("/bin")).value == value
        await store.create("/empty", b"")
        assert (await store.get("/empty")).value == b""

    # ---- update ------------------------------------------------------------------------

    async def test_update_cas_success(self, store: Store):
        kv = await store.create("/a/1", b"one")
        kv2 = await store.update("/a/1", b"two", kv.mod_revision)
        assert kv2.value == b"two"
        assert kv2.create_revision == kv.create_revision
        assert kv2.mod_revision > kv.mod_revision
        assert kv2.version == 2
        kv3 = await store.update("/a/1", b"three", kv2.mod_revision)
        assert kv3.version == 3 and kv3.create_revision == kv.create_revision
        assert await store.get("/a/1") == kv3

    async def test_update_conflict_carries_current(self, store: Store):
        kv = await store.create("/a/1", b"one")
        kv2 = await store.update("/a/1", b"two", kv.mod_revision)
        with pytest.raises(ConflictError) as info:
            await store.update("/a/1", b"stale", kv.mod_revision)
        assert info.value.key == "/a/1"
        assert info.value.current == kv2
        assert await store.get("/a/1") == kv2
        assert await store.current_revision() == kv2.mod_revision

    async def test_update_unconditional(self, store: Store):
        kv = await store.create("/a/1", b"one")
        await store.update("/a/1", b"two", 0)
        kv3 = await store.update("/a/1", b"three", 0)
        assert kv3.value == b"three" and kv3.version == 3
        assert kv3.create_revision == kv.create_revision

    async def test_update_missing_raises(self, store: Store):
        with pytest.raises(KeyNotFoundError) as info:
            await store.update("/a/1", b"x", 0)
        assert info.value.key == "/a/1"
        with pytest.raises(KeyNotFoundError):
            await store.update("/a/1", b"x", 5)
        assert await store.current_revision() == store.initial_revision

    # ---- delete ------------------------------------------------------------------------

    async def test_delete_unconditional(self, store: Store):
        kv = await store.create("/a/1", b"one")
        deleted = await store.delete("/a/1")
        assert deleted == kv
        assert await store.get("/a/1") is None
        assert await store.current_revision() == kv.mod_revision + 1
        with pytest.raises(KeyNotFoundError):
            await store.delete("/a/1")

    async def test_delete_with_precondition(self, store: Store):
        kv = await store.create("/a/1", b"one")
        kv2 = await store.update("/a/1", b"two", kv.mod_revision)
        with pytest.raises(ConflictError) as info:
            await store.delete("/a/1", kv.mod_revision)
        assert info.value.current == kv2
        assert await store.get("/a/1") == kv2
        assert await store.delete("/a/1", kv2.mod_revision) == kv2
        assert await store.get("/a/1") is None
        with pytest.raises(KeyNotFoundError):
            await store.delete("/a/1", kv2.mod_revision)

    async def test_recreate_after_delete_is_new_incarnation(self, store: Store):
        kv = await store.create("/a/1", b"one")
        await store.update("/a/1", b"two", 0)
        await store.delete("/a/1")
        again = await store.create("/a/1", b"new")
        assert again.version == 1
        assert again.create_revision == again.mod_revision > kv.create_revision

    # ---- revisions -----------------------------------------------------------------------

    async def test_revision_monotonic_across_keys(self, store: Store):
        revs = [(await store.create(f"/k/{i}", b"v")).mod_revision for i in range(5)]
        revs.append((await store.update("/k/0", b"w", 0)).mod_revision)
        with pytest.raises(KeyExistsError):
            await store.create("/k/1", b"dup")          # failures consume nothing
        with pytest.raises(ConflictError):
            await store.update("/k/1", b"w", 999)
        await store.delete("/k/2")
        revs.append(await store.current_revision())
        revs.append((await store.create("/other", b"v")).mod_revision)
        assert revs == list(range(revs[0], revs[0] + len(revs)))
        assert await store.current_revision() == revs[-1]

    async def test_concurrent_writes_get_distinct_revisions(self, store: Store):
        kvs = await asyncio.gather(*(store.create(f"/c/{i:03}", b"v") for i in range(200)))
        revs = sorted(kv.mod_revision for kv in kvs)
        assert revs == list(range(revs[0], revs[0] + 200))
        assert await store.current_revision() == revs[-1]

    # ---- range ---------------------------------------------------------------------------

    async def test_range_by_prefix(self, store: Store):
        for key in ["/a/2", "/ab", "/a/1", "/a", "/a/3/x", "/b/1", "/a0"]:
            await store.create(key, key.encode())
        result = await store.range("/a/")
        assert [kv.key for kv in result.kvs] == ["/a/1", "/a/2", "/a/3/x"]
        assert [kv.value for kv in result.kvs] == [b"/a/1", b"/a/2", b"/a/3/x"]
        assert result.more is False
        assert result.revision == await store.current_revision()
        everything = await store.range("")
        assert [kv.key for kv in everything.kvs] == sorted(
            ["/a/2", "/ab", "/a/1", "/a", "/a/3/x", "/b/1", "/a0"])
        assert (await store.range("/zzz")).kvs == []

    async def test_range_excludes_deleted(self, store: Store):
        await store.create("/a/1", b"1")
        await store.create("/a/2", b"2")
        await store.delete("/a/1")
        result = await store.range("/a/")
        assert [kv.key for kv in result.kvs] == ["/a/2"]

    async def test_range_limit_start_key_count(self, store: Store):
        keys = [f"/p/{i:02}" for i in range(10)]
        for key in keys:
            await store.create(key, b"v")
        await store.create("/q/1", b"v")
        first = await store.range("/p/", limit=4, count=True)
        assert [kv.key for kv in first.kvs] == keys[:4]
        assert first.more is True and first.count == 10
        rest = await store.range("/p/", limit=4, start_key=keys[4], count=True)
        assert [kv.key for kv in rest.kvs] == keys[4:8]
        assert rest.more is True and rest.count == 6
        tail = await store.range("/p/", limit=4, start_key=keys[8], count=True)
        assert [kv.key for kv in tail.kvs] == keys[8:]
        assert tail.more is False and tail.count == 2
        exact = await store.range("/p/", limit=10, count=True)
        assert len(exact.kvs) == 10 and exact.more is False and exact.count == 10
        # start_key below the prefix does not widen it; above its end gives nothing
        assert len((await store.range("/p/", start_key="/a")).kvs) == 10
        assert (await store.range("/p/", start_key="/q/")).kvs == []

    async def test_range_pagination_at_a_fixed_revision(self, store: Store):
        keys = [f"/p/{i:02}" for i in range(9)]
        for key in keys:
            await store.create(key, b"v")
        first = await store.range("/p/", limit=4)
        # writes after the first page must not show in later pages read at its revision
        await store.create("/p/05a", b"late")
        await store.delete("/p/07")
        seen = [kv.key for kv in first.kvs]
        page = first
        while page.more:
            page = await store.range("/p/", limit=4, start_key=seen[-1] + "\0",
                                     revision=first.revision)
            assert page.revision == first.revision
            seen += [kv.key for kv in page.kvs]
        assert seen == keys

    async def test_get_and_range_at_past_revisions(self, store: Store):
        a1 = await store.create("/a/1", b"v1")
        a2 = await store.update("/a/1", b"v2", 0)
        b1 = await store.create("/a/2", b"b1")
        await store.delete("/a/1")
        b2 = await store.update("/a/2", b"b2", 0)
        assert await store.get("/a/1", a1.mod_revision) == a1
        assert await store.get("/a/1", a2.mod_revision) == a2
        assert await store.get("/a/1", b1.mod_revision) == a2
        assert await store.get("/a/1", b2.mod_revision) is None
        assert await store.get("/a/2", a2.mod_revision) is None
        at = await store.range("/a/", revision=b1.mod_revision)
        assert at.kvs == [a2, b1] and at.revision == b1.mod_revision
        at = await store.range("/a/", revision=a1.mod_revision, count=True)
        assert at.kvs == [a1] and at.count == 1
        latest = await store.range("/a/", revision=b2.mod_revision)
        assert latest.kvs == [b2]
        limited = await store.range("/a/", revision=b1.mod_revision, limit=1, count=True)
        assert limited.kvs == [a2] and limited.more and limited.count == 2

    async def test_future_revision(self, store: Store):
        kv = await store.create("/a/1", b"v")
        future = kv.mod_revision + 1
        with pytest.raises(FutureRevisionError) as info:
            await store.get("/a/1", future)
        assert info.value.requested == future and info.value.current == kv.mod_revision
        with pytest.raises(FutureRevisionError):
            await store.range("/a/", revision=future + 10)
        with pytest.raises(FutureRevisionError):
            await store.compact(future)
        assert await store.get("/a/1", kv.mod_revision) == kv

    # ---- CAS races -----------------------------------------------------------------------

    async def test_concurrent_cas_exactly_one_wins(self, store: Store):
        kv = await store.create("/race", b"0")
        results = await asyncio.gather(
            *(store.update("/race", f"{i}".encode(), kv.mod_revision) for i in range(50)),
            return_exceptions=True)
        winners = [r for r in results if isinstance(r, KeyValue)]
        losers = [r for r in results if isinstance(r, ConflictError)]
        assert len(winners) == 1 and len(losers) == 49
        assert all(e.current == winners[0] for e in losers)
        assert await store.get("/race") == winners[0]

    async def test_concurrent_creates_exactly_one_wins(self, store: Store):
        results = await asyncio.gather(
            *(store.create("/once", f"{i}".encode()) for i in range(50)),
            return_exceptions=True)
        winners = [r for r in results if isinstance(r, KeyValue)]
        assert len(winners) == 1
        assert sum(isinstance(r, KeyExistsError) for r in results) == 49
        assert await store.get("/once") == winners[0]

    async def test_concurrent_deletes_exactly_one_wins(self, store: Store):
        kv = await store.create("/gone", b"v")
        results = await asyncio.gather(
            *(store.delete("/gone", kv.mod_revision) for _ in range(20)),
            return_exceptions=True)
        assert sum(isinstance(r, KeyValue) for r in results) == 1
        assert sum(isinstance(r, KeyNotFoundError) for r in results) == 19

    async def test_increment_under_contention_loses_nothing(self, store: Store):
        kv = await store.create("/counter", b"0")

        async def increment():
            while True:
                cur = await store.get("/counter")
                try:
                    return await store.update("/counter", str(int(cur.value) + 1).encode(),
                                              cur.mod_revision)
                except ConflictError:
                    await asyncio.sleep(0)

        await asyncio.gather(*(increment() for _ in range(30)))
        final = await store.get("/counter")
        assert final.value == b"30" and final.version == 31
        assert final.create_revision == kv.create_revision

    # ---- watch ---------------------------------------------------------------------------

    async def test_watch_from_now_sees_later_writes(self, store: Store):
        await store.create("/w/before", b"x")
        watch = store.watch("/w/", 0)
        try:
            kv = await store.create("/w/1", b"one")
            kv2 = await store.update("/w/1", b"two", kv.mod_revision)
            gone = await store.delete("/w/1")
            rev = await store.current_revision()
            events = await collect_events(watch, rev)
            assert [e.type for e in events] == ["PUT", "PUT", "DELETE"]
            assert events[0] == Event("PUT", kv, None) and events[0].is_create
            assert events[1] == Event("PUT", kv2, kv) and not events[1].is_create
            assert events[2] == Event(
                "DELETE", KeyValue("/w/1", b"", kv.create_revision, rev, 0), gone)
            assert events[2].revision == rev and gone == kv2
        finally:
            watch.close()

    async def test_watch_response_revision_covers_its_events(self, store: Store):
        watch = store.watch("/w/", 0)
        try:
            await store.create("/w/1", b"one")
            resp = await next_response(watch)
            assert resp.events and resp.revision >= resp.events[-1].revision
        finally:
            watch.close()

    async def test_watch_prefix_filters(self, store: Store):
        watch = store.watch("/a/", 0)
        try:
            await store.create("/ab", b"no")
            await store.create("/a", b"no")
            await store.create("/b/1", b"no")
            kv = await store.create("/a/1", b"yes")
            await store.create("/a0", b"no")
            last = await store.create("/a/2", b"yes")
            events = await collect_events(watch, last.mod_revision)
            assert [e.kv.key for e in events] == ["/a/1", "/a/2"]
            assert events[0].kv == kv
            await expect_quiet(watch)
        finally:
            watch.close()

    async def test_watch_replays_from_old_revision_with_prev_kv(self, store: Store):
        a1 = await store.create("/h/a", b"a1")
        start = a1.mod_revision
        a2 = await store.update("/h/a", b"a2", 0)
        await store.create("/x/noise", b"n")
        b1 = await store.create("/h/b", b"b1")
        await store.delete("/h/a")
        last = await store.update("/h/b", b"b2", 0)
        watch = store.watch("/h/", start)
        try:
            events = await collect_events(watch, last.mod_revision)
            assert [(e.type, e.kv.key) for e in events] == [
                ("PUT", "/h/a"), ("PUT", "/h/b"), ("DELETE", "/h/a"), ("PUT", "/h/b")]
            assert events[0] == Event("PUT", a2, a1)
            assert events[1] == Event("PUT", b1, None)
            assert events[2].kv == KeyValue("/h/a", b"", a1.create_revision,
                                            events[2].revision, 0)
            assert events[2].prev_kv == a2
            assert events[3] == Event("PUT", last, b1)
            # then it is live
            live = await store.create("/h/c", b"c")
            assert await collect_events(watch, live.mod_revision) == [Event("PUT", live, None)]
        finally:
            watch.close()

    async def test_watch_replay_then_live_exactly_once_under_load(self, store: Store):
        """Writes keep landing while a watch replays a long history: every event on
        the prefix arrives once, in order, with no gap at the replay/live seam."""
        wanted: list[int] = []          # revisions of every PUT under /r/
        deletes = 0
        for i in range(300):
            wanted.append((await store.create(f"/r/{i:04}", b"v")).mod_revision)
            if i % 3 == 0:
                await store.create(f"/other/{i}", b"v")
        start = wanted[10]
        stop = asyncio.Event()

        async def writer(n: int):
            nonlocal deletes
            for i in range(10_000):
                if stop.is_set():
                    return
                key = f"/r/live/{n}/{i % 7}"
                if i < 7:
                    kv = await store.create(key, b"0")
                elif i % 5 == 0:
                    await store.delete(key)
                    deletes += 1
                    kv = await store.create(key, f"{i}".encode())
                else:
                    kv = await store.update(key, f"{i}".encode(), 0)
                wanted.append(kv.mod_revision)
                await store.create(f"/other/live/{n}/{i}", b"v")

        writers = [asyncio.create_task(writer(n)) for n in range(4)]
        events: list[Event] = []
        try:
            await asyncio.sleep(0.02)
            watch = store.watch("/r/", start)
            async with asyncio.timeout(TIMEOUT):
                async for resp in watch:
                    events.extend(resp.events)
                    if len(events) > 800:
                        break
        finally:
            stop.set()
            await asyncio.gather(*writers)
        try:
            if events[-1].revision < max(wanted):
                events += await collect_events(watch, max(wanted))
        finally:
            watch.close()
        revs = [e.revision for e in events]
        assert revs == sorted(set(revs))                        # ordered, exactly once
        puts = [e.revision for e in events if e.type == "PUT"]
        assert puts == sorted(r for r in wanted if r > start)    # no gap
        assert len(events) - len(puts) == deletes
        for e in events:
            assert e.kv.key.startswith("/r/")
            before = await store.get(e.kv.key, e.revision - 1)
            assert e.prev_kv == before
            if e.type == "PUT":
                assert e.kv == await store.get(e.kv.key, e.revision)
            else:
                assert e.kv == KeyValue(e.kv.key, b"", before.create_revision, e.revision, 0)
                assert await store.get(e.kv.key, e.revision) is None

    async def test_watch_from_current_revision_gets_only_newer(self, store: Store):
        kv = await store.create("/w/1", b"one")
        watch = store.watch("/w/", kv.mod_revision)
        try:
            await expect_quiet(watch, 0.1)
            kv2 = await store.update("/w/1", b"two", 0)
            assert await collect_events(watch, kv2.mod_revision) == [Event("PUT", kv2, kv)]
        finally:
            watch.close()

    async def test_many_watchers_all_get_every_event(self, store: Store):
        watches = [store.watch("/m/" if i % 2 else "/", 0) for i in range(50)]
        try:
            kvs = [await store.create(f"/m/{i}", b"v") for i in range(20)]
            for w in watches:
                events = await collect_events(w, kvs[-1].mod_revision)
                assert [e.kv for e in events] == kvs
        finally:
            for w in watches:
                w.close()

    async def test_progress_notification(self, store: Store):
        watch = store.watch("/p/", 0)
        try:
            await store.create("/other/1", b"x")
            watch.request_progress()
            resp = await next_response(watch)
            assert resp.events == []
            assert resp.revision == await store.current_revision()
        finally:
            watch.close()

    async def test_progress_comes_after_pending_events(self, store: Store):
        await store.create("/other/0", b"x")
        old = await store.create("/p/0", b"x")
        kvs = [await store.create(f"/p/{i}", b"x") for i in range(1, 4)]
        await store.create("/other", b"x")
        rev = await store.current_revision()
        watch = store.watch("/p/", old.mod_revision - 1)   # replay pending too
        try:
            watch.request_progress()
            events = []
            async with asyncio.timeout(TIMEOUT):
                async for resp in watch:
                    if not resp.events:
                        assert resp.revision >= rev
                        break
                    events.extend(resp.events)
            assert [e.kv for e in events] == [old, *kvs]
        finally:
            watch.close()

    async def test_watch_close_ends_iteration(self, store: Store):
        watch = store.watch("/c/", 0)
        waiter = asyncio.create_task(watch.__anext__())
        await asyncio.sleep(0.05)
        watch.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(waiter, TIMEOUT)
        with pytest.raises(StopAsyncIteration):
            await watch.__anext__()
        await store.create("/c/1", b"x")     # no one to deliver to; nothing breaks
        watch.close()                        # idempotent

    async def test_store_close_ends_watches(self, store: Store):
        idle = store.watch("/idle/", 0)
        busy = store.watch("/c/", 0)
        await store.create("/c/1", b"x")
        waiter = asyncio.create_task(idle.__anext__())
        await asyncio.sleep(0.05)
        await store.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(waiter, TIMEOUT)
        async with asyncio.timeout(TIMEOUT):
            seen = [resp async for resp in busy]    # may see /c/1 first, then must end
        assert all(e.kv.key == "/c/1" for resp in seen for e in resp.events)

    async def test_close_flushes_queued_writes(self, store: Store):
        tasks = [asyncio.create_task(store.create(f"/f/{i}", b"v")) for i in range(50)]
        await asyncio.sleep(0)           # every create is submitted, none acknowledged
        await store.close()
        results = await asyncio.gather(*tasks)
        first = store.initial_revision + 1
        assert sorted(kv.mod_revision for kv in results) == list(range(first, first + 50))

    # ---- compaction ----------------------------------------------------------------------

    async def test_compaction(self, store: Store):
        await store.create("/k/a", b"a1")
        b1 = await store.create("/k/b", b"b1")
        a2 = await store.update("/k/a", b"a2", 0)
        await store.create("/k/c", b"c1")
        await store.delete("/k/c")
        a3 = await store.update("/k/a", b"a3", 0)       # compact here
        b2 = await store.update("/k/b", b"b2", 0)
        at = a3.mod_revision
        await store.compact(at)
        assert store.compact_revision == at
        for rev in (1, a2.mod_revision, at - 1):
            with pytest.raises(CompactedError) as info:
                await store.get("/k/a", rev)
            assert info.value.compact_revision == at
            with pytest.raises(CompactedError):
                await store.range("/k/", revision=rev)
        assert await store.get("/k/a", at) == a3
        assert await store.get("/k/b", at) == b1
        assert await store.get("/k/c", at) is None
        assert (await store.range("/k/", revision=at)).kvs == [a3, b1]
        assert (await store.range("/k/")).kvs == [a3, b2]
        assert await store.get("/k/a") == a3
        # latest reads (revision 0) are never compacted
        assert (await store.range("/k/", revision=0)).revision == b2.mod_revision
        # no-op below, error above
        await store.compact(at - 1)
        assert store.compact_revision == at
        with pytest.raises(FutureRevisionError):
            await store.compact(b2.mod_revision + 1)
        await store.compact(b2.mod_revision)
        assert store.compact_revision == b2.mod_revision
        assert await store.get("/k/b", b2.mod_revision) == b2

    async def test_watch_below_compaction(self, store: Store):
        await store.create("/k/a", b"a1")
        a2 = await store.update("/k/a", b"a2", 0)
        a3 = await store.update("/k/a", b"a3", 0)
        gone = await store.create("/k/gone", b"g")
        await store.delete("/k/gone")
        a4 = await store.update("/k/a", b"a4", 0)
        at = a3.mod_revision
        await store.compact(at)
        watch = store.watch("/k/", at - 2)           # wants at - 1: compacted
        with pytest.raises(CompactedError):
            await next_response(watch)
        watch.close()
        # at - 1 wants events >= at: all there, with their prev values
        watch = store.watch("/k/", at - 1)
        try:
            events = await collect_events(watch, a4.mod_revision)
            assert events[0] == Event("PUT", a3, a2)
            assert events[1] == Event("PUT", gone, None)
            assert events[2].type == "DELETE" and events[2].prev_kv == gone
            assert events[3] == Event("PUT", a4, a3)
            assert len(events) == 4
        finally:
            watch.close()

    async def test_live_watch_survives_compaction(self, store: Store):
        await store.create("/k/a", b"a1")
        watch = store.watch("/k/", 0)
        try:
            kv = await store.update("/k/a", b"a2", 0)
            await store.compact(kv.mod_revision)
            kv2 = await store.update("/k/a", b"a3", 0)
            events = await collect_events(watch, kv2.mod_revision)
            assert [e.kv for e in events] == [kv, kv2]
        finally:
            watch.close()

    async def test_compaction_with_long_history(self, store: Store):
        kvs = {}
        for round_ in range(20):
            for i in range(10):
                key = f"/h/{i}"
                if round_ == 0:
                    kvs[key] = await store.create(key, b"0")
                elif (round_ + i) % 7 == 0:
                    await store.delete(key)
                    kvs[key] = None
                elif kvs[key] is None:
                    kvs[key] = await store.create(key, f"{round_}".encode())
                else:
                    kvs[key] = await store.update(key, f"{round_}".encode(), 0)
            if round_ == 12:
                snapshot_rev = await store.current_revision()
                snapshot = await store.range("/h/")
        await store.compact(snapshot_rev)
        assert (await store.range("/h/", revision=snapshot_rev)).kvs == snapshot.kvs
        latest = await store.range("/h/")
        assert latest.kvs == [kv for _, kv in sorted(kvs.items()) if kv is not None]
        for key, kv in kvs.items():
            assert await store.get(key) == kv

    # ---- expiry (ttl) ------------------------------------------------------------------
    #
    # Short ttls, so the timing bounds are loose: etcd counts leases in whole seconds and
    # looks for expired ones every half second.

    async def test_ttl_key_expires_and_watchers_see_a_delete(self, store: Store):
        start = await store.current_revision()
        watch = store.watch("/ttl/", start)
        t0 = asyncio.get_running_loop().time()
        kv = await store.create("/ttl/a", b"short-lived", ttl=1)
        keep = await store.create("/ttl/b", b"no ttl")
        assert await store.get("/ttl/a") == kv                  # not gone at once
        events = await collect_events(watch, keep.mod_revision)
        deleted = await next_event_of_type(watch, "DELETE", timeout=TTL_TIMEOUT)
        elapsed = asyncio.get_running_loop().time() - t0
        watch.close()
        assert [e.type for e in events] == ["PUT", "PUT"]
        assert elapsed >= 0.9, f"expired after {elapsed:.2f}s, ttl 1s"
        # an ordinary delete: a new revision, the last value as prev_kv
        assert deleted.kv.key == "/ttl/a"
        assert deleted.prev_kv == kv
        assert deleted.revision > keep.mod_revision
        assert await store.get("/ttl/a") is None
        assert await store.get("/ttl/a", deleted.revision - 1) == kv
        assert await store.get("/ttl/b") == keep
        assert [k.key for k in (await store.range("/ttl/")).kvs] == ["/ttl/b"]
        assert await store.current_revision() == deleted.revision
        # the key can be created again, as a new incarnation
        again = await store.create("/ttl/a", b"again")
        assert again.version == 1 and again.create_revision > deleted.revision

    async def test_ttl_rewrite_extends_and_write_without_ttl_clears(self, store: Store):
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        extended = await store.create("/ttl/extended", b"1", ttl=2)
        cleared = await store.create("/ttl/cleared", b"1", ttl=1)
        cleared = await store.update("/ttl/cleared", b"2", cleared.mod_revision)   # no ttl
        watch = store.watch("/ttl/", cleared.mod_revision)
        await asyncio.sleep(max(0.0, t0 + 1.2 - loop.time()))
        extended = await store.update("/ttl/extended", b"2", 0, ttl=2)
        t1 = loop.time()
        await asyncio.sleep(max(0.0, t0 + 2.9 - loop.time()))  # past the first write's ttl
        assert await store.get("/ttl/extended") == extended
        assert await store.get("/ttl/cleared") == cleared
        deleted = await next_event_of_type(watch, "DELETE", timeout=TTL_TIMEOUT)
        assert loop.time() - t1 >= 1.9
        assert deleted.kv.key == "/ttl/extended" and deleted.prev_kv == extended
        await asyncio.sleep(0.5)
        assert await store.get("/ttl/cleared") == cleared   # never expires now
        watch.close()

    async def test_expiry_never_removes_a_newer_write(self, store: Store):
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        # deleted and created again without a ttl
        a = await store.create("/ttl/recreated", b"1", ttl=1)
        await store.delete("/ttl/recreated", a.mod_revision)
        recreated = await store.create("/ttl/recreated", b"2")
        # deleted and created again with a longer ttl
        b = await store.create("/ttl/longer", b"1", ttl=1)
        await store.delete("/ttl/longer")
        longer = await store.create("/ttl/longer", b"2", ttl=4)
        # an update with a ttl that lost its compare-and-swap sets no expiry
        c = await store.create("/ttl/refused", b"1")
        c2 = await store.update("/ttl/refused", b"2", c.mod_revision)
        with pytest.raises(ConflictError):
            await store.update("/ttl/refused", b"stale", c.mod_revision, ttl=1)
        await asyncio.sleep(max(0.0, t0 + 2.8 - loop.time()))
        assert await store.get("/ttl/recreated") == recreated
        assert await store.get("/ttl/longer") == longer
        assert await store.get("/ttl/refused") == c2
        async with asyncio.timeout(TTL_TIMEOUT):
            while await store.get("/ttl/longer") is not None:
                await asyncio.sleep(0.1)
        assert loop.time() - t0 >= 3.9
        assert await store.get("/ttl/recreated") == recreated

    async def test_many_keys_expire_each_once(self, store: Store):
        start = await store.current_revision()
        kvs = await asyncio.gather(*(store.create(f"/ttl/many/{i:03}", b"v", ttl=1)
                                     for i in range(60)))
        await store.create("/ttl/keep", b"v")
        watch = store.watch("/ttl/many/", start)
        deletes: list[Event] = []
        async with asyncio.timeout(TTL_TIMEOUT):
            async for resp in watch:
                deletes += [e for e in resp.events if e.type == "DELETE"]
                if len(deletes) >= 60:
                    break
        watch.close()
        assert sorted(e.kv.key for e in deletes) == sorted(kv.key for kv in kvs)
        assert {e.kv.key: e.prev_kv for e in deletes} == {kv.key: kv for kv in kvs}
        revisions = [e.revision for e in deletes]
        assert revisions == sorted(set(revisions))
        assert (await store.range("/ttl/", count=True)).count == 1

    async def test_ttl_must_be_positive(self, store: Store):
        for bad in (0, -1, float("nan"), float("inf")):
            with pytest.raises(ValueError):
                await store.create("/ttl/bad", b"v", ttl=bad)
        kv = await store.create("/ttl/bad", b"v")
        with pytest.raises(ValueError):
            await store.update("/ttl/bad", b"w", kv.mod_revision, ttl=0)
        assert await store.get("/ttl/bad") == kv


TTL_TIMEOUT = 8.0


async def next_event_of_type(watch: Watch, type_: str, timeout: float = TIMEOUT) -> Event:
    """The next event of this type on the watch (others are skipped)."""
    async with asyncio.timeout(timeout):
        async for resp in watch:
            for e in resp.events:
                if e.type == type_:
                    return e
    raise AssertionError(f"watch ended before a {type_} event")
