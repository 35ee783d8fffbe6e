"""What this machine offers containers: kernel, cgroup layout, namespaces."""
import os
import platform

from . import fuse_overlayfs
from ._paths import default_root
from .errors import ConfigError

NAMESPACES = ("mnt", "pid", "uts", "ipc", "net", "user", "cgroup")


def cgroup_layout() -> str:
    """'unified (...)', 'hybrid (...)', 'legacy (...)' or 'none (...)': the kind, the
    controllers and the driver pycontain uses (pycontain/cgroups)."""
    from .cgroups import cgroup_layout as describe_layout
    return describe_layout()


def rootless_cgroups() -> str:
    """Whether a user who is not root gets cgroups here, and where (pycontain/cgroups/delegation.py)."""
    from . import cgroups
    from .cgroups import delegation
    try:
        return delegation.describe(cgroups.layout())
    except OSError as e:
        return f"unknown ({e.strerror})"


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
    try:  # what a container started here now gets
        requested = fuse_overlayfs.requested_driver(None)
        driver = fuse_overlayfs.driver_for(requested, rootless=os.geteuid() != 0)
        storage = driver if requested == driver else f"{driver} ({requested})"
    except ConfigError as e:
        storage = f"none: {e}"
    return {
        "kernel": platform.release(),
        "arch": platform.machine(),
        "cgroup_layout": cgroup_layout(),
        "rootless_cgroups": rootless_cgroups() if os.geteuid() != 0 else None,
        "namespaces": namespaces,
        "overlay": overlay,
        "storage_driver": storage,
        "root": str(default_root()),
    }
