"""Running a command inside a running managed container: the one exec path
(`pycontain exec`, the Engine API's exec, health checks). It joins the
namespaces and cgroups of the container's init and takes its user,
capabilities, no_new_privs and seccomp filter from the record."""
from __future__ import annotations

import os
import selectors
import signal as _signal
import time

from ..cgroups import running as running_cgroup
from ..environment import merge_env, normalize_env
from ..result import ContainerResult
from ..errors import ConfigError, ContainerStateError, ContainerTimeout
from ..state import ContainerRecord, process_alive, process_start_time
from ..users import resolve_user
from .proc import namespace_joins


def spawn_in(rec: ContainerRecord, cmd, *, env=(), user=None, workdir=None, tty=False, stdio=(-1, -1, -1)):
    """Starts cmd inside the running container of rec.
    Returns the launcher's Child: pid (our own child), pidfd, tty_master."""
    # Imported here: the handle and the health checks import this module, and
    # the verbs that only read a container (ps, inspect: its health) never
    # load the C launcher (cffi).
    from .. import _launch

    if rec.state == "paused":
        raise ContainerStateError(f"container {rec.short_id} is paused, unpause the container before exec")
    if rec.state != "running" or not process_alive(rec.pid, rec.pid_start):
        raise ContainerStateError(f"container {rec.short_id} is not running")
    if isinstance(cmd, str):
        raise ConfigError("exec: the command must be a list of strings")
    cmd = [str(a) for a in cmd]
    if not cmd:
        raise ConfigError("exec: no command specified")
    prof = rec.exec_profile
    envp = merge_env(prof.get("env", ()), normalize_env(env))
    uid, gid, groups = prof["uid"], prof["gid"], prof["groups"]
    if user:
        u = resolve_user(user, [f"/proc/{rec.pid}/root"])
        uid, gid, groups = u.uid, u.gid, list(u.groups)
    if workdir is not None and not workdir.startswith("/"):
        raise ConfigError(f"the working directory {workdir!r} is invalid, it needs to be an absolute path")
    joins, fds = namespace_joins(rec.pid)
    cgroup_fds = running_cgroup.procs_fds(rec.pid)
    if process_start_time(rec.pid) != rec.pid_start:  # the init died while we opened its namespaces
        for fd in fds + cgroup_fds:
            os.close(fd)
        raise ContainerStateError(f"container {rec.short_id} is not running")
    plan = _launch.LaunchPlan(
        argv=cmd, envp=envp, path_env=prof.get("path_env"), root_path="", root_source="",
        root_fstype=None, clone_flags=0, joins=joins, loopback_up=False,
        cwd=workdir or prof.get("cwd") or "/", mkdir_cwd=False, uid=uid, gid=gid, groups=groups,
        set_groups=prof.get("set_groups", True),
        capabilities=frozenset(prof["capabilities"]), no_new_privs=prof["no_new_privs"],
        seccomp_bpf=bytes.fromhex(prof["seccomp"]) if prof.get("seccomp") else None,
        stdio=tuple(stdio), tty=tty, cgroup_fds=cgroup_fds, owned_fds=fds + cgroup_fds,
    )
    return _launch.spawn_joined(plan)


def run_in(rec: ContainerRecord, cmd, *, env=(), user=None, workdir=None, stdin=None, timeout=None,
           text=False) -> ContainerResult:
    """Runs cmd in the container of rec to completion; stdout and stderr
    captured; killed after timeout seconds (ContainerTimeout)."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    in_r = in_w = None
    if stdin is not None:
        in_r, in_w = os.pipe()
    try:
        child = spawn_in(rec, cmd, env=env, user=user, workdir=workdir,
                         stdio=(in_r if in_r is not None else -1, out_w, err_w))
    except BaseException:
        for fd in (out_r, err_r, in_w):
            if fd is not None:
                os.close(fd)
        raise
    finally:
        for fd in (out_w, err_w, in_r):
            if fd is not None:
                os.close(fd)
    process = _ExecProcess(child, cmd)
    return process.communicate(out_r, err_r, in_w, stdin, timeout, text)


class _ExecProcess:
    def __init__(self, child, args):
        self.child = child
        self.args = args

    def communicate(self, out_r, err_r, in_w, input_data, timeout, text):
        sel = selectors.DefaultSelector()
        chunks = {out_r: [], err_r: []}
        sel.register(out_r, selectors.EVENT_READ)
        sel.register(err_r, selectors.EVENT_READ)
        view = memoryview(input_data.encode() if isinstance(input_data, str) else (input_data or b""))
        if in_w is not None:
            if view:
                os.set_blocking(in_w, False)
                sel.register(in_w, selectors.EVENT_WRITE)
            else:
                os.close(in_w)
                in_w = None
        end = None if timeout is None else time.monotonic() + timeout
        try:
            while sel.get_map():
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    os.kill(self.child.pid, _signal.SIGKILL)
                    os.waitpid(self.child.pid, 0)
                    if self.child.pidfd is not None:   # a health check's timeout comes back every interval
                        os.close(self.child.pidfd)
                    raise ContainerTimeout(self.args, timeout)
                for key, _ in sel.select(left):
                    fd = key.fileobj
                    if fd == in_w:
                        try:
                            n = os.write(fd, view[:65536])
                        except BrokenPipeError:
                            n = len(view)
                        view = view[n:]
                        if not view:
                            sel.unregister(fd)
                            os.close(fd)
                            in_w = None
                        continue
                    data = os.read(fd, 65536)
                    if data:
                        chunks[fd].append(data)
                    else:
                        sel.unregister(fd)
                        os.close(fd)
        finally:
            sel.close()
            for fd in (out_r, err_r, in_w):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
        _, status = os.waitpid(self.child.pid, 0)
        if self.child.pidfd is not None:
            os.close(self.child.pidfd)
        code = os.waitstatus_to_exitcode(status)
        code = code if code >= 0 else 128 - code
        out, err = b"".join(chunks[out_r]), b"".join(chunks[err_r])
        if text:
            out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        return ContainerResult(self.args, code, out, err)

