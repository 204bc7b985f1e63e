"""The DaemonSet controller: one pod of each DaemonSet on every node that should run it.

An API client like the other workload controllers: informers on DaemonSets, their
ControllerRevisions, pods and nodes feed a work queue keyed "namespace/name" (node changes
go through a second queue that works out which DaemonSets a node's change concerns). A
sync, as kube-controller-manager's does:

- records the template history: a ControllerRevision per template (named
  `<daemonset>-<hash>`, labelled `controller-revision-hash`, its data a strategic merge
  patch that replaces `spec.template`, as `kubectl rollout history/undo` read and apply it),
  revision numbers bumped when an older template comes back, duplicates folded, the oldest
  beyond `revisionHistoryLimit` deleted unless a pod still runs them, `collisionCount`
  bumped on a hash collision;
- decides per node whether the pod belongs there (the template's nodeSelector and required
  node affinity, the node's NoSchedule/NoExecute taints against the template's tolerations
  plus the ones every daemon pod gets) and whether a pod already there may stay (only an
  untolerated NoExecute taint or a mismatch evicts it);
- creates the missing pods (slow-start batches, required node affinity
  `metadata.name In [node]` so the scheduler binds them, `controller-revision-hash` and
  `pod-template-generation` labels), deletes surplus, misplaced, succeeded and failed pods
  (failed ones with a per-node exponential back-off, 1 s doubling to 15 min);
- rolls out a new template with RollingUpdate (maxUnavailable, or maxSurge: the new pod
  first, the old one once the new is available) or leaves it to the user with OnDelete;
- writes the status counts and observedGeneration.

Expectations keep a sync from acting twice on the same shortfall, as in the ReplicaSet
controller.
"""
from __future__ import annotations

import asyncio
import logging
import time

from shim.client.api import CONTROLLER_REVISIONS, DAEMON_SETS, NODES, PODS, ApiError, Client
from shim.client.events import EventRecorder
from shim.client.informer import Informer, key_of
from shim.client.workqueue import WorkQueue
from shim.controllers.deployment import compute_hash, scaled_value
from shim.controllers.replicaset import (
    PodIndex, can_adopt, clone, controller_of, controller_ref, controllers_selecting, create_owned_pod,
    is_pod_available, is_pod_ready, parse_time, resolve_controller, selector_of)
from shim.scheduler.types import RequiredNodeAffinity, untolerated_taint

log = logging.getLogger("shim.controllers.daemonset")

KIND = "DaemonSet"
API_VERSION = "apps/v1"
HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"
BURST_REPLICAS = 250
SLOW_START_INITIAL_BATCH = 1
STATUS_UPDATE_RETRIES = 1
EXPECTATIONS_TIMEOUT = 300.0
BACKOFF_INITIAL, BACKOFF_MAX = 1.0, 15 * 60.0

# what every daemon pod tolerates, on top of its template's tolerations
DAEMON_TOLERATIONS = [
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
]
NETWORK_UNAVAILABLE = ("node.kubernetes.io/network-unavailable", "NoSchedule")


# -- pure helpers ----------------------------------------------------------------------------------

def add_daemon_tolerations(spec: dict) -> None:
    """The tolerations the controller gives every daemon pod: an existing one with the same key,
    operator, value and effect is replaced (losing tolerationSeconds), else one is appended."""
    wanted = list(DAEMON_TOLERATIONS)
    if spec.get("hostNetwork"):
        wanted.append(NETWORK_UNAVAILABLE)
    tolerations = list(spec.get("tolerations") or ())
    for key, effect in wanted:
        new = {"key": key, "operator": "Exists", "effect": effect}
        out, replaced = [], False
        for t in tolerations:
            if (t.get("key") or "") == key and (t.get("operator") or "") == "Exists" \
                    and (t.get("value") or "") == "" and (t.get("effect") or "") == effect:
                out.append(new)
                replaced = True
            else:
                out.append(t)
        if not replaced:
            out.append(new)
        tolerations = out
    spec["tolerations"] = tolerations


def daemon_tolerations(ds: dict) -> list[dict]:
    spec = {"tolerations": clone(_template_spec(ds).get("tolerations") or []),
            "hostNetwork": _template_spec(ds).get("hostNetwork")}
    add_daemon_tolerations(spec)
    return spec["tolerations"]


def _template_spec(ds: dict) -> dict:
    return (((ds.get("spec") or {}).get("template") or {}).get("spec")) or {}


def required_node_affinity(ds: dict) -> RequiredNodeAffinity:
    spec = _template_spec(ds)
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    return RequiredNodeAffinity(spec.get("nodeSelector"), required)


