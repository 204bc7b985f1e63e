"""Server-side apply: PATCH with Content-Type application/apply-patch+yaml.

The applied configuration is merged into the live object by the schema (maps merge, atomic
lists are replaced, set lists are unioned, map lists merge by their keys); fields the
applier owned before but left out of this configuration are removed unless another manager
owns them too; a field another manager owns with a different value is a conflict (409)
unless `force=true`, which takes the field over. Ownership is kept in
metadata.managedFields (shim.api.managedfields).

The layers follow upstream's field manager (managedfields.FieldManager.Apply): version
check, last-applied annotation handling for the "kubectl" manager, the
"before-first-apply" manager for objects with no recorded ownership, the manager
identifier, times, stripping of server-set metadata, and the structured merge updater.
"""
from __future__ import annotations

import dataclasses
import json

import orjson
import yaml

from shim.api import errors
from shim.api import managedfields as mf
from shim.api.managedfields import Conflicts, FieldSet, Managed, T
from shim.api.objects import now_rfc3339

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class UnknownStatusError(errors.ApiError):
    """An error upstream returns without a Status reason (a plain Go error: 500, reason "")."""

    def __init__(self, message: str, code: int = 500):
        super().__init__(code, "", message)

    def status(self):
        body = super().status()
        body.pop("reason", None)
        return body


def conflict_error(c: Conflicts) -> errors.ApiError:
    causes = [{"reason": "FieldManagerConflict",
               "message": f"conflict with {mf.print_manager(x.manager)}",
               "field": mf.path_string(x.path)} for x in c.conflicts]
    return errors.ApiError(409, "Conflict", mf.conflict_message(c.conflicts), {"causes": causes})


# ---------------------------------------------------------------------------------------
# The updater's apply (merge.Updater.Apply and prune)
# ---------------------------------------------------------------------------------------

def _ens(s: FieldSet, t: T) -> FieldSet:
    return mf.ensure_named_fields_are_members(s, t)


def _prune(merged, t: T, managed: Managed, applier: str, last: FieldSet | None):
    """Remove what the applier owned before and no longer applies, unless someone else owns it."""
    if last is None or last.empty():
        return merged
    pruned = mf.remove_items(merged, _ens(last, t), t)
    # add back items owned by any manager
    owned = FieldSet()
    for s, _, _ in managed.fields.values():
        owned = owned.union(s)
    merged_set = _ens(mf.to_field_set(merged, t), t)
    pruned_set = _ens(mf.to_field_set(pruned, t), t)
    pruned = mf.remove_items(merged, merged_set.difference(pruned_set.union(_ens(owned, t))), t)
    # add back dangling items (never part of the last applied set)
    pruned_set = _ens(mf.to_field_set(pruned, t), t)
    return mf.remove_items(merged, merged_set.difference(pruned_set).intersection(_ens(last, t)), t)


def structured_apply(live, config, t: T, version: str, managed: Managed, applier: str, force: bool,
                     reset: FieldSet | None):
    """(new object or None when nothing changed, managed). Raises Conflicts."""
    try:
        merged = mf.merge(live, config, t)
    except mf.MergeError as e:
        raise UnknownStatusError(f"failed to merge config: {e}") from None
    last = managed.fields.get(applier)
    applied = mf.to_field_set(config, t)
    if reset is not None:
        applied = applied.recursive_difference(reset)
    managed.fields[applier] = (applied, version, True)
    merged = _prune(merged, t, managed, applier, last[0] if last else None)
    mf._update(live, merged, t, version, managed, applier, force, reset)
    if mf.json_equal(live, merged):
        merged = None
    return merged, managed


# ---------------------------------------------------------------------------------------
# The field manager layers
# ---------------------------------------------------------------------------------------

@dataclasses.dataclass
class Target:
    """What is being applied to: a kind (or the Scale view) at one endpoint."""
    t: T
    defn: str
    group_version: str
    kind: str
    subresource: str
    reset: FieldSet | None
    # managedFields entries of other APIs serving the same objects (Strategy.managed_fields_renames)
    renames: dict = dataclasses.field(default_factory=dict)


