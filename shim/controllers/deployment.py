"""The Deployment controller: roll a Deployment's pod template out through ReplicaSets.

Each Deployment owns ReplicaSets named `<deployment>-<pod-template-hash>`; the one whose
template equals the Deployment's (ignoring the hash label) is the *new* ReplicaSet, the rest
are *old*. A sync, as upstream:

- claims ReplicaSets (adopting matching orphans, releasing owned ones that stopped matching);
- when paused, or when only the replica count changed (a "scaling event"), scales the
  ReplicaSets proportionally to their size and stops there;
- otherwise rolls out by the strategy: RollingUpdate scales the new ReplicaSet up within
  maxSurge and the old ones down while at least `replicas - maxUnavailable` pods stay
  available; Recreate scales the old ones to zero, waits for their pods to go, then scales
  the new one up;
- keeps revisions (`deployment.kubernetes.io/revision` on the Deployment and each
  ReplicaSet, so `kubectl rollout history/undo` work), trims old ReplicaSets beyond
  revisionHistoryLimit, and writes status with the Available and Progressing conditions
  that `kubectl rollout status` reads.

The pod-template-hash: upstream hashes a Go-syntax dump of the template struct (fnv32a),
which cannot be reproduced exactly without Go's type layout; we hash the template's
canonical JSON with the same fnv32a, collisionCount bytes and SafeEncodeString alphabet, so
names look alike and are stable, but differ from upstream's for the same template.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time

import orjson

from shim.client.api import DEPLOYMENTS, PODS, REPLICA_SETS, ApiError, Client
from shim.client.events import EventRecorder
from shim.client.informer import Informer, key_of
from shim.client.workqueue import WorkQueue
from shim.controllers.replicaset import (PodIndex, can_adopt, clone, controller_of, controller_ref,
                                         controllers_selecting, has_namespace_terminating_cause,
                                         now_rfc3339, parse_time, resolve_controller, selector_of)

log = logging.getLogger("shim.controllers.deployment")

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
NOT_COPIED = {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO}
MAX_REVISION_HISTORY_CHARS = 2000
MAX_INT32 = 2 ** 31 - 1
MAX_RETRIES = 15
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

# Progressing condition reasons (and the Available ones), as upstream names them
REPLICA_SET_UPDATED = "ReplicaSetUpdated"
FAILED_RS_CREATE = "ReplicaSetCreateError"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"


# -- the pod-template-hash -------------------------------------------------------------------

def compute_hash(template: dict, collision_count: int | None) -> str:
    data = orjson.dumps(_semantic(template), option=orjson.OPT_SORT_KEYS)
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    if collision_count is not None:
        for b in (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + b"\0\0\0\0":
            h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return safe_encode(str(h))


def safe_encode(s: str) -> str:
    """Map every byte onto an alphabet without vowels (no words) or look-alike characters."""
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in s.encode())


def _semantic(x):
    """A form where what Go's semantic equality treats as the same is the same: no nulls,
    no empty lists or maps (nil and empty compare equal), but empty structs kept."""
    if isinstance(x, dict):
        out = {}
        for k, v in x.items():
            if v is None or (isinstance(v, list) and not v):
                continue
            v = _semantic(v)
            if isinstance(v, dict) and not v and k in ("labels", "annotations", "nodeSelector",
                                                       "limits", "requests", "claims"):
                continue
            out[k] = v
        return out
    if isinstance(x, list):
        return [_semantic(v) for v in x]
    return x


def template_without_hash(template: dict | None) -> dict:
    t = clone(template or {})
    md = t.setdefault("metadata", {})
    labels = dict(md.get("labels") or {})
    labels.pop(HASH_LABEL, None)
    md["labels"] = labels
    md.pop("creationTimestamp", None)
    return _semantic(t)


def equal_ignore_hash(t1: dict | None, t2: dict | None) -> bool:
    return template_without_hash(t1) == template_without_hash(t2)


# -- arithmetic of a rollout --------------------------------------------------------------------

def replicas_of(obj: dict) -> int:
    r = (obj.get("spec") or {}).get("replicas")
    return 1 if r is None else r


def status_of(obj: dict | None, field: str) -> int:
    if obj is None:
        return 0
    return (obj.get("status") or {}).get(field) or 0


def scaled_value(value, total: int, round_up: bool) -> int:
    """An int-or-percent against `total` (percentages rounded up or down)."""
    if value is None:
        value = 0
    if isinstance(value, int):
        return value
    s = str(value)
    if not s.endswith("%"):
        raise ValueError("invalid value for IntOrString: invalid type: string is not a percentage")
    pct = int(s[:-1])
    x = pct * total / 100
    return math.ceil(x) if round_up else math.floor(x)


def is_rolling_update(d: dict) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def resolve_fenceposts(d: dict) -> tuple[int, int]:
    ru = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    desired = replicas_of(d)
    surge = scaled_value(ru.get("maxSurge"), desired, True)
    unavailable = scaled_value(ru.get("maxUnavailable"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # or a rollout could never make progress
    return surge, unavailable


def max_surge(d: dict) -> int:
    return resolve_fenceposts(d)[0] if is_rolling_update(d) else 0


def max_unavailable(d: dict) -> int:
    if not is_rolling_update(d) or replicas_of(d) == 0:
        return 0
    return min(resolve_fenceposts(d)[1], replicas_of(d))


def round_half_away(x: float) -> int:
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def revision_of(rs: dict) -> int:
    v = (rs["metadata"].get("annotations") or {}).get(REVISION)
    if v is None:
        return 0
    return int(v)


def _safe_revision(rs: dict) -> int:
    try:
        return revision_of(rs)
    except ValueError:
        return 0


def _created_key(rs: dict):
    return (parse_time(rs["metadata"].get("creationTimestamp")) or 0.0, rs["metadata"]["name"])


def by_creation(rss: list[dict]) -> list[dict]:
    return sorted(rss, key=_created_key)


def active_rss(rss) -> list[dict]:
    return [rs for rs in rss if rs is not None and replicas_of(rs) > 0]


def sum_spec(rss) -> int:
    return sum(replicas_of(rs) for rs in rss if rs is not None)


def sum_status(rss, field: str) -> int:
    return sum(status_of(rs, field) for rs in rss if rs is not None)


def _annotation_int(rs: dict, key: str) -> int | None:
    v = (rs["metadata"].get("annotations") or {}).get(key)
    if v is None:
        return None
    try:
        n = int(v)
    except ValueError:
        return None
    return n if 0 <= n <= MAX_INT32 else None


def has_progress_deadline(d: dict) -> bool:
    p = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return p is not None and p != MAX_INT32


def get_condition(status: dict, ctype: str) -> dict | None:
    for c in status.get("conditions") or ():
        if c.get("type") == ctype:
            return c
    return None


def new_condition(ctype: str, status: str, reason: str, message: str) -> dict:
    now = now_rfc3339()
    return {"type": ctype, "status": status, "lastUpdateTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}


def set_condition(status: dict, cond: dict) -> None:
    """Replace the condition of that type, unless status and reason are already the same;
    the transition time stays when only the reason changes."""
    cur = get_condition(status, cond["type"])
    if cur is not None and cur.get("status") == cond["status"] and cur.get("reason") == cond["reason"]:
        return
    if cur is not None and cur.get("status") == cond["status"]:
        cond["lastTransitionTime"] = cur.get("lastTransitionTime")
    status["conditions"] = [c for c in status.get("conditions") or () if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: dict, ctype: str) -> None:
    conds = [c for c in status.get("conditions") or () if c.get("type") != ctype]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)


def deployment_complete(d: dict, status: dict) -> bool:
    want = replicas_of(d)
    return (status.get("updatedReplicas", 0) == want and status.get("replicas", 0) == want
            and status.get("availableReplicas", 0) == want
            and status.get("observedGeneration", 0) >= d["metadata"].get("generation", 0))


def deployment_progressing(d: dict, new: dict) -> bool:
    old = d.get("status") or {}
    g = lambda s, f: s.get(f) or 0  # noqa: E731
    return (g(new, "updatedReplicas") > g(old, "updatedReplicas")
            or g(new, "replicas") - g(new, "updatedReplicas") < g(old, "replicas") - g(old, "updatedReplicas")
            or g(new, "readyReplicas") > g(old, "readyReplicas")
            or g(new, "availableReplicas") > g(old, "availableReplicas"))


def deployment_timed_out(d: dict, status: dict) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    return since is not None and since + d["spec"]["progressDeadlineSeconds"] < time.time()


def _strip_zero(status: dict) -> dict:
    """Deployment status as upstream serialises it: zero counts are left out."""
    for f in ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas",
              "availableReplicas", "unavailableReplicas"):
        if not status.get(f):
            status.pop(f, None)
    if not status.get("conditions"):
        status.pop("conditions", None)
    if status.get("collisionCount") is None:
        status.pop("collisionCount", None)
    if status.get("terminatingReplicas") is None:
        status.pop("terminatingReplicas", None)
    return status


class DeploymentController:
    kind = "Deployment"
    api_version = "apps/v1"

    def __init__(self, client: Client, workers: int = 5, *, rs_informer: Informer | None = None,
                 pod_informer: Informer | None = None):
        self.client = client
        self.workers = workers
        self.d_informer = Informer(client, DEPLOYMENTS)
        self.rs_informer = rs_informer or Informer(client, REPLICA_SETS)
        self.pod_informer = pod_informer or Informer(client, PODS)
        self.pods = PodIndex()
        self.queue = WorkQueue()
        self.events = EventRecorder(client, "deployment-controller", senders=2)
        self.d_informer.add_handlers(self._enqueue, lambda old, d: self._enqueue(d), self._enqueue)
        self.rs_informer.add_handlers(self._on_rs_add, self._on_rs_update, self._on_rs_delete)
        self.pod_informer.add_handlers(self.pods.add, self._on_pod_update, self._on_pod_delete)

    async def run(self) -> None:
        informers = (self.d_informer, self.rs_informer, self.pod_informer)
        for inf in informers:
            inf.start()
        try:
            await asyncio.gather(*(inf.wait_synced() for inf in informers))
            self.events.start()
            await asyncio.gather(*(self._worker() for _ in range(self.workers)))
        finally:
            self.queue.shutdown()
            for inf in informers:
                await inf.stop()
            await self.events.stop()

    # -- informer handlers --------------------------------------------------------------------
    def _enqueue(self, d: dict) -> None:
        self.queue.add(key_of(d))

    def _resolve(self, ns: str, ref: dict | None) -> dict | None:
        return resolve_controller(self.d_informer, self.kind, ns, ref)

    def _selecting(self, rs: dict) -> list[dict]:
        """Deployments in the ReplicaSet's namespace whose selector matches it (for orphans)."""
        return controllers_selecting(self.d_informer, rs)

    def _on_rs_add(self, rs: dict) -> None:
        if rs["metadata"].get("deletionTimestamp"):
            self._on_rs_delete(rs)
            return
        ref = controller_of(rs)
        if ref is not None:
            d = self._resolve(rs["metadata"]["namespace"], ref)
            if d is not None:
                self._enqueue(d)
            return
        for d in self._selecting(rs):
            self._enqueue(d)

    def _on_rs_update(self, old: dict, rs: dict) -> None:
        if old["metadata"].get("resourceVersion") == rs["metadata"].get("resourceVersion"):
            return
        ns = rs["metadata"]["namespace"]
        cur_ref, old_ref = controller_of(rs), controller_of(old)
        if cur_ref != old_ref and old_ref is not None:
            d = self._resolve(ns, old_ref)
            if d is not None:
                self._enqueue(d)
        if cur_ref is not None:
            d = self._resolve(ns, cur_ref)
            if d is not None:
                self._enqueue(d)
            return
        if cur_ref != old_ref or old["metadata"].get("labels") != rs["metadata"].get("labels"):
            for d in self._selecting(rs):
                self._enqueue(d)

    def _on_rs_delete(self, rs: dict) -> None:
        d = self._resolve(rs["metadata"]["namespace"], controller_of(rs))
        if d is not None:
            self._enqueue(d)

    def _on_pod_update(self, old: dict, pod: dict) -> None:
        self.pods.remove(old)
        self.pods.add(pod)

    def _on_pod_delete(self, pod: dict) -> None:
        self.pods.remove(pod)
        # Recreate waits for old pods to be gone before it scales the new ReplicaSet up
        ref = controller_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        ns = pod["metadata"]["namespace"]
        rs = self.rs_informer.get(f"{ns}/{ref.get('name')}")
        if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
            return
        d = self._resolve(ns, controller_of(rs))
        if d is not None and not is_rolling_update(d):
            self._enqueue(d)

    # -- the work loop --------------------------------------------------------------------------
    async def _worker(self) -> None:
        await self.queue.run_worker(self.sync, self._sync_failed)

    def _sync_failed(self, key: str, e: Exception) -> None:
        if isinstance(e, ApiError) and has_namespace_terminating_cause(e):
            self.queue.forget(key)
        elif self.queue.num_requeues(key) < MAX_RETRIES:
            log.info("syncing deployment %s: %s", key, e)
            self.queue.add_rate_limited(key)
        else:
            log.warning("dropping deployment %s out of the queue: %s", key, e)
            self.queue.forget(key)

    async def sync(self, key: str) -> None:
        cached = self.d_informer.get(key)
        if cached is None:
            return
        d = clone(cached)
        sel = (d.get("spec") or {}).get("selector")
        if not sel or not (sel.get("matchLabels") or sel.get("matchExpressions")):
            self.events.event(d, "Warning", "SelectingAll",
                              "This deployment is selecting all pods. A non-empty selector is required.")
            st = d.setdefault("status", {})
            if st.get("observedGeneration", 0) < d["metadata"].get("generation", 0):
                st["observedGeneration"] = d["metadata"]["generation"]
                await self.client.update(DEPLOYMENTS, d, subresource="status")
            return
        run = _Sync(self, d)
        await run.go()


