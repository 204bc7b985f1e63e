"""Running controllers inside `shim up` as clients of its own API.

Each loop talks HTTPS to its own process with a client certificate issued from the cluster
CA for its component's user (system:kube-scheduler, system:kube-controller-manager), so
in-process controllers go through exactly the machinery remote clients do. A loop that
fails is started afresh (new client, new caches).
"""
from __future__ import annotations

import asyncio
import logging

from shim.client.api import Client
from shim.client.config import ssl_context

log = logging.getLogger("shim.controllers")


async def client_for(cp, user: str, **kw) -> Client:
    cert, key = await asyncio.to_thread(cp.pki.issue_client_cert, user, [])
    ctx = ssl_context(ca_pem=cp.pki.ca_pem, cert_pem=cert, key_pem=key)
    return Client(cp.server_url, ssl=ctx, user_agent=f"{user.split(':')[-1]}/shim", **kw)


async def run_node_condition_taints(cp) -> None:
    from shim.controllers.nodelifecycle import NodeConditionTaints
    await keep_running("node-condition tainter", cp, "system:kube-controller-manager", 16,
                        lambda c: NodeConditionTaints(c).run())


async def run_service_accounts(cp) -> None:
    from shim.controllers.serviceaccounts import ServiceAccountsController
    await keep_running("service account controller", cp, "system:kube-controller-manager", 8,
                        lambda c: ServiceAccountsController(c, cp.pki.ca_pem).run())


async def run_namespaces(cp) -> None:
    from shim.controllers.namespace import NamespaceController
    await keep_running("namespace controller", cp, "system:kube-controller-manager", 16,
                       lambda c: NamespaceController(c).run())


async def run_workload_controllers(cp) -> None:
    """The ReplicaSet and Deployment controllers, sharing one client and their caches."""
    await keep_running("replicaset/deployment controllers", cp, "system:kube-controller-manager", 32,
                       _run_workloads)


async def _run_workloads(client) -> None:
    from shim.client.api import PODS, REPLICA_SETS
    from shim.client.informer import Informer
    from shim.controllers.deployment import DeploymentController
    from shim.controllers.replicaset import ReplicaSetController
    rs_informer, pod_informer = Informer(client, REPLICA_SETS), Informer(client, PODS)
    await asyncio.gather(
        ReplicaSetController(client, rs_informer=rs_informer, pod_informer=pod_informer).run(),
        DeploymentController(client, rs_informer=rs_informer, pod_informer=pod_informer).run())


async def run_garbage_collector(cp) -> None:
    # a watch per deletable resource (about sixty) plus the workers' requests
    from shim.controllers.garbagecollector import GarbageCollector
    await keep_running("garbage collector", cp, "system:kube-controller-manager", 128,
                       lambda c: GarbageCollector(c).run())


async def keep_running(what: str, cp, user: str, connections: int, run) -> None:
    """Run a client loop, starting it afresh (new client, new caches) if it ever fails."""
    delay = 1.0
    while True:
        client = await client_for(cp, user, max_connections=connections)
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
