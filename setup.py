"""Build: the cffi launcher extension plus two tiny static programs.

`_nsexec` is the cffi (API mode, out-of-line, abi3) extension that executes a
LaunchPlan. `pycontain-init` (the optional pid-1 reaper) and `hello` (the
built-in hello-world image) are static executables: they run inside
containers whose root filesystem has no libc of ours, so they cannot be
dynamic.
"""
import os
import shlex
import subprocess
import sysconfig
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent.resolve()
STATIC_PROGRAMS = {
    # source file -> path inside the package
    "src/init.c": "_bin/pycontain-init",
    "src/hello.c": "_bin/hello-world/hello",
}


def c_compiler():
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cc)


class BuildExtWithPrograms(build_ext):
    def run(self):
        super().run()
        base = HERE / "pycontain" if self.inplace else Path(self.build_lib) / "pycontain"
        for src, rel in STATIC_PROGRAMS.items():
            out = base / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            cmd = c_compiler() + ["-static", "-Os", "-s", "-Wall", "-o", str(out), str(HERE / src)]
            self.announce(" ".join(cmd), level=2)
            try:
                subprocess.run(cmd, check=True)
            except (OSError, subprocess.CalledProcessError) as e:
                raise SystemExit(
                    f"pycontain: building {src} failed ({e}). A C compiler and static "
                    "libc are needed (Debian: apt-get install gcc libc6-dev)."
                )


setup(
    cffi_modules=["src/build_nsexec.py:ffibuilder"],
    cmdclass={"build_ext": BuildExtWithPrograms},
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
