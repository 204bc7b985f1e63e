#!/usr/bin/env python3
"""Generate schemas/types.json from the official Python client's models.

Run by hand (the output is committed):

    .venv/bin/python schemas/gen_types.py [--spec-dir DIR]

Source of truth for the field list of every type is the `kubernetes` Python
client (pydantic models: ``openapi_types`` gives the Python type string,
``attribute_map`` the JSON name, ``model_fields[...].is_required()`` whether
the field is required).

The Python client cannot tell us a few things, so the generator also reads the
upstream OpenAPI v3 documents of the matching Kubernetes release (the
``api/openapi-spec/v3`` directory of the ``k8s.io/kubernetes`` Go module,
fetched with ``go mod download``).  From them we take only facts:

* the OpenAPI definition name of each Python class (V1Pod ->
  io.k8s.api.core.v1.Pod), matched by candidate names and verified by
  comparing property sets;
* integer widths (int32 / int64) and string formats (byte);
* which ``str`` / ``object`` / ``datetime`` fields really are the special
  apimachinery leaf types (Quantity, IntOrString, Time, MicroTime,
  RawExtension, FieldsV1, ...);
* ``x-kubernetes-group-version-kind`` of top-level kinds.

Output format (one definition per line, keys sorted)::

    {definition: {"properties": {jsonName: typeRef}, "required": [...],
                  "x-kubernetes-group-version-kind": [...]},   # struct
     definition: {<leaf typeRef>}}                              # leaf types

typeRef is one of::

    {"type": "string"} / {"type": "string", "format": "byte"}
    {"type": "integer", "format": "int32"|"int64"}
    {"type": "boolean"} / {"type": "number", "format": "double"}
    {"type": "string", "format": "date-time", "x-definition": Time|MicroTime}
    {"type": "string", "x-kubernetes-quantity": true, "x-definition": Quantity}
    {"x-kubernetes-int-or-string": true, "x-definition": IntOrString}
    {"type": "object", "x-kubernetes-preserve-unknown-fields": true[, "x-definition": ...]}
    {"$ref": definition}
    {"type": "array", "items": typeRef}
    {"type": "object", "additionalProperties": typeRef}

``x-definition`` names the upstream definition a leaf stands for, so that the
OpenAPI generator can emit a ``$ref`` to it.  Patch metadata lives in
schemas/patch.yaml and is merged by shim.schemas.load_types().
"""

from __future__ import annotations

import argparse
import glob
import inspect
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
TIME = META + "Time"
MICRO_TIME = META + "MicroTime"

# Leaf definitions: named upstream types that we do not expand into
# properties.  Value: the typeRef we use for them.
FREE_FORM = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
LEAVES = {
    QUANTITY: {"type": "string", "x-kubernetes-quantity": True},
    INT_OR_STRING: {"x-kubernetes-int-or-string": True},
    TIME: {"type": "string", "format": "date-time"},
    MICRO_TIME: {"type": "string", "format": "date-time"},
    "io.k8s.apimachinery.pkg.runtime.RawExtension": dict(FREE_FORM),
    META + "FieldsV1": dict(FREE_FORM),
    META + "Patch": dict(FREE_FORM),
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON": dict(FREE_FORM),
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray": dict(FREE_FORM),
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool": dict(FREE_FORM),
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray": dict(FREE_FORM),
}


def leaf_ref(defn: str) -> dict:
    out = dict(LEAVES[defn])
    out["x-definition"] = defn
    return out


# ---------------------------------------------------------------------------
# upstream spec


def find_spec_dir(explicit: str | None) -> str:
    if explicit:
        return explicit
    env = os.environ.get("K8S_OPENAPI_V3_DIR")
    if env:
        return env
    try:
        modcache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True,
                                  text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        modcache = os.path.expanduser("~/go/pkg/mod")
    cands = sorted(glob.glob(os.path.join(modcache, "k8s.io", "kubernetes@v1.37.*",
                                          "api", "openapi-spec", "v3")))
    if not cands:
        sys.exit("upstream OpenAPI v3 spec not found; run\n"
                 "  cd /tmp && mkdir -p gm && cd gm && go mod init x; "
                 "go mod download -json k8s.io/kubernetes@v1.37.2\n"
                 "or pass --spec-dir")
    return cands[-1]


