"""The `shim` command line."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shim", description="A Kubernetes control plane in Python")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the control plane in the foreground")
    up.add_argument("--data-dir", default="./data", type=Path)
    up.add_argument("--listen", default="127.0.0.1:6443", help="HOST:PORT to serve HTTPS on")
    up.add_argument("--pki-dir", type=Path, default=None, help="PKI directory (default DATA_DIR/pki)")
    up.add_argument("--token-auth-file", type=Path, default=None,
                    help="static bearer tokens (CSV: token,user,uid,\"group1,group2\")")
    up.add_argument("--store", default="sqlite", choices=["sqlite"], help="cluster store backend")
    up.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if args.command == "up":
        return _up(args)
    return 2


def _up(args) -> int:
    from shim.controlplane import ControlPlane, DataDirLocked
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop
        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    cp = ControlPlane(args.data_dir, listen=args.listen, pki_dir=args.pki_dir, store=args.store,
                      token_file=args.token_auth_file)

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await cp.start()
        except DataDirLocked as e:
            print(f"shim: {e}", file=sys.stderr)
            return 1
        print(f"shim: serving {cp.server_url}; kubeconfig: {cp.kubeconfig_path.resolve()}", flush=True)
        await stop.wait()
        print("shim: stopping", flush=True)
        await cp.stop()
        return 0

    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
