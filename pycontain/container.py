"""Container: the user-facing object, shaped like subprocess.Popen / run().

    Container("hello-world").run()
    Container(rootfs="/srv/busybox", command=["sh", "-c", "echo hi"]).run(capture_output=True)
    with Container(rootfs=..., command=[...]) as c:
        c.start(); c.wait(timeout=10)

A Container owns everything made for it (its writable layer, generated /etc
files, pipes, the process) and releases all of it when the process has been
reaped (remove=True, the default) or at remove().
"""
from __future__ import annotations

import dataclasses
import errno
import fcntl
import os
import select
import selectors
import signal
import struct
import termios
import threading
import time
import warnings
from pathlib import Path

from . import _launch, _netns, bundle, cgroups, fuse_overlayfs, leftovers, rootless, volumes
from ._paths import default_root
from .config import RLIMITS, ContainerConfig, Mount, check_mount_target, merge_env
from .errors import ConfigError, ContainerError, ContainerTimeout
from .network import needs_attachment
from .network import slirp
from .network.attach import NetworkAttachment
from .network.etcfiles import resolv_conf_text
from .network.slirp import Slirp, is_slirp_mode
from .network import registry as network_registry
# also container.ContainerResult, container.builtin_image, as before they moved out
from .resolved_image import DEFAULT_PATH, ResolvedImage, builtin_image
from .result import ContainerResult
from .rootfs import RootFS
from .security import capabilities, seccomp
from .users import resolve_group_add, resolve_user

PIPE = -1
DEVNULL = -3

# What docker hides from a container: (files are covered by /dev/null,
# directories by an empty read-only tmpfs) and what it makes read-only.
MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

M = _launch
STANDARD_MOUNTS = (
    M.MountSpec("proc", "/proc", "proc", None, M.MS_NOSUID | M.MS_NODEV | M.MS_NOEXEC),
    M.MountSpec("tmpfs", "/dev", "tmpfs", "mode=755,size=65536k", M.MS_NOSUID | M.MS_STRICTATIME),
    M.MountSpec("devpts", "/dev/pts", "devpts", "newinstance,ptmxmode=0666,mode=0620,gid=5",
                M.MS_NOSUID | M.MS_NOEXEC),
    M.MountSpec("shm", "/dev/shm", "tmpfs", "mode=1777,size=65536k", M.MS_NOSUID | M.MS_NODEV | M.MS_NOEXEC),
    M.MountSpec("mqueue", "/dev/mqueue", "mqueue", None, M.MS_NOSUID | M.MS_NODEV | M.MS_NOEXEC),
    M.MountSpec("sysfs", "/sys", "sysfs", None, M.MS_RDONLY | M.MS_NOSUID | M.MS_NODEV | M.MS_NOEXEC),
)
DEVICE_NODES = tuple(
    (f"/dev/{name}", 0o020666, major, minor)
    for name, major, minor in (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
                               ("urandom", 1, 9), ("tty", 5, 0))
)
DEV_SYMLINKS = (
    ("pts/ptmx", "/dev/ptmx"), ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
)


def resolve_image(name: str, root: Path, holder: str | None = None, pull: str = "missing") -> ResolvedImage:
    """The image's layers and config, pulled per docker's --pull policy
    (missing, always, never). With holder, the store refuses to remove the
    image until release_image(holder) (docker's rmi of an image in use)."""
    img = builtin_image(name)
    if img is not None:
        return img
    # The image store (pulls when missing, like docker run's default --pull=missing).
    # Imported here, not above: a program that only runs rootfs= containers
    # never pays for the image package (~11 ms of imports).
    from . import image

    img = image.resolve_for_run(name, root, pull=pull, holder=holder)
    return ResolvedImage(img.layers, img.config, held=holder is not None)


def release_image(holder: str, root) -> None:
    from . import image  # see resolve_image

    image.release(holder, root)