def load_spec_defs(spec_dir: str) -> tuple[dict, dict]:
    """All component schemas of all v3 documents, plus the GVK lists."""
    defs: dict = {}
    gvks: dict = {}
    for path in sorted(glob.glob(os.path.join(spec_dir, "*_openapi.json"))):
        with open(path) as f:
            doc = json.load(f)
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            defs.setdefault(name, schema)
            for gvk in schema.get("x-kubernetes-group-version-kind", ()):
                lst = gvks.setdefault(name, [])
                item = {"group": gvk["group"], "kind": gvk["kind"], "version": gvk["version"]}
                if item not in lst:
                    lst.append(item)
    return defs, gvks


def spec_ref_name(prop: dict | None) -> str | None:
    """Definition name a spec property points at (through allOf), if any."""
    if not prop:
        return None
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    for sub in prop.get("allOf", ()):
        if "$ref" in sub:
            return sub["$ref"].rsplit("/", 1)[-1]
    return None


def candidate_class_names(defn: str) -> list[str]:
    """Python class names the client generator may have used for a definition."""
    parts = defn.split(".")
    name = parts[-1]
    if defn == "io.k8s.apimachinery.pkg.version.Info":
        return ["VersionInfo"]
    ver = parts[-2]
    if not re.fullmatch(r"v\d+((alpha|beta)\d+)?", ver):
        return []
    ver_c = ver[0].upper() + ver[1:]
    out = [ver_c + name]
    if defn.startswith("io.k8s.api."):
        pkg = parts[3]
        out.append(pkg[0].upper() + pkg[1:] + ver_c + name)
    elif defn.startswith("io.k8s.apiextensions-apiserver."):
        out.append("Apiextensions" + ver_c + name)
    elif defn.startswith("io.k8s.kube-aggregator."):
        out.append("Apiregistration" + ver_c + name)
    return out


# ---------------------------------------------------------------------------
# client models


def client_classes() -> dict:
    import kubernetes.client.models as models

    out = {}
    for name in dir(models):
        cls = getattr(models, name)
        if inspect.isclass(cls) and isinstance(getattr(cls, "openapi_types", None), dict) \
                and isinstance(getattr(cls, "attribute_map", None), dict):
            out[name] = cls
    return out


def is_required(cls, attr: str) -> bool:
    fields = getattr(cls, "model_fields", None)
    if fields is not None and attr in fields:  # pydantic client (>= 35)
        return bool(fields[attr].is_required())
    # older generator: the setter raises when given None
    prop = getattr(cls, attr, None)
    if isinstance(prop, property) and prop.fset is not None:
        try:
            src = inspect.getsource(prop.fset)
        except (OSError, TypeError):
            return False
        return "must not be `None`" in src
    return False


LIST_RE = re.compile(r"^(?:List|list)\[(.*)\]$")
DICT_RE = re.compile(r"^(?:Dict|dict)\[\s*str\s*,\s*(.*)\]$|^dict\(str,\s*(.*)\)$")


