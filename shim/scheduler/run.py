"""Running the scheduler on its own: `shim scheduler --kubeconfig`.

`shim up` runs it inside its controller manager process instead (shim/controllers/run.py),
with a kubeconfig for `system:kube-scheduler`.
"""
from __future__ import annotations

import asyncio

from shim.client.api import Client


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
