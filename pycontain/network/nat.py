"""The engine's own nftables table: outbound NAT and published ports.

One table, `ip pycontain`, per host network namespace, made once with all
its chains and rules; afterwards only set and map elements change, so
nothing is ever deleted by rule handle and teardown is idempotent:

  set  bridges, subnets        a network adds its bridge name and subnet
  maps pub_{tcp,udp}_{ip,port}            host port -> container address, port
  maps pub_{tcp,udp}_addr_{ip,port}       host address . port -> container address, port
  prerouting, output (nat)     traffic for a local address goes through the maps,
                               also traffic from the host itself (docker without
                               its userland proxy)
  guard (filter, raw prio)     drop packets from a bridge for 127.0.0.0/8
  forward (filter)             no forwarding between networks, none in or out of an
                               internal network (sets internal, same_bridge)
  postrouting (nat)            masquerade what leaves a network for elsewhere, what
                               a container sends to a published port (hairpin), and
                               what the host sends from 127.0.0.0/8 into a bridge
                               (route_localnet on the bridge lets it route)
"""
from __future__ import annotations

import ipaddress

from ..errors import NetworkError
from . import nft
from .files import file_lock

FAMILY, TABLE = "ip", "pycontain"


def _t(kind, **fields):
    return {kind: {"family": FAMILY, "table": TABLE, **fields}}


def _payload(proto, field):
    return {"payload": {"protocol": proto, "field": field}}


def _dnat_rule(proto, by_address):
    """dnat to KEY map @..._ip : KEY map @..._port. Two maps rather than one
    with a concatenated address . port value: nft 1.0.6 crashes parsing that
    form from JSON."""
    key = ({"concat": [_payload("ip", "daddr"), _payload(proto, "dport")]} if by_address
           else _payload(proto, "dport"))
    name = _map_name(proto, by_address)
    return _t("rule", chain="publish", expr=[{"dnat": {
        "addr": {"map": {"key": key, "data": f"@{name}_ip"}},
        "port": {"map": {"key": key, "data": f"@{name}_port"}}}}])


def _map_name(proto, by_address):
    return f"pub_{proto}_addr" if by_address else f"pub_{proto}"


def _local_jump(chain):
    return _t("rule", chain=chain, expr=[
        {"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}},
        {"jump": {"target": "publish"}}])


def _masquerade(src, oif_op):
    return _t("rule", chain="postrouting", expr=[
        {"match": {"op": "==", "left": _payload("ip", "saddr"), "right": src}},
        {"match": {"op": oif_op, "left": {"meta": {"key": "oifname"}}, "right": "@bridges"}},
        {"masquerade": None}])


def _table_commands():
    by_address = ["ipv4_addr", "inet_service"]
    cmds = [{"add": {"table": {"family": FAMILY, "name": TABLE}}},
            {"add": _t("set", name="bridges", type="ifname")},
            {"add": _t("set", name="internal", type="ifname")},
            {"add": _t("set", name="same_bridge", type=["ifname", "ifname"])},
            {"add": _t("set", name="subnets", type="ipv4_addr", flags=["interval"])}]
    for proto in ("tcp", "udp"):
        for addr, key in ((False, "inet_service"), (True, by_address)):
            name = _map_name(proto, addr)
            cmds.append({"add": _t("map", name=f"{name}_ip", type=key, map="ipv4_addr")})
            cmds.append({"add": _t("map", name=f"{name}_port", type=key, map="inet_service")})
    cmds += [{"add": _t("chain", name="publish")},
             {"add": _t("chain", name="prerouting", type="nat", hook="prerouting", prio=-100, policy="accept")},
             {"add": _t("chain", name="output", type="nat", hook="output", prio=-100, policy="accept")},
             {"add": _t("chain", name="postrouting", type="nat", hook="postrouting", prio=100, policy="accept")}]
    for proto in ("tcp", "udp"):
        cmds.append({"add": _dnat_rule(proto, True)})
    for proto in ("tcp", "udp"):
        cmds.append({"add": _dnat_rule(proto, False)})
    # route_localnet on the bridges (needed for published ports on 127.0.0.1)
    # would otherwise let a container reach the host's loopback-only services
    # by sending to 127.0.0.1 through its gateway (CVE-2020-8558 in kube-proxy).
    cmds += [{"add": _t("chain", name="guard", type="filter", hook="prerouting", prio=-300, policy="accept")},
             {"add": _t("rule", chain="guard", expr=[
                 {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "@bridges"}},
                 {"match": {"op": "==", "left": _payload("ip", "daddr"),
                            "right": {"prefix": {"addr": "127.0.0.0", "len": 8}}}},
                 {"drop": None}])}]
    # docker's isolation: no forwarding between two networks, nor between an
    # internal network and anything else (its containers get no default
    # route, this keeps one that adds a route in too).
    iif, oif = {"meta": {"key": "iifname"}}, {"meta": {"key": "oifname"}}
    cmds += [{"add": _t("chain", name="forward", type="filter", hook="forward", prio=0, policy="accept")},
             {"add": _t("rule", chain="forward", expr=[
                 {"match": {"op": "==", "left": {"concat": [iif, oif]}, "right": "@same_bridge"}},
                 {"accept": None}])},
             {"add": _t("rule", chain="forward", expr=[
                 {"match": {"op": "==", "left": iif, "right": "@bridges"}},
                 {"match": {"op": "==", "left": oif, "right": "@bridges"}}, {"drop": None}])},
             {"add": _t("rule", chain="forward", expr=[
                 {"match": {"op": "==", "left": iif, "right": "@internal"}}, {"drop": None}])},
             {"add": _t("rule", chain="forward", expr=[
                 {"match": {"op": "==", "left": oif, "right": "@internal"}}, {"drop": None}])}]
    cmds += [{"add": _local_jump("prerouting")}, {"add": _local_jump("output")},
             {"add": _masquerade("@subnets", "!=")},
             # a container reaching another one's published port through a host
             # address: without this the answer would come straight from the
             # other container's address and not match the connection
             {"add": _t("rule", chain="postrouting", expr=[
                 {"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}},
                 {"match": {"op": "==", "left": _payload("ip", "saddr"), "right": "@subnets"}},
                 {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "@bridges"}},
                 {"masquerade": None}])},
             {"add": _masquerade({"prefix": {"addr": "127.0.0.0", "len": 8}}, "==")}]
    return cmds


