"""kill -9 at random points (seeded; the seed is printed) of every
operation that writes: after each kill and one further operation, the store
is consistent (system check; every image runs), no mark is held by a dead
owner, and nothing of the killed operation is left on disk, in the mount
table, in the cgroup tree or in the process table.

Each operation takes PYCONTAIN_FAULT_ROUNDS kills (default 3, for CI); the
lane prints "kills: N, recovered: N, left behind: N" per operation."""
import json
import os
import random
import signal
import subprocess
import sys
import tarfile
import time

import pytest

from pycontain import containers

from .conftest import ROUNDS, pycontain, start_cli
from .leaks import TALLY, cgroup_dirs_of, leftovers


def _record(op, left):
    t = TALLY.setdefault(op, [0, 0, []])
    t[0] += 1
    if left:
        t[2].append(left)
    else:
        t[1] += 1


def _consistent(root) -> dict:
    """Problems of the store as a whole: system check, and every image runs."""
    out = {}
    r = pycontain("system", "check", root=root)
    if r.returncode != 0 or "Traceback" in r.stderr:
        out["system check"] = (r.stdout + r.stderr)[-500:]
    for image_id in pycontain("images", "-q", root=root).stdout.split():
        r = pycontain("run", "--rm", image_id, "true", root=root)
        if r.returncode != 0:
            out[f"image {image_id}"] = r.stderr[-300:]
    return out


def _check(root, ids=(), keep=()) -> dict:
    """What is left after a kill and one further operation (empty: nothing)."""
    left = leftovers(root, cgroup_prefix=None)
    if "container dirs" in left:
        left["container dirs"] = [d for d in left["container dirs"] if d not in keep]
        if not left["container dirs"]:
            del left["container dirs"]
    if "processes" in left and keep:
        monitors = {containers.get(k).record.monitor_pid for k in keep}
        left["processes"] = [p for p in left["processes"] if p not in monitors]
        if not left["processes"]:
            del left["processes"]
    for cid in ids:
        if cid not in keep and cgroup_dirs_of(cid):
            left.setdefault("cgroups", []).extend(cgroup_dirs_of(cid))
    left.update(_consistent(root))
    return left


def _kill_after(proc, delay):
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for f in (proc.stdout, proc.stderr):
        if f is not None:
            f.close()


def _timed(fn):
    t = time.monotonic()
    fn()
    return time.monotonic() - t


@pytest.fixture
def second_image(root, rootfs_tar, tmp_path, seed):
    """A tar of busybox plus 8 MiB of random data: writes take long enough to be killed half way."""
    tar = tmp_path / "second.tar"
    big = tmp_path / "big"
    big.write_bytes(random.Random(seed).randbytes(8 << 20))
    with tarfile.open(rootfs_tar) as src, tarfile.open(tar, "w") as dst:
        for m in src.getmembers():
            dst.addfile(m, src.extractfile(m) if m.isfile() else None)
        dst.add(big, arcname="big")
    return tar


def _rounds(seed, op):
    rng = random.Random(f"{seed}-{op}")
    return rng, range(ROUNDS)


def test_kill_import(root, image_ref, second_image, seed):
    rng, rounds = _rounds(seed, "import")
    took = _timed(lambda: pycontain("import", str(second_image), "local/imp:1", root=root))
    pycontain("rmi", "local/imp:1", root=root)
    for _ in rounds:
        _kill_after(start_cli("import", str(second_image), "local/imp:1", root=root), rng.uniform(0, took))
        r = pycontain("import", str(second_image), "local/imp:1", root=root)   # the further operation
        assert r.returncode == 0, r.stderr
        _record("import", _check(root))
        pycontain("rmi", "local/imp:1", root=root)
    _assert_tally("import")


