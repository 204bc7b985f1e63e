"""The etcd backend: the store contract over a real etcd v3 cluster.

resourceVersion is etcd's own mod revision, so every API server replica on the same etcd
hands out comparable resourceVersions and optimistic concurrency holds across them. An
empty etcd is at revision 1 (the contract's "empty store" revision is 0 for the embedded
backend; see `initial_revision`).

The wire client is the generated etcd v3 API that the `aetcd` package ships (`aetcd.rpc`:
protobuf messages and grpc.aio stubs built for current protobuf/grpcio). aetcd's high-level
`Client` is not used: it has no TLS, no range at a revision with a limit, no watch progress
requests and creates watches one at a time; the few calls this store needs are written
here against the stubs directly.

Semantics, mapped onto etcd:
- create: a transaction `mod_revision(key) == 0 ? put : get`; update and delete: `mod_revision
  == expected` (or `create_revision > 0` when unconditional) `? put/delete (prev_kv) : get`,
  so a failed compare-and-swap reports the value now stored in the same round trip.
- reads are linearizable (etcd's default), so a replica sees every write acknowledged by
  another one.
- watch: every watch of the store shares one bidirectional Watch stream, each with an id
  chosen here. The contract's start revision is exclusive, etcd's inclusive: a watch from
  r asks etcd for r + 1. If the stream breaks (etcd member gone, no leader), it is reopened
  on the next endpoint and every watch re-created from one past the last revision it
  delivered, so events still arrive exactly once and in order.
- progress: `request_progress` sends etcd's WatchProgressRequest; etcd answers (with watch
  id -1) once every watch on the stream has caught up, with the current revision in the
  header: that is the progress notification, handed to the watches that asked.
- expiry (ttl on create/update): the key is put with an etcd lease, and etcd deletes it when
  the lease runs out (a revisioned delete, seen by watches like any other). As upstream's
  lease manager does, writes share leases: one granted for ttl plus a reuse window (5% of
  the ttl, at most a minute) serves every write with the same ttl made while it still has
  between ttl and ttl + window to live, up to 1,000 writes. A later put without a lease
  detaches the key from its lease, and a key deleted and created again is a new key to
  etcd, so an old lease never removes a newer write.
- every unary call has a deadline (`timeout`, 5 s by default); an unreachable etcd gives
  UnavailableError, and the gRPC channels reconnect by themselves when it returns. Reads are
  retried once on each other endpoint; writes are never retried (a write whose outcome is
  unknown is reported as unavailable, not guessed).
"""
from __future__ import annotations

import asyncio
import collections
import logging
import math
import random
from urllib.parse import urlparse

import grpc
from aetcd import rpc

from .base import (
    CompactedError,
    ConflictError,
    Event,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RangeResult,
    Store,
    StoreError,
    UnavailableError,
    Watch,
    WatchResponse,
    check_ttl,
)

__all__ = ["EtcdStore"]

log = logging.getLogger("shim.store.etcd")

_EQUAL, _GREATER = rpc.Compare.CompareResult.EQUAL, rpc.Compare.CompareResult.GREATER
_MOD, _CREATE = rpc.Compare.CompareTarget.MOD, rpc.Compare.CompareTarget.CREATE
_DELETE_EVENT = rpc.Event.EventType.DELETE
_PROBE_KEY = b"\x00shim/revision-probe"
# upstream's lease reuse: a lease serves writes for min(5% of the ttl, 60 s), 1,000 at most
_LEASE_REUSE_FRACTION = 0.05
_LEASE_REUSE_MAX_SECONDS = 60
_LEASE_MAX_KEYS = 1000   # never written: reading it costs nothing
# Codes meaning "no (known) answer": etcd or the connection to it went away (a killed
# member shows as UNAVAILABLE, CANCELLED, UNKNOWN "Stream removed" or INTERNAL RST_STREAM).
_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
              grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)


