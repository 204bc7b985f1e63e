"""Cluster PKI: the CA and the certificates a kubeadm-style control plane needs.

Stock clients (kubectl, client-go, the Python client) and real kubelets only talk
to an API server whose serving certificate chains to a CA they were given, and
they authenticate with client certificates whose CN/O become user/groups. The
file layout and names mirror kubeadm's /etc/kubernetes/pki so operators and
tooling recognise them:

    ca.crt / ca.key                          cluster CA, CN "kubernetes", 10 years
    apiserver.crt / .key                     serving cert, CN "kube-apiserver"
    admin.crt / .key                         CN "kubernetes-admin", O "system:masters"
    apiserver-kubelet-client.crt / .key      the API server's client cert to kubelets
    sa.key / sa.pub                          service-account token signing key pair

Key algorithm: RSA 2048 for everything. It is what kubeadm generates by default
and the one choice every TLS stack we meet accepts for both server and client
certificates (Go crypto/tls, OpenSSL behind Python's ssl, BoringSSL, Java); EC
P-256 would also work with Go and OpenSSL but buys nothing here. sa.key must be
RSA anyway: service-account JWTs are RS256 by default. Private keys are written as
PKCS#1 PEM ("RSA PRIVATE KEY") exactly like kubeadm's.

Certificates carry SubjectKeyIdentifier/AuthorityKeyIdentifier and critical
BasicConstraints/KeyUsage so they also pass OpenSSL's VERIFY_X509_STRICT, which
newer Python and urllib3 releases enable by default.

`ensure_pki` is idempotent: it keeps everything that is present and valid and
(re)issues only what is missing, broken (cert/key mismatch, not signed by the
CA, expiring within RENEW_BEFORE, wrong subject) or, for the serving cert,
lacking a requested SAN. It does not lock: two processes generating a fresh PKI
in the same directory at the same moment may race.
"""
from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import socket
import ssl
import struct
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=30)   # ensure_pki reissues leaves closer than this to expiry
BACKDATE = dt.timedelta(minutes=5)     # tolerate clock skew between us and clients
KEY_BITS = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PkiError(Exception):
    """The PKI directory is in a state we refuse to repair silently (e.g. a CA cert without its key)."""


def ensure_pki(pki_dir: Path, *, hosts: list[str] | None = None,
               service_ip: str = "10.96.0.1") -> Pki:
    """Make pki_dir hold a complete, valid PKI, reusing whatever already fits.

    `hosts` are extra names/IPs for the serving cert (e.g. a public address).
    Regenerating the CA would silently invalidate every kubeconfig and kubelet
    credential, so a CA cert without its key (or vice versa) is an error.
    """
    pki = Pki.at(Path(pki_dir))
    pki.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = _now()
    ca_cert, ca_key = _ensure_ca(pki, now)

    dns, ips = apiserver_sans(hosts or [], service_ip)
    _ensure_leaf(pki.apiserver_cert, pki.apiserver_key, ca_cert, ca_key, now,
                 _Spec("kube-apiserver", (), server=True, dns=dns, ips=ips))
    _ensure_leaf(pki.admin_cert, pki.admin_key, ca_cert, ca_key, now,
                 _Spec("kubernetes-admin", ("system:masters",)))
    _ensure_leaf(pki.apiserver_kubelet_client_cert, pki.apiserver_kubelet_client_key,
                 ca_cert, ca_key, now,
                 _Spec("kube-apiserver-kubelet-client", ("system:masters",)))
    _ensure_sa_keys(pki)
    return pki


