"""The HTTP face of the API: one aiohttp application, one dispatcher for every resource.

Request flow (the same for every resource, as in kube-apiserver's handler chain):
    errors -> authenticate -> parse request info -> authorize -> verb handler
The verb handlers are thin: decode the body, call the ResourceStore, encode the answer in
what the client accepts (JSON object, Table, PartialObjectMetadata, watch stream).
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
import yaml
from aiohttp import web

from shim.api import discovery, errors, managedfields, protobuf, tables
from shim.api.registry import DeleteOptions, ListOptions, ResourceStore, WriteOptions
from shim.api.watch import serve_watch
from shim.auth.authn import Unauthenticated
from shim.auth.authz import Attributes

if TYPE_CHECKING:
    from shim.api.apiset import Api

log = logging.getLogger("shim.api")

MAX_BODY = 3 * 1024 * 1024
JSON = "application/json"
NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass(slots=True)
class RequestInfo:
    """What a URL addresses (upstream's RequestInfo)."""
    is_resource: bool
    path: str
    verb: str = ""
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    name: str = ""
    subresource: str = ""
    subpath: str = ""
    watch: bool = False
    discovery: tuple = ()  # ("api",) ("api","v1") ("apis",) ("apis",g) ("apis",g,v)


def parse_request_info(method: str, path: str, query) -> RequestInfo:
    parts = [p for p in path.split("/") if p]
    info = RequestInfo(is_resource=False, path=path)
    if not parts or parts[0] not in ("api", "apis"):
        info.verb = method.lower()
        return info
    if parts[0] == "api":
        if len(parts) < 2:
            info.discovery = ("api",)
            info.verb = method.lower()
            return info
        info.version = parts[1]
        rest = parts[2:]
    else:
        if len(parts) < 3:
            info.discovery = tuple(parts)
            info.verb = method.lower()
            return info
        info.group, info.version = parts[1], parts[2]
        rest = parts[3:]
    if not rest:
        info.discovery = tuple(parts)
        info.verb = method.lower()
        return info
    info.is_resource = True
    if rest[0] == "watch":
        info.watch = True
        rest = rest[1:]
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in NAMESPACE_SUBRESOURCES:
        info.namespace = rest[1]   # a namespaced resource; otherwise the namespace object itself
        rest = rest[2:]
    if rest:
        info.resource = rest[0]
    if len(rest) > 1:
        info.name = rest[1]
    if len(rest) > 2:
        info.subresource = rest[2]
    if len(rest) > 3:
        info.subpath = "/".join(rest[3:])
    if info.resource == "namespaces" and info.name:
        info.namespace = info.name
    watch_param = query.get("watch", "").lower() in ("true", "1")
    m = method.upper()
    if m in ("GET", "HEAD"):
        if info.watch or watch_param:
            info.watch = True
            info.verb = "watch"
        else:
            info.verb = "get" if info.name else "list"
    elif m == "POST":
        info.verb = "create"
    elif m == "PUT":
        info.verb = "update"
    elif m == "PATCH":
        info.verb = "patch"
    elif m == "DELETE":
        info.verb = "delete" if info.name else "deletecollection"
    else:
        info.verb = m.lower()
    return info


def build_app(api: "Api") -> web.Application:
    app = web.Application(client_max_size=MAX_BODY + 1024, middlewares=[_error_middleware])
    app["api"] = api
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    app.on_response_prepare.append(_add_deprecation_warning)
    return app


async def _add_deprecation_warning(request: web.Request, response: web.StreamResponse) -> None:
    """A request on a deprecated kind gets its warning first among the Warning headers (a
    signal, so streamed answers such as watches carry it too)."""
    msg = request.get("deprecation_warning")
    if msg:
        others = response.headers.getall("Warning", [])
        response.headers.popall("Warning", None)
        for w in [_warning_headers([msg])["Warning"], *others]:
            response.headers.add("Warning", w)


@web.middleware
async def _error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except errors.ApiError as e:
        return _status_response(e)
    except web.HTTPRequestEntityTooLarge:
        return _status_response(errors.too_large())
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except web.HTTPException:
        raise
    except Exception as e:  # never a traceback on the wire
        log.exception("internal error on %s %s", request.method, request.path)
        return _status_response(errors.internal(f"{type(e).__name__}: {e}"))


def _status_response(e: errors.ApiError) -> web.Response:
    return web.Response(status=e.code, body=orjson.dumps(e.status()), content_type=JSON,
                        headers=e.headers)


def json_response(obj, status: int = 200, content_type: str = JSON, headers=None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(obj), content_type=None,
                        headers={"Content-Type": content_type, **(headers or {})})


async def _dispatch(request: web.Request) -> web.StreamResponse:
    api: "Api" = request.app["api"]
    try:
        user = await api.authenticator.authenticate(request)
    except Unauthenticated:
        raise errors.unauthorized() from None
    request["user"] = user
    managedfields.USER_AGENT.set(request.headers.get("User-Agent", ""))
    info = parse_request_info(request.method, request.path, request.query)
    request["info"] = info
    attrs = Attributes(user=user, verb=info.verb, is_resource_request=info.is_resource,
                       path=request.path, api_group=info.group, api_version=info.version,
                       resource=info.resource, subresource=info.subresource,
                       namespace=info.namespace, name=info.name)
    decision = await api.authorizer.authorize(attrs)
    if not decision.allowed:
        # as upstream with RBAC: "no opinion" from every authorizer carries no reason
        raise _forbidden(user, info, decision.reason if decision.denied else "")
    if not info.is_resource:
        if info.discovery:
            return discovery.handle(api, request, info)
        return await api.non_resource(request, info)
    return await _resource_request(api, request, info)


def _forbidden(user, info: RequestInfo, reason: str) -> errors.ApiError:
    who = f'User "{user.name}"'
    if not info.is_resource:
        msg = f'forbidden: {who} cannot {info.verb} path "{info.path}"'
        return errors.ApiError(403, "Forbidden", msg, {})
    res = info.resource + (f"/{info.subresource}" if info.subresource else "")
    scope = f' in the namespace "{info.namespace}"' if info.namespace else " at the cluster scope"
    g = f' in API group "{info.group}"'
    target = f'{errors.qualified(info.resource, info.group)}'
    if info.name:
        target += f' "{info.name}"'
    msg = f'{target} is forbidden: {who} cannot {info.verb} resource "{res}"{g}{scope}'
    if reason:
        msg += f": {reason}"
    return errors.ApiError(403, "Forbidden", msg, errors._details(info.name, info.group, info.resource))


# -- resource requests ------------------------------------------------------------------

async def _resource_request(api: "Api", request: web.Request, info: RequestInfo) -> web.StreamResponse:
    rs = api.resource(info.group, info.version, info.resource)
    if rs is None:
        raise errors.path_not_found()
    ri = rs.info
    if ri.deprecation_warning:
        request["deprecation_warning"] = ri.deprecation_warning
    if info.subresource and info.subresource not in ri.subresources:
        raise errors.path_not_found()
    if ri.namespaced and info.verb in ("get", "update", "patch", "delete", "create") and \
            not info.namespace and (info.name or info.verb == "create"):
        if not (ri.plural == "namespaces"):
            raise errors.path_not_found()
    if not ri.namespaced and info.namespace and ri.plural != "namespaces":
        raise errors.path_not_found()
    if info.subresource:
        return await api.subresource(request, info, rs)
    verb = info.verb
    if verb not in ri.verbs:
        raise errors.method_not_allowed()
    ns = info.namespace if ri.namespaced else ""
    q = request.query
    if verb == "get":
        obj = await rs.get(ns, info.name, q.get("resourceVersion", ""))
        return respond_object(request, rs, obj)
    if verb == "list":
        opts = ListOptions.from_query(q, rs.strategy)
        lst = await rs.list(ns, opts)
        return respond_list(request, rs, lst)
    if verb == "watch":
        opts = ListOptions.from_query(q, rs.strategy)
        enc, enc_id, ctype = watch_encoder(request, rs)
        return await serve_watch(request, rs, ns, opts, enc, enc_id, ctype)
    if verb == "create":
        if info.name:
            raise errors.method_not_allowed()
        virtual = getattr(rs.strategy, "handle_create", None)   # TokenReview, SubjectAccessReview
        if virtual is not None:
            return await virtual(api, request, info, rs)
        body = await read_body(request, kind=ri.kind)
        wopts = WriteOptions.from_query(q)
        obj, warnings = api.check_fields(rs, body, wopts)
        obj = await rs.create(ns, obj, wopts, request["user"])
        return respond_object(request, rs, obj, 201, warnings)
    if verb == "update":
        body = await read_body(request, kind=ri.kind)
        wopts = WriteOptions.from_query(q)
        obj, warnings = api.check_fields(rs, body, wopts)
        obj, created = await rs.update(ns, info.name, obj, wopts, user=request["user"])
        return respond_object(request, rs, obj, 201 if created else 200, warnings)
    if verb == "patch":
        return await handle_patch(api, request, rs, ns, info.name, "")
    if verb == "delete":
        body = await read_body(request, optional=True)
        dopts = DeleteOptions.parse(q, body)
        obj, removed = await rs.delete(ns, info.name, dopts, request["user"])
        if removed and not rs.strategy.return_deleted_object:
            m = obj["metadata"]
            return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                  "status": "Success",
                                  "details": errors._details(m["name"], ri.group, ri.plural,
                                                             uid=m.get("uid"))})
        # as upstream: 202 when an explicit orphanDependents=false left the object in place
        return respond_object(request, rs, obj, 202 if not removed and dopts.orphan_dependents is False else 200)
    if verb == "deletecollection":
        body = await read_body(request, optional=True)
        lopts = ListOptions.from_query(q, rs.strategy)
        dopts = DeleteOptions.parse(q, body)
        lst = await rs.delete_collection(ns, lopts, dopts, request["user"])
        return respond_list(request, rs, lst)
    raise errors.method_not_allowed()


