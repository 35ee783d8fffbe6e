"""Pull and push against a real docker-registry on loopback, cross-checked with skopeo."""
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from pycontain import Container, ContainerError, ImageNotFound, image
from pycontain.image import auth as authmod
from pycontain.image import registry
from pycontain.image.registry import AuthError

from imgtools import store_leftovers
from regtools import PASSWORD, USER, ThrottlingProxy, skopeo


@pytest.fixture
def root(tmp_path):
    return tmp_path / "root"


def test_pull_index_and_run(root, pushed_multi, leakcheck):
    """The host's platform is chosen from the index; deleted file and directory,
    opaque directory and hardlink come out as the image says."""
    events = []
    image_id = image.pull(pushed_multi, root=root, progress=events.append)
    assert {e["status"] for e in events} >= {"Downloading", "Pull complete"}
    ri = image.resolve_for_run(pushed_multi, root=root, pull="never")
    assert ri.id == image_id and len(ri.layers) == 3
    script = ("cat /arch; test -e /etc/group || echo no-group; test -e /home/user || echo no-home-user; "
              "ls /var/opaque; stat -c %h /arch-link; test -e /etc/passwd && echo passwd")
    r = Container(pushed_multi, command=["sh", "-c", script], root=root).run(capture_output=True, text=True)
    assert r.stdout == "amd64\nno-group\nno-home-user\nnew\n2\npasswd\n", r.stderr
    # pulled again: nothing downloaded
    events.clear()
    assert image.pull(pushed_multi, root=root, progress=events.append) == image_id
    assert "Downloading" not in {e["status"] for e in events}
    # by digest too
    digest = image.get(pushed_multi, root=root).manifest_digest
    by_digest = pushed_multi.rsplit(":", 1)[0] + "@" + digest
    assert image.get(by_digest, root=root).id == image_id


def test_pull_other_platform(root, pushed_multi):
    image.pull(pushed_multi, root=root, platform="linux/arm64")
    ri = image.resolve_for_run(pushed_multi, root=root, pull="never")
    assert open(os.path.join(ri.layers[0], "arch")).read() == "arm64\n"
    assert image.inspect(pushed_multi, root=root)["Architecture"] == "arm64"
    with pytest.raises(ImageNotFound, match="no image for linux/s390x"):
        image.pull(pushed_multi, root=root, platform="linux/s390x")


def test_unreachable_registry(root, leakcheck):
    """Container("host:port/x") with nothing listening there: docker's "unable to find image"."""
    from regtools import free_port
    ref = f"127.0.0.1:{free_port()}/nothing:1"
    with pytest.raises(ImageNotFound, match="unable to find image .* locally, and pulling it failed: cannot reach"):
        Container(ref, root=root).run()
    with pytest.raises(ContainerError, match="cannot reach registry"):
        image.resolve_for_run(ref, root=root, pull="always")
    assert image.list(root=root) == [] and store_leftovers(root) == []


def test_pull_missing(root, registry):
    with pytest.raises(ImageNotFound):
        image.pull(f"{registry.host}/nothing/here:1", root=root)
    with pytest.raises(ImageNotFound):
        image.resolve_for_run(f"{registry.host}/nothing/here:1", root=root)
    assert image.list(root=root) == [] and store_leftovers(root) == []


def test_push_then_skopeo_reads_and_copies_back(root, registry, busybox_tar, tmp_path):
    image.import_(busybox_tar, "local/bb:1", changes=["CMD echo pushed"], root=root)
    dest = f"{registry.host}/pushed/bb:v1"
    events = []
    digest = image.push("local/bb:1", dest=dest, root=root, progress=events.append)
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{dest}"))
    assert info["Digest"] == digest and len(info["Layers"]) == 1
    cfg = json.loads(skopeo("inspect", "--config", "--tls-verify=false", f"docker://{dest}"))
    assert cfg["config"]["Cmd"] == ["/bin/sh", "-c", "echo pushed"]
    skopeo("copy", "--src-tls-verify=false", f"docker://{dest}", f"oci:{tmp_path / 'back'}:bb")
    assert (tmp_path / "back" / "blobs" / "sha256" / digest[7:]).exists()
    # a second push finds every blob already there
    events.clear()
    assert image.push("local/bb:1", dest=dest, root=root, progress=events.append) == digest
    assert {e["status"] for e in events if "id" in e} == {"Layer already exists"}
    # and the pushed image pulls into another store and runs
    other = tmp_path / "other"
    r = Container(dest, root=other).run(capture_output=True)
    assert r.stdout == b"pushed\n"


