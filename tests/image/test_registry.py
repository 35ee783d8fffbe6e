"""Pull and push against a real docker-registry on loopback, cross-checked with skopeo."""
import hashlib
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tarfile
import textwrap
import time

import pytest

from pycontain import Container, ContainerError, ImageNotFound, image
from pycontain.cli import main
from pycontain.image import auth as authmod
from pycontain.image import registry
from pycontain.image.registry import AuthError

from imgtools import store_leftovers
from regtools import PASSWORD, USER, HostileRegistry, ThrottlingProxy, http_answer, skopeo


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


def _store_is_empty(root) -> bool:
    return all(os.listdir(root / "images" / d) == [] for d in ("blobs/sha256", "layers", "tmp"))


def test_rmi_of_the_last_tag_takes_the_digest_reference_along(root, registry, tmp_path, monkeypatch, capsys):
    """As docker: `rmi repo:tag` of a pulled image untags repo:tag and
    repo@digest and deletes the image; no hidden <none> image is left."""
    ref = f"{registry.host}/rmi/bb:1"
    pusher = tmp_path / "pusher"
    # a layer of its own: another test here tampers with the registry's copy of busybox's
    with tarfile.open(tmp_path / "own.tar", "w") as tar:
        data = os.urandom(16).hex().encode()
        info = tarfile.TarInfo("own-file")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    image.import_(str(tmp_path / "own.tar"), ref, root=pusher)
    digest = image.push(ref, root=pusher)
    monkeypatch.setenv("PYCONTAIN_ROOT", str(root))

    image_id = image.pull(ref, root=root)
    assert main(["rmi", ref]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"Untagged: {ref}", f"Untagged: {registry.host}/rmi/bb@{digest}", f"Deleted: {image_id}"]
    assert image.list(root=root) == [] and _store_is_empty(root)

    # two tags of one repository: the digest reference stays with the other tag
    image.pull(ref, root=root)
    image.tag(ref, f"{registry.host}/rmi/bb:2", root=root)
    assert main(["rmi", ref]) == 0
    assert capsys.readouterr().out == f"Untagged: {ref}\n"
    assert image.inspect(f"{registry.host}/rmi/bb:2", root=root)["RepoDigests"] == [f"{registry.host}/rmi/bb@{digest}"]
    assert main(["rmi", f"{registry.host}/rmi/bb:2"]) == 0
    assert image.list(root=root) == [] and _store_is_empty(root)

    # pulled by digest only: no tag, so `images` shows it as <none> and `image prune` takes it
    image.pull(f"{registry.host}/rmi/bb@{digest}", root=root)
    capsys.readouterr()
    assert main(["images"]) == 0
    assert [line.split()[:3] for line in capsys.readouterr().out.splitlines()[1:]] == [
        [f"{registry.host}/rmi/bb", "<none>", image_id[7:19]]]
    assert main(["image", "prune", "-f"]) == 0
    assert capsys.readouterr().out.startswith(f"Deleted Images:\nuntagged: {registry.host}/rmi/bb@{digest}\n"
                                              f"deleted: {image_id}\n")
    assert image.list(root=root) == [] and _store_is_empty(root)


