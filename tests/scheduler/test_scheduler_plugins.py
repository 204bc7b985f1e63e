"""Per-plugin tests: each filter's verdict and message, each score and its normalization,
checked against what upstream's plugins compute for the same input."""
from __future__ import annotations

import pytest

from sched_helpers import node, pod
from shim.scheduler.cache import Cache
from shim.scheduler.plugins.base import SKIP, UNRESOLVABLE, UNSCHEDULABLE, CycleState, default_normalize
from shim.scheduler.plugins.imagelocality import ImageLocality, calculate_priority
from shim.scheduler.plugins.interpodaffinity import InterPodAffinity
from shim.scheduler.plugins.nodebasics import NodeAffinity, NodeName, NodePorts, NodeUnschedulable, TaintToleration
from shim.scheduler.plugins.noderesources import (NodeResourcesBalancedAllocation, NodeResourcesFit,
                                                  balanced_allocation, least_allocated)
from shim.scheduler.plugins.podtopologyspread import PodTopologySpread
from shim.scheduler.types import NodeInfo, PodInfo, pod_requests, tolerates


def ni(obj: dict, *pods: dict) -> NodeInfo:
    n = NodeInfo(obj["metadata"]["name"])
    n.set_node(obj)
    for p in pods:
        n.add_pod(PodInfo(p))
    return n


def pi(obj: dict) -> PodInfo:
    return PodInfo(obj)


# -- resource requests --------------------------------------------------------------------------

