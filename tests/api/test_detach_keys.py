"""The detach keys through the Engine API: the machine's docker CLI (28.x)
under a pseudo-terminal, against `pycontain system service`. docker's CLI
sends its keys (ctrl-p,ctrl-q, or --detach-keys) as the `detachKeys` query
parameter of attach and exec start; the service watches the input of a
terminal's hijacked stream for them, ends that stream, and the container
(or the exec'd command) runs on."""
import asyncio

import aiohttp
from apitools import DOCKER, IMAGE
from terminals import Term, prompt, type_keys

from pycontain import containers


def _docker_term(docker_env, *argv):
    return Term([DOCKER, *argv], env=docker_env)


def _finish(t):
    try:
        return t.finish()
    finally:
        t.close()


def test_run_it_detaches_and_attach_ends_it(docker, docker_env):
    t = _docker_term(docker_env, "run", "-it", "--name", "apidk", "--network", "none", IMAGE, "sh")
    try:
        prompt(t)
        t.write(b"echo one$((1+1))\r")
        t.read_until(b"one2", then=b"# ")
        type_keys(t, b"\x10", b"\x11")
    except BaseException:
        t.close()
        raise
    code, out = _finish(t)
    assert code == 0 and b"escape" not in out, out
    assert containers.get("apidk").status == "running"
    t = _docker_term(docker_env, "attach", "--detach-keys", "ctrl-x", "apidk")
    try:
        prompt(t)
        type_keys(t, b"\x18")
    except BaseException:
        t.close()
        raise
    code, out = _finish(t)
    assert code != 0 and b"read escape sequence" in out
    assert containers.get("apidk").status == "running"
    t = _docker_term(docker_env, "attach", "apidk")
    try:
        prompt(t)
        t.write(b"exit 4\r")
    except BaseException:
        t.close()
        raise
    code, _ = _finish(t)
    assert code == 4
    assert containers.get("apidk").record.exit_code == 4
    assert docker("rm", "apidk").returncode == 0


def test_exec_it_detaches_and_the_command_runs_on(docker, docker_env):
    cid = docker("run", "-d", "--network", "none", IMAGE, "sleep", "60").stdout.strip()
    try:
        t = _docker_term(docker_env, "exec", "-it", cid, "sh")
        try:
            prompt(t)
            type_keys(t, b"\x10", b"\x11")
        except BaseException:
            t.close()
            raise
        code, out = _finish(t)
        assert code != 0 and b"read escape sequence" in out
        r = docker("exec", cid, "ps", "-o", "comm")
        assert r.stdout.split().count("sh") == 1, r.stdout
    finally:
        docker("rm", "-f", cid)


def test_the_service_ends_an_attach_on_its_detach_keys(service, docker):
    """A client that leaves the keys to the daemon (docker's websocket
    attach, docker-py): the service spots them in a terminal's input."""
    assert docker("run", "-dit", "--name", "api-wsdk", "--network", "none", IMAGE, "sh").returncode == 0

    async def talk(query, keys):
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(service))) as session:
            async with session.ws_connect("http://localhost/v1.47/containers/api-wsdk/attach/ws"
                                          "?stream=1&stdout=1&stdin=1" + query) as ws:
                await ws.send_bytes(b"echo in$((2+5))\r")
                got = b""
                while b"in7" not in got:
                    got += await asyncio.wait_for(ws.receive_bytes(), 10)
                await ws.send_bytes(keys)
                # the service closes the attach: no more messages
                while True:
                    msg = await asyncio.wait_for(ws.receive(), 10)
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                        return True

    try:
        assert asyncio.run(talk("", b"\x10\x11"))                      # the daemon's default
        assert containers.get("api-wsdk").status == "running"
        assert asyncio.run(talk("&detachKeys=ctrl-x,y", b"\x18y"))
        assert containers.get("api-wsdk").status == "running"
    finally:
        docker("rm", "-f", "api-wsdk")


def test_the_service_ends_an_exec_on_its_detach_keys(service, docker):
    import docker as docker_py

    cid = docker("run", "-d", "--network", "none", IMAGE, "sleep", "60").stdout.strip()
    client = docker_py.DockerClient(base_url=f"unix://{service}")
    try:
        ex = client.api.exec_create(cid, ["sh"], stdin=True, tty=True, detach_keys="ctrl-x")
        sock = client.api.exec_start(ex["Id"], tty=True, socket=True)._sock
        sock.sendall(b"echo ex$((3+4))\r")
        got = b""
        sock.settimeout(10)
        while b"ex7" not in got:
            got += sock.recv(4096)
        sock.sendall(b"\x18")
        while sock.recv(4096):    # the service ends the stream
            pass
        sock.close()
        assert client.api.exec_inspect(ex["Id"])["Running"] is True   # the shell runs on
    finally:
        client.close()
        docker("rm", "-f", cid)
