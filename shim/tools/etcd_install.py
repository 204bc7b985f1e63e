"""Install the etcd server the project tests and runs against, built from the Go module proxy.

The pin is `hack/etcd/go.mod` (with its go.sum): a tiny wrapper module that requires
`go.etcd.io/etcd/server/v3` at a fixed release and calls its `etcdmain.Main`. Upstream's own
`go install go.etcd.io/etcd/v3@vX` is refused because that module carries replace
directives; a wrapper that requires the published server module is the supported way
around it. Debian's etcd-server package (3.4) is too old for this project.

The binary is cached under `$XDG_CACHE_HOME/shim/etcd-<version>-<hash>/etcd` (default
`~/.cache/shim/...`), where the hash covers the wrapper module's files: it is rebuilt only
when the pin changes. `SHIM_ETCD_BINARY` points at a ready binary instead. Idempotent and
safe to run concurrently (a file lock guards the build).

    python -m shim.tools.etcd_install         # prints the binary's path
    shim etcd install                         # the same through the CLI
    scripts/install-etcd.sh                   # the same from a shell
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULE_DIR = ROOT / "hack" / "etcd"
MIN_VERSION = (3, 5, 13)


class EtcdInstallError(RuntimeError):
    """etcd could not be installed."""


class MissingPrerequisite(EtcdInstallError):
    """A tool needed to build etcd (Go) is not on this machine."""


def pinned_version(module_dir: Path = MODULE_DIR) -> str:
    text = (module_dir / "go.mod").read_text()
    m = re.search(r"go\.etcd\.io/etcd/server/v3 (v\d+\.\d+\.\d+)", text)
    if not m:
        raise EtcdInstallError(f"no go.etcd.io/etcd/server/v3 requirement in {module_dir / 'go.mod'}")
    return m.group(1)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shim"


def binary_path(module_dir: Path = MODULE_DIR) -> Path:
    h = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        h.update((module_dir / name).read_bytes())
    return cache_root() / f"etcd-{pinned_version(module_dir)}-{h.hexdigest()[:12]}" / "etcd"


def ensure_etcd(*, quiet: bool = False) -> Path:
    """The path of a working etcd binary of the pinned version, building it if needed."""
    override = os.environ.get("SHIM_ETCD_BINARY")
    if override:
        path = Path(override)
        _check_version(path)
        return path
    path = binary_path()
    if path.exists():
        return path
    go = shutil.which("go") or next((p for p in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go")
                                     if shutil.which(p)), None)
    if go is None:
        raise MissingPrerequisite("Go is not installed: it is needed to build etcd "
                                  f"{pinned_version()} (or set SHIM_ETCD_BINARY)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():          # built by someone else while we waited
            return path
        if not quiet:
            print(f"building etcd {pinned_version()} from the Go module proxy ...", file=sys.stderr)
        tmp = Path(tempfile.mkdtemp(prefix="etcd-build-", dir=path.parent))
        try:
            # Build from a copy so the repository's module dir is never written to.
            for name in ("go.mod", "go.sum", "main.go"):
                shutil.copy(MODULE_DIR / name, tmp / name)
            env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=readonly -buildvcs=false")
            ldflags = "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=shim-" + pinned_version()
            p = subprocess.run([go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(tmp / "etcd"), "."],
                               cwd=tmp, env=env, capture_output=True, text=True, timeout=1800)
            if p.returncode != 0:
                raise EtcdInstallError(f"go build of etcd failed:\n{p.stdout}\n{p.stderr}")
            _check_version(tmp / "etcd")
            os.replace(tmp / "etcd", path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def etcd_version(binary: Path) -> tuple[int, int, int]:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"etcd Version: (\d+)\.(\d+)\.(\d+)", out)
    if not m:
        raise EtcdInstallError(f"{binary} --version gave no version: {out!r}")
    return tuple(int(x) for x in m.groups())  # type: ignore[return-value]


def _check_version(binary: Path) -> None:
    v = etcd_version(binary)
    if v < MIN_VERSION:
        raise EtcdInstallError(f"{binary} is etcd {'.'.join(map(str, v))}; "
                               f"{'.'.join(map(str, MIN_VERSION))} or newer is needed")


def main(argv: list[str] | None = None) -> int:
    try:
        path = ensure_etcd()
    except EtcdInstallError as e:
        print(f"etcd install: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
