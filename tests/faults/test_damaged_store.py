"""Finding 3 of issue 18: a store whose database is missing, empty,
truncated or garbage while its content is there is damaged, not empty:
every command says so in one line and deletes nothing; `system check`
finds it and `--repair` rebuilds the images from their blobs."""
import os
import sqlite3

import pytest

from .conftest import one_line_error, pycontain


def _content(root):
    d = root / "images"
    return sorted(os.listdir(d / "blobs" / "sha256")), sorted(os.listdir(d / "layers"))


def _checkpoint(path):
    """Moves what the WAL holds into the database file, as time would."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def _damage(path, how):
    _checkpoint(path)
    if how == "missing":
        os.unlink(path)
    elif how == "empty":
        os.truncate(path, 0)
    elif how == "truncated":
        os.truncate(path, os.path.getsize(path) // 2)
    elif how == "garbage":
        with open(path, "r+b") as f:
            f.write(os.urandom(os.path.getsize(path)))
    for journal in ("-wal", "-shm"):
        if os.path.exists(f"{path}{journal}"):
            os.unlink(f"{path}{journal}")


@pytest.mark.parametrize("how", ["missing", "empty", "truncated", "garbage"])
def test_damaged_image_database_deletes_nothing_and_is_repaired(root, image_ref, how):
    r = pycontain("run", "--rm", image_ref, "true", root=root)
    assert r.returncode == 0, r.stderr
    before = _content(root)
    _damage(root / "images" / "images.db", how)
    for verb in (["images"], ["image", "prune", "-a", "-f"], ["rmi", image_ref], ["run", "--rm", image_ref, "true"],
                 ["system", "df"], ["pull", "localhost:1/x:1"], ["image", "inspect", image_ref]):
        r = pycontain(*verb, root=root)
        assert "Traceback" not in r.stderr, (verb, r.stderr)
        if how == "truncated" and r.returncode == 0:
            continue   # a half file may still answer a read; it must not take anything with it
        one_line_error(r, "system check")
    assert _content(root) == before          # nothing deleted
    r = pycontain("system", "check", root=root)
    assert r.returncode == 1 and "problem:" in r.stdout, r
    r = pycontain("system", "check", "--repair", root=root)
    assert r.returncode == 0 and "rebuilt image" in r.stdout, r
    r = pycontain("system", "check", root=root)
    assert r.returncode == 0 and "consistent" in r.stdout, r
    r = pycontain("images", "-q", root=root)
    assert r.returncode == 0 and len(r.stdout.split()) == 1, r
    r = pycontain("run", "--rm", r.stdout.split()[0], "cat", "/etc/passwd", root=root)
    assert r.returncode == 0 and "root:" in r.stdout, r.stderr


@pytest.mark.parametrize("how", ["empty", "truncated", "garbage"])
def test_damaged_container_database_is_one_line(root, image_ref, how):
    for i in range(12):   # enough records for the file to span several pages
        r = pycontain("create", "--name", f"c{i}", image_ref, "true", root=root)
        assert r.returncode == 0, r.stderr
    _damage(root / "containers.db", how)
    for verb in (["ps", "-a"], ["rm", "c1"], ["run", "--rm", image_ref, "true"], ["system", "df"]):
        r = pycontain(*verb, root=root)
        assert "Traceback" not in r.stderr, (verb, r.stderr)
        if r.returncode != 0:
            one_line_error(r)
    r = pycontain("system", "check", root=root)
    assert r.returncode == 1 and "containers.db" in r.stdout, r
    r = pycontain("system", "check", "--repair", root=root)
    assert r.returncode == 0, r
    r = pycontain("ps", "-a", root=root)
    assert r.returncode == 0, r.stderr


def test_flipped_and_missing_blobs_are_found_and_quarantined(root, image_ref):
    blobs = root / "images" / "blobs" / "sha256"
    layer = max(os.listdir(blobs), key=lambda n: os.path.getsize(blobs / n))
    with open(blobs / layer, "r+b") as f:
        f.seek(1000)
        b = f.read(1)
        f.seek(1000)
        f.write(bytes([b[0] ^ 0xFF]))
    r = pycontain("system", "check", root=root)
    assert r.returncode == 1 and layer in r.stdout, r
    r = pycontain("save", "-o", str(root.parent / "out.tar"), image_ref, root=root)
    one_line_error(r, "digest")
    assert not (root.parent / "out.tar").exists()
    r = pycontain("system", "check", "--repair", root=root)
    assert r.returncode == 0 and "quarantine" in r.stdout, r
    assert pycontain("system", "check", root=root).returncode == 0
