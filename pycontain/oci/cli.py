"""pycontain-runc: runc's command line over pycontain's launcher.

containerd's shim, conmon and dockerd call an OCI runtime binary with runc's
flags. This door reads a bundle's config.json once into a ContainerConfig
(config.container_config_from_oci) and calls the library; the state of each
container lives in --root (state.py).

create/start: the caller (containerd's shim, conmon) is a child subreaper and
waits on the pid it reads from --pid-file, so the container's process must end
up as the caller's child, with nothing of ours in between. `create` forks a
small waiting process that creates the container (the launcher's
"created" state: namespaces, cgroup and mounts made, the command not yet
executed) and then waits on a socket in the state directory; `create` itself
returns, so the waiting process and the container become children of the
caller's subreaper. `start` connects to that socket; the waiting process
releases the container, reports that the command was executed, and exits
without reaping it: the container is re-parented to the caller, which reaps
it and reads its exit status, as with runc.
"""
from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from ..errors import ContainerError
from ..lean_argparse import one_command_action
from . import ops
from . import state as S
from .ops import PROG, Log
from .state import OCI_VERSION


# ---- arguments ------------------------------------------------------------------------------

# runc update's flags: (option, linux.resources object, key, kind of value)
UPDATE_FLAGS = (("blkio_weight", "blockIO", "weight", "int"), ("cpu_period", "cpu", "period", "int"),
                ("cpu_quota", "cpu", "quota", "int"), ("cpu_share", "cpu", "shares", "int"),
                ("cpuset_cpus", "cpu", "cpus", "str"), ("cpuset_mems", "cpu", "mems", "str"),
                ("memory", "memory", "limit", "bytes"), ("memory_reservation", "memory", "reservation", "bytes"),
                ("memory_swap", "memory", "swap", "bytes"), ("pids_limit", "pids", "limit", "int"))
UPDATE_REFUSED_FLAGS = ("cpu_rt_period", "cpu_rt_runtime", "kernel_memory", "kernel_memory_tcp",
                        "l3_cache_schema", "mem_bw_schema")

def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """runc's command line; with `command`, only that subcommand's parser is
    built (a shim calls state, kill and delete often: ~5 ms each)."""
    p = argparse.ArgumentParser(prog=PROG, description="An OCI runtime with runc's command line, on pycontain.")
    p.add_argument("--root", default=None, help=f"the state directory (default {S.DEFAULT_ROOT}; rootless: "
                                                "$XDG_RUNTIME_DIR/pycontain-runc)")
    p.add_argument("--log", default=None, help="write errors (and with --debug, more) to this file")
    p.add_argument("--log-format", default="text", choices=("text", "json"))
    p.add_argument("--debug", action="store_true")
    p.add_argument("--systemd-cgroup", action="store_true",
                   help="cgroupsPath is systemd's slice:prefix:name (mapped below the caller's cgroup)")
    p.add_argument("--rootless", default="auto", choices=("true", "false", "auto"),
                   help="rootless: the state under $XDG_RUNTIME_DIR (auto: when not run as root)")
    p.add_argument("--criu", default=None, help=argparse.SUPPRESS)
    p.add_argument("-v", "--version", action="store_true")
    sub = p.add_subparsers(dest="command", metavar="COMMAND",
                           action=one_command_action(command) if command else argparse._SubParsersAction)

    def cmd(name, help_, *args):
        sp = sub.add_parser(name, help=help_)
        for a in args:
            sp.add_argument(a)
        return sp

    def create_flags(sp):
        sp.add_argument("-b", "--bundle", default=".")
        sp.add_argument("--pid-file")
        sp.add_argument("--console-socket")
        sp.add_argument("--no-pivot", action="store_true")
        sp.add_argument("--no-new-keyring", action="store_true")
        sp.add_argument("--preserve-fds", type=int, default=0)
        sp.add_argument("id")

    create_flags(cmd("create", "create a container, its command waiting for start"))
    sp = cmd("run", "create and start a container; without --detach wait for it")
    sp.add_argument("-d", "--detach", action="store_true")
    create_flags(sp)
    cmd("start", "run the command of a created container", "id")
    cmd("state", "print the state of a container as JSON", "id")
    sp = cmd("kill", "send a signal to the container's init (default SIGTERM)", "id")
    sp.add_argument("signal", nargs="?", default="SIGTERM")
    sp.add_argument("-a", "--all", action="store_true")
    sp = cmd("delete", "delete a stopped container's state and cgroup", "id")
    sp.add_argument("-f", "--force", action="store_true")
    sp = cmd("list", "list containers")
    sp.add_argument("-f", "--format", default="table", choices=("table", "json"))
    sp.add_argument("-q", "--quiet", action="store_true")
    sp = cmd("ps", "list the container's processes", "id")
    sp.add_argument("-f", "--format", default="table", choices=("table", "json"))
    sp.add_argument("ps_args", nargs="*")
    cmd("pause", "freeze every process of the container", "id")
    cmd("resume", "thaw a paused container", "id")
    sp = cmd("events", "container statistics (--stats)", "id")
    sp.add_argument("--stats", action="store_true")
    sp.add_argument("--interval", default="5s")
    sp = cmd("spec", "write a default config.json")
    sp.add_argument("-b", "--bundle", default=".")
    sp.add_argument("--rootless", action="store_true")
    cmd("features", "what this runtime supports, as JSON")
    sp = sub.add_parser("exec", help="run one more process in a running container")
    sp.add_argument("-p", "--process", help="the process (an OCI process object as JSON)")
    sp.add_argument("-d", "--detach", action="store_true")
    sp.add_argument("--pid-file")
    sp.add_argument("--console-socket")
    sp.add_argument("-t", "--tty", action="store_true")
    sp.add_argument("--cwd")
    sp.add_argument("-e", "--env", action="append", default=[])
    sp.add_argument("-u", "--user", help="uid[:gid]")
    sp.add_argument("-g", "--additional-gids", action="append", default=[])
    sp.add_argument("-c", "--cap", action="append", default=[])
    sp.add_argument("--no-new-privs", action="store_true")
    sp.add_argument("--process-label")
    sp.add_argument("--apparmor")
    sp.add_argument("--preserve-fds", type=int, default=0)
    sp.add_argument("--ignore-paused", action="store_true", help=argparse.SUPPRESS)
    sp.add_argument("id")
    sp.add_argument("argv", nargs=argparse.REMAINDER, metavar="COMMAND")
    sp = sub.add_parser("update", help="change the resource limits of a container")
    sp.add_argument("-r", "--resources", help="a file with the resources (OCI linux.resources JSON), - for stdin")
    for option, *_ in UPDATE_FLAGS:
        sp.add_argument("--" + option.replace("_", "-"))
    for option in UPDATE_REFUSED_FLAGS:
        sp.add_argument("--" + option.replace("_", "-"), help="not supported")
    sp.add_argument("id")
    for name in ("checkpoint", "restore"):
        sp = sub.add_parser(name, help=f"{name} (not supported)")
        sp.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def _heavy(name):
    """create, run, exec, update and features need the launcher or the config
    parser (~0.1 s of imports): only they import them."""
    def call(args, log):
        from . import create, execute, update

        if name == "exec":
            return execute.exec_process(args, log)
        if name == "update":
            return update.update(args, log, UPDATE_FLAGS, UPDATE_REFUSED_FLAGS)
        return getattr(create, name)(args, log)
    return call


