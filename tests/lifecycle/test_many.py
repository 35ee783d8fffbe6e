"""100 detached containers with limits, all running at once, then removed,
leave nothing behind (issue 17: scale). bench/bench_scale.py times the same
thing and ps -a over their records."""
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from pycontain import containers
from pycontain.state import process_start_time

from .conftest import monitor_pids, wait_for

N = 100
LIMITS = {"memory": "64m", "cpus": 0.5, "pids_limit": 64}
# what each container's own cgroups say: cgroup v1's files, or v2's
WANT_V1 = {"memory.limit_in_bytes": str(64 << 20), "pids.max": "64", "cpu.cfs_quota_us": "50000"}
WANT_V2 = {"memory.max": str(64 << 20), "pids.max": "64", "cpu.max": "50000 100000"}


def _own_cgroup_dirs() -> set:
    """Every cgroup directory below the ones this process is in (on a shared
    machine others' appear too: the test compares only those naming our ids)."""
    found = set()
    for line in open("/proc/self/cgroup"):
        _hid, ctrls, path = line.rstrip("\n").split(":", 2)
        name = ctrls.replace("name=", "") or "unified"
        base = f"/sys/fs/cgroup/{name}{path}"
        if os.path.isdir(base):
            for dirpath, _dirs, _files in os.walk(base):
                found.add(dirpath)
    return found


def _limits_of(dirs, want) -> dict:
    """{file: content} of the files of `want` found in a container's cgroup directories."""
    out = {}
    for d in dirs:
        for f in want:
            if os.path.exists(os.path.join(d, f)):
                with open(os.path.join(d, f)) as fh:
                    out[f] = fh.read().strip()
    return out


@pytest.mark.slow
def test_hundred_detached_containers_with_limits_at_once_leave_nothing(busybox, managed, store_root):

    def start(i):
        return containers.run(rootfs=str(busybox), command=["sleep", "600"], name=f"many{i}", network="none",
                              **LIMITS)

    with ThreadPoolExecutor(8) as pool:
        started = list(pool.map(start, range(N)))
    records = [c.reload().record for c in started]
    assert all(r.state == "running" for r in records)
    assert len(monitor_pids(store_root)) == N
    assert len(containers.list()) == N
    # every one in cgroups of its own, with its limits, all at once
    cgroups = [r.exec_profile.get("cgroups", ()) for r in records]
    for r, dirs in zip(records, cgroups, strict=True):
        assert dirs and all(r.id in os.path.basename(d) and os.path.isdir(d) for d in dirs)
        assert _limits_of(dirs, WANT_V1) == WANT_V1 or _limits_of(dirs, WANT_V2) == WANT_V2, dirs
    processes = [(r.pid, r.pid_start) for r in records] + [(r.monitor_pid, r.monitor_start) for r in records]

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: c.remove(force=True), started))

    assert containers.list(all=True) == []
    assert wait_for(lambda: not monitor_pids(store_root), 20)
    assert wait_for(lambda: all(process_start_time(p) != s for p, s in processes), 20), "processes left"
    assert os.listdir(store_root / "containers") == []
    left = [d for dirs in cgroups for d in dirs if os.path.isdir(d)]
    ids = {r.id for r in records}
    left += [d for d in _own_cgroup_dirs() if any(cid in d for cid in ids)]
    assert left == [], f"cgroups left: {left}"
    # the mounts, descriptors and child processes: the managed fixture's leak check
