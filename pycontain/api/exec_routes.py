"""/containers/{id}/exec and /exec/{id}/...: docker exec over
ManagedContainer.exec_start (the library joins the container; the service
only carries the bytes and reaps the process it was handed)."""
from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import termios
from dataclasses import dataclass, field

from aiohttp import web

from .. import containers
from ..attach import parse_detach_keys, split_detach_keys
from ..errors import ConfigError, ContainerError
from . import streams
from .containers_routes import body_of, container_of
from .streams import in_thread
from .convert import BadRequest, NoSuchExec, json_response, query_int

# exec instances live as long as the service (docker keeps them with the
# container); a bound keeps a client that never starts them from growing us
MAX_EXECS = 4096


@dataclass
class ExecInstance:
    id: str
    container_id: str
    cmd: list
    env: list
    user: str | None
    workdir: str | None
    tty: bool
    attach_stdin: bool
    attach_stdout: bool
    attach_stderr: bool
    detach_keys: bytes = b"\x10\x11"
    running: bool = False
    started: bool = False
    exit_code: int | None = None
    pid: int = 0
    tty_master: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def inspect(self) -> dict:
        return {
            "ID": self.id, "Running": self.running, "ExitCode": self.exit_code, "Pid": self.pid,
            "ContainerID": self.container_id, "CanRemove": False, "DetachKeys": "",
            "OpenStdin": self.attach_stdin, "OpenStdout": self.attach_stdout, "OpenStderr": self.attach_stderr,
            "ProcessConfig": {"entrypoint": self.cmd[0], "arguments": self.cmd[1:], "tty": self.tty,
                              "privileged": False, "user": self.user or ""},
        }


_execs: dict[str, ExecInstance] = {}


def register(routes):
    routes.add("POST", "/containers/{id}/exec", create)
    routes.add("POST", "/exec/{id}/start", start)
    routes.add("POST", "/exec/{id}/resize", resize)
    routes.add("GET", "/exec/{id}/json", inspect)


def _bool(body, key):
    v = body.get(key)
    if v is not None and not isinstance(v, bool):
        raise BadRequest(f"{key}: expected a boolean")
    return bool(v)


def _detach_keys(body) -> bytes:
    """DetachKeys (docker's CLI sends its --detach-keys; none: the daemon's
    default, ctrl-p,ctrl-q). Looked for in a terminal's input only."""
    try:
        return parse_detach_keys(_str(body, "DetachKeys") or "ctrl-p,ctrl-q")
    except ConfigError as e:
        raise BadRequest(str(e)) from None


def _str(body, key):
    v = body.get(key)
    if v is not None and not isinstance(v, str):
        raise BadRequest(f"{key}: expected a string")
    return v or None


_EXEC_FIELDS = {"AttachStdin", "AttachStdout", "AttachStderr", "DetachKeys", "Tty", "Env", "Cmd", "Privileged",
                "Container",  # docker-py sends the container id again
                "User", "WorkingDir", "ConsoleSize", "Detach"}


