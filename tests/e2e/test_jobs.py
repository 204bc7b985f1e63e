"""Jobs, CronJobs and TTL-after-finished end to end: kubectl and the Python client against
`shim up` with its controller manager.

There are no nodes: the test plays the kubelet, binding pods (spec.nodeName) and writing
their phase and container exit codes through pods/status.
"""
from __future__ import annotations

import datetime as dt
import re
import textwrap
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .test_workloads import as_dict, events_for, wait_for

TRACKING = "batch.kubernetes.io/job-tracking"


def now_rfc3339(offset: float = 0.0) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%SZ")


def job_pods(api_client, ns: str, job: str, include_deleted: bool = True) -> list[dict]:
    pods = client.CoreV1Api(api_client).list_namespaced_pod(ns, label_selector=f"batch.kubernetes.io/job-name={job}")
    out = [as_dict(api_client, p) for p in pods.items]
    if not include_deleted:
        out = [p for p in out if not p["metadata"].get("deletionTimestamp")]
    return sorted(out, key=lambda p: p["metadata"]["creationTimestamp"] + p["metadata"]["name"])


def running(pods: list[dict]) -> list[dict]:
    return [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")]


def get_job(api_client, ns: str, name: str) -> dict:
    return as_dict(api_client, client.BatchV1Api(api_client).read_namespaced_job(name, ns))


def conditions(job: dict) -> dict[str, dict]:
    return {c["type"]: c for c in (job.get("status") or {}).get("conditions") or ()}


def finish_pod(api_client, ns: str, pod: dict, exit_code: int = 0, container: str = "main",
               extra_conditions: list | None = None) -> None:
    """What a kubelet reports when the pod's only container exits."""
    v1 = client.CoreV1Api(api_client)
    name = pod["metadata"]["name"]
    if not pod["spec"].get("nodeName"):
        v1.patch_namespaced_pod(name, ns, {"spec": {"nodeName": "fake-node"}})
    started = now_rfc3339(-1)
    phase = "Succeeded" if exit_code == 0 else "Failed"
    status = {"phase": phase, "startTime": started,
              "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now_rfc3339(),
                              "reason": "PodCompleted"}] + (extra_conditions or []),
              "containerStatuses": [{
                  "name": container, "image": "busybox:local", "imageID": "", "ready": False,
                  "restartCount": 0, "started": False,
                  "state": {"terminated": {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                                           "startedAt": started, "finishedAt": now_rfc3339()}}}]}
    v1.patch_namespaced_pod_status(name, ns, {"status": status})


def job_manifest(ns: str, name: str, spec_extra: str = "", command: str = "true") -> str:
    extra = textwrap.indent(textwrap.dedent(spec_extra), "  ")
    return (f"apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{extra}"
            "  template:\n    spec:\n      restartPolicy: Never\n"
            f'      containers: [{{name: main, image: "busybox:local", command: ["sh", "-c", "{command}"]}}]\n')


def wait_job(api_client, ns, name, pred, what, timeout=30.0):
    return wait_for(lambda: (j := get_job(api_client, ns, name)) and pred(j) and j, timeout=timeout, what=what)


# -- defaulting -------------------------------------------------------------------------------

