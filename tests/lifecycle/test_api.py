"""The lifecycle from Python: every transition, every refused one, exec, logs, wait."""
import asyncio
import os
import time

import pytest

from pycontain import containers
from pycontain.containers import ContainerStateError, StartFailed
from pycontain.errors import ConfigError, ContainerTimeout

from .conftest import wait_for

pytestmark = pytest.mark.usefixtures("managed")


def init_ready(c):
    """pycontain-init blocks signals before it forks the command; one sent
    before that is lost (pid 1 has no default actions), in docker too."""
    def forked():
        pid = c.reload().record.pid
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return f.read().strip() != ""
    assert wait_for(forked)


def _sleeper(busybox, **kw):
    # --init: pid 1 then acts on SIGTERM, so stop() does not need its timeout
    return containers.create(rootfs=str(busybox), command=["sleep", "60"], init=True, **kw)


def test_create_start_stop_start_remove(busybox, store_root):
    c = _sleeper(busybox, name="cycle")
    cdir = store_root / "containers" / c.id
    assert c.status == "created" and cdir.is_dir() and (cdir / "upper").is_dir()
    assert c.record.pid is None
    c.start()
    assert c.status == "running"
    pid = c.record.pid
    assert os.path.exists(f"/proc/{pid}")
    init_ready(c)
    c.stop(timeout=5)
    assert c.status == "exited"
    assert c.record.exit_code == 143  # SIGTERM, forwarded by the init
    assert c.record.finished >= c.record.started
    c.start()  # an exited container starts again, keeping its writable layer
    assert c.status == "running" and c.record.pid != pid
    init_ready(c)
    c.restart(timeout=5)
    assert c.status == "running"
    c.kill()
    assert c.wait(timeout=10) == 137
    c.remove()
    assert not cdir.exists()
    with pytest.raises(containers.NoSuchContainer):
        containers.get("cycle")


def test_writable_layer_survives_a_restart(busybox):
    c = containers.run(rootfs=str(busybox), command=["sh", "-c", "echo kept >> /root/file; sleep 60"], init=True)
    assert wait_for(lambda: c.exec_run(["cat", "/root/file"]).stdout == b"kept\n")
    init_ready(c)
    c.stop(timeout=5)
    c.start()
    assert wait_for(lambda: c.exec_run(["cat", "/root/file"]).stdout == b"kept\nkept\n")
    assert not (busybox / "root" / "file").exists()


def test_invalid_transitions_say_what_is_wrong(busybox):
    c = _sleeper(busybox)
    short = c.short_id
    with pytest.raises(ContainerStateError, match=f"container {short} is not running"):
        c.exec_run(["true"])
    with pytest.raises(ContainerStateError, match=f"container {short} is not running"):
        c.kill()
    with pytest.raises(ContainerStateError, match=f"container {short} is not running"):
        c.pause()
    with pytest.raises(ContainerStateError, match=f"container {short} is not paused"):
        c.unpause()
    c.start()
    c.start()  # docker: starting a running container is a no-op
    with pytest.raises(ContainerStateError, match=f"container {short} is not paused"):
        c.unpause()
    with pytest.raises(ContainerStateError, match="container is running: stop the container before removing or force remove"):
        c.remove()
    assert c.reload().status == "running"
    c.remove(force=True)
    with pytest.raises(containers.NoSuchContainer):
        c.reload()


def test_bad_input_leaves_nothing(busybox, store_root):
    with pytest.raises(ConfigError, match="invalid container name"):
        containers.create(rootfs=str(busybox), command=["true"], name="bad name!")
    with pytest.raises(ConfigError, match="invalid restart policy"):
        containers.create(rootfs=str(busybox), command=["true"], restart_policy="sometimes")
    with pytest.raises(ConfigError, match="invalid max-size"):
        containers.create(rootfs=str(busybox), command=["true"], log_opts=["max-size=lots"])
    with pytest.raises(ConfigError, match="invalid signal"):
        containers.create(rootfs=str(busybox), command=["true"], stop_signal="SIGNOPE")
    with pytest.raises(ConfigError, match="invalid hostname"):
        containers.create(rootfs=str(busybox), command=["true"], hostname="-x")
    c = containers.create(rootfs=str(busybox), command=["true"], name="taken")
    with pytest.raises(containers.ContainerError, match='name "/taken" is already in use'):
        containers.create(rootfs=str(busybox), command=["true"], name="taken")
    c.remove()
    assert os.listdir(store_root / "containers") == []


