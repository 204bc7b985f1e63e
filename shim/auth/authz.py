"""Request authorization: may this user do this verb on this thing?

Shaped like kube-apiserver's authorizer interface so RBAC (and anything else)
can slot in as one more `Authorizer` in an `AuthorizerChain`. A Decision is one
of three things, as upstream: allow, explicit deny (stops the chain), or no
opinion (allowed=False, denied=False; the next authorizer gets a say).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol, runtime_checkable

from shim.auth.authn import UNAUTHENTICATED, UserInfo

PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")
"""Non-resource paths anonymous users may read, as upstream's system:public-info-viewer."""


@dataclass(frozen=True, slots=True)
class Attributes:
    """What a request wants to do (upstream's authorizer.Attributes / RequestInfo).

    Resource requests fill api_group..name; non-resource requests (/healthz,
    /version, /apis discovery, ...) have is_resource_request=False and a path.
    Verbs are Kubernetes verbs (get, list, watch, create, ...) for resource
    requests and lowercase HTTP methods for non-resource ones.
    """
    user: UserInfo
    verb: str
    is_resource_request: bool
    path: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""
    denied: bool = False    # explicit deny: stop asking further authorizers

    def __post_init__(self) -> None:
        if self.allowed and self.denied:
            raise ValueError("a decision cannot both allow and deny")

    @classmethod
    def allow(cls, reason: str = "") -> Decision:
        return cls(True, reason)

    @classmethod
    def deny(cls, reason: str = "") -> Decision:
        return cls(False, reason, denied=True)

    @classmethod
    def no_opinion(cls, reason: str = "") -> Decision:
        return cls(False, reason)


@runtime_checkable
class Authorizer(Protocol):
    async def authorize(self, attrs: Attributes) -> Decision: ...


class AllowAuthenticated:
    """Every authenticated user may do everything; anonymous users may only read
    the public health/version endpoints. The stand-in until RBAC exists."""

    async def authorize(self, attrs: Attributes) -> Decision:
        if UNAUTHENTICATED not in attrs.user.groups:
            return Decision.allow("authenticated user")
        if (not attrs.is_resource_request and attrs.verb in ("get", "head")
                and is_public_path(attrs.path)):
            return Decision.allow("public path")
        return Decision.no_opinion("anonymous access is limited to health and version endpoints")


class AuthorizerChain:
    """Ask authorizers in order; the first allow or explicit deny decides.

    If nobody has an opinion the request is not allowed, and the reasons are joined.
    """

    def __init__(self, authorizers: Iterable[Authorizer]) -> None:
        self._authorizers = list(authorizers)

    async def authorize(self, attrs: Attributes) -> Decision:
        reasons: list[str] = []
        for authorizer in self._authorizers:
            decision = await authorizer.authorize(attrs)
            if decision.allowed or decision.denied:
                return decision
            if decision.reason:
                reasons.append(decision.reason)
        return Decision.no_opinion("; ".join(reasons))


def is_public_path(path: str) -> bool:
    """/healthz, /livez, /readyz, /version and their sub-paths (e.g. /readyz/ping)."""
    return any(path == p or path.startswith(p + "/") for p in PUBLIC_PATHS)
