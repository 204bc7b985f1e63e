"""The CronJob controller: create a Job at each scheduled time, as kube-controller-manager's
CronJobControllerV2 does.

A sync of one CronJob (keyed "namespace/name", fed by CronJob and Job informers) deletes
finished Jobs beyond the history limits, reconciles `status.active` with the Jobs it owns
(`SawCompletedJob`, `MissingJob`, `UnexpectedJob`), keeps `lastSuccessfulTime`, then works
out the most recent unmet scheduled time. Unless suspended, too late
(`startingDeadlineSeconds`), already done, or forbidden by `concurrencyPolicy: Forbid`, it
creates the Job `<cronjob>-<scheduled time in minutes since the epoch>` with the
`batch.kubernetes.io/cronjob-scheduled-timestamp` annotation (`Replace` first deletes the
active ones, in the background), and requeues itself for the next scheduled time plus 100 ms.

Schedules are parsed with croniter: five fields or a descriptor (@yearly, @annually, @monthly,
@weekly, @daily, @midnight, @hourly), in `spec.timeZone` or a `CRON_TZ=`/`TZ=` prefix, else
UTC (the controller manager's local time upstream; ours runs in UTC). `@every` is not supported.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from shim.client.api import ApiError, Client, Resource
from shim.client.events import EventRecorder
from shim.client.informer import Informer, key_of
from shim.client.workqueue import WorkQueue
from shim.controllers.job import JOBS, is_job_finished
from shim.controllers.replicaset import clone, controller_of, controller_ref, parse_time

log = logging.getLogger("shim.controllers.cronjob")

CRON_JOBS = Resource("batch", "v1", "cronjobs", "CronJob")
SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
NEXT_SCHEDULE_DELTA = 0.1
DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
               "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
               "@hourly": "0 * * * *"}


class ScheduleError(ValueError):
    pass


class Schedule:
    """A parsed cron schedule: `next(t)` is the first scheduled time strictly after t (a Unix
    time), computed in the schedule's time zone."""

    def __init__(self, expr: str, tz: dt.tzinfo):
        self.expr = expr
        self.tz = tz

    def next(self, t: float) -> float:
        start = dt.datetime.fromtimestamp(int(t), self.tz)  # cron has one-second resolution at best
        return croniter(self.expr, start).get_next(dt.datetime).timestamp()


def load_zone(name: str) -> dt.tzinfo:
    if name in ("", "UTC"):
        return dt.timezone.utc
    if name == "Local":
        return dt.timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as e:
        raise ScheduleError(f"unknown time zone {name}") from e


def parse_schedule(spec: str, time_zone: str | None = None) -> Schedule:
    """robfig/cron's standard parser: optional TZ=/CRON_TZ= prefix, then five fields or a
    descriptor."""
    spec = spec.strip()
    tz: dt.tzinfo = dt.timezone.utc
    if spec.startswith("TZ=") or spec.startswith("CRON_TZ="):
        head, _, spec = spec.partition(" ")
        tz = load_zone(head.split("=", 1)[1])
        spec = spec.strip()
    elif time_zone is not None:
        tz = load_zone(time_zone)
    if spec.startswith("@"):
        if spec not in DESCRIPTORS:
            raise ScheduleError(f"unrecognized descriptor: {spec}")
        spec = DESCRIPTORS[spec]
    fields = spec.split()
    if len(fields) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: {spec}")
    if not croniter.is_valid(spec):
        raise ScheduleError(f"failed to parse schedule: {spec}")
    return Schedule(spec, tz)


def most_recent_schedule_time(cj: dict, now: float, sched: Schedule, with_deadline: bool):
    """(earliest time considered, most recent unmet scheduled time or None, missed: 'none'|'few'|'many')."""
    md, spec, st = cj["metadata"], cj.get("spec") or {}, cj.get("status") or {}
    earliest = parse_time(st.get("lastScheduleTime")) or parse_time(md.get("creationTimestamp")) or now
    if with_deadline and spec.get("startingDeadlineSeconds") is not None:
        deadline = now - spec["startingDeadlineSeconds"]
        if deadline > earliest:
            earliest = deadline
    t1 = sched.next(earliest)
    t2 = sched.next(t1)
    if now < t1:
        return earliest, None, "none"
    if now < t2:
        return earliest, t1, "none"
    between = round(t2 - t1)
    if between < 1:
        raise ScheduleError("time difference between two schedules is less than 1 second")
    missed = int(now - t1) // between + 1
    most_recent = None
    t = sched.next(t1 + (missed - 2) * between)
    while t <= now:
        most_recent = t
        t = sched.next(t)
    kind = "many" if missed > 100 else "few"
    return earliest, most_recent, kind


