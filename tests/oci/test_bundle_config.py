"""config.json fields beyond the basics, each run beside runc (or crun,
where runc 1.1.5 ignores the field) on the same bundle: the hooks that run
inside the container, domainname, personality."""
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from nobody import NOBODY, as_nobody
from ocitools import RUNTIME, crun_wrapper, own_cgroup_dirs, run_runtime

from pycontain.oci import cli as oci_cli

RUNC = shutil.which("runc")


@pytest.fixture(autouse=True)
def host_dev_null_untouched():
    """No runtime here may give the host's /dev/null away (crun 1.8 chowns its
    stdio to the container's root: ocitools.run_runtime never hands it /dev/null)."""
    before = os.stat("/dev/null")
    yield
    after = os.stat("/dev/null")
    assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid, before.st_mode)


def _script(path, body):
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def _runtimes(*names):
    """pytest params: the reference runtimes named (skipped when missing) and ours."""
    out = []
    for name in names:
        out.append(pytest.param(name, id=name))
    out.append(pytest.param("pycontain-runc", id="pycontain-runc"))
    return out


@pytest.fixture
def runtime_named(tmp_path):
    def get(name):
        path = {"runc": RUNC, "crun": crun_wrapper(tmp_path) if name == "crun" else None,
                "pycontain-runc": RUNTIME}[name]
        if path is None:
            pytest.skip(f"{name} is the reference (apt-get install {name})")
        return path
    return get


def _log_mount(d):
    d.mkdir()
    d.chmod(0o777)
    log = d / "hooks.log"
    log.touch()
    log.chmod(0o666)          # the startContainer hook writes as the container's user
    return {"destination": "/log", "type": "bind", "source": str(d), "options": ["rbind"]}


@pytest.mark.parametrize("name", _runtimes("runc"))
def test_container_hooks_run_inside_in_the_spec_order(bundle, tmp_path, runtime_named, name):
    """createRuntime in our namespaces; createContainer in the container's mount
    namespace before pivot_root (its path is the host's); startContainer inside,
    as the container's user, before the command; each with the state on stdin."""
    runtime = runtime_named(name)
    logdir = tmp_path / "log"
    mount = _log_mount(logdir)
    def line(kind, log):
        return f'echo "{kind} $(readlink /proc/self/ns/mnt) $(id -u) $(cat)" >> {log}'
    hooks = {
        "createRuntime": [{"path": _script(tmp_path / "cr.sh", line("createRuntime", logdir / "hooks.log"))}],
        # a host path, not in the container's root
        "createContainer": [{"path": _script(tmp_path / "cc.sh", line("createContainer", logdir / "hooks.log"))}],
        # the container's own shell
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", line("startContainer", "/log/hooks.log")]}],
    }

    def edit(s):
        s["mounts"].append(mount)
        s["hooks"] = hooks
        s["process"]["user"] = {"uid": 1000, "gid": 1000}
    b = bundle(["sh", "-c", 'echo "main $(readlink /proc/self/ns/mnt) $(id -u) -" >> /log/hooks.log'], edit=edit)
    r = run_runtime(tmp_path / "state", "run", "--bundle", str(b), "hk1", runtime=runtime)
    assert r.returncode == 0, r.stderr
    seen = [line.split(" ", 3) for line in (logdir / "hooks.log").read_text().splitlines()]
    assert [s[0] for s in seen] == ["createRuntime", "createContainer", "startContainer", "main"]
    mnt = {kind: ns for kind, ns, _, _ in seen}
    assert mnt["createContainer"] == mnt["startContainer"] == mnt["main"] != mnt["createRuntime"]
    assert [s[2] for s in seen] == ["0", "0", "1000", "1000"]
    states = {kind: json.loads(st) for kind, _, _, st in seen[:3]}
    assert {k: (st["id"], st["status"], st["bundle"]) for k, st in states.items()} == {
        "createRuntime": ("hk1", "creating", str(b)), "createContainer": ("hk1", "creating", str(b)),
        "startContainer": ("hk1", "created", str(b))}
    # the container's own processes see its pid as 1 (runc's Getpid in the container)
    assert states["createContainer"]["pid"] == states["startContainer"]["pid"] == 1
    assert states["createRuntime"]["pid"] > 1
    assert own_cgroup_dirs("pycontain-hk1") == []


