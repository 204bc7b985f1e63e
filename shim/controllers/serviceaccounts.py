"""Service accounts in every namespace, and pods wired to them.

- ServiceAccountsController: every active namespace has the `default` ServiceAccount and the
  `kube-root-ca.crt` ConfigMap (the cluster CA, for in-pod clients); recreated if deleted.
- service_account_admission: a pod names an existing service account (default `default`)
  and, unless automounting is off, gets the projected `kube-api-access-*` volume (a bound
  token, the CA bundle and its namespace) mounted where in-cluster clients look.
"""
from __future__ import annotations

import asyncio
import logging

from shim.api import errors
from shim.api.objects import generate_name
from shim.api.registry import ListOptions, WriteOptions

log = logging.getLogger("shim.controllers")

ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


class ServiceAccountsController:
    def __init__(self, api, ca_pem: bytes, resync: float = 30.0):
        self.api = api
        self.ca = ca_pem.decode()
        self.resync = resync

    async def run(self) -> None:
        nss = self.api.core("namespaces")
        prefixes = [nss.root, self.api.core("serviceaccounts").root, self.api.core("configmaps").root]
        while True:
            try:
                lst = await nss.list("", ListOptions())
                for ns in lst["items"]:
                    if not ns["metadata"].get("deletionTimestamp"):
                        await self.ensure(ns["metadata"]["name"])
                await self._wait(prefixes, int(lst["metadata"]["resourceVersion"]))
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("service account controller: %s", e)
                await asyncio.sleep(1)

    async def ensure(self, ns: str) -> None:
        sas, cms = self.api.core("serviceaccounts"), self.api.core("configmaps")
        wanted = [
            (sas, {"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": "default", "namespace": ns}}),
            (cms, {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": ns,
                                "annotations": {"kubernetes.io/description": (
                                    "Contains a CA bundle that can be used to verify the "
                                    "kube-apiserver when using internal endpoints such as the "
                                    "internal service IP or kubernetes.default.svc. No other usage "
                                    "is guaranteed across distributions of Kubernetes clusters.")}},
                   "data": {"ca.crt": self.ca}}),
        ]
        for rs, obj in wanted:
            current = await rs.get_or_none(ns, obj["metadata"]["name"])
            if current is not None and (rs is sas or current.get("data") == obj["data"]):
                continue
            try:
                if current is None:
                    await rs.create(ns, obj, WriteOptions())
                else:
                    def fix(cur, data=obj["data"]):
                        return dict(cur, data=data)
                    await rs.patch_apply(ns, obj["metadata"]["name"], fix, WriteOptions())
            except errors.ApiError as e:
                if e.code not in (404, 403, 409):  # namespace gone/terminating, or raced
                    raise

    async def _wait(self, prefixes: list[str], rev: int) -> None:
        watches = [self.api.store.watch(p, rev) for p in prefixes]
        tasks = [asyncio.ensure_future(w.__anext__()) for w in watches]
        try:
            await asyncio.wait(tasks, timeout=self.resync, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            for w in watches:
                w.close()


async def service_account_admission(operation, rs, obj, old, user) -> None:
    if operation != "CREATE" or rs.info.plural != "pods" or rs.info.group != "":
        return
    api = rs.api
    spec = obj.setdefault("spec", {})
    ns = obj["metadata"]["namespace"]
    name = spec.get("serviceAccountName") or "default"
    spec["serviceAccountName"] = spec["serviceAccount"] = name
    sa = await api.core("serviceaccounts").get_or_none(ns, name)
    for _ in range(20):  # a namespace created a moment ago gets its `default` account shortly
        if sa is not None or name != "default":
            break
        await asyncio.sleep(0.1)
        sa = await api.core("serviceaccounts").get_or_none(ns, name)
    if sa is None:
        raise errors.ApiError(
            403, "Forbidden",
            f'pods "{obj["metadata"].get("name", "")}" is forbidden: error looking up service account '
            f'{ns}/{name}: serviceaccount "{name}" not found',
            {"name": obj["metadata"].get("name", ""), "kind": "pods"})
    automount = spec.get("automountServiceAccountToken")
    if automount is None:
        automount = sa.get("automountServiceAccountToken", True)
    if automount is False:
        return
    containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
    if any(m.get("mountPath") == TOKEN_MOUNT_PATH for c in containers for m in c.get("volumeMounts") or []):
        return
    vol_name = generate_name("kube-api-access-")
    spec.setdefault("volumes", []).append({"name": vol_name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}})
    for c in containers:
        c.setdefault("volumeMounts", []).append(
            {"name": vol_name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH})
