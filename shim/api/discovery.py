"""Discovery: /api, /apis and each group-version, in the legacy and aggregated (v2) forms.

Documents are built once from the served resources and kept as bytes; the client picks
the aggregated form through its Accept header and the response Content-Type says which
one it got (client-go decides on that).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from shim.api import errors

if TYPE_CHECKING:
    from shim.api.apiset import Api

AGG_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGG_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


class DiscoveryDocs:
    """Every discovery document, serialised once."""

    def __init__(self, resources, preferred: dict[str, str], server_address: str):
        self.by_gv: dict[str, list] = {}
        for r in resources:
            self.by_gv.setdefault(r.group_version, []).append(r)
        groups: dict[str, list[str]] = {}
        for gv in self.by_gv:
            if "/" in gv:
                g, ver = gv.split("/", 1)
                groups.setdefault(g, []).append(ver)
        self.groups = {g: sorted(vs, key=lambda ver: ver != preferred.get(g)) for g, vs in groups.items()}
        self.api_versions = orjson.dumps({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]})
        group_objs = [self._group(g, vs) for g, vs in self.groups.items()]
        self.api_groups = orjson.dumps({"kind": "APIGroupList", "apiVersion": "v1", "groups": group_objs})
        self.group_docs = {g["name"]: orjson.dumps(dict(g, kind="APIGroup", apiVersion="v1"))
                           for g in group_objs}
        self.resource_lists = {gv: orjson.dumps(self._resource_list(gv, rs)) for gv, rs in self.by_gv.items()}
        agg = {"v2": {}, "v2beta1": {}}
        for ver in agg:
            agg[ver]["api"] = orjson.dumps(self._aggregated([("", ["v1"])], ver))
            agg[ver]["apis"] = orjson.dumps(self._aggregated(list(self.groups.items()), ver))
        self.aggregated = agg

    @staticmethod
    def _group(g: str, versions: list[str]) -> dict:
        return {"name": g,
                "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in versions],
                "preferredVersion": {"groupVersion": f"{g}/{versions[0]}", "version": versions[0]}}

    @staticmethod
    def _resource_list(gv: str, resources) -> dict:
        out = []
        for r in resources:
            entry = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                     "kind": r.kind, "verbs": list(r.verbs)}
            if r.short_names:
                entry["shortNames"] = list(r.short_names)
            if r.categories:
                entry["categories"] = list(r.categories)
            out.append(entry)
            for sub in r.subresources.values():
                se = {"name": f"{r.plural}/{sub.name}", "singularName": "", "namespaced": r.namespaced,
                      "kind": sub.kind, "verbs": list(sub.verbs)}
                if (sub.group, sub.version) != (r.group, r.version):
                    se["group"], se["version"] = sub.group, sub.version
                out.append(se)
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}

    def _aggregated(self, groups: list[tuple[str, list[str]]], ver: str) -> dict:
        items = []
        for g, versions in groups:
            vers = []
            for v in versions:
                gv = f"{g}/{v}" if g else v
                res = []
                for r in self.by_gv.get(gv, []):
                    e = {"resource": r.plural,
                         "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                         "scope": "Namespaced" if r.namespaced else "Cluster",
                         "singularResource": r.singular, "verbs": list(r.verbs)}
                    if r.short_names:
                        e["shortNames"] = list(r.short_names)
                    if r.categories:
                        e["categories"] = list(r.categories)
                    if r.subresources:
                        e["subresources"] = [
                            {"subresource": s.name,
                             "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                             "verbs": list(s.verbs)} for s in r.subresources.values()]
                    res.append(e)
                vers.append({"version": v, "resources": res, "freshness": "Current"})
            items.append({"metadata": {"name": g, "creationTimestamp": None}, "versions": vers})
        return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{ver}",
                "metadata": {}, "items": items}


def _wants_aggregated(request: web.Request) -> str | None:
    for part in request.headers.get("Accept", "").split(","):
        p = part.replace(" ", "")
        if "as=APIGroupDiscoveryList" in p and "g=apidiscovery.k8s.io" in p:
            if "v=v2beta1" in p:
                return "v2beta1"
            if "v=v2" in p:
                return "v2"
        elif p.split(";")[0] in ("application/json", "*/*", ""):
            return None
    return None


def _bytes(body: bytes, ctype: str = "application/json") -> web.Response:
    return web.Response(body=body, headers={"Content-Type": ctype})


def handle(api: "Api", request: web.Request, info) -> web.Response:
    if request.method not in ("GET", "HEAD"):
        raise errors.method_not_allowed()
    docs: DiscoveryDocs = api.discovery
    d = info.discovery
    if d in (("api",), ("apis",)):
        agg = _wants_aggregated(request)
        if agg:
            ctype = AGG_V2 if agg == "v2" else AGG_V2BETA1
            return _bytes(docs.aggregated[agg][d[0]], ctype)
        return _bytes(docs.api_versions if d == ("api",) else docs.api_groups)
    if d[0] == "api" and len(d) == 2:
        body = docs.resource_lists.get(d[1])
    elif len(d) == 2:
        body = docs.group_docs.get(d[1])
    else:
        body = docs.resource_lists.get(f"{d[1]}/{d[2]}")
    if body is None:
        raise errors.path_not_found()
    return _bytes(body)
