"""What a detached container holds on the host (Container.host_record(),
plain JSON), found again and released from another process: an OCI
runtime's delete, pause or ps runs long after the process that started the
container is gone. Light on purpose: those commands import nothing else."""
from __future__ import annotations

from . import cgroups


def detached_cgroup(record: dict):
    """The container's cgroup, or None when it has none."""
    return cgroups.reopen(record["cgroup"]) if record.get("cgroup") else None


def release_detached(record: dict) -> None:
    """Removes what the container held (its cgroup, killing what is left in it)."""
    cg = detached_cgroup(record)
    if cg is not None:
        cg.destroy()