@pytest.mark.parametrize("name", _runtimes("runc"))
def test_a_failing_create_container_hook_fails_create_and_leaves_nothing(bundle, tmp_path, runtime_named, name):
    runtime = runtime_named(name)
    hooks = {"createContainer": [{"path": _script(tmp_path / "bad.sh", "echo no mounts for you; exit 3")}]}
    b = bundle(["true"], edit=lambda s: s.update(hooks=hooks))
    root = tmp_path / "state"
    r = run_runtime(root, "create", "--bundle", str(b), "--pid-file", str(tmp_path / "pid"), "hk2", runtime=runtime)
    assert r.returncode == 1
    assert b"no mounts for you" in r.stderr
    if name == "pycontain-runc":
        assert r.stderr == f"createContainer hook {tmp_path}/bad.sh: exited with status 3: no mounts for you\n".encode()
    assert run_runtime(root, "state", "hk2", runtime=runtime).returncode != 0     # no such container
    assert not (tmp_path / "pid").exists()
    assert own_cgroup_dirs("pycontain-hk2") == []


@pytest.mark.parametrize("name", _runtimes("runc"))
def test_a_failing_start_container_hook_stops_the_container(bundle, tmp_path, runtime_named, name):
    """The command never runs and the container ends stopped. Our start also
    fails with the hook's error, as the spec asks; runc 1.1.5's start returns
    0 (its init fails after start handed over), its run fails."""
    runtime = runtime_named(name)
    logdir = tmp_path / "log"
    mount = _log_mount(logdir)
    hooks = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo not today; exit 4"]}]}
    b = bundle(["sh", "-c", "echo ran > /log/hooks.log"], edit=lambda s: (s.update(hooks=hooks),
                                                                            s["mounts"].append(mount)))
    root = tmp_path / "state"
    assert run_runtime(root, "create", "--bundle", str(b), "hk3", runtime=runtime).returncode == 0
    r = run_runtime(root, "start", "hk3", runtime=runtime)
    if name == "pycontain-runc":
        assert (r.returncode, r.stderr) == (1, b"startContainer hook /bin/sh: exited with status 4: not today\n")
    for _ in range(100):
        st = json.loads(run_runtime(root, "state", "hk3", runtime=runtime).stdout)
        if st["status"] == "stopped":
            break
        time.sleep(0.05)
    assert st["status"] == "stopped"
    assert (logdir / "hooks.log").read_text() == ""
    assert run_runtime(root, "delete", "hk3", runtime=runtime).returncode == 0
    assert own_cgroup_dirs("pycontain-hk3") == []


@pytest.mark.parametrize("kind, path, args", [
    ("createContainer", "/bin/sleep", ["sleep", "30"]),
    # its output closed at once: the timeout holds until it exits
    ("startContainer", "/bin/sh", ["sh", "-c", "exec >&- 2>&-; sleep 30"]),
])
def test_a_hook_past_its_timeout_is_killed_and_fails(bundle, tmp_path, kind, path, args):
    hooks = {kind: [{"path": path, "args": args, "timeout": 1}]}
    b = bundle(["true"], edit=lambda s: s.update(hooks=hooks))
    t0 = time.monotonic()
    r = run_runtime(tmp_path / "state", "run", "--bundle", str(b), "hk4")
    assert time.monotonic() - t0 < 10
    assert (r.returncode, r.stderr) == (1, f"{kind} hook {path}: did not finish within 1 s\n".encode())
    assert not (tmp_path / "state" / "hk4").exists() and own_cgroup_dirs("pycontain-hk4") == []


@pytest.mark.parametrize("name", _runtimes("crun"))
def test_domainname_and_personality(bundle, tmp_path, runtime_named, name):
    """runc 1.1.5 ignores both (domainname stays "(none)", the machine stays
    x86_64); crun sets them, as we do."""
    runtime = runtime_named(name)

    def edit(s):
        s["domainname"] = "example.org"
        s["linux"]["personality"] = {"domain": "LINUX32"}
    b = bundle(["sh", "-c", "cat /proc/sys/kernel/domainname; uname -m"], edit=edit)
    r = run_runtime(tmp_path / "state", "run", "--bundle", str(b), "dp1", runtime=runtime)
    assert (r.returncode, r.stdout) == (0, b"example.org\ni686\n"), r.stderr


