"""ContainerConfig: what a container should be, validated, before anything exists.

Every check that can be made without touching the machine happens here, so
that bad input fails with one clear line and leaves nothing behind.
"""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Mapping, Sequence

from . import names
from .cgroups.limits import DeviceRate, Limits
from .errors import ConfigError
from .network import validate_mode
from .network.etcfiles import parse_add_host, parse_dns
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
    add_hosts: tuple = ()               # (name, ip) extra /etc/hosts entries
    resources: object = None            # pycontain.cgroups.Limits, validated by Container
    devices: tuple = ()                 # Device: host device nodes passed in (docker's --device)
    extra: Mapping = field(default_factory=dict)

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
        for name in ("cap_add", "cap_drop", "security_opt", "group_add", "dns", "env"):
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
        if self.network in ("none", "host") and not (self.ports or self.dns or self.add_hosts or self.name):
            return  # the common case has nothing to check
        validate_mode(self.network)
        if self.name is not None:
            names.check("container", self.name)
        for attr, parse in (("ports", parse_publish), ("dns", parse_dns), ("add_hosts", parse_add_host)):
            v = getattr(self, attr)
            if isinstance(v, (str, bytes)):
                v = (v,)
            object.__setattr__(self, attr, tuple(parse(x) for x in v or ()))
        if self.ports and (self.network in ("none", "host") or self.network.startswith("container:")):
            raise ConfigError(f"published ports need a bridge network, not network {self.network!r}")


def normalize_env(env) -> list[str]:
    """A dict or a sequence of "K=V" becomes a list of "K=V"."""
    if env is None:
        return []
    items = env.items() if isinstance(env, Mapping) else None
    out = []
    if items is not None:
        for k, v in items:
            out.append(f"{k}={v}")
    else:
        for e in env:
            if not isinstance(e, str) or "=" not in e:
                raise ConfigError(f"environment entry {e!r} is not of the form KEY=VALUE")
            out.append(e)
    for e in out:
        k = e.split("=", 1)[0]
        if not k or "\0" in e:
            raise ConfigError(f"invalid environment entry {e!r}")
    return out


def merge_env(*layers: Sequence[str]) -> list[str]:
    """Later layers override earlier ones, key by key, keeping first-seen order."""
    merged: dict[str, str] = {}
    for layer in layers:
        for e in layer:
            k, _, v = e.partition("=")
            merged[k] = v
    return [f"{k}={v}" for k, v in merged.items()]


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


def _limits_to_json(limits: Limits) -> dict:
    return _jsonable(limits)


def _limits_from_json(data: dict) -> Limits:
    kw = dict(data)
    for name in ("cpuset_cpus", "cpuset_mems"):
        if kw.get(name) is not None:
            kw[name] = frozenset(kw[name])
    for name in ("device_read_bps", "device_write_bps"):
        kw[name] = tuple(DeviceRate(**d) for d in kw.get(name, ()))
    return Limits(**kw)
