"""ContainerConfig: what a container should be, validated, before anything exists.

Every check that can be made without touching the machine happens here, so
that bad input fails with one clear line and leaves nothing behind.
"""
from __future__ import annotations

import dataclasses
import os
import re
import stat
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Mapping

from . import names
from .cgroups.devices import DEVICE_RULES, rule as device_rule
from .cgroups.limits import DeviceRate, Limits, format_cpu_list, systemd_cgroup_path
from .environment import merge_env, normalize_env  # noqa: F401  (also config.merge_env, as before)
from .errors import ConfigError
from .network import validate_mode
from .network.etcfiles import parse_add_host, parse_dns, parse_dns_search
from .network.ports import PortMapping, parse_publish
from .security import capabilities, seccomp
from .users import check_id

NETWORK_MODES = ("none", "host", "bridge", "container:NAME", "a network name")  # pycontain.network.validate_mode
HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$")
ENV_NAME_RE = re.compile(r"^[^=\0]+$")


MOUNT_TYPES = ("bind", "tmpfs", "volume")

# The container's own kernel filesystems (fresh proc, sysfs and /dev). What
# the masked and read-only paths protect lives there, and the engine covers
# masked files with /dev/null: a mount there whose content a container wrote
# (an image's VOLUME, a volume) could turn that into a way out (runc's
# checkProcMount; CVE-2025-31133).
KERNEL_DIRS = ("/proc", "/sys", "/dev")
# /proc files that a bind mount may cover (lxcfs serves them), as runc allows
PROC_FILES_BINDABLE = (
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps", "/proc/uptime",
    "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev", "/proc/sys/kernel/ns_last_pid",
)


def _on_or_under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


def check_mount_target(target: str, kind: str, source: str | None = None) -> None:
    """Refuses a mount the engine's own /proc, /sys or /dev would be at the
    mercy of. kind: "image" for an image's VOLUME (refused anywhere in them),
    or a Mount type. A volume's content is written by containers, so it is
    refused there too; a bind or a tmpfs may sit under /sys and /dev (a host
    socket, /dev/shm, /sys/fs/cgroup), never on them, and not in /proc but
    for the files lxcfs serves."""
    target = os.path.normpath(target)
    where = "an image VOLUME" if kind == "image" else f"a {kind} mount"
    for top in KERNEL_DIRS:
        if not _on_or_under(target, top):
            continue
        if kind in ("image", "volume"):
            raise ConfigError(f"{where} cannot be at {target}: not on or under {', '.join(KERNEL_DIRS)}")
        if top == "/proc":
            if kind == "bind" and target in PROC_FILES_BINDABLE and source and os.path.isfile(source):
                return
            raise ConfigError(f"{where} cannot be at {target}: not on or under /proc "
                              f"(but for binds of {', '.join(PROC_FILES_BINDABLE)})")
        if target == top:
            raise ConfigError(f"{where} cannot replace {top}: the container's own is made by the engine")


@dataclass(frozen=True)
class Mount:
    """A host path, a volume or a fresh tmpfs made visible inside the container.

    Mount("/srv/data", "/data", read_only=True)   # bind mount
    Mount("pgdata", "/var/lib/postgresql/data", type="volume")   # named volume (pycontain.volumes)
    Mount(None, "/cache", type="volume")          # anonymous volume, removed with the container
    Mount(None, "/scratch", type="tmpfs", options=("size=64m",))
    """

    source: str | None
    target: str
    read_only: bool = False
    type: str = "bind"
    options: tuple = ()

    def __post_init__(self):
        if self.type not in MOUNT_TYPES:
            raise ConfigError(f"mount {self.target!r}: unknown type {self.type!r} ({', '.join(MOUNT_TYPES)})")
        if not isinstance(self.target, str) or not self.target.startswith("/"):
            raise ConfigError(f"mount target {self.target!r} must be an absolute path")
        if "\0" in self.target or (self.source and "\0" in self.source):
            raise ConfigError("mount paths cannot contain NUL")
        if os.path.normpath(self.target) == "/":
            raise ConfigError("cannot mount over the container's root directory")
        if self.type == "bind":
            if not self.source:
                raise ConfigError(f"bind mount {self.target!r} needs a source")
            if not os.path.isabs(self.source):
                raise ConfigError(f"bind mount source {self.source!r} must be an absolute path")
        object.__setattr__(self, "options", tuple(self.options))
        if self.type == "volume":
            if self.source is not None:
                names.check_volume(self.source)
            bad = [o for o in self.options if o != "nocopy"]
            if bad:
                raise ConfigError(f"volume {self.target!r}: unknown option {bad[0]!r} (nocopy)")

    @classmethod
    def parse(cls, spec: str) -> "Mount":
        """docker's -v syntax: SRC:DST[:ro|rw|nocopy], NAME:DST[:...] (a volume)
        or DST alone (an anonymous volume)."""
        parts = spec.split(":")
        if len(parts) == 1 and parts[0].startswith("/"):
            return cls(None, parts[0], type="volume")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise ConfigError(f"invalid volume spec {spec!r}: expected SRC:DST[:ro], NAME:DST[:ro] or DST")
        ro = False
        opts = []
        if len(parts) == 3:
            opts = parts[2].split(",")
            for o in opts:
                if o not in ("ro", "rw", "z", "Z", "nocopy"):
                    raise ConfigError(f"invalid volume option {o!r} in {spec!r}")
            ro = "ro" in opts
        src = os.path.abspath(parts[0]) if parts[0].startswith((".", "/")) else parts[0]
        if not src.startswith("/"):
            return cls(src, parts[1], read_only=ro, type="volume",
                       options=("nocopy",) if "nocopy" in opts else ())
        if "nocopy" in opts:
            raise ConfigError(f"invalid volume option 'nocopy' in {spec!r}: only for volumes")
        return cls(src, parts[1], read_only=ro)

    @classmethod
    def parse_mount_flag(cls, spec: str) -> "Mount":
        """docker's --mount syntax: type=bind|volume|tmpfs,source=...,target=...,
        readonly, volume-nocopy, tmpfs-size=..., tmpfs-mode=..."""
        kind, src, dst, ro, opts = "volume", None, None, False, []
        for item in spec.split(","):
            key, sep, value = item.partition("=")
            key = key.strip().lower()
            if key in ("readonly", "ro"):
                if sep and value.lower() not in ("1", "true", "0", "false"):
                    raise ConfigError(f"invalid --mount value {item!r} in {spec!r}")
                ro = not sep or value.lower() in ("1", "true")
            elif key == "volume-nocopy" and (not sep or value.lower() in ("1", "true")):
                opts.append("nocopy")
            elif not sep or not value:
                raise ConfigError(f"invalid --mount field {item!r} in {spec!r}: expected KEY=VALUE")
            elif key == "type":
                kind = value
            elif key in ("source", "src"):
                src = value
            elif key in ("target", "destination", "dst"):
                dst = value
            elif key == "tmpfs-size":
                opts.append(f"size={value}")
            elif key == "tmpfs-mode":
                opts.append(f"mode={value}")
            else:
                raise ConfigError(f"unknown --mount field {key!r} in {spec!r}")
        if not dst:
            raise ConfigError(f"invalid --mount {spec!r}: target is required")
        if kind not in MOUNT_TYPES:
            raise ConfigError(f"invalid --mount {spec!r}: type must be one of {', '.join(MOUNT_TYPES)}")
        if kind == "tmpfs" and src:
            raise ConfigError(f"invalid --mount {spec!r}: a tmpfs has no source")
        if kind != "tmpfs" and any(o.startswith(("size=", "mode=")) for o in opts):
            raise ConfigError(f"invalid --mount {spec!r}: tmpfs options need type=tmpfs")
        if kind != "volume" and "nocopy" in opts:
            raise ConfigError(f"invalid --mount {spec!r}: volume-nocopy needs type=volume")
        return cls(src, dst, read_only=ro, type=kind, options=tuple(opts))