def test_start_failure_is_recorded_with_dockers_status(busybox):
    c = containers.create(rootfs=str(busybox), command=["no-such-command"])
    with pytest.raises(StartFailed, match='exec: "no-such-command": executable file not found') as e:
        c.start()
    assert e.value.exit_status == 127
    assert c.reload().status == "exited" and c.record.exit_code == 127


def test_exit_code_recorded_by_the_monitor(busybox):
    c = containers.run(rootfs=str(busybox), command=["sh", "-c", "sleep 0.2; exit 7"])
    assert c.wait(timeout=10) == 7
    assert c.reload().status == "exited" and c.record.exit_code == 7


def test_exec_sees_the_containers_pid_namespace_files_and_hostname(busybox):
    c = containers.run(rootfs=str(busybox), command=["sh", "-c", "echo inside > /tmp/marker; exec sleep 60"],
                       hostname="boxed", env={"FROM_RUN": "yes"})
    assert wait_for(lambda: c.exec_run(["cat", "/tmp/marker"]).stdout == b"inside\n")
    r = c.exec_run(["sh", "-c", "echo $$; hostname; cat /tmp/marker; echo $FROM_RUN $EXTRA; ps -o pid,comm"],
                   env=["EXTRA=1"])
    lines = r.stdout.decode().splitlines()
    assert r.returncode == 0, r.stderr
    assert lines[1:4] == ["boxed", "inside", "yes 1"]
    pids = {ln.split()[0]: ln.split()[1] for ln in lines[5:]}
    assert pids.get("1") == "sleep"  # the container's init is pid 1 in exec's pid namespace
    assert int(lines[0]) > 1
    assert os.readlink(f"/proc/{c.record.pid}/ns/pid") != os.readlink("/proc/self/ns/pid")


def test_exec_user_workdir_privileges_and_status(busybox):
    c = containers.run(rootfs=str(busybox), command=["sleep", "60"], cap_drop=["NET_RAW"])
    assert c.exec_run(["id", "-u"], user="user").stdout == b"1000\n"
    assert c.exec_run(["pwd"], workdir="/tmp").stdout == b"/tmp\n"
    assert c.exec_run(["sh", "-c", "exit 3"]).returncode == 3
    status = c.exec_run(["cat", "/proc/self/status"]).stdout.decode()
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["NoNewPrivs"].strip() == "1"
    assert int(fields["CapBnd"], 16) & (1 << 13) == 0  # NET_RAW dropped, as for the init
    init_caps = open(f"/proc/{c.record.pid}/status").read().split("CapBnd:\t")[1].split()[0]
    assert fields["CapBnd"].strip() == init_caps
    with pytest.raises(containers.ContainerError, match='executable file not found'):
        c.exec_run(["nope"])
    assert c.exec_run(["cat"], stdin=b"piped").stdout == b"piped"
    # exec joins the container's cgroups (its limits and accounting apply)
    assert c.exec_run(["cat", "/proc/self/cgroup"]).stdout == c.exec_run(["cat", "/proc/1/cgroup"]).stdout


def test_stats_from_the_containers_cgroup(busybox):
    c = containers.run(rootfs=str(busybox), command=["sh", "-c", "sleep 60 & sleep 60 & wait"], memory="64m")
    assert wait_for(lambda: c.stats()["pids"] == 3)
    s = c.stats()
    assert s["memory_limit"] == 64 << 20
    assert 0 < s["memory_usage"] < 64 << 20


def test_logs_follow_a_running_container_and_survive_its_end(busybox):
    c = containers.run(rootfs=str(busybox),
                       command=["sh", "-c", "for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.2; done"])
    followed = list(c.log_entries(follow=True))  # returns once the container ended
    assert [t for s, t, _ in followed if s == "stdout"] == ["out1\n", "out2\n", "out3\n"]
    assert [t for s, t, _ in followed if s == "stderr"] == ["err1\n", "err2\n", "err3\n"]
    assert c.reload().status == "exited"
    assert c.logs(stderr=False) == b"out1\nout2\nout3\n"
    assert c.logs(tail=1, stdout=False) == b"err3\n"
    stamped = c.logs(timestamps=True, stderr=False).decode().splitlines()
    assert all(line.endswith(f"out{i + 1}") and line[:4].isdigit() for i, line in enumerate(stamped))
    assert c.logs(since=time.time() + 5) == b""
    c.start()  # a new run appends to the same log
    c.wait(timeout=10)
    assert c.logs(stderr=False).count(b"out1") == 2


