"""Build: the cffi launcher extension plus four tiny static programs.

`_nsexec` is the cffi (API mode, out-of-line, abi3) extension that executes a
LaunchPlan. `pycontain-init` (the optional pid-1 reaper) and `hello` (the
built-in hello-world image) are static executables: they run inside
containers whose root filesystem has no libc of ours, so they cannot be
dynamic. `pycontain-join` (the launcher's own child code, src/_nsexec.c,
as a program) joins running containers for exec without sharing the
caller's memory. `pycontain-monitor` (src/monitor.c) is the monitor of a
detached container, executed in place of the process that launched it.
"""
import os
import shlex
import subprocess
import sysconfig
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import BaseError as DistutilsError, CCompilerError

HERE = Path(__file__).parent.resolve()
STATIC_PROGRAMS = {
    # source file -> path inside the package
    "src/init.c": "_bin/pycontain-init",
    "src/hello.c": "_bin/hello-world/hello",
    "src/join.c": "_bin/pycontain-join",
    "src/monitor.c": "_bin/pycontain-monitor",
}


def c_compiler():
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cc)


# Targets where the static programs are built without libc (src/rawsys.h has
# a _start and raw system calls for them). Elsewhere they need a static libc.
NOLIBC_ARCHES = ("x86_64", "aarch64")
NOLIBC_FLAGS = [
    "-DPC_NOLIBC", "-nostdlib", "-ffreestanding", "-fno-stack-protector",
    "-fno-pie", "-no-pie", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables",
]

NO_COMPILER_HELP = (
    "pycontain: building from source needs a C compiler and the Python headers, "
    "and {what} failed: {error}. Install them (Debian/Ubuntu: apt-get install gcc python3-dev; "
    "Fedora/RHEL: dnf install gcc python3-devel; Alpine: apk add gcc musl-dev python3-dev), "
    "set CC to a working compiler, or install a prebuilt wheel: "
    "pip install --only-binary=:all: pycontain"
)


def target_arch(cc):
    """The compiler's target architecture (`cc -dumpmachine`: x86_64-linux-gnu,
    aarch64-redhat-linux, ...), so a cross compiler in CC builds for its target."""
    try:
        out = subprocess.run(cc + ["-dumpmachine"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(NO_COMPILER_HELP.format(what=f"running the C compiler {shlex.join(cc)!r}", error=e))
    return out.strip().split("-", 1)[0]


def static_program_command(cc, src, out):
    flags = ["-static", "-Os", "-s", "-Wall", "-Wextra", "-I", str(HERE / "src")]
    if target_arch(cc) in NOLIBC_ARCHES:
        flags += NOLIBC_FLAGS
    return cc + flags + ["-o", str(out), str(src)]


class BuildExtWithPrograms(build_ext):
    def run(self):
        # The static programs first: their compiler check is the cheapest
        # place to say clearly that no compiler is there.
        base = HERE / "pycontain" if self.inplace else Path(self.build_lib) / "pycontain"
        cc = c_compiler()
        for src, rel in STATIC_PROGRAMS.items():
            out = base / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            cmd = static_program_command(cc, HERE / src, out)
            self.announce(" ".join(cmd), level=2)
            try:
                subprocess.run(cmd, check=True)
            except (OSError, subprocess.CalledProcessError) as e:
                raise SystemExit(NO_COMPILER_HELP.format(what=f"building {src}", error=e))
        try:
            super().run()
        except (CCompilerError, DistutilsError, OSError) as e:
            raise SystemExit(NO_COMPILER_HELP.format(what="building the _nsexec extension", error=e))


setup(
    cffi_modules=["src/build_nsexec.py:ffibuilder"],
    cmdclass={"build_ext": BuildExtWithPrograms},
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
