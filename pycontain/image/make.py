"""Making images here: import of a rootfs tarball, commit of a container's
upper directory, export of a merged filesystem, docker's --change lines."""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import shlex
import stat
import tarfile
import zlib

from .. import rootless
from ..errors import ConfigError
from . import reference as refmod
from .merged import add_member, is_opaque, is_whiteout, tarinfo
from .store import (MEDIA_OCI_CONFIG, MEDIA_OCI_LAYER, MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_LAYER_ZSTD,
                    MEDIA_OCI_MANIFEST, ImageStore, chain_ids, host_platform, opened_source)
from .unpack import (OPAQUE_MARKER, WHITEOUT_PREFIX, LayerError,
                     detect_compression)

LAYER_MEDIA = {"gzip": MEDIA_OCI_LAYER_GZIP, "zstd": MEDIA_OCI_LAYER_ZSTD, "none": MEDIA_OCI_LAYER}


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---- docker's --change instructions ---------------------------------------------

def _json_or_shell(arg: str) -> list:
    arg = arg.strip()
    if arg.startswith("["):
        try:
            v = json.loads(arg)
        except ValueError:
            raise ConfigError(f"invalid JSON array in change: {arg!r}") from None
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ConfigError(f"expected a JSON array of strings: {arg!r}")
        return v
    return ["/bin/sh", "-c", arg]


def apply_changes(cfg: dict, changes) -> dict:
    """Applies Dockerfile-like lines (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
    STOPSIGNAL, USER, VOLUME, WORKDIR) to an image config's "config" section."""
    cfg = dict(cfg)
    for line in changes or ():
        word, _, arg = line.strip().partition(" ")
        word = word.upper()
        arg = arg.strip()
        if word == "CMD":
            cfg["Cmd"] = _json_or_shell(arg)
        elif word == "ENTRYPOINT":
            cfg["Entrypoint"] = _json_or_shell(arg)
        elif word == "ENV":
            pairs = shlex.split(arg)
            if len(pairs) >= 2 and "=" not in pairs[0]:
                pairs = [f"{pairs[0]}={arg.split(None, 1)[1]}"]
            env = list(cfg.get("Env") or [])
            for p in pairs:
                if "=" not in p:
                    raise ConfigError(f"ENV needs NAME=VALUE: {line!r}")
                k = p.split("=", 1)[0]
                env = [e for e in env if e.split("=", 1)[0] != k] + [p]
            cfg["Env"] = env
        elif word == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for p in arg.split():
                ports[p if "/" in p else f"{p}/tcp"] = {}
            cfg["ExposedPorts"] = ports
        elif word == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            for p in shlex.split(arg):
                k, sep, v = p.partition("=")
                if not sep:
                    raise ConfigError(f"LABEL needs KEY=VALUE: {line!r}")
                labels[k] = v
            cfg["Labels"] = labels
        elif word == "STOPSIGNAL":
            cfg["StopSignal"] = arg
        elif word == "USER":
            cfg["User"] = arg
        elif word == "WORKDIR":
            cfg["WorkingDir"] = arg
        elif word == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            for v in (_json_or_shell(arg) if arg.startswith("[") else arg.split()):
                vols[v] = {}
            cfg["Volumes"] = vols
        else:
            raise ConfigError(f"unsupported change {word!r}: one of CMD ENTRYPOINT ENV EXPOSE LABEL STOPSIGNAL USER VOLUME WORKDIR")
    return cfg


def make_config(base: dict | None, diff_id: str, *, changes=(), created_by="", comment=None, author=None) -> dict:
    os_name, arch, variant = host_platform()
    base = base or {"architecture": arch, "os": os_name, "config": {}, "rootfs": {"type": "layers", "diff_ids": []}}
    created = now_rfc3339()
    cfg = {k: v for k, v in base.items() if k not in ("container", "container_config")}
    cfg["created"] = created
    cfg["config"] = apply_changes(base.get("config") or {}, changes)
    cfg["rootfs"] = {"type": "layers", "diff_ids": list(base.get("rootfs", {}).get("diff_ids", [])) + [diff_id]}
    h = {"created": created, "created_by": created_by}
    if comment:
        h["comment"] = comment
    if author:
        cfg["author"] = h["author"] = author
    cfg["history"] = list(base.get("history") or []) + [h]
    if variant and "variant" not in cfg and cfg.get("architecture") == arch:
        cfg["variant"] = variant
    return cfg


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _manifest(config_bytes: bytes, config_digest: str, layers: list) -> bytes:
    return _dumps({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": layers,
    })


def _layer_descriptor(store: ImageStore, digest: str) -> dict:
    with open(store.blob_path(digest), "rb") as f:
        comp = detect_compression(f.read(4))
    return {"mediaType": LAYER_MEDIA[comp], "digest": digest, "size": store.blob_path(digest).stat().st_size}


