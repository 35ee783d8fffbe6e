"""What a detached container holds on the host (Container.host_record(),
plain JSON), found again and released from another process: an OCI
runtime's delete, pause or ps runs long after the process that started the
container is gone. Light on purpose: those commands import nothing else."""
from __future__ import annotations


def detached_cgroup(record: dict):
    """The container's cgroup, or None when it has none."""
    if not record.get("cgroup"):
        return None
    # Imported here: the cgroup drivers (dataclasses, ctypes for v2's device
    # filter: ~8 ms) are for the commands that act on a cgroup (delete, pause,
    # ps, kill --all); state and kill, which a shim runs most, import this module too.
    from . import cgroups

    return cgroups.reopen(record["cgroup"])


def release_detached(record: dict) -> None:
    """Removes what the container held (its cgroup, killing what is left in it)."""
    cg = detached_cgroup(record)
    if cg is not None:
        cg.destroy()
