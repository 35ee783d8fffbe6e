"""An OCI bundle's container as a LaunchPlan: exactly the mounts, namespaces,
ids and capabilities its config.json asks for (config.BundleSpec), none of
docker's defaults added.

The root is the bundle's own directory, bound onto itself inside the
container's mount namespace (as runc does): writes land in it, and nothing is
mounted on the host.
"""
from __future__ import annotations

import dataclasses
import fcntl
import os
import re
import struct
import subprocess
import termios
import threading

from . import _launch
from .cgroups import running as running_cgroup
from .config import RLIMITS, SYSCTL_NAMESPACES, BundleProcess, ContainerConfig
from .errors import ConfigError, ContainerStateError, LaunchError
from .hooks import OCI_VERSION, state_around_pid
from .managed.proc import namespace_joins, start_time
from .security import seccomp

L = _launch

# runc's mount option words: (flag, set) where set=False clears it
MOUNT_FLAGS = {
    "ro": (L.MS_RDONLY, True), "rw": (L.MS_RDONLY, False),
    "nosuid": (L.MS_NOSUID, True), "suid": (L.MS_NOSUID, False),
    "nodev": (L.MS_NODEV, True), "dev": (L.MS_NODEV, False),
    "noexec": (L.MS_NOEXEC, True), "exec": (L.MS_NOEXEC, False),
    "sync": (16, True), "async": (16, False),
    "dirsync": (128, True), "mand": (64, True), "nomand": (64, False),
    "noatime": (1024, True), "atime": (1024, False),
    "nodiratime": (2048, True), "diratime": (2048, False),
    "relatime": (1 << 21, True), "norelatime": (1 << 21, False),
    "strictatime": (L.MS_STRICTATIME, True), "nostrictatime": (L.MS_STRICTATIME, False),
}
# binds and propagation: the whole tree is made rslave (or as
# rootfsPropagation says) before anything is mounted; a bind's own word
# (rshared, private...) is applied to it once made
MOUNT_WORDS = {"bind", "rbind", "private", "rprivate", "slave", "rslave", "unbindable", "runbindable",
               "shared", "rshared", "idmap", "ridmap", "remount", "tmpcopyup", "rro", "rrw"}
PROPAGATION = {
    None: L.MS_REC | L.MS_SLAVE, "rslave": L.MS_REC | L.MS_SLAVE, "slave": L.MS_SLAVE,
    "rprivate": L.MS_REC | L.MS_PRIVATE, "private": L.MS_PRIVATE,
    "rshared": L.MS_REC | L.MS_SHARED, "shared": L.MS_SHARED,
    "runbindable": L.MS_REC | (1 << 17), "unbindable": 1 << 17,
}
NAMESPACE_FLAGS = {
    "pid": L.CLONE_NEWPID, "network": L.CLONE_NEWNET, "mount": L.CLONE_NEWNS, "ipc": L.CLONE_NEWIPC,
    "uts": L.CLONE_NEWUTS, "cgroup": L.CLONE_NEWCGROUP, "user": L.CLONE_NEWUSER,
}
# What runc makes in every container's /dev (when the bundle mounts a tmpfs there).
DEFAULT_NODES = (("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/random", 1, 8),
                 ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0))
DEFAULT_SYMLINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                    ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
                    ("pts/ptmx", "/dev/ptmx"))
NODE_TYPES = {"c": 0o020000, "b": 0o060000, "p": 0o010000}


def mount_spec(m) -> L.MountSpec:
    """One config.json mount as the launcher's MountSpec."""
    flags = clear = 0
    data = []
    for o in m.options:
        if o in MOUNT_FLAGS:
            bit, on = MOUNT_FLAGS[o]
            flags, clear = (flags | bit, clear & ~bit) if on else (flags & ~bit, clear | bit)
        elif o in MOUNT_WORDS:
            if o in ("remount", "tmpcopyup", "rro", "rrw"):
                raise ConfigError(f"config.json: mount {m.destination}: option {o!r} is not supported")
        else:
            data.append(o)
    if m.is_bind:
        source = m.source
        mkdir = L.MKDIR_DIR if os.path.isdir(source) else L.MKDIR_FILE
        rec = L.MS_REC if "rbind" in m.options else 0
        return L.MountSpec(source, m.destination, None, None, L.MS_BIND | rec, flags, mkdir)
    return L.MountSpec(m.source or m.type, m.destination, m.type, ",".join(data) or None, flags)


