"""The garbage collector and deletion propagation, driven with kubectl and the Python client.

Owners and dependents are ConfigMaps, Secrets and ServiceAccounts (no workload controller
is needed). Every wait is bounded; the collector reacts within a fraction of a second.
"""
from __future__ import annotations

import json
import time
import uuid

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

WAIT = 20.0
HOLD = "example.com/hold"


@pytest.fixture
def core(api_client):
    return client.CoreV1Api(api_client)


def ref(obj, block: bool | None = None) -> dict:
    r = {"apiVersion": "v1", "kind": obj["kind"], "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"]}
    if block is not None:
        r["blockOwnerDeletion"] = block
    return r


def make(core, ns: str, kind: str, name: str, owners=(), finalizers=()) -> dict:
    """Create a ConfigMap, Secret or ServiceAccount; its metadata and kind as a plain dict."""
    md = {"name": name}
    if owners:
        md["ownerReferences"] = list(owners)
    if finalizers:
        md["finalizers"] = list(finalizers)
    create = {"ConfigMap": core.create_namespaced_config_map, "Secret": core.create_namespaced_secret,
              "ServiceAccount": core.create_namespaced_service_account}[kind]
    made = create(ns, {"apiVersion": "v1", "kind": kind, "metadata": md})
    return {"kind": kind, "metadata": {"name": name, "uid": made.metadata.uid}}


def read(core, ns: str, obj: dict):
    """The live object (as the client's model), or None once it is gone."""
    get = {"ConfigMap": core.read_namespaced_config_map, "Secret": core.read_namespaced_secret,
           "ServiceAccount": core.read_namespaced_service_account}[obj["kind"]]
    try:
        return get(obj["metadata"]["name"], ns)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def patch_meta(core, ns: str, obj: dict, meta: dict) -> None:
    fn = {"ConfigMap": core.patch_namespaced_config_map, "Secret": core.patch_namespaced_secret,
          "ServiceAccount": core.patch_namespaced_service_account}[obj["kind"]]
    fn(obj["metadata"]["name"], ns, {"metadata": meta})


def wait_for(what: str, cond, timeout: float = WAIT):
    deadline = time.time() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def gone(core, ns, obj) -> bool:
    return read(core, ns, obj) is None


def owner_uids(live) -> list[str]:
    return [r.uid for r in live.metadata.owner_references or []]


def raw_delete(core, ns: str, name: str, **opts):
    """DELETE a ConfigMap; (HTTP status, decoded body) whatever the body's kind."""
    resp = core.delete_namespaced_config_map(name, ns, body=client.V1DeleteOptions(**opts),
                                             _preload_content=False)
    return resp.status, json.loads(resp.data)


# -- background -------------------------------------------------------------------------------

def test_background_cascade_with_kubectl(kubectl, core, namespace):
    ns = namespace
    owner = make(core, ns, "ConfigMap", "owner")
    deps = [make(core, ns, "Secret", "dep-secret", [ref(owner)]),
            make(core, ns, "ConfigMap", "dep-cm", [ref(owner, block=True)]),
            make(core, ns, "ServiceAccount", "dep-sa", [ref(owner)])]
    bystander = make(core, ns, "ConfigMap", "bystander")
    kubectl("delete", "configmap", "owner", "-n", ns)   # kubectl's default: --cascade=background
    assert gone(core, ns, owner)
    for d in deps:
        wait_for(f"{d['metadata']['name']} to be collected", lambda d=d: gone(core, ns, d))
    assert read(core, ns, bystander) is not None


def test_dependent_of_an_owner_that_never_existed_is_collected(core, namespace):
    ns = namespace
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": str(uuid.uuid4())}
    orphan = make(core, ns, "Secret", "of-ghost", [ghost])
    # a namesake with another uid is not the owner either
    real = make(core, ns, "ConfigMap", "real")
    impostor = make(core, ns, "ServiceAccount", "of-impostor",
                    [dict(ref(real), uid=str(uuid.uuid4()))])
    wait_for("the ghost's dependent to be collected", lambda: gone(core, ns, orphan))
    wait_for("the impostor's dependent to be collected", lambda: gone(core, ns, impostor))
    assert read(core, ns, real) is not None


