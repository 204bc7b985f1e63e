"""Subresources served by proxying: pods/log, exec, attach, portforward, proxy and nodes/proxy.

As kube-apiserver does (pkg/registry/core/pod/strategy.go *Location, pod/rest/subresources.go,
apimachinery's proxy.UpgradeAwareHandler):

- pods/log: GET https://NODE:PORT/containerLogs/{ns}/{pod}/{container}?... on the pod's kubelet,
  streamed back as text/plain (flushed as it comes, so `follow` works); a kubelet error is
  turned into a Status as GenericHttpResponseChecker does (400 keeps the kubelet's text).
- pods/exec, pods/attach, pods/portforward: upgrade requests only ("Upgrade request
  required" otherwise). The request line and headers go to the kubelet (/exec, /attach,
  /portForward); once it answers 101 that answer goes back to the client and the two
  connections are spliced byte for byte until either side ends. SPDY/3.1 and WebSocket
  (v5/v4.channel.k8s.io, and kubectl's SPDY-in-WebSocket port-forward tunnel) all pass
  through unchanged: a node that declares ExtendWebSocketsToKubelet (every v1.36+ kubelet)
  translates WebSockets itself, which is what upstream relies on for such nodes. A non-101
  error answer (>= 400) is passed through, so clients can fall back (WebSocket -> SPDY).
- pods/proxy: http(s) to the pod IP; nodes/proxy: the kubelet (or another port on the node);
  services/proxy: a random ready endpoint of the Service's EndpointSlices.
  Plain requests are reverse-proxied with streamed bodies; upgrades are spliced as above.

The API server authenticates to kubelets with pki/apiserver-kubelet-client.{crt,key} and
verifies their serving certificates against the cluster CA, host name / IP included.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
from urllib.parse import quote, urlencode

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web
from multidict import CIMultiDict

from shim.api import errors
from shim.api import validation as v

log = logging.getLogger("shim.api.kubeletproxy")

DEFAULT_KUBELET_PORT = 10250
# kubeadm's --kubelet-preferred-address-types (kind clusters use the same)
PREFERRED_ADDRESS_TYPES = ("InternalIP", "ExternalIP", "Hostname")
DIAL_TIMEOUT = 30.0
MAX_ERROR_BODY = 50000   # GenericHttpResponseChecker's maxReadLength
BUF = 64 * 1024

# hop-by-hop headers (net/http/httputil.ReverseProxy), never forwarded on plain requests
HOP_HEADERS = {"connection", "proxy-connection", "keep-alive", "proxy-authenticate",
               "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"}
# what the API server consumed itself (the authentication filter removes Authorization)
CONSUMED_HEADERS = {"authorization", "host", "impersonate-user", "impersonate-group",
                    "impersonate-uid"}

STREAM_PATHS = {"exec": "exec", "attach": "attach"}


# -- kubelet TLS ----------------------------------------------------------------------------

def _kubelet_ssl(api) -> ssl.SSLContext:
    ctx = getattr(api, "_kubelet_ssl", None)
    if ctx is None:
        pki = getattr(api, "pki", None)
        if pki is None:
            raise errors.internal("the API server has no kubelet client credentials")
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca_cert))
        ctx.load_cert_chain(str(pki.apiserver_kubelet_client_cert), str(pki.apiserver_kubelet_client_key))
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        api._kubelet_ssl = ctx
    return ctx


def _session(api) -> ClientSession:
    """A session for one request (closed with it: nothing outlives the request at shutdown)."""
    return ClientSession(connector=TCPConnector(ssl=_kubelet_ssl(api), limit=0),
                         timeout=ClientTimeout(total=None, sock_connect=DIAL_TIMEOUT),
                         auto_decompress=False, skip_auto_headers=("User-Agent", "Accept-Encoding"))


# -- locations --------------------------------------------------------------------------------

async def node_connection(api, node_name: str) -> tuple[str, int]:
    """(host, port) of a node's kubelet (upstream's NodeConnectionInfoGetter)."""
    node = await api.core("nodes").get_or_none("", node_name)
    if node is None:
        raise errors.not_found("nodes", "", node_name)
    status = node.get("status") or {}
    addrs = status.get("addresses") or []
    host = ""
    for t in PREFERRED_ADDRESS_TYPES:
        for a in addrs:
            if a.get("type") == t and a.get("address"):
                host = a["address"]
                break
        if host:
            break
    if not host:
        known = " ".join("{%s %s}" % (a.get("type", ""), a.get("address", "")) for a in addrs)
        raise errors.internal(f"no preferred addresses found; known addresses: [{known}]")
    ep = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {})
    port = ep.get("Port") or ep.get("port") or 0
    if not isinstance(port, int) or port <= 0:
        port = DEFAULT_KUBELET_PORT
    return host, port


def _join_host(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def validate_container(pod: dict, container: str) -> str:
    """Upstream's validateContainer: default the only container, else insist on a valid name."""
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    if not container:
        cs = spec.get("containers") or []
        if len(cs) == 1:
            return cs[0]["name"]
        if not cs:
            raise errors.bad_request(f"a container name must be specified for pod {name}")
        names = [c["name"] for key in ("initContainers", "containers", "ephemeralContainers")
                 for c in spec.get(key) or []]
        raise errors.bad_request(f"a container name must be specified for pod {name}, "
                                 f"choose one of: [{' '.join(names)}]")
    for key in ("initContainers", "containers", "ephemeralContainers"):
        if any(c.get("name") == container for c in spec.get(key) or []):
            return container
    raise errors.bad_request(f"container {container} is not valid for pod {name}")


