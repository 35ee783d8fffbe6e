"""The launch plan's plain values: the clone(2) and mount(2) flags, and one
entry of its mount list (struct pc_mount). Apart from _launch (which
re-exports them) so that the code that only names namespaces or describes
mounts (cgroups' /sys/fs/cgroup, a running container's namespaces) does not
load the C extension: an OCI `state` or `delete`, and `ps`, `stop` or `rm`,
must stay close to Python's own start-up."""
from __future__ import annotations

from dataclasses import dataclass

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE, MS_SLAVE, MS_SHARED = 4096, 16384, 1 << 18, 1 << 19, 1 << 20
MS_STRICTATIME = 1 << 24

MKDIR_NONE, MKDIR_DIR, MKDIR_FILE = 0, 1, 2


@dataclass(frozen=True)
class MountSpec:
    """One entry of the plan's mount list (struct pc_mount)."""

    source: str | None
    target: str
    fstype: str | None = None
    data: str | None = None
    flags: int = 0
    remount: int = 0
    mkdir: int = MKDIR_DIR
    tree_fd: int = -1           # a detached tree of bind_tree(), attached at target (its owner closes it)
