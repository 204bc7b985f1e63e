"""Informers: a local cache of one resource kept current by list + watch.

The shape of client-go's reflector and shared informer, in a few lines: list everything (in
pages), remember the list's resourceVersion, then watch from it. Watch events update the cache
and call the registered handlers. When the watch ends it is resumed from the last
resourceVersion seen (bookmarks keep that fresh); when the server says that version is gone
(410), the informer lists again and turns the difference into add/update/delete calls, so
handlers never miss a deletion.

Handlers are plain functions run on the event loop; keep them quick (enqueue work, update an
index) and do slow things elsewhere.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable, Iterable

from shim.client.api import ApiError, Client, Resource

log = logging.getLogger("shim.client.informer")

Handler = Callable[..., None]


def key_of(obj: dict) -> str:
    """The cache key: "namespace/name", or "name" for cluster-scoped objects."""
    md = obj.get("metadata") or {}
    ns = md.get("namespace")
    return f"{ns}/{md.get('name')}" if ns else md.get("name", "")


class Informer:
    def __init__(self, client: Client, resource: Resource, namespace: str | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None,
                 page_size: int = 500, transform: Callable[[dict], dict] | None = None):
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.page_size = page_size
        self.transform = transform
        self.store: dict[str, dict] = {}
        self.resource_version = ""
        self._handlers: list[tuple[Handler | None, Handler | None, Handler | None]] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task | None = None

    # -- public ---------------------------------------------------------------------------
    def add_handlers(self, on_add: Handler | None = None, on_update: Handler | None = None,
                     on_delete: Handler | None = None) -> None:
        """on_add(obj), on_update(old, new), on_delete(obj). Existing objects are replayed."""
        self._handlers.append((on_add, on_update, on_delete))
        if on_add is not None:
            for obj in list(self.store.values()):
                on_add(obj)

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._synced.wait(), timeout)

    def get(self, key: str) -> dict | None:
        return self.store.get(key)

    def list(self) -> list[dict]:
        return list(self.store.values())

    def start(self) -> asyncio.Task:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"informer-{self.resource.plural}")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    async def run(self) -> None:
        """List, then watch forever; relist when the server has forgotten our place."""
        backoff = 0.2
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list_and_replace()
                    need_list = False
                    self._synced.set()
                await self._watch()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except ApiError as e:
                if e.code == 410:
                    log.debug("%s: resourceVersion too old, relisting", self.resource.plural)
                    need_list = True
                    continue
                log.warning("%s informer: %s", self.resource.plural, e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            except Exception as e:  # connection trouble: resume the watch after a pause
                log.debug("%s informer: %r", self.resource.plural, e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    # -- internals -----------------------------------------------------------------------
    async def _list_and_replace(self) -> None:
        items, rv = await self.client.list_all(
            self.resource, self.namespace, page_size=self.page_size,
            label_selector=self.label_selector, field_selector=self.field_selector)
        self.replace(items, rv)

    def replace(self, items: Iterable[dict], resource_version: str) -> None:
        """Make the cache equal to `items`, reporting the difference to the handlers."""
        fresh: dict[str, dict] = {}
        for obj in items:
            if self.transform is not None:
                obj = self.transform(obj)
            fresh[key_of(obj)] = obj
        old_store = self.store
        self.store = dict(old_store)
        for key, old in old_store.items():
            if key not in fresh:
                del self.store[key]
                self._notify_delete(old)
        for key, obj in fresh.items():
            old = old_store.get(key)
            self.store[key] = obj
            if old is None:
                self._notify_add(obj)
            elif _rv(old) != _rv(obj):
                self._notify_update(old, obj)
        self.resource_version = resource_version

    async def _watch(self) -> None:
        async for ev in self.client.watch(
                self.resource, self.namespace, resource_version=self.resource_version,
                label_selector=self.label_selector, field_selector=self.field_selector):
            obj = ev.object
            rv = _rv(obj)
            if ev.type == "BOOKMARK":
                if rv:
                    self.resource_version = rv
                continue
            if self.transform is not None:
                obj = self.transform(obj)
            self.apply(ev.type, obj)
            if rv:
                self.resource_version = rv

    def apply(self, etype: str, obj: dict) -> None:
        """Fold one watch event into the cache and tell the handlers."""
        key = key_of(obj)
        if etype == "DELETED":
            old = self.store.pop(key, None)
            self._notify_delete(old if old is not None else obj)
            return
        old = self.store.get(key)
        self.store[key] = obj
        if old is None:
            self._notify_add(obj)
        else:
            self._notify_update(old, obj)

    def _notify_add(self, obj):
        for on_add, _, _ in self._handlers:
            if on_add is not None:
                _safe(on_add, obj)

    def _notify_update(self, old, new):
        for _, on_update, _ in self._handlers:
            if on_update is not None:
                _safe(on_update, old, new)

    def _notify_delete(self, obj):
        for _, _, on_delete in self._handlers:
            if on_delete is not None:
                _safe(on_delete, obj)


def _rv(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("resourceVersion", "")


def _safe(fn, *args) -> None:
    try:
        fn(*args)
    except Exception:  # one broken handler must not stop the cache
        log.exception("informer handler %r failed", fn)