def _bool(q, key: str) -> bool:
    val = q.get(key, "")
    if val == "":
        return False
    low = val.lower()
    if low in ("1", "t", "true"):
        return True
    if low in ("0", "f", "false"):
        return False
    raise errors.bad_request(f'strconv.ParseBool: parsing "{val}": invalid syntax')


def _int(q, key: str) -> int | None:
    val = q.get(key)
    if val is None or val == "":
        return None
    try:
        return int(val)
    except ValueError:
        raise errors.bad_request(f'strconv.ParseInt: parsing "{val}": invalid syntax') from None


# -- dispatch ---------------------------------------------------------------------------------

async def handle(api, request: web.Request, info, rs) -> web.StreamResponse:
    sub = info.subresource
    if rs.info.plural == "nodes":
        return await _node_proxy(api, request, info)
    if sub == "log":
        return await _pod_log(api, request, info, rs)
    if sub in ("exec", "attach"):
        return await _pod_stream(api, request, info, rs, sub)
    if sub == "portforward":
        return await _pod_portforward(api, request, info, rs)
    if sub == "proxy" and rs.info.plural == "services":
        return await _service_proxy(api, request, info, rs)
    if sub == "proxy":
        return await _pod_proxy(api, request, info, rs)
    raise errors.method_not_allowed()


