"""The plugin contract: statuses, cycle state, and the extension points a plugin may fill.

A plugin is an object with a `name` and any of these methods (all synchronous; a scheduling
cycle never waits on I/O):

    pre_filter(state, pod) -> Status | None | SKIP   # once per cycle; SKIP: not relevant
    filter(state, pod, node) -> Status | None        # per node; None means "fits"
    add_pod(state, pod, other, node) / remove_pod(...)  # keep pre_filter state true when a
                                                     # cycle pretends a pod is (not) on a node
    pre_score(state, pod, nodes) -> SKIP | None      # once per cycle, over feasible nodes
    score(state, pod, node) -> int                   # per feasible node
    normalize(state, pod, scores: list[int]) -> None # rewrite scores in place to 0..100

`weight` multiplies a score plugin's normalized score. Status codes follow upstream:
UNSCHEDULABLE may be fixed by preempting pods on the node; UNRESOLVABLE may not.
"""
from __future__ import annotations

MAX_NODE_SCORE = 100

SUCCESS, UNSCHEDULABLE, UNRESOLVABLE, ERROR = 0, 2, 3, 1


class _Skip:
    def __repr__(self):
        return "SKIP"


SKIP = _Skip()


class Status:
    __slots__ = ("code", "reasons", "plugin")

    def __init__(self, code: int, *reasons: str, plugin: str = ""):
        self.code = code
        self.reasons = list(reasons)
        self.plugin = plugin

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    @property
    def unresolvable(self) -> bool:
        return self.code == UNRESOLVABLE

    def __repr__(self) -> str:
        return f"Status({self.code}, {self.reasons!r}, {self.plugin!r})"


def unschedulable(*reasons: str, plugin: str = "") -> Status:
    return Status(UNSCHEDULABLE, *reasons, plugin=plugin)


def unresolvable(*reasons: str, plugin: str = "") -> Status:
    return Status(UNRESOLVABLE, *reasons, plugin=plugin)


class CycleState(dict):
    """Per-cycle scratch space shared by the plugins (keys are plugin names)."""

    def clone(self) -> "CycleState":
        c = CycleState()
        for k, v in self.items():
            c[k] = v.clone() if hasattr(v, "clone") else v
        return c


def default_normalize(scores: list[int], reverse: bool = False) -> None:
    """helper.DefaultNormalizeScore: scale to 0..100 by the maximum (optionally reversed)."""
    top = max(scores) if scores else 0
    if top <= 0:
        if reverse:
            for i in range(len(scores)):
                scores[i] = MAX_NODE_SCORE
        return
    for i, s in enumerate(scores):
        s = MAX_NODE_SCORE * s // top
        scores[i] = MAX_NODE_SCORE - s if reverse else s


class Plugin:
    name = ""
    weight = 1
