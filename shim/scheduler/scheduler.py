"""The scheduler process: an API client that binds pending pods to nodes.

Informers keep the cache (nodes, bound pods, namespaces, and the Services and controllers
that shape default topology spreading) and the queue (pending pods whose schedulerName is
ours) current. The loop pops the next pod, runs one synchronous scheduling cycle, and on
success *assumes* the pod on its node and hands the binding to a background task, so the
next cycle starts at once while the POST .../binding is in flight (upstream's binding
cycle). On failure the pod gets PodScheduled=False with the upstream message, a
FailedScheduling event, maybe preemption, and waits in the queue for a cluster change.
"""
from __future__ import annotations

import asyncio
import logging
import time

from shim.client.api import (NAMESPACES, NODES, PODDISRUPTIONBUDGETS, PODS, REPLICA_SETS,
                             REPLICATION_CONTROLLERS, SERVICES, STATEFUL_SETS, ApiError, Client)
from shim.client.events import EventRecorder
from shim.client.informer import Informer, key_of
from shim.scheduler.cache import Cache
from shim.scheduler.framework import FitError, Framework, NoNodesAvailable
from shim.scheduler.preemption import DefaultPreemption
from shim.scheduler.queue import QueuedPod, SchedulingQueue
from shim.scheduler.types import PodInfo

log = logging.getLogger("shim.scheduler")

DEFAULT_SCHEDULER_NAME = "default-scheduler"
NOTE_LENGTH_LIMIT = 1024
TERMINAL_PHASES_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"

# Which plugins' rejections a cluster event may undo (a coarse form of queueing hints).
ALL = None
POD_DELETED = {"NodeResourcesFit", "NodePorts", "InterPodAffinity", "PodTopologySpread", "DefaultPreemption", ""}
POD_ADDED = {"InterPodAffinity", "PodTopologySpread"}
NAMESPACE_CHANGED = {"InterPodAffinity"}
WORKLOADS_CHANGED = {"PodTopologySpread"}


