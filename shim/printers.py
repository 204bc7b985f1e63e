"""What `kubectl get` shows for each built-in kind: column definitions and cell values.

The registry maps (group, plural) to a Printer: its column definitions (with the `-o wide`
columns at priority 1) and a function computing one row's cells. The server always
computes every column, wide ones included; kubectl hides priority-1 columns unless it
was asked for `-o wide`. Kinds upstream has no printer for (roles, clusterroles,
limitranges, ...) get the generic "Name / Created At" table.

The columns, cell types and formatting follow kube-apiserver v1.37's printers; the code
and the column descriptions here are our own.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Callable, Iterable

from shim.api.objects import parse_rfc3339
from shim.api.quantity import format_quantity
from shim.api.tables import human_duration, since

Cells = list
RowFn = Callable[[dict], Cells]


@dataclass(frozen=True)
class Printer:
    columns: list
    row: RowFn
    #: list-level adjustments (StorageClass marks the effective default only in lists)
    list_rows: Callable[[list], list] | None = None
    #: meta.k8s.io TableRowConditions for a row, or None
    conditions: Callable[[dict], list | None] | None = None

    def rows(self, objs: list, is_list: bool = True) -> list:
        """Table rows ({cells, conditions?}) for `objs` (a list response when `is_list`)."""
        cells = self.list_rows(objs) if (is_list and self.list_rows) else [self.row(o) for o in objs]
        out = []
        for obj, c in zip(objs, cells):
            row = {"cells": c}
            if self.conditions is not None:
                conds = self.conditions(obj)
                if conds:
                    row["conditions"] = conds
            out.append(row)
        return out


_REGISTRY: dict[tuple[str, str], Printer] = {}


def lookup(group: str, plural: str) -> Printer | None:
    """The printer for a resource, or None when it has none here."""
    return _REGISTRY.get((group, plural))


def registered() -> dict[tuple[str, str], Printer]:
    return dict(_REGISTRY)


def register(group: str, plural: str, columns: list, row: RowFn, **kw) -> Printer:
    p = Printer(columns, row, **kw)
    _REGISTRY[(group, plural)] = p
    return p


# -- column helpers ---------------------------------------------------------------------------

def col(name: str, type_: str = "string", desc: str = "", priority: int = 0, fmt: str = "") -> dict:
    return {"name": name, "type": type_, "format": fmt, "description": desc, "priority": priority}


def NAME(desc: str = "Object name.", priority: int = 0) -> dict:
    return col("Name", "string", desc, priority, "name")


def AGE() -> dict:
    return col("Age", "string", "Time since the object was created.")


def WIDE(name: str, desc: str = "", type_: str = "string") -> dict:
    return col(name, type_, desc, priority=1)


CONTAINERS = WIDE("Containers", "Container names in the pod template.")
IMAGES = WIDE("Images", "Container images in the pod template.")


# -- value helpers ----------------------------------------------------------------------------

def _d(v) -> dict:
    return v if isinstance(v, dict) else {}


def _l(v) -> list:
    return v if isinstance(v, list) else []


def _s(v) -> str:
    return v if isinstance(v, str) else ("" if v is None else str(v))


def _i(v, default: int = 0) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v)
    return default


def name_of(obj: dict) -> str:
    return _s(_d(obj.get("metadata")).get("name"))


def age_of(obj: dict) -> str:
    return since(_d(obj.get("metadata")).get("creationTimestamp"))


def _time(ts) -> _dt.datetime | None:
    """A timestamp, or None for the zero time (absent or unparseable)."""
    if not isinstance(ts, str) or not ts:
        return None
    try:
        t = parse_rfc3339(ts)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return t


def ago(ts) -> str:
    """Elapsed time since a timestamp; `<unknown>` for the zero time."""
    return since(ts) if _time(ts) is not None else "<unknown>"


def print_bool(v: bool) -> str:
    return "True" if v else "False"


def bool_ptr(v) -> str:
    return "<unset>" if v is None else print_bool(bool(v))


def quantity(q) -> str:
    """A quantity as upstream prints it; the zero value for an absent one."""
    if q is None:
        return "0"
    try:
        return format_quantity(q)
    except (ValueError, TypeError):
        return str(q)


def quantity_ptr(q) -> str:
    return "<nil>" if q is None else quantity(q)


def int_or_string(v) -> str:
    return str(v) if not isinstance(v, str) else v


def format_labels(labels) -> str:
    """key=value pairs sorted as strings, `<none>` when empty."""
    pairs = sorted(f"{k}={v}" for k, v in _d(labels).items())
    return ",".join(pairs) if pairs else "<none>"


class _BadSelector(ValueError):
    pass


def _selector_string(sel) -> str:
    """A LabelSelector in label-selector syntax ("" selects everything or nothing)."""
    if not isinstance(sel, dict):
        return ""
    reqs: list[tuple[str, str]] = []
    for k, v in _d(sel.get("matchLabels")).items():
        reqs.append((k, f"{k}={_s(v)}"))
    for e in _l(sel.get("matchExpressions")):
        e = _d(e)
        key, op, vals = _s(e.get("key")), e.get("operator"), [_s(x) for x in _l(e.get("values"))]
        if op in ("In", "NotIn"):
            if not vals:
                raise _BadSelector(key)
            shown = vals[0] if len(vals) == 1 else ",".join(sorted(vals))
            reqs.append((key, f"{key} {'in' if op == 'In' else 'notin'} ({shown})"))
        elif op in ("Exists", "DoesNotExist"):
            if vals:
                raise _BadSelector(key)
            reqs.append((key, key if op == "Exists" else "!" + key))
        else:
            raise _BadSelector(key)
    reqs.sort(key=lambda r: r[0])
    return ",".join(r for _, r in reqs)


def format_label_selector(sel) -> str:
    """A LabelSelector for display: `<none>` when it selects everything or nothing."""
    try:
        s = _selector_string(sel)
    except _BadSelector:
        return "<error>"
    return s or "<none>"


def containers_cells(containers) -> tuple[str, str]:
    cs = [_d(c) for c in _l(containers)]
    return ",".join(_s(c.get("name")) for c in cs), ",".join(_s(c.get("image")) for c in cs)


def _pod_spec(template) -> dict:
    return _d(_d(template).get("spec"))


def _list_with_more(items: list[str], more: bool, count: int, limit: int) -> str:
    ret = ",".join(items)
    if more:
        return f"{ret} + {count - limit} more..."
    return ret or "<unset>"


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ============================================================================================
# core/v1
# ============================================================================================

# -- pods ---------------------------------------------------------------------------------

POD_COLUMNS = [
    NAME(),
    col("Ready", desc="Ready containers out of all containers."),
    col("Status", desc="Summary of the pod's state."),
    col("Restarts", desc="Container restarts, and how long ago the last one was."),
    AGE(),
    WIDE("IP", "The pod's IP address."),
    WIDE("Node", "The node the pod is bound to."),
    WIDE("Nominated Node", "The node the scheduler nominated for preemption."),
    WIDE("Readiness Gates", "Readiness gates that are true, out of all."),
]


def _is_restartable_init(c: dict | None) -> bool:
    return c is not None and c.get("restartPolicy") == "Always"


def _later(current: _dt.datetime | None, candidate: _dt.datetime | None) -> _dt.datetime | None:
    if candidate is None:
        return current
    if current is None or current < candidate:
        return candidate
    return current


def _terminated_at(cs: dict) -> tuple[bool, _dt.datetime | None]:
    term = _d(cs.get("lastState")).get("terminated")
    if term is None:
        return False, None
    return True, _time(_d(term).get("finishedAt"))


def _condition_true(conditions, ctype: str) -> bool:
    for c in _l(conditions):
        c = _d(c)
        if c.get("type") == ctype:
            return c.get("status") == "True"
    return False


def _has_true_condition(conditions, ctype: str) -> bool:
    return any(_d(c).get("type") == ctype and _d(c).get("status") == "True" for c in _l(conditions))


def pod_summary(pod: dict) -> dict:
    """READY, STATUS and RESTARTS as upstream computes them for a pod.

    Returns {"ready": "1/2", "status": "Running", "restarts": 3, "last_restart": datetime|None}.
    """
    spec = _d(pod.get("spec"))
    status = _d(pod.get("status"))
    meta = _d(pod.get("metadata"))
    init_specs = [_d(c) for c in _l(spec.get("initContainers"))]

    restarts = 0
    restartable_restarts = 0
    total = len(_l(spec.get("containers")))
    ready = 0
    last_restart: _dt.datetime | None = None
    last_restartable_restart: _dt.datetime | None = None

    phase = _s(status.get("phase"))
    reason = _s(status.get("reason")) or phase
    for cond in _l(status.get("conditions")):
        cond = _d(cond)
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_by_name: dict[str, dict] = {}
    for c in init_specs:
        init_by_name[_s(c.get("name"))] = c
        if _is_restartable_init(c):
            total += 1

    initializing = False
    for i, cs in enumerate(_l(status.get("initContainerStatuses"))):
        cs = _d(cs)
        count = _i(cs.get("restartCount"))
        restarts += count
        had, finished = _terminated_at(cs)
        if had:
            last_restart = _later(last_restart, finished)
        restartable = _is_restartable_init(init_by_name.get(_s(cs.get("name"))))
        if restartable:
            restartable_restarts += count
            if had:
                last_restartable_restart = _later(last_restartable_restart, finished)
        state = _d(cs.get("state"))
        term = state.get("terminated")
        waiting = state.get("waiting")
        if term is not None and _i(_d(term).get("exitCode")) == 0:
            continue
        if restartable and cs.get("started") is True:
            if cs.get("ready") is True:
                ready += 1
            continue
        if term is not None:
            term = _d(term)
            if not _s(term.get("reason")):
                if _i(term.get("signal")) != 0:
                    reason = f"Init:Signal:{_i(term.get('signal'))}"
                else:
                    reason = f"Init:ExitCode:{_i(term.get('exitCode'))}"
            else:
                reason = "Init:" + _s(term.get("reason"))
        elif waiting is not None and _s(_d(waiting).get("reason")) and \
                _d(waiting).get("reason") != "PodInitializing":
            reason = "Init:" + _s(_d(waiting).get("reason"))
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(status.get("conditions"), "Initialized"):
        restarts = restartable_restarts
        last_restart = last_restartable_restart
        has_running = False
        error_reason = ""
        for cs in reversed(_l(status.get("containerStatuses"))):
            cs = _d(cs)
            restarts += _i(cs.get("restartCount"))
            had, finished = _terminated_at(cs)
            if had:
                last_restart = _later(last_restart, finished)
            state = _d(cs.get("state"))
            waiting, term, running = state.get("waiting"), state.get("terminated"), state.get("running")
            if waiting is not None and _s(_d(waiting).get("reason")):
                reason = _s(_d(waiting).get("reason"))
            elif term is not None:
                term = _d(term)
                if _s(term.get("reason")):
                    reason = _s(term.get("reason"))
                elif _i(term.get("signal")) != 0:
                    reason = f"Signal:{_i(term.get('signal'))}"
                else:
                    reason = f"ExitCode:{_i(term.get('exitCode'))}"
                if _i(term.get("exitCode")) != 0:
                    error_reason = reason
            elif cs.get("ready") is True and running is not None:
                has_running = True
                ready += 1

        # a pod whose last container completed while another still runs is not "Completed"
        if reason == "Completed":
            if has_running and _has_true_condition(status.get("conditions"), "Ready"):
                reason = "Running"
            elif error_reason:
                reason = error_reason
            elif has_running:
                reason = "NotReady"

    deleting = meta.get("deletionTimestamp") is not None
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Failed", "Succeeded"):
        reason = "Terminating"

    return {"ready": f"{ready}/{total}", "status": reason, "restarts": restarts,
            "last_restart": last_restart}


def _pod_row(pod: dict) -> Cells:
    summary = pod_summary(pod)
    restarts = str(summary["restarts"])
    if summary["restarts"] != 0 and summary["last_restart"] is not None:
        restarts = f"{summary['restarts']} ({human_duration(_now() - summary['last_restart'])} ago)"
    spec, status = _d(pod.get("spec")), _d(pod.get("status"))
    ips = _l(status.get("podIPs"))
    ip = _s(_d(ips[0]).get("ip")) if ips else _s(status.get("podIP"))
    gates = _l(spec.get("readinessGates"))
    gates_cell = "<none>"
    if gates:
        true_count = 0
        for g in gates:
            ctype = _d(g).get("conditionType")
            for c in _l(status.get("conditions")):
                c = _d(c)
                if c.get("type") == ctype:
                    if c.get("status") == "True":
                        true_count += 1
                    break
        gates_cell = f"{true_count}/{len(gates)}"
    return [name_of(pod), summary["ready"], summary["status"], restarts, age_of(pod),
            ip or "<none>", _s(spec.get("nodeName")) or "<none>",
            _s(status.get("nominatedNodeName")) or "<none>", gates_cell]


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


_POD_SUCCEEDED = [{"type": "Completed", "status": "True", "reason": "Succeeded",
                   "message": "The pod has completed successfully."}]
_POD_FAILED = [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]


def _pod_conditions(pod: dict) -> list | None:
    phase = _d(pod.get("status")).get("phase")
    if phase == "Succeeded":
        return _POD_SUCCEEDED
    if phase == "Failed":
        return _POD_FAILED
    return None


register("", "pods", POD_COLUMNS, _pod_row, conditions=_pod_conditions)


# -- pod templates, replication controllers -----------------------------------------------------

def _podtemplate_row(obj: dict) -> Cells:
    tmpl = _d(obj.get("template"))
    names, images = containers_cells(_pod_spec(tmpl).get("containers"))
    return [name_of(obj), names, images, format_labels(_d(tmpl.get("metadata")).get("labels"))]


register("", "podtemplates", [
    NAME(),
    col("Containers", desc="Container names in the template."),
    col("Images", desc="Container images in the template."),
    col("Pod Labels", desc="Labels of the pods made from the template."),
], _podtemplate_row)


def _replicas(spec: dict) -> int:
    # v1 defaults an absent replica count to 1
    r = spec.get("replicas")
    return 1 if r is None else _i(r)


def _rc_row(obj: dict) -> Cells:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    names, images = containers_cells(_pod_spec(spec.get("template")).get("containers"))
    return [name_of(obj), _replicas(spec), _i(status.get("replicas")), _i(status.get("readyReplicas")),
            age_of(obj), names, images, format_labels(spec.get("selector"))]


REPLICA_COLUMNS = [
    NAME(),
    col("Desired", "integer", "Replicas asked for."),
    col("Current", "integer", "Replicas that exist."),
    col("Ready", "integer", "Replicas that are ready."),
    AGE(),
    CONTAINERS, IMAGES,
    WIDE("Selector", "Label selector for the pods."),
]

register("", "replicationcontrollers", REPLICA_COLUMNS, _rc_row)


# -- services, endpoints ---------------------------------------------------------------------

def _lb_ingress_string(ingress) -> str:
    seen = set()
    for ing in _l(ingress):
        ing = _d(ing)
        if ing.get("ip"):
            seen.add(_s(ing["ip"]))
        elif ing.get("hostname"):
            seen.add(_s(ing["hostname"]))
    # the server prints the wide form: nothing is clipped
    return ",".join(sorted(seen))


def service_external_ip(svc: dict) -> str:
    spec, status = _d(svc.get("spec")), _d(svc.get("status"))
    stype = spec.get("type") or "ClusterIP"
    external = [_s(x) for x in _l(spec.get("externalIPs"))]
    if stype in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if stype == "LoadBalancer":
        lb = _lb_ingress_string(_d(status.get("loadBalancer")).get("ingress"))
        if external:
            return ",".join((lb.split(",") if lb else []) + external)
        return lb or "<pending>"
    if stype == "ExternalName":
        return _s(spec.get("externalName"))
    return "<unknown>"


def service_ports(ports) -> str:
    pieces = []
    for p in _l(ports):
        p = _d(p)
        proto = _s(p.get("protocol")) or "TCP"
        node_port = _i(p.get("nodePort"))
        if node_port > 0:
            pieces.append(f"{_i(p.get('port'))}:{node_port}/{proto}")
        else:
            pieces.append(f"{_i(p.get('port'))}/{proto}")
    return ",".join(pieces)


def _service_row(svc: dict) -> Cells:
    spec = _d(svc.get("spec"))
    ips = _l(spec.get("clusterIPs"))
    cluster_ip = _s(ips[0]) if ips else (_s(spec.get("clusterIP")) or "<none>")
    return [name_of(svc), _s(spec.get("type") or "ClusterIP"), cluster_ip, service_external_ip(svc),
            service_ports(spec.get("ports")) or "<none>", age_of(svc), format_labels(spec.get("selector"))]


register("", "services", [
    NAME(),
    col("Type", desc="How the service is exposed."),
    col("Cluster-IP", desc="The service's virtual IP inside the cluster."),
    col("External-IP", desc="Addresses the service is reachable at from outside."),
    col("Port(s)", desc="Service ports, with node ports where allocated."),
    AGE(),
    WIDE("Selector", "Label selector for the backing pods."),
], _service_row)


def format_endpoints(obj: dict) -> str:
    subsets = _l(obj.get("subsets"))
    if not subsets:
        return "<none>"
    shown: list[str] = []
    limit, more, count = 3, False, 0
    for ss in subsets:
        ss = _d(ss)
        addrs = [_d(a) for a in _l(ss.get("addresses"))]
        ports = _l(ss.get("ports"))
        if not ports:
            count += len(addrs)
            for a in addrs:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(_s(a.get("ip")))
            continue
        for p in ports:
            count += len(addrs)
            for a in addrs:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(_join_host_port(_s(a.get("ip")), _i(_d(p).get("port"))))
    ret = ",".join(shown)
    if more:
        return f"{ret} + {count - limit} more..."
    return ret


register("", "endpoints", [
    NAME(),
    col("Endpoints", desc="Addresses and ports of the endpoints."),
    AGE(),
], lambda o: [name_of(o), format_endpoints(o), age_of(o)])


# -- nodes -------------------------------------------------------------------------------------

def node_roles(node: dict) -> list[str]:
    roles = set()
    for k, v in _d(_d(node.get("metadata")).get("labels")).items():
        if k.startswith("node-role.kubernetes.io/"):
            role = k[len("node-role.kubernetes.io/"):]
            if role:
                roles.add(role)
        elif k == "kubernetes.io/role" and v:
            roles.add(_s(v))
    return sorted(roles)


def node_status(node: dict) -> str:
    conds: dict[str, dict] = {}
    for c in _l(_d(node.get("status")).get("conditions")):
        c = _d(c)
        conds[_s(c.get("type"))] = c
    parts = []
    ready = conds.get("Ready")
    if ready is not None:
        parts.append("Ready" if ready.get("status") == "True" else "NotReady")
    if not parts:
        parts.append("Unknown")
    if _d(node.get("spec")).get("unschedulable") is True:
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def _node_address(node: dict, kind: str) -> str:
    for a in _l(_d(node.get("status")).get("addresses")):
        a = _d(a)
        if a.get("type") == kind:
            return _s(a.get("address"))
    return "<none>"


def _node_row(node: dict) -> Cells:
    info = _d(_d(node.get("status")).get("nodeInfo"))
    kernel = _s(info.get("kernelVersion")) or "<unknown>"
    if info.get("architecture"):
        kernel += f" ({_s(info['architecture'])})"
    return [name_of(node), node_status(node), ",".join(node_roles(node)) or "<none>", age_of(node),
            _s(info.get("kubeletVersion")),
            _node_address(node, "InternalIP"), _node_address(node, "ExternalIP"),
            _s(info.get("osImage")) or "<unknown>", kernel,
            _s(info.get("containerRuntimeVersion")) or "<unknown>"]


register("", "nodes", [
    NAME(),
    col("Status", desc="Readiness and schedulability of the node."),
    col("Roles", desc="Roles from the node's node-role labels."),
    AGE(),
    col("Version", desc="Kubelet version."),
    WIDE("Internal-IP", "First internal address."),
    WIDE("External-IP", "First external address."),
    WIDE("OS-Image", "Operating system image."),
    WIDE("Kernel-Version", "Kernel version and architecture."),
    WIDE("Container-Runtime", "Container runtime and its version."),
], _node_row)


# -- events (core/v1 and events.k8s.io/v1 print alike) -------------------------------------------

EVENT_COLUMNS = [
    col("Last Seen", desc="When the event was last observed."),
    col("Type", desc="Normal or Warning."),
    col("Reason", desc="Short machine-readable cause."),
    col("Object", desc="The object the event is about."),
    WIDE("Subobject", "Part of the object the event is about."),
    WIDE("Source", "Component (and host) that reported the event."),
    col("Message", desc="Human-readable description."),
    WIDE("First Seen", "When the event was first observed."),
    WIDE("Count", "How many times the event occurred."),
    NAME(priority=1),
]


def _event_cells(name: str, etype: str, reason: str, involved: dict, message: str, first_ts, last_ts,
                 event_time, count, series: dict | None, component: str, host: str) -> Cells:
    first = ago(first_ts) if _time(first_ts) is not None else ago(event_time)
    last = ago(last_ts) if _time(last_ts) is not None else first
    n = _i(count)
    if series is not None:
        last = ago(_d(series).get("lastObservedTime"))
        n = _i(_d(series).get("count"))
    elif n == 0:
        n = 1
    kind = _s(involved.get("kind")).lower()
    target = f"{kind}/{_s(involved.get('name'))}" if involved.get("name") else kind
    source = component + (", " + host if host else "")
    return [last, etype, reason, target, _s(involved.get("fieldPath")), source, message.strip(),
            first, n, name]


def _core_event_row(ev: dict) -> Cells:
    src = _d(ev.get("source"))
    return _event_cells(name_of(ev), _s(ev.get("type")), _s(ev.get("reason")), _d(ev.get("involvedObject")),
                        _s(ev.get("message")), ev.get("firstTimestamp"), ev.get("lastTimestamp"),
                        ev.get("eventTime"), ev.get("count"), ev.get("series"),
                        _s(src.get("component")) or _s(ev.get("reportingComponent")),
                        _s(src.get("host")) or _s(ev.get("reportingInstance")))


def _events_v1_row(ev: dict) -> Cells:
    src = _d(ev.get("deprecatedSource"))
    return _event_cells(name_of(ev), _s(ev.get("type")), _s(ev.get("reason")), _d(ev.get("regarding")),
                        _s(ev.get("note")), ev.get("deprecatedFirstTimestamp"),
                        ev.get("deprecatedLastTimestamp"), ev.get("eventTime"), ev.get("deprecatedCount"),
                        ev.get("series"),
                        _s(src.get("component")) or _s(ev.get("reportingController")),
                        _s(src.get("host")) or _s(ev.get("reportingInstance")))


register("", "events", EVENT_COLUMNS, _core_event_row)
register("events.k8s.io", "events", EVENT_COLUMNS, _events_v1_row)


# -- namespaces, secrets, configmaps, service accounts ---------------------------------------------

register("", "namespaces", [
    NAME(), col("Status", desc="Lifecycle phase of the namespace."), AGE(),
], lambda o: [name_of(o), _s(_d(o.get("status")).get("phase")), age_of(o)])

register("", "secrets", [
    NAME(), col("Type", desc="Kind of secret."), col("Data", desc="Number of data keys."), AGE(),
], lambda o: [name_of(o), _s(o.get("type")), len(_d(o.get("data"))), age_of(o)])

register("", "configmaps", [
    NAME(), col("Data", desc="Number of data and binaryData keys."), AGE(),
], lambda o: [name_of(o), len(_d(o.get("data"))) + len(_d(o.get("binaryData"))), age_of(o)])

register("", "serviceaccounts", [NAME(), AGE()], lambda o: [name_of(o), age_of(o)])


# -- persistent volumes and claims ------------------------------------------------------------

def access_modes(modes) -> str:
    have = set(_s(m) for m in _l(modes))
    out = []
    for mode, short in (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                        ("ReadWriteOncePod", "RWOP")):
        if mode in have:
            out.append(short)
    return ",".join(out)


_BETA_CLASS = "volume.beta.kubernetes.io/storage-class"


def _annotations(obj: dict) -> dict:
    return _d(_d(obj.get("metadata")).get("annotations"))


def _pv_row(pv: dict) -> Cells:
    spec, status = _d(pv.get("spec")), _d(pv.get("status"))
    claim = ""
    if spec.get("claimRef") is not None:
        ref = _d(spec.get("claimRef"))
        claim = f"{_s(ref.get('namespace'))}/{_s(ref.get('name'))}"
    phase = _s(status.get("phase"))
    if _d(pv.get("metadata")).get("deletionTimestamp") is not None:
        phase = "Terminating"
    ann = _annotations(pv)
    sc = _s(ann[_BETA_CLASS]) if _BETA_CLASS in ann else _s(spec.get("storageClassName"))
    vac = spec.get("volumeAttributesClassName")
    return [name_of(pv), quantity(_d(spec.get("capacity")).get("storage")), access_modes(spec.get("accessModes")),
            _s(spec.get("persistentVolumeReclaimPolicy")), phase, claim, sc,
            "<unset>" if vac is None else _s(vac), _s(status.get("reason")), age_of(pv),
            "<unset>" if spec.get("volumeMode") is None else _s(spec.get("volumeMode"))]


register("", "persistentvolumes", [
    NAME(),
    col("Capacity", desc="Storage size of the volume."),
    col("Access Modes", desc="How the volume can be mounted."),
    col("Reclaim Policy", desc="What happens to the volume when released."),
    col("Status", desc="Lifecycle phase of the volume."),
    col("Claim", desc="The claim bound to the volume."),
    col("StorageClass", desc="Storage class of the volume."),
    col("VolumeAttributesClass", desc="Volume attributes class of the volume."),
    col("Reason", desc="Why the volume is in its phase."),
    AGE(),
    WIDE("VolumeMode", "Filesystem or Block."),
], _pv_row)


def _pvc_row(pvc: dict) -> Cells:
    spec, status = _d(pvc.get("spec")), _d(pvc.get("status"))
    phase = _s(status.get("phase"))
    if _d(pvc.get("metadata")).get("deletionTimestamp") is not None:
        phase = "Terminating"
    capacity = modes = ""
    if spec.get("volumeName"):
        modes = access_modes(status.get("accessModes"))
        capacity = quantity(_d(status.get("capacity")).get("storage"))
    ann = _annotations(pvc)
    if _BETA_CLASS in ann:
        sc = _s(ann[_BETA_CLASS])
    else:
        sc = _s(spec.get("storageClassName"))
    vac = spec.get("volumeAttributesClassName")
    return [name_of(pvc), phase, _s(spec.get("volumeName")), capacity, modes, sc,
            "<unset>" if vac is None else _s(vac), age_of(pvc),
            "<unset>" if spec.get("volumeMode") is None else _s(spec.get("volumeMode"))]


register("", "persistentvolumeclaims", [
    NAME(),
    col("Status", desc="Lifecycle phase of the claim."),
    col("Volume", desc="The volume bound to the claim."),
    col("Capacity", desc="Storage size of the bound volume."),
    col("Access Modes", desc="How the bound volume can be mounted."),
    col("StorageClass", desc="Storage class of the claim."),
    col("VolumeAttributesClass", desc="Volume attributes class of the claim."),
    AGE(),
    WIDE("VolumeMode", "Filesystem or Block."),
], _pvc_row)


# -- resource quotas ---------------------------------------------------------------------------

def _quota_row(rq: dict) -> Cells:
    status = _d(rq.get("status"))
    hard, used = _d(status.get("hard")), _d(status.get("used"))
    requests, limits = [], []
    for res in sorted(hard):
        piece = f"{res}: {quantity(used.get(res))}/{quantity(hard.get(res))}"
        parts = res.split(".")
        (limits if len(parts) > 1 and parts[0] == "limits" else requests).append(piece)
    return [name_of(rq), ", ".join(requests), ", ".join(limits), age_of(rq)]


register("", "resourcequotas", [
    NAME(),
    col("Request", desc="Used and hard amounts of non-limit resources."),
    col("Limit", desc="Used and hard amounts of limits.* resources."),
    AGE(),
], _quota_row)


# ============================================================================================
# apps/v1
# ============================================================================================

def _deployment_row(obj: dict) -> Cells:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    try:
        selector = _selector_string(spec.get("selector"))
    except _BadSelector:
        selector = "<invalid>"
    names, images = containers_cells(_pod_spec(spec.get("template")).get("containers"))
    return [name_of(obj), f"{_i(status.get('readyReplicas'))}/{_replicas(spec)}",
            _i(status.get("updatedReplicas")), _i(status.get("availableReplicas")), age_of(obj),
            names, images, selector]


register("apps", "deployments", [
    NAME(),
    col("Ready", desc="Ready replicas out of desired."),
    col("Up-to-date", desc="Replicas running the current template."),
    col("Available", desc="Replicas available to serve."),
    AGE(),
    CONTAINERS, IMAGES,
    WIDE("Selector", "Label selector for the pods."),
], _deployment_row)


def _replicaset_row(obj: dict) -> Cells:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    names, images = containers_cells(_pod_spec(spec.get("template")).get("containers"))
    return [name_of(obj), _replicas(spec), _i(status.get("replicas")), _i(status.get("readyReplicas")),
            age_of(obj), names, images, format_label_selector(spec.get("selector"))]


register("apps", "replicasets", REPLICA_COLUMNS, _replicaset_row)


def _daemonset_row(obj: dict) -> Cells:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    pod_spec = _pod_spec(spec.get("template"))
    names, images = containers_cells(pod_spec.get("containers"))
    return [name_of(obj), _i(status.get("desiredNumberScheduled")), _i(status.get("currentNumberScheduled")),
            _i(status.get("numberReady")), _i(status.get("updatedNumberScheduled")),
            _i(status.get("numberAvailable")), format_labels(pod_spec.get("nodeSelector")), age_of(obj),
            names, images, format_label_selector(spec.get("selector"))]


register("apps", "daemonsets", [
    NAME(),
    col("Desired", "integer", "Nodes that should run the pod."),
    col("Current", "integer", "Nodes running the pod."),
    col("Ready", "integer", "Nodes with a ready pod."),
    col("Up-to-date", "integer", "Nodes running the current template."),
    col("Available", "integer", "Nodes with an available pod."),
    col("Node Selector", desc="Node selector of the pod template."),
    AGE(),
    CONTAINERS, IMAGES,
    WIDE("Selector", "Label selector for the pods."),
], _daemonset_row)


def _statefulset_row(obj: dict) -> Cells:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    names, images = containers_cells(_pod_spec(spec.get("template")).get("containers"))
    return [name_of(obj), f"{_i(status.get('readyReplicas'))}/{_replicas(spec)}", age_of(obj), names, images]


register("apps", "statefulsets", [
    NAME(),
    col("Ready", desc="Ready replicas out of desired."),
    AGE(),
    CONTAINERS, IMAGES,
], _statefulset_row)


def _group_of(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def controller_name(obj: dict) -> str:
    for ref in _l(_d(obj.get("metadata")).get("ownerReferences")):
        ref = _d(ref)
        if ref.get("controller") is True:
            kind, group = _s(ref.get("kind")), _group_of(_s(ref.get("apiVersion")))
            if not kind and not group:
                return _s(ref.get("name"))
            gk = f"{kind}.{group}" if group else kind
            return f"{gk.lower()}/{_s(ref.get('name'))}"
    return "<none>"


register("apps", "controllerrevisions", [
    NAME(),
    col("Controller", desc="The object controlling this revision."),
    col("Revision", desc="Revision number."),
    AGE(),
], lambda o: [name_of(o), controller_name(o), _i(o.get("revision")), age_of(o)])


# ============================================================================================
# batch/v1
# ============================================================================================

def _job_condition(conditions, ctype: str) -> bool:
    return _condition_true(conditions, ctype)


def job_status(job: dict) -> str:
    conds = _d(job.get("status")).get("conditions")
    if _job_condition(conds, "Complete"):
        return "Complete"
    if _job_condition(conds, "Failed"):
        return "Failed"
    if _d(job.get("metadata")).get("deletionTimestamp") is not None:
        return "Terminating"
    for ctype in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if _job_condition(conds, ctype):
            return ctype
    return "Running"


def _job_row(job: dict) -> Cells:
    spec, status = _d(job.get("spec")), _d(job.get("status"))
    succeeded = _i(status.get("succeeded"))
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{_i(spec.get('completions'))}"
    else:
        parallelism = _i(spec.get("parallelism"))
        completions = f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"
    start, end = _time(status.get("startTime")), _time(status.get("completionTime"))
    if status.get("startTime") is None:
        duration = ""
    elif status.get("completionTime") is None:
        duration = human_duration(_now() - start) if start else human_duration(_now() - _ZERO_TIME)
    else:
        duration = human_duration((end or _ZERO_TIME) - (start or _ZERO_TIME))
    names, images = containers_cells(_pod_spec(spec.get("template")).get("containers"))
    return [name_of(job), job_status(job), completions, duration, age_of(job), names, images,
            format_label_selector(spec.get("selector"))]


_ZERO_TIME = _dt.datetime(1, 1, 1, tzinfo=_dt.timezone.utc)

register("batch", "jobs", [
    NAME(),
    col("Status", desc="Summary of the job's conditions."),
    col("Completions", desc="Succeeded pods out of completions wanted."),
    col("Duration", desc="How long the job ran (or has been running)."),
    AGE(),
    CONTAINERS, IMAGES,
    WIDE("Selector", "Label selector for the pods."),
], _job_row)


def _cronjob_row(cj: dict) -> Cells:
    spec, status = _d(cj.get("spec")), _d(cj.get("status"))
    last = "<none>" if status.get("lastScheduleTime") is None else ago(status.get("lastScheduleTime"))
    tz = "<none>" if spec.get("timeZone") is None else _s(spec.get("timeZone"))
    job_spec = _d(_d(spec.get("jobTemplate")).get("spec"))
    names, images = containers_cells(_pod_spec(job_spec.get("template")).get("containers"))
    return [name_of(cj), _s(spec.get("schedule")), tz, bool_ptr(spec.get("suspend")),
            len(_l(status.get("active"))), last, age_of(cj), names, images,
            format_label_selector(job_spec.get("selector"))]


register("batch", "cronjobs", [
    NAME(),
    col("Schedule", desc="Cron schedule."),
    col("Timezone", desc="Time zone of the schedule."),
    col("Suspend", "boolean", "Whether new runs are suspended."),
    col("Active", "integer", "Jobs currently running."),
    col("Last Schedule", desc="When a job was last scheduled."),
    AGE(),
    CONTAINERS, IMAGES,
    WIDE("Selector", "Label selector of the job template."),
], _cronjob_row)


# ============================================================================================
# autoscaling/v2
# ============================================================================================

def _metric_pair(current: str, target, avg: bool = False) -> str:
    return f"{current}/{quantity_ptr(target)}" + (" (avg)" if avg else "")


def format_hpa_metrics(specs, statuses) -> str:
    specs, statuses = [_d(s) for s in _l(specs)], [_d(s) for s in _l(statuses)]
    if not specs:
        return "<none>"
    shown: list[str] = []
    for i, spec in enumerate(specs):
        st = statuses[i] if i < len(statuses) else {}
        mtype = spec.get("type")
        if mtype in ("External", "Object"):
            key = "external" if mtype == "External" else "object"
            target = _d(_d(spec.get(key)).get("target"))
            cur_status = st.get(key)
            if target.get("averageValue") is not None:
                current = "<unknown>"
                if cur_status is not None and _d(_d(cur_status).get("current")).get("averageValue") is not None:
                    current = quantity(_d(_d(cur_status).get("current")).get("averageValue"))
                shown.append(_metric_pair(current, target.get("averageValue"), avg=True))
            else:
                current = "<unknown>"
                if cur_status is not None:
                    current = quantity_ptr(_d(_d(cur_status).get("current")).get("value"))
                shown.append(_metric_pair(current, target.get("value")))
        elif mtype == "Pods":
            target = _d(_d(spec.get("pods")).get("target"))
            current = "<unknown>"
            if st.get("pods") is not None:
                current = quantity_ptr(_d(_d(st["pods"]).get("current")).get("averageValue"))
            shown.append(_metric_pair(current, target.get("averageValue")))
        elif mtype in ("Resource", "ContainerResource"):
            key = "resource" if mtype == "Resource" else "containerResource"
            src = _d(spec.get(key))
            target = _d(src.get("target"))
            cur_status = st.get(key)
            rname = _s(src.get("name"))
            if target.get("averageValue") is not None:
                current = "<unknown>"
                if cur_status is not None:
                    current = quantity_ptr(_d(_d(cur_status).get("current")).get("averageValue"))
                shown.append(f"{rname}: {current}/{quantity(target.get('averageValue'))}")
            else:
                current = "<unknown>"
                cur = _d(_d(cur_status).get("current")) if cur_status is not None else {}
                if cur_status is not None and cur.get("averageUtilization") is not None:
                    current = f"{_i(cur.get('averageUtilization'))}%"
                tgt = "<auto>"
                if target.get("averageUtilization") is not None:
                    tgt = f"{_i(target.get('averageUtilization'))}%"
                shown.append(f"{rname}: {current}/{tgt}")
        else:
            shown.append("<unknown type>")
    limit = 2
    if len(shown) > limit:
        return ", ".join(shown[:limit]) + f" + {len(shown) - limit} more..."
    return ", ".join(shown)


def _hpa_row(hpa: dict) -> Cells:
    spec, status = _d(hpa.get("spec")), _d(hpa.get("status"))
    ref = _d(spec.get("scaleTargetRef"))
    min_pods = "<unset>" if spec.get("minReplicas") is None else str(_i(spec.get("minReplicas")))
    return [name_of(hpa), f"{_s(ref.get('kind'))}/{_s(ref.get('name'))}",
            format_hpa_metrics(spec.get("metrics"), status.get("currentMetrics")), min_pods,
            _i(spec.get("maxReplicas")), _i(status.get("currentReplicas")), age_of(hpa)]


register("autoscaling", "horizontalpodautoscalers", [
    NAME(),
    col("Reference", desc="The scaled object."),
    col("Targets", desc="Current and target metric values."),
    col("MinPods", desc="Lower replica bound."),
    col("MaxPods", desc="Upper replica bound."),
    col("Replicas", desc="Current replicas."),
    AGE(),
], _hpa_row)


# ============================================================================================
# policy, networking, rbac, certificates, coordination, scheduling, node, discovery, storage
# ============================================================================================

def _pdb_row(pdb: dict) -> Cells:
    spec, status = _d(pdb.get("spec")), _d(pdb.get("status"))
    mn = "N/A" if spec.get("minAvailable") is None else int_or_string(spec.get("minAvailable"))
    mx = "N/A" if spec.get("maxUnavailable") is None else int_or_string(spec.get("maxUnavailable"))
    return [name_of(pdb), mn, mx, _i(status.get("disruptionsAllowed")), age_of(pdb)]


register("policy", "poddisruptionbudgets", [
    NAME(),
    col("Min Available", desc="Pods that must stay available."),
    col("Max Unavailable", desc="Pods that may be unavailable."),
    col("Allowed Disruptions", "integer", "Pods that may be disrupted now."),
    AGE(),
], _pdb_row)

register("networking.k8s.io", "networkpolicies", [
    NAME(), col("Pod-Selector", desc="Pods the policy applies to."), AGE(),
], lambda o: [name_of(o), format_label_selector(_d(_d(o.get("spec")).get("podSelector"))), age_of(o)])


def _ingress_hosts(rules) -> str:
    rules = [_d(r) for r in _l(rules)]
    shown: list[str] = []
    limit, more = 3, False
    for r in rules:
        if len(shown) == limit:
            more = True
        if not more and r.get("host"):
            shown.append(_s(r["host"]))
    if not shown:
        return "*"
    ret = ",".join(shown)
    return f"{ret} + {len(rules) - limit} more..." if more else ret


def _ingress_row(ing: dict) -> Cells:
    spec, status = _d(ing.get("spec")), _d(ing.get("status"))
    cls = "<none>" if spec.get("ingressClassName") is None else _s(spec.get("ingressClassName"))
    address = _lb_ingress_string(_d(status.get("loadBalancer")).get("ingress"))
    ports = "80, 443" if _l(spec.get("tls")) else "80"
    return [name_of(ing), cls, _ingress_hosts(spec.get("rules")), address, ports, age_of(ing)]


register("networking.k8s.io", "ingresses", [
    NAME(),
    col("Class", desc="Ingress class handling the ingress."),
    col("Hosts", desc="Hosts the rules match."),
    col("Address", desc="Load balancer addresses."),
    col("Ports", desc="Ports served."),
    AGE(),
], _ingress_row)


def _ingressclass_row(ic: dict) -> Cells:
    spec = _d(ic.get("spec"))
    name = name_of(ic)
    if _annotations(ic).get("ingressclass.kubernetes.io/is-default-class") == "true":
        name += " (default)"
    params = "<none>"
    if spec.get("parameters") is not None:
        p = _d(spec.get("parameters"))
        params = _s(p.get("kind"))
        if p.get("apiGroup") is not None:
            params += "." + _s(p.get("apiGroup"))
        params += "/" + _s(p.get("name"))
    return [name, _s(spec.get("controller")), params, age_of(ic)]


register("networking.k8s.io", "ingressclasses", [
    NAME(),
    col("Controller", desc="Controller implementing the class."),
    col("Parameters", desc="Resource holding the class's parameters."),
    AGE(),
], _ingressclass_row)


register("networking.k8s.io", "servicecidrs", [
    NAME(), col("CIDRs", desc="The ranges Service IPs are allocated from."), AGE(),
], lambda o: [name_of(o), ",".join(_s(c) for c in _l(_d(o.get("spec")).get("cidrs"))), age_of(o)])


def _ip_parent(ip: dict) -> str:
    """`resource[.group]/[namespace/]name` of the object holding the address, lower-cased."""
    ref = _d(ip.get("spec")).get("parentRef")
    if not isinstance(ref, dict):
        return "<none>"
    group, resource = _s(ref.get("group")), _s(ref.get("resource"))
    out = (f"{resource}.{group}" if group else resource).lower()
    if ref.get("namespace"):
        out += "/" + _s(ref["namespace"])
    return out + "/" + _s(ref.get("name"))


# Upstream declares two columns but fills a third cell (the age); kubectl shows the two.
register("networking.k8s.io", "ipaddresses", [
    NAME(), col("ParentRef", desc="The object the address is allocated to."),
], lambda o: [name_of(o), _ip_parent(o), age_of(o)])


def _subjects(subjects) -> tuple[str, str, str]:
    users, groups, sas = [], [], []
    for s in _l(subjects):
        s = _d(s)
        kind = s.get("kind")
        if kind == "ServiceAccount":
            sas.append(f"{_s(s.get('namespace'))}/{_s(s.get('name'))}")
        elif kind == "User":
            users.append(_s(s.get("name")))
        elif kind == "Group":
            groups.append(_s(s.get("name")))
    return ", ".join(users), ", ".join(groups), ", ".join(sas)


def _binding_row(b: dict) -> Cells:
    ref = _d(b.get("roleRef"))
    return [name_of(b), f"{_s(ref.get('kind'))}/{_s(ref.get('name'))}", age_of(b), *_subjects(b.get("subjects"))]


BINDING_COLUMNS = [
    NAME(),
    col("Role", desc="The role granted."),
    AGE(),
    WIDE("Users", "Users bound."),
    WIDE("Groups", "Groups bound."),
    WIDE("ServiceAccounts", "Service accounts bound."),
]
register("rbac.authorization.k8s.io", "rolebindings", BINDING_COLUMNS, _binding_row)
register("rbac.authorization.k8s.io", "clusterrolebindings", BINDING_COLUMNS, _binding_row)


def csr_condition(csr: dict) -> str:
    types = {_d(c).get("type") for c in _l(_d(csr.get("status")).get("conditions"))}
    out = "Denied" if "Denied" in types else "Approved" if "Approved" in types else "Pending"
    if "Failed" in types:
        out += ",Failed"
    if _d(csr.get("status")).get("certificate"):
        out += ",Issued"
    return out


def _csr_row(csr: dict) -> Cells:
    spec = _d(csr.get("spec"))
    duration = "<none>"
    if spec.get("expirationSeconds") is not None:
        duration = human_duration(_dt.timedelta(seconds=_i(spec.get("expirationSeconds"))))
    return [name_of(csr), age_of(csr), _s(spec.get("signerName")) or "<none>", _s(spec.get("username")),
            duration, csr_condition(csr)]


register("certificates.k8s.io", "certificatesigningrequests", [
    NAME(),
    AGE(),
    col("SignerName", desc="Signer asked to sign."),
    col("Requestor", desc="User who made the request."),
    col("RequestedDuration", desc="Validity asked for."),
    col("Condition", desc="Approval and issuance state."),
], _csr_row)

register("certificates.k8s.io", "clustertrustbundles", [
    NAME(), col("SignerName", desc="Signer whose trust anchors the bundle carries."),
], lambda o: [name_of(o), _s(_d(o.get("spec")).get("signerName")) or "<none>"])


def _pcr_row(pcr: dict) -> Cells:
    spec = _d(pcr.get("spec"))
    state = "Pending"
    for c in _d(pcr.get("status")).get("conditions") or []:
        state = {"Issued": "Issued", "Denied": "Denied", "Failed": "Failed"}.get(_d(c).get("type"), state)
    return [name_of(pcr), _s(spec.get("podName")), _s(spec.get("serviceAccountName")),
            _s(spec.get("nodeName")), _s(spec.get("signerName")), state,
            format_labels(spec.get("unverifiedUserAnnotations"))]


register("certificates.k8s.io", "podcertificaterequests", [
    NAME(),
    col("PodName", desc="Pod the certificate is for."),
    col("ServiceAccountName", desc="Service account of that pod."),
    col("NodeName", desc="Node the pod runs on."),
    col("SignerName", desc="Signer asked to issue."),
    col("State", desc="Pending, Issued, Denied or Failed."),
    col("UnverifiedUserAnnotations", desc="Annotations the pod passed to the signer.", priority=1),
], _pcr_row)

register("coordination.k8s.io", "leases", [
    NAME(), col("Holder", desc="Current holder of the lease."), AGE(),
], lambda o: [name_of(o), _s(_d(o.get("spec")).get("holderIdentity")), age_of(o)])

register("scheduling.k8s.io", "priorityclasses", [
    NAME(),
    col("Value", "integer", "Priority value."),
    col("Global-Default", "boolean", "Whether pods without a class get this one."),
    AGE(),
    col("PreemptionPolicy", desc="Whether pods of this class preempt others."),
], lambda o: [name_of(o), _i(o.get("value")), o.get("globalDefault") is True, age_of(o),
              _s(o.get("preemptionPolicy"))])

register("node.k8s.io", "runtimeclasses", [
    NAME(), col("Handler", desc="Runtime handler used for the pods."), AGE(),
], lambda o: [name_of(o), _s(o.get("handler")), age_of(o)])


def _slice_ports(ports) -> str:
    shown: list[str] = []
    limit, more, count = 3, False, 0
    for p in _l(ports):
        p = _d(p)
        if len(shown) < limit:
            if p.get("port") is not None:
                shown.append(str(_i(p.get("port"))))
            elif p.get("name") is not None:
                shown.append(_s(p.get("name")))
            else:
                shown.append("*")
        elif len(shown) == limit:
            more = True
        count += 1
    return _list_with_more(shown, more, count, limit)


def _slice_endpoints(endpoints) -> str:
    shown: list[str] = []
    limit, more, count = 3, False, 0
    for ep in _l(endpoints):
        for addr in _l(_d(ep).get("addresses")):
            if len(shown) < limit:
                shown.append(_s(addr))
            elif len(shown) == limit:
                more = True
            count += 1
    return _list_with_more(shown, more, count, limit)


register("discovery.k8s.io", "endpointslices", [
    NAME(),
    col("AddressType", desc="IPv4, IPv6 or FQDN."),
    col("Ports", desc="Ports of the slice."),
    col("Endpoints", desc="Addresses of the slice's endpoints."),
    AGE(),
], lambda o: [name_of(o), _s(o.get("addressType")), _slice_ports(o.get("ports")),
              _slice_endpoints(o.get("endpoints")), age_of(o)])


# -- storage.k8s.io -------------------------------------------------------------------------------

_DEFAULT_SC = ("storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class")


def _is_default_class(sc: dict) -> bool:
    ann = _annotations(sc)
    return any(ann.get(k) == "true" for k in _DEFAULT_SC)


def _storageclass_cells(sc: dict, effective_default: str = "") -> Cells:
    name = name_of(sc)
    if effective_default and name == effective_default:
        name += " (default)"
    reclaim = "Delete" if sc.get("reclaimPolicy") is None else _s(sc.get("reclaimPolicy"))
    binding = "Immediate" if sc.get("volumeBindingMode") is None else _s(sc.get("volumeBindingMode"))
    return [name, _s(sc.get("provisioner")), reclaim, binding, sc.get("allowVolumeExpansion") is True, age_of(sc)]


def effective_default_storage_class(items: Iterable[dict]) -> str:
    """The newest class annotated as default (ties: the alphabetically first name)."""
    best, best_t = None, None
    for sc in items:
        if not _is_default_class(sc):
            continue
        t = _time(_d(sc.get("metadata")).get("creationTimestamp")) or _ZERO_TIME
        if best is None or t > best_t or (t == best_t and name_of(sc) < name_of(best)):
            best, best_t = sc, t
    return name_of(best) if best is not None else ""


def _storageclass_list(items: list) -> list:
    default = effective_default_storage_class(items)
    return [_storageclass_cells(sc, default) for sc in items]


register("storage.k8s.io", "storageclasses", [
    NAME(),
    col("Provisioner", desc="Volume plugin that provisions volumes."),
    col("ReclaimPolicy", desc="Reclaim policy of provisioned volumes."),
    col("VolumeBindingMode", desc="When volumes are bound and provisioned."),
    col("AllowVolumeExpansion", desc="Whether volumes can be expanded."),
    AGE(),
], _storageclass_cells, list_rows=_storageclass_list)


def _csidriver_row(d: dict) -> Cells:
    spec = _d(d.get("spec"))
    attach = True if spec.get("attachRequired") is None else spec.get("attachRequired") is True
    modes = ",".join(_s(m) for m in _l(spec.get("volumeLifecycleModes"))) or "<none>"
    tokens = "<unset>"
    if spec.get("tokenRequests") is not None:
        tokens = ",".join(_s(_d(t).get("audience")) for t in _l(spec.get("tokenRequests")))
    return [name_of(d), attach, spec.get("podInfoOnMount") is True, spec.get("storageCapacity") is True,
            tokens, spec.get("requiresRepublish") is True, modes, age_of(d)]


register("storage.k8s.io", "csidrivers", [
    NAME(),
    col("AttachRequired", "boolean", "Whether volumes need an attach step."),
    col("PodInfoOnMount", "boolean", "Whether pod details are passed on mount."),
    col("StorageCapacity", "boolean", "Whether capacity is tracked for scheduling."),
    col("TokenRequests", desc="Audiences of service account tokens passed on mount."),
    col("RequiresRepublish", "boolean", "Whether volumes are re-published periodically."),
    col("Modes", desc="Volume lifecycle modes supported."),
    AGE(),
], _csidriver_row)

register("storage.k8s.io", "csinodes", [
    NAME(), col("Drivers", "integer", "CSI drivers registered on the node."), AGE(),
], lambda o: [name_of(o), len(_l(_d(o.get("spec")).get("drivers"))), age_of(o)])

register("storage.k8s.io", "csistoragecapacities", [
    NAME(),
    col("StorageClassName", desc="Storage class the capacity is for."),
    col("Capacity", desc="Available capacity."),
], lambda o: [name_of(o), _s(o.get("storageClassName")),
              "<unset>" if o.get("capacity") is None else quantity(o.get("capacity"))])


def _volumeattachment_row(va: dict) -> Cells:
    spec = _d(va.get("spec"))
    pv = _d(spec.get("source")).get("persistentVolumeName")
    return [name_of(va), _s(spec.get("attacher")), "" if pv is None else _s(pv), _s(spec.get("nodeName")),
            _d(va.get("status")).get("attached") is True, age_of(va)]


register("storage.k8s.io", "volumeattachments", [
    NAME(),
    col("Attacher", desc="Driver doing the attach.", fmt="name"),
    col("PV", desc="Persistent volume attached."),
    col("Node", desc="Node attached to."),
    col("Attached", "boolean", "Whether the attach has completed."),
    AGE(),
], _volumeattachment_row)


# -- the scale subresource (autoscaling/v1 Scale) -----------------------------------------------

SCALE = Printer([
    col("Name", desc="Object name."),  # upstream gives this one no "name" format
    col("Desired", "integer", "Replicas asked for."),
    col("Available", "integer", "Replicas that exist."),
    AGE(),
], lambda o: [name_of(o), _i(_d(o.get("spec")).get("replicas")), _i(_d(o.get("status")).get("replicas")),
              age_of(o)])


# ============================================================================================
# kinds upstream prints with the generic table: Name and Created At
# ============================================================================================

CREATED_AT_COLUMNS = [NAME(), col("Created At", "date", "When the object was created.")]


def created_at(obj: dict) -> str:
    t = _time(_d(obj.get("metadata")).get("creationTimestamp")) or _ZERO_TIME
    t = t.astimezone(_dt.timezone.utc)
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"


def _generic_row(obj: dict) -> Cells:
    return [name_of(obj), created_at(obj)]


for _group, _plural in (
        ("", "limitranges"), ("", "bindings"),
        ("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "clusterroles"),
        ("authentication.k8s.io", "tokenreviews"),
        ("authorization.k8s.io", "localsubjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectrulesreviews"),
        ("authorization.k8s.io", "subjectaccessreviews")):
    register(_group, _plural, CREATED_AT_COLUMNS, _generic_row)
del _group, _plural


register("storage.k8s.io", "volumeattributesclasses", [
    NAME(), col("DriverName", desc="CSI driver the class is for."), AGE(),
], lambda o: [name_of(o), _s(o.get("driverName")), age_of(o)])


# -- resource.k8s.io ---------------------------------------------------------------------------

def _claim_state(claim: dict) -> str:
    deleting = bool(_d(claim.get("metadata")).get("deletionTimestamp"))
    status = _d(claim.get("status"))
    states = ["deleted"] if deleting else []
    if not status.get("allocation"):
        if not deleting:
            states.append("pending")
    else:
        states.append("allocated")
        if status.get("reservedFor"):
            states.append("reserved")
    return ",".join(states)


register("resource.k8s.io", "deviceclasses", [NAME(), AGE()], lambda o: [name_of(o), age_of(o)])
register("resource.k8s.io", "resourceclaimtemplates", [NAME(), AGE()], lambda o: [name_of(o), age_of(o)])
register("resource.k8s.io", "resourceclaims", [
    NAME(), col("State", desc="Allocation state: pending, allocated, reserved, deleted."), AGE(),
], lambda o: [name_of(o), _claim_state(o), age_of(o)])
register("resource.k8s.io", "resourceslices", [
    NAME(),
    col("Node", desc="Node whose devices the slice lists."),
    col("Driver", desc="Driver that published the slice."),
    col("Pool", desc="Pool the slice belongs to."),
    AGE(),
], lambda o: [name_of(o), _s(_d(o.get("spec")).get("nodeName")), _s(_d(o.get("spec")).get("driver")),
              _s(_d(_d(o.get("spec")).get("pool")).get("name")), age_of(o)])


def _taint_rule_row(rule: dict) -> Cells:
    taint = _d(_d(rule.get("spec")).get("taint"))
    added = taint.get("timeAdded")
    return [name_of(rule), _s(taint.get("key")), _s(taint.get("value")), _s(taint.get("effect")),
            since(added) if added else "", age_of(rule)]


register("resource.k8s.io", "devicetaintrules", [
    NAME(),
    col("Key", desc="Taint key."),
    col("Value", desc="Taint value."),
    col("Effect", desc="Taint effect."),
    col("TimeAdded", desc="When the taint was added."),
    AGE(),
], _taint_rule_row)
