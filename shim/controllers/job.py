"""The Job controller: run a Job's pods to completion, as kube-controller-manager's does.

Informers on Jobs and pods feed a work queue keyed "namespace/name" (pod changes are batched
for a second, as upstream's SyncJobBatchPeriod). A sync:

- claims the pods matching the Job's selector (adopting orphans with the controller reference
  and the `batch.kubernetes.io/job-tracking` finalizer, releasing owned pods that no longer
  match);
- counts finished pods the way upstream does since pod-finalizer tracking: a finished pod
  that still has the finalizer is first recorded in `status.uncountedTerminatedPods`, then
  its finalizer is removed, then it moves to `status.succeeded`/`failed` (Indexed Jobs count
  `completedIndexes` instead of uids);
- decides whether the Job is finished: the pod failure policy (FailJob / Ignore / Count on
  exit codes and pod conditions) first, then backoffLimit and activeDeadlineSeconds, then
  completions. Failures go through the interim `FailureTarget` condition and success through
  `SuccessCriteriaMet`; `Failed`/`Complete` are added once no pod is uncounted or terminating;
- otherwise creates or deletes pods to reach min(parallelism, remaining completions), with
  upstream's exponential back-off (10 s doubling to 10 min) after failures, or deletes them
  all while the Job is suspended (`Suspended` condition);
- writes active/ready/terminating/startTime/completionTime and records upstream's Events.

Jobs whose `spec.managedBy` names another controller are left alone. Pods that keep the
tracking finalizer after their Job is gone or finished get it removed by a second queue.

Indexed Jobs honour `successPolicy` (SuccessCriteriaMet with reason SuccessPolicy).

Not done here: backoffLimitPerIndex/maxFailedIndexes, FailIndex, the
Workload/PodGroup integration and the consistency store (reads are from the informers).
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time

from shim.api.selectors import SelectorError, label_selector_from_object
from shim.client.api import PODS, ApiError, Client, Resource
from shim.client.events import EventRecorder
from shim.client.informer import Informer, key_of
from shim.client.workqueue import WorkQueue
from shim.controllers.replicaset import (Expectations, PodIndex, _compare_for_deletion, can_adopt, clone,
                                         controller_of, controller_ref, controllers_selecting, create_owned_pod,
                                         is_pod_active, is_pod_ready, is_pod_terminating, now_rfc3339,
                                         parse_time, resolve_controller)

log = logging.getLogger("shim.controllers.job")

JOBS = Resource("batch", "v1", "jobs", "Job")

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
COMPLETION_INDEX_KEY = "batch.kubernetes.io/job-completion-index"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
CONTROLLER_NAME = "kubernetes.io/job-controller"

SYNC_BATCH_PERIOD = 1.0
DEFAULT_POD_FAILURE_BACKOFF = 10.0
MAX_POD_FAILURE_BACKOFF = 600.0
MAX_UNCOUNTED_PODS = 500
MAX_POD_CREATE_DELETE_PER_SYNC = 500
MAX_GENERATED_NAME_LENGTH = 58


# -- helpers -----------------------------------------------------------------------------------

def find_condition(job: dict, ctype: str) -> dict | None:
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") == ctype:
            return c
    return None


def is_job_finished(job: dict) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or ())


def job_finished_time(job: dict) -> float | None:
    """When the Job got its Complete or Failed condition (what the TTL controller counts from)."""
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return parse_time(c.get("lastTransitionTime"))
    return None


def managed_by_other(job: dict) -> str | None:
    mb = (job.get("spec") or {}).get("managedBy")
    return mb if mb and mb != CONTROLLER_NAME else None


def has_finalizer(pod: dict) -> bool:
    return TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or ())


def is_suspended(job: dict) -> bool:
    return bool((job.get("spec") or {}).get("suspend"))


def is_indexed(job: dict) -> bool:
    return (job.get("spec") or {}).get("completionMode") == "Indexed"


def only_replace_failed(job: dict) -> bool:
    return (job.get("spec") or {}).get("podReplacementPolicy") == "Failed"


def phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def is_pod_failed(pod: dict, job: dict) -> bool:
    """Failed, or (unless only failed pods are replaced) deleted before it succeeded."""
    if phase(pod) == "Failed":
        return True
    if only_replace_failed(job):
        return False
    return bool(pod["metadata"].get("deletionTimestamp")) and phase(pod) != "Succeeded"


def completion_index(pod: dict) -> int:
    value = (pod["metadata"].get("annotations") or {}).get(COMPLETION_INDEX_KEY)
    if value is None or not value.isdigit():
        return -1
    try:
        return int(value)
    except ValueError:
        return -1


def parse_indexes(text: str | None, completions: int) -> list[tuple[int, int]]:
    """"1,3-5,7" as ordered (first, last) intervals, indexes below `completions` only."""
    out: list[tuple[int, int]] = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                a, b = part.split("-", 1)
                first, last = int(a), int(b)
            else:
                first = last = int(part)
        except ValueError:
            continue
        if first >= completions:
            break
        last = min(last, completions - 1)
        if out and out[-1][1] + 1 >= first:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def intervals_with(intervals: list[tuple[int, int]], new) -> list[tuple[int, int]]:
    s = set()
    for a, b in intervals:
        s.update(range(a, b + 1))
    s.update(new)
    return intervals_of(sorted(s))


def intervals_of(ordered) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for ix in ordered:
        if out and out[-1][1] + 1 == ix:
            out[-1] = (out[-1][0], ix)
        elif not out or out[-1][1] < ix:
            out.append((ix, ix))
    return out


def intervals_total(intervals) -> int:
    return sum(b - a + 1 for a, b in intervals)


def intervals_has(intervals, ix: int) -> bool:
    return any(a <= ix <= b for a, b in intervals)


def format_indexes(intervals) -> str:
    parts = []
    for a, b in intervals:
        if b == a:
            parts.append(str(a))
        elif b == a + 1:
            parts.append(f"{a},{b}")
        else:
            parts.append(f"{a}-{b}")
    return ",".join(parts)


def match_pod_failure_policy(policy: dict | None, pod: dict) -> tuple[str | None, bool, str | None]:
    """(FailJob message or None, whether the failure counts, the matched action)."""
    if not policy:
        return None, True, None
    st = pod.get("status") or {}
    md = pod["metadata"]
    for i, rule in enumerate(policy.get("rules") or ()):
        action = rule.get("action")
        on_exit = rule.get("onExitCodes")
        if on_exit is not None:
            cs = _match_exit_codes(st, on_exit)
            if cs is None:
                continue
            if action == "FailJob":
                code = cs["state"]["terminated"].get("exitCode", 0)
                return (f"Container {cs.get('name')} for pod {md.get('namespace')}/{md.get('name')} failed "
                        f"with exit code {code} matching FailJob rule at index {i}"), True, action
        elif rule.get("onPodConditions") is not None:
            cond = _match_pod_conditions(st, rule["onPodConditions"])
            if cond is None:
                continue
            if action == "FailJob":
                return (f"Pod {md.get('namespace')}/{md.get('name')} has condition {cond.get('type')} "
                        f"matching FailJob rule at index {i}"), True, action
        else:
            continue
        if action == "Ignore":
            return None, False, action
        if action in ("Count", "FailIndex"):
            return None, True, action
    return None, True, None


def _match_exit_codes(st: dict, req: dict) -> dict | None:
    for statuses in (st.get("containerStatuses") or (), st.get("initContainerStatuses") or ()):
        for cs in statuses:
            term = (cs.get("state") or {}).get("terminated")
            if term is None:
                continue
            if req.get("containerName") and req["containerName"] != cs.get("name"):
                continue
            code = term.get("exitCode", 0)
            if code == 0:
                continue
            values = req.get("values") or ()
            op = req.get("operator")
            if (op == "In" and code in values) or (op == "NotIn" and code not in values):
                return cs
    return None


def _match_pod_conditions(st: dict, patterns) -> dict | None:
    for cond in st.get("conditions") or ():
        for pat in patterns:
            if cond.get("type") == pat.get("type") and cond.get("status") == (pat.get("status") or "True"):
                return cond
    return None


def match_success_policy(policy: dict | None, completions: int, succeeded) -> str | None:
    """The message when an Indexed Job's succeeded indexes satisfy a successPolicy rule."""
    if not policy or not succeeded:
        return None
    done = set()
    for a, b in succeeded:
        done.update(range(a, b + 1))
    for i, rule in enumerate(policy.get("rules") or ()):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            required = set()
            for a, b in parse_indexes(rule["succeededIndexes"], completions):
                required.update(range(a, b + 1))
            if not required:
                continue
            hit = len(required & done)
            if hit == len(required) or (count is not None and hit >= count):
                return f"Matched rules at index {i}"
        elif count is not None and len(done) >= count:
            return f"Matched rules at index {i}"
    return None