@dataclass(frozen=True)
class Device:
    """A host device node made available in the container (docker's --device)."""

    host_path: str
    container_path: str
    permissions: str = "rwm"
    kind: str = "c"
    major: int = 0
    minor: int = 0

    @classmethod
    def parse(cls, spec: str) -> "Device":
        """HOST[:CONTAINER][:PERMISSIONS], e.g. /dev/fuse or /dev/sdc:/dev/xvdc:r."""
        parts = spec.split(":")
        if not 1 <= len(parts) <= 3 or not parts[0]:
            raise ConfigError(f"invalid device {spec!r}: expected HOST[:CONTAINER][:rwm]")
        host = parts[0]
        perms = "rwm"
        target = host
        if len(parts) == 2:
            if parts[1] and set(parts[1]) <= set("rwm") and not parts[1].startswith("/"):
                perms = parts[1]
            else:
                target = parts[1]
        elif len(parts) == 3:
            target, perms = parts[1], parts[2]
        if not perms or not set(perms) <= set("rwm"):
            raise ConfigError(f"invalid device permissions {perms!r} in {spec!r}: a combination of r, w and m")
        if not host.startswith("/") or not target.startswith("/"):
            raise ConfigError(f"invalid device {spec!r}: paths must be absolute")
        try:
            st = os.stat(host)
        except OSError as e:
            raise ConfigError(f"device {host}: {e.strerror}") from None
        if stat.S_ISCHR(st.st_mode):
            kind = "c"
        elif stat.S_ISBLK(st.st_mode):
            kind = "b"
        else:
            raise ConfigError(f"{host} is not a device node")
        return cls(host, os.path.normpath(target), perms, kind, os.major(st.st_rdev), os.minor(st.st_rdev))


