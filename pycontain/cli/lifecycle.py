"""The lifecycle verbs: start, stop, kill, restart, pause, unpause, rm, ps,
logs, exec, inspect, top, wait, stats, cp, port, rename, container prune,
system df/prune. docker's flags, columns and messages; the work is
pycontain.containers'.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import socket
import sys
import threading
import time

from .. import attach, containers
from .._paths import default_root
from . import events as events_verb, service
from ._errors import CliError, UsageError
from ._format import format_each, format_rows, human_duration, human_size, print_deleted
from ._prompt import confirmed
from . import run as run_verbs
from .run import env_list
from .terminal import TerminalPump, attach_terminal, attached_exit_status
from ..attach import parse_detach_keys
from ..errors import ContainerError
from ..logs import parse_since, parse_time

# ---- registration ------------------------------------------------------------------


def register(sub):
    _container_verbs(sub, grouped=False)
    c = sub.add_parser("container", help="manage containers (docker's container COMMAND forms)")
    csub = c.add_subparsers(dest="container_verb", metavar="COMMAND")
    run_verbs.register(csub)
    _container_verbs(csub, grouped=True)
    p = csub.add_parser("prune", help="remove all stopped containers")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.set_defaults(func=cmd_container_prune)
    c.set_defaults(func=lambda a: (c.print_help(), 0)[1])
    _system_verbs(sub)


def _container_verbs(sub, grouped):
    """The container verbs, at the top (ps, rm...) and under `container`
    (grouped: ls for ps, as docker's container ls|list|ps)."""
    def verb(name, help_, func, multi=None, **kw):
        if grouped and name == "ps":
            name, kw["aliases"] = "ls", ["list", "ps"]
        p = sub.add_parser(name, help=help_, **kw)
        if multi:
            p.add_argument("containers", nargs="+", metavar="CONTAINER", help=multi)
        p.set_defaults(func=func, parser=p)
        return p

    p = verb("start", "start one or more stopped containers", cmd_start, "container name or id")
    p.add_argument("-a", "--attach", action="store_true",
                   help="print the container's output until it exits; its exit status is ours")
    p.add_argument("-i", "--interactive", action="store_true", help="attach the container's stdin (and its output)")
    p.add_argument("--detach-keys", default="ctrl-p,ctrl-q",
                   help="key sequence that detaches from a -t container (default ctrl-p,ctrl-q)")
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
    p.add_argument("--until", help="show logs before a timestamp (RFC 3339 or Unix) or a duration (10m)")
    p.add_argument("--details", action="store_true", help="show the extra details given to logs (none here)")
    p.add_argument("container", metavar="CONTAINER")

    p = verb("exec", "run a command in a running container", cmd_exec,
             usage="pycontain exec [OPTIONS] CONTAINER COMMAND [ARG...]")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    p.add_argument("-d", "--detach", action="store_true", help="run the command in the background")
    p.add_argument("--detach-keys", default="ctrl-p,ctrl-q",
                   help="key sequence that detaches from -it (default ctrl-p,ctrl-q); the command runs on")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V",
                   help="set an environment variable (K alone: the caller's value of K)")
    p.add_argument("--env-file", action="append", default=[], metavar="FILE",
                   help="read environment variables from a file")
    p.add_argument("-u", "--user", help="user: name|uid[:group|gid]")
    p.add_argument("-w", "--workdir", help="working directory inside the container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs=argparse.REMAINDER)

    p = verb("attach", "attach your terminal to a running container's input and output", cmd_attach)
    p.add_argument("--detach-keys", default="ctrl-p,ctrl-q", help="key sequence that detaches (default ctrl-p,ctrl-q)")
    p.add_argument("--no-stdin", action="store_true", help="do not attach stdin")
    p.add_argument("container", metavar="CONTAINER")

    p = verb("inspect", "low-level information on containers, images, volumes or networks (JSON)", cmd_inspect,
             "container, image, volume or network name or id")
    p.add_argument("-f", "--format", help="Go template, e.g. '{{.State.Status}}'")
    p.add_argument("--type", help="only this kind: container, image, volume or network")
    p = verb("top", "display the running processes of a container", cmd_top,
             usage="pycontain top CONTAINER [ps OPTIONS]")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("ps_args", nargs=argparse.REMAINDER, metavar="ps OPTIONS")
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

    p = verb("diff", "list the changes to the files of a container's filesystem (A, C, D)", cmd_diff)
    p.add_argument("container", metavar="CONTAINER")

    p = verb("update", "update the resource limits and restart policy of one or more containers", cmd_update,
             "container name or id")
    p.add_argument("--blkio-weight", type=int, default=0, metavar="N", help="block I/O weight, 10 to 1000")
    p.add_argument("--cpu-period", type=int, default=0, metavar="US", help="CPU CFS period (microseconds)")
    p.add_argument("--cpu-quota", type=int, default=0, metavar="US", help="CPU CFS quota (microseconds)")
    p.add_argument("--cpu-rt-period", type=int, default=0, metavar="US", help="not supported")
    p.add_argument("--cpu-rt-runtime", type=int, default=0, metavar="US", help="not supported")
    p.add_argument("-c", "--cpu-shares", type=int, default=0, metavar="N", help="CPU shares (relative weight)")
    p.add_argument("--cpus", type=_decimal_flag, default=0, metavar="N", help="number of CPUs, e.g. 0.5")
    p.add_argument("--cpuset-cpus", default="", metavar="LIST", help="CPUs the container may run on, e.g. 0-1,3")
    p.add_argument("--cpuset-mems", default="", metavar="LIST", help="memory nodes the container may use")
    p.add_argument("--kernel-memory", type=_bytes_flag, default=0, metavar="BYTES", help="not supported")
    p.add_argument("-m", "--memory", type=_bytes_flag, default=0, metavar="BYTES", help="memory limit, e.g. 64m")
    p.add_argument("--memory-reservation", type=_bytes_flag, default=0, metavar="BYTES", help="memory soft limit")
    p.add_argument("--memory-swap", type=_swap_flag, default=0, metavar="BYTES",
                   help="memory plus swap limit; -1: unlimited swap")
    p.add_argument("--pids-limit", type=int, default=0, metavar="N", help="maximum number of processes (-1: unlimited)")
    p.add_argument("--restart", metavar="POLICY", help="restart policy: no, on-failure[:N], always, unless-stopped")


def _system_verbs(sub):
    s = sub.add_parser("system", help="manage pycontain (df, prune, reset)")
    ssub = s.add_subparsers(dest="system_verb", metavar="COMMAND")
    p = ssub.add_parser("df", help="show disk usage")
    p.add_argument("--format", help="Go template, 'table ...', or json (pycontain's own figures)")
    p.add_argument("-v", "--verbose", action="store_true", help="each image, container and volume")
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
    events_verb.add_events_verb(ssub)
    s.set_defaults(func=lambda a: (s.print_help(), 0)[1])


def _ps_flags(p):
    p.add_argument("-a", "--all", action="store_true", help="show all containers (default shows just running)")
    p.add_argument("-q", "--quiet", action="store_true", help="only display container ids")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="filter: status=, name=, id=, exited=, ancestor=, label=, health=")
    p.add_argument("--format", help="Go-template-like format, e.g. '{{.ID}} {{.Names}}' or 'table {{.ID}}'")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    p.add_argument("-n", "--last", type=int, default=-1, help="show the n last created containers")
    p.add_argument("-l", "--latest", action="store_true", help="show the latest created container")
    p.add_argument("-s", "--size", action="store_true", help="display total file sizes")
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


