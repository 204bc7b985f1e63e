"""The control plane process: PKI, store, API server, and the loops that run beside it.

`ControlPlane` is the application object: everything a running server owns hangs off it
(no module-level state), so tests can start two in one process.
"""
from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import socket
import sys
from pathlib import Path

from aiohttp import web

from shim.api.apiset import Api
from shim.api.server import build_app
from shim.api.strategy import StrategyOptions
from shim.auth.authn import Authenticator
from shim.auth.serviceaccount import TokenIssuer
from shim.auth.authz import AllowAuthenticated, AuthorizerChain
from shim.controllers.builtin import install_admission
from shim.pki import Pki, ensure_pki, write_kubeconfig
from shim.store import open_store

log = logging.getLogger("shim")

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class DataDirLocked(RuntimeError):
    pass


class ControlPlane:
    def __init__(self, data_dir: Path, *, listen: str = "127.0.0.1:6443", pki_dir: Path | None = None,
                 store: str = "sqlite", token_file: Path | None = None, store_opts: dict | None = None,
                 compaction_interval: float = 300.0, bookmark_interval: float = 60.0,
                 min_request_timeout: float = 1800.0, run_loops: bool = True,
                 leader_elect: bool | None = None, run_scheduler: bool = True,
                 run_controllers: bool = True, ip_repair_interval: float = 180.0,
                 event_ttl: float = 3600.0, advertise_address: str | None = None):
        self.data_dir = Path(data_dir)
        self.host, port = listen.rsplit(":", 1)
        self.host = self.host.strip("[]")
        self.port = int(port)
        self.pki_dir = Path(pki_dir) if pki_dir else self.data_dir / "pki"
        self.store_kind = store
        self.store_opts = store_opts or {}
        self.token_file = token_file
        self.compaction_interval = compaction_interval
        self.bookmark_interval = bookmark_interval
        self.min_request_timeout = min_request_timeout
        self.run_loops = run_loops
        # Leader election (shim/leaderelection.py): on by default when the store can be
        # shared by several replicas (etcd); the embedded store has one process by design.
        self.leader_elect = leader_elect if leader_elect is not None else store != "sqlite"
        # The controllers and the scheduler run in a child process, `shim controller-manager`
        # (shim/controllers/run.py), as clients of this API server; with leader election only
        # the replica whose manager holds the kube-system Lease runs them.
        self.run_scheduler = run_scheduler
        self.run_controllers = run_controllers
        # kube-apiserver's --event-ttl: Events are deleted this long after their last write
        self.event_ttl = event_ttl
        self.manager_pid: int | None = None
        # kube-apiserver's ipallocator repair and default-ServiceCIDR loops (ipallocator.py)
        self.ip_repair_interval = ip_repair_interval
        self.ip_repair = None
        # default/kubernetes endpoints: this address and our port (shim/kubernetesservice.py)
        self.advertise_address = advertise_address
        self._kubernetes_endpoints = None
        self.kubeconfig_path = self.data_dir / "admin.kubeconfig"
        self._lock_fd: int | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task] = []
        self.api: Api | None = None
        self.store = None
        self.pki: Pki | None = None

    @property
    def server_url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{self.port}"

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock()
        hosts = [self.host] if self.host not in ("0.0.0.0", "::", "") else []
        self.pki = ensure_pki(self.pki_dir, hosts=hosts)
        if self.store_kind == "sqlite":
            self.store = open_store("sqlite", path=str(self.data_dir / "state.db"), **self.store_opts)
        else:
            self.store = open_store(self.store_kind, **self.store_opts)
        await self.store.start()
        authn = Authenticator(client_ca_pem=self.pki.ca_pem, token_file=self.token_file)
        authz = AuthorizerChain([AllowAuthenticated()])
        self.api = Api(self.store, authenticator=authn, authorizer=authz,
                       server_address=f"{self.host}:{self.port}",
                       min_request_timeout=self.min_request_timeout,
                       bookmark_interval=self.bookmark_interval,
                       strategy_options=StrategyOptions(event_ttl=self.event_ttl))
        self.api.ca_pem = self.pki.ca_pem
        self.api.pki = self.pki
        self.api.token_issuer = issuer = TokenIssuer.from_file(self.pki.sa_key)
        issuer.lookup = lambda ns, plural, name: self.api.core(plural).get_or_none(ns, name)
        authn.add_token_authenticator(issuer.authenticate)
        install_admission(self.api)
        from shim.scheduler import admission as priority_admission
        from shim.controllers import nodelifecycle
        priority_admission.install(self.api)
        nodelifecycle.install_admission(self.api)
        await self._bootstrap()
        await priority_admission.ensure_system_priority_classes(self.api)
        app = build_app(self.api)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True,
                                     shutdown_timeout=5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.pki.server_ssl_context(),
                           reuse_address=True, backlog=1024)
        await site.start()
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]
        self._write_kubeconfig()
        if self.run_loops and self.run_controllers:
            self._tasks.append(asyncio.create_task(self._supervise_manager(), name="controller-manager"))
        if self.run_loops:
            self._tasks.append(asyncio.create_task(self._compaction_loop(), name="compaction"))
            self._tasks.append(asyncio.create_task(self._ip_repair_loop(), name="ipallocator-repair"))
            self._tasks.append(asyncio.create_task(self._default_service_cidr_loop(),
                                                   name="default-service-cidr"))
            self._start_kubernetes_endpoints()
        self.api.ready = True

    async def stop(self) -> None:
        if self.api:
            self.api.ready = False
            for w in list(self.api.open_watches):
                w.close()
        if self._kubernetes_endpoints is not None:
            try:  # a clean stop takes our address out of default/kubernetes at once
                await asyncio.wait_for(self._kubernetes_endpoints.remove(), 3)
            except Exception as e:
                log.debug("removing our kubernetes endpoint: %r", e)
            self._kubernetes_endpoints = None
        # Cancel until done: on Python 3.11 asyncio.wait_for swallows a cancellation that
        # races with its inner future completing, and a loop would then carry on forever.
        while any(not t.done() for t in self._tasks):
            for t in self._tasks:
                t.cancel()
            await asyncio.wait(self._tasks, timeout=0.5)
        for t in self._tasks:
            if not t.cancelled() and t.exception() is not None:
                log.debug("%s ended with %r", t.get_name(), t.exception())
        self._tasks.clear()
        if self._runner:
            await self._runner.cleanup()
            self._runner = None
        if self.store:
            await self.store.close()
            self.store = None
        self._unlock()

    # -- pieces -----------------------------------------------------------------------------
    def _lock(self) -> None:
        fd = os.open(self.data_dir / "shim.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirLocked(
                f"data dir {self.data_dir} is in use by another shim process; "
                f"stop it first or choose another --data-dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _write_kubeconfig(self) -> None:
        p = self.pki
        write_kubeconfig(self.kubeconfig_path, server=self.server_url, ca_pem=p.ca_pem,
                         cert_pem=p.admin_cert.read_bytes(), key_pem=p.admin_key.read_bytes())

    async def _bootstrap(self) -> None:
        """What exists from the first start: the system namespaces, the default ServiceCIDR
        and the kubernetes Service (whose 10.96.0.1 is reserved like any Service's IP)."""
        from shim.api.registry import WriteOptions
        from shim.api import errors
        from shim.controllers import ipallocator
        nss = self.api.core("namespaces")
        for name in SYSTEM_NAMESPACES:
            if await nss.get_or_none("", name) is None:
                try:
                    await nss.create("", {"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"name": name}},
                                     WriteOptions(field_manager="kube-apiserver"))
                except errors.ApiError as e:
                    if e.code != 409:
                        raise
        await ipallocator.ensure_default_service_cidr(self.api)
        self.ip_repair = ipallocator.IPRepair(self.api)
        await self.ip_repair.run_once()
        svcs = self.api.core("services")
        if await svcs.get_or_none("default", "kubernetes") is None:
            try:
                await svcs.create("default", {
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "kubernetes", "namespace": "default",
                                 "labels": {"component": "apiserver", "provider": "kubernetes"}},
                    "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                             "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                        "targetPort": self.port}]}},
                    WriteOptions(field_manager="kube-apiserver"))
            except errors.ApiError as e:
                if e.code == 422:  # 10.96.0.1 held by another Service: serve anyway, say so
                    log.warning("cannot create the kubernetes Service: %s", e)
                elif e.code != 409:
                    raise

    def _start_kubernetes_endpoints(self) -> None:
        from shim.kubernetesservice import KubernetesEndpoints, advertise_address
        ip = advertise_address(self.host, self.advertise_address)
        if ip is None:
            log.warning("no address to advertise (no default route; see --advertise-address): "
                        "default/kubernetes gets no endpoints")
            return
        self._kubernetes_endpoints = KubernetesEndpoints(self.api, ip, self.port)
        self._tasks.append(asyncio.create_task(self._kubernetes_endpoints.run(), name="kubernetes-endpoints"))

    def _component_kubeconfig(self, name: str, user: str) -> Path:
        """A kubeconfig for one of our components (fresh client certificate each start)."""
        path = self.data_dir / f"{name}.kubeconfig"
        cert, key = self.pki.issue_client_cert(user, [])
        write_kubeconfig(path, server=self.server_url, ca_pem=self.pki.ca_pem, cert_pem=cert, key_pem=key,
                         user=user)
        return path

    def manager_command(self) -> list[str]:
        cmd = [sys.executable, "-m", "shim.cli", "controller-manager",
               "--kubeconfig", str(self._component_kubeconfig(
                   "controller-manager", "system:kube-controller-manager")),
               "--root-ca-file", str(self.pki.ca_cert), "--parent-pid", str(os.getpid()),
               "--log-level", logging.getLevelName(logging.getLogger().level)]
        if self.run_scheduler:
            cmd += ["--scheduler-kubeconfig",
                    str(self._component_kubeconfig("scheduler", "system:kube-scheduler"))]
        if self.leader_elect:
            # Stable per data dir: a replica restarted on its own data dir (which the dir lock
            # makes the only process using it) takes its lease back at once.
            ident = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:10]
            cmd += ["--leader-elect", "--leader-elect-identity", f"{local_hostname()}_{ident}"]
        return cmd

    async def _supervise_manager(self) -> None:
        """Keep the controller manager running; stop it (SIGTERM, then SIGKILL) when we stop."""
        delay = 1.0
        while True:
            started = asyncio.get_running_loop().time()
            # stdout and stderr are ours: its log lines land where the API server's do
            proc = await asyncio.create_subprocess_exec(*self.manager_command(), stdin=asyncio.subprocess.DEVNULL,
                                                        stdout=sys.stderr.fileno())
            self.manager_pid = proc.pid
            try:
                rc = await proc.wait()
            except asyncio.CancelledError:
                if proc.returncode is None:
                    proc.terminate()
                    try:
                        await asyncio.wait_for(asyncio.shield(proc.wait()), 5)
                    except asyncio.TimeoutError:
                        proc.kill()
                        await proc.wait()
                raise
            finally:
                self.manager_pid = None
            if asyncio.get_running_loop().time() - started > 60:
                delay = 1.0
            log.warning("controller manager exited (%s); starting it again in %.0fs", rc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _ip_repair_loop(self) -> None:
        """kube-apiserver's ipallocator-repair-controller: the start-up pass (in _bootstrap),
        then one every ip_repair_interval; cancelled by stop() like the other loops."""
        while True:
            await asyncio.sleep(self.ip_repair_interval)
            try:
                await self.ip_repair.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # keep serving; try again next time
                log.warning("ipallocator repair failed: %s", e)

    async def _default_service_cidr_loop(self, interval: float = 10.0) -> None:
        """kube-apiserver's kubernetes-service-cidr-controller: every 10s the default
        ServiceCIDR exists (made again once a deletion has gone through) and is Ready."""
        from shim.controllers import ipallocator
        while True:
            await asyncio.sleep(interval)
            try:
                await ipallocator.ensure_default_service_cidr(self.api)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("default ServiceCIDR sync failed: %s", e)

    async def _compaction_loop(self) -> None:
        """Like kube-apiserver: every interval, compact to the revision seen one interval ago."""
        previous = 0
        while True:
            await asyncio.sleep(self.compaction_interval)
            try:
                current = await self.store.current_revision()
                if previous:
                    await self.store.compact(previous)
                previous = current
            except Exception as e:  # keep serving; try again next time
                log.warning("compaction failed: %s", e)


def local_hostname() -> str:
    return socket.gethostname()
