"""config -> LaunchPlan -> _nsexec: the only way a container process is started.

LaunchPlan is the flat, C-shaped description of one start (struct pc_plan in
src/nsexec.h); `spawn()` hands it to the C launcher and turns a failure into
one exception. Everything the child does after clone is C; everything here
happens before clone or in the parent.

`spawn_joined()` is the other entry: a process inside a running container's
namespaces (exec, and every door that execs: the CLI, the Engine API, the OCI
runtime's exec, health checks). It goes through the static join helper,
executed from a sealed memfd, so that nothing in the container's pid
namespace shares memory with this process or has one of our files as its
executable.
"""
from __future__ import annotations

import errno
import fcntl
import os
import socket
from dataclasses import dataclass, field
from importlib import resources

from . import _nsexec
from .errors import CommandNotExecutable, CommandNotFound, LaunchError
from .hooks import HookError
# the plan's flags and mount list, re-exported: _launch.CLONE_NEWNS, _launch.MountSpec...
from .launch_spec import (CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS,  # noqa: F401
                          CLONE_NEWPID, CLONE_NEWUSER, CLONE_NEWUTS, MKDIR_DIR, MKDIR_FILE, MKDIR_NONE,
                          MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_SHARED,
                          MS_SLAVE,
                          MS_STRICTATIME, MountSpec)
from .security import capabilities
from .users import check_id

ffi, lib = _nsexec.ffi, _nsexec.lib

# LaunchPlan.wait_start: where a created child waits to be released
WAIT_CREATED = 1        # after the mounts and the working directory (docker's "created")
WAIT_BEFORE_EXEC = 2    # after every step but the exec: ids, capabilities, seccomp (a warm pool's)
BPF_MAXINSNS = 4096     # the kernel's limit on a seccomp filter


HOOK_BEFORE_PIVOT = 1   # HookSpec.when: createContainer (struct pc_hook)
HOOK_BEFORE_EXEC = 2    # startContainer


@dataclass(frozen=True)
class HookSpec:
    """A hook the container's own process runs (struct pc_hook): the state
    on its stdin is state_head + its pid as the container sees it + state_tail."""

    when: int
    path: str
    argv: tuple
    envp: tuple
    timeout: int = 0
    state_head: str = ""
    state_tail: str = ""


@dataclass
class LaunchPlan:
    """Everything the C launcher needs, already decided. Fields mirror struct pc_plan."""

    argv: list
    envp: list
    root_path: str
    root_source: str
    scratch: str | None = None
    scratch_data: str | None = "mode=0700"
    files: list = field(default_factory=list)          # [(path, bytes or None, mode)]
    root_fstype: str | None = "overlay"
    root_data: str | None = None
    root_flags: int = 0
    root_device: str | None = None  # a root served through this device (FUSE): see on_root_device
    root_propagation: int = MS_REC | MS_SLAVE
    root_parent: str | None = None  # with MS_SHARED: the mount holding root_path (struct pc_plan)
    root_readonly: bool = False
    clone_flags: int = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET
    pdeathsig: int = 9
    umask: int = 0o022              # the child's, whatever the launcher's own
    joins: list = field(default_factory=list)          # [(fd, nstype)]
    owned_fds: list = field(default_factory=list)      # closed once the child has them
    unshare_flags: int = 0          # CLONE_NEW* made after the joins (owned by a joined user namespace)
    pid_ns_fd: int = -1             # a pid namespace the child is cloned into (an OCI bundle's joined one;
                                    # see struct pc_plan): in owned_fds too
    cgroup_fds: list = field(default_factory=list)
    cgroup_dir_fd: int = -1         # a v2 cgroup to clone the child into (clone3 CLONE_INTO_CGROUP);
                                    # cgroup_fds stay the way in when the kernel refuses that
    cloned_into_cgroup: bool = False    # set by spawn(): the child was born inside cgroup_dir_fd
    unshare_cgroupns: bool = False
    loopback_up: bool = True
    mounts: list = field(default_factory=list)         # [MountSpec]
    no_openat2: bool = False        # resolve mount targets without openat2, as before Linux 5.6
    nodes: list = field(default_factory=list)          # [(path, mode, major, minor)]
    symlinks: list = field(default_factory=list)       # [(target, path)]
    masked_paths: list = field(default_factory=list)
    readonly_paths: list = field(default_factory=list)
    hostname: str | None = None
    domainname: str | None = None
    personality: int | None = None  # personality(2) just before exec (an OCI bundle's linux.personality)
    hooks: list = field(default_factory=list)          # [HookSpec]: run by the container's process
    rlimits: list = field(default_factory=list)        # [(resource, soft, hard)]
    oom_score_adj: int | None = None
    cwd: str | None = "/"
    mkdir_cwd: bool = True
    uid: int = 0
    gid: int = 0
    groups: list = field(default_factory=list)
    set_groups: bool = True
    capabilities: frozenset = capabilities.DEFAULT
    ambient: frozenset = frozenset()
    no_new_privs: bool = True
    seccomp_bpf: bytes | None = None
    stdio: tuple = (-1, -1, -1)
    tty: bool = False               # a terminal from the container's devpts; Child.tty_master gets its master
    close_fds: bool = True
    cmd_index: int = 0
    path_env: str | None = None
    init: bool = False
    program: str | None = None      # a program of ours (path under _bin) run, from sealed memory, for
                                    # the command once that is found in the container (hello-world)
    wait_start: int = 0             # stop at "created" until released: WAIT_CREATED or WAIT_BEFORE_EXEC
    on_cloned: object = None        # f(pid): runs in the parent before the child goes on (id maps)
    on_mounted: object = None       # f(pid): runs in the parent while the child waits with its mounts
                                    # made, before pivot_root (an OCI runtime's prestart, createRuntime hooks)
    on_root_device: object = None   # f(pid, fd): starts what serves the root on the child's device fd,
                                    # while the child waits with its root mounted (fd is closed after)