def _gvk_string(api_version, kind) -> str:
    av = api_version if isinstance(api_version, str) else ""
    if "/" in av:
        group, _, version = av.partition("/")
        if "/" in version:
            group = version = ""
    else:
        group, version = "", av
    return f"{group}/{version}, Kind={kind if isinstance(kind, str) else ''}"


def _object_gvknn(obj: dict, target: Target) -> str:
    m = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return f"{m.get('namespace', '')}/{m.get('name', '')}; {_gvk_string(obj.get('apiVersion'), obj.get('kind'))}"


def _build_last_applied(config: dict) -> str:
    obj = mf._copy(config)
    md = obj.get("metadata")
    if isinstance(md, dict) and isinstance(md.get("annotations"), dict):
        md["annotations"].pop(LAST_APPLIED, None)
        if not md["annotations"]:
            del md["annotations"]
    return mf._go_json(_sorted(obj)) + "\n"


def _sorted(v):
    if isinstance(v, dict):
        return {k: _sorted(v[k]) for k in sorted(v)}
    if isinstance(v, list):
        return [_sorted(x) for x in v]
    return v


def _allowed_conflicts_from_last_applied(live: dict | None, live_view, target: Target) -> FieldSet | None:
    ann = ((live or {}).get("metadata") or {}).get("annotations") or {}
    raw = ann.get(LAST_APPLIED)
    if not raw:
        return None
    try:
        last = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(last, dict) or last.get("apiVersion") != target.group_version:
        return None
    if mf.validate(last, target.t):
        return None
    last_set = mf.to_field_set(last, target.t)
    cmp = mf.compare(last, live_view, target.t)
    return last_set.difference(cmp.modified).difference(cmp.added).difference(cmp.removed)


def apply_object(live: dict | None, config: dict, target: Target, manager: str, force: bool,
                 managed: Managed | None = None) -> tuple[dict, Managed]:
    """Apply `config` to `live` (None: create). Returns the object to store, without managedFields
    encoded, and the new ownership. Raises ApiError (400 / 409 / 500) as upstream."""
    if managed is None:
        try:
            managed = mf.decode_managed_fields(((live or {}).get("metadata") or {}).get("managedFields"))
        except mf.ManagedFieldsError as e:
            raise UnknownStatusError(f"failed to decode managed fields: {e}") from None
    managed = mf.convert_versions(managed, target.renames)
    # versionCheckManager
    if config.get("apiVersion") != target.group_version or config.get("kind") != target.kind:
        raise errors.bad_request(f"invalid object type: {_gvk_string(config.get('apiVersion'), config.get('kind'))}")
    md = config.get("metadata")
    if isinstance(md, dict) and md.get("managedFields") is not None:
        raise errors.bad_request("metadata.managedFields must be nil")
    problems = mf.validate(config, target.t)
    if problems:
        detail = problems[0] if len(problems) == 1 else "errors:\n" + "\n".join("  " + p for p in problems)
        raise UnknownStatusError(f"failed to create typed patch object ({_object_gvknn(config, target)}): {detail}")

    if live is None:
        live_view = mf.zero_object(target.defn)
    else:
        live_view = mf._prepared(live, target.t)
    ident = mf.manager_identifier(manager, "Apply", "", target.subresource)

    def run(force_: bool):
        m = managed.copy()
        if not m.fields:  # skipNonAppliedManager: existing fields go to "before-first-apply"
            m = mf.update_ownership(mf.zero_object(target.defn), live_view, target.t, target.group_version, m,
                                    "before-first-apply", target.subresource, target.reset,
                                    live_has_uid=False)
        new, m = structured_apply(live_view, config, target.t, target.group_version, m, ident, force_,
                                  target.reset)
        mf._strip_meta(m, ident)
        if new is not None:
            m.times[ident] = now_rfc3339()
        return new, m

    try:
        new, managed = run(force)
    except Conflicts as c:
        if manager != "kubectl":
            raise conflict_error(c) from None
        allowed = _allowed_conflicts_from_last_applied(live, live_view, target)
        if allowed is None:
            raise conflict_error(c) from None
        remaining = [x for x in c.conflicts if not allowed.has(x.path)]
        if remaining:
            raise conflict_error(Conflicts(remaining)) from None
        try:
            new, managed = run(True)
        except Conflicts as c2:  # pragma: no cover (force never conflicts)
            raise conflict_error(c2) from None

    if new is None:
        out = mf._copy(live) if live is not None else {}
    else:
        out = mf.strip_nulls(mf.go_normalize(new, target.t, fill=False))
        head = {k: out.pop(k) for k in ("apiVersion", "kind", "metadata") if k in out}
        out = {**head, **out}
    out_md = out.setdefault("metadata", {})
    if isinstance(out_md, dict):
        out_md.pop("managedFields", None)
    # lastAppliedUpdater: the server keeps kubectl's last-applied annotation current
    if manager == "kubectl" and isinstance(out_md, dict):
        ann = out_md.get("annotations")
        if isinstance(ann, dict) and ann.get(LAST_APPLIED):
            ann[LAST_APPLIED] = _build_last_applied(config)
    return out, mf.convert_versions(managed, target.renames, back=True)


