"""Per-resource strategies; importing this package registers them all."""
from shim.strategies import apps, core, resource, reviews  # noqa: F401
