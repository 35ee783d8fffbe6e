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
from ..errors import ContainerError

# Modules under pycontain.cli that add verbs, in the order `--help` lists them.
VERB_MODULES = ("run", "lifecycle", "images", "build", "volume", "network", "system")

EXIT_ENGINE_FAILED = 125
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE   # 141, as the shell shows a program SIGPIPE killed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pycontain",
        description="A daemonless container engine: run containers from the command line or from Python.",
    )
    parser.add_argument("--version", action="version", version=f"pycontain {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND")
    for name in VERB_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args) or 0
    except ContainerError as e:
        print(f"pycontain: {e}", file=sys.stderr)
        return getattr(e, "exit_status", EXIT_ENGINE_FAILED)
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