@pytest.mark.parametrize("edit, words", [
    (lambda s: s["linux"].update(personality={"domain": "LINUX64"}),
     "config.json: linux.personality.domain: 'LINUX64' is not one of LINUX, LINUX32"),
    (lambda s: s["linux"].update(personality={"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}),
     "config.json: linux.personality.flags: personality flags are not supported"),
    (lambda s: s.update(domainname="x" * 65), "config.json: domainname: "),
    (lambda s: (s.update(domainname="a.b", hostname=None), s["linux"]["namespaces"].remove({"type": "uts"})),
     "config.json: domainname: needs a new uts namespace"),
])
def test_bad_domainname_or_personality_is_one_line(bundle, tmp_path, edit, words):
    b = bundle(["true"], edit=edit)
    r = run_runtime(tmp_path / "state", "create", "--bundle", str(b), "bad1")
    assert r.returncode == 1 and r.stderr.count(b"\n") == 1 and words.encode() in r.stderr, r.stderr
    assert not (tmp_path / "state" / "bad1").exists()


def _userns(s, host=100000):
    s["linux"]["namespaces"].append({"type": "user"})
    s["linux"]["uidMappings"] = [{"containerID": 0, "hostID": host, "size": 65536}]
    s["linux"]["gidMappings"] = [{"containerID": 0, "hostID": host, "size": 65536}]


@pytest.fixture
def open_bundle(bundle, tmp_path):
    """bundle(), in a directory that the container's mapped root may walk
    through (pytest's own is 0700, closed to host uid 100000)."""
    d = Path(tempfile.mkdtemp(prefix="pc-oci-userns-", dir="/tmp"))
    d.chmod(0o755)

    def make(args, edit=None, name="bundle"):
        b = shutil.copytree(bundle(args, edit=edit, name=name), d / name, symlinks=True)
        for mountpoint in ("proc", "dev", "sys"):    # the mapped root may not make them in a root-owned rootfs
            (b / "rootfs" / mountpoint).mkdir(exist_ok=True)
        return b
    yield make
    shutil.rmtree(d)


@pytest.mark.parametrize("name", _runtimes("runc"))
def test_user_namespace_with_the_bundle_id_maps(open_bundle, tmp_path, runtime_named, name):
    """root in the container is host uid 100000; the rootfs's (host root's)
    files show as the overflow id; the default /dev nodes work (bound from the
    host: no mknod in a user namespace); exec joins the user namespace too."""
    runtime = runtime_named(name)
    b = open_bundle(["sh", "-c", "id -u; cat /proc/self/uid_map /proc/self/gid_map; stat -c %u /bin/busybox; "
                            "echo x > /dev/null && head -c 1 /dev/zero | wc -c"], edit=_userns)
    r = run_runtime(tmp_path / "state", "run", "--bundle", str(b), "un1", runtime=runtime)
    assert r.returncode == 0, r.stderr
    assert [line.split() for line in r.stdout.decode().splitlines()] == [
        ["0"], ["0", "100000", "65536"], ["0", "100000", "65536"], ["65534"], ["1"]]
    b2 = open_bundle(["sleep", "60"], edit=_userns, name="bundle2")
    root = tmp_path / "state2"
    pid_file = tmp_path / "pid"
    assert run_runtime(root, "create", "--bundle", str(b2), "--pid-file", str(pid_file), "un2",
                       runtime=runtime).returncode == 0
    try:
        assert run_runtime(root, "start", "un2", runtime=runtime).returncode == 0
        with open(f"/proc/{int(pid_file.read_text())}/status") as f:
            uids = next(line.split()[1:] for line in f if line.startswith("Uid:"))
        assert uids == ["100000"] * 4
        r = run_runtime(root, "exec", "un2", "sh", "-c", "id -u; cat /proc/self/uid_map", runtime=runtime)
        assert (r.returncode, r.stdout.split()) == (0, [b"0", b"0", b"100000", b"65536"]), r.stderr
    finally:
        run_runtime(root, "delete", "--force", "un2", runtime=runtime)
    assert own_cgroup_dirs("pycontain-un1") == own_cgroup_dirs("pycontain-un2") == []


@pytest.mark.parametrize("edit, words", [
    (lambda s: s["linux"].update(uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}]),
     "config.json: linux.uidMappings: needs a user namespace"),
    (lambda s: s["linux"]["namespaces"].append({"type": "user"}),
     "config.json: linux.uidMappings: a new user namespace needs both uidMappings and gidMappings"),
    (lambda s: (_userns(s), s["linux"]["namespaces"][-1].update(path="/proc/self/ns/user")),
     "config.json: linux.uidMappings: not the maps of the joined user namespace /proc/self/ns/user"),
    (lambda s: (_userns(s), s["linux"]["uidMappings"].append({"containerID": 10, "hostID": 5, "size": 2})),
     "config.json: linux.uidMappings: the kernel refused the map: Invalid argument"),
    (lambda s: (_userns(s), s["linux"]["gidMappings"][0].update(size=0)),
     "config.json: linux.gidMappings[0].size: 0 is not a valid number"),
])
def test_bad_user_namespace_config_is_one_line(bundle, tmp_path, edit, words):
    b = bundle(["true"], edit=edit)
    r = run_runtime(tmp_path / "state", "create", "--bundle", str(b), "--pid-file", str(tmp_path / "pid"), "ubad")
    assert r.returncode == 1 and r.stderr.count(b"\n") == 1 and words.encode() in r.stderr, r.stderr
    assert not (tmp_path / "state" / "ubad").exists() and not (tmp_path / "pid").exists()
    assert own_cgroup_dirs("pycontain-ubad") == []


