"""resource.k8s.io (dynamic resource allocation) and certificates.k8s.io's pod-facing kinds.

Stored and served like any other kind; what is particular to them is which fields a
field selector may name. A v1.37 kubelet watches the ResourceSlices and
PodCertificateRequests of its own node (`spec.nodeName=<node>`) and, on start, deletes
the slices its drivers published before.
"""
from __future__ import annotations

from shim.api.strategy import Strategy, strategy_for


@strategy_for("resource.k8s.io", "resourceslices")
class ResourceSliceStrategy(Strategy):
    selectable_fields = ("spec.nodeName", "spec.driver", "spec.pool.name")


@strategy_for("certificates.k8s.io", "podcertificaterequests")
class PodCertificateRequestStrategy(Strategy):
    selectable_fields = ("spec.signerName", "spec.podName", "spec.nodeName")


@strategy_for("certificates.k8s.io", "clustertrustbundles")
class ClusterTrustBundleStrategy(Strategy):
    selectable_fields = ("spec.signerName",)
