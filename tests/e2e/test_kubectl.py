"""End to end: the real kubectl binary against a real `shim up`.

Every test drives kubectl exactly as a user would and checks two things: what kubectl
itself prints (its messages and exit codes come from the server's answers) and what the
server stored (read back with kubectl -o json or the official Python client).
"""
from __future__ import annotations

import base64
import ipaddress
import json
import os
import subprocess
import time

import pytest
import yaml
from kubernetes import client

from .linereader import LineReader


pytestmark = pytest.mark.timeout(120)


# -- helpers ---------------------------------------------------------------------------------

def create(kubectl, manifest: str, *args, check: bool = True) -> subprocess.CompletedProcess:
    return kubectl.run("create", "-f", "-", *args, input=manifest, check=check)


def get_json(kubectl, *args) -> dict:
    return json.loads(kubectl("get", *args, "-o", "json"))


SYSTEM_CONFIGMAP = "kube-root-ca.crt"  # put in every namespace by the control plane


def names(output: str) -> set[str]:
    """Names printed one per line, without the per-namespace system ConfigMap."""
    return {line.strip() for line in output.splitlines()
            if line.strip() and not line.strip().endswith(SYSTEM_CONFIGMAP)}


def table(output: str) -> list[dict]:
    """kubectl's column output -> rows keyed by header (columns are aligned on the header)."""
    lines = [ln for ln in output.splitlines() if ln.strip()]
    header = lines[0]
    starts = [i for i, ch in enumerate(header) if ch != " " and (i == 0 or header[i - 1] == " ")]
    cols = [header[s:e].strip() for s, e in zip(starts, starts[1:] + [None])]
    rows = []
    for ln in lines[1:]:
        cells = [ln[s:e].strip() if s < len(ln) else "" for s, e in zip(starts, starts[1:] + [None])]
        rows.append(dict(zip(cols, cells)))
    return rows


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(3).hex()}"


def delete_namespace_quietly(api_client, name: str) -> None:
    try:
        client.CoreV1Api(api_client).delete_namespace(name)
    except client.exceptions.ApiException:
        pass


MULTI_DOC = """\
apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: {ns}
  labels: {{app: web, tier: frontend}}
data:
  mode: fast
  retries: "3"
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: {ns}
stringData:
  password: s3cr3t!
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: {ns}
spec:
  selector: {{app: web}}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
spec:
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Pod
metadata:
  name: solo
  namespace: {ns}
  labels: {{app: web}}
spec:
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
"""


# -- discovery ---------------------------------------------------------------------------------

def test_version_reports_server_1_37(kubectl):
    info = json.loads(kubectl("version", "-o", "json"))
    server = info["serverVersion"]
    assert server["major"] == "1" and server["minor"] == "37"
    assert server["gitVersion"].startswith("v1.37.")
    assert server["platform"] == "linux/amd64"
    text = kubectl("version")
    assert f"Server Version: {server['gitVersion']}" in text
    # kubectl warns about skew only when the server is too far from the client
    assert "WARNING" not in kubectl.run("version").stderr


