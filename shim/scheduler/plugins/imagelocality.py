"""ImageLocality: prefer nodes that already have the pod's images, weighted by how widely
the image is spread (so one node with a popular image does not attract everything)."""
from __future__ import annotations

from shim.scheduler.plugins.base import MAX_NODE_SCORE, SKIP, Plugin
from shim.scheduler.types import NodeInfo, PodInfo, normalized_image_name

MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB


class ImageLocality(Plugin):
    name = "ImageLocality"
    weight = 1

    def __init__(self, cache):
        self.cache = cache

    def pre_score(self, state, pod: PodInfo, nodes):
        names = [normalized_image_name(i) for i in pod.images]
        if not any(n in self.cache.image_nodes for n in names):
            return SKIP  # no node has any of them: every node scores 0
        state[self.name] = names
        return None

    def score(self, state, pod: PodInfo, node: NodeInfo) -> int:
        total_nodes = max(len(self.cache.node_list), 1)
        total = 0
        for name in state[self.name]:
            size = node.images.get(name)
            if size is not None:
                spread = self.cache.image_nodes.get(name, 0) / total_nodes
                total += int(size * spread)
        return calculate_priority(total, len(pod.images))


def calculate_priority(total: int, image_count: int) -> int:
    upper = MAX_CONTAINER_THRESHOLD * image_count
    total = max(MIN_THRESHOLD, min(total, upper))
    if upper == MIN_THRESHOLD:
        return 0
    return MAX_NODE_SCORE * (total - MIN_THRESHOLD) // (upper - MIN_THRESHOLD)
