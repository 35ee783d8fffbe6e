"""docker volume, docker network, docker events and health checks through the service."""
import json
import subprocess
import time

from apitools import DOCKER, IMAGE, start_service, stop_service

from pycontain import volumes


def test_volumes_through_docker(docker):
    assert docker("volume", "create", "--label", "k=v", "api-vol").stdout == "api-vol\n"
    assert "api-vol" in docker("volume", "ls", "-q").stdout.split()
    assert docker("volume", "inspect", "-f", "{{.Labels.k}}", "api-vol").stdout == "v\n"
    r = docker("run", "--rm", "--network", "none", "-v", "api-vol:/data", IMAGE, "sh", "-c", "echo kept > /data/f")
    assert r.returncode == 0, r.stderr
    r = docker("run", "--rm", "--network", "none", "-v", "api-vol:/data", IMAGE, "cat", "/data/f")
    assert r.stdout == "kept\n"
    assert volumes.get("api-vol").name == "api-vol"      # the library's own volume
    assert docker("volume", "rm", "api-vol").returncode == 0
    r = docker("volume", "inspect", "api-vol")
    assert r.returncode == 1 and "no such volume" in r.stderr.lower()


def test_networks_through_docker(tmp_path, docker_env):
    # a service of its own in a network namespace of its own: removing a
    # network touches bridges and nftables, never the machine's
    sock = tmp_path / "netns.sock"
    proc = start_service(sock, tmp_path / "log", "--time", "0", wrap=["unshare", "--net", "--mount",
                                                                       "--propagation", "private"])
    env = dict(docker_env, DOCKER_HOST=f"unix://{sock}")

    def docker(*args):
        return subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=60, env=env)
    since = time.time()
    try:
        r = docker("network", "create", "--subnet", "10.213.7.0/24", "api-net")
        assert r.returncode == 0, r.stderr
        net_id = r.stdout.strip()
        assert docker("network", "inspect", "-f", "{{.Name}} {{(index .IPAM.Config 0).Subnet}}",
                      net_id[:12]).stdout == "api-net 10.213.7.0/24\n"
        assert {"bridge", "host", "none", "api-net"} <= set(docker("network", "ls", "--format", "{{.Name}}")
                                                             .stdout.split())
        r = docker("network", "rm", "api-net")
        assert r.returncode == 0, r.stderr
        assert "api-net" not in docker("network", "ls", "--format", "{{.Name}}").stdout.split()
        r = docker("network", "inspect", "api-net")
        assert r.returncode == 1 and "not found" in r.stderr
        r = docker("events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}", "--filter", "type=network",
                   "--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}} {{.Actor.Attributes.type}}")
        assert r.stdout.splitlines() == [f"create {net_id} api-net bridge", f"destroy {net_id} api-net bridge"]
    finally:
        stop_service(proc)


def test_events_stream_a_containers_life(docker, docker_env):
    until = int(time.time()) + 6
    events = subprocess.Popen([DOCKER, "events", "--format", "{{.Action}} {{.Actor.Attributes.name}}",
                               "--filter", "type=container", "--until", str(until)],
                              stdout=subprocess.PIPE, text=True, env=docker_env)
    try:
        time.sleep(0.5)
        r = docker("run", "--rm", "--name", "api-events", "--network", "none", IMAGE, "true")
        assert r.returncode == 0, r.stderr
        out, _ = events.communicate(timeout=20)
    finally:
        if events.poll() is None:
            events.kill()
            events.wait()
    assert [line for line in out.splitlines() if line.endswith(" api-events")] == [
        "create api-events", "start api-events", "die api-events", "destroy api-events"]



def test_events_since_until_replay_the_log_with_filters(docker):
    since = time.time()
    r = docker("run", "--rm", "--name", "api-replay", "--network", "none", IMAGE, "sh", "-c", "exit 2")
    assert r.returncode == 2, r.stderr
    r = docker("events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}",
               "--filter", "container=api-replay", "--filter", "event=die",
               "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.exitCode}} {{.Actor.Attributes.name}}")
    assert (r.returncode, r.stdout) == (0, "container die 2 api-replay\n"), r.stderr
    r = docker("events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}",
               "--filter", "container=api-replay", "--format", "{{json .}}")
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [e["Action"] for e in lines] == ["create", "start", "die", "destroy"]
    assert lines[0]["status"] == "create" and lines[0]["from"] == IMAGE and lines[0]["id"] == lines[0]["Actor"]["ID"]
    r = docker("events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}", "--filter", "colour=red")
    assert r.returncode != 0 and "invalid filter 'colour'" in r.stderr


def test_health_checks_through_docker(docker):
    r = docker("run", "-d", "--name", "api-health", "--network", "none", "--health-cmd", "test -e /ok",
               "--health-interval", "200ms", "--health-retries", "1", IMAGE, "sleep", "60")
    assert r.returncode == 0, r.stderr

    def health():
        out = docker("inspect", "-f", "{{json .State.Health}}", "api-health").stdout
        return json.loads(out) if out.strip() not in ("", "null") else None

    deadline = time.monotonic() + 15
    while (health() or {}).get("Status") != "unhealthy" and time.monotonic() < deadline:
        time.sleep(0.1)
    h = health()
    assert h["Status"] == "unhealthy" and h["FailingStreak"] >= 1
    assert set(h["Log"][0]) == {"Start", "End", "ExitCode", "Output"}
    r = docker("inspect", "-f", "{{json .Config.Healthcheck}}", "api-health")
    assert json.loads(r.stdout) == {"Test": ["CMD-SHELL", "test -e /ok"], "Interval": 200_000_000, "Retries": 1}
    assert docker("ps", "--format", "{{.Status}}", "--filter", "health=unhealthy").stdout.endswith("(unhealthy)\n")
    assert docker("exec", "api-health", "touch", "/ok").returncode == 0
    deadline = time.monotonic() + 15
    while (health() or {}).get("Status") != "healthy" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert health()["Status"] == "healthy"
    assert docker("ps", "--format", "{{.Status}}", "--filter", "name=api-health").stdout.endswith(" (healthy)\n")
    assert docker("rm", "-f", "api-health").returncode == 0
    r = docker("run", "-d", "--network", "none", "--health-cmd", "true", "--health-interval", "500us", IMAGE, "true")
    assert r.returncode == 125 and "Interval in Healthcheck cannot be less than 1ms" in r.stderr, r.stderr
