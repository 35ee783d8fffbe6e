"""Container records: names, id prefixes, concurrent writers, recovery."""
import multiprocessing
import os
import re
import signal
import time

import pytest

from pycontain import containers
from pycontain.state import AmbiguousContainer, ContainerRecord, NameInUse, NoSuchContainer, Store, generate_name

from .conftest import wait_for


def _record(cid, name=""):
    return ContainerRecord(id=cid, name=name, image="busybox", config={})


def test_names_prefixes_and_ambiguity(tmp_path):
    st = Store(tmp_path)
    a = st.insert(_record("ab" + "1" * 62, "first"))
    st.insert(_record("ab" + "2" * 62))
    assert st.get("first").id == a.id
    assert st.get("ab1").id == a.id
    assert st.get(a.id).name == "first"
    with pytest.raises(AmbiguousContainer, match="multiple containers match 'ab'"):
        st.get("ab")
    with pytest.raises(NoSuchContainer, match="no such container: zz"):
        st.get("zz")
    with pytest.raises(NameInUse, match='name "/first" is already in use'):
        st.insert(_record("cd" * 32, "first"))
    st.close()


def test_a_listing_without_exec_profiles_keeps_the_network_part_and_the_rest_of_the_record(tmp_path):
    """ps lists records without what exec copies from the init (the seccomp
    program is ~15 KB a record), but with their ports and addresses."""
    st = Store(tmp_path)
    network = {"ip_address": "10.88.0.5", "ports": [{"host_ip": "", "host_port": 8080, "container_port": 80,
                                                      "proto": "tcp"}]}
    profile = {"uid": 0, "gid": 0, "seccomp": "ab" * 4000, "env": ["PATH=/bin"], "network": network,
               "cgroups": ["/sys/fs/cgroup/pids/x"]}
    st.insert(ContainerRecord(id="a" * 64, name="web", image="busybox", config={"labels": {"k": "v"}},
                              exec_profile=profile, log_opts={"max-size": "1m"}))
    st.insert(ContainerRecord(id="b" * 64, name="plain", image="busybox", config={}, exec_profile={}))
    st.update("a" * 64, state="exited", exit_code=3, boot_id="x")
    whole = {r.name: r for r in st.list()}
    listed = {r.name: r for r in st.list(exec_profiles=False)}
    assert whole["web"].exec_profile == profile
    assert listed["web"].exec_profile == {"network": network}
    assert listed["plain"].exec_profile == {}
    for name in ("web", "plain"):   # every other field as stored
        assert {**vars(listed[name]), "exec_profile": None} == {**vars(whole[name]), "exec_profile": None}
    assert [r.name for r in st.list(exec_profiles=False)] == [r.name for r in st.list()]
    st.json_in_sql = False   # an SQLite without its JSON functions: whole records, as before
    assert {r.name: r.exec_profile for r in st.list(exec_profiles=False)}["web"] == profile
    st.close()


def test_generated_names_look_like_dockers():
    for _ in range(50):
        assert re.fullmatch(r"[a-z]+_[a-z]+", generate_name())


def _insert_many(root, prefix, n):
    st = Store(root)
    for i in range(n):
        st.insert(_record(f"{prefix:02x}{i:062x}"))
        st.update(f"{prefix:02x}{i:062x}", state="running")
    st.close()


def test_concurrent_writers_lose_nothing(tmp_path):
    """Four processes inserting and updating at once: every record whole."""
    procs = [multiprocessing.get_context("spawn").Process(target=_insert_many, args=(tmp_path, p, 40))
             for p in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    st = Store(tmp_path)
    rows = st._read("SELECT id, name, state FROM containers")
    assert len(rows) == 160
    assert len({r["name"] for r in rows}) == 160
    assert {r["state"] for r in rows} == {"running"}
    st.close()


def test_killed_monitor_is_found_and_marked_exited(busybox, managed, store_root):
    c = containers.run(rootfs=str(busybox), command=["sleep", "60"])
    rec = c.record
    assert rec.state == "running"
    init_pid, monitor = rec.pid, rec.monitor_pid
    cgroup_dirs = rec.exec_profile["cgroups"]
    assert cgroup_dirs and all(os.path.isdir(d) for d in cgroup_dirs)
    os.kill(monitor, signal.SIGKILL)
    # the container's init dies with its monitor (pdeathsig)
    assert wait_for(lambda: not os.path.exists(f"/proc/{init_pid}") or _zombie(init_pid))
    c.reload()
    assert c.status == "exited"
    assert c.record.exit_code == 137
    assert "monitor ended unexpectedly" in c.record.error
    assert c.record.monitor_pid is None
    # its cgroups, left behind by the dead monitor, went with the recovery
    assert not any(os.path.exists(d) for d in cgroup_dirs)
    # and it can be started again
    c.start()
    assert c.reload().status == "running"
    c.remove(force=True)


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_a_record_from_an_earlier_boot_is_recovered(tmp_path):
    """After a reboot the recorded pids may belong to new processes (even our
    own): the boot id tells the record is stale."""
    st = Store(tmp_path)
    me = os.getpid()
    from pycontain.state import process_start_time
    rec = _record("ef" * 32, "old")
    rec.state, rec.started = "running", time.time()
    rec.monitor_pid = rec.pid = me
    rec.monitor_start = rec.pid_start = process_start_time(me)
    rec.boot_id = "an-earlier-boot"
    st.insert(rec)
    got = st.get("old")
    assert (got.state, got.exit_code, got.monitor_pid) == ("exited", 137, None)
    assert os.path.exists(f"/proc/{me}")  # the live process that reused the pid was left alone
    st.close()


def test_an_auto_remove_container_whose_monitor_was_killed_goes_at_the_next_look(busybox, managed, store_root):
    """docker removes a --rm container at its restart when it finds it
    stopped: its record, directory, cgroups and anonymous volumes."""
    from pycontain import Mount, volumes

    c = containers.run(rootfs=str(busybox), command=["sleep", "60"], auto_remove=True,
                       mounts=[Mount(None, "/data", type="volume")])
    rec = c.record
    vol = next(m["source"] for m in rec.config["mounts"] if m["type"] == "volume")
    assert vol in [v.name for v in volumes.list(root=store_root)]
    cgroup_dirs = rec.exec_profile["cgroups"]
    assert cgroup_dirs and all(os.path.isdir(d) for d in cgroup_dirs)
    os.kill(rec.monitor_pid, signal.SIGKILL)
    assert wait_for(lambda: not os.path.exists(f"/proc/{rec.pid}") or _zombie(rec.pid))
    assert c.id not in [x.id for x in containers.list(all=True)]
    with pytest.raises(NoSuchContainer):
        containers.get(c.id)
    assert not os.path.exists(containers.shared_store().container_dir(c.id))
    assert not any(os.path.exists(d) for d in cgroup_dirs)
    assert vol not in [v.name for v in volumes.list(root=store_root)]


def test_the_exit_time_of_a_lost_container_is_not_the_time_of_the_look(busybox, managed):
    c = containers.run(rootfs=str(busybox), command=["sh", "-c", "echo up; sleep 60"])
    assert wait_for(lambda: c.logs() == b"up\n")
    rec = c.record
    killed = time.time()
    os.kill(rec.monitor_pid, signal.SIGKILL)
    assert wait_for(lambda: not os.path.exists(f"/proc/{rec.pid}") or _zombie(rec.pid))
    time.sleep(1.5)
    c.reload()
    assert c.status == "exited"
    assert rec.started <= c.record.finished <= killed + 0.5
    c.remove()