# ---- C conversion ---------------------------------------------------------

_LAST_CAP = capabilities.last_cap()
_cstrings: dict = {}


def _cstr(s, keep):
    """A char[] for s. Strings that recur in every plan are made once."""
    if s is None:
        return ffi.NULL
    b = s.encode() if isinstance(s, str) else s
    if len(b) < 64:
        c = _cstrings.get(b)
        if c is None:
            c = ffi.new("char[]", b)
            # kept by this plan too: another thread (a Pool's) may make and
            # store the same string meanwhile, and the cache then drops ours
            keep.append(c)
            if len(_cstrings) < 4096:
                _cstrings[b] = c
        return c
    c = ffi.new("char[]", b)
    keep.append(c)
    return c


def _cstr_array(items, keep):
    arr = ffi.new("char *[]", len(items) + 1)
    keep.append(arr)
    for i, s in enumerate(items):
        arr[i] = _cstr(s, keep)
    return arr


def _build_array(kind, items, keep):
    if kind == "mounts":
        arr = ffi.new("struct pc_mount[]", len(items))
        for e, m in zip(arr, items, strict=True):
            e.source, e.target = _cstr(m.source, keep), _cstr(m.target, keep)
            e.fstype, e.data = _cstr(m.fstype, keep), _cstr(m.data, keep)
            e.flags, e.remount, e.mkdir = m.flags, m.remount, m.mkdir
            e.tree_fd = m.tree_fd
    elif kind == "nodes":
        arr = ffi.new("struct pc_node[]", len(items))
        for e, (path, mode, major, minor) in zip(arr, items, strict=True):
            e.path, e.mode, e.major, e.minor = _cstr(path, keep), mode, major, minor
    elif kind == "symlinks":
        arr = ffi.new("struct pc_symlink[]", len(items))
        for e, (target, path) in zip(arr, items, strict=True):
            e.target, e.path = _cstr(target, keep), _cstr(path, keep)
    else:
        arr = ffi.new("char *[]", len(items) + 1)
        for i, s in enumerate(items):
            arr[i] = _cstr(s, keep)
    return arr


_arrays: dict = {}


def _array(kind, items, keep):
    """(C array, length) for a list of plan entries. Most plans repeat the
    same lists (the standard mounts, /dev, masked paths): those are built
    once and kept, with everything they point to."""
    if not items:
        return ffi.NULL, 0
    key = (kind, tuple(items))
    hit = _arrays.get(key)
    if hit is None:
        own = []
        arr = _build_array(kind, items, own)
        hit = (arr, own)
        keep.append(hit)    # as in _cstr: the cache may drop it for another thread's
        if len(_arrays) < 256:
            _arrays[key] = hit
    return hit[0], len(items)