def test_htpasswd_auth(root, htpasswd_registry, busybox_tar, auth_file, tmp_path):
    reg = htpasswd_registry
    image.import_(busybox_tar, "local/auth:1", root=root)
    dest = f"{reg.host}/private/img:1"
    with pytest.raises(AuthError, match="authentication required"):
        image.push("local/auth:1", dest=dest, root=root)
    with pytest.raises(AuthError):
        registry.login(reg.host, USER, "wrong")
    assert not auth_file.exists()
    registry.login(reg.host, USER, PASSWORD)
    assert stat.S_IMODE(os.stat(auth_file).st_mode) == 0o600
    image.push("local/auth:1", dest=dest, root=root)
    assert image.pull(dest, root=tmp_path / "other")
    assert authmod.remove(reg.host)
    with pytest.raises(AuthError):
        image.pull(dest, root=tmp_path / "third")
    # docker's own config.json is read too
    (tmp_path / "docker").mkdir()
    import base64
    (tmp_path / "docker" / "config.json").write_text(json.dumps(
        {"auths": {reg.host: {"auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}}}))
    assert image.pull(dest, root=tmp_path / "fourth")


def test_token_auth(root, token_registry, busybox_tar, auth_file, tmp_path):
    reg = token_registry
    image.import_(busybox_tar, "local/tok:1", root=root)
    with pytest.raises(AuthError):
        image.push("local/tok:1", dest=f"{reg.host}/public/img:1", root=root)  # anonymous: pull only
    reg.token_server.requests.clear()
    image.push("local/tok:1", dest=f"{reg.host}/public/img:1", root=root, auth=(USER, PASSWORD))
    image.push("local/tok:1", dest=f"{reg.host}/private/img:1", root=root, auth=(USER, PASSWORD))
    assert reg.token_server.requests and all(u == USER for u, _ in reg.token_server.requests)
    # anonymous pull of a public repository gets a token without credentials
    assert image.pull(f"{reg.host}/public/img:1", root=tmp_path / "anon")
    with pytest.raises(AuthError):
        image.pull(f"{reg.host}/private/img:1", root=tmp_path / "anon")
    registry.login(reg.host, USER, PASSWORD)
    assert image.pull(f"{reg.host}/private/img:1", root=tmp_path / "logged-in")


PULL = textwrap.dedent("""
    import sys
    from pycontain import image
    image.pull(sys.argv[1], root=sys.argv[2])
    print(image.resolve_for_run(sys.argv[1], root=sys.argv[2], pull="never").id)
""")


def test_four_processes_pull_the_same_image(root, pushed_multi):
    procs = [subprocess.Popen([sys.executable, "-c", PULL, pushed_multi, str(root)], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4
    assert len(set(outs)) == 1
    assert len(os.listdir(root / "images" / "layers")) == 3
    assert store_leftovers(root) == []


def test_pull_killed_half_way_then_redone(root, registry, tmp_path):
    """A big layer pulled through a slow proxy; the pulling process is killed
    mid-download; the next pull completes and nothing of the first remains."""
    big = tmp_path / "big"
    big.mkdir()
    (big / "random").write_bytes(os.urandom(6 << 20))
    subprocess.run(["tar", "-czf", str(tmp_path / "big.tar.gz"), "-C", str(big), "."], check=True)
    src_root = tmp_path / "src"
    image.import_(tmp_path / "big.tar.gz", "local/big:1", root=src_root)
    image.push("local/big:1", dest=f"{registry.host}/test/big:1", root=src_root)
    proxy = ThrottlingProxy(registry.port, rate=2 << 20)
    try:
        ref = f"127.0.0.1:{proxy.port}/test/big:1"
        p = subprocess.Popen([sys.executable, "-c", PULL, ref, str(root)], stdout=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            left = store_leftovers(root)
            if left and any(os.path.getsize(root / "images" / "tmp" / n) > (1 << 20) for n in left
                            if os.path.isfile(root / "images" / "tmp" / n)):
                break
            time.sleep(0.05)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        assert store_leftovers(root), "the pull was not killed half way"
        assert image.list(root=root) == []
        image.pull(ref, root=root)
        assert store_leftovers(root) == []
        ri = image.resolve_for_run(ref, root=root, pull="never")
        assert os.path.getsize(os.path.join(ri.layers[0], "random")) == 6 << 20
    finally:
        proxy.stop()


def test_tampered_blob_refused(root, registry, busybox_tar, tmp_path):
    """A registry serving a layer whose bytes do not match its digest: the pull
    fails naming the digest, and nothing of it stays in the store."""
    src = tmp_path / "src"
    image.import_(busybox_tar, "local/t:1", root=src)
    ref = f"{registry.host}/test/tampered:1"
    image.push("local/t:1", dest=ref, root=src)
    layer = image.get("local/t:1", root=src)
    from pycontain.image.store import ImageStore
    with ImageStore(src) as s:
        digest = s.manifest(layer)["layers"][0]["digest"]
    data = registry.dir / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256" / digest[7:9] / digest[7:] / "data"
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    data.write_bytes(bytes(blob))
    with pytest.raises(ContainerError, match=f"digest mismatch: expected {digest}"):
        image.pull(ref, root=root)
    assert image.list(root=root) == [] and store_leftovers(root) == []
    assert not (root / "images" / "blobs" / "sha256" / digest[7:]).exists()
    assert os.listdir(root / "images" / "layers") == []


def test_docker_v2s2_manifest_list(root, registry, test_layout, leakcheck):
    """Docker's formats: a v2 schema 2 manifest list and manifests (skopeo --format v2s2)."""
    ref = f"{registry.host}/test/docker-format:1"
    skopeo("copy", "--all", "--format", "v2s2", "--dest-tls-verify=false", f"oci:{test_layout}:multi", f"docker://{ref}")
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}"))
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    image.pull(ref, root=root, platform="linux/arm64")
    with image.open_store(root) as store:
        man = store.manifest(store.lookup(ref))
    assert man["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    ri = image.resolve_for_run(ref, root=root, pull="never")
    assert open(os.path.join(ri.layers[0], "arch")).read() == "arm64\n"
    r = Container(ref, command=["sh", "-c", "cat /var/opaque/new"], root=root).run(capture_output=True)
    assert r.stdout == b"new content\n"
