"""Container images built from local files, since no registry is reachable.

Three images, each written as a `docker save`-style archive (manifest.json with
RepoTags, the image config, one uncompressed layer tar), which `ctr images import`
understands in every containerd release:

* the pause (sandbox) image: a tiny static C program, compiled here, that sleeps
  until SIGINT/SIGTERM and reaps zombies, like upstream's build/pause/linux/pause.c;
* busybox from Debian's busybox-static: /bin/busybox plus a link per applet;
* CoreDNS (registry.k8s.io/coredns/coredns:<pin>, the name kubeadm deploys): the static
  binary `shim node install` builds from the Go module (shim/node/coredns.py), laid out
  as upstream's image (distroless static, nonroot): /coredns as the entrypoint, user
  65532, CA certificates from the host for `forward . tls://...`.

Archives are deterministic (fixed mtimes, owners, order), so rebuilding gives the
same image ids; they are rebuilt only when missing.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
BUSYBOX_IMAGES = ("docker.io/library/busybox:local",)
BUSYBOX_BINARY = Path("/bin/busybox")

PAUSE_C = r"""
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void sigdown(int signo) { _exit(0); }
static void sigreap(int signo) { while (waitpid(-1, NULL, WNOHANG) > 0) ; }

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) { printf("pause (shim)\n"); return 0; }
  if (getpid() != 1) fprintf(stderr, "Warning: pause should be the first process\n");
  struct sigaction down = {.sa_handler = sigdown};
  struct sigaction reap = {.sa_handler = sigreap, .sa_flags = SA_NOCLDSTOP};
  if (sigaction(SIGINT, &down, NULL) < 0) return 1;
  if (sigaction(SIGTERM, &down, NULL) < 0) return 2;
  if (sigaction(SIGCHLD, &reap, NULL) < 0) return 3;
  for (;;) pause();
  return 42;
}
"""


def archive_paths(images_dir: Path) -> dict[str, Path]:
    from shim.node.coredns import COREDNS_VERSION
    return {"pause": images_dir / "pause.tar", "busybox": images_dir / "busybox.tar",
            # named by the pin, so a new pin builds (and imports) a new archive
            "coredns": images_dir / f"coredns-{COREDNS_VERSION}.tar"}


def ensure_images(images_dir: Path, log=print) -> dict[str, Path]:
    images_dir.mkdir(parents=True, exist_ok=True)
    paths = archive_paths(images_dir)
    if not paths["pause"].exists():
        log(f"building {PAUSE_IMAGE} -> {paths['pause']}")
        _write_atomic(paths["pause"], _pause_archive())
    if not paths["busybox"].exists():
        if not BUSYBOX_BINARY.exists():
            raise SystemExit("shim node install: /bin/busybox missing (apt-get install busybox-static)")
        log(f"building {', '.join(BUSYBOX_IMAGES)} -> {paths['busybox']}")
        _write_atomic(paths["busybox"], _busybox_archive())
    from shim.node.coredns import COREDNS_IMAGE, coredns_binary
    if not paths["coredns"].exists() and coredns_binary().exists():
        log(f"building {COREDNS_IMAGE} -> {paths['coredns']}")
        _write_atomic(paths["coredns"], _coredns_archive(coredns_binary()))
    return paths


def import_images(ctr_cmd: list[str], images_dir: Path) -> None:
    """Import the archives into containerd's k8s.io namespace (ctr_cmd: ctr with --address)."""
    for path in archive_paths(images_dir).values():
        if not path.exists():      # coredns, when install skipped the build
            continue
        subprocess.run([*ctr_cmd, "-n", "k8s.io", "images", "import", str(path)],
                       check=True, capture_output=True)


# -- the two images ---------------------------------------------------------------------------

def _pause_archive() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "pause.c", Path(tmp) / "pause"
        src.write_text(PAUSE_C)
        subprocess.run(["gcc", "-static", "-Os", "-o", str(out), str(src)], check=True)
        subprocess.run(["strip", str(out)], check=False)
        layer = _layer([("pause", out.read_bytes(), 0o755)], dirs=[], symlinks=[])
    config = {"User": "65535:65535", "Entrypoint": ["/pause"], "WorkingDir": "/"}
    return _archive([PAUSE_IMAGE], layer, config)


def _busybox_archive() -> bytes:
    applets = subprocess.run([str(BUSYBOX_BINARY), "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    symlinks = []
    for applet in sorted(set(applets)):
        if applet in ("bin/busybox",):
            continue
        depth = applet.count("/")
        symlinks.append((applet, "../" * depth + "bin/busybox" if depth else "bin/busybox"))
    files = [
        ("bin/busybox", BUSYBOX_BINARY.read_bytes(), 0o755),
        ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n", 0o644),
        ("etc/group", b"root:x:0:\nnobody:x:65534:\n", 0o644),
    ]
    dirs = ["bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "home", "var", "var/log",
            "proc", "sys", "dev", "tmp"]
    layer = _layer(files, dirs=dirs, symlinks=symlinks)
    config = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
              "Cmd": ["sh"]}
    return _archive(list(BUSYBOX_IMAGES), layer, config)


def _coredns_archive(binary: Path) -> bytes:
    files = [("coredns", binary.read_bytes(), 0o755),
             ("etc/passwd", b"root:x:0:0:root:/root:/sbin/nologin\n"
                            b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n", 0o644),
             ("etc/group", b"root:x:0:\nnonroot:x:65532:\n", 0o644)]
    ca = Path("/etc/ssl/certs/ca-certificates.crt")
    if ca.exists():
        files.append(("etc/ssl/certs/ca-certificates.crt", ca.read_bytes(), 0o644))
    dirs = ["etc", "etc/ssl", "etc/ssl/certs", "home", "home/nonroot", "tmp"]
    layer = _layer(files, dirs=dirs, symlinks=[])
    from shim.node.coredns import COREDNS_IMAGE
    config = {"User": "65532:65532", "Entrypoint": ["/coredns"], "WorkingDir": "/",
              "ExposedPorts": {"53/tcp": {}, "53/udp": {}},
              "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    return _archive([COREDNS_IMAGE], layer, config)


# -- archive writing --------------------------------------------------------------------------

def _layer(files, *, dirs, symlinks) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        seen = set()
        for d in dirs:
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(ti)
            seen.add(d)
        for name, data, mode in files:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), mode
            tar.addfile(ti, io.BytesIO(data))
        for name, target in symlinks:
            if name in seen or any(name == f[0] for f in files):
                continue
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, target, 0o777
            tar.addfile(ti)
    return buf.getvalue()


def _archive(tags: list[str], layer: bytes, container_config: dict) -> bytes:
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {"architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
              "config": container_config, "rootfs": {"type": "layers", "diff_ids": [diff_id]},
              "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "shim node install"}]}
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = diff_id.split(":", 1)[1] + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": tags, "Layers": [layer_name]}]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in ((config_name, config_bytes), (layer_name, layer),
                           ("manifest.json", json.dumps(manifest).encode())):
            if "/" in name:
                ti = tarfile.TarInfo(name.split("/")[0])
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(ti)
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o644
            tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
