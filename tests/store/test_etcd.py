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


# ---- expiry through etcd leases ------------------------------------------------------------

async def leases_of(s: EtcdStore) -> dict[int, tuple[int, list[str]]]:
    """Every lease etcd holds: id -> (ttl granted, keys attached)."""
    from aetcd import rpc
    out = {}
    for lease in (await s._call("LeaseLeases", rpc.LeaseLeasesRequest(), retry=True,
                                revision=0)).leases:
        info = await s._call("LeaseTimeToLive", rpc.LeaseTimeToLiveRequest(ID=lease.ID, keys=True),
                             retry=True, revision=0)
        out[lease.ID] = (info.grantedTTL, sorted(k.decode() for k in info.keys))
    return out


async def test_writes_within_the_reuse_window_share_one_lease(etcd):
    s = EtcdStore(etcd.client_url)
    await s.start()
    try:
        # ttl 40 s: the reuse window is 5% of it, 2 s; the lease is granted for 42 s
        for i in range(5):
            await s.create(f"/l/{i}", b"v", ttl=40)
        await s.update("/l/0", b"w", 0, ttl=40)
        leases = await leases_of(s)
        assert list(leases.values()) == [(42, [f"/l/{i}" for i in range(5)])]
        # a ttl too short for any window: one lease per write, each of the ttl itself
        for i in range(3):
            await s.create(f"/short/{i}", b"v", ttl=3)
        leases = await leases_of(s)
        short = [v for v in leases.values() if v[1] and v[1][0].startswith("/short/")]
        assert sorted(short) == [(3, [f"/short/{i}"]) for i in range(3)]
        # a write without ttl detaches the key from its lease
        await s.update("/l/1", b"x", 0)
        assert [keys for ttl, keys in (await leases_of(s)).values() if ttl == 42] == \
            [["/l/0", "/l/2", "/l/3", "/l/4"]]
    finally:
        await s.close()


async def test_lease_lost_behind_the_store_is_replaced(etcd):
    from aetcd import rpc
    s = EtcdStore(etcd.client_url)
    await s.start()
    try:
        await s.create("/r/a", b"v", ttl=100)            # window 5 s: the lease is reused next
        [lease] = await leases_of(s)
        await s._call("LeaseRevoke", rpc.LeaseRevokeRequest(ID=lease), retry=False, revision=0)
        assert await s.get("/r/a") is None                # revoking deleted its keys
        kv = await s.create("/r/b", b"v", ttl=100)       # the cached lease is gone: a new one
        assert await s.get("/r/b") == kv
        leases = await leases_of(s)
        assert lease not in leases and [keys for _, keys in leases.values()] == [["/r/b"]]
    finally:
        await s.close()
