"""Health checks and the events log, through the library and the CLI, with
real containers. Health intervals are 200 ms so that the checks come quickly."""
import json
import os
import subprocess
import sys
import time

import pytest

from pycontain import build, containers, events
from pycontain.managed import health

from .conftest import pycontain, wait_for

pytestmark = pytest.mark.usefixtures("managed")

MS = 1_000_000
FAST = {"Interval": 200 * MS, "Retries": 2}


def health_of(c):
    return c.reload().health


def wait_health(c, status, timeout=15):
    assert wait_for(lambda: (health_of(c) or {}).get("Status") == status, timeout), health_of(c)
    return health_of(c)


def logged(store_root, cid=None, since_ns=0):
    return [e for e in events.replay(store_root, since_ns) if cid is None or e["Actor"]["ID"] == cid]


# ---- health: the library -----------------------------------------------------------------


def test_a_failing_check_turns_unhealthy_and_a_passing_one_healthy(busybox, store_root):
    c = containers.run(rootfs=str(busybox), command=["sleep", "60"], network="none",
                       healthcheck=dict(FAST, Test=["CMD-SHELL", "echo probing; test -e /ok"]))
    assert c.attrs["Config"]["Healthcheck"] == {"Test": ["CMD-SHELL", "echo probing; test -e /ok"],
                                                "Interval": 200 * MS, "Retries": 2}
    h = wait_health(c, "unhealthy")
    assert h["FailingStreak"] >= 2
    entry = h["Log"][-1]
    assert set(entry) == {"Start", "End", "ExitCode", "Output"}
    assert entry["ExitCode"] == 1 and entry["Output"] == "probing\n"
    c.exec_run(["touch", "/ok"])
    h = wait_health(c, "healthy")
    assert h["FailingStreak"] == 0 and h["Log"][-1]["ExitCode"] == 0
    assert wait_for(lambda: len(health_of(c)["Log"]) == health.LOG_ENTRIES, 10)   # the last 5 only
    time.sleep(0.5)
    assert len(health_of(c)["Log"]) == health.LOG_ENTRIES
    c.stop(timeout=1)
    # docker: once the checks stop with the container, it is unhealthy
    assert c.reload().attrs["State"]["Health"]["Status"] == "unhealthy"
    actions = [e["Action"] for e in logged(store_root, c.id)]
    assert actions.index("health_status: unhealthy") < actions.index("health_status: healthy")
    c.remove()


def test_failures_in_the_start_period_do_not_count(busybox):
    c = containers.run(rootfs=str(busybox), command=["sleep", "60"], network="none",
                       healthcheck=dict(FAST, Test=["CMD", "false"], StartPeriod=60_000 * MS))
    assert wait_for(lambda: len((health_of(c) or {}).get("Log", ())) >= 3, 15)
    h = health_of(c)
    assert (h["Status"], h["FailingStreak"]) == ("starting", 0)
    assert c.attrs["State"]["Health"]["Status"] == "starting"


def test_a_check_that_outlasts_its_timeout_fails(busybox):
    c = containers.run(rootfs=str(busybox), command=["sleep", "60"], network="none",
                       healthcheck={"Test": ["CMD", "sleep", "5"], "Interval": 200 * MS, "Timeout": 300 * MS,
                                    "Retries": 1})
    h = wait_health(c, "unhealthy")
    assert h["Log"][0]["ExitCode"] == -1
    assert h["Log"][0]["Output"] == "Health check exceeded timeout (300ms)"


def test_a_probe_cut_short_by_the_containers_exit_is_not_a_result(busybox, store_root):
    c = containers.run(rootfs=str(busybox), command=["sleep", "1"], network="none",
                       healthcheck={"Test": ["CMD", "sleep", "30"], "Interval": 200 * MS, "Retries": 1})
    assert c.wait(timeout=20) == 0
    assert health_of(c) == {"Status": "unhealthy", "FailingStreak": 0, "Log": []}   # stopped: docker's unhealthy
    assert [e["Action"] for e in logged(store_root, c.id)] == ["create", "start", "die"]