@dataclass(frozen=True)
class ContainerConfig:
    """The full description of one container. Built by Container(...)."""

    image: str | None = None
    rootfs: str | None = None
    command: tuple | None = None
    entrypoint: tuple | None = None
    env: tuple = ()                     # ("K=V", ...) in order, as docker keeps it
    hostname: str | None = None
    user: str | None = None
    workdir: str | None = None
    mounts: tuple = ()
    read_only: bool = False
    init: bool = False
    network: str = "none"
    cap_add: tuple = ()
    cap_drop: tuple = ()
    privileged: bool = False
    no_new_privileges: bool = True
    ulimits: tuple = ()                 # (("nofile", soft, hard), ...)
    oom_score_adj: int | None = None
    writable_layer: str = "memory"      # where the container's writes go: "memory" or "disk" (rootfs.py)
    # security (pycontain/security/seccomp.py): "default", "unconfined", a path or a dict;
    # security_opt: docker's seccomp=FILE|unconfined, no-new-privileges[:true|false]
    seccomp: object = "default"
    security_opt: tuple = ()
    group_add: tuple = ()               # supplementary groups: names in the image, or gids
    seccomp_profile: object = field(default=None, init=False, compare=False, repr=False)
    # networking (pycontain/network/)
    name: str | None = None             # resolvable by other containers on a user-defined network
    ports: tuple = ()                   # PortMapping from docker's -p forms
    dns: tuple = ()                     # nameservers for resolv.conf
    dns_search: tuple = ()              # its search domains ("." : no search line)
    add_hosts: tuple = ()               # (name, ip) extra /etc/hosts entries
    resources: object = None            # pycontain.cgroups.Limits, validated by Container
    devices: tuple = ()                 # Device: host device nodes passed in (docker's --device)
    extra: Mapping = field(default_factory=dict)
    # an OCI bundle's own settings (container_config_from_oci): set up exactly as it says
    bundle: "BundleSpec | None" = None

    def __post_init__(self):
        if (self.image is None) == (self.rootfs is None):
            raise ConfigError("give exactly one of image or rootfs")
        if self.rootfs is not None:
            if not os.path.isdir(self.rootfs):
                raise ConfigError(f"rootfs {self.rootfs!r} is not a directory")
            object.__setattr__(self, "rootfs", os.path.realpath(self.rootfs))
        for name in ("command", "entrypoint"):
            v = getattr(self, name)
            if v is not None:
                if isinstance(v, (str, bytes)):
                    raise ConfigError(f"{name} must be a list of strings, not a string")
                v = tuple(v)
                if not all(isinstance(a, str) and "\0" not in a for a in v):
                    raise ConfigError(f"{name} must be a list of strings without NUL")
                object.__setattr__(self, name, v)
        if self.hostname is not None and not HOSTNAME_RE.match(self.hostname):
            raise ConfigError(f"invalid hostname {self.hostname!r}")
        if self.workdir is not None and not self.workdir.startswith("/"):
            raise ConfigError(f"the working directory {self.workdir!r} is invalid, it needs to be an absolute path")
        if self.writable_layer not in ("memory", "disk"):
            raise ConfigError(f"writable_layer must be 'memory' or 'disk', not {self.writable_layer!r}")
        self._validate_network()
        object.__setattr__(self, "devices", tuple(Device.parse(d) if isinstance(d, str) else d
                                                  for d in self.devices))
        object.__setattr__(self, "env", tuple(normalize_env(self.env)))
        object.__setattr__(self, "mounts", tuple(self.mounts))
        for m in self.mounts:
            if not isinstance(m, Mount):
                raise ConfigError(f"mounts must be Mount objects, got {m!r}")
            if m.type == "bind" and not os.path.exists(m.source):
                raise ConfigError(f"bind mount source path does not exist: {m.source}")
            check_mount_target(m.target, m.type, m.source)
        # Validates the names now, not at start.
        capabilities.resolve(self.cap_add, self.cap_drop, self.privileged)
        self._resolve_security()
        object.__setattr__(self, "ulimits", tuple(parse_ulimit(u) for u in self.ulimits))
        if self.oom_score_adj is not None and not -1000 <= int(self.oom_score_adj) <= 1000:
            raise ConfigError("oom_score_adj must be between -1000 and 1000")

    # ---- JSON: a managed container's record keeps its validated config --------------

    def to_json(self) -> dict:
        """The configuration as JSON-ready data; from_json() gives it back,
        validated again (a bind source or a seccomp file may have gone)."""
        out = {}
        for f in fields(self):
            if not f.init or f.name == "extra":
                continue
            out[f.name] = _jsonable(getattr(self, f.name))
        out["ports"] = [p.to_dict() for p in self.ports]
        out["resources"] = _limits_to_json(self.resources) if self.resources is not None else None
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

    @classmethod
    def from_json(cls, data: dict) -> "ContainerConfig":
        known = {f.name for f in fields(cls) if f.init}
        kw = {k: v for k, v in data.items() if k in known}
        kw["mounts"] = tuple(Mount(m["source"], m["target"], read_only=m["read_only"], type=m["type"],
                                   options=tuple(m["options"])) for m in kw.get("mounts", ()))
        kw["devices"] = tuple(Device(**d) for d in kw.get("devices", ()))
        kw["ports"] = tuple(PortMapping.from_dict(p) for p in kw.get("ports", ()))
        kw["add_hosts"] = tuple(tuple(h) for h in kw.get("add_hosts", ()))
        kw["ulimits"] = tuple(tuple(u) for u in kw.get("ulimits", ()))
        if kw.get("resources") is not None:
            kw["resources"] = _limits_from_json(kw["resources"])
        for name in ("cap_add", "cap_drop", "security_opt", "group_add", "dns", "dns_search", "env"):
            if name in kw:
                kw[name] = tuple(kw[name])
        return cls(**kw)

    def _resolve_security(self):
        """Applies --security-opt and reads the seccomp profile now, so that a
        bad profile fails before anything exists. privileged drops the default
        filter; a profile given explicitly still applies (docker >= 20.10)."""
        opts = seccomp.parse_security_opt(self.security_opt)
        if opts.seccomp is not None:
            object.__setattr__(self, "seccomp", opts.seccomp)
        if opts.no_new_privileges is not None:
            object.__setattr__(self, "no_new_privileges", opts.no_new_privileges)
        profile = seccomp.load_profile(self.seccomp)
        if self.privileged and self.seccomp in (None, "default", "builtin"):
            profile = None
        object.__setattr__(self, "seccomp_profile", profile)
        if isinstance(self.group_add, (str, int)):
            object.__setattr__(self, "group_add", (self.group_add,))
        groups = tuple(str(g) for g in self.group_add)
        if not all(g and ":" not in g and "\0" not in g for g in groups):
            raise ConfigError(f"invalid group_add {self.group_add!r}: give group names or numeric gids")
        object.__setattr__(self, "group_add", groups)
        for g in groups:
            if g.isascii() and g.isdigit():
                check_id(g, "group")
        if self.user is not None:
            user_part, _, group_part = str(self.user).partition(":")
            for part, what in ((user_part, "user"), (group_part, "group")):
                if part.isascii() and part.isdigit():
                    check_id(part, what)

    def _validate_network(self):
        if self.network in ("none", "host") and not (self.ports or self.dns or self.dns_search or self.add_hosts
                                                     or self.name):
            return  # the common case has nothing to check
        validate_mode(self.network)
        if self.name is not None:
            names.check("container", self.name)
        for attr, parse in (("ports", parse_publish), ("dns", parse_dns), ("dns_search", parse_dns_search),
                            ("add_hosts", parse_add_host)):
            v = getattr(self, attr)
            if isinstance(v, (str, bytes)):
                v = (v,)
            object.__setattr__(self, attr, tuple(parse(x) for x in v or ()))
        if self.ports and (self.network in ("none", "host") or self.network.startswith("container:")):
            raise ConfigError(f"published ports need a bridge network, not network {self.network!r}")


RLIMITS = {
    "core": 4, "cpu": 0, "data": 2, "fsize": 1, "locks": 10, "memlock": 8,
    "msgqueue": 12, "nice": 13, "nofile": 7, "nproc": 6, "rss": 5, "rtprio": 14,
    "rttime": 15, "sigpending": 11, "stack": 3, "as": 9,
}
RLIM_INFINITY = (1 << 64) - 1


def parse_ulimit(u):
    """'nofile=1024:2048', 'nofile=1024' or ("nofile", soft, hard) -> (resource, soft, hard)."""
    if isinstance(u, str):
        name, sep, val = u.partition("=")
        if not sep:
            raise ConfigError(f"invalid ulimit {u!r}: expected NAME=SOFT[:HARD]")
        soft, _, hard = val.partition(":")
        u = (name, soft, hard or soft)
    try:
        name, soft, hard = u
    except (TypeError, ValueError):
        raise ConfigError(f"invalid ulimit {u!r}") from None
    if name not in RLIMITS:
        raise ConfigError(f"unknown ulimit {name!r} (one of {', '.join(sorted(RLIMITS))})")

    def num(x):
        if x in (-1, "-1", "unlimited"):
            return RLIM_INFINITY
        try:
            n = int(x)
        except (TypeError, ValueError):
            raise ConfigError(f"invalid ulimit value {x!r} for {name}") from None
        if n < 0:
            raise ConfigError(f"invalid ulimit value {x!r} for {name}")
        return n

    soft, hard = num(soft), num(hard)
    if soft > hard:
        raise ConfigError(f"ulimit {name}: soft limit {soft} is above the hard limit {hard}")
    return (name, soft, hard)


def _jsonable(v):
    """Tuples, frozensets and the small frozen dataclasses of a config as JSON data."""
    if is_dataclass(v):
        return {f.name: _jsonable(getattr(v, f.name)) for f in fields(v)}
    if isinstance(v, (frozenset, set)):
        return sorted(v)
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    return v


def limits_json(limits: Limits) -> dict:
    """A Limits as a record keeps it (ContainerConfig.to_json()'s "resources")."""
    return _limits_to_json(limits)


def limits_from_record(data: dict | None) -> Limits:
    """The Limits a record's "resources" holds (none: no limits)."""
    return _limits_from_json(data) if data else Limits()


def _limits_to_json(limits: Limits) -> dict:
    return _jsonable(limits)


def _limits_from_json(data: dict) -> Limits:
    kw = dict(data)
    for name in ("cpuset_cpus", "cpuset_mems"):
        if kw.get(name) is not None:
            kw[name] = frozenset(kw[name])
    for name in ("device_read_bps", "device_write_bps", "device_read_iops", "device_write_iops"):
        kw[name] = tuple(DeviceRate(**d) for d in kw.get(name, ()))
    for name in ("hugepage_limits", "unified"):
        kw[name] = tuple(tuple(pair) for pair in kw.get(name, ()))
    return Limits(**kw)


