"""Cgroups for rootless containers: only inside a cgroup delegated to the user.

The test (root) plays systemd: it makes a cgroup subtree under its own cgroup
and gives it to nobody the way Delegate= does (the directory, cgroup.procs,
cgroup.subtree_control, cgroup.threads), puts a forked child in a leaf of it
(tests/nobody.py), and that child, now nobody, runs rootless containers.
The v2 tests run in the VM lane (tests/vm/run-v2.sh); the v1 refusal here."""
import os

import termios  # noqa: F401  (the foreground monitor imports it late; nobody cannot read the stdlib here)

import pytest

import pycontain.containers  # noqa: F401  (likewise: sqlite3)
from nobody import NOBODY, NobodysCopy, as_nobody
from pycontain import cgroups

from .conftest import LAYOUT, read, v1_only, v2_only

# busybox sh stops at the first fork the pids limit refuses: the loop runs in a
# subshell, and the count is read back with builtins only (no fork is left).
FORK_BOMB = ("(i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); echo $i > /tmp/n; done) 2>/dev/null; "
             "read n < /tmp/n; echo forks=$n")


@pytest.fixture(scope="module")
def nobody_busybox(busybox, workdir):
    copy = NobodysCopy(busybox, workdir / "rootless-cgroups")
    yield copy
    copy.remove()


@pytest.fixture
def cgtree():
    """make(relative path, delegate=, subtree=): a cgroup below the test's own,
    handed to nobody as systemd delegates when delegate=True, with `subtree`
    enabled in its cgroup.subtree_control; all removed (children first) after."""
    own = cgroups.hierarchy_path(LAYOUT.v2, cgroups.own_cgroups().get("", "/"))
    base = f"{own}/rltest-{os.getpid()}"
    made = []

    def make(rel, delegate=False, subtree=()):
        path = f"{base}/{rel}" if rel else base
        os.makedirs(path)
        made.extend(p for p in _new_dirs(base, path) if p not in made)
        if delegate:
            for f in ("", "/cgroup.procs", "/cgroup.subtree_control", "/cgroup.threads"):
                os.chown(path + f, NOBODY, NOBODY)
        for ctl in subtree:
            with open(path + "/cgroup.subtree_control", "w") as f:
                f.write(f"+{ctl}")
        return path

    yield make
    for path in sorted(made, key=len, reverse=True):
        os.rmdir(path)


def _new_dirs(base, path):
    out, d = [], path
    while len(d) >= len(base):
        out.append(d)
        d = os.path.dirname(d)
    return reversed(out)


def _subdirs(path):
    return sorted(e.name for e in os.scandir(path) if e.is_dir())


def _run(copy, script, **kw):
    from pycontain import Container
    r = Container(rootfs=str(copy.rootfs), command=["sh", "-c", script], root=str(copy.store), **kw).run(
        capture_output=True, text=True, timeout=120)
    return [r.returncode, r.stdout, r.stderr]


def _run_managed(copy, script):
    """A managed container in the foreground (`pycontain run`'s path): [status, its log]."""
    from pycontain import containers
    c = containers.create(rootfs=str(copy.rootfs), command=["sh", "-c", script], root=str(copy.store))
    try:
        return [c.run_attached(), c.logs().decode()]
    finally:
        c.remove(force=True)


@pytest.mark.cgroupv2
@v2_only
def test_rootless_limits_in_a_delegated_cgroup(nobody_busybox, cgtree, cgroup_leakcheck):
    cgtree("", subtree=("memory", "pids"))          # what the machine's owner hands down
    delegated = cgtree("user", delegate=True)
    leaf = cgtree("user/session", delegate=True)    # where the user's own process lives

    def fn():
        from pycontain import PIPE, Container, system
        info = system.describe()["rootless_cgroups"]
        script = ("read mem < /sys/fs/cgroup/memory.max; read pids < /sys/fs/cgroup/pids.max; "
                  "read cg < /proc/self/cgroup; echo $mem $pids $cg; " + FORK_BOMB)
        with Container(rootfs=str(nobody_busybox.rootfs), command=["sh", "-c", script],
                       root=str(nobody_busybox.store), memory="64m", pids_limit=20) as c:
            c.start(stdout=PIPE, stderr=PIPE)
            path = c._cgroup.path
            made = _subdirs(delegated)
            out, err = c.communicate(timeout=120)
        gone = not os.path.exists(path)
        plain = _run(nobody_busybox, "read cg < /proc/self/cgroup; echo $cg; ls /sys/fs/cgroup | grep -c '^pids.max$'",
                     cgroup=True, cgroup_parent="group")
        managed = _run_managed(nobody_busybox, "read cg < /proc/self/cgroup; echo $cg")
        try:
            _run(nobody_busybox, "true", memory="64m", cgroup_parent="/elsewhere")
            outside = "ran"
        except Exception as e:
            outside = f"{type(e).__name__}: {e}"
        return [c.returncode, out.decode(), err.decode(), path, made, gone, _subdirs(delegated), plain, info,
                managed, outside]

    out = as_nobody(fn, cgroup=leaf)
    assert "ok" in out, out
    code, stdout, stderr, path, made, gone, after, plain, info, managed, outside = out["ok"]
    assert info.startswith(f"yes, in {delegated} (controllers: ") and " memory " in info   # pycontain info
    assert code == 0, (stdout, stderr)
    # beside the caller's leaf, in the delegated cgroup (no internal processes)
    assert os.path.dirname(path) == delegated and made == sorted(["session", os.path.basename(path)])
    first, forks = stdout.splitlines()
    assert first == f"{64 << 20} 20 0::/"       # its own cgroup is its root (cgroup namespace)
    assert int(forks.split("=")[1]) < 20        # the fork bomb stopped at pids.max
    assert gone and after == ["session"]        # removed on exit
    # cgroup=True (and a cgroup_parent, made below the delegated cgroup): one of its own
    assert plain[0] == 0 and plain[1].split() == ["0::/", "1"], plain
    assert managed == [0, "0::/\n"]          # managed containers get one too
    assert outside.startswith(f"CgroupNotDelegated: cgroup_parent /elsewhere is outside the cgroup delegated to "
                              f"uid {NOBODY} ({delegated})"), outside
    assert "pids" in read(delegated + "/cgroup.subtree_control").split()


