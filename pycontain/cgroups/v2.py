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

from .. import launch_spec as MS
from .base import Cgroup, CgroupError, CgroupStats, Layout, hierarchy_path, own_cgroups
from . import _files as F
from . import delegation, devices
from .limits import Limits, format_cpu_list
from .v1 import _parent_path

# Enabled for every container when the parent offers them (stats, OOM
# reporting); freezing and killing are core v2 files and need none.
ALWAYS = ("memory", "pids")
V1_TO_V2 = {"memory": "memory", "cpu": "cpu", "cpuset": "cpuset", "pids": "pids", "blkio": "io"}

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
               before_mkdir=None) -> "V2Cgroup":
        required = {V1_TO_V2[c] for c in limits.controllers()}
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
            wanted = required | (set(ALWAYS) & lay.v2_controllers)
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
