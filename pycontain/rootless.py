"""Containers for users who are not root: a user namespace and its id maps.

The container's root is the calling user. With a subordinate id range for the
user in /etc/subuid and /etc/subgid and the setuid helpers newuidmap and
newgidmap (Debian: uidmap), ids 1..N of the container map onto that range, so
images with several users work. Without them, the calling user alone is
mapped (to 0) and setgroups is denied, as the kernel requires.
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass

from .errors import ConfigError, LaunchError


@dataclass(frozen=True)
class IdMapping:
    uid: int
    gid: int
    sub_uids: tuple | None   # (start, count) from /etc/subuid, with newuidmap
    sub_gids: tuple | None

    @property
    def allows_setgroups(self) -> bool:
        return self.sub_gids is not None

    def covers(self, uid: int, gid: int) -> bool:
        max_uid = self.sub_uids[1] if self.sub_uids else 0
        max_gid = self.sub_gids[1] if self.sub_gids else 0
        return uid <= max_uid and gid <= max_gid

    def write(self, pid: int) -> None:
        """Runs in the parent while the child waits (LaunchPlan.on_cloned)."""
        try:
            if self.sub_uids and self.sub_gids:
                _helper("newuidmap", pid, self.uid, self.sub_uids)
                _helper("newgidmap", pid, self.gid, self.sub_gids)
                return
            with open(f"/proc/{pid}/setgroups", "w") as f:
                f.write("deny")
            with open(f"/proc/{pid}/uid_map", "w") as f:
                f.write(f"0 {self.uid} 1")
            with open(f"/proc/{pid}/gid_map", "w") as f:
                f.write(f"0 {self.gid} 1")
        except OSError as e:
            raise LaunchError(e.errno or 1, "id map", f"/proc/{pid}") from None


def _helper(name, pid, own, sub):
    r = subprocess.run([name, str(pid), "0", str(own), "1", "1", str(sub[0]), str(sub[1])],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise LaunchError(1, name, r.stderr.strip() or f"exit status {r.returncode}")


def _subordinate(path: str, uid: int, name: str | None):
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[0] in (str(uid), name) and parts[1].isdigit() and parts[2].isdigit():
                    return int(parts[1]), int(parts[2])
    except OSError:
        pass
    return None


_mapping = None


def mapping() -> IdMapping:
    """The calling user's id mapping (computed once per process)."""
    global _mapping
    uid, gid = os.getuid(), os.getgid()
    if _mapping is None or (_mapping.uid, _mapping.gid) != (uid, gid):
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = None
        subu = _subordinate("/etc/subuid", uid, name)
        subg = _subordinate("/etc/subgid", uid, name)
        if not (subu and subg and shutil.which("newuidmap") and shutil.which("newgidmap")):
            subu = subg = None
        _mapping = IdMapping(uid, gid, subu, subg)
    return _mapping


def check_user(m: IdMapping, uid: int, gid: int) -> None:
    if not m.covers(uid, gid):
        if m.sub_uids is None:
            raise ConfigError(
                f"user {uid}:{gid} is not mapped: without a subordinate id range for this user in "
                "/etc/subuid and /etc/subgid (and newuidmap from the uidmap package), a rootless "
                "container can only run as root (0:0)")
        raise ConfigError(f"user {uid}:{gid} is outside the subordinate id range of this user")
