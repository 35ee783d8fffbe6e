"""cgroup v1 (legacy and hybrid layouts): one directory per controller hierarchy.

Conversions are runc's (libcontainer/cgroups/fs): memory.limit_in_bytes and
memory.memsw.limit_in_bytes (docker's --memory-swap is memory+swap),
cpu.shares, cpu.cfs_quota_us/cfs_period_us, cpuset.cpus/mems, pids.max,
blkio.weight (or blkio.bfq.weight with BFQ), blkio.throttle.*_bps_device.
"""
from __future__ import annotations

import errno
import os

from .. import launch_spec as MS
from .base import Cgroup, CgroupError, CgroupStats, Layout, hierarchy_path, own_cgroups
from . import _files as F
from .devices import DEVICE_RULES, rule as device_rule
from .limits import Limits, format_cpu_list

# Made for every container: memory (OOM reporting, stats), pids and cpuacct
# (stats), freezer (pause, and a race-free kill of everything at teardown).
# The others only when a limit needs them.
ALWAYS = ("memory", "pids", "cpuacct", "freezer")
# A container whose limits may change while it runs (update(): docker update,
# an OCI runtime's update) has a directory in every hierarchy a limit can
# need from the start, as docker's and runc's do: a process cannot be moved
# into a new hierarchy's cgroup race-free once it can fork.
UPDATABLE = ("cpu", "cpuset", "blkio")
# the kernel's "no limit" in memory.limit_in_bytes (what it reads back after -1)
UNLIMITED = 9223372036854771712