# the hooks the container's own process runs: when, and the status their state says (runc's)
CONTAINER_HOOKS = {"createContainer": (L.HOOK_BEFORE_PIVOT, "creating"),
                   "startContainer": (L.HOOK_BEFORE_EXEC, "created")}


def container_hooks(b, container_id: str) -> list:
    """The bundle's createContainer and startContainer hooks as HookSpecs,
    each with the state it gets on stdin."""
    out = []
    for h in b.hooks:
        if h.kind not in CONTAINER_HOOKS:
            continue
        when, status = CONTAINER_HOOKS[h.kind]
        state = {"ociVersion": OCI_VERSION, "id": container_id, "status": status, "bundle": b.bundle}
        if b.annotations:
            state["annotations"] = dict(b.annotations)
        head, tail = state_around_pid(state)
        out.append(L.HookSpec(when, h.path, tuple(h.args) or (h.path,), tuple(h.env), h.timeout or 0, head, tail))
    return out


def propagation_specs(m) -> list:
    """A mount's propagation words (rshared, private...), each applied to it
    once it is made, in order."""
    return [L.MountSpec(None, m.destination, None, None, PROPAGATION[o], 0, L.MKDIR_NONE)
            for o in m.options if o in PROPAGATION]


def mount_holding(path: str) -> str:
    """The mount point of the mount that holds path (/proc/self/mountinfo)."""
    path = os.path.realpath(path)
    best = "/"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = re.sub(r"\\([0-7]{3})", lambda o: chr(int(o.group(1), 8)), line.split(" ", 5)[4])  # \040...
            if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
                best = point
    return best


