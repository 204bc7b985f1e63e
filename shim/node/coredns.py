"""Cluster DNS: CoreDNS built from its Go module, and the addon objects kubeadm makes for it.

* `build_coredns()` (run by `shim node install`): `go install github.com/coredns/coredns@<pin>`
  with CGO_ENABLED=0 into ~/.cache/shim/coredns-<pin>/bin, rebuilt only when the pin or the
  recipe changes (a stamp file records both), like the kubelet build. The pin is the
  CoreDNS version kubeadm v1.37 deploys (its constants.CoreDNSVersion), and the image is
  named as kubeadm names it, so a node looks like a kind node to `crictl images`.
* `ensure_addon()` (run by `shim node up`): ConfigMap kube-system/coredns (the Corefile),
  ServiceAccount coredns, ClusterRole/ClusterRoleBinding system:coredns, Deployment coredns
  and Service kube-dns on 10.96.0.10, with the content of kubeadm's CoreDNS addon manifests
  (cmd/kubeadm/app/phases/addons/dns). Each object is created when absent and never
  touched when present, so a user's edits (a changed Corefile, scaled replicas) survive
  later `node up`s.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import yaml

COREDNS_MODULE = "github.com/coredns/coredns"
COREDNS_VERSION = "v1.14.6"          # kubeadm v1.37's constants.CoreDNSVersion
COREDNS_IMAGE = f"registry.k8s.io/coredns/coredns:{COREDNS_VERSION}"
RECIPE = "1"
DNS_IP = "10.96.0.10"
DNS_DOMAIN = "cluster.local"
REPLICAS = 2                          # kubeadm's default
CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane"


def coredns_dir(version: str = COREDNS_VERSION) -> Path:
    from shim.node.install import cache_root
    return cache_root() / f"coredns-{version}"


def coredns_binary(version: str = COREDNS_VERSION) -> Path:
    return coredns_dir(version) / "bin" / "coredns"


def _ldflags(version: str) -> str:
    # upstream's Makefile stamps the git commit; there is none in a module download
    return f"-s -w -X {COREDNS_MODULE}/coremain.GitCommit={version}"


def build_stamp(version: str = COREDNS_VERSION) -> str:
    return hashlib.sha256(json.dumps([COREDNS_MODULE, version, RECIPE, _ldflags(version)]).encode()).hexdigest()


def coredns_current(version: str = COREDNS_VERSION) -> bool:
    stamp = coredns_dir(version) / "stamp"
    return (stamp.exists() and stamp.read_text().strip() == build_stamp(version)
            and coredns_binary(version).exists())


def build_coredns(version: str = COREDNS_VERSION, log=print) -> Path:
    """A static coredns binary from the Go module proxy, unless the cached one is current."""
    if coredns_current(version):
        return coredns_binary(version)
    root = coredns_dir(version)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / "bin.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    # `go install mod@version` builds the module's main package with its own go.mod/go.sum
    # (CoreDNS's go.mod has no replace directives, so no wrapper module is needed).
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-buildvcs=false", GOTOOLCHAIN="local",
               GOBIN=str(tmp))
    log_path = root / "build.log"
    log(f"building coredns {version} (log: {log_path})")
    cmd = ["go", "install", "-trimpath", "-ldflags", _ldflags(version), f"{COREDNS_MODULE}@{version}"]
    with open(log_path, "a") as lf:
        lf.write(f"$ {' '.join(cmd)}\n")
        lf.flush()
        subprocess.run(cmd, cwd=str(root), env=env, stdout=lf, stderr=subprocess.STDOUT, check=True)
    out = root / "bin"
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    (root / "stamp").write_text(build_stamp(version) + "\n")
    return coredns_binary(version)


# ---------------------------------------------------------------------------------------------
# the addon objects (kubeadm's manifests, as data)


COREFILE = f"""\
.:53 {{
    errors
    health {{
       lameduck 5s
    }}
    ready
    kubernetes {DNS_DOMAIN} in-addr.arpa ip6.arpa {{
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }}
    prometheus :9153
    forward . /etc/resolv.conf {{
       max_concurrent 1000
    }}
    cache 30 {{
       disable success {DNS_DOMAIN}
       disable denial {DNS_DOMAIN}
    }}
    loop
    reload
    loadbalance
}}
"""


def addon_objects(replicas: int = REPLICAS, image: str = COREDNS_IMAGE) -> list[tuple[str, dict]]:
    """(collection path, object) in the order kubeadm applies them."""
    ns = "kube-system"
    labels = {"k8s-app": "kube-dns"}
    configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "coredns", "namespace": ns}, "data": {"Corefile": COREFILE}}
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coredns", "namespace": ns}}
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "system:coredns"},
            "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                       "verbs": ["list", "watch"]},
                      {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                       "verbs": ["list", "watch"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "system:coredns"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "system:coredns"},
               "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": ns}]}
    container = {
        "name": "coredns", "image": image, "imagePullPolicy": "IfNotPresent",
        "resources": {"limits": {"memory": "170Mi"}, "requests": {"cpu": "100m", "memory": "70Mi"}},
        "args": ["-conf", "/etc/coredns/Corefile"],
        "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": True}],
        "ports": [{"containerPort": 53, "name": "dns", "protocol": "UDP"},
                  {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                  {"containerPort": 9153, "name": "metrics", "protocol": "TCP"},
                  {"containerPort": 8080, "name": "liveness-probe", "protocol": "TCP"},
                  {"containerPort": 8181, "name": "readiness-probe", "protocol": "TCP"}],
        "livenessProbe": {"httpGet": {"path": "/health", "port": "liveness-probe", "scheme": "HTTP"},
                          "initialDelaySeconds": 60, "timeoutSeconds": 5, "successThreshold": 1,
                          "failureThreshold": 5},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "readiness-probe", "scheme": "HTTP"}},
        "securityContext": {"allowPrivilegeEscalation": False,
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                            "readOnlyRootFilesystem": True},
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": ns, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "priorityClassName": "system-cluster-critical",
                    "serviceAccountName": "coredns",
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 100, "podAffinityTerm": {
                            "labelSelector": {"matchExpressions": [
                                {"key": "k8s-app", "operator": "In", "values": ["kube-dns"]}]},
                            "topologyKey": "kubernetes.io/hostname"}}]}},
                    "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                                    {"key": CONTROL_PLANE_TAINT, "effect": "NoSchedule"}],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "containers": [container],
                    "dnsPolicy": "Default",
                    "volumes": [{"name": "config-volume", "configMap": {
                        "name": "coredns", "items": [{"key": "Corefile", "path": "Corefile"}]}}],
                }},
        }}
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": ns,
                     "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                                "kubernetes.io/name": "CoreDNS"},
                     "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}},
        "spec": {"clusterIP": DNS_IP,
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                           {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}],
                 "selector": dict(labels)}}
    return [
        (f"/api/v1/namespaces/{ns}/configmaps", configmap),
        (f"/api/v1/namespaces/{ns}/serviceaccounts", sa),
        ("/apis/rbac.authorization.k8s.io/v1/clusterroles", role),
        ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding),
        (f"/apis/apps/v1/namespaces/{ns}/deployments", deployment),
        (f"/api/v1/namespaces/{ns}/services", service),
    ]


def ensure_addon(admin_kubeconfig: Path, *, replicas: int = REPLICAS, log=print) -> list[str]:
    """Create every addon object that does not exist yet; returns the ones created.

    A kind whose API group is not served (404 on its collection) is skipped, as RBAC
    objects would be on a server without rbac.authorization.k8s.io."""
    cfg = yaml.safe_load(Path(admin_kubeconfig).read_text())
    cluster, user = cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]
    created = []
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp, "c.pem"), Path(tmp, "k.pem")
        cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key.write_bytes(base64.b64decode(user["client-key-data"]))
        ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        ctx.load_cert_chain(cert, key)

        def call(method: str, path: str, body: dict | None = None) -> tuple[int, str]:
            req = urllib.request.Request(cluster["server"] + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Content-Type": "application/json",
                                                  "Accept": "application/json"})
            try:
                with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
                    r.read()
                    return r.status, ""
            except urllib.error.HTTPError as e:
                try:
                    message = json.loads(e.read()).get("message", "")
                except ValueError:
                    message = ""
                return e.code, message

        for collection, obj in addon_objects(replicas):
            name = obj["metadata"]["name"]
            status, message = call("GET", f"{collection}/{name}")
            if status == 200:
                continue
            if status != 404:
                raise RuntimeError(f"GET {collection}/{name}: HTTP {status} {message}")
            status, message = call("POST", collection, obj)
            if status == 201:
                created.append(f"{obj['kind']} {name}")
            elif status == 409:
                continue       # another `node up` made it meanwhile
            elif status == 404 and obj["apiVersion"].startswith("rbac."):
                continue       # RBAC not served: nothing to bind
            else:
                raise RuntimeError(f"POST {collection} ({obj['kind']} {name}): HTTP {status} {message}")
    if created:
        log(f"cluster DNS addon: created {', '.join(created)}")
    return created