def finished_time(pod: dict) -> float:
    """When the pod finished: its containers' latest finishedAt, else Ready=False's transition,
    else its deletion, else its creation (upstream's order)."""
    st = pod.get("status") or {}
    latest = None
    statuses = list(st.get("containerStatuses") or ())
    sidecars = {c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or ()
                if c.get("restartPolicy") == "Always"}
    statuses += [c for c in st.get("initContainerStatuses") or () if c.get("name") in sidecars]
    ok = bool(statuses)
    for cs in statuses:
        t = parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        if t is None:
            ok = False
            break
        latest = t if latest is None else max(latest, t)
    if ok and latest is not None:
        return latest
    for c in st.get("conditions") or ():
        if c.get("type") == "Ready" and c.get("status") == "False":
            t = parse_time(c.get("lastTransitionTime"))
            if t is not None:
                return t
    md = pod["metadata"]
    t = parse_time(md.get("deletionTimestamp"))
    if t is not None:
        return t - (md.get("deletionGracePeriodSeconds") or 0)
    return parse_time(md.get("creationTimestamp")) or 0.0


def backoff_remaining(failures: int, last_failure: float | None, now: float,
                      base: float = DEFAULT_POD_FAILURE_BACKOFF, cap: float = MAX_POD_FAILURE_BACKOFF) -> float:
    """Seconds until the next pod may be created after `failures` failures in a row."""
    if failures == 0 or last_failure is None:
        return 0.0
    delay = base
    for _ in range(1, failures):
        delay *= 2
        if delay >= cap:
            delay = cap
            break
    elapsed = now - last_failure
    return 0.0 if delay < elapsed else delay - elapsed


