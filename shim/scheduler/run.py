"""Running the scheduler: inside `shim up`, or on its own with `shim scheduler --kubeconfig`.

Inside the control plane the scheduler is still an API client: it talks HTTPS to its own
process with a client certificate for `system:kube-scheduler` issued from the cluster CA.
(shim/controllers/run.py runs such loops.)
"""
from __future__ import annotations

import asyncio

from shim.client.api import Client
from shim.controllers.run import keep_running


async def run_in_control_plane(cp) -> None:
    """The scheduler as a client of `cp`'s own API (a leader loop of the control plane)."""
    from shim.scheduler.scheduler import Scheduler
    await keep_running("scheduler", cp, "system:kube-scheduler", 200, lambda c: Scheduler(c).run())


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
