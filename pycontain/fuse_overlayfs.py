"""The fuse-overlayfs storage driver: the container's copy-on-write root served
by a fuse-overlayfs process, for rootless containers on kernels before 5.11
(which refuse overlayfs inside a user namespace), or when asked for.

Storage drivers, by the names docker and podman use:

- "overlay" (docker's "overlay2" is the same): the kernel's overlayfs, mounted
  by the launcher inside the container's mount namespace.
- "fuse-overlayfs": the same layers joined in user space (Debian package
  fuse-overlayfs), as podman's mount_program and docker's rootless driver do.
- "auto" (the default): overlay as root or on Linux 5.11 and newer, else
  fuse-overlayfs when it is installed.

How a root is served (the kernel decides the order; see src/nsexec.h,
root_device):

1. The container's first process opens /dev/fuse inside its own user
   namespace (the kernel refuses a FUSE mount made with a device opened in
   another one), mounts the FUSE root on an empty host directory in its own
   mount namespace, sends the device descriptor to the parent and waits.
2. The parent starts fuse-overlayfs on that descriptor ("/dev/fd/0": libfuse
   takes an already mounted device that way) through the same launcher: in
   the container's user namespace, so that it is root there and the ids it
   sees and sets are the container's, and in a mount namespace of its own made
   from the host's, where it can reach the layers and the writable layer lives.
   A "memory" writable layer is a tmpfs that exists only in that namespace: it
   vanishes with the process, nothing is written on the host.
3. The parent lets the container go on; its first file access waits until
   fuse-overlayfs answers.

When the container's mount namespace dies the kernel aborts the connection
and fuse-overlayfs exits by itself; its owner reaps it (stop()). If it dies
early, the container's next file access fails with ENOTCONN and failure()
turns that into fuse-overlayfs's own message.
"""
from __future__ import annotations

import errno
import functools
import os
import re
import select
import shutil
import signal
import time

from . import _launch
from .errors import ConfigError, LaunchError
from .security import capabilities

DRIVERS = ("auto", "overlay", "fuse-overlayfs")
ALIASES = {"overlay2": "overlay", "fuse": "fuse-overlayfs"}
ENV = "PYCONTAIN_STORAGE_DRIVER"
PACKAGE_HINT = "Debian: apt-get install fuse-overlayfs"
FUSE_DEVICE = "/dev/fuse"
# The first kernel that lets a user namespace mount overlayfs.
ROOTLESS_OVERLAY_KERNEL = (5, 11)
# The options the kernel wants for a FUSE mount (fd=N is added by the
# launcher): the root is a directory, owned by root of the mounting user
# namespace; allow_other lets the container's other users in, and
# default_permissions has the kernel check modes, as on any filesystem.
MOUNT_OPTIONS = "rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions"
STOP_TIMEOUT = 2.0


def requested_driver(value: str | None) -> str:
    """The driver asked for: the argument, else $PYCONTAIN_STORAGE_DRIVER, else auto."""
    name = value or os.environ.get(ENV) or "auto"
    name = ALIASES.get(name, name)
    if name not in DRIVERS:
        raise ConfigError(f"unknown storage driver {name!r}: one of {', '.join(DRIVERS)}")
    return name


