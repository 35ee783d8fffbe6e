"""pycontain-runc's light operations: everything but create and run works
from the state directory alone (state.py) and imports neither the launcher
nor the config parser, so each such command is a short Python start."""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
from datetime import datetime, timezone

from ..detached import detached_cgroup, release_detached
from ..errors import ContainerError
from ..hooks import run_hooks
from . import state as S
from .state import OCI_VERSION, OciError, StateDir

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


# ---- start ---------------------------------------------------------------------------------

def start(args, log: Log) -> int:
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
        started_hooks(st, log)
    return 0


def started_hooks(st: dict, log: Log) -> None:
    """poststart: the runtime spec logs a failure and goes on."""
    try:
        run_hooks(st.get("hooks", ()), "poststart", S.oci_state(st))
    except ContainerError as e:
        log.write("warning", str(e))


def stopped_hooks(st: dict, log: Log) -> None:
    """poststop, once the container is gone: a failure is logged."""
    try:
        run_hooks(st.get("hooks", ()), "poststop", dict(S.oci_state(st), status="stopped", pid=0))
    except ContainerError as e:
        log.write("warning", str(e))


# ---- the other operations ------------------------------------------------------------------

def state(args, log: Log) -> int:
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
    raise OciError(f'unknown signal "{text}"')


def kill(args, log: Log) -> int:
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


def delete(args, log: Log) -> int:
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
    stopped_hooks(st, log)
    return 0


def list_containers(args, log: Log) -> int:
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


def ps(args, log: Log) -> int:
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


def pause(args, log: Log, freeze=True) -> int:
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


def events(args, log: Log) -> int:
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


def rootless_spec(uid: int, gid: int) -> dict:
    """runc spec --rootless's config.json: a user namespace with the caller's own
    ids as root, no network namespace, the host's /sys bound, no cgroup rules."""
    spec = default_spec()
    linux = spec["linux"]
    del linux["resources"]
    linux["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
    linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "network"] + [{"type": "user"}]
    for m in spec["mounts"]:
        if m["destination"] == "/dev/pts":
            m["options"].remove("gid=5")      # not mapped
        elif m["destination"] == "/sys":      # sysfs needs a network namespace of our own
            m.update(type="none", source="/sys", options=["rbind", *m["options"]])
    return spec


def spec(args, log: Log) -> int:
    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise OciError("File config.json exists. Remove it first.")
    doc = rootless_spec(os.geteuid(), os.getegid()) if args.rootless else default_spec()
    with open(path, "x") as f:
        json.dump(doc, f, indent="\t")
    return 0



def unsupported(args, log: Log) -> int:
    raise OciError(f"{args.command} is not supported by {PROG}")
