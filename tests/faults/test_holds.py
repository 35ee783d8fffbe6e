"""Findings 1 and 2 of issue 18: the marks containers put on their image.

A mark whose holder was killed is recognised and dropped (pid and start
time, as container records tell their monitor), rm drops every mark of its
container, and rmi -f never deletes the image a running container uses."""
import os
import signal
import subprocess
import sys

from pycontain import containers, image, leftovers

from .conftest import one_line_error, pycontain, start_cli, wait_for
from .leaks import cgroup_dirs_of


def _running_id(root):
    """The id of the one running container of the store, once it runs."""
    def find():
        r = pycontain("ps", "-q", "--no-trunc", root=root)
        return r.stdout.split()[0] if r.stdout.split() else None
    cid = wait_for(find, 20)
    assert cid, "the container never ran"
    return cid


def test_killed_run_rm_client_leaves_no_mark(root, image_ref):
    client = start_cli("run", "--rm", image_ref, "sleep", "60", root=root)
    try:
        _running_id(root)
    finally:
        client.send_signal(signal.SIGKILL)
        client.wait()
    r = pycontain("ps", "-a", "-q", root=root)   # the lost --rm container goes
    assert r.returncode == 0 and r.stdout == "", r
    r = pycontain("rmi", image_ref, root=root)
    assert r.returncode == 0, r.stderr
    assert image.list(root=root) == []


def test_killed_python_program_leaves_no_mark(root, image_ref):
    prog = ("import pycontain; pycontain.Container(%r, ['sh', '-c', 'echo up; sleep 60'], "
            "cgroup=True, memory='64m', pids_limit=50, writable_layer='disk').run(stdout=None)" % image_ref)
    p = subprocess.Popen([sys.executable, "-c", prog], stdout=subprocess.PIPE, env=dict(os.environ))
    try:
        assert p.stdout.readline() == b"up\n"
    finally:
        p.kill()
        p.wait()
    out = image.remove(image_ref, root=root)
    assert out[-1][0] == "Deleted", out
    assert image.list(root=root) == []
    # what else the killed program left (its cgroups, its disk layer) is
    # the next start's to sweep (test_leftovers.py): swept here, so that
    # the session's cgroup tree is as this test found it
    swept = leftovers.sweep(root)
    assert len(swept) == 1 and cgroup_dirs_of(swept[0]) == [], swept


def test_killed_monitor_then_rm_leaves_no_mark(root, image_ref):
    r = pycontain("run", "-d", image_ref, "sleep", "60", root=root)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    rec = containers.get(cid).record
    os.kill(rec.monitor_pid, signal.SIGKILL)
    assert wait_for(lambda: containers.get(cid).record.state == "exited", 10)
    r = pycontain("rm", cid, root=root)
    assert r.returncode == 0, r.stderr
    r = pycontain("rmi", image_ref, root=root)
    assert r.returncode == 0, r.stderr


def test_rmi_force_never_deletes_a_running_containers_image(root, image_ref):
    r = pycontain("run", "-d", image_ref, "sleep", "60", root=root)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    image_id = image.get(image_ref, root=root).id
    r = pycontain("rmi", "-f", image_id[7:19], root=root)
    one_line_error(r, "image is being used by running container", cid[:12])
    r = pycontain("exec", cid, "cat", "/etc/passwd", root=root)
    assert r.returncode == 0 and "root" in r.stdout, r
    # by name: the name goes, the image stays (docker's <none>)
    r = pycontain("rmi", "-f", image_ref, root=root)
    assert r.returncode == 0 and "Untagged" in r.stdout and "Deleted" not in r.stdout, r
    r = pycontain("exec", cid, "cat", "/etc/passwd", root=root)
    assert r.returncode == 0, r
    assert pycontain("rm", "-f", cid, root=root).returncode == 0
    # with its container gone, the image (now <none>) goes with rmi by id
    r = pycontain("rmi", image_id[7:19], root=root)
    assert r.returncode == 0 and "Deleted" in r.stdout, r
