"""docker export and docker commit of managed containers, through the CLI."""
import io
import subprocess
import sys
import tarfile

import pytest


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "pycontain", *args], capture_output=True, **kw)


@pytest.fixture
def changed_container(busybox):
    """A stopped container that wrote a file and deleted another."""
    name = "exp-commit-test"
    r = cli("run", "--name", name, "--rootfs", str(busybox), "sh", "-c", "echo made > /new; rm /etc/group")
    assert r.returncode == 0, r.stderr
    yield name
    cli("rm", "-f", name)


def test_export_is_the_merged_filesystem(changed_container, tmp_path):
    out = tmp_path / "fs.tar"
    r = cli("export", "-o", str(out), changed_container)
    assert r.returncode == 0, r.stderr
    with tarfile.open(out) as t:
        names = {n.lstrip("./") for n in t.getnames()}
        assert t.extractfile(next(m for m in t.getmembers() if m.name.lstrip("./") == "new")).read() == b"made\n"
    assert "bin/busybox" in names and "etc/passwd" in names
    assert "etc/group" not in names                      # deleted in the container
    r = cli("export", changed_container)                 # to a pipe
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as t:
        assert {n.lstrip("./") for n in t.getnames()} == names


def test_commit_makes_an_image_that_runs(changed_container):
    r = cli("commit", "-m", "from a test", changed_container, "committed-test:v1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().startswith("sha256:")
    try:
        r = cli("run", "--rm", "committed-test:v1", "sh", "-c", "cat /new; ls /etc/group 2>&1 || echo gone")
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode().split("\n")[:1] == ["made"] and "gone" in r.stdout.decode()
    finally:
        cli("rmi", "committed-test:v1")