class Container:
    """One container. Arguments follow `docker run`; see README.md."""

    def __init__(self, image=None, command=None, *, rootfs=None, entrypoint=None, env=None,
                 hostname=None, user=None, workdir=None, mounts=(), read_only=False, init=False,
                 network="none", cap_add=(), cap_drop=(), privileged=False, no_new_privileges=True,
                 ulimits=(), oom_score_adj=None, writable_layer="memory", remove=True, root=None,
                 seccomp="default", security_opt=(), group_add=(), name=None, ports=(), dns=(),
                 add_hosts=(), dns_search=(),
                 memory=None, memory_swap=None, cpus=None, cpu_shares=None, cpu_quota=None, cpu_period=None,
                 cpuset_cpus=None, cpuset_mems=None, pids_limit=None, blkio_weight=None,
                 device_read_bps=(), device_write_bps=(), cgroup_parent=None, cgroup=None, devices=(),
                 memory_reservation=None,
                 id=None,  # noqa: A002  (the container id to use, as docker-py names it)
                 tty=False, layer_dir=None, pull="missing", storage_driver=None, config=None,
                 survive_parent=False):
        if isinstance(network, Container):   # join that container's network namespace
            network = f"container:{network.id}"
        if config is not None:
            # an already validated configuration (a managed container's record)
            # stands for the docker-run arguments
            resources = config.resources if config.resources is not None else cgroups.Limits()
            self.config = config
        else:
            # resource limits (pycontain/cgroups): checked here, before anything exists
            resources = cgroups.Limits.from_docker(
                memory=memory, memory_swap=memory_swap, cpus=cpus, cpu_shares=cpu_shares, cpu_quota=cpu_quota,
                cpu_period=cpu_period, cpuset_cpus=cpuset_cpus, cpuset_mems=cpuset_mems, pids_limit=pids_limit,
                blkio_weight=blkio_weight, device_read_bps=device_read_bps, device_write_bps=device_write_bps,
                cgroup_parent=cgroup_parent, memory_reservation=memory_reservation)
            self.config = ContainerConfig(
                image=image, rootfs=rootfs, command=command, entrypoint=entrypoint, env=env or (),
                hostname=hostname, user=user, workdir=workdir, mounts=mounts, read_only=read_only,
                init=init, network=network, cap_add=tuple(cap_add), cap_drop=tuple(cap_drop),
                privileged=privileged, no_new_privileges=no_new_privileges, ulimits=tuple(ulimits),
                oom_score_adj=oom_score_adj, writable_layer=writable_layer,
                seccomp=seccomp, security_opt=tuple(security_opt), group_add=group_add,
                name=name, ports=ports, dns=dns, add_hosts=add_hosts, resources=resources,
                devices=tuple(devices), dns_search=dns_search,
            )
        # survive_parent: the process outlives this one, no parent-death signal
        # (an OCI runtime's create: its caller reaps it; config.container_config_from_oci)
        self.survive_parent = survive_parent
        self.id = id or os.urandom(32).hex()
        # Managed containers (pycontain/containers.py): tty=True gives init a
        # terminal from its own devpts (self.tty_master after start);
        # layer_dir keeps the writable layer in the caller's directory.
        self.tty = tty or bool(self.config.bundle is not None and self.config.bundle.terminal)
        self.tty_master = None
        self.layer_dir = layer_dir
        self.launch_plan = None  # the last plan started: exec copies its user and privileges
        self.root = Path(root) if root else None
        self.auto_remove = remove
        self.pid = None
        self.returncode = None
        self.stdin = self.stdout = self.stderr = None
        self.args = None
        self._child = None
        self._pidfd = None
        self._rootfs = None
        self._owner_dir = None   # its directory under the store, while an owner file names it (leftovers.py)
        self._cgroup = None
        self._image_held = False
        self._volumes = []            # volumes.Attachment: held while the container exists
        if pull not in ("missing", "always", "never"):
            raise ConfigError(f"invalid pull policy {pull!r}: one of missing, always, never")
        self.pull = pull              # docker's --pull, when the image is not a rootfs directory
        # overlay, fuse-overlayfs or auto (pycontain/fuse_overlayfs.py); None: $PYCONTAIN_STORAGE_DRIVER
        self.storage_driver = fuse_overlayfs.requested_driver(storage_driver)
        self._fuse = None             # the fuse-overlayfs process serving the root
        self._slirp = None            # slirp4netns serving a rootless container's network
        # None: a cgroup when a limit asks for one; True: always (stats, pause,
        # the OOM flag without a limit); False: never
        if cgroup is False and (resources or resources.cgroup_parent):
            raise ConfigError("resource limits need a cgroup: drop cgroup=False")
        self.want_cgroup = cgroup
        self._oom_killed = False
        self._paused = False
        self._wait_lock = threading.Lock()
        self._removed = False
        self.name = self.config.name
        self._network = None          # NetworkAttachment for bridge and container: modes
        network_registry.register(self)

    @property
    def network_attachment(self):
        """Its NetworkAttachment (bridge and container: modes), else None:
        a container that joins this one's network counts itself on it."""
        return self._network

    @property
    def etc_dir(self) -> Path | None:
        """Where its generated hostname, hosts and resolv.conf are (while it
        has a root filesystem): a container joining its network shares them."""
        return Path(self._rootfs.dir) if self._rootfs is not None else None

    @property
    def ip_address(self) -> str | None:
        """The container's address on its bridge network (docker inspect's
        NetworkSettings.IPAddress); None for none, host and container: modes."""
        return self._network.address if self._network is not None else None

    @property
    def network_gateway(self) -> tuple:
        """(its bridge network's gateway or None, the prefix length of its
        address or 0): docker inspect's Networks.*.Gateway and IPPrefixLen."""
        net = self._network.network if self._network is not None else None
        if net is None:
            return None, 0
        return (None if net.internal else net.gateway), net.prefixlen

    @property
    def published_ports(self) -> list:
        """The published ports with the host ports actually used ("80" gets a free one)."""
        if self._slirp is not None:
            return list(self._slirp.ports)
        return list(self._network.ports) if self._network is not None else []

    # ---- lifecycle ----------------------------------------------------------

    def create(self, stdin=None, stdout=None, stderr=None, *, before_exec=False, at_mounts=None):
        """Makes the container up to its "created" state: namespaces, cgroup
        and mounts ready, command not yet executed. start() runs it.
        before_exec: further, every step but the exec done (user, capabilities,
        seccomp filter loaded), as pycontain.Pool's containers wait; with a
        seccomp profile of the caller's, which may deny the read and write
        of that wait, at "created" as usual.
        at_mounts: f(pid), run while the process waits with its mounts made,
        before pivot_root (an OCI runtime's prestart and createRuntime hooks);
        an exception from it fails the create."""
        own_profile = self.config.seccomp_profile not in (None, seccomp.default_profile())
        late = before_exec and not own_profile and not self.tty
        return self._launch(stdin, stdout, stderr,
                            wait_start=_launch.WAIT_BEFORE_EXEC if late else _launch.WAIT_CREATED,
                            at_mounts=at_mounts)

    def start(self, stdin=None, stdout=None, stderr=None):
        """Runs the command (after create(), or from scratch). Returns self."""
        if self._child is not None:
            child, self._child = self._child, None
            try:
                child.finish_start()
            except BaseException as e:
                # finish_start reaped the child and closed its pidfd: a later
                # remove() must not signal a pid that may belong to someone else now
                self._pidfd = None
                self.returncode = getattr(e, "exit_status", 255)
                for f in (self.stdin, self.stdout, self.stderr):   # no command ran: nothing to read or write
                    if f is not None:
                        f.close()
                self._cleanup()
                raise
            return self
        return self._launch(stdin, stdout, stderr, wait_start=0)

    def replace_command(self, command):
        """Replaces a created container's command before start(), the
        entrypoint kept (as `docker run IMAGE COMMAND` does): what
        pycontain.Pool does to hand a prepared container a command."""
        if self._child is None:
            raise ContainerError("only a created container's command can be replaced: create() it first")
        if isinstance(command, (str, bytes)) or not command:
            raise ConfigError("command must be a non-empty list of strings")
        command = list(command)
        if not all(isinstance(a, str) and "\0" not in a for a in command):
            raise ConfigError("command must be a list of strings without NUL")
        created_with = len(self.config.command or ())
        entrypoint = self.args[:len(self.args) - created_with]
        plan = self._child.plan
        self._child.set_command(plan.argv[:plan.cmd_index] + entrypoint + command)
        self.args = entrypoint + command

    def _launch(self, stdin, stdout, stderr, wait_start, at_mounts=None):
        if self.pid is not None or self._removed:
            raise ContainerError(f"container {self.id[:12]} was already started")
        parent_ends, child_fds = [], []
        try:
            stdio = self._stdio(stdin, stdout, stderr, parent_ends, child_fds)
            plan = self._plan()  # last: what it takes (a ready netns) spawn() releases
            if self._network is not None:
                # closed once the launcher has joined it (below, after spawn)
                child_fds.append(self._network.take_netns_fd())
            plan.stdio = tuple(stdio)
            # a bundle's sysctls go into its namespaces before the command runs
            sysctls = self.config.bundle.sysctl if self.config.bundle is not None else ()
            plan.wait_start = wait_start or bool(sysctls)
            plan.tty = self.tty
            plan.on_mounted = at_mounts
            if self.survive_parent:
                plan.pdeathsig = 0
            if self.config.bundle is not None and self.config.bundle.umask is not None:
                plan.umask = self.config.bundle.umask
            self.launch_plan = plan
            child = _launch.spawn(plan)
            if sysctls:
                try:
                    bundle.apply_sysctls(child.pid, sysctls)
                except BaseException:
                    child.abort()
                    raise
                if not wait_start:
                    child.finish_start()
            if self._cgroup is not None:
                self._cgroup.close_fds()    # the child has joined: the descriptors are spent
        except BaseException as e:
            for f in parent_ends:
                if f is not None:   # inherited stdio has no parent end
                    f.close()
            # the root's server died: its own message says more than the container's ENOTCONN
            why = self._fuse.failure(e) if self._fuse is not None else None
            self._cleanup()
            if why is not None:
                raise why from None
            raise
        finally:
            for fd in child_fds:
                os.close(fd)
        self.pid = child.pid
        self._pidfd = child.pidfd
        self.tty_master = child.tty_master
        size = self.config.bundle.console_size if self.config.bundle is not None else None
        if size and self.tty_master is not None:   # a bundle's process.consoleSize
            fcntl.ioctl(self.tty_master, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
        self.stdin, self.stdout, self.stderr = parent_ends_by_role(parent_ends)
        if wait_start:
            self._child = child
        return self

    def poll(self):
        """The return code if the command has ended, else None (no blocking)."""
        if self.returncode is None and self.pid is not None:
            self._try_reap(os.WNOHANG)
        return self.returncode

    def wait(self, timeout=None) -> int:
        """Waits for the command to end and returns its exit status (negative:
        killed by that signal, as in subprocess)."""
        if self.pid is None:
            raise ContainerError("the container was not started")
        if self._child is not None:
            raise ContainerError("the container is created but not started: call start()")
        if self.returncode is not None:
            return self.returncode
        if timeout is not None:
            if not self._wait_readable(timeout):
                raise ContainerTimeout(self.args, timeout)
        self._try_reap(0)
        return self.returncode

    def _wait_readable(self, timeout) -> bool:
        if self._pidfd is not None:
            r, _, _ = select.select([self._pidfd], [], [], max(0, timeout))
            return bool(r)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.poll() is not None:
                return True
            time.sleep(0.005)
        return self.poll() is not None

    def _try_reap(self, flags):
        with self._wait_lock:
            if self.returncode is not None:
                return
            try:
                pid, status = os.waitpid(self.pid, flags)
            except ChildProcessError:
                pid, status = self.pid, 255 << 8
            if pid == 0:
                return
            self.returncode = os.waitstatus_to_exitcode(status)
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
        if self.auto_remove:
            self._cleanup()

    def send_signal(self, sig):
        if self.returncode is not None or self.pid is None:
            return
        if self._pidfd is not None:
            try:
                signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:
                pass
        else:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self, sig=signal.SIGKILL):
        """Sends sig (SIGKILL by default) to the container's init; as pid 1 of
        its namespace, its death ends every process in the container."""
        self.send_signal(sig)

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def remove(self):
        """Stops the container if it still runs and releases what it holds."""
        if self._child is not None:
            child, self._child = self._child, None
            os.kill(child.pid, signal.SIGKILL)
            child.close_failed()        # closes the pidfd too
            self._pidfd = None
            self.returncode = -signal.SIGKILL
        if self.pid is not None and self.returncode is None:
            self.kill()
            if self._paused:      # a frozen process takes its SIGKILL only when thawed (cgroup v1)
                self.unpause()
            self._try_reap(0)
        self._cleanup()
        self._removed = True

    def _cleanup(self):
        try:
            if self._network is not None:
                network, self._network = self._network, None
                network.release()
            if self._slirp is not None:
                slirp, self._slirp = self._slirp, None
                slirp.stop()
            if self._fuse is not None:    # out of the cgroup before it goes (it is in it)
                fuse, self._fuse = self._fuse, None
                fuse.stop()
            self._remove_cgroup()
            self._release_volumes()
            if self._image_held:
                self._image_held = False
                release_image(self.id, self.root)
        finally:
            if self._fuse is not None:    # when a step above failed; stop() does not raise
                fuse, self._fuse = self._fuse, None
                fuse.stop()
            if self._rootfs is not None:
                self._rootfs.remove()
                self._rootfs = None
            if self._owner_dir is not None:
                self._owner_dir = None
                leftovers.release(self.root or default_root(), self.id)

    # ---- volumes (pycontain/volumes.py) ---------------------------------------------

    def _volume_mount(self, m, layers, nodev=True) -> _launch.MountSpec:
        """A volume held for this container (made, and filled from the
        image on its first use, if need be) as a bind mount of its directory,
        nodev unless privileged: what one container left there is no device
        for the next, whatever its device rules."""
        att = volumes.attach(m.source, root=self.root, image_layers=layers, target=m.target,
                             copy_up="nocopy" not in m.options)
        self._volumes.append(att)
        remount = (_launch.MS_RDONLY if m.read_only else 0) | (_launch.MS_NODEV if nodev else 0)
        return _launch.MountSpec(att.path, m.target, None, None, _launch.MS_BIND | _launch.MS_REC,
                                 remount, _launch.MKDIR_DIR)

    def _release_volumes(self):
        """Lets go of the volumes; an anonymous one made for this container goes with it."""
        while self._volumes:
            self._volumes.pop().release()

    # ---- resources (pycontain/cgroups) ---------------------------------------------

    def _make_cgroup(self, before_mkdir=None):
        """The container's cgroup with its limits, or None where cgroups cannot be
        made (e.g. rootless without a delegated cgroup v2 subtree) and neither a
        limit nor a cgroup_parent was asked for (runc and podman do the same)."""
        # a Limits with only cgroup_parent is falsy but still places the cgroup
        limits = self.config.resources if self.config.resources is not None else cgroups.Limits()
        # --device needs the device cgroup to hold its permissions (and nothing more)
        if self.want_cgroup is False or (self.want_cgroup is None and not limits and not limits.cgroup_parent
                                         and not self.config.devices):
            return None
        name = f"pycontain-{self.id}"
        spec = self.config.bundle
        if spec is not None and spec.cgroups_path:
            # the bundle's cgroupsPath, below the caller's own cgroup (as a relative cgroup_parent)
            parent, _, name = spec.cgroups_path.strip("/").rpartition("/")
            limits = dataclasses.replace(limits, cgroup_parent=cgroups.limits.normalize_parent(parent))
        try:
            # a managed container (cgroup=True) or an OCI runtime's can have its limits changed later
            cg = cgroups.create(name, limits, devices_restricted=not self.config.privileged,
                                before_mkdir=before_mkdir, updatable=self.want_cgroup is True or spec is not None)
            if spec is not None:
                for kind, major, minor, access in spec.device_rules:
                    cg.allow_device(kind, major, minor, access)
        except cgroups.CgroupError as e:
            unavailable = isinstance(e, cgroups.CgroupNotDelegated) or e.errno in (
                errno.EACCES, errno.EPERM, errno.EROFS, errno.EOPNOTSUPP)
            if limits or limits.cgroup_parent or not unavailable:
                raise
            return None
        self._cgroup = cg
        return cg

    def host_record(self) -> dict:
        """What the created or started container holds on the host, as plain
        JSON for pycontain.detached in another process (an OCI runtime's delete)."""
        return {"cgroup": self._cgroup.record() if self._cgroup is not None else None}

    def detach(self) -> None:
        """Lets go of the started container without stopping or reaping it
        (an OCI runtime's create/start: its caller is the process's parent
        from now on, and pycontain.detached releases host_record())."""
        self._cgroup = None
        self._rootfs = None
        self._child = None
        self._pidfd = None
        self.pid = None

    def _remove_cgroup(self):
        if self._cgroup is not None:
            cg, self._cgroup = self._cgroup, None
            try:
                cg.destroy()    # kills anything left, removes the directories
            finally:
                try:
                    self._oom_killed = cg.oom_killed()
                except OSError:
                    pass

    def _running_cgroup(self):
        if self._cgroup is None:
            raise ContainerError(f"container {self.id[:12]} has no cgroup: start it with cgroup=True or a "
                                 "resource limit (or it is not running, or cgroups are unavailable here: "
                                 "rootless, only a delegated cgroup v2 subtree has them)")
        return self._cgroup

    @property
    def oom_killed(self) -> bool:
        """True when the kernel killed a process of this container for memory."""
        cg = self._cgroup
        return cg.oom_killed() if cg is not None else self._oom_killed

    def stats(self) -> "cgroups.CgroupStats":
        """CPU time, memory (current, peak), pids and I/O bytes of the container's processes."""
        return self._running_cgroup().stats()

    def pause(self):
        """Freezes every process of the container (docker pause)."""
        self._running_cgroup().freeze()
        self._paused = True

    def unpause(self):
        self._running_cgroup().thaw()
        self._paused = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for f in (self.stdin, self.stdout, self.stderr):
            if f is not None:
                f.close()
        self.remove()

    def __del__(self):
        if getattr(self, "pid", None) is not None and self.returncode is None:
            warnings.warn(f"container {self.id[:12]} is still running", ResourceWarning, stacklevel=2)
            try:
                self.remove()
            except Exception:
                pass
        elif (getattr(self, "_rootfs", None) is not None or getattr(self, "_network", None) is not None
              or getattr(self, "_cgroup", None) is not None or getattr(self, "_volumes", None)):
            self._cleanup()

    # ---- image side: docker export / docker commit (pycontain.image) ----------

    def export(self, fileobj) -> None:
        """docker export: the container's merged filesystem as a tar stream."""
        from . import image  # see resolve_image

        self._kept_changes()
        image.export([self._rootfs.upper, *self._rootfs.lower_dirs], fileobj)

    def commit(self, ref=None, *, changes=(), message=None, author=None) -> str:
        """docker commit: the container's changes become a new image (deletions
        as whiteouts) on top of its image. Returns the new image id."""
        from . import image  # see resolve_image

        self._kept_changes()
        return image.commit(self._rootfs.upper, self.config.image, ref, changes, message, author, root=self.root)

    def _kept_changes(self):
        if self._rootfs is None:
            raise ContainerError("the container has no filesystem (not started, or removed): use remove=False")
        if getattr(self._rootfs, "kind", "disk") != "disk":
            # a memory-backed writable layer vanished with the container's mount namespace
            raise ContainerError("the container's changes were not kept on disk: use writable_layer='disk'")

    # ---- run, communicate -----------------------------------------------------

    def run(self, *, stdin=None, stdout=None, stderr=None, capture_output=False,
            input=None,  # noqa: A002  (subprocess.run's keyword)
            timeout=None, check=False, text=False) -> ContainerResult:
        """Runs the container to completion, like subprocess.run()."""
        if capture_output:
            if stdout is not None or stderr is not None:
                raise ValueError("stdout and stderr arguments may not be used with capture_output")
            stdout = stderr = PIPE
        if input is not None:
            if stdin is not None:
                raise ValueError("stdin and input arguments may not both be used")
            stdin = PIPE
            data = input.encode() if text and isinstance(input, str) else input
        else:
            data = None
        self.start(stdin=stdin, stdout=stdout, stderr=stderr)
        try:
            out, err = self.communicate(data, timeout)
        except ContainerTimeout as e:
            self.kill()
            out, err = self._drain()
            self.wait()
            raise ContainerTimeout(self.args, timeout, _maybe_text(out or e.output, text),
                                   _maybe_text(err or e.stderr, text)) from None
        except BaseException:
            self.remove()
            raise
        result = ContainerResult(self.args, self.returncode, _maybe_text(out, text), _maybe_text(err, text), self.id,
                                 oom_killed=self.oom_killed)
        if check:
            result.check_returncode()
        return result

    def communicate(self, input=None, timeout=None):  # noqa: A002  (Popen.communicate's keyword)
        """Sends input, reads stdout/stderr to EOF, waits. Returns (stdout, stderr)."""
        end = None if timeout is None else time.monotonic() + timeout
        chunks = {}
        sel = selectors.DefaultSelector()
        try:
            if self.stdin is not None:
                if input:
                    os.set_blocking(self.stdin.fileno(), False)
                    sel.register(self.stdin, selectors.EVENT_WRITE)
                else:
                    self.stdin.close()
            for f in (self.stdout, self.stderr):
                if f is not None:
                    chunks[f] = []
                    sel.register(f, selectors.EVENT_READ)
            view = memoryview(input or b"")
            while sel.get_map():
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    raise ContainerTimeout(self.args, timeout, b"".join(chunks.get(self.stdout, [])) or None,
                                           b"".join(chunks.get(self.stderr, [])) or None)
                for key, _ in sel.select(left):
                    f = key.fileobj
                    if f is self.stdin:
                        try:
                            n = os.write(f.fileno(), view[:65536])
                        except BrokenPipeError:
                            n = len(view)
                        view = view[n:]
                        if not view:
                            sel.unregister(f)
                            f.close()
                    else:
                        data = os.read(f.fileno(), 65536)
                        if data:
                            chunks[f].append(data)
                        else:
                            sel.unregister(f)
                            f.close()
        finally:
            sel.close()
        out = b"".join(chunks[self.stdout]) if self.stdout in chunks else None
        err = b"".join(chunks[self.stderr]) if self.stderr in chunks else None
        left = None if end is None else max(0, end - time.monotonic())
        self.wait(left)
        return out, err

    def _drain(self):
        out = err = None
        for f in (self.stdout, self.stderr):
            if f is not None and not f.closed:
                data = f.read()
                f.close()
                if f is self.stdout:
                    out = data
                else:
                    err = data
        if self.stdin is not None and not self.stdin.closed:
            self.stdin.close()
        return out, err

    # ---- plan -------------------------------------------------------------------

    def _plan(self) -> _launch.LaunchPlan:
        cfg = self.config
        # an OCI bundle: as its config.json says (pycontain/bundle.py); no
        # owner file (leftovers.py): it outlives this program by design
        if cfg.bundle is not None:
            self.args = list(cfg.command)
            return bundle.launch_plan(cfg, self._make_cgroup(), self.root, container_id=self.id)
        store_root = str(self.root or default_root())
        if self.layer_dir is None:
            # A program's container (a managed one has its record for this):
            # its owner file, written before its image is held and anything
            # is made, lets the next start sweep what a kill -9 of this
            # program would leave (leftovers.py); dead owners' first.
            for dead in leftovers.sweep(store_root):
                release_image(dead, store_root)
            self._owner_dir = os.path.join(store_root, "containers", self.id)
            leftovers.claim(store_root, self.id, self._owner_dir)
        if cfg.rootfs is not None:
            image = ResolvedImage((cfg.rootfs,), {})
        else:
            image = resolve_image(cfg.image, self.root, holder=self.id, pull=self.pull)
            self._image_held = image.held
        icfg = image.config or {}

        if cfg.entrypoint is not None:
            entrypoint, cmd = list(cfg.entrypoint), list(cfg.command or ())
        else:
            entrypoint = list(icfg.get("Entrypoint") or ())
            cmd = list(cfg.command) if cfg.command is not None else list(icfg.get("Cmd") or ())
        argv = entrypoint + cmd
        if not argv:
            raise ConfigError("no command specified")
        self.args = argv
        # the image's VOLUMEs checked before anything is made for them
        user_and_image_mounts = with_image_volumes(cfg.mounts, icfg.get("Volumes"))

        user = resolve_user(cfg.user or icfg.get("User") or None, image.layers)
        hostname = cfg.hostname or (os.uname().nodename if cfg.network == "host" else self.id[:12])
        env = merge_env([f"PATH={DEFAULT_PATH}", f"HOSTNAME={hostname}"], icfg.get("Env") or (), cfg.env)
        if not any(e.startswith("HOME=") for e in env):
            env.append(f"HOME={user.home}")
        path_env = next((e[5:] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
        workdir = cfg.workdir or icfg.get("WorkingDir") or "/"
        groups = list(user.groups)
        groups += [g for g in resolve_group_add(cfg.group_add, image.layers) if g not in groups]
        # Before anything is created: compiling (cached) may refuse the profile.
        caps = capabilities.resolve(cfg.cap_add, cfg.cap_drop, cfg.privileged)
        seccomp_bpf = seccomp.filter_for(cfg.seccomp_profile, caps, root=self.root)
        storage_driver = fuse_overlayfs.driver_for(self.storage_driver, rootless=os.geteuid() != 0)

        rootfs = RootFS(image.layers, "disk" if self.layer_dir else self.config.writable_layer,
                        store_root, self.id, keep_dir=self.layer_dir)
        rootfs.prepare()
        self._rootfs = rootfs
        network = cfg.network
        if os.geteuid() != 0 and network == "bridge":
            network = "slirp4netns"  # what a user who is not root can have, as in podman
        if is_slirp_mode(network):
            self._slirp = Slirp(network, cfg.ports)
        elif os.geteuid() != 0 and needs_attachment(network):
            raise ConfigError(f"network {network!r} needs root; rootless containers can use none, host "
                              "or slirp4netns (bridge means slirp4netns)")
        elif needs_attachment(network):
            # its hosts file is rewritten as others join: it must live on the host
            self._network = NetworkAttachment.prepare(
                cfg.network, container_id=self.id, name=self.name, hostname=hostname, ports=cfg.ports,
                dns=cfg.dns, add_hosts=cfg.add_hosts, hosts_file=rootfs.host_dir() / "hosts", root=self.root,
                dns_search=cfg.dns_search)
        etc = self._etc_files(rootfs, hostname)

        mounts = list(STANDARD_MOUNTS)
        # each directory noted in the owner file before it is made: a program
        # killed in between still leaves nothing the next start cannot sweep
        claim = None if self._owner_dir is None else (
            lambda d: leftovers.claim_cgroups(store_root, self.id, [d]))
        cgroup = self._make_cgroup(before_mkdir=claim)
        if cgroup is not None:    # its own cgroup as /sys/fs/cgroup, read-only unless privileged (docker)
            mounts += cgroup.mount_specs(read_only=not cfg.privileged)
        for dev in cfg.devices:   # --device: the node itself, bound in, and allowed by the device cgroup
            if cgroup is not None:
                cgroup.allow_device(dev.kind, dev.major, dev.minor, dev.permissions)
            mounts.append(_launch.MountSpec(dev.host_path, dev.container_path, None, None, _launch.MS_BIND,
                                            0, _launch.MKDIR_FILE))
        for name, path in etc.items():
            mounts.append(_launch.MountSpec(path, f"/etc/{name}", None, None,
                                            _launch.MS_BIND, 0, _launch.MKDIR_FILE))
        # Without device rules (no cgroup made, or rootless) a device node in
        # a volume or a bind stays inert, as in the root (below): a volume's
        # content is any container's to write, a bind's the host's.
        devices_ruled = cfg.privileged or (cgroup is not None and cgroup.restricts_devices)
        for m in user_and_image_mounts:
            if m.type == "volume":
                mounts.append(self._volume_mount(m, image.layers, nodev=not cfg.privileged))
            else:
                mounts.append(_user_mount(m, nodev=not devices_ruled))

        plan = _launch.LaunchPlan(
            argv=(["pycontain-init", "--"] + argv) if cfg.init else argv,
            cmd_index=2 if cfg.init else 0,
            init=cfg.init,
            program=None if cfg.init or not argv else dict(image.programs).get(argv[0]),
            envp=env,
            path_env=path_env,
            root_path=rootfs.root_path,
            root_source="overlay",
            scratch=rootfs.scratch,
            files=rootfs.files,
            root_data=rootfs.overlay_options(),
            root_readonly=cfg.read_only,
            # Without device rules (no cgroup made, or rootless) device nodes
            # an image ships stay inert (nodev); with them (v1's devices
            # controller, v2's eBPF filter) the rules decide, as in docker.
            # The container's own /dev is a tmpfs of its own either way.
            root_flags=0 if devices_ruled else _launch.MS_NODEV,
            mounts=mounts,
            nodes=list(DEVICE_NODES),
            symlinks=list(DEV_SYMLINKS),
            masked_paths=[] if cfg.privileged else list(MASKED_PATHS),
            readonly_paths=[] if cfg.privileged else list(READONLY_PATHS),
            hostname=hostname,
            rlimits=[(RLIMITS[n], s, h) for n, s, h in cfg.ulimits],
            oom_score_adj=cfg.oom_score_adj,
            cwd=workdir,
            uid=user.uid,
            gid=user.gid,
            groups=groups,
            capabilities=caps,
            no_new_privs=cfg.no_new_privileges and not cfg.privileged,
            seccomp_bpf=seccomp_bpf,
        )
        if os.geteuid() != 0:
            self._make_rootless(plan)
        if storage_driver == "fuse-overlayfs":
            self._fuse = fuse_overlayfs.FuseOverlayfs(rootfs, rootless=os.geteuid() != 0,
                                                      allows_setgroups=plan.set_groups)
            self._fuse.apply(plan)
        if self._slirp is not None:   # its own namespace, which slirp4netns serves once the child exists
            maps = plan.on_cloned

            def on_cloned(pid, maps=maps, slirp=self._slirp):
                if maps is not None:
                    maps(pid)
                slirp.start(pid)

            plan.on_cloned = on_cloned
        if cfg.network == "host":
            plan.clone_flags &= ~_launch.CLONE_NEWNET
            plan.loopback_up = False
            if plan.clone_flags & _launch.CLONE_NEWUSER:
                # sysfs belongs to the host's network namespace: a user
                # namespace may only bind it, read-only
                plan.mounts = [_launch.MountSpec("/sys", "/sys", None, None, _launch.MS_BIND | _launch.MS_REC,
                                                 _launch.MS_RDONLY) if m.target == "/sys" else m
                               for m in plan.mounts]
        elif cfg.network == "none" and os.geteuid() == 0:
            netns = _netns.pool.take()
            if netns is not None:
                plan.joins.append((netns, _launch.CLONE_NEWNET))
                plan.owned_fds.append(netns)
                plan.clone_flags &= ~_launch.CLONE_NEWNET
                plan.loopback_up = False
        elif self._network is not None:
            self._network.apply(plan)
        if cgroup is not None:    # joined before anything runs; then its cgroup is its root
            plan.cgroup_fds = cgroup.join_fds()
            plan.unshare_cgroupns = True
        return plan

    def _make_rootless(self, plan):
        """The same container for a user who is not root: a user namespace
        owns the others, the parent writes its id maps while the child waits,
        and device nodes are bound from the host (mknod needs real root)."""
        m = rootless.mapping()
        rootless.check_user(m, plan.uid, plan.gid)
        plan.clone_flags |= _launch.CLONE_NEWUSER
        plan.on_cloned = m.write
        plan.set_groups = m.allows_setgroups
        mounts = list(plan.mounts)
        if not m.covers(0, 5):  # devpts' gid=5 (tty) must be mapped
            mounts = [dataclasses.replace(x, data="newinstance,ptmxmode=0666,mode=0620") if x.fstype == "devpts"
                      else x for x in mounts]
        plan.mounts = mounts + [
            _launch.MountSpec(path, path, None, None, _launch.MS_BIND, 0, _launch.MKDIR_FILE)
            for path, _mode, _major, _minor in plan.nodes
        ]
        plan.nodes = []

    def _etc_files(self, rootfs: RootFS, hostname: str) -> dict:
        """/etc/hostname, /etc/hosts and /etc/resolv.conf, made for this
        container: {name: host path} to bind-mount over the image's own, as
        docker does, or {} where they went straight into a memory-backed
        writable layer (three mounts fewer on the start path)."""
        cfg = self.config
        if self._network is not None:
            written = self._network.write_etc_files(rootfs.host_dir(), hostname)
            return {name: str(path) for name, path in written.items()}
        files = {"hostname": hostname + "\n"}
        if self._slirp is not None:
            files["hosts"] = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                              f"{slirp.ADDRESS}\t{hostname}\n")
            files["resolv.conf"] = self._slirp.resolv_conf()
        elif cfg.network == "host":
            files["hosts"] = _read_host_file("/etc/hosts") or "127.0.0.1\tlocalhost\n"
            files["resolv.conf"] = _read_host_file("/etc/resolv.conf")
        else:
            files["hosts"] = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                              f"127.0.1.1\t{hostname}\n")
            files["resolv.conf"] = _resolv_conf_without_loopback(_read_host_file("/etc/resolv.conf"))
        if cfg.dns or cfg.dns_search or cfg.add_hosts:   # docker honours them with --network host and none too
            if cfg.dns or cfg.dns_search:
                files["resolv.conf"] = resolv_conf_text(files["resolv.conf"], cfg.dns, cfg.dns_search)
            files["hosts"] += "".join(f"{ip}\t{name}\n" for name, ip in cfg.add_hosts)
        if rootfs.add_etc_files(files):
            return {}
        return {name: rootfs.add_file(name, text) for name, text in files.items()}

    def _stdio(self, stdin, stdout, stderr, parent_ends, child_fds):
        """The three descriptors the container gets (-1: inherit ours)."""
        fds = []
        for i, spec in enumerate((stdin, stdout, stderr)):
            if spec is None:
                fds.append(-1)
                parent_ends.append(None)
                continue
            if spec == PIPE:
                r, w = os.pipe()
                mine, theirs = (w, r) if i == 0 else (r, w)
                parent_ends.append(os.fdopen(mine, "wb" if i == 0 else "rb", buffering=0))
            elif spec == DEVNULL:
                theirs = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
                parent_ends.append(None)
            else:
                fd = spec if isinstance(spec, int) else spec.fileno()
                theirs = _launch_fd(fd)
                parent_ends.append(None)
            theirs = _above_stdio(theirs)
            child_fds.append(theirs)
            fds.append(theirs)
        return fds


