"""The EndpointSlice controller: for every Service with a selector, discovery.k8s.io/v1
EndpointSlices listing the addresses of the pods it selects.

An API client like every controller here. Informers on Services, pods, nodes and
EndpointSlices feed a work queue keyed "namespace/service". A sync works out the endpoints the
Service should have (one per pod with an IP that is not finished: ready, serving and
terminating conditions, node, zone, target pod, hostname), groups them by the ports they
resolve to (a named targetPort can mean different numbers in different pods), and then
changes the existing slices as little as it can: endpoints that did not change stay where
they are, slices that lost endpoints are updated in place, new endpoints go first into
slices being updated anyway, then into the unchanged slice that fits them best, and only
then into new slices of at most `max_endpoints_per_slice` (upstream's default 100). A
Service with no endpoints keeps one empty placeholder slice. A Service that is deleted
loses its slices through their owner reference (the garbage collector); a Service without
selector is left alone (its slices are written by someone else), as upstream does.

The facts follow upstream's controller (kubernetes pkg/controller/endpointslice and the
k8s.io/endpointslice reconciler at v1.37): labels and owner reference, the
`endpoints.kubernetes.io/last-change-trigger-time` annotation, and a tracker of the
generations this controller wrote, so a sync never acts on a cache that has not yet seen
its own last writes. Topology hints (trafficDistribution, topology-mode) are not written.

The helpers at the top (pod and Service predicates, the pod and Service indexes, the
trigger-time tracker) are shared with the Endpoints controller (endpoints.py).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging

import orjson

from shim.client.api import ENDPOINT_SLICES, NODES, PODS, SERVICES, ApiError, Client
from shim.client.events import EventRecorder
from shim.client.informer import Informer, key_of
from shim.client.workqueue import ItemExponentialBackoff, MaxOfRateLimiter, TokenBucket, WorkQueue
from shim.controllers.replicaset import has_namespace_terminating_cause, is_pod_ready, ready_condition

log = logging.getLogger("shim.controllers.endpointslice")

CONTROLLER_NAME = "endpointslice-controller.k8s.io"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
HEADLESS_LABEL = "service.kubernetes.io/headless"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
ZONE_LABEL = "topology.kubernetes.io/zone"
MAX_ENDPOINTS_PER_SLICE = 100
MAX_RETRIES = 15
SLICE_CHANGE_MIN_SYNC_DELAY = 1.0   # a slice changed by someone else: resync after this


# -- pods and Services, as both endpoint controllers see them ----------------------------------

def selector_matches(selector: dict, labels: dict | None) -> bool:
    """A Service selector (a plain map) against pod labels; an empty map selects everything."""
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def pod_ips(pod: dict) -> list[str]:
    st = pod.get("status") or {}
    ips = [p.get("ip") for p in st.get("podIPs") or () if p.get("ip")]
    if not ips and st.get("podIP"):
        ips = [st["podIP"]]
    return ips


def is_ipv6(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).version == 6
    except ValueError:
        return False


def should_pod_be_in_endpoints(pod: dict, include_terminating: bool) -> bool:
    """Finished pods and pods without an IP never are; terminating ones only when asked."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    if not pod_ips(pod):
        return False
    return include_terminating or not pod["metadata"].get("deletionTimestamp")


def should_set_hostname(pod: dict, svc: dict) -> bool:
    spec = pod.get("spec") or {}
    return (bool(spec.get("hostname")) and spec.get("subdomain") == svc["metadata"]["name"]
            and pod["metadata"].get("namespace") == svc["metadata"].get("namespace"))


def find_port(pod: dict, svc_port: dict) -> int | None:
    """The port number a Service port's targetPort means for this pod: a number as it is, a
    name looked up in the containers' ports (then restartable init containers') with the
    Service port's protocol; None when the pod has no such port."""
    target = svc_port.get("targetPort", svc_port.get("port"))
    if isinstance(target, int):
        return target
    if not isinstance(target, str):
        return None
    protocol = svc_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
    for container in list(spec.get("containers") or ()) + sidecars:
        for p in container.get("ports") or ():
            if p.get("name") == target and (p.get("protocol") or "TCP") == protocol:
                return p.get("containerPort")
    return None


