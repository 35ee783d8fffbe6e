"""Rootless: the same containers started by a user who is not root
(tests/nobody.py: a forked child of the test process that became nobody)."""
import pytest

from nobody import NOBODY, NobodysCopy, as_nobody


@pytest.fixture(scope="module")
def user_rootfs(busybox, workdir):
    """A copy of the busybox rootfs owned by nobody, and a store root of nobody's."""
    copy = NobodysCopy(busybox, workdir / "rootless")
    yield copy.rootfs, copy.store
    copy.remove()


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