def test_job_defaults_and_generated_selector(kubectl, api_client, namespace):
    ns = namespace
    kubectl("apply", "-f", "-", input=job_manifest(ns, "d", "completions: 2\n"))
    j = get_job(api_client, ns, "d")
    uid = j["metadata"]["uid"]
    spec = j["spec"]
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert spec["template"]["metadata"]["labels"] == {
        "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "d",
        "controller-uid": uid, "job-name": "d"}
    assert j["metadata"]["labels"] == spec["template"]["metadata"]["labels"]
    assert (spec["parallelism"], spec["completions"], spec["backoffLimit"], spec["completionMode"],
            spec["suspend"], spec["manualSelector"], spec["podReplacementPolicy"]) == \
        (1, 2, 6, "NonIndexed", False, False, "TerminatingOrFailed")
    # parallelism alone leaves completions unset (a work-queue Job)
    kubectl("apply", "-f", "-", input=job_manifest(ns, "wq", "parallelism: 2\n"))
    assert get_job(api_client, ns, "wq")["spec"].get("completions") is None
    # restartPolicy Always is refused; a wrong controller-uid label too
    p = kubectl.run("apply", "-f", "-", check=False,
                    input=job_manifest(ns, "bad", "").replace("Never", "Always"))
    assert p.returncode != 0 and 'Unsupported value: "Always"' in p.stderr
    bad = job_manifest(ns, "bad2", "").replace(
        "  template:\n", "  template:\n    metadata: {labels: {controller-uid: nope}}\n")
    p = kubectl.run("apply", "-f", "-", check=False, input=bad)
    assert p.returncode != 0 and "controller-uid" in p.stderr, p.stderr
    # the selector may not change
    p = kubectl.run("patch", "job", "d", "-n", ns, "--type=merge", "-p",
                    '{"spec":{"selector":{"matchLabels":{"a":"b"}}}}', check=False)
    assert p.returncode != 0 and "field is immutable" in p.stderr


# -- NonIndexed ------------------------------------------------------------------------------

def test_completions_and_parallelism(kubectl, api_client, namespace):
    ns = namespace
    kubectl("apply", "-f", "-", input=job_manifest(ns, "pi", "completions: 3\nparallelism: 2\n"))
    job = get_job(api_client, ns, "pi")
    pods = wait_for(lambda: len(p := running(job_pods(api_client, ns, "pi"))) == 2 and p, what="2 pods")
    for p in pods:
        md = p["metadata"]
        assert md["generateName"] == "pi-"
        assert TRACKING in md["finalizers"]
        ref = md["ownerReferences"][0]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == \
            ("Job", "pi", job["metadata"]["uid"], True, True)
        assert md["labels"]["batch.kubernetes.io/job-name"] == "pi"
        assert md["labels"]["job-name"] == "pi"
    j = wait_job(api_client, ns, "pi", lambda j: j["status"].get("active") == 2, "active 2")
    assert j["status"]["ready"] == 0 and j["status"]["terminating"] == 0 and j["status"]["startTime"]
    assert j["status"]["uncountedTerminatedPods"] == {}

    finish_pod(api_client, ns, pods[0])
    # the finished pod is counted, its finalizer removed, and a third pod is started
    wait_job(api_client, ns, "pi", lambda j: j["status"].get("succeeded") == 1, "succeeded 1")
    wait_for(lambda: TRACKING not in (client.CoreV1Api(api_client).read_namespaced_pod(
        pods[0]["metadata"]["name"], ns).metadata.finalizers or []), what="finalizer removed")
    pods = wait_for(lambda: len(p := running(job_pods(api_client, ns, "pi"))) == 2 and p, what="replacement")
    out = kubectl("get", "jobs", "-n", ns)
    header, row = out.splitlines()[:2]
    assert header.split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert row.split()[:3] == ["pi", "Running", "1/3"]
    for p in pods:
        finish_pod(api_client, ns, p)
    j = wait_job(api_client, ns, "pi", lambda j: "Complete" in conditions(j), "complete")
    c = conditions(j)
    assert (c["Complete"]["status"], c["Complete"]["reason"], c["Complete"]["message"]) == \
        ("True", "CompletionsReached", "Reached expected number of succeeded pods")
    assert c["SuccessCriteriaMet"]["reason"] == "CompletionsReached"
    st = j["status"]
    assert st["succeeded"] == 3 and not st.get("active") and st["completionTime"] and not st.get("failed")
    assert all(TRACKING not in (p["metadata"].get("finalizers") or []) for p in job_pods(api_client, ns, "pi"))
    row = kubectl("get", "jobs", "pi", "-n", ns, "--no-headers").split()
    assert row[:3] == ["pi", "Complete", "3/3"] and re.fullmatch(r"\d+s", row[3])
    out = kubectl("wait", "--for=condition=complete", "job/pi", "-n", ns, "--timeout=10s")
    assert "job.batch/pi condition met" in out
    reasons = [r for _, r, _ in events_for(api_client, ns, "pi")]
    assert reasons.count("SuccessfulCreate") == 3 and reasons[-1] == "Completed", reasons


