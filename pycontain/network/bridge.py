"""Bridges and veth pairs: the kernel side of a bridge network.

A network's bridge is made on first use in the calling thread's network
namespace (the "host"), with the gateway address, forwarding on and the NAT
table ready; it stays when its last container ends (as docker keeps docker0)
and goes with `network rm`/`prune`. Each container gets a veth pair: the
host end on the bridge, the other end made directly inside the container's
namespace as eth0 (one RTM_NEWLINK), then address and default route.
"""
from __future__ import annotations

import ipaddress
import json
import os

from ..errors import ConfigError, NetworkError
from . import _netlink as nl
from . import nat
from .files import file_lock, networks_dir, write_atomic

CONTAINER_IFNAME = "eth0"


def host_ifname(container_id: str) -> str:
    """The host end of a container's veth pair (15 characters at most)."""
    return "veth" + container_id[:11]


def _write_sysctl(path, value):
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        raise NetworkError(f"cannot set {path[len('/proc/sys/'):].replace('/', '.')}={value}: {e.strerror}") from None


# The namespace-wide sysctls a bridge changes, with the earlier value noted the
# first time, per network namespace, so that `pycontain system reset` can put
# them back (a bridge's own conf/<bridge>/ entries go with the bridge).
SYSCTL_RECORD = "host-sysctls.json"


def _netns_key() -> str:
    return str(os.stat("/proc/thread-self/ns/net").st_ino)


def _set_host_sysctl(path: str, value: str, root=None):
    record = networks_dir(root) / SYSCTL_RECORD
    try:
        with open(path) as f:
            earlier = f.read().strip()
    except OSError:
        earlier = None
    if earlier is not None and earlier != value:
        with file_lock(record.with_suffix(".lock")):
            noted = _read_record(record)
            noted.setdefault(_netns_key(), {}).setdefault(path, earlier)
            write_atomic(record, json.dumps(noted))
    _write_sysctl(path, value)


def _read_record(record) -> dict:
    try:
        noted = json.loads(record.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise NetworkError(f"{record} is damaged ({e}): the earlier sysctl values are lost; remove it") from None
    return noted if isinstance(noted, dict) else {}


def restore_host_sysctls(root=None) -> list:
    """Puts back the sysctls of this network namespace that a bridge changed
    (those noted by _set_host_sysctl). Returns "name=value" of each."""
    record = networks_dir(root) / SYSCTL_RECORD
    restored = []
    with file_lock(record.with_suffix(".lock")):
        noted = _read_record(record)
        for path, earlier in noted.pop(_netns_key(), {}).items():
            _write_sysctl(path, earlier)
            restored.append(f"{path[len('/proc/sys/'):].replace('/', '.')}={earlier}")
        write_atomic(record, json.dumps(noted))
    return restored


def host_routes() -> list:
    """(network, interface name) of every IPv4 route of the main table here."""
    from pyroute2 import IPRoute

    out = []
    with IPRoute() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        for r in ipr.get_routes(family=nl.AF_INET, table=nl.RT_TABLE_MAIN):
            dst = r.get_attr("RTA_DST")
            if dst is None:
                continue  # the default route overlaps everything by design
            out.append((ipaddress.ip_network(f"{dst}/{r['dst_len']}", strict=False),
                        names.get(r.get_attr("RTA_OIF"), "?")))
    return out


def check_no_route_overlap(subnet: ipaddress.IPv4Network, own_bridge: str | None = None):
    for route, ifname in host_routes():
        if ifname == own_bridge:
            continue
        if route.overlaps(subnet):
            raise ConfigError(f"subnet {subnet} overlaps the host's route to {route} on {ifname}: "
                              "choose another --subnet")


def bridge_exists(name: str) -> bool:
    return nl.if_index(name) != 0


def create_bridge(net, root=None) -> int:
    """Makes net's bridge here (caller holds the network's lock). Returns its index."""
    subnet = ipaddress.ip_network(net.subnet)
    check_no_route_overlap(subnet)
    with nl.Rtnl() as rt:
        rt.transact([((nl.bridge_msg(net.bridge), nl.RTM_NEWLINK, nl.NLM_F_CREATE | nl.NLM_F_EXCL),
                      f"create bridge {net.bridge}")], "bridge")
        index = nl.if_index(net.bridge)
        try:
            rt.transact([((nl.addr_msg(index, net.gateway, subnet.prefixlen, str(subnet.broadcast_address)),
                           nl.RTM_NEWADDR, nl.NLM_F_CREATE | nl.NLM_F_EXCL),
                          f"address {net.gateway}/{subnet.prefixlen} on {net.bridge}")], "bridge")
            # Published ports answer on the host's loopback too: a packet from
            # 127.0.0.1 DNAT'ed to a container must be routable out of the bridge.
            _write_sysctl(f"/proc/sys/net/ipv4/conf/{net.bridge}/route_localnet", "1")
            _set_host_sysctl("/proc/sys/net/ipv4/ip_forward", "1", root)
            nat.add_network(net, networks_dir(root) / "nftables.lock")
        except BaseException:
            delete_link(net.bridge)
            raise
    return index


def delete_link(name: str) -> bool:
    """Deletes an interface here (a veth end takes its peer along). False if absent."""
    index = nl.if_index(name)
    if not index:
        return False
    with nl.Rtnl() as rt:
        try:
            rt.transact([((nl.link_msg(index=index), nl.RTM_DELLINK, 0), f"delete {name}")], "link")
        except NetworkError:
            if nl.if_index(name):
                raise
    return True


def attach_container(netns_fd: int, container_id: str, bridge_index: int, address: str, prefixlen: int,
                     gateway: str | None, *, veth: str | None = None, ifname: str = CONTAINER_IFNAME) -> str:
    """Plugs the namespace `netns_fd` into the bridge: veth pair (host end
    `veth`), `ifname` (eth0) with `address`, default route via `gateway`.
    Returns the host end's name."""
    veth = veth or host_ifname(container_id)
    with nl.Rtnl() as rt:
        rt.transact([((nl.veth_msg(veth, ifname, netns_fd, bridge_index), nl.RTM_NEWLINK,
                       nl.NLM_F_CREATE | nl.NLM_F_EXCL), f"create veth pair {veth}")], "container network")
    try:
        with nl.inside_netns(netns_fd):
            with nl.Rtnl() as rt:
                index = nl.if_index(ifname)
                reqs = [((nl.link_msg(index=index, flags=nl.IFF_UP, change=nl.IFF_UP), nl.RTM_NEWLINK, 0),
                         f"{ifname} up"),
                        ((nl.addr_msg(index, address, prefixlen), nl.RTM_NEWADDR, nl.NLM_F_CREATE | nl.NLM_F_EXCL),
                         f"address {address}/{prefixlen}")]
                if gateway:
                    reqs.append(((nl.default_route_msg(gateway, index), nl.RTM_NEWROUTE,
                                  nl.NLM_F_CREATE | nl.NLM_F_EXCL), f"default route via {gateway}"))
                rt.transact(reqs, "container network")
    except BaseException:
        delete_link(veth)
        raise
    return veth

