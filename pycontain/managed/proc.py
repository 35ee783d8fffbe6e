"""A running container seen through /proc: its namespaces (for exec to
join), the processes of its pid namespace and their figures (top, stats)."""
from __future__ import annotations

import os
import subprocess

from .. import launch_spec
from ..errors import ContainerError, ContainerStateError


_NAMESPACES = (  # the order the launcher joins them: user first, mnt last
    ("user", launch_spec.CLONE_NEWUSER), ("ipc", launch_spec.CLONE_NEWIPC), ("uts", launch_spec.CLONE_NEWUTS),
    ("net", launch_spec.CLONE_NEWNET), ("pid", launch_spec.CLONE_NEWPID), ("cgroup", launch_spec.CLONE_NEWCGROUP),
    ("mnt", launch_spec.CLONE_NEWNS),
)


def namespace_joins(pid):
    """The namespaces of `pid` that differ from ours, as (fd, CLONE_NEW*)."""
    joins, fds = [], []
    try:
        for name, flag in _NAMESPACES:
            theirs = os.stat(f"/proc/{pid}/ns/{name}")
            ours = os.stat(f"/proc/self/ns/{name}")
            if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino):
                continue
            fd = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
            fds.append(fd)
            joins.append((fd, flag))
    except (FileNotFoundError, ProcessLookupError):
        for fd in fds:
            os.close(fd)
        raise ContainerStateError("the container is not running") from None
    return joins, fds


def start_time(pid) -> int | None:
    """Field 22 of /proc/PID/stat (with the pid, names one process for good);
    None when there is no such process. Here, not pycontain.state's, so that
    a join (bundle.spawn_in) does not bring SQLite along."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rindex(b")") + 2:].split()[19])


def pid_namespace_members(init_pid) -> list:
    """Host pids of every process in init_pid's pid namespace."""
    try:
        target = os.stat(f"/proc/{init_pid}/ns/pid").st_ino
    except OSError:
        return []
    members = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.stat(f"/proc/{p}/ns/pid").st_ino == target:
                    members.append(int(p))
            except OSError:
                pass
    return sorted(members)


def proc_info(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None
    fields = stat.rsplit(b")", 1)[1].split()
    return {"ppid": int(fields[1]), "utime": int(fields[11]), "stime": int(fields[12]),
            "rss": int(fields[21]) * os.sysconf("SC_PAGE_SIZE"), "uid": uid, "cmd": cmd}


def mem_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def net_bytes(pid) -> tuple:
    """(bytes received, bytes sent) on the interfaces of pid's network
    namespace but lo, from /proc/PID/net/dev (docker stats' NET I/O)."""
    rx = tx = 0
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            for line in f.readlines()[2:]:
                name, _, counters = line.partition(":")
                fields = counters.split()
                if name.strip() != "lo" and len(fields) >= 9:
                    rx += int(fields[0])
                    tx += int(fields[8])
    except (OSError, ValueError):
        pass
    return rx, tx


def ps_rows(pids, ps_args) -> dict:
    """docker top CONTAINER [ps OPTIONS]: the host's ps with those options,
    its rows kept for the given pids (as dockerd does)."""
    wanted = {str(p) for p in pids}
    r = subprocess.run(["ps", *ps_args], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise ContainerError(f"ps: {(r.stderr.strip() or 'failed').splitlines()[0]}")
    lines = r.stdout.splitlines()
    titles = lines[0].split() if lines else []
    if "PID" not in titles:
        raise ContainerError("Couldn't find PID field in ps output")
    at = titles.index("PID")
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > at and fields[at] in wanted:
            rows.append(fields)
    return {"Titles": titles, "Processes": rows}
