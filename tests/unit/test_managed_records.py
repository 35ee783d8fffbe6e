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


def test_container_arguments_survive_json():
    kwargs = {"mounts": (Mount("/src", "/dst", read_only=True), Mount(None, "/data", type="volume")),
              "ulimits": (("nofile", 10, 20),), "cap_add": ("NET_ADMIN",), "env": ["A=1"]}
    data = record.container_kwargs_to_json(kwargs)
    assert data["cap_add"] == ["NET_ADMIN"]
    back = record.container_kwargs_from_json(data)
    assert back["mounts"] == list(kwargs["mounts"])
    assert back["ulimits"] == [("nofile", 10, 20)]


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
        record.matches_filters(rec, {"label": "x"})


def test_a_record_round_trips_through_its_row():
    rec = _rec(config={"image": "sha256:" + "0" * 64, "auto_remove": True}, oom_killed=True,
               log_opts={"max-size": "1m"}, exec_profile={"uid": 0})
    assert ContainerRecord.from_row(rec.to_row()) == rec
