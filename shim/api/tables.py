"""Server-side printing: meta.k8s.io/v1 Tables, as `kubectl get` asks for them.

Columns come from the resource's Strategy (`table_columns` and `table_rows`), which takes
them from shim.printers for every built-in kind; the default is NAME and AGE.
includeObject decides what rides along each row: None, Metadata (a PartialObjectMetadata,
kubectl's default) or Object (the whole object, for --sort-by).
"""
from __future__ import annotations

import datetime as _dt
import itertools
from typing import TYPE_CHECKING, Callable

import orjson

from shim.api.objects import parse_rfc3339

if TYPE_CHECKING:
    from shim.api.registry import ResourceStore

NAME_COLUMN = {"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}
AGE_COLUMN = {"name": "Age", "type": "string", "format": "", "description": "", "priority": 0}


def column(name: str, type_: str = "string", priority: int = 0, fmt: str = "") -> dict:
    return {"name": name, "type": type_, "format": fmt, "description": "", "priority": priority}


def table_for(rs: "ResourceStore", objs: list[dict], query, list_meta: dict | None,
              for_watch: bool = False, headers: bool = True) -> dict:
    """A Table of `objs`: a list response when `list_meta` is given, else one object.

    Every column is computed (upstream always prints wide); `headers=False` leaves the
    column definitions out, as upstream does for the watch events after the first.
    """
    strategy = rs.strategy
    return build_table(strategy.table_columns, strategy.table_rows(objs, list_meta is not None),
                       objs, query, list_meta, headers)


def build_table(columns: list, rows: list, objs: list[dict], query, list_meta: dict | None,
                headers: bool = True) -> dict:
    """The Table for rows already computed ({"cells": ...}), with includeObject applied."""
    include = check_table_options(query)
    for obj, row in zip(objs, rows):
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": obj["metadata"]}
    md = {}
    if list_meta:
        md = {k: v for k, v in list_meta.items()
              if k in ("resourceVersion", "continue", "remainingItemCount") and v not in ("", None)}
    elif objs:
        md = {"resourceVersion": objs[0]["metadata"].get("resourceVersion", "")}
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": md,
            "columnDefinitions": columns if headers else None, "rows": rows}


def check_table_options(query) -> str:
    """The includeObject asked for ("Metadata" by default); 400 for any other value, as upstream."""
    include = query.get("includeObject", "")
    if include not in ("", "Metadata", "None", "Object"):
        from shim.api import errors
        value = include.replace("\\", "\\\\").replace('"', '\\"')
        raise errors.bad_request(f'Unable to convert to Table as requested: includeObject: Invalid value: '
                                 f'"{value}": must be \'Metadata\', \'Object\', \'None\', or empty')
    return include or "Metadata"


_watch_ids = itertools.count(1)


def watch_encoder(rs: "ResourceStore", query) -> tuple[Callable[[dict], bytes], str]:
    """An encoder for one table watch: the first event carries the column definitions,
    later ones leave them out (kubectl reuses the last ones). Its id is unique to the
    stream, since the encoded events depend on the stream's position."""
    check_table_options(query)
    state = {"headers": True}

    def enc(obj: dict) -> bytes:
        table = table_for(rs, [obj], query, None, for_watch=True, headers=state["headers"])
        state["headers"] = False
        return orjson.dumps(table)
    return enc, f"table:{next(_watch_ids)}:{query.get('includeObject', '')}"


def age(obj: dict) -> str:
    ts = (obj.get("metadata") or {}).get("creationTimestamp")
    return since(ts)


def since(ts: str | None) -> str:
    if not ts:
        return "<unknown>"
    try:
        t = parse_rfc3339(ts)
    except ValueError:
        return "<invalid>"
    return human_duration(_dt.datetime.now(_dt.timezone.utc) - t)


def human_duration(d: _dt.timedelta) -> str:
    """kubectl's compact duration: 45s, 5m10s, 3h, 2d4h, 35d, 2y45d."""
    s = int(d.total_seconds())
    if s < -1:
        return "<invalid>"
    if s < 0:
        s = 0
    if s < 60 * 2:
        return f"{s}s"
    m = s // 60
    if m < 10:
        rem = s % 60
        return f"{m}m{rem}s" if rem else f"{m}m"
    if m < 60 * 3:
        return f"{m}m"
    h = m // 60
    if h < 8:
        rm = m % 60
        return f"{h}h{rm}m" if rm else f"{h}h"
    if h < 48:
        return f"{h}h"
    days = h // 24
    if h < 24 * 8:
        rh = h % 24
        return f"{days}d{rh}h" if rh else f"{days}d"
    if h < 24 * 365 * 2:
        return f"{days}d"
    if h < 24 * 365 * 8:
        years = days // 365
        rd = days % 365
        return f"{years}y{rd}d" if rd else f"{years}y"
    return f"{days // 365}y"
