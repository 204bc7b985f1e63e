"""rbac.authorization.k8s.io: names are path segments, not DNS subdomains.

Upstream's ValidateRBACName is path.IsValidPathSegmentName: anything but `.`, `..` and names
containing `/` or `%`, so the `system:` prefixed names of the bootstrap roles and of addons
(kubeadm's `system:coredns`) are valid. Nothing is enforced yet (see README)."""
from __future__ import annotations

from shim.api.strategy import Strategy, strategy_for


def path_segment_name(name: str, prefix: bool = False) -> list[str]:
    if not prefix and name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


for _plural in ("roles", "clusterroles", "rolebindings", "clusterrolebindings"):
    @strategy_for("rbac.authorization.k8s.io", _plural)
    class _RBACStrategy(Strategy):
        name_validator = staticmethod(path_segment_name)
