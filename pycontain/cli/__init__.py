"""The docker-like command line. It only parses and prints: all work is the library's.

Each concern has its own module with a `register(subparsers)` function that
adds its verbs; `main()` wires them together and turns pycontain's errors into
one line on stderr and docker's exit statuses (125: the engine failed).
"""
import argparse
import errno
import importlib
import os
import signal
import sys

from .. import __version__
from ..lean_argparse import CommandListSubParsers, one_command_action
from ..errors import ContainerError, ContainerStateError
from ..state import NameInUse
from ._errors import UsageError
from .gotemplate import TemplateError

# Modules under pycontain.cli that add verbs, in the order `--help` lists them.
VERB_MODULES = ("run", "lifecycle", "images", "build", "volume", "network", "system", "events")
# The top-level verbs (and aliases) each of them adds, so that running a verb
# imports its module alone and builds its parser alone: the verb modules import
# the parts of the library they use (the container verbs: the launcher, SQLite,
# ...), and argparse takes ~15 ms to build every verb's parser. A verb missing
# here still works, through the whole parser (tests/unit/test_lean_imports.py
# checks that this table is what the modules add).
MODULE_VERBS = {
    "run": ("run", "create"),
    "lifecycle": ("start", "stop", "kill", "restart", "pause", "unpause", "rm", "ps", "logs", "exec", "attach",
                  "inspect", "top", "wait", "stats", "cp", "port", "export", "commit", "rename", "diff", "update",
                  "container", "system"),
    "images": ("pull", "push", "tag", "history", "load", "save", "import", "images", "rmi", "login", "logout",
               "image"),
    "build": ("build", "builder"),
    "volume": ("volume",),
    "network": ("network",),
    "system": ("info", "version", "search", "completion"),
    "events": ("events",),
}

EXIT_ENGINE_FAILED = 125
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE   # 141, as the shell shows a program SIGPIPE killed
# docker's statuses for a failure of the engine: run (and the service,
# pycontain's own engine) 125, or the container's 126/127; create 125 too,
# but 1 for what docker's daemon refuses (a missing image, a name in use);
# exec 126 when its command could not start (127 when it is not found, as
# run's); every other verb 1, as docker's for any error its daemon answers.
VERBS_NOT_FOUND_IS_ENGINE_FAILURE = ("run", "create")


def failure_status(args, e) -> int:
    """The exit status of a verb that failed with e (a ContainerError)."""
    verb = getattr(args, "container_verb", None) if args.verb == "container" else args.verb
    if verb == "create" and isinstance(e, (LookupError, NameInUse)):
        return 1
    if verb in VERBS_NOT_FOUND_IS_ENGINE_FAILURE or getattr(args, "system_verb", None) == "service":
        return getattr(e, "exit_status", EXIT_ENGINE_FAILED)
    if isinstance(e, (LookupError, ContainerStateError)):
        return 1   # docker's "No such container", "Container X is not running"
    if verb == "exec":
        return getattr(e, "exit_status", 126)
    return 1


class DockerArgumentParser(argparse.ArgumentParser):
    """argparse with docker's (cobra's) manners: no prefix matching of long
    flags (--al is not --all), an unknown flag is "unknown flag: --x" then
    "See 'pycontain VERB --help'." with status 125; a missing argument is
    status 1, as docker's "requires at least N arguments"."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras and self.prog != "pycontain":
            # a verb's parser: what it did not take is an error here, named by this verb
            flag = next((a for a in extras if a.startswith("-") and a != "-"), None)
            if flag is not None:
                self.error(f"unknown flag: {flag.split('=', 1)[0]}")
            self.error(f'"{self.prog}" accepts no more arguments: {" ".join(extras)}')
        return namespace, extras

    def error(self, message):
        status = EXIT_ENGINE_FAILED
        if message.startswith("unrecognized arguments: "):
            message = "unknown flag: " + message.split()[2].split("=", 1)[0]
        elif message.startswith("the following arguments are required"):
            message = f'"{self.prog}" requires at least 1 argument ({message.split(": ", 1)[1]}).'
            status = 1
        elif message.startswith("argument ") and ': invalid argument "' in message:
            message = message.split(": ", 1)[1]   # a flag's own check, worded as docker's
        elif message.startswith("argument ") and ": expected one argument" in message:
            message = "flag needs an argument: " + message.split()[1].split("/")[-1]
        raise UsageError(message, self.prog, status)


HELP = "help"   # build_parser(HELP): the parser of `pycontain`, `pycontain -h|--help`


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; with `verb` (a word of MODULE_VERBS), only
    that verb's module is imported and only its parser built; with HELP, the
    verbs are listed and none is built."""
    parser = DockerArgumentParser(
        prog="pycontain",
        description="A daemonless container engine: run containers from the command line or from Python.",
    )
    parser.add_argument("--version", action="version", version=f"pycontain {__version__}")
    module = next((m for m, verbs in MODULE_VERBS.items() if verb in verbs), None)
    if module is not None:
        sub = parser.add_subparsers(dest="verb", metavar="COMMAND", action=one_command_action(verb))
        importlib.import_module(f"{__name__}.{module}").register(sub)
        return parser
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND",
                                action=CommandListSubParsers if verb == HELP else argparse._SubParsersAction)
    for name in VERB_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # the verb is the first word: the only top-level flags (--help, --version) take no value
    if not argv or argv[0] in ("-h", "--help"):
        parser = build_parser(HELP)
    else:
        parser = build_parser(None if argv[0].startswith("-") else argv[0])
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        print(str(e), file=sys.stderr)
        print(f"See '{e.prog} --help'.", file=sys.stderr)
        return e.status
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args) or 0
    except UsageError as e:   # a verb's own check of its arguments (args.parser.error)
        print(str(e), file=sys.stderr)
        print(f"See '{e.prog} --help'.", file=sys.stderr)
        return e.status
    except TemplateError as e:
        # docker: "template parsing error: ..." (inspect) / "failed to execute template: ..."
        print(f"pycontain: {e}", file=sys.stderr)
        return e.status
    except ContainerError as e:
        print(f"pycontain: {e}", file=sys.stderr)
        return failure_status(args, e)
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # a full disk the library met where it did not expect one: still one line
        print(f"pycontain: no space left on device while running `pycontain {args.verb}`", file=sys.stderr)
        return EXIT_ENGINE_FAILED
    except KeyboardInterrupt:
        return 130
    finally:
        # main() may run inside a longer-lived process: the record database
        # connection it opened is not left behind
        if "pycontain.containers" in sys.modules:
            sys.modules["pycontain.containers"].close_stores()


def entry():
    try:
        status = main()
        sys.stdout.flush()   # here, not at exit, where a broken pipe could only be reported
    except BrokenPipeError:
        # The reader went away (`pycontain ps | head`): end quietly, with the
        # status of a program that SIGPIPE ended, as docker (Go) and coreutils
        # do. Whatever is still buffered goes nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = EXIT_BROKEN_PIPE
    sys.exit(status)