def test_log_rotation_by_size(busybox, store_root):
    c = containers.run(rootfs=str(busybox), log_opts=["max-size=2k", "max-file=3"],
                       command=["sh", "-c", "i=0; while [ $i -lt 200 ]; do echo line$i; i=$((i+1)); done"])
    c.wait(timeout=10)
    log = c.record.log_path
    assert os.path.exists(log + ".1") and os.path.exists(log + ".2") and not os.path.exists(log + ".3")
    assert all(os.path.getsize(p) < 2048 + 200 for p in (log, log + ".1", log + ".2"))
    lines = c.logs().decode().splitlines()
    assert lines[-1] == "line199"
    assert lines == [f"line{i}" for i in range(200 - len(lines), 200)]  # oldest dropped, order kept


def test_stop_uses_the_stop_signal_then_sigkill(busybox):
    # sh as pid 1 ignores SIGTERM: stop waits its timeout, then SIGKILL
    c = containers.run(rootfs=str(busybox), command=["sh", "-c", "while true; do sleep 0.1; done"])
    t = time.monotonic()
    c.stop(timeout=0.5)
    assert 0.5 <= time.monotonic() - t < 5
    assert c.record.exit_code == 137
    # a stop signal it handles ends it at once
    d = containers.run(rootfs=str(busybox), stop_signal="SIGUSR1",
                       command=["sh", "-c", "trap 'exit 42' USR1; while true; do sleep 0.1; done"])
    time.sleep(0.2)
    d.stop(timeout=10)
    assert d.record.exit_code == 42


def test_stop_waits_the_containers_own_stop_timeout_and_labels_filter(busybox):
    # sh as pid 1 ignores SIGTERM: stop() without a timeout waits the
    # container's --stop-timeout (1 s), not docker's default 10 s
    c = containers.run(rootfs=str(busybox), command=["sh", "-c", "while true; do sleep 0.1; done"],
                       labels={"tier": "web", "n": "1"}, stop_timeout=1)
    other = containers.create(rootfs=str(busybox), command=["true"], labels={"tier": "db"})
    assert c.attrs["Config"]["Labels"] == {"tier": "web", "n": "1"}
    assert c.attrs["Config"]["StopTimeout"] == 1 and "StopTimeout" not in other.attrs["Config"]
    assert [x.id for x in containers.list(all=True, filters={"label": ["tier=web"]})] == [c.id]
    assert [x.id for x in containers.list(all=True, filters={"label": "tier=db"})] == [other.id]
    assert {x.id for x in containers.list(all=True, filters={"label": "tier"})} == {c.id, other.id}
    assert containers.list(all=True, filters={"label": ["tier", "n=2"]}) == []
    t = time.monotonic()
    c.stop()
    assert 1 <= time.monotonic() - t < 5
    assert c.record.exit_code == 137
    for bad in ("1", 1.5, True):
        with pytest.raises(ConfigError, match="stop timeout"):
            containers.create(rootfs=str(busybox), command=["true"], stop_timeout=bad)
    for bad in (["a=b"], {"n": 1}):
        with pytest.raises(ConfigError, match="labels"):
            containers.create(rootfs=str(busybox), command=["true"], labels=bad)
    other.remove()


def test_kill_with_a_signal(busybox):
    c = containers.run(rootfs=str(busybox), command=["sh", "-c", "trap 'exit 5' HUP; while true; do sleep 0.1; done"])
    time.sleep(0.2)
    c.kill("HUP")
    assert c.wait(timeout=10) == 5


def test_wait_timeout_and_async_wait(busybox):
    c = containers.run(rootfs=str(busybox), command=["sh", "-c", "sleep 0.5; exit 9"])
    with pytest.raises(ContainerTimeout):
        c.wait(timeout=0.05)
    assert asyncio.run(asyncio.wait_for(c.wait_async(), 10)) == 9


def test_restart_policy_on_failure_with_a_maximum(busybox):
    c = containers.run(rootfs=str(busybox), command=["sh", "-c", "exit 3"], restart_policy="on-failure:2")
    assert wait_for(lambda: c.reload().status == "exited" and c.record.restart_count == 2, 15)
    assert c.record.exit_code == 3
    c.remove()


