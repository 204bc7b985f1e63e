"""Service ClusterIPs reserved as IPAddress objects, the way kube-apiserver has done since v1.33.

Holding address X for Service ns/name means an IPAddress named X exists with
spec.parentRef -> services ns/name. Creating that object is the reservation: the store
refuses a second create of the same key, so two API servers (or two concurrent requests)
can never both get X, and nothing needs to scan the Services to know what is free.

- The ranges are the ServiceCIDRs that are Ready (or have no Ready condition yet) and are
  not being deleted; the default one, `kubernetes`, is made at start-up
  (ensure_default_service_cidr) and tried first when picking an address.
- A free address is found as upstream's allocator does: a random start in the upper part
  of the range (the lowest addresses are kept for Services that ask for a fixed IP), a
  walk onwards, then the lower part. Addresses that already have an IPAddress are skipped
  with a read; a lost race on create just moves on. After a short walk of taken
  addresses (a nearly full range) one list of the IPAddresses tells the free ones.
- The reservation hook runs just before a Service is written; if the write does not
  happen, what it reserved is released again. Addresses a Service stops holding (deleted,
  or turned into ExternalName) are released once that write has happened.
- dryRun reserves nothing: a requested address is only checked against the ranges, and
  an automatic one shows as the range's network address, as upstream answers.
- IPRepair makes the IPAddresses agree with the Services, as kube-apiserver's
  ipallocator-repair-controller does: at start-up (stores written before IPAddresses
  existed, or a crash between reserving and writing, leave gaps) and then every
  `--ip-repair-interval` (ControlPlane). A Service IP without its IPAddress gets one, an
  allocator-made IPAddress whose Service is gone (past a grace) or holds another address is
  deleted, and upstream's Warning Events (events.k8s.io/v1, reporting controller
  ipallocator-repair-controller) say so.
- Which ranges may be deleted is the ServiceCIDR controller's business (servicecidr.py, in
  the controller manager): a range being deleted or not Ready is never allocated from here.
"""
from __future__ import annotations

import ipaddress
import logging
import random
import socket
import time

from shim.api import errors, validation as v
from shim.api.objects import now_rfc3339, parse_rfc3339
from shim.api.registry import DeleteOptions, ListOptions, WriteOptions

log = logging.getLogger("shim.controllers")

DEFAULT_SERVICE_CIDR_NAME = "kubernetes"
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
#: who writes the default ServiceCIDR's Ready condition upstream
DEFAULT_CIDR_CONTROLLER = "kubernetes-service-cidr-controller"
#: labels every allocator-made IPAddress carries (networking/v1 well-known labels)
MANAGED_BY_LABEL = "ipaddress.kubernetes.io/managed-by"
IP_FAMILY_LABEL = "ipaddress.kubernetes.io/ip-family"
ALLOCATOR = "ipallocator.k8s.io"
#: taken addresses walked past before listing the IPAddresses instead
WALK_BEFORE_LIST = 64
#: how old an IPAddress without its Service must be before IPRepair releases it (it may
#: belong to a Service another API server is writing right now)
ORPHAN_GRACE_SECONDS = 60.0

NETWORKING = ("networking.k8s.io", "v1")


def held_ips(svc: dict | None) -> list[str]:
    """The cluster IPs a Service holds (not `None`, not an ExternalName's)."""
    if not svc:
        return []
    spec = svc.get("spec") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [ip for ip in ips if isinstance(ip, str) and ip and ip != "None"]


def _canonical(ip: str) -> str | None:
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return None