# ---- OCI runtime bundles (config.json) ------------------------------------------------
#
# An OCI runtime (pycontain-runc, pycontain/oci/) gets a bundle: a directory
# with config.json and a root filesystem. from_oci() turns the config into a
# ContainerConfig once; its docker-shaped fields carry what both models share
# (command, env, cwd, hostname, rlimits, seccomp, limits) and a BundleSpec
# carries what only the bundle says: the whole mount table, the namespaces,
# exact ids and capability sets, device nodes. A container with a BundleSpec
# is set up exactly as the bundle says, with none of docker's defaults added.

OCI_NAMESPACES = {"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"}
BUNDLE_PROPAGATION = ("private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable",
                      "runbindable")


@dataclass(frozen=True)
class BundleMount:
    """One entry of config.json's mounts, in order, options as given."""

    destination: str
    type: str | None = None
    source: str | None = None
    options: tuple = ()
    idmap: str | None = None            # "idmap" or "ridmap" (recursive): an idmapped bind
    uid_mappings: tuple = ()            # its own maps; none: the container's user namespace's
    gid_mappings: tuple = ()

    @property
    def is_bind(self) -> bool:
        return self.type == "bind" or "bind" in self.options or "rbind" in self.options


HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
# run by the container's own process (the launcher), not by the runtime
CONTAINER_HOOK_KINDS = ("createContainer", "startContainer")
PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}    # PER_LINUX, PER_LINUX32


@dataclass(frozen=True)
class BundleHook:
    """One of config.json's hooks: run by the runtime with the state on stdin."""

    kind: str                           # one of HOOK_KINDS
    path: str
    args: tuple = ()
    env: tuple = ()
    timeout: int | None = None


@dataclass(frozen=True)
class BundleSpec:
    """What an OCI config.json says beyond ContainerConfig's own fields."""

    bundle: str                         # the bundle directory (absolute)
    mounts: tuple = ()                  # BundleMount, in order
    namespaces: tuple = ()              # (type, path or None): a new one, or joined by path
    masked_paths: tuple = ()
    readonly_paths: tuple = ()
    uid: int = 0
    gid: int = 0
    additional_gids: tuple = ()
    umask: int | None = None
    # the launcher gives uid 0 its capability set as bounding, permitted and
    # effective: a bundle's five sets become the narrowest of the first three
    capabilities: frozenset = frozenset()
    ambient: frozenset = frozenset()
    devices: tuple = ()                 # (path, "c"|"b"|"p", major, minor, mode, uid, gid)
    device_rules: tuple = ()            # ("c"|"b"|"a", major|None, minor|None, access): allowed
    cgroups_path: str | None = None
    rootfs_propagation: str | None = None
    sysctl: tuple = ()                  # (name, value): namespaced ones only, set before the command runs
    hooks: tuple = ()                   # BundleHook, in config.json's order
    domainname: str | None = None
    personality: int | None = None      # PERSONALITY_DOMAINS' value
    uid_mappings: tuple = ()            # (container id, host id, size): a new user namespace's
    gid_mappings: tuple = ()
    terminal: bool = False
    console_size: tuple | None = None   # (height, width) of the terminal
    annotations: Mapping = field(default_factory=dict)

    def has_namespace(self, kind: str) -> bool:
        return any(t == kind for t, _ in self.namespaces)


def _oci_error(what: str, why: str):
    raise ConfigError(f"config.json: {what}: {why}")


def _oci_obj(parent: dict, key: str, where: str) -> dict:
    v = parent.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict):
        _oci_error(f"{where}{key}", "must be an object")
    return v


def _oci_list(parent: dict, key: str, where: str) -> list:
    v = parent.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        _oci_error(f"{where}{key}", "must be a list")
    return v


def _oci_strings(parent: dict, key: str, where: str) -> tuple:
    v = _oci_list(parent, key, where)
    if not all(isinstance(s, str) and "\0" not in s for s in v):
        _oci_error(f"{where}{key}", "must be a list of strings")
    return tuple(v)


def _oci_int(v, what: str, lo=None, hi=None):
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or (lo is not None and v < lo) or (hi is not None and v > hi):
        _oci_error(what, f"{v!r} is not a valid number")
    return v


# Fields this runtime cannot honour yet: refused by name, never ignored.
_OCI_UNSUPPORTED = (
    ("linux.intelRdt", "Intel RDT is not supported"),
    ("linux.personality.flags", "personality flags are not supported"),
    ("linux.mountLabel", "no LSM is in use here (SELinux labels are not supported)"),
    ("linux.timeOffsets", "time namespaces are not supported"),
    ("process.apparmorProfile", "AppArmor is not in use here"),
    ("process.selinuxLabel", "SELinux is not in use here"),
    ("process.ioPriority", "I/O priorities are not supported"),
    ("process.scheduler", "scheduler settings are not supported"),
    ("linux.resources.network", "network classes and priorities are not supported"),
    ("linux.resources.rdma", "RDMA limits are not supported"),
    ("linux.resources.memory.kernel", "kernel memory limits are not supported"),
    ("linux.resources.memory.kernelTCP", "kernel TCP memory limits are not supported"),
    ("linux.resources.memory.swappiness", "memory swappiness is not supported"),
    ("linux.resources.cpu.realtimeRuntime", "realtime CPU limits are not supported"),
    ("linux.resources.cpu.realtimePeriod", "realtime CPU limits are not supported"),
    ("linux.resources.blockIO.weightDevice", "per-device block I/O weights are not supported"),
    ("linux.seccomp.listenerPath", "seccomp agents are not supported"),
)


def _oci_get(spec: dict, dotted: str):
    v = spec
    for part in dotted.split("."):
        if not isinstance(v, dict):
            return None
        v = v.get(part)
    return v


def _oci_set(v) -> bool:
    """A field counts as given when it says something: not null, 0-less, empty."""
    if v is None or v is False:
        return False
    if isinstance(v, (list, dict, str)) and not v:
        return False
    if isinstance(v, dict):
        return any(_oci_set(x) for x in v.values())
    return True