def launch_plan(cfg: ContainerConfig, cgroup, root=None, container_id: str = "") -> L.LaunchPlan:
    """The plan for cfg (which has a BundleSpec); cgroup: the container's
    Cgroup, made by the caller, or None. container_id: the id the hooks'
    state says."""
    b = cfg.bundle
    clone_flags = 0
    joins, owned = [], []
    pid_ns_fd = -1
    try:
        for kind, path in b.namespaces:
            flag = NAMESPACE_FLAGS[kind]
            if path is None:
                clone_flags |= flag
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise ConfigError(f"config.json: linux.namespaces: {kind} namespace {path}: {e.strerror}") from None
            owned.append(fd)
            if flag == L.CLONE_NEWPID:
                pid_ns_fd = fd      # cloned into it (the launcher's pid_ns_fd), not setns'd
            else:
                joins.append((fd, flag))
        if not clone_flags & L.CLONE_NEWNS and not any(f == L.CLONE_NEWNS for _, f in joins):
            raise ConfigError("config.json: linux.namespaces: a mount namespace is required")
        # A joined user namespace must own the new ones: they are made after
        # the joins (user first), and the process forked into a new or joined
        # pid namespace (the launcher's join path); no maps to write.
        user_joined = any(f == L.CLONE_NEWUSER for _, f in joins)
        unshare_flags = 0
        if user_joined:
            _check_joined_maps(b)
            unshare_flags, clone_flags = clone_flags & ~L.CLONE_NEWCGROUP, clone_flags & L.CLONE_NEWCGROUP
            if pid_ns_fd >= 0:
                joins.append((pid_ns_fd, L.CLONE_NEWPID))
                pid_ns_fd = -1
            joins.sort(key=lambda j: j[1] != L.CLONE_NEWUSER)
        mounts = []
        for m in b.mounts:
            if m.type == "cgroup":
                if cgroup is None and clone_flags & L.CLONE_NEWUSER:
                    # rootless, no cgroup of its own (none delegated): the host's
                    # hierarchy, read-only, as runc shows it
                    mounts.append(L.MountSpec("/sys/fs/cgroup", m.destination, None, None, L.MS_BIND | L.MS_REC,
                                              L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC))
                    continue
                if cgroup is None:
                    raise ConfigError(f"config.json: mount {m.destination}: the container has no cgroup to show")
                mounts += _cgroup_mounts(cgroup, m)
            else:
                spec = mount_spec(m)
                if m.idmap:
                    # made here: the child, in a user namespace of its own, may not idmap the host's files
                    if spec.remount & ~(L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC):
                        raise ConfigError(f"config.json: mount {m.destination}: an idmapped mount takes only the "
                                          "options ro, nosuid, nodev and noexec beside bind")
                    userns = L.user_namespace_fd(m.uid_mappings, m.gid_mappings)
                    try:
                        tree = L.bind_tree(spec.source, bool(spec.flags & L.MS_REC), spec.remount, userns,
                                           m.idmap == "ridmap")
                    finally:
                        os.close(userns)
                    owned.append(tree)
                    spec = dataclasses.replace(spec, tree_fd=tree)
                mounts.append(spec)
                mounts += propagation_specs(m)
        dev_is_tmpfs = any(m.destination == "/dev" and m.type == "tmpfs" for m in b.mounts)
        nodes = [(path, 0o020666, major, minor) for path, major, minor in DEFAULT_NODES] if dev_is_tmpfs else []
        for path, kind, major, minor, mode, _uid, _gid in b.devices:
            nodes = [n for n in nodes if n[0] != path]
            nodes.append((path, NODE_TYPES[kind] | (mode & 0o7777), major, minor))
        userns = bool(clone_flags & L.CLONE_NEWUSER) or user_joined
        if userns:
            # no mknod in a user namespace: the host's nodes are bound, as runc does
            mounts += [_device_bind(path, major, minor) for path, _mode, major, minor in nodes]
            nodes = []
        caps = b.capabilities
        profile = cfg.seccomp_profile
        plan = L.LaunchPlan(
            argv=list(cfg.command), envp=list(cfg.env),
            path_env=next((e[5:] for e in cfg.env if e.startswith("PATH=")), None),
            root_path=cfg.rootfs, root_source=cfg.rootfs, root_fstype=None, scratch=None,
            root_readonly=cfg.read_only, root_propagation=PROPAGATION[b.rootfs_propagation],
            root_parent=mount_holding(cfg.rootfs) if PROPAGATION[b.rootfs_propagation] & L.MS_SHARED else None,
            clone_flags=clone_flags & ~L.CLONE_NEWCGROUP,
            joins=joins, owned_fds=owned, pid_ns_fd=pid_ns_fd, unshare_flags=unshare_flags,
            loopback_up=bool((clone_flags | unshare_flags) & L.CLONE_NEWNET),
            mounts=mounts, nodes=nodes, symlinks=list(DEFAULT_SYMLINKS) if dev_is_tmpfs else [],
            masked_paths=list(b.masked_paths), readonly_paths=list(b.readonly_paths),
            hostname=cfg.hostname, domainname=b.domainname, personality=b.personality,
            hooks=container_hooks(b, container_id),
            rlimits=[(RLIMITS[n], s, h) for n, s, h in cfg.ulimits],
            oom_score_adj=cfg.oom_score_adj,
            cwd=cfg.workdir, uid=b.uid, gid=b.gid, groups=list(b.additional_gids),
            capabilities=caps, ambient=b.ambient,
            no_new_privs=cfg.no_new_privileges,
            seccomp_bpf=seccomp.filter_for(profile, caps, root=root),
            tty=b.terminal,
        )
    except BaseException:
        for fd in owned:
            os.close(fd)
        raise
    if userns and not user_joined:
        plan.on_cloned = _id_map_writer(b.uid_mappings, b.gid_mappings)
        if _own_ids_only(b.uid_mappings, b.gid_mappings):
            # the kernel lets an unprivileged caller map its own ids, with setgroups denied
            if b.additional_gids:
                raise ConfigError("config.json: process.user.additionalGids: a user namespace that maps only "
                                  "the caller's own ids has no other groups")
            plan.set_groups = False
    if cgroup is not None:
        plan.cgroup_fds = cgroup.join_fds()
        # in a user namespace of its own a cgroup mount needs a cgroup
        # namespace that it owns (it shows the container's own cgroup as root)
        plan.unshare_cgroupns = bool(clone_flags & L.CLONE_NEWCGROUP) or userns
    elif clone_flags & L.CLONE_NEWCGROUP:
        plan.unshare_cgroupns = True
    return plan


