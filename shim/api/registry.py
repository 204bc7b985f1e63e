"""The generic REST storage: one implementation of every verb for every resource.

ResourceStore turns API verbs into store operations and back, calling the resource's
Strategy for what differs per kind. Objects live in the store as JSON without
metadata.resourceVersion; on the way out resourceVersion is the store's mod revision, so
it is comparable across replicas sharing a store (as upstream does with etcd).

A resource whose strategy names a `storage_resource` is a view: it reads and writes the
other resource's keys, and its strategy converts between the stored shape and the served
one at the codec (decode/encode/_load), so every verb, selector and watch works on the
served shape while the store holds one object. (events.k8s.io/v1 Events are such a view of
core Events; builds before that kept them under /registry/events.k8s.io/events/, which is
no longer read: events expire within hours, so nothing is migrated.)

Every write (create, update, and the update that marks an object deleting) asks the
strategy's ttl_seconds for the object as stored; a number makes the store delete the object
that long after the write unless it is written again (Events: --event-ttl).
"""
from __future__ import annotations

import asyncio
import base64
import datetime as _dt
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Callable

import orjson

from shim.api import errors, managedfields
from shim.api.objects import generate_name, now_rfc3339, parse_rfc3339, rfc3339_after
from shim.api.selectors import FieldSelector, LabelSelector, SelectorError, \
    parse_field_selector, parse_label_selector
from shim.api.validation import FINALIZER_FOREGROUND, FINALIZER_ORPHAN
from shim.store.base import (CompactedError, ConflictError, FutureRevisionError,
                             KeyExistsError, KeyNotFoundError, KeyValue, Store, StoreError,
                             UnavailableError)

if TYPE_CHECKING:
    from shim.api.strategy import Strategy
    from shim.schemas import ResourceInfo

MAX_CAS_RETRIES = 16
# Subresources whose handlers build the new object themselves (pods/binding sets
# spec.nodeName and a status condition at once); they skip the spec/status split.
TRUSTED_SUBRESOURCES = ("binding",)
# Subresources that replace one slice of the object (top-level fields), keeping the rest.
SLICE_SUBRESOURCES = {"status": ("status",), "approval": ("status",), "finalize": ("spec",)}


@dataclass
class ListOptions:
    label_selector: LabelSelector | None = None
    field_selector: FieldSelector | None = None
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""
    # watch-only
    allow_bookmarks: bool = False
    send_initial_events: bool | None = None
    timeout_seconds: int | None = None

    @classmethod
    def from_query(cls, q, strategy: "Strategy") -> "ListOptions":
        opts = cls()
        try:
            if q.get("labelSelector"):
                opts.label_selector = parse_label_selector(q["labelSelector"])
            if q.get("fieldSelector"):
                fs = parse_field_selector(q["fieldSelector"])
                for name in fs.fields():
                    if not strategy.supports_field(name):
                        raise errors.bad_request(strategy.unsupported_field_message(name))
                opts.field_selector = fs
        except SelectorError as e:
            raise errors.bad_request(str(e))
        opts.limit = _int_param(q, "limit", 0)
        opts.continue_token = q.get("continue", "")
        opts.resource_version = q.get("resourceVersion", "")
        opts.resource_version_match = q.get("resourceVersionMatch", "")
        opts.allow_bookmarks = _bool_param(q, "allowWatchBookmarks")
        if "sendInitialEvents" in q:
            opts.send_initial_events = _bool_param(q, "sendInitialEvents")
        if q.get("timeoutSeconds"):
            opts.timeout_seconds = _int_param(q, "timeoutSeconds", 0)
        return opts

    def matches(self, obj: dict, strategy: "Strategy") -> bool:
        if self.label_selector is not None and not self.label_selector.empty:
            if not self.label_selector.matches((obj.get("metadata") or {}).get("labels")):
                return False
        if self.field_selector is not None and not self.field_selector.empty:
            if not self.field_selector.matches(strategy.field_set(obj)):
                return False
        return True

    @property
    def filtering(self) -> bool:
        return bool((self.label_selector and not self.label_selector.empty) or
                    (self.field_selector and not self.field_selector.empty))


