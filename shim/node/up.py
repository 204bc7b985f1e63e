"""`shim node up` / `shim node down`: one real node (containerd + kubelet) on this host.

Each node gets, so that several can share one machine the way kind's containers do:

* its own network namespace `shim-<h>` with a veth to the host (host side
  10.200.<i>.1, node side 10.200.<i>.2 = the node's InternalIP) and a pod subnet
  10.244.<i>.0/24 behind a CNI bridge inside the namespace, routed from the host;
* its own containerd (root under DIR/nodes/NAME/containerd, state and socket under
  /run/shim/nodes/<h>, since unix socket paths are short), started in that namespace;
* its own cgroup parent `/shim-<h>` in every controller (cgroupRoot for the kubelet);
* the kubelet, in the namespace too, with a client certificate for `system:node:NAME`
  (O `system:nodes`) and a serving certificate for its IP, both from the cluster CA;
* kube-proxy (iptables mode by default, or nftables: kind's two), in the namespace too,
  with a client certificate for `system:kube-proxy` from the cluster CA: it programs the
  namespace's netfilter rules so that Service cluster IPs and node ports reach endpoints;
* a DNS forwarder (socat, UDP and TCP) on 10.200.<i>.1:53 to the host's nameserver, the
  only nameserver of the kubelet's resolvConf (see _start_dns_forwarder).

The first node up against a control plane also creates the cluster DNS addon, kubeadm's
CoreDNS objects (shim/node/coredns.py); it needs a control plane pods can reach.

Only the network namespace is entered (`nsenter --net`), never a mount namespace, so
volumes the kubelet mounts are visible to containerd and runc.

The control plane normally listens on loopback, which a network namespace cannot
reach; then a `socat` in the host namespace forwards 10.200.<i>.1:PORT to it and the
kubelet's kubeconfig names `localhost` as the TLS server name (a SAN of the API
server's certificate).

Everything started is recorded in DIR/nodes/NAME/node.json, which `down` reads.
"""
from __future__ import annotations

import base64
import fcntl
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import yaml

from shim.node import install
from shim.node.images import PAUSE_IMAGE, import_images
from shim.pki import Pki, write_kubeconfig

CGROUP_ROOT = Path("/sys/fs/cgroup")
RUN_DIR = Path("/run/shim/nodes")
CNI_BIN_DIR = "/usr/lib/cni"
CLUSTER_DNS = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
KUBELET_PORT = 10250
CLUSTER_CIDR = "10.244.0.0/16"      # every node's pod range 10.244.<i>.0/24 lies in it
KUBE_PROXY_HEALTHZ_PORT = 10256
KUBE_PROXY_METRICS_PORT = 10249
PROXY_MODES = ("iptables", "nftables")   # kind's choices (IPVS needs kernel modules; see README)


class NodeError(RuntimeError):
    pass


@dataclass
class NodeState:
    """What `up` set up and started; written to node.json for `down` and for tests."""
    name: str
    data_dir: str
    hash: str
    index: int
    netns: str
    veth: str
    host_ip: str
    node_ip: str
    pod_cidr: str
    cgroup_parent: str
    run_dir: str
    containerd_socket: str
    server: str
    kubelet_port: int = KUBELET_PORT
    debug: bool = False
    proxy_mode: str = "iptables"
    pids: dict[str, int] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)


class NodePaths:
    def __init__(self, data_dir: Path, name: str):
        self.data_dir = Path(data_dir).resolve()
        self.name = name
        self.hash = hashlib.sha256(f"{self.data_dir}\0{name}".encode()).hexdigest()[:8]
        self.root = self.data_dir / "nodes" / name
        self.state_file = self.root / "node.json"
        self.pki = self.root / "pki"
        self.logs = self.root / "logs"
        self.containerd_root = self.root / "containerd"
        self.containerd_config = self.root / "containerd.toml"
        self.cni_conf_dir = self.root / "cni" / "net.d"
        self.cni_ipam_dir = self.root / "cni" / "ipam"
        self.kubelet_root = self.root / "kubelet"
        self.pod_logs = self.root / "pod-logs"
        self.manifests = self.root / "manifests"
        self.kubelet_config = self.root / "kubelet-config.yaml"
        self.kubeconfig = self.root / "kubelet.kubeconfig"
        self.proxy_config = self.root / "kube-proxy-config.yaml"
        self.proxy_kubeconfig = self.root / "kube-proxy.kubeconfig"
        self.resolv_conf = self.root / "resolv.conf"
        self.run = RUN_DIR / self.hash
        self.containerd_state = self.run / "containerd"
        self.containerd_socket = self.run / "containerd.sock"
        self.netns = f"shim-{self.hash}"
        self.veth = f"shv{self.hash}"
        self.cgroup_parent = f"/shim-{self.hash}"


