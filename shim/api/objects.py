"""Small helpers over API objects as plain dicts (the wire form is the in-memory form)."""
from __future__ import annotations

import datetime as _dt
import secrets

import orjson

_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # upstream's generateName alphabet (no vowels)


def now_rfc3339() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_after(seconds: int) -> str:
    t = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(s: str) -> _dt.datetime:
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    return _dt.datetime.fromisoformat(s)


def generate_name(prefix: str) -> str:
    """generateName: the prefix (cut so the result fits 63 chars) plus five random characters."""
    if len(prefix) > 58:
        prefix = prefix[:58]
    return prefix + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))


def meta(obj: dict) -> dict:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = obj["metadata"] = {}
    return m


def deep_copy(obj):
    """A deep copy of a JSON-shaped value (orjson round trip is the fastest in CPython)."""
    return orjson.loads(orjson.dumps(obj))


def without(d: dict, *keys) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


def get_path(obj: dict, dotted: str):
    """Value at a dotted path (`spec.nodeName`) or None."""
    cur = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
        if cur is None:
            return None
    return cur
