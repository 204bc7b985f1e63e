"""Unit tests of the Job, CronJob and TTL controllers' own logic (no server): cron schedules
and missed times, the CronJob sync against a fake API, Job index bookkeeping, back-off and
pod failure policy matching."""
from __future__ import annotations

import datetime as dt

import pytest

from shim.client.api import ApiError
from shim.controllers import cronjob as cjc
from shim.controllers import job as jc
from shim.controllers.ttlafterfinished import time_left


def ts(s: str) -> float:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


# -- schedules --------------------------------------------------------------------------------

def test_parse_schedule_fields_descriptors_and_zones():
    every_minute = cjc.parse_schedule("* * * * *")
    assert every_minute.next(ts("2026-01-01T10:00:30Z")) == ts("2026-01-01T10:01:00Z")
    assert every_minute.next(ts("2026-01-01T10:01:00Z")) == ts("2026-01-01T10:02:00Z")  # strictly after
    assert cjc.parse_schedule("@hourly").next(ts("2026-01-01T10:00:00Z")) == ts("2026-01-01T11:00:00Z")
    assert cjc.parse_schedule("@daily").next(ts("2026-01-01T10:00:00Z")) == ts("2026-01-02T00:00:00Z")
    assert cjc.parse_schedule("*/15 * * * *").next(ts("2026-01-01T10:01:00Z")) == ts("2026-01-01T10:15:00Z")
    # 09:00 in New York is 14:00 UTC in January
    ny = cjc.parse_schedule("0 9 * * *", "America/New_York")
    assert ny.next(ts("2026-01-01T10:00:00Z")) == ts("2026-01-01T14:00:00Z")
    assert cjc.parse_schedule("CRON_TZ=America/New_York 0 9 * * *").next(ts("2026-01-01T10:00:00Z")) == \
        ts("2026-01-01T14:00:00Z")
    assert cjc.parse_schedule("TZ=UTC 0 9 * * *").next(ts("2026-01-01T10:00:00Z")) == ts("2026-01-02T09:00:00Z")
    for bad in ("", "* * * *", "* * * * * *", "61 * * * *", "@every 5m", "@often", "nonsense"):
        with pytest.raises(cjc.ScheduleError):
            cjc.parse_schedule(bad)
    with pytest.raises(cjc.ScheduleError):
        cjc.parse_schedule("* * * * *", "Mars/Olympus")


def cronjob(created="2026-01-01T10:00:00Z", last=None, **spec) -> dict:
    st = {}
    if last:
        st["lastScheduleTime"] = last
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "cj", "namespace": "ns", "uid": "cj-uid", "creationTimestamp": created},
            "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Allow", "suspend": False,
                     "jobTemplate": {"metadata": {"labels": {"a": "b"}, "annotations": {"x": "y"}},
                                     "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}},
                     **spec},
            "status": st}


def test_most_recent_schedule_time():
    sched = cjc.parse_schedule("* * * * *")
    cj = cronjob()
    assert cjc.most_recent_schedule_time(cj, ts("2026-01-01T10:00:59Z"), sched, True)[1:] == (None, "none")
    assert cjc.most_recent_schedule_time(cj, ts("2026-01-01T10:01:30Z"), sched, True)[1:] == \
        (ts("2026-01-01T10:01:00Z"), "none")
    # several missed: the most recent one counts
    assert cjc.most_recent_schedule_time(cj, ts("2026-01-01T10:05:10Z"), sched, True)[1:] == \
        (ts("2026-01-01T10:05:00Z"), "few")
    # more than 100 missed
    assert cjc.most_recent_schedule_time(cj, ts("2026-01-01T13:00:10Z"), sched, True)[2] == "many"
    # ...unless startingDeadlineSeconds bounds how far back to look
    cj_deadline = cronjob(startingDeadlineSeconds=30)
    assert cjc.most_recent_schedule_time(cj_deadline, ts("2026-01-01T13:00:10Z"), sched, True)[1:] == \
        (ts("2026-01-01T13:00:00Z"), "none")
    # the last schedule time moves the start
    cj_last = cronjob(last="2026-01-01T10:05:00Z")
    assert cjc.most_recent_schedule_time(cj_last, ts("2026-01-01T10:05:30Z"), sched, True)[1] is None
    assert cjc.next_schedule_delay(cj_last, ts("2026-01-01T10:05:30Z"), sched) == pytest.approx(30.1)


def test_job_from_template_name_and_annotation():
    j = cjc.job_from_template(cronjob(timeZone="Europe/Paris"), ts("2026-01-01T10:05:00Z"))
    assert j["metadata"]["name"] == f"cj-{int(ts('2026-01-01T10:05:00Z')) // 60}"
    assert j["metadata"]["annotations"] == {"x": "y", cjc.SCHEDULED_TIMESTAMP_ANNOTATION: "2026-01-01T11:05:00+01:00"}
    assert j["metadata"]["labels"] == {"a": "b"}
    assert j["metadata"]["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "cj",
                                                 "uid": "cj-uid", "controller": True, "blockOwnerDeletion": True}]
    assert cjc.job_from_template(cronjob(), ts("2026-01-01T10:05:00Z"))["metadata"]["annotations"][
        cjc.SCHEDULED_TIMESTAMP_ANNOTATION] == "2026-01-01T10:05:00Z"