class V1Cgroup(Cgroup):
    version = 1

    def __init__(self, name: str):
        self.name = name
        self.dirs: dict = {}          # controller -> directory (co-mounted controllers share one)
        self._hier: dict = {}         # directory -> (mountpoint, "cpu,cpuacct" mount options)
        self._made: list = []         # every directory made, parents first
        self._fds: list = []
        self._final_oom: bool | None = None
        self._destroyed = False

    # ---- creation --------------------------------------------------------------

    @classmethod
    def create(cls, name: str, limits: Limits, lay: Layout, devices_restricted=True,
               before_mkdir=None, updatable=False) -> "V1Cgroup":
        if limits.unified:
            raise CgroupError(errno.EOPNOTSUPP, "linux.resources.unified: cgroup v2 files cannot be set on "
                                                "this machine's cgroup v1 hierarchies")
        need = limits.controllers()
        wanted = (set(ALWAYS) | need | ({"devices"} if devices_restricted else set())
                  | (set(UPDATABLE) if updatable else set()))
        missing = sorted(c for c in need if c not in lay.v1)
        if missing:
            raise CgroupError(errno.EOPNOTSUPP, f"the {', '.join(missing)} cgroup controller is not mounted: "
                                                f"cannot apply the requested limits")
        own = own_cgroups()
        cg = cls(name)
        try:
            for ctl in sorted(wanted):
                if ctl not in lay.v1:
                    continue                 # optional and absent: that feature is off
                mount = lay.v1[ctl]
                parent = _parent_path(own.get(ctl, "/"), limits.cgroup_parent)
                d = hierarchy_path(mount, parent + "/" + name)
                cg.dirs[ctl] = d
                if d in cg._hier:
                    continue                 # co-mounted with a controller already made
                opts = ",".join(sorted(c for c, m in lay.v1.items() if m == mount and not c.startswith("name=")))
                cg._hier[d] = (mount[0], opts)
                copy_cpuset = _copy_cpuset_from_parent if "cpuset" in opts.split(",") else None
                if before_mkdir is not None:
                    before_mkdir(d)
                F.mkdir_chain(d, mount[0], cg._made, copy_cpuset)
            cg._apply(limits, devices_restricted)
        except BaseException:
            cg.destroy()
            raise
        return cg

    def _apply(self, lim: Limits, devices_restricted: bool):
        d = self.dirs.get
        if lim.memory is not None:
            F.write(d("memory") + "/memory.limit_in_bytes", lim.memory)
            try:
                F.write(d("memory") + "/memory.memsw.limit_in_bytes", lim.swap_total)
            except CgroupError as e:
                if e.errno != errno.ENOENT:
                    raise
                if lim.memory_swap not in (None, -1):
                    raise CgroupError(errno.EOPNOTSUPP, "memory-swap needs swap accounting, which this kernel "
                                                        "does not have (boot with swapaccount=1)") from None
        if lim.cpu_shares is not None:
            F.write(d("cpu") + "/cpu.shares", lim.cpu_shares)
        if lim.cpu_quota is not None:
            F.write(d("cpu") + "/cpu.cfs_period_us", lim.cpu_period)
            F.write(d("cpu") + "/cpu.cfs_quota_us", lim.cpu_quota)
        if lim.cpuset_cpus is not None:
            F.write(d("cpuset") + "/cpuset.cpus", format_cpu_list(lim.cpuset_cpus))
        if lim.cpuset_mems is not None:
            F.write(d("cpuset") + "/cpuset.mems", format_cpu_list(lim.cpuset_mems))
        if lim.pids_limit is not None:
            F.write(d("pids") + "/pids.max", lim.pids_limit)
        if lim.blkio_weight is not None:
            for name in ("blkio.weight", "blkio.bfq.weight"):
                if os.path.exists(d("blkio") + "/" + name):
                    F.write(d("blkio") + "/" + name, lim.blkio_weight)
                    break
            else:
                raise CgroupError(errno.EOPNOTSUPP, "blkio-weight needs the CFQ or BFQ I/O scheduler, "
                                                    "which this kernel's blkio controller does not offer")
        for rate in lim.device_read_bps:
            F.write(d("blkio") + "/blkio.throttle.read_bps_device", f"{rate.major}:{rate.minor} {rate.rate}")
        for rate in lim.device_write_bps:
            F.write(d("blkio") + "/blkio.throttle.write_bps_device", f"{rate.major}:{rate.minor} {rate.rate}")
        for path, value, *_undo in self._extra_writes(Limits(), lim):
            F.write(path, value)
        if devices_restricted and "devices" in self.dirs:
            devices = self.dirs["devices"]
            F.write(devices + "/devices.deny", "a")
            fd = os.open(devices + "/devices.allow", F.O_WRITE)
            try:   # one open, one write per rule: the kernel takes a rule per write()
                for rule in DEVICE_RULES:
                    os.write(fd, rule.encode())
            except OSError as e:
                raise CgroupError(e.errno, f"cannot write device rules to {devices}: {e.strerror}") from None
            finally:
                os.close(fd)

    def _dir(self, ctl: str) -> str:
        d = self.dirs.get(ctl)
        if d is None:
            raise CgroupError(errno.EOPNOTSUPP, f"the container has no {ctl} cgroup (it was made without "
                                                f"{ctl} limits): that limit cannot be changed while it exists")
        return d

    def _extra_writes(self, old: Limits, new: Limits) -> list:
        """(file, value) for the limits beyond docker run's: memory reservation,
        I/O operations per second and hugepages."""
        out = []
        if new.memory_reservation != old.memory_reservation:
            out.append((self._dir("memory") + "/memory.soft_limit_in_bytes",
                        -1 if new.memory_reservation is None else new.memory_reservation))
        for field, name in (("device_read_iops", "read_iops"), ("device_write_iops", "write_iops")):
            out += _rate_writes(self._dir, f"blkio.throttle.{name}_device", getattr(old, field), getattr(new, field))
        for size, limit in _changed_pairs(old.hugepage_limits, new.hugepage_limits, -1):
            if "hugetlb" not in self.dirs:
                raise CgroupError(errno.EOPNOTSUPP, "linux.resources.hugepageLimits: the hugetlb cgroup "
                                                    "controller is not mounted as cgroup v1 on this machine")
            out.append((f"{self.dirs['hugetlb']}/hugetlb.{size}.limit_in_bytes", limit))
        if new.unified:
            raise CgroupError(errno.EOPNOTSUPP, "linux.resources.unified: cgroup v2 files cannot be set on "
                                                "this machine's cgroup v1 hierarchies")
        return out

    def update(self, old: Limits, new: Limits) -> None:
        """Changes the limits of the (running) container from `old` to `new`:
        a limit new does not set goes back to the kernel's default. All or
        nothing: on a failed write the files written so far get their old values."""
        writes = []
        d = self._dir
        if (new.memory, new.swap_total) != (old.memory, old.swap_total):
            mem = d("memory")
            limit = -1 if new.memory is None else new.memory
            memsw_file = mem + "/memory.memsw.limit_in_bytes"
            if not os.path.exists(memsw_file):
                if new.memory_swap not in (None, -1):
                    raise CgroupError(errno.EOPNOTSUPP, "memory-swap needs swap accounting, which this kernel "
                                                        "does not have (boot with swapaccount=1)")
                writes.append((mem + "/memory.limit_in_bytes", limit))
            else:
                memsw = -1 if new.memory is None else new.swap_total
                # the kernel keeps limit <= memsw at every step: grow memsw first, shrink it last
                current_memsw = F.read_int(memsw_file)
                first_memsw = limit == -1 or (current_memsw not in (None, -1) and limit > current_memsw)
                pair = [(mem + "/memory.limit_in_bytes", limit), (memsw_file, memsw)]
                writes += pair[::-1] if first_memsw else pair
        if new.cpu_shares != old.cpu_shares:
            writes.append((d("cpu") + "/cpu.shares", 1024 if new.cpu_shares is None else new.cpu_shares))
        if (new.cpu_quota, new.cpu_period) != (old.cpu_quota, old.cpu_period):
            cpu = d("cpu")
            writes.append((cpu + "/cpu.cfs_period_us", new.cpu_period or 100000))
            writes.append((cpu + "/cpu.cfs_quota_us", -1 if new.cpu_quota is None else new.cpu_quota))
        for field in ("cpuset_cpus", "cpuset_mems"):
            if getattr(new, field) != getattr(old, field):
                f = d("cpuset") + "/cpuset." + field.split("_")[1]
                value = getattr(new, field)
                writes.append((f, format_cpu_list(value) if value is not None
                               else (F.read(os.path.dirname(os.path.dirname(f)) + "/" + os.path.basename(f)) or "").strip()))
        if new.pids_limit != old.pids_limit:
            writes.append((d("pids") + "/pids.max", "max" if new.pids_limit is None else new.pids_limit))
        if new.blkio_weight != old.blkio_weight and new.blkio_weight is not None:
            blkio = d("blkio")
            for name in ("blkio.weight", "blkio.bfq.weight"):
                if os.path.exists(blkio + "/" + name):
                    writes.append((blkio + "/" + name, new.blkio_weight))
                    break
            else:
                raise CgroupError(errno.EOPNOTSUPP, "blkio-weight needs the CFQ or BFQ I/O scheduler, "
                                                    "which this kernel's blkio controller does not offer")
        for field, name in (("device_read_bps", "read_bps"), ("device_write_bps", "write_bps")):
            writes += _rate_writes(d, f"blkio.throttle.{name}_device", getattr(old, field), getattr(new, field))
        writes += self._extra_writes(old, new)
        F.write_all(writes, busy=self._memory_busy)

    def _memory_busy(self, path, value):
        """runc's words when the kernel cannot reclaim down to a new memory limit."""
        if not path.endswith("/memory.limit_in_bytes"):
            return None
        mem = os.path.dirname(path)
        return (f"unable to set memory limit to {value} (current usage: {F.read_int(mem + '/memory.usage_in_bytes')}, "
                f"peak usage: {F.read_int(mem + '/memory.max_usage_in_bytes')})")

    @property
    def restricts_devices(self) -> bool:
        return "devices" in self.dirs

    def allow_device(self, kind: str, major: int, minor: int, perms: str) -> None:
        """One more rule on top of docker's list (--device): kind "c" or "b"."""
        rule = device_rule(kind, major, minor, perms)
        if "devices" not in self.dirs:
            return  # not restricted: nothing to open up
        try:
            F.write(self.dirs["devices"] + "/devices.allow", str(rule))
        except OSError as e:
            raise CgroupError(e.errno, f"cannot allow device {major}:{minor}: {e.strerror}") from None

    # ---- joining -----------------------------------------------------------------

    def join_fds(self) -> list:
        """`tasks`, not cgroup.procs: "0" written to cgroup.procs takes the global
        threadgroup lock, whose first writer after a quiet spell waits for an RCU
        grace period (~10 ms at p90 on this machine, every container start).
        "0" written to `tasks` moves only the calling thread and skips that lock
        (kernel 6.0+); the child is single-threaded when it writes (it has just
        been cloned and runs no threads), so that moves the whole process."""
        if not self._fds:
            try:
                for d in self._hier:
                    self._fds.append(os.open(d + "/tasks", F.O_WRITE))
            except OSError as e:
                self.close_fds()
                raise CgroupError(e.errno, f"cannot open {d}/tasks: {e.strerror}") from None
        return list(self._fds)

    def close_fds(self):
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)

    def mount_specs(self, read_only=True) -> list:
        ro = MS.MS_RDONLY if read_only else 0
        flags = MS.MS_NOSUID | MS.MS_NODEV | MS.MS_NOEXEC
        specs = [MS.MountSpec("tmpfs", "/sys/fs/cgroup", "tmpfs", "mode=755,size=64k", flags, mkdir=MS.MKDIR_NONE)]
        for _d, (mountpoint, opts) in sorted(self._hier.items(), key=lambda kv: kv[1][0]):
            sub = os.path.basename(mountpoint.rstrip("/")) or opts.replace(",", "_")
            specs.append(MS.MountSpec("cgroup", f"/sys/fs/cgroup/{sub}", "cgroup", opts, flags | ro, mkdir=MS.MKDIR_DIR))
        if read_only:   # the tmpfs itself, now that its mount points exist
            specs.append(MS.MountSpec(None, "/sys/fs/cgroup", None, None,
                                      MS.MS_BIND | (1 << 5) | MS.MS_RDONLY | flags, mkdir=MS.MKDIR_NONE))
        return specs

    # ---- looking at it --------------------------------------------------------------

    @property
    def paths(self) -> list:
        return list(self._hier)

    def record(self) -> dict:
        return {"version": 1, "name": self.name, "dirs": dict(self.dirs),
                "hier": {d: list(v) for d, v in self._hier.items()}, "made": list(self._made)}

    @classmethod
    def reopen(cls, record: dict) -> "V1Cgroup":
        cg = cls(record["name"])
        cg.dirs = dict(record["dirs"])
        cg._hier = {d: tuple(v) for d, v in record["hier"].items()}
        cg._made = list(record["made"])
        return cg

    def pids(self) -> list:
        # Every process joined all hierarchies at once and cannot leave them
        # (its view of cgroupfs is read-only): one hierarchy lists them all.
        return F.read_pids(self._primary() + "/cgroup.procs")

    def _primary(self) -> str:
        d = self.dirs.get("freezer") or self.dirs.get("memory") or next(iter(self._hier), None)
        return d or "/nonexistent"

    def oom_killed(self) -> bool:
        if self._final_oom is not None:
            return self._final_oom
        mem = self.dirs.get("memory")
        if mem is None:
            return False
        # oom_kill counts kills in this cgroup (kernel 4.13+)
        return F.read_keyed(mem + "/memory.oom_control").get("oom_kill", 0) > 0

    def stats(self) -> CgroupStats:
        s = CgroupStats()
        d = self.dirs
        if "cpuacct" in d:
            s.cpu_usage_ns = F.read_int(d["cpuacct"] + "/cpuacct.usage")
            s.cpu_user_ns = F.read_int(d["cpuacct"] + "/cpuacct.usage_user")
            s.cpu_system_ns = F.read_int(d["cpuacct"] + "/cpuacct.usage_sys")
        if "cpu" in d:
            s.cpu_throttled_periods = F.read_keyed(d["cpu"] + "/cpu.stat").get("nr_throttled")
        if "memory" in d:
            m = d["memory"]
            s.memory_current = F.read_int(m + "/memory.usage_in_bytes")
            s.memory_peak = F.read_int(m + "/memory.max_usage_in_bytes")
            s.memory_limit = F.read_int(m + "/memory.limit_in_bytes")
            s.memory_failcnt = F.read_int(m + "/memory.failcnt")
            s.oom_kills = F.read_keyed(m + "/memory.oom_control").get("oom_kill")
        if "pids" in d:
            s.pids_current = F.read_int(d["pids"] + "/pids.current")
            s.pids_limit = F.read_int(d["pids"] + "/pids.max")
            s.pids_peak = F.read_int(d["pids"] + "/pids.peak")
            s.pids_limit_hits = F.read_keyed(d["pids"] + "/pids.events").get("max")
        if "blkio" in d:
            rd = wr = 0
            for line in (F.read(d["blkio"] + "/blkio.throttle.io_service_bytes_recursive") or "").splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[1] == "Read":
                    rd += int(parts[2])
                elif len(parts) == 3 and parts[1] == "Write":
                    wr += int(parts[2])
            s.io_read_bytes, s.io_write_bytes = rd, wr
        return s

    # ---- pause, kill, remove ---------------------------------------------------------

    def _freezer(self) -> str:
        if "freezer" not in self.dirs:
            raise CgroupError(errno.EOPNOTSUPP, "pause needs the freezer cgroup controller, which is not mounted")
        return self.dirs["freezer"] + "/freezer.state"

    def freeze(self, timeout=5.0):
        state = self._freezer()
        F.write(state, "FROZEN")
        # FREEZING until every task stopped (a task in an uninterruptible sleep takes a while)
        F.wait_until(lambda: (F.read(state) or "").strip() == "FROZEN", timeout, f"{state} to read FROZEN")

    def thaw(self):
        F.write(self._freezer(), "THAWED")

    def kill_all(self, timeout=5.0):
        if not self.pids():
            return
        if "freezer" in self.dirs:
            # Frozen tasks cannot fork, so one pass over cgroup.procs gets them all.
            try:
                self.freeze(timeout)
            except CgroupError:
                pass   # still kill what we can see; the loop below catches the rest
            F.kill_pids(self.pids())
            self.thaw()
        F.wait_until(lambda: (F.kill_pids(self.pids()) or not self.pids()), timeout,
                     f"the processes of cgroup {self.name} to exit")

    def destroy(self, timeout=5.0):
        if self._destroyed:
            return
        self.close_fds()
        try:
            if self._hier:
                self.kill_all(timeout)
                self._final_oom = self.oom_killed()
        finally:
            self._destroyed = True
            F.rmdir_all(self._made, set(self._hier), timeout)
            self._made = []


