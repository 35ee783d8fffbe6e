"""cgroup v2 (unified layout): one directory, controllers enabled from above.

Conversions are runc's (libcontainer/cgroups/fs2 and cgroups.ConvertXxx):
memory.max, memory.swap.max = docker's memory-swap minus memory,
cpu.weight = 1 + (shares - 2) * 9999 / 262142, cpu.max "quota period",
cpuset.cpus/mems, pids.max, io.weight = 1 + (weight - 10) * 9999 / 990
(io.bfq.weight takes docker's 10..1000 as is), io.max rbps/wbps.

Devices: v2 has no devices controller; docker's rules (and --device's) become
an eBPF program attached to the cgroup (devices.py), once, just before the
first process can join it.
"""
from __future__ import annotations

import errno
import os
import re

from .. import launch_spec as MS
from .base import Cgroup, CgroupError, CgroupStats, Layout, hierarchy_path, own_cgroups
from . import _files as F
from . import delegation, devices
from .limits import Limits, format_cpu_list
from .v1 import _changed_pairs, _parent_path

# What `unified` (OCI linux.resources.unified) may name: a controller's file in
# the container's own cgroup, never a path or one of the core files that move
# processes or delegate.
_UNIFIED_KEY = re.compile(r"^[a-z][a-z0-9_]*\.[a-z0-9_.]+$")
_UNIFIED_REFUSED = frozenset({"cgroup.procs", "cgroup.threads", "cgroup.subtree_control", "cgroup.kill",
                              "cgroup.type", "cgroup.freeze"})

# Enabled for every container when the parent offers them (stats, OOM
# reporting); freezing and killing are core v2 files and need none.
ALWAYS = ("memory", "pids")
V1_TO_V2 = {"memory": "memory", "cpu": "cpu", "cpuset": "cpuset", "pids": "pids", "blkio": "io", "hugetlb": "hugetlb"}
# enabled for a container whose limits may change while it runs (v1.UPDATABLE)
UPDATABLE = ("cpu", "cpuset", "io")


def shares_to_weight(shares: int) -> int:
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    return 1 + ((weight - 10) * 9999) // 990