async def _pod_log(api, request, info, rs) -> web.StreamResponse:
    q = request.query
    ns, name = info.namespace, info.name
    follow, previous, timestamps = _bool(q, "follow"), _bool(q, "previous"), _bool(q, "timestamps")
    tail, since, limit = _int(q, "tailLines"), _int(q, "sinceSeconds"), _int(q, "limitBytes")
    since_time = q.get("sinceTime") or None
    errs = []
    if tail is not None and tail < 0:
        errs.append(v.invalid("tailLines", tail, "must be greater than or equal to 0"))
    if limit is not None and limit < 1:
        errs.append(v.invalid("limitBytes", limit, "must be greater than 0"))
    if since is not None and since_time is not None:
        errs.append(v.forbidden("", "at most one of `sinceTime` or `sinceSeconds` may be specified"))
    elif since is not None and since < 1:
        errs.append(v.invalid("sinceSeconds", since, "must be greater than 0"))
    if q.get("stream"):   # PodLogsQuerySplitStreams is off in v1.37
        errs.append(v.forbidden("stream", "may not be specified"))
    if errs:
        raise errors.invalid("PodLogOptions", "", name, errs)
    pod = await rs.get(ns, name)
    container = validate_container(pod, q.get("container", ""))
    node_name = (pod.get("spec") or {}).get("nodeName") or ""
    resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
    if not node_name:   # no location: an empty stream, as upstream
        await resp.prepare(request)
        return resp
    host, port = await node_connection(api, node_name)
    params = []
    if follow:
        params.append(("follow", "true"))
    if previous:
        params.append(("previous", "true"))
    if timestamps:
        params.append(("timestamps", "true"))
    if since is not None:
        params.append(("sinceSeconds", str(since)))
    if since_time is not None:
        params.append(("sinceTime", since_time))
    if tail is not None:
        params.append(("tailLines", str(tail)))
    if limit is not None:
        params.append(("limitBytes", str(limit)))
    params.sort()   # url.Values.Encode sorts by key
    url = (f"https://{_join_host(host, port)}/containerLogs/{quote(ns)}/{quote(name)}/{quote(container)}"
           + (f"?{urlencode(params)}" if params else ""))
    async with _session(api) as session:
        try:
            kresp = await session.get(url, allow_redirects=False)
        except (OSError, asyncio.TimeoutError) as e:
            raise errors.internal(_dial_error(e, host, port)) from None
        async with kresp:
            if not 200 <= kresp.status <= 206:
                body = (await kresp.content.read(MAX_ERROR_BODY)).decode("utf-8", "replace")
                raise _log_error(kresp.status, body, name)
            await resp.prepare(request)
            async for chunk in kresp.content.iter_any():
                await resp.write(chunk)
    await resp.write_eof()
    return resp


def _log_error(code: int, body: str, name: str) -> errors.ApiError:
    """GenericHttpResponseChecker + NewGenericServerResponse for pods/log."""
    if code == 500:
        return errors.internal(body)
    if code == 400:
        return errors.bad_request(body)
    generic = {404: ("NotFound", "the server could not find the requested resource"),
               401: ("Unauthorized", "the server has asked for the client to provide credentials"),
               403: ("Forbidden", body),
               405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
               503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
               504: ("Timeout", "the server was unable to return a response in the time allotted, "
                                "but may still be processing the request"),
               429: ("TooManyRequests", "the server has received too many requests and has asked us "
                                        "to try again later")}
    if code in generic:
        reason, msg = generic[code]
    elif code >= 500:
        reason, msg = "InternalError", f'an error on the server ("{body}") has prevented the request from succeeding'
    else:
        reason, msg = "Unknown", f"the server responded with the status code {code} but did not return more information"
    return errors.ApiError(code, reason, f"{msg} ( pods/log {name})",
                           {"name": name, "kind": "pods/log"})