# ---------------------------------------------------------------------------------------------
# up


def node_up(data_dir: Path, name: str, *, verbosity: int = 2, proxy_mode: str = "iptables", log=print,
            wait_socket: float = 30.0) -> NodeState:
    """Start containerd, the kubelet and kube-proxy for node `name`; return once they run."""
    _require_root()
    if proxy_mode not in PROXY_MODES:
        raise NodeError(f"proxy mode {proxy_mode!r}: not one of {', '.join(PROXY_MODES)}")
    _check_prerequisites(["nft"] if proxy_mode == "nftables" else [])
    for b in ("kubelet", "kube-proxy"):
        if not install.binary(b).exists():
            raise NodeError(f"{install.binary(b)} missing: run `shim node install`")
    paths = NodePaths(data_dir, name)
    pki_dir = paths.data_dir / "pki"
    admin_kubeconfig = paths.data_dir / "admin.kubeconfig"
    if not (pki_dir / "ca.key").exists() or not admin_kubeconfig.exists():
        raise NodeError(f"no control plane in {paths.data_dir}: start `shim up --data-dir {data_dir}` first")
    if paths.state_file.exists():
        old = _load_state(paths)
        if old and any(_alive(p) for p in old.pids.values()):
            raise NodeError(f"node {name} is already up (see {paths.state_file}); "
                            f"`shim node down --name {name}` first")
        node_down(data_dir, name, log=lambda *_: None)
    for d in (paths.root, paths.pki, paths.logs, paths.containerd_root, paths.cni_conf_dir,
              paths.cni_ipam_dir, paths.kubelet_root, paths.pod_logs, paths.manifests, paths.run):
        d.mkdir(parents=True, exist_ok=True)

    server = yaml.safe_load(admin_kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    index = _allocate_index(paths)
    host_ip, node_ip = f"10.200.{index}.1", f"10.200.{index}.2"
    state = NodeState(
        name=name, data_dir=str(paths.data_dir), hash=paths.hash, index=index, netns=paths.netns,
        veth=paths.veth, host_ip=host_ip, node_ip=node_ip, pod_cidr=f"10.244.{index}.0/24",
        cgroup_parent=paths.cgroup_parent, run_dir=str(paths.run),
        containerd_socket=str(paths.containerd_socket), server=server, debug=verbosity >= 5,
        proxy_mode=proxy_mode)
    _save_state(paths, state)      # so that `down` can clean up a half-finished `up`
    try:
        _start(paths, state, pki_dir, verbosity, wait_socket)
    except BaseException:
        node_down(data_dir, name, log=lambda *_: None)
        raise
    log(f"node {name}: containerd pid {state.pids['containerd']}, kubelet pid {state.pids['kubelet']}, "
        f"kube-proxy pid {state.pids['kube-proxy']}, node IP {node_ip}, pods {state.pod_cidr}")
    log(f"node {name}: logs {paths.logs}/{{containerd,kubelet,kube-proxy}}.log")
    try:
        warnings = kubernetes_service_warnings(admin_kubeconfig)
    except Exception as e:  # a check only: the node is up either way
        warnings = [f"could not check the kubernetes Service's endpoints: {e!r}"]
    for warning in warnings:
        log(f"node {name}: warning: {warning}")
    _ensure_dns_addon(admin_kubeconfig, name, log)
    return state


def _ensure_dns_addon(admin_kubeconfig: Path, name: str, log) -> None:
    """Cluster DNS as kubeadm deploys it (shim/node/coredns.py): created the first time a
    node comes up, left alone afterwards. Without nodes it would only be pending pods."""
    from shim.node.coredns import COREDNS_IMAGE, ensure_addon
    from shim.node.images import archive_paths
    if not archive_paths(install.images_dir())["coredns"].exists():
        log(f"node {name}: warning: no {COREDNS_IMAGE} image (run `shim node install`): "
            f"the coredns pods will not start on this node")
    try:
        ensure_addon(admin_kubeconfig, log=lambda m: log(f"node {name}: {m}"))
    except Exception as e:  # the node is up either way
        log(f"node {name}: warning: could not create the cluster DNS addon: {e}")


def kubernetes_service_warnings(admin_kubeconfig: Path) -> list[str]:
    """Why pods would not reach the API server through the `kubernetes` Service, if they would not.

    kube-proxy sends 10.96.0.1:443 to the addresses of default/kubernetes, which the API server
    sets to the address it advertises. A control plane listening on loopback only (`shim up`'s
    default) advertises the host's primary address without serving it, so every in-cluster
    client would be refused; nodes themselves are unaffected (they use their forwarders)."""
    cfg = yaml.safe_load(admin_kubeconfig.read_text())
    cluster, user = cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp, "c.pem"), Path(tmp, "k.pem")
        cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key.write_bytes(base64.b64decode(user["client-key-data"]))
        ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        ctx.load_cert_chain(cert, key)
        url = cluster["server"] + "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes"
        try:
            with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
                eps = json.loads(r.read())
        except (OSError, ValueError) as e:
            return [f"cannot read the default/kubernetes EndpointSlice ({e})"]
    port = next((p.get("port") for p in eps.get("ports") or () if p.get("name") == "https"), None)
    addrs = [a for e in eps.get("endpoints") or () for a in e.get("addresses") or ()]
    if not port or not addrs:
        return ["default/kubernetes has no endpoints: pods cannot reach the API server through 10.96.0.1"]
    out = []
    for addr in addrs:
        try:
            socket.create_connection((addr, port), timeout=5).close()
        except OSError as e:
            out.append(f"the API server's advertised address {addr}:{port} (default/kubernetes) does not "
                       f"answer ({e.strerror or e}): pods cannot reach it through 10.96.0.1:443 "
                       f"(nor can CoreDNS, so cluster DNS will not answer); run "
                       f"`shim up` with --listen 0.0.0.0:{port} (or on that address)")
    return out


