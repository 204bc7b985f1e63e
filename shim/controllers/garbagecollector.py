"""The garbage collector: dependents follow their owners out, as upstream's collector does.

An API client like every controller. It learns from discovery which resources can be listed,
watched and deleted, keeps a metadata-only informer on each, and builds from them a graph of
ownership keyed by uid: a node per object (or per owner only heard of, a "virtual" node) with
its ownerReferences and the nodes that name it as an owner. Two work queues act on it:

- attempt-to-delete takes a node whose owners (or whose own existence) need checking.
  A dependent none of whose owners exists any more (a live GET says 404 or shows another uid)
  is deleted, with a uid precondition; one that keeps some owner only loses its references
  to the absent ones (and to owners deleting in the foreground). An owner deleting in the
  foreground (deletionTimestamp + `foregroundDeletion`) gets its dependents deleted -- in the
  foreground too when they own things themselves -- and loses the finalizer once no dependent
  with blockOwnerDeletion=true is left.
- attempt-to-orphan takes an owner being deleted with the `orphan` finalizer: every
  dependent loses its reference to it, then the finalizer goes.

The informers' handlers only update the graph and enqueue uids; everything that talks to the
API happens in the workers, and every decision to delete is checked against the live object
first, since the caches may lag behind.
"""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import NamedTuple

import aiohttp

from shim.client.api import (METADATA_ACCEPT, METADATA_LIST_ACCEPT, ApiError, Client, Resource,
                             is_not_found)
from shim.client.informer import Informer
from shim.client.workqueue import WorkQueue

log = logging.getLogger("shim.controllers.garbagecollector")

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
# as upstream, events are never owners nor collected
IGNORED_RESOURCES = {("", "events"), ("events.k8s.io", "events")}
NEEDED_VERBS = {"list", "watch", "delete"}


class Identity(NamedTuple):
    """Where an object is: enough to GET it, and its uid to tell it from a namesake."""
    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str


class Node:
    """One object in the ownership graph (virtual until an informer has seen it)."""
    __slots__ = ("identity", "owners", "dependents", "being_deleted", "deleting_dependents", "observed")

    def __init__(self, identity: Identity, owners: list | None = None, *, observed: bool,
                 being_deleted: bool = False, deleting_dependents: bool = False):
        self.identity = identity
        self.owners: list[dict] = owners or []
        self.dependents: set[Node] = set()
        self.being_deleted = being_deleted
        self.deleting_dependents = deleting_dependents
        self.observed = observed

    @property
    def uid(self) -> str:
        return self.identity.uid

    def blocking_dependents(self) -> list["Node"]:
        """Dependents whose reference to this node says blockOwnerDeletion=true."""
        return [d for d in self.dependents
                if any(r.get("uid") == self.uid and r.get("blockOwnerDeletion") for r in d.owners)]

    def __repr__(self) -> str:
        i = self.identity
        where = f"{i.namespace}/{i.name}" if i.namespace else i.name
        return f"{i.kind} {where} ({i.uid}{'' if self.observed else ', virtual'})"


class _Settled(Exception):
    """The item needs no retry: its object is gone (graph updated) or its reference is invalid."""


class _TryAgain(Exception):
    """Not an error: the item is not finished yet (e.g. dependents still going)."""


class _UnknownKind(Exception):
    """An apiVersion/kind that discovery does not (yet) know; retried with backoff."""


