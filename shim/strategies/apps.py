"""Strategies of apps/v1 and batch/v1 workloads."""
from __future__ import annotations

from shim.api import validation as v
from shim.api.selectors import SelectorError, label_selector_from_object
from shim.api.strategy import Strategy, strategy_for
from shim.strategies.core import default_pod_spec, validate_pod_spec


def _default_template(spec: dict) -> None:
    tmpl = spec.get("template")
    if isinstance(tmpl, dict):
        tmpl.setdefault("metadata", {})
        if isinstance(tmpl.get("spec"), dict):
            default_pod_spec(tmpl["spec"])


def _validate_selected_template(spec: dict, need_selector: bool = True) -> list:
    errs = []
    sel = spec.get("selector")
    if sel is None:
        if need_selector:
            errs.append(v.required("spec.selector", ""))
        return errs
    if not isinstance(sel, dict) or not (sel.get("matchLabels") or sel.get("matchExpressions")):
        errs.append(v.invalid("spec.selector", sel, "empty selector is invalid for deployment"))
        return errs
    try:
        selector = label_selector_from_object(sel)
    except SelectorError as e:
        return [v.invalid("spec.selector", sel, str(e))]
    tmpl = spec.get("template") or {}
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    if not selector.matches(labels):
        errs.append(v.invalid("spec.template.metadata.labels", labels,
                              "`selector` does not match template `labels`"))
    errs += validate_pod_spec(tmpl.get("spec"), "spec.template.spec")
    return errs


def _selector_immutable(new: dict, old: dict) -> list:
    ns, os_ = (new.get("spec") or {}).get("selector"), (old.get("spec") or {}).get("selector")
    if ns != os_:
        return [v.invalid("spec.selector", ns, v.FIELD_IMMUTABLE_MESSAGE)]
    return []


class _Workload(Strategy):
    def default(self, obj):
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            _default_template(spec)
            self.default_spec(spec)

    def default_spec(self, spec: dict) -> None:
        pass

    def validate_spec(self, obj):
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [v.required("spec", "")]
        errs = _validate_selected_template(spec)
        r = spec.get("replicas")
        if r is not None and (not isinstance(r, int) or r < 0):
            errs.append(v.invalid("spec.replicas", r, "must be greater than or equal to 0"))
        return errs

    def validate_spec_update(self, new, old):
        return _selector_immutable(new, old)


@strategy_for("apps", "deployments")
class DeploymentStrategy(_Workload):
    def default_spec(self, spec):
        spec.setdefault("replicas", 1)
        st = spec.setdefault("strategy", {"type": "RollingUpdate"})
        st.setdefault("type", "RollingUpdate")
        if st["type"] == "RollingUpdate":
            ru = st.setdefault("rollingUpdate", {})
            ru.setdefault("maxUnavailable", "25%")
            ru.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)


@strategy_for("apps", "replicasets")
class ReplicaSetStrategy(_Workload):
    selectable_fields = ("status.replicas",)

    def initial_status(self, obj):
        return {"replicas": 0}

    def default_spec(self, spec):
        spec.setdefault("replicas", 1)


@strategy_for("apps", "statefulsets")
class StatefulSetStrategy(_Workload):
    def initial_status(self, obj):
        return {"replicas": 0, "availableReplicas": 0}

    def default_spec(self, spec):
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        us = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
        if us.get("type") == "RollingUpdate":
            us.setdefault("rollingUpdate", {"partition": 0})
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("persistentVolumeClaimRetentionPolicy",
                        {"whenDeleted": "Retain", "whenScaled": "Retain"})