def _start(paths: NodePaths, state: NodeState, pki_dir: Path, verbosity: int,
           wait_socket: float) -> None:
    name, node_ip = state.name, state.node_ip
    _setup_network(state)
    _setup_cgroups(state)
    server_for_node, tls_server_name = _api_endpoint(paths, state)

    pki = Pki.at(pki_dir)
    _write_credentials(paths, pki, state, server_for_node, tls_server_name)
    _write_containerd_config(paths, state)
    _write_cni_config(paths, state)
    _start_dns_forwarder(paths, state)
    _write_kubelet_config(paths, state)
    _write_kube_proxy_config(paths, state)

    state.logs["containerd"] = str(paths.logs / "containerd.log")
    state.pids["containerd"] = _spawn(
        ["nsenter", f"--net=/run/netns/{paths.netns}", "--", "containerd",
         "--config", str(paths.containerd_config)], paths.logs / "containerd.log")
    _save_state(paths, state)
    _wait_for_socket(paths, state, wait_socket)
    import_images(_ctr(paths), install.images_dir())

    kubelet = install.binary("kubelet")
    state.logs["kubelet"] = str(paths.logs / "kubelet.log")
    state.pids["kubelet"] = _spawn(
        ["nsenter", f"--net=/run/netns/{paths.netns}", "--", str(kubelet),
         f"--config={paths.kubelet_config}", f"--kubeconfig={paths.kubeconfig}",
         f"--root-dir={paths.kubelet_root}", f"--cert-dir={paths.pki}",
         f"--hostname-override={name}", f"--node-ip={node_ip}", f"--v={verbosity}"],
        paths.logs / "kubelet.log")
    _save_state(paths, state)

    state.logs["kube-proxy"] = str(paths.logs / "kube-proxy.log")
    state.pids["kube-proxy"] = _spawn(
        ["nsenter", f"--net=/run/netns/{paths.netns}", "--", str(install.binary("kube-proxy")),
         f"--config={paths.proxy_config}", f"--v={verbosity}"],
        paths.logs / "kube-proxy.log")
    _save_state(paths, state)
    time.sleep(0.5)
    for proc in ("containerd", "kubelet", "kube-proxy", "dns-forwarder-udp", "dns-forwarder-tcp"):
        if not _alive(state.pids[proc]):
            raise NodeError(f"{proc} exited at once; see {state.logs.get(proc) or state.logs['dns-forwarder']}")


