"""Running the library as an unprivileged user, from the root test process.

Each call forks; the child becomes nobody (65534) for good and uses the
already-imported library, as an unprivileged program would (the interpreter
lives under /root, which nobody could not exec again)."""
import ctypes
import ctypes.util  # noqa: F401  (the library imports it late; nobody cannot read it then)
import json
import os
import shutil
import subprocess

NOBODY = 65534
PR_SET_DUMPABLE = 4
_libc = ctypes.CDLL(None)


def as_nobody(fn, cgroup=None):
    """Runs fn() in a forked child that has become nobody; returns {"ok": fn()}
    or {"error": "Type: message"} (fn's result must be JSON). cgroup: a v2
    cgroup directory the child moves into first, while it is still root (a
    user's session starts in its cgroup the same way)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
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