class FakeApi:
    """Just enough of shim.client.api.Client for CronJobController.sync_cronjob."""

    def __init__(self, jobs=()):
        self.jobs = {j["metadata"]["name"]: j for j in jobs}
        self.created, self.deleted = [], []
        self.n = 0

    async def create(self, res, obj, namespace=None, **kw):
        if obj["metadata"]["name"] in self.jobs:
            raise ApiError(409, {"reason": "AlreadyExists"})
        self.n += 1
        obj = dict(obj, metadata=dict(obj["metadata"], uid=f"job-{self.n}", resourceVersion="1"))
        self.jobs[obj["metadata"]["name"]] = obj
        self.created.append(obj["metadata"]["name"])
        return obj

    async def get(self, res, name, namespace=None, **kw):
        if res.plural == "cronjobs":
            raise ApiError(404, {})
        if name not in self.jobs:
            raise ApiError(404, {})
        return self.jobs[name]

    async def delete(self, res, name, namespace=None, **kw):
        self.deleted.append((name, kw.get("propagation_policy")))
        self.jobs.pop(name, None)


def controller(api, now: str) -> cjc.CronJobController:
    return cjc.CronJobController(api, clock=lambda: ts(now))


def reasons(c) -> list[str]:
    return [item[2] for q in c.events._queues for item in q]


def active_job(name, uid):
    return {"metadata": {"name": name, "namespace": "ns", "uid": uid,
                         "ownerReferences": [{"kind": "CronJob", "uid": "cj-uid", "controller": True}]},
            "status": {"active": 1}}


@pytest.mark.parametrize("policy,created,deleted", [
    ("Allow", True, []), ("Forbid", False, []), ("Replace", True, [("old", "Background")])])
async def test_concurrency_policies(policy, created, deleted):
    old = active_job("old", "old-uid")
    api = FakeApi([old])
    cj = cronjob(last="2026-01-01T10:00:00Z", concurrencyPolicy=policy)
    cj["status"]["active"] = [{"kind": "Job", "name": "old", "namespace": "ns", "uid": "old-uid"}]
    c = controller(api, "2026-01-01T10:01:05Z")
    requeue, update = await c.sync_cronjob(cj, [old])
    assert requeue == pytest.approx(55.1)
    assert bool(api.created) == created
    assert api.deleted == deleted
    names = [a["name"] for a in cj["status"].get("active") or ()]
    if policy == "Allow":
        assert names == ["old", f"cj-{int(ts('2026-01-01T10:01:00Z')) // 60}"]
    elif policy == "Forbid":
        assert names == ["old"] and "JobAlreadyActive" in reasons(c) and not update
    else:
        assert names == [f"cj-{int(ts('2026-01-01T10:01:00Z')) // 60}"]
        assert "SuccessfulDelete" in reasons(c)
    if created:
        assert cj["status"]["lastScheduleTime"] == "2026-01-01T10:01:00Z" and "SuccessfulCreate" in reasons(c)


async def test_starting_deadline_missed_and_suspend():
    api = FakeApi()
    cj = cronjob(last="2026-01-01T10:00:00Z", startingDeadlineSeconds=10)
    c = controller(api, "2026-01-01T10:01:30Z")
    requeue, update = await c.sync_cronjob(cj, [])
    # 10:01 is more than 10 s ago: upstream looks back only startingDeadlineSeconds, finds nothing
    assert not api.created and requeue == pytest.approx(30.1)
    cj = cronjob(last="2026-01-01T10:00:00Z", startingDeadlineSeconds=60)
    c = controller(api, "2026-01-01T10:02:30Z")
    await c.sync_cronjob(cj, [])
    assert api.created == [f"cj-{int(ts('2026-01-01T10:02:00Z')) // 60}"]
    api = FakeApi()
    cj = cronjob(last="2026-01-01T10:00:00Z", suspend=True)
    assert await controller(api, "2026-01-01T10:05:00Z").sync_cronjob(cj, []) == (None, False)
    assert not api.created


async def test_finished_and_missing_jobs_leave_active():
    done = active_job("done", "done-uid")
    done["status"] = {"conditions": [{"type": "Complete", "status": "True"}],
                      "completionTime": "2026-01-01T10:00:40Z"}
    api = FakeApi([done])
    cj = cronjob(last="2026-01-01T10:00:00Z")
    cj["status"]["active"] = [{"name": "done", "namespace": "ns", "uid": "done-uid"},
                              {"name": "gone", "namespace": "ns", "uid": "gone-uid"}]
    c = controller(api, "2026-01-01T10:00:50Z")
    requeue, update = await c.sync_cronjob(cj, [done])
    assert update and cj["status"]["active"] == [] and cj["status"]["lastSuccessfulTime"] == "2026-01-01T10:00:40Z"
    assert reasons(c) == ["SawCompletedJob", "MissingJob"]


