"""The Endpoints controller: the core/v1 Endpoints object named after each Service with a
selector, the older form of what the EndpointSlice controller writes (v1.37 still runs both;
kube-proxy and most clients read slices, some tools still read Endpoints).

One Endpoints per Service: `subsets`, each a set of addresses (ready ones in `addresses`,
the others in `notReadyAddresses`) with the ports they all serve, packed the canonical way
(addresses that serve the same ports share a subset). Terminating pods are left out unless
the Service publishes not-ready addresses. Over 1000 addresses the object is truncated
(ready addresses kept first) and annotated `endpoints.kubernetes.io/over-capacity:
truncated`. Labels are the Service's, plus `endpoints.kubernetes.io/managed-by:
endpoint-controller` and the headless marker; `endpoints.kubernetes.io/last-change-trigger-time`
says when the change behind the last write happened. When the Service goes, so does its
Endpoints object (it has no owner reference: the controller deletes it), and at start-up
every existing Endpoints is checked once, so ones left behind by a Service deleted while
the controller was down go too. Services without a selector are left alone: their
Endpoints are written by someone else.

Facts from upstream's pkg/controller/endpoint (v1.37); the pod and Service helpers are
shared with the EndpointSlice controller.
"""
from __future__ import annotations

import asyncio
import logging
import math

import orjson

from shim.client.api import ENDPOINTS, PODS, SERVICES, ApiError, Client
from shim.client.events import EventRecorder
from shim.client.informer import Informer, key_of
from shim.client.workqueue import WorkQueue
from shim.controllers.endpointslice import (
    HEADLESS_LABEL, MAX_RETRIES, TRIGGER_TIME_ANNOTATION, PodsByNamespace, ServicePodHandlers,
    ServicesByNamespace,
    TriggerTimeTracker, controller_rate_limiter, find_port, format_trigger_time, is_ipv6,
    is_service_ip_set, pod_ips, should_pod_be_in_endpoints, should_set_hostname)
from shim.controllers.replicaset import has_namespace_terminating_cause, is_pod_ready

log = logging.getLogger("shim.controllers.endpoints")

CONTROLLER_NAME = "endpoint-controller"
MANAGED_BY_LABEL = "endpoints.kubernetes.io/managed-by"
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
MAX_CAPACITY = 1000