def _to_c(plan: LaunchPlan, sync_fd: int, init_fd: int, exec_fd: int):
    keep = []
    c = ffi.new("struct pc_plan *")
    keep.append(c)
    c.clone_flags = plan.clone_flags
    c.vfork = 0 if (plan.wait_start or plan.on_cloned or plan.on_mounted or plan.tty or plan.root_device) else 1
    c.unshare_flags = plan.unshare_flags
    c.pid_ns_fd = plan.pid_ns_fd
    c.tty = int(plan.tty)
    c.pdeathsig = plan.pdeathsig
    c.umask = plan.umask
    if plan.joins:
        j = ffi.new("struct pc_join[]", len(plan.joins))
        keep.append(j)
        for i, (fd, nstype) in enumerate(plan.joins):
            j[i].fd, j[i].nstype = fd, nstype
        c.joins, c.n_joins = j, len(plan.joins)
    c.sync_fd = sync_fd
    c.wait_maps = int(plan.on_cloned is not None)
    c.wait_start = int(plan.wait_start)
    c.wait_mounted = int(plan.on_mounted is not None)
    if plan.cgroup_fds:
        fds = ffi.new("int[]", plan.cgroup_fds)
        keep.append(fds)
        c.cgroup_fds, c.n_cgroup_fds = fds, len(plan.cgroup_fds)
    c.cgroup_dir_fd = plan.cgroup_dir_fd
    c.unshare_cgroupns = int(plan.unshare_cgroupns)
    c.loopback_up = int(plan.loopback_up)

    c.scratch = _cstr(plan.scratch, keep)
    c.scratch_data = _cstr(plan.scratch_data, keep)
    if plan.files:
        fs = ffi.new("struct pc_file[]", len(plan.files))
        keep.append(fs)
        for i, (path, content, mode) in enumerate(plan.files):
            fs[i].path = _cstr(path, keep)
            if content is not None:
                buf = ffi.new("char[]", content)
                keep.append(buf)
                fs[i].content, fs[i].len = buf, len(content)
            fs[i].mode = mode
        c.files, c.n_files = fs, len(plan.files)
    c.root_path = _cstr(plan.root_path, keep)
    c.root_source = _cstr(plan.root_source, keep)
    c.root_fstype = _cstr(plan.root_fstype, keep)
    c.root_data = _cstr(plan.root_data, keep)
    c.root_flags = plan.root_flags
    c.root_device = _cstr(plan.root_device, keep)
    c.root_propagation = plan.root_propagation
    c.root_parent = _cstr(plan.root_parent, keep)
    c.root_readonly = int(plan.root_readonly)
    c.no_openat2 = int(plan.no_openat2)

    c.mounts, c.n_mounts = _array("mounts", plan.mounts, keep)
    c.nodes, c.n_nodes = _array("nodes", plan.nodes, keep)
    c.symlinks, c.n_symlinks = _array("symlinks", plan.symlinks, keep)
    c.masked_paths, c.n_masked_paths = _array("strings", plan.masked_paths, keep)
    c.readonly_paths, c.n_readonly_paths = _array("strings", plan.readonly_paths, keep)

    c.hostname = _cstr(plan.hostname, keep)
    c.domainname = _cstr(plan.domainname, keep)
    if plan.personality is not None:
        c.set_personality, c.personality = 1, plan.personality
    if plan.hooks:
        hs = ffi.new("struct pc_hook[]", len(plan.hooks))
        keep.append(hs)
        for e, h in zip(hs, plan.hooks, strict=True):
            e.when, e.path, e.timeout = h.when, _cstr(h.path, keep), h.timeout
            e.argv, e.envp = _cstr_array(list(h.argv), keep), _cstr_array(list(h.envp), keep)
            e.state_head, e.state_tail = _cstr(h.state_head, keep), _cstr(h.state_tail, keep)
        c.hooks, c.n_hooks = hs, len(plan.hooks)
    if plan.rlimits:
        rl = ffi.new("struct pc_rlimit[]", len(plan.rlimits))
        keep.append(rl)
        for i, (res, soft, hard) in enumerate(plan.rlimits):
            rl[i].resource, rl[i].soft, rl[i].hard = res, soft, hard
        c.rlimits, c.n_rlimits = rl, len(plan.rlimits)
    if plan.oom_score_adj is not None:
        c.set_oom_score_adj = 1
        c.oom_score_adj = plan.oom_score_adj
    c.cwd = _cstr(plan.cwd, keep)
    c.mkdir_cwd = int(plan.mkdir_cwd)
    # every door's ids end here: (uid_t)-1 would leave the process root
    check_id(plan.uid, "uid")
    check_id(plan.gid, "gid")
    for g in plan.groups:
        check_id(g, "supplementary group")
    c.uid, c.gid = plan.uid, plan.gid
    if plan.groups:
        g = ffi.new("unsigned int[]", plan.groups)
        keep.append(g)
        c.groups, c.n_groups = g, len(plan.groups)
    c.set_groups = int(plan.set_groups)
    c.last_cap = _LAST_CAP
    caps = capabilities.mask(plan.capabilities)
    c.cap_bounding = caps
    # docker: a non-root user starts with no effective or permitted capabilities
    c.cap_permitted = caps if plan.uid == 0 else 0
    c.cap_effective = caps if plan.uid == 0 else 0
    c.cap_inheritable = capabilities.mask(plan.ambient)
    c.cap_ambient = capabilities.mask(plan.ambient)
    if plan.ambient:
        c.cap_permitted |= c.cap_ambient
        c.cap_effective |= c.cap_ambient
    c.no_new_privs = int(plan.no_new_privs)
    if plan.seccomp_bpf:
        if len(plan.seccomp_bpf) % 8 or len(plan.seccomp_bpf) // 8 > BPF_MAXINSNS:
            raise LaunchError(errno.EINVAL, "seccomp", f"a filter of {len(plan.seccomp_bpf)} bytes: whole "
                              f"instructions of 8 bytes, at most {BPF_MAXINSNS} of them")
        b = ffi.new("unsigned char[]", plan.seccomp_bpf)
        keep.append(b)
        c.seccomp_bpf, c.seccomp_len = b, len(plan.seccomp_bpf) // 8
    c.stdio = list(plan.stdio)
    c.close_fds = int(plan.close_fds)
    c.argv = _cstr_array(plan.argv, keep)
    c.envp = _cstr_array(plan.envp, keep)
    c.cmd_index = plan.cmd_index
    c.path_env = _cstr(plan.path_env, keep)
    c.init_fd = init_fd
    c.exec_fd = exec_fd
    return c, keep


