"""Leader election through a coordination.k8s.io/v1 Lease, as client-go's leaderelection does.

Several `shim up` replicas on one etcd must not all run the controllers (and the scheduler):
each replica's controller manager runs a LeaderElector, and only the one holding the Lease
runs them. The Lease lives in kube-system and is read and written through the API like any
client's Lease (shim.client), so stock tools show it (`kubectl -n kube-system get lease`).

Upstream semantics: spec.holderIdentity, leaseDurationSeconds (15), acquireTime,
renewTime (MicroTime) and leaseTransitions (+1 whenever the holder changes). The holder
renews every retry period (2 s); a holder that cannot renew for the renew deadline (10 s)
stops leading. A candidate takes over once the lease is expired: when its renewTime is
older than leaseDurationSeconds (wall clock; replicas are expected to have synchronised
clocks), or when the candidate has itself seen no change of the record for that long
(client-go's clock-skew-proof rule). Candidates wake up right when the lease they watch
expires, so a dead leader is replaced within leaseDurationSeconds of its last renewal.
Every write is a compare-and-swap on resourceVersion: two candidates never both win.
A leader that stops cleanly releases the Lease so another replica takes over at once.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable

from shim.client.api import ApiError, Client, Resource

log = logging.getLogger("shim.leaderelection")

MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _fmt(t: datetime) -> str:
    return t.strftime(MICRO_TIME)


def _parse(s: str | None) -> datetime | None:
    if not s:
        return None
    for fmt in (MICRO_TIME, "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(s, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None


class LeaderElector:
    def __init__(self, client: Client, identity: str, *, name: str = "shim-controller-manager",
                 namespace: str = "kube-system", lease_duration: float = 15.0,
                 renew_deadline: float = 10.0, retry_period: float = 2.0):
        self.client = client
        self.identity = identity
        self.name = name
        self.namespace = namespace
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.is_leader = False
        self._observed: tuple | None = None       # (holder, renewTime, resourceVersion) last seen
        self._observed_at = 0.0                   # monotonic time it was first seen
        self._wake_at = 0.0                       # monotonic time the observed lease expires

    async def _get(self) -> dict | None:
        try:
            return await self.client.get(LEASES, self.name, self.namespace)
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    async def run(self, lead: Callable[[], Awaitable]) -> None:
        """Forever: wait to acquire the lease, run lead() while holding it, and stop it as
        soon as the lease is lost. Cancelling run() stops lead() and releases the lease."""
        try:
            while True:
                await self._acquire()
                log.info("%s: became leader (lease %s/%s)", self.identity, self.namespace, self.name)
                self.is_leader = True
                task = asyncio.create_task(self._lead_forever(lead), name=f"leader:{self.name}")
                try:
                    await self._renew_until_lost()
                finally:
                    self.is_leader = False
                    await _cancel(task)
                log.warning("%s: lost the lease %s/%s", self.identity, self.namespace, self.name)
        except asyncio.CancelledError:
            if self.is_leader:
                self.is_leader = False
            await asyncio.shield(self._release())
            raise

    async def _lead_forever(self, lead) -> None:
        while True:
            try:
                await lead()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("leader loop failed; restarting it")
                await asyncio.sleep(self.retry_period)

    async def _acquire(self) -> None:
        while True:
            if await self._try_acquire_or_renew():
                return
            # sleep a retry period, or less if the observed lease expires sooner
            delay = self.retry_period
            if self._wake_at:
                delay = max(0.05, min(delay, self._wake_at - time.monotonic() + 0.05))
            if delay >= self.retry_period:
                delay *= 1 + 0.2 * random.random()       # client-go's jitter factor
            await asyncio.sleep(delay)

    async def _renew_until_lost(self) -> None:
        last_renew = time.monotonic()
        while True:
            await asyncio.sleep(self.retry_period)
            try:
                async with asyncio.timeout(self.renew_deadline):
                    ok = await self._try_acquire_or_renew()
            except TimeoutError:
                ok = False
            if ok:
                last_renew = time.monotonic()
            elif self._observed and self._observed[0] not in ("", self.identity):
                return            # someone else holds it now
            elif time.monotonic() - last_renew >= self.renew_deadline:
                return            # could not renew in time: stop before the lease expires

    async def _try_acquire_or_renew(self) -> bool:
        """One attempt (client-go's tryAcquireOrRenew). True if we hold the lease now."""
        now = _now()
        try:
            lease = await self._get()
            if lease is None:
                await self.client.create(LEASES, {
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": {"holderIdentity": self.identity,
                             "leaseDurationSeconds": int(self.lease_duration),
                             "acquireTime": _fmt(now), "renewTime": _fmt(now),
                             "leaseTransitions": 0}}, self.namespace)
                self._observed = (self.identity, _fmt(now), "")
                return True
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity") or ""
            record = (holder, spec.get("renewTime"), lease["metadata"]["resourceVersion"])
            mono = time.monotonic()
            duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
            if record != self._observed:
                self._observed, self._observed_at = record, mono
            renewed = _parse(spec.get("renewTime"))
            if holder and holder != self.identity:
                expires_wall = (renewed + timedelta(seconds=duration)) if renewed else None
                expired = (mono >= self._observed_at + duration or
                           (expires_wall is not None and now >= expires_wall))
                if not expired:
                    left = duration - (mono - self._observed_at)
                    if expires_wall is not None:
                        left = min(left, (expires_wall - now).total_seconds())
                    self._wake_at = mono + max(left, 0)
                    return False
            new = dict(lease)
            new_spec = dict(spec, holderIdentity=self.identity, renewTime=_fmt(now),
                            leaseDurationSeconds=int(self.lease_duration))
            if holder != self.identity:
                new_spec["acquireTime"] = _fmt(now)
                new_spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
            new["spec"] = new_spec
            out = await self.client.update(LEASES, new, self.namespace)
            self._observed = (self.identity, new_spec["renewTime"], out["metadata"]["resourceVersion"])
            self._observed_at = time.monotonic()
            self._wake_at = 0.0
            return True
        except ApiError as e:
            if e.code not in (409, 404, 503, 504, 500):
                log.warning("%s: lease %s/%s: %s", self.identity, self.namespace, self.name, e.message)
            return False
        except Exception as e:  # the store may be unreachable for a while
            log.debug("%s: lease attempt failed: %r", self.identity, e)
            return False

    async def _release(self) -> None:
        """Give the lease up (holder cleared, as client-go's ReleaseOnCancel) if we hold it."""
        try:
            async with asyncio.timeout(2):
                lease = await self._get()
                if not lease or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                    return
                new = dict(lease)
                new["spec"] = dict(lease["spec"], leaseDurationSeconds=1, renewTime=_fmt(_now()))
                new["spec"].pop("holderIdentity", None)
                await self.client.update(LEASES, new, self.namespace)
        except Exception as e:
            log.debug("%s: releasing the lease failed: %r", self.identity, e)


async def _cancel(task: asyncio.Task) -> None:
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)
