"""The service: one aiohttp application on a unix socket.

Every route is registered with and without docker's /vX.Y prefix. A
handler converts its request once (api/convert.py) and calls the library;
blocking library calls run in worker threads so that long streams (attach,
logs -f, events, pull progress) never hold up other clients. Every error
leaves as docker's {"message": ...} with docker's status code.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import stat
import struct
import time

from aiohttp import web

from .. import containers, volumes
from ..copy_archive import NoSuchPath
from ..errors import ConfigError, ContainerError, ImageNotFound, NetworkNotFound
from ..image import ImageInUse
from ..managed import starter
from ..network.connect import AlreadyConnected, NotConnected
from ..state import AmbiguousContainer, NameInUse, NoSuchContainer
from . import build_routes, containers_routes, exec_routes, images_routes, system_routes, volumes_networks_routes
from .convert import API_VERSION, MIN_API_VERSION, BadRequest, NoSuchExec, api_headers, json_response

MAX_BODY = 16 << 20          # a JSON body; image tars (load, build, archive) stream instead
MAX_HEADERS = 64 << 10

_VERSION_PREFIX = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")
log = logging.getLogger("pycontain.api")


class NotImplementedEndpoint(ContainerError):
    pass


def error_status(e: BaseException) -> int:
    """docker's status code for a library error."""
    if isinstance(e, (NoSuchContainer, ImageNotFound, volumes.NoSuchVolume, NetworkNotFound, NoSuchExec,
                      NoSuchPath)):
        return 404
    if isinstance(e, (NameInUse, ImageInUse, volumes.VolumeInUse, containers.ContainerStateError)):
        return 409
    if isinstance(e, AlreadyConnected):
        return 403   # dockerd's statuses for these two
    if isinstance(e, NotConnected):
        return 500
    if isinstance(e, (BadRequest, ConfigError, AmbiguousContainer)):
        return 400
    if isinstance(e, NotImplementedEndpoint):
        return 501
    return 500


def error_response(status: int, message: str) -> web.Response:
    return json_response({"message": message}, status)


def _version_tuple(text):
    major, minor = text.split(".")
    return int(major), int(minor)


@web.middleware
async def errors_and_versions(request: web.Request, handler):
    """docker's error shape for everything; versions checked (the prefix
    itself is taken off by the router's own pattern, see add_routes)."""
    version = request.match_info.get("version")
    if version and _version_tuple(version) > _version_tuple(API_VERSION):
        return error_response(400, f"client version {version} is too new. "
                                   f"Maximum supported API version is {API_VERSION}")
    if version and _version_tuple(version) < _version_tuple(MIN_API_VERSION):
        return error_response(400, f"client version {version} is too old. "
                                   f"Minimum supported API version is {MIN_API_VERSION}, please upgrade your client")
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status >= 400 and e.content_type != "application/json":
            return error_response(e.status, e.reason if e.status != 404 else
                                  f"page not found: {request.method} {request.path}")
        raise
    except (ContainerError, OSError) as e:
        return error_response(error_status(e), str(e))
    except asyncio.CancelledError:
        raise
    except Exception as e:  # a defect of ours: one line to the client, the traceback to our log
        log.exception("%s %s", request.method, request.path)
        return error_response(500, f"internal error: {type(e).__name__}: {e}")


class Routes:
    """Collects (method, path, handler); each path also under /vX.Y/."""

    def __init__(self):
        self.table = []

    def add(self, method, path, handler):
        self.table.append((method, path, handler))

    def apply(self, app: web.Application):
        for method, path, handler in self.table:
            app.router.add_route(method, path, handler)
            app.router.add_route(method, r"/v{version:\d+\.\d+}" + path, handler)


@web.middleware
async def common_headers(request, handler):
    resp = await handler(request)
    if not resp.prepared:
        for k, v in api_headers().items():
            resp.headers.setdefault(k, v)
    return resp