def test_dependent_with_two_owners_outlives_one(core, namespace):
    ns = namespace
    a = make(core, ns, "ConfigMap", "owner-a")
    b = make(core, ns, "Secret", "owner-b")
    dep = make(core, ns, "ServiceAccount", "shared", [ref(a), ref(b)])
    core.delete_namespaced_config_map("owner-a", ns)
    # it stays, losing only the reference to the owner that went
    live = wait_for("the reference to owner-a to be dropped",
                    lambda: (lambda x: x if x is not None and owner_uids(x) == [b["metadata"]["uid"]] else None)(
                        read(core, ns, dep)))
    assert live.metadata.deletion_timestamp is None
    time.sleep(0.5)
    assert read(core, ns, dep) is not None
    core.delete_namespaced_secret("owner-b", ns)
    wait_for("the shared dependent to be collected", lambda: gone(core, ns, dep))


def test_multi_level_chain_background(kubectl, core, namespace):
    ns = namespace
    top = make(core, ns, "ConfigMap", "top")
    mid = make(core, ns, "Secret", "mid", [ref(top)])
    leaf = make(core, ns, "ServiceAccount", "leaf", [ref(mid)])
    leaf2 = make(core, ns, "ConfigMap", "leaf2", [ref(mid), ref(leaf)])
    kubectl("delete", "configmap", "top", "-n", ns)
    for obj in (mid, leaf, leaf2):
        wait_for(f"{obj['metadata']['name']} to be collected", lambda obj=obj: gone(core, ns, obj))


# -- orphan -----------------------------------------------------------------------------------

def test_orphan_cascade_with_kubectl(kubectl, core, namespace):
    ns = namespace
    owner = make(core, ns, "ConfigMap", "owner")
    other = make(core, ns, "Secret", "other-owner")
    d1 = make(core, ns, "ConfigMap", "d1", [ref(owner, block=True)])
    d2 = make(core, ns, "ServiceAccount", "d2", [ref(owner), ref(other)])
    time.sleep(0.3)  # the collector must have seen the dependents (as upstream's would)
    # kubectl waits until the owner is gone, i.e. until the collector dropped `orphan`
    kubectl("delete", "configmap", "owner", "-n", ns, "--cascade=orphan", timeout=WAIT + 10)
    assert gone(core, ns, owner)
    live1, live2 = read(core, ns, d1), read(core, ns, d2)
    assert live1 is not None and not live1.metadata.owner_references
    assert live2 is not None and owner_uids(live2) == [other["metadata"]["uid"]]
    time.sleep(1.0)  # and nothing collects them afterwards
    assert read(core, ns, d1) is not None and read(core, ns, d2) is not None
    assert read(core, ns, d1).metadata.deletion_timestamp is None


def test_orphan_with_python_client_and_no_dependents(core, namespace):
    ns = namespace
    make(core, ns, "ConfigMap", "lonely", finalizers=[HOLD])
    status, body = raw_delete(core, ns, "lonely", propagation_policy="Orphan")
    # as upstream, the finalizer is added whether or not dependents exist
    assert status == 200 and body["metadata"]["finalizers"] == [HOLD, "orphan"]
    assert body["metadata"]["deletionTimestamp"] and body["metadata"]["deletionGracePeriodSeconds"] == 0
    wait_for("the collector to drop `orphan`",
             lambda: read(core, ns, {"kind": "ConfigMap", "metadata": {"name": "lonely"}}).metadata.finalizers == [HOLD])
    patch_meta(core, ns, {"kind": "ConfigMap", "metadata": {"name": "lonely"}}, {"finalizers": None})
    assert gone(core, ns, {"kind": "ConfigMap", "metadata": {"name": "lonely"}})


# -- foreground -------------------------------------------------------------------------------

def test_foreground_waits_for_blocking_dependent(kubectl, core, namespace):
    ns = namespace
    owner = make(core, ns, "ConfigMap", "owner")
    blocker = make(core, ns, "Secret", "blocker", [ref(owner, block=True)], finalizers=[HOLD])
    loose = make(core, ns, "ServiceAccount", "loose", [ref(owner)])
    kubectl("delete", "configmap", "owner", "-n", ns, "--cascade=foreground", "--wait=false")
    live = read(core, ns, owner)
    assert live is not None and live.metadata.deletion_timestamp is not None
    assert "foregroundDeletion" in live.metadata.finalizers
    # the collector deletes the dependents; the blocker is held by its own finalizer
    wait_for("the blocking dependent to be marked",
             lambda: (read(core, ns, blocker) or client.V1Secret(metadata=client.V1ObjectMeta()))
             .metadata.deletion_timestamp)
    wait_for("the loose dependent to be collected", lambda: gone(core, ns, loose))
    time.sleep(1.0)
    held = read(core, ns, owner)
    assert held is not None and held.metadata.finalizers == ["foregroundDeletion"]
    patch_meta(core, ns, blocker, {"finalizers": None})
    wait_for("the blocker to go", lambda: gone(core, ns, blocker))
    wait_for("the owner to go once nothing blocks it", lambda: gone(core, ns, owner))


