"""Service accounts: default account and CA ConfigMap per namespace, pod admission, TokenRequest."""
from __future__ import annotations

import json
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException


def _wait(fn, timeout=10.0):
    deadline = time.time() + timeout
    while True:
        try:
            return fn()
        except ApiException as e:
            if e.status != 404 or time.time() > deadline:
                raise
        time.sleep(0.1)


def test_default_account_and_root_ca_in_every_namespace(api_client, namespace, server):
    v1 = client.CoreV1Api(api_client)
    sa = _wait(lambda: v1.read_namespaced_service_account("default", namespace))
    assert sa.metadata.uid
    cm = _wait(lambda: v1.read_namespaced_config_map("kube-root-ca.crt", namespace))
    assert cm.data["ca.crt"] == (server.data_dir / "pki" / "ca.crt").read_text()
    # deleted: it comes back
    v1.delete_namespaced_config_map("kube-root-ca.crt", namespace)
    cm2 = _wait(lambda: v1.read_namespaced_config_map("kube-root-ca.crt", namespace))
    assert cm2.metadata.uid != cm.metadata.uid


def test_pod_gets_projected_token_volume(api_client, namespace):
    v1 = client.CoreV1Api(api_client)
    pod = v1.create_namespaced_pod(namespace, {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox:local"}]}})
    assert pod.spec.service_account_name == "default"
    vols = [v for v in pod.spec.volumes if v.name.startswith("kube-api-access-")]
    assert len(vols) == 1
    sources = vols[0].projected.sources
    assert sources[0].service_account_token.path == "token"
    assert sources[1].config_map.name == "kube-root-ca.crt"
    mounts = pod.spec.containers[0].volume_mounts
    assert [(m.name, m.mount_path, m.read_only) for m in mounts] == \
        [(vols[0].name, "/var/run/secrets/kubernetes.io/serviceaccount", True)]
    # automount off: no volume
    pod2 = v1.create_namespaced_pod(namespace, {
        "metadata": {"name": "p2"},
        "spec": {"automountServiceAccountToken": False,
                 "containers": [{"name": "c", "image": "busybox:local"}]}})
    assert not pod2.spec.volumes


def test_pod_with_missing_service_account_is_forbidden(api_client, namespace):
    v1 = client.CoreV1Api(api_client)
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_pod(namespace, {
            "metadata": {"name": "p"},
            "spec": {"serviceAccountName": "nope", "containers": [{"name": "c", "image": "x"}]}})
    assert e.value.status == 403
    assert json.loads(e.value.body)["message"] == \
        f'pods "p" is forbidden: error looking up service account {namespace}/nope: serviceaccount "nope" not found'
    with pytest.raises(ApiException) as e:
        v1.read_namespaced_pod("p", namespace)
    assert e.value.status == 404


def test_token_request_authenticates_as_the_service_account(api_client, namespace, server, kubectl):
    v1 = client.CoreV1Api(api_client)
    _wait(lambda: v1.read_namespaced_service_account("default", namespace))
    tr = v1.create_namespaced_service_account_token("default", namespace, {
        "spec": {"expirationSeconds": 600}})
    token = tr.status.token
    assert token.count(".") == 2 and tr.spec.expiration_seconds == 600
    # the token works as a bearer token, as the service account
    cfg = client.Configuration()
    cfg.host = server.url
    cfg.ssl_ca_cert = str(server.data_dir / "pki" / "ca.crt")
    cfg.api_key = {"authorization": "Bearer " + token}
    with client.ApiClient(cfg) as c:
        group = client.AuthenticationApi(c).get_api_group()  # any authenticated call
        assert group.name == "authentication.k8s.io"
        pods = client.CoreV1Api(c).list_namespaced_pod(namespace)
        assert pods.items == []
    # kubectl create token prints one
    out = kubectl("create", "token", "default", "-n", namespace).strip()
    assert out.count(".") == 2
    # too short an expiry is invalid
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_service_account_token("default", namespace, {"spec": {"expirationSeconds": 60}})
    assert e.value.status == 422
    assert json.loads(e.value.body)["message"] == ('TokenRequest.authentication.k8s.io "default" is invalid: '
                                                   'spec.expirationSeconds: Invalid value: 60: '
                                                   'may not specify a duration less than 10 minutes')
    # deleting the account revokes its tokens
    v1.delete_namespaced_service_account("default", namespace)
    with client.ApiClient(cfg) as c:
        with pytest.raises(ApiException) as e:
            client.CoreV1Api(c).list_namespaced_pod(namespace)
        assert e.value.status == 401


def test_oidc_discovery(kubectl):
    doc = json.loads(kubectl("get", "--raw", "/.well-known/openid-configuration"))
    assert doc["issuer"] == "https://kubernetes.default.svc.cluster.local"
    assert doc["jwks_uri"].endswith("/openid/v1/jwks")
    keys = json.loads(kubectl("get", "--raw", "/openid/v1/jwks"))["keys"]
    assert keys[0]["alg"] == "RS256" and keys[0]["kty"] == "RSA" and keys[0]["kid"]
