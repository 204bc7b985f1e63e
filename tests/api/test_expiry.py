"""Which writes expire: the strategies' ttl_seconds, what the generic registry hands the
store, and the `--event-ttl` duration syntax."""
from __future__ import annotations

import argparse
import sqlite3
import time

import pytest

from shim.api.apiset import Api
from shim.api.registry import WriteOptions
from shim.api.strategy import StrategyOptions
from shim.cli import go_duration
from shim.store.sqlite import SQLiteStore


@pytest.mark.parametrize("text, seconds", [
    ("1h", 3600), ("90s", 90), ("2m", 120), ("1h30m", 5400), ("1.5m", 90), ("2m30s", 150),
    ("300ms", 0.3), (".5s", 0.5), ("0", 0), ("10us", 1e-5), ("1h0m0s", 3600),
])
def test_go_duration(text, seconds):
    assert go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "1x", "-1h", "h", "1h 2m", "1.h.", "m1"])
def test_go_duration_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError):
        go_duration(text)


def expiries(path) -> dict[str, tuple[int, float]]:
    conn = sqlite3.connect(path)
    try:
        return {n: (i, at) for n, i, at in conn.execute("SELECT name, id, at FROM expiry")}
    finally:
        conn.close()


@pytest.fixture
async def api_on(tmp_path):
    made = []

    async def make(event_ttl: float) -> tuple[Api, str]:
        path = str(tmp_path / f"state{len(made)}.db")
        store = SQLiteStore(path)
        await store.start()
        made.append(store)
        api = Api(store, authenticator=None, authorizer=None,
                  strategy_options=StrategyOptions(event_ttl=event_ttl))
        await api.core("namespaces").create("", {"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": "default"}}, WriteOptions())
        return api, path
    yield make
    for store in made:
        await store.close()


def event(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": "default"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "p"},
            "reason": "Tested", "message": "m", "type": "Normal", "count": 1,
            "source": {"component": "test"}}


async def test_events_expire_through_both_apis_and_nothing_else(api_on):
    api, path = await api_on(120)
    core_events = api.core("events")
    v1_events = api.resource("events.k8s.io", "v1", "events")
    assert core_events.strategy.ttl_seconds(event("x")) == 120
    assert v1_events.strategy.ttl_seconds({}) == 120
    assert api.core("configmaps").strategy.ttl_seconds({}) is None
    before = time.time()
    created = await core_events.create("default", event("e1"), WriteOptions())
    await api.core("configmaps").create(
        "default", {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "c", "namespace": "default"}}, WriteOptions())
    rows = expiries(path)
    assert list(rows) == ["/registry/events/default/e1"]
    rev, at = rows["/registry/events/default/e1"]
    assert rev == int(created["metadata"]["resourceVersion"])
    assert before + 120 <= at <= time.time() + 120
    # an update sets the expiry anew, for the new write
    updated = await core_events.patch_apply("default", "e1", lambda o: {**o, "count": 2},
                                            WriteOptions())
    rev2, at2 = expiries(path)["/registry/events/default/e1"]
    assert rev2 == int(updated["metadata"]["resourceVersion"]) > rev and at2 >= at
    # a write through the events.k8s.io view expires like one through core/v1
    v1 = await v1_events.create("default", {
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "e2", "namespace": "default"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "example.com/t",
        "reportingInstance": "t-1", "action": "Test", "reason": "Tested", "type": "Normal",
        "regarding": {"kind": "Pod", "namespace": "default", "name": "p"}}, WriteOptions())
    assert expiries(path)["/registry/events/default/e2"][0] == int(v1["metadata"]["resourceVersion"])


async def test_event_ttl_zero_keeps_events(api_on):
    api, path = await api_on(0)
    assert api.core("events").strategy.ttl_seconds(event("x")) is None
    await api.core("events").create("default", event("kept"), WriteOptions())
    assert expiries(path) == {}