# ---- the static programs, from sealed memory ---------------------------------

MFD_EXEC = 0x0010  # Linux 6.3: say that the memfd is meant to be executed
_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def sealed_program(name: str) -> int:
    """A close-on-exec memfd holding a copy of the package's static program
    `name` (a path under _bin), sealed against every change (as runc's and crun's copies of
    themselves). The launcher executes programs from these, never from the
    installed files: a process in a container may get a handle to its own
    executable (/proc/PID/exe), and with the installed file it could rewrite
    what this host runs next (CVE-2019-5736)."""
    data = (resources.files("pycontain") / "_bin" / name).read_bytes()
    name = os.path.basename(name)
    try:
        fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING | MFD_EXEC)
    except OSError as e:
        if e.errno != errno.EINVAL:  # EINVAL: a kernel before 6.3, where every memfd may be executed
            raise LaunchError(e.errno, "memfd_create", f"an executable copy of {name}") from None
        fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
    except BaseException:
        os.close(fd)
        raise
    return fd


_programs: dict = {}


def _program_fd(name: str) -> int:
    fd = _programs.get(name)
    if fd is None:
        fd = _programs[name] = sealed_program(name)
    return fd


def init_program_fd() -> int:
    """The static pycontain-init program, from sealed memory, made once per
    process. The launcher executes it by descriptor: the image needs no copy
    of it."""
    return _program_fd("pycontain-init")


def join_helper_fd() -> int:
    """The static join helper (src/join.c), from sealed memory, made once per process."""
    return _program_fd("pycontain-join")