class EtcdStore(Store):
    """The store contract on the etcd cluster at `endpoints`.

    endpoints: a list or a comma-separated string of URLs (`http://host:port`,
      `https://host:port` or `host:port`). https, or any of cafile/certfile/keyfile, means
      TLS; certfile+keyfile is the client certificate.
    timeout: the deadline of every call, in seconds.
    start_timeout: how long start() waits for etcd to answer before it gives up.
    watch_queue_limit: batches a watcher may leave unread before it is ended with
      CompactedError (its client relists rather than this process buffering without bound).
    """

    initial_revision = 1     # an etcd that never had a write is at revision 1

    def __init__(self, endpoints: str | list[str] = "http://127.0.0.1:2379", *,
                 cafile: str | None = None, certfile: str | None = None, keyfile: str | None = None,
                 timeout: float = 5.0, watch_queue_limit: int = 10_000, start_timeout: float = 20.0):
        if isinstance(endpoints, str):
            endpoints = [e for e in endpoints.split(",") if e.strip()]
        if not endpoints:
            raise ValueError("EtcdStore needs at least one endpoint")
        self._targets: list[str] = []
        tls = bool(cafile or certfile or keyfile)
        for e in endpoints:
            e = e.strip()
            u = urlparse(e if "://" in e else "http://" + e)
            if u.scheme not in ("http", "https") or not u.hostname:
                raise ValueError(f"bad etcd endpoint {e!r}")
            tls = tls or u.scheme == "https"
            host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
            self._targets.append(f"{host}:{u.port or 2379}")
        self._tls = tls
        self._cafile, self._certfile, self._keyfile = cafile, certfile, keyfile
        self.timeout = timeout
        self.start_timeout = start_timeout
        self._watch_queue_limit = watch_queue_limit
        self._channels: list[grpc.aio.Channel | None] = [None] * len(self._targets)
        self._stubs: list[tuple | None] = [None] * len(self._targets)
        self._current = 0                  # endpoint index in use
        self._last_revision = 0            # highest header revision seen: "now" for watch(…, 0)
        self._compact_revision = 0
        self._inflight = 0
        self._idle: asyncio.Event | None = None
        self._started = False
        self._closed = False
        self._stream: _WatchStream | None = None
        self._leases = _LeaseManager(self)

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        self._idle = asyncio.Event()
        self._idle.set()
        self._started = True
        self._stream = _WatchStream(self)
        # wait a while for etcd (started alongside, or electing a leader), then give up
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while True:
            try:
                await self.current_revision()
                break
            except UnavailableError as e:
                if loop.time() >= deadline:
                    raise UnavailableError(f"etcd at {','.join(self._targets)} unreachable: {e}") from None
                log.warning("waiting for etcd: %s", e)
                await asyncio.sleep(0.5)
        await self._refresh_compact_revision()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._idle is not None and self._inflight:
            try:   # let acknowledged-to-be writes finish (they are on the wire already)
                await asyncio.wait_for(self._idle.wait(), self.timeout + 1)
            except asyncio.TimeoutError:
                pass
        if self._stream is not None:
            await self._stream.shutdown()
        for ch in self._channels:
            if ch is not None:
                await ch.close()
        self._channels = [None] * len(self._targets)
        self._stubs = [None] * len(self._targets)

    # -- reads -------------------------------------------------------------------------
    async def current_revision(self) -> int:
        resp = await self._read("Range", rpc.RangeRequest(key=_PROBE_KEY, count_only=True))
        return resp.header.revision

    @property
    def compact_revision(self) -> int:
        return self._compact_revision

    async def get(self, key: str, revision: int = 0) -> KeyValue | None:
        resp = await self._read("Range", rpc.RangeRequest(key=key.encode(), revision=revision),
                                revision=revision)
        return _kv(resp.kvs[0]) if resp.kvs else None

    async def range(self, prefix: str, *, revision: int = 0, limit: int = 0,
                    start_key: str | None = None, count: bool = False) -> RangeResult:
        p = prefix.encode()
        end = _prefix_end(p)
        key = p
        if start_key is not None and start_key.encode() > key:
            key = start_key.encode()
        if not key:
            key = b"\x00"
        resp = await self._read("Range", rpc.RangeRequest(key=key, range_end=end, limit=limit,
                                                          revision=revision), revision=revision)
        return RangeResult([_kv(kv) for kv in resp.kvs], more=resp.more,
                           revision=revision or resp.header.revision, count=resp.count)

    # -- writes ------------------------------------------------------------------------
    async def create(self, key: str, value: bytes, *, ttl: float | None = None) -> KeyValue:
        k = key.encode()
        resp = await self._put_txn(lambda lease: rpc.TxnRequest(
            compare=[rpc.Compare(key=k, target=_MOD, result=_EQUAL, mod_revision=0)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value, lease=lease))],
            failure=[]), ttl)
        if not resp.succeeded:
            raise KeyExistsError(key)
        rev = resp.header.revision
        return KeyValue(key, value, rev, rev, 1)

    async def update(self, key: str, value: bytes, expected_mod_revision: int, *,
                     ttl: float | None = None) -> KeyValue:
        k = key.encode()
        resp = await self._put_txn(lambda lease: rpc.TxnRequest(
            compare=[_precondition(k, expected_mod_revision)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value, prev_kv=True,
                                                              lease=lease))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))]), ttl)
        if not resp.succeeded:
            raise _failed(key, resp)
        prev = resp.responses[0].response_put.prev_kv
        rev = resp.header.revision
        return KeyValue(key, value, prev.create_revision, rev, prev.version + 1)

    async def delete(self, key: str, expected_mod_revision: int = 0) -> KeyValue:
        k = key.encode()
        resp = await self._write("Txn", rpc.TxnRequest(
            compare=[_precondition(k, expected_mod_revision)],
            success=[rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k, prev_kv=True))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))]))
        if not resp.succeeded:
            raise _failed(key, resp)
        deleted = resp.responses[0].response_delete_range.prev_kvs
        if not deleted:        # cannot happen: the compare said the key was there
            raise KeyNotFoundError(key)
        return _kv(deleted[0])

    async def _put_txn(self, make, ttl: float | None):
        """The transaction make(lease id) builds: with no lease (0) when ttl is None, else
        with a lease from the lease manager. A lease etcd no longer knows (revoked by hand,
        or lost with etcd's data) fails the whole transaction before anything is applied,
        so that one case is retried once with a fresh lease."""
        if ttl is None:
            return await self._write("Txn", make(0))
        check_ttl(ttl)
        lease = await self._leases.get(ttl)
        try:
            return await self._write("Txn", make(lease))
        except StoreError as e:
            if "requested lease not found" not in str(e):
                raise
            self._leases.forget(lease)
            return await self._write("Txn", make(await self._leases.get(ttl)))

    # -- watch -------------------------------------------------------------------------
    def watch(self, prefix: str, start_revision: int) -> Watch:
        w = EtcdWatch(self, prefix, start_revision or self._last_revision)
        if self._closed or self._stream is None:
            w._end()
        elif start_revision and start_revision + 1 < self._compact_revision:
            w._finished = True
            w._queue.put_nowait(CompactedError(start_revision, self._compact_revision))
        else:
            self._stream.add(w)
        return w

    # -- compaction --------------------------------------------------------------------
    async def compact(self, revision: int) -> None:
        """Compacting the store to r compacts etcd to r - 1: etcd keeps no value older than
        its compaction revision, and an event at r needs the value at r - 1 as its prev_kv.
        Reads below r are refused here, so the extra revision kept is invisible."""
        if revision <= self._compact_revision:
            return
        current = await self.current_revision()
        if revision > current:
            raise FutureRevisionError(revision, current)
        if revision - 1 >= 1:
            try:
                await self._write("Compact", rpc.CompactionRequest(revision=revision - 1, physical=False),
                                  revision=revision - 1)
            except CompactedError:          # another replica compacted at or past it already
                await self._refresh_compact_revision()
                return
        self._compact_revision = max(self._compact_revision, revision)

    def _check_compacted(self, revision: int) -> None:
        if 0 < revision < self._compact_revision:
            raise CompactedError(revision, self._compact_revision)

    # -- the calls ---------------------------------------------------------------------
    def _stub(self, index: int) -> tuple:
        stubs = self._stubs[index]
        if stubs is None:
            ch = self._open_channel(self._targets[index])
            self._channels[index] = ch
            stubs = self._stubs[index] = (rpc.KVStub(ch), rpc.WatchStub(ch), rpc.LeaseStub(ch))
        return stubs

    def _open_channel(self, target: str) -> grpc.aio.Channel:
        options = [
            ("grpc.max_receive_message_length", 512 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
            # reconnect quickly when etcd comes back (gRPC's default backoff grows to 120 s)
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 1000),
            # notice a dead member (no RST, e.g. a partition) on long-lived watch streams;
            # kube-apiserver's values, well above etcd's 5 s minimum ping interval
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 0),
            ("grpc.enable_retries", 0),
        ]
        if not self._tls:
            return grpc.aio.insecure_channel(target, options=options)
        def read(p):
            if not p:
                return None
            with open(p, "rb") as f:
                return f.read()
        creds = grpc.ssl_channel_credentials(root_certificates=read(self._cafile),
                                             private_key=read(self._keyfile),
                                             certificate_chain=read(self._certfile))
        return grpc.aio.secure_channel(target, creds, options=options)

    def _kv_call(self, index: int, method: str):
        if method.startswith("Lease"):
            return getattr(self._stub(index)[2], method)
        return getattr(self._stub(index)[0], method)

    async def _read(self, method: str, request, *, revision: int = 0):
        """A read: tried once on each endpoint while they fail as unavailable."""
        self._check_compacted(revision)
        try:
            return await self._call(method, request, retry=True, revision=revision)
        except CompactedError:
            await self._refresh_compact_revision()
            raise CompactedError(revision, max(self._compact_revision, revision + 1)) from None

    async def _write(self, method: str, request, *, revision: int = 0):
        return await self._call(method, request, retry=False, revision=revision)

    async def _call(self, method: str, request, *, retry: bool, revision: int):
        if self._closed or not self._started:
            raise UnavailableError("etcd store is closed" if self._closed else "etcd store not started")
        self._inflight += 1
        self._idle.clear()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timeout
            tries = len(self._targets) if retry else 1
            last: Exception | None = None
            for _ in range(tries):
                index = self._current
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining + 0.5):
                        resp = await self._kv_call(index, method)(request, timeout=remaining)
                except grpc.aio.AioRpcError as e:
                    err = await self._translate(e, revision)
                    if not isinstance(err, UnavailableError):
                        raise err from None
                    last = err
                    self._endpoint_failed(index)
                    continue
                except TimeoutError:
                    last = UnavailableError(f"etcd {self._targets[index]}: no answer in {self.timeout:g}s")
                    self._endpoint_failed(index)
                    continue
                rev = resp.header.revision
                if rev > self._last_revision:
                    self._last_revision = rev
                return resp
            raise last or UnavailableError(f"etcd: no answer in {self.timeout:g}s")
        finally:
            self._inflight -= 1
            if not self._inflight:
                self._idle.set()

    def _endpoint_failed(self, index: int) -> None:
        """Move on to the next endpoint (the channel itself keeps reconnecting)."""
        if index == self._current and len(self._targets) > 1:
            self._current = (index + 1) % len(self._targets)
            if self._stream is not None:
                self._stream.endpoint_failed(index)

    async def _translate(self, e: grpc.aio.AioRpcError, revision: int) -> Exception:
        code, details = e.code(), e.details() or ""
        if "required revision has been compacted" in details:
            return CompactedError(revision, self._compact_revision)
        if "required revision is a future revision" in details:
            try:
                current = await self.current_revision()
            except StoreError:
                current = self._last_revision
            return FutureRevisionError(revision, current)
        if code in _RETRYABLE:
            return UnavailableError(f"etcd: {code.name}: {details}")
        return StoreError(f"etcd: {code.name}: {details}")

    async def _refresh_compact_revision(self) -> None:
        """Learn the compacted revision (another replica may have compacted): one past the
        oldest revision etcd can still read at (see compact()). etcd reports no number with
        its error, so find it by binary search, ~log2(revision) cheap reads."""
        async def readable(rev: int) -> bool:
            try:
                await self._call("Range", rpc.RangeRequest(key=_PROBE_KEY, revision=rev,
                                                           count_only=True), retry=True, revision=rev)
                return True
            except CompactedError:
                return False
        lo = max(self._compact_revision - 1, 1)
        hi = await self.current_revision()
        if lo >= hi or await readable(lo):
            found = lo
        else:
            while hi - lo > 1:                       # invariant: lo unreadable, hi readable
                mid = (lo + hi) // 2
                if await readable(mid):
                    hi = mid
                else:
                    lo = mid
            found = hi
        if found > 1 and found + 1 > self._compact_revision:
            self._compact_revision = found + 1