def table_exists() -> bool:
    try:
        nft.run([{"list": {"table": {"family": FAMILY, "name": TABLE}}}])
        return True
    except Exception:
        return False


def ensure_table(lock_path):
    """Makes the table here unless it exists. `lock_path` serializes makers
    (two networks' first containers at once would add every rule twice)."""

    with file_lock(lock_path):
        if not table_exists():
            nft.run(_table_commands(), what="create the nftables table ip pycontain")


def delete_table():
    nft.try_run([{"delete": {"table": {"family": FAMILY, "name": TABLE}}}])


def _subnet_elem(subnet):
    n = ipaddress.ip_network(subnet)
    return {"prefix": {"addr": str(n.network_address), "len": n.prefixlen}}


def add_network(net, lock_path):
    """Masquerade for net's subnet leaving through anything but a bridge."""
    ensure_table(lock_path)
    cmds = [{"add": _t("element", name="bridges", elem=[net.bridge])},
            {"add": _t("element", name="same_bridge", elem=[{"concat": [net.bridge, net.bridge]}])}]
    if net.internal:
        cmds.append({"add": _t("element", name="internal", elem=[net.bridge])})
    else:
        cmds.append({"add": _t("element", name="subnets", elem=[_subnet_elem(net.subnet)])})
    nft.run(cmds, what=f"nftables for network {net.name}")


def remove_network(net):
    nft.try_run([{"delete": _t("element", name="subnets", elem=[_subnet_elem(net.subnet)])}])
    nft.try_run([{"delete": _t("element", name="internal", elem=[net.bridge])}])
    nft.try_run([{"delete": _t("element", name="same_bridge", elem=[{"concat": [net.bridge, net.bridge]}])}])
    nft.try_run([{"delete": _t("element", name="bridges", elem=[net.bridge])}])


def _port_elems(p, container_ip):
    """[(map name, [key, value])] for one published port."""
    name = _map_name(p.proto, bool(p.host_ip))
    key = {"concat": [p.host_ip, p.host_port]} if p.host_ip else p.host_port
    return [(f"{name}_ip", [key, container_ip]), (f"{name}_port", [key, p.container_port])]


def publish(ports, container_ip):
    """Adds the DNAT map entries of a container's published ports, all or none.

    The caller holds the host ports (ports.PortReservation), so an entry that
    already exists for one of them belongs to an owner that died without
    cleaning up (its lease not reclaimed yet): it is replaced."""
    cmds = [{"add": _t("element", name=name, elem=[elem])}
            for p in ports for name, elem in _port_elems(p, container_ip)]
    if not cmds:
        return
    try:
        nft.run(cmds, what="publish ports")
    except NetworkError:
        stale = [{"delete": _t("element", name=name, elem=[elem[0]])}
                 for p in ports for name, elem in _port_elems(p, container_ip)]
        for cmd in stale:
            nft.try_run([cmd])
        nft.run(cmds, what="publish ports")


def unpublish(ports, container_ip):
    """Removes them again. One transaction (each costs an RCU grace period,
    ~10 ms here); if it fails because entries are already gone (the table
    went with its namespace), each entry is deleted on its own."""
    entries = [(name, elem[0]) for p in ports for name, elem in _port_elems(p, container_ip)]
    if not entries or nft.try_run([{"delete": _t("element", name=n, elem=[k])} for n, k in entries]):
        return
    for name, key in entries:
        nft.try_run([{"delete": _t("element", name=name, elem=[key])}])


def unpublish_stale(ports, container_ip):
    """unpublish() for a dead owner's lease: its host ports were freed when it
    died and may be published again by now, so only entries that still lead
    to `container_ip` (an address no live container has) are removed."""
    owned = []
    for p in ports:
        (ip_map, (key, _)), _ = _port_elems(p, container_ip)
        try:
            objs = nft.run([{"list": _t("map", name=ip_map)}])
        except NetworkError:
            continue    # no table in this namespace: nothing to remove
        elems = next((o["map"].get("elem", []) for o in objs if "map" in o), [])
        if [key, container_ip] in elems:
            owned.append(p)
    unpublish(owned, container_ip)


def list_table() -> list:
    """The table as nft's JSON objects, [] when it does not exist here."""
    try:
        return nft.run([{"list": {"table": {"family": FAMILY, "name": TABLE}}}])
    except Exception:
        return []
