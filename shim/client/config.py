"""Connection settings for an API client: kubeconfig files and TLS contexts.

A kubeconfig names a server, how to trust it (CA data or file, or no verification) and how to
authenticate (client certificate and key, or a bearer token). `load_kubeconfig` turns the
current (or a named) context into a `ClientConfig`, the only thing `Client` needs.
"""
from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class ConfigError(ValueError):
    pass


@dataclass
class ClientConfig:
    server: str
    ssl_context: ssl.SSLContext | bool | None = None
    token: str | None = None
    headers: dict = field(default_factory=dict)


def load_kubeconfig(path: str | os.PathLike, context: str | None = None) -> ClientConfig:
    """The connection described by `context` (default: current-context) of a kubeconfig file."""
    path = Path(path)
    doc = yaml.safe_load(path.read_text()) or {}
    base = path.parent
    ctx_name = context or doc.get("current-context")
    ctx = _named(doc.get("contexts"), ctx_name, "context")
    cluster = _named(doc.get("clusters"), ctx.get("cluster"), "cluster")
    user = _named(doc.get("users"), ctx.get("user"), "user") if ctx.get("user") else {}
    server = cluster.get("server")
    if not server:
        raise ConfigError(f"cluster {ctx.get('cluster')!r} has no server")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = _resolve(base, user["tokenFile"]).read_text().strip()
    sslctx = None
    if server.startswith("https://"):
        sslctx = ssl_context(
            ca_pem=_data_or_file(cluster, "certificate-authority", base),
            cert_pem=_data_or_file(user, "client-certificate", base),
            key_pem=_data_or_file(user, "client-key", base),
            insecure=bool(cluster.get("insecure-skip-tls-verify")),
            server_name=cluster.get("tls-server-name"))
    return ClientConfig(server=server.rstrip("/"), ssl_context=sslctx, token=token)


def ssl_context(*, ca_pem: bytes | None = None, cert_pem: bytes | None = None,
                key_pem: bytes | None = None, insecure: bool = False,
                server_name: str | None = None) -> ssl.SSLContext:
    """A TLS client context trusting `ca_pem` (or the system store) and presenting a cert."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif ca_pem:
        ctx.load_verify_locations(cadata=ca_pem.decode())
    else:
        ctx.load_default_certs()
    if cert_pem and key_pem:
        # ssl only loads key pairs from files; keep them on disk for the blink of loading.
        with tempfile.TemporaryDirectory(prefix="shim-client-") as d:
            cert_path, key_path = Path(d) / "tls.crt", Path(d) / "tls.key"
            cert_path.write_bytes(cert_pem)
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key_pem)
            ctx.load_cert_chain(cert_path, key_path)
    return ctx


def _named(entries, name, what: str) -> dict:
    for e in entries or []:
        if e.get("name") == name:
            return e.get(what) or {}
    raise ConfigError(f"kubeconfig has no {what} named {name!r}")


def _resolve(base: Path, p: str) -> Path:
    q = Path(os.path.expanduser(p))
    return q if q.is_absolute() else base / q


def _data_or_file(section: dict, key: str, base: Path) -> bytes | None:
    data = section.get(f"{key}-data")
    if data:
        return base64.b64decode(data)
    if section.get(key):
        return _resolve(base, section[key]).read_bytes()
    return None
