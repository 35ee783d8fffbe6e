"""The lifecycle verbs: start, stop, kill, restart, pause, unpause, rm, ps,
logs, exec, inspect, top, wait, stats, cp, port, rename, container prune,
system df/prune. docker's flags, columns and messages; the work is
pycontain.containers'.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

from .. import containers, reset, storecheck
from .._paths import default_root
from . import service
from ._format import human_duration, human_size, print_deleted
from ._prompt import confirmed
from ..errors import ContainerError

# ---- registration ------------------------------------------------------------------


def register(sub):
    def verb(name, help_, func, multi=None, **kw):
        p = sub.add_parser(name, help=help_, **kw)
        if multi:
            p.add_argument("containers", nargs="+", metavar="CONTAINER", help=multi)
        p.set_defaults(func=func, parser=p)
        return p

    verb("start", "start one or more stopped containers", cmd_start, "container name or id")
    p = verb("stop", "stop one or more running containers", cmd_stop, "container name or id")
    p.add_argument("-t", "--time", type=int, default=None, help="seconds to wait before killing it (default 10)")
    p.add_argument("-s", "--signal", help="signal to send (default: the container's stop signal)")
    p = verb("kill", "kill one or more running containers", cmd_kill, "container name or id")
    p.add_argument("-s", "--signal", default="KILL", help="signal to send (default KILL)")
    p = verb("restart", "restart one or more containers", cmd_restart, "container name or id")
    p.add_argument("-t", "--time", type=int, default=None, help="seconds to wait before killing it")
    verb("pause", "pause all processes within one or more containers", cmd_pause, "container name or id")
    verb("unpause", "unpause all processes within one or more containers", cmd_unpause, "container name or id")
    p = verb("rm", "remove one or more containers", cmd_rm, "container name or id")
    p.add_argument("-f", "--force", action="store_true", help="force the removal of a running container (SIGKILL)")
    p.add_argument("-v", "--volumes", action="store_true", help="remove anonymous volumes too")

    p = verb("ps", "list containers", cmd_ps)
    _ps_flags(p)

    p = verb("logs", "fetch the logs of a container", cmd_logs)
    p.add_argument("-f", "--follow", action="store_true", help="follow log output")
    p.add_argument("-n", "--tail", default="all", help="number of lines to show from the end (default all)")
    p.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    p.add_argument("--since", help="show logs since a timestamp (RFC 3339 or Unix) or a duration (10m)")
    p.add_argument("container", metavar="CONTAINER")

    p = verb("exec", "run a command in a running container", cmd_exec,
             usage="pycontain exec [OPTIONS] CONTAINER COMMAND [ARG...]")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V", help="set an environment variable")
    p.add_argument("-u", "--user", help="user: name|uid[:group|gid]")
    p.add_argument("-w", "--workdir", help="working directory inside the container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs=argparse.REMAINDER)

    p = verb("attach", "attach your terminal to a running container's input and output", cmd_attach)
    p.add_argument("--detach-keys", default="ctrl-p,ctrl-q", help="key sequence that detaches (default ctrl-p,ctrl-q)")
    p.add_argument("--no-stdin", action="store_true", help="do not attach stdin")
    p.add_argument("container", metavar="CONTAINER")

    p = verb("inspect", "low-level information on containers (JSON)", cmd_inspect, "container name or id")
    p.add_argument("-f", "--format", help="Go-template-like format, e.g. '{{.State.Status}}'")
    p = verb("top", "display the running processes of a container", cmd_top)
    p.add_argument("container", metavar="CONTAINER")
    verb("wait", "block until containers stop, then print their exit codes", cmd_wait, "container name or id")
    p = verb("stats", "display containers' resource usage", cmd_stats)
    p.add_argument("--no-stream", action="store_true", help="print one sample and exit")
    p.add_argument("-a", "--all", action="store_true", help="all containers (default: running ones)")
    p.add_argument("--format", help="Go-template-like format")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")
    p = verb("cp", "copy files between a container and the host", cmd_cp,
             usage="pycontain cp [-a] CONTAINER:SRC HOSTDEST | HOSTSRC CONTAINER:DEST")
    p.add_argument("-a", "--archive", action="store_true", help="keep the files' numeric owners (uid:gid)")
    p.add_argument("src")
    p.add_argument("dest")
    p = verb("port", "list the port mappings of a container", cmd_port)
    p.add_argument("container", metavar="CONTAINER")
    p = verb("export", "export a container's filesystem as a tar archive (to STDOUT by default)", cmd_export)
    p.add_argument("-o", "--output", help="write to a file instead of STDOUT")
    p.add_argument("container", metavar="CONTAINER")
    p = verb("commit", "create a new image from a container's changes", cmd_commit)
    p.add_argument("-m", "--message", help="commit message")
    p.add_argument("-a", "--author", help="author")
    p.add_argument("-c", "--change", action="append", default=[], help="apply a Dockerfile instruction")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    p = verb("rename", "rename a container", cmd_rename)
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("new_name", metavar="NEW_NAME")

    c = sub.add_parser("container", help="manage containers (prune, ls)")
    csub = c.add_subparsers(dest="container_verb", metavar="COMMAND")
    p = csub.add_parser("prune", help="remove all stopped containers")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.set_defaults(func=cmd_container_prune)
    p = csub.add_parser("ls", help="list containers (as ps)")
    _ps_flags(p)
    p.set_defaults(func=cmd_ps)
    c.set_defaults(func=lambda a: (c.print_help(), 0)[1])

    s = sub.add_parser("system", help="manage pycontain (df, prune, reset)")
    ssub = s.add_subparsers(dest="system_verb", metavar="COMMAND")
    p = ssub.add_parser("df", help="show disk usage")
    p.add_argument("--format", help="json")
    p.set_defaults(func=cmd_system_df)
    p = ssub.add_parser("prune", help="remove stopped containers (and unused data)")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.add_argument("-a", "--all", action="store_true", help="also unused images (images branch)")
    p.add_argument("--volumes", action="store_true", help="also unused anonymous volumes")
    p.set_defaults(func=cmd_system_prune)
    p = ssub.add_parser("check", help="verify the store's databases against its content")
    p.add_argument("--repair", action="store_true", help="rebuild what the content proves, quarantine the rest")
    p.set_defaults(func=cmd_system_check)
    p = ssub.add_parser("reset", help="remove every container, image, volume and network, the bridge, "
                                      "the nftables table and the store (podman's verb)")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.set_defaults(func=cmd_system_reset)
    service.register(ssub)
    s.set_defaults(func=lambda a: (s.print_help(), 0)[1])


def _ps_flags(p):
    p.add_argument("-a", "--all", action="store_true", help="show all containers (default shows just running)")
    p.add_argument("-q", "--quiet", action="store_true", help="only display container ids")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="filter: status=, name=, id=, exited=, ancestor=")
    p.add_argument("--format", help="Go-template-like format, e.g. '{{.ID}} {{.Names}}' or 'table {{.ID}}'")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    p.add_argument("-n", "--last", type=int, default=-1, help="show the n last created containers")
    p.add_argument("-l", "--latest", action="store_true", help="show the latest created container")
    p.add_argument("--json", action="store_true", help="print the containers as JSON")


# ---- helpers -------------------------------------------------------------------------


def _each(refs, action) -> int:
    """docker's way with several containers: act on each, report each failure, status 1 if any."""
    status = 0
    for ref in refs:
        try:
            out = action(containers.get(ref))
            if out is not None:
                print(out)
            else:
                print(ref)
        except ContainerError as e:
            print(f"pycontain: {e}", file=sys.stderr)
            status = 1
        sys.stdout.flush()
    return status