class GarbageCollector:
    def __init__(self, client: Client, *, workers: int = 8, orphan_workers: int = 2,
                 rediscover_every: float = 30.0, sync_timeout: float = 30.0):
        self.client = client
        self.workers = workers
        self.orphan_workers = orphan_workers
        self.rediscover_every = rediscover_every
        self.sync_timeout = sync_timeout
        self.graph: dict[str, Node] = {}
        self.monitors: dict[tuple[str, str], Informer] = {}
        self.kinds: dict[tuple[str, str], Resource] = {}
        self.absent = _AbsentOwners()
        self.attempt_to_delete = WorkQueue()
        self.attempt_to_orphan = WorkQueue()
        self._meta = _MetadataOnly(client)

    # -- running ---------------------------------------------------------------------------
    async def run(self) -> None:
        tasks: list[asyncio.Task] = []
        try:
            await self._sync_monitors()
            await self._wait_synced()
            tasks = [asyncio.create_task(self._worker(self.attempt_to_delete, self._attempt_to_delete))
                     for _ in range(self.workers)]
            tasks += [asyncio.create_task(self._worker(self.attempt_to_orphan, self._attempt_to_orphan))
                      for _ in range(self.orphan_workers)]
            while True:
                await asyncio.sleep(self.rediscover_every)
                for t in tasks:
                    if t.done():
                        t.result()  # a worker died: let the runner start us afresh
                try:
                    await self._sync_monitors()
                except (ApiError, aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
                    log.info("garbage collector: rediscovery failed (%s); keeping the resources we watch", e)
        finally:
            self.attempt_to_delete.shutdown()
            self.attempt_to_orphan.shutdown()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*(m.stop() for m in self.monitors.values()), return_exceptions=True)

    async def _sync_monitors(self) -> None:
        """Watch every deletable resource discovery lists now; stop watching those gone."""
        deletable, self.kinds = await discover(self.client)
        for key, res in deletable.items():
            if key not in self.monitors:
                self.monitors[key] = self._monitor(res)
        for key in [k for k in self.monitors if k not in deletable]:
            await self.monitors.pop(key).stop()

    def _monitor(self, res: Resource) -> Informer:
        inf = Informer(self._meta, res, transform=_slim)
        inf.add_handlers(lambda obj: self._observe(res, None, obj),
                         lambda old, new: self._observe(res, old, new),
                         lambda obj: self._observed_deletion(res, obj))
        inf.start()
        return inf

    async def _wait_synced(self) -> None:
        """Until every monitor has listed once (or the timeout: then work with what we have)."""
        try:
            await asyncio.wait_for(asyncio.gather(*(m.wait_synced() for m in self.monitors.values())),
                                   self.sync_timeout)
        except asyncio.TimeoutError:
            late = [m.resource.plural for m in self.monitors.values() if not m.has_synced]
            log.warning("garbage collector: starting before these resources synced: %s", late)

    async def _worker(self, queue: WorkQueue, handle) -> None:
        async def sync(uid):
            if await handle(uid):
                raise _TryAgain()

        def failed(uid, e: Exception) -> None:
            if isinstance(e, _UnknownKind):
                log.debug("garbage collector: %s; will retry", e)
            elif isinstance(e, ApiError):
                log.info("garbage collector: %s: %s", self.graph.get(uid, uid), e)
            elif not isinstance(e, _TryAgain):
                log.error("garbage collector: processing %s", self.graph.get(uid, uid), exc_info=e)
            queue.add_rate_limited(uid)

        await queue.run_worker(sync, failed)

    # -- the graph (informer handlers: quick, no I/O) --------------------------------------
    def _observe(self, res: Resource, old: dict | None, obj: dict) -> None:
        md = obj["metadata"]
        uid = md.get("uid")
        if not uid:
            return
        if old is not None and old["metadata"].get("uid") != uid:
            # the name now holds another object (seen across a relist): the old one is gone
            self._observed_deletion(res, old)
            old = None
        identity = Identity(res.api_version, res.kind, md.get("namespace", ""), md["name"], uid)
        refs = md.get("ownerReferences") or []
        deleting = bool(md.get("deletionTimestamp"))
        node = self.graph.get(uid)
        if node is not None and not node.observed:
            if node.identity != identity:
                # dependents that named this owner by other coordinates may be wrong: recheck them
                for dep in _partition(node.dependents, identity)[1]:
                    self.attempt_to_delete.add(dep.uid)
                node.identity = identity
            node.observed = True
        if node is None:
            node = Node(identity, refs, observed=True, being_deleted=deleting,
                        deleting_dependents=deleting and FOREGROUND in (md.get("finalizers") or ()))
            self.graph[uid] = node
            self._add_to_owners(node, refs)
        else:
            added, removed, changed = _reference_changes(node.owners, refs)
            if added or removed or changed:
                self._enqueue_unblocked_owners(removed, changed)
                node.owners = refs
                self._add_to_owners(node, added)
                self._remove_from_owners(node, removed)
            if deleting:
                node.being_deleted = True
        self._transitions(old, md, node)

    def _observed_deletion(self, res: Resource, obj: dict) -> None:
        md = obj["metadata"]
        node = self.graph.get(md.get("uid", ""))
        if node is not None:
            self._remove_node(node, Identity(res.api_version, res.kind, md.get("namespace", ""),
                                             md.get("name", ""), node.uid))

    def _transitions(self, old: dict | None, md: dict, node: Node) -> None:
        """Start orphaning, or foreground deletion, when the object has just entered it."""
        if _starts_deleting_with(old, md, ORPHAN):
            self.attempt_to_orphan.add(node.uid)
        elif _starts_deleting_with(old, md, FOREGROUND):
            node.deleting_dependents = True
            for dep in node.dependents:
                self.attempt_to_delete.add(dep.uid)
            self.attempt_to_delete.add(node.uid)

    def _add_to_owners(self, node: Node, refs: list[dict]) -> None:
        doubtful = False
        for ref in refs:
            owner = self.graph.get(ref.get("uid", ""))
            if owner is None:
                # an owner not seen (yet): a virtual node, checked against the API
                owner = Node(Identity(ref.get("apiVersion", ""), ref.get("kind", ""), node.identity.namespace,
                                      ref.get("name", ""), ref.get("uid", "")), observed=False)
                self.graph[owner.uid] = owner
                owner.dependents.add(node)
                self.attempt_to_delete.add(owner.uid)
                continue
            owner.dependents.add(node)
            if doubtful:
                continue
            owner_ns = owner.identity.namespace
            if owner_ns and owner_ns != node.identity.namespace:
                doubtful = True  # a namespaced owner is only ever looked for in the dependent's namespace
            elif not _ref_matches(ref, owner.identity):
                doubtful = True
            elif not owner_ns and node.identity.namespace and not owner.observed:
                doubtful = True  # perhaps a namespaced kind named from a cluster-scoped object
        if doubtful:
            self.attempt_to_delete.add(node.uid)

    def _remove_from_owners(self, node: Node, refs: list[dict]) -> None:
        for ref in refs:
            owner = self.graph.get(ref.get("uid", ""))
            if owner is not None:
                owner.dependents.discard(node)

    def _remove_node(self, node: Node, identity: Identity) -> None:
        """The object is gone: its dependents need checking, and owners waiting on it may go on."""
        self.graph.pop(node.uid, None)
        self._remove_from_owners(node, node.owners)
        if node.dependents:
            self.absent.add(identity)
        for dep in node.dependents:
            self.attempt_to_delete.add(dep.uid)
        for ref in node.owners:
            owner = self.graph.get(ref.get("uid", ""))
            if owner is not None and owner.deleting_dependents:
                self.attempt_to_delete.add(owner.uid)

    def _enqueue_unblocked_owners(self, removed: list[dict], changed: list[tuple[dict, dict]]) -> None:
        """A blocking reference went (or stopped blocking): its owner may finish deleting."""
        uids = [r.get("uid") for r in removed if r.get("blockOwnerDeletion")]
        uids += [new.get("uid") for old, new in changed
                 if old.get("blockOwnerDeletion") and not new.get("blockOwnerDeletion")]
        for uid in uids:
            if uid in self.graph:
                self.attempt_to_delete.add(uid)

    def _confirmed_absent(self, identity: Identity) -> None:
        """A live GET found nothing with this uid at these coordinates (a "virtual delete")."""
        node = self.graph.get(identity.uid)
        if node is None:
            return
        if not node.observed:
            matching, others = _partition(node.dependents, identity)
            if others:
                # some dependents name this uid by other coordinates: only those that used
                # these are settled; the node stays, to be tried at the next coordinates
                if matching:
                    self.absent.add(identity)
                    for dep in matching:
                        self.attempt_to_delete.add(dep.uid)
                if node.identity == identity:
                    alternative = _alternative_identity(others, identity)
                    if alternative is not None:
                        node.identity = alternative
                        self.attempt_to_delete.add_rate_limited(node.uid)
                return
        elif node.identity != identity:
            # the informer saw the real object elsewhere: only dependents that named this place err
            matching, _ = _partition(node.dependents, identity)
            if matching:
                self.absent.add(identity)
                for dep in matching:
                    self.attempt_to_delete.add(dep.uid)
            return
        self._remove_node(node, identity)

    # -- attempt to delete -----------------------------------------------------------------
    async def _attempt_to_delete(self, uid: str) -> bool:
        """Process one node; True to retry it later."""
        node = self.graph.get(uid)
        if node is None:
            return False
        try:
            await self._attempt_to_delete_item(node)
        except _Settled:
            return False
        # a virtual node stays in doubt until its informer reports the object
        return not node.observed and self.graph.get(uid) is node

    async def _attempt_to_delete_item(self, node: Node) -> None:
        if node.being_deleted and not node.deleting_dependents:
            return  # already on its way out; its dependents are looked at once it is gone
        latest = await self._get(node.identity)
        if latest is None or latest["metadata"].get("uid") != node.uid:
            self._confirmed_absent(node.identity)
            raise _Settled
        if node.deleting_dependents:
            await self._process_deleting_dependents(node)
            return
        refs = latest["metadata"].get("ownerReferences") or []
        if not refs:
            return
        solid, dangling, waiting = await self._classify(node, refs)
        if solid:
            # it keeps an owner: drop only references that can no longer hold it (absent
            # owners, and owners deleting in the foreground, which would wait for it forever)
            gone = {r["uid"] for r in dangling + waiting}
            if gone:
                await self._remove_references(node, gone)
            return
        if waiting and node.dependents:
            # an owner waits for this one, which owns things itself: delete it in the foreground
            # too; if one of its dependents also waits on its own dependents, stop blocking (a
            # cycle would otherwise wait forever)
            if any(d.deleting_dependents for d in node.dependents):
                await self._unblock_references(node)
            log.debug("garbage collector: deleting %r (Foreground): an owner waits for it", node)
            await self._delete(node, latest, "Foreground")
            return
        finalizers = latest["metadata"].get("finalizers") or ()
        policy = "Orphan" if ORPHAN in finalizers else "Foreground" if FOREGROUND in finalizers else "Background"
        log.debug("garbage collector: deleting %r (%s): %s", node, policy,
                 "an owner waits for it" if waiting else "its owners are gone")
        await self._delete(node, latest, policy)

    async def _process_deleting_dependents(self, node: Node) -> None:
        blocking = node.blocking_dependents()
        if not blocking:
            await self._remove_finalizer(node, FOREGROUND)
            return
        for dep in blocking:
            if not dep.deleting_dependents:
                self.attempt_to_delete.add(dep.uid)

    async def _classify(self, node: Node, refs: list[dict]) -> tuple[list, list, list]:
        """(solid, dangling, waiting): owners present, absent, and deleting in the foreground."""
        solid, dangling, waiting = [], [], []
        for ref in refs:
            owner = await self._owner(node, ref)
            if owner is None:
                dangling.append(ref)
                continue
            om = owner["metadata"]
            if om.get("deletionTimestamp") and FOREGROUND in (om.get("finalizers") or ()):
                waiting.append(ref)
            else:
                solid.append(ref)
        return solid, dangling, waiting

    async def _owner(self, node: Node, ref: dict) -> dict | None:
        """The owner a reference names, live from the API; None if absent (or another uid)."""
        api_version, kind, name, uid = (ref.get("apiVersion", ""), ref.get("kind", ""),
                                        ref.get("name", ""), ref.get("uid", ""))
        ns = node.identity.namespace
        if self.absent.has(api_version, kind, "", name, uid) or self.absent.has(api_version, kind, ns, name, uid):
            return None
        res = self._resource(api_version, kind)
        if res.namespaced and not ns:
            log.info("garbage collector: %r names a namespaced owner %s %s; ignored", node, kind, name)
            raise _Settled  # a cluster-scoped object cannot have one; retrying will not help
        owner_ns = ns if res.namespaced else ""
        try:
            owner = await self.client.get(res, name, owner_ns or None, accept=METADATA_ACCEPT)
        except ApiError as e:
            if not is_not_found(e):
                raise
            owner = None
        if owner is None or owner["metadata"].get("uid") != uid:
            self.absent.add(Identity(api_version, kind, owner_ns, name, uid))
            return None
        return owner

    # -- attempt to orphan -----------------------------------------------------------------
    async def _attempt_to_orphan(self, uid: str) -> bool:
        node = self.graph.get(uid)
        if node is None:
            return False
        results = await asyncio.gather(*(self._remove_references(dep, {uid}) for dep in list(node.dependents)),
                                       return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            log.info("garbage collector: orphaning the dependents of %r: %s", node, failed[0])
            return True
        await self._remove_finalizer(node, ORPHAN)
        return False

    # -- API calls -------------------------------------------------------------------------
    def _resource(self, api_version: str, kind: str) -> Resource:
        res = self.kinds.get((api_version, kind))
        if res is None:
            raise _UnknownKind(f"no resource serves {kind} in {api_version}")
        return res

    def _where(self, identity: Identity) -> tuple[Resource, str | None]:
        res = self._resource(identity.api_version, identity.kind)
        return res, (identity.namespace or None) if res.namespaced else None

    async def _get(self, identity: Identity) -> dict | None:
        """The object's live metadata, or None when nothing by that name exists."""
        res, ns = self._where(identity)
        if res.namespaced and not ns:
            return None  # a namespaced kind with no namespace to look in: cannot exist
        try:
            return await self.client.get(res, identity.name, ns, accept=METADATA_ACCEPT)
        except ApiError as e:
            if is_not_found(e):
                return None
            raise

    async def _delete(self, node: Node, latest: dict, policy: str) -> None:
        res, ns = self._where(node.identity)
        md = latest["metadata"]
        try:
            await self.client.delete(res, node.identity.name, ns, propagation_policy=policy,
                                     preconditions={"uid": node.uid, "resourceVersion": md.get("resourceVersion")})
        except ApiError as e:
            if is_not_found(e):
                self._confirmed_absent(node.identity)
                raise _Settled from None
            if e.code != 409:
                raise
            # changed since we looked: delete anyway if what changed is not its owners
            live = await self._get(node.identity)
            if live is None:
                self._confirmed_absent(node.identity)
                raise _Settled from None
            lm = live["metadata"]
            if lm.get("uid") != node.uid or lm.get("ownerReferences") != md.get("ownerReferences"):
                raise
            try:
                await self.client.delete(res, node.identity.name, ns, propagation_policy=policy,
                                         preconditions={"uid": node.uid})
            except ApiError as e2:
                if is_not_found(e2):
                    self._confirmed_absent(node.identity)
                    raise _Settled from None
                raise

    async def _update_metadata(self, node: Node, change) -> None:
        """Apply `change(metadata) -> patch or None` to the live object, with optimistic
        concurrency (the patch carries its resourceVersion and uid); gone is fine."""
        res, ns = self._where(node.identity)
        for attempt in range(5):
            live = await self._get(node.identity)
            if live is None or live["metadata"].get("uid") != node.uid:
                return
            md = live["metadata"]
            patch = change(md)
            if patch is None:
                return
            patch.update(resourceVersion=md.get("resourceVersion"), uid=node.uid)
            try:
                await self.client.request("PATCH", res.path(ns, node.identity.name), body={"metadata": patch},
                                          content_type="application/merge-patch+json", accept=METADATA_ACCEPT)
                return
            except ApiError as e:
                if is_not_found(e):
                    return
                if e.code != 409 or attempt == 4:
                    raise
            await asyncio.sleep(0.01 * 2 ** attempt)

    async def _remove_references(self, node: Node, owner_uids: set[str]) -> None:
        def change(md):
            refs = md.get("ownerReferences") or []
            kept = [r for r in refs if r.get("uid") not in owner_uids]
            return None if len(kept) == len(refs) else {"ownerReferences": kept or None}
        await self._update_metadata(node, change)

    async def _unblock_references(self, node: Node) -> None:
        def change(md):
            refs = md.get("ownerReferences") or []
            if not any(r.get("blockOwnerDeletion") for r in refs):
                return None
            return {"ownerReferences": [dict(r, blockOwnerDeletion=False) for r in refs]}
        await self._update_metadata(node, change)

    async def _remove_finalizer(self, node: Node, finalizer: str) -> None:
        def change(md):
            fins = md.get("finalizers") or []
            if finalizer not in fins:
                return None
            return {"finalizers": [f for f in fins if f != finalizer] or None}
        await self._update_metadata(node, change)


# -- discovery ---------------------------------------------------------------------------------

async def discover(client: Client) -> tuple[dict[tuple[str, str], Resource], dict[tuple[str, str], Resource]]:
    """What the server serves: (deletable, kinds).

    deletable: (group, plural) -> Resource at the group's preferred version (a resource only
    served in other versions at the first that has it), for those that support list, watch and
    delete. kinds: (apiVersion, kind) -> Resource for every served version, to resolve the
    apiVersion/kind of an ownerReference.
    """
    lists: list[tuple[str, str, dict]] = []
    core = await client.request("GET", "/api")
    for version in core.get("versions") or []:
        lists.append(("", version, await client.request("GET", f"/api/{version}")))
    groups = await client.request("GET", "/apis")
    for g in groups.get("groups") or []:
        preferred = (g.get("preferredVersion") or {}).get("version")
        versions = sorted(g.get("versions") or [], key=lambda v: v.get("version") != preferred)
        for gv in versions:
            try:
                rl = await client.request("GET", f"/apis/{gv['groupVersion']}")
            except ApiError as e:
                log.info("garbage collector: discovery of %s failed: %s", gv.get("groupVersion"), e)
                continue
            lists.append((g["name"], gv["version"], rl))
    deletable: dict[tuple[str, str], Resource] = {}
    kinds: dict[tuple[str, str], Resource] = {}
    for group, version, rl in lists:
        for r in rl.get("resources") or []:
            name = r.get("name", "")
            if "/" in name:
                continue
            res = Resource(group, version, name, r.get("kind", ""), bool(r.get("namespaced")))
            kinds.setdefault((res.api_version, res.kind), res)
            if (group, name) not in IGNORED_RESOURCES and NEEDED_VERBS <= set(r.get("verbs") or ()):
                deletable.setdefault((group, name), res)
    return deletable, kinds


class _MetadataOnly:
    """What an Informer needs from a client, asking for PartialObjectMetadata (smaller)."""

    def __init__(self, client: Client):
        self.client = client

    async def list_all(self, res: Resource, namespace: str | None = None, **kw):
        return await self.client.list_all(res, namespace, accept=METADATA_LIST_ACCEPT, **kw)

    def watch(self, res: Resource, namespace: str | None = None, **kw):
        return self.client.watch(res, namespace, accept=METADATA_ACCEPT, **kw)


_KEPT_METADATA = ("name", "namespace", "uid", "resourceVersion", "ownerReferences", "finalizers",
                  "deletionTimestamp")


def _slim(obj: dict) -> dict:
    """Only the metadata the graph uses (the informer caches every object in the cluster)."""
    md = obj.get("metadata") or {}
    return {"metadata": {k: md[k] for k in _KEPT_METADATA if k in md}}


class _AbsentOwners:
    """Owners known not to exist (uids never come back), most recent first, bounded."""

    def __init__(self, size: int = 1000):
        self.size = size
        self._seen: OrderedDict = OrderedDict()

    def add(self, identity: Identity) -> None:
        self._seen[identity] = None
        self._seen.move_to_end(identity)
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)

    def has(self, *identity) -> bool:
        return Identity(*identity) in self._seen