class EndpointsController(ServicePodHandlers):
    def __init__(self, client: Client, workers: int = 5, *, batch_period: float = 0.0,
                 service_informer: Informer | None = None, pod_informer: Informer | None = None,
                 endpoints_informer: Informer | None = None):
        self.client = client
        self.workers = workers
        self.batch_period = batch_period
        self.service_informer = service_informer or Informer(client, SERVICES)
        self.pod_informer = pod_informer or Informer(client, PODS)
        self.endpoints_informer = endpoints_informer or Informer(client, ENDPOINTS)
        self.pods = PodsByNamespace()
        self.services = ServicesByNamespace()
        self.trigger_times = TriggerTimeTracker()
        self.stale_versions: dict[str, str] = {}   # key -> resourceVersion we already replaced
        self.queue = WorkQueue(controller_rate_limiter(0.005))
        self.events = EventRecorder(client, CONTROLLER_NAME, senders=1)
        self.service_informer.add_handlers(self._on_service_add, self._on_service_update,
                                           self._on_service_delete)
        self.pod_informer.add_handlers(self._on_pod_add, self._on_pod_update, self._on_pod_delete)
        self.endpoints_informer.add_handlers(None, None, lambda ep: self.queue.add(key_of(ep)))

    async def run(self) -> None:
        informers = (self.service_informer, self.pod_informer, self.endpoints_informer)
        for inf in informers:
            inf.start()
        try:
            await asyncio.gather(*(inf.wait_synced() for inf in informers))
            self.events.start()
            self._check_leftovers()
            await asyncio.gather(*(self.queue.run_worker(self.sync, self._sync_failed)
                                   for _ in range(self.workers)))
        finally:
            self.queue.shutdown()
            for inf in informers:
                await inf.stop()
            await self.events.stop()

    def _check_leftovers(self) -> None:
        """Once at start: every Endpoints gets a sync, so one whose Service is gone is deleted
        (leader-election records kept in Endpoints have no Service and are skipped)."""
        for ep in self.endpoints_informer.list():
            if LEADER_ANNOTATION not in (ep["metadata"].get("annotations") or {}):
                self.queue.add(key_of(ep))

    # (Service and pod informer handlers: ServicePodHandlers)
    # -- the work loop --------------------------------------------------------------------------
    def _sync_failed(self, key: str, e: Exception) -> None:
        if self.queue.num_requeues(key) < MAX_RETRIES:
            log.info("syncing endpoints %s (retrying): %s", key, e)
            self.queue.add_rate_limited(key)
        else:
            log.warning("dropping service %s out of the queue: %s", key, e)
            self.queue.forget(key)

    async def sync(self, key: str) -> None:
        ns, name = key.split("/", 1)
        svc = self.service_informer.get(key)
        if svc is None:
            try:
                await self.client.delete(ENDPOINTS, name, ns)
            except ApiError as e:
                if e.code != 404:
                    raise
            self.trigger_times.forget(key)
            self.stale_versions.pop(key, None)
            return
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName" or not spec.get("selector"):
            return
        pods = self.pods.selected_by(svc)
        trigger = self.trigger_times.compute(key, svc, pods)   # kept current even on no-op syncs
        subsets = desired_subsets(svc, pods)

        current = self.endpoints_informer.get(key)
        if current is not None and self.stale_versions.get(key) == current["metadata"].get("resourceVersion"):
            raise RuntimeError(f"endpoints informer cache is out of date for {key}")
        svc_labels = svc["metadata"].get("labels") or {}
        if current is not None:
            have = current.get("subsets") or []
            if ((_subsets_equal(have, subsets) or _subsets_equal(repack_subsets(have), subsets))
                    and _labels_correct(current["metadata"].get("labels") or {}, svc_labels)
                    and _capacity_annotation_correct(current)):
                return

        obj = orjson.loads(orjson.dumps(current)) if current is not None else {
            "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns}}
        md = obj["metadata"]
        annotations = dict(md.get("annotations") or {})
        if trigger is not None:
            annotations[TRIGGER_TIME_ANNOTATION] = format_trigger_time(trigger)
        else:
            annotations.pop(TRIGGER_TIME_ANNOTATION, None)
        subsets, truncated = truncate(subsets)
        if truncated:
            annotations[OVER_CAPACITY_ANNOTATION] = "truncated"
        else:
            annotations.pop(OVER_CAPACITY_ANNOTATION, None)
        if annotations:
            md["annotations"] = annotations
        else:
            md.pop("annotations", None)
        labels = dict(svc_labels)
        if is_service_ip_set(svc):
            labels.pop(HEADLESS_LABEL, None)
        else:
            labels[HEADLESS_LABEL] = ""
        labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
        md["labels"] = labels
        if subsets:
            obj["subsets"] = subsets
        else:
            obj.pop("subsets", None)

        try:
            if current is None:
                await self.client.create(ENDPOINTS, obj, ns)
            else:
                updated = await self.client.update(ENDPOINTS, obj, ns)
                if updated["metadata"].get("resourceVersion") != current["metadata"].get("resourceVersion"):
                    self.stale_versions[key] = current["metadata"].get("resourceVersion")
        except ApiError as e:
            if current is None and has_namespace_terminating_cause(e):
                return
            verb = "create" if current is None else "update"
            reason = "FailedToCreateEndpoint" if current is None else "FailedToUpdateEndpoint"
            self.events.event(obj, "Warning", reason, f"Failed to {verb} endpoint {key}: {e.message}")
            raise


# -- subsets ----------------------------------------------------------------------------------------

def desired_subsets(svc: dict, pods: list[dict]) -> list[dict]:
    spec = svc.get("spec") or {}
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    raw: list[tuple[dict, list[dict], bool]] = []   # (address, ports, ready)
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, publish_not_ready):
            continue
        addr = _pod_address(svc, pod)
        if addr is None:
            continue
        ready = publish_not_ready or is_pod_ready(pod)
        ports = spec.get("ports") or []
        if not ports:
            if spec.get("clusterIP") == "None":   # headless without ports: addresses only
                raw.append((addr, [], ready))
            continue
        for sp in ports:
            number = find_port(pod, sp)
            if number is None:
                continue
            port = {"name": sp.get("name") or "", "port": number, "protocol": sp.get("protocol") or "TCP"}
            if sp.get("appProtocol"):
                port["appProtocol"] = sp["appProtocol"]
            raw.append((addr, [port], ready))
    return repack_subsets([{("addresses" if ready else "notReadyAddresses"): [addr], "ports": ports}
                           for addr, ports, ready in raw])


def _pod_address(svc: dict, pod: dict) -> dict | None:
    """The pod's address of the Service's (first) IP family, as an EndpointAddress."""
    spec = svc.get("spec") or {}
    families = spec.get("ipFamilies") or []
    if families:
        want_v6 = families[0] == "IPv6"
    elif is_service_ip_set(svc):
        want_v6 = is_ipv6(spec["clusterIP"])
    else:
        want_v6 = is_ipv6((pod.get("status") or {}).get("podIP") or "")
    ip = next((i for i in pod_ips(pod) if is_ipv6(i) == want_v6), None)
    if ip is None:
        return None
    md = pod["metadata"]
    addr: dict = {"ip": ip}
    if should_set_hostname(pod, svc):
        addr["hostname"] = pod["spec"]["hostname"]
    addr["nodeName"] = (pod.get("spec") or {}).get("nodeName") or ""
    addr["targetRef"] = {"kind": "Pod", "namespace": md.get("namespace"), "name": md["name"],
                         "uid": md.get("uid")}
    return addr


