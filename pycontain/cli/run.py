"""`pycontain run` and `pycontain create`: docker run's flags, docker's exit statuses.

Both verbs share one set of flags (add_container_flags) and one function that
turns them into Container keyword arguments (container_kwargs). Every run
makes a container record (pycontain.containers). `run -d` leaves it to a
detached monitor; so does `run -t`, whose CLI is a client attached from
before the start (as docker's), so that the detach keys leave the container
running and managed. A foreground run without a terminal is its own
container's monitor: its stdout and stderr stay apart (the attach socket
carries one stream) and its signals are proxied to the container.
"""
import argparse
import os
import socket
import sys

from .. import containers
from ..attach import parse_detach_keys
from ..resolved_image import builtin_image
from ..errors import ConfigError, ImageNotFound
from ..network.etcfiles import parse_dns_search
from ._errors import CliError, UsageError
from .terminal import attach_terminal, attached_exit_status

STREAMS = ("stdin", "stdout", "stderr")


def register(sub):
    p = sub.add_parser("run", help="run a command in a new container",
                       usage="pycontain run [OPTIONS] (IMAGE | --rootfs DIR) [COMMAND] [ARG...]",
                       add_help=False)  # -h is --hostname, as in docker
    add_container_flags(p)
    p.add_argument("-d", "--detach", action="store_true", help="run in the background and print the container id")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("--detach-keys", default="ctrl-p,ctrl-q",
                   help="key sequence that detaches from a -t container (default ctrl-p,ctrl-q)")
    p.set_defaults(func=cmd_run, parser=p)
    c = sub.add_parser("create", help="create a new container (start runs it)",
                       usage="pycontain create [OPTIONS] (IMAGE | --rootfs DIR) [COMMAND] [ARG...]",
                       add_help=False)
    add_container_flags(c)
    c.set_defaults(func=cmd_create, parser=c)


