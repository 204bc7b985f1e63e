"""`shim node install`: everything a real node on this host needs, idempotent and cached.

* kubelet, kube-proxy and kubeadm at one pinned release, built with Go from the
  `k8s.io/kubernetes` module. That module's go.mod replaces its staging modules
  (k8s.io/api, k8s.io/client-go, ...) with `./staging/...` directories, which Go
  ignores in a dependency, so `go install k8s.io/kubernetes/cmd/kubelet@v1.37.2` is
  refused. A small wrapper module requires k8s.io/kubernetes and replaces every
  staging module with its published v0.x twin; the version is stamped through
  ldflags the way hack/lib/version.sh does, so `kubelet --version` says v1.37.2.
  Binaries land in ~/.cache/shim/k8s-<pin>/bin and are rebuilt only when the pin
  or the build recipe changes (a stamp file records both).
* containerd, runc and the CNI plugins from Debian (apt-get).
* CoreDNS at the version kubeadm v1.37 deploys, built from its Go module
  (shim/node/coredns.py), cached in ~/.cache/shim/coredns-<pin>/bin the same way.
* Images, since no registry is reachable: a static pause program, Debian's
  busybox-static and the CoreDNS binary, packed here as OCI image archives. They are imported per node by
  `shim node up` into that node's own containerd (see shim/node/images.py).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

K8S_VERSION = "v1.37.2"
STAGING_VERSION = "v0.37.2"
BINARIES = ("kubelet", "kube-proxy", "kubeadm")
APT_PACKAGES = ("containerd", "runc", "containernetworking-plugins", "busybox-static",
                "iproute2", "iptables", "nftables", "conntrack", "socat", "ethtool", "util-linux",
                "mount")
# Build recipe: bump RECIPE when anything below changes in a way that needs a rebuild.
RECIPE = "1"
BUILD_TAGS = "selinux,notest,grpcnotrace"
GIT_COMMIT = "0000000000000000000000000000000000000000"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shim"


def k8s_dir(version: str = K8S_VERSION) -> Path:
    return cache_root() / f"k8s-{version}"


def bin_dir(version: str = K8S_VERSION) -> Path:
    return k8s_dir(version) / "bin"


def binary(name: str) -> Path:
    return bin_dir() / name


def images_dir() -> Path:
    return cache_root() / "images"


# ---------------------------------------------------------------------------------------------
# entry point


def install(*, skip_apt: bool = False, skip_build: bool = False, log=print) -> int:
    """Run every step; each is a no-op when its result is already present."""
    if not skip_apt:
        ensure_apt_packages(log=log)
    if not skip_build:
        build_kubernetes(log=log)
        from shim.node.coredns import build_coredns
        build_coredns(log=log)
    from shim.node.images import ensure_images
    ensure_images(images_dir(), log=log)
    log(f"shim node install: binaries in {bin_dir()}, images in {images_dir()}")
    return 0


# ---------------------------------------------------------------------------------------------
# Debian packages


def missing_apt_packages() -> list[str]:
    missing = []
    for pkg in APT_PACKAGES:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
        if r.returncode != 0 or "install ok installed" not in r.stdout:
            missing.append(pkg)
    return missing


def ensure_apt_packages(log=print) -> None:
    missing = missing_apt_packages()
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"shim node install: need root to apt-get install {' '.join(missing)}")
    log(f"apt-get install {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
                   check=True, env=env)
    # Debian starts the packaged containerd as a system service; nodes run their own.
    if shutil.which("systemctl") and Path("/run/systemd/system").exists():
        subprocess.run(["systemctl", "disable", "--now", "containerd"], check=False)


# ---------------------------------------------------------------------------------------------
# kubelet / kube-proxy / kubeadm


def staging_modules(version: str = K8S_VERSION) -> list[str]:
    """The staging modules the kubernetes go.mod replaces with ./staging/src/... directories."""
    gomod = _kubernetes_gomod(version)
    return sorted(set(re.findall(r"^\s*(k8s\.io/[\w./-]+)\s*=>\s*\./staging/", gomod, re.M)))


def _kubernetes_gomod(version: str) -> str:
    modcache = Path(subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True,
                                   check=True).stdout.strip())
    local = modcache / "cache" / "download" / "k8s.io" / "kubernetes" / "@v" / f"{version}.mod"
    if not local.exists():
        subprocess.run(["go", "mod", "download", "-json", f"k8s.io/kubernetes@{version}"],
                       check=True, capture_output=True, cwd=str(cache_root()))
    return local.read_text()


def wrapper_gomod(version: str = K8S_VERSION, staging_version: str = STAGING_VERSION) -> str:
    mods = staging_modules(version)
    lines = ["module shim.local/k8s-build", "", "go 1.26.0", "",
             f"require k8s.io/kubernetes {version}", "", "replace ("]
    lines += [f"\t{m} => {m} {staging_version}" for m in mods]
    lines += [")", ""]
    return "\n".join(lines)


def ldflags(version: str = K8S_VERSION) -> str:
    m = re.match(r"v(\d+)\.(\d+)", version)
    major, minor = m.group(1), m.group(2)
    vals = {"gitVersion": version, "gitMajor": major, "gitMinor": minor,
            "gitCommit": GIT_COMMIT, "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z"}
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/client-go/pkg/version", "k8s.io/component-base/version"):
        flags += [f"-X {pkg}.{k}={v}" for k, v in vals.items()]
    return " ".join(flags)


def build_stamp(version: str = K8S_VERSION) -> str:
    return hashlib.sha256(json.dumps([version, STAGING_VERSION, RECIPE, BUILD_TAGS, BINARIES,
                                      ldflags(version)]).encode()).hexdigest()


def binaries_current(version: str = K8S_VERSION) -> bool:
    stamp = k8s_dir(version) / "stamp"
    return (stamp.exists() and stamp.read_text().strip() == build_stamp(version)
            and all((bin_dir(version) / b).exists() for b in BINARIES))


def build_kubernetes(version: str = K8S_VERSION, log=print) -> Path:
    """Build the binaries into the cache unless the stamp says they are current."""
    out = bin_dir(version)
    if binaries_current(version):
        return out
    root = k8s_dir(version)
    src = root / "src"
    src.mkdir(parents=True, exist_ok=True)
    cache_root().mkdir(parents=True, exist_ok=True)
    (src / "go.mod").write_text(wrapper_gomod(version))
    # A file importing the commands lets `go mod tidy` compute a complete go.sum.
    (src / "tools.go").write_text(
        "//go:build tools\n\npackage tools\n\nimport (\n"
        + "".join(f'\t_ "k8s.io/kubernetes/cmd/{b}"\n' for b in BINARIES) + ")\n")
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-buildvcs=false", GOTOOLCHAIN="local")
    log_path = root / "build.log"
    log(f"building {', '.join(BINARIES)} {version} (log: {log_path}); this takes a while")
    with open(log_path, "a") as lf:
        def run(cmd):
            lf.write(f"$ {' '.join(cmd)}\n")
            lf.flush()
            subprocess.run(cmd, cwd=src, env=env, stdout=lf, stderr=subprocess.STDOUT, check=True)
        run(["go", "mod", "tidy"])
        tmp = root / "bin.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        run(["go", "build", "-trimpath", "-tags", BUILD_TAGS, "-ldflags", ldflags(version),
             "-o", str(tmp) + "/", *[f"k8s.io/kubernetes/cmd/{b}" for b in BINARIES]])
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    (root / "stamp").write_text(build_stamp(version) + "\n")
    return out


if __name__ == "__main__":  # python -m shim.node.install [--build-only]
    if "--build-only" in sys.argv:
        build_kubernetes()
    else:
        sys.exit(install())