def node_should_run(node: dict, ds: dict, tolerations=None, affinity=None) -> tuple[bool, bool]:
    """(should run, should continue running): upstream's NodeShouldRunDaemonPod."""
    name = node["metadata"]["name"]
    template_node = _template_spec(ds).get("nodeName")
    if template_node and template_node != name:
        return False, False
    tolerations = daemon_tolerations(ds) if tolerations is None else tolerations
    affinity = required_node_affinity(ds) if affinity is None else affinity
    if not affinity.matches(node["metadata"].get("labels") or {}, name):
        return False, False
    taints = (node.get("spec") or {}).get("taints") or ()
    if untolerated_taint(taints, tolerations) is not None:
        return False, untolerated_taint(taints, tolerations, ("NoExecute",)) is None
    return True, True


def template_generation(ds: dict) -> int | None:
    value = (ds["metadata"].get("annotations") or {}).get(TEMPLATE_GENERATION)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def is_pod_updated(pod: dict, hash_: str, generation: int | None) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return bool(hash_) and labels.get(HASH_LABEL) == hash_ or \
        generation is not None and labels.get(GENERATION_LABEL) == str(generation)


def target_node(pod: dict) -> str | None:
    """The node a daemon pod is for: spec.nodeName, else its metadata.name node affinity."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution")) or {}
    for term in required.get("nodeSelectorTerms") or ():
        for exp in term.get("matchFields") or ():
            if exp.get("key") == "metadata.name" and exp.get("operator") == "In":
                values = exp.get("values") or []
                return values[0] if len(values) == 1 else None
    return None


def with_node_affinity(affinity: dict | None, node: str) -> dict:
    """The pod's affinity with its required node affinity replaced by metadata.name In [node]
    (other affinity kept, as upstream's ReplaceDaemonSetPodNodeNameNodeAffinity)."""
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
    affinity = clone(affinity or {})
    na = affinity.setdefault("nodeAffinity", {})
    req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
    if req is None:
        na["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [term]}
    else:
        req["nodeSelectorTerms"] = [term]
    return affinity


def _creation_key(pod: dict):
    """Scheduled pods first, then the oldest, then by name (podByCreationTimestampAndPhase)."""
    return (not (pod.get("spec") or {}).get("nodeName"),
            parse_time(pod["metadata"].get("creationTimestamp")) or 0.0, pod["metadata"].get("name", ""))


def _sorted_keys(x):
    if isinstance(x, dict):
        return {k: _sorted_keys(x[k]) for k in sorted(x)}
    if isinstance(x, list):
        return [_sorted_keys(v) for v in x]
    return x


def revision_patch(ds: dict) -> dict:
    """What a ControllerRevision of this template holds: a patch replacing spec.template
    (keys in the order Go's encoder writes a map's, so kubectl's byte comparison agrees)."""
    template = clone((ds.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return _sorted_keys({"spec": {"template": template}})


def is_terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def surge_count(ds: dict, n: int) -> int:
    us = (ds.get("spec") or {}).get("updateStrategy") or {}
    if us.get("type") != "RollingUpdate" or not us.get("rollingUpdate"):
        return 0
    return scaled_value(us["rollingUpdate"].get("maxSurge"), n, True)


def unavailable_count(ds: dict, n: int) -> int:
    us = (ds.get("spec") or {}).get("updateStrategy") or {}
    if us.get("type") != "RollingUpdate" or not us.get("rollingUpdate"):
        return 0
    return scaled_value(us["rollingUpdate"].get("maxUnavailable"), n, True)


def allows_surge(ds: dict) -> bool:
    try:
        return surge_count(ds, 1) > 0
    except ValueError:
        return False


class _Expectations:
    """Creations and deletions (counts) a DaemonSet's last sync is waiting to observe."""

    def __init__(self, timeout: float = EXPECTATIONS_TIMEOUT):
        self.timeout = timeout
        self._by_key: dict[str, list] = {}

    def satisfied(self, key: str) -> bool:
        exp = self._by_key.get(key)
        return exp is None or (exp[0] <= 0 and exp[1] <= 0) or time.monotonic() - exp[2] > self.timeout

    def set(self, key: str, adds: int, dels: int) -> None:
        self._by_key[key] = [adds, dels, time.monotonic()]

    def lower(self, key: str, adds: int = 0, dels: int = 0) -> None:
        exp = self._by_key.get(key)
        if exp is not None:
            exp[0] -= adds
            exp[1] -= dels

    def delete(self, key: str) -> None:
        self._by_key.pop(key, None)


class _Backoff:
    """Per-key exponential back-off (client-go's flowcontrol.Backoff)."""

    def __init__(self, initial: float = BACKOFF_INITIAL, maximum: float = BACKOFF_MAX):
        self.initial, self.maximum = initial, maximum
        self._entries: dict[str, list] = {}  # key -> [delay, last update]

    def in_backoff_since_update(self, key: str, now: float) -> bool:
        e = self._entries.get(key)
        return e is not None and now - e[1] < e[0]

    def get(self, key: str) -> float:
        e = self._entries.get(key)
        return e[0] if e else 0.0

    def next(self, key: str, now: float) -> None:
        e = self._entries.get(key)
        if e is None or now - e[1] > 2 * self.maximum:
            self._entries[key] = [self.initial, now]
        else:
            e[0] = min(e[0] * 2, self.maximum)
            e[1] = now

    def gc(self, now: float) -> None:
        for k in [k for k, e in self._entries.items() if now - e[1] > 2 * self.maximum]:
            del self._entries[k]


class DaemonSetController:
    def __init__(self, client: Client, workers: int = 2, *, pod_informer: Informer | None = None,
                 node_informer: Informer | None = None):
        self.client = client
        self.workers = workers
        self.burst_replicas = BURST_REPLICAS
        self.ds_informer = Informer(client, DAEMON_SETS)
        self.history_informer = Informer(client, CONTROLLER_REVISIONS)
        self.pod_informer = pod_informer or Informer(client, PODS)
        self.node_informer = node_informer or Informer(client, NODES)
        self.pods = PodIndex()
        self.queue = WorkQueue()
        self.node_queue = WorkQueue()
        self.expectations = _Expectations()
        self.failed_backoff = _Backoff()
        self.events = EventRecorder(client, "daemonset-controller", senders=2)
        self.ds_informer.add_handlers(self._on_ds_add, self._on_ds_update, self._on_ds_delete)
        self.history_informer.add_handlers(self._on_history_add, self._on_history_update,
                                           self._on_history_delete)
        self.pod_informer.add_handlers(self._on_pod_add, self._on_pod_update, self._on_pod_delete)
        self.node_informer.add_handlers(self._on_node_add, self._on_node_update, self._on_node_delete)

    async def run(self) -> None:
        informers = (self.ds_informer, self.history_informer, self.pod_informer, self.node_informer)
        for inf in informers:
            inf.start()
        try:
            await asyncio.gather(*(inf.wait_synced() for inf in informers))
            self.events.start()
            await asyncio.gather(*(self.queue.run_worker(self.sync, self._sync_failed)
                                   for _ in range(self.workers)),
                                 self.node_queue.run_worker(self._sync_node, self._node_sync_failed),
                                 self._backoff_gc())
        finally:
            self.queue.shutdown()
            self.node_queue.shutdown()
            for inf in informers:
                await inf.stop()
            await self.events.stop()

    async def _backoff_gc(self) -> None:
        while True:
            await asyncio.sleep(60)
            self.failed_backoff.gc(time.monotonic())

    # -- handlers ------------------------------------------------------------------------------------
    def _on_ds_add(self, ds: dict) -> None:
        self.queue.add(key_of(ds))

    def _on_ds_update(self, old: dict, ds: dict) -> None:
        if old["metadata"].get("uid") != ds["metadata"].get("uid"):
            self._on_ds_delete(old)
        self.queue.add(key_of(ds))

    def _on_ds_delete(self, ds: dict) -> None:
        self.expectations.delete(key_of(ds))
        self.queue.add(key_of(ds))

    def _resolve(self, ns: str, ref: dict | None) -> dict | None:
        return resolve_controller(self.ds_informer, KIND, ns, ref)

    def _selecting(self, obj: dict) -> list[dict]:
        """DaemonSets in obj's namespace whose selector matches its labels (for orphans)."""
        return controllers_selecting(self.ds_informer, obj)

    def _on_history_add(self, cr: dict) -> None:
        if cr["metadata"].get("deletionTimestamp"):
            self._on_history_delete(cr)
            return
        ref = controller_of(cr)
        if ref is not None:
            ds = self._resolve(cr["metadata"]["namespace"], ref)
            if ds is not None:
                self.queue.add(key_of(ds))
            return
        for ds in self._selecting(cr):
            self.queue.add(key_of(ds))

    def _on_history_update(self, old: dict, cr: dict) -> None:
        if old["metadata"].get("resourceVersion") == cr["metadata"].get("resourceVersion"):
            return
        old_ref, cur_ref = controller_of(old), controller_of(cr)
        if old_ref != cur_ref and old_ref is not None:
            ds = self._resolve(old["metadata"]["namespace"], old_ref)
            if ds is not None:
                self.queue.add(key_of(ds))
        if cur_ref is not None:
            ds = self._resolve(cr["metadata"]["namespace"], cur_ref)
            if ds is not None:
                self.queue.add(key_of(ds))
            return
        if old["metadata"].get("labels") != cr["metadata"].get("labels") or old_ref != cur_ref:
            for ds in self._selecting(cr):
                self.queue.add(key_of(ds))

    def _on_history_delete(self, cr: dict) -> None:
        ds = self._resolve(cr["metadata"]["namespace"], controller_of(cr))
        if ds is not None:
            self.queue.add(key_of(ds))

    def _on_pod_add(self, pod: dict) -> None:
        self.pods.add(pod)
        if pod["metadata"].get("deletionTimestamp"):
            self._pod_gone(pod)
            return
        ref = controller_of(pod)
        if ref is not None:
            ds = self._resolve(pod["metadata"]["namespace"], ref)
            if ds is not None:
                self.expectations.lower(key_of(ds), adds=1)
                self.queue.add(key_of(ds))
            return
        for ds in self._selecting(pod):
            self.queue.add(key_of(ds))

    def _on_pod_update(self, old: dict, pod: dict) -> None:
        self.pods.remove(old)
        self.pods.add(pod)
        if old["metadata"].get("resourceVersion") == pod["metadata"].get("resourceVersion"):
            return
        if pod["metadata"].get("deletionTimestamp"):
            self._pod_gone(pod)
            return
        ns = pod["metadata"]["namespace"]
        cur_ref, old_ref = controller_of(pod), controller_of(old)
        ref_changed = cur_ref != old_ref
        if ref_changed and old_ref is not None:
            ds = self._resolve(ns, old_ref)
            if ds is not None:
                self.queue.add(key_of(ds))
        if cur_ref is not None:
            ds = self._resolve(ns, cur_ref)
            if ds is None:
                return
            self.queue.add(key_of(ds))
            mrs = (ds.get("spec") or {}).get("minReadySeconds") or 0
            if mrs > 0 and not is_pod_ready(old) and is_pod_ready(pod):
                self.queue.add_after(key_of(ds), mrs + 1)
            return
        if old["metadata"].get("labels") != pod["metadata"].get("labels") or ref_changed:
            for ds in self._selecting(pod):
                self.queue.add(key_of(ds))

    def _on_pod_delete(self, pod: dict) -> None:
        self.pods.remove(pod)
        self._pod_gone(pod)

    def _pod_gone(self, pod: dict) -> None:
        ds = self._resolve(pod["metadata"]["namespace"], controller_of(pod))
        if ds is None:
            return
        self.expectations.lower(key_of(ds), dels=1)
        self.queue.add(key_of(ds))

    def _on_node_add(self, node: dict) -> None:
        self.node_queue.add(node["metadata"]["name"])

    def _on_node_update(self, old: dict, node: dict) -> None:
        if (old["metadata"].get("labels") == node["metadata"].get("labels")
                and (old.get("spec") or {}).get("taints") == (node.get("spec") or {}).get("taints")):
            return
        self.node_queue.add(node["metadata"]["name"])

    def _on_node_delete(self, node: dict) -> None:
        # Upstream leaves this to the pod garbage collector deleting the node's pods; there
        # is none here, so the DaemonSets with a pod for the node recount at once.
        name = node["metadata"]["name"]
        for ds in self.ds_informer.list():
            if any(target_node(p) == name for p in self.pods.owned_by(ds["metadata"]["uid"])):
                self.queue.add(key_of(ds))

    # -- node updates: which DaemonSets does this node's change concern? --------------------------
    def _node_sync_failed(self, name: str, e: Exception) -> None:
        log.info("daemon sets for node %s: %s", name, e)
        self.node_queue.add_rate_limited(name)

    async def _sync_node(self, name: str) -> None:
        node = self.node_informer.get(name)
        if node is None:
            return
        for ds in self.ds_informer.list():
            should_run, should_continue = node_should_run(node, ds)
            scheduled = any(target_node(p) == name for p in self.pods.owned_by(ds["metadata"]["uid"]))
            if ((should_run and not scheduled) or (not should_continue and scheduled)
                    or (scheduled and ((ds.get("status") or {}).get("numberMisscheduled") or 0) > 0)):
                self.queue.add(key_of(ds))

    # -- the sync ------------------------------------------------------------------------------------
    def _sync_failed(self, key: str, e: Exception) -> None:
        log.info("syncing daemon set %s: %s", key, e)
        self.queue.add_rate_limited(key)

    async def sync(self, key: str) -> None:
        ds = self.ds_informer.get(key)
        if ds is None:
            self.expectations.delete(key)
            return
        sel = (ds.get("spec") or {}).get("selector")
        if sel == {} or (isinstance(sel, dict) and not sel.get("matchLabels") and not sel.get("matchExpressions")):
            self.events.event(ds, "Warning", "SelectingAll",
                              "This daemon set is selecting all pods. A non-empty selector is required.")
            return
        if selector_of(ds) is None or ds["metadata"].get("deletionTimestamp"):
            return
        nodes = self.node_informer.list()
        cur, old = await self._construct_history(ds)
        hash_ = (cur["metadata"].get("labels") or {}).get(HASH_LABEL, "")
        if not self.expectations.satisfied(key):
            await self._update_status(ds, nodes, hash_, False)
            return
        err = None
        try:
            await self._manage(ds, nodes, hash_)
            if self.expectations.satisfied(key):
                us = (ds.get("spec") or {}).get("updateStrategy") or {}
                if us.get("type") == "RollingUpdate":
                    await self._rolling_update(ds, nodes, hash_)
            await self._cleanup_history(ds, old)
        except Exception as e:  # noqa: BLE001 - the status is written either way
            err = e
        try:
            await self._update_status(ds, nodes, hash_, True)
        except ApiError as e:
            if err is None:
                raise
            log.info("updating the status of daemon set %s: %s", key, e)
        if err is not None:
            raise err

    # -- pods per node ---------------------------------------------------------------------------------
    async def _daemon_pods(self, ds: dict) -> list[dict]:
        """The DaemonSet's pods: owned ones still matching, plus matching orphans adopted
        (owned ones that stopped matching are released)."""
        md = ds["metadata"]
        candidates = self.pods.owned_or_orphaned(md["namespace"], md["uid"])
        return await self._claim(ds, candidates, PODS)

    async def _nodes_to_pods(self, ds: dict, include_deleted_terminal: bool = False) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for pod in await self._daemon_pods(ds):
            if not include_deleted_terminal and is_terminal(pod) and pod["metadata"].get("deletionTimestamp"):
                continue
            node = target_node(pod)
            if node is None:
                continue
            out.setdefault(node, []).append(pod)
        return out

    async def _claim(self, ds: dict, objs: list[dict], res) -> list[dict]:
        md = ds["metadata"]
        selector = selector_of(ds)
        claimed, errors = [], []
        can_adopt = None
        for obj in objs:
            omd = obj["metadata"]
            labels = omd.get("labels") or {}
            ref = controller_of(obj)
            if ref is not None:
                if ref.get("uid") != md["uid"]:
                    continue
                if selector.matches(labels):
                    claimed.append(obj)
                elif not md.get("deletionTimestamp"):
                    try:
                        await self._patch_owner(res, obj, {"$patch": "delete", "uid": md["uid"]})
                    except ApiError as e:
                        if e.code not in (404, 422):
                            errors.append(e)
                continue
            if md.get("deletionTimestamp") or omd.get("deletionTimestamp") or not selector.matches(labels):
                continue
            if can_adopt is None:
                can_adopt = await self._can_adopt(ds)
            if not can_adopt:
                continue
            try:
                await self._patch_owner(res, obj, controller_ref(ds, API_VERSION, KIND))
                claimed.append(obj)
            except ApiError as e:
                if e.code != 404:
                    errors.append(e)
        if errors:
            raise errors[0]
        return claimed

    async def _patch_owner(self, res, obj: dict, ref: dict) -> None:
        omd = obj["metadata"]
        await self.client.patch(res, omd["name"], {"metadata": {"uid": omd["uid"], "ownerReferences": [ref]}},
                                omd["namespace"], type="strategic")

    async def _can_adopt(self, ds: dict) -> bool:
        return await can_adopt(self.client, DAEMON_SETS, ds)

    def _pods_should_be_on_node(self, node: dict, node_pods: dict, ds: dict, hash_: str, tolerations,
                                affinity) -> tuple[list[str], list[str]]:
        name = node["metadata"]["name"]
        should_run, should_continue = node_should_run(node, ds, tolerations, affinity)
        pods = node_pods.get(name)
        need, delete = [], []
        if should_run and not pods:
            need.append(name)
        elif should_continue:
            running = []
            for pod in pods or ():
                pmd = pod["metadata"]
                if pmd.get("deletionTimestamp"):
                    continue
                phase = (pod.get("status") or {}).get("phase")
                if phase == "Failed":
                    key = f"{ds['metadata']['uid']}/{(ds.get('status') or {}).get('observedGeneration', 0)}/{name}"
                    now = time.monotonic()
                    if self.failed_backoff.in_backoff_since_update(key, now):
                        self.queue.add_after(key_of(ds), self.failed_backoff.get(key))
                        continue
                    self.failed_backoff.next(key, now)
                    self.events.event(ds, "Warning", "FailedDaemonPod",
                                      f"Found failed daemon pod {pmd['namespace']}/{pmd['name']} on node "
                                      f"{name}, will try to kill it")
                    delete.append(pmd["name"])
                elif phase == "Succeeded":
                    self.events.event(ds, "Normal", "SucceededDaemonPod",
                                      f"Found succeeded daemon pod {pmd['namespace']}/{pmd['name']} on node "
                                      f"{name}, will try to delete it")
                    delete.append(pmd["name"])
                else:
                    running.append(pod)
            running.sort(key=_creation_key)
            if not allows_surge(ds):
                delete += [p["metadata"]["name"] for p in running[1:]]
            elif len(running) <= 1:
                if not running and should_run:
                    need.append(name)
            else:
                oldest_new = oldest_old = None
                for pod in running:
                    if (pod["metadata"].get("labels") or {}).get(HASH_LABEL) == hash_:
                        if oldest_new is None:
                            oldest_new = pod
                            continue
                    elif oldest_old is None:
                        oldest_old = pod
                        continue
                    delete.append(pod["metadata"]["name"])
                if oldest_new is not None and oldest_old is not None:
                    mrs = (ds.get("spec") or {}).get("minReadySeconds") or 0
                    if not is_pod_ready(oldest_old) or is_pod_available(oldest_new, mrs, time.time()):
                        delete.append(oldest_old["metadata"]["name"])
        elif pods:
            delete += [p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")]
        return need, delete

    async def _manage(self, ds: dict, nodes: list[dict], hash_: str) -> None:
        node_pods = await self._nodes_to_pods(ds)
        tolerations, affinity = daemon_tolerations(ds), required_node_affinity(ds)
        need, delete = [], []
        for node in nodes:
            n, d = self._pods_should_be_on_node(node, node_pods, ds, hash_, tolerations, affinity)
            need += n
            delete += d
        # pods for nodes that no longer exist and that nobody scheduled
        known = {n["metadata"]["name"] for n in nodes}
        for name, pods in node_pods.items():
            if name not in known:
                delete += [p["metadata"]["name"] for p in pods if not (p.get("spec") or {}).get("nodeName")]
        await self._sync_nodes(ds, delete, need, hash_)

    async def _sync_nodes(self, ds: dict, delete: list[str], need: list[str], hash_: str) -> None:
        key = key_of(ds)
        ns = ds["metadata"]["namespace"]
        creates, deletes = min(len(need), self.burst_replicas), min(len(delete), self.burst_replicas)
        self.expectations.set(key, creates, deletes)
        errors: list[Exception] = []
        template = self._pod_template(ds, hash_)
        pos, batch = 0, min(creates, SLOW_START_INITIAL_BATCH)
        while pos < creates:
            results = await asyncio.gather(*(self._create_pod(ds, template, need[i])
                                             for i in range(pos, pos + batch)), return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            for f in failed:
                if not isinstance(f, ApiError):
                    raise f
                self.expectations.lower(key, adds=1)
            errors += failed
            pos += batch
            skipped = creates - pos
            if failed and skipped > 0:
                self.expectations.lower(key, adds=skipped)
                break
            batch = min(2 * batch, creates - pos)
        results = await asyncio.gather(*(self._delete_pod(ds, ns, name) for name in delete[:deletes]))
        errors += [e for e in results if e is not None]
        if errors:
            raise errors[0]

    def _pod_template(self, ds: dict, hash_: str) -> dict:
        tmpl = clone((ds.get("spec") or {}).get("template") or {})
        spec = tmpl.setdefault("spec", {})
        add_daemon_tolerations(spec)
        md = tmpl.setdefault("metadata", {})
        labels = md.setdefault("labels", {})
        generation = template_generation(ds)
        if generation is not None:
            labels[GENERATION_LABEL] = str(generation)
        if hash_:
            labels[HASH_LABEL] = hash_
        return tmpl

    async def _create_pod(self, ds: dict, template: dict, node: str) -> None:
        tmd = template.get("metadata") or {}
        name = ds["metadata"]["name"]
        md: dict = {"generateName": f"{name}-" if len(name) < 253 else name,
                    "namespace": ds["metadata"]["namespace"],
                    "ownerReferences": [controller_ref(ds, API_VERSION, KIND)]}
        for field in ("labels", "annotations", "finalizers"):
            if tmd.get(field):
                md[field] = clone(tmd[field])
        spec = clone(template.get("spec") or {})
        spec["affinity"] = with_node_affinity(spec.get("affinity"), node)
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec}
        await create_owned_pod(self.client, self.events, ds, pod)

    async def _delete_pod(self, ds: dict, ns: str, name: str) -> ApiError | None:
        try:
            await self.client.delete(PODS, name, ns)
        except ApiError as e:
            self.expectations.lower(key_of(ds), dels=1)
            if e.code == 404:
                return None
            self.events.event(ds, "Warning", "FailedDelete", f"Error deleting: {e.message}")
            return e
        self.events.event(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        return None

    # -- rolling update --------------------------------------------------------------------------------
    @staticmethod
    def _updated_pods_on_node(ds: dict, pods: list[dict], hash_: str):
        """(new pod, old pod, ok): not ok when the node has more than one of either."""
        new = old = None
        generation = template_generation(ds)
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            if is_pod_updated(pod, hash_, generation):
                if new is not None:
                    return None, None, False
                new = pod
            else:
                if old is not None:
                    return None, None, False
                old = pod
        return new, old, True

    async def _rolling_update(self, ds: dict, nodes: list[dict], hash_: str) -> None:
        node_pods = await self._nodes_to_pods(ds)
        tolerations, affinity = daemon_tolerations(ds), required_node_affinity(ds)
        desired = 0
        by_name = {n["metadata"]["name"]: n for n in nodes}
        for node in nodes:
            if node_should_run(node, ds, tolerations, affinity)[0]:
                desired += 1
                node_pods.setdefault(node["metadata"]["name"], [])
        max_unavailable = unavailable_count(ds, desired)
        max_surge = surge_count(ds, desired)
        if desired > 0 and max_unavailable == 0 and max_surge == 0:
            max_unavailable = 1
        mrs = (ds.get("spec") or {}).get("minReadySeconds") or 0
        now = time.time()

        def available(p):
            return is_pod_available(p, mrs, now)

        if max_surge == 0:
            unavailable, allowed, candidates = 0, [], []
            for name, pods in node_pods.items():
                new, old, ok = self._updated_pods_on_node(ds, pods, hash_)
                if not ok:
                    unavailable += 1
                    continue
                if (old is None and new is None) or (old is not None and new is not None):
                    unavailable += 1
                elif new is not None:
                    if not available(new):
                        unavailable += 1
                elif not available(old):
                    allowed.append(old["metadata"]["name"])
                    unavailable += 1
                elif unavailable >= max_unavailable:
                    continue
                else:
                    candidates.append(old["metadata"]["name"])
            remaining = min(max(max_unavailable - unavailable, 0), len(candidates))
            await self._sync_nodes(ds, allowed + candidates[:remaining], [], hash_)
            return

        old_to_delete, should_not_run, candidate_nodes, allowed_nodes = [], [], [], []
        surge = available_count = 0
        for name, pods in node_pods.items():
            new, old, ok = self._updated_pods_on_node(ds, pods, hash_)
            if not ok:
                surge += 1
                continue
            if old is not None:
                available_count += available(old)
            elif new is not None:
                available_count += available(new)
            if old is None:
                continue
            if new is None:
                node = by_name.get(name)
                runs = node is not None and node_should_run(node, ds, tolerations, affinity)[0]
                if not available(old):
                    if not runs:
                        old_to_delete.append(old["metadata"]["name"])
                        continue
                    allowed_nodes.append(name)
                else:
                    if not runs:
                        should_not_run.append(old["metadata"]["name"])
                        continue
                    if surge >= max_surge:
                        continue
                    candidate_nodes.append(name)
            else:
                if not available(new):
                    surge += 1
                    continue
                old_to_delete.append(old["metadata"]["name"])
        deletable = available_count - desired
        if deletable > 0:
            old_to_delete += should_not_run[:deletable]
        remaining = min(max(max_surge - surge, 0), len(candidate_nodes))
        await self._sync_nodes(ds, old_to_delete, allowed_nodes + candidate_nodes[:remaining], hash_)

    # -- history ---------------------------------------------------------------------------------------
    async def _controlled_histories(self, ds: dict) -> list[dict]:
        ns = ds["metadata"]["namespace"]
        revisions = [cr for cr in self.history_informer.list() if cr["metadata"].get("namespace") == ns]
        return await self._claim(ds, revisions, CONTROLLER_REVISIONS)

    async def _construct_history(self, ds: dict) -> tuple[dict, list[dict]]:
        current, old = [], []
        patch = revision_patch(ds)
        for cr in await self._controlled_histories(ds):
            if HASH_LABEL not in (cr["metadata"].get("labels") or {}):
                cr = clone(cr)
                cr["metadata"].setdefault("labels", {})[HASH_LABEL] = cr["metadata"]["name"]
                cr = await self.client.update(CONTROLLER_REVISIONS, cr)
            (current if cr.get("data") == patch else old).append(cr)
        next_revision = max((cr.get("revision") or 0 for cr in old), default=0) + 1
        if not current:
            return await self._snapshot(ds, next_revision, patch), old
        cur = await self._dedup(ds, current)
        if (cur.get("revision") or 0) < next_revision:
            cur = clone(cur)
            cur["revision"] = next_revision
            cur = await self.client.update(CONTROLLER_REVISIONS, cur)
        return cur, old

    async def _dedup(self, ds: dict, current: list[dict]) -> dict:
        if len(current) == 1:
            return current[0]
        keep = None
        for cr in current:
            if keep is None or (cr.get("revision") or 0) >= (keep.get("revision") or 0):
                keep = cr
        keep_hash = (keep["metadata"].get("labels") or {}).get(HASH_LABEL)
        for pod in await self._daemon_pods(ds):
            if (pod["metadata"].get("labels") or {}).get(HASH_LABEL) != keep_hash:
                await self.client.patch(PODS, pod["metadata"]["name"],
                                        {"metadata": {"labels": {HASH_LABEL: keep_hash}}},
                                        pod["metadata"]["namespace"])
        for cr in current:
            if cr["metadata"]["name"] != keep["metadata"]["name"]:
                try:
                    await self.client.delete(CONTROLLER_REVISIONS, cr["metadata"]["name"], cr["metadata"]["namespace"])
                except ApiError as e:
                    if e.code != 404:
                        raise
        return keep

    async def _snapshot(self, ds: dict, revision: int, patch: dict) -> dict:
        md = ds["metadata"]
        collision = (ds.get("status") or {}).get("collisionCount")
        hash_ = compute_hash((ds.get("spec") or {}).get("template") or {}, collision)
        name = f"{md['name']}-{hash_}"
        labels = dict((((ds.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {})
        labels[HASH_LABEL] = hash_
        cr = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
              "metadata": {"name": name, "namespace": md["namespace"], "labels": labels,
                           "ownerReferences": [controller_ref(ds, API_VERSION, KIND)]},
              "data": patch, "revision": revision}
        if md.get("annotations"):
            cr["metadata"]["annotations"] = dict(md["annotations"])
        try:
            return await self.client.create(CONTROLLER_REVISIONS, cr, md["namespace"])
        except ApiError as e:
            if e.code != 409:
                raise
            existing = await self.client.get(CONTROLLER_REVISIONS, name, md["namespace"])
            if existing.get("data") == patch:
                return existing
            fresh = await self.client.get(DAEMON_SETS, md["name"], md["namespace"])
            fresh_collision = (fresh.get("status") or {}).get("collisionCount")
            if fresh_collision != collision:
                raise ApiError(409, {"message": f"found a stale collision count ({collision}, expected "
                                                f"{fresh_collision}) of DaemonSet {md['name']!r} while "
                                                "processing; will retry until it is updated"}) from e
            fresh.setdefault("status", {})["collisionCount"] = (fresh_collision or 0) + 1
            await self.client.update(DAEMON_SETS, fresh, subresource="status")
            log.info("hash collision for daemon set %s/%s: collisionCount now %d", md["namespace"], md["name"],
                     fresh["status"]["collisionCount"])
            raise

    async def _cleanup_history(self, ds: dict, old: list[dict]) -> None:
        limit = (ds.get("spec") or {}).get("revisionHistoryLimit")
        limit = 10 if limit is None else limit
        to_kill = len(old) - limit
        if to_kill <= 0:
            return
        live = set()
        for pods in (await self._nodes_to_pods(ds, True)).values():
            for pod in pods:
                h = (pod["metadata"].get("labels") or {}).get(HASH_LABEL)
                if h:
                    live.add(h)
        for cr in sorted(old, key=lambda c: c.get("revision") or 0):
            if to_kill <= 0:
                break
            if (cr["metadata"].get("labels") or {}).get(HASH_LABEL) in live:
                continue
            try:
                await self.client.delete(CONTROLLER_REVISIONS, cr["metadata"]["name"], cr["metadata"]["namespace"])
            except ApiError as e:
                if e.code != 404:
                    raise
            to_kill -= 1

    # -- status ----------------------------------------------------------------------------------------
    async def _update_status(self, ds: dict, nodes: list[dict], hash_: str, observed: bool) -> None:
        node_pods = await self._nodes_to_pods(ds)
        tolerations, affinity = daemon_tolerations(ds), required_node_affinity(ds)
        mrs = (ds.get("spec") or {}).get("minReadySeconds") or 0
        now = time.time()
        generation = template_generation(ds)
        desired = current = misscheduled = ready = updated = available = 0
        for node in nodes:
            should_run, _ = node_should_run(node, ds, tolerations, affinity)
            pods = node_pods.get(node["metadata"]["name"])
            if should_run:
                desired += 1
                if not pods:
                    continue
                current += 1
                pod = sorted(pods, key=_creation_key)[0]
                if is_pod_ready(pod):
                    ready += 1
                    if is_pod_available(pod, mrs, now):
                        available += 1
                if is_pod_updated(pod, hash_, generation):
                    updated += 1
            elif pods:
                misscheduled += 1
        counts = {"desiredNumberScheduled": desired, "currentNumberScheduled": current,
                  "numberMisscheduled": misscheduled, "numberReady": ready,
                  "updatedNumberScheduled": updated, "numberAvailable": available,
                  "numberUnavailable": desired - available}
        st = ds.get("status") or {}
        gen = ds["metadata"].get("generation", 0)
        if all((st.get(k) or 0) == v for k, v in counts.items()) and (st.get("observedGeneration") or 0) >= gen:
            pass
        else:
            obj = clone(ds)
            for attempt in range(STATUS_UPDATE_RETRIES + 1):
                status = obj.setdefault("status", {})
                if observed:
                    status["observedGeneration"] = gen
                status.update(counts)
                for f in ("observedGeneration", "updatedNumberScheduled", "numberAvailable", "numberUnavailable"):
                    if not status.get(f):
                        status.pop(f, None)  # omitempty upstream
                try:
                    await self.client.update(DAEMON_SETS, obj, subresource="status")
                    break
                except ApiError as e:
                    if attempt >= STATUS_UPDATE_RETRIES or e.code == 404:
                        raise
                obj = await self.client.get(DAEMON_SETS, ds["metadata"]["name"], ds["metadata"]["namespace"])
        if mrs > 0 and ready != available:
            self.queue.add_after(key_of(ds), mrs)


__all__ = ["DaemonSetController", "node_should_run", "add_daemon_tolerations", "target_node",
           "revision_patch"]
