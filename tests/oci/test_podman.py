"""podman 4.3 runs pycontain-runc through conmon (`podman --runtime PATH`),
beside runc: each test's podman commands run in one private mount and network
namespace, with podman's own storage root and run root (FIELD-NOTES' flags)."""
import shutil
import subprocess
import tempfile

import pytest
from ocitools import IMAGE, RUNTIME, busybox_archive

pytestmark = pytest.mark.skipif(shutil.which("podman") is None or shutil.which("runc") is None,
                                reason="needs podman and runc (apt-get install podman)")

# /run a tmpfs of the namespace's own: conmon calls the runtime without --root
# (pycontain-runc's default /run/pycontain-runc), podman keeps things there too
SETUP = "ip link set lo up && mount -t tmpfs none /sys/fs/cgroup/unified && mount -t tmpfs none /run"


@pytest.fixture(scope="module")
def archive(busybox, tmp_path_factory):
    return busybox_archive(busybox, tmp_path_factory.mktemp("podman-image"))


def podman_script(tmp_path, archive, runtime, body: str) -> subprocess.CompletedProcess:
    """body runs with $P as the podman command line; podman's storage goes with the namespace."""
    # podman refuses a run root longer than 50 characters: a short directory of our own
    d = tempfile.mkdtemp(prefix="pc-pod-", dir="/tmp")
    p = (f"podman --root {d}/root --runroot {d}/runroot --tmpdir {d}/tmp --cgroup-manager cgroupfs "
         f"--events-backend file --runtime {runtime}")
    script = (f"{SETUP} && P='{p}' && $P load -q -i {archive} >/dev/null && {{ {body}; }}; "
              "rc=$?; $P rm -a -f >/dev/null 2>&1; $P rmi -a -f >/dev/null 2>&1; exit $rc")
    try:
        return subprocess.run(["unshare", "--mount", "--net", "--propagation", "private", "sh", "-c", script],
                              capture_output=True, timeout=120)
    finally:
        shutil.rmtree(d, ignore_errors=True)   # its mounts went with the namespace


RUN = "--network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768"


@pytest.mark.parametrize("runtime", ["/usr/sbin/runc", RUNTIME], ids=["runc", "pycontain-runc"])
def test_podman_run_rm_output_and_exit_status(tmp_path, archive, runtime):
    r = podman_script(tmp_path, archive, runtime,
                      f"$P run --rm {RUN} {IMAGE} sh -c 'echo hello from $$; echo err >&2; exit 6'")
    assert (r.returncode, r.stdout, r.stderr) == (6, b"hello from 1\n", b"err\n")


@pytest.mark.parametrize("runtime", ["/usr/sbin/runc", RUNTIME], ids=["runc", "pycontain-runc"])
def test_podman_detached_logs_pause_stop(tmp_path, archive, runtime):
    body = (f"$P run -d --name d1 {RUN} {IMAGE} sh -c 'echo up; trap \"exit 0\" TERM; while :; do sleep 0.1; done'"
            " >/dev/null && sleep 0.5 && $P logs d1 && $P pause d1 >/dev/null && "
            "$P inspect -f '{{.State.Status}}' d1 && $P unpause d1 >/dev/null && "
            "$P stop -t 5 d1 >/dev/null && $P inspect -f '{{.State.Status}} {{.State.ExitCode}}' d1")
    r = podman_script(tmp_path, archive, runtime, body)
    assert (r.returncode, r.stdout) == (0, b"up\npaused\nexited 0\n"), r.stderr


@pytest.mark.parametrize("runtime", ["/usr/sbin/runc", RUNTIME], ids=["runc", "pycontain-runc"])
def test_podman_exec(tmp_path, archive, runtime):
    """podman exec: conmon calls `exec --process F --detach --pid-file` (with
    --exit-dir); the exec'd process's output and exit status reach podman."""
    body = (f"$P run -d --name e1 {RUN} {IMAGE} sleep 60 >/dev/null && "
            "$P exec -e WHO=podman -w /tmp e1 sh -c 'echo $WHO in $(pwd) as $(id -u); echo err >&2; exit 4'; "
            "echo rc=$?")
    r = podman_script(tmp_path, archive, runtime, body)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"podman in /tmp as 0\nrc=4\n", b"err\n"), r.stderr


@pytest.mark.parametrize("runtime", ["/usr/sbin/runc", RUNTIME], ids=["runc", "pycontain-runc"])
def test_podman_run_with_a_uid_map(tmp_path, archive, runtime):
    """podman --uidmap/--gidmap: a user namespace with the bundle's maps (podman
    chowns a copy of the image to the mapped ids), through conmon and the runtime."""
    body = (f"$P run --rm {RUN} --uidmap 0:200000:65536 --gidmap 0:200000:65536 {IMAGE} "
            "sh -c 'id -u; cat /proc/self/uid_map; stat -c %u /bin/busybox'")
    r = podman_script(tmp_path, archive, runtime, body)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().split("\n")
    assert lines[0] == "0" and lines[1].split() == ["0", "200000", "65536"] and lines[2] == "0", r.stdout