def is_service_ip_set(svc: dict) -> bool:
    ip = (svc.get("spec") or {}).get("clusterIP") or ""
    return ip not in ("", "None")


def pod_endpoints_changed(old: dict, new: dict) -> tuple[bool, bool]:
    """(pod changed in a way its endpoints show, labels or hostname/subdomain changed)."""
    os_, ns_ = old.get("spec") or {}, new.get("spec") or {}
    labels_changed = (old["metadata"].get("labels") != new["metadata"].get("labels")
                      or os_.get("hostname") != ns_.get("hostname")
                      or os_.get("subdomain") != ns_.get("subdomain"))
    pod_changed = (old["metadata"].get("deletionTimestamp") != new["metadata"].get("deletionTimestamp")
                   or is_pod_ready(old) != is_pod_ready(new)
                   or pod_ips(old) != pod_ips(new))
    return pod_changed, labels_changed


def parse_timestamp(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def format_trigger_time(t: dt.datetime) -> str:
    """RFC 3339 in UTC with as many fractional digits as needed (Go's RFC3339Nano)."""
    t = t.astimezone(dt.timezone.utc)
    out = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        out += ("." + f"{t.microsecond:06d}").rstrip("0")
    return out + "Z"


class PodsByNamespace:
    """The pods of each namespace, to list a Service's pods without scanning every pod."""

    def __init__(self):
        self._by_ns: dict[str, dict[str, dict]] = {}

    def add(self, pod: dict) -> None:
        self._by_ns.setdefault(pod["metadata"]["namespace"], {})[key_of(pod)] = pod

    def remove(self, pod: dict) -> None:
        ns = pod["metadata"]["namespace"]
        pods = self._by_ns.get(ns)
        if pods is not None:
            pods.pop(key_of(pod), None)
            if not pods:
                del self._by_ns[ns]

    def selected_by(self, svc: dict) -> list[dict]:
        selector = (svc.get("spec") or {}).get("selector") or {}
        pods = (self._by_ns.get(svc["metadata"]["namespace"]) or {}).values()
        return [p for p in pods if selector_matches(selector, p["metadata"].get("labels"))]


class ServicesByNamespace:
    """The Services of each namespace, to find those selecting a pod."""

    def __init__(self):
        self._by_ns: dict[str, dict[str, dict]] = {}

    def add(self, svc: dict) -> None:
        self._by_ns.setdefault(svc["metadata"]["namespace"], {})[key_of(svc)] = svc

    def remove(self, svc: dict) -> None:
        ns = svc["metadata"]["namespace"]
        svcs = self._by_ns.get(ns)
        if svcs is not None:
            svcs.pop(key_of(svc), None)
            if not svcs:
                del self._by_ns[ns]

    def selecting(self, namespace: str, labels: dict | None) -> set[str]:
        out = set()
        for key, svc in (self._by_ns.get(namespace) or {}).items():
            selector = (svc.get("spec") or {}).get("selector")
            if selector and selector_matches(selector, labels):
                out.add(key)
        return out

    def affected_by_pod(self, old: dict | None, new: dict | None) -> set[str]:
        """The Services whose endpoints a pod event may change (upstream's projection: a
        relabelled pod matters to the Services it left and joined; to all of them when its
        endpoint changed too)."""
        if old is None or new is None:
            pod = new if new is not None else old
            return self.selecting(pod["metadata"]["namespace"], pod["metadata"].get("labels"))
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return set()
        pod_changed, labels_changed = pod_endpoints_changed(old, new)
        ns = new["metadata"]["namespace"]
        if not pod_changed and not labels_changed:
            return set()
        current = self.selecting(ns, new["metadata"].get("labels"))
        if not labels_changed:
            return current
        previous = self.selecting(ns, old["metadata"].get("labels"))
        return current | previous if pod_changed else current ^ previous


class TriggerTimeTracker:
    """When did the change behind this sync happen? The earliest of the pods' Ready
    transitions and the Service's creation that are newer than what the previous sync of
    the same Service saw; the Service's creation time on its first sync; None when nothing
    newer was seen (the annotation is then removed)."""

    def __init__(self):
        self._states: dict[str, tuple[dt.datetime | None, dict[str, dt.datetime]]] = {}

    def compute(self, key: str, svc: dict, pods: list[dict]) -> dt.datetime | None:
        state = self._states.get(key)
        last_svc, last_pods = state if state is not None else (None, {})
        earliest = None
        pod_times: dict[str, dt.datetime] = {}
        for pod in pods:
            cond = ready_condition(pod)
            t = parse_timestamp(cond.get("lastTransitionTime")) if cond else None
            if t is None:
                continue
            name = pod["metadata"]["name"]
            pod_times[name] = t
            if last_pods.get(name) is None or t > last_pods[name]:
                earliest = t if earliest is None or t < earliest else earliest
        created = parse_timestamp(svc["metadata"].get("creationTimestamp"))
        if created is not None and (last_svc is None or created > last_svc):
            earliest = created if earliest is None or created < earliest else earliest
        self._states[key] = (created, pod_times)
        if state is None:
            return created
        return earliest

    def forget(self, key: str) -> None:
        self._states.pop(key, None)


class StaleCache(Exception):
    """The informer has not yet seen this controller's own last writes: try again later."""


class SliceTracker:
    """The generation of every slice this controller last wrote, per Service (or that it
    expects to be gone), to tell its own writes from others' and to notice a stale cache."""

    DELETED = -1

    def __init__(self):
        self._by_service: dict[str, dict[str, int]] = {}

    @staticmethod
    def _service_key(s: dict) -> str:
        md = s["metadata"]
        return f"{md.get('namespace')}/{(md.get('labels') or {}).get(SERVICE_NAME_LABEL, '')}"

    def update(self, s: dict) -> None:
        self._by_service.setdefault(self._service_key(s), {})[s["metadata"]["uid"]] = \
            s["metadata"].get("generation", 0)

    def expect_deletion(self, s: dict) -> None:
        self._by_service.setdefault(self._service_key(s), {})[s["metadata"]["uid"]] = self.DELETED

    def has(self, s: dict) -> bool:
        return s["metadata"].get("uid") in self._by_service.get(self._service_key(s), {})

    def should_sync(self, s: dict) -> bool:
        """True unless this is (at most) a generation we wrote ourselves."""
        gen = self._by_service.get(self._service_key(s), {}).get(s["metadata"].get("uid"))
        return gen is None or s["metadata"].get("generation", 0) > gen

    def handle_deletion(self, s: dict) -> bool:
        """Forget a deleted slice; True when we deleted it ourselves (no sync needed)."""
        gens = self._by_service.get(self._service_key(s))
        if gens is None:
            return False
        gen = gens.pop(s["metadata"].get("uid"), None)
        return gen == self.DELETED

    def stale(self, service_key: str, slices: list[dict]) -> bool:
        gens = self._by_service.get(service_key) or {}
        present = {s["metadata"].get("uid"): s["metadata"].get("generation", 0) for s in slices}
        for uid, gen in gens.items():
            if gen == self.DELETED:
                if uid in present:
                    return True
            elif uid not in present or present[uid] < gen:
                return True
        return False

    def forget_service(self, key: str) -> None:
        self._by_service.pop(key, None)


def controller_rate_limiter(base: float) -> MaxOfRateLimiter:
    return MaxOfRateLimiter(ItemExponentialBackoff(base, 1000.0), TokenBucket(10.0, 100))


# -- the controller --------------------------------------------------------------------------

class ServicePodHandlers:
    """Informer handlers both endpoint controllers share: keep the Service and pod indexes
    current and queue the Services a change touches (pod changes batched by batch_period).
    Needs self.services, self.pods, self.queue and self.batch_period."""

    def _on_service_add(self, svc: dict) -> None:
        self.services.add(svc)
        self.queue.add(key_of(svc))

    def _on_service_update(self, old: dict, svc: dict) -> None:
        self.services.remove(old)
        self.services.add(svc)
        self.queue.add(key_of(svc))

    def _on_service_delete(self, svc: dict) -> None:
        self.services.remove(svc)
        self.queue.add(key_of(svc))

    def _on_pod_add(self, pod: dict) -> None:
        self.pods.add(pod)
        self._queue_services(self.services.affected_by_pod(None, pod))

    def _on_pod_update(self, old: dict, pod: dict) -> None:
        self.pods.remove(old)
        self.pods.add(pod)
        self._queue_services(self.services.affected_by_pod(old, pod))

    def _on_pod_delete(self, pod: dict) -> None:
        self.pods.remove(pod)
        self._queue_services(self.services.affected_by_pod(pod, None))

    def _queue_services(self, keys) -> None:
        for key in keys:
            self.queue.add_after(key, self.batch_period)


class EndpointSliceController(ServicePodHandlers):
    def __init__(self, client: Client, workers: int = 5, *,
                 max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE, batch_period: float = 0.0,
                 service_informer: Informer | None = None, pod_informer: Informer | None = None,
                 node_informer: Informer | None = None, slice_informer: Informer | None = None):
        self.client = client
        self.workers = workers
        self.max_endpoints = max_endpoints_per_slice
        self.batch_period = batch_period
        self.service_informer = service_informer or Informer(client, SERVICES)
        self.pod_informer = pod_informer or Informer(client, PODS)
        self.node_informer = node_informer or Informer(client, NODES)
        self.slice_informer = slice_informer or Informer(
            client, ENDPOINT_SLICES, label_selector=f"{MANAGED_BY_LABEL}={CONTROLLER_NAME}")
        self.pods = PodsByNamespace()
        self.services = ServicesByNamespace()
        self.slices: dict[str, dict[str, dict]] = {}   # "ns/service" -> slice key -> slice
        self.tracker = SliceTracker()
        self.trigger_times = TriggerTimeTracker()
        self.queue = WorkQueue(controller_rate_limiter(1.0))
        self.events = EventRecorder(client, "endpoint-slice-controller", senders=1)
        self.service_informer.add_handlers(self._on_service_add, self._on_service_update,
                                           self._on_service_delete)
        self.pod_informer.add_handlers(self._on_pod_add, self._on_pod_update, self._on_pod_delete)
        self.slice_informer.add_handlers(self._on_slice_add, self._on_slice_update, self._on_slice_delete)

    async def run(self) -> None:
        informers = (self.service_informer, self.pod_informer, self.node_informer, self.slice_informer)
        for inf in informers:
            inf.start()
        try:
            await asyncio.gather(*(inf.wait_synced() for inf in informers))
            self.events.start()
            await asyncio.gather(*(self.queue.run_worker(self.sync, self._sync_failed)
                                   for _ in range(self.workers)))
        finally:
            self.queue.shutdown()
            for inf in informers:
                await inf.stop()
            await self.events.stop()

    # -- informer handlers (Services and pods: ServicePodHandlers) ------------------------------
    def _index_slice(self, s: dict) -> None:
        self.slices.setdefault(SliceTracker._service_key(s), {})[key_of(s)] = s

    def _unindex_slice(self, s: dict) -> None:
        svc_key = SliceTracker._service_key(s)
        slices = self.slices.get(svc_key)
        if slices is not None:
            slices.pop(key_of(s), None)
            if not slices:
                del self.slices[svc_key]

    def _on_slice_add(self, s: dict) -> None:
        self._index_slice(s)
        if _managed_by_us(s) and self.tracker.should_sync(s):
            self._queue_for_slice(s)

    def _on_slice_update(self, old: dict, s: dict) -> None:
        self._unindex_slice(old)
        self._index_slice(s)
        old_svc = (old["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL)
        if (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) != old_svc:
            self._queue_for_slice(s)
            self._queue_for_slice(old)
        elif _managed_by_us(old) != _managed_by_us(s) or (_managed_by_us(s) and self.tracker.should_sync(s)):
            self._queue_for_slice(s)

    def _on_slice_delete(self, s: dict) -> None:
        self._unindex_slice(s)
        if _managed_by_us(s) and self.tracker.has(s) and not self.tracker.handle_deletion(s):
            self._queue_for_slice(s)

    def _queue_for_slice(self, s: dict) -> None:
        name = (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL)
        if name:
            self.queue.add_after(f"{s['metadata'].get('namespace')}/{name}",
                                 max(SLICE_CHANGE_MIN_SYNC_DELAY, self.batch_period))

    # -- the work loop --------------------------------------------------------------------------
    def _sync_failed(self, key: str, e: Exception) -> None:
        if self.queue.num_requeues(key) < MAX_RETRIES:
            log.info("syncing endpoint slices for service %s (retrying): %s", key, e)
            self.queue.add_rate_limited(key)
        else:
            log.warning("dropping service %s out of the queue: %s", key, e)
            self.queue.forget(key)

    async def sync(self, key: str) -> None:
        svc = self.service_informer.get(key)
        if svc is None:
            # the garbage collector deletes the slices through their owner reference
            self.trigger_times.forget(key)
            self.tracker.forget_service(key)
            return
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName" or not spec.get("selector"):
            return   # an empty selector is no selector (upstream's storage drops an empty map)
        pods = self.pods.selected_by(svc)
        slices = [s for s in (self.slices.get(key) or {}).values()
                  if _managed_by_us(s) and not s["metadata"].get("deletionTimestamp")]
        if self.tracker.stale(key, slices):
            raise StaleCache("EndpointSlice informer cache is out of date")
        trigger = self.trigger_times.compute(key, svc, pods)
        try:
            await self._reconcile(svc, pods, slices, trigger)
        except Exception as e:
            if not isinstance(e, StaleCache):
                self.events.event(svc, "Warning", "FailedToUpdateEndpointSlices",
                                  f"Error updating Endpoint Slices for Service {key}: {e}")
            raise

    # -- reconciling one Service's slices -----------------------------------------------------------
    async def _reconcile(self, svc: dict, pods: list[dict], existing: list[dict],
                         trigger: dt.datetime | None) -> None:
        families = address_types(svc)
        wrong_family = [s for s in existing if s.get("addressType") not in families]
        errors: list[Exception] = []
        for family in sorted(families):
            mine = [s for s in existing if s.get("addressType") == family]
            try:
                await self._reconcile_family(svc, pods, mine, trigger, family)
            except ApiError as e:
                errors.append(e)
            except NodeMissing as e:
                errors.append(e)
        for s in wrong_family:
            try:
                await self._delete_slice(s)
            except ApiError as e:
                errors.append(e)
        if errors:
            raise errors[0]

    async def _reconcile_family(self, svc: dict, pods: list[dict], existing: list[dict],
                                trigger: dt.datetime | None, family: str) -> None:
        to_create: list[dict] = []
        to_update: list[dict] = []
        to_delete: list[dict] = []
        existing_by_ports: dict[str, list[dict]] = {}
        for s in existing:
            if owned_by(s, svc):
                existing_by_ports.setdefault(ports_key(s.get("ports")), []).append(s)
            else:
                to_delete.append(s)

        wanted: dict[str, dict[tuple, dict]] = {}   # ports key -> endpoint hash -> endpoint
        wanted_ports: dict[str, list[dict]] = {}
        missing_nodes: list[str] = []
        publish_not_ready = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
        for pod in pods:
            if not should_pod_be_in_endpoints(pod, True):
                continue
            ports = endpoint_ports(svc, pod)
            pkey = ports_key(ports)
            endpoints = wanted.setdefault(pkey, {})
            wanted_ports.setdefault(pkey, ports)
            node_name = (pod.get("spec") or {}).get("nodeName") or ""
            node = self.node_informer.get(node_name) if node_name else None
            if node is None and not publish_not_ready:
                missing_nodes.append(f"skipping Pod {pod['metadata']['name']} for Service "
                                     f"{key_of(svc)}: Node {node_name} Not Found")
                continue
            ep = pod_to_endpoint(pod, node, svc, family)
            if ep["addresses"]:
                endpoints[endpoint_hash(ep)] = ep

        for pkey, endpoints in wanted.items():
            c, u, d = self._fill(svc, existing_by_ports.get(pkey) or [], endpoints, wanted_ports[pkey], family)
            to_create += c
            to_update += u
            to_delete += d
        for pkey, slices in existing_by_ports.items():
            if pkey not in wanted:
                to_delete += slices

        # a Service without endpoints keeps exactly one empty slice
        if len(existing) == len(to_delete) and not to_create:
            placeholder = new_slice(svc, [], family)
            if len(to_delete) == 1 and same_placeholder(to_delete[0], placeholder):
                to_delete = []
            else:
                to_create.append(placeholder)

        await self._finalize(svc, to_create, to_update, to_delete, trigger)
        if missing_nodes:
            raise NodeMissing("; ".join(missing_nodes))

    def _fill(self, svc: dict, existing: list[dict], wanted: dict[tuple, dict], ports: list[dict],
              family: str) -> tuple[list[dict], list[dict], list[dict]]:
        """Place the wanted endpoints (of one port mapping) into the existing slices with as
        few changes as possible: (slices to create, to update, to delete)."""
        wanted = dict(wanted)
        by_name: dict[str, dict] = {}
        unchanged: list[str] = []
        updating: list[str] = []
        deleting: list[str] = []
        for s in existing:
            name = s["metadata"]["name"]
            by_name[name] = s
            kept = []
            changed = False
            for ep in s.get("endpoints") or ():
                want = wanted.pop(endpoint_hash(ep), None)
                if want is not None:
                    kept.append(want)
                    if not endpoints_equal_beyond_hash(want, ep):
                        changed = True
            labels, labels_changed = slice_labels(s, svc)
            if changed or len(kept) != len(s.get("endpoints") or ()):
                if not kept:
                    deleting.append(name)
                else:
                    by_name[name] = _with(s, endpoints=kept, labels=labels)
                    updating.append(name)
            elif labels_changed:
                by_name[name] = _with(s, labels=labels)
                updating.append(name)
            else:
                unchanged.append(name)

        pending = list(wanted.values())
        if pending and updating:
            # slices being written anyway take new endpoints first, fullest first
            for name in sorted(updating, key=lambda n: -len(by_name[n]["endpoints"])):
                eps = by_name[name]["endpoints"]
                while pending and len(eps) < self.max_endpoints:
                    eps.append(pending.pop(0))

        created: list[dict] = []
        while pending:
            target = None
            if len(pending) < self.max_endpoints and unchanged:
                target = _slice_to_fill([by_name[n] for n in unchanged], len(pending), self.max_endpoints)
            if target is None:
                target = new_slice(svc, ports, family)
            else:
                target = _with(target, endpoints=list(target.get("endpoints") or ()))
                by_name[target["metadata"]["name"]] = target
            eps = target["endpoints"]
            while pending and len(eps) < self.max_endpoints:
                eps.append(pending.pop(0))
            name = target["metadata"].get("name")
            if name:
                updating.append(name)
                unchanged.remove(name)
            else:
                created.append(target)
        return created, [by_name[n] for n in updating], [by_name[n] for n in deleting]

    async def _finalize(self, svc: dict, to_create: list[dict], to_update: list[dict],
                        to_delete: list[dict], trigger: dt.datetime | None) -> None:
        # a slice to delete and one to create become one update
        i = 0
        while i < len(to_delete) and to_create:
            gone = to_delete[i]
            if gone.get("addressType") == to_create[-1].get("addressType") and owned_by(gone, svc):
                fresh = to_create.pop()
                fresh["metadata"]["name"] = gone["metadata"]["name"]
                fresh["metadata"]["resourceVersion"] = gone["metadata"].get("resourceVersion")
                to_update.append(fresh)
                del to_delete[i]
            else:
                i += 1
        ns = svc["metadata"]["namespace"]
        if not svc["metadata"].get("deletionTimestamp"):
            for s in to_create:
                try:
                    created = await self.client.create(ENDPOINT_SLICES, _for_wire(s, trigger), ns)
                except ApiError as e:
                    if has_namespace_terminating_cause(e):
                        return
                    raise
                self.tracker.update(created)
        for s in to_update:
            updated = await self.client.update(ENDPOINT_SLICES, _for_wire(s, trigger), ns)
            self.tracker.update(updated)
        for s in to_delete:
            await self._delete_slice(s)

    async def _delete_slice(self, s: dict) -> None:
        try:
            await self.client.delete(ENDPOINT_SLICES, s["metadata"]["name"], s["metadata"]["namespace"])
        except ApiError as e:
            if e.code != 404:
                raise
        self.tracker.expect_deletion(s)


class NodeMissing(Exception):
    """A selected pod's node is not (yet) known; the others were written, retry for it."""


# -- what a slice holds -----------------------------------------------------------------------

def address_types(svc: dict) -> set[str]:
    """IPv4 and/or IPv6: the Service's IP families; failing those, its cluster IP's; a
    headless Service without families gets both."""
    spec = svc.get("spec") or {}
    families = {{"IPv4": "IPv4", "IPv6": "IPv6"}[f] for f in spec.get("ipFamilies") or ()
                if f in ("IPv4", "IPv6")}
    if families:
        return families
    if is_service_ip_set(svc):
        return {"IPv6" if is_ipv6(spec["clusterIP"]) else "IPv4"}
    return {"IPv4", "IPv6"}


def endpoint_ports(svc: dict, pod: dict) -> list[dict]:
    """The Service's ports as this pod serves them (ports the pod lacks are left out),
    in a canonical order."""
    spec = svc.get("spec") or {}
    out = []
    for sp in spec.get("ports") or ():
        number = find_port(pod, sp)
        if number is None:
            continue
        port = {"name": sp.get("name") or "", "protocol": sp.get("protocol") or "TCP", "port": number}
        if sp.get("appProtocol"):
            port["appProtocol"] = sp["appProtocol"]
        out.append(port)
    return sorted(out, key=lambda p: (p["name"], p["protocol"], p["port"], p.get("appProtocol", "")))


def ports_key(ports: list[dict] | None) -> str:
    canon = sorted((orjson.dumps(p, option=orjson.OPT_SORT_KEYS) for p in ports or ()))
    return b"|".join(canon).decode()


def pod_to_endpoint(pod: dict, node: dict | None, svc: dict, family: str) -> dict:
    md = pod["metadata"]
    serving = is_pod_ready(pod)
    terminating = bool(md.get("deletionTimestamp"))
    ready = bool((svc.get("spec") or {}).get("publishNotReadyAddresses")) or (serving and not terminating)
    want_v6 = family == "IPv6"
    ep: dict = {"addresses": [ip for ip in pod_ips(pod) if is_ipv6(ip) == want_v6],
                "conditions": {"ready": ready, "serving": serving, "terminating": terminating}}
    if should_set_hostname(pod, svc):
        ep["hostname"] = pod["spec"]["hostname"]
    ep["targetRef"] = {"kind": "Pod", "namespace": md.get("namespace"), "name": md["name"], "uid": md.get("uid")}
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name:
        ep["nodeName"] = node_name
    zone = ((node or {}).get("metadata", {}).get("labels") or {}).get(ZONE_LABEL)
    if zone:
        ep["zone"] = zone
    return ep


def endpoint_hash(ep: dict) -> tuple:
    """What makes two endpoints the same one: addresses, hostname and target pod."""
    ref = ep.get("targetRef") or {}
    return (tuple(sorted(ep.get("addresses") or ())), ep.get("hostname") or "",
            ref.get("namespace") or "", ref.get("name") or "")


def endpoints_equal_beyond_hash(a: dict, b: dict) -> bool:
    if a.get("nodeName") != b.get("nodeName") or a.get("zone") != b.get("zone"):
        return False
    ca, cb = a.get("conditions") or {}, b.get("conditions") or {}
    if any(ca.get(c) != cb.get(c) for c in ("ready", "serving", "terminating")):
        return False
    ra = {k: v for k, v in (a.get("targetRef") or {}).items() if k != "resourceVersion" and v}
    rb = {k: v for k, v in (b.get("targetRef") or {}).items() if k != "resourceVersion" and v}
    return ra == rb


def slice_labels(s: dict, svc: dict) -> tuple[dict, bool]:
    """The labels a slice of this Service carries (the Service's own, minus the reserved
    ones, plus service-name, managed-by and the headless marker), and whether the
    Service-derived part differs from what the slice has."""
    reserved = (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)
    have = {k: v for k, v in (s["metadata"].get("labels") or {}).items() if k not in reserved}
    want = {k: v for k, v in (svc["metadata"].get("labels") or {}).items() if k not in reserved}
    changed = have != want
    if not is_service_ip_set(svc):
        want[HEADLESS_LABEL] = ""
    want[SERVICE_NAME_LABEL] = svc["metadata"]["name"]
    want[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return want, changed


def owned_by(s: dict, svc: dict) -> bool:
    return any(r.get("uid") == svc["metadata"].get("uid") and r.get("kind") == "Service"
               and r.get("apiVersion") == "v1" for r in s["metadata"].get("ownerReferences") or ())


def new_slice(svc: dict, ports: list[dict], family: str) -> dict:
    md = svc["metadata"]
    s = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"generateName": f"{md['name']}-", "namespace": md["namespace"],
                      "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": md["name"],
                                           "uid": md.get("uid"), "controller": True,
                                           "blockOwnerDeletion": True}]},
         "addressType": family, "endpoints": [], "ports": [dict(p) for p in ports]}
    s["metadata"]["labels"], _ = slice_labels(s, svc)
    return s