async def test_history_limits_delete_oldest_first():
    def finished(name, start, ctype):
        j = active_job(name, name + "-uid")
        j["status"] = {"startTime": start, "conditions": [{"type": ctype, "status": "True"}]}
        return j
    jobs = [finished("s1", "2026-01-01T10:00:00Z", "Complete"), finished("s2", "2026-01-01T10:01:00Z", "Complete"),
            finished("s3", "2026-01-01T10:02:00Z", "Complete"), finished("f1", "2026-01-01T10:00:00Z", "Failed"),
            finished("f2", "2026-01-01T10:01:00Z", "Failed")]
    api = FakeApi(jobs)
    c = controller(api, "2026-01-01T10:03:00Z")
    cj = cronjob(successfulJobsHistoryLimit=1, failedJobsHistoryLimit=1)
    assert await c._cleanup_finished(cj, jobs)
    assert api.deleted == [("s1", "Background"), ("s2", "Background"), ("f1", "Background")]


# -- Job helpers --------------------------------------------------------------------------------

def test_completed_indexes_round_trip():
    assert jc.format_indexes(jc.intervals_of([0, 1, 2, 4, 6, 7])) == "0-2,4,6,7"
    assert jc.parse_indexes("0-2,4,6,7", 10) == [(0, 2), (4, 4), (6, 7)]
    assert jc.parse_indexes("0-2,4,6,7", 5) == [(0, 2), (4, 4)]
    assert jc.format_indexes(jc.intervals_with([(0, 0), (2, 2)], [1])) == "0-2"
    assert jc.format_indexes(jc.intervals_with([], [3, 1])) == "1,3"


def test_pod_failure_backoff():
    assert jc.backoff_remaining(0, None, 100.0) == 0
    assert jc.backoff_remaining(1, 100.0, 103.0) == pytest.approx(7.0)
    assert jc.backoff_remaining(3, 100.0, 110.0) == pytest.approx(30.0)  # 10 s * 2 * 2
    assert jc.backoff_remaining(20, 100.0, 110.0) == pytest.approx(590.0)  # capped at 10 min
    assert jc.backoff_remaining(1, 100.0, 111.0) == 0


def failed_pod(code, conditions=()):
    return {"metadata": {"name": "p", "namespace": "ns"},
            "status": {"phase": "Failed", "conditions": list(conditions),
                       "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": code}}}]}}


def test_pod_failure_policy_matching():
    policy = {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
        {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}},
    ]}
    assert jc.match_pod_failure_policy(policy, failed_pod(42)) == (
        "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1", True, "FailJob")
    assert jc.match_pod_failure_policy(policy, failed_pod(7)) == (None, True, "Count")
    assert jc.match_pod_failure_policy(policy, failed_pod(1)) == (None, True, None)
    assert jc.match_pod_failure_policy(policy, failed_pod(42, [{"type": "DisruptionTarget", "status": "True"}])) == \
        (None, False, "Ignore")
    assert jc.match_pod_failure_policy(None, failed_pod(42)) == (None, True, None)


def test_ttl_time_left():
    job = {"metadata": {"name": "j", "namespace": "ns"}, "spec": {"ttlSecondsAfterFinished": 30},
           "status": {"conditions": [{"type": "Complete", "status": "True",
                                      "lastTransitionTime": "2026-01-01T10:00:00Z"}]}}
    assert time_left(job, ts("2026-01-01T10:00:10Z")) == pytest.approx(20.0)
    assert time_left(job, ts("2026-01-01T10:00:40Z")) == pytest.approx(-10.0)
    assert time_left({**job, "spec": {}}, ts("2026-01-01T10:00:40Z")) is None
    running = {**job, "status": {}}
    assert time_left(running, ts("2026-01-01T10:00:40Z")) is None


def test_success_policy_matching():
    policy = {"rules": [{"succeededIndexes": "0,2-3", "succeededCount": 2}, {"succeededCount": 4}]}
    assert jc.match_success_policy(policy, 5, []) is None
    assert jc.match_success_policy(policy, 5, [(0, 0)]) is None
    assert jc.match_success_policy(policy, 5, [(0, 0), (3, 3)]) == "Matched rules at index 0"
    assert jc.match_success_policy(policy, 5, [(1, 1), (4, 4)]) is None
    assert jc.match_success_policy({"rules": [{"succeededIndexes": "1-2"}]}, 5, [(0, 2)]) == "Matched rules at index 0"
    assert jc.match_success_policy(policy, 5, [(1, 4)]) == "Matched rules at index 0"
    assert jc.match_success_policy({"rules": [{"succeededCount": 3}]}, 5, [(1, 2), (4, 4)]) == \
        "Matched rules at index 0"
    assert jc.match_success_policy(None, 5, [(0, 4)]) is None