def test_pod_requests_sum_containers_and_max_with_init_containers():
    spec = {"containers": [{"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
                           {"resources": {"requests": {"cpu": "500m"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "2", "memory": "512Mi"}}}]}
    r = pod_requests(spec)
    assert r["cpu"] == 2000          # init container needs more cpu than the regular ones together
    assert r["memory"] == 1024**3    # but less memory


def test_pod_requests_sidecars_run_beside_later_init_containers():
    spec = {"containers": [{"resources": {"requests": {"cpu": "1"}}}],
            "initContainers": [{"restartPolicy": "Always", "resources": {"requests": {"cpu": "500m"}}},
                               {"resources": {"requests": {"cpu": "1200m"}}}]}
    # regular phase: 1 + 0.5 sidecar = 1.5; init phase: 1.2 + 0.5 sidecar = 1.7
    assert pod_requests(spec)["cpu"] == 1700


def test_pod_requests_overhead_and_pod_level_resources():
    spec = {"containers": [{"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}],
            "overhead": {"cpu": "250m"}, "resources": {"requests": {"memory": "2Gi"}}}
    r = pod_requests(spec)
    assert r["cpu"] == 1250 and r["memory"] == 2 * 1024**3


def test_non_zero_requests_fill_missing_cpu_and_memory():
    p = pi(pod("p", containers=[{"name": "a", "image": "i"}, {"name": "b", "image": "i",
                                                             "resources": {"requests": {"cpu": "1"}}}]))
    assert (p.req_cpu, p.req_mem) == (1000, 0)
    assert (p.nz_cpu, p.nz_mem) == (1100, 2 * 200 * 1024 * 1024)


# -- NodeName / NodeUnschedulable -------------------------------------------------------------------

def test_node_name():
    pl = NodeName()
    p = pod("p", spec={"nodeName": "a"})
    assert pl.filter(None, pi(p), ni(node("a"))) is None
    st = pl.filter(None, pi(p), ni(node("b")))
    assert st.code == UNRESOLVABLE and st.reasons == ["node(s) didn't match the requested node name"]


def test_node_unschedulable_and_its_toleration():
    pl = NodeUnschedulable()
    n = ni(node("a", unschedulable=True))
    st = pl.filter(None, pi(pod("p")), n)
    assert st.code == UNRESOLVABLE and st.reasons == ["node(s) were unschedulable"]
    tol = pod("p", spec={"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                                          "effect": "NoSchedule"}]})
    assert pl.filter(None, pi(tol), n) is None
    assert pl.filter(None, pi(pod("p")), ni(node("b"))) is None


# -- TaintToleration -----------------------------------------------------------------------------------

@pytest.mark.parametrize("tols,taint,ok", [
    ([], {"key": "k", "value": "v", "effect": "NoSchedule"}, False),
    ([{"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}], {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
    ([{"key": "k", "value": "v"}], {"key": "k", "value": "v", "effect": "NoExecute"}, True),  # empty effect: all
    ([{"key": "k", "operator": "Exists"}], {"key": "k", "value": "x", "effect": "NoSchedule"}, True),
    ([{"operator": "Exists"}], {"key": "any", "value": "x", "effect": "NoSchedule"}, True),  # empty key: all
    ([{"key": "k", "value": "other", "effect": "NoSchedule"}], {"key": "k", "value": "v", "effect": "NoSchedule"}, False),
    ([{"key": "k", "operator": "Exists", "effect": "NoExecute"}], {"key": "k", "effect": "NoSchedule"}, False),
])
def test_toleration_matching(tols, taint, ok):
    assert tolerates(tols, taint) is ok


def test_taint_filter_ignores_prefer_no_schedule():
    pl = TaintToleration()
    hard = ni(node("a", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]))
    st = pl.filter(None, pi(pod("p")), hard)
    assert st.code == UNRESOLVABLE and st.reasons == ["node(s) had untolerated taint(s)"]
    execute = ni(node("b", taints=[{"key": "k", "effect": "NoExecute"}]))
    assert pl.filter(None, pi(pod("p")), execute) is not None
    soft = ni(node("c", taints=[{"key": "k", "value": "v", "effect": "PreferNoSchedule"}]))
    assert pl.filter(None, pi(pod("p")), soft) is None


def test_taint_score_counts_intolerable_prefer_no_schedule_reversed():
    pl = TaintToleration()
    p = pi(pod("p", spec={"tolerations": [{"key": "ok", "operator": "Exists", "effect": "PreferNoSchedule"}]}))
    nodes = [ni(node("none")),
             ni(node("one", taints=[{"key": "bad", "effect": "PreferNoSchedule"},
                                    {"key": "ok", "effect": "PreferNoSchedule"}])),
             ni(node("two", taints=[{"key": "bad", "effect": "PreferNoSchedule"},
                                    {"key": "bad2", "effect": "PreferNoSchedule"}]))]
    state = CycleState()
    pl.pre_score(state, p, nodes)
    scores = [pl.score(state, p, n) for n in nodes]
    assert scores == [0, 1, 2]
    pl.normalize(state, p, scores)
    assert scores == [100, 50, 0]


def test_default_normalize_all_zero_reverse_gives_max():
    s = [0, 0]
    default_normalize(s, reverse=True)
    assert s == [100, 100]
    s = [0, 0]
    default_normalize(s)
    assert s == [0, 0]


# -- NodeAffinity ------------------------------------------------------------------------------------------

def _affinity(required=None, preferred=None):
    na = {}
    if required is not None:
        na["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": required}
    if preferred is not None:
        na["preferredDuringSchedulingIgnoredDuringExecution"] = preferred
    return {"affinity": {"nodeAffinity": na}}


def test_node_selector_and_required_affinity():
    pl = NodeAffinity()
    ssd = ni(node("a", labels={"disk": "ssd", "gen": "5"}))
    hdd = ni(node("b", labels={"disk": "hdd", "gen": "3"}))
    p = pi(pod("p", spec={"nodeSelector": {"disk": "ssd"}}))
    assert pl.filter(None, p, ssd) is None
    st = pl.filter(None, p, hdd)
    assert st.code == UNRESOLVABLE and st.reasons == ["node(s) didn't match Pod's node affinity/selector"]
    # terms are ORed, expressions ANDed; Gt compares integers
    p = pi(pod("p", spec=_affinity(required=[
        {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["nvme"]}]},
        {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]},
                              {"key": "disk", "operator": "Exists"}]}])))
    assert pl.filter(None, p, ssd) is None
    assert pl.filter(None, p, hdd) is not None
    # an empty term matches nothing
    p = pi(pod("p", spec=_affinity(required=[{}])))
    assert pl.filter(None, p, ssd) is not None
    # matchFields on metadata.name
    p = pi(pod("p", spec=_affinity(required=[{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                                   "values": ["b"]}]}])))
    assert pl.filter(None, p, ssd) is not None and pl.filter(None, p, hdd) is None


