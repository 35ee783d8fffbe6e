"""What this machine offers containers: kernel, cgroup layout, namespaces."""
import os
import platform

from ._paths import default_root

NAMESPACES = ("mnt", "pid", "uts", "ipc", "net", "user", "cgroup")


def cgroup_layout() -> str:
    """'unified' (cgroup v2 only), 'hybrid' (v1 controllers plus a v2 tree) or 'legacy' (v1)."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return "unified"
    if os.path.exists("/sys/fs/cgroup/unified/cgroup.controllers"):
        return "hybrid"
    return "legacy"


def describe() -> dict:
    namespaces = {n: os.path.exists(f"/proc/self/ns/{n}") for n in NAMESPACES}
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            namespaces["user"] = namespaces["user"] and int(f.read()) > 0
    except (OSError, ValueError):
        pass
    try:
        with open("/proc/filesystems") as f:
            overlay = any(line.split()[-1] == "overlay" for line in f if line.strip())
    except OSError:
        overlay = False
    return {
        "kernel": platform.release(),
        "arch": platform.machine(),
        "cgroup_layout": cgroup_layout(),
        "namespaces": namespaces,
        "overlay": overlay,
        "root": str(default_root()),
    }
