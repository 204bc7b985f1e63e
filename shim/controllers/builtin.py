"""The control loops and admission plugins every cluster has from the start.

- Service IP and node port allocation (admission on Service create).
- The namespace lifecycle controller: a deleted namespace is emptied, then removed.

Controllers here act through the same ResourceStores the HTTP handlers use, so every
write goes through validation, admission and the watch stream like any client's.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import random

from shim.api import errors, validation as v
from shim.api.registry import DeleteOptions, ListOptions, WriteOptions

log = logging.getLogger("shim.controllers")

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
NODE_PORT_RANGE = (30000, 32767)


def install_admission(api) -> None:
    from shim.controllers.serviceaccounts import service_account_admission
    api.admission_hooks.append(_allocate_service_addresses)
    api.admission_hooks.append(service_account_admission)


async def _allocate_service_addresses(operation, rs, obj, old, user) -> None:
    """ClusterIP and nodePort allocation for Services (upstream does it in the REST storage)."""
    if rs.info.plural != "services" or rs.info.group != "" or operation not in ("CREATE", "UPDATE"):
        return
    spec = obj.setdefault("spec", {})
    stype = spec.get("type", "ClusterIP")
    if stype == "ExternalName":
        return
    if operation == "CREATE" or not (old or {}).get("spec", {}).get("clusterIP"):
        ip = spec.get("clusterIP")
        if ip != "None":
            used = await _used(rs, lambda s: [(s.get("spec") or {}).get("clusterIP")])
            if ip:
                addr = ipaddress.ip_address(ip)
                if addr not in SERVICE_CIDR:
                    raise errors.invalid("Service", "", obj["metadata"]["name"], [v.invalid(
                        "spec.clusterIPs", [ip], f"failed to allocate IP {ip}: the provided IP ({ip}) is not "
                        f"in the valid range. The range of valid IPs is {SERVICE_CIDR}")])
                if ip in used:
                    raise errors.invalid("Service", "", obj["metadata"]["name"], [v.invalid(
                        "spec.clusterIPs", [ip], f"failed to allocate IP {ip}: provided IP is already allocated")])
            else:
                ip = _pick_ip(used)
            spec["clusterIP"] = ip
        spec["clusterIPs"] = [spec["clusterIP"]]
    if stype in ("NodePort", "LoadBalancer"):
        used_ports = await _used(rs, lambda s: [p.get("nodePort") for p in (s.get("spec") or {}).get("ports") or []],
                                 exclude=obj["metadata"].get("uid"))
        for i, p in enumerate(spec.get("ports") or []):
            np = p.get("nodePort")
            if np:
                if np in used_ports:
                    raise errors.invalid("Service", "", obj["metadata"]["name"], [v.invalid(
                        f"spec.ports[{i}].nodePort", np, "provided port is already allocated")])
            else:
                np = _pick_port(used_ports)
                p["nodePort"] = np
            used_ports.add(np)


async def _used(rs, values, exclude=None) -> set:
    lst = await rs.list("", ListOptions())
    out = set()
    for s in lst["items"]:
        if exclude and s["metadata"].get("uid") == exclude:
            continue
        out.update(x for x in values(s) if x)
    return out


def _pick_ip(used: set) -> str:
    first = int(SERVICE_CIDR.network_address) + 1
    last = int(SERVICE_CIDR.broadcast_address) - 1
    for _ in range(1000):
        cand = str(ipaddress.ip_address(random.randint(first + 10, last)))
        if cand not in used:
            return cand
    raise errors.internal("failed to allocate a service IP: range is full")


def _pick_port(used: set) -> int:
    lo, hi = NODE_PORT_RANGE
    for _ in range(1000):
        cand = random.randint(lo, hi)
        if cand not in used:
            return cand
    raise errors.internal("failed to allocate a node port: range is full")


# -- controllers -------------------------------------------------------------------------------

async def run_controllers(api) -> None:
    await NamespaceController(api).run()


class NamespaceController:
    """Empties namespaces being deleted, then drops the `kubernetes` finalizer so they go."""

    def __init__(self, api, resync: float = 2.0):
        self.api = api
        self.resync = resync

    async def run(self) -> None:
        rs = self.api.core("namespaces")
        while True:
            try:
                lst = await rs.list("", ListOptions())
                pending = False
                for ns in lst["items"]:
                    if ns["metadata"].get("deletionTimestamp"):
                        pending = await self.finalize(ns) or pending
                # content still going away (finalizers, grace periods): look again soon
                await self._wait_for_change(rs, int(lst["metadata"]["resourceVersion"]),
                                            self.resync if pending else self.resync * 15)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("namespace controller: %s", e)
                await asyncio.sleep(self.resync)

    async def _wait_for_change(self, rs, rev: int, timeout: float) -> None:
        watch = self.api.store.watch(rs.root, rev)
        try:
            async def first():
                async for batch in watch:
                    if batch.events:
                        return
            await asyncio.wait_for(first(), timeout=timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            watch.close()

    async def finalize(self, ns: dict) -> bool:
        """Delete a terminating namespace's content; True while some of it remains."""
        name = ns["metadata"]["name"]
        nss = self.api.core("namespaces")
        if (ns.get("status") or {}).get("phase") != "Terminating":
            def mark(cur):
                cur = dict(cur)
                cur["status"] = dict(cur.get("status") or {}, phase="Terminating")
                return cur
            await nss.patch_apply("", name, mark, WriteOptions(), subresource="status")
        remaining = 0
        for rs in self.api.resources.values():
            if not rs.info.namespaced or "delete" not in rs.info.verbs or "list" not in rs.info.verbs:
                continue
            lst = await rs.list(name, ListOptions())
            for obj in lst["items"]:
                if obj["metadata"].get("deletionTimestamp"):
                    remaining += 1
                    continue
                try:
                    _, removed = await rs.delete(name, obj["metadata"]["name"],
                                                 DeleteOptions(grace_period_seconds=None))
                    remaining += 0 if removed else 1
                except errors.ApiError as e:
                    if e.code != 404:
                        remaining += 1
                        log.warning("namespace %s: deleting %s: %s", name, obj["metadata"]["name"], e.message)
        if remaining:
            return True
        def drop_finalizer(cur):
            cur = dict(cur)
            spec = dict(cur.get("spec") or {})
            spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != "kubernetes"]
            if not spec["finalizers"]:
                spec.pop("finalizers")
            cur["spec"] = spec
            return cur
        try:
            await nss.patch_apply("", name, drop_finalizer, WriteOptions(), subresource="finalize")
        except errors.ApiError as e:
            if e.code != 404:
                raise
        return False
