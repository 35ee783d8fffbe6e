"""The image verbs of the command line, through pycontain.cli.main (docker's flags and columns)."""
import json
import os
import stat

import pytest

from pycontain import image
from pycontain.cli import main

from regtools import PASSWORD, USER


@pytest.fixture
def cli_root(tmp_path, monkeypatch):
    monkeypatch.setenv("PYCONTAIN_ROOT", str(tmp_path / "root"))
    return tmp_path / "root"


def run(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_import_images_tag_history_inspect_rmi(cli_root, busybox_tar, capsys):
    rc, out, _ = run(capsys, "import", "-c", "CMD echo hi", "-m", "from cli", str(busybox_tar), "cli/bb:1")
    assert rc == 0 and out.startswith("sha256:")
    image_id = out.strip()
    assert run(capsys, "tag", "cli/bb:1", "localhost:5000/x/bb")[0] == 0
    rc, out, _ = run(capsys, "images")
    lines = out.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert {tuple(line.split()[:3]) for line in lines[1:]} == {("cli/bb", "1", image_id[7:19]),
                                                               ("localhost:5000/x/bb", "latest", image_id[7:19])}
    rc, out, _ = run(capsys, "images", "-q")
    assert out == image_id[7:19] + "\n"
    rc, out, _ = run(capsys, "history", "cli/bb:1")
    assert "pycontain import" in out and "from cli" in out and out.startswith("IMAGE")
    rc, out, _ = run(capsys, "image", "inspect", "cli/bb:1")
    info = json.loads(out)[0]
    assert info["Id"] == image_id and info["Config"]["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    assert sorted(info["RepoTags"]) == ["cli/bb:1", "localhost:5000/x/bb:latest"]
    rc, out, _ = run(capsys, "image", "inspect", "-f", "{{.Os}}/{{.Architecture}} {{json .Config.Cmd}}", "cli/bb:1")
    # docker's json: Go's encoding, compact
    assert out.startswith("linux/") and out.strip().endswith('["/bin/sh","-c","echo hi"]')
    rc, out, err = run(capsys, "rmi", image_id[7:19])
    assert rc == 1 and "referenced in multiple repositories" in err
    rc, out, err = run(capsys, "rmi", "cli/bb:1", "localhost:5000/x/bb", "no-such-image")
    assert rc == 1 and "no such image: no-such-image" in err
    assert out.splitlines() == ["Untagged: cli/bb:1", "Untagged: localhost:5000/x/bb:latest", f"Deleted: {image_id}"]
    assert image.list() == []


def test_save_load_prune(cli_root, busybox_tar, tmp_path, capsys):
    run(capsys, "import", str(busybox_tar), "keep:1")
    run(capsys, "import", str(busybox_tar))
    rc, out, _ = run(capsys, "save", "-o", str(tmp_path / "s.tar"), "keep:1")
    assert rc == 0 and (tmp_path / "s.tar").stat().st_size > 1000
    rc, out, _ = run(capsys, "image", "prune", "-f")
    assert out.startswith("Deleted Images:\ndeleted: sha256:") and "Total reclaimed space:" in out
    run(capsys, "rmi", "keep:1")
    rc, out, _ = run(capsys, "load", "-i", str(tmp_path / "s.tar"))
    assert out == "Loaded image: keep:1\n"
    rc, out, _ = run(capsys, "system", "prune", "-a", "-f")   # the same list as image prune's
    assert rc == 0 and out.startswith("Deleted Images:\nuntagged: keep:1\ndeleted: sha256:"), out
    run(capsys, "load", "-i", str(tmp_path / "s.tar"))
    rc, out, err = run(capsys, "load", "-i", str(tmp_path / "nothing.tar"))
    assert rc == 1 and "cannot read" in err


def test_system_df_counts_images(cli_root, busybox_tar, capsys):
    run(capsys, "import", str(busybox_tar), "df/one:1")
    run(capsys, "import", str(busybox_tar), "df/two:1")   # the same layer: counted once
    rc, out, _ = run(capsys, "system", "df", "--format", "json")
    usage = json.loads(out)
    layer = sum(f.lstat().st_size for f in (cli_root / "images" / "layers").rglob("*") if not f.is_symlink())
    assert rc == 0 and usage["Images"]["total"] == 2 and usage["Images"]["active"] == 0
    assert layer // 2 < usage["Images"]["size"] == usage["Images"]["reclaimable"] <= 2 * layer
    rc, out, _ = run(capsys, "system", "df")
    assert [line.split()[:3] for line in out.splitlines() if line.startswith("Images")] == [["Images", "2", "0"]]


def test_import_refuses_an_empty_or_non_tar_file_and_keeps_nothing(cli_root, tmp_path, capsys):
    cases = {"empty": b"", "text": b"not a tar archive\n", "zeros": bytes(10240),   # tar's own empty archive
             "empty.gz": bytes.fromhex("1f8b08000000000000030300000000000000000000")}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        rc, out, err = run(capsys, "import", str(tmp_path / name), f"imp/{name.replace('.', '-')}")
        assert (rc, out) == (1, "") and len(err.splitlines()) == 1, (name, err)
        assert err.startswith(f"pycontain: cannot import {tmp_path / name}: "), err
        assert image.list() == []
        for d in ("blobs/sha256", "layers", "tmp"):
            assert os.listdir(cli_root / "images" / d) == [], (name, d)


def test_pull_push_login_logout(cli_root, htpasswd_registry, busybox_tar, auth_file, capsys):
    host = htpasswd_registry.host
    run(capsys, "import", "-c", "CMD echo x", str(busybox_tar), f"{host}/cli/img:2")
    rc, out, err = run(capsys, "push", f"{host}/cli/img:2")
    assert rc == 1 and "pycontain login" in err
    rc, out, err = run(capsys, "login", "-u", USER, "-p", "wrong", host)
    assert rc == 1 and not auth_file.exists()
    rc, out, _ = run(capsys, "login", "-u", USER, "-p", PASSWORD, host)
    assert (rc, out) == (0, "Login Succeeded\n")
    assert stat.S_IMODE(os.stat(auth_file).st_mode) == 0o600
    rc, out, err = run(capsys, "push", f"{host}/cli/img:2")
    assert rc == 0 and "Pushed" in err and "digest: sha256:" in err
    run(capsys, "rmi", f"{host}/cli/img:2")
    rc, out, err = run(capsys, "pull", f"{host}/cli/img:2")
    assert rc == 0 and out == f"{host}/cli/img:2\n" and "Pull complete" in err
    rc, out, _ = run(capsys, "logout", host)
    assert out == f"Removing login credentials for {host}\n"
    rc, out, err = run(capsys, "pull", f"{host}/cli/img:2")
    assert rc == 1 and "authentication required" in err  # pull always asks the registry


def test_run_pull_never_refuses_a_missing_image(busybox):
    """docker run --pull=never: no registry is asked; the error says so."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "pycontain", "run", "--rm", "--pull", "never",
                        "localhost:1/not-here:latest", "true"], capture_output=True, text=True)
    assert r.returncode == 125
    assert "not-here" in r.stderr
