"""One more network for a running container, and leaving it again (docker
network connect/disconnect), and the /etc/hosts files of every member.

A container starts on one network (its NetworkAttachment, attach.py). Each
network it is connected to later gets a veth pair of its own: the host end on
that network's bridge, the container's end made straight in the container's
network namespace as the next free ethN, with an address from the network's
IPAM and no default route (the first network keeps it, as in docker). The
lease belongs to the process that looks after the container (its monitor), so
it is reclaimed with everything it holds if that process dies; the veth dies
with the container's namespace.

Names: a container's /etc/hosts lists its own addresses and every live member
of each user-defined network it is on (names and --alias'es), so a member that
joins or leaves rewrites the hosts files of everyone sharing a network with it.
"""
from __future__ import annotations

import os
import socket

from .. import events
from ..errors import ConfigError, NetworkError
from . import _netlink as nl
from . import bridge, ipam, nat, ports, store
from .files import networks_dir
from .etcfiles import hosts_text, rewrite_in_place


class AlreadyConnected(ConfigError):
    """The container already has an endpoint on that network."""


class NotConnected(ConfigError):
    """The container has no endpoint on that network."""


def extra_veth_name(container_id: str, network) -> str:
    """The host end of a connected container's veth (15 characters at most,
    other than the first network's veth<id>)."""
    return "vc" + container_id[:8] + network.id[:5]


def _next_ifname(netns_fd) -> str:
    with nl.inside_netns(netns_fd):
        taken = {name for _, name in socket.if_nameindex()}
    n = 0
    while f"eth{n}" in taken:
        n += 1
    return f"eth{n}"


def lease_of(network, container_id: str, root=None, live=True):
    """The lease container_id holds on network (a live one unless live=False), or None."""
    leases = ipam.live_leases(network, root) if live else ipam.all_leases(network, root)
    return next((lease for lease in leases if lease.container == container_id), None)


def connect(network_name: str, *, pid: int, container_id: str, owner: tuple, container_name=None,
            hostname=None, hosts_file=None, aliases=(), ip=None, root=None) -> ipam.Lease:
    """Plugs the running container whose init is `pid` into network_name:
    veth, address (ip, or the next free one), hosts files. The lease lives
    with `owner` (pid, start time). On failure nothing stays behind."""
    network = store.get(network_name, root)
    try:
        netns_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        raise ConfigError(f"container {container_id[:12]} is not running") from None
    lease = veth = None
    try:
        with ipam.network_lock(network, root):
            if lease_of(network, container_id, root) is not None:
                raise AlreadyConnected(f"endpoint with name {container_name or container_id[:12]} "
                                       f"already exists in network {network.name}")
            bridge_index = nl.if_index(network.bridge)
            if not bridge_index:
                bridge_index = bridge.create_bridge(network, root)
            veth = extra_veth_name(container_id, network)
            bridge.delete_link(veth)   # a dead run's, if its reclaim never came
            lease = ipam.allocate(network, {
                "container": container_id, "container_name": container_name, "hostname": hostname,
                "veth": veth, "hosts_file": str(hosts_file) if hosts_file else None,
                "aliases": [a for a in aliases if a],
            }, root, address=ip, owner=owner)
            bridge.attach_container(netns_fd, container_id, bridge_index, lease.address, network.prefixlen,
                                    None, veth=veth, ifname=_next_ifname(netns_fd))
    except BaseException:
        if lease is not None:
            with ipam.network_lock(network, root):
                bridge.delete_link(veth)
                ipam.release(lease, root)
        raise
    finally:
        os.close(netns_fd)
    refresh_hosts(network, root)
    _event(network, "connect", container_id, root)
    return lease


def _event(network, action: str, container_id: str, root) -> None:
    # docker's network events name the container in their attributes
    events.append(networks_dir(root).parent, "network", action, network.id,
                  {"container": container_id, "name": network.name, "type": network.driver})