def _oci_capabilities(proc: dict) -> tuple:
    caps = _oci_obj(proc, "capabilities", "process.")
    sets = {}
    for key in ("bounding", "effective", "permitted", "inheritable", "ambient"):
        listed = _oci_strings(caps, key, "process.capabilities.")
        out = set()
        for n in listed:
            if not n.upper().startswith("CAP_"):
                _oci_error(f"process.capabilities.{key}", f"unknown capability {n!r}")
            try:
                out.add(capabilities.normalize(n))
            except ConfigError:
                _oci_error(f"process.capabilities.{key}", f"unknown capability {n!r}")
        sets[key] = out
    held = capabilities.own()
    main = sets["bounding"] & sets["effective"] & sets["permitted"]
    missing = (main | sets["ambient"]) - held
    if missing:
        _oci_error("process.capabilities", f"{', '.join('CAP_' + m for m in sorted(missing))} not held here")
    ambient = sets["ambient"] & sets["inheritable"] & sets["permitted"] & sets["bounding"]
    return frozenset(main), frozenset(ambient)


def _oci_devices(linux: dict) -> tuple:
    out = []
    for i, d in enumerate(_oci_list(linux, "devices", "linux.")):
        where = f"linux.devices[{i}]"
        if not isinstance(d, dict):
            _oci_error(where, "must be an object")
        path, kind = d.get("path"), d.get("type")
        if not isinstance(path, str) or not path.startswith("/dev/") or ".." in path.split("/"):
            _oci_error(f"{where}.path", f"{path!r} is not a path under /dev")
        if kind not in ("c", "b", "u", "p"):
            _oci_error(f"{where}.type", f"{kind!r} is not one of c, b, u, p")
        major = _oci_int(d.get("major", 0), f"{where}.major", 0, (1 << 32) - 1) or 0
        minor = _oci_int(d.get("minor", 0), f"{where}.minor", 0, (1 << 32) - 1) or 0
        mode = _oci_int(d.get("fileMode", 0o666), f"{where}.fileMode", 0, 0o7777)
        uid = _oci_int(d.get("uid", 0), f"{where}.uid", 0) or 0
        gid = _oci_int(d.get("gid", 0), f"{where}.gid", 0) or 0
        out.append((path, "c" if kind == "u" else kind, major, minor, mode, uid, gid))
    return tuple(out)


_DEFAULT_DEVICES = {r.rsplit(" ", 1)[0] for r in DEVICE_RULES}


def _oci_device_rules(resources: dict) -> tuple:
    """The allow rules left after the list is applied in order, which must
    start with a deny-all (runc's, containerd's, docker's and podman's specs
    all do). A later deny takes its access away from the same allow rule, as
    the kernel's v1 device controller does; one that would narrow the
    devices every container gets (cgroups.devices.DEVICE_RULES) is refused."""
    rules = _oci_list(resources, "devices", "linux.resources.")
    allowed = []
    for i, r in enumerate(rules):
        where = f"linux.resources.devices[{i}]"
        if not isinstance(r, dict):
            _oci_error(where, "must be an object")
        kind = r.get("type") or "a"
        major, minor = r.get("major"), r.get("minor")
        major = None if major in (None, -1) else major
        minor = None if minor in (None, -1) else minor
        x = device_rule(kind, major, minor, r.get("access") or "rwm")
        if i == 0:
            if r.get("allow") or kind != "a" or major is not None or minor is not None or set(x.access) != set("rwm"):
                _oci_error(where, "the device rules must start with a deny-all rule")
            continue
        if r.get("allow"):
            allowed.append(x)
            continue
        if str(device_rule(x.kind, x.major, x.minor, "rwm")).rsplit(" ", 1)[0] in _DEFAULT_DEVICES:
            _oci_error(where, f"denying {x} is not supported (every container may use it)")
        allowed = [a if (a.kind, a.major, a.minor) != (x.kind, x.major, x.minor)
                   else device_rule(a.kind, a.major, a.minor, "".join(c for c in a.access if c not in x.access) or "m")
                   for a in allowed
                   if (a.kind, a.major, a.minor) != (x.kind, x.major, x.minor) or set(a.access) - set(x.access)]
    return tuple((x.kind, x.major, x.minor, x.access) for x in allowed)


def oci_limits(resources: dict, old: Limits | None = None, where: str = "linux.resources.") -> Limits:
    """OCI linux.resources as Limits: config.json's at create (old None), or
    `runc update`'s on top of the limits in force (old): as runc, a value
    absent or 0 leaves one as it is, -1 lifts a memory, swap, quota or pids
    limit; a device's rate of 0, a hugepage limit of -1 take that one away."""
    old = old if old is not None else Limits()
    if not isinstance(resources, dict):
        _oci_error(where.rstrip("."), "must be an object")
    mem = _oci_obj(resources, "memory", where)
    cpu = _oci_obj(resources, "cpu", where)
    pids = _oci_obj(resources, "pids", where)
    blkio = _oci_obj(resources, "blockIO", where)

    def pick(obj, key, path, current, lo=None):
        v = _oci_int(obj.get(key), f"{where}{path}", lo)
        if v in (None, 0):
            return current
        return None if v == -1 else v

    memory = pick(mem, "limit", "memory.limit", old.memory, -1)
    swap = _oci_int(mem.get("swap"), f"{where}memory.swap", -1)
    swap = old.memory_swap if swap in (None, 0) else swap
    cpus = cpu.get("cpus") or None
    mems = cpu.get("mems") or None
    for key, v in (("cpus", cpus), ("mems", mems)):
        if v is not None and not isinstance(v, str):
            _oci_error(f"{where}cpu.{key}", "must be a string")
    new = Limits.from_docker(
        memory=memory, memory_swap=swap if memory is not None else None,
        memory_reservation=pick(mem, "reservation", "memory.reservation", old.memory_reservation, -1),
        cpu_shares=pick(cpu, "shares", "cpu.shares", old.cpu_shares, 0),
        cpu_quota=pick(cpu, "quota", "cpu.quota", old.cpu_quota, -1),
        cpu_period=pick(cpu, "period", "cpu.period", old.cpu_period, 0),
        cpuset_cpus=cpus if cpus is not None else _cpu_list_or_none(old.cpuset_cpus),
        cpuset_mems=mems if mems is not None else _cpu_list_or_none(old.cpuset_mems),
        pids_limit=pick(pids, "limit", "pids.limit", old.pids_limit, -1),
        blkio_weight=pick(blkio, "weight", "blockIO.weight", old.blkio_weight, 0),
        device_read_bps=_oci_rates(blkio, "throttleReadBpsDevice", where, old.device_read_bps),
        device_write_bps=_oci_rates(blkio, "throttleWriteBpsDevice", where, old.device_write_bps),
        device_read_iops=_oci_rates(blkio, "throttleReadIOPSDevice", where, old.device_read_iops),
        device_write_iops=_oci_rates(blkio, "throttleWriteIOPSDevice", where, old.device_write_iops),
        cgroup_parent=old.cgroup_parent)
    hugepages = dict(old.hugepage_limits)
    for i, h in enumerate(_oci_list(resources, "hugepageLimits", where)):
        size = h.get("pageSize") if isinstance(h, dict) else None
        if not isinstance(size, str) or not re.match(r"^[0-9]+[KMG]B$", size):
            _oci_error(f"{where}hugepageLimits[{i}].pageSize", f"{size!r} is not a page size like 2MB")
        limit = _oci_int(h.get("limit"), f"{where}hugepageLimits[{i}].limit", -1)
        if limit is None or limit == -1:
            hugepages.pop(size, None)
        else:
            hugepages[size] = limit
    unified = dict(old.unified)
    for key, value in _oci_obj(resources, "unified", where).items():
        if not isinstance(value, str):
            _oci_error(f"{where}unified.{key}", "must be a string")
        unified[key] = value
    return dataclasses.replace(new, hugepage_limits=tuple(sorted(hugepages.items())),
                               unified=tuple(sorted(unified.items())))


