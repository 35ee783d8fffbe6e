"""dockerd 20.10 as the reference for response shapes: every key its
answers carry (inspect, list, images, image inspect, version, info, exec
inspect), pycontain's carry too, side by side in one run."""
import shutil
import tarfile
import tempfile
from pathlib import Path

import docker as dockerpy
import pytest
from apitools import IMAGE
from dockerd import available, remove_cgroups, start_dockerd, stop

pytestmark = pytest.mark.skipif(not available(), reason="dockerd (apt-get install docker.io) is the reference")

NAME = "pycontain-test-dockerd"
# where a document holds free-form maps (labels, ports), their keys are data, not shape
_DATA = {"Labels", "Ports", "Networks", "Options", "ExposedPorts", "Volumes", "Data", "Config", "Runtimes",
         "IndexConfigs"}


def keys(obj, prefix=""):
    out = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.add(prefix + k)
            if isinstance(v, dict) and k not in _DATA:
                out |= keys(v, prefix + k + ".")
    return out


def answers(client, image):
    cid = client.create_container(image, ["sleep", "30"],
                                  host_config=client.create_host_config(network_mode="none"))["Id"]
    try:
        client.start(cid)
        ex = client.exec_create(cid, ["true"])["Id"]
        client.exec_start(ex)
        return {"inspect": client.inspect_container(cid), "list": client.containers()[0],
                "images": client.images()[0], "image": client.inspect_image(image), "version": client.version(),
                "info": client.info(), "exec": client.exec_inspect(ex)}
    finally:
        client.remove_container(cid, force=True)


def test_every_key_dockerd_answers_with_pycontain_answers_with_too(service, busybox, tmp_path):
    tar = tmp_path / "rootfs.tar"
    with tarfile.open(tar, "w") as t:
        t.add(busybox, arcname=".")
    d = Path(tempfile.mkdtemp(prefix="pcd-"))    # short: containerd's socket paths must fit 108 bytes
    proc, sock = start_dockerd(d, tar, NAME)
    try:
        ref = dockerpy.APIClient(base_url=f"unix://{sock}", timeout=60)
        ours = dockerpy.APIClient(base_url=f"unix://{service}", timeout=60)
        theirs, mine = answers(ref, "busybox:latest"), answers(ours, IMAGE)
        ref.close()
        ours.close()
    finally:
        stop(proc)
        remove_cgroups(NAME)
        shutil.rmtree(d, ignore_errors=True)
    missing = {what: sorted(keys(theirs[what]) - keys(mine[what])) for what in theirs}
    assert missing == {what: [] for what in theirs}
