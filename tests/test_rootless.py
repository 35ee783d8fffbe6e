"""Rootless: the same containers started by a user who is not root.

The test process is root; each test forks, drops to nobody (65534) for good,
and uses the already-imported library from there, as an unprivileged program
would. (The interpreter lives under /root, which nobody cannot exec.)
"""
import json
import os
import shutil
import subprocess

import cffi
import pytest

NOBODY = 65534
_ffi = cffi.FFI()
_ffi.cdef("int prctl(int, unsigned long, unsigned long, unsigned long, unsigned long);")
_libc = _ffi.dlopen(None)
PR_SET_DUMPABLE = 4


def as_nobody(fn):
    """Runs fn() in a forked child that is nobody; returns what it returned (JSON)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            # A process that changed its uid is not dumpable, which would make
            # its children's /proc files root's: a real user's processes are.
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


@pytest.fixture(scope="module")
def user_rootfs(busybox, workdir):
    """A copy of the busybox rootfs owned by nobody, and a store root of nobody's."""
    base = workdir / "rootless"
    base.mkdir()
    os.chmod(workdir, 0o755)
    os.chmod(base, 0o755)
    rootfs = base / "busybox"
    subprocess.run(["cp", "-a", str(busybox), str(rootfs)], check=True)
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(rootfs)], check=True)
    store = base / "store"
    store.mkdir()
    os.chown(store, NOBODY, NOBODY)
    yield rootfs, store
    shutil.rmtree(base, ignore_errors=True)


def run_as_nobody(rootfs, store, script, **kw):  # noqa: D103
    def fn():
        from pycontain import Container
        r = Container(rootfs=str(rootfs), command=["sh", "-c", script], root=str(store), **kw).run(
            capture_output=True, text=True)
        return [r.returncode, r.stdout, r.stderr]

    return as_nobody(fn)


def test_rootless_container_runs_as_root_inside(user_rootfs):
    rootfs, store = user_rootfs
    out = run_as_nobody(rootfs, store, "id -u; echo $$; cat /proc/self/uid_map; "
                                       "echo hi > /new && stat -c '%u %s' /new; hostname", hostname="box2")
    assert "ok" in out, out
    code, stdout, _ = out["ok"]
    lines = stdout.splitlines()
    assert code == 0
    assert lines[0] == "0" and lines[1] == "1"
    assert lines[2].split() == ["0", str(NOBODY), "1"]  # root inside is nobody outside
    assert lines[3] == "0 3"
    assert lines[4] == "box2"
    assert not (rootfs / "new").exists()  # the rootfs itself is untouched


def test_rootless_container_is_confined(user_rootfs):
    rootfs, store = user_rootfs
    out = run_as_nobody(rootfs, store,
                        "mount -t tmpfs none /mnt 2>/dev/null && echo MOUNTED; "
                        "cat /proc/self/status | grep -E 'CapEff|NoNewPrivs'; "
                        "echo x > /proc/sys/kernel/hostname 2>/dev/null && echo WROTE; "
                        "ls /proc | grep -cE '^[0-9]+$'")
    assert "ok" in out, out
    stdout = out["ok"][1]
    assert "MOUNTED" not in stdout and "WROTE" not in stdout
    assert "NoNewPrivs:\t1" in stdout
    assert "CapEff:\t00000000a80425fb" in stdout


def test_rootless_unmapped_user_is_a_clear_error(user_rootfs):
    rootfs, store = user_rootfs
    out = run_as_nobody(rootfs, store, "true", user="1000")
    assert "error" in out
    assert out["error"].startswith("ConfigError: user 1000:1000 is not mapped")
