"""`pycontain system reset` (podman's verb): undoes what pycontain did to this machine.

Every container (killed if running, with its volumes), then, in this network
namespace, the bridges, the engine's nftables table and the sysctls a bridge
changed (put back where their earlier value was noted), and last the store
itself: images, volumes, networks, records.
"""
from __future__ import annotations

from pathlib import Path

from . import containers, network, rootless
from ._paths import default_root
from .errors import ContainerError


def _mounts_under(root: Path) -> list:
    """Mount points at or under root, as this process sees them."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            # field 5, with mountinfo's octal escapes for space, tab, newline and backslash
            point = line.split()[4].encode().decode("unicode_escape")
            if point == str(root) or point.startswith(f"{root}/"):
                out.append(point)
    return out


def reset(root=None) -> dict:
    """Removes every container, image, volume and network of the store at
    root and the store; the bridges and the nftables table here; restores the
    sysctls. Returns what went: {"containers", "bridges", "nftables_table",
    "sysctls", "store"}."""
    root = Path(root or default_root())
    removed = []
    if root.exists():
        for c in containers.list(all=True, root=root):
            c.remove(force=True, volumes=True)
            removed.append(c.id)
    host = network.reset_host(root)
    containers.close_stores()   # the record database goes with the store
    mounted = _mounts_under(root)
    if mounted:   # never delete through a mount into someone else's files
        raise ContainerError(f"cannot remove the store {root}: {mounted[0]} is still mounted; "
                             "unmount it and run `pycontain system reset` again")
    if root.exists():
        rootless.remove_tree(root)
    return {"containers": removed, **host, "store": str(root)}
