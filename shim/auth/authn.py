"""Request authentication: who is making this request?

Mirrors kube-apiserver's authenticator union, in its order:
  1. x509 client certificate issued by the cluster CA: CN -> user, each O -> group;
  2. `Authorization: Bearer <token>`: the static token file (--token-auth-file
     format), then any pluggable token authenticators (service-account JWTs,
     bootstrap tokens, ... later);
  3. no credentials at all -> system:anonymous in system:unauthenticated.
The first success wins. Credentials that are present but wrong are an
authentication failure (`Unauthenticated`, answered with 401), never a silent
fall-back to anonymous. Successful non-anonymous users get system:authenticated
added, as upstream's AuthenticatedGroupAdder does.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable, Mapping, Protocol, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ANONYMOUS = "system:anonymous"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"


class Unauthenticated(Exception):
    """Credentials were presented but are not valid; the server answers 401."""


@dataclass(frozen=True)
class UserInfo:
    """An authenticated (or anonymous) identity, as Kubernetes' user.Info."""
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def is_anonymous(self) -> bool:
        return UNAUTHENTICATED in self.groups

    def to_dict(self) -> dict:
        """authentication.k8s.io UserInfo JSON (empty fields omitted, as Go's omitempty)."""
        out: dict = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


ANONYMOUS_USER = UserInfo(ANONYMOUS, groups=(UNAUTHENTICATED,))

TokenAuthenticator = Callable[[str], Awaitable["UserInfo | None"]]
"""token -> user, None if the token is not one of its kind; may raise Unauthenticated."""


class _Request(Protocol):
    """The slice of aiohttp's web.Request we use (so tests can pass a stand-in)."""
    headers: Mapping[str, str]

    @property
    def transport(self): ...


class Authenticator:
    """Authenticates aiohttp requests; see the module docstring for the order.

    client_ca_pem: PEM bundle of CAs whose client certs are accepted (None
    disables x509). token_file: a --token-auth-file CSV. token_authenticators:
    further async token checkers, tried after the static tokens.
    """

    def __init__(self, *, client_ca_pem: bytes | None = None, token_file: Path | None = None,
                 token_authenticators: Sequence[TokenAuthenticator] = (),
                 anonymous: bool = True) -> None:
        self._client_cas = x509.load_pem_x509_certificates(client_ca_pem) if client_ca_pem else []
        self._token_authenticators: list[TokenAuthenticator] = []
        if token_file is not None:
            self._token_authenticators.append(StaticTokens.load(token_file))
        self._token_authenticators.extend(token_authenticators)
        self._anonymous = anonymous

    def add_token_authenticator(self, authenticator: TokenAuthenticator) -> None:
        self._token_authenticators.append(authenticator)

    async def authenticate(self, request: _Request) -> UserInfo:
        """The request's user; raises Unauthenticated for bad (or, if anonymous is off, no) credentials."""
        errors: list[str] = []
        try:
            user = self._from_client_cert(request)
        except Unauthenticated as e:
            errors.append(str(e))
        else:
            if user is not None:
                return _with_authenticated_group(user)
        token = bearer_token(request.headers.get("Authorization", ""))
        if token is not None:
            try:
                return await self.authenticate_token(token)
            except Unauthenticated as e:
                errors.append(str(e))
        if errors:
            raise Unauthenticated("; ".join(errors))
        if self._anonymous:
            return ANONYMOUS_USER
        raise Unauthenticated("no credentials provided")

    async def authenticate_token(self, token: str) -> UserInfo:
        """A bearer token's user (also what a TokenReview needs); raises Unauthenticated."""
        errors: list[str] = []
        for authenticator in self._token_authenticators:
            try:
                user = await authenticator(token)
            except Unauthenticated as e:
                errors.append(str(e))
                continue
            if user is not None:
                return _with_authenticated_group(user)
        raise Unauthenticated("; ".join(errors) or "invalid bearer token")

    def _from_client_cert(self, request: _Request) -> UserInfo | None:
        """The TLS peer certificate's identity, re-verified against our client CAs.

        The TLS layer has already checked the chain against whatever the server
        context trusts; we check again against exactly the configured CA, using
        the DER form (ssl's dict form is only filled in for verified certs and
        carries less). Upstream's rules: issued by a client CA, currently valid,
        ExtKeyUsage absent or including clientAuth, non-empty CN.
        """
        if not self._client_cas:
            return None
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            return None
        # Verified certificates are remembered (a signature check per request is costly);
        # the validity window is still checked on every request.
        cache = self.__dict__.setdefault("_verified_certs", {})
        hit = cache.get(der)
        if hit is not None:
            if hit[0] <= dt.datetime.now(dt.timezone.utc) <= hit[1]:
                return hit[2]
            del cache[der]
        cert = x509.load_der_x509_certificate(der)
        if not any(_issued_by(cert, ca) for ca in self._client_cas):
            raise Unauthenticated("x509: certificate signed by unknown authority")
        now = dt.datetime.now(dt.timezone.utc)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise Unauthenticated("x509: certificate has expired or is not yet valid")
        try:
            ekus = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            ekus = None
        if ekus is not None and not ({ExtendedKeyUsageOID.CLIENT_AUTH,
                                      ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE} & set(ekus)):
            raise Unauthenticated("x509: certificate specifies an incompatible key usage")
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not cns or not cns[0].value:
            return None
        orgs = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
        credential = "X509SHA256=" + hashlib.sha256(der).hexdigest()
        user = UserInfo(str(cns[0].value), groups=orgs, extra={CREDENTIAL_ID: (credential,)})
        if len(cache) > 1024:
            cache.clear()
        cache[der] = (cert.not_valid_before_utc, cert.not_valid_after_utc, user)
        return user


class StaticTokens:
    """kube-apiserver's --token-auth-file: CSV rows `token,user,uid[,"group1,group2"]`."""

    def __init__(self, users: Mapping[str, UserInfo]) -> None:
        self._users = dict(users)

    @classmethod
    def load(cls, path: Path) -> StaticTokens:
        return cls.parse(Path(path).read_text(), source=str(path))

    @classmethod
    def parse(cls, text: str, *, source: str = "token file") -> StaticTokens:
        """Parse as upstream: >= 3 columns, empty tokens skipped, later duplicates win."""
        users: dict[str, UserInfo] = {}
        for record in csv.reader(io.StringIO(text)):
            if not record:
                continue
            if len(record) < 3:
                raise ValueError(f"{source}: must have at least 3 columns "
                                 f"(token, user name, user uid), found {len(record)}")
            token, name, uid = record[:3]
            if not token:
                continue
            groups = tuple(g for g in record[3].split(",") if g) if len(record) > 3 else ()
            users[token] = UserInfo(name, uid=uid, groups=groups)
        return cls(users)

    async def __call__(self, token: str) -> UserInfo | None:
        return self._users.get(token)


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, parsed like upstream."""
    parts = authorization.strip().split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
        return None
    return parts[1]


def _with_authenticated_group(user: UserInfo) -> UserInfo:
    if AUTHENTICATED in user.groups or UNAUTHENTICATED in user.groups:
        return user
    return UserInfo(user.name, user.uid, (*user.groups, AUTHENTICATED), user.extra)


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