def repack_subsets(subsets: list[dict]) -> list[dict]:
    """The canonical layout: addresses (one per IP and pod) grouped by the exact set of ports
    they serve, not-ready winning over ready; addresses sorted by IP then pod uid, ports and
    subsets in a fixed order."""
    addresses: dict[tuple, dict] = {}
    by_port: dict[str, tuple[dict, dict[tuple, bool]]] = {}   # port key -> (port, addr key -> ready)
    for subset in subsets:
        ports = subset.get("ports") or [None]            # None: the no-ports sentinel
        for port in ports:
            pkey = _canon(port)
            _, members = by_port.setdefault(pkey, (port, {}))
            for field, ready in (("addresses", True), ("notReadyAddresses", False)):
                for addr in subset.get(field) or ():
                    akey = (addr.get("ip"), (addr.get("targetRef") or {}).get("uid") or "")
                    addresses.setdefault(akey, addr)
                    if members.get(akey, True):
                        members[akey] = ready
    groups: dict[tuple, tuple[dict[tuple, bool], list[dict]]] = {}
    for pkey, (port, members) in by_port.items():
        gkey = tuple(sorted(members.items()))
        _, ports = groups.setdefault(gkey, (members, []))
        if port is not None:
            ports.append(port)
    out = []
    for members, ports in groups.values():
        subset: dict = {}
        ready = sorted((k for k, r in members.items() if r))
        not_ready = sorted((k for k, r in members.items() if not r))
        if ready:
            subset["addresses"] = [addresses[k] for k in ready]
        if not_ready:
            subset["notReadyAddresses"] = [addresses[k] for k in not_ready]
        if ports:
            subset["ports"] = sorted(ports, key=_canon)
        out.append(subset)
    return sorted(out, key=_canon)


def truncate(subsets: list[dict]) -> tuple[list[dict], bool]:
    """At most 1000 addresses, spread over the subsets in proportion; ready ones are kept
    before any not-ready one."""
    total_ready = sum(len(s.get("addresses") or ()) for s in subsets)
    total_not_ready = sum(len(s.get("notReadyAddresses") or ()) for s in subsets)
    if total_ready + total_not_ready <= MAX_CAPACITY:
        return subsets, False
    cut_ready = total_ready > MAX_CAPACITY
    budget = MAX_CAPACITY if cut_ready else MAX_CAPACITY - total_ready
    total = total_ready if cut_ready else total_not_ready
    room = budget
    out = []
    for s in subsets:
        s = dict(s)
        field = "addresses" if cut_ready else "notReadyAddresses"
        have = s.get(field) or []
        share = min(math.ceil(len(have) / total * budget) if total else 0, room)
        s[field] = have[:share]
        if cut_ready:
            s.pop("notReadyAddresses", None)
        room -= len(s[field])
        if not s[field]:
            s.pop(field)
        out.append(s)
    return out, True


def _canon(value) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _strip_rv(subsets: list[dict]) -> list:
    """Subsets compared as upstream does: empty and absent alike, the pods' resourceVersion
    in targetRef ignored."""
    out = []
    for s in subsets:
        entry = {}
        for field in ("addresses", "notReadyAddresses"):
            addrs = []
            for a in s.get(field) or ():
                a = {k: v for k, v in a.items() if v not in (None, "") or k == "nodeName"}
                if a.get("targetRef"):
                    a["targetRef"] = {k: v for k, v in a["targetRef"].items()
                                      if k != "resourceVersion" and v not in (None, "")}
                addrs.append(a)
            if addrs:
                entry[field] = addrs
        if s.get("ports"):
            entry["ports"] = s["ports"]
        out.append(entry)
    return out


def _subsets_equal(a: list[dict], b: list[dict]) -> bool:
    return _strip_rv(a) == _strip_rv(b)


def _labels_correct(have: dict, svc_labels: dict) -> bool:
    if have.get(MANAGED_BY_LABEL) != CONTROLLER_NAME:
        return False
    rest = {k: v for k, v in have.items() if k not in (HEADLESS_LABEL, MANAGED_BY_LABEL)}
    return rest == svc_labels


def _capacity_annotation_correct(ep: dict) -> bool:
    count = sum(len(s.get("addresses") or ()) + len(s.get("notReadyAddresses") or ())
                for s in ep.get("subsets") or ())
    if count > MAX_CAPACITY:
        return False
    return OVER_CAPACITY_ANNOTATION not in (ep["metadata"].get("annotations") or {})
