"""Fixtures for the resource-limit tests: the layout, and a cgroup leak check.

The same tests run on this machine (cgroup v1 / hybrid: the v1 driver) and,
marked `cgroupv2`, in the VM lane (tests/vm/run-v2.sh: a pure cgroup v2
hierarchy: the v2 driver). Tests that only make sense on one layout carry
`v1_only` / `v2_only` and are skipped with a reason elsewhere.
"""
import os

import pytest

from pycontain import cgroups

LAYOUT = cgroups.layout()
DRIVER = LAYOUT.driver

v1_only = pytest.mark.skipif(DRIVER != "v1", reason=f"needs the cgroup v1 driver (layout here: {LAYOUT.kind})")
v2_only = pytest.mark.skipif(
    DRIVER != "v2" or not {"memory", "pids", "cpu"} <= LAYOUT.v2_controllers,
    reason=f"needs a cgroup v2 hierarchy with controllers (layout here: {LAYOUT.kind}); "
           "runs in the VM lane: tests/vm/run-v2.sh")


def pycontain_cgroups() -> set:
    """Every directory named *pycontain* in every cgroup hierarchy mounted here."""
    found = set()
    mounts = {m for m, _ in LAYOUT.v1.values()}
    if LAYOUT.v2:
        mounts.add(LAYOUT.v2[0])
    for top in mounts:
        for dirpath, dirnames, _ in os.walk(top):
            for d in dirnames:
                if "pycontain" in d:
                    found.add(os.path.join(dirpath, d))
    return found


def _foreign_names() -> set:
    """Names of cgroups other test sessions on this machine made: on v1 only the
    memory hierarchy (where every session has a cgroup of its own) tells them apart."""
    if DRIVER != "v1" or "memory" not in LAYOUT.v1:
        return set()
    own = cgroups.hierarchy_path(LAYOUT.v1["memory"], cgroups.own_cgroups().get("memory", "/"))
    return {os.path.basename(p) for p in pycontain_cgroups()
            if p.startswith(LAYOUT.v1["memory"][0]) and not p.startswith(own + "/")}


class CgroupLeakCheck:
    def __init__(self):
        self.before = pycontain_cgroups()

    def leaked(self) -> list:
        new = pycontain_cgroups() - self.before
        foreign = _foreign_names()
        return sorted(p for p in new if os.path.basename(p) not in foreign)

    def assert_clean(self):
        leaked = self.leaked()
        assert not leaked, f"cgroups leaked: {leaked}"


@pytest.fixture
def cgroup_leakcheck(leakcheck):
    """Also checks mounts, processes, fds and container dirs (the `leakcheck` fixture)."""
    check = CgroupLeakCheck()
    yield check
    check.assert_clean()


def read(path):
    with open(path) as f:
        return f.read().strip()
