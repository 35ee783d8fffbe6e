"""pycontain-runc: runc's command line over pycontain's launcher.

containerd's shim, conmon and dockerd call an OCI runtime binary with runc's
flags. This door reads a bundle's config.json once into a ContainerConfig
(config.container_config_from_oci) and calls the library; the state of each
container lives in --root (state.py).

create/start: the caller (containerd's shim, conmon) is a child subreaper and
waits on the pid it reads from --pid-file, so the container's process must end
up as the caller's child, with nothing of ours in between. `create` forks a
small waiting process that creates the container (the launcher's
"created" state: namespaces, cgroup and mounts made, the command not yet
executed) and then waits on a socket in the state directory; `create` itself
returns, so the waiting process and the container become children of the
caller's subreaper. `start` connects to that socket; the waiting process
releases the container, reports that the command was executed, and exits
without reaping it: the container is re-parented to the caller, which reaps
it and reads its exit status, as with runc.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import sys
from datetime import datetime, timezone

from .. import __version__
from ..bundle import MOUNT_FLAGS, MOUNT_WORDS, NAMESPACE_FLAGS
from ..config import OCI_VERSION, container_config_from_oci
from ..container import Container, detached_cgroup, release_detached
from ..errors import ContainerError
from ..security import capabilities
from . import state as S
from .state import OciError, StateDir

PROG = "pycontain-runc"


# ---- logging: runc's text and json formats -----------------------------------------------

class Log:
    def __init__(self, path=None, fmt="text", debug=False):
        self.path, self.fmt, self.debug_on = path, fmt, debug

    def write(self, level: str, msg: str):
        if not self.path:
            return
        t = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if self.fmt == "json":
            line = json.dumps({"level": level, "msg": msg, "time": t})
        else:
            line = f'time="{t}" level={level} msg="{msg}"'
        try:
            with open(self.path, "a") as f:
                f.write(line + "\n")
        except OSError:
            pass

    def debug(self, msg):
        if self.debug_on:
            self.write("debug", msg)

    def error(self, msg):
        """Exactly one error line: containerd reports the last one, podman reads one object."""
        self.write("error", msg)
        print(msg, file=sys.stderr)


# ---- arguments ------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="An OCI runtime with runc's command line, on pycontain.")
    p.add_argument("--root", default=S.DEFAULT_ROOT, help="the state directory (default %(default)s)")
    p.add_argument("--log", default=None, help="write errors (and with --debug, more) to this file")
    p.add_argument("--log-format", default="text", choices=("text", "json"))
    p.add_argument("--debug", action="store_true")
    p.add_argument("--systemd-cgroup", action="store_true", help="refused: cgroupfs only")
    p.add_argument("--rootless", default="auto", choices=("true", "false", "auto"))
    p.add_argument("--criu", default=None, help=argparse.SUPPRESS)
    p.add_argument("-v", "--version", action="store_true")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def cmd(name, help_, *args):
        sp = sub.add_parser(name, help=help_)
        for a in args:
            sp.add_argument(a)
        return sp

    def create_flags(sp):
        sp.add_argument("-b", "--bundle", default=".")
        sp.add_argument("--pid-file")
        sp.add_argument("--console-socket")
        sp.add_argument("--no-pivot", action="store_true")
        sp.add_argument("--no-new-keyring", action="store_true")
        sp.add_argument("--preserve-fds", type=int, default=0)
        sp.add_argument("id")

    create_flags(cmd("create", "create a container, its command waiting for start"))
    sp = cmd("run", "create and start a container; without --detach wait for it")
    sp.add_argument("-d", "--detach", action="store_true")
    create_flags(sp)
    cmd("start", "run the command of a created container", "id")
    cmd("state", "print the state of a container as JSON", "id")
    sp = cmd("kill", "send a signal to the container's init (default SIGTERM)", "id")
    sp.add_argument("signal", nargs="?", default="SIGTERM")
    sp.add_argument("-a", "--all", action="store_true")
    sp = cmd("delete", "delete a stopped container's state and cgroup", "id")
    sp.add_argument("-f", "--force", action="store_true")
    sp = cmd("list", "list containers")
    sp.add_argument("-f", "--format", default="table", choices=("table", "json"))
    sp.add_argument("-q", "--quiet", action="store_true")
    sp = cmd("ps", "list the container's processes", "id")
    sp.add_argument("-f", "--format", default="table", choices=("table", "json"))
    sp.add_argument("ps_args", nargs="*")
    cmd("pause", "freeze every process of the container", "id")
    cmd("resume", "thaw a paused container", "id")
    sp = cmd("events", "container statistics (--stats)", "id")
    sp.add_argument("--stats", action="store_true")
    sp.add_argument("--interval", default="5s")
    sp = cmd("spec", "write a default config.json")
    sp.add_argument("-b", "--bundle", default=".")
    sp.add_argument("--rootless", action="store_true")
    cmd("features", "what this runtime supports, as JSON")
    for name in ("exec", "update", "checkpoint", "restore"):
        sp = sub.add_parser(name, help=f"{name} (not supported)")
        sp.add_argument("rest", nargs=argparse.REMAINDER)
    return p


# ---- create / start ------------------------------------------------------------------------

def _load_config(bundle: str):
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
    return container_config_from_oci(spec, bundle)


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


def _record(sd: StateDir, cfg, pid: int, pid_start: int, held: dict, started: bool) -> dict:
    return {
        "id": sd.id, "pid": pid, "pid_start": pid_start, "bundle": cfg.bundle.bundle, "rootfs": cfg.rootfs,
        "created": S.now_rfc3339(), "annotations": dict(cfg.bundle.annotations), "held": held,
        "started": started, "paused": False,
    }


def _create(args, log: Log, detach_start=False) -> int:
    cfg = _load_config(os.path.abspath(args.bundle))
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
        pid, pid_start, held = report[2:].split(b" ", 2)
        sd.save(_record(sd, cfg, int(pid), int(pid_start), json.loads(held), started=False))
        if args.pid_file:
            _write_pid_file(args.pid_file, int(pid))
    except BaseException:
        sd.remove()
        raise
    sd.unlock()
    log.debug(f"created {sd.id}: pid {pid.decode()}")
    if detach_start:
        return _start(args, log)
    return 0


def _hold(sd: StateDir, cfg, args, report_w: int, log: Log):
    """The waiting process: creates the container, reports, waits for start."""
    status = 1
    try:
        c = Container(config=cfg, id=sd.id, remove=False, cgroup=True, survive_parent=True)
        try:
            c.create()
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
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        os.chdir(sd.path)          # a relative name: the state path may be longer than sun_path
        srv.bind(S.START_SOCKET)
        os.chdir("/")
        srv.listen(4)
        held = c.host_record()
        pid_start = S.process_start_time(c.pid)
        # nothing of ours keeps the caller's stdio open: it waits for EOF on create's output
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        _report(report_w, f"P {c.pid} {pid_start} {json.dumps(held)}")
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


def _start(args, log: Log) -> int:
    with StateDir(args.root, args.id) as sd:
        st = sd.load()
        status = S.status(st)
        if status == "stopped":
            raise OciError("cannot start a container that has stopped")
        if status != "created":
            raise OciError("cannot start an already running container")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.chdir(sd.path)
                s.connect(S.START_SOCKET)
            finally:
                os.fchdir(cwd)
                os.close(cwd)
            s.sendall(b"start")
            reply = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
        except OSError as e:
            raise OciError(f"cannot start container {sd.id}: {e.strerror}") from None
        finally:
            s.close()
        if reply != b"ok":
            raise OciError(reply[2:].decode(errors="replace") or f"container {sd.id} could not be started")
        st["started"] = True
        sd.save(st)
        try:
            os.unlink(sd.start_socket)
        except FileNotFoundError:
            pass
    return 0


def _run(args, log: Log) -> int:
    if args.detach:
        return _create(args, log, detach_start=True)
    cfg = _load_config(os.path.abspath(args.bundle))
    if cfg.bundle.terminal and not args.console_socket:
        raise OciError("process.terminal needs --console-socket (or run without a terminal)")
    sd = StateDir(args.root, args.id)
    sd.make()
    c = None
    try:
        c = Container(config=cfg, id=sd.id, remove=True, cgroup=True)
        c.create()
        if c.tty_master is not None:
            _send_console(args.console_socket, c.tty_master)
            os.close(c.tty_master)
        sd.save(_record(sd, cfg, c.pid, S.process_start_time(c.pid), c.host_record(), started=False))
        if args.pid_file:
            _write_pid_file(args.pid_file, c.pid)
        c.start()
        st = sd.load()
        st["started"] = True
        sd.save(st)
        sd.unlock()
        rc = c.wait()
    except BaseException:
        if c is not None:
            c.remove()
        sd.remove()
        raise
    sd.remove()
    return 128 - rc if rc < 0 else rc


# ---- the other operations ------------------------------------------------------------------

def _state(args, log: Log) -> int:
    with StateDir(args.root, args.id) as sd:
        st = sd.load()
    print(json.dumps(S.oci_state(st), indent=2))
    return 0


def parse_signal(text: str) -> int:
    t = text.strip().upper()
    if t.isdigit():
        n = int(t)
        if 0 < n < signal.NSIG:
            return n
    else:
        name = t if t.startswith("SIG") else "SIG" + t
        sig = getattr(signal.Signals, name, None) if name in signal.Signals.__members__ else None
        if sig is not None:
            return int(sig)
    raise OciError(f"unknown signal {text!r}")


def _kill(args, log: Log) -> int:
    sig = parse_signal(args.signal)
    with StateDir(args.root, args.id) as sd:
        st = sd.load()
        status = S.status(st)
        if status == "stopped":
            raise OciError("container not running")
        if args.all:
            cg = detached_cgroup(st["held"])
            pids = cg.pids() if cg is not None else [st["pid"]]
        else:
            pids = [st["pid"]]
        for pid in pids:
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                continue
            try:
                if pid == st["pid"] and S.process_start_time(pid) != st["pid_start"]:
                    continue      # the pid was reused after the container ended
                signal.pidfd_send_signal(fd, sig)
            except ProcessLookupError:
                pass
            finally:
                os.close(fd)
    return 0


def _delete(args, log: Log) -> int:
    sd = StateDir(args.root, args.id)
    try:
        sd.lock()
    except OciError:
        if args.force:
            return 0        # runc: delete --force of a missing container is not an error
        raise
    st = sd.load()
    status = S.status(st)
    if status in ("running", "paused") and not args.force:
        sd.unlock()
        raise OciError(f"cannot delete container {sd.id} that is not stopped: {status}")
    if status != "stopped":
        # created (runc deletes it without --force), or forced: kill it
        cg = detached_cgroup(st["held"])
        if cg is not None:
            if status == "paused":
                cg.thaw()
            cg.kill_all()
        else:
            try:
                os.kill(st["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not S.wait_stopped(st, 10):
            sd.unlock()
            raise OciError(f"container {sd.id} did not stop")
    release_detached(st["held"])
    sd.remove()
    return 0


def _list(args, log: Log) -> int:
    states = []
    for cid in S.all_ids(args.root):
        try:
            with StateDir(args.root, cid) as sd:
                states.append(S.oci_state(sd.load()))
        except OciError:
            continue     # deleted meanwhile
    if args.quiet:
        for s in states:
            print(s["id"])
    elif args.format == "json":
        print(json.dumps(states))
    else:
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"]) for s in states]
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        for r in rows:
            print("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return 0


def _running_cgroup(args):
    with StateDir(args.root, args.id) as sd:
        st = sd.load()
    if S.status(st) == "stopped":
        raise OciError("container not running")
    cg = detached_cgroup(st["held"])
    if cg is None:
        raise OciError(f"container {args.id} has no cgroup")
    return cg, st


def _ps(args, log: Log) -> int:
    cg, _ = _running_cgroup(args)
    pids = sorted(cg.pids())
    if args.format == "json":
        print(json.dumps(pids))
        return 0
    print(f"{'PID':>7} CMD")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        print(f"{pid:>7} {cmd}")
    return 0


def _pause(args, log: Log, freeze=True) -> int:
    with StateDir(args.root, args.id) as sd:
        st = sd.load()
        status = S.status(st)
        if status == "stopped":
            raise OciError("container not running")
        if freeze and status != "running":
            raise OciError(f"container not running: {status}")
        if not freeze and status != "paused":
            raise OciError("container not paused")
        cg = detached_cgroup(st["held"])
        if cg is None:
            raise OciError(f"container {sd.id} has no cgroup to freeze")
        if freeze:
            cg.freeze()
        else:
            cg.thaw()
        st["paused"] = freeze
        sd.save(st)
    return 0


def _events(args, log: Log) -> int:
    if not args.stats:
        raise OciError("events: only --stats is supported")
    cg, _ = _running_cgroup(args)
    s = cg.stats()
    data = {
        "cpu": {"usage": {"total": s.cpu_usage_ns or 0, "user": s.cpu_user_ns or 0, "kernel": s.cpu_system_ns or 0}},
        "memory": {"usage": {"usage": s.memory_current or 0, "max": s.memory_peak or 0,
                             "limit": s.memory_limit or 0, "failcnt": s.memory_failcnt or 0}},
        "pids": {"current": s.pids_current or 0, "limit": s.pids_limit or 0},
    }
    print(json.dumps({"type": "stats", "id": args.id, "data": data}))
    return 0


def default_spec() -> dict:
    """runc spec's config.json (a terminal, a read-only rootfs, sh)."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                            "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


