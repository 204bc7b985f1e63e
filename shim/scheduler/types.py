"""What the scheduler knows about pods and nodes, parsed once from API objects.

`PodInfo` holds everything the plugins ask of a pod (resource requests computed the way the
kubelet and upstream's scheduler compute them, host ports, affinity terms, tolerations, ...),
so no plugin walks the pod's JSON again. `NodeInfo` holds a node's allocatable resources and,
updated incrementally as pods come and go, what its pods request, their host ports and which
of them carry (anti-)affinity terms.
"""
from __future__ import annotations

from typing import Any, Mapping

from shim.api.quantity import Quantity
from shim.api.selectors import (DOES_NOT_EXIST, EXISTS, GREATER_THAN, IN,
                                LESS_THAN, NOT_IN, NOTHING, LabelSelector, Requirement,
                                SelectorError, label_selector_from_object, new_requirement,
                                selector_from_set)

HOSTNAME_LABEL = "kubernetes.io/hostname"
ZONE_LABEL = "topology.kubernetes.io/zone"

# Requests assumed for scoring when a container states none (upstream's non-zero defaults).
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024

CPU, MEMORY, EPHEMERAL, PODS = "cpu", "memory", "ephemeral-storage", "pods"

_QCACHE: dict[Any, int] = {}


def quantity_value(raw, milli: bool = False) -> int:
    """An API quantity as an int (milli-units for cpu), cached: the same strings recur a lot."""
    key = (raw, milli)
    v = _QCACHE.get(key)
    if v is None:
        try:
            q = Quantity.parse(raw.strip() if isinstance(raw, str) else repr(raw) if isinstance(raw, float)
                               else str(raw))
            v = q.milli_value() if milli else q.value()
        except (ValueError, TypeError, AttributeError):
            v = 0
        if len(_QCACHE) > 100_000:
            _QCACHE.clear()
        _QCACHE[key] = v
    return v


def resource_list(d: Mapping | None) -> dict[str, int]:
    """A ResourceList as ints: cpu in millicores, everything else in units."""
    if not d:
        return {}
    return {k: quantity_value(v, k == CPU) for k, v in d.items()}


def _add(into: dict, other: Mapping) -> None:
    for k, v in other.items():
        into[k] = into.get(k, 0) + v


def _max(into: dict, other: Mapping) -> None:
    for k, v in other.items():
        if v > into.get(k, 0):
            into[k] = v


def pod_requests(spec: Mapping, non_missing: bool = False) -> dict[str, int]:
    """What a pod asks of a node (upstream's PodRequests).

    Regular containers add up; sidecars (restartable init containers) add up and also stay
    running beside later init containers; a plain init container needs its own request plus
    the sidecars started before it. The pod needs the larger of the two phases, then its
    pod-level requests (cpu, memory) replace the container sum, and overhead is added.
    `non_missing` fills a container's missing cpu/memory request with the scoring defaults.
    """
    def container_requests(c) -> dict[str, int]:
        r = resource_list(((c.get("resources") or {}).get("requests")))
        if non_missing:
            if CPU not in r:
                r[CPU] = DEFAULT_MILLI_CPU_REQUEST
            if MEMORY not in r:
                r[MEMORY] = DEFAULT_MEMORY_REQUEST
        return r

    total: dict[str, int] = {}
    for c in spec.get("containers") or ():
        _add(total, container_requests(c))
    sidecars: dict[str, int] = {}
    init_max: dict[str, int] = {}
    for c in spec.get("initContainers") or ():
        r = container_requests(c)
        if c.get("restartPolicy") == "Always":
            _add(total, r)
            _add(sidecars, r)
            _max(init_max, sidecars)
        else:
            combined = dict(r)
            _add(combined, sidecars)
            _max(init_max, combined)
    _max(total, init_max)
    pod_level = ((spec.get("resources") or {}).get("requests"))
    if pod_level:
        for k, v in resource_list(pod_level).items():
            if k in (CPU, MEMORY):
                total[k] = v
    if spec.get("overhead"):
        _add(total, resource_list(spec["overhead"]))
    return total


# -- affinity terms ----------------------------------------------------------------------------