class Scheduler:
    def __init__(self, client: Client, *, scheduler_name: str = DEFAULT_SCHEDULER_NAME,
                 percentage_of_nodes_to_score: int = 0, bind_concurrency: int = 64, rng=None,
                 hold_events_while_busy: bool = True):
        self.client = client
        self.scheduler_name = scheduler_name
        self.cache = Cache()
        self.queue = SchedulingQueue()
        self.framework = Framework(self.cache, self.queue, percentage_of_nodes_to_score=percentage_of_nodes_to_score,
                                   rng=rng)
        self.pdb_informer = Informer(client, PODDISRUPTIONBUDGETS)
        self.preemption = DefaultPreemption(self.framework, pdbs=self.pdb_informer.list, rng=rng)
        self.events = EventRecorder(client, scheduler_name)
        if hold_events_while_busy:
            # Events are best effort: while pods wait, the API server's time goes to binding.
            self.events.pause = lambda: self.queue.active_len > 0 or self._binds_in_flight > 0
        self.pod_informer = Informer(client, PODS, field_selector=TERMINAL_PHASES_SELECTOR)
        self.node_informer = Informer(client, NODES)
        self.namespace_informer = Informer(client, NAMESPACES)
        self.service_informer = Informer(client, SERVICES)
        self.rs_informer = Informer(client, REPLICA_SETS)
        self.ss_informer = Informer(client, STATEFUL_SETS)
        self.rc_informer = Informer(client, REPLICATION_CONTROLLERS)
        self.informers = [self.node_informer, self.pod_informer, self.namespace_informer, self.service_informer,
                          self.rs_informer, self.ss_informer, self.rc_informer, self.pdb_informer]
        self._bind_slots = asyncio.Semaphore(bind_concurrency)
        self.turn_seconds = 0.002
        self._binds_in_flight = 0
        self._tasks: set[asyncio.Task] = set()
        self._move_pending: set | None = None
        self._move_scheduled = False
        self.scheduled_count = 0
        self.failed_count = 0
        self.ready = asyncio.Event()
        self._wire_handlers()

    # -- lifecycle --------------------------------------------------------------------------------
    async def run(self) -> None:
        for inf in self.informers:
            inf.start()
        try:
            await asyncio.gather(*(inf.wait_synced() for inf in self.informers))
            self.events.start()
            self.ready.set()
            log.info("scheduler %s: caches synced (%d nodes, %d pending pods)", self.scheduler_name,
                     self.cache.num_nodes(), len(self.queue))
            flusher = asyncio.create_task(self._flush_loop(), name="scheduler-flush")
            try:
                await self._schedule_loop()
            finally:
                flusher.cancel()
        finally:
            await self.stop()

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for inf in self.informers:
            await inf.stop()
        await self.events.stop()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(30)
            self.queue.flush_unschedulable_leftover()

    async def _schedule_loop(self) -> None:
        """Pop and schedule pods; a turn takes several pods (up to a couple of milliseconds)
        before yielding, so the scheduler keeps its share of an event loop it may share with
        the API server and many concurrent requests."""
        queue = self.queue
        slots = self._bind_slots
        clock = time.perf_counter
        while True:
            qp = await queue.pop()
            turn_end = clock() + self.turn_seconds
            while qp is not None:
                await slots.acquire()
                released = False
                try:
                    released = self.schedule_one(qp)
                except Exception:
                    log.exception("scheduling %s", qp.info.key)
                    queue.requeue_backoff(qp)
                finally:
                    if not released:
                        slots.release()
                if clock() >= turn_end or slots.locked():
                    break
                qp = queue.pop_nowait()
            await asyncio.sleep(0)  # let the API server (in-process) and the informers breathe

    # -- informer handlers --------------------------------------------------------------------------
    def _wire_handlers(self) -> None:
        self.pod_informer.add_handlers(self._on_pod_add, self._on_pod_update, self._on_pod_delete)
        self.node_informer.add_handlers(self._on_node_add, self._on_node_update, self._on_node_delete)
        self.namespace_informer.add_handlers(self._on_namespace, lambda o, n: self._on_namespace(n, o),
                                             self._on_namespace_delete)
        svc = self.cache.services
        self.service_informer.add_handlers(
            lambda o: (svc[o["metadata"]["namespace"]].__setitem__(o["metadata"]["name"], o),
                       self._request_move(WORKLOADS_CHANGED)),
            lambda old, o: (svc[o["metadata"]["namespace"]].__setitem__(o["metadata"]["name"], o),
                            self._request_move(WORKLOADS_CHANGED)),
            lambda o: svc[o["metadata"]["namespace"]].pop(o["metadata"]["name"], None))
        for inf, store in ((self.rs_informer, self.cache.replica_sets), (self.ss_informer, self.cache.stateful_sets),
                           (self.rc_informer, self.cache.replication_controllers)):
            _mirror(inf, store, self._request_move)

    def _ours(self, pod: dict) -> bool:
        return ((pod.get("spec") or {}).get("schedulerName") or DEFAULT_SCHEDULER_NAME) == self.scheduler_name

    def _on_pod_add(self, pod: dict) -> None:
        if (pod.get("spec") or {}).get("nodeName"):
            self.cache.add_or_update_pod(PodInfo(pod))
            self._request_move(POD_ADDED)
        elif self._ours(pod):
            self.queue.add(PodInfo(pod))

    def _on_pod_update(self, old: dict, pod: dict) -> None:
        uid = pod["metadata"].get("uid")
        if (pod.get("spec") or {}).get("nodeName"):
            if not (old.get("spec") or {}).get("nodeName"):
                self.queue.delete(uid)
                if self.cache.confirm(uid, pod):
                    return  # our binding came back as we assumed it
            info = PodInfo(pod)
            self.cache.add_or_update_pod(info)
            if (old["metadata"].get("labels") or {}) != info.labels:
                self._request_move(POD_ADDED)
            return
        if not self._ours(pod):
            return
        if self.cache.is_assumed(uid):
            return  # binding in flight: the update is our own doing or will be superseded
        self.queue.update(PodInfo(pod), moved=_pod_updated(old, pod))

    def _on_pod_delete(self, pod: dict) -> None:
        uid = pod["metadata"].get("uid")
        if self.cache.pod_node(uid) is not None:
            self.cache.remove_pod(uid)
            self._request_move(POD_DELETED)
        self.queue.delete(uid)

    def _on_node_add(self, node: dict) -> None:
        self.cache.add_or_update_node(node)
        self._request_move(ALL)

    def _on_node_update(self, old: dict, node: dict) -> None:
        self.cache.add_or_update_node(node)
        if _node_scheduling_changed(old, node):
            self._request_move(ALL)

    def _on_node_delete(self, node: dict) -> None:
        self.cache.remove_node(node["metadata"]["name"])

    def _on_namespace(self, ns: dict, old: dict | None = None) -> None:
        labels = (ns.get("metadata") or {}).get("labels") or {}
        self.cache.namespaces[ns["metadata"]["name"]] = labels
        if old is None or ((old.get("metadata") or {}).get("labels") or {}) != labels:
            self._request_move(NAMESPACE_CHANGED)

    def _on_namespace_delete(self, ns: dict) -> None:
        self.cache.namespaces.pop(ns["metadata"]["name"], None)

    def _request_move(self, plugins) -> None:
        """Coalesce cluster events of one loop iteration into one pass over unschedulable pods."""
        self.queue.move_request_cycle = self.queue.scheduling_cycle
        if plugins is ALL or self._move_pending is ALL:
            self._move_pending = ALL
        else:
            self._move_pending = (self._move_pending or set()) | plugins
        if not self._move_scheduled:
            self._move_scheduled = True
            asyncio.get_running_loop().call_soon(self._do_move)

    def _do_move(self) -> None:
        plugins, self._move_pending, self._move_scheduled = self._move_pending, set(), False
        self.queue.move_for_plugins(plugins)

    # -- one cycle ----------------------------------------------------------------------------------
    def schedule_one(self, qp: QueuedPod) -> bool:
        """Schedule one pod; True when a binding task took over the bind slot."""
        pod = qp.info
        current = self.pod_informer.get(pod.key)
        if current is None or current["metadata"].get("uid") != pod.uid or \
                (current.get("spec") or {}).get("nodeName"):
            self.queue.done(pod.uid)
            return False
        if current["metadata"].get("deletionTimestamp"):
            self.queue.done(pod.uid)
            self.events.event(current, "Warning", "FailedScheduling",
                              f"skip schedule deleting pod: {pod.namespace}/{pod.name}", "Scheduling")
            return False
        if self.cache.is_assumed(pod.uid):
            return False
        if pod.uid in self.preemption.preempting:
            self.queue.requeue_unschedulable(qp, {"DefaultPreemption"})
            return False
        try:
            node, state, _, _ = self.framework.schedule_pod(pod)
        except FitError as e:
            result = self.preemption.post_filter(e.state, pod, e.diagnosis)
            e.diagnosis.postfilter_msg = result.message
            self._handle_failure(qp, str(e), "Unschedulable", e.diagnosis.unschedulable_plugins, result)
            return False
        except NoNodesAvailable as e:
            self._handle_failure(qp, str(e), "Unschedulable", set(), None)
            return False
        self.cache.assume(pod, node.name)
        self.queue.done(pod.uid)
        self._binds_in_flight += 1
        self._spawn(self._bind(qp, pod, node.name))
        return True

    def _spawn(self, coro) -> asyncio.Task:
        t = asyncio.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    async def _bind(self, qp: QueuedPod, pod: PodInfo, node: str) -> None:
        try:
            await self.client.bind(pod.namespace, pod.name, node, pod.uid)
        except Exception as e:
            self.cache.forget(pod)
            self._request_move(POD_DELETED)
            msg = f'running Bind plugin "DefaultBinder": {e.message if isinstance(e, ApiError) else e}'
            log.info("binding %s to %s failed: %s", pod.key, node, msg)
            current = self.pod_informer.get(pod.key)
            if current is not None and current["metadata"].get("uid") == pod.uid and \
                    not (current.get("spec") or {}).get("nodeName"):
                self.events.event(current, "Warning", "FailedScheduling", _truncate(msg), "Scheduling")
                self.queue.readd(PodInfo(current))
        else:
            self.scheduled_count += 1
            self.events.event(pod.pod, "Normal", "Scheduled",
                              f"Successfully assigned {pod.namespace}/{pod.name} to {node}", "Binding")
        finally:
            self._binds_in_flight -= 1
            self._bind_slots.release()

    def _handle_failure(self, qp: QueuedPod, message: str, reason: str, plugins: set, result) -> None:
        """handleSchedulingFailure: requeue, nominate, event, and PodScheduled=False."""
        self.failed_count += 1
        pod = qp.info
        current = self.pod_informer.get(pod.key)
        if current is None or current["metadata"].get("uid") != pod.uid:
            self.queue.done(pod.uid)
            return
        if (current.get("spec") or {}).get("nodeName"):
            self.queue.done(pod.uid)
            return
        info = PodInfo(current)
        qp.info = info
        self.queue.requeue_unschedulable(qp, plugins)
        nominated = None
        if result is not None and result.nominated is not None:
            nominated = result.nominated
            self.queue.nominate(info, nominated)
        if result is not None and result.candidate is not None:
            cand = result.candidate
            self._spawn(self._actuate(qp, info, cand))
        self.events.event(current, "Warning", "FailedScheduling", _truncate(message), "Scheduling")
        self._spawn(self._update_status(current, reason, message, nominated))

    async def _actuate(self, qp: QueuedPod, pod: PodInfo, cand) -> None:
        try:
            await self.preemption.actuate(self.client, self.events, pod, cand)
        except Exception as e:
            log.warning("preemption for %s failed: %s", pod.key, e)
            self.queue.activate(pod.uid)

    async def _update_status(self, pod: dict, reason: str, message: str, nominated: str | None) -> None:
        status = pod.get("status") or {}
        cond = {"type": "PodScheduled", "status": "False", "reason": reason, "message": message}
        old = next((c for c in status.get("conditions") or () if c.get("type") == "PodScheduled"), None)
        cond_changed = old is None or any(old.get(k) != cond[k] for k in ("status", "reason", "message"))
        nnn_changed = nominated is not None and (status.get("nominatedNodeName") or "") != nominated
        if not cond_changed and not nnn_changed:
            return
        patch: dict = {"metadata": {"uid": pod["metadata"]["uid"]}, "status": {}}
        if cond_changed:
            cond["lastProbeTime"] = None
            cond["lastTransitionTime"] = _now() if old is None or old.get("status") != "False" \
                else old.get("lastTransitionTime")
            patch["status"]["conditions"] = [cond]
        if nnn_changed:
            patch["status"]["nominatedNodeName"] = nominated or None
        try:
            await self.client.patch(PODS, pod["metadata"]["name"], patch, pod["metadata"]["namespace"],
                                    type="strategic", subresource="status")
        except ApiError as e:
            if e.code != 404:
                log.info("updating status of %s: %s", pod["metadata"]["name"], e)


