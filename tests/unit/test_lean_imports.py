"""Each command imports only what it needs (issue 17: a command line that does
not pay for what it does not use). Python's start-up is most of what a short
command costs, so these check what a fresh interpreter has imported after the
command, not how long it took: `import pycontain` and the OCI runtime's
state/kill/delete must not load the launcher (cffi and the C extension),
libseccomp's bindings, the image code or the Engine API's server, and the
command line must import the module of the verb it runs and no other."""
import argparse
import importlib
import json
import os
import subprocess
import sys

import pytest

from pycontain import cli
from pycontain.oci import cli as oci_cli

# never needed to read state: the C launcher and what builds a start
LAUNCHER = {"cffi", "_cffi_backend", "pycontain._nsexec", "pycontain._launch", "pycontain.container",
            "pycontain.config", "pycontain.security.seccomp", "pycontain.bundle"}
# the heavy optional parts: image unpacking and the registry, builds, the API server
HEAVY = {"tarfile", "zstandard", "pyroute2", "aiohttp", "pycontain.image", "pycontain.build", "pycontain.api"}


def modules_after(code: str, tmp_path) -> set:
    """The modules a fresh interpreter has imported after running `code` (in
    which `done()` prints them, so that a command that exits still reports)."""
    out = tmp_path / "modules.json"
    prelude = ("import atexit, json, sys\n"
               f"atexit.register(lambda: open({str(out)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n")
    env = dict(os.environ, PYCONTAIN_ROOT=str(tmp_path / "store"))
    subprocess.run([sys.executable, "-c", prelude + code], env=env, cwd=tmp_path,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return set(json.loads(out.read_text()))


def test_import_pycontain_loads_neither_the_launcher_nor_sqlite(tmp_path):
    mods = modules_after("import pycontain", tmp_path)
    assert "pycontain" in mods
    # nor subprocess (~10 ms: ContainerTimeout and ContainerExitError are made on first use)
    assert not mods & (LAUNCHER | HEAVY | {"sqlite3", "pickle", "subprocess", "pycontain.cgroups"})


def test_the_subprocess_shaped_errors_are_made_once_and_pickle():
    code = ("import pickle, subprocess, threading\n"
            "import pycontain, pycontain.errors as errors\n"
            "seen = []\n"
            "ts = [threading.Thread(target=lambda: seen.append(errors.ContainerTimeout)) for _ in range(8)]\n"
            "[t.start() for t in ts]; [t.join() for t in ts]\n"
            "assert len(set(seen)) == 1 and seen[0] is pycontain.ContainerTimeout\n"
            "assert issubclass(errors.ContainerTimeout, subprocess.TimeoutExpired)\n"
            "assert issubclass(errors.ContainerExitError, (subprocess.CalledProcessError, errors.ContainerError))\n"
            "e = pickle.loads(pickle.dumps(errors.ContainerExitError(3, ['x'], b'o', b'e')))\n"
            "assert type(e) is errors.ContainerExitError and e.returncode == 3 and e.stdout == b'o'\n"
            "print(repr(errors.ContainerTimeout(['x'], 1.5)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ContainerTimeout(['x'], 1.5)\n"


@pytest.mark.parametrize("op", ["state", "kill", "delete"])
def test_oci_state_kill_delete_import_the_state_code_only(op, tmp_path):
    # a container that does not exist: the command reads its state directory and fails
    code = ("import sys; from pycontain.oci.cli import entry\n"
            f"sys.argv = ['pycontain-runc', '--root', {str(tmp_path / 'oci')!r}, {op!r}, 'nosuch']\n"
            "entry()")
    mods = modules_after(code, tmp_path)
    assert "pycontain.oci.state" in mods
    # nor the cgroup drivers: only delete acts on a cgroup (none here)
    found = mods & (LAUNCHER | HEAVY | {"pycontain.cgroups"})
    assert not found, f"pycontain-runc {op} imported {sorted(found)}"


@pytest.mark.parametrize("verb, module", [(["ps", "-a"], "lifecycle"), (["images"], "images"),
                                          (["volume", "ls"], "volume"), (["version"], "system")])
def test_the_cli_imports_the_module_of_the_verb_it_runs(verb, module, tmp_path):
    mods = modules_after(f"from pycontain.cli import main\nmain({verb!r})", tmp_path)
    verb_modules = {m for m in mods if m.startswith("pycontain.cli.") and m.rpartition(".")[2] in cli.VERB_MODULES}
    assert f"pycontain.cli.{module}" in verb_modules
    # lifecycle's `container run` and `system events` groups need those modules' verbs
    allowed = {f"pycontain.cli.{module}"}
    if module == "lifecycle":
        allowed |= {"pycontain.cli.run", "pycontain.cli.events"}
    assert verb_modules <= allowed
    # the Engine API's server; the registry client (http.client, ssl) is for pull, push and login
    assert not mods & {"aiohttp", "pycontain.api", "pycontain.image.registry", "http.client", "ssl"}
    if module in ("lifecycle", "volume"):
        # neither starts a container (tests/lifecycle/test_lean_verbs.py: with one running)
        assert not mods & LAUNCHER


def test_the_dispatch_table_names_every_verb_of_each_module():
    for name in cli.VERB_MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"pycontain.cli.{name}").register(sub)
        assert tuple(sub.choices) == cli.MODULE_VERBS[name], name


def test_a_verb_parsed_alone_parses_as_in_the_whole_parser():
    argv = ["run", "--rm", "-e", "A=1", "--network", "none", "--rootfs", "/r", "true"]
    alone = vars(cli.build_parser("run").parse_args(argv))
    whole = vars(cli.build_parser().parse_args(argv))
    assert alone.keys() == whole.keys()
    assert {k: v for k, v in alone.items() if not callable(v) and k != "parser"} == \
        {k: v for k, v in whole.items() if not callable(v) and k != "parser"}
    assert alone["func"] is whole["func"]


def test_the_verb_list_is_the_whole_parsers_help():
    assert cli.build_parser(cli.HELP).format_help() == cli.build_parser().format_help()


@pytest.mark.parametrize("argv", [
    ["state", "c1"], ["--root", "/r", "kill", "c1", "KILL"], ["--root=/r", "--log-format", "json", "delete", "-f", "c1"],
    ["--log", "/l", "--debug", "exec", "-e", "A=1", "c1", "sh", "-c", "kill"], ["--criu", "state", "list"],
    ["--rootl", "false", "ps", "c1"], ["create", "--bundle", "/b", "--pid-file", "/p", "state"],
])
def test_pycontain_runc_parses_one_command_as_the_whole_parser_does(argv):
    alone = vars(oci_cli._parser(oci_cli._command_word(argv)).parse_args(argv))
    assert alone == vars(oci_cli._parser().parse_args(argv))
    assert oci_cli._command_word(argv) == alone["command"]
