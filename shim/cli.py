"""The `shim` command line."""
from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shim", description="A Kubernetes control plane in Python")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the control plane in the foreground")
    up.add_argument("--data-dir", default="./data", type=Path)
    up.add_argument("--listen", default="127.0.0.1:6443", help="HOST:PORT to serve HTTPS on")
    up.add_argument("--advertise-address", default=None,
                    help="the address the kubernetes Service's endpoints point at (default: the "
                         "--listen address if routable, else the host's primary address)")
    up.add_argument("--pki-dir", type=Path, default=None, help="PKI directory (default DATA_DIR/pki)")
    up.add_argument("--token-auth-file", type=Path, default=None,
                    help="static bearer tokens (CSV: token,user,uid,\"group1,group2\")")
    up.add_argument("--store", default="sqlite", choices=["sqlite", "etcd"], help="cluster store backend")
    up.add_argument("--etcd-endpoints", default="http://127.0.0.1:2379",
                    help="etcd client URLs, comma-separated (with --store etcd)")
    up.add_argument("--etcd-cafile", default=None, help="CA bundle to verify etcd's serving certificate")
    up.add_argument("--etcd-certfile", default=None, help="client certificate for etcd")
    up.add_argument("--etcd-keyfile", default=None, help="client key for etcd")
    up.add_argument("--leader-elect", default="auto", choices=["auto", "true", "false"],
                    help="run controllers only while holding the kube-system Lease "
                         "(auto: when the store can be shared, i.e. etcd)")
    up.add_argument("--no-scheduler", action="store_true",
                    help="do not run the scheduler (the controller manager still runs)")
    up.add_argument("--no-controllers", action="store_true",
                    help="the API server alone: no controller manager, no scheduler")
    up.add_argument("--ip-repair-interval", default="3m", type=positive_duration,
                    help="how often Service IPs and IPAddresses are reconciled (Go duration, e.g. 3m, 10s)")
    up.add_argument("--event-ttl", default="1h", type=go_duration, metavar="DURATION",
                    help="how long an Event is kept after its last write, as a Go duration "
                         "(1h, 90s, 2m30s; 0 keeps Events for ever; default 1h)")
    up.add_argument("--log-level", default="INFO")
    sched = sub.add_parser("scheduler", help="run the scheduler against an API server")
    sched.add_argument("--kubeconfig", required=True, type=Path)
    sched.add_argument("--scheduler-name", default="default-scheduler")
    sched.add_argument("--percentage-of-nodes-to-score", type=int, default=0)
    sched.add_argument("--taint-nodes-by-condition", action="store_true",
                       help="also taint nodes whose Ready condition is False/Unknown")
    sched.add_argument("--log-level", default="INFO")
    cm = sub.add_parser("controller-manager",
                        help="run the controllers (and optionally the scheduler) against an API server")
    cm.add_argument("--kubeconfig", required=True, type=Path)
    cm.add_argument("--root-ca-file", type=Path, default=None,
                    help="CA published in every namespace's kube-root-ca.crt (default: the kubeconfig's)")
    cm.add_argument("--scheduler-kubeconfig", type=Path, default=None,
                    help="also run the scheduler, with these credentials")
    cm.add_argument("--leader-elect", action="store_true",
                    help="run only while holding the kube-system/shim-controller-manager Lease")
    cm.add_argument("--leader-elect-identity", default="")
    cm.add_argument("--parent-pid", type=int, default=0, help=argparse.SUPPRESS)
    cm.add_argument("--log-level", default="INFO")
    from shim.node.cli import add_node_parser
    add_node_parser(sub)
    etcd = sub.add_parser("etcd", help="etcd helpers")
    etcd.add_argument("action", choices=["install"], help="install: build (once) the pinned etcd, print its path")
    args = parser.parse_args(argv)
    if args.command == "up":
        return _up(args)
    if args.command == "scheduler":
        return _scheduler(args)
    if args.command == "controller-manager":
        return _controller_manager(args)
    if args.command == "node":
        return args.node_func(args)
    if args.command == "etcd":
        from shim.tools.etcd_install import main as etcd_install
        return etcd_install([])
    return 2


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
                   "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def go_duration(text: str) -> float:
    """Seconds in a duration written as Go's time.ParseDuration reads it ("1h", "90s",
    "1h30m", "1.5m", "300ms"; "0" alone). Negative durations are refused: none of our
    options means anything by them."""
    s = text.strip()
    if s in ("0", "+0"):
        return 0.0
    body = s[1:] if s.startswith("+") else s
    pos, total = 0, 0.0
    while pos < len(body):
        m = _DURATION_PART.match(body, pos)
        if m is None:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if not body or pos != len(body):
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r} (use a number and a unit: 1h, 90s, 2m30s, 500ms)")
    return total


def positive_duration(text: str) -> float:
    """A Go duration that must be above zero (an interval)."""
    value = go_duration(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"duration must be positive: {text!r}")
    return value


def _setup(args) -> None:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop
        uvloop.install()
    except ImportError:  # pragma: no cover
        pass


def _run_until_signalled(make) -> int:
    """Run the coroutine `make()` returns until it ends or SIGINT/SIGTERM cancels it."""
    async def run() -> int:
        task = asyncio.ensure_future(make())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass
        return 0
    return asyncio.run(run())


def _scheduler(args) -> int:
    from shim.scheduler.run import run_standalone
    _setup(args)
    return _run_until_signalled(lambda: run_standalone(
        str(args.kubeconfig), scheduler_name=args.scheduler_name,
        percentage_of_nodes_to_score=args.percentage_of_nodes_to_score,
        taint_nodes=args.taint_nodes_by_condition))


def _controller_manager(args) -> int:
    from shim.controllers.run import run_controller_manager
    _setup(args)
    return _run_until_signalled(lambda: run_controller_manager(
        args.kubeconfig, root_ca_file=args.root_ca_file, scheduler_kubeconfig=args.scheduler_kubeconfig,
        leader_elect=args.leader_elect, identity=args.leader_elect_identity,
        parent_pid=args.parent_pid))


def _up(args) -> int:
    from shim.controlplane import ControlPlane, DataDirLocked
    _setup(args)
    store_opts = None
    if args.store == "etcd":
        store_opts = {"endpoints": args.etcd_endpoints, "cafile": args.etcd_cafile,
                      "certfile": args.etcd_certfile, "keyfile": args.etcd_keyfile}
    leader_elect = {"auto": None, "true": True, "false": False}[args.leader_elect]
    cp = ControlPlane(args.data_dir, listen=args.listen, pki_dir=args.pki_dir, store=args.store,
                      token_file=args.token_auth_file, store_opts=store_opts, leader_elect=leader_elect,
                      run_scheduler=not args.no_scheduler, run_controllers=not args.no_controllers,
                      ip_repair_interval=args.ip_repair_interval, event_ttl=args.event_ttl,
                      advertise_address=args.advertise_address)

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