def test_node_affinity_prefilter_restricts_to_named_nodes():
    pl = NodeAffinity()
    state = CycleState()
    p = pi(pod("p", spec=_affinity(required=[{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                                   "values": ["b"]}]}])))
    assert pl.pre_filter(state, p) is None
    assert state["_node_names"]["NodeAffinity"] == {"b"}
    assert pl.pre_filter(CycleState(), pi(pod("q"))) is SKIP


def test_preferred_node_affinity_score():
    pl = NodeAffinity()
    p = pi(pod("p", spec=_affinity(preferred=[
        {"weight": 2, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
        {"weight": 5, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}}])))
    nodes = [ni(node("a", labels={"disk": "ssd"})), ni(node("b", labels={"disk": "ssd", "zone": "z1"})),
             ni(node("c"))]
    state = CycleState()
    assert pl.pre_score(state, p, nodes) is None
    scores = [pl.score(state, p, n) for n in nodes]
    assert scores == [2, 7, 0]
    pl.normalize(state, p, scores)
    assert scores == [28, 100, 0]
    assert pl.pre_score(state, pi(pod("q")), nodes) is SKIP


# -- NodePorts -------------------------------------------------------------------------------------------

def _ports(*ports):
    return [{"name": "c", "image": "i", "ports": [dict(p) for p in ports]}]


def test_host_ports():
    pl = NodePorts()
    used = ni(node("a"), pod("x", containers=_ports({"containerPort": 80, "hostPort": 8080})))
    free = ni(node("b"))
    p = pi(pod("p", containers=_ports({"containerPort": 80, "hostPort": 8080})))
    assert pl.pre_filter(CycleState(), p) is None
    st = pl.filter(None, p, used)
    assert st.code == UNSCHEDULABLE and st.reasons == ["node(s) didn't have free ports for the requested pod ports"]
    assert pl.filter(None, p, free) is None
    # another protocol or a different specific address does not clash ...
    udp = pi(pod("p", containers=_ports({"containerPort": 80, "hostPort": 8080, "protocol": "UDP"})))
    assert pl.filter(None, udp, used) is None
    ip1 = ni(node("c"), pod("x", containers=_ports({"containerPort": 80, "hostPort": 9090, "hostIP": "10.0.0.1"})))
    ip2 = pi(pod("p", containers=_ports({"containerPort": 80, "hostPort": 9090, "hostIP": "10.0.0.2"})))
    assert pl.filter(None, ip2, ip1) is None
    # ... but 0.0.0.0 clashes with every address
    any_ip = pi(pod("p", containers=_ports({"containerPort": 80, "hostPort": 9090})))
    assert pl.filter(None, any_ip, ip1) is not None
    assert pl.pre_filter(CycleState(), pi(pod("q"))) is SKIP


# -- NodeResourcesFit --------------------------------------------------------------------------------------

def test_fit_reports_every_insufficient_resource():
    pl = NodeResourcesFit()
    n = ni(node("a", cpu="2", memory="2Gi", extra={"example.com/gpu": "1"}),
           pod("x", cpu="1500m", memory="1Gi"))
    p = pi(pod("p", containers=[{"name": "c", "image": "i", "resources": {
        "requests": {"cpu": "1", "memory": "1536Mi", "example.com/gpu": "2"}}}]))
    st = pl.filter(None, p, n)
    assert st.reasons == ["Insufficient cpu", "Insufficient memory", "Insufficient example.com/gpu"]
    assert st.code == UNRESOLVABLE  # 2 gpus can never fit on a 1-gpu node
    st = pl.filter(None, pi(pod("p", cpu="1")), n)
    assert st.code == UNSCHEDULABLE and st.reasons == ["Insufficient cpu"]


def test_fit_counts_pods_against_allocatable_pods():
    pl = NodeResourcesFit()
    n = ni(node("a", pods="1"), pod("x"))
    st = pl.filter(None, pi(pod("p")), n)
    assert st.code == UNSCHEDULABLE and st.reasons == ["Too many pods"]


def test_fit_best_effort_pod_only_needs_a_pod_slot():
    pl = NodeResourcesFit()
    full = ni(node("a", cpu="1"), pod("x", cpu="1"))
    assert pl.filter(None, pi(pod("p")), full) is None


