"""The runtime's state directory: one directory per container under --root,
holding state.json, a lock, and (until start) the socket of the process that
keeps the created container waiting.

Every command works from this directory alone: the container's process is its
caller's child, not ours, so liveness is read from /proc (pid and start time,
a zombie counts as stopped) and never from a wait.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from datetime import datetime, timezone

from ..errors import ContainerError
from ..hooks import OCI_VERSION

DEFAULT_ROOT = "/run/pycontain-runc"


def default_root(rootless: bool) -> str:
    """runc's choice: /run for root, the user's runtime directory when rootless."""
    if not rootless:
        return DEFAULT_ROOT
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if not xdg:
        raise OciError("rootless: XDG_RUNTIME_DIR is not set; give the state directory with --root")
    return os.path.join(xdg, "pycontain-runc")
ID_RE = re.compile(r"^[\w+\-.]+$")       # runc's rule for container ids
START_SOCKET = "start.sock"


class OciError(ContainerError):
    """A refused operation: one line for the caller, exit status 1."""


def check_id(cid: str) -> str:
    if not cid or not ID_RE.match(cid) or cid in (".", ".."):
        raise OciError(f"invalid id format: {cid}")
    return cid


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat, or None when no such process (or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class StateDir:
    """One container's directory; `with` holds its lock (serialises commands)."""

    def __init__(self, root: str, cid: str):
        self.root = root
        self.id = check_id(cid)
        self.path = os.path.join(root, cid)
        self._lock_fd = None

    def exists(self) -> bool:
        return os.path.isfile(os.path.join(self.path, "state.json"))

    def make(self):
        """The directory of a new container, locked; refused when the id is taken."""
        os.makedirs(self.root, 0o700, exist_ok=True)
        try:
            os.mkdir(self.path, 0o700)
        except FileExistsError:
            raise OciError("container with given ID already exists") from None
        self.lock()

    def lock(self):
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise OciError("container does not exist") from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lock_fd = fd
        if not os.path.isdir(self.path):     # deleted while we waited
            self.unlock()
            raise OciError("container does not exist")

    def unlock(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def close_lock_in_child(self):
        """A forked process must not keep the lock (flock belongs to the open file)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self):
        if self._lock_fd is None:
            self.lock()
        return self

    def __exit__(self, *exc):
        self.unlock()

    def load(self) -> dict:
        try:
            with open(os.path.join(self.path, "state.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            raise OciError("container does not exist") from None
        except ValueError:
            raise OciError(f"container {self.id}: its state file is damaged") from None

    def save(self, state: dict):
        tmp = os.path.join(self.path, "state.json.tmp")
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.rename(tmp, os.path.join(self.path, "state.json"))

    def remove(self):
        self.unlock()
        shutil.rmtree(self.path, ignore_errors=True)

    @property
    def start_socket(self) -> str:
        return os.path.join(self.path, START_SOCKET)


def status(state: dict) -> str:
    """created | running | paused | stopped, as the OCI runtime spec names them."""
    pid = state.get("pid") or 0
    if not pid or process_start_time(pid) != state.get("pid_start"):
        return "stopped"
    if not state.get("started"):
        return "created"
    return "paused" if state.get("paused") else "running"


def oci_state(state: dict) -> dict:
    """The runtime-spec state plus runc's rootfs, created and owner."""
    st = status(state)
    out = {
        "ociVersion": OCI_VERSION,
        "id": state["id"],
        "pid": state["pid"] if st != "stopped" else 0,
        "status": st,
        "bundle": state["bundle"],
        "rootfs": state["rootfs"],
        "created": state["created"],
        "owner": "",
    }
    if state.get("annotations"):
        out["annotations"] = state["annotations"]
    return out


def all_ids(root: str) -> list:
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    return [n for n in names if ID_RE.match(n) and os.path.isfile(os.path.join(root, n, "state.json"))]


def wait_stopped(state: dict, timeout: float) -> bool:
    end = time.monotonic() + timeout
    delay = 0.001
    while status(state) != "stopped":
        if time.monotonic() > end:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True
