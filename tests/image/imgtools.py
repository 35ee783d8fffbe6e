"""Helpers for the image tests: layer tarballs built here, from real files."""
import io
import os
import subprocess
import tarfile



def tar_of_dir(src, dest, compress=None):
    """A layer tarball of a directory with GNU tar (xattrs kept), as image builders make them."""
    flags = {"gzip": ["-z"], "zstd": ["--zstd"], None: []}[compress]
    subprocess.run(["tar", "--xattrs", "--numeric-owner", "-c", *flags, "-f", str(dest), "-C", str(src), "."], check=True)
    return dest


def make_tar(members, compress=None) -> bytes:
    """A tar built member by member: [(TarInfo, data-bytes-or-None)]."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in members:
            if data is not None:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                tf.addfile(ti)
    raw = buf.getvalue()
    if compress == "gzip":
        import gzip
        return gzip.compress(raw)
    return raw


def member(name, type=tarfile.REGTYPE, data=None, linkname="", mode=0o644, **kw):  # noqa: A002  (TarInfo.type)
    ti = tarfile.TarInfo(name)
    ti.type = type
    ti.linkname = linkname
    ti.mode = mode
    for k, v in kw.items():
        setattr(ti, k, v)
    return (ti, data if data is not None else (b"" if type == tarfile.REGTYPE else None))


def store_leftovers(store_root):
    """What a store holds besides complete content: anything in tmp/."""
    tmp = store_root / "images" / "tmp"
    return sorted(os.listdir(tmp)) if tmp.exists() else []
