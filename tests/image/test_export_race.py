"""Export and commit read a running container's upper layer, which the
container can change under them: a file or a directory swapped for a symlink
between the walk's lstat and the open (docker's CVE-2018-15664) must never
make them read the host's files. The swap is made at exactly that moment."""
import io
import os
import tarfile

import pytest

from pycontain.errors import ConfigError
from pycontain.image import merged


@pytest.fixture
def upper(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("HOST-SECRET\n")
    up = tmp_path / "upper"
    (up / "d").mkdir(parents=True)
    (up / "f").write_text("plain\n")
    (up / "d" / "g").write_text("plain\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "g").write_text("HOST-SECRET\n")
    return up, secret, outside


def _add_after_swap(upper, rel, swap):
    tf = tarfile.open(fileobj=io.BytesIO(), mode="w|")
    path = os.path.join(upper, rel)
    ti = merged.tarinfo(tf, path, rel)  # the walk saw a regular file
    assert ti.isreg()
    swap()                               # ... then the container moved
    merged.add_member(tf, ti, path, rel)


def test_a_file_swapped_for_a_symlink_is_not_followed(upper):
    up, secret, _ = upper

    def swap():
        os.unlink(up / "f")
        os.symlink(secret, up / "f")
    with pytest.raises(ConfigError, match="'f' changed while it was being exported"):
        _add_after_swap(up, "f", swap)


def test_a_directory_swapped_for_a_symlink_is_not_followed(upper):
    up, _, outside = upper

    def swap():
        os.unlink(up / "d" / "g")
        os.rmdir(up / "d")
        os.symlink(outside, up / "d")
    with pytest.raises(ConfigError, match="'d/g' changed while it was being exported"):
        _add_after_swap(up, "d/g", swap)


def test_unchanged_files_are_read(upper):
    up, _, _ = upper
    buf = io.BytesIO()
    merged.export([up], buf)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as t:
        assert t.extractfile("d/g").read() == b"plain\n"