class _Sync:
    """One sync of one Deployment; `d` is our copy, refreshed whenever we write its status."""

    def __init__(self, ctl: DeploymentController, d: dict):
        self.ctl = ctl
        self.client = ctl.client
        self.events = ctl.events
        self.d = d

    @property
    def name(self) -> str:
        return self.d["metadata"]["name"]

    @property
    def ns(self) -> str:
        return self.d["metadata"]["namespace"]

    async def go(self) -> None:
        d = self.d
        rs_list = await self.claim_replica_sets()
        if d["metadata"].get("deletionTimestamp"):
            new_rs, old = await self.new_and_old(rs_list, create=False)
            await self.sync_status(old + [new_rs], new_rs)
            return
        await self.check_paused_conditions()
        if d["spec"].get("paused"):
            await self.sync_scale_only(rs_list)
            return
        if await self.is_scaling_event(rs_list):
            await self.sync_scale_only(rs_list)
            return
        if is_rolling_update(d):
            await self.rollout_rolling(rs_list)
        else:
            await self.rollout_recreate(rs_list)

    # -- status writes ----------------------------------------------------------------------------
    async def write_status(self) -> None:
        """PUT the Deployment through its status subresource (status and annotations)."""
        self.d["status"] = _strip_zero(self.d.get("status") or {})
        self.d = await self.client.update(DEPLOYMENTS, self.d, subresource="status")

    # -- owned ReplicaSets ---------------------------------------------------------------------------
    async def claim_replica_sets(self) -> list[dict]:
        d = self.d
        md = d["metadata"]
        selector = selector_of(d)
        if selector is None:
            raise ValueError(f"deployment {self.ns}/{self.name} has invalid label selector")
        claimed, errors = [], []
        can_adopt = None
        for rs in self.ctl.rs_informer.list():
            if rs["metadata"].get("namespace") != self.ns:
                continue
            labels = rs["metadata"].get("labels") or {}
            ref = controller_of(rs)
            if ref is not None:
                if ref.get("uid") != md["uid"]:
                    continue
                if selector.matches(labels):
                    claimed.append(rs)
                elif not md.get("deletionTimestamp"):
                    try:
                        await self._patch_rs_owner(rs, {"$patch": "delete", "uid": md["uid"]})
                    except ApiError as e:
                        if e.code not in (404, 422):
                            errors.append(e)
                continue
            if md.get("deletionTimestamp") or not selector.matches(labels) or rs["metadata"].get("deletionTimestamp"):
                continue
            if can_adopt is None:
                can_adopt = await self._can_adopt()
            if not can_adopt:
                continue
            try:
                adopted = await self._patch_rs_owner(rs, controller_ref(d, self.ctl.api_version, self.ctl.kind))
                claimed.append(adopted)
            except ApiError as e:
                if e.code != 404:
                    errors.append(e)
        if errors:
            raise errors[0]
        return claimed

    async def _can_adopt(self) -> bool:
        return await can_adopt(self.client, DEPLOYMENTS, self.d)

    async def _patch_rs_owner(self, rs: dict, ref: dict) -> dict:
        patch = {"metadata": {"uid": rs["metadata"]["uid"], "ownerReferences": [ref]}}
        return await self.client.patch(REPLICA_SETS, rs["metadata"]["name"], patch, self.ns, type="strategic")

    def pods_by_rs(self, rs_list: list[dict]) -> dict[str, list[dict]]:
        return {rs["metadata"]["uid"]: self.ctl.pods.owned_by(rs["metadata"]["uid"]) for rs in rs_list}

    # -- the new ReplicaSet ----------------------------------------------------------------------------
    def find_new(self, rs_list: list[dict]) -> dict | None:
        tmpl = self.d["spec"].get("template")
        for rs in by_creation(rs_list):
            if equal_ignore_hash((rs.get("spec") or {}).get("template"), tmpl):
                return rs
        return None

    async def new_and_old(self, rs_list: list[dict], create: bool) -> tuple[dict | None, list[dict]]:
        new_rs = self.find_new(rs_list)
        old = [rs for rs in rs_list if new_rs is None or rs["metadata"]["uid"] != new_rs["metadata"]["uid"]]
        new_rs = await self.get_new_rs(rs_list, old, create)
        if new_rs is not None:  # later steps of this sync work on what we just wrote
            uid = new_rs["metadata"]["uid"]
            rs_list[:] = [new_rs if rs["metadata"]["uid"] == uid else rs for rs in rs_list]
        return new_rs, old

    async def get_new_rs(self, rs_list: list[dict], old: list[dict], create: bool) -> dict | None:
        d = self.d
        existing = self.find_new(rs_list)
        new_revision = str(max((_safe_revision(rs) for rs in old), default=0) + 1)
        status = d.setdefault("status", {})
        if existing is not None:
            rs = clone(existing)
            changed = set_new_rs_annotations(d, rs, new_revision, exists=True)
            mrs = d["spec"].get("minReadySeconds") or 0
            if changed or ((rs["spec"].get("minReadySeconds") or 0) != mrs):
                rs["spec"]["minReadySeconds"] = mrs
                return await self.client.update(REPLICA_SETS, rs)
            needs = _set_revision(d, (rs["metadata"].get("annotations") or {}).get(REVISION, ""))
            if has_progress_deadline(d) and get_condition(status, "Progressing") is None:
                set_condition(status, new_condition("Progressing", "True", FOUND_NEW_RS,
                                                    f'Found new replica set "{rs["metadata"]["name"]}"'))
                needs = True
            if needs:
                await self.write_status()
            return rs
        if not create:
            return None

        collision = status.get("collisionCount")
        template = clone(d["spec"]["template"])
        h = compute_hash(template, collision)
        tmd = template.setdefault("metadata", {})
        tmd["labels"] = dict(tmd.get("labels") or {}, **{HASH_LABEL: h})
        selector = clone(d["spec"]["selector"])
        selector["matchLabels"] = dict(selector.get("matchLabels") or {}, **{HASH_LABEL: h})
        name = _rs_name(self.name, h)
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": name, "namespace": self.ns, "labels": dict(tmd["labels"]),
                           "ownerReferences": [controller_ref(d, self.ctl.api_version, self.ctl.kind)]},
              "spec": {"replicas": 0, "minReadySeconds": d["spec"].get("minReadySeconds") or 0,
                       "selector": selector, "template": template}}
        count = new_rs_new_replicas(d, old + [rs], rs)
        rs["spec"]["replicas"] = count
        set_new_rs_annotations(d, rs, new_revision, exists=False)
        already = False
        try:
            created = await self.client.create(REPLICA_SETS, rs, self.ns)
        except ApiError as e:
            if e.code == 409 and e.reason == "AlreadyExists":
                already = True
                found = self.ctl.rs_informer.get(f"{self.ns}/{name}")
                if found is None:
                    found = await self.client.get(REPLICA_SETS, name, self.ns)
                ref = controller_of(found)
                if ref is not None and ref.get("uid") == d["metadata"]["uid"] and \
                        equal_ignore_hash(d["spec"]["template"], found["spec"].get("template")):
                    created = found
                else:
                    # another object holds the name: change the hash and come back
                    status["collisionCount"] = (collision or 0) + 1
                    try:
                        await self.write_status()
                    except ApiError:
                        pass
                    raise
            elif has_namespace_terminating_cause(e):
                raise
            else:
                msg = f'Failed to create new replica set "{name}": {e.message}'
                if has_progress_deadline(d):
                    set_condition(status, new_condition("Progressing", "False", FAILED_RS_CREATE, msg))
                    try:
                        await self.write_status()
                    except ApiError:
                        pass
                self.events.event(self.d, "Warning", FAILED_RS_CREATE, msg)
                raise
        if not already and count > 0:
            self.events.event(self.d, "Normal", "ScalingReplicaSet",
                              f"Scaled up replica set {created['metadata']['name']} from 0 to {count}")
        needs = _set_revision(self.d, new_revision)
        if not already and has_progress_deadline(self.d):
            set_condition(self.d.setdefault("status", {}), new_condition(
                "Progressing", "True", NEW_RS_CREATED, f'Created new replica set "{created["metadata"]["name"]}"'))
            needs = True
        if needs:
            await self.write_status()
        return created

    # -- scaling ----------------------------------------------------------------------------------------
    async def scale_rs(self, rs: dict, new_scale: int, force: bool = False) -> tuple[bool, dict]:
        """Set a ReplicaSet's replicas (and the desired/max annotations); an event when it changed."""
        d = self.d
        old_scale = replicas_of(rs)
        if not force and old_scale == new_scale:
            return False, rs
        desired, maximum = replicas_of(d), replicas_of(d) + max_surge(d)
        ann = rs["metadata"].get("annotations") or {}
        annotations_stale = ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(maximum)
        if old_scale == new_scale and not annotations_stale:
            return False, rs
        copy = clone(rs)
        copy["spec"]["replicas"] = new_scale
        copy["metadata"].setdefault("annotations", {}).update(
            {DESIRED_REPLICAS: str(desired), MAX_REPLICAS: str(maximum)})
        updated = await self.client.update(REPLICA_SETS, copy)
        scaled = False
        if old_scale != new_scale:
            scaled = True
            direction = "up" if old_scale < new_scale else "down"
            self.events.event(d, "Normal", "ScalingReplicaSet",
                              f"Scaled {direction} replica set {updated['metadata']['name']} "
                              f"from {old_scale} to {new_scale}")
        return scaled, updated

    async def is_scaling_event(self, rs_list: list[dict]) -> bool:
        new_rs, old = await self.new_and_old(rs_list, create=False)
        for rs in active_rss(old + [new_rs]):
            desired = _annotation_int(rs, DESIRED_REPLICAS)
            if desired is not None and desired != replicas_of(self.d):
                return True
        return False

    async def sync_scale_only(self, rs_list: list[dict]) -> None:
        """Paused, or only the replica count changed: scale, and keep the status current."""
        new_rs, old = await self.new_and_old(rs_list, create=False)
        await self.scale(new_rs, old)
        if self.d["spec"].get("paused") and not (self.d["metadata"].get("annotations") or {}).get(ROLLBACK_TO):
            await self.cleanup(old)
        await self.sync_status(old + [new_rs], new_rs)

    async def scale(self, new_rs: dict | None, old: list[dict]) -> None:
        d = self.d
        want = replicas_of(d)
        latest = _active_or_latest(new_rs, old)
        if latest is not None:
            if replicas_of(latest) != want:
                await self.scale_rs(latest, want)
            return
        if _is_saturated(d, new_rs):
            for rs in active_rss(old):
                await self.scale_rs(rs, 0)
            return
        if not is_rolling_update(d):
            return
        all_rss = active_rss(old + [new_rs])
        allowed = want + max_surge(d) if want > 0 else 0
        to_add = allowed - sum_spec(all_rss)
        if to_add > 0:  # bigger first; among equals the newer first
            all_rss.sort(key=_created_key, reverse=True)
            all_rss.sort(key=replicas_of, reverse=True)
        elif to_add < 0:  # bigger first; among equals the older first
            all_rss.sort(key=_created_key)
            all_rss.sort(key=replicas_of, reverse=True)
        added = 0
        sizes = {}
        for rs in all_rss:
            if to_add != 0:
                p = _proportion(rs, d, to_add, added)
                sizes[rs["metadata"]["name"]] = replicas_of(rs) + p
                added += p
            else:
                sizes[rs["metadata"]["name"]] = replicas_of(rs)
        for i, rs in enumerate(all_rss):
            name = rs["metadata"]["name"]
            if i == 0 and to_add != 0:  # rounding leftovers go to the biggest
                sizes[name] = max(sizes[name] + to_add - added, 0)
            await self.scale_rs(rs, sizes[name], force=True)

    async def cleanup(self, old: list[dict]) -> None:
        """Delete the oldest fully scaled-down ReplicaSets beyond revisionHistoryLimit."""
        limit = self.d["spec"].get("revisionHistoryLimit")
        if limit is None or limit == MAX_INT32:
            return
        alive = [rs for rs in old if rs is not None and not rs["metadata"].get("deletionTimestamp")]
        diff = len(alive) - limit
        if diff <= 0:
            return
        alive.sort(key=lambda rs: (_safe_revision(rs),) + _created_key(rs))
        for rs in alive[:diff]:
            if status_of(rs, "replicas") != 0 or replicas_of(rs) != 0 or \
                    rs["metadata"].get("generation", 0) > status_of(rs, "observedGeneration"):
                continue
            try:
                await self.client.delete(REPLICA_SETS, rs["metadata"]["name"], self.ns)
            except ApiError as e:
                if e.code != 404:
                    raise

    # -- strategies --------------------------------------------------------------------------------------
    async def rollout_rolling(self, rs_list: list[dict]) -> None:
        d = self.d
        new_rs, old = await self.new_and_old(rs_list, create=True)
        all_rss = old + [new_rs]
        scaled, new_rs = await self.reconcile_new(all_rss, new_rs)
        all_rss = old + [new_rs]
        if scaled:
            await self.sync_rollout_status(all_rss, new_rs)
            return
        if await self.reconcile_old(all_rss, active_rss(old), new_rs):
            await self.sync_rollout_status(all_rss, new_rs)
            return
        if deployment_complete(d, self.d.get("status") or {}):
            await self.cleanup(old)
        await self.sync_rollout_status(all_rss, new_rs)

    async def reconcile_new(self, all_rss: list[dict], new_rs: dict) -> tuple[bool, dict]:
        want = replicas_of(self.d)
        have = replicas_of(new_rs)
        if have == want:
            return False, new_rs
        if have > want:
            return await self.scale_rs(new_rs, want)
        return await self.scale_rs(new_rs, new_rs_new_replicas(self.d, all_rss, new_rs))

    async def reconcile_old(self, all_rss: list[dict], old: list[dict], new_rs: dict) -> bool:
        d = self.d
        if sum_spec(old) == 0:
            return False
        min_available = replicas_of(d) - max_unavailable(d)
        new_unavailable = replicas_of(new_rs) - status_of(new_rs, "availableReplicas")
        max_scaled_down = sum_spec(all_rss) - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        try:
            old, cleaned = await self.cleanup_unhealthy(old, max_scaled_down)
            scaled = await self.scale_down_old(old + [new_rs], old)
        except ApiError:
            return False  # as upstream: try again on the next sync
        return cleaned + scaled > 0

    async def cleanup_unhealthy(self, old: list[dict], max_cleanup: int) -> tuple[list[dict], int]:
        """First scale down old ReplicaSets' unavailable pods: they serve nobody."""
        old = by_creation(old)
        total = 0
        for i, rs in enumerate(old):
            if total >= max_cleanup:
                break
            spec, available = replicas_of(rs), status_of(rs, "availableReplicas")
            if spec == 0 or spec == available:
                continue
            n = min(max_cleanup - total, spec - available)
            _, old[i] = await self.scale_rs(rs, spec - n)
            total += n
        return old, total

    async def scale_down_old(self, all_rss: list[dict], old: list[dict]) -> int:
        min_available = replicas_of(self.d) - max_unavailable(self.d)
        available = sum_status(all_rss, "availableReplicas")
        if available <= min_available:
            return 0
        budget = available - min_available
        total = 0
        for rs in by_creation(old):
            if total >= budget:
                break
            spec = replicas_of(rs)
            if spec == 0:
                continue
            n = min(spec, budget - total)
            await self.scale_rs(rs, spec - n)
            total += n
        return total

    async def rollout_recreate(self, rs_list: list[dict]) -> None:
        d = self.d
        new_rs, old = await self.new_and_old(rs_list, create=False)
        all_rss = old + [new_rs]
        scaled = False
        for rs in active_rss(old):
            changed, _ = await self.scale_rs(rs, 0)
            scaled = scaled or changed
        if scaled:
            await self.sync_rollout_status(all_rss, new_rs)
            return
        if self._old_pods_running(new_rs, old, self.pods_by_rs(rs_list)):
            await self.sync_rollout_status(all_rss, new_rs)
            return
        if new_rs is None:
            new_rs, old = await self.new_and_old(rs_list, create=True)
            all_rss = old + [new_rs]
        _, new_rs = await self.scale_rs(new_rs, replicas_of(d))
        all_rss = old + [new_rs]
        if deployment_complete(d, self.d.get("status") or {}):
            await self.cleanup(old)
        await self.sync_rollout_status(all_rss, new_rs)

    @staticmethod
    def _old_pods_running(new_rs: dict | None, old: list[dict], pods: dict[str, list[dict]]) -> bool:
        if sum_status(old, "replicas") > 0:
            return True
        new_uid = new_rs["metadata"]["uid"] if new_rs is not None else None
        for uid, plist in pods.items():
            if uid == new_uid:
                continue
            for pod in plist:
                if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                    return True
        return False

    # -- status and conditions -----------------------------------------------------------------------------
    async def check_paused_conditions(self) -> None:
        d = self.d
        if not has_progress_deadline(d):
            return
        status = d.setdefault("status", {})
        cond = get_condition(status, "Progressing")
        if cond is not None and cond.get("reason") == TIMED_OUT:
            return
        paused_cond = cond is not None and cond.get("reason") == PAUSED
        if d["spec"].get("paused") and not paused_cond:
            set_condition(status, new_condition("Progressing", "Unknown", PAUSED, "Deployment is paused"))
        elif not d["spec"].get("paused") and paused_cond:
            set_condition(status, new_condition("Progressing", "Unknown", RESUMED, "Deployment is resumed"))
        else:
            return
        await self.write_status()

    def calculate_status(self, all_rss: list, new_rs: dict | None) -> dict:
        d = self.d
        available = sum_status(all_rss, "availableReplicas")
        total = sum_spec(all_rss)
        status = {
            "observedGeneration": d["metadata"].get("generation", 0),
            "replicas": sum_status(all_rss, "replicas"),
            "updatedReplicas": sum_status([new_rs], "replicas"),
            "readyReplicas": sum_status(all_rss, "readyReplicas"),
            "availableReplicas": available,
            "unavailableReplicas": max(total - available, 0),
            "terminatingReplicas": _terminating(all_rss),
            "collisionCount": (d.get("status") or {}).get("collisionCount"),
            "conditions": clone((d.get("status") or {}).get("conditions") or []),
        }
        if available >= replicas_of(d) - max_unavailable(d):
            set_condition(status, new_condition("Available", "True", MIN_AVAILABLE,
                                                "Deployment has minimum availability."))
        else:
            set_condition(status, new_condition("Available", "False", MIN_UNAVAILABLE,
                                                "Deployment does not have minimum availability."))
        return status

    async def sync_status(self, all_rss: list, new_rs: dict | None) -> None:
        status = _strip_zero(self.calculate_status(all_rss, new_rs))
        if status == (self.d.get("status") or {}):
            return
        self.d["status"] = status
        await self.write_status()

    async def sync_rollout_status(self, all_rss: list, new_rs: dict | None) -> None:
        d = self.d
        status = self.calculate_status(all_rss, new_rs)
        if not has_progress_deadline(d):
            remove_condition(status, "Progressing")
        current = get_condition(d.get("status") or {}, "Progressing")
        complete_already = (status["replicas"] == status["updatedReplicas"] and current is not None
                            and current.get("reason") == NEW_RS_AVAILABLE)
        if has_progress_deadline(d) and not complete_already:
            subject = f'ReplicaSet "{new_rs["metadata"]["name"]}"' if new_rs is not None else f'Deployment "{self.name}"'
            if deployment_complete(d, status):
                set_condition(status, new_condition("Progressing", "True", NEW_RS_AVAILABLE,
                                                    f"{subject} has successfully progressed."))
            elif deployment_progressing(d, status):
                cond = new_condition("Progressing", "True", REPLICA_SET_UPDATED, f"{subject} is progressing.")
                if current is not None:
                    if current.get("status") == "True":
                        cond["lastTransitionTime"] = current.get("lastTransitionTime")
                    remove_condition(status, "Progressing")
                set_condition(status, cond)
            elif deployment_timed_out(d, status):
                set_condition(status, new_condition("Progressing", "False", TIMED_OUT,
                                                    f"{subject} has timed out progressing."))
        failures = _replica_failures(all_rss, new_rs)
        if failures:
            set_condition(status, failures[0])
        else:
            remove_condition(status, "ReplicaFailure")
        status = _strip_zero(status)
        if status == (d.get("status") or {}):
            self._requeue_stuck(status)
            return
        self.d["status"] = status
        await self.write_status()

    def _requeue_stuck(self, status: dict) -> None:
        """Come back when the progress deadline would pass, to report it."""
        d = self.d
        cond = get_condition(d.get("status") or {}, "Progressing")
        if not has_progress_deadline(d) or cond is None:
            return
        if deployment_complete(d, status) or cond.get("reason") == TIMED_OUT:
            return
        since = parse_time(cond.get("lastUpdateTime")) or time.time()
        after = since + d["spec"]["progressDeadlineSeconds"] - time.time()
        key = key_of(d)
        if after < 1:
            self.ctl.queue.add_rate_limited(key)
        else:
            self.ctl.queue.add_after(key, after + 1)


