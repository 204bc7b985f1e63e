"""Admission plugins every cluster has from the start.

- Service IP and node port allocation (admission on Service create and update).
- Service account admission (shim/controllers/serviceaccounts.py).

They run inside the API server on every write; the control loops are API clients
(shim/controllers/run.py).
"""
from __future__ import annotations

import ipaddress
import random

from shim.api import errors, validation as v
from shim.api.registry import ListOptions

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
