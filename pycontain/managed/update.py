"""docker update: new resource limits (and restart policy) for a managed
container, decided by docker's rules from what its record holds.

Each door (CLI flags, the Engine API's body, a Python call) gives docker's
values, where 0 or None means "leave as it is"; changed_limits() turns them
into the container's new Limits or raises ConfigError with docker's words,
before anything changes."""
from __future__ import annotations

import dataclasses

from ..cgroups import Limits, format_cpu_list, parse_bytes
from ..config import limits_from_record
from ..errors import ConfigError

# the options update() takes, docker's names (CLI flags with _ for -)
LIMIT_OPTIONS = ("memory", "memory_swap", "memory_reservation", "cpus", "cpu_shares", "cpu_quota",
                 "cpu_period", "cpuset_cpus", "cpuset_mems", "pids_limit", "blkio_weight")


def given_options(options: dict) -> dict:
    """The options that change something: in docker's update a zero value
    (an empty CPU list) leaves the setting as it is."""
    return {k: v for k, v in options.items()
            if v not in ((None, "") if k in ("cpuset_cpus", "cpuset_mems") else (None, 0, "", "0"))}


def recorded_memory_swap(limits: Limits) -> int:
    """docker inspect's HostConfig.MemorySwap: as set, else twice a memory
    limit (docker's default), else 0."""
    if limits.memory_swap is not None:
        return limits.memory_swap
    return 2 * limits.memory if limits.memory else 0


def changed_limits(config: dict, **changes) -> tuple:
    """(new Limits, new nano_cpus) for a record's config and docker update's options."""
    unknown = set(changes) - set(LIMIT_OPTIONS)
    if unknown:
        raise ConfigError(f"update() got unknown options: {', '.join(sorted(unknown))}")
    old = limits_from_record(config.get("resources"))
    nano = int(config.get("nano_cpus") or 0)
    given = given_options(changes)
    if "pids_limit" in given and str(given["pids_limit"]).strip() == "-1":
        given["pids_limit"] = -1
    # what the container has now, as docker's options
    now = dict(memory=old.memory, memory_swap=old.memory_swap, memory_reservation=old.memory_reservation,
               cpu_shares=old.cpu_shares, cpuset_cpus=_cpu_list(old.cpuset_cpus),
               cpuset_mems=_cpu_list(old.cpuset_mems), pids_limit=old.pids_limit, blkio_weight=old.blkio_weight,
               device_read_bps=old.device_read_bps, device_write_bps=old.device_write_bps,
               device_read_iops=old.device_read_iops, device_write_iops=old.device_write_iops,
               cgroup_parent=old.cgroup_parent)
    if nano:
        now["cpus"] = nano / 1e9
        for key, word in (("cpu_quota", "CPU Quota"), ("cpu_period", "CPU Period")):
            if key in given:
                raise ConfigError(f"Conflicting options: {word} cannot be updated as NanoCPUs has already been set")
    else:
        now["cpu_quota"], now["cpu_period"] = old.cpu_quota, old.cpu_period
        if "cpus" in given and (old.cpu_quota is not None or old.cpu_period is not None):
            raise ConfigError("Conflicting options: Nano CPUs cannot be updated as CPU Period/Quota has already been set")
    if "memory" in given and "memory_swap" not in given:
        # docker's rule: a memory limit above the memory+swap limit in force
        # (twice the old memory limit by default, 0 without one) needs a new one too
        swap = recorded_memory_swap(old)
        if parse_bytes(given["memory"]) > swap:
            raise ConfigError("Memory limit should be smaller than already set memoryswap limit, "
                              "update the memoryswap at the same time")
        given["memory_swap"] = swap
    merged = dict(now, **given)
    new = Limits.from_docker(**merged)
    new = dataclasses.replace(new, hugepage_limits=old.hugepage_limits, unified=old.unified)
    if "cpus" in given:
        nano = int(round(float(given["cpus"]) * 1e9))
    return new, nano


def _cpu_list(cpus):
    return format_cpu_list(cpus) if cpus is not None else None
