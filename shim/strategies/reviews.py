"""Create-only virtual resources: TokenReview and the SubjectAccessReview family.

Nothing is stored. A POST computes `status` from the spec with the API server's own
authenticator and authorizer and returns the object (201, as upstream). Kubelets use
both to guard their own API (authentication.webhook, authorization.mode Webhook), so
the API server can reach pods' logs, exec and port-forward through them.
"""
from __future__ import annotations

from shim.api.strategy import Strategy, strategy_for


class _ReviewStrategy(Strategy):
    kind = ""
    group = ""

    async def handle_create(self, api, request, info, rs):
        from shim.api import errors
        from shim.api import server as srv
        body = await srv.read_body(request, kind=self.kind)
        if not isinstance(body, dict):
            raise errors.bad_request(f"the body must be a {self.group}/v1 {self.kind}")
        spec = body.get("spec")
        if not isinstance(spec, dict):
            spec = {}
        status = await self.review(api, request, info, spec)
        meta = dict(body.get("metadata") or {})
        meta.pop("managedFields", None)
        if rs.info.namespaced:
            meta["namespace"] = info.namespace
        out = {"kind": self.kind, "apiVersion": f"{self.group}/v1", "metadata": meta,
               "spec": spec, "status": status}
        return srv.json_response(out, 201)

    async def review(self, api, request, info, spec: dict) -> dict:  # pragma: no cover
        raise NotImplementedError


@strategy_for("authentication.k8s.io", "tokenreviews")
class TokenReviewStrategy(_ReviewStrategy):
    kind, group = "TokenReview", "authentication.k8s.io"

    async def review(self, api, request, info, spec):
        from shim.api import errors
        from shim.auth.authn import Unauthenticated
        token = spec.get("token")
        if not isinstance(token, str) or not token:
            raise errors.bad_request("token is required for TokenReview in authentication")
        wanted = [a for a in (spec.get("audiences") or []) if isinstance(a, str)]
        try:
            user = await api.authenticator.authenticate_token(token)
        except Unauthenticated as e:
            return {"authenticated": False, "user": {}, "error": str(e) or "invalid bearer token"}
        issuer = getattr(api, "token_issuer", None)
        audiences = list(getattr(issuer, "audiences", ()) or [])
        if wanted:
            # a service account token names its audiences; static tokens are for any audience
            claims = issuer.claims(token) if issuer is not None else None
            token_aud = claims.get("aud") if isinstance(claims, dict) else None
            if isinstance(token_aud, str):
                token_aud = [token_aud]
            have = token_aud if token_aud is not None else wanted
            matched = [a for a in wanted if a in have]
            if not matched:
                return {"authenticated": False, "user": {}, "error": "token audiences don't match"}
            audiences = matched
        status = {"authenticated": True, "user": user.to_dict()}
        if audiences:
            status["audiences"] = audiences
        return status


class _AccessReview(_ReviewStrategy):
    group = "authorization.k8s.io"

    def subject(self, request, info, spec):
        from shim.auth.authn import UserInfo
        extra = {k: tuple(v) for k, v in (spec.get("extra") or {}).items() if isinstance(v, list)}
        return UserInfo(spec.get("user") or "", uid=spec.get("uid") or "",
                        groups=tuple(spec.get("groups") or ()), extra=extra)

    async def review(self, api, request, info, spec):
        from shim.api import errors
        from shim.api import validation as v
        from shim.auth.authz import Attributes
        ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        errs = []
        if (ra is None) == (nra is None):
            errs.append(v.invalid("spec", nra, "exactly one of nonResourceAttributes or "
                                               "resourceAttributes must be specified"))
        if self.kind != "SelfSubjectAccessReview" and not spec.get("user") and not spec.get("groups"):
            errs.append(v.invalid("spec.user", spec.get("user") or "",
                                  "at least one of user or group must be specified"))
        if errs:
            raise errors.invalid(self.kind, self.group, "", errs)
        ra, nra = ra or {}, nra or {}
        user = self.subject(request, info, spec)
        if spec.get("resourceAttributes") is not None:
            ns = ra.get("namespace") or ""
            if self.kind == "LocalSubjectAccessReview":
                ns = info.namespace
            attrs = Attributes(user=user, verb=ra.get("verb") or "", is_resource_request=True,
                               api_group=ra.get("group") or "", api_version=ra.get("version") or "",
                               resource=ra.get("resource") or "", subresource=ra.get("subresource") or "",
                               namespace=ns, name=ra.get("name") or "")
        else:
            attrs = Attributes(user=user, verb=nra.get("verb") or "", is_resource_request=False,
                               path=nra.get("path") or "")
        decision = await api.authorizer.authorize(attrs)
        status = {"allowed": bool(decision.allowed)}
        if decision.denied:
            status["denied"] = True
        if decision.reason:
            status["reason"] = decision.reason
        return status


@strategy_for("authorization.k8s.io", "subjectaccessreviews")
class SubjectAccessReviewStrategy(_AccessReview):
    kind = "SubjectAccessReview"


@strategy_for("authorization.k8s.io", "localsubjectaccessreviews")
class LocalSubjectAccessReviewStrategy(_AccessReview):
    kind = "LocalSubjectAccessReview"


@strategy_for("authorization.k8s.io", "selfsubjectaccessreviews")
class SelfSubjectAccessReviewStrategy(_AccessReview):
    kind = "SelfSubjectAccessReview"

    def subject(self, request, info, spec):
        return request["user"]


@strategy_for("authentication.k8s.io", "selfsubjectreviews")
class SelfSubjectReviewStrategy(_ReviewStrategy):
    """`kubectl auth whoami`: who the server takes the caller to be."""
    kind, group = "SelfSubjectReview", "authentication.k8s.io"

    async def handle_create(self, api, request, info, rs):
        from shim.api import errors
        from shim.api import server as srv
        body = await srv.read_body(request, kind=self.kind)
        if not isinstance(body, dict):
            raise errors.bad_request(f"the body must be a {self.group}/v1 {self.kind}")
        meta = dict(body.get("metadata") or {})
        meta.pop("managedFields", None)
        meta.setdefault("creationTimestamp", None)
        out = {"kind": self.kind, "apiVersion": f"{self.group}/v1", "metadata": meta,
               "status": {"userInfo": request["user"].to_dict()}}
        return srv.json_response(out, 201)