# ---- a hostile registry: every malformed answer is one line and exit 1 (docker pull's status) ----------------------

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hostile_answers(trap_port: int, registry_port: int) -> dict:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    layer = buf.getvalue()
    good_config = json.dumps({"os": "linux", "architecture": "amd64",
                              "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]}}).encode()
    layer_desc = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _digest(layer), "size": len(layer)}

    def manifest(config=None, layers=None, **extra) -> bytes:
        body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": config if config is not None else {"digest": _digest(good_config), "size": len(good_config)},
                "layers": layers if layers is not None else [layer_desc], **extra}
        return json.dumps(body).encode()

    def with_config(cfg: bytes) -> dict:   # a manifest naming this config blob, which is served as it is
        return {("manifests", "*"): http_answer(200, manifest({"digest": _digest(cfg), "size": len(cfg)})),
                ("blobs", _digest(cfg)): http_answer(200, cfg), ("blobs", _digest(layer)): http_answer(200, layer)}

    def manifest_only(body: bytes, **kw) -> dict:   # the good blobs too: the malformed part is what fails
        return {**with_config(good_config), ("manifests", "*"): http_answer(200, body, **kw)}

    def redirect(location) -> dict:
        return {("manifests", "*"): http_answer(307, headers={"Location": location} if location is not None else {})}

    def index(manifests) -> dict:
        return manifest_only(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode())

    def token(body: bytes, realm_scheme="http") -> dict:
        port = registry_port if realm_scheme == "http" else trap_port
        realm = f'{realm_scheme}://127.0.0.1:{port}/token/{{case}}'
        return {("manifests", "*"): http_answer(401, headers={"WWW-Authenticate": f'Bearer realm="{realm}"'}),
                ("token", "*"): http_answer(200, body)}

    answers = {
        "bad-json": manifest_only(b"{not json"),
        "not-utf8": manifest_only(b"\xff\xfe\x00{"),
        "json-list": manifest_only(b"[1, 2]"),
        "json-string": manifest_only(b'"manifest"'),
        "media-type-number": manifest_only(manifest(mediaType=5)),
        "no-config": manifest_only(json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode()),
        "config-string": manifest_only(manifest(config="sha256:0")),
        "config-bad-digest": manifest_only(manifest(config={"digest": "sha256:zz", "size": 2})),
        "config-digest-path": manifest_only(manifest(config={"digest": "sha256:../../../../etc/passwd", "size": 2})),
        "config-digest-number": manifest_only(manifest(config={"digest": 7})),
        "layers-number": manifest_only(manifest(layers=5)),
        "layer-string": manifest_only(manifest(layers=["sha256:0"])),
        "layer-no-digest": manifest_only(manifest(layers=[{"size": 3}])),
        "layer-size-string": {**with_config(good_config),
                              ("manifests", "*"): http_answer(200, manifest(layers=[{**layer_desc, "size": "big"}]))},
        "layer-size-negative": {**with_config(good_config),
                                ("manifests", "*"): http_answer(200, manifest(layers=[{**layer_desc, "size": -5}]))},
        "index-manifests-string": index("all"),
        "index-entry-string": index(["sha256:0"]),
        "index-platform-string": index([{"digest": _digest(b"x"), "platform": "linux/amd64"}]),
        "index-no-digest": index([{"platform": {"os": "linux", "architecture": "amd64"}}]),
        "index-bad-digest": index([{"digest": "md5:1", "platform": {"os": "linux", "architecture": "amd64"}}]),
        "config-blob-list": with_config(b"[]"),
        "config-blob-not-json": with_config(b"{{{"),
        "config-rootfs-string": with_config(json.dumps({"rootfs": "layers"}).encode()),
        "config-diff-ids-string": with_config(json.dumps({"rootfs": {"diff_ids": "sha256:0"}}).encode()),
        "config-diff-id-bad": with_config(json.dumps({"rootfs": {"diff_ids": ["nope"]}}).encode()),
        "config-blob-mismatch": {**with_config(good_config), ("blobs", _digest(good_config)): http_answer(200, b"{}")},
        "layer-blob-mismatch": {**with_config(good_config), ("blobs", _digest(layer)): http_answer(200, layer[:-1] + b"!")},
        "truncated-manifest": manifest_only(manifest()[:20], length=400),
        "truncated-layer": {**with_config(good_config), ("blobs", _digest(layer)): http_answer(200, layer[:100], length=len(layer))},
        "garbage-status-line": {("manifests", "*"): b"SPAM AND EGGS\r\n\r\n"},
        "status-not-a-number": {("manifests", "*"): b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n"},
        "header-line-too-long": {("manifests", "*"): b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n"},
        "error-body-odd": {("manifests", "*"): http_answer(500, b'{"errors": 5}')},
        "error-body-entries-odd": {("manifests", "*"): http_answer(500, b'{"errors": ["x", 3]}')},
        "redirect-ftp": redirect(f"ftp://127.0.0.1:{trap_port}/manifest"),
        "redirect-file": redirect("file:///etc/passwd"),
        "redirect-gopher": redirect(f"gopher://127.0.0.1:{trap_port}/"),
        "redirect-no-location": redirect(None),
        "redirect-bad-url": redirect("http://[::1/x"),
        # not "http:///x": in the registry's own scheme urljoin fills the empty host with the registry's
        "redirect-no-host": redirect("https:///x"),
        "token-list": token(b"[]"),
        "token-number": token(b'{"token": 5}'),
        "token-realm-ftp": token(b'{"token": "t"}', realm_scheme="ftp"),
    }
    for case, table in answers.items():   # the token realms name their own case
        for key, raw in table.items():
            table[key] = raw.replace(b"%7Bcase%7D", case.encode()).replace(b"{case}", case.encode())
    return answers


def test_a_hostile_registry_gets_one_line_and_status_1(root, monkeypatch, capsys):
    trap = socket.socket()   # redirects to other schemes point here: nothing may connect
    trap.bind(("127.0.0.1", 0))
    trap.listen(4)
    trap.setblocking(False)
    reg = HostileRegistry({})
    reg.answers.update(_hostile_answers(trap.getsockname()[1], reg.port))
    try:
        for case in reg.answers:   # each in a store of its own: nothing of another case's pull helps it
            monkeypatch.setenv("PYCONTAIN_ROOT", str(root / case))
            rc, (_, err) = main(["pull", "-q", f"{reg.host}/{case}:1"]), capsys.readouterr()
            assert rc == 1 and len(err.splitlines()) == 1 and err.startswith(f"pycontain: {reg.host}"), (case, err)
            assert image.list(root=root / case) == [] and store_leftovers(root / case) == [], case
        with pytest.raises(BlockingIOError):
            trap.accept()
    finally:
        reg.stop()
        trap.close()