def test_api_resources_lists_core_and_apps(kubectl):
    rows = {r["NAME"]: r for r in table(kubectl("api-resources"))}
    expected = {
        "pods": ("po", "v1", "true", "Pod"),
        "namespaces": ("ns", "v1", "false", "Namespace"),
        "configmaps": ("cm", "v1", "true", "ConfigMap"),
        "services": ("svc", "v1", "true", "Service"),
        "nodes": ("no", "v1", "false", "Node"),
        "secrets": ("", "v1", "true", "Secret"),
        "deployments": ("deploy", "apps/v1", "true", "Deployment"),
        "replicasets": ("rs", "apps/v1", "true", "ReplicaSet"),
        "jobs": ("", "batch/v1", "true", "Job"),
    }
    for name, (short, gv, namespaced, kind) in expected.items():
        row = rows[name]
        assert (row["SHORTNAMES"], row["APIVERSION"], row["NAMESPACED"], row["KIND"]) == \
            (short, gv, namespaced, kind), row

    wide = {r["NAME"]: r for r in table(kubectl("api-resources", "-o", "wide"))}
    assert set(wide["pods"]["VERBS"].split(",")) == \
        {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
    assert "all" in wide["deployments"]["CATEGORIES"].split(",")

    apps = names(kubectl("api-resources", "--api-group=apps", "-o", "name"))
    assert {"deployments.apps", "replicasets.apps", "statefulsets.apps", "daemonsets.apps"} <= apps
    assert "pods" not in apps
    cluster = names(kubectl("api-resources", "--namespaced=false", "-o", "name"))
    assert {"namespaces", "nodes"} <= cluster and "pods" not in cluster


def test_api_versions_match_discovery(kubectl, api_client):
    printed = kubectl("api-versions").split()
    assert printed == sorted(printed)
    assert {"v1", "apps/v1", "batch/v1", "rbac.authorization.k8s.io/v1"} <= set(printed)
    groups = client.ApisApi(api_client).get_api_versions().groups
    expected = {"v1"} | {v.group_version for g in groups for v in g.versions}
    assert set(printed) == expected


# -- create ------------------------------------------------------------------------------------

def test_create_namespace(kubectl, api_client):
    name = unique("created")
    try:
        out = kubectl("create", "namespace", name)
        assert out.strip() == f"namespace/{name} created"
        ns = get_json(kubectl, "namespace", name)
        assert ns["kind"] == "Namespace" and ns["metadata"]["name"] == name
        assert ns["status"] == {"phase": "Active"}
        assert ns["spec"] == {"finalizers": ["kubernetes"]}
        assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": name}
        assert ns["metadata"]["uid"] and ns["metadata"]["creationTimestamp"]
        listed = names(kubectl("get", "namespaces", "-o", "name"))
        assert f"namespace/{name}" in listed and "namespace/default" in listed
    finally:
        delete_namespace_quietly(api_client, name)


def test_create_generators_send_protobuf(kubectl, namespace):
    """`kubectl create <kind>` uses typed clients, which send protobuf bodies."""
    ns = ["-n", namespace]
    assert kubectl("create", "configmap", "gen-cm", "--from-literal=a=1", "--from-literal=empty=",
                   *ns).strip() == "configmap/gen-cm created"
    assert kubectl("create", "secret", "generic", "gen-secret", "--from-literal=token=abc",
                   *ns).strip() == "secret/gen-secret created"
    assert kubectl("create", "deployment", "gen-deploy", "--image=nginx:1.27", "--replicas=0",
                   "--port=8080", *ns).strip() == "deployment.apps/gen-deploy created"
    assert kubectl("create", "service", "clusterip", "gen-svc", "--tcp=80:8080",
                   *ns).strip() == "service/gen-svc created"

    cm = get_json(kubectl, "configmap", "gen-cm", *ns)
    assert cm["data"] == {"a": "1", "empty": ""}
    secret = get_json(kubectl, "secret", "gen-secret", *ns)
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["token"]) == b"abc"
    deploy = get_json(kubectl, "deployment", "gen-deploy", *ns)
    assert deploy["spec"]["replicas"] == 0  # an explicit zero survives (a pointer in Go)
    assert deploy["spec"]["selector"] == {"matchLabels": {"app": "gen-deploy"}}
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.27"
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert "creationTimestamp" not in deploy["spec"]["template"]["metadata"]
    svc = get_json(kubectl, "service", "gen-svc", *ns)
    assert svc["spec"]["ports"] == [{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}]
    assert ipaddress.ip_address(svc["spec"]["clusterIP"]) in ipaddress.ip_network("10.96.0.0/12")