class IdleTimer:
    """--time: the service ends after that many seconds without a request
    or an open stream (0: never)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.active = 0
        self.last = time.monotonic()
        self.done = asyncio.Event()

    @web.middleware
    async def middleware(self, request, handler):
        self.active += 1
        try:
            return await handler(request)
        finally:
            self.active -= 1
            self.last = time.monotonic()

    async def watch(self):
        if not self.seconds:
            return
        while True:
            left = self.last + self.seconds - time.monotonic()
            if self.active == 0 and left <= 0:
                self.done.set()
                return
            await asyncio.sleep(max(0.05, min(left, 1.0)) if self.active == 0 else 1.0)


# Requests one client process may have open at once (streams included:
# attach, logs -f, events stay open): a runaway client cannot exhaust us.
MAX_REQUESTS_PER_CLIENT = 64
_in_flight: dict = {}


def _peer_pid(request) -> int:
    sock = request.transport.get_extra_info("socket") if request.transport is not None else None
    if sock is None or sock.family != socket.AF_UNIX:
        return 0
    pid, _uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return pid


@web.middleware
async def bounded_per_client(request, handler):
    pid = _peer_pid(request)
    if _in_flight.get(pid, 0) >= MAX_REQUESTS_PER_CLIENT:
        return error_response(429, f"too many requests open at once from this client "
                                   f"(at most {MAX_REQUESTS_PER_CLIENT})")
    _in_flight[pid] = _in_flight.get(pid, 0) + 1
    try:
        return await handler(request)
    finally:
        _in_flight[pid] -= 1
        if not _in_flight[pid]:
            del _in_flight[pid]


def build_app(idle: IdleTimer | None = None) -> web.Application:
    middlewares = [bounded_per_client, errors_and_versions, common_headers]
    if idle is not None:
        middlewares.insert(0, idle.middleware)
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY, handler_args={
        "max_line_size": 8190, "max_field_size": 8190})
    routes = Routes()
    for module in (system_routes, containers_routes, exec_routes, images_routes, volumes_networks_routes,
                   build_routes):
        module.register(routes)
    routes.apply(app)
    app.router.add_route("*", "/{tail:.*}", not_implemented)
    return app


async def not_implemented(request):
    raise NotImplementedEndpoint(f"{request.method} {request.path} is not implemented by pycontain")


# ---- the socket ---------------------------------------------------------------------------


def default_socket() -> str:
    if os.geteuid() == 0:
        return "/run/pycontain/docker.sock"
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return os.path.join(runtime, "pycontain", "docker.sock")


def socket_path(spec: str | None) -> str:
    """--socket: unix:///PATH or a plain path; TCP is refused (it would need TLS)."""
    spec = spec or default_socket()
    if spec.startswith("unix://"):
        spec = spec[len("unix://"):]
    elif "://" in spec:
        raise ConfigError(f"--socket {spec!r}: only unix:///PATH is supported (TCP would need TLS and client "
                          "certificates, not implemented)")
    if not spec.startswith("/"):
        raise ConfigError(f"--socket {spec!r}: the path must be absolute")
    return spec


def listen(path: str, group: str | None = None) -> socket.socket:
    """Binds the unix socket 0660 (root and --group only, as docker's: it grants
    root). An existing socket is replaced only if nobody answers on it."""
    parent = os.path.dirname(path)
    os.makedirs(parent, mode=0o755 if os.geteuid() == 0 else 0o700, exist_ok=True)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise ConfigError(f"{path} exists and is not a socket: refusing to replace it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)  # left by a service that ended
        else:
            raise ConfigError(f"{path}: another service is listening on it")
        finally:
            probe.close()
    gid = -1
    if group is not None:
        import grp

        try:
            gid = grp.getgrnam(group).gr_gid if not group.isdigit() else int(group)
        except KeyError:
            raise ConfigError(f"--group {group!r}: no such group") from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old_umask = os.umask(0o177)  # never reachable by others, not even for a moment
    try:
        sock.bind(path)
    finally:
        os.umask(old_umask)
    if gid != -1:
        os.chown(path, -1, gid)
    os.chmod(path, 0o660)
    sock.listen(128)
    return sock


def systemd_socket() -> socket.socket | None:
    """The listening socket systemd passed (socket activation), if any."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or os.environ.get("LISTEN_FDS") != "1":
        return None
    for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(key, None)   # not for the monitors and exec'd processes we start
    sock = socket.socket(fileno=3)
    sock.set_inheritable(False)
    if sock.family != socket.AF_UNIX:
        sock.close()
        raise ConfigError("the socket systemd passed is not a unix socket (TCP would need TLS)")
    return sock


async def serve_async(sock: socket.socket, idle_seconds: float = 0, ready=None) -> None:
    idle = IdleTimer(idle_seconds)
    app = build_app(idle)
    # handler_cancellation: a client that goes away ends its request (a follower
    # with nothing to write would otherwise wait for the container to end)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0,
                           handler_cancellation=True)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.ensure_future(idle.watch())
    if ready is not None:
        ready()
    try:
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(idle.done.wait())]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
    finally:
        watcher.cancel()
        await runner.cleanup()


def serve(socket_spec: str | None = None, idle_seconds: float = 0, group: str | None = None, ready=None) -> None:
    """Runs the service in the foreground until SIGINT/SIGTERM or --time idle.
    Stopping it never stops a container: each has its own monitor."""
    # Before the event loop or any thread: the starter is forked from a
    # process with one thread, and starts containers by forking in turn
    # (a process with threads cannot; managed/starter.py).
    starter.launch()
    try:
        _serve(socket_spec, idle_seconds, group, ready)
    finally:
        starter.shutdown()


def _serve(socket_spec, idle_seconds, group, ready):
    sock = systemd_socket()
    path = ours = None
    if sock is None:
        path = socket_path(socket_spec)
        sock = listen(path, group)
        ours = os.stat(path).st_ino
    try:
        asyncio.run(serve_async(sock, idle_seconds, ready))
    finally:
        sock.close()
        try:  # only our own socket: a newer service may listen at the path by now
            if path is not None and os.stat(path).st_ino == ours:
                os.unlink(path)
        except FileNotFoundError:
            pass

