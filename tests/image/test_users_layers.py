"""/etc/passwd as the container sees it, read from layers in overlayfs form
(what pycontain.image unpacks): whiteouts, opaque directories, files over directories."""
import os
import stat

from pycontain.users import read_in_layers


def layers(tmp_path, *specs):
    out = []
    for i, spec in enumerate(specs):
        d = tmp_path / f"l{i}"
        d.mkdir()
        spec(d)
        out.append(str(d))
    return out[::-1]  # top first


def base(d):
    (d / "etc").mkdir()
    (d / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")


def test_lower_layer_shows_through(tmp_path):
    assert read_in_layers(layers(tmp_path, base, lambda d: (d / "etc").mkdir()), "/etc/passwd").startswith(b"root:")


def test_whiteout_hides(tmp_path):
    def top(d):
        (d / "etc").mkdir()
        os.mknod(d / "etc" / "passwd", stat.S_IFCHR, os.makedev(0, 0))
    assert read_in_layers(layers(tmp_path, base, top), "/etc/passwd") is None


def test_whited_out_directory_hides(tmp_path):
    assert read_in_layers(layers(tmp_path, base, lambda d: os.mknod(d / "etc", stat.S_IFCHR, os.makedev(0, 0))),
                          "/etc/passwd") is None


def test_opaque_directory_hides(tmp_path):
    def top(d):
        (d / "etc").mkdir()
        os.setxattr(d / "etc", "trusted.overlay.opaque", b"y")
    assert read_in_layers(layers(tmp_path, base, top), "/etc/passwd") is None


def test_fifo_is_not_opened(tmp_path):
    def top(d):
        (d / "etc").mkdir()
        os.mkfifo(d / "etc" / "passwd")
    assert read_in_layers(layers(tmp_path, base, top), "/etc/passwd") is None  # and does not block
