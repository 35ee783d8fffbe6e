"""The service's fork server (pycontain/managed/starter.py): what the docker CLI
and docker-py start through `pycontain system service` is forked by its
starter (its count of starts says so, in /version's components); the starter
ends with the service, even one killed with SIGKILL, comes back after a crash,
and a start that fails still answers with docker's error."""
import os
import select
import signal
import threading

import docker as dockerpy
import pytest
from apitools import IMAGE, start_service, stop_service
from processes import monitor_pids

from pycontain import containers
from pycontain.state import process_alive


def starter_of(client) -> dict:
    """The fork server's component of /version: {"Pid", "Starts", "Restarts"} as numbers."""
    found = [c for c in client.version()["Components"] if c["Name"] == "pycontain-starter"]
    assert found, "the service has no starter"
    return {k: int(v) for k, v in found[0]["Details"].items()}


def ended(pid, timeout=10.0) -> bool:
    """Whether pid ends (or has ended) within timeout: a zombie counts as ended."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def assert_ends(pid, why):
    """pid ends within 10 s; if it does not, it is ended here (the test started it) and the test fails."""
    if not ended(pid):
        os.kill(pid, signal.SIGKILL)
        pytest.fail(why)


def parent_of(pid) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


@pytest.fixture
def client(service):
    c = dockerpy.DockerClient(base_url=f"unix://{service}", timeout=60)
    yield c
    c.close()


@pytest.fixture
def own_service(tmp_path, api_image):
    """A service of the test's own (to kill), with a docker-py client: (process, client)."""
    sock = tmp_path / "own.sock"
    proc = start_service(sock, tmp_path / "own.log", "--time", "0")
    c = dockerpy.DockerClient(base_url=f"unix://{sock}", timeout=60)
    try:
        yield proc, c
    finally:
        c.close()
        if proc.poll() is None:
            stop_service(proc)


def test_the_docker_cli_and_docker_py_start_through_the_starter(client, docker):
    before = starter_of(client)
    assert ended(before["Pid"], 0) is False
    r = docker("run", "-d", "--network", "none", IMAGE, "sleep", "60")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        assert starter_of(client)["Starts"] == before["Starts"] + 1
        rec = containers.get(cid).record
        with open(f"/proc/{rec.monitor_pid}/cmdline", "rb") as f:   # the C monitor, not a Python one
            assert f.read().startswith(b"pycontain-monitor\0")
        # the containers are never the starter's: their monitors are nobody's children but init's
        assert parent_of(rec.monitor_pid) != before["Pid"]
        r = docker("run", "--rm", "--network", "none", IMAGE, "echo", "hi")
        assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr
        assert client.containers.run(IMAGE, ["echo", "py"], remove=True, network_mode="none") == b"py\n"
        after = starter_of(client)
        assert after["Starts"] == before["Starts"] + 3
        assert (after["Pid"], after["Restarts"]) == (before["Pid"], before["Restarts"])
    finally:
        containers.get(cid).remove(force=True)


def test_a_failing_start_still_answers_with_dockers_error(client, docker):
    before = starter_of(client)["Starts"]
    r = docker("run", "--rm", "--network", "none", IMAGE, "/no/such/program")
    assert r.returncode == 127
    assert 'exec: "/no/such/program"' in r.stderr and "Traceback" not in r.stderr
    c = client.containers.create(IMAGE, ["/no/such/program"], network_mode="none")
    try:
        with pytest.raises(dockerpy.errors.APIError) as e:
            c.start()
        assert e.value.status_code == 400 and "/no/such/program" in str(e.value)
        c.reload()
        assert c.status in ("created", "exited")
    finally:
        c.remove(force=True)
    assert starter_of(client)["Starts"] == before + 2


def test_concurrent_starts_of_one_container_make_one_monitor(client, store_root):
    """The starter's workers race for the record's claim: one launches, the
    others answer `already running`, which the API answers as a success."""
    c = client.containers.create(IMAGE, ["sleep", "60"], network_mode="none")
    errors = []

    def start():
        try:
            client.api.start(c.id)
        except Exception as e:   # noqa: BLE001 (reported below)
            errors.append(e)

    try:
        threads = [threading.Thread(target=start) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        c.reload()
        assert c.status == "running"
        assert len(monitor_pids(store_root)) == 1
    finally:
        c.remove(force=True)


def test_the_starter_ends_with_a_killed_service_and_its_containers_go_on(own_service):
    proc, client = own_service
    starter = starter_of(client)["Pid"]
    assert parent_of(starter) == proc.pid
    with open(f"/proc/{starter}/comm") as f:
        assert f.read() == "pycontain-start\n"
    c = client.containers.run(IMAGE, ["sleep", "60"], detach=True, network_mode="none")
    try:
        rec = containers.get(c.id).record
        proc.kill()   # SIGKILL: no clean-up of its own
        proc.wait()
        assert_ends(starter, "the starter outlived the service")
        assert process_alive(rec.monitor_pid, rec.monitor_start)
        assert containers.get(c.id).status == "running"
    finally:
        containers.get(c.id).remove(force=True)


def test_the_starter_ends_when_the_service_stops(own_service):
    proc, client = own_service
    starter = starter_of(client)["Pid"]
    stop_service(proc)
    assert proc.returncode == 0
    assert_ends(starter, "the starter outlived the service")


def test_a_crashed_starter_is_started_again(own_service):
    proc, client = own_service
    first = starter_of(client)
    os.kill(first["Pid"], signal.SIGKILL)
    assert ended(first["Pid"])
    # the start finds it gone, starts another and goes through it
    assert client.containers.run(IMAGE, ["echo", "again"], remove=True, network_mode="none") == b"again\n"
    second = starter_of(client)
    assert second["Pid"] != first["Pid"] and second["Restarts"] == 1 and second["Starts"] == 1
    assert parent_of(second["Pid"]) == proc.pid
    proc.kill()   # and the new one ends with the service as the first would have
    proc.wait()
    assert_ends(second["Pid"], "the restarted starter outlived the service")