class V2Cgroup(Cgroup):
    version = 2

    def __init__(self, name: str, path: str, mountpoint: str):
        self.name = name
        self.path = path
        self.mountpoint = mountpoint
        self._made: list = []
        self._fds: list = []
        self._final_oom: bool | None = None
        self._destroyed = False
        self._device_rules: list | None = None    # None: devices not restricted
        self._device_filter_attached = False

    @classmethod
    def create(cls, name: str, limits: Limits, lay: Layout, devices_restricted=True, rootless=False,
               before_mkdir=None, updatable=False) -> "V2Cgroup":
        for key, _value in limits.unified:
            check_unified_key(key)
        required = {V1_TO_V2[c] for c in limits.controllers()}
        required |= {key.split(".", 1)[0] for key, _ in limits.unified} & lay.v2_controllers
        missing = sorted(required - lay.v2_controllers)
        if missing:
            raise CgroupError(errno.EOPNOTSUPP, f"the cgroup v2 hierarchy has no {', '.join(missing)} controller: "
                                                f"cannot apply the requested limits")
        if rootless:    # only inside the cgroup delegated to the user, beside the caller's
            parent, top = delegation.container_parent(limits, required, lay)
        else:
            own = own_cgroups().get("", "/")
            parent, top = hierarchy_path(lay.v2, _parent_path(own, limits.cgroup_parent)), lay.v2[0]
        cg = cls(name, parent + "/" + name, lay.v2[0])
        if devices_restricted and devices.can_filter():     # else: the root stays nodev
            cg._device_rules = devices.default_rules()
        try:
            wanted = required | ((set(ALWAYS) | (set(UPDATABLE) if updatable else set())) & lay.v2_controllers)
            _enable_down_to(parent, lay.v2[0], wanted, required, cg._made, top)
            if before_mkdir is not None:
                before_mkdir(cg.path)
            F.mkdir_chain(cg.path, lay.v2[0], cg._made)
            cg._apply(limits)
        except BaseException:
            cg.destroy()
            raise
        return cg

    def _apply(self, lim: Limits):
        p = self.path
        if lim.memory is not None:
            F.write(p + "/memory.max", lim.memory)
            swap = lim.swap_total
            if os.path.exists(p + "/memory.swap.max"):
                F.write(p + "/memory.swap.max", "max" if swap == -1 else swap - lim.memory)
            elif lim.memory_swap not in (None, -1):
                raise CgroupError(errno.EOPNOTSUPP, "memory-swap needs swap accounting, which this kernel does not have")
        if lim.cpu_shares is not None:
            F.write(p + "/cpu.weight", shares_to_weight(lim.cpu_shares))
        if lim.cpu_quota is not None:
            F.write(p + "/cpu.max", f"{lim.cpu_quota} {lim.cpu_period}")
        if lim.cpuset_cpus is not None:
            F.write(p + "/cpuset.cpus", format_cpu_list(lim.cpuset_cpus))
        if lim.cpuset_mems is not None:
            F.write(p + "/cpuset.mems", format_cpu_list(lim.cpuset_mems))
        if lim.pids_limit is not None:
            F.write(p + "/pids.max", lim.pids_limit)
        if lim.blkio_weight is not None:
            if os.path.exists(p + "/io.bfq.weight"):
                F.write(p + "/io.bfq.weight", f"default {lim.blkio_weight}")
            elif os.path.exists(p + "/io.weight"):
                F.write(p + "/io.weight", f"default {blkio_weight_to_io_weight(lim.blkio_weight)}")
            else:
                raise CgroupError(errno.EOPNOTSUPP, "blkio-weight needs io.weight (the io cost model) or the BFQ scheduler")
        for rate in lim.device_read_bps:
            F.write(p + "/io.max", f"{rate.major}:{rate.minor} rbps={rate.rate}")
        for rate in lim.device_write_bps:
            F.write(p + "/io.max", f"{rate.major}:{rate.minor} wbps={rate.rate}")
        for path, value, *_undo in self._extra_writes(Limits(), lim):
            F.write(path, value)

    def _extra_writes(self, old: Limits, new: Limits) -> list:
        """Memory reservation (memory.low), I/O operations per second,
        hugepages and the OCI `unified` files, from `old` to `new`."""
        p, out = self.path, []
        if new.memory_reservation != old.memory_reservation:
            out.append((p + "/memory.low", new.memory_reservation or 0))
        for field, key in (("device_read_iops", "riops"), ("device_write_iops", "wiops")):
            out += _io_max_writes(p, key, getattr(old, field), getattr(new, field))
        for size, limit in _changed_pairs(old.hugepage_limits, new.hugepage_limits, "max"):
            out.append((f"{p}/hugetlb.{size}.max", limit))
        for key, value in _changed_pairs(old.unified, new.unified, None):
            check_unified_key(key)
            if value is not None:     # a key dropped keeps its value: there is no default to go back to
                out.append((f"{p}/{key}", value))
        return out

    def update(self, old: Limits, new: Limits) -> None:
        """Changes the limits of the (running) container from `old` to `new`
        (see V1Cgroup.update): all or nothing."""
        p, writes = self.path, []
        if new.memory != old.memory:
            if new.memory is not None:
                usage = F.read_int(p + "/memory.current")
                if usage is not None and usage > new.memory:
                    # v2 would OOM-kill to get there; refuse as runc does on v1
                    raise CgroupError(errno.EBUSY, f"unable to set memory limit to {new.memory} (current usage: "
                                                   f"{usage}, peak usage: {F.read_int(p + '/memory.peak')})")
            writes.append((p + "/memory.max", "max" if new.memory is None else new.memory))
        if (new.memory, new.swap_total) != (old.memory, old.swap_total):
            if os.path.exists(p + "/memory.swap.max"):
                swap = new.swap_total
                writes.append((p + "/memory.swap.max", "max" if swap in (None, -1) else swap - new.memory))
            elif new.memory_swap not in (None, -1):
                raise CgroupError(errno.EOPNOTSUPP, "memory-swap needs swap accounting, which this kernel does not have")
        if new.cpu_shares != old.cpu_shares:
            writes.append((p + "/cpu.weight", 100 if new.cpu_shares is None else shares_to_weight(new.cpu_shares)))
        if (new.cpu_quota, new.cpu_period) != (old.cpu_quota, old.cpu_period):
            writes.append((p + "/cpu.max", f"{'max' if new.cpu_quota is None else new.cpu_quota} "
                                           f"{new.cpu_period or 100000}"))
        for field in ("cpuset_cpus", "cpuset_mems"):
            value = getattr(new, field)
            if value != getattr(old, field):
                writes.append((p + "/cpuset." + field.split("_")[1], format_cpu_list(value) if value else ""))
        if new.pids_limit != old.pids_limit:
            writes.append((p + "/pids.max", "max" if new.pids_limit is None else new.pids_limit))
        if new.blkio_weight != old.blkio_weight and new.blkio_weight is not None:
            if os.path.exists(p + "/io.bfq.weight"):
                writes.append((p + "/io.bfq.weight", f"default {new.blkio_weight}"))
            elif os.path.exists(p + "/io.weight"):
                writes.append((p + "/io.weight", f"default {blkio_weight_to_io_weight(new.blkio_weight)}"))
            else:
                raise CgroupError(errno.EOPNOTSUPP, "blkio-weight needs io.weight (the io cost model) or the BFQ scheduler")
        for field, key in (("device_read_bps", "rbps"), ("device_write_bps", "wbps")):
            writes += _io_max_writes(p, key, getattr(old, field), getattr(new, field))
        writes += self._extra_writes(old, new)
        missing = sorted({os.path.basename(w[0]).split(".")[0] for w in writes if not os.path.exists(w[0])})
        if missing:
            raise CgroupError(errno.EOPNOTSUPP, f"the container's cgroup has no {', '.join(missing)} controller "
                                                "enabled: that limit cannot be changed while it exists")
        F.write_all(writes)

    # ---- devices ---------------------------------------------------------------------

    @property
    def restricts_devices(self) -> bool:
        return self._device_rules is not None

    def allow_device(self, kind: str, major: int, minor: int, perms: str) -> None:
        """One more rule on top of docker's list (--device), before anything joins."""
        rule = devices.rule(kind, major, minor, perms)
        if self._device_rules is None:
            return  # not restricted: nothing to open up
        if self._device_filter_attached:
            raise CgroupError(errno.EBUSY, f"cannot allow device {major}:{minor} in {self.name}: its device "
                                           "filter was attached when the cgroup was first handed out to be joined")
        self._device_rules.append(rule)

    def _attach_device_filter(self):
        """The filter goes on when the cgroup is first handed out to be joined:
        by then every rule is in, and no process of the container runs yet."""
        if self._device_rules is not None and not self._device_filter_attached:
            devices.attach_filter(self.path, self._device_rules)
            self._device_filter_attached = True

    # ---- joining ---------------------------------------------------------------------

    def record(self) -> dict:
        return {"version": 2, "name": self.name, "path": self.path, "mountpoint": self.mountpoint,
                "made": list(self._made), "restricts_devices": self._device_rules is not None}

    @classmethod
    def reopen(cls, record: dict) -> "V2Cgroup":
        cg = cls(record["name"], record["path"], record["mountpoint"])
        cg._made = list(record["made"])
        if record.get("restricts_devices"):   # its filter is attached already
            cg._device_rules, cg._device_filter_attached = [], True
        return cg

    def join_fds(self) -> list:
        self._attach_device_filter()
        if not self._fds:
            try:
                self._fds.append(os.open(self.path + "/cgroup.procs", F.O_WRITE))
            except OSError as e:
                raise CgroupError(e.errno, f"cannot open {self.path}/cgroup.procs: {e.strerror}") from None
        return list(self._fds)

    def dir_fd(self) -> int:
        """For clone3(CLONE_INTO_CGROUP); the caller closes it (or close_fds() does)."""
        self._attach_device_filter()
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise CgroupError(e.errno, f"cannot open {self.path}: {e.strerror}") from None
        self._fds.append(fd)
        return fd

    def close_fds(self):
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)

    def mount_specs(self, read_only=True) -> list:
        flags = MS.MS_NOSUID | MS.MS_NODEV | MS.MS_NOEXEC | (MS.MS_RDONLY if read_only else 0)
        return [MS.MountSpec("cgroup2", "/sys/fs/cgroup", "cgroup2", None, flags, mkdir=MS.MKDIR_NONE)]

    # ---- looking at it ----------------------------------------------------------------

    @property
    def paths(self) -> list:
        return [self.path]

    def pids(self) -> list:
        return F.read_pids(self.path + "/cgroup.procs")

    def oom_killed(self) -> bool:
        if self._final_oom is not None:
            return self._final_oom
        return F.read_keyed(self.path + "/memory.events").get("oom_kill", 0) > 0

    def stats(self) -> CgroupStats:
        p = self.path
        cpu = F.read_keyed(p + "/cpu.stat")
        s = CgroupStats()
        if "usage_usec" in cpu:
            s.cpu_usage_ns = cpu["usage_usec"] * 1000
            s.cpu_user_ns = cpu.get("user_usec", 0) * 1000
            s.cpu_system_ns = cpu.get("system_usec", 0) * 1000
        s.cpu_throttled_periods = cpu.get("nr_throttled")
        s.memory_current = F.read_int(p + "/memory.current")
        s.memory_peak = F.read_int(p + "/memory.peak")          # kernel 5.19+
        s.memory_limit = F.read_int(p + "/memory.max")
        events = F.read_keyed(p + "/memory.events")
        if events:
            s.memory_failcnt = events.get("max")
            s.oom_kills = events.get("oom_kill")
        s.pids_current = F.read_int(p + "/pids.current")
        s.pids_limit = F.read_int(p + "/pids.max")
        s.pids_peak = F.read_int(p + "/pids.peak")
        s.pids_limit_hits = F.read_keyed(p + "/pids.events").get("max")
        text = F.read(p + "/io.stat")
        if text is not None:
            rd = wr = 0
            for line in text.splitlines():
                for kv in line.split()[1:]:
                    k, _, v = kv.partition("=")
                    if k == "rbytes":
                        rd += int(v)
                    elif k == "wbytes":
                        wr += int(v)
            s.io_read_bytes, s.io_write_bytes = rd, wr
        return s

    # ---- pause, kill, remove ------------------------------------------------------------

    def _events(self) -> dict:
        return F.read_keyed(self.path + "/cgroup.events")

    def freeze(self, timeout=5.0):
        F.write(self.path + "/cgroup.freeze", "1")
        F.wait_until(lambda: self._events().get("frozen") == 1, timeout, f"{self.path} to freeze")

    def thaw(self):
        F.write(self.path + "/cgroup.freeze", "0")

    def kill_all(self, timeout=5.0):
        if self._events().get("populated", 0) == 0:
            return
        if os.path.exists(self.path + "/cgroup.kill"):     # kernel 5.14+: one write, no race with fork
            F.write(self.path + "/cgroup.kill", "1")
        else:
            try:
                self.freeze(timeout)
            except CgroupError:
                pass
            F.kill_pids(self.pids())
            self.thaw()
        F.wait_until(lambda: (self._events().get("populated", 0) == 0 or F.kill_pids(self.pids())),
                     timeout, f"the processes of cgroup {self.name} to exit")

    def destroy(self, timeout=5.0):
        if self._destroyed:
            return
        self.close_fds()
        try:
            if self._made and self._made[-1] == self.path:
                self.kill_all(timeout)
                self._final_oom = self.oom_killed()
        finally:
            self._destroyed = True
            F.rmdir_all(self._made, {self.path}, timeout)
            self._made = []


