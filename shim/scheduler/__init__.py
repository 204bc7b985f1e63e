"""The scheduler: places pending pods on nodes the way kube-scheduler does, as an API client.

    scheduler.py   the process: informers, the loop, binding, failures, events
    queue.py       activeQ / backoffQ / unschedulable pods, nominated pods
    cache.py       nodes and the pods on them, updated incrementally (with assumed pods)
    framework.py   one scheduling cycle: prefilter, filter, score, select
    preemption.py  DefaultPreemption
    plugins/       the default profile's plugins
    admission.py   the Priority admission plugin and the built-in PriorityClasses
"""
from shim.scheduler.scheduler import DEFAULT_SCHEDULER_NAME, Scheduler

__all__ = ["Scheduler", "DEFAULT_SCHEDULER_NAME"]