def test_create_multi_document_and_defaults(kubectl, api_client):
    ns = unique("multidoc")
    try:
        out = create(kubectl, MULTI_DOC.format(ns=ns)).stdout
        assert out.splitlines() == [
            f"namespace/{ns} created", "configmap/settings created", "secret/creds created",
            "service/web created", "deployment.apps/web created", "pod/solo created"]

        namespace = get_json(kubectl, "namespace", ns)
        assert namespace["status"]["phase"] == "Active"

        cm = get_json(kubectl, "configmap", "settings", "-n", ns)
        assert cm["data"] == {"mode": "fast", "retries": "3"}
        assert cm["metadata"]["labels"] == {"app": "web", "tier": "frontend"}
        assert cm["metadata"]["namespace"] == ns

        secret = get_json(kubectl, "secret", "creds", "-n", ns)
        assert "stringData" not in secret
        assert secret["data"] == {"password": base64.b64encode(b"s3cr3t!").decode()}
        assert secret["type"] == "Opaque"

        svc = get_json(kubectl, "service", "web", "-n", ns)
        spec = svc["spec"]
        assert ipaddress.ip_address(spec["clusterIP"]) in ipaddress.ip_network("10.96.0.0/12")
        assert spec["clusterIPs"] == [spec["clusterIP"]]
        assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
        assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 8080}]
        assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
        assert spec["internalTrafficPolicy"] == "Cluster"
        assert svc["status"] == {"loadBalancer": {}}
        # the official client reads the same object back
        typed = client.CoreV1Api(api_client).read_namespaced_service("web", ns)
        assert typed.spec.cluster_ip == spec["clusterIP"]
        assert typed.metadata.resource_version == svc["metadata"]["resourceVersion"]

        deploy = get_json(kubectl, "deployment", "web", "-n", ns)
        dspec = deploy["spec"]
        assert dspec["replicas"] == 1
        assert dspec["strategy"] == {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
        assert dspec["revisionHistoryLimit"] == 10
        assert dspec["progressDeadlineSeconds"] == 600
        assert deploy["metadata"]["generation"] == 1
        assert set(deploy.get("status") or {}) <= {  # only what the deployment controller writes
            "observedGeneration", "replicas", "updatedReplicas", "unavailableReplicas", "terminatingReplicas",
            "conditions"}
        pod_spec = dspec["template"]["spec"]
        assert pod_spec["restartPolicy"] == "Always" and pod_spec["dnsPolicy"] == "ClusterFirst"
        assert pod_spec["terminationGracePeriodSeconds"] == 30
        assert pod_spec["schedulerName"] == "default-scheduler"
        container = pod_spec["containers"][0]
        assert container["imagePullPolicy"] == "IfNotPresent"  # a tagged image
        assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
        assert container["terminationMessagePath"] == "/dev/termination-log"
        assert container["terminationMessagePolicy"] == "File"

        pod = get_json(kubectl, "pod", "solo", "-n", ns)
        assert pod["status"]["phase"] == "Pending"
        assert pod["status"]["qosClass"] == "BestEffort"
        assert pod["spec"]["containers"][0]["imagePullPolicy"] == "Always"  # no tag means latest
        assert pod["spec"]["serviceAccountName"] == "default"
        assert pod["spec"]["priority"] == 0
        assert pod["spec"]["preemptionPolicy"] == "PreemptLowerPriority"
        assert {t["key"] for t in pod["spec"]["tolerations"]} == \
            {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}

        # every object got identity from the server
        uids = set()
        for obj in (namespace, cm, secret, svc, deploy, pod):
            m = obj["metadata"]
            assert m["uid"] and m["resourceVersion"].isdigit() and m["creationTimestamp"].endswith("Z")
            uids.add(m["uid"])
        assert len(uids) == 6
    finally:
        delete_namespace_quietly(api_client, ns)


# -- get -------------------------------------------------------------------------------------------

def test_get_output_formats(kubectl, namespace):
    create(kubectl, f"""\
apiVersion: v1
kind: ConfigMap
metadata: {{name: alpha, namespace: {namespace}, labels: {{color: red}}}}
data: {{greeting: hello, count: "1"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: beta, namespace: {namespace}}}
data: {{greeting: bye}}
""")
    as_json = get_json(kubectl, "configmap", "alpha", "-n", namespace)
    as_yaml = yaml.safe_load(kubectl("get", "configmap", "alpha", "-n", namespace, "-o", "yaml"))
    assert as_yaml == as_json
    assert as_json["apiVersion"] == "v1" and as_json["kind"] == "ConfigMap"
    assert as_json["data"] == {"greeting": "hello", "count": "1"}
    assert "managedFields" not in as_json["metadata"]  # kubectl hides them by default

    lst = get_json(kubectl, "configmaps", "-n", namespace)
    assert lst["kind"] == "List"
    assert sorted(i["metadata"]["name"] for i in lst["items"]) == ["alpha", "beta", SYSTEM_CONFIGMAP]
    assert all(i["kind"] == "ConfigMap" and i["apiVersion"] == "v1" for i in lst["items"])

    assert kubectl("get", "configmap", "alpha", "-n", namespace, "-o", "name").strip() == "configmap/alpha"
    assert names(kubectl("get", "cm", "-n", namespace, "-o", "name")) == {"configmap/alpha", "configmap/beta"}
    assert kubectl("get", "cm", "alpha", "-n", namespace, "-o", "jsonpath={.data.greeting}") == "hello"
    out = kubectl("get", "cm", "-n", namespace, "-o",
                  'jsonpath={range .items[*]}{.metadata.name}={.data.greeting}{"\\n"}{end}')
    assert [ln for ln in out.splitlines() if not ln.startswith(SYSTEM_CONFIGMAP)] == ["alpha=hello", "beta=bye"]
    out = kubectl("get", "cm", "-n", namespace, "-o",
                  "custom-columns=NAME:.metadata.name,COLOR:.metadata.labels.color,RV:.metadata.resourceVersion")
    rows = {r["NAME"]: r for r in table(out)}
    assert rows["alpha"]["COLOR"] == "red" and rows["beta"]["COLOR"] == "<none>"
    assert rows["alpha"]["RV"] == as_json["metadata"]["resourceVersion"]

    # the default (server-side Table) output
    rows = table(kubectl("get", "cm", "-n", namespace))
    assert [r["NAME"] for r in rows if r["NAME"] != SYSTEM_CONFIGMAP] == ["alpha", "beta"]
    assert all(r["AGE"] for r in rows)
    wide = table(kubectl("get", "cm", "alpha", "-n", namespace, "--show-labels"))
    assert wide[0]["LABELS"] == "color=red"

    empty = kubectl.run("get", "pods", "-n", namespace)
    assert empty.returncode == 0 and empty.stdout == ""
    assert empty.stderr.strip() == f"No resources found in {namespace} namespace."


def test_get_with_label_selectors(kubectl, namespace):
    docs = []
    for name, labels in [("prod-web", {"env": "prod", "tier": "web"}),
                         ("dev-web", {"env": "dev", "tier": "web"}),
                         ("qa-db", {"env": "qa", "tier": "db"}),
                         ("plain", {})]:
        docs.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": name, "namespace": namespace, "labels": labels}})
    create(kubectl, yaml.safe_dump_all(docs))

    def sel(expr):
        out = kubectl("get", "configmaps", "-n", namespace, "-l", expr, "-o", "name")
        return {n.split("/", 1)[1] for n in names(out)}

    assert sel("env=prod") == {"prod-web"}
    assert sel("env==dev") == {"dev-web"}
    assert sel("env!=prod") == {"dev-web", "qa-db", "plain"}
    assert sel("env in (prod,qa)") == {"prod-web", "qa-db"}
    assert sel("env notin (prod,qa)") == {"dev-web", "plain"}
    assert sel("env") == {"prod-web", "dev-web", "qa-db"}
    assert sel("!env") == {"plain"}
    assert sel("tier=web,env!=dev") == {"prod-web"}
    assert sel("env=nope") == set()

    bad = kubectl.run("get", "configmaps", "-n", namespace, "-l", "env in prod", check=False)
    assert bad.returncode != 0
    assert "unable to parse requirement" in bad.stderr


def test_get_with_field_selectors(kubectl, namespace):
    create(kubectl, f"""\
apiVersion: v1
kind: ConfigMap
metadata: {{name: one, namespace: {namespace}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: two, namespace: {namespace}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: waiting, namespace: {namespace}}}
spec:
  containers: [{{name: c, image: busybox}}]
""")
    out = kubectl("get", "cm", "-n", namespace, "--field-selector", "metadata.name=two", "-o", "name")
    assert names(out) == {"configmap/two"}
    out = kubectl("get", "cm", "-n", namespace, "--field-selector", "metadata.name!=two", "-o", "name")
    assert names(out) == {"configmap/one"}
    out = kubectl("get", "cm", "-A", "--field-selector", f"metadata.namespace={namespace}", "-o", "name")
    assert names(out) == {"configmap/one", "configmap/two"}

    out = kubectl("get", "pods", "-n", namespace, "--field-selector", "status.phase=Pending", "-o", "name")
    assert names(out) == {"pod/waiting"}
    running = kubectl.run("get", "pods", "-n", namespace, "--field-selector", "status.phase=Running")
    assert running.stdout == ""
    assert running.stderr.strip() == f"No resources found in {namespace} namespace."

    # kinds with their own field list (pods) and kinds with only the metadata fields word it differently
    bad = kubectl.run("get", "pods", "-n", namespace, "--field-selector", "spec.hostname=x", check=False)
    assert bad.returncode == 1
    assert bad.stderr.strip() == (
        'Error from server (BadRequest): Unable to find "/v1, Resource=pods" that match label selector "", '
        'field selector "spec.hostname=x": field label not supported: spec.hostname')
    bad = kubectl.run("get", "cm", "-n", namespace, "--field-selector", "data.key=value", check=False)
    assert bad.returncode == 1
    assert bad.stderr.strip() == (
        'Error from server (BadRequest): Unable to find "/v1, Resource=configmaps" that match label selector "", '
        'field selector "data.key=value": "data.key" is not a known field selector: only "metadata.name", '
        '"metadata.namespace"')


def test_get_all_namespaces(kubectl, namespace, api_client):
    other = unique("allns")
    marker = unique("m")
    try:
        kubectl("create", "namespace", other)
        for ns in (namespace, other):
            create(kubectl, f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: shared, namespace: {ns}, "
                            f"labels: {{marker: {marker}}}}}\n")
        rows = table(kubectl("get", "configmaps", "-A", "-l", f"marker={marker}"))
        assert sorted((r["NAMESPACE"], r["NAME"]) for r in rows) == \
            sorted([(namespace, "shared"), (other, "shared")])
        lst = get_json(kubectl, "configmaps", "--all-namespaces", "-l", f"marker={marker}")
        assert sorted(i["metadata"]["namespace"] for i in lst["items"]) == sorted([namespace, other])
        # without -A only the chosen namespace
        one = get_json(kubectl, "configmaps", "-n", other, "-l", f"marker={marker}")
        assert [i["metadata"]["namespace"] for i in one["items"]] == [other]
    finally:
        delete_namespace_quietly(api_client, other)


def test_get_watch_shows_later_changes(kubectl, namespace):
    create(kubectl, f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: early, namespace: {namespace}}}\n")
    watch = LineReader(kubectl.popen(
        "get", "configmaps", "-n", namespace, "-w", "--output-watch-events", "-o",
        'jsonpath={.type} {.object.metadata.name} {.object.metadata.labels.step}{"\\n"}'))
    try:
        assert watch.wait_for(lambda ln: ln.startswith("ADDED early")).strip() == "ADDED early"
        create(kubectl, f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: late, namespace: {namespace}}}\n")
        assert watch.wait_for(lambda ln: "late" in ln).strip() == "ADDED late"
        kubectl("label", "configmap", "early", "step=two", "-n", namespace)
        assert watch.wait_for(lambda ln: "early" in ln) == "MODIFIED early two"
        kubectl("delete", "configmap", "late", "-n", namespace)
        assert watch.wait_for(lambda ln: "late" in ln).strip() == "DELETED late"
        assert watch.proc.poll() is None  # still watching
    finally:
        watch.stop()

    # the plain -w -o name form prints the name of each changed object
    watch = LineReader(kubectl.popen("get", "configmaps", "-n", namespace, "-w", "-o", "name"))
    try:
        watch.wait_for(lambda ln: ln == "configmap/early")
        create(kubectl, f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: later, namespace: {namespace}}}\n")
        watch.wait_for(lambda ln: ln == "configmap/later")
    finally:
        watch.stop()