def test_least_allocated_scores():
    # node 4 cpu / 10000 bytes; pod asks 3 cpu and 5000 bytes: (25 + 50) / 2
    n1 = ni(node("a", cpu="4", memory="10000"))
    n2 = ni(node("b", cpu="6", memory="10000"))
    p = pi(pod("p", containers=[
        {"name": "a", "image": "i", "resources": {"requests": {"cpu": "1", "memory": "2000"}}},
        {"name": "b", "image": "i", "resources": {"requests": {"cpu": "2", "memory": "3000"}}}]))
    assert NodeResourcesFit().score(None, p, n1) == 37
    assert NodeResourcesFit().score(None, p, n2) == 50
    # existing pods count; with a container lacking requests, the non-zero defaults count
    n3 = ni(node("c", cpu="10", memory="20000"), pod("x", cpu="3", memory="0"), pod("y", cpu="3", memory="5000"))
    assert least_allocated(0, 0, n3) == (40 + 75) // 2


def test_balanced_allocation_scores():
    # node 4 cpu / 10000; pod 3 cpu / 5000: fractions .75 and .5 -> std .125 -> 87; before: 100
    n = ni(node("a", cpu="4", memory="10000"))
    assert balanced_allocation(3000, 5000, n) == 50 + (50 + 87 - 100) // 2
    # a node already unbalanced is made more balanced by a pod heavy on the scarce side
    m = ni(node("b", cpu="4", memory="10000"), pod("x", cpu="3", memory="0"))
    assert balanced_allocation(0, 7500, m) == 50 + (50 + 100 - 62) // 2
    # a best-effort pod does not take part
    pl = NodeResourcesBalancedAllocation()
    assert pl.pre_score(CycleState(), pi(pod("p")), [n]) is SKIP


def test_balanced_allocation_worst_case():
    # with pod: 1/4 cpu and all memory -> std .375 -> 62; without: 100: 50 + (50 + 62 - 100) / 2
    n = ni(node("a", cpu="4", memory="100"))
    assert balanced_allocation(1000, 100, n) == 56
    # the most unbalancing pod possible: 50 + (50 + 50 - 100) / 2
    m = ni(node("b", cpu="1", memory="100"))
    assert balanced_allocation(1000, 0, m) == 50


# -- ImageLocality -------------------------------------------------------------------------------------------

