"""Fixtures for tests that need a real etcd: the binary (built once by the project's own
installer) and members started on free loopback ports in the test's temp dir.

Import the fixtures a module needs (`from etcd_harness import etcd_binary, etcd`).
Without Go (so no way to build etcd) they skip, except in CI (CI=true), where they fail.
"""
from __future__ import annotations

import os

import pytest

from shim.tools.etcd_install import MissingPrerequisite, ensure_etcd
from shim.tools.etcd_process import EtcdCluster, EtcdMember

__all__ = ["etcd_binary", "etcd", "etcd_factory", "EtcdCluster", "EtcdMember"]


@pytest.fixture(scope="session")
def etcd_binary():
    try:
        return ensure_etcd(quiet=True)
    except MissingPrerequisite as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"etcd is required in CI: {e}")
        pytest.skip(f"no etcd: {e}")


@pytest.fixture
def etcd_factory(etcd_binary, tmp_path):
    """make(size=1) -> a started EtcdCluster of `size` members; all stopped afterwards."""
    clusters: list[EtcdCluster] = []

    def make(size: int = 1, extra_args: list | None = None) -> EtcdCluster:
        c = EtcdCluster(etcd_binary, tmp_path / f"etcd-cluster{len(clusters)}", size, extra_args)
        clusters.append(c)
        return c.start()
    yield make
    for c in clusters:
        c.stop()


@pytest.fixture
def etcd(etcd_factory) -> EtcdMember:
    """A fresh single-member etcd (revision 1, nothing in it)."""
    return etcd_factory(1).members[0]