class AffinityTerm:
    """A pod (anti-)affinity term with its namespaces resolved (upstream's AffinityTerm)."""
    __slots__ = ("selector", "namespaces", "namespace_selector", "topology_key", "weight")

    def __init__(self, selector: LabelSelector, namespaces: frozenset, namespace_selector: LabelSelector,
                 topology_key: str, weight: int = 0):
        self.selector = selector
        self.namespaces = namespaces
        self.namespace_selector = namespace_selector
        self.topology_key = topology_key
        self.weight = weight

    def matches(self, pod: "PodInfo", ns_labels: Mapping | None) -> bool:
        if pod.namespace in self.namespaces or (
                not self.namespace_selector.nothing and ns_labels is not None
                and self.namespace_selector.matches(ns_labels)):
            return self.selector.matches(pod.labels)
        return False

    def with_namespaces(self, extra) -> "AffinityTerm":
        """This term with a namespace selector resolved to names (mergeAffinityTermNamespaces)."""
        return AffinityTerm(self.selector, self.namespaces | frozenset(extra), NOTHING,
                            self.topology_key, self.weight)


def _selector(obj) -> LabelSelector:
    try:
        return label_selector_from_object(obj)
    except SelectorError:
        return NOTHING


def _term(raw: Mapping, pod_ns: str, pod_labels: Mapping, weight: int = 0) -> AffinityTerm:
    sel = _selector(raw.get("labelSelector"))
    # matchLabelKeys / mismatchLabelKeys: the pod's own values join the selector.
    extra = []
    for k in raw.get("matchLabelKeys") or ():
        if k in pod_labels:
            extra.append(Requirement(k, IN, (pod_labels[k],)))
    for k in raw.get("mismatchLabelKeys") or ():
        if k in pod_labels:
            extra.append(Requirement(k, NOT_IN, (pod_labels[k],)))
    if extra and not sel.nothing:
        sel = sel.add(*extra)
    namespaces = frozenset(raw.get("namespaces") or ())
    ns_sel_raw = raw.get("namespaceSelector")
    ns_sel = _selector(ns_sel_raw) if ns_sel_raw is not None else NOTHING
    if not namespaces and ns_sel_raw is None:
        namespaces = frozenset((pod_ns,))
    return AffinityTerm(sel, namespaces, ns_sel, raw.get("topologyKey") or "", weight)


# -- node selectors --------------------------------------------------------------------------------

_NODE_OPS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST,
             "Gt": GREATER_THAN, "Lt": LESS_THAN}


class NodeSelectorTerm:
    """One nodeSelectorTerm: label requirements AND metadata.name requirements."""
    __slots__ = ("labels", "fields", "valid")

    def __init__(self, raw: Mapping):
        self.valid = True
        self.labels: LabelSelector | None = None
        self.fields: list[tuple[str, str]] | None = None
        exprs = raw.get("matchExpressions") or []
        if exprs:
            try:
                reqs = [new_requirement(e.get("key") or "", _NODE_OPS.get(e.get("operator"), e.get("operator") or ""),
                                        e.get("values") or []) for e in exprs]
                self.labels = LabelSelector().add(*reqs)
            except SelectorError:
                self.valid = False
        fields = raw.get("matchFields") or []
        if fields:
            self.fields = []
            for f in fields:
                op, vals = f.get("operator"), f.get("values") or []
                if f.get("key") != "metadata.name" or op not in ("In", "NotIn") or len(vals) != 1:
                    self.valid = False
                else:
                    self.fields.append((op, vals[0]))

    def matches(self, node_labels: Mapping, node_name: str) -> bool:
        if not self.valid:
            return False
        if self.labels is not None and not self.labels.matches(node_labels):
            return False
        if self.fields is not None and node_name:
            for op, val in self.fields:
                if (node_name == val) != (op == "In"):
                    return False
        return True


def _non_empty(term: Mapping) -> bool:
    return bool(term.get("matchExpressions") or term.get("matchFields"))


class RequiredNodeAffinity:
    """spec.nodeSelector AND requiredDuringScheduling node affinity (GetRequiredNodeAffinity)."""
    __slots__ = ("node_selector", "terms", "key")

    def __init__(self, node_selector: Mapping | None, required: Mapping | None):
        self.node_selector = selector_from_set(node_selector) if node_selector else None
        self.terms: list[NodeSelectorTerm] | None = None
        if required is not None:
            self.terms = [NodeSelectorTerm(t) for t in required.get("nodeSelectorTerms") or () if _non_empty(t)]
        self.key = None

    @property
    def empty(self) -> bool:
        return self.node_selector is None and self.terms is None

    def matches(self, node_labels: Mapping, node_name: str) -> bool:
        if self.node_selector is not None and not self.node_selector.matches(node_labels):
            return False
        if self.terms is not None:
            for t in self.terms:
                if t.matches(node_labels, node_name):
                    return True
            return False
        return True