# -- helpers of the sync --------------------------------------------------------------------------

def _rs_name(deployment: str, h: str) -> str:
    limit = 253 - 1 - len(h)
    if len(deployment) > limit > 0:
        deployment = deployment[:limit]
    return f"{deployment}-{h}"


def _set_revision(d: dict, revision: str) -> bool:
    ann = d["metadata"].setdefault("annotations", {})
    if ann.get(REVISION) != revision:
        ann[REVISION] = revision
        return True
    return False


def set_new_rs_annotations(d: dict, rs: dict, new_revision: str, exists: bool) -> bool:
    """Copy the Deployment's annotations onto its new ReplicaSet and move its revision on
    (remembering earlier revisions it had, for rollbacks to the same template)."""
    changed = False
    ann = rs["metadata"].setdefault("annotations", {})
    for k, v in ((d["metadata"].get("annotations")) or {}).items():
        if k in NOT_COPIED or ann.get(k) == v:
            continue
        ann[k] = v
        changed = True
    old_revision = ann.get(REVISION)
    try:
        old_int = int(old_revision) if old_revision else 0
    except ValueError:
        return False
    new_int = int(new_revision)
    if old_int < new_int:
        ann[REVISION] = new_revision
        changed = True
        if old_revision is not None:
            history = ann.get(REVISION_HISTORY, "")
            revs = history.split(",")
            if not revs[0]:
                ann[REVISION_HISTORY] = old_revision
            else:
                total, start = len(history) + len(old_revision) + 1, 0
                while total > MAX_REVISION_HISTORY_CHARS and start < len(revs):
                    total -= len(revs[start]) + 1
                    start += 1
                if total <= MAX_REVISION_HISTORY_CHARS:
                    ann[REVISION_HISTORY] = ",".join(revs[start:] + [old_revision])
    if not exists:
        want = replicas_of(d)
        for k, v in ((DESIRED_REPLICAS, str(want)), (MAX_REPLICAS, str(want + max_surge(d)))):
            if ann.get(k) != v:
                ann[k] = v
                changed = True
    return changed