async def create(request):
    body = await body_of(request)
    if not isinstance(body, dict):
        raise BadRequest("the exec config must be a JSON object")
    if "detachKeys" in body:   # docker-py's spelling (docker's JSON decoding ignores case)
        body["DetachKeys"] = body.pop("detachKeys")
    unknown = sorted(set(body) - _EXEC_FIELDS)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]}")
    if _bool(body, "Privileged"):
        raise BadRequest("Privileged exec is not supported by pycontain")
    cmd = body.get("Cmd")
    if isinstance(cmd, str):
        cmd = [cmd]
    if not isinstance(cmd, list) or not cmd or not all(isinstance(a, str) for a in cmd):
        raise BadRequest("No exec command specified (Cmd: a non-empty list of strings)")
    env = body.get("Env") or []
    if not isinstance(env, list) or not all(isinstance(e, str) for e in env):
        raise BadRequest("Env: expected a list of strings")
    c = await container_of(request)
    if c.status == "paused":
        return json_response({"message": f"Container {c.id} is paused, unpause the container before exec"},
                                 status=409)
    if c.status != "running":
        return json_response({"message": f"Container {c.id} is not running"}, status=409)
    if len(_execs) >= MAX_EXECS:
        for old in [e for e in _execs.values() if e.exit_code is not None][:MAX_EXECS // 2]:
            _execs.pop(old.id, None)
    exec_id = os.urandom(32).hex()
    _execs[exec_id] = ExecInstance(
        id=exec_id, container_id=c.id, cmd=cmd, env=env, user=_str(body, "User"),
        workdir=_str(body, "WorkingDir"), tty=_bool(body, "Tty"), attach_stdin=_bool(body, "AttachStdin"),
        attach_stdout=_bool(body, "AttachStdout"), attach_stderr=_bool(body, "AttachStderr"),
        detach_keys=_detach_keys(body))
    return json_response({"Id": exec_id}, status=201)


def _instance(request) -> ExecInstance:
    e = _execs.get(request.match_info["id"])
    if e is None:
        raise NoSuchExec(request.match_info["id"])
    return e


async def inspect(request):
    return json_response(_instance(request).inspect())


async def resize(request):
    e = _instance(request)
    h, w = query_int(request.query, "h", 0), query_int(request.query, "w", 0)
    if e.tty_master is not None and h and w:
        fcntl.ioctl(e.tty_master, termios.TIOCSWINSZ, struct.pack("HHHH", h, w, 0, 0))
    return web.Response(status=200)


async def start(request):
    e = _instance(request)
    body = await body_of(request) or {}
    if not isinstance(body, dict):
        raise BadRequest("the exec start config must be a JSON object")
    if e.started:
        return json_response({"message": f"exec {e.id} has already been started"}, status=409)
    detach = _bool(body, "Detach")
    c = await in_thread(containers.get, e.container_id)
    e.started = True
    # The 101 goes out before the process exists: a client reading the
    # headers through a buffer (docker-py) then reads the output from the
    # socket, and none of it hides in that buffer.
    conn = None
    if not detach:
        conn = await streams.Hijacked.start(request, streams.RAW_STREAM if e.tty else streams.MULTIPLEXED_STREAM)
    fds = {}
    try:
        if e.tty:
            stdio = (-1, -1, -1)
        else:
            in_r = -1
            if e.attach_stdin and not detach:
                in_r, fds["in"] = os.pipe()
            fds["out_r"], out_w = os.pipe()
            fds["err_r"], err_w = os.pipe()
            stdio = (in_r, out_w, err_w)
        try:
            child = await in_thread(c.exec_start, e.cmd, env=e.env, user=e.user, workdir=e.workdir, tty=e.tty,
                                    stdio=stdio)
        finally:
            for fd in stdio:
                if fd != -1:
                    os.close(fd)
    except ContainerError as err:
        for fd in fds.values():
            os.close(fd)
        e.exit_code = getattr(err, "exit_status", 126)
        e.done.set()
        if conn is None:
            raise
        # the headers are out: the error goes where the output would have (docker does the same)
        message = f"exec failed: {err}\n".encode()
        await conn.write(message if e.tty else streams.frame(streams.STDERR, message))
        await conn.finish()
        return conn.response
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    e.pid, e.running = child.pid, True
    if e.tty:
        e.tty_master = child.tty_master
        os.set_blocking(child.tty_master, False)
    for fd in fds.values():
        os.set_blocking(fd, False)
    reaper = asyncio.ensure_future(_reap(e, child))
    if detach:
        asyncio.ensure_future(_drain_detached(e, fds, reaper))
        return web.Response(status=200)
    await _pump(e, conn, fds, reaper)
    return conn.response


async def _reap(e: ExecInstance, child):
    """Waits for the exec'd process (our own child) and records its status."""
    try:
        if child.pidfd is not None:
            await streams.wait_readable(child.pidfd)
        while True:
            pid, status = os.waitpid(child.pid, os.WNOHANG)
            if pid:
                break
            await asyncio.sleep(0.01)
        code = os.waitstatus_to_exitcode(status)
        e.exit_code = code if code >= 0 else 128 - code
    finally:
        if child.pidfd is not None:
            os.close(child.pidfd)
        e.running = False
        e.done.set()


async def _copy_out(fd, conn, stream, tty):
    while True:
        data = await streams.read_fd(fd)
        if not data:
            return
        if conn is not None and not await conn.write(data if tty else streams.frame(stream, data)):
            return


async def _copy_in(conn, fd, detach_keys=b""):
    """The client's input to fd until it ends ("ended") or holds the
    detach keys ("detached")."""
    pending = b""
    try:
        while True:
            data = await conn.read()
            if not data:
                return "ended"
            data, pending, detached = split_detach_keys(pending + data, detach_keys)
            if data and not await streams.write_fd(fd, data):
                return "ended"
            if detached:
                return "detached"
    finally:
        if fd is not None and fd != -1:
            try:
                os.close(fd)
            except OSError:
                pass


async def _pump(e, conn, fds, reaper):
    outputs = []
    if e.tty:
        outputs.append(asyncio.ensure_future(_copy_out(e.tty_master, conn, streams.STDOUT, True)))
        writer = asyncio.ensure_future(_copy_in(conn, os.dup(e.tty_master), e.detach_keys)) \
            if e.attach_stdin else None
    else:
        outputs.append(asyncio.ensure_future(_copy_out(fds["out_r"], conn if e.attach_stdout else None,
                                                       streams.STDOUT, False)))
        outputs.append(asyncio.ensure_future(_copy_out(fds["err_r"], conn if e.attach_stderr else None,
                                                       streams.STDERR, False)))
        writer = asyncio.ensure_future(_copy_in(conn, fds.pop("in"))) if "in" in fds else None
    try:
        if e.tty and writer is not None:
            await asyncio.wait({reaper, writer}, return_when=asyncio.FIRST_COMPLETED)
        if e.tty and writer is not None and writer.done() and writer.result() == "detached":
            # docker's detach keys: the client leaves, the command runs on, its output read to nowhere
            for t in outputs:
                t.cancel()
            await conn.finish()
            outputs = [asyncio.ensure_future(_copy_out(e.tty_master, None, streams.STDOUT, True))]
            await reaper
            await asyncio.wait(outputs, timeout=0.5)
            return
        if e.tty:
            # a terminal's master reads EIO only once every holder of the slave is gone
            await reaper
            await asyncio.wait(outputs, timeout=0.5)
        else:
            await asyncio.gather(*outputs)
            await reaper
        await conn.finish()
    finally:
        for t in outputs:
            t.cancel()
        if writer is not None:
            writer.cancel()
        for fd in [fds.get("out_r"), fds.get("err_r"), fds.get("in"), e.tty_master]:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        e.tty_master = None


async def _drain_detached(e, fds, reaper):
    """A detached exec's output goes nowhere (docker discards it too)."""
    try:
        await _pump_detached(e, fds)
        await reaper
    except ContainerError:
        pass


async def _pump_detached(e, fds):
    if e.tty:
        await asyncio.wait([asyncio.ensure_future(_copy_out(e.tty_master, None, 1, True))], timeout=None)
        os.close(e.tty_master)
        e.tty_master = None
        return
    await asyncio.gather(_copy_out(fds["out_r"], None, 1, False), _copy_out(fds["err_r"], None, 2, False))
    for fd in fds.values():
        os.close(fd)
