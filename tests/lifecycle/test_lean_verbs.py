"""The CLI's verbs that only read or signal a managed container do not load
the launcher (issue 17: a command line that does not pay for what it does
not use): ps, inspect, logs, stop and rm -f of a real running container, each
in a fresh interpreter whose modules are listed when it exits; exec loads the
launcher, which it uses, but not the configuration's validation nor seccomp's
compiler. What they print is checked by test_cli_lifecycle.py."""
import json
import subprocess
import sys

import pytest

from .conftest import pycontain

pytestmark = pytest.mark.usefixtures("managed")

# what starts a container: the C launcher, the configuration's validation, seccomp's compiler
LAUNCHER = {"_cffi_backend", "pycontain._nsexec", "pycontain._launch", "pycontain.container",
            "pycontain.config", "pycontain.security.seccomp", "pycontain.bundle", "pycontain.managed.monitor"}
STARTING = LAUNCHER - {"_cffi_backend", "pycontain._nsexec", "pycontain._launch"}
# what ps and logs do not use either: the cgroup drivers (ctypes) and the exec path
ACTING = {"pycontain.cgroups", "pycontain.managed.execute", "ctypes"}


def verb_modules(tmp_path, *argv) -> set:
    out = tmp_path / "modules.json"
    code = ("import atexit, json, sys\n"
            f"atexit.register(lambda: open({str(out)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
            f"from pycontain.cli import main\nsys.exit(main({list(argv)!r}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return set(json.loads(out.read_text()))


def test_verbs_that_read_or_signal_a_container_do_not_load_the_launcher(busybox, tmp_path):
    r = pycontain("run", "-d", "--network", "none", "--name", "lean", "--rootfs", str(busybox), "sleep", "60")
    assert r.returncode == 0, r.stderr
    for argv in (["ps", "-a"], ["inspect", "lean"], ["logs", "lean"], ["exec", "lean", "true"],
                 ["stop", "-t", "1", "lean"], ["rm", "-f", "lean"]):
        mods = verb_modules(tmp_path, *argv)
        assert "pycontain.managed.handle" in mods
        found = mods & (STARTING if argv[0] == "exec" else LAUNCHER | (ACTING if argv[0] in ("ps", "logs") else set()))
        assert not found, f"pycontain {' '.join(argv)} imported {sorted(found)}"
    assert pycontain("ps", "-aq").stdout == ""