def status_text(rec, now=None) -> str:
    now = time.time() if now is None else now
    if rec.state == "running":
        return f"Up {human_duration(now - (rec.started or now))}"
    if rec.state == "paused":
        return f"Up {human_duration(now - (rec.started or now))} (Paused)"
    if rec.state == "restarting":
        return f"Restarting ({rec.exit_code}) {human_duration(now - (rec.finished or now))} ago"
    if rec.state == "exited":
        if rec.started is None:
            return "Created" if rec.exit_code is None else f"Exited ({rec.exit_code}) {human_duration(now - (rec.finished or now))} ago"
        return f"Exited ({rec.exit_code}) {human_duration(now - (rec.finished or now))} ago"
    if rec.state == "dead":
        return "Dead"
    return "Created"


def _command_text(rec, trunc=True) -> str:
    cfg = rec.config
    argv = list(cfg.get("entrypoint") or []) + list(cfg.get("command") or [])
    text = " ".join(argv) if argv else ""
    if trunc and len(text) > 20:
        text = text[:19] + "…"
    return f'"{text}"'


def ps_fields(rec, trunc=True) -> dict:
    now = time.time()
    return {
        "ID": rec.id[:12] if trunc else rec.id,
        "Image": rec.image,
        "Command": _command_text(rec, trunc),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(rec.created)),
        "RunningFor": human_duration(now - rec.created) + " ago",
        "Status": status_text(rec, now),
        "State": rec.state,
        "Ports": ", ".join(
            f"{p['host_ip'] or '0.0.0.0'}:{p['host_port']}->{p['container_port']}/{p['proto']}"
            for p in rec.exec_profile.get("network", {}).get("ports", ())) if rec.state == "running" else "",
        "Names": rec.name,
    }