COMMANDS = {
    "create": _heavy("create"), "run": _heavy("run"), "features": _heavy("features"),
    "start": ops.start, "state": ops.state, "kill": ops.kill, "delete": ops.delete,
    "list": ops.list_containers, "ps": ops.ps, "pause": ops.pause,
    "resume": lambda a, log: ops.pause(a, log, freeze=False),
    "events": ops.events, "spec": ops.spec,
    "exec": _heavy("exec"), "update": _heavy("update"), "checkpoint": ops.unsupported, "restore": ops.unsupported,
}

# the global flags that take a value (and so hide the word after them from the command)
GLOBAL_VALUE_FLAGS = ("--root", "--log", "--log-format", "--rootless", "--criu")


def _command_word(argv) -> str | None:
    """The subcommand argparse will find in argv: the first word that is
    neither a flag nor a global flag's value; None when unsure (a `--`, a
    word that is no command), and the whole parser is built."""
    takes_value = False
    for word in argv:
        if takes_value:
            takes_value = False
        elif word == "--":
            return None
        elif word.startswith("-"):
            # argparse takes an unambiguous prefix (--ro for --root) and --flag=value
            takes_value = "=" not in word and any(f.startswith(word) for f in GLOBAL_VALUE_FLAGS)
        else:
            return word if word in COMMANDS else None
    return None


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser(_command_word(argv)).parse_args(argv)
    log = Log(args.log, args.log_format, args.debug)
    if args.version:
        print(f"{PROG} version {__version__}\nspec: {OCI_VERSION}")
        return 0
    if not args.command:
        _parser().print_help(sys.stderr)
        return 1
    try:
        if args.root is None:
            args.root = S.default_root(rootless=args.rootless == "true"
                                       or (args.rootless == "auto" and os.geteuid() != 0))
        return COMMANDS[args.command](args, log)
    except (ContainerError, OSError) as e:
        log.error(str(e) if isinstance(e, ContainerError) or not e.strerror else f"{e.strerror}: {e.filename or ''}")
        return 1


def entry():
    sys.exit(main())
