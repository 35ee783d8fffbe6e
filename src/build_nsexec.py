"""cffi builder for pycontain._nsexec (API mode, out-of-line, abi3).

The cdef is nsexec.h itself, less its preprocessor lines, so the C structs and
what Python sees can never drift apart.
"""
from pathlib import Path

from cffi import FFI

SRC = Path(__file__).resolve().parent
header = (SRC / "nsexec.h").read_text()
cdef = "\n".join(line for line in header.splitlines() if not line.lstrip().startswith("#"))

ffibuilder = FFI()
ffibuilder.cdef(cdef)
ffibuilder.set_source(
    "pycontain._nsexec",
    '#include "nsexec.h"',
    sources=["src/_nsexec.c"],
    include_dirs=["src"],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fno-strict-aliasing"],
    py_limited_api=True,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
