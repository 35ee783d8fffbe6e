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
               before_mkdir=None) -> "V1Cgroup":
        need = limits.controllers()
        wanted = set(ALWAYS) | need | ({"devices"} if devices_restricted else set())
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


def _copy_cpuset_from_parent(d: str):
    """A new v1 cpuset starts with empty cpus and mems and refuses tasks until
    they are set: start from the parent's."""
    parent = os.path.dirname(d)
    for f in ("cpuset.cpus", "cpuset.mems"):
        value = (F.read(f"{parent}/{f}") or "").strip()
        if value:
            F.write(f"{d}/{f}", value)


