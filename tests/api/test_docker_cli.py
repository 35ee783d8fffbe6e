"""The machine's docker CLI (28.x) driving pycontain through `pycontain system service`."""
import json
import subprocess
import sys
import tarfile
import time

from apitools import DOCKER, IMAGE

from pycontain import cgroups, containers, image
from pycontain.cgroups import running


def test_version_and_info_name_pycontain(docker):
    r = docker("version", "--format", "{{json .}}")
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)
    assert v["Server"]["Platform"]["Name"].startswith("pycontain")
    assert v["Server"]["ApiVersion"] == "1.47" and v["Server"]["MinAPIVersion"] == "1.24"
    r = docker("info", "--format", "{{.OSType}} {{.LoggingDriver}}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "linux json-file"


def test_run_rm_prints_and_exits_with_the_status(docker):
    r = docker("run", "--rm", "--network", "none", IMAGE, "echo", "hi")
    assert (r.returncode, r.stdout, r.stderr) == (0, "hi\n", "")
    r = docker("run", "--rm", "--network", "none", IMAGE, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    assert containers.list(all=True) == []      # --rm: removed, as docker's


def test_run_of_a_missing_command_exits_127(docker):
    r = docker("run", "--rm", "--network", "none", IMAGE, "no-such-command")
    assert r.returncode == 127, r.stderr
    assert "executable file not found" in r.stderr


def test_detached_container_is_the_librarys_and_the_clis(docker, store_root):
    r = docker("run", "-d", "--name", "api-web", "--network", "none", IMAGE, "sh", "-c",
               "echo started; exec sleep 60")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    # the same record the library and `pycontain ps` read
    assert containers.get("api-web").id == cid and containers.get("api-web").status == "running"
    ps = subprocess.run([sys.executable, "-m", "pycontain", "ps"], capture_output=True, text=True)
    assert "api-web" in ps.stdout
    r = docker("ps", "--format", "{{.Names}} {{.Status}}")
    assert r.stdout.startswith("api-web Up"), r.stdout
    assert docker("logs", "api-web").stdout == "started\n"
    r = docker("exec", "api-web", "sh", "-c", "echo in-exec; echo e >&2; exit 4")
    assert (r.returncode, r.stdout, r.stderr) == (4, "in-exec\n", "e\n")
    r = docker("exec", "-i", "api-web", "cat", input="through stdin\n")
    assert (r.returncode, r.stdout) == (0, "through stdin\n")
    r = docker("inspect", "--format", "{{.State.Status}} {{.Name}} {{.Id}}", "api-web")
    assert r.stdout.split() == ["running", "/api-web", cid]
    assert docker("stop", "-t", "1", "api-web").returncode == 0
    assert containers.get(cid).status == "exited"
    assert docker("rm", "-f", "api-web").returncode == 0
    assert docker("ps", "-a", "-q").stdout == ""


def test_a_container_made_by_the_library_is_seen_by_docker(docker):
    c = containers.run(IMAGE, ["sleep", "60"], name="from-library", network="none")
    try:
        r = docker("ps", "--format", "{{.ID}} {{.Names}}")
        assert r.stdout.split() == [c.short_id, "from-library"]
        assert docker("kill", "from-library").returncode == 0
        assert docker("wait", "from-library").stdout.strip() == "137"
    finally:
        c.remove(force=True)


def test_logs_follow_ends_with_the_container(docker):
    cid = docker("run", "-d", "--network", "none", IMAGE, "sh", "-c",
                 "for i in 1 2 3; do echo line$i; sleep 0.1; done").stdout.strip()
    r = docker("logs", "-f", cid, timeout=20)
    assert r.stdout == "line1\nline2\nline3\n"
    assert docker("rm", cid).returncode == 0


def test_errors_are_docker_shaped(docker, tmp_path):
    r = docker("container", "inspect", "no-such-container")
    assert r.returncode == 1 and "no such container: no-such-container" in r.stderr.lower()
    r = docker("plugin", "ls")   # not implemented: 501 and a message naming it
    assert r.returncode == 1 and "/plugins is not implemented by pycontain" in r.stderr, r.stderr
    r = docker("network", "connect", "api-net", "api-any")   # a network that is not there: docker's words
    assert r.returncode == 1 and "network api-net not found" in r.stderr
    r = docker("run", "--rm", "--network", "none", "--memory-swappiness", "10", IMAGE, "true")
    assert r.returncode == 125
    assert "MemorySwappiness is not supported by pycontain" in r.stderr
    assert containers.list(all=True) == []      # refused before anything was made


def test_images_and_pull_from_a_loopback_registry(docker, workdir, busybox, store_root):
    from regtools import Registry, layer_of_dir, skopeo, write_oci_layout

    d = workdir / "registry-api"
    d.mkdir()
    reg = Registry(d)
    try:
        layout = write_oci_layout(workdir / "api-layout", [("amd64", [layer_of_dir(busybox)], {})])
        ref = f"{reg.host}/api/pulled:1"
        skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:multi", f"docker://{ref}")
        r = docker("pull", ref, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "Downloaded newer image" in r.stdout
        r = docker("images", "--format", "{{.Repository}}:{{.Tag}}")
        assert f"{reg.host}/api/pulled:1" in r.stdout.split() and "apitest/busybox:latest" in r.stdout.split()
        r = docker("run", "--rm", "--network", "none", ref, "echo", "pulled")
        assert r.stdout == "pulled\n", r.stderr
        assert docker("tag", ref, "api/retagged:2").returncode == 0
        assert image.get("api/retagged:2").id == image.get(ref).id
        r = docker("rmi", "api/retagged:2", ref)
        assert r.returncode == 0, r.stderr
        assert "Untagged" in r.stdout
        r = docker("pull", f"{reg.host}/api/missing:1", timeout=60)
        assert r.returncode != 0 and r.stderr.strip()
        # push: back into the registry under another name, docker's progress stream
        assert docker("tag", IMAGE, f"{reg.host}/api/pushed:1").returncode == 0
        r = docker("push", f"{reg.host}/api/pushed:1", timeout=120)
        assert r.returncode == 0, r.stderr
        assert "digest: sha256:" in r.stdout
        assert skopeo("inspect", "--tls-verify=false", f"docker://{reg.host}/api/pushed:1")
        assert docker("rmi", f"{reg.host}/api/pushed:1").returncode == 0
    finally:
        reg.stop()


def test_run_interactive_passes_stdin_and_its_end(docker):
    r = docker("run", "--rm", "-i", "--network", "none", IMAGE, "sh", "-c", "cat; echo done", input="one\ntwo\n",
               timeout=30)
    assert (r.returncode, r.stdout) == (0, "one\ntwo\ndone\n"), r.stderr


def test_run_with_a_terminal(docker_env):
    # docker run -t wants a terminal of its own: script(1) gives it one
    cmd = f"{DOCKER} run --rm -t --network none {IMAGE} sh -c 'tty; echo on-tty'"
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, timeout=30,
                       env=docker_env, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    # (the outer terminal adds its own line ends: compare the lines)
    assert [line for line in r.stdout.replace("\r", "").split("\n") if line] == ["/dev/pts/0", "on-tty"]


def test_save_load_commit_import(docker, tmp_path, busybox):
    assert docker("tag", IMAGE, "api/saved:1").returncode == 0
    r = docker("save", "-o", str(tmp_path / "saved.tar"), "api/saved:1")
    assert r.returncode == 0, r.stderr
    assert docker("rmi", "api/saved:1").returncode == 0
    r = docker("load", "-i", str(tmp_path / "saved.tar"))
    assert (r.returncode, r.stdout) == (0, "Loaded image: api/saved:1\n"), r.stderr
    cid = docker("run", "-d", "--network", "none", "api/saved:1", "sh", "-c", "echo new > /newfile").stdout.strip()
    assert docker("wait", cid).stdout == "0\n"
    r = docker("commit", "-c", 'CMD ["cat", "/newfile"]', cid, "api/committed:1")
    assert r.returncode == 0 and r.stdout.startswith("sha256:"), r.stderr
    assert docker("run", "--rm", "--network", "none", "api/committed:1").stdout == "new\n"
    assert docker("rm", cid).returncode == 0
    assert docker("rmi", "api/committed:1", "api/saved:1").returncode == 0
    with tarfile.open(tmp_path / "rootfs.tar", "w") as t:
        t.add(busybox, arcname=".")
    r = docker("import", "-c", 'CMD ["echo", "imported"]', str(tmp_path / "rootfs.tar"), "api/imported:1")
    assert r.returncode == 0 and r.stdout.startswith("sha256:"), r.stderr
    assert docker("run", "--rm", "--network", "none", "api/imported:1").stdout == "imported\n"
    assert docker("rmi", "api/imported:1").returncode == 0


def test_exec_with_a_terminal(docker, docker_env):
    cid = docker("run", "-d", "--network", "none", IMAGE, "sleep", "60").stdout.strip()
    try:
        r = subprocess.run(["script", "-qec", f"{DOCKER} exec -it {cid} sh", "/dev/null"], input="echo typed\nexit 7\n",
                           capture_output=True, text=True, timeout=30, env=docker_env)
        assert r.returncode == 7, r.stdout + r.stderr
        assert "typed" in r.stdout.replace("echo typed", "")
    finally:
        docker("rm", "-f", cid)


def test_stats_top_pause_rename_restart_prune(docker):
    r = docker("run", "-d", "--name", "api-sweep", "--network", "none", IMAGE, "sh", "-c",
               "while true; do sleep 1; done")
    assert r.returncode == 0, r.stderr
    r = docker("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "api-sweep")
    assert r.stdout.split()[0] == "api-sweep" and int(r.stdout.split()[1]) >= 1, r.stderr
    r = docker("top", "api-sweep")
    assert "sh -c while true" in r.stdout
    assert docker("pause", "api-sweep").returncode == 0
    assert docker("ps", "--format", "{{.Status}}").stdout.strip().endswith("(Paused)")
    assert docker("unpause", "api-sweep").returncode == 0
    assert docker("rename", "api-sweep", "api-swept").returncode == 0
    assert docker("restart", "-t", "1", "api-swept").returncode == 0
    assert docker("ps", "--format", "{{.Names}} {{.State}}").stdout == "api-swept running\n"
    assert docker("stop", "-t", "1", "api-swept").returncode == 0
    r = docker("container", "prune", "-f")
    assert r.returncode == 0 and "Deleted Containers" in r.stdout
    assert docker("ps", "-aq").stdout == ""


def test_diff_lists_the_writable_layers_changes(docker):
    r = docker("run", "--name", "api-diff", "--network", "none", IMAGE, "sh", "-c",
               "mkdir -p /new/deeper && echo x > /new/deeper/f && echo more >> /etc/passwd && rm /etc/group "
               "&& rm -r /home/user && touch /tmp/t")
    assert r.returncode == 0, r.stderr
    r = docker("diff", "api-diff")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for want in ("A /new", "A /new/deeper", "A /new/deeper/f", "C /etc", "C /etc/passwd", "D /etc/group",
                 "C /home", "D /home/user", "C /tmp", "A /tmp/t"):
        assert want in lines, r.stdout
    assert not [line for line in lines if line.startswith(("A /bin", "C /bin"))], r.stdout
    # what pycontain makes at each start (docker's init layer): not the container's changes
    for made in ("/dev", "/proc", "/sys", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"):
        assert f"A {made}" not in lines and f"C {made}" not in lines, r.stdout
    assert sorted(line[2:] for line in lines) == [line[2:] for line in lines]    # by path, as docker
    # a container that only ran: no change at all (not even C /etc for its generated files)
    r = docker("run", "--name", "api-diff-none", "--network", "none", IMAGE, "true")
    assert r.returncode == 0, r.stderr
    assert docker("diff", "api-diff-none").stdout == ""
    assert docker("rm", "api-diff-none").returncode == 0
    assert docker("rm", "api-diff").returncode == 0
    r = docker("diff", "no-such-container")
    assert r.returncode == 1 and "no such container" in r.stderr.lower()


def test_login_checks_the_registry_and_push_uses_the_credentials(docker, workdir, store_root):
    """docker login: POST /auth checks with the registry and keeps nothing (the
    CLI saves the credentials and sends them with the push)."""
    from regtools import PASSWORD, USER, Registry

    d = workdir / "registry-api-auth"
    d.mkdir()
    reg = Registry(d, auth="htpasswd")
    try:
        r = docker("login", reg.host, "-u", USER, "--password-stdin", input="wrong\n")
        assert r.returncode != 0 and "login attempt to" in r.stderr and "Traceback" not in r.stderr, r.stderr
        r = docker("login", reg.host, "-u", USER, "--password-stdin", input=PASSWORD + "\n")
        assert r.returncode == 0 and "Login Succeeded" in r.stdout, r.stderr
        # the service saved nothing: pycontain's own credentials for the registry are still none
        from pycontain.image import auth as pycontain_auth
        assert pycontain_auth.lookup(reg.host) is None
        assert docker("tag", IMAGE, f"{reg.host}/api/private:1").returncode == 0
        r = docker("push", f"{reg.host}/api/private:1", timeout=120)
        assert r.returncode == 0 and "digest: sha256:" in r.stdout, r.stderr
        assert docker("rmi", f"{reg.host}/api/private:1").returncode == 0
    finally:
        reg.stop()


def test_update_sets_the_restart_policy(docker):
    r = docker("run", "-d", "--name", "api-upd", "--network", "none", IMAGE, "sh", "-c", "sleep 0.3; exit 2")
    assert r.returncode == 0, r.stderr
    r = docker("update", "--restart", "on-failure:2", "api-upd")
    assert r.returncode == 0, r.stderr
    r = docker("inspect", "--format", "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}",
               "api-upd")
    assert r.stdout.split() == ["on-failure", "2"]
    # the monitor reads the new policy when the container exits: restarted twice, then left
    r = docker("wait", "api-upd", timeout=30)
    deadline = time.monotonic() + 20
    while containers.get("api-upd").record.restart_count < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert containers.get("api-upd").record.restart_count == 2
    assert docker("rm", "-f", "api-upd").returncode == 0
    r = docker("create", "--rm", "--name", "api-upd-rm", "--network", "none", IMAGE, "true")
    assert r.returncode == 0, r.stderr
    r = docker("update", "--restart", "always", "api-upd-rm")
    assert r.returncode != 0 and "AutoRemove is enabled" in r.stderr, r.stderr
    assert containers.get("api-upd-rm").record.restart_policy == "no"
    assert docker("rm", "api-upd-rm").returncode == 0


def cgroup_value(name, filename):
    """A file of the running container's own cgroup, read on the host."""
    pid = containers.get(name).record.pid
    for _ctrls, d in running.own_cgroups(pid):
        try:
            with open(f"{d}/{filename}") as f:
                return f.read().strip()
        except FileNotFoundError:
            continue
    raise AssertionError(f"no {filename} in the cgroups of {name}")


def test_update_changes_a_running_container_s_limits(docker):
    r = docker("run", "-d", "--name", "api-lim", "--network", "none", "--memory-reservation", "16m", IMAGE, "sleep", "60")
    assert r.returncode == 0, r.stderr
    assert cgroup_value("api-lim", "memory.low" if cgroups_v2() else "memory.soft_limit_in_bytes") == str(16 << 20)
    r = docker("update", "--memory", "64m", "--memory-swap", "128m", "--memory-reservation", "32m", "--cpus", "0.5",
               "--pids-limit", "20", "--cpu-shares", "512", "--cpuset-cpus", "0", "api-lim")
    assert (r.returncode, r.stdout.split()) == (0, ["api-lim"]), r.stderr
    v2 = cgroups_v2()
    assert cgroup_value("api-lim", "memory.max" if v2 else "memory.limit_in_bytes") == str(64 << 20)
    assert cgroup_value("api-lim", "cpu.max" if v2 else "cpu.cfs_quota_us") == ("50000 100000" if v2 else "50000")
    assert cgroup_value("api-lim", "pids.max") == "20"
    assert cgroup_value("api-lim", "cpuset.cpus") == "0"
    r = docker("inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.MemoryReservation}} "
               "{{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpuShares}} {{.HostConfig.CpusetCpus}}",
               "api-lim")
    assert r.stdout.split() == [str(64 << 20), str(128 << 20), str(32 << 20), "500000000", "20", "512", "0"]
    # docker's rules and the kernel's refusals: an error, nothing changed
    r = docker("update", "--memory", "200m", "api-lim")
    assert r.returncode == 1 and "update the memoryswap at the same time" in r.stderr, r.stderr
    r = docker("update", "--cpu-quota", "30000", "api-lim")
    assert r.returncode == 1 and "NanoCPUs has already been set" in r.stderr, r.stderr
    r = docker("update", "--kernel-memory", "64m", "api-lim")
    assert r.returncode == 1 and "KernelMemory is not supported" in r.stderr, r.stderr
    assert cgroup_value("api-lim", "memory.max" if v2 else "memory.limit_in_bytes") == str(64 << 20)
    assert docker("rm", "-f", "api-lim").returncode == 0


def cgroups_v2() -> bool:
    return cgroups.layout().driver == "v2"