@functools.lru_cache(maxsize=4)   # asked on every start; the running kernel does not change
def kernel_version(release: str | None = None) -> tuple:
    m = re.match(r"(\d+)\.(\d+)", release or os.uname().release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


_LOOK_UP = object()


def choose_driver(requested: str, *, rootless: bool, kernel: tuple, binary=_LOOK_UP, fuse_device=_LOOK_UP) -> str:
    """The driver a container gets ("overlay" or "fuse-overlayfs"), or a
    ConfigError that says what to install. binary (fuse-overlayfs's path or
    None) and fuse_device (whether /dev/fuse exists) are looked up on this
    machine unless given, and only when fuse-overlayfs is in question: a
    PATH search on every start costs ~0.1 ms."""
    if requested == "overlay":
        return "overlay"
    if requested == "auto" and (not rootless or kernel >= ROOTLESS_OVERLAY_KERNEL):
        return "overlay"
    why = ("" if requested == "fuse-overlayfs" else
           f"rootless overlayfs needs Linux {'.'.join(map(str, ROOTLESS_OVERLAY_KERNEL))} (this is "
           f"{'.'.join(map(str, kernel))}): ")
    if binary is _LOOK_UP:
        binary = shutil.which("fuse-overlayfs")
    if binary is None:
        raise program_missing(why)
    if fuse_device is _LOOK_UP:
        fuse_device = os.path.exists(FUSE_DEVICE)
    if not fuse_device:
        raise ConfigError(f"{why}the fuse-overlayfs storage driver needs {FUSE_DEVICE} (modprobe fuse)")
    return "fuse-overlayfs"


def program_missing(why: str = "") -> ConfigError:
    return ConfigError(f"{why}the fuse-overlayfs storage driver needs the fuse-overlayfs program ({PACKAGE_HINT})")


def driver_for(requested: str, rootless: bool) -> str:
    """choose_driver() for this machine."""
    return choose_driver(requested, rootless=rootless, kernel=kernel_version())


class FuseOverlayfs:
    """The fuse-overlayfs process serving one container's root."""

    def __init__(self, rootfs, rootless: bool, allows_setgroups: bool = True):
        self.binary = shutil.which("fuse-overlayfs")
        if self.binary is None:  # removed since driver_for() looked
            raise program_missing()
        self.rootfs = rootfs
        self.rootless = rootless
        self.allows_setgroups = allows_setgroups
        self._container_plan = None
        self.pid = None
        self._pidfd = None
        self._stderr = None
        self.returncode = None

    def apply(self, plan: _launch.LaunchPlan) -> None:
        """The container's plan mounts its root from /dev/fuse; start() serves it."""
        rootfs = self.rootfs
        plan.root_device = FUSE_DEVICE
        plan.root_source = "fuse-overlayfs"
        plan.root_fstype = "fuse.fuse-overlayfs"
        plan.root_data = MOUNT_OPTIONS
        if rootfs.scratch is not None:
            # the writable layer and its files live in fuse-overlayfs's own
            # tmpfs; the container needs only an empty directory to mount on
            plan.scratch, plan.files = None, []
            plan.root_path = rootfs.scratch
        plan.on_root_device = self.start
        self._container_plan = plan

    def start(self, pid: int, device_fd: int) -> None:
        """Starts fuse-overlayfs on the container's device (the launcher calls
        this while the container waits with its root mounted)."""
        rootfs = self.rootfs
        joins, owned = [], []
        if self.rootless:
            try:
                userns = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise LaunchError(e.errno or errno.EIO, "fuse-overlayfs", f"/proc/{pid}/ns/user") from None
            joins.append((userns, _launch.CLONE_NEWUSER))
            owned.append(userns)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        devnull = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        plan = _launch.LaunchPlan(
            argv=[self.binary, "-f", "-o", rootfs.layer_options(), "/dev/fd/0"],
            envp=[], root_path=None, root_source=None, root_fstype=None,
            scratch=rootfs.scratch, files=list(rootfs.files),
            clone_flags=0, joins=joins, owned_fds=owned, unshare_flags=_launch.CLONE_NEWNS,
            root_propagation=_launch.MS_REC | _launch.MS_PRIVATE, loopback_up=False,
            cwd="/", mkdir_cwd=False, uid=0, gid=0, set_groups=self.allows_setgroups,
            # a part of the engine, not of the container: a file server acting
            # for every user of the container (in its user namespace when rootless)
            capabilities=capabilities.own(),
            # the container's cgroups (the launcher's descriptors are still
            # open): what it writes into its layer is charged to its limits
            cgroup_fds=list(self._container_plan.cgroup_fds),
            # and the OOM killer picks the container's processes, not the
            # server of their files (as podman's conmon), where we may say so
            oom_score_adj=-1000 if not self.rootless and "SYS_RESOURCE" in capabilities.own() else None,
            stdio=(device_fd, devnull, err_w),
        )
        try:
            child = _launch.spawn(plan)
        except LaunchError as e:
            os.close(err_r)
            raise LaunchError(e.errno or errno.EIO, "fuse-overlayfs", str(e)) from None
        finally:
            os.close(err_w)
            os.close(devnull)
        self.pid, self._pidfd, self._stderr = child.pid, child.pidfd, err_r

    def failure(self, exc: BaseException) -> LaunchError | None:
        """fuse-overlayfs's own error when the container's start failed
        because it was gone (its file accesses saw ENOTCONN), else None."""
        if self.pid is None or not isinstance(exc, OSError) or exc.errno != errno.ENOTCONN:
            return None
        self._wait(STOP_TIMEOUT)
        if self.returncode is None:
            return None
        lines = self._read_stderr().strip().splitlines()
        e = LaunchError(errno.ENOTCONN, "fuse-overlayfs")
        e.strerror = f"fuse-overlayfs exited ({self.returncode}): {lines[-1] if lines else 'no message'}"
        return e

    def _wait(self, timeout: float) -> None:
        """Reaps fuse-overlayfs if it exits within timeout."""
        if self.returncode is not None or self.pid is None:
            return
        end = time.monotonic() + timeout
        while True:
            if self._pidfd is not None:
                select.select([self._pidfd], [], [], max(0.0, end - time.monotonic()))
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                return
            if time.monotonic() >= end:
                return
            time.sleep(0.01)  # kernels without pidfds

    def _read_stderr(self) -> str:
        if self._stderr is None:
            return ""
        os.set_blocking(self._stderr, False)
        try:
            data = os.read(self._stderr, 65536)
        except BlockingIOError:
            data = b""
        return data.decode(errors="replace")

    def stop(self) -> None:
        """Reaps fuse-overlayfs, which exits by itself once the container's
        mount namespace is gone; killed if it has not within STOP_TIMEOUT."""
        if self.pid is None:
            return
        try:
            self._wait(STOP_TIMEOUT)
            if self.returncode is None:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                _, status = os.waitpid(self.pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            self.returncode = -1
        finally:
            for fd in (self._pidfd, self._stderr):
                if fd is not None:
                    os.close(fd)
            self._pidfd = self._stderr = None
            self.pid = None