def add_container_flags(p):
    """docker run's container options (shared by run and create)."""
    p.add_argument("--help", action="help", help="show this help and exit")
    p.add_argument("--restart", default="no", metavar="POLICY",
                   help="restart policy: no, on-failure[:N], always, unless-stopped")
    p.add_argument("--log-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="json-file log options: max-size=10m, max-file=3")
    p.add_argument("--stop-signal", help="signal that stops the container (default: the image's, else SIGTERM)")
    p.add_argument("--rootfs", metavar="DIR", help="use this directory (copy-on-write) as the root filesystem")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V",
                   help="set an environment variable (K alone: the caller's value of K)")
    p.add_argument("--env-file", action="append", default=[], metavar="FILE",
                   help="read environment variables from a file (K=V or K lines, # comments)")
    p.add_argument("-l", "--label", action="append", default=[], metavar="K=V", help="set a label on the container")
    p.add_argument("--label-file", action="append", default=[], metavar="FILE",
                   help="read labels from a file (K=V lines, # comments)")
    p.add_argument("--cidfile", metavar="FILE", help="write the container id to this file")
    p.add_argument("--stop-timeout", type=int, metavar="SECONDS",
                   help="seconds stop waits before killing the container (default 10)")
    p.add_argument("--health-cmd", metavar="COMMAND", help="command to run to check health (a shell command)")
    p.add_argument("--health-interval", metavar="DURATION", help="time between running the check (ms|s|m|h)")
    p.add_argument("--health-timeout", metavar="DURATION", help="maximum time to allow one check to run (ms|s|m|h)")
    p.add_argument("--health-start-period", metavar="DURATION",
                   help="start period for the container to initialize before failures count (ms|s|m|h)")
    p.add_argument("--health-retries", type=int, metavar="N", help="consecutive failures needed to report unhealthy")
    p.add_argument("--no-healthcheck", action="store_true", help="disable any container-specified HEALTHCHECK")
    p.add_argument("-v", "--volume", action="append", default=[], metavar="SRC:DST[:ro]",
                   help="bind mount a host path (SRC absolute), mount a volume (SRC a name), "
                        "or an anonymous volume (DST alone)")
    p.add_argument("--mount", action="append", default=[], metavar="type=TYPE,source=SRC,target=DST[,readonly]",
                   help="attach a bind mount, volume or tmpfs (docker's --mount syntax)")
    p.add_argument("--tmpfs", action="append", default=[], metavar="DST[:OPTS]", help="mount a tmpfs")
    p.add_argument("-h", "--hostname", help="container host name")
    p.add_argument("-u", "--user", help="user: name|uid[:group|gid]")
    p.add_argument("-w", "--workdir", help="working directory inside the container")
    p.add_argument("--entrypoint", help="override the image's entrypoint")
    p.add_argument("--read-only", action="store_true", help="mount the root filesystem read-only")
    p.add_argument("--init", action="store_true", help="run a tiny init as pid 1 that forwards signals and reaps zombies")
    p.add_argument("--network", "--net", default=os.environ.get("PYCONTAIN_NETWORK") or "bridge",
                   help="network: bridge (the default, or $PYCONTAIN_NETWORK), none, host, "
                        "container:NAME or a network's name")
    p.add_argument("--name", help="container name (resolvable by containers on the same user-defined network)")
    p.add_argument("--network-alias", action="append", default=[], metavar="NAME",
                   help="another name of the container on its user-defined network")
    p.add_argument("-p", "--publish", action="append", default=[], metavar="[IP:][HOSTPORT:]PORT[/udp]",
                   help="publish a container's port on the host")
    p.add_argument("--expose", action="append", default=[], metavar="PORT[/PROTO]",
                   help="a port (or FIRST-LAST range) the container listens on, not published")
    p.add_argument("--dns", action="append", default=[], metavar="IP", help="nameserver for /etc/resolv.conf")
    p.add_argument("--dns-search", action="append", default=[], type=_dns_search, metavar="DOMAIN",
                   help="search domain for /etc/resolv.conf ('.': none)")
    p.add_argument("--add-host", action="append", default=[], metavar="NAME:IP", help="add an /etc/hosts entry")
    p.add_argument("--pull", choices=("missing", "always", "never"), default="missing",
                   help="pull the image before running: missing (default), always or never")
    p.add_argument("--storage-driver", metavar="DRIVER",
                   help="how the root filesystem is assembled: auto (the default, or $PYCONTAIN_STORAGE_DRIVER), "
                        "overlay, fuse-overlayfs")
    p.add_argument("--device", action="append", default=[], metavar="HOST[:CONTAINER][:rwm]",
                   help="add a host device to the container")
    p.add_argument("--cap-add", action="append", default=[], help="add a capability")
    p.add_argument("--cap-drop", action="append", default=[], help="drop a capability")
    p.add_argument("--privileged", action="store_true", help="all capabilities, no seccomp filter, no masked paths")
    p.add_argument("--security-opt", action="append", default=[], metavar="OPT",
                   help="seccomp=FILE|unconfined, no-new-privileges[:true|false]")
    p.add_argument("--group-add", action="append", default=[], metavar="GROUP",
                   help="add a supplementary group (name in the image, or gid)")
    p.add_argument("--ulimit", action="append", default=[], metavar="NAME=SOFT[:HARD]", help="set a resource limit")
    # resource limits (pycontain/cgroups), docker's names and value syntax
    p.add_argument("-m", "--memory", metavar="BYTES", help="memory limit, e.g. 64m or 1g")
    p.add_argument("--memory-swap", metavar="BYTES", help="memory plus swap limit; -1: unlimited swap")
    p.add_argument("--memory-reservation", metavar="BYTES", help="memory soft limit, e.g. 32m")
    p.add_argument("--cpus", metavar="N", help="number of CPUs, e.g. 0.5")
    p.add_argument("-c", "--cpu-shares", type=int, metavar="N", help="relative CPU weight (default 1024)")
    p.add_argument("--cpu-period", type=int, metavar="USEC", help="CFS period in microseconds")
    p.add_argument("--cpu-quota", type=int, metavar="USEC", help="CFS quota in microseconds per period")
    p.add_argument("--cpuset-cpus", metavar="LIST", help="CPUs the container may run on, e.g. 0-1,3")
    p.add_argument("--cpuset-mems", metavar="LIST", help="memory nodes the container may use")
    p.add_argument("--pids-limit", type=int, metavar="N", help="maximum number of processes (-1: unlimited)")
    p.add_argument("--blkio-weight", type=int, metavar="N", help="relative block I/O weight, 10 to 1000")
    p.add_argument("--device-read-bps", action="append", default=[], metavar="DEV:RATE",
                   help="limit reads from a block device, e.g. /dev/sda:1mb")
    p.add_argument("--device-write-bps", action="append", default=[], metavar="DEV:RATE",
                   help="limit writes to a block device")
    p.add_argument("--cgroup-parent", metavar="PATH",
                   help="parent cgroup (relative: under pycontain's own cgroup; absolute: from the root)")
    p.add_argument("-a", "--attach", action="append", default=[], type=_stream, metavar="STREAM",
                   help="attach only these of STDIN, STDOUT, STDERR (default: stdout and stderr)")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    p.add_argument("image", nargs="?", help="image name (hello-world is built in)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments")