def _parent_path(own: str, cgroup_parent: str | None) -> str:
    if cgroup_parent is None:
        return own.rstrip("/")
    if cgroup_parent.startswith("/"):
        return cgroup_parent.rstrip("/")
    return own.rstrip("/") + "/" + cgroup_parent


def _rate_writes(dir_of, name: str, old: tuple, new: tuple, unset="0") -> list:
    """Writes that take the blkio throttle file `name` from the `old`
    DeviceRates to the `new` ones: the devices no longer listed get `unset`
    (no limit). dir_of("blkio"): the directory (asked only when something changes)."""
    old_by_dev = {(r.major, r.minor): r.rate for r in old}
    new_by_dev = {(r.major, r.minor): r.rate for r in new}
    if old_by_dev == new_by_dev:
        return []
    path = dir_of("blkio") + "/" + name
    # (file, value, what undoes it): the file lists every device, so reading it back would not do
    return [(path, f"{maj}:{mi} {new_by_dev.get((maj, mi), unset)}", f"{maj}:{mi} {old_by_dev.get((maj, mi), unset)}")
            for (maj, mi) in sorted(set(old_by_dev) | set(new_by_dev))
            if old_by_dev.get((maj, mi)) != new_by_dev.get((maj, mi))]


def _changed_pairs(old: tuple, new: tuple, unset) -> list:
    """(key, value) pairs that differ between two tuples of pairs; a key
    only `old` had gets `unset`."""
    old_map, new_map = dict(old), dict(new)
    out = [(k, unset) for k in old_map if k not in new_map]
    return out + [(k, v) for k, v in new_map.items() if old_map.get(k) != v]


def _copy_cpuset_from_parent(d: str):
    """A new v1 cpuset starts with empty cpus and mems and refuses tasks until
    they are set: start from the parent's."""
    parent = os.path.dirname(d)
    for f in ("cpuset.cpus", "cpuset.mems"):
        value = (F.read(f"{parent}/{f}") or "").strip()
        if value:
            F.write(f"{d}/{f}", value)


