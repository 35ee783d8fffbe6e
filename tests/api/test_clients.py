"""docker-py and testcontainers (both from PyPI) against `pycontain system service`."""
import os
import subprocess
import sys

import docker as dockerpy
import pytest
from apitools import IMAGE

from pycontain import containers
from pycontain.cgroups import running


@pytest.fixture
def client(service):
    c = dockerpy.DockerClient(base_url=f"unix://{service}", timeout=60)
    yield c
    c.close()


def test_docker_py_run_remove_returns_the_output(client):
    out = client.containers.run(IMAGE, ["sh", "-c", "echo hello; echo err >&2"], remove=True, network_mode="none")
    assert out == b"hello\n"
    with pytest.raises(dockerpy.errors.ContainerError) as e:
        client.containers.run(IMAGE, ["sh", "-c", "exit 3"], remove=True, network_mode="none")
    assert e.value.exit_status == 3


def test_docker_py_detached_logs_exec_wait(client):
    c = client.containers.run(IMAGE, ["sh", "-c", "echo ready; exec sleep 60"], detach=True, network_mode="none",
                              labels={"suite": "api"})
    try:
        stream = c.logs(stream=True)
        assert next(stream) == b"ready\n"
        r = c.exec_run(["sh", "-c", "echo via-exec; exit 2"])
        assert (r.exit_code, r.output) == (2, b"via-exec\n")
        c.reload()
        assert c.status == "running" and c.labels == {"suite": "api"}
        assert [x.id for x in client.containers.list(filters={"label": "suite=api"})] == [c.id]
        c.kill()
        assert c.wait(timeout=20) == {"StatusCode": 137, "Error": None}
    finally:
        c.remove(force=True)


def test_docker_py_errors(client):
    with pytest.raises(dockerpy.errors.NotFound):
        client.containers.get("nothing-by-this-name")
    with pytest.raises(dockerpy.errors.ImageNotFound):
        client.images.get("no/such-image:1")
    # an unknown field is refused, not ignored, and nothing is made
    r = client.api._post_json(client.api._url("/containers/create"), data={"Image": IMAGE, "Bogus": 1})
    assert (r.status_code, r.json()) == (400, {"message": "unknown field Bogus"})
    assert containers.list(all=True) == []


def test_docker_py_update_changes_limits_live(client):
    c = client.containers.run(IMAGE, ["sleep", "60"], detach=True, network_mode="none", mem_limit="64m")
    try:
        assert c.update(mem_limit="96m", memswap_limit="192m", mem_reservation="32m", cpu_shares=256, cpu_quota=25000,
                        restart_policy={"Name": "on-failure", "MaximumRetryCount": 1}) == {"Warnings": []}
        c.reload()
        host = c.attrs["HostConfig"]
        assert (host["Memory"], host["MemorySwap"], host["MemoryReservation"], host["CpuShares"], host["CpuQuota"]) == (
            96 << 20, 192 << 20, 32 << 20, 256, 25000)
        assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 1}
        pid = containers.get(c.id).record.pid
        files = {}
        for _ctrls, d in running.own_cgroups(pid):
            for name in ("cpu.cfs_quota_us", "cpu.max", "memory.limit_in_bytes", "memory.max"):
                if os.path.exists(f"{d}/{name}"):
                    files[name] = open(f"{d}/{name}").read().strip()
        assert files.get("cpu.cfs_quota_us", files.get("cpu.max")) in ("25000", "25000 100000")
        assert files.get("memory.limit_in_bytes", files.get("memory.max")) == str(96 << 20)
        # refused: a 400 naming the field, nothing changed
        with pytest.raises(dockerpy.errors.APIError) as e:
            c.update(kernel_memory="64m")
        assert e.value.status_code == 400 and "KernelMemory" in str(e.value)
        with pytest.raises(dockerpy.errors.APIError) as e:
            c.update(mem_limit="1m", memswap_limit="2m")
        assert e.value.status_code == 400 and "6MB" in str(e.value)
        c.reload()
        assert c.attrs["HostConfig"]["Memory"] == 96 << 20
    finally:
        c.remove(force=True)


def test_testcontainers_container_with_a_log_wait_and_exec(service, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{service}")
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    tc = DockerContainer(IMAGE).with_command(["sh", "-c", "echo booted; exec sleep 60"]).with_kwargs(
        network_mode="none").waiting_for(LogMessageWaitStrategy("booted").with_startup_timeout(20))
    with tc:
        code, out = tc.exec(["sh", "-c", "echo $((6 * 7))"])
        assert (code, out) == (0, b"42\n")
        cid = tc.get_wrapped_container().id
        assert containers.get(cid).status == "running"
        assert containers.get(cid).attrs["Config"]["Labels"]["org.testcontainers.lang"] == "python"
    assert os.environ["DOCKER_HOST"].endswith("docker.sock")
    assert containers.list(all=True) == []     # stop() removed it


PORTS_CLIENT = r'''
import os, subprocess, sys, time, urllib.request
sock, www, image = sys.argv[1:4]
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
env = dict(os.environ, PYCONTAIN_NETWORK="bridge")
service = subprocess.Popen([sys.executable, "-m", "pycontain", "system", "service", "--socket", "unix://" + sock,
                            "--time", "0"], env=env)
try:
    while not os.path.exists(sock):
        time.sleep(0.05)
    os.environ.update(DOCKER_HOST="unix://" + sock, TESTCONTAINERS_RYUK_DISABLED="true")
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy
    tc = (DockerContainer(image).with_command(["sh", "-c", "echo serving; exec httpd -f -p 80 -h /www"])
          .with_exposed_ports(80).with_volume_mapping(www, "/www")
          .waiting_for(LogMessageWaitStrategy("serving").with_startup_timeout(20)))
    with tc:
        url = f"http://{tc.get_container_host_ip()}:{tc.get_exposed_port(80)}/index.html"
        print(urllib.request.urlopen(url, timeout=10).read().decode(), end="")
finally:
    service.terminate()
    service.wait()
'''


def test_testcontainers_reaches_a_server_through_its_published_port(tmp_path, api_image):
    """Bridge networking and -p, in a network namespace of the test's own
    (the service and the client both in it): get_container_host_ip() and
    get_exposed_port() lead to the container's httpd."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("hello through the port\n")
    (tmp_path / "client.py").write_text(PORTS_CLIENT)
    r = subprocess.run(["unshare", "--net", "--mount", "--propagation", "private", sys.executable,
                        str(tmp_path / "client.py"), str(tmp_path / "s.sock"), str(tmp_path / "www"), api_image],
                       capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout) == (0, "hello through the port\n"), r.stderr
    assert containers.list(all=True) == []
