"""The core: isolation, the launch steps and their errors, the subprocess-like API."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import pycontain
from pycontain import (
    CommandNotExecutable, CommandNotFound, ConfigError, Container, ContainerExitError,
    ContainerTimeout, LaunchError, Mount,
)

DOCKER_DEFAULT_CAPS = 0xA80425FB


def sh(busybox, script, **kw):
    run_kw = {k: kw.pop(k) for k in list(kw) if k in ("input", "timeout", "check", "stdin")}
    return Container(rootfs=busybox, command=["sh", "-c", script], **kw).run(capture_output=True, text=True, **run_kw)


def status_field(text, name):
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{name} not in {text!r}")


# ---- isolation -------------------------------------------------------------


def test_command_is_pid_1(busybox, leakcheck):
    assert sh(busybox, "echo $$").stdout == "1\n"


def test_proc_shows_only_the_containers_processes(busybox, leakcheck):
    r = sh(busybox, "sleep 5 & ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '; kill %1")
    pids = [int(p) for p in r.stdout.split()]
    assert pids[0] == 1
    assert max(pids) < 10, r.stdout
    assert str(os.getpid()) not in r.stdout.split() or os.getpid() < 10


def test_hostname_is_isolated(busybox, leakcheck):
    before = socket.gethostname()
    c = Container(rootfs=busybox, command=["sh", "-c", "hostname; hostname changed 2>/dev/null || echo denied"])
    r = c.run(capture_output=True, text=True)
    assert r.stdout.split() == [c.id[:12], "denied"]  # docker's default: no CAP_SYS_ADMIN
    r = sh(busybox, "hostname changed && hostname", cap_add=["SYS_ADMIN"])
    assert r.stdout == "changed\n"
    assert socket.gethostname() == before
    assert sh(busybox, "hostname; cat /etc/hostname", hostname="box").stdout == "box\nbox\n"


def test_host_mount_table_unchanged(busybox, leakcheck):
    with open("/proc/self/mountinfo") as f:
        before = f.read()
    sh(busybox, "mount -t tmpfs none /mnt 2>/dev/null; true", read_only=False)
    Container(rootfs=busybox, command=["true"], mounts=[Mount(str(busybox), "/data", read_only=True)]).run()
    with open("/proc/self/mountinfo") as f:
        assert f.read() == before


def test_host_files_unreachable(busybox, tmp_path, leakcheck):
    marker = tmp_path / "host-secret"
    marker.write_text("secret")
    script = (
        f"cat {marker} 2>/dev/null && echo LEAK1; "
        f"cat /proc/1/root{marker} 2>/dev/null && echo LEAK2; "
        f"cd /; cd ../../../..; cat .{marker} 2>/dev/null && echo LEAK3; "
        "ls /proc/1/root/ | tr '\\n' ' '"
    )
    r = sh(busybox, script)
    assert "LEAK" not in r.stdout
    assert "bin" in r.stdout and "home" in r.stdout and "work" not in r.stdout.split()


def test_no_host_descriptor_leaks_into_the_container(busybox, tmp_path, leakcheck):
    f = open(tmp_path / "held-open", "w")
    os.set_inheritable(f.fileno(), True)  # even an inheritable fd must not get in
    try:
        r = sh(busybox, "ls /proc/self/fd | tr '\\n' ' '")
    finally:
        f.close()
    assert sorted(int(x) for x in r.stdout.split()) == [0, 1, 2, 3]  # 3: ls's own directory


def test_rootfs_directory_is_never_modified(busybox, leakcheck):
    before = sorted(os.listdir(busybox)), os.stat(busybox / "etc" / "passwd").st_mtime_ns
    r = sh(busybox, "echo x > /new-file; rm /etc/passwd; mkdir /new-dir; ls /etc/passwd 2>&1 || echo gone")
    assert "gone" in r.stdout
    after = sorted(os.listdir(busybox)), os.stat(busybox / "etc" / "passwd").st_mtime_ns
    assert before == after


def test_disk_writable_layer_is_removed_with_the_container(busybox, store_root, leakcheck):
    c = Container(rootfs=busybox, command=["sh", "-c", "echo data > /f; cat /f"], writable_layer="disk")
    c.start(stdout=pycontain.PIPE)
    upper = Path(c._rootfs.upper)
    assert upper.is_dir()
    assert c.stdout.read() == b"data\n"
    c.stdout.close()
    c.wait()
    assert not upper.exists()


# ---- privileges -------------------------------------------------------------


def test_capabilities_are_dockers_default_set(busybox, leakcheck):
    r = sh(busybox, "cat /proc/self/status")
    assert int(status_field(r.stdout, "CapEff"), 16) == DOCKER_DEFAULT_CAPS
    assert int(status_field(r.stdout, "CapBnd"), 16) == DOCKER_DEFAULT_CAPS
    assert int(status_field(r.stdout, "CapInh"), 16) == 0
    assert int(status_field(r.stdout, "CapAmb"), 16) == 0


def test_non_root_user_has_no_effective_capabilities(busybox, leakcheck):
    r = sh(busybox, "id -u; id -g; id -G; cat /proc/self/status", user="user")
    lines = r.stdout.splitlines()
    assert lines[:2] == ["1000", "1000"]
    assert lines[2].split() == ["1000", "50"]
    assert int(status_field(r.stdout, "CapEff"), 16) == 0
    assert int(status_field(r.stdout, "CapPrm"), 16) == 0
    assert int(status_field(r.stdout, "CapBnd"), 16) == DOCKER_DEFAULT_CAPS


def test_cap_drop_and_add(busybox, leakcheck):
    r = sh(busybox, "cat /proc/self/status", cap_drop=["ALL"], cap_add=["NET_ADMIN"])
    assert int(status_field(r.stdout, "CapEff"), 16) == 1 << 12
    assert sh(busybox, "chown 1000 /tmp 2>&1; echo $?", cap_drop=["CHOWN"]).stdout.strip().endswith("1")


def test_no_new_privs_is_set(busybox, leakcheck):
    assert status_field(sh(busybox, "cat /proc/self/status").stdout, "NoNewPrivs") == "1"
    r = sh(busybox, "cat /proc/self/status", no_new_privileges=False)
    assert status_field(r.stdout, "NoNewPrivs") == "0"


@pytest.mark.parametrize("path", ["/proc/keys", "/proc/timer_list", "/proc/interrupts"])
def test_masked_files_read_empty(busybox, path, leakcheck):
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist on this kernel")
    r = sh(busybox, f"wc -c < {path}; grep -c {path} /proc/mounts")
    assert r.stdout.split() == ["0", "1"]


def test_masked_directories_are_empty_and_read_only(busybox, leakcheck):
    r = sh(busybox, "ls -A /sys/firmware | wc -l; touch /sys/firmware/x 2>&1 || echo refused")
    assert r.stdout.splitlines()[0] == "0"
    assert "refused" in r.stdout


@pytest.mark.parametrize("path", ["/proc/sys/kernel/hostname", "/proc/sysrq-trigger"])
def test_readonly_paths_refuse_writes(busybox, path, leakcheck):
    r = sh(busybox, f"echo x > {path} 2>&1 && echo WROTE || echo refused")
    assert "refused" in r.stdout and "WROTE" not in r.stdout


def test_sys_is_read_only(busybox, leakcheck):
    assert "refused" in sh(busybox, "echo 1 > /sys/kernel/profiling 2>/dev/null || echo refused").stdout


def test_privileged_unmasks_and_keeps_all_capabilities(busybox, leakcheck):
    r = sh(busybox, "cat /proc/self/status; grep -c ' /proc/bus ' /proc/mounts", privileged=True)
    with open("/proc/self/status") as f:
        assert status_field(r.stdout, "CapEff") == status_field(f.read(), "CapBnd")
    assert r.stdout.splitlines()[-1] == "0"


# ---- filesystems ---------------------------------------------------------------


def test_read_only_root_refuses_writes(busybox, leakcheck):
    r = sh(busybox, "touch /x 2>&1 || echo refused; echo ok > /dev/shm/y && cat /dev/shm/y", read_only=True)
    assert "refused" in r.stdout and "ok" in r.stdout


def test_bind_mounts_honour_ro_and_rw(busybox, tmp_path, leakcheck):
    ro, rw = tmp_path / "ro", tmp_path / "rw"
    ro.mkdir()
    rw.mkdir()
    (ro / "f").write_text("from host")
    r = sh(busybox, "cat /ro/f; echo x > /ro/g 2>&1 || echo ro-refused; echo written > /rw/out",
           mounts=[Mount(str(ro), "/ro", read_only=True), Mount(str(rw), "/rw")])
    assert "from host" in r.stdout and "ro-refused" in r.stdout
    assert not (ro / "g").exists()
    assert (rw / "out").read_text() == "written\n"


def test_bind_mount_of_a_file_and_a_tmpfs(busybox, tmp_path, leakcheck):
    f = tmp_path / "config.txt"
    f.write_text("cfg\n")
    r = sh(busybox, "cat /etc/app.conf; grep ' /scratch ' /proc/mounts",
           mounts=[Mount(str(f), "/etc/app.conf", read_only=True),
                   Mount(None, "/scratch", type="tmpfs", options=("size=1m",))])
    assert r.stdout.startswith("cfg\n")
    assert "tmpfs" in r.stdout and "size=1024k" in r.stdout


def test_symlinked_mount_target_cannot_escape_the_root(busybox, tmp_path, leakcheck):
    """A hostile rootfs whose /data is a symlink to a host path: the link is
    followed inside the container's root, never on the host."""
    evil = tmp_path / "evil"
    subprocess.run(["cp", "-a", str(busybox), str(evil)], check=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    (evil / "data").symlink_to(str(victim))
    src = tmp_path / "src"
    src.mkdir()
    (src / "payload").write_text("p")
    mounts = [Mount(str(src), "/data")]
    # the link's target does not exist inside the root: a clear error
    with pytest.raises(LaunchError, match="on /data"):
        Container(rootfs=evil, command=["true"], mounts=mounts).run()
    # it exists inside the root: the mount lands there
    (evil / str(victim).lstrip("/")).mkdir(parents=True)
    r = Container(rootfs=evil, command=["ls", str(victim)], mounts=mounts).run(capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "payload\n"
    assert list(victim.iterdir()) == []


def test_dev_has_the_minimal_nodes(busybox, leakcheck):
    r = sh(busybox, "ls /dev | tr '\\n' ' '; head -c 4 /dev/zero | wc -c; echo x > /dev/full 2>&1 || echo full")
    names = set(r.stdout.split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "mqueue",
            "fd", "stdin", "stdout", "stderr"} <= names
    assert "sda" not in names and "vda" not in names and "mem" not in names
    assert "4" in r.stdout and "full" in r.stdout


# ---- process settings ----------------------------------------------------------


def test_environment_user_workdir(busybox, leakcheck):
    r = sh(busybox, "echo $A $HOME $HOSTNAME; pwd; id -u", env={"A": "1"}, user="1000:1000",
           workdir="/tmp", hostname="box")
    assert r.stdout.split() == ["1", "/home/user", "box", "/tmp", "1000"]


def test_missing_workdir_is_created_for_the_user(busybox, leakcheck):
    r = sh(busybox, "pwd; stat -c %u /work/dir", workdir="/work/dir", user="1000")
    assert r.stdout.split() == ["/work/dir", "1000"]


def test_numeric_user_not_in_passwd(busybox, leakcheck):
    assert sh(busybox, "id -u; id -g; echo $HOME", user="4242").stdout.split() == ["4242", "0", "/"]


def test_ulimits_and_oom_score_adj(busybox, leakcheck):
    r = sh(busybox, "ulimit -n; cat /proc/self/oom_score_adj", ulimits=["nofile=123:456"], oom_score_adj=500)
    assert r.stdout.split() == ["123", "500"]


def test_loopback_is_up_and_no_other_interface(busybox, leakcheck):
    r = sh(busybox, "ip -o link | cut -d: -f2 | tr -d ' '; ip -o addr show lo | grep -c 127.0.0.1")
    assert r.stdout.split() == ["lo", "1"]


def test_network_host_sees_the_host_interfaces(busybox, leakcheck):
    r = sh(busybox, "ip -o link | wc -l", network="host")
    host = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.count("\n")
    assert int(r.stdout) == host


# ---- the subprocess-like API ------------------------------------------------------


def test_run_input_and_exit_status(busybox, leakcheck):
    r = Container(rootfs=busybox, command=["sh", "-c", "tr a-z A-Z; exit 3"]).run(input=b"hello", capture_output=True)
    assert (r.returncode, r.stdout) == (3, b"HELLO")


def test_check_raises_with_the_result(busybox, leakcheck):
    with pytest.raises(ContainerExitError) as e:
        sh(busybox, "echo out; echo err >&2; exit 7", check=True)
    assert e.value.returncode == 7
    assert isinstance(e.value, subprocess.CalledProcessError)
    assert e.value.stdout == "out\n" and e.value.stderr == "err\n"


def test_timeout_kills_the_container(busybox, leakcheck):
    t = time.monotonic()
    with pytest.raises(ContainerTimeout) as e:
        sh(busybox, "echo started; sleep 60", timeout=0.5)
    assert time.monotonic() - t < 5
    assert isinstance(e.value, subprocess.TimeoutExpired)
    assert e.value.output == "started\n"


def test_popen_like_start_wait_kill(busybox, leakcheck):
    with Container(rootfs=busybox, command=["sleep", "60"]) as c:
        c.start()
        assert c.pid > 0 and c.poll() is None
        with pytest.raises(ContainerTimeout):
            c.wait(timeout=0.1)
        c.kill()
        assert c.wait(timeout=5) == -signal.SIGKILL


def test_stdout_to_a_file(busybox, tmp_path, leakcheck):
    out = tmp_path / "out"
    with open(out, "wb") as f:
        r = Container(rootfs=busybox, command=["echo", "to file"]).run(stdout=f)
    assert r.returncode == 0 and out.read_text() == "to file\n"


def test_create_then_start(busybox, leakcheck):
    c = Container(rootfs=busybox, command=["sh", "-c", "echo ran"])
    c.create(stdout=pycontain.PIPE)
    # created: the namespaces and mounts exist, the command has not run
    with open(f"/proc/{c.pid}/cmdline", "rb") as f:
        assert b"sh" not in f.read().split(b"\0")[0]
    assert os.readlink(f"/proc/{c.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    c.start()
    assert c.stdout.read() == b"ran\n"
    c.stdout.close()
    assert c.wait() == 0


def test_created_container_removed_without_start(busybox, leakcheck):
    c = Container(rootfs=busybox, command=["true"])
    c.create()
    c.remove()
    assert c.returncode == -signal.SIGKILL


def test_init_reaps_zombies_and_forwards_signals(busybox, leakcheck):
    # Without init, sh as pid 1 ignores SIGTERM; with init the signal reaches it.
    c = Container(rootfs=busybox, command=["sh", "-c", "trap 'echo got TERM; exit 4' TERM; "
                                           "(sleep 0.1 &) ; echo ready; while :; do sleep 0.05; done"],
                  init=True)
    c.start(stdout=pycontain.PIPE)
    assert c.stdout.readline() == b"ready\n"
    time.sleep(0.3)
    c.terminate()
    assert c.wait(timeout=5) == 4
    assert b"got TERM" in c.stdout.read()
    c.stdout.close()
    r = sh(busybox, "sleep 0.1 & sleep 0.2; ps -o pid,stat,comm | grep -c ' Z ' || true", init=True)
    assert r.stdout.strip() == "0"
    assert sh(busybox, "cat /proc/1/cmdline | tr '\\0' ' '", init=True).stdout.startswith("pycontain-init")


# ---- errors: each launch step says what failed ------------------------------------


def test_missing_rootfs(tmp_path, leakcheck):
    with pytest.raises(ConfigError, match="is not a directory"):
        Container(rootfs=tmp_path / "nope", command=["true"])


def test_unknown_user(busybox, leakcheck):
    with pytest.raises(ConfigError, match="unable to find user nosuchuser"):
        Container(rootfs=busybox, command=["true"], user="nosuchuser").run()


def test_relative_workdir(busybox, leakcheck):
    with pytest.raises(ConfigError, match="absolute path"):
        Container(rootfs=busybox, command=["true"], workdir="relative")


def test_workdir_that_is_a_file(busybox, leakcheck):
    with pytest.raises(LaunchError) as e:
        Container(rootfs=busybox, command=["true"], workdir="/etc/passwd").run()
    assert e.value.stage == "chdir"
    assert str(e.value) == "chdir('/etc/passwd'): Not a directory"


def test_command_not_found(busybox, leakcheck):
    with pytest.raises(CommandNotFound) as e:
        Container(rootfs=busybox, command=["no-such-command"]).run()
    assert e.value.exit_status == 127
    assert str(e.value) == 'exec: "no-such-command": executable file not found in $PATH'


def test_command_not_found_with_init(busybox, leakcheck):
    with pytest.raises(CommandNotFound):
        Container(rootfs=busybox, command=["/no/such"], init=True).run()


def test_command_not_executable(busybox, leakcheck):
    with pytest.raises(CommandNotExecutable) as e:
        Container(rootfs=busybox, command=["/etc/passwd"]).run()
    assert e.value.exit_status == 126


def test_bad_config_values(busybox, leakcheck):
    for kw, msg in [
        ({"hostname": "bad host"}, "invalid hostname"),
        ({"cap_add": ["NOT_A_CAP"]}, "unknown capability"),
        ({"ulimits": ["nofile=10:5"]}, "soft limit"),
        ({"ulimits": ["bogus=1"]}, "unknown ulimit"),
        ({"network": "no such/net"}, "invalid network"),
        ({"env": ["NOEQUALS"]}, "KEY=VALUE"),
        ({"mounts": [Mount("/nonexistent-src", "/x")]}, "does not exist"),
        ({"command": "a string"}, "list of strings"),
    ]:
        with pytest.raises(ConfigError, match=msg):
            Container(rootfs=busybox, **{"command": ["true"], **kw})


def test_no_command(busybox, leakcheck):
    with pytest.raises(ConfigError, match="no command"):
        Container(rootfs=busybox).run()


def test_unknown_image(leakcheck):
    with pytest.raises(pycontain.ImageNotFound):
        Container("no-such-image-here").run()


# ---- concurrency and leaks ------------------------------------------------------


def test_launch_with_busy_threads(busybox, leakcheck):
    stop = threading.Event()

    def spin():
        x = 0
        while not stop.is_set():
            x += 1

    threads = [threading.Thread(target=spin) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        for _ in range(10):
            assert sh(busybox, "echo ok").stdout == "ok\n"
    finally:
        stop.set()
        for t in threads:
            t.join()


def test_50_concurrent_containers(busybox, leakcheck):
    results = [None] * 50

    def one(i):
        results[i] = sh(busybox, f"echo {i}; hostname")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.stdout.split()[0] for r in results] == [str(i) for i in range(50)]
    assert len({r.stdout.split()[1] for r in results}) == 50  # 50 distinct containers


def test_500_sequential_runs_leak_nothing(busybox, leakcheck):
    for _ in range(500):
        r = Container(rootfs=busybox, command=["true"]).run()
        assert r.returncode == 0
    # leakcheck asserts: no mount, fd, child process or container directory left


def test_failed_launches_leak_nothing(busybox, leakcheck):
    for _ in range(20):
        with pytest.raises(CommandNotFound):
            Container(rootfs=busybox, command=["missing"]).run()
        with pytest.raises(LaunchError):
            Container(rootfs=busybox, command=["true"], workdir="/etc/passwd", writable_layer="disk").run()


def test_container_dies_with_the_process_that_launched_it(busybox, tmp_path):
    """PR_SET_PDEATHSIG: a launcher killed with SIGKILL takes its container along."""
    pidfile = tmp_path / "pid"
    script = (
        "import sys, time\n"
        "from pycontain import Container\n"
        f"c = Container(rootfs={str(busybox)!r}, command=['sleep', '600'], network='host')\n"
        "c.start()\n"
        f"open({str(pidfile)!r}, 'w').write(str(c.pid))\n"
        "time.sleep(600)\n"
    )
    launcher = subprocess.Popen([sys.executable, "-c", script])
    try:
        for _ in range(500):
            if pidfile.exists() and pidfile.read_text():
                break
            time.sleep(0.01)
        pid = int(pidfile.read_text())
        assert os.path.exists(f"/proc/{pid}")
    finally:
        launcher.kill()
        launcher.wait()
    for _ in range(500):
        if not os.path.exists(f"/proc/{pid}"):
            break
        time.sleep(0.01)
    assert not os.path.exists(f"/proc/{pid}"), "the container outlived its launcher"


@pytest.fixture
def without_openat2(monkeypatch):
    """Containers whose mount targets are resolved as on kernels before 5.6."""
    import pycontain.container as cmod

    plan = cmod.Container._plan

    def patched(self):
        p = plan(self)
        p.no_openat2 = True
        return p

    monkeypatch.setattr(cmod.Container, "_plan", patched)


def test_mount_target_walk_without_openat2(busybox, tmp_path, without_openat2, leakcheck):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("walked\n")
    r = Container(rootfs=busybox, command=["cat", "/deep/er/f"], mounts=[Mount(str(src), "/deep/er")]).run(
        capture_output=True, text=True)
    assert r.stdout == "walked\n"
    evil = tmp_path / "evil"
    subprocess.run(["cp", "-a", str(busybox), str(evil)], check=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    (evil / "data").symlink_to(str(victim))  # a symlinked parent of the target
    with pytest.raises(LaunchError, match="Too many levels of symbolic links"):
        Container(rootfs=evil, command=["true"], mounts=[Mount(str(src), "/data/sub")]).run()
    assert list(victim.iterdir()) == []


def test_image_device_nodes_are_inert_without_a_device_cgroup(busybox, tmp_path, leakcheck):
    """Without a device cgroup (no limits asked for), the root is mounted nodev:
    a device node shipped in an image cannot reach the host's disk."""
    img = tmp_path / "img"
    subprocess.run(["cp", "-a", str(busybox), str(img)], check=True)
    st = os.stat("/")
    os.mknod(img / "disk", 0o600 | 0o060000, os.makedev(os.major(st.st_dev), os.minor(st.st_dev)))
    r = Container(rootfs=img, command=["sh", "-c", "dd if=/disk of=/dev/null bs=512 count=1 2>&1"]).run(
        capture_output=True, text=True)
    assert "Permission denied" in r.stdout
    r = sh(busybox, "head -c 3 /dev/zero | wc -c")  # the container's own /dev still works
    assert r.stdout.strip() == "3"