def _stream(value: str) -> str:
    if value.lower() not in STREAMS:
        raise argparse.ArgumentTypeError(
            f'invalid argument "{value}" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR')
    return value.lower()


def _dns_search(value: str) -> str:
    try:
        return parse_dns_search(value)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(f'invalid argument "{value}" for "--dns-search" flag: {e}') from None


def read_env_file(path) -> list:
    """docker's --env-file (and --label-file): one K=V or K a line; blank
    lines and # comments skipped; leading space of a line trimmed."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise ConfigError(f"open {path}: {e.strerror.lower()}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    out = []
    for line in lines:
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key = line.split("=", 1)[0]
        if not key or any(c.isspace() for c in key):
            raise ConfigError(f"variable '{key}' contains whitespaces")
        out.append(line)
    return out


def env_list(env_files, env_flags, tty=False) -> list:
    """--env-file then -e, as docker: a K without "=" takes the caller's value
    of K and is left out when the caller has none; -t adds TERM=xterm unless set."""
    out = []
    for item in [line for f in env_files for line in read_env_file(f)] + list(env_flags):
        if "=" in item:
            out.append(item)
        elif item in os.environ:
            out.append(f"{item}={os.environ[item]}")
    if tty and not any(e.startswith("TERM=") for e in out):
        out.append("TERM=xterm")
    return out


def label_dict(label_files, label_flags) -> dict:
    """--label-file then -l. As docker: a file's line without "=" is read as
    an env file's (the caller's value, left out when unset); -l K is K="" ."""
    labels = {}
    for item in env_list(label_files, ()) + list(label_flags):
        key, _, value = item.partition("=")
        labels[key] = value
    return labels


def check_tty(args):
    """docker refuses -it when its stdin is not a terminal, before doing anything."""
    if args.tty and args.interactive and not os.isatty(0):
        raise CliError("the input device is not a TTY", exit_status=1)


def container_kwargs(args) -> dict:
    """Parsed docker-run flags → pycontain.containers.create() keyword arguments."""
    # Imported here and in _pull_if_missing: cli.lifecycle imports this module
    # for `container run` and env_list, and its other verbs (ps, stop, rm...)
    # need neither the configuration's validation nor the image package (~40 ms).
    from ..config import Mount

    image, command = args.image, args.command
    if args.rootfs:
        # with --rootfs the first positional is already the command
        command = ([image] if image else []) + command
        image = None
    elif not image:   # docker: "docker run" requires at least 1 argument, status 1
        raise UsageError(f'"{args.parser.prog}" requires at least 1 argument (an image, or --rootfs DIR).',
                         args.parser.prog, 1)
    if command and command[0] == "--":
        command = command[1:]
    volume_mounts = [Mount.parse(v) for v in args.volume]
    mounts = volume_mounts + [Mount.parse_mount_flag(m) for m in args.mount]
    for m in volume_mounts:
        # docker's -v makes a missing host directory (its --mount type=bind refuses, as here)
        if m.type == "bind" and m.source and os.path.isabs(m.source) and not os.path.lexists(m.source):
            try:
                os.makedirs(m.source, 0o755)
            except OSError as e:
                raise ConfigError(f"error while creating mount source path '{m.source}': "
                                  f"{e.strerror.lower()}") from None
    for t in args.tmpfs:
        dst, _, opts = t.partition(":")
        mounts.append(Mount(None, dst, type="tmpfs", options=tuple(o for o in opts.split(",") if o)))
    return dict(
        image=image, command=command or None, rootfs=args.rootfs,
        env=env_list(args.env_file, args.env, args.tty), hostname=args.hostname,
        user=args.user, workdir=args.workdir, mounts=mounts, read_only=args.read_only,
        init=args.init, network=args.network, cap_add=args.cap_add, cap_drop=args.cap_drop,
        network_aliases=args.network_alias,
        privileged=args.privileged, ulimits=args.ulimit,
        security_opt=args.security_opt, group_add=args.group_add,
        name=args.name, ports=args.publish, dns=args.dns, dns_search=args.dns_search, add_hosts=args.add_host,
        devices=args.device,
        pull=args.pull, storage_driver=args.storage_driver,
        entrypoint=[args.entrypoint] if args.entrypoint else None,
        memory=args.memory, memory_swap=args.memory_swap, memory_reservation=args.memory_reservation,
        cpus=args.cpus, cpu_shares=args.cpu_shares,
        cpu_period=args.cpu_period, cpu_quota=args.cpu_quota, cpuset_cpus=args.cpuset_cpus,
        cpuset_mems=args.cpuset_mems, pids_limit=args.pids_limit, blkio_weight=args.blkio_weight,
        device_read_bps=args.device_read_bps, device_write_bps=args.device_write_bps,
        cgroup_parent=args.cgroup_parent,
        restart_policy=args.restart, log_opts=args.log_opt, stop_signal=args.stop_signal,
        tty=args.tty, auto_remove=getattr(args, "rm", False), stdin_open=args.interactive,
        labels=label_dict(args.label_file, args.label), stop_timeout=args.stop_timeout, expose=args.expose,
        healthcheck=healthcheck(args),
    )


def healthcheck(args) -> dict | None:
    """The --health-* flags as docker's CLI turns them into a Healthcheck
    (durations in nanoseconds; --no-healthcheck: Test NONE)."""
    durations = {"Interval": args.health_interval, "Timeout": args.health_timeout,
                 "StartPeriod": args.health_start_period}
    given = args.health_cmd is not None or args.health_retries is not None or any(
        v is not None for v in durations.values())
    if args.no_healthcheck:
        if given:
            raise ConfigError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not given:
        return None
    hc = {"Test": ["CMD-SHELL", args.health_cmd]} if args.health_cmd else {}
    if any(v is not None for v in durations.values()):
        # Go's duration syntax, as the builder reads HEALTHCHECK's; imported
        # here only: the builder package costs every other `run` ~35 ms
        from ..build.dockerfile import parse_duration
    for key, text in durations.items():
        if text is not None:
            flag = f"--health-{_FLAG_OF[key]}"
            ns = parse_duration(text.removeprefix("-"), flag)   # Go's syntax, a sign allowed
            if text.startswith("-") and ns:
                raise ConfigError(f"{flag} cannot be negative")
            hc[key] = ns
    if args.health_retries is not None:
        if args.health_retries < 0:
            raise ConfigError("--health-retries cannot be negative")
        hc["Retries"] = args.health_retries
    return hc


_FLAG_OF = {"Interval": "interval", "Timeout": "timeout", "StartPeriod": "start-period"}


def _pull_if_missing(ref, policy):
    """docker run's implicit pull: "Unable to find image 'REF' locally", then
    the pull with its progress on stderr, as `pycontain pull` shows it."""
    if not ref or policy != "missing" or builtin_image(ref):
        return
    from .. import image  # see container_kwargs
    from .images import ProgressPrinter

    try:
        image.inspect(ref)
        return
    except ImageNotFound:
        pass
    familiar = str(image.parse_reference(ref))
    familiar = familiar.removeprefix("docker.io/library/").removeprefix("docker.io/")
    print(f"Unable to find image '{familiar}' locally", file=sys.stderr)
    image.pull(ref, progress=ProgressPrinter())


def _create(args, kwargs, monitor_here=False):
    """containers.create() and --cidfile: the file is refused if it exists
    (docker's check, before the container is made) and written once it is.
    monitor_here: a foreground run, this process its monitor (managed/create.py)."""
    if args.cidfile and os.path.exists(args.cidfile):
        raise ConfigError(f"container ID file found, make sure the other container isn't running "
                          f"or delete {args.cidfile}")
    _pull_if_missing(kwargs["image"], kwargs["pull"])
    c = containers.create(**kwargs, monitor_here=monitor_here)
    if args.cidfile:
        try:
            with open(args.cidfile, "x") as f:
                f.write(c.id)
        except OSError as e:
            c.remove(force=True, volumes=True)
            raise ConfigError(f"failed to create the container ID file: {e.strerror.lower()}") from None
    return c


def cmd_create(args):
    c = _create(args, container_kwargs(args))
    print(c.id)
    return 0


def cmd_run(args):
    if args.detach and args.attach:   # docker's client check, status 1
        raise CliError("Conflicting options: -a and -d")
    if not args.detach:
        check_tty(args)
    keys = parse_detach_keys(args.detach_keys)
    kwargs = container_kwargs(args)
    if args.detach and args.rm and args.restart not in ("no", None):
        args.parser.error("conflicting options: --restart and --rm")
    if args.detach or args.tty:
        c = _create(args, kwargs)
        return _run_terminal(c, args, keys) if not args.detach else _run_detached(c, args)
    c = _create(args, kwargs, monitor_here=True)
    # -a: only the streams named (docker: stdin goes in with -i whatever -a says)
    echo = tuple(s for s in ("stdout", "stderr") if s in args.attach) if args.attach else ("stdout", "stderr")
    if not echo:   # docker: with neither output attached, the id is printed first
        print(c.id, flush=True)
    try:
        # the container reads our stdin only with -i, as in docker
        stdin = os.dup(0) if args.interactive else None
        try:
            code = c.run_attached(stdin_fd=stdin, echo=echo)
        finally:
            if stdin is not None:
                os.close(stdin)
    finally:
        if args.rm:  # the monitor removed it at the exit; not when it failed before
            try:
                c.remove(force=True, volumes=True)
            except containers.NoSuchContainer:
                pass
    return code if echo else 0


def _run_detached(c, args) -> int:
    try:
        c.start()
    except BaseException:
        if args.rm:
            c.remove(force=True, volumes=True)
        raise
    print(c.id)
    return 0


def _run_terminal(c, args, keys) -> int:
    """run -t: the container under a monitor of its own, this CLI a client
    attached from before the start. The detach keys leave it running
    (status 0 and nothing printed, as docker's run); otherwise its exit
    status is ours. --rm is the monitor's, at the exit."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            c.start(attach_sock=theirs)
        finally:
            theirs.close()
    except BaseException:
        mine.close()
        if args.rm:
            try:
                c.remove(force=True, volumes=True)
            except containers.NoSuchContainer:
                pass
        raise
    how = attach_terminal(mine, 0 if args.interactive else None, keys,
                          input_end="eof" if args.interactive else None)
    if how == "detached":
        return 0
    return attached_exit_status(c)
