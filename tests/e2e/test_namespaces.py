"""Namespace deletion end to end: the namespace controller (an API client) empties a
namespace being deleted, reports progress in its status conditions, and finalizes it.

Driven with the real kubectl and the official Python client against a `shim up` process.
"""
from __future__ import annotations

import json
import os
import time

import pytest
import yaml
from kubernetes import client, watch

OK_CONDITIONS = {
    "NamespaceDeletionDiscoveryFailure": ("False", "ResourcesDiscovered", "All resources successfully discovered"),
    "NamespaceDeletionGroupVersionParsingFailure": ("False", "ParsedGroupVersions",
                                                    "All legacy kube types successfully parsed"),
    "NamespaceDeletionContentFailure": ("False", "ContentDeleted",
                                        "All content successfully deleted, may be waiting on finalization"),
    "NamespaceContentRemaining": ("False", "ContentRemoved", "All content successfully removed"),
    "NamespaceFinalizersRemaining": ("False", "ContentHasNoFinalizers",
                                     "All content-preserving finalizers finished"),
}


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(3).hex()}"


def conditions_of(ns: dict) -> dict:
    """type -> (status, reason, message), as kubectl shows them."""
    out = {}
    for c in (ns.get("status") or {}).get("conditions") or []:
        assert c.get("lastTransitionTime"), c
        out[c["type"]] = (c["status"], c.get("reason"), c.get("message"))
    return out


def get_ns_yaml(kubectl, name: str) -> dict | None:
    p = kubectl.run("get", "namespace", name, "-o", "yaml", check=False)
    if p.returncode != 0:
        assert "NotFound" in p.stderr, p.stderr
        return None
    return yaml.safe_load(p.stdout)


def poll(what: str, fn, timeout: float = 20.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


def manifest(kind: str, name: str, ns: str, finalizers=(), **body) -> dict:
    md = {"name": name, "namespace": ns}
    if finalizers:
        md["finalizers"] = list(finalizers)
    return {"apiVersion": "v1", "kind": kind, "metadata": md, **body}


def pod(name: str, ns: str, finalizers=()) -> dict:
    return manifest("Pod", name, ns, finalizers,
                    spec={"containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"]}]})


def apply_all(kubectl, *objs: dict) -> None:
    kubectl("create", "-f", "-", input=yaml.safe_dump_all(objs))


def release(api_client, ns: str, kind_name_pairs) -> None:
    """Drop the test finalizers (cleanup: never leave a namespace stuck)."""
    v1 = client.CoreV1Api(api_client)
    calls = {"configmap": v1.patch_namespaced_config_map, "secret": v1.patch_namespaced_secret,
             "pod": v1.patch_namespaced_pod}
    for kind, name in kind_name_pairs:
        try:
            calls[kind](name, ns, {"metadata": {"finalizers": None}})
        except client.exceptions.ApiException:
            pass
    try:
        v1.delete_namespace(ns)
    except client.exceptions.ApiException:
        pass


# -- an ordinary namespace goes, with everything in it -------------------------------------------

def test_delete_namespace_removes_content_and_namespace(kubectl, api_client):
    ns = unique("nsdel")
    v1 = client.CoreV1Api(api_client)
    kubectl("create", "namespace", ns)
    try:
        apply_all(kubectl,
                  manifest("ConfigMap", "cm1", ns, data={"a": "1"}),
                  manifest("ConfigMap", "cm2", ns),
                  manifest("Secret", "s1", ns, stringData={"k": "v"}),
                  manifest("Service", "svc", ns, spec={"ports": [{"port": 80}]}),
                  pod("p1", ns), pod("p2", ns))
        kubectl("create", "deployment", "web", "--image=busybox:1.36", "-n", ns)
        assert len(v1.list_namespaced_pod(ns).items) >= 2

        # where a watch replays the namespace's changes from, to see its final state
        rv = v1.read_namespace(ns).metadata.resource_version

        started = time.monotonic()
        out = kubectl("delete", "namespace", ns, "--timeout=30s", timeout=45)
        assert out.strip() == f'namespace "{ns}" deleted'
        assert time.monotonic() - started < 30
        gone = kubectl.run("get", "namespace", ns, check=False)
        assert gone.returncode == 1
        assert gone.stderr.strip() == f'Error from server (NotFound): namespaces "{ns}" not found'

        # everything inside went first
        assert v1.list_namespaced_config_map(ns).items == []
        assert v1.list_namespaced_secret(ns).items == []
        assert v1.list_namespaced_service(ns).items == []
        assert v1.list_namespaced_pod(ns).items == []
        assert v1.list_namespaced_service_account(ns).items == []
        assert client.AppsV1Api(api_client).list_namespaced_deployment(ns).items == []

        # the last stored state of the namespace (what the DELETED event carries; the finalize
        # call that emptied spec.finalizers removed it rather than storing it): all went well
        last = None
        w = watch.Watch()
        for ev in w.stream(v1.list_namespace, field_selector=f"metadata.name={ns}",
                           resource_version=rv, timeout_seconds=10):
            last = ev
            if ev["type"] == "DELETED":
                w.stop()
        assert last is not None and last["type"] == "DELETED"
        final = api_client.sanitize_for_serialization(last["object"])
        assert final["status"]["phase"] == "Terminating"
        assert conditions_of(final) == OK_CONDITIONS
        assert [c["type"] for c in final["status"]["conditions"]] == list(OK_CONDITIONS)
    finally:
        release(api_client, ns, [])


