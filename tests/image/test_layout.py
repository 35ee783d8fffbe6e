"""docker save / load: our archives read by skopeo, skopeo's archives and OCI layouts loaded here."""
import json
import os

import pytest

from pycontain import ConfigError, Container, image
from pycontain.image.unpack import LayerError

from imgtools import make_tar, member, store_leftovers
from regtools import skopeo


@pytest.fixture
def root(tmp_path):
    return tmp_path / "root"


def test_save_load_roundtrip_and_skopeo(root, busybox_tar, tmp_path, leakcheck):
    image.import_(busybox_tar, "saved/bb:1", changes=["CMD echo from-archive"], root=root)
    archive = tmp_path / "bb.tar"
    image.save("saved/bb:1", archive, root=root)
    # skopeo reads it both as a docker-save archive and as an OCI archive
    info = json.loads(skopeo("inspect", f"docker-archive:{archive}"))
    assert len(info["Layers"]) == 1
    json.loads(skopeo("inspect", f"oci-archive:{archive}"))
    other = tmp_path / "other"
    assert image.load(archive, root=other) == ["saved/bb:1"]
    r = Container("saved/bb:1", root=other).run(capture_output=True)
    assert r.stdout == b"from-archive\n"
    assert image.get("saved/bb:1", root=other).id == image.get("saved/bb:1", root=root).id
    assert store_leftovers(other) == []


def test_load_skopeo_docker_archive(root, test_layout, tmp_path):
    archive = tmp_path / "from-skopeo.tar"
    skopeo("copy", f"oci:{test_layout}:multi", f"docker-archive:{archive}:example.org/team/multi:7")
    assert image.load(archive, root=root) == ["example.org/team/multi:7"]
    ri = image.resolve_for_run("example.org/team/multi:7", root=root, pull="never")
    assert len(ri.layers) == 3
    assert open(os.path.join(ri.layers[0], "arch")).read() == "amd64\n"


def test_load_oci_layout_dir(root, test_layout):
    """A layout directory whose index names an index: the host platform is chosen."""
    ids = image.load(test_layout, root=root)
    assert len(ids) == 1 and ids[0].startswith("sha256:")
    assert image.inspect(ids[0], root=root)["Architecture"] == "amd64"


def test_load_refuses_hostile_and_garbage(root, tmp_path):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(make_tar([member("manifest.json", data=b"[]"), member("../../escape", data=b"x")]))
    with pytest.raises(LayerError, match="'../../escape'"):
        image.load(bad, root=root)
    outside = tmp_path / "outside.tar"
    outside.write_bytes(make_tar([member("manifest.json", data=json.dumps(
        [{"Config": "../../../etc/passwd", "RepoTags": [], "Layers": []}]).encode())]))
    with pytest.raises(ConfigError, match="outside itself"):
        image.load(outside, root=root)
    empty = tmp_path / "empty.tar"
    empty.write_bytes(make_tar([member("hello", data=b"x")]))
    with pytest.raises(ConfigError, match="not a docker-save archive or OCI layout"):
        image.load(empty, root=root)
    assert store_leftovers(root) == [] and image.list(root=root) == []
