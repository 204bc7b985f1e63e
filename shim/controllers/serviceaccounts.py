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

log = logging.getLogger("shim.controllers")

ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


class ServiceAccountsController:
    """A client of the API (shim.client): reconciles on namespace, account and ConfigMap events."""

    def __init__(self, client, ca_pem: bytes, resync: float = 30.0):
        self.client = client
        self.ca = ca_pem.decode()
        self.resync = resync

    async def run(self) -> None:
        from shim.client.api import CONFIG_MAPS, NAMESPACES, Resource
        self.sas = Resource("", "v1", "serviceaccounts", "ServiceAccount")
        self.cms = CONFIG_MAPS
        while True:
            namespaces, rv = await self.client.list_all(NAMESPACES)
            for ns in namespaces:
                if not ns["metadata"].get("deletionTimestamp"):
                    await self.ensure(ns["metadata"]["name"])
            await self._wait(rv, [(NAMESPACES, None), (self.sas, "metadata.name=default"),
                                  (self.cms, f"metadata.name={ROOT_CA_CONFIGMAP}")])

    async def ensure(self, ns: str) -> None:
        from shim.client.api import ApiError, is_not_found
        wanted = [
            (self.sas, {"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": "default", "namespace": ns}}),
            (self.cms, {"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": ns,
                                     "annotations": {"kubernetes.io/description": (
                                         "Contains a CA bundle that can be used to verify the "
                                         "kube-apiserver when using internal endpoints such as the "
                                         "internal service IP or kubernetes.default.svc. No other usage "
                                         "is guaranteed across distributions of Kubernetes clusters.")}},
                        "data": {"ca.crt": self.ca}}),
        ]
        for res, obj in wanted:
            name = obj["metadata"]["name"]
            try:
                current = await self.client.get(res, name, ns)
            except ApiError as e:
                if not is_not_found(e):
                    raise
                current = None
            try:
                if current is None:
                    await self.client.create(res, obj, ns)
                elif res is self.cms and current.get("data") != obj["data"]:
                    await self.client.patch(res, name, {"data": obj["data"]}, ns)
            except ApiError as e:
                if e.code not in (404, 403, 409):  # namespace gone/terminating, or raced
                    raise

    async def _wait(self, rv: str, watched: list) -> None:
        """Until something watched changes after rv (or the resync period passes)."""
        async def first(res, selector):
            async for _ in self.client.watch(res, resource_version=rv, field_selector=selector,
                                             allow_bookmarks=False,
                                             timeout_seconds=int(self.resync)):
                return
        tasks = [asyncio.ensure_future(first(r, sel)) for r, sel in watched]
        try:
            await asyncio.wait(tasks, timeout=self.resync, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


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
