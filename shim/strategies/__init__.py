"""Per-resource strategies; importing this package registers them all."""
from shim.strategies import apps, core, discovery, events, networking, rbac, resource, reviews  # noqa: F401
