"""shim.auth: authentication over real TLS (aiohttp, Python client, kubectl) and authorization."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shim.auth.authn import (ANONYMOUS_USER, Authenticator, StaticTokens, Unauthenticated,
                             UserInfo, bearer_token)
from shim.auth.authz import (AllowAuthenticated, Attributes, Authorizer, AuthorizerChain,
                             Decision)
from shim.pki import Pki, ensure_pki, write_kubeconfig

VERSION = {"major": "1", "minor": "37", "gitVersion": "v1.37.1",
           "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
           "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25.0", "compiler": "gc",
           "platform": "linux/amd64"}
TOKENS = """\
tok-alice,alice,uid-alice,"dev,ops"
tok-bob,bob,uid-bob
"""
KUBECTL = Path(sys.executable).parent / "kubectl"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("auth") / "pki")


@pytest.fixture
def token_file(tmp_path) -> Path:
    path = tmp_path / "tokens.csv"
    path.write_text(TOKENS)
    return path


@dataclass
class Server:
    url: str
    seen: list[UserInfo] = field(default_factory=list)


@pytest.fixture
async def server(pki, token_file):
    """A tiny TLS API server: authenticates every request, authorizes with AllowAuthenticated.

    /version(/) answers like kube-apiserver; any other path echoes the user's UserInfo.
    """
    authn = Authenticator(client_ca_pem=pki.ca_pem, token_file=token_file)
    authz = AuthorizerChain([AllowAuthenticated()])
    srv = Server(url="")

    async def handle(request: web.Request) -> web.Response:
        try:
            user = await authn.authenticate(request)
        except Unauthenticated as e:
            return web.json_response(status_body(401, "Unauthorized", str(e)), status=401)
        srv.seen.append(user)
        attrs = Attributes(user=user, verb=request.method.lower(), is_resource_request=False,
                           path=request.path)
        decision = await authz.authorize(attrs)
        if not decision.allowed:
            return web.json_response(status_body(403, "Forbidden", decision.reason), status=403)
        if request.path in ("/version", "/version/"):   # the Python client asks for /version/
            return web.json_response(VERSION)
        return web.json_response(user.to_dict())

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=pki.server_ssl_context())
    await site.start()
    srv.url = f"https://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield srv
    finally:
        await runner.cleanup()


def status_body(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


async def get(url: str, ssl_ctx, headers: dict | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url, ssl=ssl_ctx, headers=headers or {}) as resp:
            return resp.status, await resp.json()


# -- over real TLS ------------------------------------------------------------

async def test_admin_client_cert(server, pki):
    status, body = await get(server.url + "/whoami", pki.client_ssl_context())
    assert status == 200
    assert body["username"] == "kubernetes-admin"
    assert body["groups"] == ["system:masters", "system:authenticated"]
    assert body["extra"]["authentication.kubernetes.io/credential-id"][0].startswith("X509SHA256=")


async def test_issued_client_cert(server, pki, tmp_path):
    cert_pem, key_pem = pki.issue_client_cert("carol", ["qa"])
    (tmp_path / "c.crt").write_bytes(cert_pem)
    (tmp_path / "c.key").write_bytes(key_pem)
    status, body = await get(server.url + "/whoami",
                             pki.client_ssl_context(tmp_path / "c.crt", tmp_path / "c.key"))
    assert status == 200
    assert (body["username"], body["groups"]) == ("carol", ["qa", "system:authenticated"])


async def test_bearer_token(server, pki):
    status, body = await get(server.url + "/whoami", pki.client_ssl_context(anonymous=True),
                             {"Authorization": "Bearer tok-alice"})
    assert status == 200
    assert body == {"username": "alice", "uid": "uid-alice",
                    "groups": ["dev", "ops", "system:authenticated"]}


async def test_bad_token_is_401_not_anonymous(server, pki):
    status, body = await get(server.url + "/whoami", pki.client_ssl_context(anonymous=True),
                             {"Authorization": "Bearer nope"})
    assert status == 401
    assert body["reason"] == "Unauthorized"
    assert server.seen == []


async def test_no_credentials_is_anonymous(server, pki):
    ctx = pki.client_ssl_context(anonymous=True)
    status, body = await get(server.url + "/version", ctx)
    assert (status, body) == (200, VERSION)
    assert server.seen == [ANONYMOUS_USER]
    status, body = await get(server.url + "/readyz/ping", ctx)
    assert status == 200 and body == {"username": "system:anonymous",
                                      "groups": ["system:unauthenticated"]}
    status, body = await get(server.url + "/api/v1/namespaces", ctx)
    assert status == 403 and body["reason"] == "Forbidden"


async def test_foreign_client_cert_fails_the_handshake(server, pki, tmp_path):
    other = ensure_pki(tmp_path / "other")
    ctx = pki.client_ssl_context(other.admin_cert, other.admin_key)
    with pytest.raises(aiohttp.ClientError):
        await get(server.url + "/whoami", ctx)
    assert server.seen == []


async def test_python_client_with_kubeconfig(server, pki, tmp_path):
    from kubernetes import client, config

    path = write_kubeconfig(tmp_path / "kubeconfig", server=server.url, ca_pem=pki.ca_pem,
                            cert_pem=pki.admin_cert.read_bytes(),
                            key_pem=pki.admin_key.read_bytes())

    def call():
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(path), client_configuration=cfg)
        with client.ApiClient(cfg) as api:
            return client.VersionApi(api).get_code()

    info = await asyncio.to_thread(call)
    assert (info.major, info.minor, info.git_version) == ("1", "37", "v1.37.1")
    assert [u.name for u in server.seen] == ["kubernetes-admin"]


@pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl not installed in the venv")
@pytest.mark.parametrize("identity", ["cert", "token"])
async def test_kubectl_version(server, pki, tmp_path, identity):
    if identity == "cert":
        creds = dict(cert_pem=pki.admin_cert.read_bytes(), key_pem=pki.admin_key.read_bytes())
        expected = "kubernetes-admin"
    else:
        creds = dict(cert_pem=None, key_pem=None, token="tok-bob", user="bob")
        expected = "bob"
    path = write_kubeconfig(tmp_path / "kubeconfig", server=server.url, ca_pem=pki.ca_pem, **creds)
    proc = await asyncio.create_subprocess_exec(
        str(KUBECTL), "--kubeconfig", str(path), "--cache-dir", str(tmp_path / "cache"),
        "version", "-o", "json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    server_version = json.loads(out)["serverVersion"]
    assert server_version["gitVersion"] == "v1.37.1"
    assert {u.name for u in server.seen} == {expected}


# -- Authenticator edge cases, with a stand-in request --------------------------

class FakeSSLObject:
    def __init__(self, der: bytes | None) -> None:
        self.der = der

    def getpeercert(self, binary_form: bool = False):
        assert binary_form
        return self.der


class FakeTransport:
    def __init__(self, der: bytes | None) -> None:
        self.ssl_object = FakeSSLObject(der)

    def get_extra_info(self, name: str, default=None):
        return self.ssl_object if name == "ssl_object" else default


@dataclass
class FakeRequest:
    headers: dict
    transport: FakeTransport


def request(der: bytes | None = None, authorization: str | None = None) -> FakeRequest:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return FakeRequest(headers, FakeTransport(der))


def make_cert(pki: Pki, cn: str, orgs=(), *, days=(-1, 1), eku=ExtendedKeyUsageOID.CLIENT_AUTH,
              ca: tuple | None = None) -> bytes:
    """DER client cert signed by the cluster CA (or `ca`), with knobs upstream checks."""
    ca_cert, ca_key = ca or (x509.load_pem_x509_certificate(pki.ca_pem),
                             serialization.load_pem_private_key(pki.ca_key.read_bytes(), None))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.timezone.utc)
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    if cn:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    builder = (x509.CertificateBuilder().subject_name(x509.Name(attrs))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now + dt.timedelta(days=days[0]))
               .not_valid_after(now + dt.timedelta(days=days[1])))
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@pytest.fixture
def authn(pki, token_file) -> Authenticator:
    return Authenticator(client_ca_pem=pki.ca_pem, token_file=token_file)


async def test_cert_without_eku_is_accepted(authn, pki):
    user = await authn.authenticate(request(make_cert(pki, "dave", ["g1", "g2"], eku=None)))
    assert (user.name, user.groups) == ("dave", ("g1", "g2", "system:authenticated"))


@pytest.mark.parametrize("kwargs, message", [
    (dict(days=(-10, -1)), "expired"),
    (dict(days=(1, 2)), "not yet valid"),
    (dict(eku=ExtendedKeyUsageOID.SERVER_AUTH), "incompatible key usage"),
])
async def test_invalid_client_certs(authn, pki, kwargs, message):
    with pytest.raises(Unauthenticated, match=message):
        await authn.authenticate(request(make_cert(pki, "eve", **kwargs)))


async def test_cert_from_unknown_ca(authn, pki, tmp_path):
    other = ensure_pki(tmp_path / "other")
    ca = (x509.load_pem_x509_certificate(other.ca_pem),
          serialization.load_pem_private_key(other.ca_key.read_bytes(), None))
    der = make_cert(pki, "mallory", ["system:masters"], ca=ca)
    with pytest.raises(Unauthenticated, match="unknown authority"):
        await authn.authenticate(request(der))
    # as upstream's union: a valid token still authenticates the request
    user = await authn.authenticate(request(der, "Bearer tok-bob"))
    assert user.name == "bob"


async def test_cert_without_cn_falls_through(authn, pki):
    der = make_cert(pki, "", ["system:masters"])
    assert await authn.authenticate(request(der)) == ANONYMOUS_USER
    assert (await authn.authenticate(request(der, "Bearer tok-bob"))).name == "bob"


async def test_certs_ignored_without_client_ca(pki):
    authn = Authenticator()
    assert await authn.authenticate(request(make_cert(pki, "dave"))) == ANONYMOUS_USER


async def test_cert_wins_over_token(authn, pki):
    user = await authn.authenticate(request(make_cert(pki, "dave"), "Bearer nope"))
    assert user.name == "dave"


async def test_anonymous_can_be_disabled(pki):
    authn = Authenticator(client_ca_pem=pki.ca_pem, anonymous=False)
    with pytest.raises(Unauthenticated):
        await authn.authenticate(request())


@pytest.mark.parametrize("header", ["", "Basic Zm9vOmJhcg==", "Bearer", "Bearer  x", "bearer"])
async def test_non_bearer_headers_are_anonymous(authn, header):
    assert await authn.authenticate(request(authorization=header)) == ANONYMOUS_USER


def test_bearer_token_parsing():
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("  bearer abc  ") == "abc"
    assert bearer_token("Bearer abc def") == "abc"
    assert bearer_token("Token abc") is None


async def test_pluggable_token_authenticators(pki, token_file):
    calls = []

    async def sa_tokens(token: str) -> UserInfo | None:
        calls.append(token)
        if token == "jwt-ok":
            return UserInfo("system:serviceaccount:default:x", uid="u1",
                            groups=("system:serviceaccounts",))
        if token.startswith("jwt-"):
            raise Unauthenticated("service account token has expired")
        return None

    authn = Authenticator(client_ca_pem=pki.ca_pem, token_file=token_file,
                          token_authenticators=[sa_tokens])
    user = await authn.authenticate(request(authorization="Bearer jwt-ok"))
    assert user.groups == ("system:serviceaccounts", "system:authenticated")
    assert (await authn.authenticate(request(authorization="Bearer tok-bob"))).name == "bob"
    assert calls == ["jwt-ok"]     # static tokens are tried first
    with pytest.raises(Unauthenticated, match="expired"):
        await authn.authenticate(request(authorization="Bearer jwt-old"))
    with pytest.raises(Unauthenticated, match="invalid bearer token"):
        await authn.authenticate_token("other")

    async def late(token: str) -> UserInfo | None:
        return UserInfo("late", groups=("system:authenticated",)) if token == "other" else None

    authn.add_token_authenticator(late)
    assert (await authn.authenticate_token("other")).groups == ("system:authenticated",)


def test_token_file_format():
    tokens = StaticTokens.parse(
        'a,alice,1,"x,y"\n'
        '\n'
        ',nobody,2\n'
        'b,bob,3,\n'
        'a,alice2,4\n')
    run = asyncio.run
    assert run(tokens("a")) == UserInfo("alice2", uid="4")          # later duplicate wins
    assert run(tokens("b")) == UserInfo("bob", uid="3")
    assert run(tokens("")) is None
    assert run(StaticTokens.parse('t,u,1,"x,y"')("t")).groups == ("x", "y")
    with pytest.raises(ValueError, match="at least 3 columns"):
        StaticTokens.parse("t,u\n")


def test_userinfo_to_dict():
    assert ANONYMOUS_USER.to_dict() == {"username": "system:anonymous",
                                        "groups": ["system:unauthenticated"]}
    user = UserInfo("a", uid="1", groups=("g",), extra={"k": ("v1", "v2")})
    assert user.to_dict() == {"username": "a", "uid": "1", "groups": ["g"],
                              "extra": {"k": ["v1", "v2"]}}


# -- authorization --------------------------------------------------------------

ADMIN = UserInfo("kubernetes-admin", groups=("system:masters", "system:authenticated"))


def attrs(user=ADMIN, verb="get", path="", resource="") -> Attributes:
    return Attributes(user=user, verb=verb, is_resource_request=bool(resource), path=path,
                      resource=resource, api_version="v1")


@pytest.mark.parametrize("a, allowed", [
    (attrs(resource="pods", verb="delete"), True),
    (attrs(path="/apis"), True),
    (attrs(ANONYMOUS_USER, path="/healthz"), True),
    (attrs(ANONYMOUS_USER, path="/readyz/ping"), True),
    (attrs(ANONYMOUS_USER, path="/livez"), True),
    (attrs(ANONYMOUS_USER, path="/version/"), True),
    (attrs(ANONYMOUS_USER, path="/versionx"), False),
    (attrs(ANONYMOUS_USER, path="/healthz", verb="post"), False),
    (attrs(ANONYMOUS_USER, path="/apis"), False),
    (attrs(ANONYMOUS_USER, resource="pods"), False),
])
async def test_allow_authenticated(a, allowed):
    decision = await AllowAuthenticated().authorize(a)
    assert decision.allowed is allowed
    assert not decision.denied


class Fixed:
    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.calls = 0

    async def authorize(self, attrs: Attributes) -> Decision:
        self.calls += 1
        return self.decision


async def test_authorizer_chain():
    assert isinstance(AllowAuthenticated(), Authorizer)
    anon = attrs(ANONYMOUS_USER, resource="pods")

    deny, allow = Fixed(Decision.deny("nope")), Fixed(Decision.allow("yes"))
    decision = await AuthorizerChain([deny, allow]).authorize(anon)
    assert (decision.allowed, decision.denied, decision.reason) == (False, True, "nope")
    assert allow.calls == 0

    decision = await AuthorizerChain([Fixed(Decision.no_opinion("a")), allow]).authorize(anon)
    assert decision.allowed and decision.reason == "yes"

    decision = await AuthorizerChain([Fixed(Decision.no_opinion("a")), AllowAuthenticated()]
                                     ).authorize(anon)
    assert not decision.allowed and not decision.denied
    assert decision.reason.startswith("a; ")

    assert not (await AuthorizerChain([]).authorize(anon)).allowed
    with pytest.raises(ValueError):
        Decision(True, denied=True)
