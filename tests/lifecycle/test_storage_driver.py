"""Managed containers on the fuse-overlayfs storage driver (forced, as root):
the monitor serves the root, exec joins it, the disk layer survives a
restart, and no fuse-overlayfs process outlives its container."""
import os
import signal

import pytest

from pycontain import containers

from processes import fuse_processes
from .conftest import monitor_pids, wait_for

FUSE = "fuse-overlayfs"

pytestmark = pytest.mark.usefixtures("managed")


def test_managed_container_on_fuse_overlayfs(busybox, store_root):
    c = containers.run(rootfs=str(busybox), command=["sleep", "60"], init=True, storage_driver=FUSE)
    assert c.record.config["storage_driver"] == FUSE
    assert len(fuse_processes(store_root)) == 1
    r = c.exec_run(["sh", "-c", "grep ' / ' /proc/mounts; echo kept > /root/file; stat -c %u /root/file"],
                   text=True)
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert lines[0].startswith("fuse-overlayfs / fuse.fuse-overlayfs ") and lines[1] == "0"
    c.stop(timeout=5)
    assert c.status == "exited"
    assert wait_for(lambda: fuse_processes(store_root) == [])   # reaped by the monitor
    c.start()
    assert c.exec_run(["cat", "/root/file"], text=True).stdout == "kept\n"   # the disk layer, served again
    assert not (busybox / "root" / "file").exists()
    c.remove(force=True)
    assert wait_for(lambda: fuse_processes(store_root) == [])
    assert not (store_root / "containers" / c.id).exists()


def test_fuse_overlayfs_dies_with_a_killed_monitor(busybox, store_root):
    c = containers.run(rootfs=str(busybox), command=["sleep", "60"], init=True, storage_driver=FUSE)
    [fuse] = fuse_processes(store_root)
    [monitor] = monitor_pids(store_root)
    os.kill(monitor, signal.SIGKILL)
    # the container dies with its monitor (PR_SET_PDEATHSIG), fuse-overlayfs with both
    assert wait_for(lambda: _dead(fuse))
    assert wait_for(lambda: c.reload().status == "exited")


def _dead(pid) -> bool:
    """Gone, or a zombie that init has yet to reap (its parent was killed)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
