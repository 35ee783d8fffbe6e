"""docker network connect/disconnect for managed containers.

A container's record keeps the networks it was connected to beyond the one
it was created on (config["networks"]: {name: {"aliases": [...], "ip": ...}}),
so that inspect shows them and each start has its monitor plug them in again.
A running container is plugged in (or out) at once, from whichever process
asks: the lease belongs to its monitor, whose end releases it.
"""
from __future__ import annotations

import ipaddress

from ..errors import ConfigError
from ..network import connect as netconnect
from ..network import ipam, store as network_store
from ..network.connect import AlreadyConnected, NotConnected
from ..state import ContainerRecord, Store
from .record import look

SHARED_NAMESPACE = ("container sharing network namespace with another container or host "
                    "cannot be connected to any other network")
PRIVATE_MODE = "container cannot be connected to multiple networks with one of the networks in private (none) mode"
HOST_NETWORK = "container cannot be disconnected from host network or connected to host network"


def first_network(rec: ContainerRecord) -> str | None:
    """The network the container was created on, if it is a bridge network."""
    mode = rec.config.get("network") or "none"
    if mode in ("none", "host") or mode.startswith(("container:", "slirp4netns")):
        return None
    return mode


def connected(rec: ContainerRecord) -> dict:
    """{name: {"aliases", "ip"}} of the networks connected after create."""
    return dict(rec.config.get("networks") or {})


def _refuse_mode(rec, network_name):
    mode = rec.config.get("network") or "none"
    if network_name == "host":
        raise ConfigError(HOST_NETWORK)
    if mode == "none" or network_name == "none":
        raise ConfigError(PRIVATE_MODE)
    if mode == "host" or mode.startswith("container:"):
        raise ConfigError(SHARED_NAMESPACE)
    if first_network(rec) is None:   # slirp4netns: no bridge to join from that namespace
        raise ConfigError(f"a container on network {mode} cannot be connected to other networks")


def _check_ip(network, ip):
    if ip is None:
        return None
    try:
        address = ipaddress.IPv4Address(ip)
    except ValueError:
        raise ConfigError(f"Invalid IPv4 address: {ip}") from None
    if address not in ipaddress.ip_network(network.subnet):
        raise ConfigError(f"Invalid address {ip}: It does not belong to any of this network's subnets")
    return str(address)


def _hostname(rec) -> str:
    return rec.config.get("hostname") or rec.id[:12]


def _running(rec) -> bool:
    return rec.state in ("running", "paused") and bool(rec.pid) and bool(rec.monitor_pid)


def connect(store: Store, ref: str, network_name: str, aliases=(), ip=None) -> ContainerRecord:
    """Connects the container to network_name: recorded, and plugged in
    now if it runs. Refused as docker refuses (none, host and container:
    modes, already connected); on failure the record is as it was."""
    rec = look(store, ref)
    _refuse_mode(rec, network_name)
    network = network_store.get(network_name, store.root)
    entry = {"aliases": [str(a) for a in aliases], "ip": _check_ip(network, ip)}
    name = network.name
    new_config = {}

    def add(cur):  # under the record's lock: concurrent connects do not both win
        nets = connected(cur)
        if name in nets or name == first_network(cur):
            raise AlreadyConnected(f"endpoint with name {cur.name} already exists in network {name}")
        new_config.update(cur.config, networks=dict(nets, **{name: entry}))

    rec = store.update(rec.id, _check=add, config=new_config) or rec
    if _running(rec):
        try:
            plug(store, rec, name, entry)
        except AlreadyConnected:
            pass  # its monitor, starting it meanwhile, plugged it in from the record
        except BaseException:
            _forget(store, rec.id, name)
            raise
    return rec


def disconnect(store: Store, ref: str, network_name: str, force=False) -> ContainerRecord:
    """Takes the container off network_name (a network it was connected
    to after create): its interface and lease now if it runs, and the record."""
    rec = look(store, ref)
    network = network_store.get(network_name, store.root)
    name = network.name
    if name == first_network(rec):
        raise ConfigError(f"pycontain cannot disconnect container {rec.name} from {name}, the network it was "
                          "created on (only networks connected later)")
    if name not in connected(rec):
        raise NotConnected(f"container {rec.id} is not connected to network {name}")
    if _running(rec):
        try:
            netconnect.disconnect(name, rec.id, force=force, root=store.root)
        except NotConnected:
            pass  # recorded but not plugged in (a start that failed half way): the record goes
    return _forget(store, rec.id, name) or rec


def _forget(store, cid, name):
    new_config = {}

    def drop(cur):
        nets = connected(cur)
        nets.pop(name, None)
        new_config.update(cur.config, networks=nets)

    return store.update(cid, _check=drop, config=new_config)


def plug(store: Store, rec: ContainerRecord, name: str, entry: dict, owner=None):
    """Plugs the running container of rec into network `name` for its
    monitor (owner: the monitor's (pid, start time), by default rec's)."""
    return netconnect.connect(
        name, pid=rec.pid, container_id=rec.id, owner=owner or (rec.monitor_pid, rec.monitor_start),
        container_name=rec.name, hostname=_hostname(rec), hosts_file=store.container_dir(rec.id) / "hosts",
        aliases=entry.get("aliases") or (), ip=entry.get("ip"), root=store.root)


def plug_recorded(store: Store, cid: str):
    """The monitor's part at each start: the recorded networks plugged in
    (those a concurrent connect plugged in already are left as they are)."""
    rec = store.load(cid)
    if rec is None:
        return
    if rec.config.get("network_aliases") and first_network(rec):
        netconnect.set_aliases(first_network(rec), rec.id, rec.config["network_aliases"], root=store.root)
    owner = ipam.owner_identity()
    for name, entry in connected(rec).items():
        try:
            plug(store, rec, name, entry, owner=owner)
        except AlreadyConnected:
            pass


def unplug_all(store: Store, cid: str, rec: ContainerRecord | None):
    """The monitor's part after each run: every lease of the container but
    its first network's (the container's own NetworkAttachment releases that)."""
    keep = (first_network(rec),) if rec is not None else ()
    netconnect.release_container(cid, keep=keep, root=store.root)


def endpoint_entries(rec: ContainerRecord, root) -> dict:
    """docker inspect's NetworkSettings.Networks: the first network and each
    one connected later, with the address held there while it runs."""
    if first_network(rec) is None:
        return {}
    live = netconnect.endpoints(rec.id, root) if rec.state in ("running", "paused") else {}
    out = {}
    first = (first_network(rec), {"aliases": rec.config.get("network_aliases") or []})
    for name, entry in [first] + list(connected(rec).items()):
        try:
            network = network_store.get(name, root)
        except ConfigError:
            continue   # removed since
        lease = live.get(name, (None, None))[1]
        aliases = list(entry.get("aliases") or []) + ([rec.id[:12]] if network.user_defined else [])
        out[name] = _entry(network.id, lease.address if lease else "", network.gateway if lease else "",
                           network.prefixlen if lease else 0, aliases or None,
                           {"IPv4Address": entry["ip"]} if entry.get("ip") else None)
    return out


def _entry(network_id, ip, gateway, prefixlen, aliases, ipam_config) -> dict:
    return {"IPAMConfig": ipam_config, "Links": None, "Aliases": aliases, "NetworkID": network_id,
            "EndpointID": "", "Gateway": gateway, "IPAddress": ip, "IPPrefixLen": prefixlen,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "",
            "DriverOpts": None}