def status_text(rec, now=None, health=None) -> str:
    """docker's State.String(); health: the health check's status, if it has one."""
    now = time.time() if now is None else now
    if rec.state == "running":
        if health:
            return f"Up {human_duration(now - (rec.started or now))} " \
                   f"({'health: starting' if health == 'starting' else health})"
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
    # docker's daemon quotes an argument with a space in it: sh -c 'echo hi'
    text = " ".join(f"'{a}'" if any(ch.isspace() for ch in a) else a for a in argv)
    if trunc and len(text) > 20:
        text = text[:19] + "…"
    return f'"{text}"'


def ps_fields(rec, trunc=True, size=None, health=None) -> dict:
    """One row of docker ps, as its --format templates see it (strings, and
    Label, a method: {{.Label "key"}})."""
    now = time.time()
    labels = rec.config.get("labels") or {}
    mounts = rec.config.get("mounts") or []
    return {
        "ID": rec.id[:12] if trunc else rec.id,
        "Image": rec.image,
        "Command": _command_text(rec, trunc),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(rec.created)),
        "RunningFor": human_duration(now - rec.created) + " ago",
        "Status": status_text(rec, now, health),
        "State": rec.state,
        "Ports": ", ".join(
            f"{p['host_ip'] or '0.0.0.0'}:{p['host_port']}->{p['container_port']}/{p['proto']}"
            for p in rec.exec_profile.get("network", {}).get("ports", ())) if rec.state == "running" else "",
        "Names": rec.name,
        "Labels": ",".join(f"{k}={v}" for k, v in labels.items()),
        "Label": lambda key: labels.get(key, ""),
        "Mounts": ",".join(m["source"] if m["type"] == "volume" else m["target"] for m in mounts
                           if m["type"] in ("volume", "bind")),
        "LocalVolumes": str(sum(1 for m in mounts if m["type"] == "volume")),
        "Networks": rec.config.get("network") or "none",
        "Size": size if size is not None else "",
    }


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
    keys = parse_detach_keys(args.detach_keys)
    if not (args.attach or args.interactive):
        return _each(args.containers, lambda c: (c.start(), None)[1])
    if len(args.containers) > 1:
        raise CliError("you cannot start and attach multiple containers at once")
    c = containers.get(args.containers[0])
    if args.interactive and c.record.config.get("tty"):
        return _start_terminal(c, keys)
    # -a: the output of this run, from its log (nothing written before the
    # start is missed, as an attach made after it could), then its status
    feeder = None
    started = time.time()
    if args.interactive:
        # -i: our stdin goes in through a client attached from before the start
        mine = _start_attached(c)
        feeder = threading.Thread(target=_feed_stdin, args=(mine,), daemon=True)
        feeder.start()
    else:
        c.start()
    try:
        for stream, text, _ in c.log_entries(follow=True, since=started - 0.001):
            out = sys.stdout if stream == "stdout" else sys.stderr
            out.write(text)
            out.flush()
    except BrokenPipeError:
        pass
    return attached_exit_status(c) if feeder is not None else c.wait()


