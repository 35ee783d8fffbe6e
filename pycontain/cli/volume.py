"""`pycontain volume create|ls|inspect|rm|prune`: docker's volume verbs and output."""
import json
import sys

from .. import volumes
from ..errors import ConfigError, ContainerError
from ._format import format_each, format_rows, human_size, print_deleted
from ._prompt import confirmed


def register(sub):
    p = sub.add_parser("volume", help="manage volumes")
    verbs = p.add_subparsers(dest="volume_verb", metavar="COMMAND")
    p.set_defaults(func=lambda args: p.print_help())

    c = verbs.add_parser("create", help="create a volume")
    c.add_argument("-d", "--driver", default="local", choices=["local"], help="volume driver")
    c.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="set metadata on the volume")
    c.add_argument("name", nargs="?", help="volume name (default: a random one)")
    c.set_defaults(func=cmd_create)

    ls = verbs.add_parser("ls", aliases=["list"], help="list volumes")
    ls.add_argument("-q", "--quiet", action="store_true", help="only names")
    ls.add_argument("-f", "--filter", action="append", default=[], metavar="dangling=true|false",
                    help="only volumes no container uses (true) or only those in use (false)")
    ls.add_argument("--format", help="Go template, 'table ...' or json")
    ls.set_defaults(func=cmd_ls)

    i = verbs.add_parser("inspect", help="show volumes as JSON")
    i.add_argument("-f", "--format", help="Go template, e.g. '{{.Mountpoint}}'")
    i.add_argument("names", nargs="+", metavar="VOLUME")
    i.set_defaults(func=cmd_inspect)

    rm = verbs.add_parser("rm", aliases=["remove"], help="remove volumes")
    rm.add_argument("-f", "--force", action="store_true",
                    help="also remove volumes that stopped containers use (never one a running container has)")
    rm.add_argument("names", nargs="+", metavar="VOLUME")
    rm.set_defaults(func=cmd_rm)

    pr = verbs.add_parser("prune", help="remove unused anonymous volumes")
    pr.add_argument("-a", "--all", action="store_true", help="remove all unused volumes, named ones too")
    pr.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    pr.set_defaults(func=cmd_prune)


def cmd_create(args):
    labels = {}
    for item in args.label:
        k, _, v = item.partition("=")
        labels[k] = v
    print(volumes.create(args.name, labels).name)


def cmd_ls(args):
    dangling = None
    for f in args.filter:
        key, _, value = f.partition("=")
        if key != "dangling" or value.lower() not in ("true", "false", "1", "0"):
            raise ConfigError(f"invalid filter {f!r}: dangling=true or dangling=false")
        dangling = value.lower() in ("true", "1")
    found = volumes.list(dangling=dangling)
    if args.quiet:
        for v in found:
            print(v.name)
        return
    rows = [{"Driver": "local", "Name": v.name, "Mountpoint": v.mountpoint, "Scope": "local",
             "Labels": ",".join(f"{k}={x}" for k, x in (v.labels or {}).items()), "Links": "N/A", "Size": "N/A"}
            for v in found]
    default = "{{.Driver}}\\t{{.Name}}"
    sys.stdout.write(format_rows(args.format or "table " + default, rows,
                                 {"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT",
                                  "Scope": "SCOPE", "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE"},
                                 default_table=default))


def cmd_inspect(args):
    out, status = [], 0
    for name in args.names:
        try:
            out.append(volumes.inspect(name))
        except ContainerError as e:
            print(f"pycontain: {e}", file=sys.stderr)
            status = 1
    if args.format:
        sys.stdout.write(format_each(args.format, out))
    else:
        print(json.dumps(out, indent=4))
    return status


def cmd_rm(args):
    status = 0
    for name in args.names:   # as docker: each one, every failure reported, status 1 if any
        try:
            volumes.remove(name, force=args.force)
            print(name)
        except ContainerError as e:
            print(f"pycontain: {e}", file=sys.stderr)
            status = 1
        sys.stdout.flush()
    return status


def cmd_prune(args):
    what = "all local volumes" if args.all else "anonymous local volumes"
    if not confirmed(f"WARNING! This will remove {what} not used by at least one container.\n"
                     "Are you sure you want to continue?", args.force):
        return 0
    result = volumes.prune(all=args.all)
    print_deleted("Volumes", result["VolumesDeleted"])
    print(f"Total reclaimed space: {human_size(result['SpaceReclaimed'])}")
    return 0