def _cpu_list_or_none(cpus):
    return format_cpu_list(cpus) if cpus is not None else None


def _oci_rates(blkio: dict, key: str, where: str, old: tuple) -> tuple:
    """blockIO.throttle*Device [{major, minor, rate}] merged into the old rates
    (by device; a rate of 0 takes a device's away)."""
    rates = {(r.major, r.minor): r for r in old}
    for i, d in enumerate(_oci_list(blkio, key, where + "blockIO.")):
        at = f"{where}blockIO.{key}[{i}]"
        if not isinstance(d, dict):
            _oci_error(at, "must be an object")
        major, minor = _oci_int(d.get("major"), at + ".major", 0), _oci_int(d.get("minor"), at + ".minor", 0)
        rate = _oci_int(d.get("rate"), at + ".rate", 0)
        if major is None or minor is None or rate is None:
            _oci_error(at, "needs major, minor and rate")
        if rate == 0:
            rates.pop((major, minor), None)
        else:
            rates[(major, minor)] = DeviceRate(f"{major}:{minor}", major, minor, rate)
    return tuple(rates[k] for k in sorted(rates))


# runc's rule: only sysctls that belong to a namespace the container has
SYSCTL_NAMESPACES = (("net.", "network"), ("kernel.shm", "ipc"), ("kernel.msg", "ipc"), ("kernel.sem", "ipc"),
                     ("fs.mqueue.", "ipc"))


def _oci_sysctl(linux: dict, namespaces: list) -> tuple:
    out = []
    for name, value in _oci_obj(linux, "sysctl", "linux.").items():
        where = f"linux.sysctl.{name}"
        if not isinstance(value, str) or "\0" in value or not name or "/" in name or ".." in name:
            _oci_error(where, "must be a string value of a sysctl name")
        kind = next((ns for prefix, ns in SYSCTL_NAMESPACES if name.startswith(prefix)), None)
        if kind is None:
            _oci_error(where, "is not in a namespace of the container's own (net.*, IPC ones)")
        if not any(t == kind for t, _ in namespaces):
            _oci_error(where, f"needs the container's own {kind} namespace")
        out.append((name, value))
    return tuple(out)


ID_MAP_LINES = 340       # the kernel's limit on the lines of one uid_map or gid_map


def _oci_id_mappings(linux: dict, key: str, prefix: str = "linux.") -> tuple:
    out = []
    entries = _oci_list(linux, key, prefix)
    if len(entries) > ID_MAP_LINES:
        _oci_error(f"{prefix}{key}", f"at most {ID_MAP_LINES} ranges")
    for i, m in enumerate(entries):
        where = f"{prefix}{key}[{i}]"
        if not isinstance(m, dict):
            _oci_error(where, "must be an object")
        c = _oci_int(m.get("containerID"), f"{where}.containerID", 0, (1 << 32) - 2)
        h = _oci_int(m.get("hostID"), f"{where}.hostID", 0, (1 << 32) - 2)
        n = _oci_int(m.get("size"), f"{where}.size", 1, 1 << 32)
        if c is None or h is None or n is None:
            _oci_error(where, "needs containerID, hostID and size")
        out.append((c, h, n))
    return tuple(out)


def _oci_hooks(spec: dict) -> tuple:
    out = []
    hooks = _oci_obj(spec, "hooks", "")
    for kind, entries in hooks.items():
        if kind not in HOOK_KINDS:
            _oci_error(f"hooks.{kind}", "unknown hook kind")
        if not isinstance(entries, list):
            _oci_error(f"hooks.{kind}", "must be a list")
        for i, h in enumerate(entries):
            where = f"hooks.{kind}[{i}]"
            path = h.get("path") if isinstance(h, dict) else None
            if not isinstance(path, str) or not path.startswith("/"):
                _oci_error(f"{where}.path", f"{path!r} is not an absolute path")
            timeout = _oci_int(h.get("timeout"), f"{where}.timeout", 1)
            out.append(BundleHook(kind, path, _oci_strings(h, "args", where + "."),
                                  tuple(normalize_env(_oci_strings(h, "env", where + "."))), timeout))
    return tuple(out)


IDMAP_KERNEL = (5, 12)      # mount_setattr(MOUNT_ATTR_IDMAP)


def _kernel_version() -> tuple:
    release = os.uname().release
    parts = [int(p) for p in release.split("-")[0].split(".")[:2] if p.isdigit()]
    return tuple(parts + [0] * (2 - len(parts)))


def _oci_mount_idmap(m: dict, opts: tuple, where: str, namespaces: list, linux_maps: tuple):
    """(idmap, uid maps, gid maps) of one mount: an idmapped bind when its
    options say idmap/ridmap or it has maps of its own; maps it lacks are the
    container's user namespace's."""
    words = [o for o in opts if o in ("idmap", "ridmap")]
    own_uid = _oci_id_mappings(m, "uidMappings", where + ".")
    own_gid = _oci_id_mappings(m, "gidMappings", where + ".")
    if not words and not (own_uid or own_gid):
        return None, (), ()
    what = f"{where}.options" if words else f"{where}.uidMappings"
    if _kernel_version() < IDMAP_KERNEL:
        _oci_error(what, f"idmapped mounts need Linux {IDMAP_KERNEL[0]}.{IDMAP_KERNEL[1]} "
                         f"(this is {os.uname().release})")
    if bool(own_uid) != bool(own_gid):
        _oci_error(f"{where}.{'gidMappings' if own_uid else 'uidMappings'}", "needs both uidMappings and gidMappings")
    if not own_uid:
        if ("user", None) not in namespaces:
            _oci_error(what, "an idmapped mount without maps of its own needs a new user namespace")
        own_uid, own_gid = linux_maps
    return (words[-1] if words else "idmap"), own_uid, own_gid


