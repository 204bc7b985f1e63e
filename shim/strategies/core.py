"""Strategies of core/v1 resources: what each does beyond the generic behaviour."""
from __future__ import annotations

import base64
import ipaddress

from shim.api import validation as v
from shim.api.strategy import Strategy, strategy_for

# -- namespaces ------------------------------------------------------------------------------


@strategy_for("", "namespaces")
class NamespaceStrategy(Strategy):
    name_validator = staticmethod(v.name_is_dns_label)
    selectable_fields = ("status.phase",)

    def initial_status(self, obj):
        return {"phase": "Active"}

    def default(self, obj):
        spec = obj.setdefault("spec", {})
        spec.setdefault("finalizers", ["kubernetes"])
        labels = obj["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]

    def prepare_for_update(self, new, old):
        super().prepare_for_update(new, old)
        new["spec"] = old.get("spec", {})  # spec.finalizers change only through /finalize

    def deletion_blocked(self, obj):
        return bool((obj.get("spec") or {}).get("finalizers"))

    def mark_deleting(self, obj):
        obj["status"] = dict(obj.get("status") or {}, phase="Terminating")


# -- pods ---------------------------------------------------------------------------------------

_POD_TERMINAL = ("Succeeded", "Failed")


def _default_container(c: dict) -> None:
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    image = c.get("image") or ""
    if "imagePullPolicy" not in c:
        last = image.rsplit("/", 1)[-1]
        tagged = ":" in last and not last.endswith(":latest")
        c["imagePullPolicy"] = "IfNotPresent" if (tagged or "@" in image) else "Always"
    c.setdefault("resources", {})
    for p in c.get("ports") or []:
        p.setdefault("protocol", "TCP")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        pr = c.get(probe)
        if isinstance(pr, dict):
            pr.setdefault("timeoutSeconds", 1)
            pr.setdefault("periodSeconds", 10)
            pr.setdefault("successThreshold", 1)
            pr.setdefault("failureThreshold", 3)
            http = pr.get("httpGet")
            if isinstance(http, dict):
                http.setdefault("path", "/")
                http.setdefault("scheme", "HTTP")
    for e in c.get("env") or []:
        vf = e.get("valueFrom") or {}
        fr = vf.get("fieldRef")
        if isinstance(fr, dict):
            fr.setdefault("apiVersion", "v1")


def default_pod_spec(spec: dict) -> None:
    """The defaults upstream's defaulting and admission give a pod spec."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    for c in spec.get("containers") or []:
        if isinstance(c, dict):
            _default_container(c)
    for c in spec.get("initContainers") or []:
        if isinstance(c, dict):
            _default_container(c)
    for vol in spec.get("volumes") or []:
        if not isinstance(vol, dict):
            continue
        for kind in ("secret", "configMap"):
            src = vol.get(kind)
            if isinstance(src, dict):
                src.setdefault("defaultMode", 420)
        if isinstance(vol.get("projected"), dict):
            vol["projected"].setdefault("defaultMode", 420)
        if isinstance(vol.get("downwardAPI"), dict):
            vol["downwardAPI"].setdefault("defaultMode", 420)
        if isinstance(vol.get("emptyDir"), dict) is False and len(vol) == 1:
            vol["emptyDir"] = {}


def validate_pod_spec(spec, path: str) -> list:
    errs = []
    if not isinstance(spec, dict):
        return [v.required(path, "")]
    containers = spec.get("containers")
    if not containers:
        errs.append(v.required(f"{path}.containers", ""))
    seen = set()
    for kind in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(kind) or []):
            p = f"{path}.{kind}[{i}]"
            if not isinstance(c, dict):
                errs.append(v.invalid(p, c, "must be an object"))
                continue
            name = c.get("name")
            if not name:
                errs.append(v.required(f"{p}.name", ""))
            else:
                for msg in v.is_dns1123_label(name):
                    errs.append(v.invalid(f"{p}.name", name, msg))
                if name in seen:
                    errs.append(v.duplicate(f"{p}.name", name))
                seen.add(name)
            if not c.get("image"):
                errs.append(v.required(f"{p}.image", ""))
    rp = spec.get("restartPolicy")
    if rp not in ("Always", "OnFailure", "Never"):
        errs.append(v.not_supported(f"{path}.restartPolicy", rp, ["Always", "OnFailure", "Never"]))
    return errs


def pod_qos_class(spec: dict) -> str:
    requests = limits = False
    guaranteed = True
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        r = c.get("resources") or {}
        req, lim = r.get("requests") or {}, r.get("limits") or {}
        if req or lim:
            requests = requests or bool(req)
            limits = limits or bool(lim)
        for res in ("cpu", "memory"):
            if res not in lim or (res in req and req[res] != lim[res]):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


# Fields of a pod spec that may change after creation (upstream ValidatePodUpdate).
_POD_MUTABLE = ("containers", "initContainers", "activeDeadlineSeconds", "tolerations",
                "terminationGracePeriodSeconds", "schedulingGates")


@strategy_for("", "pods")
class PodStrategy(Strategy):
    selectable_fields = ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                         "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                         "status.podIP", "status.nominatedNodeName")

    def initial_status(self, obj):
        return {"phase": "Pending", "qosClass": pod_qos_class(obj.get("spec") or {})}

    def default(self, obj):
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            default_pod_spec(spec)
            spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
            spec.setdefault("serviceAccount", spec["serviceAccountName"])
            spec.setdefault("priority", 0)
            if not spec.get("priorityClassName"):  # Priority admission without a default class
                spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
            tol = spec.setdefault("tolerations", [])
            for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
                if not any(t.get("key") == key and t.get("effect") in ("NoExecute", None) for t in tol):
                    tol.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": 300})

    def validate_spec(self, obj):
        return validate_pod_spec(obj.get("spec"), "spec")

    def validate_spec_update(self, new, old):
        ns, os_ = dict(new.get("spec") or {}), dict(old.get("spec") or {})
        if os_.get("nodeName") and ns.get("nodeName") != os_.get("nodeName"):
            return [v.invalid("spec.nodeName", ns.get("nodeName"), v.FIELD_IMMUTABLE_MESSAGE)]
        errs = []
        # upstream ValidatePodUpdate: containers keep their count and change only the image
        for key in ("containers", "initContainers"):
            nc, oc = ns.get(key) or [], os_.get(key) or []
            if len(nc) != len(oc):
                return [v.forbidden(f"spec.{key}", "pod updates may not add or remove containers")]
            for i, c in enumerate(nc):
                image = c.get("image") if isinstance(c, dict) else None
                if not image:
                    errs.append(v.required(f"spec.{key}[{i}].image"))
                elif image.strip() != image:
                    errs.append(v.invalid(f"spec.{key}[{i}].image", image,
                                          "must not have leading or trailing whitespace"))
            ns[key] = [dict(c, image=o.get("image")) if isinstance(c, dict) and isinstance(o, dict) else c
                       for c, o in zip(nc, oc)]
            os_[key] = list(oc)
        new_ads, old_ads = ns.get("activeDeadlineSeconds"), os_.get("activeDeadlineSeconds")
        if new_ads is not None:
            if not isinstance(new_ads, int) or new_ads < 0 or new_ads > 2**31 - 1:
                return errs + [v.invalid("spec.activeDeadlineSeconds", new_ads,
                                         f"must be between 0 and {2**31 - 1}, inclusive")]
            if old_ads is not None and old_ads < new_ads:
                return errs + [v.invalid("spec.activeDeadlineSeconds", new_ads,
                                         "must be less than or equal to previous value")]
        elif old_ads is not None:
            errs.append(v.invalid("spec.activeDeadlineSeconds", None,
                                  "must not update from a positive integer to nil value"))
        # tolerations: only additions (tolerationSeconds of an existing one may change)
        new_tol = [dict(t, tolerationSeconds=None) for t in ns.get("tolerations") or [] if isinstance(t, dict)]
        for t in os_.get("tolerations") or []:
            if isinstance(t, dict) and dict(t, tolerationSeconds=None) not in new_tol:
                errs.append(v.forbidden("spec.tolerations",
                                        "existing toleration can not be modified except its tolerationSeconds"))
                break
        if errs:
            return errs
        for k in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds", "schedulingGates"):
            ns.pop(k, None)
            os_.pop(k, None)
        if not os_.get("nodeName"):
            ns.pop("nodeName", None)
            os_.pop("nodeName", None)
        if ns != os_:
            return [v.forbidden("spec", "pod updates may not change fields other than `spec.containers[*].image`,"
                                "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
                                "`spec.tolerations` (only additions to existing tolerations),"
                                "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                                "previously negative)")]
        return []

    def graceful_delete_period(self, obj, requested):
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if requested is not None and requested <= 0:
            return 0
        if not spec.get("nodeName") or status.get("phase") in _POD_TERMINAL:
            return 0
        if requested is not None:
            return requested
        grace = spec.get("terminationGracePeriodSeconds", 30)
        return grace if grace and grace > 0 else 1


# -- services ----------------------------------------------------------------------------------


@strategy_for("", "services")
class ServiceStrategy(Strategy):
    name_validator = staticmethod(v.name_is_dns1035_label)
    selectable_fields = ("spec.clusterIP", "spec.type")
    allow_create_on_update = True

    def initial_status(self, obj):
        return {"loadBalancer": {}}

    def default(self, obj):
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for p in spec.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
                p.setdefault("targetPort", p.get("port"))
        if spec["type"] != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("ipFamilies", ["IPv4"])
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")

    def validate_spec(self, obj):
        errs = []
        spec = obj.get("spec") or {}
        t = spec.get("type")
        if t not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
            errs.append(v.not_supported("spec.type", t, ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]))
        if t != "ExternalName" and not spec.get("ports") and spec.get("clusterIP") != "None":
            errs.append(v.required("spec.ports", ""))
        names = set()
        for i, p in enumerate(spec.get("ports") or []):
            port = p.get("port")
            if not isinstance(port, int) or not 1 <= port <= 65535:
                errs.append(v.invalid(f"spec.ports[{i}].port", port, "must be between 1 and 65535, inclusive"))
            if len(spec.get("ports")) > 1 and not p.get("name"):
                errs.append(v.required(f"spec.ports[{i}].name", ""))
            if p.get("name") in names:
                errs.append(v.duplicate(f"spec.ports[{i}].name", p.get("name")))
            names.add(p.get("name"))
        ip = spec.get("clusterIP")
        if ip and ip != "None":
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                errs.append(v.invalid("spec.clusterIPs[0]", ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
        return errs

    def validate_spec_update(self, new, old):
        old_ip = (old.get("spec") or {}).get("clusterIP")
        new_ip = (new.get("spec") or {}).get("clusterIP")
        if old_ip and new_ip != old_ip and (new.get("spec") or {}).get("type") != "ExternalName":
            return [v.invalid("spec.clusterIP", new_ip, v.FIELD_IMMUTABLE_MESSAGE)]
        return []

    def prepare_for_update(self, new, old):
        super().prepare_for_update(new, old)
        ospec, nspec = old.get("spec") or {}, new.setdefault("spec", {})
        for k in ("clusterIP", "clusterIPs"):
            if k in ospec and k not in nspec:
                nspec[k] = ospec[k]
        # keep allocated node ports when the client omits them
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in ospec.get("ports") or []}
        for p in nspec.get("ports") or []:
            op = old_ports.get((p.get("port"), p.get("protocol", "TCP")))
            if op and "nodePort" in op and "nodePort" not in p and nspec.get("type") in ("NodePort", "LoadBalancer"):
                p["nodePort"] = op["nodePort"]
        _drop_type_dependent_fields(new, old)


def _drop_type_dependent_fields(new: dict, old: dict) -> None:
    """Upstream's service dropTypeDependentFields: on a type change, clear what the old type
    needed (and the server may have filled in) when the client left it as it was."""
    ospec, nspec = old.get("spec") or {}, new.get("spec") or {}
    ot, nt = ospec.get("type", "ClusterIP"), nspec.get("type", "ClusterIP")
    if ot != "ExternalName" and nt == "ExternalName":
        if ospec.get("clusterIP") == nspec.get("clusterIP") and \
                (ospec.get("clusterIPs") or []) == (nspec.get("clusterIPs") or []):
            nspec.pop("clusterIP", None)
            nspec.pop("clusterIPs", None)
        for k in ("ipFamilies", "ipFamilyPolicy"):
            if ospec.get(k) == nspec.get(k):
                nspec.pop(k, None)

    def node_ports(spec):
        return {p.get("nodePort") for p in spec.get("ports") or [] if isinstance(p, dict) and p.get("nodePort")}
    needs_np = ("NodePort", "LoadBalancer")
    if ot in needs_np and nt not in needs_np and node_ports(nspec) <= node_ports(ospec):
        for p in nspec.get("ports") or []:
            if isinstance(p, dict):
                p.pop("nodePort", None)

    def needs_hc(spec):
        return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"
    if needs_hc(ospec) and not needs_hc(nspec) and \
            ospec.get("healthCheckNodePort") == nspec.get("healthCheckNodePort"):
        nspec.pop("healthCheckNodePort", None)
    if ot == "LoadBalancer" and nt != "LoadBalancer":
        for k in ("allocateLoadBalancerNodePorts", "loadBalancerClass"):
            if ospec.get(k) == nspec.get(k):
                nspec.pop(k, None)

    def externally_accessible(spec, t):
        return t in needs_np or (t == "ClusterIP" and bool(spec.get("externalIPs")))
    if externally_accessible(ospec, ot) and not externally_accessible(nspec, nt) and \
            ospec.get("externalTrafficPolicy") == nspec.get("externalTrafficPolicy"):
        nspec.pop("externalTrafficPolicy", None)
    if nt != "LoadBalancer" and isinstance(new.get("status"), dict):
        new["status"]["loadBalancer"] = {}


# -- nodes --------------------------------------------------------------------------------------


@strategy_for("", "nodes")
class NodeStrategy(Strategy):
    selectable_fields = ("spec.unschedulable",)

    def field_set(self, obj):
        f = super().field_set(obj)
        f["spec.unschedulable"] = "true" if (obj.get("spec") or {}).get("unschedulable") else "false"
        return f

    def prepare_for_create(self, obj):
        # kubelets register with their initial status; upstream keeps it on create
        pass

    def default(self, obj):
        # v1 <-> internal conversion keeps spec.podCIDR and spec.podCIDRs in step:
        # podCIDR wins when they differ, and podCIDRs[0] fills an empty podCIDR
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        single, multi = spec.get("podCIDR") or "", spec.get("podCIDRs") or []
        if single and (not multi or multi[0] != single):
            spec["podCIDRs"] = [single]
        elif multi and not single:
            spec["podCIDR"] = multi[0]


# -- secrets, configmaps, endpoints, misc ----------------------------------------------------------


@strategy_for("", "secrets")
class SecretStrategy(Strategy):
    selectable_fields = ("type",)

    def default(self, obj):
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.setdefault("data", {})
            for k, val in string_data.items():
                data[k] = base64.b64encode(str(val).encode()).decode()

    def validate_spec(self, obj):
        errs = []
        for k, val in (obj.get("data") or {}).items():
            try:
                base64.b64decode(val, validate=True)
            except Exception:
                errs.append(v.invalid(f"data[{k}]", "<secret contents redacted>", "must be base64"))
        return errs

    def validate_spec_update(self, new, old):
        if old.get("immutable") and (new.get("data") != old.get("data")):
            return [v.forbidden("data", "field is immutable when `immutable` is set")]
        if old.get("type") != new.get("type"):
            return [v.invalid("type", new.get("type"), v.FIELD_IMMUTABLE_MESSAGE)]
        return []


@strategy_for("", "configmaps")
class ConfigMapStrategy(Strategy):
    def validate_spec_update(self, new, old):
        if old.get("immutable") and (new.get("data") != old.get("data") or
                                     new.get("binaryData") != old.get("binaryData")):
            return [v.forbidden("data", "field is immutable when `immutable` is set")]
        return []


@strategy_for("", "limitranges")
class LimitRangeStrategy(Strategy):
    allow_create_on_update = True


@strategy_for("", "replicationcontrollers")
class ReplicationControllerStrategy(Strategy):
    selectable_fields = ("status.replicas",)
    gc_policy = "OrphanDependents"  # v1 keeps its historical default

    def initial_status(self, obj):
        return {"replicas": 0}

    def default(self, obj):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        tmpl = spec.get("template") or {}
        if not spec.get("selector") and (tmpl.get("metadata") or {}).get("labels"):
            spec["selector"] = dict(tmpl["metadata"]["labels"])
        if not (obj["metadata"].get("labels")) and (tmpl.get("metadata") or {}).get("labels"):
            obj["metadata"]["labels"] = dict(tmpl["metadata"]["labels"])
        if isinstance(tmpl.get("spec"), dict):
            default_pod_spec(tmpl["spec"])


# -- service accounts --------------------------------------------------------------------------------


@strategy_for("", "serviceaccounts")
class ServiceAccountStrategy(Strategy):
    async def handle_subresource(self, api, request, info, rs):
        if info.subresource == "token" and info.verb == "create":
            return await _token_request(api, request, info, rs)
        from shim.api import errors
        raise errors.method_not_allowed()


async def _token_request(api, request, info, rs):
    """POST serviceaccounts/<name>/token: a bound service account token (TokenRequest)."""
    from shim.api import errors
    from shim.api import server as srv
    from shim.api.objects import now_rfc3339
    import datetime as _dt
    body = await srv.read_body(request)
    if not isinstance(body, dict):
        raise errors.bad_request("the body must be an authentication.k8s.io/v1 TokenRequest")
    ns, name = info.namespace, info.name
    sa = await rs.get(ns, name)
    spec = dict(body.get("spec") or {})
    exp = spec.get("expirationSeconds")
    if exp is None:
        exp = 3600
    errs = []
    if not isinstance(exp, int) or exp < 600:
        errs.append(v.invalid("spec.expirationSeconds", exp, "may not specify a duration less than 10 minutes"))
    elif exp > 2 ** 32:
        errs.append(v.invalid("spec.expirationSeconds", exp, "may not specify a duration larger than 2^32 seconds"))
    if errs:
        raise errors.invalid("TokenRequest", "authentication.k8s.io", name, errs)
    pod = node = None
    ref = spec.get("boundObjectRef")
    if ref:
        kind = ref.get("kind")
        plural = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}.get(kind)
        if plural is None:
            raise errors.invalid("TokenRequest", "authentication.k8s.io", name, [v.not_supported(
                "spec.boundObjectRef.kind", kind, ["Pod", "Secret", "Node"])])
        target = await api.core(plural).get(ns if plural != "nodes" else "", ref.get("name", ""))
        if ref.get("uid") and ref["uid"] != target["metadata"].get("uid"):
            raise errors.conflict(plural, "", ref.get("name", ""),
                                  f"the UID in the bound object reference ({ref['uid']}) does not match "
                                  f"the UID in record. The object might have been deleted and then recreated")
        if plural == "pods":
            pod = target
            node_name = (pod.get("spec") or {}).get("nodeName")
            if node_name:
                node = await api.core("nodes").get_or_none("", node_name)
        elif plural == "nodes":
            node = target
        spec["boundObjectRef"] = dict(ref, uid=target["metadata"].get("uid"))
    issuer = api.token_issuer
    audiences = spec.get("audiences") or list(issuer.audiences)
    token, exp_at = issuer.issue(ns, sa, audiences=audiences, expiration_seconds=exp, pod=pod, node=node)
    spec["audiences"] = audiences
    spec["expirationSeconds"] = exp
    out = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
           "metadata": {"name": name, "namespace": ns, "creationTimestamp": now_rfc3339()},
           "spec": spec,
           "status": {"token": token, "expirationTimestamp": _dt.datetime.fromtimestamp(
               exp_at, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}}
    return srv.json_response(out, 201)
