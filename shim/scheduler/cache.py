"""The scheduler's picture of the cluster, kept current from informer events.

Nodes and the pods bound to them live in `NodeInfo`s whose totals are adjusted as pods come
and go, so a scheduling cycle reads them directly instead of summing anything. A pod the
scheduler has decided on but whose binding is still in flight is *assumed*: it counts on its
node at once, and is confirmed when the informer reports it bound (or forgotten if binding
fails), like upstream's cache.

`node_list` orders nodes the way upstream's node tree does (round-robin over zones), which
decides where a cycle's search starts and what ties look like.
"""
from __future__ import annotations

import logging
from collections import defaultdict

from shim.api.selectors import LabelSelector
from shim.scheduler.plugins.podtopologyspread import default_selector
from shim.scheduler.types import ZONE_LABEL, NodeInfo, PodInfo

log = logging.getLogger("shim.scheduler.cache")

REGION_LABEL = "topology.kubernetes.io/region"


class Cache:
    def __init__(self):
        self.nodes: dict[str, NodeInfo] = {}          # includes "ghost" entries for unknown nodes
        self._node_list: list[NodeInfo] | None = None
        self.pods: dict[str, tuple[PodInfo, str]] = {}  # uid -> (info, node) for bound or assumed pods
        self.assumed: set[str] = set()
        self.namespaces: dict[str, dict] = {}          # name -> labels
        self.services: dict[str, dict[str, dict]] = defaultdict(dict)  # ns -> name -> service
        self.replica_sets: dict[str, dict] = {}
        self.stateful_sets: dict[str, dict] = {}
        self.replication_controllers: dict[str, dict] = {}
        self.image_nodes: dict[str, int] = {}
        self._affinity_nodes: set[str] = set()
        self._anti_affinity_nodes: set[str] = set()
        self.generation = 0
        self.node_generation = 0  # changes with any node object (not with pods)

    # -- nodes ------------------------------------------------------------------------------
    @property
    def node_list(self) -> list[NodeInfo]:
        if self._node_list is None:
            self._node_list = self._build_node_list()
        return self._node_list

    def _build_node_list(self) -> list[NodeInfo]:
        zones: dict[str, list[NodeInfo]] = {}
        for n in self.nodes.values():
            if n.node is None:
                continue
            zone = n.labels.get(REGION_LABEL, "") + ":\x00:" + n.labels.get(ZONE_LABEL, "")
            zones.setdefault(zone, []).append(n)
        groups = list(zones.values())
        out = []
        i = 0
        while groups:
            nxt = []
            for g in groups:
                if i < len(g):
                    out.append(g[i])
                    nxt.append(g)
            groups = [g for g in nxt if i + 1 < len(g)]
            i += 1
        return out

    def num_nodes(self) -> int:
        return len(self.node_list)

    def add_or_update_node(self, node: dict) -> NodeInfo:
        name = node["metadata"]["name"]
        ni = self.nodes.get(name)
        if ni is None:
            ni = self.nodes[name] = NodeInfo(name)
        existed = ni.node is not None
        if existed and _scheduling_view(ni.node) == _scheduling_view(node):
            ni.node = node  # a heartbeat or another change no plugin reads: caches stay valid
            return ni
        old_zone = (ni.labels.get(REGION_LABEL), ni.labels.get(ZONE_LABEL)) if existed else None
        self._drop_images(ni)
        ni.set_node(node)
        for img in ni.images:
            self.image_nodes[img] = self.image_nodes.get(img, 0) + 1
        if not existed or old_zone != (ni.labels.get(REGION_LABEL), ni.labels.get(ZONE_LABEL)):
            self._node_list = None
        self.generation += 1
        self.node_generation += 1
        return ni

    def remove_node(self, name: str) -> None:
        ni = self.nodes.get(name)
        if ni is None:
            return
        self._drop_images(ni)
        if ni.pods:
            ni.node = None  # keep the pods' accounting until they go too (a ghost node)
            ni.labels = {}
            ni.images = {}
        else:
            del self.nodes[name]
        self._node_list = None
        self.generation += 1
        self.node_generation += 1

    def _drop_images(self, ni: NodeInfo) -> None:
        for img in ni.images:
            n = self.image_nodes.get(img, 0) - 1
            if n <= 0:
                self.image_nodes.pop(img, None)
            else:
                self.image_nodes[img] = n

    def get_node(self, name: str) -> NodeInfo | None:
        ni = self.nodes.get(name)
        return ni if ni is not None and ni.node is not None else None

    # -- pods -------------------------------------------------------------------------------
    def _place(self, p: PodInfo, node_name: str) -> None:
        ni = self.nodes.get(node_name)
        if ni is None:
            ni = self.nodes[node_name] = NodeInfo(node_name)
        ni.add_pod(p)
        self.pods[p.uid] = (p, node_name)
        if ni.pods_with_affinity:
            self._affinity_nodes.add(node_name)
        if ni.pods_with_required_anti_affinity:
            self._anti_affinity_nodes.add(node_name)
        self.generation += 1

    def _unplace(self, uid: str) -> PodInfo | None:
        entry = self.pods.pop(uid, None)
        if entry is None:
            return None
        p, node_name = entry
        ni = self.nodes.get(node_name)
        if ni is not None:
            ni.remove_pod(p)
            if not ni.pods_with_affinity:
                self._affinity_nodes.discard(node_name)
            if not ni.pods_with_required_anti_affinity:
                self._anti_affinity_nodes.discard(node_name)
            if ni.node is None and not ni.pods:
                del self.nodes[node_name]
        self.generation += 1
        return p

    def assume(self, p: PodInfo, node_name: str) -> None:
        """Count a pod on a node before its binding is confirmed."""
        self._unplace(p.uid)
        self._place(p, node_name)
        self.assumed.add(p.uid)

    def forget(self, p: PodInfo) -> None:
        """Undo assume() after a failed binding."""
        if p.uid in self.assumed:
            self.assumed.discard(p.uid)
            self._unplace(p.uid)

    def confirm(self, uid: str, pod: dict) -> bool:
        """The informer reports an assumed pod bound where we assumed it, otherwise unchanged
        (a binding sets only nodeName and the PodScheduled condition): keep its PodInfo."""
        entry = self.pods.get(uid)
        if entry is None or uid not in self.assumed:
            return False
        info, node_name = entry
        md = pod.get("metadata") or {}
        if (pod.get("spec") or {}).get("nodeName") != node_name or (md.get("labels") or {}) != info.labels or \
                bool(md.get("deletionTimestamp")) != info.terminating:
            return False
        self.assumed.discard(uid)
        info.pod = pod
        info.node_name = node_name
        info.resource_version = md.get("resourceVersion", "")
        return True

    def is_assumed(self, uid: str) -> bool:
        return uid in self.assumed

    def add_or_update_pod(self, p: PodInfo) -> None:
        """A bound pod as the informer reports it (confirms an assumed one)."""
        self.assumed.discard(p.uid)
        cur = self.pods.get(p.uid)
        if cur is not None and cur[1] == p.node_name and cur[0] is p:
            return
        self._unplace(p.uid)
        self._place(p, p.node_name)

    def remove_pod(self, uid: str) -> PodInfo | None:
        self.assumed.discard(uid)
        return self._unplace(uid)

    def pod_node(self, uid: str) -> str | None:
        entry = self.pods.get(uid)
        return entry[1] if entry else None

    # -- indexes for the affinity plugins ------------------------------------------------------
    def nodes_with_affinity(self) -> list[NodeInfo]:
        return [self.nodes[n] for n in self._affinity_nodes if self.nodes[n].node is not None]

    def nodes_with_required_anti_affinity(self) -> list[NodeInfo]:
        return [self.nodes[n] for n in self._anti_affinity_nodes if self.nodes[n].node is not None]

    @property
    def any_affinity(self) -> bool:
        return bool(self._affinity_nodes)

    # -- namespaces and workload objects ---------------------------------------------------------
    def namespace_labels(self, name: str) -> dict:
        return self.namespaces.get(name) or {}

    def namespaces_matching(self, selector: LabelSelector) -> list[str]:
        return [ns for ns, labels in self.namespaces.items() if selector.matches(labels)]

    def default_selector(self, pod: PodInfo) -> LabelSelector:
        return default_selector(pod, self.services.get(pod.namespace, {}).values(),
                                self.replication_controllers, self.replica_sets, self.stateful_sets)


def _scheduling_view(node: dict) -> tuple:
    """The parts of a Node the plugins read."""
    md, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    return (md.get("labels"), spec.get("taints"), bool(spec.get("unschedulable")),
            status.get("allocatable") or status.get("capacity"), status.get("images"))