# -- helpers ---------------------------------------------------------------------------------

def _starts_deleting_with(old: dict | None, md: dict, finalizer: str) -> bool:
    """Whether the object is now being deleted with `finalizer` and was not before."""
    if not md.get("deletionTimestamp") or finalizer not in (md.get("finalizers") or ()):
        return False
    if old is None:
        return True
    om = old.get("metadata") or {}
    return not om.get("deletionTimestamp") or finalizer not in (om.get("finalizers") or ())


def _reference_changes(old: list[dict], new: list[dict]):
    """(added, removed, changed) ownerReferences, matched by uid."""
    before = {r.get("uid"): r for r in old}
    after = {r.get("uid"): r for r in new}
    added = [r for u, r in after.items() if u not in before]
    removed = [r for u, r in before.items() if u not in after]
    changed = [(before[u], r) for u, r in after.items() if u in before and before[u] != r]
    return added, removed, changed


def _ref_matches(ref: dict, identity: Identity) -> bool:
    return (ref.get("apiVersion"), ref.get("kind"), ref.get("name"), ref.get("uid")) == \
        (identity.api_version, identity.kind, identity.name, identity.uid)


def _partition(dependents, identity: Identity) -> tuple[list[Node], list[Node]]:
    """Dependents whose reference to identity.uid matches these coordinates, and those that
    name it otherwise (a dependent can be in both)."""
    matching, others = [], []
    for dep in dependents:
        match = mismatch = False
        if identity.namespace and identity.namespace != dep.identity.namespace:
            mismatch = True
        else:
            for ref in dep.owners:
                if ref.get("uid") == identity.uid:
                    if _ref_matches(ref, identity):
                        match = True
                    else:
                        mismatch = True
        if match:
            matching.append(dep)
        if mismatch:
            others.append(dep)
    return matching, others


def _alternative_identity(dependents: list[Node], absent: Identity) -> Identity | None:
    """Other coordinates the dependents give for absent.uid: the next in order after `absent`,
    else the first (so that every alternative is tried in turn)."""
    seen = set()
    for dep in dependents:
        for ref in dep.owners:
            if ref.get("uid") != absent.uid:
                continue
            ns = dep.identity.namespace
            if not absent.namespace and (ref.get("apiVersion"), ref.get("kind")) == (absent.api_version, absent.kind):
                ns = ""  # that kind is known to be cluster-scoped
            cand = Identity(ref.get("apiVersion", ""), ref.get("kind", ""), ns, ref.get("name", ""), absent.uid)
            if cand != absent:
                seen.add(cand)
    if not seen:
        return None
    ordered = sorted(seen, key=_order)
    following = [c for c in ordered if _order(c) > _order(absent)]
    return following[0] if following else ordered[0]


def _order(i: Identity) -> tuple:
    return (i.kind, i.api_version, i.namespace, i.name, i.uid)