def new_rs_new_replicas(d: dict, all_rss: list[dict], new_rs: dict) -> int:
    want = replicas_of(d)
    if not is_rolling_update(d):
        return want
    surge = scaled_value((((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {})
                         .get("maxSurge"), want, True)
    current = sum_spec(all_rss)
    max_total = want + surge
    if current >= max_total:
        return replicas_of(new_rs)
    up = min(max_total - current, want - replicas_of(new_rs))
    return replicas_of(new_rs) + up


def _active_or_latest(new_rs: dict | None, old: list[dict]) -> dict | None:
    if new_rs is None and not old:
        return None
    newest_first = sorted(old, key=_created_key, reverse=True)
    active = active_rss(newest_first + [new_rs])
    if not active:
        return new_rs if new_rs is not None else newest_first[0]
    if len(active) == 1:
        return active[0]
    return None


def _is_saturated(d: dict, rs: dict | None) -> bool:
    if rs is None:
        return False
    desired = _annotation_int(rs, DESIRED_REPLICAS)
    want = replicas_of(d)
    return replicas_of(rs) == want and desired == want and status_of(rs, "availableReplicas") == want


def _proportion(rs: dict, d: dict, to_add: int, added: int) -> int:
    if replicas_of(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = _fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def _fraction(rs: dict, d: dict) -> int:
    """How many replicas this ReplicaSet gains (or loses) when scaled in proportion."""
    if replicas_of(d) == 0:
        return -replicas_of(rs)
    max_now = replicas_of(d) + max_surge(d)
    before = _annotation_int(rs, MAX_REPLICAS)
    if not before:
        before = status_of(d, "replicas")
        if before == 0:
            return 0
    return round_half_away(replicas_of(rs) * max_now / before) - replicas_of(rs)


def _terminating(all_rss: list) -> int | None:
    total = 0
    for rs in all_rss:
        if rs is None:
            continue
        st = rs.get("status") or {}
        if st.get("terminatingReplicas") is None:
            if not st.get("observedGeneration"):
                continue
            return None
        total += st["terminatingReplicas"]
    return total


def _replica_failures(all_rss: list, new_rs: dict | None) -> list[dict]:
    def convert(c):
        return {"type": c["type"], "status": c.get("status"), "lastUpdateTime": c.get("lastTransitionTime"),
                "lastTransitionTime": c.get("lastTransitionTime"), "reason": c.get("reason", ""),
                "message": c.get("message", "")}
    out = []
    if new_rs is not None:
        out = [convert(c) for c in (new_rs.get("status") or {}).get("conditions") or ()
               if c.get("type") == "ReplicaFailure"]
    if out:
        return out
    for rs in all_rss:
        if rs is None:
            continue
        out += [convert(c) for c in (rs.get("status") or {}).get("conditions") or ()
                if c.get("type") == "ReplicaFailure"]
    return out