_FIELD_RE = re.compile(r"\{\{\s*(json\s+)?\.([A-Za-z0-9_.]*)\s*\}\}")


def render_template(template: str, data: dict) -> str:
    """A small subset of Go templates: {{.Field}}, {{.A.B}}, {{json .X}}, {{json .}}."""
    template = template.replace("\\t", "\t").replace("\\n", "\n")

    def sub(m):
        is_json, path = m.group(1), m.group(2)
        value = data
        for part in [p for p in path.split(".") if p]:
            if isinstance(value, dict) and part in value:
                value = value[part]
            else:
                raise ContainerError(f"template: can't evaluate field {part}")
        if is_json:
            return json.dumps(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        if value is None:
            return "<no value>"
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return str(value)

    return _FIELD_RE.sub(sub, template)


def print_table(header, rows):
    """docker's tabwriter layout: columns padded to the widest cell plus 3."""
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    for r in [header] + rows:
        line = "".join(str(c).ljust(w + 3) for c, w in zip(r[:-1], widths[:-1], strict=True)) + str(r[-1])
        print(line.rstrip())


def _parse_filters(items) -> dict:
    out = {}
    for f in items:
        k, sep, v = f.partition("=")
        if not sep:
            raise containers.ConfigError(f'bad format of filter (expected name=value): "{f}"')
        out.setdefault(k, []).append(v)
    return out


# ---- verbs -----------------------------------------------------------------------------


def cmd_start(args):
    return _each(args.containers, lambda c: (c.start(), None)[1])


def cmd_stop(args):
    return _each(args.containers, lambda c: (c.stop(timeout=args.time, signal=args.signal), None)[1])


def cmd_kill(args):
    return _each(args.containers, lambda c: (c.kill(args.signal), None)[1])


def cmd_restart(args):
    return _each(args.containers, lambda c: (c.restart(timeout=args.time), None)[1])


def cmd_pause(args):
    return _each(args.containers, lambda c: (c.pause(), None)[1])


def cmd_unpause(args):
    return _each(args.containers, lambda c: (c.unpause(), None)[1])


def cmd_rm(args):
    return _each(args.containers, lambda c: (c.remove(force=args.force, volumes=args.volumes), None)[1])


def cmd_ps(args):
    filters = _parse_filters(args.filter)
    found = containers.list(all=args.all or bool(filters) or args.latest or args.last > 0, filters=filters or None)
    if args.latest:
        found = found[:1]
    elif args.last > 0:
        found = found[:args.last]
    trunc = not args.no_trunc
    if args.quiet:
        for c in found:
            print(c.id[:12] if trunc else c.id)
        return 0
    rows = [ps_fields(c.record, trunc) for c in found]
    if args.json:
        print(json.dumps([c.attrs for c in found], indent=2))
        return 0
    if args.format:
        fmt = args.format
        if fmt == "json":
            fmt = "{{json .}}"
        if fmt.startswith("table"):
            fmt = fmt[5:].strip()
            names = [m.group(2) for m in _FIELD_RE.finditer(fmt)]
            header = [_HEADERS.get(n, n.upper()) for n in names]
            table = [[render_template("{{." + n + "}}", r) for n in names] for r in rows]
            print_table(header, table) if names else None
            return 0
        for r in rows:
            print(render_template(fmt, r))
        return 0
    header = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    print_table(header, [[r["ID"], r["Image"], r["Command"], r["RunningFor"], r["Status"], r["Ports"], r["Names"]]
                         for r in rows])
    return 0


_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
            "RunningFor": "CREATED", "Status": "STATUS", "State": "STATE", "Ports": "PORTS", "Names": "NAMES"}


def cmd_logs(args):
    c = containers.get(args.container)
    tail = None if args.tail in ("all", "-1") else int(args.tail)
    try:
        for stream, text, t in c.log_entries(follow=args.follow, tail=tail, since=args.since):
            out = sys.stdout if stream == "stdout" else sys.stderr
            out.write((t + " " if args.timestamps else "") + text)
            if args.follow:
                out.flush()
    except BrokenPipeError:
        pass
    return 0