def test_image_locality():
    assert calculate_priority(0, 1) == 0
    assert calculate_priority(1000 * 1024 * 1024, 1) == 100
    cache = Cache()
    big = 500 * 1024 * 1024
    cache.add_or_update_node(node("a", images=[{"names": ["nginx:1.25"], "sizeBytes": big}]))
    cache.add_or_update_node(node("b"))
    pl = ImageLocality(cache)
    p = pi(pod("p", containers=[{"name": "c", "image": "nginx:1.25"}]))
    state = CycleState()
    assert pl.pre_score(state, p, cache.node_list) is None
    # spread 1/2 of the nodes: 250Mi counted
    expected = 100 * (big // 2 - 23 * 1024 * 1024) // (1000 * 1024 * 1024 - 23 * 1024 * 1024)
    assert pl.score(state, p, cache.get_node("a")) == expected
    assert pl.score(state, p, cache.get_node("b")) == 0
    assert pl.pre_score(CycleState(), pi(pod("q", containers=[{"name": "c", "image": "busybox"}])),
                        cache.node_list) is SKIP


# -- InterPodAffinity -------------------------------------------------------------------------------------------

def _pod_affinity(kind: str, labels: dict, key: str = "kubernetes.io/hostname", required=True, weight=10):
    term = {"labelSelector": {"matchLabels": labels}, "topologyKey": key}
    if required:
        return {"affinity": {kind: {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}}
    return {"affinity": {kind: {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": weight, "podAffinityTerm": term}]}}}


def _cache(nodes, pods):
    c = Cache()
    for n in nodes:
        c.add_or_update_node(n)
    for p in pods:
        c.add_or_update_pod(PodInfo(p))
    return c


def test_required_affinity():
    c = _cache([node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"})],
               [pod("db", labels={"app": "db"}, node_name="a")])
    pl = InterPodAffinity(c)
    p = pi(pod("web", spec=_pod_affinity("podAffinity", {"app": "db"}, "zone")))
    state = CycleState()
    assert pl.pre_filter(state, p) is None
    assert pl.filter(state, p, c.get_node("a")) is None
    st = pl.filter(state, p, c.get_node("b"))
    assert st.code == UNRESOLVABLE and st.reasons == ["node(s) didn't match pod affinity rules"]


def test_first_pod_of_a_group_may_match_its_own_affinity():
    c = _cache([node("a"), node("b")], [])
    pl = InterPodAffinity(c)
    p = pi(pod("w1", labels={"app": "web"}, spec=_pod_affinity("podAffinity", {"app": "web"})))
    state = CycleState()
    pl.pre_filter(state, p)
    assert pl.filter(state, p, c.get_node("a")) is None
    other = pi(pod("w1", labels={"app": "other"}, spec=_pod_affinity("podAffinity", {"app": "web"})))
    state = CycleState()
    pl.pre_filter(state, other)
    assert pl.filter(state, other, c.get_node("a")) is not None


def test_required_anti_affinity_both_ways():
    c = _cache([node("a"), node("b")],
               [pod("x", labels={"app": "web"}, node_name="a",
                    spec=_pod_affinity("podAntiAffinity", {"app": "web"}))])
    pl = InterPodAffinity(c)
    # the incoming pod's own anti-affinity
    p = pi(pod("y", labels={"app": "other"}, spec=_pod_affinity("podAntiAffinity", {"app": "web"})))
    state = CycleState()
    pl.pre_filter(state, p)
    st = pl.filter(state, p, c.get_node("a"))
    assert st.code == UNSCHEDULABLE and st.reasons == ["node(s) didn't match pod anti-affinity rules"]
    assert pl.filter(state, p, c.get_node("b")) is None
    # the existing pod's anti-affinity against the incoming pod
    q = pi(pod("z", labels={"app": "web"}))
    state = CycleState()
    assert pl.pre_filter(state, q) is None
    st = pl.filter(state, q, c.get_node("a"))
    assert st.reasons == ["node(s) didn't satisfy existing pods anti-affinity rules"]
    # an unrelated pod is not concerned
    assert pl.pre_filter(CycleState(), pi(pod("u", labels={"app": "x"}))) is SKIP


def test_anti_affinity_respects_namespaces():
    c = _cache([node("a")], [pod("x", labels={"app": "web"}, node_name="a", namespace="other")])
    pl = InterPodAffinity(c)
    p = pi(pod("y", spec=_pod_affinity("podAntiAffinity", {"app": "web"})))  # own namespace only
    state = CycleState()
    pl.pre_filter(state, p)
    assert pl.filter(state, p, c.get_node("a")) is None
    c.namespaces = {"default": {"team": "a"}, "other": {"team": "a"}}
    spec = _pod_affinity("podAntiAffinity", {"app": "web"})
    spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["namespaceSelector"] = \
        {"matchLabels": {"team": "a"}}
    p = pi(pod("y", spec=spec))
    state = CycleState()
    pl.pre_filter(state, p)
    assert pl.filter(state, p, c.get_node("a")) is not None


def test_preferred_affinity_score_min_max_normalized():
    c = _cache([node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"}),
                node("c", labels={"zone": "z1"})],
               [pod("db", labels={"app": "db"}, node_name="a")])
    pl = InterPodAffinity(c)
    p = pi(pod("web", spec=_pod_affinity("podAffinity", {"app": "db"}, "zone", required=False, weight=5)))
    nodes = c.node_list
    state = CycleState()
    assert pl.pre_score(state, p, nodes) is None
    scores = [pl.score(state, p, n) for n in nodes]
    assert dict(zip([n.name for n in nodes], scores)) == {"a": 5, "b": 0, "c": 5}
    pl.normalize(state, p, scores)
    assert dict(zip([n.name for n in nodes], scores)) == {"a": 100, "b": 0, "c": 100}
    # anti-affinity preferences push away
    q = pi(pod("web2", spec=_pod_affinity("podAntiAffinity", {"app": "db"}, "zone", required=False, weight=5)))
    state = CycleState()
    pl.pre_score(state, q, nodes)
    scores = [pl.score(state, q, n) for n in nodes]
    pl.normalize(state, q, scores)
    assert dict(zip([n.name for n in nodes], scores)) == {"a": 0, "b": 100, "c": 0}


def test_existing_pods_required_affinity_counts_for_scoring():
    c = _cache([node("a"), node("b")],
               [pod("x", node_name="a", spec=_pod_affinity("podAffinity", {"app": "web"}))])
    pl = InterPodAffinity(c)
    p = pi(pod("w", labels={"app": "web"}))
    state = CycleState()
    assert pl.pre_score(state, p, c.node_list) is None
    assert [pl.score(state, p, n) for n in c.node_list] == [1, 0]


# -- PodTopologySpread -------------------------------------------------------------------------------------------

def _spread(max_skew=1, key="zone", when="DoNotSchedule", labels=None, **kw):
    return {"topologySpreadConstraints": [dict({
        "maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when,
        "labelSelector": {"matchLabels": labels or {"app": "web"}}}, **kw)]}


def test_spread_filter_skew():
    nodes = [node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"}), node("c")]
    pods = [pod("w1", labels={"app": "web"}, node_name="a"), pod("w2", labels={"app": "web"}, node_name="a")]
    c = _cache(nodes, pods)
    pl = PodTopologySpread(c)
    p = pi(pod("w3", labels={"app": "web"}, spec=_spread()))
    state = CycleState()
    assert pl.pre_filter(state, p) is None
    st = pl.filter(state, p, c.get_node("a"))
    assert st.code == UNSCHEDULABLE and st.reasons == ["node(s) didn't match pod topology spread constraints"]
    assert pl.filter(state, p, c.get_node("b")) is None
    st = pl.filter(state, p, c.get_node("c"))
    assert st.code == UNRESOLVABLE
    assert st.reasons == ["node(s) didn't match pod topology spread constraints (missing required label)"]


def test_spread_min_domains():
    c = _cache([node("a", labels={"zone": "z1"})], [pod("w1", labels={"app": "web"}, node_name="a")])
    pl = PodTopologySpread(c)
    # one domain but minDomains 2: the global minimum counts as 0, so skew is 2 > 1
    p = pi(pod("w2", labels={"app": "web"}, spec=_spread(minDomains=2)))
    state = CycleState()
    pl.pre_filter(state, p)
    assert pl.filter(state, p, c.get_node("a")) is not None
    p = pi(pod("w2", labels={"app": "web"}, spec=_spread(max_skew=2, minDomains=2)))
    state = CycleState()
    pl.pre_filter(state, p)
    assert pl.filter(state, p, c.get_node("a")) is None


def test_spread_score_prefers_emptier_domains():
    nodes = [node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z1"}), node("c", labels={"zone": "z2"})]
    pods = [pod("w1", labels={"app": "web"}, node_name="a"), pod("w2", labels={"app": "web"}, node_name="b")]
    c = _cache(nodes, pods)
    pl = PodTopologySpread(c)
    p = pi(pod("w3", labels={"app": "web"}, spec=_spread(when="ScheduleAnyway")))
    state = CycleState()
    assert pl.pre_score(state, p, c.node_list) is None
    names = [n.name for n in c.node_list]
    scores = [pl.score(state, p, n) for n in c.node_list]
    pl.normalize_named(state, p, names, scores)
    by = dict(zip(names, scores))
    assert by["c"] == 100 and by["a"] == by["b"] < 100


def test_spread_system_defaults_follow_services_and_owners():
    c = _cache([node("a", labels={"topology.kubernetes.io/zone": "z1"}),
                node("b", labels={"topology.kubernetes.io/zone": "z2"})],
               [pod("w1", labels={"app": "web"}, node_name="a")])
    pl = PodTopologySpread(c)
    p = pi(pod("w2", labels={"app": "web"}))
    assert pl.pre_score(CycleState(), p, c.node_list) is SKIP  # nothing selects it: no spreading
    c.services["default"]["web"] = {"metadata": {"name": "web", "namespace": "default"},
                                    "spec": {"selector": {"app": "web"}}}
    state = CycleState()
    assert pl.pre_score(state, p, c.node_list) is None
    names = [n.name for n in c.node_list]
    scores = [pl.score(state, p, n) for n in c.node_list]
    pl.normalize_named(state, p, names, scores)
    assert dict(zip(names, scores))["b"] == 100 > dict(zip(names, scores))["a"]
    # defaults never filter
    assert pl.pre_filter(CycleState(), p) is SKIP
