"""The controller manager: every controller (and, unless told otherwise, the scheduler) in a
process of its own, as a client of the API server, the way kube-controller-manager and
kube-scheduler run beside kube-apiserver.

`shim up` starts it as a child process (`shim controller-manager`, see ControlPlane) with
kubeconfigs for system:kube-controller-manager and system:kube-scheduler; it can also run
against any API server. Keeping it out of the API server's process matters on two cores:
the API server is one Python event loop, and the controllers' watch decoding and
reconciling would otherwise take turns with every request it serves.

With leader election (`shim up` turns it on whenever the store can be shared, i.e. etcd
with several replicas) only the manager holding the kube-system Lease runs the loops.
A loop that fails is started afresh with a new client and new caches.
"""
from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Awaitable, Callable

from shim.client.api import Client

log = logging.getLogger("shim.controllers")

ClientFactory = Callable[[int], Client]


async def keep_running(what: str, make_client: ClientFactory, connections: int,
                       run: Callable[[Client], Awaitable]) -> None:
    """Run a client loop, starting it afresh (new client, new caches) if it ever fails."""
    delay = 1.0
    while True:
        client = make_client(connections)
        try:
            await run(client)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; restarting in %.0fs", what, delay)
        finally:
            await client.close()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


def controller_loops(make_client: ClientFactory, root_ca_pem: bytes) -> list[Awaitable]:
    from shim.controllers.garbagecollector import GarbageCollector
    from shim.controllers.namespace import NamespaceController
    from shim.controllers.nodelifecycle import NodeConditionTaints
    from shim.controllers.serviceaccounts import ServiceAccountsController
    from shim.controllers.servicecidr import ServiceCIDRController
    return [
        keep_running("node-condition tainter", make_client, 16, lambda c: NodeConditionTaints(c).run()),
        keep_running("service account controller", make_client, 8,
                     lambda c: ServiceAccountsController(c, root_ca_pem).run()),
        keep_running("namespace controller", make_client, 16, lambda c: NamespaceController(c).run()),
        keep_running("service CIDR controller", make_client, 8, lambda c: ServiceCIDRController(c).run()),
        keep_running("replicaset/deployment/daemonset controllers", make_client, 40, _run_workloads),
        keep_running("endpoints/endpointslice controllers", make_client, 32, _run_endpoints),
        keep_running("job/cronjob/ttl-after-finished controllers", make_client, 32, _run_batch),
        # a watch per deletable resource (about sixty) plus the workers' requests
        keep_running("garbage collector", make_client, 128, lambda c: GarbageCollector(c).run()),
    ]


async def _run_workloads(client: Client) -> None:
    """The ReplicaSet, Deployment and DaemonSet controllers, sharing one client and their caches."""
    from shim.client.api import PODS, REPLICA_SETS
    from shim.client.informer import Informer
    from shim.controllers.daemonset import DaemonSetController
    from shim.controllers.deployment import DeploymentController
    from shim.controllers.replicaset import ReplicaSetController
    rs_informer, pod_informer = Informer(client, REPLICA_SETS), Informer(client, PODS)
    await asyncio.gather(
        ReplicaSetController(client, rs_informer=rs_informer, pod_informer=pod_informer).run(),
        DeploymentController(client, rs_informer=rs_informer, pod_informer=pod_informer).run(),
        DaemonSetController(client, pod_informer=pod_informer).run())


async def _run_endpoints(client: Client) -> None:
    """The EndpointSlice and Endpoints controllers, sharing one client and the Service and
    pod caches."""
    from shim.client.api import PODS, SERVICES
    from shim.client.informer import Informer
    from shim.controllers.endpoints import EndpointsController
    from shim.controllers.endpointslice import EndpointSliceController
    svc_informer, pod_informer = Informer(client, SERVICES), Informer(client, PODS)
    await asyncio.gather(
        EndpointSliceController(client, service_informer=svc_informer, pod_informer=pod_informer).run(),
        EndpointsController(client, service_informer=svc_informer, pod_informer=pod_informer).run())


async def _run_batch(client: Client) -> None:
    """The Job, CronJob and TTL-after-finished controllers, sharing one client and one Job cache
    (the Job controller has the pod informer to itself)."""
    from shim.client.informer import Informer
    from shim.controllers.cronjob import CronJobController
    from shim.controllers.job import JOBS, JobController
    from shim.controllers.ttlafterfinished import TTLAfterFinishedController
    job_informer = Informer(client, JOBS)
    await asyncio.gather(
        JobController(client, job_informer=job_informer).run(),
        CronJobController(client, job_informer=job_informer).run(),
        TTLAfterFinishedController(client, job_informer=job_informer).run())


def scheduler_loop(make_client: ClientFactory) -> Awaitable:
    from shim.scheduler.scheduler import Scheduler
    return keep_running("scheduler", make_client, 200, lambda c: Scheduler(c).run())


def _factory(kubeconfig: Path, user_agent: str) -> ClientFactory:
    from shim.client.config import load_kubeconfig
    cfg = load_kubeconfig(kubeconfig)
    return lambda connections: Client.from_config(cfg, max_connections=connections, user_agent=user_agent)


async def run_controller_manager(kubeconfig: Path, *, root_ca_file: Path | None = None,
                                 scheduler_kubeconfig: Path | None = None, leader_elect: bool = False,
                                 identity: str = "", parent_pid: int = 0) -> None:
    """Run the controllers (and the scheduler when given its kubeconfig) until cancelled,
    or until process `parent_pid` (the `shim up` that started us) is no longer our parent."""
    controllers = _factory(kubeconfig, "kube-controller-manager/shim")
    root_ca = root_ca_file.read_bytes() if root_ca_file else _kubeconfig_ca(kubeconfig)

    async def lead():
        loops = controller_loops(controllers, root_ca)
        if scheduler_kubeconfig:
            loops.append(scheduler_loop(_factory(scheduler_kubeconfig, "kube-scheduler/shim")))
        await asyncio.gather(*loops)

    async def main():
        if not leader_elect:
            return await lead()
        from shim.leaderelection import LeaderElector
        client = controllers(4)
        try:
            await LeaderElector(client, identity or _default_identity()).run(lead)
        finally:
            await client.close()

    task = asyncio.ensure_future(main())
    if parent_pid:
        watchdog = asyncio.ensure_future(_parent_gone(parent_pid, task))
        task.add_done_callback(lambda _: watchdog.cancel())
    await task


async def _parent_gone(parent: int, task: asyncio.Task) -> None:
    """Stop when the process that started us is gone (killed with -9, say): a manager left
    behind would keep acting on a cluster nobody serves from this data dir any more."""
    while os.getppid() == parent:
        await asyncio.sleep(0.5)
    log.warning("controller manager: parent process %d is gone; stopping", parent)
    task.cancel()


def _kubeconfig_ca(kubeconfig: Path) -> bytes:
    import base64

    import yaml
    cfg = yaml.safe_load(Path(kubeconfig).read_text())
    cluster = cfg["clusters"][0]["cluster"]
    if cluster.get("certificate-authority-data"):
        return base64.b64decode(cluster["certificate-authority-data"])
    return (Path(kubeconfig).parent / cluster["certificate-authority"]).read_bytes()


def _default_identity() -> str:
    import socket
    import uuid
    return f"{socket.gethostname()}_{uuid.uuid4()}"