def _device_bind(path: str, major: int, minor: int) -> L.MountSpec:
    """The host's node `path`, bound at the same path in the container (a
    user namespace may not mknod); it must be the device the bundle names."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise ConfigError(f"config.json: linux.devices: {path}: {e.strerror} on the host (a user namespace "
                          "binds the host's device nodes)") from None
    if (os.major(st.st_rdev), os.minor(st.st_rdev)) != (major, minor):
        raise ConfigError(f"config.json: linux.devices: {path}: the host's node is not device {major}:{minor} "
                          "(a user namespace binds the host's device nodes)")
    return L.MountSpec(path, path, None, None, L.MS_BIND, 0, L.MKDIR_FILE)


def _check_joined_maps(b) -> None:
    """A bundle that joins a user namespace and still lists maps (containerd
    does): they must be that namespace's, as runc checks; nothing is written."""
    if not (b.uid_mappings or b.gid_mappings):
        return
    path = next(p for kind, p in b.namespaces if kind == "user")
    owner = re.fullmatch(r"/proc/(\d+|self|thread-self)/ns/user", path)
    for name, want in (("uid_map", b.uid_mappings), ("gid_map", b.gid_mappings)):
        key = f"linux.{name[:3]}Mappings"
        if owner is None:
            raise ConfigError(f"config.json: {key}: cannot check them against the joined user namespace {path} "
                              "(a /proc/PID/ns/user path can be)")
        try:
            with open(f"/proc/{owner.group(1)}/{name}") as f:
                have = tuple(tuple(int(v) for v in line.split()) for line in f if line.strip())
        except OSError as e:
            raise ConfigError(f"config.json: {key}: {path}: {e.strerror}") from None
        if sorted(have) != sorted(want):
            raise ConfigError(f"config.json: {key}: not the maps of the joined user namespace {path}")


def _own_ids_only(uid_mappings, gid_mappings) -> bool:
    """A caller who is not root, whose bundle maps just its own uid and gid."""
    return os.geteuid() != 0 and len(uid_mappings) == len(gid_mappings) == 1 and \
        uid_mappings[0][1:] == (os.geteuid(), 1) and gid_mappings[0][1:] == (os.getegid(), 1)


def _id_map_writer(uid_mappings, gid_mappings):
    """LaunchPlan.on_cloned for a new user namespace: the bundle's maps,
    written while the child waits: by us as root; by a caller who is not, its
    own ids directly (setgroups denied first, as the kernel requires), any
    other map through the setuid newuidmap and newgidmap (/etc/subuid, subgid)."""
    own = _own_ids_only(uid_mappings, gid_mappings)
    helpers = os.geteuid() != 0 and not own

    def write(pid):
        if own:
            with open(f"/proc/{pid}/setgroups", "w") as f:
                f.write("deny")
        for name, maps in (("uid_map", uid_mappings), ("gid_map", gid_mappings)):
            key = f"linux.{name[:3]}Mappings"
            if helpers:
                tool = "newuidmap" if name == "uid_map" else "newgidmap"
                try:
                    r = subprocess.run([tool, str(pid), *(str(v) for m in maps for v in m)],
                                       capture_output=True, text=True)
                except OSError as e:
                    raise ConfigError(f"config.json: {key}: {tool}: {e.strerror} (Debian: apt-get install "
                                      "uidmap)") from None
                if r.returncode != 0:
                    raise ConfigError(f"config.json: {key}: {tool} refused the map: "
                                      f"{r.stderr.strip() or r.returncode}")
                continue
            try:
                with open(f"/proc/{pid}/{name}", "w") as f:
                    f.write("".join(f"{c} {h} {n}\n" for c, h, n in maps))
            except OSError as e:
                raise ConfigError(f"config.json: {key}: the kernel refused the map: {e.strerror}") from None
    return write


