"""Layer unpacking: every tar feature images use, and hostile layers refused."""
import io
import os
import stat
import subprocess
import tarfile

import pytest

from pycontain.image.unpack import LayerError, unpack_layer

from imgtools import make_tar, member, tar_of_dir


def unpack_bytes(data, dest, **kw):
    dest.mkdir()
    return unpack_layer(io.BytesIO(data), dest, **kw)


@pytest.mark.parametrize("compress", [None, "gzip", "zstd"])
def test_unpack_matches_gnu_tar(tmp_path, busybox, compress):
    """Unpacked like GNU tar: same files, modes (setuid too), owners, links, xattrs, devices."""
    src = tmp_path / "src"
    subprocess.run(["cp", "-a", str(busybox), str(src)], check=True)
    os.chmod(src / "bin" / "busybox", 0o4755)
    os.link(src / "bin" / "busybox", src / "bin" / "hardlinked")
    (src / "etc" / "abs-link").symlink_to("/etc/passwd")
    os.setxattr(src / "etc" / "passwd", "user.origin", b"test\x00bin")
    os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mkfifo(src / "fifo")
    os.chown(src / "home" / "user", 1000, 1000)
    layer = tar_of_dir(src, tmp_path / "layer.tar", compress)
    out = tmp_path / "out"
    out.mkdir()
    with open(layer, "rb") as f:
        res = unpack_layer(f, out)

    plain = subprocess.run({"gzip": ["gzip", "-dc", str(layer)], "zstd": ["zstd", "-dc", str(layer)],
                            None: ["cat", str(layer)]}[compress], capture_output=True, check=True).stdout
    import hashlib
    assert res.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert res.compression == (compress or "none")

    st = os.stat(out / "bin" / "busybox")
    assert stat.S_IMODE(st.st_mode) == 0o4755
    assert os.stat(out / "bin" / "hardlinked").st_ino == st.st_ino
    assert os.readlink(out / "etc" / "abs-link") == "/etc/passwd"
    assert os.readlink(out / "bin" / "sh") == "busybox"
    assert os.getxattr(out / "etc" / "passwd", "user.origin") == b"test\x00bin"
    nst = os.lstat(out / "null")
    assert stat.S_ISCHR(nst.st_mode) and nst.st_rdev == os.makedev(1, 3)
    assert stat.S_ISFIFO(os.lstat(out / "fifo").st_mode)
    assert (os.stat(out / "home" / "user").st_uid, os.stat(out / "home" / "user").st_gid) == (1000, 1000)
    assert stat.S_IMODE(os.stat(out / "tmp").st_mode) == 0o1777
    assert os.stat(out / "etc" / "passwd").st_mtime == os.stat(src / "etc" / "passwd").st_mtime
    # the same tree, file for file
    a = subprocess.run(["find", ".", "-printf", "%p %y %m %U %G %s %l\n"], cwd=src, capture_output=True, text=True).stdout
    b = subprocess.run(["find", ".", "-printf", "%p %y %m %U %G %s %l\n"], cwd=out, capture_output=True, text=True).stdout
    assert sorted(a.splitlines()) == sorted(b.splitlines())


def test_whiteouts_become_overlay_form(tmp_path):
    data = make_tar([
        member("etc/", tarfile.DIRTYPE, mode=0o755),
        member("etc/.wh.passwd"),
        member("var/", tarfile.DIRTYPE, mode=0o755),
        member("var/cache/", tarfile.DIRTYPE, mode=0o700),
        member("var/cache/.wh..wh..opq"),
        member("var/cache/new", data=b"new"),
        member("etc/.wh..wh.plnk"),
    ], "gzip")
    unpack_bytes(data, tmp_path / "l")
    wh = os.lstat(tmp_path / "l/etc/passwd")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert os.getxattr(tmp_path / "l/var/cache", "trusted.overlay.opaque") == b"y"
    assert not (tmp_path / "l/var/cache/.wh..wh..opq").exists()
    assert sorted(os.listdir(tmp_path / "l/etc")) == ["passwd"]
    assert stat.S_IMODE(os.stat(tmp_path / "l/var/cache").st_mode) == 0o700


def test_later_member_replaces_earlier(tmp_path):
    data = make_tar([
        member("a", data=b"one"),
        member("a", data=b"two"),
        member("d/", tarfile.DIRTYPE),
        member("d/x", data=b"x"),
        member("d", tarfile.SYMTYPE, linkname="elsewhere"),
    ])
    unpack_bytes(data, tmp_path / "l")
    assert (tmp_path / "l/a").read_bytes() == b"two"
    assert os.readlink(tmp_path / "l/d") == "elsewhere"


def test_long_names_and_pax(tmp_path):
    long = "dir/" + "x" * 150 + "/" + "y" * 120
    data = make_tar([member(long, data=b"deep"), member("link", tarfile.SYMTYPE, linkname="/" + "z" * 200)])
    unpack_bytes(data, tmp_path / "l")
    assert (tmp_path / "l" / long).read_bytes() == b"deep"
    assert os.readlink(tmp_path / "l/link") == "/" + "z" * 200


