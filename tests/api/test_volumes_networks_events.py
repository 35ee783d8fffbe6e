"""docker volume, docker network and docker events through the service."""
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

