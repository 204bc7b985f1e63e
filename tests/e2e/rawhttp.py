"""Raw HTTPS access to a `shim up` server for tests that need exact bytes on the wire.

The official client hides status bodies, headers and content types behind its models;
these helpers speak plain HTTP/1.1 with the admin client certificate (or none at all).
"""
from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip()

    def json(self):
        return json.loads(self.body)


class Raw:
    """HTTP requests to one server; `anonymous=True` presents no client certificate."""

    def __init__(self, server, anonymous: bool = False):
        self.port = server.port
        pki = Path(server.data_dir) / "pki"
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.check_hostname = False
        if not anonymous:
            ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        self.ctx = ctx

    def connect(self, timeout: float = 30) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=timeout)

    def request(self, method: str, path: str, body=None, headers: dict | None = None,
                timeout: float = 30) -> Reply:
        conn = self.connect(timeout)
        try:
            hdrs = dict(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return Reply(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def get(self, path: str, **kw) -> Reply:
        return self.request("GET", path, **kw)

    def stream(self, path: str, headers: dict | None = None, timeout: float = 30):
        """(connection, response) of a streaming GET (a watch); read lines from the response."""
        conn = self.connect(timeout)
        conn.request("GET", path, headers=headers or {})
        return conn, conn.getresponse()


def status_of(reply: Reply) -> dict:
    """The meta/v1 Status in an error reply (asserting it is one)."""
    assert reply.content_type == "application/json", (reply.status, reply.headers, reply.body[:300])
    body = reply.json()
    assert body.get("kind") == "Status" and body.get("apiVersion") == "v1", body
    assert body.get("status") == "Failure", body
    assert body.get("code") == reply.status, body
    return body