def cmd_exec(args):
    command = args.command
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        args.parser.error("exec needs a command")
    c = containers.get(args.container)
    if args.tty:
        from .terminal import TerminalPump

        child = c.exec_start(command, env=args.env, user=args.user, workdir=args.workdir, tty=True)
        try:
            TerminalPump(interactive=args.interactive).run(child.tty_master)
        finally:
            os.close(child.tty_master)
    else:
        stdin = -1 if args.interactive else os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            child = c.exec_start(command, env=args.env, user=args.user, workdir=args.workdir,
                                 stdio=(stdin, -1, -1))
        finally:
            if stdin >= 0:
                os.close(stdin)
    try:
        _, status = os.waitpid(child.pid, 0)
    except KeyboardInterrupt:
        os.kill(child.pid, 9)
        _, status = os.waitpid(child.pid, 0)
    finally:
        if child.pidfd is not None:
            os.close(child.pidfd)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def parse_detach_keys(spec: str) -> bytes:
    """docker's --detach-keys: "ctrl-p,ctrl-q", "a,b", "ctrl-@"... as bytes."""
    out = bytearray()
    for key in spec.split(","):
        key = key.strip()
        if key.startswith("ctrl-") and len(key) == 6:
            ch = key[5].lower()
            if "a" <= ch <= "z":
                out.append(ord(ch) - 96)
                continue
            special = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}
            if ch in special:
                out.append(special[ch])
                continue
        elif len(key) == 1:
            out += key.encode()
            continue
        raise containers.ConfigError(f"invalid detach keys {spec!r}: keys like ctrl-p,ctrl-q or single characters")
    return bytes(out)


def cmd_attach(args):
    import signal
    import termios
    import tty

    from .. import attach

    keys = parse_detach_keys(args.detach_keys) if args.detach_keys else b""
    c = containers.get(args.container)
    if c.status == "paused":
        raise containers.ContainerStateError(f"container {c.short_id} is paused, unpause the container before attach")
    if c.status != "running":
        raise containers.ContainerStateError(f"container {c.short_id} is not running")
    sock = attach.connect(c.container_dir)
    stdin_fd = os.open(os.devnull, os.O_RDONLY) if args.no_stdin else 0
    is_tty = os.isatty(stdin_fd)
    saved = termios.tcgetattr(stdin_fd) if is_tty else None
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    old = signal.signal(signal.SIGWINCH, lambda *_: os.write(wake_w, b"w")) if is_tty else None
    try:
        if saved is not None:
            tty.setraw(stdin_fd)
        how = attach.run_client(sock, stdin_fd, 1, keys, wake_r)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
        if old is not None:
            signal.signal(signal.SIGWINCH, old)
        sock.close()
        os.close(wake_r)
        os.close(wake_w)
        if args.no_stdin:
            os.close(stdin_fd)
    if how == "detached":
        print("read escape sequence", file=sys.stderr)
        return 0
    return c.wait()


def cmd_inspect(args):
    results, status = [], 0
    for ref in args.containers:
        try:
            results.append(containers.get(ref).attrs)
        except ContainerError as e:
            print(f"pycontain: {e}", file=sys.stderr)
            status = 1
    if args.format:
        for r in results:
            print(render_template(args.format, r))
    else:
        print(json.dumps(results, indent=4))
    return status


def cmd_top(args):
    top = containers.get(args.container).top()
    print_table(top["Titles"], top["Processes"])
    return 0


def cmd_wait(args):
    return _each(args.containers, lambda c: str(c.wait()))


def cmd_stats(args):
    if args.containers:
        found = [containers.get(r) for r in args.containers]
    else:
        found = containers.list(all=args.all)
    header = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"]
    while True:
        rows = []
        for c in found:
            s = c.stats()
            mem_pct = 100.0 * s["memory_usage"] / s["memory_limit"] if s["memory_limit"] else 0.0
            fields = {"ID": c.short_id, "Container": c.short_id, "Name": c.name, "CPUPerc": f"{s['cpu_percent']:.2f}%",
                      "MemUsage": f"{human_size(s['memory_usage'], binary=True)} / {human_size(s['memory_limit'], binary=True)}",
                      "MemPerc": f"{mem_pct:.2f}%", "PIDs": str(s["pids"])}
            rows.append(fields)
        if args.format:
            for r in rows:
                print(render_template(args.format, r))
        else:
            print_table(header, [[r["ID"], r["Name"], r["CPUPerc"], r["MemUsage"], r["MemPerc"], r["PIDs"]]
                                 for r in rows])
        sys.stdout.flush()
        if args.no_stream:
            return 0
        time.sleep(1)
        found = [c for c in found if _still_there(c)]
        print("\033[2J\033[H", end="")


def _still_there(c):
    try:
        c.reload()
        return True
    except ContainerError:
        return False