def check_unified_key(key) -> None:
    """A key of OCI linux.resources.unified: a file of a controller, in the
    container's own cgroup (never a path, never a file that moves processes)."""
    if not isinstance(key, str) or not _UNIFIED_KEY.match(key) or key in _UNIFIED_REFUSED:
        raise CgroupError(errno.EINVAL, f"linux.resources.unified: {key!r} is not a cgroup v2 file "
                                        "this runtime may set")


def _io_max_writes(path: str, key: str, old: tuple, new: tuple) -> list:
    """io.max lines that take `key` (rbps, wbps, riops, wiops) from the old
    DeviceRates to the new ones, each with the line that undoes it."""
    old_by_dev = {(r.major, r.minor): r.rate for r in old}
    new_by_dev = {(r.major, r.minor): r.rate for r in new}
    return [(path + "/io.max", f"{maj}:{mi} {key}={new_by_dev.get((maj, mi), 'max')}",
             f"{maj}:{mi} {key}={old_by_dev.get((maj, mi), 'max')}")
            for (maj, mi) in sorted(set(old_by_dev) | set(new_by_dev))
            if old_by_dev.get((maj, mi)) != new_by_dev.get((maj, mi))]


def _enable_down_to(parent: str, mountpoint: str, wanted: set, required: set, made: list, top: str):
    """Makes the parent's missing ancestors and enables `wanted` in every
    cgroup.subtree_control from `top` (the hierarchy root, or for a rootless
    container the cgroup delegated to the user) down to `parent`.

    The kernel only lets a controller into a cgroup whose parent enabled it.
    A cgroup that holds processes (other than the root) cannot enable any: a
    required controller then fails with a message naming cgroup_parent."""
    F.mkdir_chain(parent, top, made, leaf_exists_ok=True)
    chain = []
    d = parent
    while True:
        chain.append(d)
        if d == top or len(d) <= len(top):
            break
        d = os.path.dirname(d)
    for d in reversed(chain):
        enabled = set((F.read(d + "/cgroup.subtree_control") or "").split())
        available = set((F.read(d + "/cgroup.controllers") or "").split())
        to_enable = sorted((wanted - enabled) & available)
        # A non-root cgroup with processes of its own must not delegate: the
        # kernel may accept the write, but cpu/pids then make it a "thread
        # root" and no child of it can take a process (EOPNOTSUPP at join).
        if to_enable and d != mountpoint and F.read_pids(d + "/cgroup.procs"):
            blocked = set(to_enable) & required
            if blocked:
                raise CgroupError(errno.EBUSY, f"cannot enable the {', '.join(sorted(blocked))} controller in {d}: "
                                               "it holds processes (give the container a cgroup_parent "
                                               "outside it, in a cgroup of its own)")
            wanted = wanted - set(to_enable)
            to_enable = []
        for ctl in to_enable:
            try:
                F.write(d + "/cgroup.subtree_control", f"+{ctl}")
            except CgroupError as e:
                if ctl in required:
                    raise CgroupError(e.errno, f"cannot enable the {ctl} controller in {d}: {os.strerror(e.errno)}") from None
                wanted = wanted - {ctl}
        missing = (wanted & required) - available
        if missing:
            raise CgroupError(errno.EOPNOTSUPP, f"{d} does not offer the {', '.join(sorted(missing))} controller")
