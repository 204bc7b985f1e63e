"""EtcdStore against a real etcd: the contract suite, plus what only etcd-backed stores face
(several clients on one etcd, members going away, TLS)."""
from __future__ import annotations

import pytest

from shim.store.etcd import EtcdStore

from etcd_harness import etcd, etcd_binary, etcd_factory  # noqa: F401  (fixtures)

from .contract import StoreContract


@pytest.fixture
async def store(etcd):
    s = EtcdStore([etcd.client_url], timeout=5)
    await s.start()
    yield s
    await s.close()


class TestEtcd(StoreContract):
    pass
