"""Priority admission and the built-in PriorityClasses (runs inside the API server).

On pod creation `priorityClassName` becomes `spec.priority` and `spec.preemptionPolicy`; a pod
without a class gets the globalDefault class, if there is one, or priority 0. PriorityClasses
themselves are checked: one globalDefault at most, user classes at most 1,000,000,000, and
the `system-` prefix reserved for the built-in classes created at startup.
"""
from __future__ import annotations

import time

from shim.api import errors
from shim.api.registry import ListOptions, WriteOptions

SYSTEM_CLUSTER_CRITICAL = "system-cluster-critical"
SYSTEM_NODE_CRITICAL = "system-node-critical"
HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
SYSTEM_CRITICAL_PRIORITY = 2 * HIGHEST_USER_DEFINABLE_PRIORITY

SYSTEM_PRIORITY_CLASSES = {
    SYSTEM_CLUSTER_CRITICAL: (SYSTEM_CRITICAL_PRIORITY,
                              "For pods the cluster needs; they may still move to another node."),
    SYSTEM_NODE_CRITICAL: (SYSTEM_CRITICAL_PRIORITY + 1000,
                           "For pods a node needs; they stay on their node."),
}


def install(api) -> None:
    """Register the admission hook with the API."""
    api.admission_hooks.append(priority_admission)


async def ensure_system_priority_classes(api) -> None:
    """Create the two built-in classes if they are missing (as kube-apiserver does at start)."""
    rs = _classes(api)
    for name, (value, description) in SYSTEM_PRIORITY_CLASSES.items():
        if await rs.get_or_none("", name) is not None:
            continue
        try:
            await rs.create("", {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                 "metadata": {"name": name}, "value": value, "globalDefault": False,
                                 "description": description, "preemptionPolicy": "PreemptLowerPriority"},
                            WriteOptions())
        except errors.ApiError as e:
            if e.code != 409:
                raise


def _classes(api):
    return api.resource("scheduling.k8s.io", "v1", "priorityclasses")


def _forbidden(rs, name: str, msg: str) -> errors.ApiError:
    res = errors.qualified(rs.info.plural, rs.info.group)
    return errors.ApiError(403, "Forbidden", f'{res} "{name}" is forbidden: {msg}',
                           {"name": name, "group": rs.info.group, "kind": rs.info.plural})


async def priority_admission(operation, rs, obj, old, user) -> None:
    info = rs.info
    if info.group == "" and info.plural == "pods" and operation == "CREATE":
        await _admit_pod(rs, obj)
    elif info.group == "scheduling.k8s.io" and info.plural == "priorityclasses":
        rs.api._priority_default = None
        if operation in ("CREATE", "UPDATE"):
            await _admit_priority_class(rs, obj, old, operation)


async def _admit_pod(rs, pod: dict) -> None:
    spec = pod.setdefault("spec", {})
    name = (pod.get("metadata") or {}).get("name", "")
    classes = _classes(rs.api)
    class_name = spec.get("priorityClassName") or ""
    if class_name:
        pc = await classes.get_or_none("", class_name)
        if pc is None:
            raise _forbidden(rs, name, f"no PriorityClass with name {class_name} was found")
    else:
        pc = await _global_default(classes)
        if pc is None:
            spec["priority"] = spec.get("priority") or 0
            return
        spec["priorityClassName"] = pc["metadata"]["name"]
    value = int(pc.get("value") or 0)
    given = spec.get("priority")
    # The strategy defaults an absent priority to 0, so only a non-zero value was the user's.
    if given not in (None, 0) and given != value:
        raise _forbidden(rs, name, f"the integer value of priority ({given}) must not be provided in pod spec; "
                                   f"priority admission controller computed {value} from the given "
                                   f"PriorityClass name")
    spec["priority"] = value
    spec["preemptionPolicy"] = pc.get("preemptionPolicy") or "PreemptLowerPriority"


_DEFAULT_CACHE_SECONDS = 2.0


async def _global_default(classes) -> dict | None:
    """The globalDefault class, remembered briefly (every pod creation asks); PriorityClass
    writes through this process forget it at once (other replicas' after a moment, as an
    informer-fed lister would lag)."""
    cached = getattr(classes.api, "_priority_default", None)
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    lst = await classes.list("", ListOptions())
    best = None
    for pc in lst["items"]:
        if pc.get("globalDefault"):
            # More than one can exist after races; upstream takes the lowest value.
            if best is None or (pc.get("value") or 0) < (best.get("value") or 0):
                best = pc
    classes.api._priority_default = (now + _DEFAULT_CACHE_SECONDS, best)
    return best


async def _admit_priority_class(rs, pc: dict, old: dict | None, operation: str) -> None:
    name = (pc.get("metadata") or {}).get("name", "")
    pc.setdefault("preemptionPolicy", "PreemptLowerPriority")
    value = pc.get("value")
    errs = []
    if name.startswith("system-"):
        builtin = SYSTEM_PRIORITY_CLASSES.get(name)
        if builtin is None:
            errs.append(f"metadata.name: Invalid value: \"{name}\": priority class names with 'system-' "
                        f"prefix are reserved for system use only")
        elif value != builtin[0]:
            errs.append(f"value: Invalid value: {value}: value of {name} PriorityClass must be {builtin[0]}")
    elif isinstance(value, int) and value > HIGHEST_USER_DEFINABLE_PRIORITY:
        errs.append(f"value: Invalid value: {value}: maximum allowed value of a user defined priority "
                    f"is {HIGHEST_USER_DEFINABLE_PRIORITY}")
    if errs:
        raise errors.ApiError(422, "Invalid", f'PriorityClass.scheduling.k8s.io "{name}" is invalid: '
                                              + ", ".join(errs), {"name": name, "group": "scheduling.k8s.io",
                                                                  "kind": "PriorityClass"})
    if operation == "UPDATE" and old is not None and old.get("value") != value:
        raise errors.ApiError(422, "Invalid", f'PriorityClass.scheduling.k8s.io "{name}" is invalid: '
                                              f'value: Forbidden: may not be changed in an update.',
                              {"name": name, "group": "scheduling.k8s.io", "kind": "PriorityClass"})
    if pc.get("globalDefault"):
        lst = await rs.list("", ListOptions())
        for other in lst["items"]:
            if other["metadata"]["name"] != name and other.get("globalDefault"):
                raise _forbidden(rs, name, f"PriorityClass {other['metadata']['name']} is already marked as "
                                           f"default. Only one default can exist")
