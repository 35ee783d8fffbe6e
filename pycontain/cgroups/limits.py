"""Resource limits as docker users write them, validated before anything exists.

`Limits.from_docker(memory="64m", cpus=0.5, ...)` turns docker's options into
one frozen value in kernel units (bytes, microseconds, CPU lists, device
numbers), or raises ConfigError with one line saying what was wrong. The
drivers (v1.py, v2.py) only translate these values into their own files.
"""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass

from ..errors import ConfigError

# docker's bounds (daemon/daemon_unix.go, runconfig): a smaller limit cannot
# even start a process, so they are refused up front.
MIN_MEMORY = 6 * 1024 * 1024
MIN_CPU_PERIOD, MAX_CPU_PERIOD = 1000, 1000000      # µs, the kernel's cfs bounds
MIN_CPU_QUOTA = 1000                                 # µs
MIN_CPU_SHARES, MAX_CPU_SHARES = 2, 262144           # v1 cpu.shares bounds
MIN_BLKIO_WEIGHT, MAX_BLKIO_WEIGHT = 10, 1000
DEFAULT_CPU_PERIOD = 100000

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_BYTES_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)
_CPULIST_RE = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def parse_bytes(value, what="memory") -> int:
    """docker's RAMInBytes: 64m, 1g, 512k, 1.5g, 1024 (bytes), '1gb', '1GiB'."""
    if isinstance(value, bool):
        raise ConfigError(f"invalid {what} value {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, str):
        raise ConfigError(f"invalid {what} value {value!r}: expected a number of bytes or a size like 64m")
    m = _BYTES_RE.match(value)
    if not m:
        raise ConfigError(f"invalid {what} value {value!r}: expected a size like 512k, 64m or 1g")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_cpu_list(spec: str, what: str) -> frozenset:
    """'0-2,5' -> {0, 1, 2, 5}."""
    if not isinstance(spec, str) or not _CPULIST_RE.match(spec.replace(" ", "")):
        raise ConfigError(f"invalid {what} {spec!r}: expected a list like 0-2,4")
    out = set()
    for part in spec.replace(" ", "").split(","):
        lo, _, hi = part.partition("-")
        lo, hi = int(lo), int(hi or lo)
        if hi < lo:
            raise ConfigError(f"invalid {what} {spec!r}: range {part} is backwards")
        out.update(range(lo, hi + 1))
    return frozenset(out)


def format_cpu_list(cpus) -> str:
    """{0, 1, 2, 5} -> '0-2,5' (the form the kernel writes back)."""
    out, run = [], []
    for c in sorted(cpus):
        if run and c == run[-1] + 1:
            run.append(c)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [c]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def _read_list(path) -> frozenset | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return parse_cpu_list(text, path) if text else frozenset()


def online_cpus() -> frozenset:
    return _read_list("/sys/devices/system/cpu/online") or frozenset(os.sched_getaffinity(0))


def online_mems() -> frozenset:
    return _read_list("/sys/devices/system/node/online") or frozenset({0})


@dataclass(frozen=True)
class DeviceRate:
    """A block device's throttle: --device-read-bps /dev/sda:1mb."""

    path: str
    major: int
    minor: int
    rate: int

    @classmethod
    def parse(cls, spec, what) -> "DeviceRate":
        if isinstance(spec, DeviceRate):
            return spec
        if isinstance(spec, (tuple, list)) and len(spec) == 2:
            path, rate = spec
        elif isinstance(spec, str) and ":" in spec:
            path, _, rate = spec.rpartition(":")
        else:
            raise ConfigError(f"invalid {what} {spec!r}: expected DEVICE:RATE, e.g. /dev/sda:1mb")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigError(f"invalid {what} {spec!r}: the device must be an absolute path")
        n = parse_bytes(rate, what)
        if n <= 0:
            raise ConfigError(f"invalid {what} {spec!r}: the rate must be positive")
        try:
            st = os.stat(path)
        except OSError as e:
            raise ConfigError(f"invalid {what} {spec!r}: {path}: {e.strerror}") from None
        if not stat.S_ISBLK(st.st_mode):
            raise ConfigError(f"invalid {what} {spec!r}: {path} is not a block device")
        return cls(path, os.major(st.st_rdev), os.minor(st.st_rdev), n)


@dataclass(frozen=True)
class Limits:
    """Resource limits in kernel units. None means "not set" (no file written)."""

    memory: int | None = None           # bytes
    memory_swap: int | None = None      # bytes of memory+swap (docker's meaning); -1 unlimited
    cpu_shares: int | None = None       # v1 shares (docker's -c); v2 converts to cpu.weight
    cpu_quota: int | None = None        # µs per period
    cpu_period: int | None = None       # µs
    cpuset_cpus: frozenset | None = None
    cpuset_mems: frozenset | None = None
    pids_limit: int | None = None       # -1: unlimited
    blkio_weight: int | None = None
    device_read_bps: tuple = ()         # (DeviceRate, ...)
    device_write_bps: tuple = ()
    cgroup_parent: str | None = None    # relative: under the caller's cgroup; absolute: from the root
    memory_reservation: int | None = None   # bytes: v1 memory.soft_limit_in_bytes, v2 memory.low
    device_read_iops: tuple = ()        # (DeviceRate, ...), rate in operations per second
    device_write_iops: tuple = ()
    # OCI config.json only (linux.resources.hugepageLimits / unified):
    hugepage_limits: tuple = ()         # (("2MB", bytes), ...)
    unified: tuple = ()                 # (("memory.high", "max"), ...): cgroup v2 files, written as given

    def __bool__(self):
        return any(getattr(self, n) not in (None, ()) for n in LIMIT_FIELDS)

    def asked(self) -> list:
        """The options that are set, by name (for messages), cgroup_parent included."""
        return [n for n in self.__dataclass_fields__ if getattr(self, n) not in (None, ())]

    # which controllers a limit needs (v1 names; v2 maps blkio -> io)
    def controllers(self) -> set:
        need = set()
        if self.memory is not None or self.memory_swap is not None or self.memory_reservation is not None:
            need.add("memory")
        if self.cpu_shares is not None or self.cpu_quota is not None:
            need.add("cpu")
        if self.cpuset_cpus is not None or self.cpuset_mems is not None:
            need.add("cpuset")
        if self.pids_limit is not None:
            need.add("pids")
        if (self.blkio_weight is not None or self.device_read_bps or self.device_write_bps
                or self.device_read_iops or self.device_write_iops):
            need.add("blkio")
        if self.hugepage_limits:
            need.add("hugetlb")
        return need

    @property
    def swap_total(self) -> int | None:
        """memory+swap in bytes as the kernel takes it (v1 memsw), -1 unlimited.
        docker: a memory limit without --memory-swap allows as much swap again."""
        if self.memory is None:
            return None
        if self.memory_swap is None:
            return 2 * self.memory
        return self.memory_swap

    @classmethod
    def from_docker(cls, memory=None, memory_swap=None, cpus=None, cpu_shares=None, cpu_quota=None,
                    cpu_period=None, cpuset_cpus=None, cpuset_mems=None, pids_limit=None,
                    blkio_weight=None, device_read_bps=(), device_write_bps=(),
                    cgroup_parent=None, memory_reservation=None, device_read_iops=(),
                    device_write_iops=()) -> "Limits":
        """Validates docker's options; raises ConfigError naming the bad one."""
        mem = swap = None
        if memory not in (None, 0, "", "0"):
            mem = parse_bytes(memory, "memory")
            if mem < 0:
                raise ConfigError(f"invalid memory limit {memory!r}: must be positive")
            if mem < MIN_MEMORY:
                raise ConfigError(f"minimum memory limit allowed is 6MB (got {memory!r})")
        if memory_swap not in (None, 0, "", "0"):
            swap = -1 if memory_swap in (-1, "-1") else parse_bytes(memory_swap, "memory-swap")
            if mem is None:
                raise ConfigError("you should always set the memory limit when using the memory-swap limit")
            if swap != -1 and swap < mem:
                raise ConfigError(f"minimum memory-swap limit should be larger than memory limit ({memory_swap!r} < {memory!r})")

        reservation = None
        if memory_reservation not in (None, 0, "", "0"):
            reservation = parse_bytes(memory_reservation, "memory-reservation")
            if reservation < 0:
                raise ConfigError(f"invalid memory-reservation {memory_reservation!r}: must be positive")
            if reservation < MIN_MEMORY:
                raise ConfigError(f"minimum memory reservation allowed is 6MB (got {memory_reservation!r})")

        shares = _int_or_none(cpu_shares, "cpu-shares")
        if shares is not None:
            if shares < 0:
                raise ConfigError(f"invalid cpu-shares {cpu_shares!r}: must not be negative")
            if shares == 0:
                shares = None                       # docker: 0 means the default
            elif not MIN_CPU_SHARES <= shares <= MAX_CPU_SHARES:
                raise ConfigError(f"cpu-shares must be between {MIN_CPU_SHARES} and {MAX_CPU_SHARES}, got {shares}")

        quota = _int_or_none(cpu_quota, "cpu-quota")
        period = _int_or_none(cpu_period, "cpu-period")
        if quota in (0, -1):
            quota = None
        if period == 0:
            period = None
        if cpus not in (None, 0, "0", ""):
            if quota is not None or period is not None:
                raise ConfigError("conflicting options: cpus cannot be used with cpu-quota or cpu-period")
            try:
                n = float(cpus)
            except (TypeError, ValueError):
                raise ConfigError(f"invalid cpus {cpus!r}: expected a number like 0.5") from None
            ncpu = len(online_cpus())
            if not 0.01 <= n <= ncpu:   # also refuses nan and inf
                raise ConfigError(f"range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available (got {cpus!r})")
            period = DEFAULT_CPU_PERIOD
            quota = round(n * period)
        if period is not None and not MIN_CPU_PERIOD <= period <= MAX_CPU_PERIOD:
            raise ConfigError(f"cpu-period must be between {MIN_CPU_PERIOD} and {MAX_CPU_PERIOD} microseconds, got {period}")
        if quota is not None and quota < MIN_CPU_QUOTA:
            raise ConfigError(f"cpu-quota must be at least {MIN_CPU_QUOTA} microseconds, got {quota}")
        if quota is not None and period is None:
            period = DEFAULT_CPU_PERIOD

        cset = mset = None
        if cpuset_cpus not in (None, ""):
            cset = parse_cpu_list(cpuset_cpus, "cpuset-cpus")
            missing = cset - online_cpus()
            if missing:
                raise ConfigError(f"requested CPUs are not available: {format_cpu_list(missing)} "
                                  f"(online: {format_cpu_list(online_cpus())})")
        if cpuset_mems not in (None, ""):
            mset = parse_cpu_list(cpuset_mems, "cpuset-mems")
            missing = mset - online_mems()
            if missing:
                raise ConfigError(f"requested memory nodes are not available: {format_cpu_list(missing)}")

        pids = _int_or_none(pids_limit, "pids-limit")
        if pids is not None:
            if pids == 0 or pids == -1:
                pids = None                         # docker: 0 and -1 mean unlimited
            elif pids < 0:
                raise ConfigError(f"invalid pids-limit {pids_limit!r}: must be positive (or -1 for unlimited)")

        weight = _int_or_none(blkio_weight, "blkio-weight")
        if weight == 0:
            weight = None
        if weight is not None and not MIN_BLKIO_WEIGHT <= weight <= MAX_BLKIO_WEIGHT:
            raise ConfigError(f"blkio-weight must be between {MIN_BLKIO_WEIGHT} and {MAX_BLKIO_WEIGHT}, got {weight}")

        if isinstance(device_read_bps, str):
            device_read_bps = (device_read_bps,)
        if isinstance(device_write_bps, str):
            device_write_bps = (device_write_bps,)
        rbps = tuple(DeviceRate.parse(s, "device-read-bps") for s in device_read_bps or ())
        wbps = tuple(DeviceRate.parse(s, "device-write-bps") for s in device_write_bps or ())
        riops = tuple(DeviceRate.parse(s, "device-read-iops") for s in _specs(device_read_iops))
        wiops = tuple(DeviceRate.parse(s, "device-write-iops") for s in _specs(device_write_iops))

        return cls(memory=mem, memory_swap=swap, cpu_shares=shares, cpu_quota=quota, cpu_period=period,
                   cpuset_cpus=cset, cpuset_mems=mset, pids_limit=pids, blkio_weight=weight,
                   device_read_bps=rbps, device_write_bps=wbps,
                   cgroup_parent=normalize_parent(cgroup_parent), memory_reservation=reservation,
                   device_read_iops=riops, device_write_iops=wiops)


# The fields that limit something (cgroup_parent only places the cgroup).
LIMIT_FIELDS = ("memory", "memory_swap", "memory_reservation", "cpu_shares", "cpu_quota", "cpu_period",
                "cpuset_cpus", "cpuset_mems", "pids_limit", "blkio_weight", "device_read_bps",
                "device_write_bps", "device_read_iops", "device_write_iops", "hugepage_limits", "unified")


def _specs(value) -> tuple:
    return (value,) if isinstance(value, str) else tuple(value or ())


def normalize_parent(parent) -> str | None:
    """A cgroup path without '..', NUL or empty parts; keeps a leading '/'."""
    if parent in (None, ""):
        return None
    if not isinstance(parent, str) or "\0" in parent or "\n" in parent:
        raise ConfigError(f"invalid cgroup-parent {parent!r}")
    parts = [p for p in parent.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ConfigError(f"invalid cgroup-parent {parent!r}: '..' is not allowed")
    if not parts:
        raise ConfigError(f"invalid cgroup-parent {parent!r}: the root itself cannot be the parent")
    return ("/" if parent.startswith("/") else "") + "/".join(parts)


def _int_or_none(v, what):
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        raise ConfigError(f"invalid {what} {v!r}")
    try:
        return int(v)
    except (TypeError, ValueError):
        raise ConfigError(f"invalid {what} {v!r}: expected an integer") from None


def systemd_cgroup_path(spec: str) -> str:
    """An OCI cgroupsPath in systemd's form, "slice:prefix:name", as the cgroup
    path systemd would give it (runc's libcontainer/cgroups/systemd mapping,
    the one its cgroupfs fallback uses): "kubepods-besteffort.slice:cri:abc" is
    "kubepods.slice/kubepods-besteffort.slice/cri-abc.scope"; no slice is
    system.slice; a name that is itself a slice is that slice's path. The
    path is relative: it is placed below the caller's own cgroup, as every
    pycontain cgroup is (no systemd is asked for a unit)."""
    parts = spec.split(":") if isinstance(spec, str) else []
    if len(parts) != 3 or not parts[2]:
        raise ConfigError(f'expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, '
                          f'got {spec!r} instead')
    slice_, prefix, name = parts
    if name.endswith(".slice"):
        return expand_slice(name)
    unit = f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    if "/" in unit or unit.startswith("."):
        raise ConfigError(f"invalid cgroupsPath {spec!r}: {unit!r} is not a unit name")
    parent = expand_slice(slice_ or "system.slice")
    return f"{parent}/{unit}" if parent else unit


def expand_slice(slice_: str) -> str:
    """systemd's slice nesting: "a-b-c.slice" is "a.slice/a-b.slice/a-b-c.slice";
    "-.slice" is the root ("")."""
    if not slice_.endswith(".slice") or "/" in slice_:
        raise ConfigError(f"invalid slice name {slice_!r}: expected NAME.slice")
    if slice_ == "-.slice":
        return ""
    base = slice_[:-len(".slice")]
    words = base.split("-")
    if not base or any(w == "" for w in words):
        raise ConfigError(f"invalid slice name {slice_!r}")
    return "/".join("-".join(words[:i + 1]) + ".slice" for i in range(len(words)))