def new_condition(ctype: str, status: str, reason: str, message: str) -> dict:
    now = now_rfc3339()
    return {"type": ctype, "status": status, "lastProbeTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}


def ensure_condition(conditions: list, ctype: str, status: str, reason: str, message: str) -> bool:
    """Set (or add, unless the new status is False) a condition; whether the list changed."""
    for i, c in enumerate(conditions):
        if c.get("type") == ctype:
            if c.get("status") != status or c.get("reason") != reason or c.get("message") != message:
                conditions[i] = new_condition(ctype, status, reason, message)
                return True
            return False
    if status != "False":
        conditions.append(new_condition(ctype, status, reason, message))
        return True
    return False


def _active_pods_order(pods: list[dict]) -> list[dict]:
    """controller.ActivePods: the pods earliest in their life first (what is deleted first)."""
    now = time.time()
    ranked = sorted(((p, 0) for p in pods), key=functools.cmp_to_key(lambda a, b: _compare_for_deletion(a, b, now)))
    return [p for p, _ in ranked]


def active_pods_for_removal(job: dict, pods: list[dict], at_least: int) -> list[dict]:
    rm: list[dict] = []
    left = pods
    if is_indexed(job):
        completions = (job.get("spec") or {}).get("completions") or 0
        left = []
        by_index: dict[int, list[dict]] = {}
        for p in pods:
            ix = completion_index(p)
            if ix < 0 or ix >= completions:
                rm.append(p)
            else:
                by_index.setdefault(ix, []).append(p)
        for ix in sorted(by_index):
            group = by_index[ix]
            if len(group) == 1:
                left.append(group[0])
            else:
                group = _active_pods_order(group)
                rm += group[:-1]
                left.append(group[-1])
    if len(rm) < at_least:
        rm += _active_pods_order(left)[:at_least - len(rm)]
    return rm


class JobController:
    kind = "Job"
    api_version = "batch/v1"

    def __init__(self, client: Client, workers: int = 5, *, job_informer: Informer | None = None,
                 pod_informer: Informer | None = None, batch_period: float = SYNC_BATCH_PERIOD):
        self.client = client
        self.workers = workers
        self.batch_period = batch_period
        self.job_informer = job_informer or Informer(client, JOBS)
        self.pod_informer = pod_informer or Informer(client, PODS)
        self.pods = PodIndex()
        self.queue = WorkQueue()
        self.orphan_queue = WorkQueue()
        self.expectations = Expectations()
        self.finalizer_expectations: dict[str, set[str]] = {}  # job key -> pod uids
        self.finished_jobs: set[str] = set()  # uids marked finished, update not yet seen
        self.backoff: dict[str, tuple[int, float | None]] = {}  # key -> (failures after last success, last failure)
        self.events = EventRecorder(client, "job-controller", senders=2)
        self.job_informer.add_handlers(self._on_job_add, self._on_job_update, self._on_job_delete)
        self.pod_informer.add_handlers(self._on_pod_add, self._on_pod_update, self._on_pod_delete)

    async def run(self) -> None:
        self.job_informer.start()
        self.pod_informer.start()
        try:
            await asyncio.gather(self.job_informer.wait_synced(), self.pod_informer.wait_synced())
            self.events.start()
            await asyncio.gather(*(self.queue.run_worker(self.sync, self._sync_failed) for _ in range(self.workers)),
                                 self.orphan_queue.run_worker(self._sync_orphan, self._orphan_failed))
        finally:
            self.queue.shutdown()
            self.orphan_queue.shutdown()
            await self.job_informer.stop()
            await self.pod_informer.stop()
            await self.events.stop()

    # -- informer handlers ------------------------------------------------------------------
    def _enqueue_batched(self, job: dict) -> None:
        self.queue.add_after(key_of(job), self.batch_period)

    def _on_job_add(self, job: dict) -> None:
        self.queue.add(key_of(job))

    def _on_job_update(self, old: dict, job: dict) -> None:
        key = key_of(job)
        if is_job_finished(job):
            self._enqueue_selector(job)
            return
        if old["metadata"].get("generation") == job["metadata"].get("generation"):
            self._enqueue_batched(job)
        else:
            self.queue.add(key)
        start = parse_time((job.get("status") or {}).get("startTime"))
        ads = (job.get("spec") or {}).get("activeDeadlineSeconds")
        if start is not None and ads is not None and (old.get("spec") or {}).get("activeDeadlineSeconds") != ads:
            self.queue.add_after(key, start + ads - time.time())

    def _on_job_delete(self, job: dict) -> None:
        key = key_of(job)
        self.queue.add(key)
        self.finished_jobs.discard(job["metadata"].get("uid"))
        self._enqueue_selector(job)
        self.expectations.delete(key)
        self.backoff.pop(key, None)

    def _enqueue_selector(self, job: dict) -> None:
        """Pods of a finished or deleted Job that still carry the finalizer: to the orphan queue."""
        ns = job["metadata"]["namespace"]
        uid = job["metadata"].get("uid")
        for pod in self.pods.owned_by(uid):
            if has_finalizer(pod):
                self.orphan_queue.add(key_of(pod))
        try:
            sel = label_selector_from_object((job.get("spec") or {}).get("selector"))
        except SelectorError:
            return
        for pod in self.pods.in_namespace(ns):
            if has_finalizer(pod) and controller_of(pod) is None and sel.matches(pod["metadata"].get("labels") or {}):
                self.orphan_queue.add(key_of(pod))

    def _resolve(self, ns: str, ref: dict | None) -> dict | None:
        return resolve_controller(self.job_informer, self.kind, ns, ref)

    def _selecting(self, pod: dict) -> list[dict]:
        """Jobs in the pod's namespace whose selector matches it (for orphans)."""
        return controllers_selecting(self.job_informer, pod)

    def _on_pod_add(self, pod: dict) -> None:
        self.pods.add(pod)
        if pod["metadata"].get("deletionTimestamp"):
            self._pod_deleted(pod, final=False)
            return
        ref = controller_of(pod)
        if ref is not None:
            job = self._resolve(pod["metadata"]["namespace"], ref)
            if job is not None:
                self.expectations.creation_observed(key_of(job))
                self._enqueue_batched(job)
            elif has_finalizer(pod):
                self.orphan_queue.add(key_of(pod))
            return
        if has_finalizer(pod):
            self.orphan_queue.add(key_of(pod))
        for job in self._selecting(pod):
            self._enqueue_batched(job)

    def _on_pod_update(self, old: dict, pod: dict) -> None:
        self.pods.remove(old)
        self.pods.add(pod)
        if old["metadata"].get("resourceVersion") == pod["metadata"].get("resourceVersion"):
            return
        if pod["metadata"].get("deletionTimestamp"):
            self._pod_deleted(pod, final=False)
            return
        ns = pod["metadata"]["namespace"]
        removed = not has_finalizer(pod)
        cur_ref, old_ref = controller_of(pod), controller_of(old)
        if cur_ref != old_ref and old_ref is not None:
            job = self._resolve(ns, old_ref)
            if job is not None:
                if removed:
                    self._finalizer_removal_observed(key_of(job), pod["metadata"].get("uid"))
                self._enqueue_batched(job)
        if cur_ref is not None:
            job = self._resolve(ns, cur_ref)
            if job is None:
                if has_finalizer(pod):
                    self.orphan_queue.add(key_of(pod))
                return
            if removed:
                self._finalizer_removal_observed(key_of(job), pod["metadata"].get("uid"))
            self._enqueue_batched(job)
            return
        if has_finalizer(pod):
            self.orphan_queue.add(key_of(pod))
        if old["metadata"].get("labels") != pod["metadata"].get("labels") or cur_ref != old_ref:
            for job in self._selecting(pod):
                self._enqueue_batched(job)

    def _on_pod_delete(self, pod: dict) -> None:
        self.pods.remove(pod)
        self._pod_deleted(pod, final=True)

    def _pod_deleted(self, pod: dict, final: bool) -> None:
        ref = controller_of(pod)
        fin = has_finalizer(pod)
        if ref is None:
            if fin and not final:
                self.orphan_queue.add(key_of(pod))
            return
        job = self._resolve(pod["metadata"]["namespace"], ref)
        if job is None or is_job_finished(job):
            if fin and not final:
                self.orphan_queue.add(key_of(pod))
            return
        key = key_of(job)
        self.expectations.deletion_observed(key, key_of(pod))
        if final or not fin:
            self._finalizer_removal_observed(key, pod["metadata"].get("uid"))
        self._enqueue_batched(job)

    def _finalizer_removal_observed(self, key: str, uid: str) -> None:
        uids = self.finalizer_expectations.get(key)
        if uids is not None:
            uids.discard(uid)
            if not uids:
                del self.finalizer_expectations[key]

    # -- orphan pods: drop the tracking finalizer ---------------------------------------------
    def _orphan_failed(self, key: str, e: Exception) -> None:
        log.info("removing the tracking finalizer of pod %s: %s", key, e)
        self.orphan_queue.add_rate_limited(key)

    async def _sync_orphan(self, key: str) -> None:
        pod = self.pod_informer.get(key)
        if pod is None or not has_finalizer(pod):
            return
        ref = controller_of(pod)
        if ref is not None:
            if ref.get("kind") != self.kind or ref.get("apiVersion") != self.api_version:
                return
            job = self._resolve(pod["metadata"]["namespace"], ref)
            if job is not None and (managed_by_other(job) or not is_job_finished(job)):
                return
        await self._remove_finalizer(pod)

    async def _remove_finalizer(self, pod: dict) -> None:
        try:
            await self.client.patch(PODS, pod["metadata"]["name"],
                                    {"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}},
                                    pod["metadata"]["namespace"], type="strategic")
        except ApiError as e:
            if e.code != 404:
                raise

    # -- the work loop ------------------------------------------------------------------------
    def _sync_failed(self, key: str, e: Exception) -> None:
        log.info("syncing job %s: %s", key, e)
        self.queue.add_rate_limited(key)

    async def sync(self, key: str) -> None:
        shared = self.job_informer.get(key)
        if shared is None:
            self.expectations.delete(key)
            self.finalizer_expectations.pop(key, None)
            self.backoff.pop(key, None)
            return
        if managed_by_other(shared):
            return
        job = clone(shared)
        uid = job["metadata"]["uid"]
        if is_job_finished(job):
            self.backoff.pop(key, None)
            self.finished_jobs.discard(uid)
            return
        if uid in self.finished_jobs:
            return  # marked finished; waiting to see that update
        spec = job.setdefault("spec", {})
        mode = spec.get("completionMode")
        if mode not in (None, "NonIndexed", "Indexed"):
            self.events.event(job, "Warning", "UnknownCompletionMode",
                              "Skipped Job sync because completion mode is unknown")
            return
        status = job.setdefault("status", {})
        uncounted = status.setdefault("uncountedTerminatedPods", {})
        satisfied = self.expectations.satisfied(key)

        pods = await self._pods_for_job(job)
        active_pods = [p for p in pods if is_pod_active(p)]
        ctx = _SyncCtx(job, pods, active_pods, set(uncounted.get("succeeded") or ()),
                       set(uncounted.get("failed") or ()), set(self.finalizer_expectations.get(key) or ()))
        ctx.ready = sum(1 for p in active_pods if is_pod_ready(p))
        ctx.terminating = sum(1 for p in pods if is_pod_terminating(p))
        active = len(active_pods)
        new_succeeded = self._valid_pods(ctx, ctx.uncounted_succeeded, lambda p: phase(p) == "Succeeded")
        new_failed = self._valid_pods(ctx, ctx.uncounted_failed, lambda p: is_pod_failed(p, job))
        policy = spec.get("podFailurePolicy")
        counted_failed = sum(1 for p in new_failed if match_pod_failure_policy(policy, p)[1])
        ctx.succeeded = status.get("succeeded", 0) + len(new_succeeded) + len(ctx.uncounted_succeeded)
        ctx.failed = status.get("failed", 0) + counted_failed + len(ctx.uncounted_failed)

        if not status.get("startTime") and not is_suspended(job):
            status["startTime"] = now_rfc3339()
        ctx.new_backoff = self._new_backoff(key, new_succeeded, new_failed)

        manage_error: Exception | None = None
        backoff_limit = spec.get("backoffLimit", 6)
        ctx.finished = next((dict(c) for c in status.get("conditions") or ()
                             if c.get("type") == "SuccessCriteriaMet" and c.get("status") == "True"), None)
        if ctx.finished is None:
            target = find_condition(job, "FailureTarget")
            if target is not None and target.get("status") == "True":
                ctx.finished = new_condition("Failed", "True", target.get("reason", ""), target.get("message", ""))
            elif policy:
                for p in pods:
                    if is_pod_failed(p, job):
                        msg = match_pod_failure_policy(policy, p)[0]
                        if msg is not None:
                            ctx.finished = new_condition("FailureTarget", "True", "PodFailurePolicy", msg)
                            break
        if ctx.finished is None:
            if ctx.failed > backoff_limit or self._past_backoff_limit_on_failure(job, pods):
                ctx.finished = new_condition("FailureTarget", "True", "BackoffLimitExceeded",
                                             "Job has reached the specified backoff limit")
            elif self._past_active_deadline(job):
                ctx.finished = new_condition("FailureTarget", "True", "DeadlineExceeded",
                                             "Job was active longer than specified deadline")
            elif spec.get("activeDeadlineSeconds") is not None and not is_suspended(job):
                start = parse_time(status.get("startTime")) or time.time()
                self.queue.add_after(key, start + spec["activeDeadlineSeconds"] - time.time())

        if is_indexed(job):
            completions = spec.get("completions") or 0
            ctx.prev_succeeded_indexes = parse_indexes(status.get("completedIndexes"), completions)
            ctx.succeeded_indexes = intervals_with(ctx.prev_succeeded_indexes, sorted({
                completion_index(p) for p in pods if phase(p) == "Succeeded" and has_finalizer(p)
                and 0 <= completion_index(p) < completions}))
            ctx.succeeded = intervals_total(ctx.succeeded_indexes)
            if ctx.finished is None:
                msg = match_success_policy(spec.get("successPolicy"), completions, ctx.succeeded_indexes)
                if msg is not None:
                    ctx.finished = new_condition("SuccessCriteriaMet", "True", "SuccessPolicy", msg)

        suspend_changed = False
        if ctx.finished is not None:
            deleted_ready, deleted, err = await self._delete_active_pods(job, active_pods)
            if deleted != active or not satisfied:
                ctx.finished = None  # pods or finalizers may still be on their way
            active -= deleted
            ctx.terminating += deleted
            ctx.ready -= deleted_ready
            manage_error = err
        else:
            managed = False
            if satisfied and not job["metadata"].get("deletionTimestamp"):
                active, manage_error = await self._manage(key, job, ctx)
                managed = True
            completions = spec.get("completions")
            if completions is None:
                complete = ctx.succeeded > 0 and active == 0
            else:
                complete = ctx.succeeded >= completions and active == 0
            if complete:
                ctx.finished = new_condition("SuccessCriteriaMet", "True", "CompletionsReached",
                                             "Reached expected number of succeeded pods")
            elif managed:
                conds = status.setdefault("conditions", [])
                if is_suspended(job):
                    if ensure_condition(conds, "Suspended", "True", "JobSuspended", "Job suspended"):
                        suspend_changed = True
                        self.events.event(job, "Normal", "Suspended", "Job suspended")
                        status.pop("startTime", None)
                else:
                    if ensure_condition(conds, "Suspended", "False", "JobResumed", "Job resumed"):
                        suspend_changed = True
                        self.events.event(job, "Normal", "Resumed", "Job resumed")
                        status["startTime"] = now_rfc3339()
                if not conds:
                    status.pop("conditions", None)

        needs_update = (suspend_changed or active != status.get("active", 0) or ctx.ready != status.get("ready")
                        or ctx.terminating != status.get("terminating"))
        status["active"] = active
        status["ready"] = ctx.ready
        status["terminating"] = ctx.terminating
        await self._track_status(key, ctx, needs_update)
        if manage_error is not None:
            raise manage_error

    def _valid_pods(self, ctx: "_SyncCtx", uncounted: set, pred) -> list[dict]:
        out = []
        completions = (ctx.job.get("spec") or {}).get("completions") or 0
        for p in ctx.pods:
            uid = p["metadata"].get("uid")
            if not has_finalizer(p) or uid in uncounted or uid in ctx.expected_rm:
                continue
            if is_indexed(ctx.job):
                ix = completion_index(p)
                if ix < 0 or ix >= completions:
                    continue
            if pred(p):
                out.append(p)
        return out

    def _new_backoff(self, key: str, succeeded: list[dict], failed: list[dict]) -> tuple[int, float | None]:
        failures, last = self.backoff.get(key, (0, None))
        s_times = sorted(finished_time(p) for p in succeeded)
        f_times = sorted(finished_time(p) for p in failed)
        if not s_times:
            if not f_times:
                return failures, last
            return failures + len(f_times), f_times[-1]
        failures, last = 0, None
        for t in reversed(f_times):
            if t <= s_times[-1]:
                break
            if last is None:
                last = t
            failures += 1
        return failures, last

    @staticmethod
    def _past_backoff_limit_on_failure(job: dict, pods: list[dict]) -> bool:
        spec = job.get("spec") or {}
        if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
            return False
        restarts = 0
        for p in pods:
            if phase(p) in ("Running", "Pending"):
                st = p.get("status") or {}
                for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
                    restarts += cs.get("restartCount", 0)
        limit = spec.get("backoffLimit", 6)
        return restarts > 0 if limit == 0 else restarts >= limit

    @staticmethod
    def _past_active_deadline(job: dict) -> bool:
        ads = (job.get("spec") or {}).get("activeDeadlineSeconds")
        start = parse_time((job.get("status") or {}).get("startTime"))
        if ads is None or start is None or is_suspended(job):
            return False
        return time.time() - start >= ads

    # -- claiming -----------------------------------------------------------------------------
    async def _pods_for_job(self, job: dict) -> list[dict]:
        md = job["metadata"]
        try:
            sel = label_selector_from_object((job.get("spec") or {}).get("selector"))
        except SelectorError as e:
            raise ValueError(f"couldn't convert Job selector: {e}") from None
        out: list[dict] = []
        can_adopt: bool | None = None
        errors: list[Exception] = []
        for pod in self.pods.owned_or_orphaned(md["namespace"], md["uid"]):
            labels = pod["metadata"].get("labels") or {}
            ref = controller_of(pod)
            if ref is not None:
                if sel.matches(labels):
                    out.append(pod)
                elif not md.get("deletionTimestamp"):
                    try:
                        await self.client.patch(PODS, pod["metadata"]["name"], {"metadata": {
                            "uid": pod["metadata"]["uid"],
                            "ownerReferences": [{"$patch": "delete", "uid": md["uid"]}]}},
                            md["namespace"], type="strategic")
                    except ApiError as e:
                        if e.code not in (404, 422):
                            errors.append(e)
                continue
            if md.get("deletionTimestamp") or sel.empty or not sel.matches(labels) \
                    or pod["metadata"].get("deletionTimestamp"):
                continue
            if can_adopt is None:
                can_adopt = await self._can_adopt(job)
            if not can_adopt:
                continue
            try:
                await self.client.patch(PODS, pod["metadata"]["name"], {"metadata": {
                    "uid": pod["metadata"]["uid"],
                    "ownerReferences": [controller_ref(job, self.api_version, self.kind)],
                    "finalizers": [TRACKING_FINALIZER]}}, md["namespace"], type="strategic")
            except ApiError as e:
                if e.code != 404:
                    errors.append(e)
                continue
            adopted = clone(pod)
            fins = adopted["metadata"].setdefault("finalizers", [])
            if TRACKING_FINALIZER not in fins:
                fins.append(TRACKING_FINALIZER)
            out.append(adopted)
        if errors:
            raise errors[0]
        return out

    async def _can_adopt(self, job: dict) -> bool:
        return await can_adopt(self.client, JOBS, job)

    # -- creating and deleting pods --------------------------------------------------------------
    async def _manage(self, key: str, job: dict, ctx: "_SyncCtx") -> tuple[int, Exception | None]:
        spec = job["spec"]
        active = len(ctx.active_pods)
        parallelism = spec.get("parallelism", 1)
        if is_suspended(job):
            victims = active_pods_for_removal(job, ctx.active_pods, active)
            self.expectations.expect_deletions(key, [key_of(p) for p in victims])
            ready, removed, err = await self._delete_job_pods(key, job, victims)
            ctx.terminating += removed
            ctx.ready -= ready
            return active - removed, err
        completions = spec.get("completions")
        if completions is None:
            want = active if ctx.succeeded > 0 else parallelism
        else:
            want = max(0, min(completions - ctx.succeeded, parallelism))
        victims = active_pods_for_removal(job, ctx.active_pods, max(active - want, 0))
        victims = victims[:MAX_POD_CREATE_DELETE_PER_SYNC]
        if victims:
            self.expectations.expect_deletions(key, [key_of(p) for p in victims])
            ready, removed, err = await self._delete_job_pods(key, job, victims)
            ctx.terminating += removed
            ctx.ready -= ready
            return active - removed, err
        terminating = ctx.terminating if only_replace_failed(job) else 0
        diff = want - terminating - active
        if diff <= 0:
            return active, None
        failures, last = ctx.new_backoff
        remaining = backoff_remaining(failures, last, time.time())
        if remaining > 0:
            self.queue.add_after(key, max(remaining, self.batch_period))
            return active, None
        diff = min(diff, MAX_POD_CREATE_DELETE_PER_SYNC)
        indexes: list[int] = []
        if is_indexed(job):
            indexes = self._first_pending_indexes(ctx, diff, completions or 0)
            diff = len(indexes)
            if diff == 0:
                return active, None
        self.expectations.expect_creations(key, diff)
        template = clone(spec.get("template") or {})
        if is_indexed(job):
            _add_completion_index_env(template)
        errors: list[Exception] = []
        batch = 1
        todo = diff
        created = 0
        while todo > 0:
            this = indexes[:batch] if indexes else [-1] * batch
            indexes = indexes[batch:]
            results = await asyncio.gather(*(self._create_pod(job, template, ix) for ix in this),
                                           return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            for f in failed:
                if not isinstance(f, ApiError):
                    raise f
            created += len(this) - len(failed)
            for _ in failed:
                self.expectations.creation_observed(key)
            todo -= len(this)
            if failed:
                errors += failed
                for _ in range(todo):
                    self.expectations.creation_observed(key)
                break
            batch = min(2 * batch, todo)
        return active + created, (errors[0] if errors else None)

    def _first_pending_indexes(self, ctx: "_SyncCtx", count: int, completions: int) -> list[int]:
        taken = {completion_index(p) for p in ctx.active_pods}
        if only_replace_failed(ctx.job):
            taken |= {completion_index(p) for p in ctx.pods if is_pod_terminating(p)}
        out = []
        for ix in range(completions):
            if len(out) >= count:
                break
            if ix in taken or intervals_has(ctx.succeeded_indexes, ix):
                continue
            out.append(ix)
        return out

    async def _create_pod(self, job: dict, template: dict, index: int) -> None:
        md_t = template.get("metadata") or {}
        name = job["metadata"]["name"]
        md: dict = {"namespace": job["metadata"]["namespace"],
                    "ownerReferences": [controller_ref(job, self.api_version, self.kind)]}
        for field in ("labels", "annotations"):
            if md_t.get(field):
                md[field] = dict(md_t[field])
        fins = list(md_t.get("finalizers") or [])
        if TRACKING_FINALIZER not in fins:
            fins.append(TRACKING_FINALIZER)
        md["finalizers"] = fins
        pod_spec = clone(template.get("spec") or {})
        if index >= 0:
            md.setdefault("annotations", {})[COMPLETION_INDEX_KEY] = str(index)
            md.setdefault("labels", {})[COMPLETION_INDEX_KEY] = str(index)
            pod_spec["hostname"] = f"{name}-{index}"
            suffix = f"-{index}-"
            prefix = name + suffix
            if len(prefix) > MAX_GENERATED_NAME_LENGTH:
                prefix = prefix[:MAX_GENERATED_NAME_LENGTH - len(suffix)] + suffix
            md["generateName"] = prefix
        else:
            prefix = f"{name}-"
            md["generateName"] = prefix[:MAX_GENERATED_NAME_LENGTH]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": pod_spec}
        await create_owned_pod(self.client, self.events, job, pod)

    async def _delete_pod(self, job: dict, pod: dict) -> None:
        name = pod["metadata"]["name"]
        try:
            await self.client.delete(PODS, name, pod["metadata"]["namespace"])
        except ApiError as e:
            if e.code != 404:
                self.events.event(job, "Warning", "FailedDelete", f"Error deleting: {e.message}")
            raise
        self.events.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")

    async def _delete_active_pods(self, job: dict, pods: list[dict]) -> tuple[int, int, Exception | None]:
        """Delete the pods keeping their finalizers (the finished Job counts them as failed)."""
        async def one(p):
            try:
                await self._delete_pod(job, p)
                return None
            except ApiError as e:
                return None if e.code == 404 else e
        results = await asyncio.gather(*(one(p) for p in pods))
        errs = [e for e in results if e is not None]
        ready = sum(1 for p in pods if is_pod_ready(p))
        return ready, len(pods) - len(errs), (errs[0] if errs else None)

    async def _delete_job_pods(self, key: str, job: dict, pods: list[dict]) -> tuple[int, int, Exception | None]:
        """Remove the tracking finalizer, then delete (pods removed while scaling down or suspended)."""
        async def one(p):
            try:
                if has_finalizer(p):
                    await self._remove_finalizer(p)
                await self._delete_pod(job, p)
                return None
            except ApiError as e:
                self.expectations.deletion_observed(key, key_of(p))
                return None if e.code == 404 else e
        results = await asyncio.gather(*(one(p) for p in pods))
        errs = [e for e in results if e is not None]
        ready = sum(1 for p, e in zip(pods, results) if e is None and is_pod_ready(p))
        return ready, len(pods) - len(errs), (errs[0] if errs else None)

    # -- status and finalizers -------------------------------------------------------------------
    async def _track_status(self, key: str, ctx: "_SyncCtx", needs_flush: bool) -> None:
        job = ctx.job
        spec, status = job["spec"], job["status"]
        uncounted = status["uncountedTerminatedPods"]
        indexed = is_indexed(job)
        completions = spec.get("completions") or 0
        pods = ctx.pods
        if indexed:
            pods = sorted(pods, key=completion_index)
        with_finalizer = {p["metadata"]["uid"] for p in pods
                          if has_finalizer(p) and p["metadata"]["uid"] not in ctx.expected_rm}
        if _clean_uncounted(status, with_finalizer):
            needs_flush = True
        policy = spec.get("podFailurePolicy")
        to_remove: list[dict] = []
        new_indexes: list[int] = []
        reached_max = False
        finished_failure = ctx.finished is not None and ctx.finished["type"] != "SuccessCriteriaMet"
        for pod in pods:
            uid = pod["metadata"]["uid"]
            if not has_finalizer(pod) or uid in ctx.expected_rm:
                continue
            failed = is_pod_failed(pod, job)
            if not (job["metadata"].get("deletionTimestamp") or ctx.finished is not None
                    or phase(pod) == "Succeeded" or failed):
                continue
            to_remove.append(pod)
            if phase(pod) == "Succeeded" and uid not in ctx.uncounted_failed:
                if indexed:
                    ix = completion_index(pod)
                    if 0 <= ix < completions and not intervals_has(ctx.prev_succeeded_indexes, ix):
                        new_indexes.append(ix)
                        needs_flush = True
                elif uid not in ctx.uncounted_succeeded:
                    needs_flush = True
                    uncounted.setdefault("succeeded", []).append(uid)
            elif failed or finished_failure:
                ix = completion_index(pod)
                if uid not in ctx.uncounted_failed and (not indexed or 0 <= ix < completions):
                    if match_pod_failure_policy(policy, pod)[1]:
                        needs_flush = True
                        uncounted.setdefault("failed", []).append(uid)
            if len(new_indexes) + len(uncounted.get("succeeded") or ()) + len(uncounted.get("failed") or ()) \
                    >= MAX_UNCOUNTED_PODS:
                reached_max = True
                break
        if indexed:
            ctx.succeeded_indexes = intervals_with(ctx.succeeded_indexes, new_indexes)
            text = format_indexes(ctx.succeeded_indexes)
            if text != (status.get("completedIndexes") or ""):
                needs_flush = True
            status["succeeded"] = intervals_total(ctx.succeeded_indexes)
            status["completedIndexes"] = text
        if ctx.finished is not None and ctx.finished["type"] == "FailureTarget":
            status.setdefault("conditions", []).append(ctx.finished)
            needs_flush = True
            ctx.finished = new_condition("Failed", "True", ctx.finished["reason"], ctx.finished["message"])
        if ctx.finished is not None and ctx.finished["type"] == "SuccessCriteriaMet":
            if find_condition(job, "SuccessCriteriaMet") is None:
                status.setdefault("conditions", []).append(ctx.finished)
                needs_flush = True
            ctx.finished = new_condition("Complete", "True", ctx.finished["reason"], ctx.finished["message"])

        # flush what is uncounted before removing finalizers, so no pod is forgotten
        if needs_flush:
            ctx.job = job = await self._update_status(job)
            status = job["status"]
            status.setdefault("uncountedTerminatedPods", {})
            self.backoff[key] = ctx.new_backoff
            needs_flush = False
        rm_error = None
        if to_remove:
            self.finalizer_expectations.setdefault(key, set()).update(p["metadata"]["uid"] for p in to_remove)

            async def remove(p):
                try:
                    await self._remove_finalizer(p)
                    return None
                except ApiError as e:
                    self._finalizer_removal_observed(key, p["metadata"]["uid"])
                    return e
            results = await asyncio.gather(*(remove(p) for p in to_remove))
            for p, e in zip(to_remove, results):
                if e is None:
                    with_finalizer.discard(p["metadata"]["uid"])
            rm_error = next((e for e in results if e is not None), None)
        if _clean_uncounted(status, with_finalizer):
            needs_flush = True
        if rm_error is not None:
            if needs_flush:
                await self._update_status(job)
            raise rm_error
        finished = not reached_max and self._enact_finished(ctx)
        if finished:
            needs_flush = True
        if needs_flush:
            job = await self._update_status(job)
            if finished:
                self._record_finished(job, ctx.finished)
                self.finished_jobs.add(job["metadata"]["uid"])

    def _enact_finished(self, ctx: "_SyncCtx") -> bool:
        if ctx.finished is None:
            return False
        status = ctx.job["status"]
        unc = status.get("uncountedTerminatedPods") or {}
        if unc.get("succeeded") or unc.get("failed"):
            return False
        if ctx.terminating > 0:
            return False
        cond = ctx.finished
        conds = status.setdefault("conditions", [])
        ensure_condition(conds, cond["type"], cond["status"], cond["reason"], cond["message"])
        if cond["type"] == "Complete":
            status["completionTime"] = cond["lastTransitionTime"]
        return True

    def _record_finished(self, job: dict, cond: dict) -> None:
        if cond["type"] == "Complete":
            completions = (job.get("spec") or {}).get("completions")
            if completions is not None and (job.get("status") or {}).get("succeeded", 0) > completions:
                self.events.event(job, "Warning", "TooManySucceededPods",
                                  "Too many succeeded pods running after completion count reached")
            self.events.event(job, "Normal", "Completed", "Job completed")
        else:
            self.events.event(job, "Warning", cond["reason"], cond["message"])

    async def _update_status(self, job: dict) -> dict:
        obj = clone(job)
        obj["status"] = _wire_status(obj.get("status") or {})
        updated = await self.client.update(JOBS, obj, subresource="status")
        updated.setdefault("status", {})
        return updated


class _SyncCtx:
    def __init__(self, job, pods, active_pods, uncounted_succeeded, uncounted_failed, expected_rm):
        self.job = job
        self.pods = pods
        self.active_pods = active_pods
        self.uncounted_succeeded = uncounted_succeeded
        self.uncounted_failed = uncounted_failed
        self.expected_rm = expected_rm
        self.ready = 0
        self.terminating = 0
        self.succeeded = 0
        self.failed = 0
        self.finished: dict | None = None
        self.new_backoff: tuple[int, float | None] = (0, None)
        self.prev_succeeded_indexes: list[tuple[int, int]] = []
        self.succeeded_indexes: list[tuple[int, int]] = []


def _clean_uncounted(status: dict, with_finalizer: set) -> bool:
    """Move uncounted uids whose pods lost the finalizer into the counters."""
    unc = status.setdefault("uncountedTerminatedPods", {})
    changed = False
    for field in ("succeeded", "failed"):
        cur = unc.get(field) or []
        keep = [u for u in cur if u in with_finalizer]
        if len(keep) != len(cur):
            changed = True
            status[field] = status.get(field, 0) + len(cur) - len(keep)
            unc[field] = keep
    return changed


def _wire_status(status: dict) -> dict:
    """The status as upstream serialises it: zero counters and empty lists left out,
    `ready`/`terminating`/`uncountedTerminatedPods` always there."""
    out = dict(status)
    for f in ("active", "succeeded", "failed"):
        if not out.get(f):
            out.pop(f, None)
    if not out.get("completedIndexes"):
        out.pop("completedIndexes", None)
    unc = {k: v for k, v in (out.get("uncountedTerminatedPods") or {}).items() if v}
    out["uncountedTerminatedPods"] = unc
    if not out.get("conditions"):
        out.pop("conditions", None)
    return out


def _add_completion_index_env(template: dict) -> None:
    spec = template.get("spec") or {}
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        env = c.setdefault("env", [])
        if any(e.get("name") == COMPLETION_INDEX_ENV for e in env):
            continue
        env.append({"name": COMPLETION_INDEX_ENV, "valueFrom": {"fieldRef": {
            "apiVersion": "v1", "fieldPath": f"metadata.labels['{COMPLETION_INDEX_KEY}']"}}})
