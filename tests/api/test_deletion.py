"""What a DELETE's options do to the garbage collector's finalizers (as upstream's generic store)."""
from __future__ import annotations

import pytest

from shim.api import errors
from shim.api.registry import DeleteOptions, gc_finalizers

H = "example.com/hold"


def opts(policy: str = "", orphan: bool | None = None) -> DeleteOptions:
    return DeleteOptions(propagation_policy=policy, orphan_dependents=orphan)


@pytest.mark.parametrize("current, o, policy, want", [
    # an explicit policy decides, whatever is there
    ([], opts("Orphan"), "DeleteDependents", ["orphan"]),
    ([], opts("Foreground"), "DeleteDependents", ["foregroundDeletion"]),
    ([], opts("Background"), "OrphanDependents", []),
    ([H, "orphan"], opts("Foreground"), "DeleteDependents", [H, "foregroundDeletion"]),
    ([H, "foregroundDeletion"], opts("Background"), "DeleteDependents", [H]),
    # the deprecated orphanDependents: true orphans, false means neither
    ([H], opts(orphan=True), "DeleteDependents", [H, "orphan"]),
    (["orphan"], opts(orphan=False), "OrphanDependents", []),
    # nothing said: a finalizer already there stays, else the kind's default
    ([H, "foregroundDeletion"], opts(), "OrphanDependents", [H, "foregroundDeletion"]),
    (["orphan", H], opts(), "DeleteDependents", ["orphan", H]),
    ([H], opts(), "DeleteDependents", [H]),
    ([H], opts(), "OrphanDependents", [H, "orphan"]),
    # kinds outside garbage collection never get either (and lose them)
    ([], opts("Orphan"), "Unsupported", []),
    (["orphan", H], opts(), "Unsupported", [H]),
])
def test_gc_finalizers(current, o, policy, want):
    assert gc_finalizers(current, o, policy) == want


def test_delete_options_parse():
    o = DeleteOptions.parse({"orphanDependents": "false"}, None)
    assert (o.orphan_dependents, o.propagation_policy) == (False, "")
    o = DeleteOptions.parse({}, {"orphanDependents": True})
    assert o.orphan_dependents is True
    o = DeleteOptions.parse({"propagationPolicy": "Foreground"}, {})
    assert (o.orphan_dependents, o.propagation_policy) == (None, "Foreground")
    with pytest.raises(errors.ApiError) as e:
        DeleteOptions.parse({}, {"orphanDependents": False, "propagationPolicy": "Background"})
    assert e.value.code == 422
    assert "orphanDependents and deletionPropagation cannot be both set" in str(e.value)