@pytest.mark.parametrize("name", _runtimes("runc"))
def test_joining_the_pid_namespace_of_another_container(bundle, tmp_path, runtime_named, name):
    """A pid namespace joined by path: the command sees the other container's
    processes, its init as pid 1 (a pod's shared pid namespace)."""
    runtime = runtime_named(name)
    first = bundle(["sleep", "60"], name="first")
    root = tmp_path / "state"
    pid_file = tmp_path / "pid"
    assert run_runtime(root, "create", "--bundle", str(first), "--pid-file", str(pid_file), "pj1").returncode == 0
    try:
        assert run_runtime(root, "start", "pj1").returncode == 0
        ns = f"/proc/{int(pid_file.read_text())}/ns/pid"

        def edit(s):
            s["linux"]["namespaces"] = [n if n["type"] != "pid" else {"type": "pid", "path": ns}
                                        for n in s["linux"]["namespaces"]]
        second = bundle(["sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '"], edit=edit, name="second")
        r = run_runtime(tmp_path / "state2", "run", "--bundle", str(second), "pj2", runtime=runtime)
        assert (r.returncode, r.stdout.decode().split("\n")[1]) == (0, "sleep 60 "), r.stderr
        assert int(r.stdout.split()[0]) > 1
    finally:
        run_runtime(root, "delete", "--force", "pj1")
    assert own_cgroup_dirs("pycontain-pj1") == own_cgroup_dirs("pycontain-pj2") == []


