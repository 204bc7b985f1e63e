"""shim.pki: generation, reuse, SANs, chaining, CSR signing, kubeconfig files."""
from __future__ import annotations

import base64
import ipaddress
import shutil
import socket
import ssl
import stat

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shim.pki import Pki, PkiError, ensure_pki, write_kubeconfig

ALL_FILES = ["ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "admin.crt", "admin.key",
             "apiserver-kubelet-client.crt", "apiserver-kubelet-client.key", "sa.key", "sa.pub"]


@pytest.fixture(scope="module")
def pki_template(tmp_path_factory) -> Pki:
    """One generated PKI; tests that modify files work on a copy (see `pki`)."""
    return ensure_pki(tmp_path_factory.mktemp("pki-template") / "pki", hosts=["shim.example", "203.0.113.7"])


@pytest.fixture
def pki(pki_template, tmp_path) -> Pki:
    shutil.copytree(pki_template.dir, tmp_path / "pki")
    return Pki.at(tmp_path / "pki")


def cert(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def snapshot(pki: Pki) -> dict[str, bytes]:
    return {name: (pki.dir / name).read_bytes() for name in ALL_FILES}


def sans(c: x509.Certificate):
    ext = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ext.get_values_for_type(x509.DNSName), ext.get_values_for_type(x509.IPAddress)


def subject(c: x509.Certificate, oid) -> list[str]:
    return [a.value for a in c.subject.get_attributes_for_oid(oid)]


def test_files_created_with_private_keys_0600(pki_template):
    for name in ALL_FILES:
        path = pki_template.dir / name
        assert path.is_file(), name
        mode = stat.S_IMODE(path.stat().st_mode)
        if name.endswith(".key"):
            assert mode == 0o600, (name, oct(mode))
        else:
            assert mode == 0o644, (name, oct(mode))
    assert not [p for p in pki_template.dir.iterdir() if p.name.startswith(".")]


def test_second_call_reuses_everything(pki):
    before = snapshot(pki)
    again = ensure_pki(pki.dir, hosts=["shim.example", "203.0.113.7"])
    assert again == pki
    assert snapshot(pki) == before


def test_ca(pki):
    ca = cert(pki.ca_cert)
    assert subject(ca, NameOID.COMMON_NAME) == ["kubernetes"]
    assert ca.issuer == ca.subject
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert 3649 <= lifetime.days <= 3651
    assert isinstance(ca.public_key(), rsa.RSAPublicKey) and ca.public_key().key_size == 2048


def test_serving_cert_sans(pki):
    c = cert(pki.apiserver_cert)
    dns, ips = sans(c)
    for name in ["localhost", socket.gethostname().lower(), "kubernetes", "kubernetes.default",
                 "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "shim.example"]:
        assert name in dns
    for ip in ["127.0.0.1", "::1", "10.96.0.1", "203.0.113.7"]:
        assert ipaddress.ip_address(ip) in ips
    assert not any(ip.is_loopback for ip in ips if ip.version == 4 and ip != ipaddress.ip_address("127.0.0.1"))
    eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    c.verify_directly_issued_by(cert(pki.ca_cert))


def test_missing_san_reissues_only_the_serving_cert(pki):
    before = snapshot(pki)
    ensure_pki(pki.dir, hosts=["new.example", "198.51.100.9"], service_ip="10.0.0.1")
    after = snapshot(pki)
    changed = {name for name in ALL_FILES if before[name] != after[name]}
    assert changed == {"apiserver.crt", "apiserver.key"}
    dns, ips = sans(cert(pki.apiserver_cert))
    assert {"new.example", "shim.example"} <= set(dns)          # old SANs are kept
    assert {ipaddress.ip_address(a) for a in ["198.51.100.9", "10.0.0.1", "10.96.0.1"]} <= set(ips)
    cert(pki.apiserver_cert).verify_directly_issued_by(cert(pki.ca_cert))
    # and now it is stable again
    assert snapshot(ensure_pki(pki.dir, hosts=["new.example"], service_ip="10.0.0.1")) == after


def test_admin_cert_chains_to_ca(pki):
    admin = cert(pki.admin_cert)
    assert subject(admin, NameOID.COMMON_NAME) == ["kubernetes-admin"]
    assert subject(admin, NameOID.ORGANIZATION_NAME) == ["system:masters"]
    admin.verify_directly_issued_by(cert(pki.ca_cert))
    assert ExtendedKeyUsageOID.CLIENT_AUTH in admin.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage).value
    key = serialization.load_pem_private_key(pki.admin_key.read_bytes(), None)
    assert key.public_key().public_numbers() == admin.public_key().public_numbers()
    assert pki.admin_key.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")


def test_kubelet_client_cert(pki):
    c = cert(pki.apiserver_kubelet_client_cert)
    assert subject(c, NameOID.COMMON_NAME) == ["kube-apiserver-kubelet-client"]
    assert subject(c, NameOID.ORGANIZATION_NAME) == ["system:masters"]
    c.verify_directly_issued_by(cert(pki.ca_cert))


def test_sa_keys(pki):
    key = serialization.load_pem_private_key(pki.sa_key.read_bytes(), None)
    pub = serialization.load_pem_public_key(pki.sa_pub.read_bytes())
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert pub.public_numbers() == key.public_key().public_numbers()
    # sa.pub is re-derived when missing, the key is kept
    pki.sa_pub.unlink()
    key_bytes = pki.sa_key.read_bytes()
    ensure_pki(pki.dir, hosts=["shim.example", "203.0.113.7"])
    assert pki.sa_key.read_bytes() == key_bytes
    assert serialization.load_pem_public_key(pki.sa_pub.read_bytes()).public_numbers() == pub.public_numbers()


def test_broken_leaf_is_repaired(pki):
    before = snapshot(pki)
    pki.admin_key.unlink()
    ensure_pki(pki.dir, hosts=["shim.example", "203.0.113.7"])
    after = snapshot(pki)
    assert {n for n in ALL_FILES if before[n] != after[n]} == {"admin.crt", "admin.key"}
    cert(pki.admin_cert).verify_directly_issued_by(cert(pki.ca_cert))


def test_loose_key_permissions_are_tightened(pki):
    pki.ca_key.chmod(0o644)
    ensure_pki(pki.dir, hosts=["shim.example", "203.0.113.7"])
    assert stat.S_IMODE(pki.ca_key.stat().st_mode) == 0o600


def test_ca_without_key_is_an_error(pki):
    pki.ca_key.unlink()
    with pytest.raises(PkiError):
        ensure_pki(pki.dir)


def test_issue_client_and_serving_certs(pki):
    ca = cert(pki.ca_cert)
    cert_pem, key_pem = pki.issue_client_cert("alice", ["dev", "ops"], days=1)
    c = x509.load_pem_x509_certificate(cert_pem)
    c.verify_directly_issued_by(ca)
    assert subject(c, NameOID.COMMON_NAME) == ["alice"]
    assert subject(c, NameOID.ORGANIZATION_NAME) == ["dev", "ops"]
    assert (c.not_valid_after_utc - c.not_valid_before_utc).days == 1
    assert serialization.load_pem_private_key(key_pem, None).public_key().public_numbers() == \
        c.public_key().public_numbers()

    cert_pem, _ = pki.issue_serving_cert("system:node:n1", ["n1", "n1.local"], ["192.0.2.5"])
    c = x509.load_pem_x509_certificate(cert_pem)
    c.verify_directly_issued_by(ca)
    assert sans(c) == (["n1", "n1.local"], [ipaddress.ip_address("192.0.2.5")])


def test_sign_csr(pki):
    key = ec.generate_private_key(ec.SECP256R1())   # kubelets send EC P-256 CSRs
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                                    x509.NameAttribute(NameOID.COMMON_NAME, "system:node:n1")]))
           .add_extension(x509.SubjectAlternativeName([
               x509.DNSName("n1"), x509.IPAddress(ipaddress.ip_address("192.0.2.5"))]), critical=False)
           .sign(key, hashes.SHA256()))
    pem = pki.sign_csr(csr.public_bytes(serialization.Encoding.PEM),
                       usages=["digital signature", "server auth"], days=2)
    c = x509.load_pem_x509_certificate(pem)
    c.verify_directly_issued_by(cert(pki.ca_cert))
    assert c.subject == csr.subject
    assert sans(c) == (["n1"], [ipaddress.ip_address("192.0.2.5")])
    assert list(c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == \
        [ExtendedKeyUsageOID.SERVER_AUTH]
    ku = c.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_encipherment
    assert not c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert c.public_key().public_numbers() == key.public_key().public_numbers()
    with pytest.raises(ValueError):
        pki.sign_csr(csr.public_bytes(serialization.Encoding.PEM), usages=["flying"])


def handshake(client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext, hostname: str) -> ssl.SSLObject:
    """An in-memory TLS handshake; returns the client side."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (client, server):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    client.do_handshake()   # raises if it did not complete
    return client


def test_certs_pass_openssl_strict_verification(pki):
    """Newer Python/urllib3 turn on VERIFY_X509_STRICT; our chain must satisfy it."""
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    ctx.load_cert_chain(pki.admin_cert, pki.admin_key)
    client = handshake(ctx, pki.server_ssl_context(), "kubernetes.default.svc")
    assert client.version() in ("TLSv1.2", "TLSv1.3")


def test_alpn_is_http11_only(pki):
    client_ctx = pki.client_ssl_context(anonymous=True)
    client_ctx.set_alpn_protocols(["h2", "http/1.1"])     # what Go clients offer
    client = handshake(client_ctx, pki.server_ssl_context(), "localhost")
    assert client.selected_alpn_protocol() == "http/1.1"


def test_write_kubeconfig(pki, tmp_path):
    path = write_kubeconfig(tmp_path / "admin.conf", server="https://127.0.0.1:6443",
                            ca_pem=pki.ca_pem, cert_pem=pki.admin_cert.read_bytes(),
                            key_pem=pki.admin_key.read_bytes())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cfg = yaml.safe_load(path.read_text())
    assert cfg["current-context"] == "shim"
    assert cfg["contexts"] == [{"name": "shim", "context": {"cluster": "shim", "user": "kubernetes-admin"}}]
    cluster = cfg["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == pki.ca_pem
    user = cfg["users"][0]["user"]
    assert base64.b64decode(user["client-certificate-data"]) == pki.admin_cert.read_bytes()
    assert base64.b64decode(user["client-key-data"]) == pki.admin_key.read_bytes()
    assert "token" not in user

    path = write_kubeconfig(tmp_path / "admin.conf", server="https://h:1", ca_pem=pki.ca_pem,
                            cert_pem=None, key_pem=None, token="abc", user="bob")
    cfg = yaml.safe_load(path.read_text())
    assert cfg["users"] == [{"name": "bob", "user": {"token": "abc"}}]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