def _api_endpoint(paths: NodePaths, state: NodeState) -> tuple[str, str | None]:
    """The server URL the kubelet uses from inside its namespace (plus a TLS server name)."""
    url = urlparse(state.server)
    host = url.hostname or "127.0.0.1"
    port = url.port or 443
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        return state.server, None
    state.logs["forwarder"] = str(paths.logs / "apiserver-forward.log")
    state.pids["forwarder"] = _spawn(
        ["socat", f"TCP-LISTEN:{port},bind={state.host_ip},fork,reuseaddr",
         f"TCP:{host}:{port}"], paths.logs / "apiserver-forward.log")
    _save_state(paths, state)
    return f"https://{state.host_ip}:{port}", "localhost"


# -- network ----------------------------------------------------------------------------------

def _allocate_index(paths: NodePaths) -> int:
    """The smallest i in 1..250 whose 10.200.i.1 is on no interface of this host."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    with open(RUN_DIR / "alloc.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        used = set()
        out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if "inet" in parts:
                addr = parts[parts.index("inet") + 1].split("/")[0]
                if addr.startswith("10.200."):
                    used.add(int(addr.split(".")[2]))
        reserved = RUN_DIR / "reserved"
        reserved.mkdir(exist_ok=True)
        for f in reserved.iterdir():
            try:
                if f.name != paths.hash and subprocess.run(
                        ["ip", "netns", "pids", f"shim-{f.name}"], capture_output=True).returncode == 0:
                    used.add(int(f.read_text()))
            except ValueError:
                pass
        for i in range(1, 251):
            if i not in used:
                (reserved / paths.hash).write_text(str(i))
                return i
    raise NodeError("no free node index in 10.200.1-250.0/24")


def _setup_network(s: NodeState) -> None:
    ns = s.netns
    _run(["ip", "netns", "add", ns])
    _run(["ip", "link", "add", s.veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
    _run(["ip", "addr", "add", f"{s.host_ip}/24", "dev", s.veth])
    _run(["ip", "link", "set", s.veth, "up"])
    _run(["ip", "-n", ns, "link", "set", "lo", "up"])
    _run(["ip", "-n", ns, "addr", "add", f"{s.node_ip}/24", "dev", "eth0"])
    _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
    _run(["ip", "-n", ns, "route", "add", "default", "via", s.host_ip])
    _run(["ip", "route", "replace", s.pod_cidr, "via", s.node_ip])
    # pods reach beyond the node with the node's address (what ipMasq would do per pod)
    _run(["ip", "netns", "exec", ns, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", s.pod_cidr,
          "!", "-d", CLUSTER_CIDR, "-j", "MASQUERADE"], check=False)
    _run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
    _run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], check=False)
    _enable_bridge_netfilter(ns)


def _enable_bridge_netfilter(ns: str) -> None:
    """Make frames bridged between pods of the node pass through iptables, as kube-proxy needs.

    A pod reaching a Service whose endpoint is another pod on the same bridge sends to the
    cluster IP (routed, DNATed), but the answer goes from pod to pod over the bridge: unless
    br_netfilter hands bridged frames to iptables, conntrack never undoes the DNAT and the
    client sees an answer from an address it did not talk to. (A pod reaching itself through
    its Service also needs hairpin mode on its bridge port: the CNI bridge's `hairpinMode`.)
    The sysctl is per network namespace; the module (or built-in code) must be there first.
    """
    if not Path("/proc/sys/net/bridge").exists():
        r = subprocess.run(["modprobe", "br_netfilter"], capture_output=True, text=True) \
            if shutil.which("modprobe") else None
        if not Path("/proc/sys/net/bridge").exists():
            why = (r.stderr.strip() or f"exit {r.returncode}") if r else "modprobe not found"
            raise NodeError("br_netfilter is not available (/proc/sys/net/bridge missing; "
                            f"`modprobe br_netfilter`: {why}); Services backed by pods on the "
                            "same node would not answer")
    for key in ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"):
        _run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"{key}=1"])


def _teardown_network(s: NodeState) -> None:
    _run(["ip", "route", "del", s.pod_cidr], check=False)
    _run(["ip", "link", "del", s.veth], check=False)
    _run(["ip", "netns", "del", s.netns], check=False)
    (RUN_DIR / "reserved" / s.hash).unlink(missing_ok=True)


# -- cgroups ----------------------------------------------------------------------------------

def _cgroup_dirs(parent: str) -> list[Path]:
    """The node's cgroup parent in every mounted hierarchy (v1 controllers and unified)."""
    dirs = []
    if (CGROUP_ROOT / "cgroup.controllers").exists():      # pure v2
        return [CGROUP_ROOT / parent.lstrip("/")]
    for h in sorted(CGROUP_ROOT.iterdir()):
        if h.is_dir() and not h.is_symlink() and (h / "cgroup.procs").exists():
            dirs.append(h / parent.lstrip("/"))
    return dirs


def _setup_cgroups(s: NodeState) -> None:
    for d in _cgroup_dirs(s.cgroup_parent):
        d.mkdir(exist_ok=True)
        if d.parent.name == "cpuset" or (d.parent / "cpuset.cpus").exists() and not (
                CGROUP_ROOT / "cgroup.controllers").exists():
            for f in ("cpuset.cpus", "cpuset.mems"):
                if (d / f).exists() and not (d / f).read_text().strip():
                    (d / f).write_text((d.parent / f).read_text())


def _teardown_cgroups(s: NodeState) -> None:
    dirs = _cgroup_dirs(s.cgroup_parent)
    for _ in range(20):
        pids = set()
        for d in dirs:
            if d.exists():
                for procs in d.rglob("cgroup.procs"):
                    try:
                        pids.update(int(p) for p in procs.read_text().split())
                    except OSError:
                        pass
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    for d in dirs:
        if d.exists():
            for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                _rmdir(sub)
            _rmdir(d)


def _rmdir(d: Path) -> None:
    for _ in range(10):
        try:
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)