def test_foreground_chain_is_recursive(kubectl, core, namespace):
    ns = namespace
    top = make(core, ns, "ConfigMap", "top")
    mid = make(core, ns, "ServiceAccount", "mid", [ref(top, block=True)])
    leaf = make(core, ns, "Secret", "leaf", [ref(mid, block=True)], finalizers=[HOLD])
    time.sleep(0.3)
    kubectl("delete", "configmap", "top", "-n", ns, "--cascade=foreground", "--wait=false")
    # the middle owns something, so it is deleted in the foreground too and waits for the leaf
    wait_for("the middle to wait for its dependents",
             lambda: "foregroundDeletion" in ((read(core, ns, mid) or client.V1ServiceAccount(
                 metadata=client.V1ObjectMeta())).metadata.finalizers or []))
    wait_for("the leaf to be marked", lambda: read(core, ns, leaf).metadata.deletion_timestamp)
    time.sleep(0.5)
    assert read(core, ns, top) is not None and read(core, ns, mid) is not None
    patch_meta(core, ns, leaf, {"finalizers": None})
    for obj in (leaf, mid, top):
        wait_for(f"{obj['metadata']['name']} to go", lambda obj=obj: gone(core, ns, obj))


# -- what DELETE does with the finalizers -----------------------------------------------------

def test_second_delete_switches_policy(core, namespace):
    ns = namespace
    make(core, ns, "ConfigMap", "switch", finalizers=[HOLD])
    status, body = raw_delete(core, ns, "switch", propagation_policy="Orphan")
    assert status == 200 and body["metadata"]["finalizers"] == [HOLD, "orphan"]
    status, body = raw_delete(core, ns, "switch", propagation_policy="Foreground")
    assert body["metadata"]["finalizers"] == [HOLD, "foregroundDeletion"]
    status, body = raw_delete(core, ns, "switch", propagation_policy="Background")
    assert body["metadata"]["finalizers"] == [HOLD]
    # with no policy nothing changes, not even the resourceVersion
    status, again = raw_delete(core, ns, "switch")
    assert again["metadata"]["finalizers"] == [HOLD]
    assert again["metadata"]["resourceVersion"] == body["metadata"]["resourceVersion"]
    # orphanDependents=false means neither finalizer, and an answer of 202 Accepted
    status, body = raw_delete(core, ns, "switch", orphan_dependents=False)
    assert status == 202 and body["metadata"]["finalizers"] == [HOLD]
    patch_meta(core, ns, {"kind": "ConfigMap", "metadata": {"name": "switch"}}, {"finalizers": None})
    assert gone(core, ns, {"kind": "ConfigMap", "metadata": {"name": "switch"}})


def test_background_delete_adds_no_finalizer(core, namespace):
    ns = namespace
    make(core, ns, "ConfigMap", "plain")
    status, body = raw_delete(core, ns, "plain", propagation_policy="Background")
    assert status == 200 and body["kind"] == "Status" and body["status"] == "Success"
    assert gone(core, ns, {"kind": "ConfigMap", "metadata": {"name": "plain"}})


def test_orphan_dependents_and_propagation_policy_conflict(core, namespace):
    make(core, namespace, "ConfigMap", "both")
    with pytest.raises(ApiException) as e:
        core.delete_namespaced_config_map("both", namespace, body=client.V1DeleteOptions(
            orphan_dependents=True, propagation_policy="Orphan"))
    body = json.loads(e.value.body)
    assert (e.value.status, body["reason"]) == (422, "Invalid")
    assert body["message"] == ('DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Invalid value: '
                               '"Orphan": orphanDependents and deletionPropagation cannot be both set')
    assert read(core, namespace, {"kind": "ConfigMap", "metadata": {"name": "both"}}) is not None
