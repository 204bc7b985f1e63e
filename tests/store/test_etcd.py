"""EtcdStore against a real etcd: the contract suite, plus what only etcd-backed stores face
(several clients on one etcd, members going away, TLS)."""
from __future__ import annotations

import asyncio

import pytest

from shim.store import (CompactedError, ConflictError, Event, KeyExistsError, UnavailableError,
                        open_store)
from shim.store.etcd import EtcdStore

from etcd_harness import EtcdMember, etcd, etcd_binary, etcd_factory  # noqa: F401  (fixtures)

from .contract import StoreContract, collect_events, next_response


@pytest.fixture
async def store(etcd):
    s = EtcdStore([etcd.client_url], timeout=5)
    await s.start()
    yield s
    await s.close()


class TestEtcd(StoreContract):
    pass


# ---- several clients on one etcd (API server replicas) ---------------------------------

async def test_two_clients_share_revisions_watch_and_cas(etcd):
    a, b = EtcdStore(etcd.client_url), EtcdStore([etcd.client_url])
    await a.start()
    await b.start()
    try:
        watch = b.watch("/r/", await b.current_revision())
        kv = await a.create("/r/1", b"one")
        assert await b.get("/r/1") == kv                         # linearizable across clients
        events = await collect_events(watch, kv.mod_revision)
        assert events == [Event("PUT", kv, None)]
        kv2 = await b.update("/r/1", b"two", kv.mod_revision)
        with pytest.raises(ConflictError) as info:               # a's copy is stale now
            await a.update("/r/1", b"stale", kv.mod_revision)
        assert info.value.current == kv2
        assert await a.current_revision() == await b.current_revision() == kv2.mod_revision
        watch.close()
    finally:
        await a.close()
        await b.close()


async def test_compaction_by_another_client_is_learned(etcd):
    a, b = EtcdStore(etcd.client_url), EtcdStore(etcd.client_url)
    await a.start()
    await b.start()
    try:
        first = await a.create("/k", b"1")
        for i in range(5):
            last = await a.update("/k", f"{i}".encode(), 0)
        await a.compact(last.mod_revision)
        assert b.compact_revision == 0                           # b has not heard of it yet
        with pytest.raises(CompactedError) as info:
            await b.get("/k", first.mod_revision)
        assert info.value.compact_revision == last.mod_revision
        assert b.compact_revision == last.mod_revision
        with pytest.raises(CompactedError):
            await next_response(b.watch("/", first.mod_revision))
        await b.compact(last.mod_revision - 2)                   # below: a no-op
        assert await b.get("/k", last.mod_revision) == last
        # a third client learns it when it starts
        c = EtcdStore(etcd.client_url)
        await c.start()
        assert c.compact_revision == last.mod_revision
        await c.close()
    finally:
        await a.close()
        await b.close()


# ---- etcd going away and coming back -----------------------------------------------------

async def test_unreachable_etcd_fails_fast_and_recovers(etcd):
    s = EtcdStore(etcd.client_url, timeout=1.0)
    await s.start()
    try:
        kv = await s.create("/u/1", b"v")
        watch = s.watch("/u/", kv.mod_revision)
        etcd.pause()                                             # hangs: no RST, no answer
        loop = asyncio.get_running_loop()
        for call in (s.get("/u/1"), s.create("/u/2", b"v"), s.current_revision()):
            t = loop.time()
            with pytest.raises(UnavailableError):
                await call
            assert loop.time() - t < 2.5
        etcd.resume()
        async with asyncio.timeout(10):
            while True:
                try:
                    kv2 = await s.update("/u/1", b"w", kv.mod_revision)
                    break
                except UnavailableError:
                    await asyncio.sleep(0.2)
        # The create given up on during the pause may still have been applied once etcd
        # woke (a timed-out write has an unknown outcome), possibly after kv2: look for kv2
        # among what the watch delivered rather than expecting it last.
        seen = [e.kv for e in await collect_events(watch, kv2.mod_revision)]
        assert kv2 in seen, seen
        watch.close()
    finally:
        etcd.resume()
        await s.close()


async def test_watch_survives_etcd_restart_exactly_once(etcd):
    s = EtcdStore(etcd.client_url, timeout=2.0)
    await s.start()
    try:
        start = await s.current_revision()
        watch = s.watch("/w/", start)
        written = [await s.create(f"/w/{i}", b"v") for i in range(5)]
        first = await collect_events(watch, written[-1].mod_revision)
        etcd.kill()
        with pytest.raises(UnavailableError):
            await s.create("/w/x", b"v")
        etcd.start()                                             # same data dir and ports
        async with asyncio.timeout(15):
            while True:
                try:
                    more = [await s.update(f"/w/{i}", b"w", 0) for i in range(5)]
                    break
                except UnavailableError:
                    await asyncio.sleep(0.2)
        rest = await collect_events(watch, more[-1].mod_revision, timeout=15)
        revs = [e.revision for e in first + rest]
        assert revs == [kv.mod_revision for kv in written + more]   # each once, in order
        watch.close()
    finally:
        await s.close()


async def test_cluster_member_loss(etcd_factory):
    cluster = etcd_factory(3)
    s = EtcdStore(cluster.endpoints, timeout=3.0)
    await s.start()
    try:
        watch = s.watch("/c/", await s.current_revision())
        acked = []

        async def write(i):
            for _ in range(20):
                try:
                    acked.append(await s.create(f"/c/{i:03}", b"v"))
                    return
                except UnavailableError:
                    await asyncio.sleep(0.2)
                except KeyExistsError:      # applied before, its answer lost: not acknowledged
                    return
            raise AssertionError("no progress after losing one member of three")

        for i in range(20):
            await write(i)
        cluster.members[s._current].kill()                       # the member this client uses
        for i in range(20, 40):
            await write(i)
        events = await collect_events(watch, acked[-1].mod_revision, timeout=20)
        revs = [e.revision for e in events]
        assert revs == sorted(set(revs))
        assert {kv.mod_revision for kv in acked} <= set(revs)
        assert len((await s.range("/c/")).kvs) >= len(acked)
        watch.close()
    finally:
        await s.close()


async def test_client_tls(etcd_binary, tmp_path):
    from shim.pki import ensure_pki
    pki = ensure_pki(tmp_path / "pki")
    cert, key = pki.issue_serving_cert("etcd", ["localhost"], ["127.0.0.1"])
    ccert, ckey = pki.issue_client_cert("shim-etcd-client", [])
    files = {}
    for name, data in (("server.crt", cert), ("server.key", key), ("client.crt", ccert),
                       ("client.key", ckey)):
        (tmp_path / name).write_bytes(data)
        files[name] = tmp_path / name
    member = EtcdMember(etcd_binary, tmp_path / "etcd-tls",
                        tls=(pki.ca_cert, files["server.crt"], files["server.key"],
                             files["client.crt"], files["client.key"]))
    member.start()
    try:
        assert member.client_url.startswith("https://")
        s = open_store("etcd", endpoints=member.client_url, cafile=str(pki.ca_cert),
                       certfile=str(files["client.crt"]), keyfile=str(files["client.key"]))
        await s.start()
        kv = await s.create("/tls", b"ok")
        assert await s.get("/tls") == kv
        await s.close()
        # without a client certificate etcd refuses the connection
        bad = EtcdStore(member.client_url, cafile=str(pki.ca_cert), timeout=2, start_timeout=1)
        with pytest.raises(UnavailableError):
            await bad.start()
        await bad.close()
    finally:
        member.stop()
