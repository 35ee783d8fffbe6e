"""Pure logic of managed containers: names, restart policies, filters, the
record's JSON and signals. No root, no kernel, milliseconds."""
import signal

import pytest

from pycontain import ConfigError, Container, Mount, names
from pycontain.managed import record
from pycontain.state import ContainerRecord


@pytest.mark.parametrize("name", ["ab", "web-1", "a.b_c", "0x", "A" * 200])
def test_docker_name_rule_accepts(name):
    assert names.check("container", name) == name


@pytest.mark.parametrize("name", ["a", "", "-ab", "_ab", ".ab", "a b", "a/b", "é1", None, 12])
def test_docker_name_rule_refuses(name):
    with pytest.raises(ConfigError, match="only \\[a-zA-Z0-9\\]\\[a-zA-Z0-9_.-\\] are allowed"):
        names.check("container", name)


def test_the_library_and_managed_containers_agree_on_names():
    # one rule: Container(name="a") was accepted while containers.create(name="a") was refused
    with pytest.raises(ConfigError):
        Container(rootfs="/", name="a")
    Container(rootfs="/", name="ab")


@pytest.mark.parametrize("policy,parsed", [
    (None, ("no", 0)), ("no", ("no", 0)), ("always", ("always", 0)), ("on-failure", ("on-failure", 0)),
    ("on-failure:3", ("on-failure", 3)), ("unless-stopped", ("unless-stopped", 0)),
])
def test_restart_policies(policy, parsed):
    assert record.parse_restart_policy(policy) == parsed


@pytest.mark.parametrize("policy", ["sometimes", "always:3", "on-failure:x", "on-failure:-1"])
def test_bad_restart_policies(policy):
    with pytest.raises(ConfigError):
        record.parse_restart_policy(policy)


def test_should_restart():
    assert record.should_restart("always", 0, 100, False)
    assert not record.should_restart("always", 1, 0, True)          # stopped: never
    assert record.should_restart("on-failure:2", 1, 1, False)
    assert not record.should_restart("on-failure:2", 1, 2, False)   # retries used up
    assert not record.should_restart("on-failure", 0, 0, False)     # success
    assert not record.should_restart("no", 1, 0, False)


@pytest.mark.parametrize("given,number", [
    ("SIGTERM", signal.SIGTERM), ("term", signal.SIGTERM), ("9", 9), (15, 15), ("usr1", signal.SIGUSR1),
])
def test_signal_numbers(given, number):
    assert record.signal_number(given) == number


def test_bad_signal():
    with pytest.raises(ConfigError, match="invalid signal"):
        record.signal_number("SIGNOPE")


def test_a_record_of_before_the_config_version_still_starts():
    """Records written before CONFIG_VERSION kept Container(...)'s keyword arguments."""
    legacy = {"image": "busybox", "command": ["true"], "tty": True, "stop_signal": "SIGTERM",
              "auto_remove": False, "stdin_open": False, "ulimits": [["nofile", 10, 20]],
              "mounts": [{"source": "/src", "target": "/dst", "read_only": True, "type": "bind", "options": []}]}
    args = record.container_arguments(_rec(name="old", config=legacy))
    assert args["mounts"] == [Mount("/src", "/dst", read_only=True)]
    assert args["ulimits"] == [("nofile", 10, 20)] and args["name"] == "old"
    assert not {"tty", "stop_signal", "auto_remove", "stdin_open"} & set(args)


def test_a_record_starts_from_its_container_config():
    c = Container(rootfs="/", command=["true"], memory="8m", pull="never", cgroup=True)
    data = record.record_config(c.config, tty=False, stop_signal="SIGTERM", auto_remove=False, stdin_open=False,
                                cgroup=True, pull="never", storage_driver="overlay")
    args = record.container_arguments(_rec(name="renamed", config=data))
    assert args["config"].name == "renamed"               # the name at start (rename), not at create
    assert args["config"].resources == c.config.resources
    assert (args["cgroup"], args["pull"], args["storage_driver"]) == (True, "never", "overlay")
    Container(**args)                                      # what the monitor does


def _rec(**kw):
    base = dict(id="ab" * 32, name="web", image="busybox", config={})
    base.update(kw)
    return ContainerRecord(**base)


def test_ps_filters():
    rec = _rec(state="exited", exit_code=3)
    assert record.matches_filters(rec, {"status": "exited", "name": "^we", "id": "abab", "exited": 3})
    assert record.matches_filters(rec, {"ancestor": ["alpine", "busybox"]})
    assert not record.matches_filters(rec, {"exited": 0})
    assert not record.matches_filters(_rec(state="running"), {"status": ["exited", "created"]})
    with pytest.raises(ConfigError, match="invalid filter"):
        record.matches_filters(rec, {"volume": "x"})


def test_ps_label_filter():
    """docker ps --filter label=KEY and label=KEY=VALUE: every one given must match."""
    rec = _rec(config={"labels": {"suite": "api", "empty": ""}})
    assert record.matches_filters(rec, {"label": "suite"})
    assert record.matches_filters(rec, {"label": ["suite=api", "empty="]})
    assert not record.matches_filters(rec, {"label": ["suite=api", "other"]})
    assert not record.matches_filters(rec, {"label": "suite=cli"})
    assert not record.matches_filters(_rec(), {"label": "suite"})


def test_a_record_round_trips_through_its_row():
    rec = _rec(config={"image": "sha256:" + "0" * 64, "auto_remove": True}, oom_killed=True,
               log_opts={"max-size": "1m"}, exec_profile={"uid": 0})
    assert ContainerRecord.from_row(rec.to_row()) == rec


def test_a_container_config_survives_json():
    """What a managed container's record keeps: the validated ContainerConfig."""
    import json
    import os
    import stat

    from pycontain.config import ContainerConfig

    # any block device of the machine: a rate limit names one
    block = next(f"/dev/{n}" for n in sorted(os.listdir("/dev"))
                 if stat.S_ISBLK(os.stat(f"/dev/{n}", follow_symlinks=False).st_mode))
    c = Container(rootfs="/", command=["sh", "-c", "true"], entrypoint=["/bin/env"], env={"A": "1"},
                  hostname="h1", user="1:2", workdir="/tmp", read_only=True, init=True, network="bridge",
                  mounts=[Mount("/tmp", "/t", read_only=True), Mount(None, "/v", type="volume"),
                          Mount(None, "/s", type="tmpfs", options=("size=1m",))],
                  cap_add=["NET_ADMIN"], cap_drop=["CHOWN"], ulimits=["nofile=10:20"], oom_score_adj=5,
                  security_opt=["no-new-privileges:false"], group_add=["10"], name="web1",
                  ports=["127.0.0.1:8080:80/udp", "90"], dns=["1.1.1.1"], add_hosts=["db:10.0.0.2"],
                  devices=["/dev/null:/dev/xnull:r"], memory="64m", cpuset_cpus="0", pids_limit=10,
                  device_read_bps=[f"{block}:1mb"], cgroup_parent="p")
    data = json.loads(json.dumps(c.config.to_json()))
    back = ContainerConfig.from_json(data)
    assert back == c.config
    assert back.resources == c.config.resources and back.resources.memory == 64 * 1024 * 1024
    assert back.seccomp_profile is not None           # read again, as at create
    assert back.to_json() == data
