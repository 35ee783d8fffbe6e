"""`pip install -e .` builds the C extension and the static programs in the
source tree itself, so Python started in the checkout imports and runs."""
import shutil

import pytest

from wheel_helpers import COPY_IGNORE, REPO, make_venv, pip_install, run, tool_env

pytestmark = pytest.mark.packaging


def test_editable_install_builds_the_extension_in_the_checkout(tmp_path):
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO, checkout, ignore=COPY_IGNORE, symlinks=True)
    for built in [*checkout.glob("pycontain/*.so"), checkout / "pycontain" / "_bin"]:
        shutil.rmtree(built) if built.is_dir() else built.unlink()
    python = make_venv(tmp_path / "venv")
    pip_install(python, "-e", checkout)
    assert [p.name for p in checkout.glob("pycontain/_nsexec*.so")] and (checkout / "pycontain/_bin/pycontain-init").exists()
    code = ("import pycontain, pycontain._nsexec as x; from pycontain import Container; "
            f"assert x.__file__.startswith({str(checkout)!r}), x.__file__; "
            "r = Container('hello-world').run(capture_output=True); "
            "assert r.returncode == 0 and b'Hello from pycontain!' in r.stdout, r")
    run([python, "-c", code], cwd=checkout, env=tool_env(PYCONTAIN_ROOT=str(tmp_path / "store")))
