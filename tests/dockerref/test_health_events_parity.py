"""Health checks and events, pycontain's CLI beside docker's (docker.io 20.10
against its own dockerd): the same command lines, compared on the keys and
types of State.Health, ps's STATUS, and the events' lines and JSON shape.
Health intervals are 200 ms."""
import json
import re
import time

import pytest

from .conftest import pycontain

pytestmark = pytest.mark.usefixtures("clean_both")

HEALTH_FLAGS = ("--health-cmd", "test -e /ok", "--health-interval", "200ms", "--health-retries", "1")


def sides(dockerd):
    return (("docker", dockerd.docker), ("pycontain", pycontain))


def health_of(side, name):
    out = side("inspect", "-f", "{{json .State.Health}}", name).stdout.strip()
    return None if out in ("", "null") else json.loads(out)


def wait_status(side, name, status, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        h = health_of(side, name)
        if h and h["Status"] == status:
            return h
        time.sleep(0.1)
    raise AssertionError(f"{name}: {health_of(side, name)}")


def shape(v):
    """Keys and value types, recursively: what a script reading the JSON sees."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(v[0])] if v else []
    return type(v).__name__


def test_health_in_inspect_and_ps_as_docker(dockerd):
    seen = {}
    for who, side in sides(dockerd):
        r = side("run", "-d", "--name", "hc", "--network", "none", *HEALTH_FLAGS, "busybox", "sleep", "60")
        assert r.returncode == 0, (who, r.stderr)
        unhealthy = wait_status(side, "hc", "unhealthy")
        ps_unhealthy = side("ps", "--format", "{{.Status}}").stdout
        filtered = side("ps", "-q", "--filter", "health=unhealthy").stdout.split()
        config = json.loads(side("inspect", "-f", "{{json .Config.Healthcheck}}", "hc").stdout)
        assert side("exec", "hc", "touch", "/ok").returncode == 0
        healthy = wait_status(side, "hc", "healthy")
        ps_healthy = side("ps", "--format", "{{.Status}}").stdout
        assert side("stop", "-t", "1", "hc").returncode == 0
        stopped = side("inspect", "-f", "{{.State.Health.Status}}", "hc").stdout
        seen[who] = (unhealthy, ps_unhealthy, filtered, config, healthy, ps_healthy, stopped)
    d, p = seen["docker"], seen["pycontain"]
    assert shape(p[0]) == shape(d[0]) and shape(p[4]) == shape(d[4])   # Status, FailingStreak, Log[Start...]
    assert p[0]["Log"][0]["ExitCode"] == d[0]["Log"][0]["ExitCode"] == 1
    assert (p[4]["FailingStreak"], d[4]["FailingStreak"]) == (0, 0)
    assert re.fullmatch(r"Up .* \(unhealthy\)\n", d[1]) and re.fullmatch(r"Up .* \(unhealthy\)\n", p[1])
    assert len(d[2]) == len(p[2]) == 1
    assert p[3] == d[3] == {"Test": ["CMD-SHELL", "test -e /ok"], "Interval": 200_000_000, "Retries": 1}
    assert re.fullmatch(r"Up .* \(healthy\)\n", d[5]) and re.fullmatch(r"Up .* \(healthy\)\n", p[5])
    assert p[6] == d[6] == "unhealthy\n"     # the checks stopped with the container


def test_starting_and_no_healthcheck_as_docker(dockerd):
    for who, side in sides(dockerd):
        r = side("run", "-d", "--name", "slow", "--network", "none", "--health-cmd", "true",
                 "--health-interval", "1h", "busybox", "sleep", "60")
        assert r.returncode == 0, (who, r.stderr)
        assert re.fullmatch(r"Up .* \(health: starting\)\n", side("ps", "--format", "{{.Status}}").stdout), who
        assert health_of(side, "slow") == {"Status": "starting", "FailingStreak": 0, "Log": []}, who
        r = side("create", "--name", "none", "--no-healthcheck", "busybox", "true")
        assert r.returncode == 0, (who, r.stderr)
        assert side("inspect", "-f", "{{json .Config.Healthcheck}}", "none").stdout == '{"Test":["NONE"]}\n', who
        state = json.loads(side("inspect", "-f", "{{json .State}}", "none").stdout)
        assert "Health" not in state, who
        r = side("run", "--rm", "--network", "none", "--no-healthcheck", "--health-cmd", "true", "busybox", "true")
        assert r.returncode == 125 and "--no-healthcheck conflicts with --health-* options" in r.stderr, who


def _life(side):
    """One container's life on a side; returns (since, until) around it."""
    since = time.time()
    r = side("run", "-d", "--name", "evx", "--network", "none", "busybox", "sleep", "60")
    assert r.returncode == 0, r.stderr
    assert side("kill", "-s", "USR1", "evx").returncode == 0
    assert side("stop", "-t", "1", "evx").returncode == 0
    assert side("rm", "evx").returncode == 0
    assert side("run", "--rm", "-d", "--name", "evy", "--network", "none", "busybox", "sh", "-c",
                "exit 3").returncode == 0
    assert side("wait", "evy").returncode in (0, 1)   # evy may be gone already (--rm)
    time.sleep(0.3)
    return since, time.time()


def test_events_since_until_format_as_docker(dockerd):
    seen = {}
    for who, side in sides(dockerd):
        since, until = _life(side)
        window = ("--since", f"{since:.3f}", "--until", f"{until:.3f}")
        plain = side("events", *window, "--filter", "container=evx").stdout.splitlines()
        js = [json.loads(line) for line in side("events", *window, "--format", "{{json .}}").stdout.splitlines()]
        die = side("events", *window, "--filter", "event=die", "--filter", "container=evy",
                   "--format", "{{.Status}} {{.Type}} {{.Action}} {{.From}} {{.Actor.Attributes.exitCode}}").stdout
        seen[who] = (plain, js, die)
    for who, (plain, _, die) in seen.items():
        actions = [line.split()[2] for line in plain]
        assert actions == ["create", "start", "kill", "kill", "kill", "die", "stop", "destroy"], (who, plain)
        signals = [re.search(r"signal=(\d+)", line).group(1) for line in plain if " kill " in line]
        assert signals == ["10", "15", "9"], who
        assert re.fullmatch(r"\S+\.\d{9}Z container die [0-9a-f]{64} \(exitCode=137, image=busybox, name=evx\)",
                            [line for line in plain if " die " in line][0]), (who, plain)
        assert die == "die container die busybox 3\n", (who, die)
    d_js, p_js = seen["docker"][1], seen["pycontain"][1]
    assert list(p_js[0]) == list(d_js[0])      # status, id, from, Type, Action, Actor, scope, time, timeNano
    assert shape(p_js[0]) == shape(d_js[0])
    assert [e["Action"] for e in p_js if e["Actor"]["Attributes"].get("name") == "evy"] == \
        [e["Action"] for e in d_js if e["Actor"]["Attributes"].get("name") == "evy"]


def test_image_and_volume_events_as_docker(dockerd):
    seen = {}
    for who, side in sides(dockerd):
        since = time.time()
        for argv in (("tag", "busybox", "evimg:1"), ("rmi", "evimg:1"), ("volume", "create", "evvol"),
                     ("volume", "rm", "evvol")):
            r = side(*argv)
            assert r.returncode == 0, (who, argv, r.stderr)
        time.sleep(0.3)
        r = side("events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}", "--format", "{{json .}}")
        seen[who] = [json.loads(line) for line in r.stdout.splitlines()]
    d, p = seen["docker"], seen["pycontain"]

    def summary(found):
        return [(e["Type"], e["Action"], e["Actor"]["Attributes"].get("name"), sorted(e["Actor"]["Attributes"]))
                for e in found]

    assert summary(p) == summary(d) == [
        ("image", "tag", "evimg:1", ["name"]), ("image", "untag", d[1]["Actor"]["ID"], ["name"]),
        ("volume", "create", None, ["driver"]), ("volume", "destroy", None, ["driver"])]
    assert [e["Actor"]["ID"] for e in p[2:]] == ["evvol", "evvol"]
    assert shape(p[0]) == shape(d[0]) and shape(p[2]) == shape(d[2])
