"""The API server's own endpoints: `default/kubernetes` Endpoints and EndpointSlice, pointing
at the address and port every API server replica advertises.

The part of kube-apiserver that keeps the `kubernetes` Service reachable (its "lease"
endpoint reconciler, the default): each replica keeps a short-lived record of its address
in the store (`/registry/masterleases/<ip>`, refreshed every 10 s, good for 15 s), and
every 10 s makes the Endpoints list exactly the addresses with a live record, then writes
the EndpointSlice from the Endpoints. A replica stopping cleanly removes its record and its
address at once; one that dies drops out when its record expires. Records are written
with the store's key expiry, as upstream gives them an etcd lease (on etcd that is what
they get).

What upstream writes, and so this does:
- Endpoints `kubernetes`: one subset, addresses `{ip}` only, port `https`/TCP at the
  advertised port, label `endpointslice.kubernetes.io/skip-mirror: "true"` (the mirroring
  controller must not copy it).
- EndpointSlice `kubernetes` (a fixed name, no owner reference), label
  `kubernetes.io/service-name: kubernetes` only (no managed-by: no controller owns it),
  addressType IPv4, endpoints `{addresses: [ip], conditions: {ready: true}}`.

Which address: `shim up --advertise-address`, else the address it listens on when that is a
routable one, else (listening on loopback or on every interface) the host's primary address,
the one its default route leaves from. That is upstream's rule too. Loopback is never
advertised: an endpoint may not be loopback. With the default `--listen 127.0.0.1:6443`
the advertised address is therefore one the server does not listen on; nodes reach the API
server through their own forwarders (shim/node/up.py) regardless, and pods only need the
`kubernetes` Service to work once something routes Service traffic: then listen on
0.0.0.0 (or give the address to advertise).
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket

import orjson

from shim.api import errors
from shim.api.registry import DeleteOptions, WriteOptions

log = logging.getLogger("shim.kubernetesservice")

LEASES_PREFIX = "/registry/masterleases/"
RECONCILE_INTERVAL = 10.0
LEASE_TTL = 15.0
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
FIELD_MANAGER = "kube-apiserver"


def advertise_address(listen_host: str, explicit: str | None = None) -> str | None:
    """The address to advertise (see the module docstring); None when there is none usable."""
    if explicit:
        return explicit
    try:
        ip = ipaddress.ip_address(listen_host)
        if not ip.is_loopback and not ip.is_unspecified:
            return str(ip)
    except ValueError:
        pass
    return primary_host_address()


def primary_host_address() -> str | None:
    """The source address of the default IPv4 route (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))   # TEST-NET-1: never contacted, only routed
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if ipaddress.ip_address(addr).is_loopback else addr


