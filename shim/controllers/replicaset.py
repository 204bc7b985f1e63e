"""The ReplicaSet controller: keep `spec.replicas` pods matching each ReplicaSet's selector.

An API client like every controller here: informers on ReplicaSets and pods feed a work
queue keyed "namespace/name"; a sync claims the pods (adopting matching orphans, releasing
owned pods whose labels no longer match), creates or deletes pods to reach the wanted count
and writes the status (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
terminatingReplicas, observedGeneration and the ReplicaFailure condition).

Expectations keep a sync from acting twice on the same shortfall: before creating N pods
(or deleting some) the controller records what it expects to see through the pod informer,
and it only manages replicas again once those creations and deletions have been observed
(or a timeout passed). Creates go out in slow-start batches (1, 2, 4, ...), so a namespace
out of quota costs one failed request rather than hundreds.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import math
import time

import orjson

from shim.api.selectors import SelectorError, label_selector_from_object, selector_from_set
from shim.client.api import PODS, REPLICA_SETS, ApiError, Client
from shim.client.events import EventRecorder
from shim.client.informer import Informer, key_of
from shim.client.workqueue import WorkQueue

log = logging.getLogger("shim.controllers.replicaset")

BURST_REPLICAS = 500
SLOW_START_INITIAL_BATCH = 1
EXPECTATIONS_TIMEOUT = 300.0
STATUS_UPDATE_RETRIES = 1
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


# -- small helpers shared with the deployment controller --------------------------------------

def clone(obj):
    return orjson.loads(orjson.dumps(obj))


def controller_of(obj: dict) -> dict | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def controller_ref(owner: dict, api_version: str, kind: str) -> dict:
    md = owner["metadata"]
    return {"apiVersion": api_version, "kind": kind, "name": md["name"], "uid": md["uid"],
            "controller": True, "blockOwnerDeletion": True}


def parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def now_rfc3339() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ready_condition(pod: dict) -> dict | None:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c
    return None


def is_pod_ready(pod: dict) -> bool:
    c = ready_condition(pod)
    return c is not None and c.get("status") == "True"


def is_pod_available(pod: dict, min_ready_seconds: int, now: float) -> bool:
    if not is_pod_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    since = parse_time(ready_condition(pod).get("lastTransitionTime"))
    return since is not None and since + min_ready_seconds <= now


def is_pod_active(pod: dict) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def is_pod_terminating(pod: dict) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and bool(pod["metadata"].get("deletionTimestamp"))


def has_namespace_terminating_cause(e: ApiError) -> bool:
    causes = ((e.status or {}).get("details") or {}).get("causes") or ()
    return any(c.get("reason") == "NamespaceTerminating" for c in causes)


def selector_of(obj: dict):
    """The object's label selector, or None when it is invalid (it then selects nothing)."""
    try:
        return label_selector_from_object((obj.get("spec") or {}).get("selector"))
    except SelectorError:
        return None


def resolve_controller(informer: Informer, kind: str, namespace: str, ref: dict | None) -> dict | None:
    """The object a controller reference points at, if it is of `kind` and still the same one."""
    if ref is None or ref.get("kind") != kind:
        return None
    obj = informer.get(f"{namespace}/{ref.get('name')}")
    if obj is None or obj["metadata"].get("uid") != ref.get("uid"):
        return None
    return obj


def controllers_selecting(informer: Informer, obj: dict) -> list[dict]:
    """The informer's objects in obj's namespace whose non-empty selector matches obj's labels
    (who could adopt an orphan)."""
    labels = obj["metadata"].get("labels") or {}
    if not labels:
        return []
    ns = obj["metadata"]["namespace"]
    out = []
    for owner in informer.list():
        if owner["metadata"].get("namespace") != ns:
            continue
        sel = selector_of(owner)
        if sel is not None and not sel.empty and sel.matches(labels):
            out.append(owner)
    return out


async def can_adopt(client: Client, res, owner: dict) -> bool:
    """A fresh read of the owner (not the cache): adopt only for an owner that still exists as
    the same object and is not being deleted (upstream's RecheckDeletionTimestamp)."""
    md = owner["metadata"]
    try:
        fresh = await client.get(res, md["name"], md["namespace"])
    except ApiError as e:
        if e.code == 404:
            return False
        raise
    return fresh["metadata"].get("uid") == md["uid"] and not fresh["metadata"].get("deletionTimestamp")


