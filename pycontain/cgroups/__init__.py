"""Resource limits: one interface over cgroup v1 and v2.

    limits = Limits.from_docker(memory="64m", cpus=0.5, pids_limit=100)  # ConfigError if bad
    cg = create(f"pycontain-{id}", limits)          # directories + limits, nothing joined yet
    plan.cgroup_fds = cg.join_fds()                # the child joins before it mounts or execs
    ...
    cg.oom_killed(); cg.stats(); cg.freeze(); cg.thaw()
    cg.destroy()                                    # kills what is left, removes every directory

Where the container's cgroup lives: under the calling process's own cgroup in
every hierarchy (/proc/self/cgroup), so limits that bind the caller bind its
containers too; `Limits.cgroup_parent` moves it (relative: below the caller's
cgroup, absolute: from the hierarchy's root). Only directories this package
made are ever written to or removed, except that on v2 a missing controller is
enabled in the parent's cgroup.subtree_control (the kernel's only way to
delegate it).

A user who is not root gets a cgroup only inside one delegated to it, on
cgroup v2 (pycontain/cgroups/delegation.py); anywhere else create() raises
CgroupNotDelegated, which a container without limits takes as "run without one".

The layout is read from /proc/self/mountinfo: "unified" (one cgroup2
hierarchy: v2 driver), "hybrid" (v1 controllers plus a cgroup2 tree that holds
none of them: v1 driver) or "legacy" (v1 only: v1 driver).
"""
from __future__ import annotations

import os

from .base import (HYBRID, LEGACY, NONE, UNIFIED, Cgroup, CgroupError, CgroupNotDelegated,  # noqa: F401
                   CgroupStats, Layout, cgroup_layout, detect_layout, hierarchy_path, layout, own_cgroups)
from .delegation import refuse_v1
from .limits import DeviceRate, Limits, format_cpu_list, parse_bytes, parse_cpu_list  # noqa: F401
from .v1 import V1Cgroup
from .v2 import V2Cgroup


def reopen(record: dict) -> Cgroup:
    """The cgroup a record() describes, owned by the caller from now on
    (an OCI runtime's delete, pause or ps runs in a process of its own)."""
    if record.get("version") == 2:
        return V2Cgroup.reopen(record)
    return V1Cgroup.reopen(record)


def create(name: str, limits: Limits, *, devices_restricted=True, lay: Layout | None = None,
           rootless: bool | None = None, before_mkdir=None, updatable=False) -> Cgroup:
    """Makes the cgroup `name` with `limits` applied, nothing joined yet.

    devices_restricted: allow only docker's default device list, plus what
    Cgroup.allow_device() adds (privileged containers pass False); v1 writes
    it to the devices controller, v2 attaches an eBPF device filter when the
    cgroup is first joined. rootless (default: not running as root): only
    inside a delegated cgroup v2 subtree. Raises CgroupError (nothing left
    behind) when the machine cannot give what `limits` asks for.
    before_mkdir(path): called with each of the cgroup's directories before
    it is made, so that an owner killed in between can be cleaned up after.
    updatable: the container's limits may change while it runs (Cgroup.update):
    it gets a cgroup in every controller a limit can need, limited or not."""
    lay = lay or layout()
    if rootless is None:
        rootless = os.geteuid() != 0
    if lay.driver == "v2":
        return V2Cgroup.create(name, limits, lay, devices_restricted=devices_restricted, rootless=rootless,
                               before_mkdir=before_mkdir, updatable=updatable)
    if lay.driver == "v1":
        if rootless:
            refuse_v1(limits)
        return V1Cgroup.create(name, limits, lay, devices_restricted=devices_restricted, before_mkdir=before_mkdir,
                               updatable=updatable)
    raise CgroupError(95, "resource limits need cgroups, and none are mounted on this machine")