def same_placeholder(s: dict, placeholder: dict) -> bool:
    """Is this existing slice already the empty placeholder the Service needs?"""
    return (s["metadata"].get("namespace") == placeholder["metadata"]["namespace"]
            and (s["metadata"].get("labels") or {}) == placeholder["metadata"]["labels"]
            and s["metadata"].get("ownerReferences") == placeholder["metadata"]["ownerReferences"]
            and s.get("addressType") == placeholder["addressType"]
            and not s.get("endpoints") and not s.get("ports"))


def _slice_to_fill(slices: list[dict], count: int, max_endpoints: int) -> dict | None:
    """The unchanged slice that `count` more endpoints fill most closely without overflowing."""
    best, best_room = None, max_endpoints
    for s in slices:
        room = max_endpoints - (count + len(s.get("endpoints") or ()))
        if 0 <= room < best_room:
            best, best_room = s, room
            if room == 0:
                break
    return best


def _with(s: dict, **fields) -> dict:
    """A copy of a cached slice with some fields replaced (the cache is never changed)."""
    out = orjson.loads(orjson.dumps(s))
    if "labels" in fields:
        out["metadata"]["labels"] = fields.pop("labels")
    out.update(fields)
    return out


def _for_wire(s: dict, trigger: dt.datetime | None) -> dict:
    """The slice as sent: trigger-time annotation set (or cleared), empty lists as null
    (which is how a real API server, storing protobuf, hands them back)."""
    out = dict(s)
    md = out["metadata"] = dict(s["metadata"])
    annotations = dict(md.get("annotations") or {})
    if trigger is not None:
        annotations[TRIGGER_TIME_ANNOTATION] = format_trigger_time(trigger)
    else:
        annotations.pop(TRIGGER_TIME_ANNOTATION, None)
    if annotations:
        md["annotations"] = annotations
    else:
        md.pop("annotations", None)
    for field in ("endpoints", "ports"):
        if not out.get(field):
            out[field] = None
    return out


def _managed_by_us(s: dict) -> bool:
    return (s["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == CONTROLLER_NAME
