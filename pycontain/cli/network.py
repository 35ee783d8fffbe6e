"""`pycontain network create|ls|rm|inspect|prune`: docker's network verbs."""
import hashlib
import json
import sys
import time

from .. import containers, network
from ..errors import ContainerError
from ._errors import CliError
from ._format import format_each, format_rows
from ._prompt import confirmed


def register(sub):
    p = sub.add_parser("network", help="manage networks")
    verbs = p.add_subparsers(dest="network_verb", metavar="COMMAND")
    p.set_defaults(func=lambda args: p.print_help())

    c = verbs.add_parser("create", help="create a bridge network")
    c.add_argument("--subnet", help="IPv4 subnet in CIDR form (default: a free 10.89.N.0/24)")
    c.add_argument("--gateway", help="gateway address (default: the subnet's first address)")
    c.add_argument("--internal", action="store_true", help="no default route: no traffic beyond the network")
    c.add_argument("-d", "--driver", default="bridge", choices=["bridge"], help="network driver")
    c.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="a label of the network")
    c.add_argument("name")
    c.set_defaults(func=cmd_create)

    ls = verbs.add_parser("ls", aliases=["list"], help="list networks")
    ls.add_argument("-q", "--quiet", action="store_true", help="only network ids")
    ls.add_argument("--no-trunc", action="store_true", help="do not truncate the ids")
    ls.add_argument("--format", help="Go template, 'table ...' or json")
    ls.set_defaults(func=cmd_ls)

    rm = verbs.add_parser("rm", aliases=["remove"], help="remove networks")
    rm.add_argument("names", nargs="+", metavar="NAME")
    rm.set_defaults(func=cmd_rm)

    i = verbs.add_parser("inspect", help="show networks as JSON")
    i.add_argument("-f", "--format", help="Go template, e.g. '{{.IPAM.Config}}'")
    i.add_argument("names", nargs="+", metavar="NAME")
    i.set_defaults(func=cmd_inspect)

    cn = verbs.add_parser("connect", help="connect a container to a network")
    cn.add_argument("--alias", action="append", default=[], help="another name of the container on this network")
    cn.add_argument("--ip", help="IPv4 address (default: the next free one of the network)")
    cn.add_argument("network", metavar="NETWORK")
    cn.add_argument("container", metavar="CONTAINER")
    cn.set_defaults(func=cmd_connect)

    dc = verbs.add_parser("disconnect", help="disconnect a container from a network")
    dc.add_argument("-f", "--force", action="store_true", help="also a container whose endpoint is stale")
    dc.add_argument("network", metavar="NETWORK")
    dc.add_argument("container", metavar="CONTAINER")
    dc.set_defaults(func=cmd_disconnect)

    pr = verbs.add_parser("prune", help="remove unused networks and stale address leases")
    pr.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    pr.set_defaults(func=cmd_prune)


def cmd_create(args):
    labels = dict(label.partition("=")[::2] for label in args.label)
    net = network.create_network(args.name, args.subnet, args.gateway, args.internal, labels=labels)
    print(net.id)


_LS_DEFAULT = "{{.ID}}\\t{{.Name}}\\t{{.Driver}}\\t{{.Scope}}"
_LS_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
               "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
               "Subnet": "SUBNET", "Bridge": "BRIDGE"}


def _pseudo_network_id(name) -> str:
    """A stable id for the host and none networks, which have no record."""
    return hashlib.sha256(f"pycontain-network-{name}".encode()).hexdigest()


def cmd_ls(args):
    """docker's columns and rows: the bridge networks, then host (driver host)
    and none (driver null), which every container can use by name."""
    rows = []
    for n in network.list_networks():
        rows.append({"ID": n.id, "Name": n.name, "Driver": n.driver, "Scope": "local", "IPv6": "false",
                     "Internal": "true" if n.internal else "false", "Labels": "",
                     "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(n.created)),
                     "Subnet": n.subnet, "Bridge": n.bridge})
    for name, driver in (("host", "host"), ("none", "null")):
        rows.append({"ID": _pseudo_network_id(name), "Name": name, "Driver": driver, "Scope": "local",
                     "IPv6": "false", "Internal": "false", "Labels": "", "CreatedAt": "", "Subnet": "", "Bridge": ""})
    if not args.no_trunc:
        for r in rows:
            r["ID"] = r["ID"][:12]
    if args.quiet:
        for r in rows:
            print(r["ID"])
        return 0
    sys.stdout.write(format_rows(args.format or "table " + _LS_DEFAULT, rows, _LS_HEADERS, default_table=_LS_DEFAULT))
    return 0


def cmd_rm(args):
    for name in args.names:
        network.remove_network(name)
        print(name)


def inspect_doc(name) -> dict:
    """docker network inspect's shape, from the library's definition and leases."""
    info = network.inspect_network(name)
    prefix = info["subnet"].rpartition("/")[2]
    return {
        "Name": info["name"], "Id": info["id"],
        "Created": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(info.get("created") or 0))
        + f".{int(((info.get('created') or 0) % 1) * 1e6):06d}Z",
        "Scope": "local", "Driver": info.get("driver", "bridge"), "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None,
                 "Config": [{"Subnet": info["subnet"], "Gateway": info["gateway"]}]},
        "Internal": bool(info.get("internal")), "Attachable": False, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
        "Containers": {c["id"]: {"Name": c["name"], "EndpointID": "", "MacAddress": "",
                                 "IPv4Address": f"{c['address']}/{prefix}", "IPv6Address": "",
                                 "Ports": c["ports"]}
                       for c in info.get("containers", ())},
        "Options": {"com.docker.network.bridge.name": info.get("bridge", "")},
        "Labels": info.get("labels") or {},
    }


def cmd_inspect(args):
    out = [inspect_doc(n) for n in args.names]
    if args.format:
        sys.stdout.write(format_each(args.format, out))
    else:
        print(json.dumps(out, indent=4))


def cmd_connect(args):
    try:
        containers.get(args.container).connect_network(args.network, aliases=args.alias, ip=args.ip)
    except ContainerError as e:
        raise CliError(str(e)) from None   # docker: every refusal of connect is status 1


def cmd_disconnect(args):
    try:
        containers.get(args.container).disconnect_network(args.network, force=args.force)
    except ContainerError as e:
        raise CliError(str(e)) from None   # as connect


def cmd_prune(args):
    if not confirmed("WARNING! This will remove all custom networks not used by at least one container.\n"
                     "Are you sure you want to continue?", args.force):
        return 0
    removed = network.prune_networks()
    if removed:
        print("Deleted Networks:")
        for name in removed:
            print(name)