def _oci_mounts(spec: dict, bundle: str, namespaces=(), linux_maps=((), ())) -> tuple:
    out = []
    for i, m in enumerate(_oci_list(spec, "mounts", "")):
        where = f"mounts[{i}]"
        if not isinstance(m, dict):
            _oci_error(where, "must be an object")
        dest = m.get("destination")
        if not isinstance(dest, str) or not dest.startswith("/") or "\0" in dest:
            _oci_error(f"{where}.destination", f"{dest!r} is not an absolute path")
        if os.path.normpath(dest) == "/":
            _oci_error(f"{where}.destination", "cannot mount over the root")
        kind, source = m.get("type"), m.get("source")
        if kind is not None and (not isinstance(kind, str) or "\0" in kind):
            _oci_error(f"{where}.type", f"{kind!r} is not a filesystem type")
        if source is not None and (not isinstance(source, str) or "\0" in source):
            _oci_error(f"{where}.source", f"{source!r} is not a path")
        opts = _oci_strings(m, "options", where + ".")
        idmap, uid_maps, gid_maps = _oci_mount_idmap(m, opts, where, namespaces, linux_maps)
        bm = BundleMount(os.path.normpath(dest), kind, source, opts)
        if idmap and not bm.is_bind:
            _oci_error(f"{where}.options", "an idmapped mount must be a bind mount")
        if bm.is_bind:
            if not source:
                _oci_error(f"{where}.source", "a bind mount needs a source")
            path = source if source.startswith("/") else os.path.join(bundle, source)
            if not os.path.exists(path):
                _oci_error(f"{where}.source", f"{source}: no such file or directory")
            bm = BundleMount(bm.destination, kind, os.path.abspath(path), opts, idmap, uid_maps, gid_maps)
        elif kind is None:
            _oci_error(f"{where}.type", "a mount other than a bind needs a type")
        out.append(bm)
    return tuple(out)


@dataclass(frozen=True)
class BundleProcess:
    """An OCI process object on its own: what `exec --process F` gives (or a
    bundle's own process, changed by exec's flags), for a process joined to a
    running container."""

    args: tuple
    env: tuple = ()
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: tuple = ()
    umask: int | None = None
    capabilities: frozenset = frozenset()
    ambient: frozenset = frozenset()
    no_new_privileges: bool = False
    rlimits: tuple = ()                 # (name, soft, hard), names as RLIMITS' keys
    oom_score_adj: int | None = None
    terminal: bool = False
    console_size: tuple | None = None   # (height, width)


_OCI_PROCESS_UNSUPPORTED = (
    ("apparmorProfile", "AppArmor is not in use here"),
    ("selinuxLabel", "SELinux is not in use here"),
    ("ioPriority", "I/O priorities are not supported"),
    ("scheduler", "scheduler settings are not supported"),
)


def process_from_oci(proc, where: str = "process") -> BundleProcess:
    """An OCI process object (parsed JSON) -> BundleProcess; ConfigError naming
    the field for anything wrong or unsupported."""
    if not isinstance(proc, dict):
        _oci_error(where, "must be an object")
    for key, why in _OCI_PROCESS_UNSUPPORTED:
        if _oci_set(proc.get(key)):
            _oci_error(f"{where}.{key}", why)
    args = _oci_strings(proc, "args", where + ".")
    if not args:
        _oci_error(f"{where}.args", "must not be empty")
    cwd = proc.get("cwd") or "/"
    if not isinstance(cwd, str) or not cwd.startswith("/") or "\0" in cwd:
        _oci_error(f"{where}.cwd", f"{cwd!r} is not an absolute path")
    user = _oci_obj(proc, "user", where + ".")
    if user.get("username"):
        _oci_error(f"{where}.user.username", "is for Windows")
    rlimits = []
    for i, r in enumerate(_oci_list(proc, "rlimits", where + ".")):
        kind = r.get("type") if isinstance(r, dict) else None
        name = kind[7:].lower() if isinstance(kind, str) and kind.startswith("RLIMIT_") else None
        if name not in RLIMITS:
            _oci_error(f"{where}.rlimits[{i}].type", f"unknown limit {kind!r}")
        rlimits.append((name, _oci_int(r.get("soft"), f"{where}.rlimits[{i}].soft", 0, RLIM_INFINITY),
                        _oci_int(r.get("hard"), f"{where}.rlimits[{i}].hard", 0, RLIM_INFINITY)))
    console = _oci_obj(proc, "consoleSize", where + ".")
    if console and not proc.get("terminal"):
        _oci_error(f"{where}.consoleSize", "needs terminal")
    caps, ambient = _oci_capabilities(proc)
    return BundleProcess(
        args=args, env=tuple(normalize_env(_oci_strings(proc, "env", where + "."))), cwd=cwd,
        uid=_oci_int(user.get("uid", 0), f"{where}.user.uid", 0, (1 << 32) - 2) or 0,
        gid=_oci_int(user.get("gid", 0), f"{where}.user.gid", 0, (1 << 32) - 2) or 0,
        additional_gids=tuple(_oci_int(g, f"{where}.user.additionalGids", 0, (1 << 32) - 2)
                              for g in _oci_list(user, "additionalGids", where + ".user.")),
        umask=_oci_int(user.get("umask"), f"{where}.user.umask", 0, 0o777),
        capabilities=caps, ambient=ambient, no_new_privileges=bool(proc.get("noNewPrivileges")),
        rlimits=tuple(rlimits), oom_score_adj=_oci_int(proc.get("oomScoreAdj"), f"{where}.oomScoreAdj", -1000, 1000),
        terminal=bool(proc.get("terminal")),
        console_size=((_oci_int(console.get("height", 0), f"{where}.consoleSize.height", 0, 65535),
                       _oci_int(console.get("width", 0), f"{where}.consoleSize.width", 0, 65535))
                      if console else None))