class Converter:
    def __init__(self, spec_defs: dict, class_to_def: dict):
        self.spec_defs = spec_defs
        self.class_to_def = class_to_def
        self.problems: list[str] = []
        self.used_leaves: set[str] = set()
        # definitions the client only knows as `object` (empty Go structs)
        self.opaque_structs: set[str] = set()

    def convert(self, tstr: str, sprop: dict | None, where: str) -> dict:
        tstr = tstr.strip()
        m = LIST_RE.match(tstr)
        if m:
            items = (sprop or {}).get("items")
            return {"type": "array", "items": self.convert(m.group(1), items, where + "[]")}
        m = DICT_RE.match(tstr)
        if m:
            inner = m.group(1) or m.group(2)
            ap = (sprop or {}).get("additionalProperties")
            return {"type": "object",
                    "additionalProperties": self.convert(inner, ap if isinstance(ap, dict) else None,
                                                         where + "{}")}
        ref = spec_ref_name(sprop)
        if ref in LEAVES:
            self.used_leaves.add(ref)
            return leaf_ref(ref)
        if tstr == "str":
            out = {"type": "string"}
            if sprop and sprop.get("format"):
                out["format"] = sprop["format"]
            return out
        if tstr == "bytes":
            return {"type": "string", "format": "byte"}
        if tstr == "int":
            fmt = (sprop or {}).get("format")
            if fmt not in ("int32", "int64"):
                fmt = "int64"
            return {"type": "integer", "format": fmt}
        if tstr == "bool":
            return {"type": "boolean"}
        if tstr == "float":
            return {"type": "number", "format": (sprop or {}).get("format") or "double"}
        if tstr == "datetime":
            self.used_leaves.add(TIME)
            return leaf_ref(TIME)
        if tstr == "object":
            if ref is not None and ref in self.spec_defs:
                sdef = self.spec_defs[ref]
                if sdef.get("properties"):
                    self.problems.append(f"{where}: object vs spec struct {ref}")
                self.opaque_structs.add(ref)
                return {"$ref": ref}
            if sprop and sprop.get("type") not in (None, "object"):
                self.problems.append(f"{where}: object vs spec type {sprop.get('type')}")
            return dict(FREE_FORM)
        if tstr in self.class_to_def:
            return {"$ref": self.class_to_def[tstr]}
        self.problems.append(f"{where}: unknown type {tstr!r}")
        return dict(FREE_FORM)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec-dir", help="upstream api/openapi-spec/v3 directory")
    ap.add_argument("--out", default=os.path.join(HERE, "types.json"))
    args = ap.parse_args()

    spec_dir = find_spec_dir(args.spec_dir)
    spec_defs, spec_gvks = load_spec_defs(spec_dir)
    classes = client_classes()

    # ---- map client classes to definition names
    cands: dict[str, list[str]] = {}
    for defn in spec_defs:
        if defn in LEAVES:
            continue
        for cname in candidate_class_names(defn):
            cands.setdefault(cname, []).append(defn)

    class_to_def: dict[str, str] = {}
    unmatched = []
    for cname, cls in sorted(classes.items()):
        json_names = set(cls.attribute_map.values())
        options = cands.get(cname, [])
        exact = [d for d in options
                 if set(spec_defs[d].get("properties", {})) == json_names]
        if len(exact) == 1:
            class_to_def[cname] = exact[0]
        elif len(options) == 1:
            class_to_def[cname] = options[0]
            print(f"note: {cname} -> {options[0]} (property sets differ)", file=sys.stderr)
        else:
            unmatched.append((cname, options))
    for cname, options in unmatched:
        print(f"warning: no definition for {cname} (candidates {options})", file=sys.stderr)

    conv = Converter(spec_defs, class_to_def)
    out: dict[str, dict] = {}
    for cname, defn in sorted(class_to_def.items(), key=lambda kv: kv[1]):
        cls = classes[cname]
        sdef = spec_defs[defn]
        sprops = sdef.get("properties", {})
        props = {}
        required = []
        for attr, tstr in cls.openapi_types.items():
            jname = cls.attribute_map[attr]
            props[jname] = conv.convert(tstr, sprops.get(jname), f"{defn}.{jname}")
            if is_required(cls, attr):
                required.append(jname)
        entry: dict = {"type": "object", "properties": dict(sorted(props.items()))}
        if required:
            # keep upstream's (Go struct) order when it agrees on the set
            spec_req = sdef.get("required", [])
            entry["required"] = list(spec_req) if set(spec_req) == set(required) else sorted(required)
        if set(required) != set(sdef.get("required", ())):
            print(f"note: {defn} required differs: client {sorted(required)} "
                  f"spec {sorted(sdef.get('required', ()))}", file=sys.stderr)
        extra = set(sprops) - set(props)
        if extra:
            print(f"note: {defn}: spec-only properties {sorted(extra)}", file=sys.stderr)
        if defn in spec_gvks:
            entry["x-kubernetes-group-version-kind"] = spec_gvks[defn]
        out[defn] = entry

    for defn in sorted(set(LEAVES) & set(spec_defs)):
        out[defn] = dict(LEAVES[defn])
    for defn in sorted(conv.opaque_structs - set(out)):
        # structs without fields: the client types them `object`
        out[defn] = {"type": "object", "properties": {}}
        if defn in spec_gvks:
            out[defn]["x-kubernetes-group-version-kind"] = spec_gvks[defn]

    for p in conv.problems:
        print("problem:", p, file=sys.stderr)

    # dangling references?
    def refs(t):
        if "$ref" in t:
            yield t["$ref"]
        for k in ("items", "additionalProperties"):
            if isinstance(t.get(k), dict):
                yield from refs(t[k])
    for defn, entry in out.items():
        for t in entry.get("properties", {}).values():
            for r in refs(t):
                if r not in out:
                    print(f"problem: {defn} references missing {r}", file=sys.stderr)

    with open(args.out, "w") as f:
        f.write("{\n")
        items = sorted(out.items())
        for i, (k, v) in enumerate(items):
            f.write(json.dumps(k) + ": " + json.dumps(v, sort_keys=True, separators=(",", ":")))
            f.write(",\n" if i + 1 < len(items) else "\n")
        f.write("}\n")
    print(f"wrote {len(out)} definitions to {args.out} "
          f"({len(class_to_def)} client classes, {len(unmatched)} unmatched)", file=sys.stderr)


if __name__ == "__main__":
    main()
