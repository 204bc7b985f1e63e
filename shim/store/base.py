"""The cluster store contract: a revisioned key-value store with etcd's semantics.

Everything above this layer (the API machinery) talks only to `Store`. Backends
(embedded SQLite, etcd) implement it and must pass `tests/store/contract.py`.

Semantics, as etcd has them:
- One global, strictly increasing revision; every successful write (create, update,
  delete) gets the next revision. Revision 0 is never used by a write.
- Each live key carries create_revision (revision of the write that created this
  incarnation), mod_revision (revision of the last write) and version (1 on create,
  +1 per update; a delete ends the incarnation).
- Reads may be served "at" a past revision as long as it is not compacted.
- Watches deliver every event on a prefix with revision > start_revision, in revision
  order, each exactly once, with the previous value.
- Expiry (etcd's leases, as kube-apiserver uses them for Events): a create or update may
  carry a ttl in seconds. The key is then deleted about ttl seconds after that write,
  unless it is written again first; the next write replaces the expiry (a write without
  ttl removes it). The expiry is an ordinary delete: a new revision, a DELETE event with
  the last value as prev_kv. It only ever deletes the incarnation and version it was set
  for, never a newer write. Backends may round ttl up (etcd: whole seconds, plus up to
  5% of it, at most a minute, when one lease serves several writes).
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import AsyncIterator


@dataclass(slots=True, frozen=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int


@dataclass(slots=True, frozen=True)
class Event:
    """One change. type is "PUT" (create or update) or "DELETE".

    For PUT, kv is the new value and prev_kv the value before (None on create).
    For DELETE, kv holds the key, an empty value and mod_revision = the delete's
    revision; prev_kv is the value that was deleted.
    """
    type: str
    kv: KeyValue
    prev_kv: KeyValue | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    @property
    def is_create(self) -> bool:
        return self.type == "PUT" and self.kv.version == 1


@dataclass(slots=True)
class RangeResult:
    kvs: list[KeyValue]
    more: bool          # True when `limit` cut the result
    revision: int       # the revision the range was served at
    count: int = 0      # number of keys in the whole range (ignoring limit)


@dataclass(slots=True)
class WatchResponse:
    """A batch of events, or a progress notification (events empty).

    revision: every event up to and including this revision on the watched prefix
    has been delivered to this watcher (after this batch).
    """
    events: list[Event] = field(default_factory=list)
    revision: int = 0


class StoreError(Exception):
    """Base of every store error."""


class KeyExistsError(StoreError):
    def __init__(self, key: str):
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFoundError(StoreError):
    def __init__(self, key: str):
        super().__init__(f"key not found: {key}")
        self.key = key


class ConflictError(StoreError):
    """A compare-and-swap failed; `current` is the value now stored (None if gone)."""

    def __init__(self, key: str, current: KeyValue | None):
        super().__init__(f"conflict on {key}")
        self.key = key
        self.current = current


class CompactedError(StoreError):
    """The requested revision is older than the compacted revision."""

    def __init__(self, requested: int, compact_revision: int):
        super().__init__(
            f"required revision {requested} has been compacted (compacted at {compact_revision})")
        self.requested = requested
        self.compact_revision = compact_revision


class FutureRevisionError(StoreError):
    """The requested revision is newer than the store's current revision."""

    def __init__(self, requested: int, current: int):
        super().__init__(f"required revision {requested} is a future revision (current {current})")
        self.requested = requested
        self.current = current


class UnavailableError(StoreError):
    """The backend cannot be reached or timed out."""


def check_ttl(ttl: float | None) -> None:
    """Refuse a ttl that is not a positive number of seconds (None is fine)."""
    if ttl is None:
        return
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0 \
            or ttl == float("inf"):
        raise ValueError(f"ttl must be a positive number of seconds, not {ttl!r}")


class Watch(abc.ABC):
    """A live watch. Iterate it for WatchResponse batches; close() ends it.

    If the watch falls too far behind or its start revision is compacted, iteration
    raises CompactedError. Iteration ends (StopAsyncIteration) after close() or when
    the store closes.
    """

    def __aiter__(self) -> AsyncIterator[WatchResponse]:
        return self

    @abc.abstractmethod
    async def __anext__(self) -> WatchResponse: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def request_progress(self) -> None:
        """Ask for a progress notification (an empty WatchResponse with the current revision)."""


class Store(abc.ABC):
    """The contract every backend implements. All methods are coroutines unless noted."""

    #: The revision of a store that never had a write: 0 here, 1 for etcd (whose revisions
    #: are used as they are, so resourceVersions match etcd's mod revisions).
    initial_revision: int = 0

    @abc.abstractmethod
    async def start(self) -> None:
        """Open the backend (create schema, connect)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush and close; open watches end."""

    @abc.abstractmethod
    async def current_revision(self) -> int:
        """The latest revision (initial_revision for a store that never had a write)."""

    @property
    @abc.abstractmethod
    def compact_revision(self) -> int:
        """Revisions below this are gone: a get/range at revision r (r != 0) with
        r < compact_revision raises CompactedError (etcd's semantics; 0 if never compacted)."""

    @abc.abstractmethod
    async def get(self, key: str, revision: int = 0) -> KeyValue | None:
        """The value of key at revision (0 = latest), or None if absent."""

    @abc.abstractmethod
    async def range(self, prefix: str, *, revision: int = 0, limit: int = 0,
                    start_key: str | None = None, count: bool = False) -> RangeResult:
        """Live keys starting with prefix, in key order, at revision (0 = latest).

        start_key: only keys >= start_key (for pagination). limit 0 = no limit.
        count: also fill RangeResult.count with the total number of keys in range
        (from start_key on).
        """

    @abc.abstractmethod
    async def create(self, key: str, value: bytes, *, ttl: float | None = None) -> KeyValue:
        """Create key if absent; raise KeyExistsError otherwise. Durable when it returns.

        ttl: seconds after which the key is deleted unless written again (None: never).
        """

    @abc.abstractmethod
    async def update(self, key: str, value: bytes, expected_mod_revision: int, *,
                     ttl: float | None = None) -> KeyValue:
        """Replace key's value iff its mod_revision equals expected_mod_revision.

        expected_mod_revision 0 means unconditionally (the key must still exist).
        Raises KeyNotFoundError if absent, ConflictError(current) on mismatch.
        ttl: as for create; None also removes an expiry an earlier write had set.
        """

    @abc.abstractmethod
    async def delete(self, key: str, expected_mod_revision: int = 0) -> KeyValue:
        """Delete key (iff mod_revision matches, when given). Returns the deleted value.

        Raises KeyNotFoundError if absent, ConflictError(current) on mismatch.
        """

    @abc.abstractmethod
    def watch(self, prefix: str, start_revision: int) -> Watch:
        """Events on prefix with revision > start_revision (not a coroutine).

        start_revision 0 means "from now". If start_revision + 1 < compact_revision
        (some wanted event is gone), the first iteration raises CompactedError.
        """

    @abc.abstractmethod
    async def compact(self, revision: int) -> None:
        """Drop history older than revision: afterwards compact_revision == revision, and
        reads at any revision >= it still give exact answers (the value each key had
        then is kept). Compacting to a revision <= compact_revision is a no-op;
        to a future revision raises FutureRevisionError."""