@dataclass
class WriteOptions:
    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = ""
    # set by server-side apply, which records field ownership itself
    server_side_apply: bool = False

    @classmethod
    def from_query(cls, q) -> "WriteOptions":
        dry = q.getall("dryRun", []) if hasattr(q, "getall") else ([q["dryRun"]] if "dryRun" in q else [])
        for d in dry:
            if d != "All":
                raise errors.bad_request(f'Invalid dry run value: "{d}"')  # refined by validation later
        fv = q.get("fieldValidation", "")
        if fv and fv not in ("Ignore", "Warn", "Strict"):
            raise errors.bad_request(
                f'fieldValidation: Unsupported value: "{fv}": supported values: "Ignore", "Strict", "Warn"')
        return cls(dry_run=bool(dry), field_manager=q.get("fieldManager", ""), field_validation=fv)


@dataclass
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str = ""               # "", Orphan, Background or Foreground
    orphan_dependents: bool | None = None      # the deprecated field; None when not given
    preconditions_uid: str = ""
    preconditions_rv: str = ""
    dry_run: bool = False

    @classmethod
    def parse(cls, q, body: dict | None) -> "DeleteOptions":
        o = cls()
        body = body or {}
        if q.get("gracePeriodSeconds") not in (None, ""):
            o.grace_period_seconds = _int_param(q, "gracePeriodSeconds", 0)
        elif body.get("gracePeriodSeconds") is not None:
            o.grace_period_seconds = int(body["gracePeriodSeconds"])
        o.propagation_policy = q.get("propagationPolicy") or body.get("propagationPolicy") or ""
        orphan = q.get("orphanDependents")
        if orphan not in (None, ""):
            o.orphan_dependents = orphan.lower() in ("true", "t", "1")
        elif body.get("orphanDependents") is not None:
            o.orphan_dependents = bool(body["orphanDependents"])
        if o.orphan_dependents is not None and o.propagation_policy:
            from shim.api.validation import invalid
            raise errors.invalid("DeleteOptions", "meta.k8s.io", "", [invalid(
                "propagationPolicy", o.propagation_policy,
                "orphanDependents and deletionPropagation cannot be both set")])
        if o.propagation_policy and o.propagation_policy not in ("Orphan", "Background", "Foreground"):
            raise errors.ApiError(422, "Invalid",
                                  f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: '
                                  f'"{o.propagation_policy}": supported values: "Foreground", "Background", "Orphan", "nil"')
        pre = body.get("preconditions") or {}
        o.preconditions_uid = pre.get("uid") or ""
        o.preconditions_rv = pre.get("resourceVersion") or ""
        dry = (q.getall("dryRun", []) if hasattr(q, "getall") else []) or body.get("dryRun") or []
        o.dry_run = "All" in dry
        return o


def _int_param(q, name: str, default: int) -> int:
    raw = q.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise errors.bad_request(f'invalid value for {name}: "{raw}"') from None


def _bool_param(q, name: str) -> bool:
    return q.get(name, "").lower() in ("true", "1")


# Admission hooks: async callables (operation, store, obj, old, user) that may mutate obj or
# raise ApiError. Validating and mutating admission plug in here without touching handlers.
AdmissionHook = Callable[[str, "ResourceStore", dict, dict | None, object], Awaitable[None]]


