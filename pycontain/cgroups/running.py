"""A running container's cgroups, found from its init's /proc/PID/cgroup:
joining them (exec), freezing them (pause) and reading their figures (stats).

Only cgroups the container does not share with us count as its own: a
container without a cgroup of its own is never frozen, and exec'd processes
only move into cgroups that are the container's.
"""
from __future__ import annotations

import os

from ..errors import ContainerError
from .base import Cgroup, layout
from .v1 import V1Cgroup
from .v2 import V2Cgroup


def _lines(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                hid, controllers, path = line.rstrip("\n").split(":", 2)
                out[(hid, controllers)] = path
    except OSError:
        pass
    return out


def _mounts():
    """{controllers as in /proc/PID/cgroup: mount point} for v1 and v2."""
    mounts = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _src, opts = (right.split() + ["", "", ""])[:3]
            point = left.split()[4]
            if fstype == "cgroup2":
                mounts.setdefault("", point)
            elif fstype == "cgroup":
                ctrls = [o for o in opts.split(",") if o not in ("rw", "ro", "nosuid", "nodev", "noexec",
                                                                 "relatime", "clone_children")
                         and not o.startswith(("release_agent", "xattr"))]
                mounts.setdefault(",".join(ctrls), point)
    return mounts


def own_cgroups(pid) -> list:
    """[(controllers, directory)] of every cgroup the process is in and we
    are not: a container's own cgroups, found the one way, from its init's
    /proc/PID/cgroup and our mount table ("" is the cgroup v2 hierarchy)."""
    theirs, ours = _lines(pid), _lines("self")
    mounts = None
    found = []
    for key, path in theirs.items():
        if ours.get(key) == path:
            continue
        if mounts is None:
            mounts = _mounts()
        point = mounts.get(key[1])
        if point is not None:
            found.append((key[1], f"{point}{path}"))
    return found


def procs_fds(pid) -> list:
    """cgroup.procs of each of the container's own cgroups: exec'd processes
    join them (limits, accounting, freezer)."""
    fds = []
    for _ctrls, d in own_cgroups(pid):
        try:
            fds.append(os.open(f"{d}/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC))
        except OSError:
            pass
    return fds


def _freezer_state_file(rec) -> str:
    """The container's own v1 freezer cgroup (or v2 cgroup.freeze). Pausing
    needs a cgroup of the container's own: never freeze one we share."""
    for ctrls, d in own_cgroups(rec.pid):
        if "freezer" in ctrls.split(","):
            return f"{d}/freezer.state"
        if ctrls == "" and os.path.exists(f"{d}/cgroup.freeze"):
            return f"{d}/cgroup.freeze"
    raise ContainerError(f"container {rec.short_id} has no freezer cgroup of its own: cannot pause it")


def freeze(rec):
    path = _freezer_state_file(rec)
    with open(path, "w") as f:
        f.write("FROZEN" if path.endswith("freezer.state") else "1")


def thaw(rec):
    try:
        path = _freezer_state_file(rec)
    except ContainerError:
        return
    with open(path, "w") as f:
        f.write("THAWED" if path.endswith("freezer.state") else "0")


def _read_int(path):
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        return int(text.split()[0])
    except ValueError:
        return None


def figures(pid) -> dict:
    """Memory, limit, CPU time and pids from the cgroups of a running
    container (v1: one per hierarchy; v2: one)."""
    out = {}
    for _ctrls, d in own_cgroups(pid):
        if os.path.exists(f"{d}/memory.usage_in_bytes"):          # v1 memory
            out["memory_usage"] = _read_int(f"{d}/memory.usage_in_bytes")
            out["memory_limit"] = _read_int(f"{d}/memory.limit_in_bytes")
        elif os.path.exists(f"{d}/memory.current"):               # v2
            out["memory_usage"] = _read_int(f"{d}/memory.current")
            out["memory_limit"] = _read_int(f"{d}/memory.max")
        if os.path.exists(f"{d}/cpuacct.usage"):
            out["cpu_ns"] = _read_int(f"{d}/cpuacct.usage")
        elif os.path.exists(f"{d}/cpu.stat") and "cpu_ns" not in out:
            try:
                with open(f"{d}/cpu.stat") as f:
                    usage = dict(line.split() for line in f if line.strip())
                out["cpu_ns"] = int(usage["usage_usec"]) * 1000
            except (OSError, KeyError, ValueError):
                pass
        if os.path.exists(f"{d}/pids.current"):
            out["pids"] = _read_int(f"{d}/pids.current")
    return {k: v for k, v in out.items() if v is not None}


def block_io(pid) -> tuple:
    """(bytes read, bytes written) by the container's own cgroups: v1
    blkio.throttle.io_service_bytes, v2 io.stat (docker stats' BLOCK I/O)."""
    read = written = 0
    for _ctrls, d in own_cgroups(pid):
        try:
            if os.path.exists(f"{d}/blkio.throttle.io_service_bytes"):      # v1
                with open(f"{d}/blkio.throttle.io_service_bytes") as f:
                    for line in f:
                        parts = line.split()
                        if len(parts) == 3 and parts[1] == "Read":
                            read += int(parts[2])
                        elif len(parts) == 3 and parts[1] == "Write":
                            written += int(parts[2])
            elif os.path.exists(f"{d}/io.stat"):                             # v2
                with open(f"{d}/io.stat") as f:
                    for line in f:
                        fields = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
                        read += int(fields.get("rbytes", 0))
                        written += int(fields.get("wbytes", 0))
        except (OSError, ValueError):
            pass
    return read, written


def cgroup_of(pid, name: str) -> Cgroup:
    """The running container's own cgroups (its init's /proc/PID/cgroup) as a
    Cgroup whose limits update() can change. ContainerError when it has none."""
    found = own_cgroups(pid)
    lay = layout()
    if lay.driver == "v2":
        path = next((d for ctrls, d in found if ctrls == ""), None)
        if path is not None:
            return V2Cgroup(name, path, lay.v2[0])
    elif found:
        cg = V1Cgroup(name)
        for ctrls, d in found:
            for ctl in ctrls.split(","):
                if ctl in lay.v1 and not ctl.startswith("name="):
                    cg.dirs[ctl] = d
        if cg.dirs:
            return cg
    raise ContainerError(f"container {name} has no cgroup of its own: its limits cannot be changed")
