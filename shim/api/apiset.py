"""The API as one object: every served resource over one store, plus what spans them.

Api owns the ResourceStores (one per resource, all generic), the discovery documents,
admission, field validation, subresources and the non-resource endpoints. The HTTP layer
(server.py) only parses requests and calls in here; in-process controllers call the
same ResourceStores, so they go through exactly the same machinery as remote clients.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from shim import version as shim_version
from shim.api import errors, fieldcheck, openapi
from shim.api.discovery import DiscoveryDocs
from shim.api.registry import SLICE_SUBRESOURCES, DeleteOptions, ResourceStore, WriteOptions
from shim.api.selectors import label_selector_from_object, selector_from_set
from shim.api.strategy import StrategyOptions, make_strategy
from shim.api.watch import EventCache
from shim.schemas import load_groups, load_resources, load_types

if TYPE_CHECKING:
    from shim.store.base import Store

log = logging.getLogger("shim.api")



async def _nothing_to_finish(committed: bool) -> None:
    return None


async def _finish_all(finishers: list, committed: bool) -> None:
    # last begun, first finished; one failing does not keep the others from finishing
    for fin in reversed(finishers):
        try:
            await fin(committed)
        except Exception:
            log.exception("finishing a reservation failed")


class Api:
    def __init__(self, store: "Store", *, authenticator, authorizer, server_address: str = "127.0.0.1:6443",
                 min_request_timeout: float = 1800.0, bookmark_interval: float = 60.0,
                 store_timeout: float = 30.0, strategy_options: StrategyOptions | None = None):
        self.store = store
        self.authenticator = authenticator
        self.authorizer = authorizer
        self.min_request_timeout = min_request_timeout
        self.bookmark_interval = bookmark_interval
        self.store_timeout = store_timeout
        self.event_cache = EventCache()
        self.open_watches: set = set()
        self.admission_hooks: list = []
        # Reservations held across one write, as upstream's BeginCreate/BeginUpdate: async
        # (operation, rs, obj, old, dry_run) -> finish | None, run after admission just
        # before the write; finish(committed) is awaited once the write is known to have
        # happened (or not: failed, refused, dry run).
        self.reservation_hooks: list = []
        # async (rs, obj): an object has just left the store (upstream's AfterDelete)
        self.after_delete_hooks: list = []
        self.ready = False
        self.token_issuer = None   # set by the control plane (service account tokens)
        self.ca_pem = b""
        self.pki = None            # set by the control plane (kubelet client credentials)
        self.types = load_types()
        self.resources: dict[tuple[str, str, str], ResourceStore] = {}
        self.by_kind: dict[tuple[str, str], ResourceStore] = {}
        infos = load_resources()
        for info in infos:
            rs = ResourceStore(info, make_strategy(info, strategy_options), store, self)
            self.resources[(info.group, info.version, info.plural)] = rs
            self.by_kind[(info.group_version, info.kind)] = rs
        order = {g.name: i for i, g in enumerate(load_groups())}
        self.discovery = DiscoveryDocs(sorted(infos, key=lambda r: order.get(r.group, 99)),
                                       {g.name: g.preferred_version for g in load_groups()},
                                       server_address)
        self._patch_schemas: dict = {}
        self.started_at = time.time()

    # -- lookups ------------------------------------------------------------------------
    def resource(self, group: str, version: str, plural: str) -> ResourceStore | None:
        return self.resources.get((group, version, plural))

    def core(self, plural: str) -> ResourceStore:
        return self.resources[("", "v1", plural)]

    def kind(self, api_version: str, kind: str) -> ResourceStore | None:
        return self.by_kind.get((api_version, kind))

    # -- admission and cross-resource rules -----------------------------------------------
    async def admit(self, operation: str, rs: ResourceStore, obj: dict, old: dict | None, user) -> None:
        for hook in self.admission_hooks:
            await hook(operation, rs, obj, old, user)

    async def begin_write(self, operation: str, rs: ResourceStore, obj: dict, old: dict | None,
                          dry_run: bool):
        """Run the reservation hooks; returns finish(committed), to await after the write."""
        finishers = []
        try:
            for hook in self.reservation_hooks:
                fin = await hook(operation, rs, obj, old, dry_run)
                if fin is not None:
                    finishers.append(fin)
        except BaseException:
            await _finish_all(finishers, False)
            raise
        if not finishers:
            return _nothing_to_finish

        async def finish(committed: bool) -> None:
            await _finish_all(finishers, committed)
        return finish

    async def after_delete(self, rs: ResourceStore, obj: dict) -> None:
        """Tell the after-delete hooks; their failures are logged, the delete stands."""
        for hook in self.after_delete_hooks:
            try:
                await hook(rs, obj)
            except Exception:
                log.exception("after-delete hook for %s %s failed", rs.info.plural, obj["metadata"].get("name"))

    async def check_namespace_open(self, namespace: str, info, name: str) -> None:
        """Creating in a namespace needs it to exist and not be terminating (NamespaceLifecycle)."""
        if info.plural == "namespaces":
            return
        ns = await self.core("namespaces").get_or_none("", namespace)
        if ns is None:
            raise errors.not_found("namespaces", "", namespace)
        if ns["metadata"].get("deletionTimestamp") or (ns.get("status") or {}).get("phase") == "Terminating":
            raise errors.ApiError(
                403, "Forbidden",
                f'{errors.qualified(info.plural, info.group)} "{name}" is forbidden: unable to create new '
                f'content in namespace {namespace} because it is being terminated',
                {"name": name, "group": info.group, "kind": info.plural,
                 "causes": [{"reason": "NamespaceTerminating",
                             "message": f"namespace {namespace} is being terminated",
                             "field": "metadata.namespace"}]})

    # -- field validation -----------------------------------------------------------------
    def check_fields(self, rs: ResourceStore, body, wopts: WriteOptions, view: bool = False):
        """Apply fieldValidation (Strict/Warn/Ignore) to a decoded body: (body, warnings)."""
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        mode = wopts.field_validation or "Warn"
        if view:
            return body, []
        # unless refused (Strict), unknown fields are dropped, as decoding into Go structs does
        unknown = fieldcheck.unknown_fields(self.types, rs.info.definition, body, prune=mode != "Strict")
        if not unknown or mode == "Ignore":
            return body, []
        msgs = [f'unknown field "{p}"' for p in unknown]
        if mode == "Strict":
            raise errors.bad_request("strict decoding error: " + ", ".join(msgs))
        return body, msgs

    def patch_schema(self, rs: ResourceStore, subresource: str):
        key = rs.info.definition
        sch = self._patch_schemas.get(key)
        if sch is None:
            from shim.api.patchschema import TypesPatchSchema
            sch = self._patch_schemas[key] = TypesPatchSchema(self.types, key)
        return sch

    async def server_side_apply(self, request, rs, ns, name, subresource, raw, wopts, to_view, from_view):
        from shim.api.apply import handle_apply
        return await handle_apply(self, request, rs, ns, name, subresource, raw, wopts, to_view, from_view)

    # -- subresources -----------------------------------------------------------------------
    async def subresource(self, request: web.Request, info, rs: ResourceStore) -> web.StreamResponse:
        from shim.api import server as srv
        sub = info.subresource
        sr = rs.info.subresources[sub]
        ns = info.namespace if rs.info.namespaced else ""
        verb = info.verb
        if verb not in sr.verbs and not (verb == "watch" and "watch" in sr.verbs):
            raise errors.method_not_allowed()
        if sub in ("log", "exec", "attach", "portforward", "proxy") and rs.info.group == "" and \
                (rs.info.plural in ("pods", "nodes") or rs.info.plural == "services" and sub == "proxy"):
            from shim.api import kubeletproxy   # to the kubelet, a pod or a Service's endpoint
            return await kubeletproxy.handle(self, request, info, rs)
        if sub in SLICE_SUBRESOURCES:
            if verb == "get":
                return srv.respond_object(request, rs, await rs.get(ns, info.name))
            if verb == "update":
                body = await srv.read_body(request)
                wopts = WriteOptions.from_query(request.query)
                obj, warnings = self.check_fields(rs, body, wopts)
                obj, _ = await rs.update(ns, info.name, obj, wopts, subresource=sub, user=request["user"])
                return srv.respond_object(request, rs, obj, 200, warnings)
            if verb == "patch":
                return await srv.handle_patch(self, request, rs, ns, info.name, sub)
        if sub == "scale":
            return await self._scale(request, info, rs, ns)
        if sub == "binding":
            body = await srv.read_body(request)
            return await self.bind(ns, info.name, body, request)
        if sub == "eviction":
            body = await srv.read_body(request)
            return await self._evict(rs, ns, info.name, body, request)
        handler = getattr(rs.strategy, "handle_subresource", None)
        if handler is not None:
            return await handler(self, request, info, rs)
        raise errors.method_not_allowed()

    # scale: the autoscaling/v1 Scale view of replicated workloads
    async def _scale(self, request, info, rs: ResourceStore, ns: str):
        from shim.api import server as srv
        to_view, from_view = scale_view(rs)
        if info.verb == "get":
            view = to_view(await rs.get(ns, info.name))
            if srv._choose(request) == "table":
                from shim.api import tables
                from shim.printers import SCALE
                return srv.json_response(tables.build_table(SCALE.columns, SCALE.rows([view], False), [view],
                                                            request.query, None))
            return srv.json_response(view)
        if info.verb == "update":
            body = await srv.read_body(request)
            wopts = WriteOptions.from_query(request.query)
            if not isinstance(body, dict) or body.get("kind") not in (None, "Scale"):
                raise errors.bad_request("the body must be an autoscaling/v1 Scale")
            wanted_rv = (body.get("metadata") or {}).get("resourceVersion")

            def mutate(current):
                if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                    raise errors.conflict(rs.info.plural, rs.info.group, info.name, errors.MODIFIED)
                return from_view(body, current)
            obj = await rs.patch_apply(ns, info.name, mutate, wopts, subresource="scale", user=request["user"])
            return srv.json_response(to_view(obj))
        if info.verb == "patch":
            return await srv.handle_patch(self, request, rs, ns, info.name, "scale", to_view, from_view)
        raise errors.method_not_allowed()

    async def bind(self, ns: str, name: str, body: dict, request) -> web.Response:
        """pods/binding: set spec.nodeName once and mark the pod scheduled."""
        from shim.api import server as srv
        from shim.api.objects import now_rfc3339
        if not isinstance(body, dict) or not isinstance(body.get("target"), dict):
            raise errors.bad_request("a Binding needs a target")
        target = body["target"].get("name", "")
        if not target:
            raise errors.ApiError(422, "Invalid", f'Binding "{name}" is invalid: target.name: Required value')
        pods = self.core("pods")
        uid = (body.get("metadata") or {}).get("uid")
        wopts = WriteOptions.from_query(request.query)

        def mutate(pod):
            if uid and pod["metadata"].get("uid") != uid:
                raise errors.conflict("pods/binding", "", name,
                                      f"Precondition failed: UID in precondition: {uid}, "
                                      f"UID in object meta: {pod['metadata'].get('uid')}")
            if pod["metadata"].get("deletionTimestamp"):
                raise errors.conflict("pods/binding", "", name, f"pod {name} is being deleted, cannot be assigned to a host")
            spec = pod.setdefault("spec", {})
            if spec.get("nodeName"):
                raise errors.conflict("pods/binding", "", name,
                                      f'pod {name} is already assigned to node "{spec["nodeName"]}"')
            pod = orjson.loads(orjson.dumps(pod))
            pod["spec"]["nodeName"] = target
            ann = (body.get("metadata") or {}).get("annotations")
            if ann:
                pod["metadata"].setdefault("annotations", {}).update(ann)
            status = pod.setdefault("status", {})
            conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                          "lastTransitionTime": now_rfc3339()})
            status["conditions"] = conds
            return pod
        await pods.patch_apply(ns, name, mutate, wopts, subresource="binding", user=request["user"])
        return srv.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                  "code": 201}, 201)

    async def _evict(self, rs, ns, name, body, request):
        from shim.api import server as srv
        pod = await rs.get(ns, name)
        if not pod["metadata"].get("deletionTimestamp"):
            await self._check_disruption_budgets(pod)
        opts = DeleteOptions.parse(request.query, (body or {}).get("deleteOptions"))
        await rs.delete(ns, name, opts, request["user"])
        return srv.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                  "code": 201}, 201)

    async def _check_disruption_budgets(self, pod: dict) -> None:
        from shim.api.registry import ListOptions
        pdbs = self.resource("policy", "v1", "poddisruptionbudgets")
        ns = pod["metadata"]["namespace"]
        lst = await pdbs.list(ns, ListOptions())
        labels = pod["metadata"].get("labels") or {}
        for pdb in lst["items"]:
            sel = (pdb.get("spec") or {}).get("selector")
            if sel is None or not label_selector_from_object(sel).matches(labels):
                continue
            if (pdb.get("status") or {}).get("disruptionsAllowed", 0) < 1:
                raise errors.ApiError(
                    429, "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    {"causes": [{"reason": "DisruptionBudget",
                                 "message": f"The disruption budget {pdb['metadata']['name']} needs "
                                            f"{(pdb.get('status') or {}).get('desiredHealthy', 0)} healthy pods "
                                            f"and has {(pdb.get('status') or {}).get('currentHealthy', 0)} "
                                            f"currently"}]})

    # -- non-resource endpoints ---------------------------------------------------------------
    async def non_resource(self, request: web.Request, info) -> web.StreamResponse:
        from shim.api import server as srv
        path = request.path.rstrip("/") or "/"
        if path == "/version":
            return srv.json_response(shim_version.version_info())
        if path in ("/healthz", "/livez", "/readyz") or path.startswith(("/healthz/", "/livez/", "/readyz/")):
            ok = self.ready or not path.startswith("/readyz")
            if path.startswith("/readyz") and ok:
                ok = await self._store_ok()
            if "verbose" in request.query:
                text = f"[{'+' if ok else '-'}]ping ok\n[{'+' if ok else '-'}]etcd {'ok' if ok else 'failed'}\n"
                text += f"{path.strip('/')} check {'passed' if ok else 'failed'}\n"
            else:
                text = "ok" if ok else f"{path.strip('/')} check failed"
            return web.Response(status=200 if ok else 500, text=text, content_type="text/plain")
        if path == "/.well-known/openid-configuration" and self.token_issuer is not None:
            return srv.json_response(self.token_issuer.openid_configuration())
        if path == "/openid/v1/jwks" and self.token_issuer is not None:
            return srv.json_response(self.token_issuer.jwks(), content_type="application/jwk-set+json")
        if path == "/openapi/v3":
            body, _ = openapi.openapi_v3_index_bytes()
            return web.Response(body=body, headers={"Content-Type": "application/json"})
        if path.startswith("/openapi/v3/"):
            found = openapi.openapi_v3_document_bytes(path[len("/openapi/v3/"):])
            if found is None:
                raise errors.path_not_found()
            body, etag = found
            wanted = request.query.get("hash")
            if wanted and wanted != etag:
                raise web.HTTPMovedPermanently(f"{path}?hash={etag}")
            headers = {"Content-Type": "application/json", "ETag": f'"{etag}"', "Vary": "Accept"}
            if wanted:
                headers["Cache-Control"] = "public, immutable"
            return web.Response(body=body, headers=headers)
        if path == "/openapi/v2":
            body = openapi.openapi_v2_bytes(request.headers.get("Accept", "")) \
                if hasattr(openapi, "openapi_v2_bytes") else None
            if body is None:
                raise errors.path_not_found()
            return web.Response(body=body[0], headers={"Content-Type": body[1]})
        if path == "/":
            paths = sorted({"/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version",
                            "/openapi/v2", "/openapi/v3"} |
                           {f"/apis/{g}" for g in self.discovery.groups} |
                           {f"/apis/{gv}" for gv in self.discovery.by_gv if "/" in gv})
            return srv.json_response({"paths": paths})
        return web.Response(status=404, text="404 page not found\n", content_type="text/plain")

    async def _store_ok(self) -> bool:
        try:
            await asyncio.wait_for(self.store.current_revision(), timeout=2)
            return True
        except Exception:
            return False


def scale_view(rs: ResourceStore):
    """(to_view, from_view) mapping a workload to an autoscaling/v1 Scale and back."""
    def to_view(obj: dict) -> dict:
        m = obj["metadata"]
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        sel = spec.get("selector")
        if rs.info.kind == "ReplicationController":
            selector = str(selector_from_set(sel or {})) if sel else ""
        else:
            selector = str(label_selector_from_object(sel)) if sel else ""
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                               "creationTimestamp") if k in m},
                "spec": {"replicas": spec.get("replicas", 0)} if spec.get("replicas") is not None else {},
                "status": {"replicas": status.get("replicas", 0), "selector": selector}}

    def from_view(scale: dict, current: dict) -> dict:
        new = orjson.loads(orjson.dumps(current))
        replicas = (scale.get("spec") or {}).get("replicas")
        if replicas is None:
            replicas = 0
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.ApiError(422, "Invalid",
                                  f'Scale.autoscaling "{current["metadata"]["name"]}" is invalid: '
                                  f'spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0')
        new.setdefault("spec", {})["replicas"] = replicas
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv:
            new["metadata"]["resourceVersion"] = rv
        return new
    return to_view, from_view