def program_fd(name: str) -> int:
    """The static program `name` (one of PROGRAMS), from sealed memory, made once per process."""
    return _program_fd(name)


PROGRAMS = ("pycontain-init", "pycontain-join", "hello-world/hello", "pycontain-monitor")


def seal_programs() -> None:
    """Makes the sealed copy of every program the launcher may execute now
    rather than at first use: for a process about to lose the right to read
    the package (a child becoming another user), or a test counting fds."""
    for name in PROGRAMS:
        _program_fd(name)


# ---- spawning -----------------------------------------------------------------


def _error_from(err, plan: LaunchPlan) -> LaunchError:
    stage = ffi.string(err.stage).decode(errors="replace")
    detail = ffi.string(err.detail).decode(errors="replace")
    if stage.endswith(" hook"):
        return HookError(f"{stage} {detail}")
    if stage == "exec":
        cmd = plan.argv[plan.cmd_index] if plan.argv else ""
        if err.err in (errno.ENOENT, errno.ENOTDIR):
            return CommandNotFound(cmd)
        if err.err in (errno.EACCES, errno.ENOEXEC, errno.EISDIR, errno.EPERM):
            return CommandNotExecutable(cmd, err.err)
    return LaunchError(err.err, stage, detail)


class Child:
    """The started container process, as the launcher left it.

    In the non-vfork mode (a plan that waits at "created") the child still
    runs on memory this object owns until it exec'd: release() only after
    finish_start()."""

    def __init__(self, plan, cplan, keep, cchild, err, sync):
        self.plan = plan
        self._cplan = cplan
        self._keep = keep
        self._cchild = cchild
        self._err = err
        self._sync = sync
        self.pid = cchild.pid
        self.pidfd = cchild.pidfd if cchild.pidfd >= 0 else None
        self.tty_master = None

    def _reap_and_raise(self):
        exc = _error_from(self._err, self.plan)
        self.close_failed()
        raise exc

    def close_failed(self):
        if self.pid <= 0:
            self._release()
            return
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        self._release()

    def _release(self):
        if self._sync is not None:
            self._sync.close()
            self._sync = None
        if self._cchild is not None:
            lib.pc_child_release(self._cchild)
            self._cchild = None
        self._keep = self._cplan = None

    def wait_created(self):
        """Blocks until the child reached "created" (mounts made, command not
        yet executed); raises the launch error if it failed before."""
        self._expect(b"R")

    def run_at_mounts(self, fn):
        """Waits until the child made its mounts (before pivot_root), runs
        fn(pid) meanwhile and lets it go on; the launch error if it failed before."""
        self._expect(b"H")
        fn(self.pid)
        self._sync.send(b"G")

    def _expect(self, tag: bytes):
        if self._sync.recv(1) != tag:
            self._sync.close()
            self._sync = None
            self._wait_child_gone()
            self._join_reports()
            if self._err.err:
                self._reap_and_raise()
            self.close_failed()
            raise LaunchError(errno.EIO, "launch", "the container process ended before it was created")

    def _wait_child_gone(self):
        # With CLONE_VM the stack is ours until the child exec'd or died:
        # a pidfd (or waitid with WNOWAIT) says when it died.
        if self.pid <= 0:
            return
        try:
            os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            pass

    def set_command(self, argv):
        """Replaces a created child's command, entrypoint and init included
        (argv[plan.cmd_index:] is what runs), before finish_start(). The child
        shares this memory (CLONE_VM) and reads argv only once released: the
        new array is in the plan it reads by then (the release is a write on
        the sync socket, after this store)."""
        if self._sync is None or self._cplan is None or not self.plan.wait_start:
            raise LaunchError(errno.EINVAL, "launch", "only a created container's command can be replaced")
        if len(argv) <= self.plan.cmd_index:
            raise LaunchError(errno.EINVAL, "launch", "an empty command")
        self._cplan.argv = _cstr_array(argv, self._keep)
        self.plan.argv = list(argv)

    def finish_start(self):
        """Releases a created child and waits until it exec'd the command."""
        try:
            self._sync.send(b"G")
        except (BrokenPipeError, ConnectionResetError):
            pass    # it died while created: wait_exec raises what it left in the error
        self.wait_exec()

    def wait_exec(self):
        # EOF: the child's end closed at exec (or at its death; a reset when
        # it died with our last byte unread).
        try:
            while self._sync.recv(64):
                pass
        except ConnectionResetError:
            pass
        self._join_reports()
        if self._err.err:
            self._wait_child_gone()
            self._reap_and_raise()
        self._release()

    def _join_reports(self):
        """A joined plan that waited: its failure arrives on the helper's
        report pipe, complete once the process exec'd or died (now)."""
        if self._cchild is not None and self._cchild.report_fd >= 0:
            lib.pc_join_reports(self._cchild, self._err)

    def _receive_fd(self, tag, what):
        """A descriptor the child sends behind `tag` before it goes on."""
        msg, fds, _, _ = socket.recv_fds(self._sync, 1, 1, socket.MSG_CMSG_CLOEXEC)
        if msg != tag or not fds:
            for fd in fds:
                os.close(fd)
            self.wait_exec()  # the child failed: raises its error
            raise LaunchError(errno.EIO, what, "the container sent no descriptor")
        return fds[0]

    def receive_tty(self):
        """The terminal master the child sends before it goes on."""
        self.tty_master = self._receive_fd(b"T", "tty")

    def serve_root(self):
        """The child mounted its root on a device and sent the device: the
        plan's on_root_device starts what serves it, then the child goes on."""
        fd = self._receive_fd(b"D", "mount rootfs")
        try:
            self.plan.on_root_device(self.pid, fd)
        finally:
            os.close(fd)
        self._sync.send(b"S")

    def abort(self):
        """Kills a child that has not exec'd yet and waits for it."""
        try:
            os.kill(self.pid, 9)
        except ProcessLookupError:
            pass
        self.close_failed()

    def fileno(self):
        return self.pidfd


