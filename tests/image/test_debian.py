"""A real distribution layer: Debian bookworm minbase (debootstrap from the
Debian mirror, cached in ~/.cache/pycontain-bench/, shared with bench/).
Unpacked exactly like GNU tar; pushed, pulled and run."""
import subprocess
import sys
from pathlib import Path

import pytest

from pycontain import Container, image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench_unpack  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def debian_layer():
    bench_unpack.make_layer()  # ~30 s the first time, then cached
    return bench_unpack.LAYER


def tree(d):
    out = subprocess.run(["find", ".", "-printf", "%p %y %m %U %G %s %l %n %T@\n"], cwd=d,
                         capture_output=True, text=True, check=True).stdout
    return sorted(out.splitlines())


def test_debian_unpacks_like_gnu_tar(debian_layer, tmp_path):
    from pycontain.image.unpack import unpack_layer

    ours, gnu = tmp_path / "ours", tmp_path / "gnu"
    ours.mkdir()
    gnu.mkdir()
    with open(debian_layer, "rb") as f:
        unpack_layer(f, ours)
    subprocess.run(["tar", "--numeric-owner", "--xattrs", "-xzpf", str(debian_layer), "-C", str(gnu)], check=True)
    assert tree(ours) == tree(gnu)


def test_debian_push_pull_run(debian_layer, registry, tmp_path, leakcheck):
    src = tmp_path / "src"
    image.import_(debian_layer, "local/debian:bookworm", changes=["CMD cat /etc/debian_version"], root=src)
    ref = f"{registry.host}/test/debian:bookworm"
    image.push("local/debian:bookworm", dest=ref, root=src)
    root = tmp_path / "root"
    image.pull(ref, root=root)
    r = Container(ref, command=["sh", "-c", "cat /etc/debian_version; id -un; ls -l /usr/bin/passwd | cut -c1-10"],
                  root=root).run(capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("12.") and lines[1] == "root" and lines[2] == "-rwsr-xr-x"
