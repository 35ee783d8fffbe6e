"""Networking for rootless containers: slirp4netns, a user-mode TCP/IP stack.

A user who is not root cannot make veth pairs or bridges on the host. Like
podman, a rootless container with network "bridge" (the CLI's default) or
"slirp4netns" gets its own network namespace with a tap device whose traffic
slirp4netns, an ordinary process of the user's, forwards through sockets of
its own: 10.0.2.100/24 inside, gateway 10.0.2.2, DNS 10.0.2.3.
The host's loopback is not reachable from the container unless asked for
("slirp4netns:allow_host_loopback=true", podman's option).
"""
from __future__ import annotations

import os
import select
import shutil
import subprocess

from ..errors import ConfigError, NetworkError

ADDRESS, GATEWAY, DNS = "10.0.2.100", "10.0.2.2", "10.0.2.3"
READY_TIMEOUT = 10.0


def is_slirp_mode(mode: str) -> bool:
    return mode == "slirp4netns" or mode.startswith("slirp4netns:")


def parse_mode(mode: str) -> dict:
    """slirp4netns[:allow_host_loopback=true|false] -> options."""
    opts = {"allow_host_loopback": False}
    _, _, rest = mode.partition(":")
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key != "allow_host_loopback" or value not in ("true", "false"):
            raise ConfigError(f"invalid slirp4netns option {item!r}: allow_host_loopback=true|false")
        opts[key] = value == "true"
    return opts


class Slirp:
    """One slirp4netns process serving one container's network namespace.
    It exits when stop() closes its exit pipe, or when this process dies."""

    def __init__(self, mode: str):
        self.options = parse_mode(mode)
        self.binary = shutil.which("slirp4netns")
        if not self.binary:
            raise ConfigError("rootless networking needs slirp4netns (Debian: apt-get install slirp4netns), "
                              "or use network='none'")
        self.proc = None
        self._exit_w = None

    def start(self, pid: int) -> None:
        """Attaches to the network namespace of `pid` (called while the child
        waits at its sync point, after its id maps are written)."""
        ready_r, ready_w = os.pipe()
        exit_r, exit_w = os.pipe()
        argv = [self.binary, "--configure", "--mtu=65520", f"--ready-fd={ready_w}", f"--exit-fd={exit_r}"]
        if not self.options["allow_host_loopback"]:
            argv.append("--disable-host-loopback")
        argv += [str(pid), "tap0"]
        try:
            self.proc = subprocess.Popen(argv, pass_fds=(ready_w, exit_r), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except OSError as e:
            for fd in (ready_r, ready_w, exit_r, exit_w):
                os.close(fd)
            raise NetworkError(f"cannot start slirp4netns: {e.strerror}") from None
        os.close(ready_w)
        os.close(exit_r)
        self._exit_w = exit_w
        try:
            ready, _, _ = select.select([ready_r], [], [], READY_TIMEOUT)
            ok = bool(ready) and os.read(ready_r, 1) == b"1"
        finally:
            os.close(ready_r)
        if not ok:
            os.close(self._exit_w)
            self._exit_w = None
            try:
                _, err = self.proc.communicate(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                _, err = self.proc.communicate()
            self.proc = None
            last = (err or b"").decode(errors="replace").strip().splitlines()[-1:]
            raise NetworkError(f"slirp4netns did not come up: {last[0] if last else 'no answer'}")

    def resolv_conf(self) -> str:
        return f"nameserver {DNS}\n"

    def stop(self) -> None:
        if self._exit_w is not None:
            os.close(self._exit_w)
            self._exit_w = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stderr is not None:
                self.proc.stderr.close()
            self.proc = None