# -- content held by finalizers --------------------------------------------------------------

def test_finalizers_keep_namespace_terminating_with_conditions(kubectl, api_client):
    ns = unique("nsheld")
    v1 = client.CoreV1Api(api_client)
    held = [("configmap", "held-a"), ("configmap", "held-b"), ("secret", "held-s")]
    kubectl("create", "namespace", ns)
    try:
        apply_all(kubectl,
                  manifest("ConfigMap", "held-a", ns, ["example.com/x"]),
                  manifest("ConfigMap", "held-b", ns, ["example.com/x"]),
                  manifest("Secret", "held-s", ns, ["example.com/y"]),
                  manifest("ConfigMap", "free", ns))
        out = kubectl("delete", "namespace", ns, "--wait=false")
        assert out.strip() == f'namespace "{ns}" deleted'

        def reported():
            got = get_ns_yaml(kubectl, ns)
            conds = conditions_of(got or {})
            return got if conds.get("NamespaceFinalizersRemaining", ("",))[0] == "True" else None
        got = poll("NamespaceFinalizersRemaining=True", reported)
        assert got["status"]["phase"] == "Terminating"
        assert got["metadata"]["deletionTimestamp"]
        assert got["spec"]["finalizers"] == ["kubernetes"]
        assert conditions_of(got) == dict(
            OK_CONDITIONS,
            NamespaceContentRemaining=(
                "True", "SomeResourcesRemain",
                "Some resources are remaining: configmaps. has 2 resource instances, "
                "secrets. has 1 resource instances"),
            NamespaceFinalizersRemaining=(
                "True", "SomeFinalizersRemain",
                "Some content in the namespace has finalizers remaining: "
                "example.com/x in 2 resource instances, example.com/y in 1 resource instances"))

        # what has no finalizer is gone; the held objects are marked for deletion
        assert {c.metadata.name for c in v1.list_namespaced_config_map(ns).items} == {"held-a", "held-b"}
        for kind, name in held:
            obj = (v1.read_namespaced_config_map if kind == "configmap" else v1.read_namespaced_secret)(name, ns)
            assert obj.metadata.deletion_timestamp is not None

        # nothing new may be created in a terminating namespace (NamespaceLifecycle)
        with pytest.raises(client.exceptions.ApiException) as e:
            v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="late")))
        assert e.value.status == 403
        status = json.loads(e.value.body)
        assert status["reason"] == "Forbidden"
        assert status["message"] == (f'configmaps "late" is forbidden: unable to create new content in '
                                     f'namespace {ns} because it is being terminated')

        # one finalizer released: the counts follow
        release(api_client, ns, held[:1])

        def recounted():
            conds = conditions_of(get_ns_yaml(kubectl, ns) or {})
            return conds.get("NamespaceFinalizersRemaining", ("", "", ""))[2].endswith(
                "example.com/x in 1 resource instances, example.com/y in 1 resource instances") and conds
        conds = poll("the finalizer count to drop", recounted)
        assert conds["NamespaceContentRemaining"][2] == (
            "Some resources are remaining: configmaps. has 1 resource instances, secrets. has 1 resource instances")

        # the rest released: the namespace goes
        release(api_client, ns, held[1:])
        out = kubectl("wait", "--for=delete", f"namespace/{ns}", "--timeout=20s", timeout=30)
        # kubectl says nothing when the namespace was already gone before it looked
        assert out == "" or "condition met" in out, out
        assert get_ns_yaml(kubectl, ns) is None
    finally:
        release(api_client, ns, held)


def test_pods_go_before_other_content(kubectl, api_client):
    """While a pod remains, the rest of the namespace's content is left alone."""
    ns = unique("nspods")
    v1 = client.CoreV1Api(api_client)
    kubectl("create", "namespace", ns)
    try:
        apply_all(kubectl, pod("held", ns, ["example.com/hold"]), manifest("ConfigMap", "config", ns))
        kubectl("delete", "namespace", ns, "--wait=false")

        # the controller deleted the pod and wrote what it found
        poll("the pod to be deleted", lambda: v1.read_namespaced_pod("held", ns).metadata.deletion_timestamp)
        got = poll("the deletion conditions",
                   lambda: (lambda n: n if conditions_of(n) else None)(get_ns_yaml(kubectl, ns)))
        assert got["status"]["phase"] == "Terminating"
        assert set(conditions_of(got)) == set(OK_CONDITIONS)
        # ...and left the ConfigMap for after the pods
        time.sleep(1.0)
        cm = v1.read_namespaced_config_map("config", ns)
        assert cm.metadata.deletion_timestamp is None

        release(api_client, ns, [("pod", "held")])
        out = kubectl("wait", "--for=delete", f"namespace/{ns}", "--timeout=20s", timeout=30)
        assert out == "" or "condition met" in out, out   # "" when it was gone before kubectl looked
        assert v1.list_namespaced_config_map(ns).items == []
    finally:
        release(api_client, ns, [("pod", "held")])


def test_namespace_without_content_goes_at_once(api_client):
    """The Python client's delete_namespace: an empty namespace is finalized promptly."""
    v1 = client.CoreV1Api(api_client)
    ns = unique("nsempty")
    v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    try:
        v1.delete_namespace(ns)

        def gone():
            try:
                v1.read_namespace(ns)
                return False
            except client.exceptions.ApiException as e:
                assert e.status == 404
                return True
        poll("the namespace to go", gone, timeout=15, interval=0.1)
    finally:
        release(api_client, ns, [])