class _LeaseManager:
    """Leases for writes with a ttl, shared between writes as upstream's lease manager does:
    granting a lease is a raft round trip of its own, so one lease granted for ttl + window
    serves every later write of the same ttl while it still has more than ttl (and at most
    ttl + window) to live. Each key thus expires between ttl and ttl + window after its last
    write, whole seconds (etcd's unit) rounded up."""

    def __init__(self, store: EtcdStore):
        self._store = store
        self._id = 0
        self._expires = 0.0                # on the loop's clock
        self._attached = 0
        self._lock: asyncio.Lock | None = None

    async def get(self, ttl: float) -> int:
        seconds = max(1, math.ceil(ttl))
        window = min(int(_LEASE_REUSE_FRACTION * seconds), _LEASE_REUSE_MAX_SECONDS)
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:          # concurrent writes wait for one grant, then share it
            loop = asyncio.get_running_loop()
            now = loop.time()
            self._attached += 1
            if (self._id and now + seconds < self._expires <= now + seconds + window
                    and self._attached <= _LEASE_MAX_KEYS):
                return self._id
            granted = seconds + window
            resp = await self._store._write("LeaseGrant", rpc.LeaseGrantRequest(TTL=granted, ID=0))
            if resp.error:
                raise StoreError(f"etcd: lease grant failed: {resp.error}")
            # etcd counts the lease from when it granted it, a little after `now`: the key
            # may outlive the ttl by that round trip, never fall short of it
            self._id, self._expires, self._attached = resp.ID, now + max(resp.TTL, granted), 1
            return self._id

    def forget(self, lease: int) -> None:
        if self._id == lease:
            self._id, self._expires, self._attached = 0, 0.0, 0