@dataclass(frozen=True)
class Pki:
    """Paths of one cluster PKI plus the CA operations the control plane needs.

    The CA is loaded lazily from disk on first use and cached on the instance.
    """
    dir: Path
    ca_cert: Path
    ca_key: Path
    apiserver_cert: Path
    apiserver_key: Path
    admin_cert: Path
    admin_key: Path
    apiserver_kubelet_client_cert: Path
    apiserver_kubelet_client_key: Path
    sa_key: Path
    sa_pub: Path

    @classmethod
    def at(cls, pki_dir: Path) -> Pki:
        """The standard (kubeadm) file names inside pki_dir; nothing is read or written."""
        d = Path(pki_dir)
        return cls(
            dir=d,
            ca_cert=d / "ca.crt", ca_key=d / "ca.key",
            apiserver_cert=d / "apiserver.crt", apiserver_key=d / "apiserver.key",
            admin_cert=d / "admin.crt", admin_key=d / "admin.key",
            apiserver_kubelet_client_cert=d / "apiserver-kubelet-client.crt",
            apiserver_kubelet_client_key=d / "apiserver-kubelet-client.key",
            sa_key=d / "sa.key", sa_pub=d / "sa.pub",
        )

    @property
    def ca_pem(self) -> bytes:
        return self.ca_cert.read_bytes()

    @cached_property
    def _ca(self) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        return _load_cert(self.ca_cert), _load_key(self.ca_key)

    # -- issuing ---------------------------------------------------------------

    def issue_client_cert(self, cn: str, orgs: list[str], days: float = LEAF_DAYS
                          ) -> tuple[bytes, bytes]:
        """A fresh key and a client-auth cert for user `cn` in groups `orgs` (PEM)."""
        key = _new_key()
        cert = _sign(*self._ca, key.public_key(), _Spec(cn, tuple(orgs)), days, _now())
        return _cert_pem(cert), _key_pem(key)

    def issue_serving_cert(self, cn: str, dns_names: list[str], ips: list[str],
                           days: float = LEAF_DAYS) -> tuple[bytes, bytes]:
        """A fresh key and a server-auth cert for the given SANs (PEM), e.g. for a kubelet."""
        key = _new_key()
        spec = _Spec(cn, (), server=True, dns=tuple(dns_names),
                     ips=tuple(ipaddress.ip_address(ip) for ip in ips))
        cert = _sign(*self._ca, key.public_key(), spec, days, _now())
        return _cert_pem(cert), _key_pem(key)

    def sign_csr(self, csr_pem: bytes, *,
                 usages: Iterable[str] = ("digital signature", "key encipherment", "client auth"),
                 days: float = LEAF_DAYS) -> bytes:
        """Sign a PKCS#10 CSR the way kube-controller-manager's CSR signer does.

        Subject and SANs come from the CSR; `usages` are CertificateSigningRequest
        usage strings ("client auth", "server auth", "digital signature", ...).
        Policy (who may get which subject) is the caller's job. Raises ValueError
        for an unparsable or badly self-signed CSR or an unknown usage.
        """
        csr = x509.load_pem_x509_csr(csr_pem)
        if not csr.is_signature_valid:
            raise ValueError("CSR signature is invalid")
        key_usage, ekus = _usages(usages)
        try:
            sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            sans = None
        ca_cert, ca_key = self._ca
        cert = _build(ca_cert, ca_key, csr.public_key(), csr.subject, days, _now(),
                      key_usage=key_usage, ekus=ekus, sans=sans)
        return _cert_pem(cert)

    # -- TLS contexts ----------------------------------------------------------

    def server_ssl_context(self) -> ssl.SSLContext:
        """TLS server context for the API server.

        Client certs are requested and, if sent, verified against the cluster CA
        (CERT_OPTIONAL), so anonymous and bearer-token clients still connect. A
        cert from a foreign CA fails the handshake (upstream would answer 401;
        Python's ssl cannot request a cert without verifying it). ALPN offers only
        http/1.1: aiohttp speaks no HTTP/2 and Go clients must not negotiate h2.
        """
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.apiserver_cert, self.apiserver_key)
        ctx.load_verify_locations(cafile=self.ca_cert)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def client_ssl_context(self, cert: Path | None = None, key: Path | None = None, *,
                           anonymous: bool = False) -> ssl.SSLContext:
        """TLS client context trusting the cluster CA, presenting `cert`/`key`.

        Defaults to the admin identity; anonymous=True presents no certificate.
        """
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_verify_locations(cafile=self.ca_cert)
        ctx.set_alpn_protocols(["http/1.1"])
        if not anonymous:
            ctx.load_cert_chain(cert or self.admin_cert,
                                key or (self.admin_key if cert is None else None))
        return ctx


def write_kubeconfig(path: Path, *, server: str, ca_pem: bytes, cert_pem: bytes | None,
                     key_pem: bytes | None, token: str | None = None,
                     user: str = "kubernetes-admin", cluster: str = "shim",
                     context: str = "shim") -> Path:
    """Write a self-contained kubeconfig (credentials embedded as base64), mode 0600."""
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    creds: dict[str, str] = {}
    if cert_pem is not None:
        creds["client-certificate-data"] = b64(cert_pem)
    if key_pem is not None:
        creds["client-key-data"] = b64(key_pem)
    if token is not None:
        creds["token"] = token
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {
            "server": server, "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": user, "user": creds}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
        "preferences": {},
    }
    path = Path(path)
    _write(path, yaml.safe_dump(config, sort_keys=False).encode(), 0o600)
    return path