@strategy_for("apps", "daemonsets")
class DaemonSetStrategy(_Workload):
    def initial_status(self, obj):
        return {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                "numberReady": 0}

    def default_spec(self, spec):
        us = spec.setdefault("updateStrategy", {})
        if not isinstance(us, dict):
            return
        if not us.get("type"):
            us["type"] = "RollingUpdate"
        if us["type"] == "RollingUpdate":
            ru = us.get("rollingUpdate")
            if not isinstance(ru, dict):
                ru = us["rollingUpdate"] = {}
            if ru.get("maxUnavailable") is None:
                ru["maxUnavailable"] = 1
            if ru.get("maxSurge") is None:
                ru["maxSurge"] = 0
        spec.setdefault("revisionHistoryLimit", 10)

    def validate_spec(self, obj):
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [v.required("spec", "")]
        errs = _validate_selected_template(spec)
        for e in errs:
            if e.field == "spec.selector" and e.detail.startswith("empty selector"):
                e.detail = "empty selector is invalid for daemonset"
        pod = (spec.get("template") or {}).get("spec") or {}
        rp = pod.get("restartPolicy")
        if rp != "Always" and not any(e.field == "spec.template.spec.restartPolicy" for e in errs):
            errs.append(v.not_supported("spec.template.spec.restartPolicy", rp, ["Always"]))
        if pod.get("activeDeadlineSeconds") is not None:
            errs.append(v.forbidden("spec.template.spec.activeDeadlineSeconds",
                                    "activeDeadlineSeconds in DaemonSet is not Supported"))
        for f in ("minReadySeconds", "revisionHistoryLimit"):
            if isinstance(spec.get(f), int):
                errs += v.validate_nonnegative(spec[f], f"spec.{f}")
        us = spec.get("updateStrategy") or {}
        path = "spec.updateStrategy"
        if us.get("type") == "RollingUpdate":
            ru = us.get("rollingUpdate")
            if ru is None:
                errs.append(v.required(f"{path}.rollingUpdate", ""))
            else:
                errs += _validate_daemonset_rolling_update(ru, f"{path}.rollingUpdate")
        elif us.get("type") != "OnDelete":
            errs.append(v.not_supported(path, us, ["RollingUpdate", "OnDelete"]))
        return errs

    # apps/v1 carries the internal spec.templateGeneration in this annotation: 1 on create
    # (or what the client set, if it is a positive number), bumped by every template change,
    # and never set by an update.
    def prepare_for_create(self, obj):
        super().prepare_for_create(obj)
        md = obj.setdefault("metadata", {})
        annotations = md.get("annotations") or {}
        generation = _int_or_none(annotations.get(TEMPLATE_GENERATION))
        md["annotations"] = {**annotations, TEMPLATE_GENERATION: str(max(generation or 1, 1))}

    def prepare_for_update(self, new, old):
        super().prepare_for_update(new, old)
        self.default(new)  # compare templates as they will be stored (defaulting is idempotent)
        generation = _int_or_none((old.get("metadata", {}).get("annotations") or {}).get(TEMPLATE_GENERATION)) or 0
        if (new.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template"):
            generation += 1
        md = new.setdefault("metadata", {})
        md["annotations"] = {**(md.get("annotations") or {}), TEMPLATE_GENERATION: str(generation)}


TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"
PERCENT_MESSAGE = v.regex_error("a valid percent string must be a numeric string followed by an ending '%'",
                                "[0-9]+%", "1%", "93%")


def _percent(value):
    """The number of a valid percent string, else None."""
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit() and value[:-1].isascii():
        return int(value[:-1])
    return None


def _int_or_percent_value(value) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    p = _percent(value)
    if p is not None:
        return p
    try:
        return int(value)  # intstr's IntValue of a string
    except (TypeError, ValueError):
        return 0


def _validate_positive_int_or_percent(value, path: str) -> list:
    if isinstance(value, str):
        return [] if _percent(value) is not None else [v.invalid(path, value, PERCENT_MESSAGE)]
    if isinstance(value, int) and not isinstance(value, bool):
        return v.validate_nonnegative(value, path)
    return [] if value is None else [v.invalid(path, value, "must be an integer or percentage (e.g '5%')")]


def _validate_daemonset_rolling_update(ru: dict, path: str) -> list:
    mu, ms = ru.get("maxUnavailable"), ru.get("maxSurge")
    errs = _validate_positive_int_or_percent(mu, f"{path}.maxUnavailable")
    errs += _validate_positive_int_or_percent(ms, f"{path}.maxSurge")
    for field, value in (("maxUnavailable", mu), ("maxSurge", ms)):
        p = _percent(value)
        if p is not None and p > 100:
            errs.append(v.invalid(f"{path}.{field}", value, "must not be greater than 100%"))
    has_unavailable, has_surge = _int_or_percent_value(mu) != 0, _int_or_percent_value(ms) != 0
    if has_unavailable and has_surge:
        errs.append(v.invalid(f"{path}.maxSurge", ms, "may not be set when maxUnavailable is non-zero"))
    elif not has_unavailable and not has_surge:
        errs.append(v.required(f"{path}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    return errs


def _int_or_none(value):
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


JOB_NAME_LABELS = ("job-name", "batch.kubernetes.io/job-name")
JOB_UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")
JOB_COMPLETION_MODES = ("NonIndexed", "Indexed")


def _job_labels_from_template(obj: dict) -> None:
    """Upstream defaulting: a Job without labels takes its template's."""
    spec = obj.get("spec") or {}
    tlabels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    md = obj.setdefault("metadata", {})
    if tlabels and not md.get("labels"):
        md["labels"] = dict(tlabels)


@strategy_for("batch", "jobs")
class JobStrategy(Strategy):
    selectable_fields = ("status.successful",)
    gc_policy = "OrphanDependents"  # batch/v1 keeps its historical default

    def prepare_for_create(self, obj):
        super().prepare_for_create(obj)
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        _job_labels_from_template(obj)  # defaulting sees the labels before the generated ones
        if not spec.get("manualSelector"):
            self._generate_selector(obj)

    @staticmethod
    def _generate_selector(obj: dict) -> None:
        """The selector and template labels that tie a Job to its pods (manualSelector false)."""
        md = obj.get("metadata") or {}
        tmpl = obj["spec"].setdefault("template", {})
        if not isinstance(tmpl, dict):
            return
        tmd = tmpl.setdefault("metadata", {})
        labels = tmd.get("labels")
        if not isinstance(labels, dict):
            labels = tmd["labels"] = {}
        for k in JOB_NAME_LABELS:
            labels.setdefault(k, md.get("name", ""))
        for k in JOB_UID_LABELS:
            labels.setdefault(k, md.get("uid", ""))
        sel = obj["spec"].get("selector")
        if not isinstance(sel, dict):
            sel = obj["spec"]["selector"] = {}
        ml = sel.get("matchLabels")
        if not isinstance(ml, dict):
            ml = sel["matchLabels"] = {}
        ml.setdefault("batch.kubernetes.io/controller-uid", md.get("uid", ""))

    def default(self, obj):
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        if "completions" not in spec and "parallelism" not in spec:
            spec["completions"] = 1
        spec.setdefault("parallelism", 1)
        spec.setdefault("backoffLimit", 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6)
        _job_labels_from_template(obj)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")
        spec.setdefault("manualSelector", False)
        tmpl = spec.get("template")
        if isinstance(tmpl, dict):
            tmpl.setdefault("metadata", {})
            if isinstance(tmpl.get("spec"), dict):
                default_pod_spec(tmpl["spec"])

    def validate_spec(self, obj):
        spec = obj.get("spec") or {}
        tmpl = spec.get("template") or {}
        errs = validate_pod_spec(tmpl.get("spec"), "spec.template.spec")
        rp = (tmpl.get("spec") or {}).get("restartPolicy")
        if rp not in ("OnFailure", "Never"):
            errs = [e for e in errs if "restartPolicy" not in e.field]
            errs.append(v.not_supported("spec.template.spec.restartPolicy", rp, ["OnFailure", "Never"]))
        for f in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"):
            val = spec.get(f)
            if val is not None and (not isinstance(val, int) or val < 0):
                errs.append(v.invalid(f"spec.{f}", val, "must be greater than or equal to 0"))
        ads = spec.get("activeDeadlineSeconds")
        if ads is not None and (not isinstance(ads, int) or ads <= 0):
            errs.append(v.invalid("spec.activeDeadlineSeconds", ads, "must be greater than 0"))
        mode = spec.get("completionMode")
        if mode is not None and mode not in JOB_COMPLETION_MODES:
            errs.append(v.not_supported("spec.completionMode", mode, list(JOB_COMPLETION_MODES)))
        if mode == "Indexed" and spec.get("completions") is None:
            errs.append(v.required("spec.completions", "when completion mode is Indexed"))
        sel = spec.get("selector")
        if sel is None:
            errs.append(v.required("spec.selector", ""))
        else:
            try:
                selector = label_selector_from_object(sel)
            except SelectorError as e:
                errs.append(v.invalid("spec.selector", sel, str(e)))
            else:
                labels = (tmpl.get("metadata") or {}).get("labels") or {}
                if selector.empty:
                    errs.append(v.invalid("spec.selector", sel, "empty selector is invalid for deployment"))
                elif not selector.matches(labels):
                    errs.append(v.invalid("spec.template.metadata.labels", labels,
                                          "`selector` does not match template `labels`"))
        if not spec.get("manualSelector"):
            uid = (obj.get("metadata") or {}).get("uid")
            labels = (tmpl.get("metadata") or {}).get("labels") or {}
            for k in JOB_UID_LABELS:
                if uid and k in labels and labels[k] != uid:
                    errs.append(v.invalid(f"spec.template.metadata.labels[{k}]", labels[k],
                                          f"must be '{uid}'"))
        for i, rule in enumerate((spec.get("podFailurePolicy") or {}).get("rules") or ()):
            action = rule.get("action")
            if action not in ("FailJob", "FailIndex", "Ignore", "Count"):
                errs.append(v.not_supported(f"spec.podFailurePolicy.rules[{i}].action", action,
                                            ["Count", "FailIndex", "FailJob", "Ignore"]))
            if (rule.get("onExitCodes") is None) == (rule.get("onPodConditions") is None):
                errs.append(v.invalid(f"spec.podFailurePolicy.rules[{i}]", "specifying one of "
                                      "OnExitCodes and OnPodConditions is required", ""))
            oe = rule.get("onExitCodes")
            if oe is not None and oe.get("operator") not in ("In", "NotIn"):
                errs.append(v.not_supported(f"spec.podFailurePolicy.rules[{i}].onExitCodes.operator",
                                            oe.get("operator"), ["In", "NotIn"]))
        return errs

    def validate_spec_update(self, new, old):
        errs = _selector_immutable(new, old)
        ns, os_ = new.get("spec") or {}, old.get("spec") or {}
        for f in ("completionMode", "podFailurePolicy", "manualSelector"):
            if ns.get(f) != os_.get(f):
                errs.append(v.invalid(f"spec.{f}", ns.get(f), v.FIELD_IMMUTABLE_MESSAGE))
        if ns.get("completions") != os_.get("completions") and not (
                ns.get("completionMode") == "Indexed" and ns.get("completions") == ns.get("parallelism")):
            errs.append(v.invalid("spec.completions", ns.get("completions"), v.FIELD_IMMUTABLE_MESSAGE))
        # the template may change only while the Job is suspended and has not started
        if ns.get("template") != os_.get("template") and not (
                ns.get("suspend") and os_.get("suspend") and not (old.get("status") or {}).get("startTime")):
            errs.append(v.invalid("spec.template", ns.get("template"), v.FIELD_IMMUTABLE_MESSAGE))
        return errs


@strategy_for("batch", "cronjobs")
class CronJobStrategy(Strategy):
    def default(self, obj):
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        js = (spec.get("jobTemplate") or {}).get("spec")
        if isinstance(js, dict) and isinstance((js.get("template") or {}).get("spec"), dict):
            default_pod_spec(js["template"]["spec"])

    def validate_spec(self, obj):
        spec = obj.get("spec") or {}
        if not spec.get("schedule"):
            return [v.required("spec.schedule", "")]
        return []