# -- files ------------------------------------------------------------------------------------

def _write_credentials(paths: NodePaths, pki: Pki, s: NodeState, server: str,
                       tls_server_name: str | None) -> None:
    ca = pki.ca_pem
    (paths.pki / "ca.crt").write_bytes(ca)
    cert, key = pki.issue_client_cert(f"system:node:{s.name}", ["system:nodes"])
    write_kubeconfig(paths.kubeconfig, server=server, ca_pem=ca, cert_pem=cert, key_pem=key,
                     user=f"system:node:{s.name}", cluster="shim", context="shim")
    # kube-proxy as the user the default `system:node-proxier` binding names
    cert, key = pki.issue_client_cert("system:kube-proxy", [])
    write_kubeconfig(paths.proxy_kubeconfig, server=server, ca_pem=ca, cert_pem=cert, key_pem=key,
                     user="system:kube-proxy", cluster="shim", context="shim")
    if tls_server_name:
        for kc in (paths.kubeconfig, paths.proxy_kubeconfig):
            cfg = yaml.safe_load(kc.read_text())
            cfg["clusters"][0]["cluster"]["tls-server-name"] = tls_server_name
            kc.write_text(yaml.safe_dump(cfg, sort_keys=False))
    scert, skey = pki.issue_serving_cert(f"system:node:{s.name}", [s.name], [s.node_ip])
    (paths.pki / "kubelet.crt").write_bytes(scert)
    (paths.pki / "kubelet.key").write_bytes(skey)
    os.chmod(paths.pki / "kubelet.key", 0o600)


def _write_containerd_config(paths: NodePaths, s: NodeState) -> None:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    paths.containerd_config.write_text(f"""\
version = 2
root = "{paths.containerd_root}"
state = "{paths.containerd_state}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{paths.containerd_socket}"

[ttrpc]
  address = "{paths.containerd_socket}.ttrpc"

[debug]
  address = ""
  level = "{"debug" if s.debug else "info"}"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{paths.containerd_root}/opt"

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = {"false" if _has_cap_sys_resource() else "true"}
  disable_hugetlb_controller = true
  tolerate_missing_hugetlb_controller = true
  # net.ipv4.ip_unprivileged_port_start=0 in every pod's network namespace, containerd 2's
  # default (kind's nodes): CoreDNS runs as user 65532 and binds port 53
  enable_unprivileged_ports = true

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
  discard_unpacked_layers = false

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{paths.cni_conf_dir}"
  max_conf_num = 1
""")


