"""Service account tokens: bound JWTs issued through TokenRequest, checked on every request.

Tokens are RS256 JWTs signed with the cluster's service-account key (pki/sa.key), shaped as
upstream's bound tokens: issuer and audience, expiry, and a `kubernetes.io` claim naming the
namespace, the service account (name, uid) and, when bound, the pod. A token is accepted
only while its service account (and bound pod) still exists with the same uid, so deleting
either revokes it, as upstream does.
"""
from __future__ import annotations

import base64
import hashlib
import time
import uuid
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from shim.auth.authn import Unauthenticated, UserInfo

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SA_PREFIX = "system:serviceaccount:"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Signs and verifies service account JWTs with one RSA key pair."""

    def __init__(self, private_key_pem: bytes, *, issuer: str = DEFAULT_ISSUER,
                 audiences: tuple[str, ...] = (DEFAULT_ISSUER,)):
        self.key: rsa.RSAPrivateKey = serialization.load_pem_private_key(private_key_pem, None)
        self.public = self.key.public_key()
        der = self.public.public_bytes(serialization.Encoding.DER,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = _b64(hashlib.sha256(der).digest())
        self.issuer = issuer
        self.audiences = audiences
        self.lookup = None  # async (namespace, plural, name) -> object | None, set by the Api

    @classmethod
    def from_file(cls, path: Path, **kw) -> "TokenIssuer":
        return cls(Path(path).read_bytes(), **kw)

    # -- issuing ---------------------------------------------------------------------------
    def issue(self, namespace: str, sa: dict, *, audiences: list[str] | None, expiration_seconds: int,
              pod: dict | None = None, node: dict | None = None) -> tuple[str, int]:
        """A signed token and its expiry (unix seconds)."""
        now = int(time.time())
        exp = now + expiration_seconds
        k8s: dict = {"namespace": namespace,
                     "serviceaccount": {"name": sa["metadata"]["name"], "uid": sa["metadata"]["uid"]}}
        if pod is not None:
            k8s["pod"] = {"name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}
        if node is not None:
            k8s["node"] = {"name": node["metadata"]["name"], "uid": node["metadata"]["uid"]}
        claims = {"aud": list(audiences or self.audiences), "exp": exp, "iat": now, "nbf": now,
                  "iss": self.issuer, "jti": str(uuid.uuid4()), "kubernetes.io": k8s,
                  "sub": f"{SA_PREFIX}{namespace}:{sa['metadata']['name']}"}
        header = {"alg": "RS256", "kid": self.kid}
        signing_input = _b64(orjson.dumps(header)) + "." + _b64(orjson.dumps(claims))
        sig = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64(sig), exp

    def jwks(self) -> dict:
        n = self.public.public_numbers()
        def enc(i: int) -> str:
            return _b64(i.to_bytes((i.bit_length() + 7) // 8, "big"))
        return {"keys": [{"use": "sig", "kty": "RSA", "kid": self.kid, "alg": "RS256",
                          "n": enc(n.n), "e": enc(n.e)}]}

    def openid_configuration(self) -> dict:
        return {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/openid/v1/jwks",
                "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"]}

    # -- checking ----------------------------------------------------------------------------
    def claims(self, token: str, audiences: tuple[str, ...] | None = None) -> dict | None:
        """Verified claims, None if this is not one of our tokens, Unauthenticated if bad."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = orjson.loads(_unb64(parts[0]))
            claims = orjson.loads(_unb64(parts[1]))
        except Exception:
            return None
        if not isinstance(claims, dict) or claims.get("iss") != self.issuer:
            return None
        if header.get("alg") != "RS256":
            raise Unauthenticated("invalid bearer token")
        try:
            self.public.verify(_unb64(parts[2]), (parts[0] + "." + parts[1]).encode(),
                               padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            raise Unauthenticated("invalid bearer token, square/go-jose: error in cryptographic primitive") from None
        now = time.time()
        if claims.get("exp", 0) < now - 60 or claims.get("nbf", 0) > now + 60:
            raise Unauthenticated("invalid bearer token, service account token has expired")
        aud = claims.get("aud") or []
        if isinstance(aud, str):
            aud = [aud]
        wanted = audiences or self.audiences
        if not set(aud) & set(wanted):
            raise Unauthenticated("invalid bearer token, token audiences are invalid")
        return claims

    async def authenticate(self, token: str) -> UserInfo | None:
        """The Authenticator plug-in: service account tokens for API requests."""
        claims = self.claims(token)
        if claims is None:
            return None
        return await self.user_for(claims)

    async def user_for(self, claims: dict) -> UserInfo:
        k8s = claims.get("kubernetes.io") or {}
        ns = k8s.get("namespace", "")
        sa_ref = k8s.get("serviceaccount") or {}
        if self.lookup is not None:
            sa = await self.lookup(ns, "serviceaccounts", sa_ref.get("name", ""))
            if sa is None or sa["metadata"].get("uid") != sa_ref.get("uid"):
                raise Unauthenticated("invalid bearer token, service account "
                                      f"{ns}/{sa_ref.get('name')} has been deleted")
            pod_ref = k8s.get("pod")
            if pod_ref:
                pod = await self.lookup(ns, "pods", pod_ref.get("name", ""))
                if pod is None or pod["metadata"].get("uid") != pod_ref.get("uid"):
                    raise Unauthenticated(f"invalid bearer token, pod {ns}/{pod_ref.get('name')} "
                                          f"has been deleted")
        extra: dict = {}
        if k8s.get("pod"):
            extra["authentication.kubernetes.io/pod-name"] = (k8s["pod"]["name"],)
            extra["authentication.kubernetes.io/pod-uid"] = (k8s["pod"]["uid"],)
        if k8s.get("node"):
            extra["authentication.kubernetes.io/node-name"] = (k8s["node"]["name"],)
            extra["authentication.kubernetes.io/node-uid"] = (k8s["node"]["uid"],)
        if claims.get("jti"):
            extra["authentication.kubernetes.io/credential-id"] = (f"JTI={claims['jti']}",)
        return UserInfo(name=f"{SA_PREFIX}{ns}:{sa_ref.get('name', '')}", uid=sa_ref.get("uid", ""),
                        groups=("system:serviceaccounts", f"system:serviceaccounts:{ns}"), extra=extra)