def test_indexed_job(kubectl, api_client, namespace):
    ns = namespace
    kubectl("apply", "-f", "-",
            input=job_manifest(ns, "ix", "completions: 3\nparallelism: 3\ncompletionMode: Indexed\n"))
    pods = wait_for(lambda: len(p := running(job_pods(api_client, ns, "ix"))) == 3 and p, what="3 pods")
    by_index = {}
    for p in pods:
        ix = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == ix
        assert p["spec"]["hostname"] == f"ix-{ix}"
        assert p["metadata"]["generateName"] == f"ix-{ix}-"
        env = p["spec"]["containers"][0]["env"]
        assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "apiVersion": "v1", "fieldPath": "metadata.labels['batch.kubernetes.io/job-completion-index']"}}} in env
        by_index[ix] = p
    assert sorted(by_index) == ["0", "1", "2"]
    finish_pod(api_client, ns, by_index["0"])
    finish_pod(api_client, ns, by_index["2"])
    wait_job(api_client, ns, "ix", lambda j: j["status"].get("completedIndexes") == "0,2", "0,2 completed")
    # index 1 fails: a replacement for index 1 only (after the back-off)
    finish_pod(api_client, ns, by_index["1"], exit_code=1)
    wait_job(api_client, ns, "ix", lambda j: j["status"].get("failed") == 1, "failed 1")
    repl = wait_for(lambda: (r := running(job_pods(api_client, ns, "ix"))) and r, timeout=30, what="replacement")
    assert [p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in repl] == ["1"]
    finish_pod(api_client, ns, repl[0])
    j = wait_job(api_client, ns, "ix", lambda j: "Complete" in conditions(j), "complete")
    assert j["status"]["completedIndexes"] == "0-2" and j["status"]["succeeded"] == 3
    assert j["status"]["failed"] == 1


def test_indexed_success_policy(kubectl, api_client, namespace):
    ns = namespace
    spec = """\
        completions: 3
        parallelism: 3
        completionMode: Indexed
        successPolicy:
          rules: [{succeededIndexes: "0"}]
        """
    kubectl("apply", "-f", "-", input=job_manifest(ns, "sp", spec))
    pods = wait_for(lambda: len(p := running(job_pods(api_client, ns, "sp"))) == 3 and p, what="3 pods")
    leader = next(p for p in pods if p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "0")
    finish_pod(api_client, ns, leader)
    j = wait_job(api_client, ns, "sp", lambda j: "Complete" in conditions(j), "complete by success policy")
    c = conditions(j)
    assert (c["SuccessCriteriaMet"]["reason"], c["SuccessCriteriaMet"]["message"]) == \
        ("SuccessPolicy", "Matched rules at index 0")
    assert (c["Complete"]["reason"], c["Complete"]["message"]) == ("SuccessPolicy", "Matched rules at index 0")
    # the other two were deleted; their finalizers went in the same sync, before they could be
    # seen failing, so (as upstream) they are not counted as failed
    assert j["status"]["completedIndexes"] == "0" and j["status"]["succeeded"] == 1 and "failed" not in j["status"]
    assert not running(job_pods(api_client, ns, "sp"))


def test_backoff_limit_exceeded(kubectl, api_client, namespace):
    ns = namespace
    kubectl("apply", "-f", "-", input=job_manifest(ns, "bo", "backoffLimit: 1\n"))
    first = wait_for(lambda: (r := running(job_pods(api_client, ns, "bo"))) and r[0], what="pod")
    t0 = time.time()
    finish_pod(api_client, ns, first, exit_code=3)
    second = wait_for(lambda: (r := running(job_pods(api_client, ns, "bo"))) and r[0], timeout=30, what="2nd pod")
    # upstream's pod failure back-off: 10 s after the first failure
    assert time.time() - t0 >= 8, time.time() - t0
    assert get_job(api_client, ns, "bo")["status"]["failed"] == 1
    finish_pod(api_client, ns, second, exit_code=3)
    j = wait_job(api_client, ns, "bo", lambda j: "Failed" in conditions(j), "failed")
    c = conditions(j)
    assert (c["Failed"]["reason"], c["Failed"]["message"]) == \
        ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    assert c["FailureTarget"]["reason"] == "BackoffLimitExceeded"
    assert j["status"]["failed"] == 2 and "completionTime" not in j["status"]
    assert kubectl("get", "job", "bo", "-n", ns, "--no-headers").split()[1:3] == ["Failed", "0/1"]
    evs = events_for(api_client, ns, "bo")
    assert ("Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit") in evs


