"""`network connect` / `network disconnect` side by side with dockerd 20.10.

The reference runs with --bridge=none but makes user-defined networks all
the same. pycontain's CLI runs in a network namespace this test makes (the
subprocess inherits the calling thread's), so its bridges and veths never
touch the machine."""
import os
import re

import pytest

from pycontain import _launch
from pycontain.network import _netlink

from .conftest import first_words, pycontain

pytestmark = pytest.mark.usefixtures("clean_both")


@pytest.fixture
def netns():
    fd = _launch.new_namespace_fd(_launch.CLONE_NEWNET)
    try:
        with _netlink.inside_netns(fd):
            yield fd
    finally:
        os.close(fd)


def test_connect_and_disconnect_as_dockerd(dockerd, netns):
    env = dict(os.environ, PYCONTAIN_NETWORK="bridge")

    def both(*args):
        return dockerd.docker(*args), pycontain(*args, env=env)

    def same(*args, status=None):
        d, p = both(*args)
        assert d.returncode == p.returncode, (args, d.stderr, p.stderr)
        if status is not None:
            assert d.returncode == status, (args, d.stderr)
        if d.returncode:
            # pycontain quotes names ('nope') where dockerd does not; ids differ
            def words(text):
                return re.sub("[0-9a-f]{64}", "ID", first_words(text, 3).lower().replace("'", ""))
            assert words(d.stderr) == words(p.stderr), (args, d.stderr, p.stderr)
        return d, p

    try:
        same("network", "create", "--subnet", "10.201.0.0/24", "n1", status=0)
        same("network", "create", "--subnet", "10.202.0.0/24", "n2", status=0)
        for name, net in (("ca", "n1"), ("cb", "n2"), ("cnone", "none"), ("chost", "host"),
                          ("cjoin", "container:ca")):
            same("run", "-d", "--name", name, "--network", net, "busybox", "sleep", "300", status=0)
        same("create", "--name", "created", "--network", "n1", "busybox", "sleep", "300", status=0)
        same("run", "-d", "--name", "cdb", "--network", "n1", "--network-alias", "dbx", "busybox", "sleep", "300",
             status=0)
        same("exec", "ca", "ping", "-c", "1", "-W", "2", "dbx", status=0)
        same("run", "-d", "--network", "bridge", "--network-alias", "x", "busybox", "true", status=125)

        same("network", "connect", "--alias", "bee", "n1", "cb", status=0)
        for who in ("bee", "cb"):
            same("exec", "ca", "ping", "-c", "1", "-W", "2", who, status=0)
        same("exec", "cb", "ping", "-c", "1", "-W", "2", "ca", status=0)
        d, p = both("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "cb")
        assert d.stdout == p.stdout == "n1 n2 \n", (d.stdout, p.stdout)
        same("network", "connect", "--ip", "10.202.0.77", "n2", "created", status=0)
        d, p = both("inspect", "-f", "{{(index .NetworkSettings.Networks \"n2\").IPAMConfig.IPv4Address}}", "created")
        assert d.stdout == p.stdout == "10.202.0.77\n"

        # refusals: status 1 and docker's words
        for argv in (("n1", "cb"), ("nope", "cb"), ("n1", "nosuch"), ("n1", "cnone"), ("n1", "chost"),
                     ("n1", "cjoin"), ("none", "cb"), ("host", "cb"), ("--ip", "10.201.0.300", "n1", "ca"),
                     ("--ip", "10.209.0.3", "n2", "ca")):
            same("network", "connect", *argv, status=1)

        same("network", "disconnect", "n1", "cb", status=0)
        same("exec", "ca", "ping", "-c", "1", "-W", "1", "bee", status=1)
        for argv in (("n1", "cb"), ("nope", "cb"), ("n1", "nosuch"), ("n1", "cnone")):
            same("network", "disconnect", *argv, status=1)
        same("network", "disconnect", "n2", "created", status=0)
    finally:
        for c in ("cjoin", "ca", "cb", "cnone", "chost", "created", "cdb"):
            both("rm", "-f", c)
        both("network", "rm", "n1", "n2")