def _pod_updated(old: dict, new: dict) -> bool:
    """isPodUpdated: a change beyond status and bookkeeping (which cannot help a pod fit)."""
    def strip(p):
        md = {k: v for k, v in (p.get("metadata") or {}).items()
              if k not in ("resourceVersion", "generation", "managedFields", "finalizers")}
        return md, p.get("spec")
    return strip(old) != strip(new)


def _mirror(informer: Informer, store: dict, request_move) -> None:
    """Keep `store` ("namespace/name" -> object) equal to the informer's cache."""
    def put(obj, old=None):
        store[key_of(obj)] = obj
        request_move(WORKLOADS_CHANGED)

    informer.add_handlers(put, lambda old, new: put(new, old), lambda obj: store.pop(key_of(obj), None))


def _node_scheduling_changed(old: dict, new: dict) -> bool:
    """Whether a node update can change any filter's verdict (not just a heartbeat)."""
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    if om.get("labels") != nm.get("labels"):
        return True
    os_, ns_ = old.get("spec") or {}, new.get("spec") or {}
    if os_.get("taints") != ns_.get("taints") or bool(os_.get("unschedulable")) != bool(ns_.get("unschedulable")):
        return True
    ost, nst = old.get("status") or {}, new.get("status") or {}
    return ost.get("allocatable") != nst.get("allocatable")


def _truncate(msg: str) -> str:
    if len(msg) <= NOTE_LENGTH_LIMIT:
        return msg
    return msg[:NOTE_LENGTH_LIMIT - 4] + " ..."


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