def test_kill_load_and_save(root, image_ref, second_image, tmp_path, seed):
    rng, rounds = _rounds(seed, "load")
    assert pycontain("import", str(second_image), "local/second:1", root=root).returncode == 0
    archive = tmp_path / "second-saved.tar"
    took_save = _timed(lambda: pycontain("save", "-o", str(archive), "local/second:1", root=root))
    out = tmp_path / "out.tar"
    for _ in rounds:    # save: a partial archive never appears at -o, the next save removes the aside file
        _kill_after(start_cli("save", "-o", str(out), "local/second:1", root=root), rng.uniform(0, took_save))
        partial = out.exists() and not tarfile.is_tarfile(out)
        r = pycontain("save", "-o", str(out), "local/second:1", root=root)
        assert r.returncode == 0, r.stderr
        left = _check(root)
        asides = [n for n in os.listdir(tmp_path) if n.startswith("out.tar.")]
        if partial or asides:
            left["save output"] = asides or ["partial archive at -o"]
        _record("save", left)
        out.unlink()
    assert pycontain("rmi", "local/second:1", root=root).returncode == 0
    took = _timed(lambda: pycontain("load", "-i", str(archive), root=root))
    pycontain("rmi", "local/second:1", root=root)
    for _ in rounds:
        _kill_after(start_cli("load", "-i", str(archive), root=root), rng.uniform(0, took))
        r = pycontain("load", "-i", str(archive), root=root)
        assert r.returncode == 0, r.stderr
        _record("load", _check(root))
        pycontain("rmi", "local/second:1", root=root)
    _assert_tally("save")
    _assert_tally("load")


def test_kill_pull(root, image_ref, second_image, registry, seed):
    rng, rounds = _rounds(seed, "pull")
    ref = f"{registry.host}/faults/second:1"
    assert pycontain("import", str(second_image), ref, root=root).returncode == 0
    r = pycontain("push", ref, root=root)
    assert r.returncode == 0, r.stderr
    assert pycontain("rmi", ref, root=root).returncode == 0
    took = _timed(lambda: pycontain("pull", ref, root=root))
    for _ in rounds:
        pycontain("rmi", ref, root=root)
        _kill_after(start_cli("pull", ref, root=root), rng.uniform(0, took))
        r = pycontain("pull", ref, root=root)
        assert r.returncode == 0, r.stderr
        _record("pull", _check(root))
    _assert_tally("pull")


def test_kill_commit(root, image_ref, seed):
    rng, rounds = _rounds(seed, "commit")
    r = pycontain("run", "--name", "base", image_ref, "sh", "-c", "dd if=/dev/urandom of=/big bs=1M count=8 2>/dev/null",
                  root=root)
    assert r.returncode == 0, r.stderr
    base = containers.get("base").id
    took = _timed(lambda: pycontain("commit", "base", "local/com:1", root=root))
    pycontain("rmi", "local/com:1", root=root)
    for _ in rounds:
        _kill_after(start_cli("commit", "base", "local/com:1", root=root), rng.uniform(0, took))
        r = pycontain("commit", "base", "local/com:1", root=root)
        assert r.returncode == 0, r.stderr
        _record("commit", _check(root, keep=(base,)))
        pycontain("rmi", "local/com:1", root=root)
    assert pycontain("rm", "base", root=root).returncode == 0
    _assert_tally("commit")