# ---------------------------------------------------------------------------------------
# The HTTP handler
# ---------------------------------------------------------------------------------------

class _NoTimestampLoader(yaml.SafeLoader):
    """YAML as sigs.k8s.io/yaml reads it: timestamps stay strings."""


_NoTimestampLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _go_bool(raw: str, name: str) -> bool:
    if raw in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if raw in ("0", "f", "F", "FALSE", "false", "False", ""):
        return False
    raise errors.bad_request(f'strconv.ParseBool: parsing "{raw}": invalid syntax')


def _validate_options(field_manager: str) -> None:
    from shim.api import validation as v
    errs = []
    if not field_manager:
        errs.append(v.required("fieldManager", "is required for apply patch"))
    if len(field_manager.encode("utf-8")) > mf.FIELD_MANAGER_MAX_LENGTH:
        errs.append(v.too_long("fieldManager", mf.FIELD_MANAGER_MAX_LENGTH))
    for i, ch in enumerate(field_manager):
        if not mf._is_print(ch):
            errs.append(v.invalid("fieldManager", field_manager,
                                  f"invalid character {_go_unicode(ch)} (at position {i})"))
    if errs:
        raise errors.invalid("PatchOptions", "meta.k8s.io", "", errs)


def _go_unicode(ch: str) -> str:
    """Go's %#U: U+0007 (with the character quoted when printable)."""
    cp = ord(ch)
    s = f"U+{cp:04X}"
    if mf._is_print(ch):
        s += f" '{ch}'"
    return s