# -- pods -------------------------------------------------------------------------------------------

class PodInfo:
    """A pod as the scheduler sees it."""
    __slots__ = (
        "pod", "uid", "namespace", "name", "key", "labels", "priority", "scheduler_name", "node_name",
        "requests", "req_cpu", "req_mem", "req_eph", "req_scalar", "nz_cpu", "nz_mem",
        "host_ports", "tolerations", "required_node_affinity", "preferred_node_terms",
        "required_affinity", "required_anti_affinity", "preferred_affinity", "preferred_anti_affinity",
        "has_affinity_spec", "spread_constraints", "terminating", "creation", "start_time",
        "nominated_node", "preemption_policy", "gated", "images", "owner", "resource_version",
        "static_key",
    )

    def __init__(self, pod: dict):
        md = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        self.pod = pod
        self.uid = md.get("uid", "")
        self.namespace = md.get("namespace", "")
        self.name = md.get("name", "")
        self.key = f"{self.namespace}/{self.name}"
        self.resource_version = md.get("resourceVersion", "")
        self.labels = md.get("labels") or {}
        self.priority = spec.get("priority") or 0
        self.scheduler_name = spec.get("schedulerName") or "default-scheduler"
        self.node_name = spec.get("nodeName") or ""
        self.terminating = bool(md.get("deletionTimestamp"))
        self.creation = md.get("creationTimestamp") or ""
        self.start_time = status.get("startTime") or self.creation
        self.nominated_node = status.get("nominatedNodeName") or ""
        self.preemption_policy = spec.get("preemptionPolicy") or "PreemptLowerPriority"
        self.gated = bool(spec.get("schedulingGates"))
        owners = [o for o in md.get("ownerReferences") or () if o.get("controller")]
        self.owner = owners[0] if owners else None

        req = pod_requests(spec)
        self.requests = req
        self.req_cpu = req.get(CPU, 0)
        self.req_mem = req.get(MEMORY, 0)
        self.req_eph = req.get(EPHEMERAL, 0)
        scalar = {k: v for k, v in req.items() if k not in (CPU, MEMORY, EPHEMERAL, PODS) and v}
        self.req_scalar = scalar or None
        nz = pod_requests(spec, non_missing=True)
        self.nz_cpu = nz.get(CPU, 0)
        self.nz_mem = nz.get(MEMORY, 0)

        ports = []
        for c in spec.get("initContainers") or ():
            if c.get("restartPolicy") == "Always":
                ports.extend(_host_ports(c))
        for c in spec.get("containers") or ():
            ports.extend(_host_ports(c))
        self.host_ports = ports
        self.images = [c.get("image") or "" for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])]

        self.tolerations = spec.get("tolerations") or []
        aff = spec.get("affinity") or {}
        node_aff = aff.get("nodeAffinity") or {}
        self.required_node_affinity = RequiredNodeAffinity(
            spec.get("nodeSelector"), node_aff.get("requiredDuringSchedulingIgnoredDuringExecution"))
        prefs = []
        for t in node_aff.get("preferredDuringSchedulingIgnoredDuringExecution") or ():
            w = t.get("weight") or 0
            pref = t.get("preference") or {}
            if w and _non_empty(pref):
                prefs.append((w, NodeSelectorTerm(pref)))
        self.preferred_node_terms = prefs

        pa, paa = aff.get("podAffinity") or {}, aff.get("podAntiAffinity") or {}
        ns, labels = self.namespace, self.labels
        self.required_affinity = [_term(t, ns, labels) for t in pa.get("requiredDuringSchedulingIgnoredDuringExecution") or ()]
        self.required_anti_affinity = [_term(t, ns, labels) for t in paa.get("requiredDuringSchedulingIgnoredDuringExecution") or ()]
        self.preferred_affinity = [_term(t.get("podAffinityTerm") or {}, ns, labels, t.get("weight") or 0)
                                   for t in pa.get("preferredDuringSchedulingIgnoredDuringExecution") or ()]
        self.preferred_anti_affinity = [_term(t.get("podAffinityTerm") or {}, ns, labels, t.get("weight") or 0)
                                        for t in paa.get("preferredDuringSchedulingIgnoredDuringExecution") or ()]
        self.has_affinity_spec = bool(aff.get("podAffinity") is not None or aff.get("podAntiAffinity") is not None)
        self.spread_constraints = spec.get("topologySpreadConstraints") or []
        self.static_key = None

    @property
    def has_affinity_terms(self) -> bool:
        """Any (anti-)affinity term at all (NodeInfo's PodsWithAffinity)."""
        return bool(self.required_affinity or self.required_anti_affinity or
                    self.preferred_affinity or self.preferred_anti_affinity)

    def node_static_key(self):
        """What node-only filters and scores depend on: equal keys, equal verdicts per node."""
        if self.static_key is None:
            spec = self.pod.get("spec") or {}
            aff = (spec.get("affinity") or {}).get("nodeAffinity")
            self.static_key = _freeze((spec.get("nodeSelector"), aff, self.tolerations))
        return self.static_key