def parent_ends_by_role(ends):
    ends = list(ends) + [None] * (3 - len(ends))
    return ends[0], ends[1], ends[2]


def _launch_fd(fd: int) -> int:
    """A private copy of a caller's descriptor (close-on-exec, above 2), so
    closing ours never closes theirs."""
    return _above_stdio(os.dup(fd))


def _above_stdio(fd: int) -> int:
    if fd > 2:
        return fd
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return new


def with_image_volumes(mounts, image_volumes) -> list:
    """The container's mounts plus an anonymous volume for each of the
    image's VOLUMEs that no mount covers, parents before children (docker
    sorts by depth, so /data is mounted before /data/logs)."""
    taken = {os.path.normpath(m.target) for m in mounts}
    extra = [Mount(None, os.path.normpath(t), type="volume") for t in sorted(image_volumes or ())
             if isinstance(t, str) and t.startswith("/") and os.path.normpath(t) not in taken | {"/"}]
    for m in extra:
        check_mount_target(m.target, "image")
    return sorted(list(mounts) + extra, key=lambda m: os.path.normpath(m.target).count("/"))


def _user_mount(m, nodev=True) -> _launch.MountSpec:
    if m.type == "tmpfs":
        data = ",".join(m.options) or None
        flags = _launch.MS_NOSUID | _launch.MS_NODEV | (_launch.MS_RDONLY if m.read_only else 0)
        return _launch.MountSpec("tmpfs", m.target, "tmpfs", data, flags)
    is_dir = os.path.isdir(m.source)
    remount = (_launch.MS_RDONLY if m.read_only else 0) | (_launch.MS_NODEV if nodev else 0)
    return _launch.MountSpec(m.source, m.target, None, None, _launch.MS_BIND | _launch.MS_REC, remount,
                             _launch.MKDIR_DIR if is_dir else _launch.MKDIR_FILE)


_host_files: dict = {}


def _read_host_file(path) -> str:
    """The host's /etc/hosts or /etc/resolv.conf, re-read only when it changed."""
    try:
        st = os.stat(path)
    except OSError:
        return ""
    key = (st.st_ino, st.st_mtime_ns, st.st_size)
    hit = _host_files.get(path)
    if hit is None or hit[0] != key:
        try:
            with open(path) as f:
                hit = _host_files[path] = (key, f.read())
        except OSError:
            return ""
    return hit[1]


def _resolv_conf_without_loopback(text: str) -> str:
    """docker's rule: a nameserver on the host's loopback (systemd-resolved's
    127.0.0.53, dnsmasq) cannot be reached from another network namespace."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver" and (parts[1].startswith("127.") or parts[1] == "::1"):
            continue
        out.append(line)
    return "\n".join(out) + ("\n" if out else "")


def _maybe_text(data, text):
    if text and isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data