def apiserver_sans(hosts: Iterable[str], service_ip: str
                   ) -> tuple[tuple[str, ...], tuple[IPAddress, ...]]:
    """DNS names and IPs the API server's serving cert must cover.

    Loopback, this machine's hostname and IPv4 addresses (for kubelets and
    clients on other hosts or in containers), the in-cluster service names and
    the `kubernetes` Service's ClusterIP, plus `hosts`.
    """
    names = ["localhost", socket.gethostname(), "kubernetes", "kubernetes.default",
             "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"]
    addrs = ["127.0.0.1", "::1", service_ip, *map(str, _local_ipv4s())]
    for host in hosts:
        (addrs if _is_ip(host) else names).append(host)
    dns = tuple(dict.fromkeys(n.lower() for n in names if n and n.isascii() and not _is_ip(n)))
    ips = tuple(dict.fromkeys(ipaddress.ip_address(a) for a in addrs))
    return dns, ips


# -- internals ----------------------------------------------------------------

@dataclass(frozen=True)
class _Spec:
    """What a leaf certificate issued by ensure_pki/issue_* must say."""
    cn: str
    orgs: tuple[str, ...]
    server: bool = False            # serverAuth (else clientAuth)
    dns: tuple[str, ...] = ()
    ips: tuple[IPAddress, ...] = ()

    def subject(self) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in self.orgs]
                         + [x509.NameAttribute(NameOID.COMMON_NAME, self.cn)])


def _ensure_ca(pki: Pki, now: dt.datetime) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    have_cert, have_key = pki.ca_cert.exists(), pki.ca_key.exists()
    if have_cert and have_key:
        cert, key = _load_cert(pki.ca_cert), _load_key(pki.ca_key)
        if not _same_key(cert, key):
            raise PkiError(f"{pki.ca_cert} does not match {pki.ca_key}")
        _tighten(pki.ca_key)
        return cert, key
    if have_cert or have_key:
        raise PkiError(f"{pki.dir}: found only one of ca.crt/ca.key; refusing to replace the CA")
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, key_encipherment=True,
                                  key_cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(pki.ca_key, _key_pem(key), 0o600)
    _write(pki.ca_cert, _cert_pem(cert), 0o644)
    return cert, key


def _ensure_leaf(cert_path: Path, key_path: Path, ca_cert: x509.Certificate,
                 ca_key: rsa.RSAPrivateKey, now: dt.datetime, spec: _Spec) -> None:
    """Keep a valid existing cert; otherwise issue a new key and cert.

    A serving cert that lacks requested SANs is reissued with the union of old
    and requested SANs, so names that used to work keep working.
    """
    old = _load_pair(cert_path, key_path)
    if old is not None:
        cert, key = old
        if _leaf_ok(cert, key, ca_cert, spec, now):
            _tighten(key_path)
            return
        if spec.server:
            old_dns, old_ips = _sans(cert)
            spec = _Spec(spec.cn, spec.orgs, True,
                         tuple(dict.fromkeys((*spec.dns, *old_dns))),
                         tuple(dict.fromkeys((*spec.ips, *old_ips))))
    key = _new_key()
    cert = _sign(ca_cert, ca_key, key.public_key(), spec, LEAF_DAYS, now)
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, _cert_pem(cert), 0o644)


def _leaf_ok(cert: x509.Certificate, key: rsa.RSAPrivateKey, ca_cert: x509.Certificate,
             spec: _Spec, now: dt.datetime) -> bool:
    if not _same_key(cert, key) or cert.subject != spec.subject():
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc - RENEW_BEFORE:
        return False
    if spec.server:
        dns, ips = _sans(cert)
        return {d.lower() for d in spec.dns} <= {d.lower() for d in dns} and set(spec.ips) <= set(ips)
    return True


def _ensure_sa_keys(pki: Pki) -> None:
    """sa.key is kept if present; sa.pub is (re)derived from it when missing or stale."""
    if pki.sa_key.exists():
        key = _load_key(pki.sa_key)
        _tighten(pki.sa_key)
    else:
        key = _new_key()
        _write(pki.sa_key, _key_pem(key), 0o600)
    pub_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        current = serialization.load_pem_public_key(pki.sa_pub.read_bytes())
        fresh = _der(current) == _der(key.public_key())
    except (OSError, ValueError):
        fresh = False
    if not fresh:
        _write(pki.sa_pub, pub_pem, 0o644)


