"""What every cgroup driver shares: the layout of this machine's
hierarchies, our own cgroups, the Cgroup interface and its errors."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import ContainerError

UNIFIED, HYBRID, LEGACY, NONE = "unified", "hybrid", "legacy", "none"


class CgroupError(ContainerError, OSError):
    """A cgroup could not be created, configured or removed."""

    def __init__(self, err, message):
        super().__init__(err, message)

    def __str__(self):
        return self.strerror


class CgroupNotDelegated(CgroupError):
    """A user who is not root has no cgroup here to make a container's in
    (cgroup v1, or no delegated cgroup v2 subtree)."""


@dataclass(frozen=True)
class Layout:
    """The cgroup hierarchies mounted on this machine, as seen by this process."""

    kind: str                                   # unified | hybrid | legacy | none
    v1: dict = field(default_factory=dict)      # controller -> (mountpoint, mount root)
    v2: tuple | None = None                     # (mountpoint, mount root) of the cgroup2 tree
    v2_controllers: frozenset = frozenset()     # what the cgroup2 tree holds (its root's cgroup.controllers)

    @property
    def driver(self) -> str | None:
        return {UNIFIED: "v2", HYBRID: "v1", LEGACY: "v1"}.get(self.kind)

    def describe(self) -> str:
        if self.kind == UNIFIED:
            return f"unified (cgroup v2 at {self.v2[0]}: {' '.join(sorted(self.v2_controllers)) or 'no controllers'})"
        if self.kind == NONE:
            return "none (no cgroup hierarchy mounted: resource limits unavailable)"
        ctl = ",".join(sorted(c for c in self.v1 if not c.startswith("name=")))
        text = f"{self.kind} (cgroup v1 controllers {ctl}"
        if self.v2:
            held = " ".join(sorted(self.v2_controllers)) or "no controllers"
            text += f"; cgroup v2 at {self.v2[0]} holds {held}"
        return text + "; driver v1)"


def detect_layout(mountinfo="/proc/self/mountinfo") -> Layout:
    v1, v2 = {}, None
    with open(mountinfo) as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields, post = pre.split(), post.split()
            if len(post) < 3 or len(fields) < 5:
                continue
            fstype, mnt_root, mountpoint = post[0], fields[3], _unescape(fields[4])
            if fstype == "cgroup2" and v2 is None:
                v2 = (mountpoint, mnt_root)
            elif fstype == "cgroup":
                for opt in post[2].split(","):
                    if opt in _V1_CONTROLLERS or opt.startswith("name="):
                        v1.setdefault(opt, (mountpoint, mnt_root))
    v2_controllers = frozenset()
    if v2:
        try:
            with open(os.path.join(v2[0], "cgroup.controllers")) as f:
                v2_controllers = frozenset(f.read().split())
        except OSError:
            pass
    real_v1 = [c for c in v1 if not c.startswith("name=")]
    if real_v1:
        kind = HYBRID if v2 else LEGACY
    elif v2:
        kind = UNIFIED
    else:
        kind = NONE
    return Layout(kind, v1, v2, v2_controllers)


_V1_CONTROLLERS = frozenset({"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls",
                             "blkio", "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc"})
_layout: Layout | None = None


def layout() -> Layout:
    """This machine's layout, read once (mounts of /sys/fs/cgroup do not change under us)."""
    global _layout
    if _layout is None:
        _layout = detect_layout()
    return _layout


def cgroup_layout() -> str:
    """One line for `pycontain info`."""
    try:
        return layout().describe()
    except OSError as e:
        return f"unknown ({e.strerror})"


def own_cgroups(path="/proc/self/cgroup") -> dict:
    """This process's cgroup per hierarchy: {'memory': '/a/b', 'cpu': '/', ..., '': '/'} ('' is v2)."""
    out = {}
    with open(path) as f:
        for line in f:
            _, ctls, cgpath = line.rstrip("\n").split(":", 2)
            for c in ctls.split(",") if ctls else [""]:
                out[c] = cgpath
    return out


