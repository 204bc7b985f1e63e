"""TokenReview and the SubjectAccessReview family: create-only, computed, never stored.

Kubelets call both to guard their own API (authentication.webhook, authorization.mode
Webhook), so the API server's kubelet client and bearer tokens reach logs and exec.
"""
from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException


@pytest.fixture
def sa_token(api_client, namespace):
    import time
    core = client.CoreV1Api(api_client)
    deadline = time.monotonic() + 30
    while True:
        try:
            core.read_namespaced_service_account("default", namespace)
            break
        except ApiException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    tr = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    return core.create_namespaced_service_account_token("default", namespace, tr).status.token


def test_token_review_of_a_service_account_token(api_client, namespace, sa_token):
    auth = client.AuthenticationV1Api(api_client)
    out = auth.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token=sa_token)))
    assert out.status.authenticated is True
    assert out.status.user.username == f"system:serviceaccount:{namespace}:default"
    assert "system:serviceaccounts" in out.status.user.groups
    assert f"system:serviceaccounts:{namespace}" in out.status.user.groups
    assert "system:authenticated" in out.status.user.groups


def test_token_review_rejects_garbage_and_foreign_audiences(api_client, sa_token):
    auth = client.AuthenticationV1Api(api_client)
    bad = auth.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token="nope")))
    assert bad.status.authenticated is False
    assert bad.status.error
    other = auth.create_token_review(client.V1TokenReview(
        spec=client.V1TokenReviewSpec(token=sa_token, audiences=["https://elsewhere.example"])))
    assert other.status.authenticated is False


def test_token_review_requires_a_token(api_client):
    auth = client.AuthenticationV1Api(api_client)
    with pytest.raises(ApiException) as e:
        auth.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token="")))
    assert e.value.status == 400
    assert "token is required" in e.value.body


def test_subject_access_reviews(api_client, namespace):
    authz = client.AuthorizationV1Api(api_client)
    sar = authz.create_subject_access_review(client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user="system:kube-apiserver-kubelet-client", groups=["system:masters"],
        resource_attributes=client.V1ResourceAttributes(
            verb="get", resource="nodes", subresource="log", name="n1"))))
    assert sar.status.allowed is True
    local = authz.create_namespaced_local_subject_access_review(namespace, client.V1LocalSubjectAccessReview(
        metadata=client.V1ObjectMeta(namespace=namespace),
        spec=client.V1SubjectAccessReviewSpec(user="someone", groups=["system:authenticated"],
                                              resource_attributes=client.V1ResourceAttributes(
                                                  verb="list", resource="pods"))))
    assert local.metadata.namespace == namespace and local.status.allowed is True
    me = authz.create_self_subject_access_review(client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(non_resource_attributes=client.V1NonResourceAttributes(
            verb="get", path="/healthz"))))
    assert me.status.allowed is True


def test_subject_access_review_needs_exactly_one_kind_of_attributes(api_client):
    authz = client.AuthorizationV1Api(api_client)
    with pytest.raises(ApiException) as e:
        authz.create_subject_access_review(client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(user="x")))
    assert e.value.status == 422
    assert "exactly one of nonResourceAttributes or resourceAttributes must be specified" in e.value.body
    with pytest.raises(ApiException) as e:
        authz.create_subject_access_review(client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(non_resource_attributes=client.V1NonResourceAttributes(
                verb="get", path="/healthz"))))
    assert e.value.status == 422 and "at least one of user or group must be specified" in e.value.body