def _dial_error(e: BaseException, host: str, port: int) -> str:
    if isinstance(e, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY" in str(e):
        return f"Get \"https://{_join_host(host, port)}\": tls: failed to verify certificate: {e}"
    if isinstance(e, asyncio.TimeoutError):
        return f"error dialing backend: dial tcp {_join_host(host, port)}: i/o timeout"
    return f"error dialing backend: dial tcp {_join_host(host, port)}: {e}"


async def _pod_stream(api, request, info, rs, sub: str) -> web.StreamResponse:
    await _authorize_create(api, request, info)
    q = request.query
    pod = await rs.get(info.namespace, info.name)
    container = validate_container(pod, q.get("container", ""))
    node_name = (pod.get("spec") or {}).get("nodeName") or ""
    if not node_name:
        raise errors.bad_request(f"pod {info.name} does not have a host assigned")
    host, port = await node_connection(api, node_name)
    params = []
    for key in ("stdin", "stdout", "stderr", "tty"):
        if _bool(q, key):
            params.append(({"stdin": "input", "stdout": "output", "stderr": "error"}.get(key, key), "1"))
    if sub == "exec":
        params += [("command", c) for c in q.getall("command", [])]
    params.sort(key=lambda kv: kv[0])   # stable: commands keep their order
    path = f"/{STREAM_PATHS[sub]}/{quote(info.namespace)}/{quote(info.name)}/{quote(container)}"
    if not _is_upgrade(request):
        raise errors.bad_request("Upgrade request required")
    return await splice_upgrade(api, request, "https", host, port, path, urlencode(params), tls=True)


async def _pod_portforward(api, request, info, rs) -> web.StreamResponse:
    await _authorize_create(api, request, info)
    q = request.query
    pod = await rs.get(info.namespace, info.name)
    node_name = (pod.get("spec") or {}).get("nodeName") or ""
    if not node_name:
        raise errors.bad_request(f"pod {info.name} does not have a host assigned")
    host, port = await node_connection(api, node_name)
    ports = [p for p in q.getall("ports", []) if p]
    params = [("port", ",".join(ports))] if ports else []
    path = f"/portForward/{quote(info.namespace)}/{quote(info.name)}"
    if not _is_upgrade(request):
        raise errors.bad_request("Upgrade request required")
    return await splice_upgrade(api, request, "https", host, port, path, urlencode(params), tls=True)


async def _authorize_create(api, request, info) -> None:
    """AuthorizePodWebsocketUpgradeCreatePermission: a GET (WebSocket) also needs `create`."""
    if info.verb == "create":
        return
    from shim.auth.authz import Attributes
    user = request["user"]
    attrs = Attributes(user=user, verb="create", is_resource_request=True, path=request.path,
                       api_group=info.group, api_version=info.version, resource=info.resource,
                       subresource=info.subresource, namespace=info.namespace, name=info.name)
    decision = await api.authorizer.authorize(attrs)
    if not decision.allowed:
        raise errors.ApiError(403, "Forbidden",
                              f'{info.resource} "{info.name}" is forbidden: {decision.reason or ""}',
                              {"name": info.name, "kind": info.resource})


def _split_name_port(id_: str, what: str) -> tuple[str, str, str]:
    """utilnet.SplitSchemeNamePort: name | name:port | scheme:name:port."""
    parts = id_.split(":")
    if len(parts) == 1:
        scheme, name, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, name, port = "", parts[0], parts[1]
    elif len(parts) == 3 and parts[0] in ("http", "https"):
        scheme, name, port = parts
    else:
        raise errors.bad_request(f'invalid {what} request "{id_}"')
    if not name:
        raise errors.bad_request(f'invalid {what} request "{id_}"')
    return scheme, name, port


def _proxy_path(request, info) -> str:
    """The path after .../proxy, with a trailing slash kept (JoinPreservingTrailingSlash)."""
    from urllib.parse import unquote
    segs = request.raw_path.split("?", 1)[0].split("/")
    # the name may arrive escaped (the Python client sends `web%3A8080`)
    for i in range(len(segs) - 1):
        if segs[i + 1] == "proxy" and unquote(segs[i]) == info.name:
            return "/" + "/".join(segs[i + 2:])
    return "/"


async def _pod_proxy(api, request, info, rs) -> web.StreamResponse:
    scheme, name, port = _split_name_port(info.name, "pod")
    pod = await rs.get(info.namespace, name)
    if not port:
        for c in (pod.get("spec") or {}).get("containers") or []:
            if c.get("ports"):
                port = str(c["ports"][0].get("containerPort"))
                break
    import ipaddress
    ip = (pod.get("status") or {}).get("podIP") or ""
    try:
        addr = ipaddress.ip_address(ip)
        ok = addr.is_global or addr.is_private and not (addr.is_loopback or addr.is_link_local
                                                         or addr.is_unspecified or addr.is_multicast)
    except ValueError:
        ok = False
    if not ok:
        raise errors.bad_request("address not allowed")
    scheme = scheme or "http"
    nport = int(port) if port else (443 if scheme == "https" else 80)
    path = _proxy_path(request, info)
    if _is_upgrade(request):
        return await splice_upgrade(api, request, scheme, ip, nport, path, request.query_string,
                                    tls=scheme == "https", verify=False)
    return await reverse_proxy(api, request, scheme, ip, nport, path, tls_verify=False)


async def _service_proxy(api, request, info, rs) -> web.StreamResponse:
    """services/NAME[:PORT]/proxy, or SCHEME:NAME:PORT: a random ready endpoint serving that
    port, found in the Service's EndpointSlices (as kube-apiserver v1.37 does). PORT may be
    a port name or number; a number is looked up among the Service's ports first."""
    scheme, name, port = _split_name_port(info.name, "service")
    if port.isdigit():
        svc = await rs.get(info.namespace, name)
        for p in (svc.get("spec") or {}).get("ports") or []:
            if p.get("port") == int(port):
                port = p.get("name") or ""
                break
        else:
            raise errors.service_unavailable(f'no service port {port} found for service "{name}"')
    target = await _service_endpoint(api, info.namespace, name, port)
    if target is None:
        raise errors.service_unavailable(f'no endpoints available for service "{name}"')
    ip, nport = target
    scheme = scheme or "http"
    path = _proxy_path(request, info)
    if _is_upgrade(request):
        return await splice_upgrade(api, request, scheme, ip, nport, path, request.query_string,
                                    tls=scheme == "https", verify=False)
    return await reverse_proxy(api, request, scheme, ip, nport, path, tls_verify=False)


async def _service_endpoint(api, namespace: str, service: str, port_name: str) -> tuple[str, int] | None:
    """(address, port) of a random ready endpoint of the Service's slices that serves port_name
    and is really one of its namespace's pods (the address is the pod's IP)."""
    import random
    from shim.api.registry import ListOptions
    from shim.api.selectors import selector_from_set
    slices_rs = api.resource("discovery.k8s.io", "v1", "endpointslices")
    slices = (await slices_rs.list(namespace, ListOptions(
        label_selector=selector_from_set({"kubernetes.io/service-name": service}))))["items"]
    random.shuffle(slices)
    slices.sort(key=lambda s: s.get("addressType") != "IPv4")   # the cluster's family first
    pods = api.core("pods")
    for sl in slices:
        for sp in sl.get("ports") or []:
            if (sp.get("name") or "") != port_name or sp.get("port") is None:
                continue
            eps = list(sl.get("endpoints") or [])
            if not eps:
                continue
            start = random.randrange(len(eps))
            for ep in eps[start:] + eps[:start]:
                if (ep.get("conditions") or {}).get("ready") is False or not ep.get("addresses"):
                    continue
                if await _is_pod_address(pods, namespace, ep):
                    return ep["addresses"][0], int(sp["port"])
    return None


async def _is_pod_address(pods, namespace: str, ep: dict) -> bool:
    """Proxying goes only to addresses that belong to a pod of the namespace."""
    ref = ep.get("targetRef") or {}
    if not ref or ref.get("namespace") != namespace or not ref.get("name"):
        return False
    pod = await pods.get_or_none(namespace, ref["name"])
    if pod is None:
        return False
    return any(p.get("ip") == ep["addresses"][0] for p in (pod.get("status") or {}).get("podIPs") or [])


async def _node_proxy(api, request, info) -> web.StreamResponse:
    scheme, name, port = _split_name_port(info.name, "node")
    host, kport = await node_connection(api, name)
    path = _proxy_path(request, info)
    if not port or port == str(kport):
        scheme, nport, verify = "https", kport, True
    else:
        scheme, nport, verify = scheme or "http", int(port), False
    if _is_upgrade(request):
        return await splice_upgrade(api, request, scheme, host, nport, path, request.query_string,
                                    tls=scheme == "https", verify=verify)
    return await reverse_proxy(api, request, scheme, host, nport, path, tls_verify=verify)


# -- plain reverse proxy ----------------------------------------------------------------------

def _forward_headers(request) -> CIMultiDict:
    h = CIMultiDict()
    conn_tokens = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
    for k, val in request.headers.items():
        lk = k.lower()
        if lk in HOP_HEADERS or lk in CONSUMED_HEADERS or lk in conn_tokens or lk.startswith("impersonate-extra-"):
            continue
        h.add(k, val)
    peer = request.remote
    if peer:
        prior = request.headers.get("X-Forwarded-For")
        h["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
    return h


async def reverse_proxy(api, request, scheme, host, port, path, tls_verify: bool) -> web.StreamResponse:
    url = f"{scheme}://{_join_host(host, port)}{path}"
    if request.query_string:
        url += "?" + request.query_string
    headers = _forward_headers(request)
    ssl_arg = (_kubelet_ssl(api) if tls_verify else False) if scheme == "https" else None
    body = request.content if request.can_read_body else None
    async with _session(api) as session:
        try:
            kresp = await session.request(request.method, url, headers=headers, data=body,
                                          allow_redirects=False, ssl=ssl_arg)
        except (OSError, asyncio.TimeoutError) as e:
            # httputil.ReverseProxy's error handler: 502 with the error
            return web.Response(status=502, text=_dial_error(e, host, port).replace(
                "error dialing backend: ", "") + "\n", content_type="text/plain")
        async with kresp:
            out = web.StreamResponse(status=kresp.status, reason=kresp.reason)
            conn_tokens = {t.strip().lower() for t in kresp.headers.get("Connection", "").split(",")}
            for k, val in kresp.headers.items():
                lk = k.lower()
                if lk in HOP_HEADERS or lk in conn_tokens or lk == "content-length":
                    continue
                out.headers.add(k, val)
            if kresp.content_length is not None:
                out.content_length = kresp.content_length
            await out.prepare(request)
            async for chunk in kresp.content.iter_any():
                await out.write(chunk)
    await out.write_eof()
    return out


# -- upgrades ---------------------------------------------------------------------------------

def _is_upgrade(request) -> bool:
    """httpstream.IsUpgradeRequest: a Connection header naming `upgrade`."""
    for val in request.headers.getall("Connection", []):
        if "upgrade" in val.lower():
            return True
    return False


class _ToBackend:
    """Takes the place of aiohttp's payload parser once a connection is upgraded: whatever the
    client sends goes straight to the backend (pausing the client when the backend is slow)."""

    def __init__(self, writer: asyncio.StreamWriter, client_transport, done: asyncio.Event):
        self.writer = writer
        self.client = client_transport
        self.done = done
        self.paused = False

    def feed_data(self, data: bytes):
        if data and not self.writer.is_closing():
            self.writer.write(data)
            if not self.paused and self.writer.transport.get_write_buffer_size() > 4 * BUF:
                self.paused = True
                try:
                    self.client.pause_reading()
                except Exception:   # pragma: no cover
                    pass
                asyncio.ensure_future(self._resume())
        return False, b""

    async def _resume(self):
        try:
            await self.writer.drain()
        except Exception:
            pass
        self.paused = False
        try:
            if not self.client.is_closing():
                self.client.resume_reading()
        except Exception:   # pragma: no cover
            pass

    def feed_eof(self):
        self.done.set()


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, str, list[tuple[str, str]], bytes]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"malformed HTTP response {lines[0]!r}")
    code = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        k, _, val = line.partition(":")
        headers.append((k.strip(), val.strip()))
    return code, reason, headers, raw


