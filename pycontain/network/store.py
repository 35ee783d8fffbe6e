"""Networks on disk, under the store root: what exists and how it is set up.

    <root>/networks/lock                     held while networks are created/removed
    <root>/networks/<name>/network.json      the definition (written atomically)
    <root>/networks/<name>/lock              held while addresses are leased
    <root>/networks/<name>/leases/<ip>       one file per address in use (ipam.py)

The definition is the truth; the bridge and nftables entries are made from it
in whichever network namespace the engine runs in, on first use there.
"""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from .. import events
from ..errors import ConfigError, NetworkNotFound
from ..names import NAME_RE
from . import bridge, ipam, nat
from .bridge import check_no_route_overlap, host_routes
from .files import DEFAULT_NETWORK, Network, file_lock, load_network, networks_dir, write_atomic  # noqa: F401

DEFAULT_BRIDGE = "pycontain0"
DEFAULT_SUBNET = "10.88.0.0/16"
# when the host already routes 10.88.0.0/16: docker's own default pool
DEFAULT_SUBNETS = (DEFAULT_SUBNET,) + tuple(f"172.{i}.0.0/16" for i in range(17, 32))
# Subnets handed to networks created without --subnet, first free one wins.
AUTO_SUBNETS = tuple(f"10.89.{i}.0/24" for i in range(256))
RESERVED_NAMES = ("none", "host", "default")


def validate_name(name: str):
    if not isinstance(name, str) or not NAME_RE.match(name) or name in RESERVED_NAMES:
        raise ConfigError(f"invalid network name {name!r}: letters, digits, '_', '.', '-' "
                          f"(not {', '.join(RESERVED_NAMES)})")


def _parse_subnet(subnet, gateway):
    try:
        net = ipaddress.ip_network(subnet, strict=True)
    except ValueError as e:
        raise ConfigError(f"invalid subnet {subnet!r}: {e}") from None
    if net.version != 4:
        raise ConfigError(f"IPv6 subnets are not supported yet: {subnet}")
    if net.prefixlen > 29:
        raise ConfigError(f"subnet {subnet} is too small (at most /29)")
    if net.is_loopback or net.is_multicast or net.is_link_local:
        raise ConfigError(f"subnet {subnet} cannot be used for containers")
    if gateway is None:
        gateway = str(net.network_address + 1)
    else:
        try:
            gw = ipaddress.ip_address(gateway)
        except ValueError:
            raise ConfigError(f"invalid gateway {gateway!r}") from None
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            raise ConfigError(f"gateway {gateway} is not a host address of subnet {subnet}")
    return net, gateway


def _routed_elsewhere(subnet):

    check_no_route_overlap(subnet)


def create(name: str, subnet: str | None = None, gateway: str | None = None, internal: bool = False,
           root: Path | None = None, labels=None) -> Network:
    """Defines a new bridge network. ConfigError if the name is taken, the
    subnet is invalid or overlaps another network or one of the host's routes."""
    validate_name(name)
    if name == DEFAULT_NETWORK:
        raise ConfigError(f"network {name!r} already exists (it is the default network)")
    labels = dict(labels or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise ConfigError("network labels must map strings to strings")
    network = _define(name, subnet, gateway, internal, root, bridge=None, labels=labels)
    events.append(networks_dir(root).parent, "network", "create", network.id,
                  {"name": network.name, "type": network.driver})
    return network


def _define(name, subnet, gateway, internal, root, bridge, labels=None) -> Network:
    base = networks_dir(root)
    with file_lock(base / "lock"):
        if (base / name / "network.json").exists():
            raise ConfigError(f"network {name!r} already exists")
        others = _list_unlocked(base)
        if subnet is not None:
            net, gateway = _parse_subnet(subnet, gateway)
            for n in others:
                if ipaddress.ip_network(n.subnet).overlaps(net):
                    raise ConfigError(f"subnet {net} overlaps network {n.name!r} ({n.subnet})")
            _routed_elsewhere(net)
        else:

            taken = [ipaddress.ip_network(n.subnet) for n in others] + [r for r, _ in host_routes()]
            for candidate in (DEFAULT_SUBNETS if name == DEFAULT_NETWORK else AUTO_SUBNETS):
                c = ipaddress.ip_network(candidate)
                if not any(c.overlaps(t) for t in taken):
                    net, gateway = _parse_subnet(candidate, gateway)
                    break
            else:
                raise ConfigError("no free subnet left for a new network: give one with --subnet")
        net_id = os.urandom(32).hex()
        network = Network(name=name, id=net_id, subnet=str(net), gateway=gateway,
                          bridge=bridge or f"pc-{net_id[:12]}", internal=bool(internal), created=time.time(),
                          labels=labels or {})
        d = base / name
        (d / "leases").mkdir(parents=True, exist_ok=True)   # a crash may have left it
        write_atomic(d / "network.json", json.dumps(asdict(network), indent=1) + "\n")
    return network


def get(name: str, root: Path | None = None) -> Network:
    """The network called `name`; the default one is defined on first use."""
    base = networks_dir(root)
    network = load_network(base / name / "network.json") if NAME_RE.match(name or "") else None
    if network is not None:
        return network
    if name == DEFAULT_NETWORK:
        try:
            return _define(DEFAULT_NETWORK, None, None, False, root, bridge=DEFAULT_BRIDGE)
        except ConfigError:
            network = load_network(base / name / "network.json")  # made by someone else meanwhile
            if network is not None:
                return network
            raise
    raise NetworkNotFound(f"network {name!r} not found (pycontain network ls lists them)")


def _list_unlocked(base: Path) -> list:
    out = []
    if base.is_dir():
        for entry in sorted(os.listdir(base)):
            n = load_network(base / entry / "network.json") if (base / entry).is_dir() else None
            if n is not None:
                out.append(n)
    return out


def list_networks(root: Path | None = None) -> list:
    return _list_unlocked(networks_dir(root))


def remove(name: str, root: Path | None = None, *, force_default=False):
    """Deletes a network: its bridge and nftables entries here, then its
    definition. Refused while a live container uses it."""

    if name == DEFAULT_NETWORK and not force_default:
        raise ConfigError(f"network {name!r} is the default network and cannot be removed")
    network = get(name, root)
    base = networks_dir(root)
    with file_lock(base / "lock"), ipam.network_lock(network, root):
        users = ipam.live_leases(network, root)
        if users:
            names = ", ".join(sorted(lease.container_name or lease.container[:12] for lease in users))
            raise ConfigError(f"network {name!r} is in use by container(s) {names}")
        bridge.delete_link(network.bridge)
        nat.remove_network(network)
        shutil.rmtree(base / name)
    events.append(base.parent, "network", "destroy", network.id, {"name": network.name, "type": network.driver})
    return network
