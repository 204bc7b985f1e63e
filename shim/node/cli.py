"""`shim node install|up|down`: argument parsing for the real-node commands."""
from __future__ import annotations

import sys
from pathlib import Path


def add_node_parser(sub) -> None:
    node = sub.add_parser("node", help="real nodes on this host: upstream kubelet + containerd")
    nsub = node.add_subparsers(dest="node_command", required=True)
    inst = nsub.add_parser("install", help="build kubelet/kube-proxy/kubeadm, apt-get containerd, "
                                           "runc and CNI plugins, build the local images")
    inst.add_argument("--skip-apt", action="store_true", help="do not apt-get install anything")
    inst.add_argument("--skip-build", action="store_true", help="do not build the Kubernetes binaries")
    inst.set_defaults(node_func=_install)
    up = nsub.add_parser("up", help="start containerd, the kubelet and kube-proxy for one node")
    up.add_argument("--name", required=True)
    up.add_argument("--data-dir", default="./data", type=Path)
    up.add_argument("-v", "--verbosity", type=int, default=2, help="kubelet and kube-proxy log verbosity")
    up.add_argument("--proxy-mode", choices=("iptables", "nftables"), default="iptables",
                    help="kube-proxy's mode (default iptables, as kind's)")
    up.set_defaults(node_func=_up)
    down = nsub.add_parser("down", help="stop a node and clean up its mounts and network state")
    down.add_argument("--name", required=True)
    down.add_argument("--data-dir", default="./data", type=Path)
    down.set_defaults(node_func=_down)


def _install(args) -> int:
    from shim.node.install import install
    return install(skip_apt=args.skip_apt, skip_build=args.skip_build)


def _up(args) -> int:
    from shim.node.up import NodeError, node_up
    try:
        node_up(args.data_dir, args.name, verbosity=args.verbosity, proxy_mode=args.proxy_mode)
    except NodeError as e:
        print(f"shim node up: {e}", file=sys.stderr)
        return 1
    return 0


def _down(args) -> int:
    from shim.node.up import NodeError, node_down
    try:
        node_down(args.data_dir, args.name)
    except NodeError as e:
        print(f"shim node down: {e}", file=sys.stderr)
        return 1
    return 0