class ResourceStore:
    """Every verb of one resource, over the shared Store."""

    def __init__(self, info: "ResourceInfo", strategy: "Strategy", store: Store, api):
        self.info = info
        self.strategy = strategy
        self.store = store
        self.api = api  # the Api object: lookups of other resources, admission, types
        self.converted = strategy.storage_resource is not None
        g, plural = strategy.storage_resource or (info.group, info.plural)
        self.root = f"/registry/{plural}/" if not g else f"/registry/{g}/{plural}/"
        # what tells this resource's decoded objects and encodings apart from another
        # resource's over the same keys (the watch memo is shared by every resource)
        self.view_id = f"{info.group_version}/{info.plural}"

    # -- keys --------------------------------------------------------------------------
    def key(self, namespace: str, name: str) -> str:
        return f"{self.root}{namespace}/{name}" if self.info.namespaced else f"{self.root}{name}"

    def prefix(self, namespace: str) -> str:
        return f"{self.root}{namespace}/" if (self.info.namespaced and namespace) else self.root

    # -- codec -------------------------------------------------------------------------
    def decode(self, kv: KeyValue) -> dict:
        obj = self._load(kv.value)
        obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
        return obj

    def _load(self, value: bytes) -> dict:
        """Stored bytes as this resource serves them (without resourceVersion)."""
        obj = orjson.loads(value)
        return self.strategy.from_storage(obj) if self.converted else obj

    def encode(self, obj: dict) -> bytes:
        m = obj["metadata"]
        rv = m.pop("resourceVersion", None)
        try:
            return orjson.dumps(self.strategy.to_storage(obj) if self.converted else obj)
        finally:
            if rv is not None:
                m["resourceVersion"] = rv

    def _name_err(self, name: str):
        return errors.not_found(self.info.plural, self.info.group, name)

    # -- get ---------------------------------------------------------------------------
    async def get(self, namespace: str, name: str, resource_version: str = "") -> dict:
        rev = 0
        if resource_version not in ("", "0"):
            rev = _parse_rv(resource_version)
        kv = await self._store_call(self.store.get(self.key(namespace, name), revision=rev))
        if kv is None:
            raise self._name_err(name)
        return self.decode(kv)

    async def get_or_none(self, namespace: str, name: str) -> dict | None:
        kv = await self._store_call(self.store.get(self.key(namespace, name)))
        return self.decode(kv) if kv else None

    # -- list --------------------------------------------------------------------------
    async def list(self, namespace: str, opts: ListOptions) -> dict:
        """A List object honouring selectors, limit/continue and resourceVersion semantics."""
        prefix = self.prefix(namespace)
        start_key = prefix
        revision = 0
        if opts.continue_token:
            revision, start_key = self._decode_continue(opts.continue_token, prefix)
        elif opts.resource_version and opts.resource_version != "0":
            rv = _parse_rv(opts.resource_version)
            if opts.resource_version_match == "Exact":
                revision = rv
            else:  # NotOlderThan (explicit or legacy): the latest state is not older
                current = await self._store_call(self.store.current_revision())
                if rv > current:
                    raise errors.timeout(f"Too large resource version: {rv}, current: {current}")
        elif opts.resource_version_match and opts.resource_version_match != "NotOlderThan" \
                and not opts.resource_version:
            raise errors.bad_request(
                "resourceVersionMatch is forbidden unless resourceVersion is provided")

        # Narrow to a single key when the field selector pins the name.
        name = opts.field_selector.exact("metadata.name") if opts.field_selector else None
        ns_pin = opts.field_selector.exact("metadata.namespace") if opts.field_selector else None
        if ns_pin is not None and self.info.namespaced and not namespace:
            prefix = start_key = self.prefix(ns_pin) if ns_pin else prefix

        items: list[dict] = []
        more = False
        remaining = None
        if name is not None and (namespace or not self.info.namespaced or ns_pin):
            kv = await self._store_call(self.store.get(self.key(namespace or ns_pin or "", name),
                                                       revision=revision))
            rev_now = revision or await self._store_call(self.store.current_revision())
            if kv is not None:
                obj = self.decode(kv)
                if opts.matches(obj, self.strategy):
                    items.append(obj)
            list_rev = rev_now
            next_key = None
        else:
            limit = opts.limit if opts.limit > 0 else 0
            list_rev = revision
            next_key = None
            chunk = limit + 1 if limit and not opts.filtering else (max(limit * 2, 500) if limit else 0)
            cursor = start_key
            while True:
                res = await self._store_call(self.store.range(
                    prefix, revision=list_rev, limit=chunk, start_key=cursor,
                    count=bool(limit) and not opts.filtering))
                list_rev = res.revision
                kvs = res.kvs
                for i, kv in enumerate(kvs):
                    if limit and len(items) == limit:
                        more = True
                        next_key = kv.key
                        break
                    obj = self.decode(kv)
                    if opts.matches(obj, self.strategy):
                        items.append(obj)
                else:
                    if res.more and kvs:
                        cursor = kvs[-1].key + "\x00"
                        continue
                    break
                break
            if more and not opts.filtering and limit:
                remaining = max(res.count - limit, 0)
        md: dict = {"resourceVersion": str(list_rev)}
        if more and next_key is not None:
            md["continue"] = self._encode_continue(list_rev, next_key, prefix)
            if remaining is not None:
                md["remainingItemCount"] = remaining
        return {"kind": self.info.list_kind, "apiVersion": self.info.group_version,
                "metadata": md, "items": items}

    def _encode_continue(self, rev: int, next_key: str, prefix: str) -> str:
        token = {"v": "meta.k8s.io/v1", "rv": rev, "start": next_key[len(self.root):]}
        return base64.urlsafe_b64encode(orjson.dumps(token)).decode().rstrip("=")

    def _decode_continue(self, token: str, prefix: str) -> tuple[int, str]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = orjson.loads(raw)
            if data.get("v") != "meta.k8s.io/v1":
                raise ValueError
            rev = int(data["rv"])
            start = self.root + data["start"]
        except Exception:
            raise errors.bad_request("invalid continue token: continue key is not valid: incorrect "
                                     "encoded start resourceVersion (version meta.k8s.io/v1)") from None
        if not start.startswith(prefix):
            raise errors.bad_request("invalid continue token: continue key is not valid: "
                                     "the key does not belong to this request")
        if rev < self.store.compact_revision:
            raise errors.gone(
                "The provided continue parameter is too old to display a consistent list result. "
                "You can start a new list without the continue parameter.")
        return rev, start

    # -- create ------------------------------------------------------------------------
    async def create(self, namespace: str, obj: dict, opts: WriteOptions, user=None) -> dict:
        self._check_type(obj)
        m = obj.setdefault("metadata", {})
        if not isinstance(m, dict):
            raise errors.bad_request("metadata must be an object")
        self._set_namespace(m, namespace)
        if not m.get("name") and m.get("generateName"):
            m["name"] = generate_name(m["generateName"])
        for k in ("uid", "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "selfLink"):
            m.pop(k, None)
        m["creationTimestamp"] = now_rfc3339()
        m["uid"] = str(uuid.uuid4())
        if self.strategy.tracks_generation:
            m["generation"] = 1
        else:
            m.pop("generation", None)
        managedfields.track_create(self, obj, opts)
        self.strategy.prepare_for_create(obj)
        self.strategy.default(obj)
        errs = self.strategy.validate(obj)
        if errs:
            raise errors.invalid(self.info.kind, self.info.group, m.get("name", ""), errs)
        if self.info.namespaced:
            await self.api.check_namespace_open(m["namespace"], self.info, m.get("name", ""))
        await self.api.admit("CREATE", self, obj, None, user)
        finish = await self.api.begin_write("CREATE", self, obj, None, opts.dry_run)
        committed = False
        try:
            if opts.dry_run:
                if await self.get_or_none(m.get("namespace", ""), m["name"]) is not None:
                    raise errors.already_exists(self.info.plural, self.info.group, m["name"])
                return obj
            try:
                kv = await self._store_call(self.store.create(self.key(m.get("namespace", ""), m["name"]),
                                                              self.encode(obj),
                                                              ttl=self.strategy.ttl_seconds(obj)))
            except KeyExistsError:
                raise errors.already_exists(self.info.plural, self.info.group, m["name"]) from None
            committed = True
        finally:
            await finish(committed)
        m["resourceVersion"] = str(kv.mod_revision)
        return obj

    def _check_type(self, obj: dict):
        if not isinstance(obj, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        av, kind = obj.get("apiVersion"), obj.get("kind")
        if kind and kind != self.info.kind:
            raise errors.bad_request(
                f'{self.info.kind} in version "{self.info.version}" cannot be handled as a {kind}: '
                f'the kind in the data ({kind}) does not match the expected kind ({self.info.kind})')
        if av and av != self.info.group_version:
            raise errors.bad_request(
                f"the API version in the data ({av}) does not match the expected API version "
                f"({self.info.group_version})")
        obj["apiVersion"] = self.info.group_version
        obj["kind"] = self.info.kind

    def _set_namespace(self, m: dict, namespace: str):
        if self.info.namespaced:
            body_ns = m.get("namespace")
            if body_ns and namespace and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request")
            m["namespace"] = namespace or body_ns or ""
        else:
            m.pop("namespace", None)

    # -- update ------------------------------------------------------------------------
    async def update(self, namespace: str, name: str, obj: dict, opts: WriteOptions,
                     subresource: str = "", user=None) -> tuple[dict, bool]:
        """PUT: replace the object (or its status). Returns (object, created)."""
        self._check_type(obj)
        m = obj.setdefault("metadata", {})
        self._set_namespace(m, namespace)
        if m.get("name") and m["name"] != name:
            raise errors.bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                                     % (m["name"], name))
        m["name"] = name
        wanted_rv = m.get("resourceVersion") or ""
        if wanted_rv:
            _parse_rv(wanted_rv)

        async def mutate(old: dict | None) -> dict:
            return orjson.loads(orjson.dumps(obj))  # each attempt starts from the request
        return await self._update_loop(namespace, name, mutate, opts, subresource, user,
                                       precondition_rv=wanted_rv)

    async def patch_apply(self, namespace: str, name: str,
                          mutate: Callable[[dict], dict], opts: WriteOptions,
                          subresource: str = "", user=None) -> dict:
        """PATCH-like updates: mutate(current) -> new, retried on concurrent writes."""
        async def wrapped(old):
            if old is None:
                raise self._name_err(name)
            new = mutate(old)
            self._check_type(new)
            return new
        obj, _ = await self._update_loop(namespace, name, wrapped, opts, subresource, user,
                                         precondition_rv=None)
        return obj

    async def _update_loop(self, namespace, name, mutate, opts: WriteOptions, subresource, user,
                           precondition_rv) -> tuple[dict, bool]:
        key = self.key(namespace, name)
        for _ in range(MAX_CAS_RETRIES):
            kv = await self._store_call(self.store.get(key))
            old = self.decode(kv) if kv else None
            if old is None:
                if subresource or not self.strategy.allow_create_on_update or precondition_rv is None:
                    raise self._name_err(name)
                new = await mutate(None)
                new["metadata"].pop("resourceVersion", None)
                return await self.create(namespace, new, opts, user), True
            new = await mutate(old)
            nm = new.setdefault("metadata", {})
            if precondition_rv is None:
                # patch: the patch may carry a resourceVersion precondition of its own
                wanted = nm.get("resourceVersion")
                if wanted and wanted != old["metadata"]["resourceVersion"]:
                    raise errors.conflict(self.info.plural, self.info.group, name, errors.MODIFIED)
            elif precondition_rv:
                if precondition_rv != old["metadata"]["resourceVersion"]:
                    raise errors.conflict(self.info.plural, self.info.group, name, errors.MODIFIED)
            elif not self.strategy.allow_unconditional_update:
                raise errors.ApiError(422, "Invalid",
                                      f'{self.info.kind} "{name}" is invalid: metadata.resourceVersion: '
                                      f'Invalid value: 0: must be specified for an update')
            new = self._prepare_update(new, old, subresource)
            managedfields.track_update(self, new, old, opts, subresource)
            if subresource not in TRUSTED_SUBRESOURCES:
                errs = self.strategy.validate_update(new, old)
                if errs:
                    raise errors.invalid(self.info.kind, self.info.group, name, errs)
            await self.api.admit("UPDATE", self, new, old, user)
            finish = await self.api.begin_write("UPDATE", self, new, old, opts.dry_run)
            committed = False
            try:
                if opts.dry_run:
                    return new, False
                if new == old:
                    return old, False  # no-op updates do not bump the revision (as upstream)
                if self._finalized(new) and not self.strategy.deletion_blocked(new):
                    try:
                        await self._store_call(self.store.delete(key, kv.mod_revision))
                    except ConflictError:
                        continue
                    committed = True
                    await self.api.after_delete(self, new)
                    return new, False
                try:
                    out = await self._store_call(self.store.update(
                        key, self.encode(new), kv.mod_revision, ttl=self.strategy.ttl_seconds(new)))
                except ConflictError:
                    if precondition_rv:
                        raise errors.conflict(self.info.plural, self.info.group, name, errors.MODIFIED)
                    continue
                except KeyNotFoundError:
                    raise self._name_err(name) from None
                committed = True
            finally:
                await finish(committed)
            new["metadata"]["resourceVersion"] = str(out.mod_revision)
            return new, False
        raise errors.conflict(self.info.plural, self.info.group, name, "too many concurrent updates")

    def _prepare_update(self, new: dict, old: dict, subresource: str) -> dict:
        nm, om = new["metadata"], old["metadata"]
        # as upstream's BeforeUpdate: a missing uid means "the same"; a different one fails
        # validation (immutable); timestamps and generation are the server's.
        if not nm.get("uid") and "uid" in om:
            nm["uid"] = om["uid"]
        for k in ("creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if k in om:
                nm[k] = om[k]
            else:
                nm.pop(k, None)
        if om.get("deletionTimestamp"):
            # once deleting, finalizers may only be removed, never added
            nm["finalizers"] = [f for f in nm.get("finalizers") or [] if f in (om.get("finalizers") or [])]
            if not nm["finalizers"]:
                nm.pop("finalizers")
        if subresource in SLICE_SUBRESOURCES:
            self.strategy.prepare_for_status_update(new, old, SLICE_SUBRESOURCES[subresource])
        elif subresource in TRUSTED_SUBRESOURCES:
            pass
        else:
            self.strategy.prepare_for_update(new, old)
            self.strategy.default(new)
            if self.strategy.tracks_generation and self.strategy.spec_changed(new, old):
                nm["generation"] = int(om.get("generation") or 0) + 1
        nm["resourceVersion"] = om["resourceVersion"]
        return new

    @staticmethod
    def _finalized(obj: dict) -> bool:
        m = obj["metadata"]
        return bool(m.get("deletionTimestamp")) and not m.get("finalizers") and \
            m.get("deletionGracePeriodSeconds", 0) == 0

    # -- delete ------------------------------------------------------------------------
    async def delete(self, namespace: str, name: str, opts: DeleteOptions, user=None) -> tuple[dict, bool]:
        """Returns (object, removed_now). Finalizers or a grace period keep the object.

        As upstream's generic store does it: a kind with graceful deletion (a pod on a node)
        gets a deletionTimestamp in the future, which a later DELETE may only bring forward.
        The propagation policy decides the garbage collector's finalizers (`orphan` or
        `foregroundDeletion`, see gc_finalizers) whether or not dependents exist; an object
        left with finalizers is marked (deletionTimestamp now, grace 0) and waits for them.
        """
        key = self.key(namespace, name)
        for _ in range(MAX_CAS_RETRIES):
            kv = await self._store_call(self.store.get(key))
            if kv is None:
                raise self._name_err(name)
            obj = self.decode(kv)
            m = obj["metadata"]
            # upstream's rest.BeforeDelete names the kind (not the resource) in these
            if opts.preconditions_uid and opts.preconditions_uid != m.get("uid"):
                raise errors.conflict(
                    self.info.kind, self.info.group, name,
                    f"the UID in the precondition ({opts.preconditions_uid}) does not match the UID "
                    f"in record ({m.get('uid')}). The object might have been deleted and then recreated")
            if opts.preconditions_rv and opts.preconditions_rv != m["resourceVersion"]:
                raise errors.conflict(
                    self.info.kind, self.info.group, name,
                    f"the ResourceVersion in the precondition ({opts.preconditions_rv}) does not match "
                    f"the ResourceVersion in record ({m['resourceVersion']}). The object might have "
                    f"been modified")
            await self.api.admit("DELETE", self, obj, obj, user)
            blocked = self.strategy.deletion_blocked(obj)
            deleting = bool(m.get("deletionTimestamp"))
            if deleting and blocked:
                return obj, False  # e.g. a terminating namespace: nothing to change until it is emptied
            new = self._load(kv.value)
            nm = new["metadata"]
            nm["resourceVersion"] = m["resourceVersion"]
            requested = opts.grace_period_seconds
            if requested is not None and requested < 0:
                requested = 1  # as upstream: a negative grace period means one second
            graceful = False
            if deleting and (m.get("deletionGracePeriodSeconds") or 0) > 0:
                # a graceful deletion under way may only be shortened; else nothing changes,
                # not even the finalizers
                current = m["deletionGracePeriodSeconds"]
                if requested is None or requested >= current:
                    return obj, False
                _shorten_grace(nm, current, requested)
                graceful = True
            elif not deleting:
                grace = self.strategy.graceful_delete_period(obj, requested)
                if grace is not None:
                    nm["deletionTimestamp"] = rfc3339_after(grace)
                    nm["deletionGracePeriodSeconds"] = grace
                    graceful = True
            finalizers = gc_finalizers(m.get("finalizers") or [], opts, self.strategy.gc_policy)
            if finalizers:
                nm["finalizers"] = finalizers
            else:
                nm.pop("finalizers", None)
            waiting = graceful and nm["deletionGracePeriodSeconds"] > 0
            if not finalizers and not blocked and not waiting:
                # nothing to wait for: remove it now
                if opts.dry_run:
                    return obj, True
                try:
                    await self._store_call(self.store.delete(key, kv.mod_revision))
                except ConflictError:
                    continue
                except KeyNotFoundError:
                    raise self._name_err(name) from None
                await self.api.after_delete(self, obj)
                return obj, True
            if not deleting:
                if not graceful:
                    nm["deletionTimestamp"] = now_rfc3339()
                    nm["deletionGracePeriodSeconds"] = 0
                if self.strategy.tracks_generation:
                    nm["generation"] = int(nm.get("generation") or 0) + 1
                self.strategy.mark_deleting(new)
            elif not graceful:
                # upstream's markAsDeleting: grace 0, a deletionTimestamp no later than now
                now = now_rfc3339()
                if parse_rfc3339(nm["deletionTimestamp"]) > parse_rfc3339(now):
                    nm["deletionTimestamp"] = now
                nm["deletionGracePeriodSeconds"] = 0
            if new == obj or opts.dry_run:
                return new, False  # as upstream, an unchanged object is not written again
            try:
                out = await self._store_call(self.store.update(
                    key, self.encode(new), kv.mod_revision, ttl=self.strategy.ttl_seconds(new)))
            except ConflictError:
                continue
            except KeyNotFoundError:
                raise self._name_err(name) from None
            nm["resourceVersion"] = str(out.mod_revision)
            return new, False
        raise errors.conflict(self.info.plural, self.info.group, name, "too many concurrent updates")

    async def delete_collection(self, namespace: str, list_opts: ListOptions,
                                del_opts: DeleteOptions, user=None) -> dict:
        lst = await self.list(namespace, ListOptions(label_selector=list_opts.label_selector,
                                                     field_selector=list_opts.field_selector))
        out = []
        for obj in lst["items"]:
            m = obj["metadata"]
            try:
                deleted, _ = await self.delete(m.get("namespace", ""), m["name"], del_opts, user)
                out.append(deleted)
            except errors.ApiError as e:
                if e.code != 404:
                    raise
        lst["items"] = out
        return lst

    # -- watch -------------------------------------------------------------------------
    def watch_prefix(self, namespace: str, opts: ListOptions) -> str:
        if opts.field_selector and self.info.namespaced and not namespace:
            ns_pin = opts.field_selector.exact("metadata.namespace")
            if ns_pin:
                return self.prefix(ns_pin)
        return self.prefix(namespace)

    # -- helpers -----------------------------------------------------------------------
    async def _store_call(self, aw):
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            async with asyncio.timeout(self.api.store_timeout):
                return await aw
        except CompactedError as e:
            raise errors.gone(f"too old resource version: {e.requested} ({e.compact_revision})") from None
        except FutureRevisionError as e:
            raise errors.timeout(f"Too large resource version: {e.requested}, current: {e.current}") from None
        except (UnavailableError, asyncio.TimeoutError) as e:
            raise errors.service_unavailable(f"storage is unavailable: {e or 'timeout'}") from None
        except (KeyExistsError, KeyNotFoundError, ConflictError):
            raise
        except StoreError as e:
            raise errors.internal(str(e)) from None


def _parse_rv(rv: str) -> int:
    try:
        n = int(rv)
        if n < 0:
            raise ValueError
        return n
    except ValueError:
        raise errors.bad_request(f'resourceVersion: Invalid value: "{rv}": must be a valid resource version') \
            from None


def gc_finalizers(current: list, opts: DeleteOptions, policy: str) -> list:
    """The finalizers a DELETE leaves for the garbage collector, as upstream decides them.

    What the request says wins (orphanDependents, then propagationPolicy); without either, an
    `orphan` or `foregroundDeletion` finalizer already present stays; else the kind's default
    (gc_policy). Background removes both, so a second DELETE can switch the policy. Kinds
    outside garbage collection ("Unsupported") never get either.
    """
    orphan = foreground = False
    if policy != "Unsupported":
        if opts.orphan_dependents is not None:
            orphan = opts.orphan_dependents
        elif opts.propagation_policy:
            orphan = opts.propagation_policy == "Orphan"
            foreground = opts.propagation_policy == "Foreground"
        else:
            held = [f for f in current if f in (FINALIZER_ORPHAN, FINALIZER_FOREGROUND)]
            if held:
                orphan, foreground = held[0] == FINALIZER_ORPHAN, held[0] == FINALIZER_FOREGROUND
            else:
                orphan = policy == "OrphanDependents"
    wanted = [f for f in current if f not in (FINALIZER_ORPHAN, FINALIZER_FOREGROUND)]
    if orphan:
        wanted.append(FINALIZER_ORPHAN)
    if foreground:
        wanted.append(FINALIZER_FOREGROUND)
    return list(current) if set(wanted) == set(current) else wanted


def _shorten_grace(meta: dict, current: int, requested: int) -> None:
    """Bring a pending graceful deletion forward to `requested` seconds (never into the past)."""
    started = parse_rfc3339(meta["deletionTimestamp"]) - _dt.timedelta(seconds=current)
    due = started + _dt.timedelta(seconds=requested)
    now = _dt.datetime.now(_dt.timezone.utc)
    if due < now:
        due = now
        if requested != 0:
            requested = 1  # the period is over, but a graceful request stays graceful
    meta["deletionTimestamp"] = due.strftime("%Y-%m-%dT%H:%M:%SZ")
    meta["deletionGracePeriodSeconds"] = requested
