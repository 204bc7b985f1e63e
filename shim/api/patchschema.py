"""Strategic-merge metadata read from schemas/ (types plus patch extensions).

Adapts the generated type map to the small PatchSchema protocol the patch engine uses:
for a field, the schema of its value, whether it is a list or a map, its merge key and
patch strategy (x-kubernetes-patch-merge-key / x-kubernetes-patch-strategy).
"""
from __future__ import annotations

from shim.api.patch import FieldMeta


class TypesPatchSchema:
    def __init__(self, types: dict, definition: str):
        self.types = types
        self.definition = definition
        self.name = definition.rsplit(".", 1)[-1]
        self._fields: dict[str, FieldMeta | None] = {}

    def field(self, name: str) -> FieldMeta | None:
        if name in self._fields:
            return self._fields[name]
        entry = self.types.get(self.definition) or {}
        ref = (entry.get("properties") or {}).get(name)
        if ref is None and name == "metadata":
            ref = {"$ref": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
        meta = None if ref is None else self._meta(ref)
        self._fields[name] = meta
        return meta

    def _meta(self, ref: dict) -> FieldMeta:
        strategy = tuple(s for s in (ref.get("x-kubernetes-patch-strategy") or "").split(",") if s)
        merge_key = ref.get("x-kubernetes-patch-merge-key")
        if ref.get("type") == "array":
            return FieldMeta(schema=self._child(ref.get("items") or {}), is_list=True,
                             merge_key=merge_key, strategy=strategy)
        if ref.get("type") == "object" and "additionalProperties" in ref:
            return FieldMeta(schema=_MapSchema(self, ref["additionalProperties"]), is_list=False,
                             merge_key=merge_key, strategy=strategy, is_map=True)
        return FieldMeta(schema=self._child(ref), is_list=False, merge_key=merge_key, strategy=strategy)

    def _child(self, ref: dict):
        target = ref.get("$ref")
        if target and (self.types.get(target) or {}).get("properties") is not None:
            return TypesPatchSchema(self.types, target)
        return None


class _MapSchema:
    """A map[string]X: every key has the value schema X."""

    def __init__(self, parent: TypesPatchSchema, value_ref: dict):
        self._meta = parent._meta(value_ref)

    def field(self, name: str) -> FieldMeta | None:
        return self._meta
