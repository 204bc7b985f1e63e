"""Serving watches: newline-delimited JSON events over a chunked HTTP response.

A watch is a store watch on the resource's key prefix, translated into API events:
each store change is matched against the watcher's selectors before *and* after, so an
object entering the selection is ADDED and one leaving it is DELETED (with its previous
content, as upstream's watch cache does). Decoding and encoding are memoised per store
revision and per resource (two resources may serve one key, e.g. core and events.k8s.io
Events), so a change is decoded and serialised once per view however many watchers see it.

Initial state: a watch without a resourceVersion (or "0") starts with synthetic ADDED
events for what exists; `sendInitialEvents=true` (client-go's watch-list) does the same
and then marks the end with a BOOKMARK annotated `k8s.io/initial-events-end`.
"""
from __future__ import annotations

import asyncio
import random
from collections import OrderedDict
from typing import TYPE_CHECKING, Callable

import orjson
from aiohttp import web

from shim.api import errors
from shim.api.registry import ListOptions, ResourceStore, _parse_rv
from shim.store.base import CompactedError, Event, KeyValue, StoreError

if TYPE_CHECKING:
    pass

INITIAL_EVENTS_END = "k8s.io/initial-events-end"


class EventCache:
    """Bounded memo of decoded objects and encoded event lines.

    Keyed by the serving resource (ResourceStore.view_id), the store key and its revision:
    one stored object decodes to a different object through each resource serving it.
    """

    def __init__(self, size: int = 20000):
        self.size = size
        self._objs: OrderedDict = OrderedDict()
        self._lines: OrderedDict = OrderedDict()

    def decode(self, rs: ResourceStore, kv: KeyValue) -> dict:
        k = (rs.view_id, kv.key, kv.mod_revision)
        obj = self._objs.get(k)
        if obj is None:
            obj = rs.decode(kv)
            self._objs[k] = obj
            if len(self._objs) > self.size:
                self._objs.popitem(last=False)
        return obj

    def line(self, key: tuple, build: Callable[[], bytes]) -> bytes:
        data = self._lines.get(key)
        if data is None:
            data = build()
            self._lines[key] = data
            if len(self._lines) > self.size:
                self._lines.popitem(last=False)
        return data


def event_line(event_type: str, obj_bytes: bytes) -> bytes:
    return b'{"type":"' + event_type.encode() + b'","object":' + obj_bytes + b"}\n"