def _precondition(k: bytes, expected_mod_revision: int):
    if expected_mod_revision:
        return rpc.Compare(key=k, target=_MOD, result=_EQUAL, mod_revision=expected_mod_revision)
    return rpc.Compare(key=k, target=_CREATE, result=_GREATER, create_revision=0)


def _failed(key: str, resp) -> StoreError:
    kvs = resp.responses[0].response_range.kvs if resp.responses else []
    if not kvs:
        return KeyNotFoundError(key)
    return ConflictError(key, _kv(kvs[0]))


def _kv(kv) -> KeyValue:
    return KeyValue(kv.key.decode(), kv.value, kv.create_revision, kv.mod_revision, kv.version)


def _prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with prefix (etcd's range_end)."""
    b = bytearray(prefix)
    for i in range(len(b) - 1, -1, -1):
        if b[i] < 0xFF:
            b[i] += 1
            return bytes(b[: i + 1])
    return b"\x00"        # every key from prefix on


def _event(ev) -> Event:
    prev = _kv(ev.prev_kv) if ev.HasField("prev_kv") else None
    if ev.type == _DELETE_EVENT:
        kv = KeyValue(ev.kv.key.decode(), b"", prev.create_revision if prev else 0, ev.kv.mod_revision, 0)
        return Event("DELETE", kv, prev)
    return Event("PUT", _kv(ev.kv), prev)


# -- watches ----------------------------------------------------------------------------------

_END = object()


class EtcdWatch(Watch):
    """One watch of the store: a subscriber of a _Feed (an etcd watch on its prefix)."""

    def __init__(self, store: EtcdStore, prefix: str, after: int):
        self._store = store
        self.prefix = prefix.encode()
        self.after = after               # revision delivered through (exclusive start at first)
        self.feed: _Feed | None = None
        self._queue: asyncio.Queue = asyncio.Queue()
        self._closed = False             # closed by its user: iteration ends at once
        self._finished = False           # no more items will be queued

    async def __anext__(self) -> WatchResponse:
        if self._closed:
            raise StopAsyncIteration
        item = await self._queue.get()
        if self._closed or item is _END:
            self._closed = True
            raise StopAsyncIteration
        if isinstance(item, Exception):
            self._closed = True
            raise item
        return item

    def close(self) -> None:
        if self._closed and self._finished:
            return
        self._closed = True
        if self._store._stream is not None:
            self._store._stream.unsubscribe(self)
        self._end()

    def request_progress(self) -> None:
        if not self._finished and self._store._stream is not None:
            self._store._stream.request_progress(self)

    # -- fed by the stream ---------------------------------------------------------------
    def _deliver_events(self, resp: WatchResponse) -> None:
        if self._finished or resp.revision <= self.after:
            return
        if resp.events[0].revision <= self.after:        # joined mid-batch: keep the newer part
            resp = WatchResponse([e for e in resp.events if e.revision > self.after], resp.revision)
        self.after = resp.revision
        self._put(resp)

    def _deliver_progress(self, revision: int) -> None:
        if self._finished:
            return
        self.after = max(self.after, revision)
        self._put(WatchResponse([], revision))

    def _put(self, resp: WatchResponse) -> None:
        if self._queue.qsize() >= self._store._watch_queue_limit:
            self._fail(CompactedError(self.after, self._store.compact_revision))
            return
        self._queue.put_nowait(resp)

    def _fail(self, err: Exception) -> None:
        if self._finished:
            return
        self._finished = True
        if self._store._stream is not None:
            self._store._stream.unsubscribe(self)
        self._queue.put_nowait(err)

    def _end(self) -> None:
        if not self._finished:
            self._finished = True
            self._queue.put_nowait(_END)


class _Feed:
    """One etcd watch on a prefix, shared by every store watch on that prefix that can join
    it (as kube-apiserver's watch cache shares one etcd watch per resource).

    It keeps its most recent events: every event on the prefix with a revision in
    (floor, next_revision) is in `recent`, so a watch starting at any revision >= floor
    joins by replaying from there, synchronously, then gets the live events; one starting
    below floor gets a feed of its own."""

    def __init__(self, prefix: bytes, after: int, shared: bool, keep: int):
        self.prefix = prefix
        self.id = 0
        self.next_revision = after + 1    # etcd's inclusive start for (re-)creation
        self.floor = after
        self.shared = shared
        self.recent: collections.deque = collections.deque()
        self.keep = keep
        self.subscribers: set[EtcdWatch] = set()

    def join(self, w: EtcdWatch) -> None:
        for resp in self.recent:
            if resp.revision > w.after:
                w._deliver_events(resp)
        w.feed = self
        self.subscribers.add(w)

    def deliver(self, resp: WatchResponse) -> None:
        self.next_revision = resp.revision + 1
        if self.shared:
            self.recent.append(resp)
            while len(self.recent) > self.keep:
                self.floor = self.recent.popleft().revision
        for w in list(self.subscribers):
            w._deliver_events(resp)

    def progressed(self, revision: int) -> None:
        """Every event through revision has been delivered (nothing newer is buffered)."""
        if revision >= self.next_revision:
            self.next_revision = revision + 1


class _WatchStream:
    """The one bidirectional Watch RPC that carries every etcd watch (feed) of a store."""

    def __init__(self, store: EtcdStore, keep: int = 1000):
        self.store = store
        self.keep = keep
        self.watches: dict[int, _Feed] = {}          # etcd watch id -> feed
        self.shared: dict[bytes, _Feed] = {}         # prefix -> the feed new watches join
        self._next_id = 1
        self._send: asyncio.Queue | None = None      # requests for the stream now open
        self._task: asyncio.Task | None = None
        self._call = None
        self._index = -1                             # endpoint the stream is open to
        self._progress_sent: list[EtcdWatch] = []    # waiting on the request in flight
        self._progress_next: list[EtcdWatch] = []    # asked after it was sent
        self._progress_generation = 0
        self._progress_retry = 0.1
        self._stopping = False

    # -- requests from watches -----------------------------------------------------------
    def add(self, w: EtcdWatch) -> None:
        feed = self.shared.get(w.prefix)
        if feed is not None and feed.floor <= w.after:
            feed.join(w)
            return
        feed = _Feed(w.prefix, w.after, shared=feed is None, keep=self.keep)
        if feed.shared:
            self.shared[w.prefix] = feed
        feed.join(w)
        feed.id = self._next_id
        self._next_id += 1
        self.watches[feed.id] = feed
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="etcd-watch-stream")
        elif self._send is not None:
            self._send.put_nowait(self._create_request(feed))

    def unsubscribe(self, w: EtcdWatch) -> None:
        for waiting in (self._progress_sent, self._progress_next):
            if w in waiting:
                waiting.remove(w)
        feed, w.feed = w.feed, None
        if feed is None:
            return
        feed.subscribers.discard(w)
        if not feed.subscribers:
            self._drop(feed)

    def _drop(self, feed: _Feed) -> None:
        if self.shared.get(feed.prefix) is feed:
            del self.shared[feed.prefix]
        if self.watches.pop(feed.id, None) is not None and self._send is not None:
            self._send.put_nowait(rpc.WatchRequest(
                cancel_request=rpc.WatchCancelRequest(watch_id=feed.id)))

    def request_progress(self, w: EtcdWatch) -> None:
        if w in self._progress_sent or w in self._progress_next:
            return
        if self._progress_sent:
            self._progress_next.append(w)
            return
        self._progress_sent.append(w)
        self._progress_retry = 0.1
        self._send_progress_request()

    def endpoint_failed(self, index: int) -> None:
        """Unary calls found this endpoint down: if the stream is on it, move it as well."""
        if self._call is not None and self._index == index:
            self._call.cancel()

    async def shutdown(self) -> None:
        self._stopping = True
        for feed in list(self.watches.values()):
            for w in list(feed.subscribers):
                w._end()
        self.watches.clear()
        self.shared.clear()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    # -- the stream ----------------------------------------------------------------------
    def _create_request(self, feed: _Feed):
        # etcd ignores progress requests while any watch on the stream starts beyond its
        # current revision, so never start beyond a revision known to exist; the events
        # below next_revision that this replays are dropped in _handle.
        start = feed.next_revision
        if start > 0:
            start = min(start, max(self.store._last_revision, 1))
        return rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
            key=feed.prefix or b"\x00", range_end=_prefix_end(feed.prefix), start_revision=start,
            prev_kv=True, watch_id=feed.id))

    def _send_progress_request(self) -> None:
        """Ask etcd for progress. etcd drops the request (no answer, no error) while some
        watch on the stream is still catching up, so ask again until it answers."""
        if self._send is None:
            return
        self._send.put_nowait(rpc.WatchRequest(progress_request=rpc.WatchProgressRequest()))
        self._progress_generation += 1
        generation = self._progress_generation
        delay = self._progress_retry
        self._progress_retry = min(delay * 2, 1.0)

        def again():
            if self._progress_generation == generation and self._progress_sent and not self._stopping:
                self._send_progress_request()
        asyncio.get_running_loop().call_later(delay, again)

    async def _run(self) -> None:
        backoff = 0.1
        while not self._stopping:
            index = self._index = self.store._current
            send: asyncio.Queue = asyncio.Queue()
            for feed in sorted(self.watches.values(), key=lambda f: f.id):
                send.put_nowait(self._create_request(feed))
            self._progress_sent += self._progress_next
            self._progress_next = []
            self._send = send
            if self._progress_sent:
                self._progress_retry = 0.1
                self._send_progress_request()

            async def requests(q=send):
                while True:
                    req = await q.get()
                    if req is None:
                        return
                    yield req
            healthy = False
            try:
                watch_stub = self.store._stub(index)[1]
                self._call = watch_stub.Watch(requests(), metadata=(("hasleader", "true"),))
                async for resp in self._call:
                    healthy = True
                    backoff = 0.1
                    self._handle(resp)
                reason = "stream ended"
            except asyncio.CancelledError:
                if self._stopping:
                    raise
                reason = "moved to another endpoint"
            except grpc.aio.AioRpcError as e:
                reason = f"{e.code().name}: {e.details()}"
            except Exception as e:  # never let the stream die for good
                log.exception("etcd watch stream failed")
                reason = repr(e)
            finally:
                self._send = None
                send.put_nowait(None)
                call, self._call = self._call, None
                if call is not None:
                    call.cancel()
            if self._stopping:
                return
            log.warning("etcd watch stream to %s lost (%s); reconnecting", self.store._targets[index], reason)
            if not healthy:
                self.store._endpoint_failed(index)
                await asyncio.sleep(backoff * (1 + random.random()))
                backoff = min(backoff * 2, 2.0)

    def _handle(self, resp) -> None:
        wid = resp.watch_id
        if resp.events:
            feed = self.watches.get(wid)
            if feed is None:
                return
            events = [_event(ev) for ev in resp.events if ev.kv.mod_revision >= feed.next_revision]
            if events:
                rev = events[-1].revision
                if rev > self.store._last_revision:
                    self.store._last_revision = rev
                feed.deliver(WatchResponse(events, rev))
            return
        if resp.canceled:
            feed = self.watches.get(wid)
            if feed is None:
                return
            self._drop(feed)
            if resp.compact_revision:
                store = self.store
                compacted = resp.compact_revision + 1          # see EtcdStore.compact
                store._compact_revision = max(store._compact_revision, compacted)
                err_for = lambda w: CompactedError(w.after, compacted)  # noqa: E731
            else:
                reason = resp.cancel_reason or "no reason given"
                err_for = lambda w: StoreError(f"etcd cancelled the watch: {reason}")  # noqa: E731
            for w in list(feed.subscribers):
                w._fail(err_for(w))
            return
        if resp.created:
            return
        # a progress notification: every event up to header.revision has been sent
        rev = resp.header.revision
        if rev > self.store._last_revision:
            self.store._last_revision = rev
        if wid != -1 and wid in self.watches:          # older etcd: one per watch
            self.watches[wid].progressed(rev)
            waiting = [w for w in self._progress_sent if w.feed is self.watches[wid]]
            self._progress_sent = [w for w in self._progress_sent if w not in waiting]
        else:
            for feed in self.watches.values():
                feed.progressed(rev)
            waiting, self._progress_sent = self._progress_sent, []
        for w in waiting:
            if w.feed is not None:
                w._deliver_progress(rev)
        if not self._progress_sent and self._progress_next:
            self._progress_sent, self._progress_next = self._progress_next, []
            self._progress_retry = 0.1
            self._send_progress_request()