class _Range:
    """One CIDR's allocatable addresses, as ints: [first, last], upper band from `upper`."""

    def __init__(self, cidr: str):
        self.net = ipaddress.ip_network(cidr)
        base, size = int(self.net.network_address), self.net.num_addresses
        self.first = base + 1
        # IPv4 keeps its broadcast address out; IPv6 has none
        self.last = base + size - (2 if self.net.version == 4 else 1)
        # upstream's split: min(max(16, size/16), 256) addresses at the bottom are tried last
        offset = 0 if size <= 16 else min(max(16, size // 16), 256)
        self.upper = self.first + offset

    def contains(self, addr: int) -> bool:
        return int(self.net.network_address) <= addr <= int(self.net.broadcast_address)

    def bands(self) -> list[tuple[int, int]]:
        return [(lo, hi) for lo, hi in ((self.upper, self.last), (self.first, self.upper - 1)) if lo <= hi]

    def name(self, addr: int) -> str:
        return str(ipaddress.ip_address(addr) if self.net.version == 4 else ipaddress.IPv6Address(addr))


def _is_ready(cidr: dict) -> bool:
    for c in (cidr.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Ready":
            return c.get("status") == "True"
    return True  # no verdict yet: usable (upstream's choice when no controller has looked)


class ClusterIPAllocator:
    """Reserves and releases Service cluster IPs through the API's IPAddress resource."""

    def __init__(self, api):
        self.api = api
        self.rand = random.Random()

    def install(self) -> None:
        self.api.reservation_hooks.append(self.reserve)
        self.api.after_delete_hooks.append(self.after_delete)

    @property
    def _ips(self):
        return self.api.resource(*NETWORKING, "ipaddresses")

    @property
    def _cidrs(self):
        return self.api.resource(*NETWORKING, "servicecidrs")

    # -- hooks -------------------------------------------------------------------------------
    async def reserve(self, operation, rs, obj, old, dry_run):
        """Reservation hook: give a Service its cluster IP; finish() settles it after the write."""
        if rs.info.group != "" or rs.info.plural != "services" or operation not in ("CREATE", "UPDATE"):
            return None
        spec = obj.setdefault("spec", {})
        reserved: list[str] = []
        if spec.get("type", "ClusterIP") != "ExternalName":
            if not spec.get("clusterIP") and spec.get("clusterIPs"):
                spec["clusterIP"] = spec["clusterIPs"][0]  # one of the two is enough to ask
            if operation == "CREATE" or not (old or {}).get("spec", {}).get("clusterIP"):
                ip = spec.get("clusterIP")
                if ip != "None":
                    spec["clusterIP"] = await self.allocate(obj, ip or None, dry_run)
                    if not dry_run:
                        reserved.append(spec["clusterIP"])
            if spec.get("clusterIP"):
                spec["clusterIPs"] = [spec["clusterIP"]]
        keep = set(held_ips(obj))
        dropped = [ip for ip in held_ips(old) if ip not in keep]
        if dry_run or not (reserved or dropped):
            return None

        async def finish(committed: bool) -> None:
            if committed:
                for ip in dropped:
                    await self.release(ip, old)
                return
            for ip in reserved:
                if not await self._stored_with(obj, ip):
                    await self.release(ip, obj)
        return finish

    async def after_delete(self, rs, obj) -> None:
        if rs.info.group == "" and rs.info.plural == "services":
            for ip in held_ips(obj):
                await self.release(ip, obj)

    # -- allocation --------------------------------------------------------------------------
    async def allocate(self, svc: dict, ip: str | None, dry_run: bool = False) -> str:
        """Reserve `ip` (or a free address) for svc; 422 as upstream when that cannot be."""
        family = self._family(svc, ip)
        ranges = await self.ranges(family)
        if ip:
            try:
                addr = int(ipaddress.ip_address(ip))
            except (ValueError, TypeError):
                raise errors.invalid("Service", "", (svc.get("metadata") or {}).get("name", ""), [v.invalid(
                    "spec.clusterIPs[0]", ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")]) \
                    from None
            rng = next((r for r in ranges if r.contains(addr)), None)
            if rng is None:
                raise self._invalid(svc, ip, "the provided network does not match the current range")
            if not rng.first <= addr <= rng.last:
                raise self._invalid(svc, ip, f"the provided IP ({ip}) is not in the valid range. "
                                             f"The range of valid IPs is {rng.net}")
            if dry_run:
                return ip
            if not await self._create(rng.name(addr), svc, family):
                raise self._invalid(svc, ip, "provided IP is already allocated")
            return ip
        if ranges and dry_run:
            return str(ranges[0].net.network_address)
        for rng in ranges:
            got = await self._allocate_next(rng, svc, family)
            if got:
                return got
        name = (svc.get("metadata") or {}).get("name", "")
        raise errors.internal(f'failed to allocate a serviceIP for Service "{name}": range is full')

    async def ranges(self, family: int) -> list[_Range]:
        """Usable ranges of one IP family: the default ServiceCIDR's first, then by name."""
        lst = await self._cidrs.list("", ListOptions())
        items = sorted(lst["items"], key=lambda c: (c["metadata"]["name"] != DEFAULT_SERVICE_CIDR_NAME,
                                                    c["metadata"]["name"]))
        out, seen = [], set()
        for sc in items:
            if sc["metadata"].get("deletionTimestamp") or not _is_ready(sc):
                continue
            for cidr in (sc.get("spec") or {}).get("cidrs") or []:
                try:
                    rng = _Range(cidr)
                except ValueError:
                    continue
                if rng.net.version == family and cidr not in seen:
                    seen.add(cidr)
                    out.append(rng)
        return out

    async def _allocate_next(self, rng: _Range, svc: dict, family: int) -> str | None:
        for lo, hi in rng.bands():
            n = hi - lo + 1
            start = self.rand.randrange(n)
            taken: set[str] | None = None
            for i in range(n):
                name = rng.name(lo + (start + i) % n)
                if i < WALK_BEFORE_LIST:
                    if await self._ips.get_or_none("", name) is not None:
                        continue
                else:
                    if taken is None:
                        # a long run of taken addresses: the range is nearly full
                        taken = {o["metadata"]["name"] for o in (await self._ips.list("", ListOptions()))["items"]}
                    if name in taken:
                        continue
                if await self._create(name, svc, family):
                    return name
        return None

    async def _create(self, name: str, svc: dict, family: int) -> bool:
        """Create the IPAddress; False when it exists already (someone holds the address)."""
        m = svc.get("metadata") or {}
        body = {"apiVersion": "networking.k8s.io/v1", "kind": "IPAddress",
                "metadata": {"name": name, "labels": {IP_FAMILY_LABEL: f"IPv{family}",
                                                      MANAGED_BY_LABEL: ALLOCATOR}},
                "spec": {"parentRef": {"resource": "services", "namespace": m.get("namespace", ""),
                                       "name": m.get("name", "")}}}
        try:
            await self._ips.create("", body, WriteOptions(field_manager="kube-apiserver"))
        except errors.ApiError as e:
            if e.code == 409:
                return False
            raise
        return True

    async def release(self, ip: str, svc: dict) -> None:
        """Delete the IPAddress of `ip` if it is svc's (never another holder's)."""
        name = _canonical(ip)
        if name is None:
            return
        cur = await self._ips.get_or_none("", name)
        if cur is None or not _parent_is(cur, svc):
            return
        try:
            await self._ips.delete("", name, DeleteOptions(preconditions_uid=cur["metadata"]["uid"]))
        except errors.ApiError as e:
            if e.code not in (404, 409):
                raise

    async def _stored_with(self, svc: dict, ip: str) -> bool:
        """Whether the Service was written holding ip after all (an interrupted write may have)."""
        m = svc.get("metadata") or {}
        cur = await self.api.core("services").get_or_none(m.get("namespace", ""), m.get("name", ""))
        return cur is not None and cur["metadata"].get("uid") == m.get("uid") and ip in held_ips(cur)

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _family(svc: dict, ip: str | None) -> int:
        if ip:
            try:
                return ipaddress.ip_address(ip).version
            except (ValueError, TypeError):
                return 4  # allocate() answers for the bad address
        families = (svc.get("spec") or {}).get("ipFamilies") or ["IPv4"]
        return 6 if families[0] == "IPv6" else 4

    @staticmethod
    def _invalid(svc: dict, ip: str, why: str) -> errors.ApiError:
        name = (svc.get("metadata") or {}).get("name", "")
        ips = (svc.get("spec") or {}).get("clusterIPs") or [ip]
        return errors.invalid("Service", "", name, [v.invalid(
            "spec.clusterIPs", ips, f"failed to allocate IP {ip}: {why}")])


def _parent_is(ip_obj: dict, svc: dict) -> bool:
    ref = (ip_obj.get("spec") or {}).get("parentRef") or {}
    m = svc.get("metadata") or {}
    return not ref.get("group") and ref.get("resource") == "services" and \
        ref.get("namespace", "") == m.get("namespace", "") and ref.get("name") == m.get("name")


# -- start-up --------------------------------------------------------------------------------

async def ensure_default_service_cidr(api, cidrs: tuple[str, ...] = (DEFAULT_SERVICE_CIDR,)) -> None:
    """The `kubernetes` ServiceCIDR with the server's range, marked Ready as upstream's
    default-servicecidr controller does. A default CIDR with other ranges is left alone."""
    rs = api.resource(*NETWORKING, "servicecidrs")
    for _ in range(5):
        cur = await rs.get_or_none("", DEFAULT_SERVICE_CIDR_NAME)
        if cur is None:
            try:
                cur = await rs.create("", {"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR",
                                           "metadata": {"name": DEFAULT_SERVICE_CIDR_NAME},
                                           "spec": {"cidrs": list(cidrs)}},
                                      WriteOptions(field_manager="kube-apiserver"))
            except errors.ApiError as e:
                if e.code != 409:
                    raise
                continue
        if cur["metadata"].get("deletionTimestamp"):
            return
        if (cur.get("spec") or {}).get("cidrs") != list(cidrs):
            log.warning("the default ServiceCIDR %s does not match this server's range %s",
                        (cur.get("spec") or {}).get("cidrs"), list(cidrs))
            return
        conds = (cur.get("status") or {}).get("conditions") or []
        ready = next((c for c in conds if c.get("type") == "Ready"), None)
        if ready is not None and ready.get("status") in ("True", "False"):
            return  # decided already (False is someone's verdict to keep)
        status = dict(cur.get("status") or {})
        status["conditions"] = [c for c in conds if c.get("type") != "Ready"] + [{
            "type": "Ready", "status": "True", "lastTransitionTime": now_rfc3339(), "reason": "",
            "message": "Kubernetes default Service CIDR is ready"}]
        try:
            await rs.update("", DEFAULT_SERVICE_CIDR_NAME, {**cur, "status": status},
                            WriteOptions(field_manager=DEFAULT_CIDR_CONTROLLER), subresource="status")
            return
        except errors.ApiError as e:
            if e.code != 409:
                raise
    log.warning("could not settle the default ServiceCIDR: too many concurrent writes")


# -- repair ----------------------------------------------------------------------------------

#: the reporting controller of the repair loop's Events, as kube-apiserver names it
REPAIR_CONTROLLER = "ipallocator-repair-controller"
#: how long an IPAddress may point at a Service that holds another address before repair
#: deletes it (the Service write that goes with a fresh reservation may still be reverted)
WRONG_REF_GRACE_SECONDS = 5.0
#: how often kube-apiserver's repair loop looks at everything again
DEFAULT_REPAIR_INTERVAL = 180.0


class ApiEventRecorder:
    """events.k8s.io/v1 Events written from inside the API server (no HTTP round trip), the
    way client-go's events recorder writes them: named `<object>.<nanoseconds hex>`, in the
    object's namespace (or `default`), a repeat within the series window counted in `series`."""

    SERIES_WINDOW = 360.0  # client-go folds isomorphic events within six minutes

    def __init__(self, api, controller: str):
        self.api = api
        self.controller = controller
        self.instance = f"{controller}-{socket.gethostname()}"
        self._seen: dict[tuple, list] = {}  # (uid, type, reason, action, note) -> [ns, name, count, first]

    async def event(self, obj: dict, etype: str, reason: str, action: str, note: str) -> None:
        try:
            await self._write(obj, etype, reason, action, note)
        except Exception as e:  # an event is never worth failing the caller for
            log.debug("dropping event %s: %s", reason, e)

    async def _write(self, obj, etype, reason, action, note) -> None:
        rs = self.api.resource("events.k8s.io", "v1", "events")
        md = obj.get("metadata") or {}
        key = (md.get("uid"), etype, reason, action, note)
        now = time.time()
        seen = self._seen.get(key)
        if seen is not None and now - seen[3] < self.SERIES_WINDOW:
            ns, name, count, _ = seen
            cur = await rs.get_or_none(ns, name)
            if cur is not None:
                cur["series"] = {"count": count + 1, "lastObservedTime": _micro_now()}
                try:
                    await rs.update(ns, name, cur, WriteOptions(field_manager=self.controller))
                    seen[2] = count + 1
                    return
                except errors.ApiError as e:
                    if e.code not in (404, 409):
                        raise
        ref = {"kind": obj.get("kind", ""), "namespace": md.get("namespace", ""), "name": md.get("name", ""),
               "uid": md.get("uid", ""), "apiVersion": obj.get("apiVersion", ""),
               "resourceVersion": md.get("resourceVersion", "")}
        if not ref["namespace"]:
            del ref["namespace"]
        ns = md.get("namespace") or "default"
        name = f"{md.get('name', '')}.{time.time_ns():x}"
        await rs.create(ns, {
            "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
            "eventTime": _micro_now(), "reportingController": self.controller,
            "reportingInstance": self.instance, "action": action, "reason": reason, "regarding": ref,
            "note": note, "type": etype}, WriteOptions(field_manager=self.controller))
        self._seen[key] = [ns, name, 1, now]
        if len(self._seen) > 4096:
            self._seen.pop(next(iter(self._seen)))


def _micro_now() -> str:
    us = time.time_ns() // 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(us // 1_000_000)) + f".{us % 1_000_000:06d}Z"


def _prefix_contains(cidr: str, addr) -> bool:
    """Whether a ServiceCIDR's range holds addr as a Service address (not the network
    address, nor an IPv4 broadcast address)."""
    try:
        net = ipaddress.ip_network(cidr)
    except ValueError:
        return False
    if net.version != addr.version or addr not in net or addr == net.network_address:
        return False
    return not (net.version == 4 and addr == net.broadcast_address)


def _age(obj: dict, now: float) -> float:
    created = obj["metadata"].get("creationTimestamp")
    return now - parse_rfc3339(created).timestamp() if created else float("inf")


def _labels_ok(ip_obj: dict) -> bool:
    labels = ip_obj["metadata"].get("labels") or {}
    family = "IPv6" if ":" in ip_obj["metadata"]["name"] else "IPv4"
    return labels.get(IP_FAMILY_LABEL) == family and labels.get(MANAGED_BY_LABEL) == ALLOCATOR


class IPRepair:
    """kube-apiserver's RepairIPAddress, as a pass over all Services and IPAddresses: every
    Service IP within a ServiceCIDR has its IPAddress pointing back at the Service, and no
    allocator-made IPAddress outlives its Service. Run at start-up and then periodically
    (ControlPlane); warnings go out as Events where upstream writes them."""

    def __init__(self, api, grace: float = ORPHAN_GRACE_SECONDS):
        self.api = api
        self.grace = grace
        self.alloc = ClusterIPAllocator(api)
        self.events = ApiEventRecorder(api, REPAIR_CONTROLLER)

    async def run_once(self) -> None:
        services = (await self.api.core("services").list("", ListOptions()))["items"]
        cidrs = (await self.alloc._cidrs.list("", ListOptions()))["items"]
        by_key = {(s["metadata"].get("namespace", ""), s["metadata"]["name"]): s for s in services}
        ips = {o["metadata"]["name"]: o for o in (await self.alloc._ips.list("", ListOptions()))["items"]}
        for svc in services:
            svc.setdefault("apiVersion", "v1")
            svc.setdefault("kind", "Service")
            await self._sync_service(svc, cidrs, ips, by_key)
        for ip_obj in ips.values():
            ip_obj.setdefault("apiVersion", "networking.k8s.io/v1")
            ip_obj.setdefault("kind", "IPAddress")
            await self._sync_ipaddress(ip_obj, by_key)

    # -- Services -> IPAddresses -------------------------------------------------------------
    async def _sync_service(self, svc: dict, cidrs: list, ips: dict, by_key: dict) -> None:
        ns, svc_name = svc["metadata"].get("namespace", ""), svc["metadata"]["name"]
        for ip in held_ips(svc):
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                await self.events.event(svc, "Warning", "ClusterIPNotValid", "ClusterIPValidation",
                                        "Cluster IP <nil> is not a valid IP; please recreate Service")  # (sic)
                continue
            family = f"IPv{addr.version}"
            if not any(_prefix_contains(c, addr) for sc in cidrs for c in (sc.get("spec") or {}).get("cidrs") or []):
                await self.events.event(svc, "Warning", "ClusterIPOutOfRange", "ClusterIPAllocation",
                                        f"Cluster IP [{family}]: {ip} is not within any configured Service CIDR; "
                                        f"please recreate service")
                continue
            name = str(addr)
            cur = ips.get(name)
            if cur is None:
                # the Service may have let go of it since the list: ask again before reserving
                if not await self.alloc._stored_with(svc, ip):
                    continue
                await self.events.event(svc, "Warning", "ClusterIPNotAllocated", "ClusterIPAllocation",
                                        f"Cluster IP [{family}]: {ip} is not allocated; repairing")
                log.warning("repair: the ClusterIP [%s]: %s for Service %s/%s is not allocated; repairing",
                            family, ip, ns, svc_name)
                if await self.alloc._create(name, svc, addr.version):
                    ips[name] = await self.alloc._ips.get_or_none("", name) or {}
                continue
            ref = (cur.get("spec") or {}).get("parentRef") or {}
            wrong = f"the ClusterIP [{family}]: {ip} for Service {ns}/{svc_name} has a wrong reference; repairing"
            if ref.get("group") or ref.get("resource") != "services":
                await self.events.event(svc, "Warning", "ClusterIPNotAllocated", "ClusterIPAllocation", wrong)
                await self._recreate(cur, svc, ips)
                continue
            if (ref.get("namespace", ""), ref.get("name")) != (ns, svc_name):
                other = by_key.get((ref.get("namespace", ""), ref.get("name")))
                if other is None:
                    await self.events.event(svc, "Warning", "ClusterIPNotAllocated", "ClusterIPAllocation", wrong)
                    await self._recreate(cur, svc, ips)
                    continue
                if name in ((other.get("spec") or {}).get("clusterIPs") or []):
                    await self.events.event(svc, "Warning", "ClusterIPAlreadyAllocated", "ClusterIPAllocation",
                                            f"Cluster IP [{family}]:{ip} was assigned to multiple services; "
                                            f"please recreate service")
                    log.warning("repair: the cluster IP [%s]:%s for service %s/%s was assigned to other "
                                "services %s/%s; please recreate", family, ip, ns, svc_name,
                                ref.get("namespace", ""), ref.get("name"))
            if not _labels_ok(cur):
                # (as upstream: the address is then rewritten for this Service)
                await self._recreate(cur, svc, ips)

    async def _recreate(self, cur: dict, svc: dict, ips: dict) -> None:
        name = cur["metadata"]["name"]
        try:
            await self.alloc._ips.delete("", name, DeleteOptions(preconditions_uid=cur["metadata"]["uid"]))
        except errors.ApiError as e:
            if e.code not in (404, 409):
                raise
            if e.code == 409:
                return  # changed meanwhile: the next pass looks again
        if await self.alloc._create(name, svc, ipaddress.ip_address(name).version):
            ips[name] = await self.alloc._ips.get_or_none("", name) or {}

    # -- IPAddresses -> Services -------------------------------------------------------------
    async def _sync_ipaddress(self, ip_obj: dict, by_key: dict) -> None:
        md = ip_obj.get("metadata") or {}
        if (md.get("labels") or {}).get(MANAGED_BY_LABEL) != ALLOCATOR:
            return  # not the allocator's: somebody else's business
        name = md["name"]
        ref = (ip_obj.get("spec") or {}).get("parentRef") or {}
        now = time.time()
        if ref.get("group") or ref.get("resource") != "services":
            shown = f"&{{{ref.get('group', '')} {ref.get('resource', '')} {ref.get('namespace', '')} " \
                    f"{ref.get('name', '')}}}"
            await self.events.event(ip_obj, "Warning", "IPAddressNotAllocated", "IPAddressAllocation",
                                    f"IPAddress {name} appears to have been modified, not referencing a "
                                    f"Service {shown}: cleaning up")
            await self._delete(ip_obj)
            return
        ns, svc_name = ref.get("namespace", ""), ref.get("name", "")
        svc = by_key.get((ns, svc_name))
        if svc is None:
            if _age(ip_obj, now) <= self.grace:
                return  # its Service may be being written right now
            if await self.api.core("services").get_or_none(ns, svc_name) is not None:
                return  # made since the list: the next pass looks at it
            await self.events.event(ip_obj, "Warning", "IPAddressNotAllocated", "IPAddressAllocation",
                                    f"IPAddress: {name} for Service {ns}/{svc_name} appears to have leaked: "
                                    f"cleaning up")
            log.warning("repair: IPAddress %s appears to have leaked: cleaning up", name)
            await self._delete(ip_obj)
            return
        if name in ((svc.get("spec") or {}).get("clusterIPs") or []):
            return
        if (svc.get("spec") or {}).get("type") == "ExternalName" and _age(ip_obj, now) < ORPHAN_GRACE_SECONDS:
            return  # turning into a ClusterIP Service: the write may still be on its way
        if _age(ip_obj, now) < WRONG_REF_GRACE_SECONDS and \
                _age(ip_obj, now) < _age(svc, now):
            return  # reserved for a write of this Service that may yet be reverted
        fresh = await self.api.core("services").get_or_none(ns, svc_name)
        if fresh is None or name in ((fresh.get("spec") or {}).get("clusterIPs") or []):
            return  # changed since the list: the next pass looks again
        await self.events.event(ip_obj, "Warning", "IPAddressWrongReference", "IPAddressAllocation",
                                f"IPAddress: {name} for Service {ns}/{svc_name} has a wrong reference; "
                                f"cleaning up")
        log.warning("repair: the IPAddress %s for Service %s/%s has a wrong reference; cleaning up",
                    name, ns, svc_name)
        await self._delete(ip_obj)

    async def _delete(self, ip_obj: dict) -> None:
        try:
            await self.alloc._ips.delete("", ip_obj["metadata"]["name"],
                                         DeleteOptions(preconditions_uid=ip_obj["metadata"]["uid"]))
        except errors.ApiError as e:
            if e.code not in (404, 409):
                raise