def _freeze(x):
    if isinstance(x, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        return tuple(_freeze(v) for v in x)
    return x


def _host_ports(c) -> list[tuple[str, str, int]]:
    out = []
    for p in c.get("ports") or ():
        hp = p.get("hostPort") or 0
        if hp > 0:
            out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", hp))
    return out


# -- nodes ------------------------------------------------------------------------------------------

class NodeInfo:
    """A node plus the pods on it (bound or assumed), kept up to date incrementally."""
    __slots__ = (
        "name", "node", "labels", "taints", "unschedulable", "alloc_cpu", "alloc_mem", "alloc_eph",
        "alloc_pods", "alloc_scalar", "req_cpu", "req_mem", "req_eph", "req_scalar", "nz_cpu", "nz_mem",
        "pods", "pods_with_affinity", "pods_with_required_anti_affinity", "used_ports", "generation",
        "static_cache", "score_cache", "images", "score_key", "score_gen", "score_val",
    )

    def __init__(self, name: str):
        self.name = name
        self.node: dict | None = None
        self.labels: dict = {}
        self.taints: list = []
        self.unschedulable = False
        self.alloc_cpu = self.alloc_mem = self.alloc_eph = self.alloc_pods = 0
        self.alloc_scalar: dict[str, int] = {}
        self.req_cpu = self.req_mem = self.req_eph = 0
        self.req_scalar: dict[str, int] = {}
        self.nz_cpu = self.nz_mem = 0
        self.pods: dict[str, PodInfo] = {}
        self.pods_with_affinity: dict[str, PodInfo] = {}
        self.pods_with_required_anti_affinity: dict[str, PodInfo] = {}
        self.used_ports: dict[tuple[str, int], set] = {}
        self.generation = 0
        self.static_cache: dict = {}
        self.score_cache: dict = {}
        self.images: dict[str, int] = {}
        self.score_key = self.score_gen = self.score_val = -1

    def set_node(self, node: dict) -> None:
        self.node = node
        md = node.get("metadata") or {}
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        self.labels = md.get("labels") or {}
        self.taints = spec.get("taints") or []
        self.unschedulable = bool(spec.get("unschedulable"))
        alloc = status.get("allocatable") or status.get("capacity") or {}
        res = resource_list(alloc)
        self.alloc_cpu = res.get(CPU, 0)
        self.alloc_mem = res.get(MEMORY, 0)
        self.alloc_eph = res.get(EPHEMERAL, 0)
        self.alloc_pods = res.get(PODS, 0)
        self.alloc_scalar = {k: v for k, v in res.items() if k not in (CPU, MEMORY, EPHEMERAL, PODS)}
        images = {}
        for img in status.get("images") or ():
            size = img.get("sizeBytes") or 0
            for n in img.get("names") or ():
                images[normalized_image_name(n)] = size
        self.images = images
        self.static_cache = {}
        self.generation += 1

    def add_pod(self, p: PodInfo) -> None:
        if p.uid in self.pods:
            self.remove_pod(self.pods[p.uid])
        self.pods[p.uid] = p
        self.req_cpu += p.req_cpu
        self.req_mem += p.req_mem
        self.req_eph += p.req_eph
        if p.req_scalar:
            for k, v in p.req_scalar.items():
                self.req_scalar[k] = self.req_scalar.get(k, 0) + v
        self.nz_cpu += p.nz_cpu
        self.nz_mem += p.nz_mem
        if p.has_affinity_terms:
            self.pods_with_affinity[p.uid] = p
        if p.required_anti_affinity:
            self.pods_with_required_anti_affinity[p.uid] = p
        for ip, proto, port in p.host_ports:
            self.used_ports.setdefault((proto, port), set()).add(ip)
        self.generation += 1

    def remove_pod(self, p: PodInfo) -> bool:
        cur = self.pods.pop(p.uid, None)
        if cur is None:
            return False
        self.req_cpu -= cur.req_cpu
        self.req_mem -= cur.req_mem
        self.req_eph -= cur.req_eph
        if cur.req_scalar:
            for k, v in cur.req_scalar.items():
                self.req_scalar[k] = self.req_scalar.get(k, 0) - v
        self.nz_cpu -= cur.nz_cpu
        self.nz_mem -= cur.nz_mem
        self.pods_with_affinity.pop(cur.uid, None)
        self.pods_with_required_anti_affinity.pop(cur.uid, None)
        for ip, proto, port in cur.host_ports:
            ips = self.used_ports.get((proto, port))
            if ips is not None:
                ips.discard(ip)
                if not ips:
                    del self.used_ports[(proto, port)]
        self.generation += 1
        return True

    def port_conflict(self, ip: str, proto: str, port: int) -> bool:
        """HostPortInfo.CheckConflict: 0.0.0.0 clashes with any address on the same port."""
        ips = self.used_ports.get((proto, port))
        if not ips:
            return False
        if ip == "0.0.0.0":
            return True
        return ip in ips or "0.0.0.0" in ips

    def clone(self) -> "NodeInfo":
        """A copy whose pod set can change without touching this one (preemption dry runs)."""
        c = NodeInfo(self.name)
        c.node, c.labels, c.taints, c.unschedulable = self.node, self.labels, self.taints, self.unschedulable
        c.alloc_cpu, c.alloc_mem, c.alloc_eph, c.alloc_pods = self.alloc_cpu, self.alloc_mem, self.alloc_eph, self.alloc_pods
        c.alloc_scalar = self.alloc_scalar
        c.req_cpu, c.req_mem, c.req_eph = self.req_cpu, self.req_mem, self.req_eph
        c.req_scalar = dict(self.req_scalar)
        c.nz_cpu, c.nz_mem = self.nz_cpu, self.nz_mem
        c.pods = dict(self.pods)
        c.pods_with_affinity = dict(self.pods_with_affinity)
        c.pods_with_required_anti_affinity = dict(self.pods_with_required_anti_affinity)
        c.used_ports = {k: set(v) for k, v in self.used_ports.items()}
        c.images = self.images
        c.static_cache = self.static_cache
        c.score_cache = {}
        c.score_key = c.score_gen = c.score_val = -1
        return c


def normalized_image_name(name: str) -> str:
    """An image reference with the implicit :latest tag spelled out (ImageLocality)."""
    if name.rfind(":") <= name.rfind("/"):
        return name + ":latest"
    return name


def tolerates(tolerations, taint: Mapping) -> bool:
    """Whether any toleration tolerates the taint (Toleration.ToleratesTaint)."""
    t_key, t_value, t_effect = taint.get("key", ""), taint.get("value", ""), taint.get("effect", "")
    for tol in tolerations:
        eff = tol.get("effect") or ""
        if eff and eff != t_effect:
            continue
        key = tol.get("key") or ""
        if key and key != t_key:
            continue
        op = tol.get("operator") or "Equal"
        if op == "Exists":
            return True
        if op == "Equal" and (tol.get("value") or "") == (t_value or ""):
            return True
    return False


def untolerated_taint(taints, tolerations, effects=("NoSchedule", "NoExecute")) -> dict | None:
    """The first taint with one of `effects` that no toleration tolerates."""
    for taint in taints:
        if taint.get("effect") in effects and not tolerates(tolerations, taint):
            return taint
    return None


__all__ = ["AffinityTerm", "NodeInfo", "PodInfo", "RequiredNodeAffinity", "NodeSelectorTerm",
           "pod_requests", "resource_list", "quantity_value", "tolerates", "untolerated_taint",
           "HOSTNAME_LABEL", "ZONE_LABEL"]