async def handle_patch(api: "Api", request: web.Request, rs: ResourceStore, ns: str, name: str,
                       subresource: str, to_view=None, from_view=None) -> web.Response:
    """PATCH with any of the four patch types; `to_view`/`from_view` map a subresource's view."""
    from shim.api import patch as patchlib
    ctype = (request.content_type or "").lower()
    raw = await _read_raw(request)
    q = request.query
    wopts = WriteOptions.from_query(q)
    if ctype == "application/apply-patch+yaml":
        return await api.server_side_apply(request, rs, ns, name, subresource, raw, wopts,
                                           to_view, from_view)
    if "force" in q and ctype in ("application/json-patch+json", "application/merge-patch+json",
                                  "application/strategic-merge-patch+json"):
        from shim.api import validation as v
        raise errors.invalid("PatchOptions", "meta.k8s.io", "",
                             [v.forbidden("force", "may not be specified for non-apply patch")])
    if ctype not in ("application/json-patch+json", "application/merge-patch+json",
                     "application/strategic-merge-patch+json"):
        raise errors.ApiError(415, "UnsupportedMediaType",
                              'the body of the request was in an unknown format - accepted media types '
                              'include: application/json-patch+json, application/merge-patch+json, '
                              'application/apply-patch+yaml, application/strategic-merge-patch+json')
    try:
        patch = patchlib.parse_patch_body(raw)
    except patchlib.PatchError as e:
        raise e.to_api_error() from None
    warnings: list[str] = []

    def mutate(current: dict) -> dict:
        view = to_view(current) if to_view else current
        view_for_patch = dict(view)
        view_for_patch["metadata"] = {k: x for k, x in view["metadata"].items() if k != "resourceVersion"}
        try:
            if ctype == "application/json-patch+json":
                view_for_patch["metadata"] = view["metadata"]
                out = patchlib.apply_json_patch(view_for_patch, patch)
            elif ctype == "application/merge-patch+json":
                out = patchlib.apply_merge_patch(view_for_patch, patch)
            else:
                schema = api.patch_schema(rs, subresource)
                out = patchlib.apply_strategic_merge_patch(view_for_patch, patch, schema)
        except patchlib.PatchError as e:
            raise e.to_api_error() from None
        if not isinstance(out, dict):
            raise errors.bad_request("the patch produced a non-object")
        out, w = api.check_fields(rs, out, wopts, view=bool(to_view))
        warnings[:] = w
        return from_view(out, current) if from_view else out

    obj = await rs.patch_apply(ns, name, mutate, wopts, subresource, request["user"])
    if to_view:
        obj = to_view(obj)
        return json_response(obj, headers=_warning_headers(warnings))
    return respond_object(request, rs, obj, 200, warnings)


