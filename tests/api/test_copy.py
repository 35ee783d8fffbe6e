"""docker cp both ways through /containers/{id}/archive (GET, HEAD, PUT), with
the machine's docker CLI and docker-py, running and stopped containers, and
links that point out of the container."""
import base64
import glob
import io
import json
import os
import tarfile
import tempfile

import docker as docker_py
import pytest
from apitools import IMAGE


def _temp_dirs() -> set:
    """The service's private copies (copy_archive's temp dirs, stat's)."""
    tmp = tempfile.gettempdir()
    return set(glob.glob(os.path.join(tmp, "pycontain-cp-*")) + glob.glob(os.path.join(tmp, "pycontain-stat-*")))


@pytest.fixture
def no_temp_left():
    before = _temp_dirs()
    yield
    assert _temp_dirs() - before == set(), "the service left a temp dir behind"


def _tree(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.txt").write_text("beta\n")
    os.symlink("a.txt", src / "link")
    os.chown(src / "a.txt", 1234, 1234)
    return src


def test_cp_in_and_out_of_a_running_container(docker, tmp_path, no_temp_left):
    src = _tree(tmp_path)
    r = docker("run", "-d", "--name", "api-cp", "--network", "none", IMAGE, "sleep", "60")
    assert r.returncode == 0, r.stderr
    r = docker("cp", str(src), "api-cp:/tmp/")
    assert r.returncode == 0, r.stderr
    r = docker("exec", "api-cp", "sh", "-c",
               "cat /tmp/src/a.txt /tmp/src/sub/b.txt; readlink /tmp/src/link; stat -c %u:%g /tmp/src/a.txt")
    # docker's rule: what is copied in belongs to the container's root
    assert (r.returncode, r.stdout) == (0, "alpha\nbeta\na.txt\n0:0\n"), r.stderr
    # -a: the source's numeric owners
    r = docker("cp", "-a", str(src / "a.txt"), "api-cp:/tmp/kept.txt")
    assert r.returncode == 0, r.stderr
    assert docker("exec", "api-cp", "stat", "-c", "%u:%g", "/tmp/kept.txt").stdout == "1234:1234\n"

    out = tmp_path / "out"
    out.mkdir()
    r = docker("cp", "api-cp:/tmp/src", str(out))
    assert r.returncode == 0, r.stderr
    assert (out / "src" / "sub" / "b.txt").read_text() == "beta\n"
    assert os.readlink(out / "src" / "link") == "a.txt"
    r = docker("cp", "api-cp:/tmp/src/.", str(out / "content"))      # a directory's content
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out / "content")) == ["a.txt", "link", "sub"]
    r = docker("cp", "api-cp:/tmp/src/sub/b.txt", str(out / "renamed.txt"))
    assert r.returncode == 0, r.stderr
    assert (out / "renamed.txt").read_text() == "beta\n"
    r = docker("cp", "-L", "api-cp:/tmp/src/link", str(out / "followed"))  # -L: the link's target
    assert r.returncode == 0, r.stderr
    assert (out / "followed").read_text() == "alpha\n" and not os.path.islink(out / "followed")

    r = docker("cp", "api-cp:/no/such/file", str(out))
    assert r.returncode != 0 and "Could not find the file /no/such/file" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert docker("rm", "-f", "api-cp").returncode == 0