def _first_id(root, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ids = pycontain("ps", "-aq", "--no-trunc", root=root).stdout.split()
        if ids:
            return ids[0]
        time.sleep(0.02)
    return None


def test_kill_run_rm_client(root, image_ref, seed):
    rng, rounds = _rounds(seed, "run --rm")
    for _ in rounds:
        p = start_cli("run", "--rm", image_ref, "sh", "-c", "echo hi; sleep 5", root=root)
        delay = rng.uniform(0, 1.2)
        end = time.monotonic() + delay
        cid = None
        while time.monotonic() < end:   # learn its id while waiting (its cgroups are named for it)
            cid = cid or (pycontain("ps", "-aq", "--no-trunc", root=root).stdout.split() or [None])[0]
            time.sleep(0.01)
        _kill_after(p, 0)
        pycontain("ps", "-a", root=root)    # the further operation: the lost --rm container goes
        _record("run --rm client", _check(root, ids=[cid] if cid else []))
    _assert_tally("run --rm client")


def test_kill_detached_monitor(root, image_ref, seed):
    rng, rounds = _rounds(seed, "monitor")
    for _ in rounds:
        r = pycontain("run", "-d", image_ref, "sh", "-c", "while true; do echo tick; sleep 0.05; done", root=root)
        assert r.returncode == 0, r.stderr
        cid = r.stdout.strip()
        time.sleep(rng.uniform(0, 0.8))
        os.kill(containers.get(cid).record.monitor_pid, signal.SIGKILL)
        r = pycontain("rm", "-f", cid, root=root)   # the further operation
        left = {} if r.returncode == 0 else {"rm -f": r.stderr}
        left.update(_check(root, ids=[cid]))
        _record("detached monitor", left)
    _assert_tally("detached monitor")


def test_kill_rm_f(root, image_ref, seed):
    rng, rounds = _rounds(seed, "rm -f")
    for _ in rounds:
        r = pycontain("run", "-d", image_ref, "sleep", "60", root=root)
        assert r.returncode == 0, r.stderr
        cid = r.stdout.strip()
        _kill_after(start_cli("rm", "-f", cid, root=root), rng.uniform(0, 0.8))
        ids = pycontain("ps", "-aq", "--no-trunc", root=root).stdout.split()
        if ids:
            r = pycontain("rm", "-f", *ids, root=root)
            left = {} if r.returncode == 0 else {"rm -f again": r.stderr}
        else:
            left = {}
        left.update(_check(root, ids=[cid]))
        _record("rm -f", left)
    _assert_tally("rm -f")


def test_kill_volume_rm(root, image_ref, seed):
    rng, rounds = _rounds(seed, "volume rm")
    for i in range(ROUNDS):
        name = f"vol{i}"
        r = pycontain("run", "--rm", "-v", f"{name}:/data", image_ref, "sh", "-c",
                      "for i in $(seq 400); do echo $i > /data/f$i; done", root=root)
        assert r.returncode == 0, r.stderr
        _kill_after(start_cli("volume", "rm", name, root=root), rng.uniform(0, 0.5))
        if name in pycontain("volume", "ls", "-q", root=root).stdout.split():   # the further operation
            assert pycontain("volume", "rm", name, root=root).returncode == 0
        _record("volume rm", _check(root))
    _assert_tally("volume rm")


LOOP = """
import sys, pycontain
while True:
    c = pycontain.Container(sys.argv[1], ['sh', '-c', 'echo x > /f'], cgroup=True, memory='64m', pids_limit=50,
                            writable_layer='disk')
    print(c.id, flush=True)
    c.run()
"""


def test_kill_container_run_loop(root, image_ref, seed):
    rng, rounds = _rounds(seed, "Container.run loop")
    for _ in rounds:
        p = subprocess.Popen([sys.executable, "-c", LOOP, image_ref], stdout=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.2, 2.0))
        p.send_signal(signal.SIGKILL)
        ids = p.stdout.read().split()
        p.wait()
        p.stdout.close()
        r = subprocess.run([sys.executable, "-c", "import sys, pycontain; "
                            "pycontain.Container(sys.argv[1], ['true'], cgroup=True).run()", image_ref],
                           capture_output=True, text=True)   # the further operation
        left = {} if r.returncode == 0 else {"next run": r.stderr[-300:]}
        left.update(_check(root, ids=ids))
        _record("Container.run loop", left)
    _assert_tally("Container.run loop")


def _assert_tally(op):
    kills, recovered, left = TALLY[op]
    assert kills == recovered, f"{op}: kills {kills}, recovered {recovered}, left behind: " + json.dumps(left)[:2000]