def test_one_probe_from_the_command_line_of_another_monitor(busybox, store_root):
    # an interval of an hour: only the probe run here records anything
    c = containers.run(rootfs=str(busybox), command=["sleep", "60"], network="none",
                       healthcheck={"Test": ["CMD-SHELL", "exit 0"], "Interval": 3600_000 * MS})
    assert health_of(c) == {"Status": "starting", "FailingStreak": 0, "Log": []}
    r = subprocess.run([sys.executable, "-m", "pycontain.managed.health", str(store_root), c.id],
                       capture_output=True, text=True, timeout=30, cwd="/")
    assert (r.returncode, r.stderr) == (0, "")
    h = health_of(c)
    assert h["Status"] == "healthy" and len(h["Log"]) == 1


def test_the_images_healthcheck_is_used_merged_or_disabled(busybox, store_root, tmp_path):
    import tarfile

    tar = tmp_path / "rootfs.tar"
    with tarfile.open(tar, "w") as t:
        t.add(busybox, arcname=".")
    from pycontain import image

    image.import_(str(tar), "health-base:1", root=store_root)
    build.build(str(tmp_path), tag="health-img:1", dockerfile_text=(
        "FROM health-base:1\nHEALTHCHECK --interval=200ms --retries=1 CMD test -e /ok\n"), root=store_root)
    try:
        c = containers.run("health-img:1", ["sleep", "60"], network="none")
        assert c.attrs["Config"]["Healthcheck"] == {"Test": ["CMD-SHELL", "test -e /ok"], "Interval": 200 * MS,
                                                    "Retries": 1}
        wait_health(c, "unhealthy")
        # a given check's zero fields take the image's
        d = containers.run("health-img:1", ["sleep", "60"], network="none",
                           healthcheck={"Test": ["CMD", "true"]})
        assert d.attrs["Config"]["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 200 * MS, "Retries": 1}
        wait_health(d, "healthy")
        e = containers.run("health-img:1", ["sleep", "60"], network="none", healthcheck={"Test": ["NONE"]})
        time.sleep(0.5)
        assert "Health" not in e.attrs["State"] and e.health is None
        # docker merges the image's other fields in even then
        assert e.attrs["Config"]["Healthcheck"] == {"Test": ["NONE"], "Interval": 200 * MS, "Retries": 1}
    finally:
        for x in containers.list(all=True):
            x.remove(force=True)
        image.remove("health-img:1", root=store_root)
        image.remove("health-base:1", root=store_root)


@pytest.mark.parametrize("hc, words", [
    ({"Test": ["BOGUS", "x"]}, "must start with CMD"),
    ({"Test": ["CMD"]}, "needs a command"),
    ({"Test": ["CMD", "true"], "Interval": 10}, "cannot be less than 1ms"),
    ({"Test": ["CMD", "true"], "Retries": -1}, "cannot be negative"),
    ({"Test": ["CMD", "true"], "Interval": "1s"}, "nanoseconds"),
    ({"Test": ["CMD", "true"], "Period": 1}, "unknown field"),
    ("true", "Healthcheck shape"),
])
def test_a_bad_healthcheck_is_refused_before_anything_is_made(busybox, hc, words):
    with pytest.raises(containers.ConfigError, match=words):
        containers.create(rootfs=str(busybox), command=["true"], healthcheck=hc)
    assert containers.list(all=True) == []


# ---- health: the CLI ---------------------------------------------------------------------


def test_cli_health_flags_ps_status_and_filter(busybox):
    r = pycontain("run", "-d", "--name", "hc", "--network", "none", "--health-cmd", "test -e /ok",
                  "--health-interval", "200ms", "--health-retries", "1", "--health-timeout", "2s",
                  "--health-start-period", "0s", "--rootfs", str(busybox), "sleep", "60")
    assert r.returncode == 0, r.stderr
    r = pycontain("inspect", "-f", "{{json .Config.Healthcheck}}", "hc")
    assert json.loads(r.stdout) == {"Test": ["CMD-SHELL", "test -e /ok"], "Interval": 200 * MS,
                                    "Timeout": 2000 * MS, "Retries": 1}
    c = containers.get("hc")
    wait_health(c, "unhealthy")
    assert pycontain("ps", "--format", "{{.Status}}").stdout.endswith(" (unhealthy)\n")
    assert pycontain("ps", "--filter", "health=unhealthy", "-q").stdout == c.id[:12] + "\n"
    assert pycontain("ps", "--filter", "health=healthy", "-q").stdout == ""
    assert pycontain("exec", "hc", "touch", "/ok").returncode == 0
    wait_health(c, "healthy")
    assert pycontain("ps", "--format", "{{.Status}}").stdout.endswith(" (healthy)\n")
    r = pycontain("inspect", "-f", "{{.State.Health.Status}} {{.State.Health.FailingStreak}}", "hc")
    assert r.stdout == "healthy 0\n"
    plain = pycontain("run", "-d", "--network", "none", "--rootfs", str(busybox), "sleep", "60").stdout.strip()
    assert pycontain("ps", "--filter", "health=none", "-q").stdout == plain[:12] + "\n"
    r = pycontain("inspect", "-f", "{{json .State}}", plain)
    assert "Health" not in json.loads(r.stdout)


def test_cli_starting_status(busybox):
    r = pycontain("run", "-d", "--name", "slow", "--network", "none", "--health-cmd", "true",
                  "--health-interval", "1h", "--rootfs", str(busybox), "sleep", "60")
    assert r.returncode == 0, r.stderr
    out = pycontain("ps", "--format", "{{.Status}}").stdout
    assert out.startswith("Up ") and out.endswith(" (health: starting)\n")


@pytest.mark.parametrize("flags, words", [
    (["--health-interval", "soon"], "invalid duration"),
    (["--health-interval=-1s"], "--health-interval cannot be negative"),
    (["--health-timeout", "10ns"], "cannot be less than 1ms"),
    (["--health-retries", "-2"], "--health-retries cannot be negative"),
    (["--no-healthcheck", "--health-cmd", "true"], "--no-healthcheck conflicts with --health-* options"),
])
def test_cli_bad_health_flags_are_one_line_and_leave_nothing(busybox, flags, words):
    r = pycontain("run", "-d", "--network", "none", *flags, "--rootfs", str(busybox), "sleep", "60")
    assert r.returncode == 125 and words in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert containers.list(all=True) == []


# ---- events --------------------------------------------------------------------------------


def test_every_lifecycle_step_is_an_event_in_order(busybox, store_root):
    since = time.time_ns()
    r = pycontain("run", "-d", "--name", "ev", "-l", "team=a", "--network", "none", "--rootfs", str(busybox),
                  "sleep", "60")
    cid = r.stdout.strip()
    for verb in (["pause", "ev"], ["unpause", "ev"], ["rename", "ev", "ev2"], ["kill", "-s", "USR1", "ev2"],
                 ["stop", "-t", "1", "ev2"], ["rm", "ev2"]):
        assert pycontain(*verb).returncode == 0
    got = [(e["Action"], e["Actor"]["Attributes"]) for e in logged(store_root, cid, since)]
    assert [a for a, _ in got] == ["create", "start", "pause", "unpause", "rename", "kill", "kill", "kill",
                                   "die", "stop", "destroy"]
    attrs = dict(got)
    assert attrs["create"] == {"image": str(busybox), "name": "ev", "team": "a"}
    assert attrs["rename"]["oldName"] == "/ev" and attrs["rename"]["name"] == "ev2"
    kills = [a["signal"] for action, a in got if action == "kill"]
    # kill -s USR1, then stop's TERM and, a second later, KILL: sleep as pid 1
    # has no handlers, so the kernel drops the first two
    assert kills == ["10", "15", "9"]
    assert attrs["die"]["exitCode"] == "137"
    line = open(events.log_path(store_root)).readline()
    assert set(json.loads(line)) == {"Type", "Action", "Actor", "scope", "time", "timeNano"}
    assert os.stat(events.log_path(store_root)).st_mode & 0o777 == 0o600


def test_cli_events_since_until_filter_and_format(busybox, store_root):
    since = time.time()
    assert pycontain("run", "--rm", "--name", "once", "--network", "none", "--rootfs", str(busybox),
                     "sh", "-c", "exit 3").returncode == 3
    until = time.time()
    r = pycontain("events", "--since", f"{since:.9f}", "--until", f"{until:.9f}")
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and [ln.split()[2] for ln in lines] == ["create", "start", "die", "destroy"]
    stamp, kind, action, actor, rest = lines[2].split(" ", 4)
    assert len(stamp) == len("2026-12-04T16:20:01.123456789Z") and stamp.endswith("Z") and kind == "container"
    assert rest == f"(exitCode=3, image={busybox}, name=once)"
    r = pycontain("events", "--since", f"{since:.9f}", "--until", f"{until:.9f}", "--filter", "event=die",
                  "--format", "{{.Status}} {{.Type}} {{.Action}} {{.Actor.Attributes.exitCode}} {{.From}}")
    assert r.stdout == f"die container die 3 {busybox}\n"
    r = pycontain("events", "--since", f"{since:.9f}", "--until", f"{until:.9f}", "--filter", "container=once",
                  "--format", "{{json .}}")
    first = json.loads(r.stdout.splitlines()[0])
    assert list(first) == ["status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano"]
    assert pycontain("events", "--since", f"{since:.9f}", "--until", f"{until:.9f}",
                     "--filter", "container=other").stdout == ""
    r = pycontain("events", "--filter", "color=red", "--until", "0s")
    assert r.returncode == 1 and r.stderr.strip() == "pycontain: invalid filter 'color'"
    r = pycontain("events", "--since", "yesterday", "--until", "0s")
    assert r.returncode == 1 and "invalid --since" in r.stderr
    r = pycontain("events", "--format", "{{.Nope", "--until", "0s")
    assert r.returncode == 1 and "failed to parse template" in r.stderr


def test_cli_events_follows_until_its_until(busybox):
    until = time.time() + 3
    follower = subprocess.Popen([sys.executable, "-m", "pycontain", "events", "--until", f"{until:.3f}",
                                 "--format", "{{.Action}} {{.Actor.Attributes.name}}"],
                                stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.8)   # the follower is at the log's end
        assert pycontain("run", "--rm", "--name", "followed", "--network", "none", "--rootfs", str(busybox),
                         "true").returncode == 0
        out, _ = follower.communicate(timeout=20)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0 and time.time() >= until
    assert out.splitlines() == ["create followed", "start followed", "die followed", "destroy followed"]


def test_the_log_is_bounded_and_readers_see_both_files(store_root, monkeypatch):
    monkeypatch.setattr(events, "MAX_BYTES", 4096)
    since = time.time_ns()
    for i in range(200):
        events.append(store_root, "container", "create", f"{i:064d}", {"name": f"n{i}"})
    path = events.log_path(store_root)
    assert os.path.getsize(path) < 4096 + 300 and os.path.getsize(str(path) + ".1") < 4096 + 300
    found = [int(e["Actor"]["ID"]) for e in events.replay(store_root, since)]
    assert found == sorted(found) and found[-1] == 199 and len(found) > 20


def test_an_oom_kill_is_an_oom_event_before_die(busybox, store_root):
    # dd's 64 MiB buffer is filled from /dev/zero: every page is touched
    c = containers.run(rootfs=str(busybox), command=["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                       network="none", memory="16m", memory_swap="16m")
    assert c.wait(timeout=30) == 137 and c.reload().attrs["State"]["OOMKilled"] is True
    got = [(e["Action"], e["Actor"]["Attributes"].get("exitCode")) for e in logged(store_root, c.id)]
    assert got == [("create", None), ("start", None), ("oom", None), ("die", "137")]