# ---- import -----------------------------------------------------------------------

def import_tarball(store: ImageStore, source, ref=None, changes=(), message=None) -> str:
    """docker import: a rootfs tarball (plain, gzip or zstd) becomes a one-layer image."""
    names = [refmod.parse(ref)] if ref else []
    cfg_changes = list(changes or ())
    apply_changes({}, cfg_changes)  # bad changes are refused before anything is written
    with store.writing():
        with opened_source(source) as f:
            blob, _ = store.put_blob_file(f)
        what = source if isinstance(source, (str, os.PathLike)) else "the input"
        try:
            chain, diff_id = store.ensure_layer(blob, None)
        except LayerError as e:
            raise LayerError(f"cannot import {what}: not a tar archive ({e})") from None
        if not any(os.scandir(store.layer_path(chain))):   # docker makes an image that cannot run
            raise LayerError(f"cannot import {what}: no files in it (an empty file or an empty tar archive)")
        cfg = make_config(None, diff_id, changes=cfg_changes, created_by="pycontain import", comment=message or "Imported from tarball")
        cfg_bytes = _dumps(cfg)
        cfg_digest = store.put_blob(cfg_bytes)
        manifest = _manifest(cfg_bytes, cfg_digest, [_layer_descriptor(store, blob)])
        return store.add_image(cfg_bytes, manifest, names)


# ---- commit: an overlay upper dir becomes a layer --------------------------------

class _HashingGzipWriter:
    """File-like sink for tarfile: hashes the tar stream (diff id) and writes it gzip'ed into a blob."""

    def __init__(self, blob_writer):
        self.w = blob_writer
        self.hash = hashlib.sha256()
        self.z = zlib.compressobj(6, zlib.DEFLATED, 31)

    def write(self, data):
        self.hash.update(data)
        out = self.z.compress(data)
        if out:
            self.w.write(out)
        return len(data)

    def close(self):
        self.w.write(self.z.flush())


def write_diff_tar(upper_dir, out) -> None:
    """The changes in an overlay upper dir as an OCI layer tar written to out:
    whiteouts (char 0/0) become .wh.NAME, opaque directories get .wh..wh..opq."""
    rootless.write_as_container_root(_write_diff_tar, out, upper_dir)


def _write_diff_tar(out, upper_dir) -> None:
    tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape")
    upper = os.fspath(upper_dir)
    for dirpath, dirnames, filenames in os.walk(upper):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, upper)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        if rel_dir and is_opaque(dirpath):
            ti = tarfile.TarInfo(rel_dir + OPAQUE_MARKER)
            ti.mtime = 0
            tf.addfile(ti)
        linked = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = [d for d in dirnames if d not in linked]
        for name in sorted(filenames + linked) + dirnames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if is_whiteout(st):
                ti = tarfile.TarInfo(rel_dir + WHITEOUT_PREFIX + name)
                ti.mtime = int(st.st_mtime)
                tf.addfile(ti)
                continue
            if stat.S_ISSOCK(st.st_mode):
                continue  # sockets are not part of an image, as in docker
            add_member(tf, tarinfo(tf, p, rel_dir + name), p, rel_dir + name)
    tf.close()


def commit(store: ImageStore, upper_dir, base_ref=None, new_ref=None, changes=(), message=None, author=None) -> str:
    """A container's upper dir becomes a new layer on top of base_ref (or a
    one-layer image when None), named new_ref. Returns the image id."""
    names = [refmod.parse(new_ref)] if new_ref else []
    apply_changes({}, changes)
    base_cfg, base_layers, parent = None, [], None
    if base_ref:
        base = store.lookup(base_ref)
        base_cfg = store.config(base.id)
        base_layers = store.manifest(base)["layers"]
        parent = base.chain_ids[-1] if base.chain_ids else None
    with store.writing():
        with store.blob_writer() as w:
            sink = _HashingGzipWriter(w)
            write_diff_tar(upper_dir, sink)
            sink.close()
            blob = w.commit()
        diff_id = "sha256:" + sink.hash.hexdigest()
        store.ensure_layer(blob, parent, diff_id)
        cfg = make_config(base_cfg, diff_id, changes=changes, created_by="pycontain commit", comment=message, author=author)
        cfg_bytes = _dumps(cfg)
        cfg_digest = store.put_blob(cfg_bytes)
        manifest = _manifest(cfg_bytes, cfg_digest, list(base_layers) + [_layer_descriptor(store, blob)])
        return store.add_image(cfg_bytes, manifest, names)


# ---- export: the merged view of layers as one tar ------------------------------


__all__ = ["apply_changes", "import_tarball", "commit", "write_diff_tar", "chain_ids"]
