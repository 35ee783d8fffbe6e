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