def next_schedule_delay(cj: dict, now: float, sched: Schedule) -> float:
    try:
        earliest, recent, missed = most_recent_schedule_time(cj, now, sched, False)
        if recent is None:
            recent = earliest if missed == "none" else now
    except ScheduleError:
        recent = now
    return sched.next(recent) + NEXT_SCHEDULE_DELTA - now


def job_name(cj: dict, scheduled: float) -> str:
    return f"{cj['metadata']['name']}-{int(scheduled) // 60}"


def rfc3339(t: float, tz: dt.tzinfo = dt.timezone.utc) -> str:
    d = dt.datetime.fromtimestamp(int(t), tz)
    if d.utcoffset() == dt.timedelta(0):
        return d.strftime("%Y-%m-%dT%H:%M:%SZ")
    return d.isoformat()


def job_from_template(cj: dict, scheduled: float) -> dict:
    tmpl = (cj.get("spec") or {}).get("jobTemplate") or {}
    tmd = tmpl.get("metadata") or {}
    tz_name = (cj.get("spec") or {}).get("timeZone") or ""
    annotations = dict(tmd.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP_ANNOTATION] = rfc3339(scheduled, load_zone(tz_name))
    md = {"name": job_name(cj, scheduled), "namespace": cj["metadata"]["namespace"],
          "annotations": annotations,
          "ownerReferences": [controller_ref(cj, "batch/v1", "CronJob")]}
    if tmd.get("labels"):
        md["labels"] = dict(tmd["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": md, "spec": clone(tmpl.get("spec") or {})}


def job_ref(job: dict) -> dict:
    md = job["metadata"]
    return {"kind": "Job", "namespace": md["namespace"], "name": md["name"], "uid": md["uid"],
            "apiVersion": "batch/v1", "resourceVersion": md.get("resourceVersion", "")}


def finished_type(job: dict) -> str | None:
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return c["type"]
    return None


class CronJobController:
    def __init__(self, client: Client, workers: int = 5, *, cronjob_informer: Informer | None = None,
                 job_informer: Informer | None = None, clock=time.time):
        self.client = client
        self.workers = workers
        self.now = clock
        self.cj_informer = cronjob_informer or Informer(client, CRON_JOBS)
        self.job_informer = job_informer or Informer(client, JOBS)
        self.queue = WorkQueue()
        self.jobs_by_owner: dict[str, dict[str, dict]] = {}
        self.events = EventRecorder(client, "cronjob-controller", senders=2)
        self.cj_informer.add_handlers(self._on_cj_add, self._on_cj_update, None)
        self.job_informer.add_handlers(self._on_job_add, self._on_job_update, self._on_job_delete)

    async def run(self) -> None:
        self.cj_informer.start()
        self.job_informer.start()
        try:
            await asyncio.gather(self.cj_informer.wait_synced(), self.job_informer.wait_synced())
            self.events.start()
            await asyncio.gather(*(self.queue.run_worker(self._sync, self._sync_failed)
                                   for _ in range(self.workers)))
        finally:
            self.queue.shutdown()
            await self.cj_informer.stop()
            await self.job_informer.stop()
            await self.events.stop()

    # -- handlers --------------------------------------------------------------------------
    def _on_cj_add(self, cj: dict) -> None:
        self.queue.add(key_of(cj))

    def _on_cj_update(self, old: dict, cj: dict) -> None:
        os_, ns = old.get("spec") or {}, cj.get("spec") or {}
        if os_.get("schedule") != ns.get("schedule") or os_.get("timeZone") != ns.get("timeZone"):
            try:
                sched = parse_schedule(ns.get("schedule") or "", ns.get("timeZone"))
            except ScheduleError:
                self.events.event(cj, "Warning", "UnParseableCronJobSchedule",
                                  f"unparseable schedule for cronjob: {ns.get('schedule')}")
                return
            self.queue.add_after(key_of(cj), next_schedule_delay(cj, self.now(), sched))
            return
        self.queue.add(key_of(cj))

    def _index(self, job: dict, add: bool) -> None:
        ref = controller_of(job)
        if ref is None:
            return
        owned = self.jobs_by_owner.setdefault(ref.get("uid"), {})
        if add:
            owned[key_of(job)] = job
        else:
            owned.pop(key_of(job), None)
            if not owned:
                self.jobs_by_owner.pop(ref.get("uid"), None)

    def _resolve(self, ns: str, ref: dict | None) -> dict | None:
        if ref is None or ref.get("kind") != "CronJob":
            return None
        cj = self.cj_informer.get(f"{ns}/{ref.get('name')}")
        if cj is None or cj["metadata"].get("uid") != ref.get("uid"):
            return None
        return cj

    def _enqueue_owner(self, job: dict, ref=None) -> None:
        cj = self._resolve(job["metadata"]["namespace"], ref if ref is not None else controller_of(job))
        if cj is not None:
            self.queue.add(key_of(cj))

    def _on_job_add(self, job: dict) -> None:
        self._index(job, True)
        self._enqueue_owner(job)

    def _on_job_update(self, old: dict, job: dict) -> None:
        self._index(old, False)
        self._index(job, True)
        if old["metadata"].get("resourceVersion") == job["metadata"].get("resourceVersion"):
            return
        if controller_of(old) != controller_of(job) and controller_of(old) is not None:
            self._enqueue_owner(old)
        self._enqueue_owner(job)

    def _on_job_delete(self, job: dict) -> None:
        self._index(job, False)
        self._enqueue_owner(job)

    # -- sync ------------------------------------------------------------------------------
    def _sync_failed(self, key: str, e: Exception) -> None:
        log.info("syncing cronjob %s: %s", key, e)
        self.queue.add_rate_limited(key)

    async def _sync(self, key: str) -> None:
        cj = self.cj_informer.get(key)
        if cj is None:
            return
        jobs = list((self.jobs_by_owner.get(cj["metadata"]["uid"]) or {}).values())
        cj = clone(cj)
        cj.setdefault("status", {})
        update = await self._cleanup_finished(cj, jobs)
        requeue, updated, err = None, False, None
        try:
            requeue, updated = await self.sync_cronjob(cj, jobs)
        except ApiError as e:
            err = e
        if update or updated:
            st = cj["status"]
            if not st.get("active"):
                st.pop("active", None)
            await self.client.update(CRON_JOBS, cj, subresource="status")
        if requeue is not None:
            self.queue.add_after(key, max(requeue, 0.0))
            return
        if err is not None:
            raise err

    async def _cleanup_finished(self, cj: dict, jobs: list[dict]) -> bool:
        spec = cj.get("spec") or {}
        succeeded = [j for j in jobs if finished_type(j) == "Complete"]
        failed = [j for j in jobs if finished_type(j) == "Failed"]
        changed = False
        for group, limit in ((succeeded, spec.get("successfulJobsHistoryLimit")),
                             (failed, spec.get("failedJobsHistoryLimit"))):
            if limit is None or len(group) <= limit:
                continue
            group.sort(key=_start_time_order)
            for j in group[:len(group) - limit]:
                if await self._delete_job(cj, j):
                    changed = True
        return changed

    async def _delete_job(self, cj: dict, job: dict) -> bool:
        try:
            await self.client.delete(JOBS, job["metadata"]["name"], job["metadata"]["namespace"],
                                     propagation_policy="Background")
        except ApiError as e:
            self.events.event(cj, "Warning", "FailedDelete", f"Deleted job: {e.message}")
            return False
        _remove_active(cj, job["metadata"]["uid"])
        self.events.event(cj, "Normal", "SuccessfulDelete", f"Deleted job {job['metadata']['name']}")
        return True

    async def sync_cronjob(self, cj: dict, jobs: list[dict]) -> tuple[float | None, bool]:
        now = self.now()
        status = cj["status"]
        update = False
        children = set()
        for j in jobs:
            uid = j["metadata"]["uid"]
            children.add(uid)
            found = _in_active(cj, uid)
            if not found and not is_job_finished(j):
                fresh = await self.client.get(CRON_JOBS, cj["metadata"]["name"], cj["metadata"]["namespace"])
                if _in_active(fresh, uid):
                    cj.clear()
                    cj.update(fresh)
                    cj.setdefault("status", {})
                    status = cj["status"]
                    continue
                self.events.event(cj, "Warning", "UnexpectedJob",
                                  f"Saw a job that the controller did not create or forgot: {j['metadata']['name']}")
            elif is_job_finished(j):
                if found:
                    _remove_active(cj, uid)
                    self.events.event(cj, "Normal", "SawCompletedJob",
                                      f"Saw completed job: {j['metadata']['name']}, condition: {finished_type(j)}")
                    update = True
                if finished_type(j) == "Complete":
                    ct = (j.get("status") or {}).get("completionTime")
                    last = status.get("lastSuccessfulTime")
                    if ct and (last is None or (parse_time(ct) or 0) > (parse_time(last) or 0)):
                        status["lastSuccessfulTime"] = ct
                        update = True
        for ref in list(status.get("active") or ()):
            if ref.get("uid") in children:
                continue
            try:
                await self.client.get(JOBS, ref.get("name"), ref.get("namespace"))
            except ApiError as e:
                if e.code != 404:
                    raise
                self.events.event(cj, "Normal", "MissingJob", f"Active job went missing: {ref.get('name')}")
                _remove_active(cj, ref.get("uid"))
                update = True

        if cj["metadata"].get("deletionTimestamp"):
            return None, update
        spec = cj.get("spec") or {}
        tz = spec.get("timeZone")
        if tz is not None:
            try:
                load_zone(tz)
            except ScheduleError as e:
                self.events.event(cj, "Warning", "UnknownTimeZone", f'invalid timeZone: "{tz}": {e}')
                return None, update
        if spec.get("suspend"):
            return None, update
        schedule = spec.get("schedule") or ""
        if "TZ" in schedule:
            self.events.event(cj, "Warning", "UnsupportedSchedule",
                              f'CRON_TZ or TZ used in schedule "{schedule}" is not officially supported, see '
                              "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details")
        try:
            sched = parse_schedule(schedule, None if "TZ" in schedule else tz)
        except ScheduleError as e:
            self.events.event(cj, "Warning", "UnparseableSchedule", f'unparseable schedule: "{schedule}" : {e}')
            return None, update
        try:
            _, scheduled, missed = most_recent_schedule_time(cj, now, sched, True)
        except ScheduleError as e:
            self.events.event(cj, "Warning", "InvalidSchedule", f"invalid schedule: {schedule} : {e}")
            return None, update
        if scheduled is not None and missed == "many":
            self.events.event(cj, "Warning", "TooManyMissedTimes", "too many missed start times. Set or decrease "
                              ".spec.startingDeadlineSeconds or check clock skew")
        if scheduled is None or scheduled > now:
            return next_schedule_delay(cj, now, sched), update
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and scheduled + deadline < now:
            when = dt.datetime.fromtimestamp(scheduled, dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")
            self.events.event(cj, "Warning", "MissSchedule", f"Missed scheduled time to start a job: {when}")
            return next_schedule_delay(cj, now, sched), update
        name = job_name(cj, scheduled)
        if any(r.get("name") == name for r in status.get("active") or ()) or \
                parse_time(status.get("lastScheduleTime")) == float(int(scheduled)):
            return next_schedule_delay(cj, now, sched), update
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and status.get("active"):
            self.events.event(cj, "Normal", "JobAlreadyActive",
                              "Not starting job because prior execution is running and concurrency policy is Forbid")
            return next_schedule_delay(cj, now, sched), update
        if policy == "Replace":
            for ref in list(status.get("active") or ()):
                try:
                    job = await self.client.get(JOBS, ref.get("name"), ref.get("namespace"))
                except ApiError as e:
                    self.events.event(cj, "Warning", "FailedGet", f"Get job: {e.message}")
                    raise
                if not await self._delete_job(cj, job):
                    raise ApiError(500, None, f"could not replace job {ref.get('namespace')}/{ref.get('name')}")
                update = True
        req = job_from_template(cj, scheduled)
        try:
            job = await self.client.create(JOBS, req, cj["metadata"]["namespace"])
            self.events.event(cj, "Normal", "SuccessfulCreate", f"Created job {job['metadata']['name']}")
        except ApiError as e:
            causes = ((e.status or {}).get("details") or {}).get("causes") or ()
            if any(c.get("reason") == "NamespaceTerminating" for c in causes):
                raise
            if e.code != 409:
                self.events.event(cj, "Warning", "FailedCreate", f"Error creating job: {e.message}")
                raise
            job = await self.client.get(JOBS, req["metadata"]["name"], cj["metadata"]["namespace"])
            if (controller_of(job) or {}).get("uid") != cj["metadata"]["uid"] or _in_active(cj, job["metadata"]["uid"]):
                return None, update
        status.setdefault("active", []).append(job_ref(job))
        status["lastScheduleTime"] = rfc3339(scheduled)
        return next_schedule_delay(cj, now, sched), True


def _in_active(cj: dict, uid: str) -> bool:
    return any(r.get("uid") == uid for r in (cj.get("status") or {}).get("active") or ())


def _remove_active(cj: dict, uid: str) -> None:
    st = cj.setdefault("status", {})
    st["active"] = [r for r in st.get("active") or () if r.get("uid") != uid]


def _start_time_order(job: dict):
    st = parse_time((job.get("status") or {}).get("startTime"))
    return (st is None, st or 0.0, job["metadata"]["name"])
