"""Finding 7 of issue 18: what a killed program's containers leave (empty
pycontain-* cgroups, containers/<id> directories of disk writable layers)
is swept by the next start; killed image writers' tmp by the next writer."""
import json
import os
import subprocess
import sys
import time

from pycontain import state

from .conftest import pycontain, start_cli, wait_for
from .leaks import cgroup_dirs_of, leftovers

PROGRAM = """
import sys, pycontain
c = pycontain.Container(sys.argv[1], ['sh', '-c', 'echo up; sleep 60'], cgroup=True, memory='64m',
                        pids_limit=50, cpus=0.5, writable_layer='disk')
c.start(stdout=pycontain.PIPE)
print(c.id, flush=True)
c.stdout.readline()
print('up', flush=True)
c.wait()
"""


def test_a_killed_programs_cgroups_and_disk_layer_are_swept_by_the_next_start(root, image_ref):
    p = subprocess.Popen([sys.executable, "-c", PROGRAM, image_ref], stdout=subprocess.PIPE, text=True)
    try:
        cid = p.stdout.readline().strip()
        assert p.stdout.readline() == "up\n"
    finally:
        p.kill()
        p.wait()
    assert cgroup_dirs_of(cid), "the killed program's container had no cgroup: nothing tested"
    assert (root / "containers" / cid).is_dir()
    r = subprocess.run([sys.executable, "-c", "import sys, pycontain; "
                        "pycontain.Container(sys.argv[1], ['true'], cgroup=True, memory='64m').run()", image_ref],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert cgroup_dirs_of(cid) == []
    assert leftovers(root, cgroup_prefix=cid) == {}


def test_killed_import_tmp_goes_with_the_next_writer(root, image_ref, rootfs_tar):
    tmp = root / "images" / "tmp"
    os.mkdir(tmp / "layer-killed")      # what a killed import leaves (its pid gone with it)
    (tmp / "blob-killed").write_bytes(b"x" * 1000)
    r = pycontain("import", str(rootfs_tar), "local/again:1", root=root)
    assert r.returncode == 0, r.stderr
    assert os.listdir(tmp) == []


def test_system_df_and_prune_see_a_killed_programs_leftovers(root, image_ref):
    p = subprocess.Popen([sys.executable, "-c", PROGRAM, image_ref], stdout=subprocess.PIPE, text=True)
    try:
        cid = p.stdout.readline().strip()
        assert p.stdout.readline() == "up\n"
    finally:
        p.kill()
        p.wait()
    with open(root / "containers" / cid / "upper" / "written", "wb") as f:   # its layer holds 3 MB
        f.write(os.urandom(3 << 20))
    r = pycontain("system", "df", "--format", "json", root=root)
    assert r.returncode == 0, r.stderr
    usage = json.loads(r.stdout)["Containers"]
    assert usage["reclaimable"] >= 3 << 20, usage
    r = pycontain("system", "prune", "-f", root=root)
    assert r.returncode == 0, r.stderr
    assert leftovers(root, cgroup_prefix=cid) == {}
    r = pycontain("rmi", image_ref, root=root)    # its mark went with it
    assert r.returncode == 0, r.stderr


def test_run_rm_killed_before_its_container_started_leaves_nothing_listed(root, image_ref):
    """Killed between writing the record and starting the container: the
    record says who was to start it, so it is a lost --rm container."""
    hit = 0
    for _ in range(5):
        p = start_cli("run", "--rm", image_ref, "sleep", "5", root=root)
        st = None
        while p.poll() is None:
            try:
                st = st or state.Store(root)
                recs = st.list()
            except Exception:   # the first CLI makes the database
                recs = []
            if recs:
                if recs[0].state == "created":
                    hit += 1
                break
            time.sleep(0.0005)
        p.kill()
        p.wait()
        if st is not None:
            st.close()
        r = pycontain("ps", "-a", "-q", root=root)
        assert r.returncode == 0 and r.stdout == "", (r.stdout, r.stderr)
        assert leftovers(root, cgroup_prefix=None) == {}
    assert hit, "never killed in the window: nothing tested"


def test_rm_killed_while_removing_the_directory_leaves_it_listed_not_orphaned(root, image_ref):
    """rm marks the record dead, removes what the container owns, then the
    record: killed half way, the next rm finishes; never a directory and
    an image mark with no record (found by the kill lane)."""
    r = pycontain("run", "-d", image_ref, "sh", "-c",
                  "mkdir /m && cd /m && seq 1 30000 | xargs touch && echo ready && sleep 60", root=root)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert wait_for(lambda: "ready" in pycontain("logs", cid, root=root).stdout, 60)
    st = state.Store(root)
    try:
        p = start_cli("rm", "-f", cid, root=root)
        while p.poll() is None:
            rec = st.load(cid)
            if rec is None or rec.state == "dead":   # its directory is being removed now
                break
            time.sleep(0.0005)
        p.kill()
        p.wait()
    finally:
        st.close()
    assert (root / "containers" / cid).exists(), "killed too late: nothing tested"
    ids = pycontain("ps", "-aq", "--no-trunc", root=root).stdout.split()
    assert ids == [cid]                       # still listed (dead), so the user can finish it
    assert pycontain("rm", "-f", cid, root=root).returncode == 0
    assert leftovers(root, cgroup_prefix=cid) == {}
