"""The host's architecture in libseccomp's naming (x86_64, aarch64...). Apart
from seccomp.py, whose import loads ctypes bindings and hashlib, because the
cgroup v2 device filter needs it too (bpf(2)'s number) and the cgroups reach
every OCI `state` or `delete`."""
from __future__ import annotations

import os


def native_arch() -> str:
    """The host's architecture in libseccomp's naming (x86_64, aarch64...)."""
    m = os.uname().machine    # what platform.machine() reads, without importing platform
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)