async def _read_body(reader, headers, limit: int = 1 << 20) -> bytes:
    hd = {k.lower(): val for k, val in headers}
    if "content-length" in hd:
        n = int(hd["content-length"])
        return await reader.readexactly(min(n, limit))
    if "chunked" in hd.get("transfer-encoding", "").lower():
        out = b""
        while len(out) < limit:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            out += await reader.readexactly(size)
            await reader.readline()
        return out
    return await reader.read(limit)


async def splice_upgrade(api, request: web.Request, scheme: str, host: str, port: int, path: str,
                         query: str, tls: bool, verify: bool = True) -> web.StreamResponse:
    """Upstream's UpgradeAwareHandler.tryUpgrade: dial, forward the upgrade request, and on 101
    splice both connections until one side ends."""
    if tls:
        if verify:
            ctx = _kubelet_ssl(api)
        else:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            if getattr(api, "pki", None) is not None and scheme == "https":
                ctx.load_cert_chain(str(api.pki.apiserver_kubelet_client_cert),
                                    str(api.pki.apiserver_kubelet_client_key))
    else:
        ctx = None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ctx, server_hostname=host if ctx else None, limit=BUF),
            DIAL_TIMEOUT)
    except (OSError, asyncio.TimeoutError) as e:
        raise errors.internal(_dial_error(e, host, port)) from None
    done = asyncio.Event()
    pump = None
    try:
        headers = _forward_headers_upgrade(request)
        target = path + (f"?{query}" if query else "")
        head = [f"{request.method} {target} HTTP/1.1", f"Host: {_join_host(host, port)}"]
        head += [f"{k}: {val}" for k, val in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        if request.can_read_body:   # an upgrade request rarely has a body; pass it on if so
            async for chunk in request.content.iter_any():
                writer.write(chunk)
        await writer.drain()
        try:
            code, reason, rheaders, _raw = await asyncio.wait_for(_read_head(reader), DIAL_TIMEOUT)
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                asyncio.TimeoutError) as e:
            raise errors.internal(f"error reading the upgrade response from {_join_host(host, port)}: "
                                  f"{e or type(e).__name__}") from None
        if code != 101:
            if code < 400:
                raise errors.internal(f"invalid upgrade response: status code {code}")
            try:
                body = await asyncio.wait_for(_read_body(reader, rheaders), 10)
            except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.TimeoutError):
                body = b""
            out = web.Response(status=code, reason=reason or None, body=body)
            for k, val in rheaders:
                if k.lower() in ("content-type", "x-content-type-options", "cache-control",
                                 "sec-websocket-version", "sec-websocket-protocol"):
                    out.headers.add(k, val)
            out.force_close()
            return out
        # 101: answer the client the same way, then splice
        resp = web.StreamResponse(status=101, reason=reason or "Switching Protocols")
        for k, val in rheaders:
            if k.lower() in ("content-length", "transfer-encoding", "date", "server"):
                continue
            resp.headers.add(k, val)
        resp.headers.setdefault("Connection", "Upgrade")
        proto = request.protocol
        # aiohttp only knows WebSocket upgrades: make SPDY/3.1 (and any other) upgrades behave
        # the same, so the bytes after the request are not parsed as HTTP
        proto._upgraded = True
        await resp.prepare(request)
        proto.keep_alive(False)
        proto.set_parser(_ToBackend(writer, request.transport, done))

        async def backend_to_client():
            while True:
                data = await reader.read(BUF)
                if not data:
                    return
                await resp.write(data)

        pump = asyncio.ensure_future(backend_to_client())
        waiter = asyncio.ensure_future(done.wait())
        try:
            await asyncio.wait({pump, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if pump.done() and not pump.cancelled() and pump.exception() is not None:
            log.debug("splice to %s ended: %r", _join_host(host, port), pump.exception())
        return resp
    finally:
        if pump is not None and not pump.done():
            pump.cancel()
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 2)
        except Exception:
            pass


def _forward_headers_upgrade(request) -> CIMultiDict:
    """Every header but what the API server consumed (Connection/Upgrade are kept)."""
    h = CIMultiDict()
    for k, val in request.headers.items():
        lk = k.lower()
        if lk in CONSUMED_HEADERS or lk.startswith("impersonate-extra-") or lk in (
                "content-length", "transfer-encoding"):
            continue
        h.add(k, val)
    if request.can_read_body and request.content_length:
        h["Content-Length"] = str(request.content_length)
    peer = request.remote
    if peer:
        prior = request.headers.get("X-Forwarded-For")
        h["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
    return h