def set_aliases(network_name: str, container_id: str, aliases, root=None) -> None:
    """Gives the container's live lease on network_name these aliases (the
    network it started on: docker's --network-alias), and tells the members."""
    network = store.get(network_name, root)
    with ipam.network_lock(network, root):
        lease = lease_of(network, container_id, root)
        if lease is None:
            raise NotConnected(f"container {container_id[:12]} is not connected to network {network.name}")
        lease.aliases = list(aliases)
        ipam.rewrite_lease(lease, root)
    refresh_hosts(network, root)


def disconnect(network_name: str, container_id: str, *, force=False, root=None) -> None:
    """Takes the container's endpoint off network_name: its veth (the
    container's end goes with it) and its lease. force: a stale lease too."""
    network = store.get(network_name, root)
    with ipam.network_lock(network, root):
        lease = lease_of(network, container_id, root, live=not force)
        if lease is None:
            raise NotConnected(f"container {container_id[:12]} is not connected to network {network.name}")
        _drop(lease, network, root)
    refresh_hosts(network, root)
    _event(network, "disconnect", container_id, root)


def _drop(lease, network, root):
    if lease.ports:   # the first network's published ports (a C monitor's run, ended from another process)
        nat.unpublish_stale([ports.PortMapping.from_dict(p) for p in lease.ports], lease.address)
    if lease.veth:
        try:
            bridge.delete_link(lease.veth)
        except NetworkError:
            if network.bridge and nl.if_index(lease.veth):
                raise
    ipam.release(lease, root)


def release_container(container_id: str, keep=(), root=None) -> list:
    """Every lease of the container on any network but those named in
    `keep`: after its run ended (its monitor's work). Returns the names."""
    dropped = []
    for network in store.list_networks(root):
        if network.name in keep:
            continue
        with ipam.network_lock(network, root):
            lease = lease_of(network, container_id, root, live=False)
            if lease is None:
                continue
            _drop(lease, network, root)
        dropped.append(network.name)
        refresh_hosts(network, root)
    return dropped


def endpoints(container_id: str, root=None) -> dict:
    """{network name: (Network, Lease)} of the container's live leases."""
    out = {}
    for network in store.list_networks(root):
        lease = lease_of(network, container_id, root)
        if lease is not None:
            out[network.name] = (network, lease)
    return out


# ---- /etc/hosts of the members ---------------------------------------------------------

def lease_names(lease) -> list:
    names = [n for n in (lease.container_name, lease.hostname, *(lease.aliases or ())) if n]
    return list(dict.fromkeys(names)) or [lease.container[:12]]


def refresh_hosts(network, root=None):
    """Rewrites the hosts file of every live member of `network` (under its
    lock, so concurrent joins and leaves do not interleave) from the live
    leases of every network: a member connected to several lists them all."""
    with ipam.network_lock(network, root):
        members = [lease for lease in ipam.live_leases(network, root) if lease.hosts_file]
        if not members:
            return
        # the other networks read without their locks: a lease file is
        # created whole (O_EXCL) and a half-written one reads as stale
        by_network = {network.name: (network, ipam.live_leases(network, root))}
        for other in store.list_networks(root):
            if other.name not in by_network:
                by_network[other.name] = (other, ipam.live_leases(other, root))
        for m in members:
            rewrite_in_place(m.hosts_file, member_hosts_text(m.container, by_network))


def member_hosts_text(container_id: str, by_network: dict) -> str:
    """One member's hosts file: its own addresses first (the network it
    started on first), then the other members of its user-defined networks."""
    own, peers, extra_hosts = [], [], []
    for network, leases in by_network.values():
        mine = [lease for lease in leases if lease.container == container_id]
        if not mine:
            continue
        first = not (mine[0].veth or "").startswith("vc")
        own.insert(0 if first else len(own), (mine[0].address, lease_names(mine[0])))
        extra_hosts += [tuple(h) for h in mine[0].extra_hosts if tuple(h) not in extra_hosts]
        if network.user_defined:
            peers += [(p.address, lease_names(p)) for p in leases if p.container != container_id]
    address, names = own[0] if own else (None, ())
    return hosts_text(address, names, own[1:] + peers, extra_hosts)