async def serve_watch(request: web.Request, rs: ResourceStore, namespace: str, opts: ListOptions,
                      encode: Callable[[dict], bytes], encoding_id: str,
                      content_type: str = "application/json") -> web.StreamResponse:
    api = rs.api
    cache: EventCache = api.event_cache
    name_pin = opts.field_selector.exact("metadata.name") if opts.field_selector else None

    rv = opts.resource_version
    send_initial = opts.send_initial_events
    if send_initial is not None and opts.resource_version_match != "NotOlderThan":
        raise errors.ApiError(
            422, "Invalid",
            'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
            'sendInitialEvents requires setting resourceVersionMatch to NotOlderThan',
            {"kind": "ListOptions", "group": "meta.k8s.io",
             "causes": [{"reason": "FieldValueForbidden", "field": "resourceVersionMatch",
                         "message": "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"}]})
    if send_initial and not opts.allow_bookmarks:
        raise errors.ApiError(
            422, "Invalid",
            'ListOptions.meta.k8s.io "" is invalid: allowWatchBookmarks: Forbidden: '
            'sendInitialEvents requires setting allowWatchBookmarks to true',
            {"kind": "ListOptions", "group": "meta.k8s.io"})
    if send_initial is None:
        send_initial = rv in ("", "0")
    prefix = rs.watch_prefix(namespace, opts)

    initial: list[dict] = []
    if send_initial:
        lst = await rs.list(namespace, ListOptions(label_selector=opts.label_selector,
                                                   field_selector=opts.field_selector))
        start_rev = int(lst["metadata"]["resourceVersion"])
        if rv not in ("", "0") and _parse_rv(rv) > start_rev:
            raise errors.timeout(f"Too large resource version: {rv}, current: {start_rev}")
        initial = lst["items"]
    elif rv in ("", "0"):
        start_rev = await rs._store_call(rs.store.current_revision())
    else:
        start_rev = _parse_rv(rv)

    resp = web.StreamResponse(status=200, headers={
        "Content-Type": content_type, "Cache-Control": "no-cache, private"})
    resp.enable_chunked_encoding()
    try:
        await resp.prepare(request)
    except ConnectionError:
        return resp  # the client left before the headers went out (kubectl --wait, say)

    timeout = opts.timeout_seconds
    if not timeout:
        timeout = api.min_request_timeout * (1 + random.random())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    bookmark_every = api.bookmark_interval

    watch = rs.store.watch(prefix, start_rev)
    api.open_watches.add(watch)
    try:
        for obj in initial:
            await resp.write(event_line("ADDED", encode(obj)))
        if opts.send_initial_events and opts.allow_bookmarks:
            await resp.write(event_line("BOOKMARK", orjson.dumps(
                _bookmark_object(rs, start_rev, initial_end=True))))
        last_rev = start_rev
        # One timer per watch (not per event): progress requests become bookmarks, and the
        # deadline ends the stream by closing the store watch.
        ticker = asyncio.ensure_future(_tick(loop, watch, deadline, bookmark_every))
        try:
            async for batch in watch:
                if not batch.events:
                    if opts.allow_bookmarks and batch.revision > last_rev:
                        last_rev = batch.revision
                        await resp.write(event_line("BOOKMARK", orjson.dumps(
                            _bookmark_object(rs, batch.revision))))
                    continue
                out = []
                for ev in batch.events:
                    line = _translate(rs, cache, ev, opts, name_pin, encode, encoding_id)
                    if line is not None:
                        out.append(line)
                    last_rev = ev.revision
                if out:
                    await resp.write(b"".join(out) if len(out) > 1 else out[0])
        except CompactedError as e:
            # upstream's words: the version watched from, and the oldest one still servable
            status = errors.gone(
                f"too old resource version: {last_rev} ({e.compact_revision - 1})").status()
            await resp.write(event_line("ERROR", orjson.dumps(status)))
        except StoreError as e:
            status = errors.internal(str(e)).status()
            await resp.write(event_line("ERROR", orjson.dumps(status)))
        finally:
            ticker.cancel()
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        watch.close()
        api.open_watches.discard(watch)
    try:
        await resp.write_eof()
    except (ConnectionResetError, RuntimeError):
        pass
    return resp


async def _tick(loop, watch, deadline: float, every: float) -> None:
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            watch.close()
            return
        await asyncio.sleep(min(every, remaining))
        if loop.time() < deadline:
            watch.request_progress()


def _bookmark_object(rs: ResourceStore, revision: int, initial_end: bool = False) -> dict:
    md: dict = {"resourceVersion": str(revision), "creationTimestamp": None}
    if initial_end:
        md["annotations"] = {INITIAL_EVENTS_END: "true"}
    return {"kind": rs.info.kind, "apiVersion": rs.info.group_version, "metadata": md}


def _translate(rs: ResourceStore, cache: EventCache, ev: Event, opts: ListOptions,
               name_pin: str | None, encode, encoding_id: str) -> bytes | None:
    """The API event line for one store event as this watcher sees it, or None."""
    strategy = rs.strategy
    if name_pin is not None and not ev.kv.key.endswith("/" + name_pin):
        return None
    new = cache.decode(rs, ev.kv) if ev.type == "PUT" else None
    old = cache.decode(rs, ev.prev_kv) if ev.prev_kv is not None else None
    new_ok = new is not None and opts.matches(new, strategy)
    old_ok = old is not None and opts.matches(old, strategy)
    rev = ev.kv.mod_revision
    if new_ok:
        etype = "MODIFIED" if old_ok else "ADDED"
        return cache.line((rs.view_id, ev.kv.key, rev, etype, encoding_id),
                          lambda: event_line(etype, encode(new)))
    if old_ok:
        def build():
            gone = dict(old)
            gone["metadata"] = dict(old["metadata"], resourceVersion=str(rev))
            return event_line("DELETED", encode(gone))
        return cache.line((rs.view_id, ev.kv.key, rev, "DELETED", encoding_id), build)
    return None
