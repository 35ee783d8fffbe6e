"""Helpers shared by the security tests."""
from pycontain import Container


def run(rootfs, *command, **kwargs):
    """Runs a command in a container with the given settings; returns the result (text)."""
    return Container(rootfs=rootfs, command=list(command), **kwargs).run(capture_output=True, text=True, timeout=60)


def probe(rootfs, what, *args, **kwargs) -> str:
    """What the probe reported: "OK" or "ERR <errno>"."""
    r = run(rootfs, "/t/probe", what, *map(str, args), **kwargs)
    assert r.returncode in (0, 1), f"probe {what} crashed: {r.returncode} {r.stdout!r} {r.stderr!r}"
    return r.stdout.strip()


NOBODY = 65534
PR_SET_DUMPABLE = 4


def as_nobody(fn):
    """Runs fn() in a forked child that has become nobody for good, using the
    already-imported library as an unprivileged program would; returns
    {"ok": fn()} or {"error": "Type: message"} (fn's result must be JSON)."""
    import ctypes
    import json
    import os

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            # a process that changed its uid is not dumpable, which would make
            # its children's /proc files root's: a real user's processes are
            ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
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
