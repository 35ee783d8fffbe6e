"""`pycontain network create|ls|rm|inspect|prune`: docker's network verbs."""
import json

from .. import network
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
    c.add_argument("name")
    c.set_defaults(func=cmd_create)

    ls = verbs.add_parser("ls", aliases=["list"], help="list networks")
    ls.add_argument("-q", "--quiet", action="store_true", help="only names")
    ls.set_defaults(func=cmd_ls)

    rm = verbs.add_parser("rm", aliases=["remove"], help="remove networks")
    rm.add_argument("names", nargs="+", metavar="NAME")
    rm.set_defaults(func=cmd_rm)

    i = verbs.add_parser("inspect", help="show networks as JSON")
    i.add_argument("names", nargs="+", metavar="NAME")
    i.set_defaults(func=cmd_inspect)

    pr = verbs.add_parser("prune", help="remove unused networks and stale address leases")
    pr.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    pr.set_defaults(func=cmd_prune)


def cmd_create(args):
    net = network.create_network(args.name, args.subnet, args.gateway, args.internal)
    print(net.id)


def cmd_ls(args):
    nets = network.list_networks()
    if args.quiet:
        for n in nets:
            print(n.name)
        return
    print(f"{'NETWORK ID':<14}{'NAME':<24}{'DRIVER':<9}{'SUBNET':<20}BRIDGE")
    for n in nets:
        print(f"{n.id[:12]:<14}{n.name:<24}{n.driver:<9}{n.subnet:<20}{n.bridge}")


def cmd_rm(args):
    for name in args.names:
        network.remove_network(name)
        print(name)


def cmd_inspect(args):
    print(json.dumps([network.inspect_network(n) for n in args.names], indent=2))


def cmd_prune(args):
    if not confirmed("WARNING! This will remove all custom networks not used by at least one container.\n"
                     "Are you sure you want to continue?", args.force):
        return 0
    removed = network.prune_networks()
    if removed:
        print("Deleted Networks:")
        for name in removed:
            print(name)
