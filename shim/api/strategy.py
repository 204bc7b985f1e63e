"""Per-resource behaviour: what the generic machinery asks a resource about.

A Strategy says how one resource differs from the generic case: defaulting, validation,
what a spec update and a status update may change, which fields can be selected, how it
is deleted. The generic REST storage (registry.py) calls these hooks in a fixed order:

    create:  prepare_for_create -> default -> validate
    update:  prepare_for_update (or prepare_for_status_update) -> default -> validate_update
    delete:  graceful_delete_period decides between "mark and wait" and "remove now"
    every write (create, update, and the update that marks an object deleting):
             ttl_seconds decides whether the stored object expires (Events do)

Adding a resource means adding a schema entry and, only if it differs, a Strategy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from shim import printers
from shim.api import tables, validation as v
from shim.api.objects import get_path
from shim.api.selectors import unknown_field_selector_message, unsupported_field_message

if TYPE_CHECKING:
    from shim.schemas import ResourceInfo

FieldErrors = list  # list[validation.FieldError]


@dataclass(frozen=True)
class StrategyOptions:
    """The server's settings that some strategy depends on (kube-apiserver flags)."""
    #: --event-ttl: how long an Event is kept after its last write, in seconds (0: forever)
    event_ttl: float = 3600.0


class Strategy:
    """The generic behaviour; subclasses override what their resource does differently."""

    #: whether metadata.generation tracks spec changes (see GENERATION_TRACKED)
    tracks_generation: bool = False
    #: PUT of an absent object creates it (upstream: endpoints, events, leases, ...)
    allow_create_on_update: bool = False
    #: PUT without metadata.resourceVersion overwrites (almost every upstream resource)
    allow_unconditional_update: bool = True
    #: fields beyond metadata.name/metadata.namespace that field selectors accept
    selectable_fields: tuple[str, ...] = ()
    #: name validation: subdomain for most kinds
    name_validator: Callable[[str, bool], list[str]] = staticmethod(v.name_is_dns_subdomain)
    #: DELETE answers with the removed object rather than a Success Status (upstream's choice per kind)
    return_deleted_object: bool = False
    #: what happens to dependents when a DELETE names no policy: "DeleteDependents" (background),
    #: "OrphanDependents" (the `orphan` finalizer is added), or "Unsupported" (the kind takes no
    #: part in garbage collection: DELETE never adds orphan/foregroundDeletion finalizers)
    gc_policy: str = "DeleteDependents"
    #: (group, plural) of another resource whose stored objects this one serves, converted
    #: (events.k8s.io/v1 Events are a view of core Events). None: the resource has its own
    #: storage. A view's objects are kept in the storage resource's shape under its keys;
    #: to_storage/from_storage translate on the way in and out, so both resources see one
    #: object with one uid and one resourceVersion.
    storage_resource: tuple[str, str] | None = None
    #: for managedFields entries written through another resource serving the same objects:
    #: their apiVersion -> {their top-level field name: ours} (see managedfields.convert_versions)
    managed_fields_renames: dict[str, dict[str, str]] = {}

    def __init__(self, info: "ResourceInfo", options: StrategyOptions | None = None):
        self.info = info
        self.options = options or StrategyOptions()
        self.has_status = "status" in info.subresources
        self.return_deleted_object = info.delete_returns_object
        self.tracks_generation = (info.group, info.plural) in GENERATION_TRACKED
        # server-side printing: the kind's columns from shim.printers, unless a subclass prints itself
        printer = printers.lookup(info.group, info.plural)
        if printer is not None and type(self).table_row is Strategy.table_row:
            self.table_columns = printer.columns
            self.table_row = printer.row
            self.table_rows = printer.rows

    # -- storage conversion (views only) -------------------------------------------------
    def to_storage(self, obj: dict) -> dict:
        """This resource's object in the storage resource's shape (a new top-level dict;
        obj is left as it is, though nested values may be shared)."""
        return obj

    def from_storage(self, obj: dict) -> dict:
        """A stored object (storage resource's shape) as this resource serves it."""
        return obj

    # -- expiry --------------------------------------------------------------------------
    def ttl_seconds(self, obj: dict) -> float | None:
        """Seconds the object stays stored after this write of it (obj, as it is about to
        be stored), unless written again; None: until deleted. Every write asks anew, so
        a write that answers None makes an expiring object permanent (upstream's TTLFunc)."""
        return None

    # -- create ------------------------------------------------------------------------
    def prepare_for_create(self, obj: dict) -> None:
        """Clear what a client may not set on create (status, for kinds with a status subresource)."""
        if self.has_status:
            obj.pop("status", None)
            initial = self.initial_status(obj)
            if initial is not None:
                obj["status"] = initial

    def initial_status(self, obj: dict) -> dict | None:
        # upstream resets Status to its zero struct, which encodes as {} (e.g. a new Deployment)
        return {}

    def default(self, obj: dict) -> None:
        """Fill defaulted fields (in place)."""

    def validate(self, obj: dict) -> FieldErrors:
        return v.validate_object_meta(obj.get("metadata") or {}, self.info.namespaced,
                                      self.name_validator) + self.validate_spec(obj)

    def validate_spec(self, obj: dict) -> FieldErrors:
        """Kind-specific checks shared by create and update."""
        return []

    # -- update ------------------------------------------------------------------------
    def prepare_for_update(self, new: dict, old: dict) -> None:
        """A main-resource update keeps status from the stored object."""
        if self.has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)

    def prepare_for_status_update(self, new: dict, old: dict, fields: tuple = ("status",)) -> None:
        """A status (or other slice) update changes only those fields; the rest stays as stored."""
        kept = {k: new.get(k) for k in fields if k in new}
        for k in list(new.keys()):
            if k not in ("metadata", "apiVersion", "kind"):
                del new[k]
        for k, val in old.items():
            if k not in ("metadata", "apiVersion", "kind") and k not in fields:
                new[k] = val
        new.update(kept)
        # Upstream lets status writers change labels/annotations-free metadata only
        # partially; keep the stored metadata except what is always server-managed.
        nm, om = new.setdefault("metadata", {}), old.get("metadata", {})
        for k in ("labels", "annotations", "finalizers", "ownerReferences"):
            if k in om:
                nm.setdefault(k, om[k])

    def validate_update(self, new: dict, old: dict) -> FieldErrors:
        return v.validate_object_meta_update(new.get("metadata"), old.get("metadata")) + \
            self.validate_spec(new) + self.validate_spec_update(new, old)

    def validate_spec_update(self, new: dict, old: dict) -> FieldErrors:
        """Kind-specific update rules (immutable fields)."""
        return []

    def spec_changed(self, new: dict, old: dict) -> bool:
        """Whether the update changes the desired state (bumps metadata.generation)."""
        ignored = ("metadata", "status", "apiVersion", "kind")
        return {k: x for k, x in new.items() if k not in ignored} != \
            {k: x for k, x in old.items() if k not in ignored}

    # -- delete ------------------------------------------------------------------------
    def graceful_delete_period(self, obj: dict, requested: int | None) -> int | None:
        """Seconds to wait before removal, or None to remove at once (finalizers aside)."""
        return None

    def deletion_blocked(self, obj: dict) -> bool:
        """Whether something besides metadata.finalizers keeps the object (namespaces' spec.finalizers)."""
        return False

    def mark_deleting(self, obj: dict) -> None:
        """Changes made when an object is first marked for deletion."""

    # -- printing ----------------------------------------------------------------------
    table_columns: list = [tables.NAME_COLUMN, tables.AGE_COLUMN]

    def table_row(self, obj: dict) -> list:
        return [obj["metadata"].get("name", ""), tables.age(obj)]

    def table_rows(self, objs: list, is_list: bool = True) -> list:
        """Table rows ({"cells": [...]}) for objects of a list (`is_list`) or a single object."""
        return [{"cells": self.table_row(o)} for o in objs]

    # -- selection ---------------------------------------------------------------------
    def field_set(self, obj: dict) -> dict[str, str]:
        """The values field selectors match against (always metadata.name/namespace)."""
        m = obj.get("metadata") or {}
        fields = {"metadata.name": m.get("name", "")}
        if self.info.namespaced:
            fields["metadata.namespace"] = m.get("namespace", "")
        for path in self.selectable_fields:
            val = get_path(obj, path)
            if isinstance(val, bool):
                val = "true" if val else "false"
            fields[path] = "" if val is None else str(val)
        return fields

    def unsupported_field_message(self, name: str) -> str:
        """Upstream words this per kind: kinds with their own field list say `field label not supported`."""
        if self.selectable_fields:
            return unsupported_field_message(name)
        return unknown_field_selector_message(name)

    def supports_field(self, name: str) -> bool:
        return name in ("metadata.name", "metadata.namespace") or name in self.selectable_fields


