"""Finding 5 of issue 18: bad input files and garbage in the store end in
one line, never a traceback, and leave nothing behind."""
import json
import os

import pytest

from .badfiles import bad_files
from .conftest import one_line_error, pycontain


def _store_files(root):
    d = root / "images"
    return {sub: sorted(os.listdir(d / sub)) for sub in ("blobs/sha256", "layers", "tmp")}


def test_bad_files_for_load_import_and_cp(root, image_ref, tmp_path, seed):
    r = pycontain("create", "--name", "target", image_ref, "true", root=root)
    assert r.returncode == 0, r.stderr
    before = _store_files(root)
    tried = 0
    for name, data in bad_files(seed).items():
        path = tmp_path / f"{name}.bin"
        path.write_bytes(data)
        for args in (["load", "-i", str(path)], ["import", str(path), "local/bad:1"]):
            r = pycontain(*args, root=root)
            assert "Traceback" not in r.stderr, (name, args, r.stderr)
            if r.returncode == 0:
                continue  # a file that is a valid (if odd) archive; then it must be a real image
            one_line_error(r)
            tried += 1
        with open(path, "rb") as f:
            r = pycontain("cp", "-", "target:/tmp", root=root, stdin=f)
        assert "Traceback" not in r.stderr, (name, "cp", r.stderr)
        if r.returncode != 0:
            one_line_error(r)
    assert tried > 20
    after = _store_files(root)
    assert after["tmp"] == [] and set(after["blobs/sha256"]) - set(before["blobs/sha256"]) <= _blobs_of_images(root)


def _blobs_of_images(root):
    r = pycontain("images", "-q", "--no-trunc", root=root)
    out = set()
    for image_id in r.stdout.split():
        out.add(image_id.removeprefix("sha256:"))
    return out | set(os.listdir(root / "images" / "blobs" / "sha256"))


def _config_blob(root, image_ref):
    image_id = json.loads(pycontain("image", "inspect", image_ref, root=root).stdout)[0]["Id"]
    return root / "images" / "blobs" / "sha256" / image_id.removeprefix("sha256:")


def _manifest_blob(root, image_ref):
    from pycontain import image
    return root / "images" / "blobs" / "sha256" / image.get(image_ref, root=root).manifest_digest[7:]


@pytest.mark.parametrize("damage", ["garbage-config", "missing-config", "garbage-manifest"])
def test_garbage_in_the_store_is_one_line(root, image_ref, tmp_path, damage):
    if damage == "garbage-manifest":
        _manifest_blob(root, image_ref).write_bytes(b"\xff\xfe not json")
    else:
        cfg = _config_blob(root, image_ref)
        if damage == "missing-config":
            cfg.unlink()
        else:
            cfg.write_bytes(b"\xff\xfe\x00garbage")
    out = tmp_path / "out.tar"
    for args in (["image", "inspect", image_ref], ["history", image_ref], ["run", "--rm", image_ref, "true"],
                 ["save", "-o", str(out), image_ref], ["create", image_ref, "true"]):
        r = pycontain(*args, root=root)
        assert "Traceback" not in r.stderr, (args, r.stderr)
        if r.returncode != 0:
            one_line_error(r)
    assert not out.exists() and not any(p.name.startswith("out.tar") for p in tmp_path.iterdir())
    r = pycontain("system", "check", root=root)
    assert r.returncode == 1 and "problem" in r.stdout, r


@pytest.mark.parametrize("damage", ["garbage-manifest", "missing-config", "flipped-layer"])
def test_push_of_a_damaged_image_is_one_line(root, image_ref, registry, damage):
    from pycontain import image

    img = image.get(image_ref, root=root)
    blobs = root / "images" / "blobs" / "sha256"
    if damage == "garbage-manifest":
        (blobs / img.manifest_digest[7:]).write_bytes(b"\x00garbage")
    elif damage == "missing-config":
        (blobs / img.id[7:]).unlink()
    else:
        layer = max(os.listdir(blobs), key=lambda n: os.path.getsize(blobs / n))
        with open(blobs / layer, "r+b") as f:
            f.seek(4096)
            f.write(b"\xde\xad")
    dest = f"{registry.host}/faults/{damage}:1"
    assert pycontain("tag", image_ref, dest, root=root).returncode == 0
    r = pycontain("push", dest, root=root)
    one_line_error(r, "system check")
