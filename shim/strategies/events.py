"""Events: core/v1 Events, and events.k8s.io/v1 Events served as a view of them.

As upstream, there is one stored Event (core storage, /registry/events/...). The
events.k8s.io/v1 resource reads and writes the same objects under other field names
(regarding for involvedObject, note for message, deprecated* for the older bookkeeping
fields, reportingController for reportingComponent), so an Event written through either
API is visible, selectable and watchable through the other.

Validation follows upstream's rules, which are written against the core shape whatever
the request's API: every write gets the "legacy" checks (namespaces agree for old-style
events; reporting fields for events with an eventTime); writes through events.k8s.io/v1
also get the strict ones (eventTime required, deprecated fields unset, fields immutable).
Field paths in the messages are the core names, as upstream reports them.

Events expire: every write (through either API) keeps the Event for the server's
--event-ttl (an hour by default) from then on, as kube-apiserver's Event storage does.
"""
from __future__ import annotations

import re

from shim.api import validation as v
from shim.api.objects import parse_rfc3339
from shim.api.strategy import Strategy, renamed, strategy_for

# events.k8s.io/v1 field -> core/v1 field; the others (metadata, eventTime, series, action,
# reason, type, related, reportingInstance) have the same name in both.
EVENTS_V1_TO_CORE = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
CORE_TO_EVENTS_V1 = {core: ev for ev, core in EVENTS_V1_TO_CORE.items()}

REPORTING_INSTANCE_MAX = 128
ACTION_MAX = 128
REASON_MAX = 128
NOTE_MAX = 1024
EVENT_TYPES = ("Normal", "Warning")


class _Expiring:
    """An Event lives --event-ttl after its last write (0: for ever)."""

    def ttl_seconds(self, obj):
        return self.options.event_ttl if self.options.event_ttl > 0 else None


@strategy_for("", "events")
class EventStrategy(_Expiring, Strategy):
    allow_create_on_update = True
    gc_policy = "Unsupported"
    selectable_fields = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                         "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                         "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type")
    managed_fields_renames = {"events.k8s.io/v1": EVENTS_V1_TO_CORE}

    def field_set(self, obj):
        f = super().field_set(obj)
        f["source"] = (obj.get("source") or {}).get("component", "") or obj.get("reportingComponent") or ""
        return f

    def validate(self, obj):
        # upstream checks core/v1 names only by path segment; we keep the subdomain rule
        return v.validate_object_meta(obj.get("metadata") or {}, True, v.name_is_dns_subdomain) + \
            validate_event(obj, controller_field="reportingComponent")

    def validate_update(self, new, old):
        return v.validate_object_meta_update(new.get("metadata"), old.get("metadata")) + \
            validate_event(new, controller_field="reportingComponent")


@strategy_for("events.k8s.io", "events")
class EventsV1Strategy(_Expiring, Strategy):
    allow_create_on_update = True
    gc_policy = "Unsupported"
    storage_resource = ("", "events")
    managed_fields_renames = {"v1": CORE_TO_EVENTS_V1}
    # upstream maps each of these onto the core field set; selecting on the served shape
    # gives the same answers
    selectable_fields = ("regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid",
                         "regarding.apiVersion", "regarding.resourceVersion", "regarding.fieldPath",
                         "reason", "reportingController", "type")

    def to_storage(self, obj):
        return renamed(obj, EVENTS_V1_TO_CORE, "v1", "Event")

    def from_storage(self, obj):
        return renamed(obj, CORE_TO_EVENTS_V1, self.info.group_version, self.info.kind)

    def validate(self, obj):
        core = self.to_storage(obj)
        return validate_event(core, controller_field="reportingController") + \
            v.validate_object_meta(obj.get("metadata") or {}, True, v.name_is_dns_subdomain) + \
            _validate_strict_create(core)

    def validate_update(self, new, old):
        core, old_core = self.to_storage(new), self.to_storage(old)
        return validate_event(core, controller_field="reportingController") + \
            v.validate_object_meta_update(new.get("metadata"), old.get("metadata")) + \
            _validate_strict_update(core, old_core)


# -- validation (on the core shape) ---------------------------------------------------------