def spawn(plan: LaunchPlan) -> Child:
    """Starts the plan's process. Without wait_start the command runs when
    this returns; with it the process waits at "created" (see Child). A plan
    that joins a user namespace (an OCI bundle's, its other namespaces then
    unshare_flags, made in it) goes the join helper's way: see spawn_joined."""
    if any(nstype == CLONE_NEWUSER for _, nstype in plan.joins):
        return spawn_joined(plan)
    if any(nstype == CLONE_NEWPID for _, nstype in plan.joins):
        raise ValueError("a plan that joins a pid namespace goes through spawn_joined()")
    return _start(plan, joined=False)


def spawn_joined(plan: LaunchPlan) -> Child:
    """Starts the plan's process inside the namespaces of plan.joins (those
    of a running container: user first, mnt last) and returns when its
    command runs. The one join path: exec from every door goes through here.

    Step by step (src/_nsexec.c, pc_join): a vfork child of this thread
    executes the join helper from a sealed memfd (nothing of this process's
    memory goes with it); the helper reads a flat copy of the plan from a
    socket, makes itself non-dumpable, joins the namespaces, closes their
    descriptors and forks; the fork, our child (CLONE_PARENT) and the only
    process to enter the container's pid namespace, joins the cgroups and
    runs the plan's steps to execve. Failures come back on a pipe as
    (stage, errno, detail); EOF means the command runs. The plan may not
    wait at "created", be started by a callback, or mount anything, unless
    it makes a mount namespace of its own after the joins (unshare_flags: a
    bundle that joins a user namespace); then pc_join returns once the
    process exists and its failure is read when it exec'd or died."""
    own_root = bool(plan.unshare_flags & CLONE_NEWNS)
    if ((plan.wait_start or plan.on_mounted is not None) and not own_root) or plan.on_cloned is not None \
            or plan.root_device or plan.clone_flags:
        raise ValueError("a joined process cannot wait, mount a root or make namespaces at clone")
    return _start(plan, joined=True)


