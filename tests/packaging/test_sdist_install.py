"""`pip install` from the sdist: it builds on a machine with only a C compiler
and the Python headers, and says clearly what is missing when there is no
compiler (and installs nothing)."""
import os
import shutil

import pytest

from wheel_helpers import make_venv, pip_install, run, tool_env

pytestmark = pytest.mark.packaging

NO_COMPILER = "pycontain: building from source needs a C compiler and the Python headers"


def test_sdist_builds_and_works_in_a_clean_venv(dist, tmp_path):
    python = make_venv(tmp_path / "venv")
    pip_install(python, "--no-binary", "pycontain", "--no-cache-dir", dist.sdist)
    env = tool_env(PYCONTAIN_ROOT=str(tmp_path / "store"))
    code = ("import sys, pycontain, pycontain._nsexec; from pycontain import Container; "
            "assert pycontain._nsexec.__file__.startswith(sys.prefix), pycontain._nsexec.__file__; "
            "r = Container('hello-world').run(capture_output=True); "
            "assert r.returncode == 0 and b'Hello from pycontain!' in r.stdout, r")
    run([python, "-c", code], cwd=tmp_path, env=env)


def path_without_a_compiler(tmp_path):
    """A PATH with every directory of this one except that no C compiler is in
    it: the tools pip runs stay, cc/gcc/clang do not."""
    bin_dir = tmp_path / "bin-without-cc"
    bin_dir.mkdir()
    compilers = {"cc", "gcc", "clang", "c99", "c89"}
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            base = name.split("-")[-1]  # x86_64-linux-gnu-gcc, gcc-12
            if name in compilers or base in compilers or name.startswith(("gcc-", "clang-")) \
                    or (bin_dir / name).exists():
                continue
            target = os.path.join(d, name)
            if os.access(target, os.X_OK) and not os.path.isdir(target):
                (bin_dir / name).symlink_to(target)
    return str(bin_dir)


@pytest.fixture(scope="module")
def venv_with_build_deps(tmp_path_factory):
    """One venv holding the build requirements, shared by the no-compiler
    cases (--no-build-isolation: pip would otherwise fetch them each time;
    the failing step, setup.py's build_ext, is the same either way)."""
    venv = tmp_path_factory.mktemp("venv-build-deps")
    python = make_venv(venv)
    pip_install(python, "setuptools>=77", "wheel", "cffi>=1.15")
    return venv, python


@pytest.mark.parametrize("how", ["CC=/nonexistent", "no compiler on PATH"])
def test_install_without_a_compiler_says_what_is_missing(how, dist, venv_with_build_deps, tmp_path):
    venv, python = venv_with_build_deps
    env = tool_env(PATH=path_without_a_compiler(tmp_path))
    if how.startswith("CC="):
        env["CC"] = "/nonexistent"
    else:
        env.pop("CC", None)
        assert shutil.which("gcc", path=env["PATH"]) is None and shutil.which("cc", path=env["PATH"]) is None
    r = pip_install(python, "--no-build-isolation", "--no-binary", "pycontain", "--no-cache-dir", dist.sdist,
                    check=False, env=env)
    output = r.stdout + r.stderr
    assert r.returncode != 0, output
    assert NO_COMPILER in output, output[-4000:]
    assert "pip install --only-binary=:all: pycontain" in output
    assert not list(venv.glob("lib/python*/site-packages/pycontain*")), "a half install was left"
    print(next(line for line in output.splitlines() if NO_COMPILER in line))
