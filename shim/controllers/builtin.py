"""Admission plugins every cluster has from the start.

- Service cluster IPs, reserved as IPAddress objects (shim/controllers/ipallocator.py).
- Service node ports (admission on Service create and update).
- Service account admission (shim/controllers/serviceaccounts.py).

They run inside the API server on every write; the control loops are API clients
(shim/controllers/run.py).
"""
from __future__ import annotations

import random

from shim.api import errors, validation as v
from shim.api.registry import ListOptions
from shim.controllers.ipallocator import ClusterIPAllocator

NODE_PORT_RANGE = (30000, 32767)


def install_admission(api) -> None:
    from shim.controllers.serviceaccounts import service_account_admission
    ClusterIPAllocator(api).install()
    api.admission_hooks.append(_allocate_node_ports)
    api.admission_hooks.append(service_account_admission)


async def _allocate_node_ports(operation, rs, obj, old, user) -> None:
    """nodePort allocation for Services (upstream does it in the REST storage).

    Still a random pick checked against the existing Services: not reserved in the store,
    so two concurrent creates could in rare cases get the same port.
    """
    if rs.info.plural != "services" or rs.info.group != "" or operation not in ("CREATE", "UPDATE"):
        return
    spec = obj.setdefault("spec", {})
    stype = spec.get("type", "ClusterIP")
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


def _pick_port(used: set) -> int:
    lo, hi = NODE_PORT_RANGE
    for _ in range(1000):
        cand = random.randint(lo, hi)
        if cand not in used:
            return cand
    raise errors.internal("failed to allocate a node port: range is full")
