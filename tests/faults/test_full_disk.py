"""Finding 4 of issue 18: a store on a small filesystem that fills. A
container that logs keeps running (its monitor drops lines, counts them,
says so in the log and the record, and resumes when space returns);
read-only commands answer at 100% full; writing commands fail with one
line, leaving nothing half-written."""
import json
import os
import subprocess
import time

import pytest

from .conftest import one_line_error, pycontain, wait_for


@pytest.fixture
def small_root(tmp_path, monkeypatch, rootfs_tar):
    """A store on a 24 MiB tmpfs, a busybox image in it; filler() fills it."""
    r = tmp_path / "small"
    r.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", str(r)], check=True)
    monkeypatch.setenv("PYCONTAIN_ROOT", str(r))
    try:
        assert pycontain("import", str(rootfs_tar), "local/small:1", root=r).returncode == 0
        yield r
    finally:
        if (r / "filler").exists():    # a test that failed on the full disk: rm needs room
            os.unlink(r / "filler")
        ids = [n for n in os.listdir(r / "containers") if len(n) == 64] if (r / "containers").is_dir() else []
        if ids:
            pycontain("rm", "-f", *ids, root=r)
        from pycontain import state
        state.close_stores()
        subprocess.run(["umount", "-l", str(r)], check=True)


def fill(root):
    """Fills the filesystem to the last byte; returns the filler's path."""
    path = root / "filler"
    with open(path, "wb", buffering=0) as f:   # unbuffered: close() has nothing left to flush on a full disk
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
        try:
            while True:
                os.write(f.fileno(), b"\0" * 512)
        except OSError:
            pass
    assert os.statvfs(root).f_bavail == 0
    return path


def test_full_disk_never_stops_a_logging_container(small_root):
    root = small_root
    r = pycontain("run", "-d", "--name", "talker", "local/small:1",
                  "sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.01; done", root=root)
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: "line 5" in pycontain("logs", "talker", root=root).stdout, 10)
    filler = fill(root)
    time.sleep(1.5)    # the container writes ~100 lines into a full disk
    # read-only commands answer
    for verb in (["ps"], ["images"], ["inspect", "talker"], ["logs", "--tail", "2", "talker"], ["system", "df"]):
        r = pycontain(*verb, root=root)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (verb, r.stderr)
    state = json.loads(pycontain("inspect", "talker", root=root).stdout)[0]["State"]
    assert state["Running"], state
    # writing commands: one line, nothing half-made
    for verb in (["create", "local/small:1", "true"], ["import", "/dev/null", "local/empty:1"],
                 ["commit", "talker", "local/committed:1"], ["tag", "local/small:1", "local/other:1"]):
        r = pycontain(*verb, root=root)
        if r.returncode != 0:
            one_line_error(r, "no space left on device while")
    os.unlink(filler)
    assert wait_for(lambda: "log lines dropped: no space left on device"
                    in pycontain("logs", "talker", root=root).stderr, 10)
    last = pycontain("logs", "--tail", "1", "talker", root=root).stdout
    time.sleep(0.3)
    assert pycontain("logs", "--tail", "1", "talker", root=root).stdout != last   # logging resumed
    assert json.loads(pycontain("inspect", "talker", root=root).stdout)[0]["State"]["Running"]
    assert pycontain("stop", "-t", "1", "talker", root=root).returncode == 0
    state = json.loads(pycontain("inspect", "talker", root=root).stdout)[0]["State"]
    assert "log lines dropped" in state["Error"], state


def test_writes_on_a_full_disk_fail_in_one_line_and_leave_nothing(small_root, registry, tmp_path):
    root = small_root
    ref = f"{registry.host}/faults/full:1"
    assert pycontain("tag", "local/small:1", ref, root=root).returncode == 0
    assert pycontain("push", ref, root=root).returncode == 0
    assert pycontain("rmi", ref, root=root).returncode == 0
    big = tmp_path / "big.tar"
    import tarfile
    with tarfile.open(big, "w") as t:    # larger than what is left
        data = tmp_path / "data"
        data.write_bytes(os.urandom(4 << 20))
        t.add(data, arcname="data")
    r = pycontain("create", "--name", "keeper", "local/small:1", "sh", "-c", "echo hi", root=root)
    assert r.returncode == 0, r.stderr
    filler = fill(root)
    assert pycontain("rmi", "local/small:1", root=root).returncode != 0   # held; and no traceback either way
    for verb in (["import", str(big), "local/big:1"], ["pull", ref],
                 ["commit", "keeper", "local/c:1"], ["run", "--rm", "local/small:1", "echo", "hi"],
                 ["load", "-i", str(big)], ["volume", "create", "v1"], ["tag", "local/small:1", "local/t:1"]):
        r = pycontain(*verb, root=root)
        assert "Traceback" not in r.stderr, (verb, r.stderr)
        if r.returncode != 0:   # progress lines (pull's) may come first: then one error line
            lines = r.stderr.strip().splitlines()
            assert lines[-1].startswith("pycontain: ") and len(lines[-1]) < 300, (verb, r.stderr)
            assert not any(line.startswith("pycontain: ") for line in lines[:-1]), (verb, r.stderr)
    os.unlink(filler)
    r = pycontain("system", "check", root=root)
    assert r.returncode == 0, r.stdout
    assert pycontain("run", "--rm", "local/small:1", "true", root=root).returncode == 0
    r = pycontain("import", str(big), "local/big:1", root=root)   # the next writer clears what the failed ones left
    assert r.returncode == 0, r.stderr
    assert os.listdir(root / "images" / "tmp") == []
