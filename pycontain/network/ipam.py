"""IP address management: one lease file per address, under the network's lock.

Allocation takes the network's flock, so threads and processes never hand
out the same address. A lease names its owner: the engine process (pid and
its start time, so a recycled pid does not count) that runs the container,
which dies with it (pdeathsig). A lease whose owner is gone is stale: it is
reclaimed, with everything it held (veth, published-port entries), when its
address comes up again or at `network prune`. Addresses are handed out
round-robin from the last one, as docker does, so a just-freed address is not
reused at once.
"""
from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import NetworkError
from . import bridge, nat, ports
from .files import file_lock, networks_dir


@dataclass
class Lease:
    network: str
    address: str
    container: str                   # container id
    container_name: str | None = None
    hostname: str | None = None
    owner_pid: int = 0
    owner_start: int = 0
    veth: str | None = None
    ports: list = field(default_factory=list)       # PortMapping.to_dict()s
    hosts_file: str | None = None                   # regenerated when members change
    extra_hosts: list = field(default_factory=list)  # ("name", "ip") pairs of --add-host
    aliases: list = field(default_factory=list)      # more names on this network (network connect --alias)


def _process_start(pid: int) -> int:
    """Start time of a process in clock ticks since boot, 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return 0


_self_start = None


def owner_identity() -> tuple:
    global _self_start
    pid = os.getpid()
    if _self_start is None or _self_start[0] != pid:
        _self_start = (pid, _process_start(pid))
    return _self_start


def is_live(lease: Lease) -> bool:
    return lease.owner_pid > 0 and _process_start(lease.owner_pid) == lease.owner_start


def _leases_dir(network, root) -> Path:
    return networks_dir(root) / network.name / "leases"


def network_lock(network, root=None):
    return file_lock(networks_dir(root) / network.name / "lock")


def read_lease(path: Path) -> Lease | None:
    try:
        with open(path) as f:
            return Lease(**json.load(f))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        # a lease half-written by a crashed process: treat as stale and free
        return Lease(network="", address=path.name, container="", owner_pid=0)


def write_lease(lease: Lease, root=None):
    """Creates the lease file (caller holds the network lock and has freed
    the address). Not written atomically on purpose (no temp file and rename
    on the start path): a file left half-written by a crash does not parse,
    and read_lease() takes that for a stale lease."""
    path = networks_dir(root) / lease.network / "leases" / lease.address
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, (json.dumps(asdict(lease)) + "\n").encode())
    finally:
        os.close(fd)


def rewrite_lease(lease: Lease, root=None):
    """Replaces a lease's file (caller holds the network lock), atomically:
    a reader sees the old lease or the new one."""
    path = networks_dir(root) / lease.network / "leases" / lease.address
    tmp = path.with_name(f".{lease.address}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(asdict(lease)) + "\n")
    os.replace(tmp, path)


def _read_hint(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return int(f.read(32).split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _write_hint(path: Path, n: int):
    # in place: the padded number always fits the same bytes
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.pwrite(fd, f"{n:<20}\n".encode(), 0)
    finally:
        os.close(fd)


def all_leases(network, root=None) -> list:
    d = _leases_dir(network, root)
    out = []
    try:
        names = sorted(os.listdir(d))
    except FileNotFoundError:
        return out
    for name in names:
        if name.startswith("."):
            continue
        lease = read_lease(d / name)
        if lease is not None:
            out.append(lease)
    return out


def live_leases(network, root=None) -> list:
    return [lease for lease in all_leases(network, root) if is_live(lease)]


def _reclaim(lease: Lease, network, root):
    """Undoes what a dead owner left: its published ports, its veth, its lease."""
    if lease.ports:
        nat.unpublish_stale([ports.PortMapping.from_dict(p) for p in lease.ports], lease.address)
    if lease.veth:
        try:
            bridge.delete_link(lease.veth)
        except NetworkError:
            pass
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_leases_dir(network, root) / lease.address)


def reclaim_stale(network, root=None) -> list:
    """Frees every stale lease of the network (caller holds network_lock)."""
    freed = []
    for lease in all_leases(network, root):
        if not is_live(lease):
            _reclaim(lease, network, root)
            freed.append(lease)
    return freed


def allocate(network, lease_fields: dict, root=None, *, address=None, owner=None) -> Lease:
    """Leases a free address to a container (caller holds network_lock):
    `address` if given (docker's --ip), else the next free one. `owner`,
    (pid, start time), is the process the lease lives with: by default this
    one; a container connected from another process leases for its monitor."""
    subnet = ipaddress.ip_network(network.subnet)
    first, last = int(subnet.network_address) + 1, int(subnet.broadcast_address) - 1
    gateway = int(ipaddress.ip_address(network.gateway))
    d = _leases_dir(network, root)
    pid, started = owner or owner_identity()
    if address is not None:
        return _allocate_given(network, lease_fields, root, address, (pid, started))
    hint_path = d.parent / "next"
    start = _read_hint(hint_path)
    if not first <= start <= last:
        start = first
    size = last - first + 1
    for i in range(size):
        n = first + (start - first + i) % size
        if n == gateway:
            continue
        address = str(ipaddress.ip_address(n))
        existing = read_lease(d / address)
        if existing is not None:
            if is_live(existing):
                continue
            _reclaim(existing, network, root)
        lease = Lease(network=network.name, address=address, owner_pid=pid, owner_start=started, **lease_fields)
        write_lease(lease, root)
        _write_hint(hint_path, n + 1 if n < last else first)
        return lease
    raise NetworkError(f"network {network.name!r} has no free address left in {network.subnet}")


def _allocate_given(network, lease_fields, root, address, owner) -> Lease:
    subnet = ipaddress.ip_network(network.subnet)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise NetworkError(f"invalid IPv4 address: {address}") from None
    if ip not in subnet or ip in (subnet.network_address, subnet.broadcast_address):
        # dockerd's words
        raise NetworkError(f"Invalid address {address}: It does not belong to any of this network's subnets")
    if str(ip) == network.gateway:
        raise NetworkError(f"Address already in use: {address} is the gateway of network {network.name}")
    path = _leases_dir(network, root) / str(ip)
    existing = read_lease(path)
    if existing is not None:
        if is_live(existing):
            raise NetworkError(f"Address already in use: {address}")
        _reclaim(existing, network, root)
    lease = Lease(network=network.name, address=str(ip), owner_pid=owner[0], owner_start=owner[1], **lease_fields)
    write_lease(lease, root)
    return lease


def release(lease: Lease, root=None):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(networks_dir(root) / lease.network / "leases" / lease.address)