def _split_container_path(spec):
    """CONTAINER:PATH, or None for a host path (an absolute or ./ path is the host's)."""
    if spec.startswith(("/", ".")) or ":" not in spec:
        return None
    ref, _, path = spec.partition(":")
    return ref, path


def cmd_cp(args):
    from ..copy import copy_from_container, copy_into_container

    src, dest = _split_container_path(args.src), _split_container_path(args.dest)
    if (src is None) == (dest is None):
        args.parser.error("copying between containers or between host paths is not supported: "
                          "one side must be CONTAINER:PATH")
    if src is not None:
        copy_from_container(containers.get(src[0]), src[1], args.dest, archive=args.archive)
    else:
        copy_into_container(containers.get(dest[0]), args.src, dest[1], archive=args.archive)
    return 0


def cmd_port(args):
    c = containers.get(args.container)
    for line in containers.port_lines(c):
        print(line)
    return 0


def cmd_export(args):
    c = containers.get(args.container)
    if args.output:
        with open(args.output, "wb") as f:
            c.export(f)
    else:
        if sys.stdout.isatty():
            raise containers.ConfigError("cowardly refusing to write a tar archive to a terminal: use -o FILE or a pipe")
        sys.stdout.flush()
        c.export(sys.stdout.buffer)
        sys.stdout.buffer.flush()
    return 0


def cmd_commit(args):
    image_id = containers.get(args.container).commit(args.repository, changes=args.change,
                                                       message=args.message, author=args.author)
    print(image_id if image_id.startswith("sha256:") else f"sha256:{image_id}")
    return 0


def cmd_rename(args):
    containers.get(args.container).rename(args.new_name)
    return 0


def cmd_system_check(a):
    report = storecheck.check(repair=a.repair)
    for line in report.problems:
        print(f"problem: {line}")
    for line in report.repairs:
        print(f"repaired: {line}")
    if report.ok:
        print("the store is consistent")
        return 0
    return 0 if a.repair else 1


def _prune_containers():
    """Removes the stopped containers and lists them, as docker's prune verbs do."""
    result = containers.prune()
    print_deleted("Containers", result["ContainersDeleted"])
    return result


def cmd_container_prune(args):
    if not confirmed("WARNING! This will remove all stopped containers.\nAre you sure you want to continue?",
                     args.force):
        return 0
    result = _prune_containers()
    print(f"Total reclaimed space: {human_size(result['SpaceReclaimed'], binary=True)}")
    return 0


def cmd_system_df(args):
    usage = containers.disk_usage()
    rows = [[kind, str(u["total"]), str(u["active"]), human_size(u["size"], binary=True),
             human_size(u["reclaimable"], binary=True)]
            for kind, u in usage.items()]
    if args.format == "json":
        print(json.dumps(usage))
        return 0
    print_table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], rows)
    return 0


def cmd_system_prune(args):
    """Stopped containers, (--volumes) unused anonymous volumes, then images
    no container uses (dangling ones; all with -a)."""
    from .. import image

    warnings = ["all stopped containers"]
    if args.volumes:
        warnings.append("all anonymous volumes not used by at least one container")
    warnings.append("all images without at least one container associated to them" if args.all
                    else "all dangling images")
    if not confirmed("WARNING! This will remove:\n" + "".join(f"  - {w}\n" for w in warnings)
                     + "\nAre you sure you want to continue?", args.force):
        return 0
    result = _prune_containers()
    if args.volumes:   # after the containers: their anonymous volumes are unused now
        from .. import volumes

        pruned = volumes.prune()
        print_deleted("Volumes", pruned["VolumesDeleted"])
        result["SpaceReclaimed"] += pruned["SpaceReclaimed"]
    deleted, space = image.prune(all_images=args.all)
    print_deleted("Images", [f"{what.lower()}: {x}" for what, x in deleted])
    print(f"Total reclaimed space: {human_size(result['SpaceReclaimed'] + space, binary=True)}")
    return 0


def cmd_system_reset(args):
    """podman system reset: all of pycontain's state and what it changed on the host, gone."""
    if not confirmed("WARNING! This will remove:\n  - all containers\n  - all images\n  - all volumes\n"
                     "  - all networks, their bridges and the nftables table ip pycontain\n"
                     f"  - the store {default_root()}\n"
                     "and put back the sysctls a bridge changed.\n\nAre you sure you want to continue?", args.force):
        return 0
    done = reset.reset()
    print_deleted("Containers", done["containers"])
    print_deleted("Bridges", done["bridges"])
    if done["nftables_table"]:
        print("Deleted the nftables table ip pycontain")
    for line in done["sysctls"]:
        print(f"Restored {line}")
    print(f"Removed the store {done['store']}")
    return 0
