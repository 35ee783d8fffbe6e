"""One entry of the launcher's mount list (struct pc_mount) and the mount(2)
flags it takes. Apart from _launch (which re-exports them) so that the code
that only describes mounts (cgroups' /sys/fs/cgroup, bundle, container
defaults) does not load the C extension: an OCI `state` or `delete` reaches
cgroups and must stay close to Python's own start-up."""
from __future__ import annotations

from dataclasses import dataclass

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE, MS_SLAVE = 4096, 16384, 1 << 18, 1 << 19
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