def test_active_deadline_seconds(kubectl, api_client, namespace):
    ns = namespace
    kubectl("apply", "-f", "-",
            input=job_manifest(ns, "dl", "activeDeadlineSeconds: 3\nparallelism: 2\ncompletions: 4\n"))
    wait_for(lambda: len(running(job_pods(api_client, ns, "dl"))) == 2, what="2 pods")
    j = wait_job(api_client, ns, "dl", lambda j: "Failed" in conditions(j), "deadline", timeout=20)
    c = conditions(j)["Failed"]
    assert (c["reason"], c["message"]) == ("DeadlineExceeded", "Job was active longer than specified deadline")
    assert j["status"]["failed"] == 2 and not j["status"].get("active")
    pods = job_pods(api_client, ns, "dl")
    # the running pods were deleted and, once counted, let go of the finalizer
    assert all(p["metadata"].get("deletionTimestamp") or (p.get("status") or {}).get("phase") == "Failed"
               for p in pods) or not pods
    assert all(TRACKING not in (p["metadata"].get("finalizers") or []) for p in pods)
    reasons = [r for _, r, _ in events_for(api_client, ns, "dl")]
    assert "SuccessfulDelete" in reasons and "DeadlineExceeded" in reasons


def test_suspend_and_resume(kubectl, api_client, namespace):
    ns = namespace
    kubectl("apply", "-f", "-", input=job_manifest(ns, "sus", "suspend: true\nparallelism: 2\ncompletions: 2\n"))
    j = wait_job(api_client, ns, "sus", lambda j: "Suspended" in conditions(j), "suspended")
    c = conditions(j)["Suspended"]
    assert (c["status"], c["reason"], c["message"]) == ("True", "JobSuspended", "Job suspended")
    assert not job_pods(api_client, ns, "sus") and "startTime" not in j["status"]
    assert kubectl("get", "job", "sus", "-n", ns, "--no-headers").split()[1] == "Suspended"
    kubectl("patch", "job", "sus", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    j = wait_job(api_client, ns, "sus", lambda j: conditions(j)["Suspended"]["status"] == "False", "resumed")
    c = conditions(j)["Suspended"]
    assert (c["reason"], c["message"]) == ("JobResumed", "Job resumed") and j["status"]["startTime"]
    wait_for(lambda: len(running(job_pods(api_client, ns, "sus"))) == 2, what="2 pods")
    kubectl("patch", "job", "sus", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    wait_for(lambda: not running(job_pods(api_client, ns, "sus")), what="pods deleted")
    j = wait_job(api_client, ns, "sus", lambda j: conditions(j)["Suspended"]["status"] == "True", "suspended again")
    assert not j["status"].get("active")
    reasons = [r for _, r, _ in events_for(api_client, ns, "sus")]
    assert {"Suspended", "Resumed", "SuccessfulCreate", "SuccessfulDelete"} <= set(reasons)


def test_pod_failure_policy(kubectl, api_client, namespace):
    ns = namespace
    policy = """\
        completions: 3
        parallelism: 3
        podFailurePolicy:
          rules:
          - action: Ignore
            onPodConditions: [{type: DisruptionTarget}]
          - action: FailJob
            onExitCodes: {containerName: main, operator: In, values: [42]}
        """
    kubectl("apply", "-f", "-", input=job_manifest(ns, "pfp", policy))
    j = get_job(api_client, ns, "pfp")
    assert j["spec"]["podReplacementPolicy"] == "Failed"
    pods = wait_for(lambda: len(p := running(job_pods(api_client, ns, "pfp"))) == 3 and p, what="3 pods")
    # a disrupted pod is ignored: not counted as failed
    finish_pod(api_client, ns, pods[0], exit_code=137, extra_conditions=[
        {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
         "lastTransitionTime": now_rfc3339()}])
    wait_for(lambda: len(running(job_pods(api_client, ns, "pfp"))) == 3, what="replacement of the ignored pod")
    assert not get_job(api_client, ns, "pfp")["status"].get("failed")
    # exit code 42 fails the Job
    finish_pod(api_client, ns, pods[1], exit_code=42)
    j = wait_job(api_client, ns, "pfp", lambda j: "Failed" in conditions(j), "failed")
    c = conditions(j)
    msg = (f"Container main for pod {ns}/{pods[1]['metadata']['name']} failed with exit code 42 "
           "matching FailJob rule at index 1")
    assert (c["Failed"]["reason"], c["Failed"]["message"]) == ("PodFailurePolicy", msg)
    assert (c["FailureTarget"]["reason"], c["FailureTarget"]["message"]) == ("PodFailurePolicy", msg)
    assert j["status"]["failed"] == 3  # the FailJob pod and the two deleted active ones
    assert all(TRACKING not in (p["metadata"].get("finalizers") or []) for p in job_pods(api_client, ns, "pfp"))


def test_managed_by_other_controller_is_left_alone(kubectl, api_client, namespace):
    ns = namespace
    kubectl("apply", "-f", "-", input=job_manifest(ns, "ext", "managedBy: example.com/other\n"))
    kubectl("apply", "-f", "-", input=job_manifest(ns, "own", ""))
    wait_for(lambda: job_pods(api_client, ns, "own"), what="pod of own job")
    time.sleep(1.5)
    assert not job_pods(api_client, ns, "ext") and not get_job(api_client, ns, "ext")["status"].get("startTime")


def test_kubectl_create_job_and_orphan_finalizer_removal(kubectl, api_client, namespace):
    ns = namespace
    assert kubectl("create", "job", "kc", "--image=busybox:local", "-n", ns, "--", "true").strip() == \
        "job.batch/kc created"
    pod = wait_for(lambda: (r := running(job_pods(api_client, ns, "kc"))) and r[0], what="pod")
    assert TRACKING in pod["metadata"]["finalizers"]
    # the Job is deleted orphaning its pods: the finalizer is removed all the same
    client.BatchV1Api(api_client).delete_namespaced_job("kc", ns, propagation_policy="Orphan")
    wait_for(lambda: TRACKING not in (client.CoreV1Api(api_client).read_namespaced_pod(
        pod["metadata"]["name"], ns).metadata.finalizers or []), what="orphan finalizer removed")


def test_ttl_after_finished(kubectl, api_client, namespace):
    ns = namespace
    kubectl("apply", "-f", "-", input=job_manifest(ns, "ttl", "ttlSecondsAfterFinished: 2\n"))
    pod = wait_for(lambda: (r := running(job_pods(api_client, ns, "ttl"))) and r[0], what="pod")
    finish_pod(api_client, ns, pod)
    wait_job(api_client, ns, "ttl", lambda j: "Complete" in conditions(j), "complete")
    t0 = time.time()

    def gone():
        try:
            client.BatchV1Api(api_client).read_namespaced_job("ttl", ns)
            return False
        except ApiException as e:
            return e.status == 404
    wait_for(gone, timeout=30, what="job deleted by TTL")
    assert time.time() - t0 >= 0.5
    wait_for(lambda: not job_pods(api_client, ns, "ttl"), timeout=30, what="pods deleted with the job")


# -- CronJobs --------------------------------------------------------------------------------

def cronjob_manifest(ns: str, name: str, extra: str = "", schedule: str = "* * * * *") -> str:
    extra = textwrap.indent(textwrap.dedent(extra), "  ")
    return (f"apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n"
            f'  schedule: "{schedule}"\n{extra}'
            f"  jobTemplate:\n    metadata: {{labels: {{from: {name}}}}}\n    spec:\n      template:\n"
            "        spec:\n          restartPolicy: Never\n"
            '          containers: [{name: main, image: "busybox:local"}]\n')


def cron_jobs(api_client, ns: str) -> list[dict]:
    items = client.BatchV1Api(api_client).list_namespaced_job(ns).items
    return sorted((as_dict(api_client, j) for j in items), key=lambda j: j["metadata"]["name"])


def test_kubectl_create_job_from_cronjob(kubectl, api_client, namespace):
    ns = namespace
    kubectl("apply", "-f", "-", input=cronjob_manifest(ns, "cj", "suspend: true\n"))
    assert kubectl("create", "job", "manual", "--from=cronjob/cj", "-n", ns).strip() == "job.batch/manual created"
    j = get_job(api_client, ns, "manual")
    assert j["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert j["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert j["metadata"]["labels"]["from"] == "cj"
    wait_for(lambda: job_pods(api_client, ns, "manual"), what="pod of the manual job")


@pytest.mark.timeout(200)
def test_cronjob_schedules_jobs_with_forbid_and_history(kubectl, api_client, namespace):
    """One real minute boundary: the Job is named after its scheduled minute, Forbid keeps a
    second one from starting while it runs, and history limits prune finished ones."""
    ns = namespace
    # a finished Job beyond the history limit, owned by the CronJob, must be pruned
    kubectl("apply", "-f", "-", input=cronjob_manifest(
        ns, "every", "concurrencyPolicy: Forbid\nsuccessfulJobsHistoryLimit: 0\nfailedJobsHistoryLimit: 1\n"))
    cj = as_dict(api_client, client.BatchV1Api(api_client).read_namespaced_cron_job("every", ns))
    jobs = wait_for(lambda: (js := cron_jobs(api_client, ns)) and js, timeout=75, interval=0.5, what="scheduled job")
    job = jobs[0]
    ann = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    sched = dt.datetime.fromisoformat(ann.replace("Z", "+00:00"))
    assert sched.second == 0 and job["metadata"]["name"] == f"every-{int(sched.timestamp()) // 60}"
    ref = job["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == \
        ("CronJob", "every", cj["metadata"]["uid"], True)
    assert job["metadata"]["labels"]["from"] == "every"

    def status():
        return as_dict(api_client, client.BatchV1Api(api_client).read_namespaced_cron_job("every", ns))["status"]
    st = wait_for(lambda: (s := status()).get("active") and s, what="active job in status")
    assert [a["name"] for a in st["active"]] == [job["metadata"]["name"]]
    assert dt.datetime.fromisoformat(st["lastScheduleTime"]) == sched
    row = kubectl("get", "cronjob", "every", "-n", ns, "--no-headers").split()
    # NAME, SCHEDULE (five fields), TIMEZONE, SUSPEND, ACTIVE, LAST SCHEDULE, AGE
    assert row[:9] == ["every", "*", "*", "*", "*", "*", "<none>", "False", "1"], row
    # Forbid: the next minute passes without a second Job while the first runs
    next_minute = (int(sched.timestamp()) // 60 + 1) * 60
    time.sleep(max(0.0, next_minute - time.time()) + 3)
    assert len(cron_jobs(api_client, ns)) == 1
    reasons = [r for _, r, _ in events_for(api_client, ns, "every")]
    assert "SuccessfulCreate" in reasons and "JobAlreadyActive" in reasons, reasons
    # the job finishes: it leaves status.active, lastSuccessfulTime is set, and with a
    # successful history limit of 0 it is deleted
    pod = wait_for(lambda: (r := running(job_pods(api_client, ns, job["metadata"]["name"]))) and r[0], what="pod")
    finish_pod(api_client, ns, pod)
    st = wait_for(lambda: (s := status()).get("lastSuccessfulTime") and s, what="lastSuccessfulTime")
    wait_for(lambda: job["metadata"]["name"] not in [j["metadata"]["name"] for j in cron_jobs(api_client, ns)],
             what="finished job pruned")
    # (pruned before the sync looks at status.active, as upstream: no SawCompletedJob then)
    evs = events_for(api_client, ns, "every")
    assert ("Normal", "SuccessfulDelete", f"Deleted job {job['metadata']['name']}") in evs, evs
    assert ("Normal", "SuccessfulCreate", f"Created job {job['metadata']['name']}") in evs, evs