def test_layer_without_end_trailer_is_accepted(tmp_path):
    """umoci insert writes no end-of-archive blocks; podman accepts such layers, so do we."""
    data = make_tar([member("f", data=b"data")])
    body = data.rstrip(b"\0")
    body += b"\0" * (-len(body) % 512)
    unpack_bytes(body, tmp_path / "l")
    assert (tmp_path / "l/f").read_bytes() == b"data"


HOSTILE = {
    "dotdot": ([member("../escape", data=b"x")], "../escape"),
    "dotdot-inside": ([member("a/../../escape", data=b"x")], "a/../../escape"),
    "absolute": ([member("/tmp/escape", data=b"x")], "/tmp/escape"),
    "symlink-parent": ([member("evil", tarfile.SYMTYPE, linkname="/"),
                        member("evil/tmp/escape", data=b"x")], "evil/tmp/escape"),
    "relative-symlink-parent": ([member("a/", tarfile.DIRTYPE),
                                 member("a/up", tarfile.SYMTYPE, linkname="../.."),
                                 member("a/up/escape", data=b"x")], "a/up/escape"),
    "hardlink-escape": ([member("h", tarfile.LNKTYPE, linkname="../../etc/passwd")], "h"),
    "hardlink-absolute": ([member("h", tarfile.LNKTYPE, linkname="/etc/passwd")], "h"),
    "hardlink-via-symlink": ([member("s", tarfile.SYMTYPE, linkname="/etc"),
                              member("h", tarfile.LNKTYPE, linkname="s/passwd")], "h"),
    "hardlink-missing": ([member("h", tarfile.LNKTYPE, linkname="nothing")], "h"),
    "whiteout-through-symlink": ([member("s", tarfile.SYMTYPE, linkname="/etc"),
                                  member("s/.wh.passwd")], "s/.wh.passwd"),
    "overlay-xattr": ([member("f", data=b"x", pax_headers={"SCHILY.xattr.trusted.overlay.redirect": "/etc"})], "f"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_layer_refused_naming_member(tmp_path, case):
    members, culprit = HOSTILE[case]
    outside = tmp_path / "tmp"
    outside.mkdir()
    with pytest.raises(LayerError) as e:
        unpack_bytes(make_tar(members), tmp_path / "l")
    assert repr(culprit) in str(e.value), str(e.value)
    assert os.listdir(outside) == []
    assert os.path.exists("/etc/passwd") and not os.path.exists("/tmp/escape")


def test_device_nodes_refused_when_not_allowed(tmp_path):
    data = make_tar([member("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0)])
    with pytest.raises(LayerError, match="'dev/sda': device node refused"):
        unpack_bytes(data, tmp_path / "l", allow_devices=False)


def test_absurd_size_refused(tmp_path):
    """A member declaring more bytes than the disk has is refused before writing."""
    ti = tarfile.TarInfo("huge")
    ti.size = 1 << 50
    hdr = ti.tobuf(tarfile.GNU_FORMAT)
    with pytest.raises(LayerError, match="'huge': declares 1125899906842624 bytes"):
        unpack_bytes(hdr + b"\0" * 4096, tmp_path / "l")
    assert os.listdir(tmp_path / "l") == []


def test_truncated_layers_refused(tmp_path):
    data = make_tar([member("f", data=b"x" * 10000)], "gzip")
    with pytest.raises(LayerError, match="truncated"):
        unpack_bytes(data[: len(data) // 2], tmp_path / "a")
    raw = make_tar([member("f", data=b"x" * 10000)])
    with pytest.raises(LayerError, match="'f': truncated data"):
        unpack_bytes(raw[:3000], tmp_path / "b")


def test_corrupt_header_refused(tmp_path):
    raw = bytearray(make_tar([member("f", data=b"x")]))
    raw[10] ^= 0xFF
    with pytest.raises(LayerError, match="checksum"):
        unpack_bytes(bytes(raw), tmp_path / "l")


def test_text_that_is_no_tar_refused(tmp_path):
    """A header whose number fields are not octal (any text that is no tar):
    a LayerError, not a ValueError out of the reader (docker cp's PUT sends
    a client's body here)."""
    with pytest.raises(LayerError, match="malformed tar header"):
        unpack_bytes(b"not a tar at all" * 64, tmp_path / "l")


def test_layer_root_mode(tmp_path):
    """Without a "./" entry the layer's root is 0755 (not the 0700 of a temp dir); with one, its mode."""
    d = tmp_path / "a"
    d.mkdir(mode=0o700)
    unpack_layer(io.BytesIO(make_tar([member("f", data=b"x")])), d)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o755
    e = tmp_path / "b"
    e.mkdir(mode=0o700)
    unpack_layer(io.BytesIO(make_tar([member("./", tarfile.DIRTYPE, mode=0o750)])), e)
    assert stat.S_IMODE(os.stat(e).st_mode) == 0o750
