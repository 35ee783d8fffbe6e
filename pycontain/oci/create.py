"""pycontain-runc create and run: config.json -> ContainerConfig, once, then
the library's Container (see cli.py for the process model)."""
from __future__ import annotations

import dataclasses
import json
import os
import select
import socket

from .. import __version__
from ..bundle import MOUNT_FLAGS, MOUNT_WORDS, NAMESPACE_FLAGS
from ..config import HOOK_KINDS, container_config_from_oci, limits_json
from ..container import Container
from ..errors import ContainerError
from ..hooks import run_hooks
from ..security import capabilities
from . import ops
from . import state as S
from .ops import Log
from .state import OCI_VERSION, OciError, StateDir


def _load_config(bundle: str, systemd_cgroup=False):
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            spec = json.load(f)
    except FileNotFoundError:
        raise OciError(f"config.json: no such file in the bundle {bundle}") from None
    except OSError as e:
        raise OciError(f"config.json: {e.strerror}") from None
    except (ValueError, RecursionError) as e:
        raise OciError(f"config.json: not valid JSON: {e}") from None
    return container_config_from_oci(spec, bundle, systemd_cgroup=systemd_cgroup)


def _write_pid_file(path: str, pid: int):
    """Atomically, as runc: the caller may read it the moment it exists."""
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.tmp")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def _send_console(sock_path: str, master_fd: int):
    """runc's protocol: connect to the caller's socket and send the
    terminal's master as one SCM_RIGHTS descriptor."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sock_path)
        socket.send_fds(s, [b"/dev/ptmx"], [master_fd])
    finally:
        s.close()


def _record(sd: StateDir, cfg, pid: int, pid_start: int, held: dict, started: bool, seccomp: str = "") -> dict:
    """seccomp: the init's filter (hex), which exec'd processes get too."""
    return {
        "id": sd.id, "pid": pid, "pid_start": pid_start, "bundle": cfg.bundle.bundle, "rootfs": cfg.rootfs,
        "created": S.now_rfc3339(), "annotations": dict(cfg.bundle.annotations), "held": held,
        "started": started, "paused": False, "hooks": [dataclasses.asdict(h) for h in cfg.bundle.hooks],
        "seccomp": seccomp,
        # the limits in force, which `update` changes
        "resources": limits_json(cfg.resources) if cfg.resources is not None else None,
    }


def _seccomp_hex(c: Container) -> str:
    return (c.launch_plan.seccomp_bpf or b"").hex()


def _runtime_hooks(sd: StateDir, cfg):
    """prestart (deprecated, still what dockerd uses) and createRuntime, as
    Container.create's at_mounts: in our namespaces, once the container's
    exist and its mounts are made, before pivot_root and its createContainer
    hooks (the spec's order); a failure fails create. None without any."""
    if not any(h.kind in ("prestart", "createRuntime") for h in cfg.bundle.hooks):
        return None

    def run(pid):
        rec = _record(sd, cfg, pid, S.process_start_time(pid), {}, started=False)
        state = {**S.oci_state(rec), "status": "creating"}
        for kind in ("prestart", "createRuntime"):
            run_hooks(rec["hooks"], kind, state)
    return run


def create(args, log: Log, detach_start=False) -> int:
    cfg = _load_config(os.path.abspath(args.bundle), args.systemd_cgroup)
    if args.preserve_fds:
        raise OciError("--preserve-fds is not supported")
    if cfg.bundle.terminal and not args.console_socket:
        raise OciError("process.terminal needs --console-socket")
    sd = StateDir(args.root, args.id)
    sd.make()
    try:
        report_r, report_w = os.pipe()
        holder = os.fork()
        if holder == 0:     # the waiting process: never returns
            os.close(report_r)
            sd.close_lock_in_child()
            _hold(sd, cfg, args, report_w, log)
        os.close(report_w)
        with os.fdopen(report_r, "rb") as f:
            # one line: until start, the container's process holds a copy of the pipe
            report = f.readline()
        if not report.startswith(b"P "):
            try:
                os.waitpid(holder, 0)
            except ChildProcessError:
                pass
            why = report[2:].decode(errors="replace").strip() or "the container could not be created"
            raise OciError(why)
        pid, pid_start, seccomp, held = report[2:].split(b" ", 3)
        sd.save(_record(sd, cfg, int(pid), int(pid_start), json.loads(held), started=False,
                        seccomp=seccomp.decode().strip("-")))
        if args.pid_file:
            _write_pid_file(args.pid_file, int(pid))
    except BaseException:
        sd.remove()
        raise
    sd.unlock()
    log.debug(f"created {sd.id}: pid {pid.decode()}")
    if detach_start:
        return ops.start(args, log)
    return 0


def _hold(sd: StateDir, cfg, args, report_w: int, log: Log):
    """The waiting process: creates the container, reports, waits for start."""
    status = 1
    try:
        c = Container(config=cfg, id=sd.id, remove=False, cgroup=True, survive_parent=True)
        try:
            c.create(at_mounts=_runtime_hooks(sd, cfg))
        except ContainerError as e:
            _report(report_w, f"E {e}")
            os._exit(1)
        if c.tty_master is not None:
            try:
                _send_console(args.console_socket, c.tty_master)
            except OSError as e:
                c.remove()
                _report(report_w, f"E console socket {args.console_socket}: {e.strerror}")
                os._exit(1)
            os.close(c.tty_master)
        held = c.host_record()
        pid_start = S.process_start_time(c.pid)
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        os.chdir(sd.path)          # a relative name: the state path may be longer than sun_path
        srv.bind(S.START_SOCKET)
        os.chdir("/")
        srv.listen(4)
        # nothing of ours keeps the caller's stdio open: it waits for EOF on create's output
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        _report(report_w, f"P {c.pid} {pid_start} {_seccomp_hex(c) or '-'} {json.dumps(held)}")
        os.close(report_w)
        status = _serve_start(c, srv)
    except BaseException as e:   # noqa: BLE001 - the waiting process must never return into the CLI
        try:
            _report(report_w, f"E {e}")
        except OSError:
            pass
    finally:
        os._exit(status)


def _report(fd: int, line: str):
    os.write(fd, line.replace("\n", " ").encode() + b"\n")


def _serve_start(c: Container, srv: socket.socket) -> int:
    """Waits for `start` (or for the container's death: a kill before start)."""
    while True:
        r, _, _ = select.select([srv, c._pidfd], [], [])
        if c._pidfd in r:
            return 0            # killed while created: the caller reaps it
        conn, _ = srv.accept()
        with conn:
            if conn.recv(16) != b"start":
                continue
            try:
                c.start()
            except ContainerError as e:
                conn.sendall(f"E {e}".encode())
                return 1
            c.detach()          # the caller's from now on: we exit without reaping it
            conn.sendall(b"ok")
            return 0


def run(args, log: Log) -> int:
    if args.detach:
        return create(args, log, detach_start=True)
    cfg = _load_config(os.path.abspath(args.bundle), args.systemd_cgroup)
    if cfg.bundle.terminal and not args.console_socket:
        raise OciError("process.terminal needs --console-socket (or run without a terminal)")
    sd = StateDir(args.root, args.id)
    sd.make()
    c = None
    try:
        c = Container(config=cfg, id=sd.id, remove=True, cgroup=True)
        c.create(at_mounts=_runtime_hooks(sd, cfg))
        if c.tty_master is not None:
            _send_console(args.console_socket, c.tty_master)
            os.close(c.tty_master)
        rec = _record(sd, cfg, c.pid, S.process_start_time(c.pid), c.host_record(), started=False,
                      seccomp=_seccomp_hex(c))
        sd.save(rec)
        if args.pid_file:
            _write_pid_file(args.pid_file, c.pid)
        c.start()
        rec["started"] = True
        sd.save(rec)
        ops.started_hooks(rec, log)
        sd.unlock()
        rc = c.wait()
        ops.stopped_hooks(rec, log)
    except BaseException:
        if c is not None:
            c.remove()
        sd.remove()
        raise
    sd.remove()
    return 128 - rc if rc < 0 else rc


def features(args, log: Log) -> int:
    print(json.dumps({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOK_KINDS),
        "mountOptions": sorted(set(MOUNT_FLAGS) | (MOUNT_WORDS - {"remount", "tmpcopyup", "rro", "rrw"})),
        "linux": {
            "namespaces": sorted(NAMESPACE_FLAGS),
            "capabilities": ["CAP_" + n for n in capabilities.NAMES[: capabilities.last_cap() + 1]],
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": True},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": True}},
        },
        "annotations": {"io.github.pycontain.version": __version__},
    }, indent=2))
    return 0