def container_config_from_oci(spec, bundle: str, systemd_cgroup=False) -> "ContainerConfig":
    """config.json (parsed) of the bundle at `bundle` -> ContainerConfig.
    Raises ConfigError naming the field for anything wrong or unsupported.
    systemd_cgroup (runc's --systemd-cgroup): cgroupsPath is "slice:prefix:name"."""
    if not isinstance(spec, dict):
        raise ConfigError("config.json: expected a JSON object")
    bundle = os.path.abspath(bundle)
    version = spec.get("ociVersion")
    if not isinstance(version, str) or not version.startswith("1."):
        _oci_error("ociVersion", f"{version!r} is not a 1.x version")
    for dotted, why in _OCI_UNSUPPORTED:
        if _oci_set(_oci_get(spec, dotted)):
            _oci_error(dotted, why)
    proc = _oci_obj(spec, "process", "")
    if not proc:
        _oci_error("process", "is missing")
    root = _oci_obj(spec, "root", "")
    linux = _oci_obj(spec, "linux", "")
    args = _oci_strings(proc, "args", "process.")
    if not args:
        _oci_error("process.args", "must not be empty")
    cwd = proc.get("cwd")
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        _oci_error("process.cwd", f"{cwd!r} is not an absolute path")
    user = _oci_obj(proc, "user", "process.")
    if user.get("username"):
        _oci_error("process.user.username", "is for Windows")
    uid = _oci_int(user.get("uid", 0), "process.user.uid", 0, (1 << 32) - 2) or 0
    gid = _oci_int(user.get("gid", 0), "process.user.gid", 0, (1 << 32) - 2) or 0
    gids = tuple(_oci_int(g, "process.user.additionalGids", 0, (1 << 32) - 2)
                 for g in _oci_list(user, "additionalGids", "process.user."))
    rootpath = root.get("path")
    if not isinstance(rootpath, str) or not rootpath:
        _oci_error("root.path", "is missing")
    rootfs = rootpath if rootpath.startswith("/") else os.path.join(bundle, rootpath)
    if not os.path.isdir(rootfs):
        _oci_error("root.path", f"{rootfs}: not a directory")
    rlimits = []
    for i, r in enumerate(_oci_list(proc, "rlimits", "process.")):
        kind = r.get("type") if isinstance(r, dict) else None
        name = kind[7:].lower() if isinstance(kind, str) and kind.startswith("RLIMIT_") else None
        if name not in RLIMITS:
            _oci_error(f"process.rlimits[{i}].type", f"unknown limit {kind!r}")
        rlimits.append((name, _oci_int(r.get("soft"), f"process.rlimits[{i}].soft", 0, RLIM_INFINITY),
                        _oci_int(r.get("hard"), f"process.rlimits[{i}].hard", 0, RLIM_INFINITY)))
    namespaces = []
    for i, ns in enumerate(_oci_list(linux, "namespaces", "linux.")):
        kind = ns.get("type") if isinstance(ns, dict) else None
        if kind not in OCI_NAMESPACES:
            _oci_error(f"linux.namespaces[{i}].type", f"unknown namespace {kind!r}")
        if kind == "time":
            _oci_error(f"linux.namespaces[{i}]", f"{kind} namespaces are not supported")
        path = ns.get("path") or None
        if path is not None and (not isinstance(path, str) or not path.startswith("/")):
            _oci_error(f"linux.namespaces[{i}].path", f"{path!r} is not an absolute path")
        if any(t == kind for t, _ in namespaces):
            _oci_error(f"linux.namespaces[{i}]", f"the {kind} namespace is listed twice")
        namespaces.append((kind, path))
    uid_mappings = _oci_id_mappings(linux, "uidMappings")
    gid_mappings = _oci_id_mappings(linux, "gidMappings")
    new_userns = ("user", None) in namespaces
    if new_userns and not (uid_mappings and gid_mappings):
        _oci_error("linux.uidMappings" if not uid_mappings else "linux.gidMappings",
                   "a new user namespace needs both uidMappings and gidMappings")
    if (uid_mappings or gid_mappings) and not any(t == "user" for t, _ in namespaces):
        _oci_error("linux.uidMappings" if uid_mappings else "linux.gidMappings", "needs a user namespace")
    propagation = linux.get("rootfsPropagation") or None
    if propagation is not None and propagation not in BUNDLE_PROPAGATION:
        _oci_error("linux.rootfsPropagation", f"{propagation!r} is not a propagation type")
    cgroups_path = linux.get("cgroupsPath") or None
    if cgroups_path is not None and (not isinstance(cgroups_path, str) or "\0" in cgroups_path
                                     or ".." in cgroups_path.split("/")):
        _oci_error("linux.cgroupsPath", f"{cgroups_path!r} is not a cgroup path")
    if cgroups_path is not None and (systemd_cgroup or ":" in cgroups_path):
        # systemd's slice:prefix:name, mapped as runc maps it (below the caller's cgroup)
        try:
            cgroups_path = systemd_cgroup_path(cgroups_path)
        except ConfigError as e:
            _oci_error("linux.cgroupsPath", str(e))
    umask = _oci_int(user.get("umask"), "process.user.umask", 0, 0o777)
    caps, ambient = _oci_capabilities(proc)
    resources = _oci_obj(linux, "resources", "linux.")
    annotations = _oci_obj(spec, "annotations", "")
    seccomp_spec = linux.get("seccomp")
    hostname = spec.get("hostname") or None
    domainname = spec.get("domainname") or None
    for key, name in (("hostname", hostname), ("domainname", domainname)):
        if name is not None and (not isinstance(name, str) or "\0" in name or len(name.encode()) > 64):
            _oci_error(key, f"{name!r} is not a name of at most 64 bytes")
        if name is not None and not any(t == "uts" and p is None for t, p in namespaces):
            _oci_error(key, "needs a new uts namespace")
    personality = _oci_obj(linux, "personality", "linux.")
    if personality and personality.get("domain") not in PERSONALITY_DOMAINS:
        _oci_error("linux.personality.domain", f"{personality.get('domain')!r} is not one of LINUX, LINUX32")
    oom = _oci_int(proc.get("oomScoreAdj"), "process.oomScoreAdj", -1000, 1000)
    console = _oci_obj(proc, "consoleSize", "process.")
    if console and not proc.get("terminal"):
        _oci_error("process.consoleSize", "needs process.terminal")
    console_size = ((_oci_int(console.get("height", 0), "process.consoleSize.height", 0, 65535),
                     _oci_int(console.get("width", 0), "process.consoleSize.width", 0, 65535)) if console else None)
    extra = BundleSpec(
        bundle=bundle,
        mounts=_oci_mounts(spec, bundle, namespaces, (uid_mappings, gid_mappings)),
        namespaces=tuple(namespaces),
        masked_paths=_oci_strings(linux, "maskedPaths", "linux."),
        readonly_paths=_oci_strings(linux, "readonlyPaths", "linux."),
        uid=uid, gid=gid, additional_gids=gids, umask=umask,
        capabilities=caps, ambient=ambient,
        devices=_oci_devices(linux),
        device_rules=_oci_device_rules(resources),
        cgroups_path=cgroups_path,
        rootfs_propagation=propagation,
        sysctl=_oci_sysctl(linux, namespaces),
        hooks=_oci_hooks(spec),
        domainname=domainname,
        uid_mappings=uid_mappings, gid_mappings=gid_mappings,
        personality=PERSONALITY_DOMAINS[personality["domain"]] if personality else None,
        terminal=bool(proc.get("terminal")),
        console_size=console_size,
        annotations=dict(annotations),
    )
    return ContainerConfig(
        rootfs=rootfs, command=args, env=_oci_strings(proc, "env", "process."), hostname=hostname,
        workdir=cwd, read_only=bool(root.get("readonly")), no_new_privileges=bool(proc.get("noNewPrivileges")),
        ulimits=tuple(rlimits), oom_score_adj=oom,
        seccomp=seccomp_spec if seccomp_spec else "unconfined",
        resources=oci_limits(resources), bundle=extra)