def _has_cap_sys_resource() -> bool:
    """Without CAP_SYS_RESOURCE (some sandboxes drop it even for root) no process may lower
    its oom_score_adj, and runc fails every pod sandbox (kubelet asks for -998) with
    "can't get final child's PID from pipe: EOF"; containerd then has to clamp the scores."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) & (1 << 24))
    except (OSError, ValueError):
        pass
    return True


def _write_cni_config(paths: NodePaths, s: NodeState) -> None:
    conf = {
        "cniVersion": "0.4.0",
        "name": "shim",
        "plugins": [
            # ipMasq off: one MASQUERADE rule per node (see _setup_network) instead of a
            # chain per pod, which costs ~0.3 s of iptables calls on every sandbox
            {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False,
             "hairpinMode": True,
             "ipam": {"type": "host-local", "dataDir": str(paths.cni_ipam_dir),
                      "ranges": [[{"subnet": s.pod_cidr}]], "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    (paths.cni_conf_dir / "10-shim.conflist").write_text(json.dumps(conf, indent=2))


def host_nameserver() -> str:
    """The host's first nameserver (loopback ones included: the forwarder runs on the host)."""
    try:
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                return parts[1]
    except OSError:
        pass
    return "8.8.8.8"


def _start_dns_forwarder(paths: NodePaths, s: NodeState) -> None:
    """The node's upstream DNS: `socat`s on the host side of its veth (10.200.<i>.1:53, UDP
    and TCP) relaying to the host's nameserver, and the kubelet's resolvConf naming them.

    Pods with dnsPolicy Default (CoreDNS's; `forward . /etc/resolv.conf` sends what is not
    cluster.local there) and hostNetwork pods get that resolv.conf. The host's nameserver
    itself is no use to them: a loopback one (systemd-resolved's 127.0.0.53) is not theirs,
    and a remote one is reached through the host's default route without NAT from 10.200/16,
    so its answers never come back. kind's entrypoint has the same problem with Docker's
    embedded DNS (127.0.0.11) and solves it alike: it rewrites the node's resolv.conf to an
    address pods reach and DNATs that to the embedded server. Never 10.96.0.10, or CoreDNS would forward to
    itself (its `loop` plugin then stops it)."""
    upstream = host_nameserver()
    target = f"[{upstream}]" if ":" in upstream else upstream
    state_log = paths.logs / "dns-forward.log"
    s.logs["dns-forwarder"] = str(state_log)
    s.pids["dns-forwarder-udp"] = _spawn(
        ["socat", "-T5", f"UDP4-RECVFROM:53,bind={s.host_ip},fork,reuseaddr",
         f"UDP:{target}:53"], state_log)
    s.pids["dns-forwarder-tcp"] = _spawn(
        ["socat", f"TCP4-LISTEN:53,bind={s.host_ip},fork,reuseaddr", f"TCP:{target}:53"], state_log)
    _save_state(paths, s)
    paths.resolv_conf.write_text(f"nameserver {s.host_ip}\n")


def _write_kubelet_config(paths: NodePaths, s: NodeState) -> None:
    cfg = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": s.cgroup_parent,
        "containerRuntimeEndpoint": f"unix://{paths.containerd_socket}",
        "contentType": "application/json",
        "clusterDNS": [CLUSTER_DNS],
        "clusterDomain": CLUSTER_DOMAIN,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True, "cacheTTL": "2m0s"},
            "x509": {"clientCAFile": str(paths.pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook",
                          "webhook": {"cacheAuthorizedTTL": "5m0s", "cacheUnauthorizedTTL": "30s"}},
        "address": s.node_ip,
        "port": s.kubelet_port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "tlsCertFile": str(paths.pki / "kubelet.crt"),
        "tlsPrivateKeyFile": str(paths.pki / "kubelet.key"),
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "failSwapOn": False,
        "resolvConf": str(paths.resolv_conf),
        "staticPodPath": str(paths.manifests),
        "podLogsDir": str(paths.pod_logs),
        "podCIDR": s.pod_cidr,
        "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%",
                         "nodefs.inodesFree": "1%", "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "protectKernelDefaults": False,
        "makeIPTablesUtilChains": True,
        "nodeStatusUpdateFrequency": "10s",
        "nodeStatusReportFrequency": "1m0s",
        "shutdownGracePeriod": "0s",
    }
    paths.kubelet_config.write_text(yaml.safe_dump(cfg, sort_keys=False))


