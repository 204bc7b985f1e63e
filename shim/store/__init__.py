"""The cluster store: the contract (see base.py) and a factory for its backends."""
from __future__ import annotations

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
)

__all__ = [
    "CompactedError", "ConflictError", "Event", "FutureRevisionError", "KeyExistsError",
    "KeyNotFoundError", "KeyValue", "RangeResult", "Store", "StoreError",
    "UnavailableError", "Watch", "WatchResponse", "open_store",
]


def open_store(kind: str, **opts) -> Store:
    """Build (not start) a store backend by name.

    "sqlite": the embedded store; opts: path=..., plus SQLiteStore's tuning knobs.
    "etcd": an etcd cluster; opts: endpoints=[urls], cafile/certfile/keyfile, timeout.
    Backends are imported lazily so one's dependencies never burden another.
    """
    if kind == "sqlite":
        from .sqlite import SQLiteStore
        return SQLiteStore(**opts)
    if kind == "etcd":
        from .etcd import EtcdStore
        return EtcdStore(**opts)
    raise ValueError(f"unknown store kind {kind!r} (known: 'sqlite', 'etcd')")