def _duplicate_keys(raw: bytes) -> list[str]:
    """Keys set twice in one mapping, as strict YAML decoding reports them (`line 1: key "a" already set
    in map`); JSON bodies are read as the YAML they also are."""
    if raw.lstrip()[:1] == b"{":  # JSON: a quick look first; YAML only to word what it finds
        found = []

        def hook(pairs):
            keys = [k for k, _ in pairs]
            if len(set(keys)) != len(keys):
                found.append(True)
            return None
        try:
            json.loads(raw, object_pairs_hook=hook)
            if not found:
                return []
        except ValueError:
            pass
    dups: list[str] = []

    class L(_NoTimestampLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        seen = set()
        for knode, _ in node.value:
            k = loader.construct_object(knode, deep=deep)
            if isinstance(k, (str, int, float, bool)) and k in seen:
                dups.append(f"line {knode.start_mark.line + 1}: key {json.dumps(k)} already set in map")
            seen.add(k)
        return yaml.SafeLoader.construct_mapping(loader, node, deep)
    L.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    try:
        yaml.load(raw, Loader=L)
    except yaml.YAMLError:
        return []
    return dups


def decode_config(raw: bytes) -> dict:
    text = raw.strip()
    data = None
    if text[:1] in (b"{", b"["):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            data = None
    if data is None and text:
        try:
            data = yaml.load(raw, Loader=_NoTimestampLoader)
        except yaml.YAMLError as e:
            raise errors.bad_request(f"error decoding patch: yaml: {_yaml_problem(e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = "array" if isinstance(data, list) else ("string" if isinstance(data, str) else
                                                     "bool" if isinstance(data, bool) else "number")
        raise errors.bad_request(f"error decoding patch: json: cannot unmarshal {kind} into Go value of type "
                                 f"map[string]interface {{}}")
    return orjson.loads(orjson.dumps(data, default=str))


def _yaml_problem(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    if mark is not None:
        return f"line {mark.line + 1}: {problem}"
    return problem


async def handle_apply(api, request, rs, ns: str, name: str, subresource: str, raw: bytes, wopts,
                       to_view=None, from_view=None):
    from shim.api import server as srv
    q = request.query
    force = _go_bool(q.get("force", ""), "force")
    _validate_options(wopts.field_manager)
    config = decode_config(raw)
    mode = wopts.field_validation or "Warn"
    warnings: list[str] = []
    strict_errors = _duplicate_keys(raw) if mode in ("Strict", "Warn") else []
    opts = dataclasses.replace(wopts, server_side_apply=True)
    info = rs.info
    if subresource == "scale":
        target = Target(mf.object_type(mf.SCALE_DEFN), mf.SCALE_DEFN, mf.SCALE_GV, "Scale", "scale", None)
    else:
        target = Target(mf.object_type(info.definition), info.definition, info.group_version, info.kind,
                        subresource, mf.reset_fields(info, subresource), rs.strategy.managed_fields_renames)
    manager = wopts.field_manager

    def check_strict():
        if not strict_errors:
            return
        msg = _strict_message(strict_errors)
        if mode == "Strict":
            raise errors.bad_request(f"error strict decoding patch: {msg}")
        warnings[:] = [msg.replace("\n", " ")]

    def check_identity(obj: dict):
        m = obj.get("metadata") or {}
        cname = m.get("name")
        if cname and cname != name:
            raise errors.bad_request(f"the name of the object ({cname}) does not match the name on the URL ({name})")
        cns = m.get("namespace")
        if info.namespaced and cns and ns and cns != ns:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on "
                                     "the request")

    for _attempt in range(2):
        current = await rs.get_or_none(ns, name)
        if current is None:
            if subresource:
                raise rs._name_err(name)
            obj, managed = apply_object(None, config, target, manager, force)
            check_strict()
            m = obj.setdefault("metadata", {})
            if m.get("uid"):
                raise errors.conflict(info.plural, info.group, name,
                                      f"uid mismatch: the provided object specified uid {m['uid']}, and no "
                                      f"existing object was found")
            check_identity(obj)
            m["name"] = name
            encoded = mf.encode_managed_fields(managed)
            if encoded:
                m["managedFields"] = encoded
            try:
                created = await rs.create(ns, obj, opts, request["user"])
            except errors.ApiError as e:
                if e.code == 409 and e.reason == "AlreadyExists" and _attempt == 0:
                    continue  # created meanwhile: apply to it
                raise
            return srv.respond_object(request, rs, created, 201, warnings)
        break

    def mutate(cur: dict) -> dict:
        if subresource == "scale":
            return _apply_scale(rs, cur, config, target, manager, force, to_view, from_view, check_strict)
        obj, managed = apply_object(cur, config, target, manager, force)
        check_strict()
        check_identity(obj)
        encoded = mf.encode_managed_fields(managed)
        md = obj.setdefault("metadata", {})
        if encoded:
            md["managedFields"] = encoded
        else:
            md.pop("managedFields", None)
        return obj

    obj = await rs.patch_apply(ns, name, mutate, opts, subresource, request["user"])
    if to_view:
        return srv.json_response(to_view(obj), headers=srv._warning_headers(warnings))
    return srv.respond_object(request, rs, obj, 200, warnings)


def _strict_message(dups: list[str]) -> str:
    return "error converting YAML to JSON: yaml: unmarshal errors:\n" + "\n".join("  " + d for d in dups)


def _apply_scale(rs, cur: dict, config: dict, target: Target, manager: str, force: bool, to_view, from_view,
                 check_strict) -> dict:
    parent_gv = rs.info.group_version
    parent = mf.decode_managed_fields((cur.get("metadata") or {}).get("managedFields"))
    scale_managed = mf.scale_to_subresource(parent, parent_gv)
    live_scale = to_view(cur)
    new_scale, scale_managed = apply_object(live_scale, config, target, manager, force, scale_managed)
    check_strict()
    new = from_view(new_scale, cur)
    encoded = mf.encode_managed_fields(mf.scale_to_parent(parent, scale_managed, parent_gv))
    md = new.setdefault("metadata", {})
    if encoded:
        md["managedFields"] = encoded
    else:
        md.pop("managedFields", None)
    return new
