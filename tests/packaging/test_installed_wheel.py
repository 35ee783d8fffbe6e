"""The wheel installed into fresh virtual environments, used from outside the
source tree: the core test suite runs against the installed copy, and every
interpreter this machine has (3.10 and later) imports the one abi3 wheel."""
import glob
import os
import sys
from pathlib import Path

import pytest

from wheel_helpers import REPO, make_venv, pip_install, run, tool_env

pytestmark = pytest.mark.packaging

# The core suite at merge time: whatever of these exists.
CORE_TEST_PATTERNS = ("tests/test_smoke.py", "tests/test_core*.py", "tests/test_init_program.py")

# Proves, inside the same pytest session as the core tests, that they import
# the installed package and its extension, never the source tree.
ORIGIN_TEST = '''
import sys, pycontain, pycontain._nsexec
def test_pycontain_comes_from_the_venv():
    for mod in (pycontain, pycontain._nsexec):
        assert mod.__file__.startswith(sys.prefix + "/"), mod.__file__
        assert not mod.__file__.startswith({repo!r}), mod.__file__
'''


def interpreters():
    """{version: path} of CPython 3.10+ on this machine: the running one and,
    where pyenv or the distribution has them, the others, plus any listed in
    $PYCONTAIN_TEST_PYTHONS (paths separated by ':', as CI sets it)."""
    found = {"%d.%d" % sys.version_info[:2]: sys.executable}
    listed = [p for p in os.environ.get("PYCONTAIN_TEST_PYTHONS", "").split(":") if p]
    for path in listed + sorted(glob.glob("/root/.pyenv/versions/3.*/bin/python3") + glob.glob("/usr/bin/python3.1[0-9]")
                                + glob.glob("/usr/local/bin/python3.1[0-9]")):
        r = run([path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], check=False)
        version = r.stdout.strip()
        if r.returncode == 0 and tuple(map(int, version.split("."))) >= (3, 10):
            found.setdefault(version, path)
    return found


def outside_env():
    """Run from a directory where the source tree is not importable."""
    env = tool_env()
    env.pop("PYCONTAIN_ROOT", None)  # the inner session makes its own
    return env


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory):
    venv = tmp_path_factory.mktemp("venv-wheel")
    python = make_venv(venv)
    pip_install(python, dist.wheel, "pytest>=7", "pytest-timeout>=2")
    return python


def test_core_tests_pass_against_the_installed_wheel(installed, tmp_path):
    origin = tmp_path / "test_installed_origin.py"
    origin.write_text(ORIGIN_TEST.format(repo=str(REPO)))
    core = sorted({p for pattern in CORE_TEST_PATTERNS for p in glob.glob(str(REPO / pattern))})
    assert core, "no core tests found"
    # -c: the project's pytest settings (markers, timeout); --rootdir and cwd
    # away from the tree; importlib mode never puts a test's directory (or the
    # tree) on sys.path. tests/conftest.py imports no pycontain.
    r = run([installed, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
             "-c", REPO / "pyproject.toml", "--rootdir", tmp_path, str(origin), *core],
            cwd=tmp_path, env=outside_env(), check=False)
    assert r.returncode == 0, r.stdout[-8000:] + r.stderr[-4000:]
    assert " passed" in r.stdout and " failed" not in r.stdout, r.stdout[-2000:]


def test_console_script_and_hello_world_from_the_installed_wheel(installed, tmp_path):
    bin_dir = Path(installed).parent
    env = outside_env()
    env["PYCONTAIN_ROOT"] = str(tmp_path / "store")
    info = run([bin_dir / "pycontain", "info"], cwd=tmp_path, env=env).stdout
    assert "pycontain:" in info and "Namespaces:" in info
    hello = run([bin_dir / "pycontain", "run", "hello-world"], cwd=tmp_path, env=env).stdout
    assert "Hello from pycontain!" in hello


@pytest.mark.parametrize("version", sorted(interpreters()))
def test_the_same_abi3_wheel_works_on_every_python(version, dist, tmp_path):
    python = make_venv(tmp_path / "venv", interpreters()[version])
    pip_install(python, dist.wheel)
    env = outside_env()
    env["PYCONTAIN_ROOT"] = str(tmp_path / "store")
    code = ("import sys, pycontain; from pycontain import Container; "
            "assert pycontain.__file__.startswith(sys.prefix), pycontain.__file__; "
            "r = Container('hello-world').run(capture_output=True); "
            "assert r.returncode == 0 and b'Hello from pycontain!' in r.stdout, r")
    run([python, "-c", code], cwd=tmp_path, env=env)


def test_python_3_9_is_refused_with_a_clear_reason(dist, tmp_path):
    listed = [p for p in os.environ.get("PYCONTAIN_TEST_PYTHONS", "").split(":") if p.endswith("3.9")]
    py39 = next(iter(listed + glob.glob("/root/.pyenv/versions/3.9*/bin/python3") + glob.glob("/usr/bin/python3.9")),
                None)
    if py39 is None:
        # Without a 3.9 here, check the two things pip decides by instead.
        from zipfile import ZipFile
        with ZipFile(dist.wheel) as z:
            meta = z.read(next(n for n in z.namelist() if n.endswith("METADATA"))).decode()
        assert "Requires-Python: >=3.10" in meta and "-cp310-abi3-" in dist.wheel.name
        return
    python = make_venv(tmp_path / "venv", py39)
    r = pip_install(python, "--dry-run", dist.wheel, check=False)
    assert r.returncode != 0
    assert "is not a supported wheel on this platform" in r.stderr or "requires a different Python" in r.stderr, r.stderr
    assert not os.path.exists(tmp_path / "venv/lib/python3.9/site-packages/pycontain")


def test_cibuildwheel_smoke_script_passes_on_the_installed_wheel(installed, tmp_path):
    # The same script cibuildwheel runs in its build container (pyproject.toml).
    r = run([installed, REPO / "tests/packaging/smoke_installed.py"], cwd=tmp_path, env=outside_env())
    assert r.stdout.startswith("ok: pycontain "), r.stdout


def test_cibuildwheel_smoke_script_refuses_the_source_tree(tmp_path):
    env = outside_env()
    env["PYTHONPATH"] = str(REPO)
    r = run([sys.executable, REPO / "tests/packaging/smoke_installed.py"], cwd=tmp_path, env=env, check=False)
    assert r.returncode != 0 and "imported the source tree" in r.stderr, r.stderr
