"""The service itself: its socket, bad requests, the library bits it relies on."""
import asyncio
import http.client
import json
import os
import socket
import stat
import subprocess
import sys
import time

import aiohttp
import pytest
from apitools import IMAGE, start_service, stop_service

from pycontain import containers


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(self.path))


def call(sock, method, path, body=None, headers=None):
    conn = UnixHTTP(sock)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def test_socket_is_0660_and_a_non_socket_is_never_replaced(service, tmp_path):
    assert stat.S_IMODE(os.stat(service).st_mode) == 0o660
    assert os.stat(service).st_uid == 0
    taken = tmp_path / "not-a-socket"
    taken.write_text("precious")
    r = subprocess.run([sys.executable, "-m", "pycontain", "system", "service", "--socket", f"unix://{taken}"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 125
    assert r.stderr == f"pycontain: {taken} exists and is not a socket: refusing to replace it\n"
    assert taken.read_text() == "precious"
    r = subprocess.run([sys.executable, "-m", "pycontain", "system", "service", "--socket", "tcp://0.0.0.0:2375"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 125 and "only unix:///PATH is supported" in r.stderr


def test_idle_time_ends_the_service(tmp_path):
    sock = tmp_path / "idle.sock"
    proc = start_service(sock, tmp_path / "log", "--time", "0.5")
    try:
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            stop_service(proc)
    assert not sock.exists()


def test_ping_version_prefixes(service):
    status, headers, body = call(service, "GET", "/_ping")
    assert (status, body) == (200, b"OK") and headers["Api-Version"] == "1.47" and headers["Ostype"] == "linux"
    status, headers, body = call(service, "HEAD", "/v1.24/_ping")
    assert status == 200 and body == b""
    status, _, body = call(service, "GET", "/v1.99/version")
    assert status == 400 and b"too new" in body
    status, _, body = call(service, "GET", "/v1.41/version")
    assert status == 200 and json.loads(body)["Platform"]["Name"].startswith("pycontain")


@pytest.mark.parametrize("body, message", [
    (b"{not json", "invalid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"Image": 5}', "Image: expected a string"),
    (b'{"Image": "x", "Cmd": "a", "HostConfig": {"Binds": [1]}}', "Binds: expected a list of strings"),
    (b'{"Image": "x", "HostConfig": {"PortBindings": {"eighty": []}}}', "invalid port"),
    (b'{"Image": "x", "HostConfig": {"Privileged": "yes"}}', "Privileged: expected a boolean"),
    (b'{"Image": "x", "HostConfig": {"Mounts": [{"Type": "bind", "Target": "/x", "Source": "rel"}]}}',
     "must be an absolute path"),
    (b'{"Image": "x", "Unknown": true}', "unknown field Unknown"),
    (b"[" * 100 + b"]" * 100, "nests deeper"),
])
def test_malformed_bodies_are_400_with_a_message_and_leave_nothing(service, body, message):
    status, headers, raw = call(service, "POST", "/containers/create", body, {"Content-Type": "application/json"})
    assert status == 400, raw
    assert headers["Content-Type"] == "application/json"
    assert message in json.loads(raw)["message"]
    assert containers.list(all=True) == []


def test_unknown_endpoints_are_501_and_missing_things_404(service):
    status, _, raw = call(service, "GET", "/v1.47/swarm")
    assert status == 501 and json.loads(raw) == {"message": "GET /v1.47/swarm is not implemented by pycontain"}
    status, _, raw = call(service, "POST", "/containers/nothing/start")
    assert status == 404 and "no such container" in json.loads(raw)["message"]
    status, _, raw = call(service, "GET", "/exec/abc/json")
    assert status == 404 and json.loads(raw) == {"message": "No such exec instance: abc"}
    status, _, raw = call(service, "GET", "/containers/json?filters=%7Bbad")
    assert status == 400


def test_wait_for_an_auto_removed_container_gets_its_status(api_image):
    """The library bit `docker run --rm` needs: the exit status of a
    container its monitor removed is still there for a waiter that looks late."""
    c = containers.create(api_image, ["sh", "-c", "exit 3"], network="none", auto_remove=True)
    c.start()
    assert c.wait(timeout=20) == 3
    with pytest.raises(containers.NoSuchContainer):
        containers.get(c.id)


def test_a_client_that_leaves_mid_stream_leaves_nothing_behind(service):
    c = containers.run(IMAGE, ["sh", "-c", "while true; do echo x; sleep 0.01; done"], network="none")
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(service))
    s.sendall(f"GET /containers/{c.id}/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert s.recv(100).startswith(b"HTTP/1.1 200")
    s.close()
    status, _, _ = call(service, "GET", "/_ping")      # still serving
    assert status == 200
    c.remove(force=True)


def test_socket_activation_takes_the_socket_systemd_passes(tmp_path):
    """systemd-socket-activate stands in for systemd: it listens, then starts
    the service on the first connection with the socket as fd 3."""
    sock = tmp_path / "activated.sock"
    proc = subprocess.Popen(["systemd-socket-activate", "-l", str(sock), sys.executable, "-m", "pycontain",
                             "system", "service", "--time", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        status, _, body = call(sock, "GET", "/_ping")
        assert (status, body) == (200, b"OK")
        status, _, body = call(sock, "GET", "/version")
        assert status == 200 and json.loads(body)["ApiVersion"] == "1.47"
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()


def test_one_client_cannot_hold_more_than_its_share(service):
    """At most 64 requests open at once per client process: the 65th open
    stream is refused with a 429, and the others keep working."""
    c = containers.run(IMAGE, ["sleep", "60"], network="none")
    streams = []
    try:
        for _ in range(64):
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(service))
            s.sendall(f"GET /containers/{c.id}/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            streams.append(s)
        for s in streams:
            assert s.recv(12) == b"HTTP/1.1 200"
        status, _, raw = call(service, "GET", "/_ping")
        assert status == 429 and "at most 64" in json.loads(raw)["message"]
        streams.pop().close()
        time.sleep(0.2)
        assert call(service, "GET", "/_ping")[0] == 200
    finally:
        for s in streams:
            s.close()
        c.remove(force=True)


def test_attach_over_a_websocket(service, docker):
    """GET /containers/{id}/attach/ws: output in binary messages, messages in
    to the container's stdin; closing the socket ends a -i container's input."""
    r = docker("create", "-i", "--name", "api-ws", "--network", "none", IMAGE, "sh", "-c",
               "echo ready; cat; echo done")
    assert r.returncode == 0, r.stderr

    async def talk():
        got = b""
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(service))) as session:
            async with session.ws_connect("http://localhost/v1.47/containers/api-ws/attach/ws"
                                          "?stream=1&stdout=1&stderr=1&stdin=1") as ws:
                assert docker("start", "api-ws").returncode == 0
                while b"ready\n" not in got:
                    got += (await asyncio.wait_for(ws.receive_bytes(), 10))
                await ws.send_bytes(b"through the websocket\n")
                while b"through the websocket\n" not in got:
                    got += (await asyncio.wait_for(ws.receive_bytes(), 10))
            # the client closed: the container's stdin ended, cat returns
        return got

    assert asyncio.run(talk()) == b"ready\nthrough the websocket\n"
    assert docker("wait", "api-ws", timeout=20).stdout.strip() == "0"
    assert docker("logs", "api-ws").stdout == "ready\nthrough the websocket\ndone\n"
    assert docker("rm", "api-ws").returncode == 0
