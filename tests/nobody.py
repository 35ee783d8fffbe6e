"""Running the library as an unprivileged user, from the root test process.

Each call forks; the child becomes nobody (65534) for good and uses the
already-imported library, as an unprivileged program would (the interpreter
lives under /root, which nobody could not exec again)."""
import ctypes
import ctypes.util  # noqa: F401  (the library imports it late; nobody cannot read it then)
import importlib
import json
import os
import pkgutil
import shutil
import subprocess

import pycontain

# Every module of the library, imported now: the library imports some late,
# and nobody may not be able to read the checkout (CI's may sit in a 0700
# directory) or the interpreter's own modules under /root.
for _mod in pkgutil.walk_packages(pycontain.__path__, "pycontain."):
    if not _mod.name.endswith("__main__"):
        importlib.import_module(_mod.name)
# ... and the files it reads once per process: the default seccomp profile,
# the static programs (kept as sealed memfd copies)
pycontain.security.seccomp.default_profile()
pycontain._launch.seal_programs()

NOBODY = 65534
PR_SET_DUMPABLE = 4
_libc = ctypes.CDLL(None)


def as_nobody(fn, subids=None, cgroup=None):
    """Runs fn() in a forked child that has become nobody; returns {"ok": fn()}
    or {"error": "Type: message"} (fn's result must be JSON).
    subids=(tmpdir, start, count): nobody gets that subordinate id range,
    through /etc/subuid and /etc/subgid files seen only by the child (see
    _private_subids); the host's /etc is not touched. cgroup: a v2 cgroup
    directory the child moves into first, while it is still root (a user's
    session starts in its cgroup the same way)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            if subids is not None:
                _private_subids(*subids)
            if cgroup is not None:
                with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                    f.write("0")
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            # a process that changed its uid is not dumpable, which would make
            # its children's /proc files root's: a real user's processes are
            _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
            out = {"ok": fn()}
        except BaseException as e:  # report, never fall back into pytest
            out = {"error": f"{type(e).__name__}: {e}"}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE, MS_RDONLY = 0x4000, 1 << 18, 1


def _private_subids(tmpdir, start, count):
    """In a mount namespace of this process's own, /etc becomes a read-only
    overlay of the real /etc under a directory with subuid and subgid files
    giving nobody ids start..start+count-1. newuidmap (setuid root, run by
    the library) reads them there."""
    libc = ctypes.CDLL(None, use_errno=True)
    extra = os.path.join(tmpdir, "etc-subids")
    os.makedirs(extra, exist_ok=True)
    for name in ("subuid", "subgid"):
        with open(os.path.join(extra, name), "w") as f:
            f.write(f"{NOBODY}:{start}:{count}\n")
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    if libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
    if libc.mount(b"overlay", b"/etc", b"overlay", MS_RDONLY, f"lowerdir={extra}:/etc".encode()) != 0:
        raise OSError(ctypes.get_errno(), "overlay on /etc")


class NobodysCopy:
    """A copy of a rootfs owned by nobody (root inside a rootless container)
    and a store root of nobody's, under base; remove() deletes both."""

    def __init__(self, rootfs, base):
        self.base = base
        base.mkdir()
        os.chmod(base.parent, 0o755)
        os.chmod(base, 0o755)
        self.rootfs = base / "rootfs"
        subprocess.run(["cp", "-a", str(rootfs), str(self.rootfs)], check=True)
        subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(self.rootfs)], check=True)
        self.store = base / "store"
        self.store.mkdir()
        os.chown(self.store, NOBODY, NOBODY)

    def remove(self):
        shutil.rmtree(self.base, ignore_errors=True)
