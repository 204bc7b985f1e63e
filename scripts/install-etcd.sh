#!/usr/bin/env bash
# Build (once) and print the path of the pinned etcd server; see shim/tools/etcd_install.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
exec "$PY" -m shim.tools.etcd_install "$@"