def _start(plan: LaunchPlan, joined: bool) -> Child:
    init_fd = init_program_fd() if plan.init else -1
    exec_fd = _program_fd(plan.program) if plan.program else -1
    helper_fd = join_helper_fd() if joined else -1
    sync = None
    sync_fd = -1
    needs_sync = (plan.wait_start or plan.on_cloned is not None or plan.on_mounted is not None or plan.tty
                  or plan.root_device)
    if needs_sync:
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        sync, sync_fd = parent_end, child_end.fileno()
    try:
        cplan, keep = _to_c(plan, sync_fd, init_fd, exec_fd)
        cchild = ffi.new("struct pc_child *")
        err = ffi.new("struct pc_error *")
        if joined:
            rc = lib.pc_join(cplan, helper_fd, cchild, err)
        else:
            rc = lib.pc_spawn(cplan, cchild, err)
    finally:
        if needs_sync:
            child_end.close()
        for fd in plan.owned_fds:  # the child has its own copies now
            os.close(fd)
        plan.owned_fds = []
    if rc < 0:
        if sync:
            sync.close()
        raise _error_from(err, plan)
    child = Child(plan, cplan, keep, cchild, err, sync)
    plan.cloned_into_cgroup = bool(cchild.into_cgroup)
    if plan.on_cloned is not None:
        try:
            plan.on_cloned(child.pid)
        except BaseException:
            child.abort()
            raise
        child._sync.send(b"M")
    if plan.root_device:
        try:
            child.serve_root()
        except BaseException:
            if child._cchild is not None:
                child.abort()
            raise
    if plan.on_mounted is not None:
        try:
            child.run_at_mounts(plan.on_mounted)
        except BaseException:
            if child._cchild is not None:
                child.abort()
            raise
    if plan.tty:
        try:
            child.receive_tty()
        except BaseException:
            if child._cchild is not None:
                child.abort()
            raise
    if plan.wait_start:
        child.wait_created()
    elif needs_sync:
        child.wait_exec()
    elif err.err:
        child._reap_and_raise()
    else:
        child._release()
    return child


def bind_tree(source: str, recursive: bool, attrs: int, userns_fd: int = -1, idmap_recursive=False) -> int:
    """A detached bind of source (pc_bind_tree), idmapped with userns_fd's maps
    when given: the fd of a MountSpec.tree_fd. LaunchError if the kernel refuses."""
    err = ffi.new("struct pc_error *")
    fd = lib.pc_bind_tree(source.encode(), int(recursive), attrs, userns_fd, int(idmap_recursive), err)
    if fd < 0:
        raise _error_from(err, None)
    return fd


def user_namespace_fd(uid_maps, gid_maps) -> int:
    """A user namespace with these maps ((inside, outside, count) each), as an
    fd: what an idmapped mount is made with. A forked child unshares it (a
    process with threads cannot), we write its maps, keep the namespace and
    let the child go. LaunchError if the kernel refuses."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:    # pragma: no cover - the child never returns into Python code of ours
        try:
            os.close(ready_r)
            os.close(done_w)
            err = ffi.new("struct pc_error *")
            os.write(ready_w, b"1" if lib.pc_unshare(CLONE_NEWUSER, err) == 0 else b"0")
            os.read(done_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise LaunchError(errno.EPERM, "unshare", "a user namespace for an idmapped mount")
        try:
            for name, maps in (("uid_map", uid_maps), ("gid_map", gid_maps)):
                with open(f"/proc/{pid}/{name}", "w") as f:
                    f.write("".join(f"{a} {b} {n}\n" for a, b, n in maps))
            return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise LaunchError(e.errno or errno.EIO, "id map", "of an idmapped mount") from None
    finally:
        os.close(ready_r)
        os.close(done_w)
        os.waitpid(pid, 0)


def new_namespace_fd(nstype: int, inside=None) -> int:
    """A namespace of its own (e.g. a network namespace to configure before
    the container joins it): unshared by this thread, kept as an fd, and the
    thread put back where it was. `inside()` runs while the thread is in it."""
    names = {CLONE_NEWNET: "net", CLONE_NEWIPC: "ipc", CLONE_NEWUTS: "uts"}
    name = names[nstype]
    err = ffi.new("struct pc_error *")
    own = os.open(f"/proc/thread-self/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if lib.pc_unshare(nstype, err) < 0:
            raise LaunchError(err.err, "unshare", name)
        try:
            if inside is not None:
                inside()
            return os.open(f"/proc/thread-self/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
        finally:
            if lib.pc_setns(own, nstype, err) < 0:  # cannot happen as root; fatal if it does
                raise LaunchError(err.err, "setns", f"back to the original {name} namespace")
    finally:
        os.close(own)