# The kinds whose metadata.generation counts spec changes, as upstream's strategies set it.
GENERATION_TRACKED = {
    ("", "pods"), ("", "podtemplates"), ("", "replicationcontrollers"),
    ("apps", "deployments"), ("apps", "replicasets"), ("apps", "daemonsets"), ("apps", "statefulsets"),
    ("batch", "jobs"), ("batch", "cronjobs"), ("autoscaling", "horizontalpodautoscalers"),
    ("policy", "poddisruptionbudgets"), ("discovery.k8s.io", "endpointslices"),
    ("networking.k8s.io", "networkpolicies"), ("networking.k8s.io", "ingresses"),
    ("networking.k8s.io", "ingressclasses"), ("scheduling.k8s.io", "priorityclasses"),
    ("resource.k8s.io", "deviceclasses"), ("resource.k8s.io", "devicetaintrules"),
    ("resource.k8s.io", "resourceslices"),
}

_registry: dict[tuple[str, str], type[Strategy]] = {}


def strategy_for(group: str, plural: str):
    """Class decorator registering a Strategy for one resource."""
    def register(cls):
        _registry[(group, plural)] = cls
        return cls
    return register


def renamed(obj: dict, names: dict[str, str], api_version: str, kind: str) -> dict:
    """A shallow copy of obj with top-level fields renamed (old -> new) and a new type.

    The conversion most views need: the same data under other top-level names. A field
    absent from obj stays absent; one not named in `names` keeps its name, unless it is a
    name of the other shape only (a target of the renaming), which obj cannot validly hold.
    """
    out = {"apiVersion": api_version, "kind": kind}
    foreign = set(names.values()).difference(names)
    for k, val in obj.items():
        if k not in ("apiVersion", "kind") and k not in foreign:
            out[names.get(k, k)] = val
    return out


def make_strategy(info: "ResourceInfo", options: StrategyOptions | None = None) -> Strategy:
    import shim.strategies  # noqa: F401  (registers every strategy)
    cls = _registry.get((info.group, info.plural), Strategy)
    return cls(info, options)