# -- delete ----------------------------------------------------------------------------------------

def test_delete_objects(kubectl, namespace):
    create(kubectl, yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": n, "namespace": namespace, "labels": {"group": g}}}
        for n, g in [("a", "g1"), ("b", "g2"), ("c", "g2"), ("keep", "g3")]]))
    out = kubectl("delete", "configmap", "a", "-n", namespace)
    assert out.strip() == f'configmap "a" deleted from {namespace} namespace'
    missing = kubectl.run("get", "configmap", "a", "-n", namespace, check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'Error from server (NotFound): configmaps "a" not found'

    out = kubectl("delete", "configmaps", "-l", "group=g2", "-n", namespace)
    assert sorted(out.splitlines()) == [f'configmap "b" deleted from {namespace} namespace',
                                        f'configmap "c" deleted from {namespace} namespace']
    assert names(kubectl("get", "cm", "-n", namespace, "-o", "name")) == {"configmap/keep"}

    again = kubectl.run("delete", "configmap", "a", "-n", namespace, check=False)
    assert again.returncode == 1
    assert again.stderr.strip() == 'Error from server (NotFound): configmaps "a" not found'
    assert kubectl.run("delete", "configmap", "a", "-n", namespace, "--ignore-not-found").returncode == 0


def test_delete_namespace_waits_until_emptied(kubectl, api_client):
    ns = unique("doomed")
    try:
        create(kubectl, MULTI_DOC.format(ns=ns))
        started = time.monotonic()
        out = kubectl("delete", "namespace", ns, "--wait", "--timeout=30s", timeout=40)
        assert out.strip() == f'namespace "{ns}" deleted'
        assert time.monotonic() - started < 20
        gone = kubectl.run("get", "namespace", ns, check=False)
        assert gone.returncode == 1
        assert gone.stderr.strip() == f'Error from server (NotFound): namespaces "{ns}" not found'
        # the controller removed the content before the namespace itself
        for kind in ("configmaps", "secrets", "services", "deployments", "pods"):
            left = kubectl.run("get", kind, "-n", ns, "-o", "name")
            assert left.stdout == "", (kind, left.stdout)
    finally:
        delete_namespace_quietly(api_client, ns)


def test_delete_namespace_blocked_by_finalizer(kubectl, api_client):
    ns = unique("held")
    try:
        kubectl("create", "namespace", ns)
        create(kubectl, f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: held, namespace: {ns}, "
                        f"finalizers: [example.com/hold]}}\n")
        out = kubectl("delete", "namespace", ns, "--wait=false")
        assert out.strip() == f'namespace "{ns}" deleted'

        deadline = time.monotonic() + 15
        while True:
            cm = get_json(kubectl, "configmap", "held", "-n", ns)
            if cm["metadata"].get("deletionTimestamp"):
                break
            assert time.monotonic() < deadline, "the namespace controller never deleted the content"
            time.sleep(0.2)
        namespace = get_json(kubectl, "namespace", ns)
        assert namespace["status"]["phase"] == "Terminating"
        assert namespace["metadata"]["deletionTimestamp"]

        refused = create(kubectl, f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: new, namespace: {ns}}}\n",
                         check=False)
        assert refused.returncode == 1
        assert "Error from server (Forbidden)" in refused.stderr
        assert f"unable to create new content in namespace {ns} because it is being terminated" in refused.stderr

        kubectl("patch", "configmap", "held", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
        out = kubectl("wait", "--for=delete", f"namespace/{ns}", "--timeout=20s", timeout=30)
        assert out == "" or "condition met" in out, out   # "" when it was gone before kubectl looked
        assert kubectl.run("get", "namespace", ns, check=False).returncode == 1
    finally:
        try:
            client.CoreV1Api(api_client).patch_namespaced_config_map(
                "held", ns, {"metadata": {"finalizers": None}})
        except client.exceptions.ApiException:
            pass
        delete_namespace_quietly(api_client, ns)


# -- label / annotate --------------------------------------------------------------------------------

def test_label_add_overwrite_remove(kubectl, namespace, api_client):
    v1 = client.CoreV1Api(api_client)
    kubectl("create", "configmap", "target", "-n", namespace)

    assert kubectl("label", "configmap", "target", "color=red", "size=l", "-n", namespace).strip() == \
        "configmap/target labeled"
    assert v1.read_namespaced_config_map("target", namespace).metadata.labels == {"color": "red", "size": "l"}

    refused = kubectl.run("label", "configmap", "target", "color=blue", "-n", namespace, check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "error: 'color' already has a value (red), and --overwrite is false"
    assert v1.read_namespaced_config_map("target", namespace).metadata.labels["color"] == "red"

    assert kubectl("label", "configmap", "target", "color=blue", "--overwrite", "-n", namespace).strip() == \
        "configmap/target labeled"
    assert v1.read_namespaced_config_map("target", namespace).metadata.labels == {"color": "blue", "size": "l"}

    assert kubectl("label", "configmap", "target", "color-", "-n", namespace).strip() == \
        "configmap/target unlabeled"
    assert v1.read_namespaced_config_map("target", namespace).metadata.labels == {"size": "l"}

    invalid = kubectl.run("label", "configmap", "target", "bad key=x", "-n", namespace, check=False)
    assert invalid.returncode != 0
    assert names(kubectl("get", "cm", "-n", namespace, "-l", "size=l", "-o", "name")) == {"configmap/target"}


def test_annotate_add_overwrite_remove(kubectl, namespace, api_client):
    v1 = client.CoreV1Api(api_client)
    kubectl("create", "configmap", "noted", "-n", namespace)
    rv0 = v1.read_namespaced_config_map("noted", namespace).metadata.resource_version

    assert kubectl("annotate", "configmap", "noted", "owner=team-a", "example.com/ticket=123",
                   "-n", namespace).strip() == "configmap/noted annotated"
    meta = v1.read_namespaced_config_map("noted", namespace).metadata
    assert meta.annotations == {"owner": "team-a", "example.com/ticket": "123"}
    assert int(meta.resource_version) > int(rv0)

    refused = kubectl.run("annotate", "configmap", "noted", "owner=team-b", "-n", namespace, check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == ("error: --overwrite is false but found the following declared "
                                      "annotation(s): 'owner' already has a value (team-a)")

    kubectl("annotate", "configmap", "noted", "owner=team-b", "--overwrite", "-n", namespace)
    assert v1.read_namespaced_config_map("noted", namespace).metadata.annotations["owner"] == "team-b"
    assert kubectl("get", "cm", "noted", "-n", namespace, "-o",
                   "jsonpath={.metadata.annotations.owner}") == "team-b"

    kubectl("annotate", "configmap", "noted", "owner-", "-n", namespace)
    assert v1.read_namespaced_config_map("noted", namespace).metadata.annotations == {"example.com/ticket": "123"}


# -- errors ------------------------------------------------------------------------------------------

def test_get_missing_object_is_not_found(kubectl, namespace):
    p = kubectl.run("get", "cm", "x", "-n", namespace, check=False)
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.strip() == 'Error from server (NotFound): configmaps "x" not found'
    p = kubectl.run("get", "deployment", "x", "-n", namespace, check=False)
    assert p.stderr.strip() == 'Error from server (NotFound): deployments.apps "x" not found'
    p = kubectl.run("get", "namespace", unique("absent"), check=False)
    assert p.returncode == 1 and "Error from server (NotFound): namespaces" in p.stderr


def test_create_existing_is_already_exists(kubectl, namespace):
    manifest = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: dup, namespace: {namespace}}}\n"
    create(kubectl, manifest)
    again = create(kubectl, manifest, check=False)
    assert again.returncode == 1
    assert again.stderr.strip() == \
        'Error from server (AlreadyExists): error when creating "STDIN": configmaps "dup" already exists'
    typed = kubectl.run("create", "configmap", "dup", "-n", namespace, check=False)
    assert typed.returncode == 1
    assert typed.stderr.strip() == 'error: failed to create configmap: configmaps "dup" already exists'


def test_create_invalid_name_is_invalid(kubectl, namespace):
    p = create(kubectl, f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: Bad_Name, namespace: {namespace}}}\n",
               check=False)
    assert p.returncode == 1
    err = p.stderr.strip()
    assert err.startswith('The ConfigMap "Bad_Name" is invalid: ')
    assert 'metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of' in err
    p = kubectl.run("create", "namespace", "Not_A_Label", check=False)
    assert p.returncode == 1
    assert p.stderr.startswith('The Namespace "Not_A_Label" is invalid: metadata.name: Invalid value: '
                               '"Not_A_Label": a lowercase RFC 1123 label must consist of')
    assert kubectl.run("get", "cm", "Bad_Name", "-n", namespace, check=False).returncode == 1


def test_create_in_missing_namespace_is_not_found(kubectl):
    ns = unique("missing")
    p = create(kubectl, f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: orphan, namespace: {ns}}}\n",
               check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == f'Error from server (NotFound): error when creating "STDIN": namespaces "{ns}" not found'
    p = kubectl.run("create", "configmap", "orphan", "-n", ns, check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == f'error: failed to create configmap: namespaces "{ns}" not found'