def _write_kube_proxy_config(paths: NodePaths, s: NodeState) -> None:
    """kube-proxy's KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1), close to kind's."""
    cfg = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        # content type left at kube-proxy's default, as kind does: protobuf request bodies
        # (its Events), protobuf or JSON answers (the API server answers JSON)
        "clientConnection": {"kubeconfig": str(paths.proxy_kubeconfig)},
        "hostnameOverride": s.name,
        # Each node's kube-proxy lives in the node's own network namespace, so these never
        # meet another node's; bound to the node's address and the namespace's loopback.
        "bindAddress": s.node_ip,
        "healthzBindAddress": f"{s.node_ip}:{KUBE_PROXY_HEALTHZ_PORT}",
        "metricsBindAddress": f"127.0.0.1:{KUBE_PROXY_METRICS_PORT}",
        "mode": s.proxy_mode,
        "clusterCIDR": CLUSTER_CIDR,
        "detectLocalMode": "ClusterCIDR",
        "iptables": {"minSyncPeriod": "1s", "syncPeriod": "30s"},
        # node ports on the node's own address (10.200.<i>.2), which the host and every
        # other node reach; unset would mean every local address, loopback too
        "nodePortAddresses": ["primary"],
        # 0 = leave the sysctl alone. A network namespace may not write nf_conntrack_max
        # (EACCES: kube-proxy exits when the host's is below what it wants) and the hash
        # size that goes with it is host-wide; the TCP timeouts are per namespace, left at
        # the kernel's values as kind's config does.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                      "tcpCloseWaitTimeout": "0s"},
    }
    if not _has_cap_sys_resource():
        cfg["oomScoreAdj"] = 0   # -999 (the default) cannot be set without CAP_SYS_RESOURCE
    paths.proxy_config.write_text(yaml.safe_dump(cfg, sort_keys=False))


# ---------------------------------------------------------------------------------------------
# down


def node_down(data_dir: Path, name: str, *, log=print) -> bool:
    """Stop node `name`'s processes and containers, unmount, delete its network state.

    Returns False when there was nothing recorded for the node.
    """
    _require_root()
    paths = NodePaths(data_dir, name)
    state = _load_state(paths)
    if state is None:
        log(f"node {name}: not up ({paths.state_file} missing)")
        return False
    _stop(state.pids.get("kube-proxy"))
    _cleanup_kube_proxy_rules(paths, state)
    _stop(state.pids.get("kubelet"))
    if paths.containerd_socket.exists() and _alive(state.pids.get("containerd")):
        _remove_all_containers(paths)
    _stop(state.pids.get("containerd"))
    for proc in ("forwarder", "dns-forwarder-udp", "dns-forwarder-tcp"):
        _stop(state.pids.get(proc))
    _kill_shims(paths)
    _teardown_cgroups(state)
    _unmount_under([paths.root, paths.run])
    _cleanup_pod_netns(paths)
    _teardown_network(state)
    shutil.rmtree(paths.run, ignore_errors=True)
    shutil.rmtree(paths.cni_ipam_dir, ignore_errors=True)
    paths.state_file.unlink(missing_ok=True)
    log(f"node {name}: down")
    return True


def _cleanup_kube_proxy_rules(paths: NodePaths, state: NodeState) -> None:
    """`kube-proxy --cleanup` in the node's namespace: its iptables chains and rules go (the
    namespace is deleted next anyway, but this is what tearing down kube-proxy means)."""
    binary = install.binary("kube-proxy")
    if "kube-proxy" not in state.pids or not binary.exists() or not Path(f"/run/netns/{paths.netns}").exists():
        return
    with open(paths.logs / "kube-proxy.log", "ab") as lf:
        lf.write(b"--- shim node down: kube-proxy --cleanup\n")
        lf.flush()
        try:
            subprocess.run(["nsenter", f"--net=/run/netns/{paths.netns}", "--", str(binary), "--cleanup",
                            f"--config={paths.proxy_config}", "--v=2"],
                           stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT, timeout=60)
        except subprocess.TimeoutExpired:
            lf.write(b"--- kube-proxy --cleanup timed out\n")


def _remove_all_containers(paths: NodePaths) -> None:
    """Kill every task and delete every container in the k8s.io namespace (pods included).

    Sandbox network namespaces are remembered first so they can be unmounted afterwards.
    """
    ctr = [*_ctr(paths), "-n", "k8s.io"]
    ids = subprocess.run([*ctr, "containers", "ls", "-q"], capture_output=True, text=True).stdout.split()
    netns = []
    for cid in ids:
        info = subprocess.run([*ctr, "containers", "info", cid], capture_output=True, text=True).stdout
        try:
            spec = json.loads(info).get("Spec") or {}
            for ns in spec.get("linux", {}).get("namespaces", []):
                if ns.get("type") == "network" and ns.get("path", "").startswith("/var/run/netns/"):
                    netns.append(ns["path"])
        except (ValueError, AttributeError):
            pass
    (paths.run / "pod-netns").write_text("\n".join(sorted(set(netns))))
    for cid in ids:
        subprocess.run([*ctr, "tasks", "kill", "-a", "-s", "SIGKILL", cid], capture_output=True)
    for cid in ids:
        for _ in range(20):
            r = subprocess.run([*ctr, "tasks", "delete", "-f", cid], capture_output=True, text=True)
            if r.returncode == 0 or "not found" in r.stderr:
                break
            time.sleep(0.1)
        subprocess.run([*ctr, "containers", "delete", cid], capture_output=True)


