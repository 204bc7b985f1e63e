"""The TTL-after-finished controller: delete finished Jobs `spec.ttlSecondsAfterFinished`
seconds after they finished, as kube-controller-manager's does.

A Job is finished when it has a true `Complete` or `Failed` condition; that condition's
lastTransitionTime is when it finished. Jobs not yet due are requeued for their expiry; a
due Job is read again from the API server (the cache may be stale: its TTL may have been
changed) and deleted with a uid precondition and, as upstream since v1.20, Foreground
propagation, so the Job is gone only once its pods are.
"""
from __future__ import annotations

import asyncio
import logging
import time

from shim.client.api import ApiError, Client
from shim.client.informer import Informer, key_of
from shim.client.workqueue import WorkQueue
from shim.controllers.job import JOBS, is_job_finished, job_finished_time

log = logging.getLogger("shim.controllers.ttlafterfinished")


def needs_cleanup(job: dict) -> bool:
    return (job.get("spec") or {}).get("ttlSecondsAfterFinished") is not None and is_job_finished(job)


def time_left(job: dict, now: float) -> float | None:
    """Seconds until the finished Job expires (<= 0: due); None when it never does."""
    if job["metadata"].get("deletionTimestamp") or not needs_cleanup(job):
        return None
    finished = job_finished_time(job)
    if finished is None:
        raise ValueError(f"unable to find the time when the Job {key_of(job)} finished")
    return finished + job["spec"]["ttlSecondsAfterFinished"] - now


class TTLAfterFinishedController:
    def __init__(self, client: Client, workers: int = 5, *, job_informer: Informer | None = None, clock=time.time):
        self.client = client
        self.workers = workers
        self.now = clock
        self.job_informer = job_informer or Informer(client, JOBS)
        self.queue = WorkQueue()
        self.job_informer.add_handlers(self._on_job, lambda old, new: self._on_job(new), None)

    def _on_job(self, job: dict) -> None:
        if job["metadata"].get("deletionTimestamp") is None and needs_cleanup(job):
            self.queue.add(key_of(job))

    async def run(self) -> None:
        self.job_informer.start()
        try:
            await self.job_informer.wait_synced()
            await asyncio.gather(*(self.queue.run_worker(self.sync, self._failed) for _ in range(self.workers)))
        finally:
            self.queue.shutdown()
            await self.job_informer.stop()

    def _failed(self, key: str, e: Exception) -> None:
        log.info("cleaning up job %s: %s", key, e)
        self.queue.add_rate_limited(key)

    def _due(self, key: str, job: dict) -> bool:
        left = time_left(job, self.now())
        if left is None:
            return False
        if left > 0:
            self.queue.add_after(key, left)
            return False
        return True

    async def sync(self, key: str) -> None:
        job = self.job_informer.get(key)
        if job is None or not self._due(key, job):
            return
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        try:
            fresh = await self.client.get(JOBS, name, ns)
        except ApiError as e:
            if e.code == 404:
                return
            raise
        if not self._due(key, fresh):
            return
        try:
            await self.client.delete(JOBS, name, ns, propagation_policy="Foreground",
                                     preconditions={"uid": fresh["metadata"]["uid"]})
        except ApiError as e:
            if e.code not in (404, 409):
                raise