def test_restart_policy_always_until_stopped(busybox):
    c = containers.run(rootfs=str(busybox), command=["sh", "-c", "echo run; exit 0"], restart_policy="always")
    assert wait_for(lambda: c.reload().record.restart_count >= 2, 15)
    c.stop(timeout=2)
    assert c.status == "exited"
    count = c.record.restart_count
    time.sleep(0.5)
    assert c.reload().status == "exited" and c.record.restart_count == count  # no restart after stop
    assert c.logs().count(b"run\n") in (count, count + 1)  # stopped in a run or in the back-off


def test_no_restart_policy_and_success_with_on_failure(busybox):
    a = containers.run(rootfs=str(busybox), command=["sh", "-c", "exit 1"])
    b = containers.run(rootfs=str(busybox), command=["true"], restart_policy="on-failure")
    assert a.wait(timeout=10) == 1 and b.wait(timeout=10) == 0
    time.sleep(0.3)
    assert a.reload().record.restart_count == 0 and b.reload().record.restart_count == 0


def test_auto_remove(busybox, store_root):
    c = containers.run(rootfs=str(busybox), command=["true"], auto_remove=True)
    assert wait_for(lambda: not (store_root / "containers" / c.id).exists())
    with pytest.raises(containers.NoSuchContainer):
        containers.get(c.id)


def test_list_filters_rename_top_stats(busybox):
    a = containers.run(rootfs=str(busybox), command=["sleep", "60"], name="alpha")
    b = containers.create(rootfs=str(busybox), command=["true"], name="beta")
    assert [c.name for c in containers.list()] == ["alpha"]
    assert {c.name for c in containers.list(all=True)} == {"alpha", "beta"}
    assert [c.name for c in containers.list(filters={"status": "created"})] == ["beta"]
    assert [c.name for c in containers.list(filters={"name": "alp"})] == ["alpha"]
    b.rename("gamma")
    assert containers.get("gamma").id == b.id
    with pytest.raises(containers.ContainerError, match="already in use"):
        b.rename("alpha")
    top = a.top()
    assert top["Titles"][1] == "PID" and [p[-1] for p in top["Processes"]] == ["sleep 60"]
    s = a.stats()
    assert s["pids"] == 1 and s["memory_usage"] > 0
    assert containers.prune()["ContainersDeleted"] == [b.id]
    assert [c.name for c in containers.list(all=True)] == ["alpha"]


def _freezer_state(pid):
    path = next(line.split(":", 2)[2].strip() for line in open(f"/proc/{pid}/cgroup") if ":freezer:" in line)
    with open(f"/sys/fs/cgroup/freezer{path}/freezer.state") as f:
        return f.read().strip()


def test_pause_unpause_freeze_the_containers_own_cgroup(busybox):
    c = containers.run(rootfs=str(busybox), command=["sh", "-c", "while true; do echo tick; sleep 0.05; done"])
    pid = c.record.pid
    assert wait_for(lambda: c.logs())
    c.pause()
    assert c.status == "paused"
    assert wait_for(lambda: _freezer_state(pid) == "FROZEN")
    time.sleep(0.1)  # output written just before the freeze reaches the log
    size = len(c.logs())
    time.sleep(0.3)
    assert len(c.logs()) == size  # frozen: no more output
    with pytest.raises(ContainerStateError, match="is paused, unpause the container before exec"):
        c.exec_run(["true"])
    with pytest.raises(ContainerStateError, match="is already paused"):
        c.pause()
    with pytest.raises(ContainerStateError, match="cannot start a paused container"):
        c.start()
    assert containers.get(c.id).attrs["State"]["Paused"] is True
    c.unpause()
    assert c.status == "running" and _freezer_state(pid) == "THAWED"
    assert c.exec_run(["true"]).returncode == 0
    assert wait_for(lambda: len(c.logs()) > size)
    c.pause()
    c.stop(timeout=2)  # a paused container is thawed to receive its signals
    assert c.status == "exited"


def test_network_container_mode_joins_a_managed_container(busybox):
    web = containers.run(rootfs=str(busybox), command=["sleep", "60"], name="netowner", network="none")
    side = containers.run(rootfs=str(busybox), command=["sleep", "60"], network="container:netowner")
    assert os.readlink(f"/proc/{side.record.pid}/ns/net") == os.readlink(f"/proc/{web.record.pid}/ns/net")
    assert os.readlink(f"/proc/{side.record.pid}/ns/pid") != os.readlink(f"/proc/{web.record.pid}/ns/pid")
    web.stop(timeout=0)
    with pytest.raises(StartFailed, match="is not running"):
        containers.run(rootfs=str(busybox), command=["true"], network="container:netowner")
