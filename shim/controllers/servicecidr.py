"""The ServiceCIDR controller, as kube-controller-manager's service-cidr-controller runs it.

Every ServiceCIDR (the default `kubernetes` one included) gets the
`networking.k8s.io/service-cidr-finalizer` finalizer and a Ready=True condition. When one is
deleted, the finalizer stays while an allocator-made IPAddress would be left without a
range: an address that this ServiceCIDR alone contains. Until then the range is Ready=False
with reason Terminating (the API server's allocator uses neither terminating nor not-Ready
ranges). Once nothing depends on it, or another ServiceCIDR covers all of its ranges, the
finalizer goes, but no sooner than a grace period after the deletion began, so that no
allocation that read the range before the deletion can still land in it.

IPAddress events wake the ServiceCIDRs that contain the address (an address going may
unblock a deletion, a new one may block it); a ServiceCIDR being added wakes the ones it
overlaps.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import time

from shim.client.api import ApiError, Client, Resource
from shim.client.events import EventRecorder
from shim.client.informer import Informer
from shim.client.workqueue import WorkQueue
from shim.controllers.ipallocator import (ALLOCATOR, IP_FAMILY_LABEL, MANAGED_BY_LABEL,
                                          _prefix_contains)
from shim.controllers.replicaset import parse_time

log = logging.getLogger("shim.controllers.servicecidr")

SERVICE_CIDRS = Resource("networking.k8s.io", "v1", "servicecidrs", "ServiceCIDR", namespaced=False)
IP_ADDRESSES = Resource("networking.k8s.io", "v1", "ipaddresses", "IPAddress", namespaced=False)

CONTROLLER_NAME = "service-cidr-controller"
FINALIZER = "networking.k8s.io/service-cidr-finalizer"
REASON_TERMINATING = "Terminating"
READY_MESSAGE = "Kubernetes Service CIDR is ready"
TERMINATING_MESSAGE = ("There are still IPAddresses referencing the ServiceCIDR, please remove them or "
                       "create a new ServiceCIDR")
#: seconds from the deletion until the finalizer may go (upstream's deletionGracePeriod)
DELETION_GRACE = 10.0
MAX_RETRIES = 15


def _nets(cidr: dict) -> list:
    out = []
    for c in (cidr.get("spec") or {}).get("cidrs") or []:
        try:
            out.append(ipaddress.ip_network(c))
        except (ValueError, TypeError):
            pass
    return out


class ServiceCIDRController:
    def __init__(self, client: Client, workers: int = 2, deletion_grace: float = DELETION_GRACE):
        self.client = client
        self.workers = workers
        self.deletion_grace = deletion_grace
        self.cidrs = Informer(client, SERVICE_CIDRS)
        self.ips = Informer(client, IP_ADDRESSES)
        self.queue = WorkQueue()
        self.events = EventRecorder(client, CONTROLLER_NAME, senders=1)
        self.cidrs.add_handlers(self._on_cidr_add, lambda old, new: self._enqueue(new),
                                self._enqueue)
        self.ips.add_handlers(self._on_ip, None, self._on_ip)

    async def run(self) -> None:
        self.cidrs.start()
        self.ips.start()
        try:
            await asyncio.gather(self.cidrs.wait_synced(), self.ips.wait_synced())
            self.events.start()
            await asyncio.gather(*(self.queue.run_worker(self.sync, self._sync_failed)
                                   for _ in range(self.workers)))
        finally:
            self.queue.shutdown()
            await self.cidrs.stop()
            await self.ips.stop()
            await self.events.stop()

    # -- handlers --------------------------------------------------------------------------
    def _enqueue(self, cidr: dict) -> None:
        self.queue.add(cidr["metadata"]["name"])

    def _on_cidr_add(self, cidr: dict) -> None:
        self._enqueue(cidr)
        for net in _nets(cidr):
            for other in self.cidrs.list():
                if any(n.version == net.version and n.overlaps(net) for n in _nets(other)):
                    self._enqueue(other)

    def _on_ip(self, ip_obj: dict) -> None:
        for name in self._containing(ip_obj):
            self.queue.add(name)

    def _containing(self, ip_obj: dict) -> list[str]:
        """The ServiceCIDRs holding an allocator-made address (others are not our business)."""
        md = ip_obj.get("metadata") or {}
        if (md.get("labels") or {}).get(MANAGED_BY_LABEL) != ALLOCATOR:
            return []
        try:
            addr = ipaddress.ip_address(md.get("name", ""))
        except ValueError:
            return []
        return [c["metadata"]["name"] for c in self.cidrs.list()
                if any(_prefix_contains(s, addr) for s in (c.get("spec") or {}).get("cidrs") or [])]

    def _sync_failed(self, key: str, e: Exception) -> None:
        if self.queue.num_requeues(key) < MAX_RETRIES:
            log.info("syncing ServiceCIDR %s: %s; retrying", key, e)
            self.queue.add_rate_limited(key)
        else:
            log.warning("dropping ServiceCIDR %s out of the queue: %s", key, e)
            self.queue.forget(key)

    # -- sync ------------------------------------------------------------------------------
    async def sync(self, name: str) -> None:
        cidr = self.cidrs.get(name)
        if cidr is None:
            return
        md = cidr["metadata"]
        if md.get("deletionTimestamp"):
            if not self.can_delete(cidr):
                # kept until an IPAddress or ServiceCIDR event says otherwise
                await self._set_ready(cidr, "False", REASON_TERMINATING, TERMINATING_MESSAGE)
                return
            since = parse_time(md["deletionTimestamp"]) or 0.0
            wait = self.deletion_grace - (time.time() - since)
            if wait > 0:
                self.queue.add_after(name, wait)
                return
            if FINALIZER in (md.get("finalizers") or []):
                await self._patch_finalizers(name, {"$deleteFromPrimitiveList/finalizers": [FINALIZER]})
            return
        if FINALIZER not in (md.get("finalizers") or []):
            await self._patch_finalizers(name, {"finalizers": [FINALIZER]})
        try:
            await self._set_ready(cidr, "True", "", READY_MESSAGE)
        except ApiError:
            self.events.event(cidr, "Warning", "KubernetesServiceCIDRError",
                              "The ServiceCIDR Status can not be set to Ready=True")
            raise

    def can_delete(self, cidr: dict) -> bool:
        """Whether deleting it leaves no allocator-made IPAddress outside every range."""
        name = cidr["metadata"]["name"]
        others = self.cidrs.list()
        has_parent = True
        for net in _nets(cidr):
            # ServiceCIDRs with a range equal to or larger than this one (itself included)
            covering = [o["metadata"]["name"] for o in others for n in _nets(o)
                        if n.version == net.version and n.overlaps(net) and n.prefixlen <= net.prefixlen]
            if not covering or covering == [name]:
                has_parent = False
        if has_parent:
            log.info("deleting ServiceCIDR %s: contained in another ServiceCIDR", name)
            return True
        for net in _nets(cidr):
            family = f"IPv{net.version}"
            for ip_obj in self.ips.list():
                labels = ip_obj["metadata"].get("labels") or {}
                if labels.get(MANAGED_BY_LABEL) != ALLOCATOR or labels.get(IP_FAMILY_LABEL) != family:
                    continue
                if self._containing(ip_obj) == [name]:
                    log.info("deleting ServiceCIDR %s blocked by IP address %s", name,
                             ip_obj["metadata"]["name"])
                    return False
        log.info("deleting ServiceCIDR %s: no orphan IPs left", name)
        return True

    async def _patch_finalizers(self, name: str, meta_patch: dict) -> None:
        try:
            await self.client.patch(SERVICE_CIDRS, name, {"metadata": meta_patch}, type="strategic")
        except ApiError as e:
            if e.code != 404:
                raise

    async def _set_ready(self, cidr: dict, status: str, reason: str, message: str) -> None:
        """Server-side apply of the Ready condition (forced, as upstream), when it differs."""
        for c in (cidr.get("status") or {}).get("conditions") or []:
            if c.get("type") == "Ready" and c.get("status") == status and \
                    (c.get("reason") or "") == reason and (c.get("message") or "") == message:
                return
        name = cidr["metadata"]["name"]
        body = {"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR", "metadata": {"name": name},
                "status": {"conditions": [{"type": "Ready", "status": status, "reason": reason,
                                           "message": message,
                                           "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                               time.gmtime())}]}}
        try:
            await self.client.request("PATCH", SERVICE_CIDRS.path(None, name, "status"),
                                      params={"fieldManager": CONTROLLER_NAME, "force": "true"},
                                      body=body, content_type="application/apply-patch+yaml")
        except ApiError as e:
            if e.code != 404:
                raise
