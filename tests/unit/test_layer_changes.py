"""docker diff's reading of a writable layer (image.merged.layer_changes):
whiteouts, opaque directories, a file that hides a lower directory, and
links never followed."""
import os

from pycontain.image.merged import layer_changes


def _files(root, paths):
    for p in paths:
        full = root / p
        full.parent.mkdir(parents=True, exist_ok=True)
        if p.endswith("/"):
            full.mkdir(exist_ok=True)
        else:
            full.write_text(p)


def test_kinds_and_order(tmp_path):
    low2, low1, up = tmp_path / "low2", tmp_path / "low1", tmp_path / "up"
    _files(low2, ["etc/passwd", "etc/group", "opt/a/x", "var/old", "srv/d/"])
    _files(low1, ["etc/extra", "usr/"])
    os.mknod(low1 / "var", 0o600 | 0o020000, 0)          # low1 deletes /var of low2
    _files(up, ["etc/passwd", "new/f", "opt/a/", "var/", "srv/"])
    os.mknod(up / "etc" / "group", 0o600 | 0o020000, 0)   # a whiteout: deleted
    os.setxattr(up / "opt" / "a", "trusted.overlay.opaque", b"y")
    (up / "opt" / "a" / "x").write_text("again")          # under an opaque dir: new, not changed
    os.symlink("/etc", up / "srv" / "d")                   # a link where a directory was: changed, not followed
    assert layer_changes(up, [low1, low2]) == [
        ("C", "/etc"), ("D", "/etc/group"), ("C", "/etc/passwd"),
        ("A", "/new"), ("A", "/new/f"),
        ("C", "/opt"), ("C", "/opt/a"), ("A", "/opt/a/x"),
        ("C", "/srv"), ("C", "/srv/d"),
        ("A", "/var"),                                      # what low1 deleted comes back as new
    ]
