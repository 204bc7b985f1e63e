"""The namespace controller: a namespace being deleted is emptied, then let go.

Deleting a namespace only marks it (deletionTimestamp, phase Terminating); its
`spec.finalizers` entry `kubernetes` keeps it in the store. This controller, a client of the
API like any other, notices the mark through a namespace informer and, for each such
namespace:

1. makes sure status.phase is Terminating;
2. asks API discovery which namespaced resources exist (the preferred version of each) and
   which of them can be deleted;
3. deletes pods first (DELETE on the collection, or one by one when the resource cannot
   delete collections); while pods remain, nothing else is touched, so that workloads stop
   before the objects they use (ConfigMaps, Secrets, ServiceAccounts) disappear;
4. then every other resource the same way, and lists what is left;
5. records the outcome in five status conditions (NamespaceDeletionDiscoveryFailure,
   NamespaceDeletionGroupVersionParsingFailure, NamespaceDeletionContentFailure,
   NamespaceContentRemaining, NamespaceFinalizersRemaining), with the reasons and messages
   kube-controller-manager uses, so `kubectl get ns -o yaml` explains a stuck namespace;
6. once nothing is left, drops `kubernetes` from spec.finalizers through the
   namespaces/NAME/finalize subresource; with no finalizer left the API server removes it.

While content remains (pods in their grace period, objects held by finalizers) the
namespace is looked at again shortly; failures are retried with per-namespace backoff.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

import aiohttp
import orjson

from shim.client.api import NAMESPACES, PODS, ApiError, Client, Resource, is_conflict, is_not_found
from shim.client.informer import Informer
from shim.client.workqueue import (ItemExponentialBackoff, MaxOfRateLimiter, TokenBucket,
                                   WorkQueue)

log = logging.getLogger("shim.controllers.namespace")

FINALIZER = "kubernetes"
# How long objects held by finalizers are assumed to need (upstream's guess, in seconds).
FINALIZER_ESTIMATE = 15
DISCOVERY_TIMEOUT = 30.0
AGGREGATED_DISCOVERY = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

# The conditions this controller owns, in the order they are first added, with the
# reason and message each carries while all is well (status False).
CONDITION_TYPES = (
    "NamespaceDeletionDiscoveryFailure",
    "NamespaceDeletionGroupVersionParsingFailure",
    "NamespaceDeletionContentFailure",
    "NamespaceContentRemaining",
    "NamespaceFinalizersRemaining",
)
CONDITION_OK = {
    "NamespaceDeletionDiscoveryFailure": ("ResourcesDiscovered", "All resources successfully discovered"),
    "NamespaceDeletionGroupVersionParsingFailure": ("ParsedGroupVersions",
                                                    "All legacy kube types successfully parsed"),
    "NamespaceDeletionContentFailure": ("ContentDeleted",
                                        "All content successfully deleted, may be waiting on finalization"),
    "NamespaceContentRemaining": ("ContentRemoved", "All content successfully removed"),
    "NamespaceFinalizersRemaining": ("ContentHasNoFinalizers", "All content-preserving finalizers finished"),
}


class NamespaceController:
    """An informer on namespaces feeding a work queue of names; workers empty and finalize them.

    `event_delay` is how long after a namespace event its sync starts. kube-controller-manager
    waits a few seconds so that caches of namespace admission catch up with the deletion;
    our API server checks a namespace's state in the store on every create, so there is
    nothing to wait for and the default is to start at once. `max_requeue` caps the wait
    before looking again at a namespace whose content is still going away.
    """

    def __init__(self, client: Client, *, workers: int = 4, event_delay: float = 0.0,
                 max_requeue: float = 2.0, resync: float = 300.0):
        self.client = client
        self.workers = workers
        self.event_delay = event_delay
        self.max_requeue = max_requeue
        self.resync = resync
        self.queue = WorkQueue(MaxOfRateLimiter(ItemExponentialBackoff(0.005, 60.0), TokenBucket(10.0, 100)))
        self.informer = Informer(client, NAMESPACES)
        self.deleter = NamespacedContentDeleter(client)

    async def run(self) -> None:
        self.informer.add_handlers(on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new))
        informer_task = self.informer.start()
        try:
            await self.informer.wait_synced()
            tasks = [asyncio.create_task(self._worker(), name=f"namespace-worker-{i}")
                     for i in range(self.workers)]
            tasks.append(asyncio.create_task(self._resync_loop(), name="namespace-resync"))
            tasks.append(informer_task)
            try:
                # any of them ending (the informer failing, a worker crashing) ends the loop,
                # and keep_running starts it afresh
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    t.result()
            finally:
                self.queue.shutdown()
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await self.informer.stop()

    def _enqueue(self, ns: dict) -> None:
        md = ns.get("metadata") or {}
        if md.get("deletionTimestamp"):
            self.queue.add_after(md["name"], self.event_delay)

    async def _resync_loop(self) -> None:
        """Every namespace being deleted is looked at again now and then, events or not."""
        while True:
            await asyncio.sleep(self.resync)
            for ns in self.informer.list():
                self._enqueue(ns)

    async def _worker(self) -> None:
        await self.queue.run_worker(self.sync, self._sync_failed)

    def _sync_failed(self, name: str, e: Exception) -> None:
        if isinstance(e, ContentRemaining):
            wait = min(e.estimate // 2 + 1, self.max_requeue)
            log.debug("namespace %s: content remains, looking again in %.1fs", name, wait)
            self.queue.add_after(name, wait)
        else:
            log.warning("deleting namespace %s failed: %s", name, e)
            self.queue.add_rate_limited(name)

    async def sync(self, name: str) -> None:
        if self.informer.get(name) is None:
            return  # gone already
        await self.deleter.delete(name)


class ContentRemaining(Exception):
    """Some content is still going away; `estimate` is a guess in seconds of how long."""

    def __init__(self, estimate: int):
        super().__init__(f"some content remains in the namespace, estimate {estimate} seconds "
                         f"before it is removed")
        self.estimate = estimate


@dataclass(frozen=True)
class ApiResource:
    group: str
    version: str
    name: str
    verbs: frozenset

    @property
    def resource(self) -> Resource:
        return Resource(self.group, self.version, self.name, "", namespaced=True)

    def __str__(self) -> str:  # how upstream prints a group-version-resource
        return f"{self.group}/{self.version}, Resource={self.name}"


@dataclass
class Outcome:
    """What deleting one resource in a namespace left behind."""
    estimate: int = 0
    remaining: int = 0
    finalizers: Counter = field(default_factory=Counter)
    error: Exception | None = None


class NamespacedContentDeleter:
    """Empties one namespace through the API and finalizes it when it is empty."""

    def __init__(self, client: Client):
        self.client = client

    async def delete(self, name: str) -> None:
        """One pass over a namespace; raises ContentRemaining while content is going away."""
        try:
            ns = await self.client.get(NAMESPACES, name)
        except ApiError as e:
            if is_not_found(e):
                return
            raise
        if not ns["metadata"].get("deletionTimestamp"):
            return
        ns = await self._retry_on_conflict(ns, self._mark_terminating)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if not (ns.get("spec") or {}).get("finalizers"):
            return  # nothing of ours to remove
        estimate = await self.delete_all_content(ns)
        if estimate > 0:
            raise ContentRemaining(estimate)
        await self._retry_on_conflict(ns, self._finalize)

    # -- the namespace object -------------------------------------------------------------
    async def _retry_on_conflict(self, ns: dict, fn) -> dict | None:
        """fn(ns) with fresh copies on conflict; None once the namespace is gone."""
        while True:
            try:
                return await fn(ns)
            except ApiError as e:
                if is_not_found(e):
                    return None
                if not is_conflict(e):
                    raise
            uid = ns["metadata"].get("uid")
            try:
                ns = await self.client.get(NAMESPACES, ns["metadata"]["name"])
            except ApiError as e:
                if is_not_found(e):
                    return None
                raise
            if ns["metadata"].get("uid") != uid:
                raise RuntimeError("namespace uid has changed across retries")

    async def _mark_terminating(self, ns: dict) -> dict:
        if (ns.get("status") or {}).get("phase") == "Terminating":
            return ns
        ns = dict(ns, status=dict(ns.get("status") or {}, phase="Terminating"))
        return await self.client.update(NAMESPACES, ns, subresource="status")

    async def _finalize(self, ns: dict) -> dict:
        rest = sorted({f for f in (ns.get("spec") or {}).get("finalizers") or [] if f != FINALIZER})
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": ns["metadata"],
                "spec": dict(ns.get("spec") or {}, finalizers=rest)}
        return await self.client.update(NAMESPACES, body, subresource="finalize")

    # -- content --------------------------------------------------------------------------
    async def delete_all_content(self, ns: dict) -> int:
        """Delete what the namespace holds; the seconds it may still take (0: all gone)."""
        name = ns["metadata"]["name"]
        deleted_at = _parse_time(ns["metadata"]["deletionTimestamp"])
        conditions = ConditionUpdate()
        errs: list[Exception] = []

        resources: list[ApiResource] = []
        try:
            lists, discovery_err = await discover_namespaced_resources(self.client)
        except Exception as e:  # not even the group list
            lists, discovery_err = [], e
        if discovery_err is not None:
            errs.append(discovery_err)
            conditions.discovery_failed(discovery_err)
        try:
            resources = deletable_resources(lists)
        except ValueError as e:
            errs.append(e)
            conditions.group_version_failed(e)

        estimate = 0
        remaining: dict[ApiResource, int] = {}
        finalizers: Counter = Counter()

        def tally(res: ApiResource, out: Outcome) -> None:
            nonlocal estimate
            if out.error is not None:
                errs.append(out.error)
                conditions.delete_failed(out.error)
            estimate = max(estimate, out.estimate)
            if out.remaining:
                remaining[res] = out.remaining
                finalizers.update({k: n for k, n in out.finalizers.items() if n})

        # pods first: while any remain, the rest of the content stays
        pods = next((r for r in resources if (r.group, r.version, r.name) == ("", "v1", "pods")), None)
        if pods is not None:
            tally(pods, await self.delete_resource(pods, name, deleted_at))
            if remaining.get(pods):
                await self._write_conditions(ns, conditions)
                if errs:
                    raise ContentDeletionError(errs)
                return estimate

        others = [r for r in resources if r is not pods]
        limit = asyncio.Semaphore(4)

        async def one(res):
            async with limit:
                return res, await self.delete_resource(res, name, deleted_at)
        for res, out in await asyncio.gather(*(one(r) for r in others)):
            tally(res, out)
        conditions.content_totals(remaining, finalizers)
        await self._write_conditions(ns, conditions)
        if errs:
            raise ContentDeletionError(errs)
        return estimate

    async def delete_resource(self, res: ApiResource, namespace: str, deleted_at: float) -> Outcome:
        """Delete every object of one resource in the namespace, then count what is left."""
        try:
            estimate = await self._grace_estimate(res, namespace, deleted_at)
        except ApiError as e:
            return Outcome(error=e)
        try:
            if not await self._delete_collection(res, namespace):
                await self._delete_each(res, namespace)
            items = await self._list(res, namespace)
        except ApiError as e:
            return Outcome(estimate=estimate, error=e)
        if items is None:  # cannot be listed: nothing to count
            return Outcome(estimate=estimate)
        if not items:
            return Outcome()
        held = Counter(f for item in items for f in (item.get("metadata") or {}).get("finalizers") or [])
        if estimate:
            return Outcome(estimate, len(items), held)
        if held:
            return Outcome(FINALIZER_ESTIMATE, len(items), held)
        return Outcome(estimate, len(items), error=RuntimeError(
            f"unexpected items still remain in namespace: {namespace} for gvr: {res}"))

    async def _grace_estimate(self, res: ApiResource, namespace: str, deleted_at: float) -> int:
        """For pods: the longest grace period of those still running, unless already over."""
        if (res.group, res.name) != ("", "pods"):
            return 0
        pods = (await self.client.list(PODS, namespace)).get("items") or []
        estimate = 0
        for pod in pods:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
            if grace is not None and grace > estimate:
                estimate = grace
        if time.time() - deleted_at >= estimate:
            return 0
        return estimate

    async def _delete_collection(self, res: ApiResource, namespace: str) -> bool:
        """False when the resource cannot delete collections (the caller goes one by one)."""
        if "deletecollection" not in res.verbs:
            return False
        try:
            await self.client.delete_collection(res.resource, namespace, propagation_policy="Background")
        except ApiError as e:
            if e.code in (404, 405):
                return False
            raise
        return True

    async def _delete_each(self, res: ApiResource, namespace: str) -> None:
        for item in await self._list(res, namespace) or []:
            try:
                await self.client.delete(res.resource, item["metadata"]["name"], namespace,
                                         propagation_policy="Background")
            except ApiError as e:
                if e.code not in (404, 405):
                    raise

    async def _list(self, res: ApiResource, namespace: str) -> list[dict] | None:
        """The objects left, or None when the resource cannot be listed."""
        if "list" not in res.verbs:
            return None
        try:
            items, _ = await self.client.list_all(res.resource, namespace)
        except ApiError as e:
            if e.code in (404, 405):
                return None
            raise
        return items

    async def _write_conditions(self, ns: dict, conditions: "ConditionUpdate") -> None:
        """Store the conditions if they changed; a failure only waits for the next pass."""
        for _ in range(3):
            status = dict(ns.get("status") or {})
            status["conditions"] = [dict(c) for c in status.get("conditions") or []]
            if not conditions.apply(status):
                return
            try:
                await self.client.update(NAMESPACES, dict(ns, status=status), subresource="status")
                return
            except ApiError as e:
                if not is_conflict(e):
                    log.warning("namespace %s: updating conditions: %s", ns["metadata"]["name"], e)
                    return
            try:
                ns = await self.client.get(NAMESPACES, ns["metadata"]["name"])
            except ApiError:
                return


class ContentDeletionError(Exception):
    def __init__(self, errs: list[Exception]):
        super().__init__(", ".join(_message(e) for e in errs))
        self.errors = errs


# -- status conditions ---------------------------------------------------------------------------

class ConditionUpdate:
    """The conditions one pass found; those not found are reported in their all-well form."""

    def __init__(self):
        self.found: dict[str, dict] = {}
        self.delete_errors: list[Exception] = []

    def discovery_failed(self, err: Exception) -> None:
        if isinstance(err, GroupDiscoveryFailed):
            msg = f"Discovery failed for some groups, {len(err.failed)} failing: {err}"
        else:
            msg = _message(err)
        self._set("NamespaceDeletionDiscoveryFailure", "DiscoveryFailed", msg)

    def group_version_failed(self, err: Exception) -> None:
        self._set("NamespaceDeletionGroupVersionParsingFailure", "GroupVersionParsingFailed", _message(err))

    def delete_failed(self, err: Exception) -> None:
        self.delete_errors.append(err)

    def content_totals(self, remaining: dict, finalizers: Counter) -> None:
        if remaining:
            parts = sorted(f"{res.name}.{res.group} has {n} resource instances"
                           for res, n in remaining.items() if n)
            self._set("NamespaceContentRemaining", "SomeResourcesRemain",
                      "Some resources are remaining: " + ", ".join(parts))
        if finalizers:
            parts = sorted(f"{f} in {n} resource instances" for f, n in finalizers.items() if n)
            self._set("NamespaceFinalizersRemaining", "SomeFinalizersRemain",
                      "Some content in the namespace has finalizers remaining: " + ", ".join(parts))

    def apply(self, status: dict) -> bool:
        """Fold the conditions into status (in place); whether anything changed."""
        if self.delete_errors and "NamespaceDeletionContentFailure" not in self.found:
            msgs = sorted(_message(e) for e in self.delete_errors)
            self._set("NamespaceDeletionContentFailure", "ContentDeletionFailed",
                      f"Failed to delete all resource types, {len(msgs)} remaining: {', '.join(msgs)}")
        now = _now()
        current = status.setdefault("conditions", [])
        changed = False
        for ctype in CONDITION_TYPES:
            want = self.found.get(ctype)
            if want is None:
                reason, message = CONDITION_OK[ctype]
                want = {"type": ctype, "status": "False", "reason": reason, "message": message}
            have = next((c for c in current if c.get("type") == ctype), None)
            if have is None:
                current.append(dict(want, lastTransitionTime=now))
                changed = True
            elif any(have.get(k) != want[k] for k in ("status", "reason", "message")):
                if have.get("status") != want["status"]:
                    have["lastTransitionTime"] = now
                have.update(want)
                changed = True
        return changed

    def _set(self, ctype: str, reason: str, message: str) -> None:
        self.found[ctype] = {"type": ctype, "status": "True", "reason": reason, "message": message}


# -- discovery -----------------------------------------------------------------------------------

class GroupDiscoveryFailed(Exception):
    """Some group-versions could not be discovered; the others were."""

    def __init__(self, failed: dict[str, Exception]):
        self.failed = failed
        parts = sorted(f"{gv}: {_message(e)}" for gv, e in failed.items())
        super().__init__("unable to retrieve the complete list of server APIs: " + ", ".join(parts))


async def discover_namespaced_resources(client: Client) -> tuple[list[tuple[str, list[dict]]], Exception | None]:
    """The preferred version of every namespaced resource, as (groupVersion, [APIResource]).

    Like client-go's ServerPreferredNamespacedResources: subresources are left out, and a
    resource served in several versions of its group is taken in the preferred one. The
    error (if any) names the group-versions that could not be read; what could is returned.
    """
    groups, by_gv, failed = await _aggregated_discovery(client)
    if groups is None:
        groups, by_gv, failed = await _legacy_discovery(client)
    chosen: dict[tuple[str, str], tuple[str, dict]] = {}
    order: list[str] = []
    for gname, versions, preferred in groups:
        for ver in versions:
            gv = f"{gname}/{ver}" if gname else ver
            resources = by_gv.get(gv)
            if resources is None:
                continue
            order.append(gv)
            for r in resources:
                if "/" in r["name"]:
                    continue
                key = (gname, r["name"])
                if key in chosen and ver != preferred:
                    continue
                chosen[key] = (gv, r)
    lists: dict[str, list[dict]] = {gv: [] for gv in order}
    for gv, r in chosen.values():
        if r.get("namespaced"):
            lists[gv].append(r)
    err = GroupDiscoveryFailed(failed) if failed else None
    return [(gv, rs) for gv, rs in lists.items() if rs], err


def deletable_resources(lists: list[tuple[str, list[dict]]]) -> list[ApiResource]:
    """The resources that can be deleted; ValueError (and none at all) if a groupVersion is malformed."""
    out = []
    for gv, resources in lists:
        resources = [r for r in resources if "delete" in (r.get("verbs") or [])]
        if not resources:
            continue
        if gv.count("/") > 1:
            raise ValueError(f"unexpected GroupVersion string: {gv}")
        group, _, version = gv.rpartition("/")
        out.extend(ApiResource(group, version, r["name"], frozenset(r.get("verbs") or []))
                   for r in resources)
    return out


async def _get(client: Client, path: str, accept: str = "application/json") -> tuple[str, dict]:
    """GET one discovery document: (content type, body)."""
    async with client.session.get(client.server + path, headers={"Accept": accept},
                                  timeout=aiohttp.ClientTimeout(total=DISCOVERY_TIMEOUT)) as resp:
        raw = await resp.read()
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            body = None
        if resp.status >= 400 or not isinstance(body, dict):
            raise ApiError(resp.status if resp.status >= 400 else 500,
                           body if isinstance(body, dict) else None,
                           raw.decode(errors="replace").strip())
        return resp.headers.get("Content-Type", ""), body


async def _aggregated_discovery(client: Client):
    """(groups, resources by groupVersion, failed groupVersions) from the two aggregated
    documents, or (None, None, None) when the server does not serve them."""
    groups, by_gv, failed = [], {}, {}
    for path in ("/api", "/apis"):
        ctype, doc = await _get(client, path, f"{AGGREGATED_DISCOVERY},application/json")
        if "as=APIGroupDiscoveryList" not in ctype:
            return None, None, None
        for item in doc.get("items") or []:
            gname = (item.get("metadata") or {}).get("name", "")
            versions = []
            for v in item.get("versions") or []:
                gv = f"{gname}/{v['version']}" if gname else v["version"]
                if v.get("freshness") == "Stale":
                    failed[gv] = RuntimeError(f"stale GroupVersion discovery: {gv}")
                    continue
                versions.append(v["version"])
                by_gv[gv] = [{"name": r["resource"], "namespaced": r.get("scope") == "Namespaced",
                              "verbs": r.get("verbs") or []} for r in v.get("resources") or []]
            groups.append((gname, versions, versions[0] if versions else ""))
    return groups, by_gv, failed


async def _legacy_discovery(client: Client):
    """The same from /api, /apis and one document per group-version."""
    _, core = await _get(client, "/api")
    _, apis = await _get(client, "/apis")
    groups = [("", core.get("versions") or [], (core.get("versions") or [""])[0])]
    for g in apis.get("groups") or []:
        groups.append((g["name"], [v["version"] for v in g.get("versions") or []],
                       (g.get("preferredVersion") or {}).get("version", "")))
    by_gv, failed = {}, {}

    async def fetch(gname, ver):
        gv = f"{gname}/{ver}" if gname else ver
        path = f"/apis/{gv}" if gname else f"/api/{gv}"
        try:
            _, doc = await _get(client, path)
            by_gv[gv] = doc.get("resources") or []
        except (ApiError, asyncio.TimeoutError, OSError) as e:
            failed[gv] = e
    await asyncio.gather(*(fetch(g, v) for g, versions, _ in groups for v in versions))
    return groups, by_gv, failed


# -- helpers -------------------------------------------------------------------------------------

def _message(err: Exception) -> str:
    return err.message if isinstance(err, ApiError) else str(err)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(ts: str) -> float:
    t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()