def _sign(ca_cert: x509.Certificate, ca_key: rsa.RSAPrivateKey, public_key, spec: _Spec,
          days: float, now: dt.datetime) -> x509.Certificate:
    sans = None
    if spec.dns or spec.ips:
        sans = x509.SubjectAlternativeName(
            [x509.DNSName(d) for d in spec.dns] + [x509.IPAddress(ip) for ip in spec.ips])
    eku = ExtendedKeyUsageOID.SERVER_AUTH if spec.server else ExtendedKeyUsageOID.CLIENT_AUTH
    return _build(ca_cert, ca_key, public_key, spec.subject(), days, now,
                  key_usage=_key_usage(digital_signature=True, key_encipherment=True),
                  ekus=[eku], sans=sans)


def _build(ca_cert: x509.Certificate, ca_key: rsa.RSAPrivateKey, public_key,
           subject: x509.Name, days: float, now: dt.datetime, *,
           key_usage: x509.KeyUsage | None, ekus: list[x509.ObjectIdentifier],
           sans: x509.SubjectAlternativeName | None) -> x509.Certificate:
    """A leaf certificate; its lifetime never exceeds the CA's (as upstream's signer)."""
    not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
    )
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    if sans is not None:
        builder = builder.add_extension(sans, critical=False)
    return builder.sign(ca_key, hashes.SHA256())


# CertificateSigningRequest usage strings -> X.509 (same table as upstream's signer).
_KEY_USAGE_BITS = {
    "signing": "digital_signature", "digital signature": "digital_signature",
    "content commitment": "content_commitment", "key encipherment": "key_encipherment",
    "key agreement": "key_agreement", "data encipherment": "data_encipherment",
    "cert sign": "key_cert_sign", "crl sign": "crl_sign",
    "encipher only": "encipher_only", "decipher only": "decipher_only",
}
_EXT_KEY_USAGES = {
    "any": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "s/mime": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsec end system": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsec tunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsec user": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoft sgc": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscape sgc": x509.ObjectIdentifier("2.16.840.1.113730.4.1"),
}


def _usages(usages: Iterable[str]) -> tuple[x509.KeyUsage | None, list[x509.ObjectIdentifier]]:
    bits: set[str] = set()
    ekus: list[x509.ObjectIdentifier] = []
    for usage in usages:
        if usage in _KEY_USAGE_BITS:
            bits.add(_KEY_USAGE_BITS[usage])
        elif usage in _EXT_KEY_USAGES:
            if _EXT_KEY_USAGES[usage] not in ekus:
                ekus.append(_EXT_KEY_USAGES[usage])
        else:
            raise ValueError(f"unknown certificate usage {usage!r}")
    if bits & {"encipher_only", "decipher_only"} and "key_agreement" not in bits:
        raise ValueError("'encipher only'/'decipher only' require 'key agreement'")
    return (_key_usage(**dict.fromkeys(bits, True)) if bits else None), ekus


def _key_usage(**bits: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{n: bits.get(n, False) for n in names})


def _sans(cert: x509.Certificate) -> tuple[list[str], list[IPAddress]]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return ext.get_values_for_type(x509.DNSName), ext.get_values_for_type(x509.IPAddress)


def _local_ipv4s() -> list[ipaddress.IPv4Address]:
    """This machine's non-loopback IPv4 addresses, best effort and without DNS.

    Each interface's primary address via SIOCGIFADDR (Linux), plus the source
    address of the default route (a UDP connect sends no packet).
    """
    found: set[ipaddress.IPv4Address] = set()
    try:
        import fcntl
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _, name in socket.if_nameindex():
                try:
                    ifreq = fcntl.ioctl(s.fileno(), 0x8915,  # SIOCGIFADDR
                                        struct.pack("256s", name.encode()[:15]))
                except OSError:
                    continue
                found.add(ipaddress.IPv4Address(ifreq[20:24]))
    except (ImportError, OSError, AttributeError):
        pass
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere real
            found.add(ipaddress.IPv4Address(s.getsockname()[0]))
    except OSError:
        pass
    return sorted(ip for ip in found
                  if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified))


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _load_pair(cert_path: Path, key_path: Path
               ) -> tuple[x509.Certificate, rsa.RSAPrivateKey] | None:
    try:
        return _load_cert(cert_path), _load_key(key_path)
    except (OSError, ValueError, TypeError):
        return None


def _load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _load_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PkiError(f"{path}: expected an RSA private key")
    return key


def _same_key(cert: x509.Certificate, key: rsa.RSAPrivateKey) -> bool:
    return _der(cert.public_key()) == _der(key.public_key())


def _der(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _tighten(key_path: Path) -> None:
    """Private keys found with looser permissions are narrowed to 0600."""
    if key_path.stat().st_mode & 0o077:
        key_path.chmod(0o600)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomic replace; the temp file is born 0600 so secrets are never briefly readable."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