@pytest.mark.parametrize("name", _runtimes("runc"))
@pytest.mark.parametrize("option, reaches_host", [("rshared", True), ("rprivate", False)])
def test_shared_propagation_from_the_container_to_the_host(bundle, tmp_path, runtime_named, name, option,
                                                           reaches_host):
    """rootfsPropagation rshared and a bind of a shared host directory: what
    the container mounts below it appears on the host with rshared, not with
    rprivate; and its end unmounts nothing on the host. All in a mount
    namespace of the test's own."""
    runtime = runtime_named(name)
    shared = tmp_path / "shared"
    (shared / "x").mkdir(parents=True)

    def edit(s):
        s["linux"]["rootfsPropagation"] = "rshared"
        s["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(shared), "options": ["rbind", option]})
        s["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN"] for k in ("bounding", "effective", "permitted")}
    b = bundle(["mount", "-t", "tmpfs", "from-the-container", "/mnt/x"], edit=edit)
    points = "cut -d' ' -f5 /proc/self/mountinfo | grep -v '^" + str(shared) + "/x$' | sort"
    script = (f"mount --bind {shared} {shared} && mount --make-shared {shared} && {points} > {tmp_path}/before && "
              f"{runtime} --root {tmp_path}/state run --bundle {b} pr1 && "
              f"grep -c ' {shared}/x .* from-the-container ' /proc/self/mountinfo; "
              f"{points} > {tmp_path}/after; true")
    # a namespace whose mounts are all shared, as a host's usually are (systemd's)
    r = subprocess.run(["unshare", "--mount", "--propagation", "shared", "sh", "-c", script],
                       capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() in (b"0", b"1", b"2"), r.stderr
    assert (r.stdout.strip() != b"0") == reaches_host
    # the container's end unmounted nothing of ours (its old root's mounts were our peers)
    assert (tmp_path / "after").read_text() == (tmp_path / "before").read_text()
    assert own_cgroup_dirs("pycontain-pr1") == []




@pytest.mark.parametrize("name", _runtimes("runc"))
def test_rootless_spec_and_run_as_an_unprivileged_user(busybox, tmp_path, runtime_named, name):
    """`spec --rootless` and `run` by nobody (--rootless auto: the state under
    $XDG_RUNTIME_DIR): the same config.json as runc's, and the container's root
    is nobody on the host."""
    runtime = runtime_named(name)
    d = Path(tempfile.mkdtemp(prefix="pc-oci-rootless-", dir="/tmp"))
    try:
        d.chmod(0o755)
        b = d / "bundle"
        shutil.copytree(busybox, b / "rootfs", symlinks=True)
        for sub in ("proc", "dev", "sys"):
            (b / "rootfs" / sub).mkdir(exist_ok=True)
        (d / "xdg").mkdir()
        for p in (b, d / "xdg"):
            os.chown(p, NOBODY, NOBODY)

        env = {"PATH": os.environ["PATH"], "XDG_RUNTIME_DIR": str(d / "xdg")}

        def as_nobody(*args):
            if name != "pycontain-runc":
                return subprocess.run([runtime, *args], cwd=b, user=NOBODY, group=NOBODY, extra_groups=[],
                                      env=env, capture_output=True, timeout=60)
            # pycontain-runc's own code, already imported, in a child that
            # became nobody: nobody may not be able to read the checkout and
            # its venv (CI's may sit in a 0700 directory), as a real user's
            # installed copy always can
            return runc_main_as_nobody(list(args), b, env, d)
        r = as_nobody("spec", "--rootless")
        assert r.returncode == 0, r.stderr
        spec = json.loads((b / "config.json").read_text())
        if name == "pycontain-runc" and RUNC is not None:    # the same document as runc's, but the version
            other = d / "runc-spec"
            other.mkdir()
            os.chown(other, NOBODY, NOBODY)
            subprocess.run([RUNC, "spec", "--rootless"], cwd=other, user=NOBODY, group=NOBODY, extra_groups=[],
                           check=True, timeout=30)
            theirs = json.loads((other / "config.json").read_text())
            assert {**theirs, "ociVersion": ""} == {**spec, "ociVersion": ""}
        spec["process"].update(terminal=False, args=["sh", "-c", "id -u; cat /proc/self/uid_map; ls /sys/fs/cgroup"])
        (b / "config.json").write_text(json.dumps(spec))
        r = as_nobody("run", "rl1")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.decode().split("\n")
        assert lines[0] == "0" and lines[1].split() == ["0", str(NOBODY), "1"] and "memory" in lines[2:], r.stdout
        assert sorted(os.listdir(d / "xdg")) == [{"runc": "runc"}.get(name, "pycontain-runc")]
    finally:
        shutil.rmtree(d)


def runc_main_as_nobody(argv, cwd, env, tmp):
    """pycontain-runc's main(argv) run by nobody in cwd with env; a
    CompletedProcess of what it wrote on fds 1 and 2 (its container's too)."""
    outs = [tmp / "nobody.out", tmp / "nobody.err"]

    def main():
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        for fd, path in zip((1, 2), outs, strict=True):
            f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(f, fd)
            os.close(f)
        return oci_cli.main(argv)

    for path in outs:    # made by root, written by nobody
        path.touch()
        os.chown(path, NOBODY, NOBODY)
    result = as_nobody(main)
    assert "ok" in result, result
    return subprocess.CompletedProcess(argv, result["ok"], outs[0].read_bytes(), outs[1].read_bytes())


@pytest.mark.parametrize("name", _runtimes("crun"))
def test_idmapped_mounts(open_bundle, tmp_path, runtime_named, name):
    """An idmapped bind (Linux 5.12+; runc 1.1.5 has none): with "idmap" the
    container's own maps (host root's file is the container root's, and
    writable by it, and stays host root's); with maps of the mount's own,
    written as user namespace maps (on-disk id inside, id outside). crun
    shows the same."""
    runtime = runtime_named(name)
    data = Path(tempfile.mkdtemp(prefix="pc-oci-idmap-", dir="/tmp"))
    try:
        data.chmod(0o755)
        (data / "f").write_text("hello\n")

        def edit(s):
            _userns(s)
            s["process"]["capabilities"] = {k: ["CAP_DAC_OVERRIDE"] for k in ("bounding", "effective", "permitted")}
            s["mounts"] += [
                {"destination": "/idm", "type": "bind", "source": str(data), "options": ["bind", "idmap"]},
                {"destination": "/own", "type": "bind", "source": str(data), "options": ["bind"],
                 "uidMappings": [{"containerID": 0, "hostID": 101000, "size": 1}],
                 "gidMappings": [{"containerID": 0, "hostID": 101000, "size": 1}]}]
        b = open_bundle(["sh", "-c", "stat -c '%u %g' /idm/f /own/f; echo more >> /idm/f && echo wrote"], edit=edit)
        for d in ("idm", "own"):
            (b / "rootfs" / d).mkdir()
        r = run_runtime(tmp_path / "state", "run", "--bundle", str(b), "im1", runtime=runtime)
        assert (r.returncode, r.stdout) == (0, b"0 0\n1000 1000\nwrote\n"), r.stderr
        st = (data / "f").stat()
        assert ((data / "f").read_text(), st.st_uid, st.st_gid) == ("hello\nmore\n", 0, 0)
    finally:
        shutil.rmtree(data)
    assert own_cgroup_dirs("pycontain-im1") == []


@pytest.mark.parametrize("edit, words", [
    (lambda s: (_userns(s), s["mounts"].append({"destination": "/x", "type": "tmpfs", "source": "tmpfs",
                                                 "options": ["idmap"]})),
     "config.json: mounts[7].options: an idmapped mount must be a bind mount"),
    (lambda s: s["mounts"].append({"destination": "/x", "type": "bind", "source": "/tmp", "options": ["ridmap"]}),
     "config.json: mounts[7].options: an idmapped mount without maps of its own needs a new user namespace"),
    (lambda s: s["mounts"].append({"destination": "/x", "type": "bind", "source": "/tmp",
                                   "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}),
     "config.json: mounts[7].gidMappings: needs both uidMappings and gidMappings"),
])
def test_bad_idmapped_mount_is_one_line(bundle, tmp_path, edit, words):
    b = bundle(["true"], edit=edit)
    r = run_runtime(tmp_path / "state", "create", "--bundle", str(b), "ibad")
    assert r.returncode == 1 and r.stderr.count(b"\n") == 1 and words.encode() in r.stderr, r.stderr
    assert not (tmp_path / "state" / "ibad").exists()


@pytest.mark.parametrize("name", _runtimes("runc"))
@pytest.mark.parametrize("share_pid", [False, True], ids=["own-pid", "shared-pid"])
def test_joining_the_user_namespace_of_another_container(open_bundle, tmp_path, runtime_named, name, share_pid):
    """A pod's containers in its sandbox's user namespace (how containerd runs
    hostUsers: false pods): joined by path, with the sandbox's maps repeated
    (checked), the other namespaces new and owned by it, or its pid namespace
    shared too."""
    runtime = runtime_named(name)
    sandbox = open_bundle(["sleep", "60"], edit=_userns, name="sandbox")
    root = tmp_path / "state"
    pid_file = tmp_path / "pid"
    assert run_runtime(root, "create", "--bundle", str(sandbox), "--pid-file", str(pid_file), "uj1").returncode == 0
    try:
        assert run_runtime(root, "start", "uj1").returncode == 0
        pid = int(pid_file.read_text())

        def edit(s):
            _userns(s)
            s["linux"]["namespaces"][-1]["path"] = f"/proc/{pid}/ns/user"
            if share_pid:
                s["linux"]["namespaces"] = [n if n["type"] != "pid" else {"type": "pid", "path": f"/proc/{pid}/ns/pid"}
                                            for n in s["linux"]["namespaces"]]
        b = open_bundle(["sh", "-c", "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user; echo $$; "
                                     "echo x > /dev/null && touch /dev/shm/made && echo ok"], edit=edit, name="app")
        r = run_runtime(tmp_path / "state2", "run", "--bundle", str(b), "uj2", runtime=runtime)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.decode().split("\n")
        assert lines[0] == "0" and lines[1].split() == ["0", "100000", "65536"]
        assert lines[2] == os.readlink(f"/proc/{pid}/ns/user")
        assert (lines[3] == "1") != share_pid and lines[4] == "ok"
    finally:
        run_runtime(root, "delete", "--force", "uj1")
    assert own_cgroup_dirs("pycontain-uj1") == own_cgroup_dirs("pycontain-uj2") == []