def _cleanup_pod_netns(paths: NodePaths) -> None:
    f = paths.run / "pod-netns"
    if not f.exists():
        return
    for p in f.read_text().split():
        subprocess.run(["umount", p], capture_output=True)
        Path(p).unlink(missing_ok=True)


def _kill_shims(paths: NodePaths) -> None:
    """containerd-shim processes of this node's containerd (they outlive containerd)."""
    sock = str(paths.containerd_socket)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and b"containerd-shim" in cmd[0] and sock.encode() in cmd:
            try:
                os.kill(int(proc.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def _unmount_under(prefixes: list[Path]) -> None:
    prefixes = [str(p.resolve()) if p.exists() else str(p) for p in prefixes]
    for _ in range(3):
        targets = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            mnt = line.split()[4].replace("\\040", " ")
            if any(mnt == p or mnt.startswith(p + "/") for p in prefixes):
                targets.append(mnt)
        if not targets:
            return
        for mnt in sorted(set(targets), key=lambda m: -m.count("/")):
            if subprocess.run(["umount", mnt], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", mnt], capture_output=True)


# ---------------------------------------------------------------------------------------------
# helpers


def _require_root() -> None:
    if os.geteuid() != 0:
        raise NodeError("real nodes need root (network namespaces, cgroups, mounts)")


def _check_prerequisites(extra: list[str] = ()) -> None:
    missing = [c for c in ("containerd", "runc", "ctr", "nsenter", "ip", "socat", "iptables", *extra)
               if shutil.which(c) is None]
    if not Path(CNI_BIN_DIR, "bridge").exists():
        missing.append("CNI plugins")
    if missing:
        raise NodeError(f"missing {', '.join(missing)}: run `shim node install` (as root)")


def _ctr(paths: NodePaths) -> list[str]:
    return ["ctr", "--address", str(paths.containerd_socket)]


def _spawn(cmd: list[str], log_path: Path) -> int:
    with open(log_path, "ab") as lf:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                             start_new_session=True, close_fds=True)
    return p.pid


def _wait_for_socket(paths: NodePaths, state: NodeState, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(state.pids["containerd"]):
            raise NodeError(f"containerd exited; see {state.logs['containerd']}")
        if paths.containerd_socket.exists() and subprocess.run(
                [*_ctr(paths), "version"], capture_output=True).returncode == 0:
            return
        time.sleep(0.2)
    raise NodeError(f"containerd did not answer on {paths.containerd_socket}; see {state.logs['containerd']}")


def _alive(pid: int | None) -> bool:
    """A live (not zombie) process that is one of ours: containerd, kubelet, kube-proxy or socat.

    The name check keeps a recycled pid (after a reboot, say) from being signalled."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except (OSError, IndexError):
        return False
    if not cmd:
        return True  # mid-execve (nsenter -> daemon) the command line reads empty for a moment
    return os.path.basename(cmd).decode(errors="replace") in (
        "containerd", "kubelet", "kube-proxy", "socat", "nsenter")


def _stop(pid: int | None, timeout: float = 10.0) -> None:
    """SIGTERM the process group we started (nsenter execs, so the pid is the daemon), then KILL."""
    if not pid or not _alive(pid):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _run(cmd: list[str], check: bool = True) -> None:
    if not check and shutil.which(cmd[0]) is None:
        return
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise NodeError(f"{' '.join(cmd)}: {r.stderr.strip()}")


def _save_state(paths: NodePaths, state: NodeState) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    tmp = paths.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2))
    os.replace(tmp, paths.state_file)


def _load_state(paths: NodePaths) -> NodeState | None:
    try:
        return NodeState(**json.loads(paths.state_file.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def load_state(data_dir: Path, name: str) -> NodeState | None:
    return _load_state(NodePaths(data_dir, name))