def _start_attached(c) -> socket.socket:
    """Starts c with a client attached from before the start; our end of it."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        c.start(attach_sock=theirs)
    except BaseException:
        mine.close()
        raise
    finally:
        theirs.close()
    return mine


def _start_terminal(c, keys) -> int:
    """start -ai of a -t container: our terminal attached from before the
    start; the detach keys leave it running (0, nothing printed: docker's)."""
    mine = _start_attached(c)
    if attach_terminal(mine, 0, keys) == "detached":
        return 0
    return attached_exit_status(c)


def _feed_stdin(sock):
    """start -i without a terminal: our stdin to the container (its end
    closes the container's stdin); the output that comes back on the socket
    is dropped, as the log gives it with stdout and stderr apart."""
    watch = [sock.fileno(), 0]
    try:
        while True:
            ready, _, _ = select.select(watch, [], [])
            if sock.fileno() in ready and not sock.recv(65536):
                return
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    sock.sendall(attach.frame("d", data))
                else:
                    sock.sendall(attach.frame("e", b""))
                    watch.remove(0)
    except OSError:
        return
    finally:
        sock.close()


def _bytes_flag(text):
    """docker's byte flags: a size (64m, 1g), checked while parsing (status 125)."""
    # Imported here: the cgroups package (its drivers, ctypes: ~10 ms of
    # imports) is for update's flags, not for the other verbs of this module.
    from ..cgroups.limits import parse_bytes

    try:
        return parse_bytes(text)
    except containers.ConfigError:
        raise argparse.ArgumentTypeError(f"invalid size: {text!r}") from None


def _swap_flag(text):
    return -1 if text.strip() == "-1" else _bytes_flag(text)


def _decimal_flag(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid decimal: {text!r}") from None


def cmd_update(args):
    if args.cpu_rt_period or args.cpu_rt_runtime or args.kernel_memory:
        raise CliError("--cpu-rt-period, --cpu-rt-runtime and --kernel-memory are not supported")
    limits = dict(memory=args.memory, memory_swap=args.memory_swap, memory_reservation=args.memory_reservation,
                  cpus=args.cpus, cpu_shares=args.cpu_shares, cpu_quota=args.cpu_quota, cpu_period=args.cpu_period,
                  cpuset_cpus=args.cpuset_cpus, cpuset_mems=args.cpuset_mems, pids_limit=args.pids_limit,
                  blkio_weight=args.blkio_weight)
    if args.restart is None and not any(limits.values()):
        raise CliError("you must provide one or more flags when using this command")
    return _each(args.containers, lambda c: (c.update(restart_policy=args.restart, **limits), None)[1])


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
    found = containers.list(all=args.all or bool(filters) or args.latest or args.last > 0, filters=filters or None,
                            exec_profiles=False)   # ps shows only their network part (ports, addresses)
    if args.latest:
        found = found[:1]
    elif args.last > 0:
        found = found[:args.last]
    trunc = not args.no_trunc
    if args.quiet:
        for c in found:
            print(c.id[:12] if trunc else c.id)
        return 0
    if args.json:
        print(json.dumps([c.attrs for c in found], indent=2))
        return 0
    rows = [ps_fields(c.record, trunc, _size_text(c) if args.size else None,
                      (c.health or {}).get("Status")) for c in found]
    fmt = args.format or ("table " + _PS_DEFAULT + ("\\t{{.Size}}" if args.size else ""))
    sys.stdout.write(format_rows(fmt, rows, _HEADERS, default_table=_PS_DEFAULT))
    return 0


_PS_DEFAULT = "{{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}"
_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
            "RunningFor": "CREATED", "Status": "STATUS", "State": "STATE", "Ports": "PORTS", "Names": "NAMES",
            "Labels": "LABELS", "Label": lambda key: key, "Mounts": "MOUNTS", "LocalVolumes": "LOCAL VOLUMES",
            "Networks": "NETWORKS", "Size": "SIZE"}


def _size_text(c) -> str:
    """ps -s: the writable layer's size, and the image's beside it ("0B (virtual 1.98MB)")."""
    rw = _layer_size(c)
    virtual = rw
    try:
        from .. import image

        virtual += image.inspect(c.record.image).get("Size", 0)
    except ContainerError:
        pass
    return f"{human_size(rw)} (virtual {human_size(virtual)})"


def _layer_size(c) -> int:
    return _tree_size(c._store.container_dir(c.id) / "upper")


def cmd_logs(args):
    c = containers.get(args.container)
    tail = None if args.tail in ("all", "-1") else int(args.tail)
    until = parse_since(args.until) if args.until else None
    # docker: --details puts the log's extra attributes (none: pycontain's
    # json-file log has no labels/env options) before each line, then a space
    details = " " if args.details else ""
    try:
        entries = c.log_entries(follow=args.follow and until is None, tail=None if until else tail,
                                since=args.since)
        if until is not None:   # the window first, then its last lines, as docker's
            entries = [e for e in entries if parse_time(e[2]) < until]
            entries = entries[-tail:] if tail else ([] if tail == 0 else entries)
        for stream, text, t in entries:
            out = sys.stdout if stream == "stdout" else sys.stderr
            out.write((t + " " if args.timestamps else "") + details + text)
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
        raise UsageError(f'"{args.parser.prog}" requires at least 2 arguments.', args.parser.prog, 1)
    if args.tty and args.interactive and not args.detach and not os.isatty(0):
        raise CliError("the input device is not a TTY")
    env = env_list(args.env_file, args.env, args.tty)
    c = containers.get(args.container)
    if args.detach:
        return _exec_detached(c, command, env, args.user, args.workdir)
    if args.tty and args.interactive:
        return _exec_terminal(c, command, env, args.user, args.workdir, parse_detach_keys(args.detach_keys))
    if args.tty:
        child = c.exec_start(command, env=env, user=args.user, workdir=args.workdir, tty=True)
        try:
            TerminalPump(interactive=False).run(child.tty_master)
        finally:
            os.close(child.tty_master)
    else:
        stdin = -1 if args.interactive else os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            child = c.exec_start(command, env=env, user=args.user, workdir=args.workdir,
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


def _exec_terminal(c, command, env, user, workdir, keys) -> int:
    """exec -it. The exec'd process dies with its parent (the launcher's
    pdeathsig), so that parent is a forked copy of this process in a session
    of its own, which passes us the terminal, waits, and sends the status
    back. On the detach keys we leave (docker's "read escape sequence",
    status 1) and the copy drains the terminal until the command ends."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            _exec_terminal_parent(c, command, env, user, workdir, theirs)
        finally:
            os._exit(0)
    theirs.close()
    try:
        msg, fds, _, _ = socket.recv_fds(ours, 4096, 1)
        if not fds:
            os.waitpid(pid, 0)
            code, _, message = msg.decode(errors="replace").partition(" ")
            print(f"pycontain: {message}", file=sys.stderr)
            return int(code) if code.isdigit() else 126
        master = fds[0]
        try:
            how = TerminalPump(interactive=True, detach_keys=keys).run(master)
        finally:
            os.close(master)
        if how == "detached":   # the copy goes on waiting; it is nobody's child once we end
            print("read escape sequence", file=sys.stderr)
            return 1
        status = msg[1:]   # "t", and maybe the status already
        while chunk := ours.recv(64):
            status += chunk
        os.waitpid(pid, 0)
        return int(status) if status.strip().isdigit() else 126
    finally:
        ours.close()


def _exec_terminal_parent(c, command, env, user, workdir, sock):
    """The forked parent of an exec -it command (see _exec_terminal)."""
    try:
        child = c.exec_start(command, env=env, user=user, workdir=workdir, tty=True)
    except ContainerError as e:
        sock.sendall(f"{getattr(e, 'exit_status', 126)} {e}".encode())
        return
    master = child.tty_master
    socket.send_fds(sock, [b"t"], [master])
    # the exec'd process may outlive the CLI (detached, or the CLI killed):
    # this process only waits for it, reading its terminal once nobody does
    pidfd = child.pidfd
    watch = [sock.fileno()] + ([pidfd] if pidfd is not None else [])
    while True:
        ready, _, _ = select.select(watch, [], [], None if pidfd is not None else 0.1)
        if pidfd is not None and pidfd in ready:
            break
        if pidfd is None and os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
            break
        if sock.fileno() in ready:
            try:
                gone = not sock.recv(64)
            except OSError:
                gone = True
            if gone:
                watch = [w for w in watch if w != sock.fileno()] + [master]
        if master in ready:
            try:
                if not os.read(master, 65536):
                    watch.remove(master)
            except OSError:
                watch.remove(master)
    _, status = os.waitpid(child.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    try:
        sock.sendall(str(code if code >= 0 else 128 - code).encode())
    except OSError:
        pass


def _exec_detached(c, command, env, user, workdir) -> int:
    """docker exec -d: the command runs on after this CLI ends. An exec'd
    process dies with its parent (the launcher's pdeathsig), so its parent is
    a forked copy of this process in a session of its own that only waits
    for it; that copy says on a pipe whether the command started."""
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:   # the waiting parent of the exec'd command
        status = 0
        try:
            os.close(r)
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            try:
                child = c.exec_start(command, env=env, user=user, workdir=workdir, stdio=(null, null, null))
            except ContainerError as e:
                os.write(w, f"{getattr(e, 'exit_status', 126)} {e}".encode())
                status = 1
            else:
                os.close(w)
                os.waitpid(child.pid, 0)
        finally:
            os._exit(status)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        answer = f.read().decode(errors="replace")
    os.waitpid(pid, os.WNOHANG)
    if answer:
        code, _, message = answer.partition(" ")
        print(f"pycontain: {message}", file=sys.stderr)
        return int(code) if code.isdigit() else 126
    return 0


def cmd_attach(args):
    keys = parse_detach_keys(args.detach_keys)
    c = containers.get(args.container)
    if c.status == "paused":
        raise containers.ContainerStateError(f"container {c.short_id} is paused, unpause the container before attach")
    if c.status != "running":
        raise containers.ContainerStateError(f"container {c.short_id} is not running")
    sock = attach.connect(c.container_dir)
    how = attach_terminal(sock, None if args.no_stdin else 0, keys)
    if how == "detached":   # docker 20.10's attach: this line and status 1
        print("read escape sequence", file=sys.stderr)
        return 1
    return attached_exit_status(c)


def _inspect_one(ref, kind):
    """docker inspect's lookup: a container, else an image, volume or network
    of that name (--type: only that kind). NoSuch... is "No such object"."""
    from .. import image, volumes
    from .network import inspect_doc as network_doc

    finders = {"container": lambda: containers.get(ref).attrs, "image": lambda: image.inspect(ref),
               "volume": lambda: volumes.inspect(ref), "network": lambda: network_doc(ref)}
    for name, find in finders.items():
        if kind in (None, name):
            try:
                return find()
            except ContainerError as e:
                if not isinstance(e, LookupError) and kind is None:
                    raise
                last = e
    if kind is None:
        raise CliError(f"No such object: {ref}")
    raise CliError(f"No such {kind}: {ref}") from last


def cmd_inspect(args):
    kind = getattr(args, "type", None)
    if kind not in (None, "container", "image", "volume", "network"):
        raise CliError(f'"{kind}" is not a valid value for --type')
    results, status = [], 0
    for ref in args.containers:
        try:
            results.append(_inspect_one(ref, kind))
        except ContainerError as e:
            print(f"pycontain: {e}", file=sys.stderr)
            status = 1
    if args.format:
        sys.stdout.write(format_each(args.format, results))
    else:
        print(json.dumps(results, indent=4))
    return status


def cmd_top(args):
    c = containers.get(args.container)
    try:
        top = c.top(args.ps_args or None)
    except containers.ContainerStateError:
        raise
    except ContainerError as e:   # ps refused its options: docker's daemon error, status 1
        raise CliError(str(e)) from None
    # docker top's tabwriter: cells at least 20 wide
    for cells in [top["Titles"]] + top["Processes"]:
        print("".join(str(x).ljust(max(len(str(x)) + 3, 20)) for x in cells[:-1]) + str(cells[-1]))
    return 0


def cmd_wait(args):
    return _each(args.containers, lambda c: str(c.wait()))


def cmd_stats(args):
    if args.containers:
        found = [containers.get(r) for r in args.containers]
    else:
        found = containers.list(all=args.all)
    while True:
        rows = []
        for c in found:
            s = c.stats()
            mem_pct = 100.0 * s["memory_usage"] / s["memory_limit"] if s["memory_limit"] else 0.0
            io = c.io_counters()
            fields = {"ID": c.short_id, "Container": c.short_id, "Name": c.name, "CPUPerc": f"{s['cpu_percent']:.2f}%",
                      "MemUsage": f"{human_size(s['memory_usage'], binary=True)} / {human_size(s['memory_limit'], binary=True)}",
                      "MemPerc": f"{mem_pct:.2f}%", "PIDs": str(s["pids"]),
                      "NetIO": f"{human_size(io['net_rx'])} / {human_size(io['net_tx'])}",
                      "BlockIO": f"{human_size(io['block_read'])} / {human_size(io['block_write'])}"}
            rows.append(fields)
        sys.stdout.write(format_rows(args.format or "table " + _STATS_DEFAULT, rows, _STATS_HEADERS,
                                     default_table=_STATS_DEFAULT))
        sys.stdout.flush()
        if args.no_stream:
            return 0
        time.sleep(1)
        found = [c for c in found if _still_there(c)]
        print("\033[2J\033[H", end="")


_STATS_DEFAULT = ("{{.ID}}\\t{{.Name}}\\t{{.CPUPerc}}\\t{{.MemUsage}}\\t{{.MemPerc}}\\t{{.NetIO}}\\t{{.BlockIO}}"
                  "\\t{{.PIDs}}")
_STATS_HEADERS = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %",
                  "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "PIDs": "PIDS", "NetIO": "NET I/O",
                  "BlockIO": "BLOCK I/O"}


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
    from .. import copy

    src, dest = _split_container_path(args.src), _split_container_path(args.dest)
    if (src is None) == (dest is None):
        args.parser.error("copying between containers or between host paths is not supported: "
                          "one side must be CONTAINER:PATH")
    if src is not None:
        c = containers.get(src[0])
        if args.dest == "-":   # a tar archive of PATH on stdout, as docker's
            if sys.stdout.isatty():
                raise CliError("cowardly refusing to write a tar archive to a terminal: use a pipe or a file")
            sys.stdout.flush()
            copy.tar_stream_from_container(c, src[1], sys.stdout.fileno())
        else:
            copy.copy_from_container(c, src[1], args.dest, archive=args.archive)
    else:
        c = containers.get(dest[0])
        if args.src == "-":    # a tar archive on stdin, unpacked into PATH
            copy.tar_stream_into_container(c, sys.stdin.fileno(), dest[1])
        else:
            copy.copy_into_container(c, args.src, dest[1], archive=args.archive)
    return 0


def cmd_diff(args):
    for kind, path in containers.get(args.container).changes():
        print(f"{kind} {path}")
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
    # imported by the verb that uses it: the store check reads images too (the
    # image package, tarfile), which the other container verbs never need
    from .. import storecheck

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


def _df_size(n) -> str:
    return human_size(n, precision=4)   # docker system df: HumanSizeWithPrecision(n, 4)


def cmd_system_df(args):
    usage = containers.disk_usage()
    if args.format == "json":   # pycontain's own figures, as before (docker's json is the rows below)
        print(json.dumps(usage))
        return 0
    if args.verbose:
        return _system_df_verbose()
    fields = []
    for kind, u in usage.items():
        reclaimable = _df_size(u["reclaimable"])
        if kind == "Images" and u["size"]:   # docker gives the share for images
            reclaimable += f" ({int(100 * u['reclaimable'] / u['size'])}%)"
        fields.append({"Type": kind, "TotalCount": str(u["total"]), "Active": str(u["active"]),
                       "Size": _df_size(u["size"]), "Reclaimable": reclaimable})
    default = "{{.Type}}\\t{{.TotalCount}}\\t{{.Active}}\\t{{.Size}}\\t{{.Reclaimable}}"
    sys.stdout.write(format_rows(args.format or "table " + default, fields,
                                 {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
                                  "Reclaimable": "RECLAIMABLE"}, default_table=default))
    return 0


def _system_df_verbose() -> int:
    """docker system df -v: each image, container and volume with its size."""
    from .. import image, volumes

    from .images import _image_rows

    recs = [c.record for c in containers.list(all=True)]
    users = {}
    for rec in recs:
        try:
            users.setdefault(image.inspect(rec.image)["Id"], []).append(rec.id)
        except ContainerError:
            pass
    rows = _image_rows(argparse.Namespace(filter=[], repository=None, no_trunc=False, all=True))
    for r in rows:
        size = image.inspect(r["FullID"])["Size"]
        r.update(Size=_df_size(size), SharedSize="0B", UniqueSize=_df_size(size),
                 Containers=str(len(users.get(r["FullID"], []))))
    print("Images space usage:\n")
    sys.stdout.write(format_rows(
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}"
        "\t{{.UniqueSize}}\t{{.Containers}}", rows,
        {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED", "Size": "SIZE",
         "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS"}))
    print("\nContainers space usage:\n")
    crows = []
    for c in containers.list(all=True):
        f = ps_fields(c.record)
        f["Size"] = _df_size(_layer_size(c))
        crows.append(f)
    sys.stdout.write(format_rows(
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}"
        "\t{{.Names}}", crows, dict(_HEADERS, Size="SIZE")))
    print("\nLocal Volumes space usage:\n")
    in_use = {}
    for rec in recs:
        for m in rec.config.get("mounts") or []:
            if m["type"] == "volume":
                in_use[m["source"]] = in_use.get(m["source"], 0) + 1
    vrows = [{"Name": v.name, "Links": str(in_use.get(v.name, 0)), "Size": _df_size(_tree_size(v.mountpoint))}
             for v in volumes.list()]
    sys.stdout.write(format_rows("table {{.Name}}\t{{.Links}}\t{{.Size}}", vrows,
                                 {"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}))
    return 0


def _tree_size(path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


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
    from .. import reset  # see cmd_system_check: it brings networking and the image store

    done = reset.reset()
    print_deleted("Containers", done["containers"])
    print_deleted("Bridges", done["bridges"])
    if done["nftables_table"]:
        print("Deleted the nftables table ip pycontain")
    for line in done["sysctls"]:
        print(f"Restored {line}")
    print(f"Removed the store {done['store']}")
    return 0
