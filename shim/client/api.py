"""A small asyncio client of the Kubernetes API over aiohttp.

`Client` speaks JSON to any API server (ours, or a real one): CRUD and patch on any resource,
subresource calls (pods/binding, */status, pods/eviction) and streaming watches. Resources are
described by `Resource` (group, version, plural, namespaced); the common ones are defined
below. Errors come back as `ApiError` carrying the server's Status object.
"""
from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass
from typing import Any, AsyncIterator
from urllib.parse import quote

import aiohttp
import orjson

from shim.client.config import ClientConfig, load_kubeconfig

# Accept headers asking for metadata only (PartialObjectMetadata): what the garbage
# collector and other metadata-only informers need, at a fraction of the size.
METADATA_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
METADATA_LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def base(self, namespace: str | None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{root}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        return f"{root}/{self.plural}"

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        p = self.base(namespace)
        if name:
            p += "/" + quote(name, safe="")
            if subresource:
                p += "/" + subresource
        return p


PODS = Resource("", "v1", "pods", "Pod")
NODES = Resource("", "v1", "nodes", "Node", namespaced=False)
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
EVENTS = Resource("", "v1", "events", "Event")
SERVICES = Resource("", "v1", "services", "Service")
ENDPOINTS = Resource("", "v1", "endpoints", "Endpoints")
REPLICATION_CONTROLLERS = Resource("", "v1", "replicationcontrollers", "ReplicationController")
CONFIG_MAPS = Resource("", "v1", "configmaps", "ConfigMap")
REPLICA_SETS = Resource("apps", "v1", "replicasets", "ReplicaSet")
STATEFUL_SETS = Resource("apps", "v1", "statefulsets", "StatefulSet")
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
DAEMON_SETS = Resource("apps", "v1", "daemonsets", "DaemonSet")
CONTROLLER_REVISIONS = Resource("apps", "v1", "controllerrevisions", "ControllerRevision")
PRIORITY_CLASSES = Resource("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", namespaced=False)
PODDISRUPTIONBUDGETS = Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget")
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
ENDPOINT_SLICES = Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice")


class ApiError(Exception):
    """A non-2xx answer; `status` is the decoded Status object when the server sent one."""

    def __init__(self, code: int, status: dict | None = None, text: str = ""):
        self.code = code
        self.status = status or {}
        self.reason = self.status.get("reason", "")
        self.message = self.status.get("message") or text or f"HTTP {code}"
        super().__init__(f"{code} {self.reason}: {self.message}".strip())


@dataclass(slots=True)
class WatchEvent:
    type: str          # ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
    object: dict


class Client:
    """One connection pool to one API server.

    Construct with `Client.from_kubeconfig(path)` or `Client(url, ssl=context)`; use as an
    async context manager or call `close()`.
    """

    def __init__(self, server: str, *, ssl=None, token: str | None = None,
                 max_connections: int = 100, user_agent: str = "shim-client",
                 timeout: float = 60.0):
        self.server = server.rstrip("/")
        self._ssl = ssl
        self._headers = {"Accept": "application/json", "User-Agent": user_agent}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._max_connections = max_connections
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike, context: str | None = None, **kw) -> "Client":
        return cls.from_config(load_kubeconfig(path, context), **kw)

    @classmethod
    def from_config(cls, cfg: ClientConfig, **kw) -> "Client":
        return cls(cfg.server, ssl=cfg.ssl_context, token=cfg.token, **kw)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            conn = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True,
                                        limit=self._max_connections, keepalive_timeout=60)
            self._session = aiohttp.ClientSession(
                connector=conn, headers=self._headers, json_serialize=lambda o: orjson.dumps(o).decode(),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- the one request primitive -------------------------------------------------------
    async def request(self, method: str, path: str, *, params: dict | None = None,
                      body: Any = None, content_type: str = "application/json",
                      timeout: float | None = None, accept: str | None = None) -> Any:
        """Send one request; the decoded JSON answer, or ApiError. `accept` overrides Accept."""
        data = None
        headers = None
        if body is not None:
            data = body if isinstance(body, (bytes, bytearray)) else orjson.dumps(body)
            headers = {"Content-Type": content_type}
        if accept:
            headers = dict(headers or {}, Accept=accept)
        async with self.session.request(
                method, self.server + path, params=_clean(params), data=data, headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout or self._timeout)) as resp:
            raw = await resp.read()
            if resp.status >= 400:
                raise _error(resp.status, raw)
            if not raw:
                return None
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError:
                return raw.decode(errors="replace")

    # -- verbs ------------------------------------------------------------------------------
    async def get(self, res: Resource, name: str, namespace: str | None = None, *,
                  accept: str | None = None, **params) -> dict:
        return await self.request("GET", res.path(namespace, name), params=params, accept=accept)

    async def list(self, res: Resource, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None,
                   resource_version: str | None = None, accept: str | None = None) -> dict:
        return await self.request("GET", res.path(namespace), params={
            "labelSelector": label_selector, "fieldSelector": field_selector, "limit": limit,
            "continue": continue_, "resourceVersion": resource_version}, accept=accept)

    async def list_all(self, res: Resource, namespace: str | None = None, *, page_size: int = 500,
                       accept: str | None = None, **selectors) -> tuple[list[dict], str]:
        """Every item (following `continue` tokens) and the list's resourceVersion."""
        items: list[dict] = []
        token = None
        while True:
            lst = await self.list(res, namespace, limit=page_size, continue_=token, accept=accept,
                                  **selectors)
            items.extend(lst.get("items") or [])
            token = (lst.get("metadata") or {}).get("continue")
            if not token:
                return items, lst["metadata"].get("resourceVersion", "")

    async def create(self, res: Resource, obj: dict, namespace: str | None = None, **params) -> dict:
        ns = namespace if namespace is not None else (obj.get("metadata") or {}).get("namespace")
        return await self.request("POST", res.path(ns), params=params, body=obj)

    async def update(self, res: Resource, obj: dict, namespace: str | None = None,
                     subresource: str | None = None, **params) -> dict:
        md = obj.get("metadata") or {}
        ns = namespace if namespace is not None else md.get("namespace")
        return await self.request("PUT", res.path(ns, md["name"], subresource), params=params, body=obj)

    async def patch(self, res: Resource, name: str, patch: Any, namespace: str | None = None, *,
                    type: str = "merge", subresource: str | None = None, **params) -> dict:
        return await self.request("PATCH", res.path(namespace, name, subresource), params=params,
                                  body=patch, content_type=PATCH_TYPES[type])

    async def delete(self, res: Resource, name: str, namespace: str | None = None, *,
                     grace_period_seconds: int | None = None, propagation_policy: str | None = None,
                     preconditions: dict | None = None) -> dict:
        body = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        if preconditions:
            body["preconditions"] = preconditions
        return await self.request("DELETE", res.path(namespace, name), body=body)

    async def delete_collection(self, res: Resource, namespace: str | None = None, *,
                                label_selector: str | None = None, field_selector: str | None = None,
                                grace_period_seconds: int | None = None,
                                propagation_policy: str | None = None) -> Any:
        """DELETE on the collection (deletecollection): every matching object, one request."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        return await self.request("DELETE", res.path(namespace), body=body, params={
            "labelSelector": label_selector, "fieldSelector": field_selector})

    async def post_subresource(self, res: Resource, name: str, subresource: str, body: dict,
                               namespace: str | None = None) -> Any:
        """POST to a subresource: pods/binding, pods/eviction, serviceaccounts/token, ..."""
        return await self.request("POST", res.path(namespace, name, subresource), body=body)

    async def bind(self, namespace: str, name: str, node: str, uid: str | None = None) -> None:
        """pods/binding: what a scheduler does once it has chosen a node."""
        md: dict = {"name": name, "namespace": namespace}
        if uid:
            md["uid"] = uid
        await self.post_subresource(PODS, name, "binding", {
            "apiVersion": "v1", "kind": "Binding", "metadata": md,
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}, namespace)

    # -- watch ------------------------------------------------------------------------------
    async def watch(self, res: Resource, namespace: str | None = None, *,
                    resource_version: str | None = None, label_selector: str | None = None,
                    field_selector: str | None = None, timeout_seconds: int | None = None,
                    allow_bookmarks: bool = True, accept: str | None = None) -> AsyncIterator[WatchEvent]:
        """Stream watch events until the server ends the watch (`accept`: e.g. METADATA_ACCEPT).

        An ERROR event (e.g. 410 Gone for a compacted resourceVersion) is raised as ApiError.
        """
        if timeout_seconds is None:
            timeout_seconds = int(300 * (1 + random.random()))
        params = {"watch": "true", "resourceVersion": resource_version, "labelSelector": label_selector,
                  "fieldSelector": field_selector, "timeoutSeconds": timeout_seconds,
                  "allowWatchBookmarks": "true" if allow_bookmarks else None}
        async with self.session.get(
                self.server + res.path(namespace), params=_clean(params),
                headers={"Accept": accept} if accept else None,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout,
                                              sock_read=timeout_seconds + 30)) as resp:
            if resp.status >= 400:
                raise _error(resp.status, await resp.read())
            buf = b""
            loads = orjson.loads
            async for chunk in resp.content.iter_any():
                buf += chunk
                if b"\n" not in chunk:
                    continue
                lines = buf.split(b"\n")
                buf = lines.pop()
                for line in lines:
                    if not line.strip():
                        continue
                    ev = loads(line)
                    etype, obj = ev.get("type"), ev.get("object") or {}
                    if etype == "ERROR":
                        raise ApiError(obj.get("code") or 500, obj)
                    yield WatchEvent(etype, obj)


def _clean(params: dict | None) -> dict | None:
    if not params:
        return None
    out = {}
    for k, v in params.items():
        if v is None or v == "":
            continue
        out[k] = str(v).lower() if isinstance(v, bool) else str(v)
    return out or None


def _error(code: int, raw: bytes) -> ApiError:
    try:
        status = orjson.loads(raw)
        if isinstance(status, dict):
            return ApiError(code, status)
    except orjson.JSONDecodeError:
        pass
    return ApiError(code, None, raw.decode(errors="replace").strip())


def is_not_found(e: BaseException) -> bool:
    return isinstance(e, ApiError) and e.code == 404


def is_conflict(e: BaseException) -> bool:
    return isinstance(e, ApiError) and e.code == 409


def is_gone(e: BaseException) -> bool:
    return isinstance(e, ApiError) and e.code == 410


async def retry_on_conflict(fn, attempts: int = 5):
    """Call `fn()` again when it fails with 409 Conflict (client-go's RetryOnConflict)."""
    for i in range(attempts):
        try:
            return await fn()
        except ApiError as e:
            if e.code != 409 or i == attempts - 1:
                raise
            await asyncio.sleep(0.01 * (2 ** i))