NOT_USABLE = {
    # the tree stays root's: nothing was delegated
    "not_delegated": (dict(delegate=False), dict(delegate=False), (),
                      "CgroupNotDelegated: rootless containers get a cgroup only inside one delegated to the user"),
    # delegated, but its parent does not hand it the memory controller
    "controller_missing": (dict(delegate=True), dict(delegate=True), ("pids",),
                           "CgroupNotDelegated: the memory controller is not delegated to uid 65534"),
    # the user's process sits in the delegated cgroup itself
    "process_in_delegated": (dict(delegate=True), None, (),
                             "CgroupNotDelegated: the cgroup delegated to uid 65534"),
}


@pytest.mark.cgroupv2
@v2_only
@pytest.mark.parametrize("case", list(NOT_USABLE))
def test_rootless_without_a_usable_delegation_is_a_clear_error(case, nobody_busybox, cgtree, cgroup_leakcheck):
    top_kw, leaf_kw, parent_subtree, expected = NOT_USABLE[case]
    cgtree("", subtree=parent_subtree)
    top = cgtree("user", **top_kw)
    where = cgtree("user/session", **leaf_kw) if leaf_kw is not None else top

    out = as_nobody(lambda: _run(nobody_busybox, "true", memory="64m", pids_limit=20), cgroup=where)
    assert out.get("error", "").startswith(expected), out
    if case != "controller_missing":    # pycontain info tells the same
        from pycontain import system
        info = as_nobody(lambda: system.describe()["rootless_cgroups"], cgroup=where)["ok"]
        assert info == "no (" + out["error"].split(": ", 1)[1] + ")"
    assert "\n" not in out["error"]
    assert _subdirs(top) == ([] if where == top else ["session"])     # nothing left behind
    if case == "not_delegated":     # no limit asked for: it runs, without a cgroup (podman's way)
        out = as_nobody(lambda: _run(nobody_busybox, "read cg < /proc/self/cgroup; echo $cg", cgroup=True),
                        cgroup=where)
        assert out["ok"][0] == 0 and out["ok"][1].strip().endswith("/user/session"), out


@v1_only
def test_rootless_limits_on_cgroup_v1_are_a_clear_error(nobody_busybox, cgroup_leakcheck):
    out = as_nobody(lambda: _run(nobody_busybox, "true", memory="64m", pids_limit=20))
    assert out == {"error": "CgroupNotDelegated: rootless containers cannot use cgroup limits on cgroup v1: the "
                            "kernel cannot hand a v1 cgroup to a user safely (asked for: memory, pids_limit); drop "
                            "them, or run on a cgroup v2 machine with a cgroup delegated to you (systemd: "
                            "Delegate=yes)"}
    from pycontain import system
    assert as_nobody(lambda: system.describe()["rootless_cgroups"])["ok"].startswith(
        "no (rootless containers get cgroups only on cgroup v2")
    out = as_nobody(lambda: _run(nobody_busybox, "true", cgroup_parent="mine"))
    assert out["error"].startswith("CgroupNotDelegated: rootless containers cannot use cgroup limits on cgroup v1")
    # cgroup=True without a limit, and managed containers (which ask for it): no cgroup, no complaint
    out = as_nobody(lambda: _run(nobody_busybox, "echo ran", cgroup=True))
    assert out == {"ok": [0, "ran\n", ""]}
    out = as_nobody(lambda: _run_managed(nobody_busybox, "echo ran"))
    assert out == {"ok": [0, "ran\n"]}


def test_limits_asked_names_what_was_set():
    lim = cgroups.Limits.from_docker(memory="64m", cpus=0.5, cgroup_parent="x")
    assert lim.asked() == ["memory", "cpu_quota", "cpu_period", "cgroup_parent"]
    assert cgroups.Limits().asked() == []