def validate_event(ev: dict, controller_field: str) -> list:
    """Upstream's legacy checks, which every Event write passes whatever its API.

    An event without eventTime (the old style) must be in its object's namespace (or in
    "default", or be cluster-wide, for objects without one); one with an eventTime names
    its reporter, instance, action and reason, within length limits.
    """
    errs = []
    ns = (ev.get("metadata") or {}).get("namespace") or ""
    involved = ev.get("involvedObject") or {}
    involved_ns = involved.get("namespace") or ""
    mismatch = v.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")
    if _is_zero_time(ev.get("eventTime")):
        if (not involved_ns and ns not in ("", "default")) or (involved_ns and ns != involved_ns):
            errs.append(mismatch)
        return errs
    if not involved_ns and ns not in ("default", "kube-system"):
        errs.append(mismatch)
    controller = ev.get("reportingComponent") or ""
    if not controller:
        errs.append(v.required(controller_field))
    errs.extend(v.invalid(controller_field, controller, m) for m in v.is_qualified_name(controller))
    instance = ev.get("reportingInstance") or ""
    if not instance:
        errs.append(v.required("reportingInstance"))
    if len(instance) > REPORTING_INSTANCE_MAX:
        errs.append(v.invalid("reportingInstance", "", f"can have at most {REPORTING_INSTANCE_MAX} characters"))
    action = ev.get("action") or ""
    if not action:
        errs.append(v.required("action"))
    if len(action) > ACTION_MAX:
        errs.append(v.invalid("action", "", f"can have at most {ACTION_MAX} characters"))
    reason = ev.get("reason") or ""
    if not reason:
        errs.append(v.required("reason"))
    if len(reason) > REASON_MAX:
        errs.append(v.invalid("reason", "", f"can have at most {REASON_MAX} characters"))
    if len(ev.get("message") or "") > NOTE_MAX:
        errs.append(v.invalid("message", "", f"can have at most {NOTE_MAX} characters"))
    return errs


def _validate_strict_create(ev: dict) -> list:
    """What a new events.k8s.io/v1 Event must satisfy beyond the legacy checks."""
    errs = _validate_series(ev)
    if _is_zero_time(ev.get("eventTime")):
        errs.append(v.required("eventTime"))
    if ev.get("type") not in EVENT_TYPES:
        errs.append(v.invalid("type", "", f"has invalid value: {ev.get('type') or ''}"))
    for name in ("firstTimestamp", "lastTimestamp"):
        if not _is_zero_time(ev.get(name)):
            errs.append(v.invalid(name, "", "needs to be unset"))
    if ev.get("count"):
        errs.append(v.invalid("count", "", "needs to be unset"))
    source = ev.get("source") or {}
    if source.get("component") or source.get("host"):
        errs.append(v.invalid("source", "", "needs to be unset"))
    return errs


# fields an update through events.k8s.io/v1 may not change, by their core names
_IMMUTABLE = ("involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp",
              "count", "type")
_IMMUTABLE_REPORTING = ("action", "related", "reportingComponent", "reportingInstance")


def _validate_strict_update(new: dict, old: dict) -> list:
    errs = []
    if _zeroless(new.get("series")) != _zeroless(old.get("series")):
        errs.extend(_validate_series(new))
    for name in _IMMUTABLE:
        errs.extend(_immutable(new, old, name))
    if _micro(new.get("eventTime")) != _micro(old.get("eventTime")):
        errs.extend(_immutable(new, old, "eventTime"))
    for name in _IMMUTABLE_REPORTING:
        # upstream names the internal field: reportingController, not reportingComponent
        path = "reportingController" if name == "reportingComponent" else name
        errs.extend(_immutable(new, old, name, path))
    return errs


def _immutable(new: dict, old: dict, name: str, path: str = "") -> list:
    a, b = new.get(name), old.get(name)
    if _zeroless(a) == _zeroless(b):
        return []
    return [v.invalid(path or name, a, v.FIELD_IMMUTABLE_MESSAGE)]


def _validate_series(ev: dict) -> list:
    series = ev.get("series")
    if not isinstance(series, dict):
        return []
    errs = []
    if (series.get("count") or 0) < 2:
        errs.append(v.invalid("series.count", "", "should be at least 2"))
    if _is_zero_time(series.get("lastObservedTime")):
        errs.append(v.required("series.lastObservedTime"))
    return errs


def _is_zero_time(ts) -> bool:
    return not ts or (isinstance(ts, str) and ts.startswith("0001-01-01T00:00:00"))


_FRACTION = re.compile(r"^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$")


def _micro(ts):
    """A timestamp at microsecond precision, for comparing eventTimes as upstream does
    (it tolerates clients that send finer precision than they read back)."""
    if _is_zero_time(ts):
        return None
    m = _FRACTION.match(ts) if isinstance(ts, str) else None
    if m is None:
        return ts
    try:
        return parse_rfc3339(f"{m[1]}.{(m[2] or '')[:6].ljust(6, '0')}{m[3]}")
    except ValueError:
        return ts


def _zeroless(value):
    """value with Go's zero values dropped, so `{}`, null, "" and 0 compare as absent."""
    if isinstance(value, dict):
        out = {k: _zeroless(x) for k, x in value.items()}
        return {k: x for k, x in out.items() if x not in (None, "", 0, False, {}, [])} or None
    if isinstance(value, list):
        return [_zeroless(x) for x in value] or None
    return None if value in ("", 0, False) else value