def _spec(args, log: Log) -> int:
    if args.rootless:
        raise OciError("spec --rootless: rootless containers are not supported by pycontain-runc yet")
    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise OciError("File config.json exists. Remove it first.")
    with open(path, "x") as f:
        json.dump(default_spec(), f, indent="\t")
    return 0


def _features(args, log: Log) -> int:
    print(json.dumps({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": [],
        "mountOptions": sorted(set(MOUNT_FLAGS) | (MOUNT_WORDS - {"remount", "tmpcopyup", "rro", "rrw"})),
        "linux": {
            "namespaces": sorted(NAMESPACE_FLAGS),
            "capabilities": ["CAP_" + n for n in capabilities.NAMES[: capabilities.last_cap() + 1]],
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": True},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"io.github.pycontain.version": __version__},
    }, indent=2))
    return 0


def _unsupported(args, log: Log) -> int:
    raise OciError(f"{args.command} is not supported by {PROG}")


COMMANDS = {
    "create": _create, "start": _start, "run": _run, "state": _state, "kill": _kill, "delete": _delete,
    "list": _list, "ps": _ps, "pause": _pause, "resume": lambda a, log: _pause(a, log, freeze=False),
    "events": _events, "spec": _spec, "features": _features,
    "exec": _unsupported, "update": _unsupported, "checkpoint": _unsupported, "restore": _unsupported,
}


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    log = Log(args.log, args.log_format, args.debug)
    if args.version:
        print(f"{PROG} version {__version__}\nspec: {OCI_VERSION}")
        return 0
    if not args.command:
        _parser().print_help(sys.stderr)
        return 1
    try:
        if args.systemd_cgroup:
            raise OciError("--systemd-cgroup is not supported: pycontain-runc manages cgroups itself (cgroupfs)")
        if args.rootless == "true" or (args.rootless == "auto" and os.geteuid() != 0):
            raise OciError("rootless containers are not supported by pycontain-runc yet")
        return COMMANDS[args.command](args, log)
    except (ContainerError, OSError) as e:
        log.error(str(e) if isinstance(e, ContainerError) or not e.strerror else f"{e.strerror}: {e.filename or ''}")
        return 1


def entry():
    sys.exit(main())