def hierarchy_path(mount: tuple, cgpath: str) -> str:
    """Directory of cgroup `cgpath` in the hierarchy mounted at mount=(mountpoint, mount root)."""
    mountpoint, root = mount
    if root != "/" and (cgpath == root or cgpath.startswith(root + "/")):
        cgpath = cgpath[len(root):]
    return mountpoint.rstrip("/") + "/" + cgpath.strip("/") if cgpath.strip("/") else mountpoint


@dataclass
class CgroupStats:
    """A snapshot of what the container's processes use. None: the kernel does not say."""

    cpu_usage_ns: int | None = None
    cpu_user_ns: int | None = None
    cpu_system_ns: int | None = None
    cpu_throttled_periods: int | None = None
    memory_current: int | None = None
    memory_peak: int | None = None
    memory_limit: int | None = None
    memory_failcnt: int | None = None
    oom_kills: int | None = None
    pids_current: int | None = None
    pids_peak: int | None = None
    pids_limit: int | None = None
    pids_limit_hits: int | None = None      # forks refused because of pids_limit
    io_read_bytes: int | None = None
    io_write_bytes: int | None = None


class Cgroup:
    """The container's cgroup, in one (v2) or several (v1) hierarchies.

    Made by create(); owned by one container, which calls destroy() exactly
    once, also after a failed launch."""

    version: int
    name: str

    restricts_devices = False
    """True when the container may only use docker's device list (and allow_device()'s)."""

    def allow_device(self, kind: str, major: int, minor: int, perms: str) -> None:
        """Allows one more device (--device): kind "c" or "b", perms of "rwm".
        ConfigError for a bad rule. A no-op when devices are not restricted."""
        raise NotImplementedError

    def update(self, old, new) -> None:
        """Changes the limits in force from Limits `old` to Limits `new` (a
        limit `new` leaves unset goes back to the kernel's default); all or
        nothing. CgroupError with one line when the kernel refuses (e.g. a
        memory limit below what the container uses)."""
        raise NotImplementedError

    def join_fds(self) -> list:
        """Descriptors (O_WRONLY|O_CLOEXEC) for LaunchPlan.cgroup_fds: the child
        writes "0" to each before it mounts anything or execs, which moves it
        (still single-threaded) into the cgroup. v2: cgroup.procs; v1: `tasks`
        (see V1Cgroup.join_fds). Closed by destroy() or close_fds()."""
        raise NotImplementedError

    def close_fds(self):
        """Closes the descriptors join_fds()/dir_fd() opened (once the child joined)."""
        raise NotImplementedError

    def dir_fd(self) -> int:
        """v2: an O_RDONLY|O_DIRECTORY descriptor of the cgroup, for clone3(CLONE_INTO_CGROUP)."""
        raise CgroupError(95, "a cgroup directory descriptor needs cgroup v2")

    def mount_specs(self, read_only=True) -> list:
        """The container's /sys/fs/cgroup (pycontain._launch.MountSpec list), to be
        mounted inside its cgroup namespace so it shows the container's own cgroup as root."""
        raise NotImplementedError

    def pids(self) -> list:
        """Every process in the cgroup (host pids)."""
        raise NotImplementedError

    def oom_killed(self) -> bool:
        """True when the kernel killed a process of this cgroup for memory."""
        raise NotImplementedError

    def stats(self) -> CgroupStats:
        raise NotImplementedError

    def freeze(self, timeout=5.0):
        """Stops every process (docker pause); returns when they are all frozen."""
        raise NotImplementedError

    def thaw(self):
        raise NotImplementedError

    def kill_all(self, timeout=5.0):
        """SIGKILLs every process in the cgroup and waits until it is empty."""
        raise NotImplementedError

    def destroy(self, timeout=5.0):
        """kill_all(), then removes every directory this cgroup made. Idempotent."""
        raise NotImplementedError

    @property
    def paths(self) -> list:
        """The cgroup's directories (one per hierarchy on v1)."""
        raise NotImplementedError

    def record(self) -> dict:
        """What reopen() needs to find this cgroup again in another process
        (plain JSON): its directories and the ones it made."""
        raise NotImplementedError


def _unescape(s: str) -> str:
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