def test_cp_of_a_stopped_container(docker, tmp_path, no_temp_left):
    """A stopped container's files: its overlay, mounted in a helper's own mount namespace."""
    r = docker("create", "--name", "api-cp-stopped", "--network", "none", IMAGE, "cat", "/tmp/in.txt")
    assert r.returncode == 0, r.stderr
    (tmp_path / "in.txt").write_text("copied while stopped\n")
    r = docker("cp", str(tmp_path / "in.txt"), "api-cp-stopped:/tmp/")
    assert r.returncode == 0, r.stderr
    r = docker("start", "-a", "api-cp-stopped")
    assert (r.returncode, r.stdout) == (0, "copied while stopped\n"), r.stderr
    r = docker("cp", "api-cp-stopped:/tmp/in.txt", str(tmp_path / "back.txt"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "back.txt").read_text() == "copied while stopped\n"
    assert docker("rm", "api-cp-stopped").returncode == 0


def test_links_never_lead_out_of_the_container(docker, tmp_path, no_temp_left):
    """A link in the container naming a host directory resolves inside the
    container (where it names nothing), both ways."""
    host_dir = tmp_path / "host-only"
    host_dir.mkdir()
    (host_dir / "secret").write_text("the host's\n")
    r = docker("run", "-d", "--name", "api-cp-links", "--network", "none", IMAGE, "sh", "-c",
               f"ln -s {host_dir} /tmp/out; ln -s ../../../../../../{host_dir} /tmp/up; exec sleep 60")
    assert r.returncode == 0, r.stderr
    for link in ("/tmp/out", "/tmp/up"):
        r = docker("cp", f"api-cp-links:{link}/secret", str(tmp_path / "got"))
        assert r.returncode != 0 and "Could not find the file" in r.stderr, r.stderr
        assert not (tmp_path / "got").exists()
        (tmp_path / "new").write_text("planted\n")
        r = docker("cp", str(tmp_path / "new"), f"api-cp-links:{link}/")
        assert r.returncode != 0, r.stdout
        assert "Traceback" not in r.stderr
    assert sorted(os.listdir(host_dir)) == ["secret"]     # nothing written through the links
    assert docker("rm", "-f", "api-cp-links").returncode == 0


def test_docker_py_archive_shapes_and_bad_tars(service, tmp_path, no_temp_left):
    client = docker_py.DockerClient(base_url=f"unix://{service}")
    c = client.containers.run(IMAGE, ["sleep", "60"], detach=True, network_mode="none", name="api-cp-py")
    try:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            ti = tarfile.TarInfo("hello.txt")
            data = b"from docker-py\n"
            ti.size, ti.mode = len(data), 0o640
            tf.addfile(ti, io.BytesIO(data))
        assert c.put_archive("/tmp", buf.getvalue()) is True
        stream, st = c.get_archive("/tmp/hello.txt")
        assert (st["name"], st["size"], st["mode"], st["linkTarget"]) == ("hello.txt", 15, 0o640, "")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tf:
            assert tf.getnames() == ["hello.txt"]
            assert tf.extractfile("hello.txt").read() == data
        _, st = c.get_archive("/tmp")
        assert st["mode"] == (1 << 31) | (1 << 20) | 0o777 and st["name"] == "tmp"   # Go's FileMode: dir, sticky

        # HEAD, as docker cp asks it (the client is a requests session)
        api = client.api
        resp = api.head(api._url("/containers/{0}/archive", c.id), params={"path": "/tmp/hello.txt"})
        assert resp.status_code == 200
        assert json.loads(base64.b64decode(resp.headers["X-Docker-Container-Path-Stat"]))["size"] == 15
        resp = api.head(api._url("/containers/{0}/archive", c.id), params={"path": "/nope"})
        assert resp.status_code == 404

        # refused: a member escaping with "..", a body that is no tar, a file as the extraction point
        evil = io.BytesIO()
        with tarfile.open(fileobj=evil, mode="w") as tf:
            ti = tarfile.TarInfo("../../escaped")
            tf.addfile(ti, io.BytesIO(b""))
        for body, path in ((evil.getvalue(), "/tmp"), (b"not a tar at all" * 64, "/tmp"),
                           (buf.getvalue(), "/tmp/hello.txt")):
            with pytest.raises(docker_py.errors.APIError) as e:
                c.put_archive(path, body)
            assert e.value.status_code == 400, e.value.explanation
        with pytest.raises(docker_py.errors.NotFound):
            c.put_archive("/no/such/dir", buf.getvalue())
        assert c.exec_run(["ls", "/", "/tmp"]).output.decode().count("escaped") == 0
    finally:
        c.remove(force=True)
        client.close()