class KubernetesEndpoints:
    """One API server replica's share of keeping default/kubernetes current."""

    def __init__(self, api, ip: str, port: int, *, interval: float = RECONCILE_INTERVAL,
                 lease_ttl: float = LEASE_TTL):
        self.api = api
        self.ip = ip
        self.port = port
        self.interval = interval
        self.lease_ttl = lease_ttl
        self.stopping = False

    async def run(self) -> None:
        while True:
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the store or a conflict: the next round repairs it
                log.warning("reconciling the kubernetes endpoints: %s", e)
            await asyncio.sleep(self.interval)

    async def remove(self) -> None:
        """Clean shutdown: drop our record and our address."""
        self.stopping = True
        try:
            await self.api.store.delete(LEASES_PREFIX + self.ip)
        except Exception:
            pass
        await self.reconcile()

    async def reconcile(self) -> None:
        if not self.stopping:
            await self._refresh_lease()
        ips = await self._live_addresses()
        if not ips and not self.stopping:
            raise RuntimeError("no API server addresses are recorded; not emptying the kubernetes endpoints")
        endpoints = await self._ensure_endpoints(ips)
        await self._ensure_slice(endpoints)

    # -- address records ------------------------------------------------------------------------
    async def _refresh_lease(self) -> None:
        """Write this replica's record with a store expiry of lease_ttl (an etcd lease on etcd)."""
        from shim.store.base import KeyNotFoundError
        key = LEASES_PREFIX + self.ip
        value = orjson.dumps({"ip": self.ip})
        try:
            await self.api.store.update(key, value, 0, ttl=self.lease_ttl)
        except KeyNotFoundError:
            await self.api.store.create(key, value, ttl=self.lease_ttl)

    async def _live_addresses(self) -> list[str]:
        """The addresses whose records have not expired (the store deletes those that do)."""
        result = await self.api.store.range(LEASES_PREFIX)
        live = set()
        for kv in result.kvs:
            try:
                record = orjson.loads(kv.value)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("ip"):
                live.add(record["ip"])
        return sorted(live)

    # -- the objects ------------------------------------------------------------------------------
    def _ports(self) -> list[dict]:
        return [{"name": "https", "port": self.port, "protocol": "TCP"}]

    async def _ensure_endpoints(self, ips: list[str]) -> dict:
        store = self.api.core("endpoints")
        want = [{"addresses": [{"ip": ip} for ip in ips], "ports": self._ports()}] if ips else []
        current = await store.get_or_none("default", "kubernetes")
        if current is None:
            obj = {"apiVersion": "v1", "kind": "Endpoints",
                   "metadata": {"name": "kubernetes", "namespace": "default",
                                "labels": {SKIP_MIRROR_LABEL: "true"}}}
            if want:
                obj["subsets"] = want
            try:
                return await store.create("default", obj, WriteOptions(field_manager=FIELD_MANAGER))
            except errors.ApiError as e:
                if e.code != 409:
                    raise
                current = await store.get_or_none("default", "kubernetes")
        labels = current["metadata"].get("labels") or {}
        if (current.get("subsets") or []) == want and labels.get(SKIP_MIRROR_LABEL) == "true":
            return current
        log.info("setting the kubernetes endpoints to %s", ips)
        obj = orjson.loads(orjson.dumps(current))
        obj["metadata"]["labels"] = dict(labels, **{SKIP_MIRROR_LABEL: "true"})
        if want:
            obj["subsets"] = want
        else:
            obj.pop("subsets", None)
        updated, _ = await store.update("default", "kubernetes", obj, WriteOptions(field_manager=FIELD_MANAGER))
        return updated

    async def _ensure_slice(self, endpoints: dict) -> None:
        """The EndpointSlice derived from the Endpoints: first subset, IPv4 unless all of
        its addresses are IPv6."""
        store = self.api.resource("discovery.k8s.io", "v1", "endpointslices")
        subset = (endpoints.get("subsets") or [{}])[0]
        ready = [a["ip"] for a in subset.get("addresses") or ()]
        not_ready = [a["ip"] for a in subset.get("notReadyAddresses") or ()]
        everything = ready + not_ready
        family = "IPv6" if everything and all(":" in ip for ip in everything) else "IPv4"
        eps = [{"addresses": [ip], "conditions": {"ready": r}} for ips, r in ((ready, True), (not_ready, False))
               for ip in ips if (":" in ip) == (family == "IPv6")]
        ports = [{"name": p.get("name", ""), "protocol": p.get("protocol", "TCP"), "port": p.get("port")}
                 for p in subset.get("ports") or ()]
        want = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "kubernetes", "namespace": "default",
                             "labels": {SERVICE_NAME_LABEL: "kubernetes"}},
                "addressType": family, "endpoints": eps or None, "ports": ports or None}
        opts = WriteOptions(field_manager=FIELD_MANAGER)
        current = await store.get_or_none("default", "kubernetes")
        if current is not None and current.get("addressType") != family:
            await store.delete("default", "kubernetes", DeleteOptions())
            current = None
        if current is None:
            try:
                await store.create("default", want, opts)
            except errors.ApiError as e:
                if e.code != 409:
                    raise
            return
        if ((current.get("endpoints") or None) == want["endpoints"] and (current.get("ports") or None) == want["ports"]
                and (current["metadata"].get("labels") or {}) == want["metadata"]["labels"]):
            return
        want["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
        await store.update("default", "kubernetes", want, opts)
