"""The project's own etcd installer (shim/tools/etcd_install.py, scripts/install-etcd.sh)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shim.tools import etcd_install
from shim.tools.etcd_install import MIN_VERSION, binary_path, etcd_version, pinned_version

from etcd_harness import etcd_binary  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent


def test_pin_and_cache_path():
    v = pinned_version()
    assert v.startswith("v3.") and tuple(int(x) for x in v[1:].split(".")) >= MIN_VERSION
    path = binary_path()
    assert path.name == "etcd" and path.parent.name.startswith(f"etcd-{v}-")
    assert binary_path() == path                      # stable: rebuilt only if the pin changes


def test_install_is_idempotent_and_pinned(etcd_binary):
    assert etcd_binary == binary_path()
    assert etcd_version(etcd_binary) == tuple(int(x) for x in pinned_version()[1:].split("."))
    before = etcd_binary.stat().st_mtime_ns
    out = subprocess.run([str(ROOT / "scripts" / "install-etcd.sh")], capture_output=True, text=True,
                         timeout=120, check=True).stdout.strip()
    assert Path(out) == etcd_binary and etcd_binary.stat().st_mtime_ns == before
    out = subprocess.run([sys.executable, "-m", "shim.cli", "etcd", "install"], capture_output=True,
                         text=True, timeout=120, check=True, cwd=ROOT).stdout.strip()
    assert Path(out) == etcd_binary


def test_missing_go_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))   # nothing cached here
    monkeypatch.delenv("SHIM_ETCD_BINARY", raising=False)
    monkeypatch.setattr(etcd_install.shutil, "which", lambda name: None)
    try:
        etcd_install.ensure_etcd(quiet=True)
    except etcd_install.MissingPrerequisite as e:
        assert "Go is not installed" in str(e)
    else:
        raise AssertionError("expected MissingPrerequisite")
