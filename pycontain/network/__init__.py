"""Container networking: none, host, bridge (default and user-defined) and container:NAME.

    store.py     network definitions under the store root (create/get/list/remove)
    ipam.py      address leases: one file per address, flock, stale-owner reclaim
    bridge.py    the bridge and each container's veth pair (netlink via pyroute2)
    nat.py       the engine's nftables table: masquerade and published ports
    ports.py     docker's -p forms; holding the published host ports
    etcfiles.py  /etc/hosts (names on user-defined networks) and /etc/resolv.conf
    attach.py    NetworkAttachment: one container's network, made before clone
    registry.py  running containers by id and name, for container:NAME

Nothing here imports pyroute2 until a bridge network is used.
"""
from __future__ import annotations

from dataclasses import asdict

from ..errors import ConfigError
from ..names import NAME_RE
from .slirp import parse_mode

BUILTIN_MODES = ("none", "host", "bridge")


def validate_mode(mode) -> str:
    """Checks the syntax of a network mode: none, host, bridge, container:REF or
    a network name (whether that network exists is checked at start)."""
    if not isinstance(mode, str):
        raise ConfigError(f"network must be a string, not {type(mode).__name__}")
    if mode in BUILTIN_MODES:
        return mode
    if mode == "slirp4netns" or mode.startswith("slirp4netns:"):
        parse_mode(mode)
        return mode
    if mode.startswith("container:"):
        if not mode[len("container:"):]:
            raise ConfigError("network container:NAME needs a container name or id")
        return mode
    if not NAME_RE.match(mode) or mode == "default":
        raise ConfigError(f"invalid network {mode!r}: none, host, bridge, container:NAME or a network name")
    return mode


def needs_attachment(mode: str) -> bool:
    """Whether the mode needs a NetworkAttachment (veth, bridge, a joined namespace)."""
    return mode not in ("none", "host") and not (mode == "slirp4netns" or mode.startswith("slirp4netns:"))


def create_network(name, subnet=None, gateway=None, internal=False, root=None, labels=None):
    # Imported here: the network store pulls in netlink and nftables, which only
    # the network verbs and a bridge attachment need (config and every
    # `pycontain` command import this package).
    from . import store

    return store.create(name, subnet, gateway, internal, root, labels)


def remove_network(name, root=None):
    from . import store

    return store.remove(name, root)


def list_networks(root=None):
    from . import store

    store.get(store.DEFAULT_NETWORK, root)  # docker always lists the default network
    return store.list_networks(root)


def inspect_network(name, root=None) -> dict:
    """The definition plus the containers holding an address on it."""
    from . import ipam, store

    net = store.get(name, root)
    info = asdict(net)
    info["containers"] = [
        {"id": lease.container, "name": lease.container_name, "address": lease.address,
         "ports": lease.ports}
        for lease in ipam.live_leases(net, root)]
    return info


def prune_networks(root=None) -> list:
    """Reclaims stale leases everywhere and removes every unused user-defined
    network (docker keeps the default one). Returns the removed names."""
    from . import ipam, store

    removed = []
    for net in store.list_networks(root):
        with ipam.network_lock(net, root):
            ipam.reclaim_stale(net, root)
        if net.name == store.DEFAULT_NETWORK:
            continue
        try:
            store.remove(net.name, root)
            removed.append(net.name)
        except ConfigError:
            pass  # in use
    return removed


def reset_host(root=None) -> dict:
    """For `system reset`, in this network namespace: every bridge of the
    store's networks (and the default one), the engine's nftables table, and
    the namespace's sysctls a bridge changed, put back to their earlier value."""
    from . import bridge, nat, store

    bridges = {store.DEFAULT_BRIDGE} | {net.bridge for net in store.list_networks(root)}
    removed = [name for name in sorted(bridges) if bridge.delete_link(name)]
    had_table = nat.table_exists()
    nat.delete_table()
    return {"bridges": removed, "nftables_table": had_table, "sysctls": bridge.restore_host_sysctls(root)}