def _cgroup_mounts(cgroup, m) -> list:
    """The container's own cgroup at the bundle's cgroup mount point."""
    read_only = "ro" in m.options
    specs = cgroup.mount_specs(read_only=read_only)
    if m.destination == "/sys/fs/cgroup":
        return specs
    prefix = "/sys/fs/cgroup"
    return [L.MountSpec(s.source, m.destination + s.target[len(prefix):], s.fstype, s.data, s.flags, s.remount,
                        s.mkdir) for s in specs]


SYSCTL_NAMESPACE_TYPES = {"network": ("net", L.CLONE_NEWNET), "ipc": ("ipc", L.CLONE_NEWIPC)}


def apply_sysctls(pid: int, sysctls) -> None:
    """Writes the bundle's sysctls into the namespaces of the created (not
    yet started) process `pid`. /proc/sys resolves namespaced entries by the
    writer's namespaces: a short-lived thread joins them and writes (the
    calling thread's own namespaces never change)."""
    failure = []

    def write():
        err = L.ffi.new("struct pc_error *")
        joined = set()
        try:
            for name, value in sysctls:
                kind = next(ns for prefix, ns in SYSCTL_NAMESPACES if name.startswith(prefix))
                nsname, nstype = SYSCTL_NAMESPACE_TYPES[kind]
                if kind not in joined:
                    fd = os.open(f"/proc/{pid}/ns/{nsname}", os.O_RDONLY | os.O_CLOEXEC)
                    try:
                        if L.lib.pc_setns(fd, nstype, err) < 0:
                            raise LaunchError(err.err, "setns", f"the container's {kind} namespace")
                    finally:
                        os.close(fd)
                    joined.add(kind)
                with open("/proc/sys/" + name.replace(".", "/"), "w") as f:
                    f.write(value)
        except OSError as e:
            failure.append(LaunchError(e.errno, "sysctl", f"{name}={value}: {e.strerror}")
                           if not isinstance(e, LaunchError) else e)

    t = threading.Thread(target=write, name="pycontain-sysctl")
    t.start()
    t.join()
    if failure:
        raise failure[0]



def spawn_in(init_pid: int, init_start: int, proc: BundleProcess, *, seccomp_bpf: bytes | None = None,
             stdio=(-1, -1, -1), survive_parent=False) -> L.Child:
    """Starts `proc` inside the running container whose init is
    (init_pid, init_start): its namespaces, its own cgroups, the process's
    ids, capabilities, rlimits, umask and no_new_privs, and the container's
    seccomp filter (seccomp_bpf, compiled at create). The one join path,
    _launch.spawn_joined; returns its Child (our child, tty_master when
    proc.terminal). survive_parent: no parent-death signal (an OCI runtime's
    exec: the caller's subreaper takes the process when we exit).
    ContainerStateError when the init is gone."""
    joins, fds = namespace_joins(init_pid)
    cgroup_fds = running_cgroup.procs_fds(init_pid)
    if start_time(init_pid) != init_start:   # it died (and the pid was reused?) while we opened them
        for fd in fds + cgroup_fds:
            os.close(fd)
        raise ContainerStateError("the container is not running")
    plan = L.LaunchPlan(
        argv=list(proc.args), envp=list(proc.env),
        path_env=next((e[5:] for e in proc.env if e.startswith("PATH=")), None),
        root_path="", root_source="", root_fstype=None, clone_flags=0, joins=joins, loopback_up=False,
        cwd=proc.cwd, mkdir_cwd=False, uid=proc.uid, gid=proc.gid, groups=list(proc.additional_gids),
        rlimits=[(RLIMITS[n], s, h) for n, s, h in proc.rlimits], oom_score_adj=proc.oom_score_adj,
        capabilities=proc.capabilities, ambient=proc.ambient, no_new_privs=proc.no_new_privileges,
        seccomp_bpf=seccomp_bpf, stdio=tuple(stdio), tty=proc.terminal,
        cgroup_fds=cgroup_fds, owned_fds=fds + cgroup_fds,
    )
    if proc.umask is not None:
        plan.umask = proc.umask
    if survive_parent:
        plan.pdeathsig = 0
    child = L.spawn_joined(plan)
    if proc.console_size and child.tty_master is not None:
        fcntl.ioctl(child.tty_master, termios.TIOCSWINSZ, struct.pack("HHHH", *proc.console_size, 0, 0))
    return child
