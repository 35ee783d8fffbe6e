"""100 detached containers started and removed leave nothing behind."""
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from pycontain import containers

from .conftest import monitor_pids, wait_for

N = 100


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


def _has_cgroups_branch() -> bool:
    # once each container gets cgroups of its own, they must exist while it runs
    import importlib.util
    return importlib.util.find_spec("pycontain.cgroups") is not None


@pytest.mark.slow
def test_hundred_detached_containers_leave_nothing(busybox, managed, store_root):

    def start(i):
        return containers.run(rootfs=str(busybox), command=["sleep", "600"], name=f"many{i}")

    with ThreadPoolExecutor(8) as pool:
        started = list(pool.map(start, range(N)))
    pids = [c.record.pid for c in started]
    monitors = monitor_pids(store_root)
    assert len(monitors) == N and all(c.status == "running" for c in started)
    assert len(containers.list()) == N

    ids = {c.id for c in started}
    assert any(any(cid in d for cid in ids) for d in _own_cgroup_dirs()) or not _has_cgroups_branch()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: c.remove(force=True), started))

    assert containers.list(all=True) == []
    assert wait_for(lambda: not monitor_pids(store_root), 20)
    assert wait_for(lambda: all(not os.path.exists(f"/proc/{p}") for p in pids), 20), "container processes left"
    assert os.listdir(store_root / "containers") == []
    ids = {c.id for c in started}
    left = [d for d in _own_cgroup_dirs() if any(cid in d for cid in ids)]
    assert left == [], f"cgroups left: {left}"
