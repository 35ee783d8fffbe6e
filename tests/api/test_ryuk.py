"""testcontainers with its Ryuk reaper enabled, against `pycontain system service`.

No internet here: the reaper image is built by the test, from
tests/api/reaper/reaper.c (Ryuk's protocol: label filters over TCP 8080,
"ACK", and once the session's connection is gone, the matching containers
removed through the Engine API on the socket bind-mounted into it), compiled
with gcc -static into a scratch image. The service, the reaper, the session's
containers and the client run in a network namespace of the test's own (the
reaper's port is published to the client as testcontainers expects)."""
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from pycontain import containers

SESSION = r'''
import os, sys
from testcontainers.core.container import DockerContainer, Reaper
from testcontainers.core.network import Network
image, mode = sys.argv[1:3]
net = Network().create()   # labelled with the session's id, as its containers
tc = DockerContainer(image).with_command(["sleep", "300"]).with_network(net).with_network_aliases("db").start()
peer = DockerContainer(image).with_command(["sleep", "300"]).with_network(net).start()
code, _ = peer.exec(["ping", "-c", "1", "-W", "2", "db"])   # the alias, on the session's network
reaper = Reaper._container.get_wrapped_container()
print(reaper.name, reaper.attrs["HostConfig"]["Binds"], code, tc.get_wrapped_container().id, flush=True)
if mode.startswith("killed"):
    os._exit(0)   # as a killed test run: no atexit, the reaper's connection just drops
# the session ends normally: its container stopped, then testcontainers' atexit
# closes the connection and removes the reaper
tc.stop()
peer.stop()
net.remove()
'''

DRIVER = r'''
import json, os, subprocess, sys, time
import docker as dockerpy
sock, store, busybox_tar, reaper_tar, mode, session = sys.argv[1:7]
image, reaper_image = "ryuktest/busybox:latest", "ryuktest/reaper:local"
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
# a store of its own: a reaper that removed what it should not would not touch the suite's images
env = dict(os.environ, PYCONTAIN_NETWORK="bridge", PYCONTAIN_ROOT=store)
for tar, ref, change in ((busybox_tar, image, 'CMD ["sh"]'), (reaper_tar, reaper_image, 'ENTRYPOINT ["/reaper"]')):
    subprocess.run([sys.executable, "-m", "pycontain", "import", "-c", change, tar, ref], env=env, check=True,
                   stdout=subprocess.DEVNULL)
service = subprocess.Popen([sys.executable, "-m", "pycontain", "system", "service", "--socket", "unix://" + sock,
                            "--time", "0"], env=env)
out = {}
try:
    while not os.path.exists(sock):
        time.sleep(0.05)
    session_env = dict(os.environ, DOCKER_HOST="unix://" + sock, TESTCONTAINERS_RYUK_DISABLED="false",
                       RYUK_CONTAINER_IMAGE=reaper_image, TESTCONTAINERS_RYUK_CONTAINER_IMAGE=reaper_image,
                       RYUK_RECONNECTION_TIMEOUT="1s",
                       TESTCONTAINERS_RYUK_PRIVILEGED="true" if mode.endswith("privileged") else "false")
    r = subprocess.run([sys.executable, "-c", session, image, mode], env=session_env, capture_output=True,
                       text=True, timeout=120)
    out["session"] = [r.returncode, r.stdout, r.stderr[-3000:]]
    client = dockerpy.DockerClient(base_url="unix://" + sock, timeout=60)
    ended = time.monotonic()
    while True:
        # the listings only (no inspect): containers go meanwhile
        out["left"] = sorted(c["Names"][0] for c in client.api.containers(all=True))
        out["networks_left"] = sorted(n["Name"] for n in client.api.networks()
                                      if n["Name"] not in ("bridge", "host", "none"))
        if not (out["left"] or out["networks_left"]) or time.monotonic() > ended + 30:
            break
        time.sleep(0.1)
    # what the session did not label stays: the images
    out["images"] = sorted(t for i in client.api.images() for t in i["RepoTags"])
    out["reaped_after"] = round(time.monotonic() - ended, 2)
    client.close()
finally:
    service.terminate()
    service.wait()
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def image_tars(workdir, busybox):
    """(busybox rootfs tar, reaper tar): the test imports them into a store of its own."""
    gcc = shutil.which("gcc")
    if not gcc:
        pytest.fail("the Ryuk test builds its reaper with gcc -static: apt-get install gcc libc6-dev")
    d = workdir / "reaper"
    d.mkdir(exist_ok=True)
    subprocess.run([gcc, "-static", "-O1", "-Wall", "-Werror", "-o", str(d / "reaper"),
                    str(Path(__file__).parent / "reaper" / "reaper.c")], check=True)
    with tarfile.open(d / "reaper.tar", "w") as t:
        t.add(d / "reaper", arcname="reaper")
    with tarfile.open(d / "busybox.tar", "w") as t:
        t.add(busybox, arcname=".")
    return d / "busybox.tar", d / "reaper.tar"


@pytest.mark.parametrize("mode", ["killed", "ended", "killed-privileged"])
def test_ryuk_reaps_the_session_s_containers(tmp_path, image_tars, mode):
    (tmp_path / "driver.py").write_text(DRIVER)
    r = subprocess.run(["unshare", "--net", "--mount", "--propagation", "private", sys.executable,
                        str(tmp_path / "driver.py"), str(tmp_path / "s.sock"), str(tmp_path / "store"),
                        *map(str, image_tars), mode, SESSION], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.splitlines()[-1])
    code, session_out, session_err = out["session"]
    assert code == 0 and len(session_out.split()[-1]) == 64, session_err
    # the reaper ran, with the service's socket bind-mounted as docker's
    assert session_out.startswith("testcontainers-ryuk-") and "s.sock:/var/run/docker.sock" in session_out, session_out
    assert session_out.split()[-2] == "0", session_out    # the peer reached the container by its alias
    # the session's container and network (reaped, when the session was
    # killed) and the reaper itself (auto-removed) are gone; the images,
    # which the session did not label, are still there
    assert out["left"] == [] and out["networks_left"] == [], (out, session_err)
    assert out["images"] == ["ryuktest/busybox:latest", "ryuktest/reaper:local"], out
    if mode.startswith("killed"):   # RYUK_RECONNECTION_TIMEOUT=1s, then the prune
        assert 0.5 < out["reaped_after"] < 20, out
    assert containers.list(all=True) == []