async def _read_raw(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise errors.too_large()
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise errors.too_large() from None
    if len(raw) > MAX_BODY:
        raise errors.too_large()
    return raw


async def read_body(request: web.Request, optional: bool = False, kind: str = ""):
    """The decoded body; `kind` (the object expected) words decode errors as upstream does."""
    raw = await _read_raw(request)
    if not raw.strip():
        if optional:
            return None
        raise errors.bad_request("the request body is empty")
    ctype = (request.content_type or JSON).lower()
    if ctype in (JSON, "", "application/octet-stream", "text/plain"):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            if ctype == JSON and kind:
                raise errors.bad_request(
                    f"the object provided is unrecognized (must be of type {kind}): couldn't get "
                    f"version/kind; json parse error: {e} ({_summarize(raw)})") from None
            if ctype == JSON:
                raise errors.bad_request(f"error decoding body: {e}") from None
    if ctype in ("application/yaml", "application/x-yaml", "text/yaml", JSON, "", "application/octet-stream",
                 "text/plain"):
        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise errors.bad_request(f"error converting YAML to JSON: {e}") from None
        return orjson.loads(orjson.dumps(data, default=str))
    if ctype == protobuf.CONTENT_TYPE:  # typed client-go clients (kubectl create <kind> ...)
        try:
            return protobuf.decode(raw)
        except protobuf.ProtobufError as e:
            raise errors.bad_request(str(e)) from None
    raise errors.ApiError(415, "UnsupportedMediaType",
                          "the body of the request was in an unknown format - accepted media types "
                          "include: application/json, application/yaml, application/vnd.kubernetes.protobuf")


def _summarize(raw: bytes, limit: int = 30) -> str:
    """Upstream's summarizeData: the start of a JSON body as text, anything else in hex."""
    text = raw[:limit].decode("utf-8", "replace") if raw[:1] == b"{" else raw[:limit].hex()
    return text + (" ..." if len(raw) > limit else "")


def _warning_headers(warnings) -> dict:
    if not warnings:
        return {}
    from multidict import CIMultiDict
    h = CIMultiDict()
    for w in warnings:  # a quoted-string, as upstream's NewWarningHeader escapes it
        h.add("Warning", '299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return h


# -- content negotiation ------------------------------------------------------------------

def _accept(request: web.Request) -> list[dict]:
    """Parsed Accept header: [{type, as, g, v, ...}] in client order."""
    out = []
    for part in request.headers.get("Accept", JSON).split(","):
        bits = [b.strip() for b in part.split(";")]
        d = {"type": bits[0].lower()}
        for b in bits[1:]:
            if "=" in b:
                k, val = b.split("=", 1)
                d[k.strip()] = val.strip()
        out.append(d)
    return out


def _choose(request: web.Request) -> str:
    """'table', 'meta' (PartialObjectMetadata), or 'json'."""
    for a in _accept(request):
        t = a["type"]
        if t in (JSON, "*/*", "application/*"):
            if a.get("as") == "Table" and a.get("g") == "meta.k8s.io" and a.get("v") in ("v1", "v1beta1"):
                return "table"
            if a.get("as") in ("PartialObjectMetadata", "PartialObjectMetadataList") and \
                    a.get("g") == "meta.k8s.io" and a.get("v") in ("v1", "v1beta1"):
                return "meta"
            if "as" not in a:
                return "json"
        if t in ("application/yaml",):
            return "yaml"
    if any(a["type"] == "application/vnd.kubernetes.protobuf" for a in _accept(request)):
        return "json"
    raise errors.not_acceptable("application/json, application/yaml, application/vnd.kubernetes.protobuf")


def _partial(obj: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def respond_object(request, rs: ResourceStore, obj: dict, status: int = 200, warnings=()) -> web.Response:
    mode = _choose(request)
    headers = _warning_headers(warnings)
    if mode == "table":
        return json_response(tables.table_for(rs, [obj], request.query, None), status, headers=headers)
    if mode == "meta":
        return json_response(_partial(obj), status, headers=headers)
    if mode == "yaml":
        return web.Response(status=status, body=yaml.safe_dump(obj).encode(), content_type="application/yaml")
    return json_response(obj, status, headers=headers)


def respond_list(request, rs: ResourceStore, lst: dict) -> web.Response:
    mode = _choose(request)
    if mode == "table":
        return json_response(tables.table_for(rs, lst["items"], request.query, lst["metadata"]))
    if mode == "meta":
        return json_response({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                              "metadata": lst["metadata"], "items": [_partial(o) for o in lst["items"]]})
    if mode == "yaml":
        return web.Response(body=yaml.safe_dump(lst).encode(), content_type="application/yaml")
    return json_response(lst)


def watch_encoder(request, rs: ResourceStore):
    mode = _choose(request)
    if mode == "table":
        enc, enc_id = tables.watch_encoder(rs, request.query)
        return enc, enc_id, JSON
    if mode == "meta":
        return (lambda obj: orjson.dumps(_partial(obj))), "meta", JSON
    return orjson.dumps, "json", JSON