async def create_owned_pod(client: Client, events: EventRecorder, owner: dict, pod: dict) -> dict | None:
    """Create a controller's pod, recording upstream's SuccessfulCreate/FailedCreate events on
    the owner. None when the namespace is terminating (every create would fail; it is going
    away anyway); other failures are raised after the event."""
    try:
        created = await client.create(PODS, pod, owner["metadata"]["namespace"])
    except ApiError as e:
        if has_namespace_terminating_cause(e):
            return None
        events.event(owner, "Warning", "FailedCreate", f"Error creating: {e.message}")
        raise
    events.event(owner, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
    return created


class PodIndex:
    """Pods by namespace and by controller uid: what both workload controllers look up."""

    def __init__(self):
        self.by_namespace: dict[str, dict[str, dict]] = {}
        self.by_owner: dict[str, dict[str, dict]] = {}

    def add(self, pod: dict) -> None:
        key = key_of(pod)
        self.by_namespace.setdefault(pod["metadata"]["namespace"], {})[key] = pod
        ref = controller_of(pod)
        if ref is not None:
            self.by_owner.setdefault(ref.get("uid"), {})[key] = pod

    def remove(self, pod: dict) -> None:
        key = key_of(pod)
        ns = self.by_namespace.get(pod["metadata"]["namespace"])
        if ns is not None:
            ns.pop(key, None)
            if not ns:
                del self.by_namespace[pod["metadata"]["namespace"]]
        ref = controller_of(pod)
        if ref is not None:
            owned = self.by_owner.get(ref.get("uid"))
            if owned is not None:
                owned.pop(key, None)
                if not owned:
                    del self.by_owner[ref.get("uid")]

    def in_namespace(self, ns: str) -> list[dict]:
        return list((self.by_namespace.get(ns) or {}).values())

    def owned_by(self, uid: str) -> list[dict]:
        return list((self.by_owner.get(uid) or {}).values())

    def owned_or_orphaned(self, ns: str, uid: str) -> list[dict]:
        """Pods controlled by `uid`, plus the namespace's pods without a controller."""
        out = self.owned_by(uid)
        for pod in (self.by_namespace.get(ns) or {}).values():
            if controller_of(pod) is None:
                out.append(pod)
        return out


class Expectations:
    """Per-controller-key creations and deletions the controller is waiting to observe."""

    def __init__(self, timeout: float = EXPECTATIONS_TIMEOUT):
        self.timeout = timeout
        self._by_key: dict[str, list] = {}  # key -> [pending adds, set of pod keys to delete, since]

    def satisfied(self, key: str) -> bool:
        exp = self._by_key.get(key)
        if exp is None:
            return True
        adds, dels, since = exp
        return (adds <= 0 and not dels) or time.monotonic() - since > self.timeout

    def expect_creations(self, key: str, n: int) -> None:
        self._by_key[key] = [n, set(), time.monotonic()]

    def expect_deletions(self, key: str, pod_keys) -> None:
        self._by_key[key] = [0, set(pod_keys), time.monotonic()]

    def creation_observed(self, key: str) -> None:
        exp = self._by_key.get(key)
        if exp is not None:
            exp[0] -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        exp = self._by_key.get(key)
        if exp is not None:
            exp[1].discard(pod_key)

    def delete(self, key: str) -> None:
        self._by_key.pop(key, None)


class ReplicaSetController:
    kind = "ReplicaSet"
    api_version = "apps/v1"

    def __init__(self, client: Client, workers: int = 5, burst_replicas: int = BURST_REPLICAS, *,
                 rs_informer: Informer | None = None, pod_informer: Informer | None = None):
        self.client = client
        self.workers = workers
        self.burst_replicas = burst_replicas
        self.rs_informer = rs_informer or Informer(client, REPLICA_SETS)
        self.pod_informer = pod_informer or Informer(client, PODS)
        self.pods = PodIndex()
        self.queue = WorkQueue()
        self.expectations = Expectations()
        self.events = EventRecorder(client, "replicaset-controller", senders=2)
        self.rs_informer.add_handlers(self._on_rs_add, self._on_rs_update, self._on_rs_delete)
        self.pod_informer.add_handlers(self._on_pod_add, self._on_pod_update, self._on_pod_delete)

    async def run(self) -> None:
        self.rs_informer.start()
        self.pod_informer.start()
        try:
            await asyncio.gather(self.rs_informer.wait_synced(), self.pod_informer.wait_synced())
            self.events.start()
            await asyncio.gather(*(self._worker() for _ in range(self.workers)))
        finally:
            self.queue.shutdown()
            await self.rs_informer.stop()
            await self.pod_informer.stop()
            await self.events.stop()

    # -- informer handlers --------------------------------------------------------------------
    def _on_rs_add(self, rs: dict) -> None:
        self.queue.add(key_of(rs))

    def _on_rs_update(self, old: dict, rs: dict) -> None:
        self.queue.add(key_of(rs))

    def _on_rs_delete(self, rs: dict) -> None:
        self.expectations.delete(key_of(rs))
        self.queue.add(key_of(rs))

    def _resolve(self, ns: str, ref: dict | None) -> dict | None:
        return resolve_controller(self.rs_informer, self.kind, ns, ref)

    def _selecting(self, pod: dict) -> list[dict]:
        """ReplicaSets in the pod's namespace whose selector matches it (for orphans)."""
        return controllers_selecting(self.rs_informer, pod)

    def _on_pod_add(self, pod: dict) -> None:
        self.pods.add(pod)
        if pod["metadata"].get("deletionTimestamp"):
            self._pod_gone(pod)
            return
        ref = controller_of(pod)
        if ref is not None:
            rs = self._resolve(pod["metadata"]["namespace"], ref)
            if rs is not None:
                key = key_of(rs)
                self.expectations.creation_observed(key)
                self.queue.add(key)
            return
        for rs in self._selecting(pod):
            self.queue.add(key_of(rs))

    def _on_pod_update(self, old: dict, pod: dict) -> None:
        self.pods.remove(old)
        self.pods.add(pod)
        if old["metadata"].get("resourceVersion") == pod["metadata"].get("resourceVersion"):
            return
        label_changed = old["metadata"].get("labels") != pod["metadata"].get("labels")
        if pod["metadata"].get("deletionTimestamp"):
            self._pod_gone(pod)
            if label_changed:
                self._pod_gone(old)
            return
        ns = pod["metadata"]["namespace"]
        cur_ref, old_ref = controller_of(pod), controller_of(old)
        ref_changed = cur_ref != old_ref
        if ref_changed and old_ref is not None:
            rs = self._resolve(ns, old_ref)
            if rs is not None:
                self.queue.add(key_of(rs))
        if cur_ref is not None:
            rs = self._resolve(ns, cur_ref)
            if rs is None:
                return
            self.queue.add(key_of(rs))
            mrs = (rs.get("spec") or {}).get("minReadySeconds") or 0
            if mrs > 0 and not is_pod_ready(old) and is_pod_ready(pod):
                self.queue.add_after(key_of(rs), mrs)
            return
        if label_changed or ref_changed:
            for rs in self._selecting(pod):
                self.queue.add(key_of(rs))

    def _on_pod_delete(self, pod: dict) -> None:
        self.pods.remove(pod)
        self._pod_gone(pod)

    def _pod_gone(self, pod: dict) -> None:
        rs = self._resolve(pod["metadata"]["namespace"], controller_of(pod))
        if rs is None:
            return
        key = key_of(rs)
        self.expectations.deletion_observed(key, key_of(pod))
        self.queue.add(key)

    # -- the work loop --------------------------------------------------------------------------
    async def _worker(self) -> None:
        await self.queue.run_worker(self.sync, self._sync_failed)

    def _sync_failed(self, key: str, e: Exception) -> None:
        log.info("syncing replica set %s: %s", key, e)
        self.queue.add_rate_limited(key)

    async def sync(self, key: str) -> None:
        rs = self.rs_informer.get(key)
        if rs is None:
            self.expectations.delete(key)
            return
        md = rs["metadata"]
        ns = md["namespace"]
        needs_sync = self.expectations.satisfied(key)
        selector = selector_of(rs)
        if selector is None:
            log.info("replica set %s has an invalid selector", key)
            return
        candidates = self.pods.owned_or_orphaned(ns, md["uid"])
        active = await self._claim_pods(rs, selector, [p for p in candidates if is_pod_active(p)])
        terminating = [p for p in candidates if is_pod_terminating(p)
                       and (controller_of(p) or {}).get("uid") == md["uid"]
                       and selector.matches(p["metadata"].get("labels") or {})]

        manage_error: ApiError | Exception | None = None
        if needs_sync and not md.get("deletionTimestamp"):
            try:
                await self._manage_replicas(key, rs, active)
            except ApiError as e:
                manage_error = e
        now = time.time()
        status = self._calculate_status(rs, active, terminating, manage_error, now)
        updated = await self._update_status(rs, status)
        if manage_error is not None:
            raise manage_error
        spec = updated.get("spec") or {}
        st = updated.get("status") or {}
        mrs = spec.get("minReadySeconds") or 0
        if mrs > 0 and st.get("readyReplicas", 0) != st.get("availableReplicas", 0):
            self.queue.add_after(key, _next_availability_check(active, mrs, now))

    # -- claiming: adopt matching orphans, release owned pods that no longer match -------------
    async def _claim_pods(self, rs: dict, selector, pods: list[dict]) -> list[dict]:
        md = rs["metadata"]
        claimed: list[dict] = []
        errors: list[Exception] = []
        can_adopt: bool | None = None
        for pod in pods:
            labels = pod["metadata"].get("labels") or {}
            ref = controller_of(pod)
            if ref is not None:
                if ref.get("uid") != md["uid"]:
                    continue
                if selector.matches(labels):
                    claimed.append(pod)
                elif not md.get("deletionTimestamp"):
                    try:
                        await self._release(rs, pod)
                    except ApiError as e:
                        errors.append(e)
                continue
            if md.get("deletionTimestamp") or not selector.matches(labels) or selector.empty:
                continue
            if pod["metadata"].get("deletionTimestamp"):
                continue
            if can_adopt is None:
                can_adopt = await self._can_adopt(rs)
            if not can_adopt:
                continue
            try:
                await self._adopt(rs, pod)
                claimed.append(pod)
            except ApiError as e:
                if e.code != 404:
                    errors.append(e)
        if errors:
            raise errors[0]
        return claimed

    async def _can_adopt(self, rs: dict) -> bool:
        return await can_adopt(self.client, REPLICA_SETS, rs)

    async def _adopt(self, rs: dict, pod: dict) -> None:
        patch = {"metadata": {"uid": pod["metadata"]["uid"], "ownerReferences": [
            controller_ref(rs, self.api_version, self.kind)]}}
        await self.client.patch(PODS, pod["metadata"]["name"], patch, pod["metadata"]["namespace"],
                                type="strategic")

    async def _release(self, rs: dict, pod: dict) -> None:
        patch = {"metadata": {"uid": pod["metadata"]["uid"], "ownerReferences": [
            {"$patch": "delete", "uid": rs["metadata"]["uid"]}]}}
        try:
            await self.client.patch(PODS, pod["metadata"]["name"], patch, pod["metadata"]["namespace"],
                                    type="strategic")
        except ApiError as e:
            # gone, or no longer the pod we saw (the uid no longer matches): nothing to release
            if e.code not in (404, 422):
                raise

    # -- creating and deleting pods ----------------------------------------------------------------
    async def _manage_replicas(self, key: str, rs: dict, active: list[dict]) -> None:
        want = (rs.get("spec") or {}).get("replicas")
        want = 1 if want is None else want
        diff = len(active) - want
        if diff < 0:
            n = min(-diff, self.burst_replicas)
            self.expectations.expect_creations(key, n)
            done, err = await self._slow_start(n, lambda: self._create_pod(rs))
            for _ in range(n - done):  # never attempted or failed: the informer will not see them
                self.expectations.creation_observed(key)
            if err is not None:
                raise err
        elif diff > 0:
            n = min(diff, self.burst_replicas)
            victims = self._pods_to_delete(rs, active, n)
            self.expectations.expect_deletions(key, [key_of(p) for p in victims])
            results = await asyncio.gather(*(self._delete_pod(key, rs, p) for p in victims))
            errs = [e for e in results if e is not None]
            if errs:
                raise errs[0]

    async def _slow_start(self, count: int, fn) -> tuple[int, ApiError | None]:
        """Call fn `count` times in batches of 1, 2, 4, ...; stop after a batch with a failure."""
        remaining, successes = count, 0
        batch = min(remaining, SLOW_START_INITIAL_BATCH)
        while batch > 0:
            results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            for f in failures:
                if not isinstance(f, ApiError):
                    raise f
            successes += batch - len(failures)
            if failures:
                return successes, failures[0]
            remaining -= batch
            batch = min(2 * batch, remaining)
        return successes, None

    def _pod_from_template(self, rs: dict) -> dict:
        tmpl = (rs.get("spec") or {}).get("template") or {}
        tmd = tmpl.get("metadata") or {}
        name = rs["metadata"]["name"]
        prefix = f"{name}-" if len(name) < 253 else name
        md: dict = {"generateName": prefix, "namespace": rs["metadata"]["namespace"],
                    "ownerReferences": [controller_ref(rs, self.api_version, self.kind)]}
        for field in ("labels", "annotations", "finalizers"):
            if tmd.get(field):
                md[field] = clone(tmd[field])
        return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": clone(tmpl.get("spec") or {})}

    async def _create_pod(self, rs: dict) -> None:
        pod = self._pod_from_template(rs)
        if not pod["metadata"].get("labels"):
            raise ApiError(422, {"message": "unable to create pods, no labels"})
        await create_owned_pod(self.client, self.events, rs, pod)

    async def _delete_pod(self, key: str, rs: dict, pod: dict) -> ApiError | None:
        name = pod["metadata"]["name"]
        try:
            await self.client.delete(PODS, name, pod["metadata"]["namespace"])
        except ApiError as e:
            self.expectations.deletion_observed(key, key_of(pod))
            if e.code == 404:
                return None
            self.events.event(rs, "Warning", "FailedDelete", f"Error deleting: {e.message}")
            return e
        self.events.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        return None

    def _pods_to_delete(self, rs: dict, active: list[dict], n: int) -> list[dict]:
        if n >= len(active):
            return active[:n]
        related = self._related_pods(rs)
        on_node: dict[str, int] = {}
        for p in related:
            if is_pod_active(p):
                node = (p.get("spec") or {}).get("nodeName") or ""
                on_node[node] = on_node.get(node, 0) + 1
        now = time.time()
        ranked = [(p, on_node.get((p.get("spec") or {}).get("nodeName") or "", 0)) for p in active]
        ranked.sort(key=functools.cmp_to_key(lambda a, b: _compare_for_deletion(a, b, now)))
        return [p for p, _ in ranked[:n]]

    def _related_pods(self, rs: dict) -> list[dict]:
        """Pods of every ReplicaSet sharing this one's controller (siblings of a Deployment)."""
        ns = rs["metadata"]["namespace"]
        ref = controller_of(rs)
        siblings = [rs]
        if ref is not None:
            siblings = [o for o in self.rs_informer.list() if o["metadata"].get("namespace") == ns
                        and (controller_of(o) or {}).get("uid") == ref.get("uid")] or [rs]
        seen: dict[str, dict] = {}
        pods = self.pods.in_namespace(ns)
        for sib in siblings:
            sel = selector_of(sib)
            if sel is None:
                continue
            for p in pods:
                if sel.matches(p["metadata"].get("labels") or {}):
                    seen.setdefault(p["metadata"].get("uid"), p)
        return list(seen.values())

    # -- status --------------------------------------------------------------------------------------
    def _calculate_status(self, rs: dict, active: list[dict], terminating: list[dict],
                          manage_error: Exception | None, now: float) -> dict:
        spec = rs.get("spec") or {}
        status = clone(rs.get("status") or {})
        tmpl_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        template_selector = selector_from_set(tmpl_labels)
        mrs = spec.get("minReadySeconds") or 0
        fully = ready = available = 0
        for pod in active:
            if template_selector.matches(pod["metadata"].get("labels") or {}):
                fully += 1
            if is_pod_ready(pod):
                ready += 1
                if is_pod_available(pod, mrs, now):
                    available += 1
        conditions = [c for c in status.get("conditions") or () if c.get("type") != "ReplicaFailure"]
        failure = next((c for c in status.get("conditions") or () if c.get("type") == "ReplicaFailure"), None)
        if manage_error is not None and failure is None:
            want = spec.get("replicas", 1)
            diff = len(active) - want
            reason = "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""
            message = manage_error.message if isinstance(manage_error, ApiError) else str(manage_error)
            conditions.append({"type": "ReplicaFailure", "status": "True", "lastTransitionTime": now_rfc3339(),
                               "reason": reason, "message": message})
        elif manage_error is not None:
            conditions = status.get("conditions")
        if conditions:
            status["conditions"] = conditions
        else:
            status.pop("conditions", None)
        status["replicas"] = len(active)
        status["fullyLabeledReplicas"] = fully
        status["readyReplicas"] = ready
        status["availableReplicas"] = available
        status["terminatingReplicas"] = len(terminating)
        for f in ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"):
            if not status[f]:
                del status[f]  # zero counts are left out, as upstream serialises them
        return status

    async def _update_status(self, rs: dict, status: dict) -> dict:
        cur = rs.get("status") or {}
        generation = rs["metadata"].get("generation", 0)
        same = all(cur.get(f, 0) == status.get(f, 0) for f in
                   ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas"))
        if (same and cur.get("terminatingReplicas") == status.get("terminatingReplicas")
                and cur.get("observedGeneration", 0) == generation
                and (cur.get("conditions") or None) == (status.get("conditions") or None)):
            return rs
        status["observedGeneration"] = generation  # the generation this sync acted on
        obj = clone(rs)
        for attempt in range(STATUS_UPDATE_RETRIES + 1):
            obj["status"] = status
            try:
                return await self.client.update(REPLICA_SETS, obj, subresource="status")
            except ApiError as e:
                if attempt >= STATUS_UPDATE_RETRIES or e.code == 404:
                    raise
            obj = await self.client.get(REPLICA_SETS, rs["metadata"]["name"], rs["metadata"]["namespace"])
        return rs


def _next_availability_check(pods: list[dict], min_ready_seconds: int, now: float) -> float:
    """Seconds until the earliest ready-but-not-yet-available pod becomes available."""
    best = None
    for pod in pods:
        if not is_pod_ready(pod) or is_pod_available(pod, min_ready_seconds, now):
            continue
        since = parse_time(ready_condition(pod).get("lastTransitionTime"))
        if since is None:
            continue
        wait = since + min_ready_seconds - time.time()
        if best is None or wait < best:
            best = wait
    if best is None:
        return float(min_ready_seconds)
    return max(best, 0.0) + 0.05


def _compare_for_deletion(a: tuple[dict, int], b: tuple[dict, int], now: float) -> int:
    """Negative when pod a should go before pod b: the earlier a pod is in its life (unscheduled,
    pending, not ready, cheap to delete, doubled up on a node, recently ready, crash-looping,
    young), the sooner it goes."""
    pa, ra = a
    pb, rb = b
    na, nb = (pa.get("spec") or {}).get("nodeName") or "", (pb.get("spec") or {}).get("nodeName") or ""
    if na != nb and (not na or not nb):
        return -1 if not na else 1
    oa = PHASE_ORDINAL.get((pa.get("status") or {}).get("phase"), 0)
    ob = PHASE_ORDINAL.get((pb.get("status") or {}).get("phase"), 0)
    if oa != ob:
        return -1 if oa < ob else 1
    ya, yb = is_pod_ready(pa), is_pod_ready(pb)
    if ya != yb:
        return -1 if not ya else 1
    ca, cb = _deletion_cost(pa), _deletion_cost(pb)
    if ca != cb:
        return -1 if ca < cb else 1
    if ra != rb:
        return -1 if ra > rb else 1
    if ya and yb:
        ta = parse_time(ready_condition(pa).get("lastTransitionTime"))
        tb = parse_time(ready_condition(pb).get("lastTransitionTime"))
        if ta != tb:
            c = _newer_first(ta, tb, now, pa, pb)
            if c:
                return c
    xa, xb = _max_restarts(pa), _max_restarts(pb)
    if xa != xb:
        return -1 if xa > xb else 1
    ta = parse_time(pa["metadata"].get("creationTimestamp"))
    tb = parse_time(pb["metadata"].get("creationTimestamp"))
    if ta != tb:
        return _newer_first(ta, tb, now, pa, pb)
    return 0


def _newer_first(ta: float | None, tb: float | None, now: float, pa: dict, pb: dict) -> int:
    """Later (or unknown) times first, compared on a log2 scale of their age as upstream does,
    so pods of about the same age count as equal and fall back to a stable uid order."""
    if ta is None or tb is None:
        return -1 if ta is None else 1
    da, db = (now - ta) * 1e9, (now - tb) * 1e9
    rank_a = int(math.log2(da)) if da > 0 else -1
    rank_b = int(math.log2(db)) if db > 0 else -1
    if rank_a == rank_b:
        ua, ub = pa["metadata"].get("uid", ""), pb["metadata"].get("uid", "")
        return -1 if ua < ub else (1 if ua > ub else 0)
    return -1 if rank_a < rank_b else 1


def _deletion_cost(pod: dict) -> int:
    value = ((pod["metadata"].get("annotations") or {}).get(DELETION_COST_ANNOTATION))
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def _max_restarts(pod: dict) -> tuple[int, int]:
    st = pod.get("status") or {}
    regular = max((c.get("restartCount", 0) for c in st.get("containerStatuses") or ()), default=0)
    sidecars = {c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or ()
                if c.get("restartPolicy") == "Always"}
    side = max((c.get("restartCount", 0) for c in st.get("initContainerStatuses") or ()
                if c.get("name") in sidecars), default=0)
    return regular, side
