"""Running the scheduler: inside `shim up`, or on its own with `shim scheduler --kubeconfig`.

Inside the control plane the scheduler is still an API client: it talks HTTPS to its own
process with a client certificate for `system:kube-scheduler` issued from the cluster CA.
The node-condition tainter (the part of the node lifecycle controller the scheduler relies
on) runs in the control plane the same way, as `system:kube-controller-manager`, with or
without the scheduler.
"""
from __future__ import annotations

import asyncio
import logging

from shim.client.api import Client
from shim.client.config import ssl_context

log = logging.getLogger("shim.scheduler")


async def _client_for(cp, user: str, **kw) -> Client:
    cert, key = await asyncio.to_thread(cp.pki.issue_client_cert, user, [])
    ctx = ssl_context(ca_pem=cp.pki.ca_pem, cert_pem=cert, key_pem=key)
    return Client(cp.server_url, ssl=ctx, user_agent=f"{user.split(':')[-1]}/shim", **kw)


async def run_in_control_plane(cp) -> None:
    """The scheduler as a client of `cp`'s own API (a leader loop of the control plane)."""
    from shim.scheduler.scheduler import Scheduler
    await _keep_running("scheduler", cp, "system:kube-scheduler", 200, lambda c: Scheduler(c).run())


async def run_node_condition_taints(cp) -> None:
    from shim.controllers.nodelifecycle import NodeConditionTaints
    await _keep_running("node-condition tainter", cp, "system:kube-controller-manager", 16,
                        lambda c: NodeConditionTaints(c).run())


async def run_service_accounts(cp) -> None:
    from shim.controllers.serviceaccounts import ServiceAccountsController
    await _keep_running("service account controller", cp, "system:kube-controller-manager", 8,
                        lambda c: ServiceAccountsController(c, cp.pki.ca_pem).run())


async def _keep_running(what: str, cp, user: str, connections: int, run) -> None:
    """Run a client loop, starting it afresh (new client, new caches) if it ever fails."""
    delay = 1.0
    while True:
        client = await _client_for(cp, user, max_connections=connections)
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


async def run_standalone(kubeconfig: str, *, scheduler_name: str = "default-scheduler",
                         percentage_of_nodes_to_score: int = 0, taint_nodes: bool = False) -> None:
    """`shim scheduler`: the scheduler against any API server named by a kubeconfig."""
    from shim.scheduler.scheduler import Scheduler
    client = Client.from_kubeconfig(kubeconfig, max_connections=200, user_agent="kube-scheduler/shim")
    try:
        loops = [Scheduler(client, scheduler_name=scheduler_name,
                           percentage_of_nodes_to_score=percentage_of_nodes_to_score).run()]
        if taint_nodes:
            from shim.controllers.nodelifecycle import NodeConditionTaints
            loops.append(NodeConditionTaints(client).run())
        await asyncio.gather(*loops)
    finally:
        await client.close()
