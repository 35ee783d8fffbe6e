"""docker load / docker save: docker-save archives and OCI image layouts.

save writes what docker 25+ writes: one tar that is both an OCI image layout
(oci-layout, index.json, blobs/sha256/...) and a docker-save archive
(manifest.json pointing at the same blobs), so docker, podman, skopeo
(docker-archive: and oci-archive:) and pycontain all load it. load reads
either form, from a directory or a (compressed) tar; a tar is unpacked with
the same hostile-input rules as layers, into the store's tmp/.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from ..errors import ConfigError, ContainerError, NoSpace
from ..state import process_start_time
from . import reference as refmod
from .make import _layer_descriptor, _manifest
from .registry import choose_manifest
from .store import HashingReader, damaged_blob
from .store import MEDIA_DOCKER_LIST, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST, ImageStore, opened_source, refmod_familiar
from .unpack import unpack_layer

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


def _safe_rel(root: Path, rel: str) -> Path:
    """A path named inside an archive, kept inside it."""
    p = os.path.normpath(rel)
    if p.startswith("/") or p == ".." or p.startswith("../"):
        raise ConfigError(f"the archive names a path outside itself: {rel!r}")
    full = root / p
    if not os.path.realpath(full).startswith(os.path.realpath(root) + "/"):
        raise ConfigError(f"the archive names a path outside itself: {rel!r}")
    return full


def load(store: ImageStore, source) -> list[str]:
    """Loads every image of a docker-save archive or OCI layout (dir, tar,
    or binary file object). Returns the loaded names (or ids when unnamed)."""
    with store.writing():
        if isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
            return _load_dir(store, Path(source))
        tmp = Path(tempfile.mkdtemp(dir=store.tmp_dir, prefix="load-"))
        try:
            with opened_source(source) as f:
                unpack_layer(f, tmp, allow_devices=False)
            return _load_dir(store, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _load_dir(store: ImageStore, d: Path) -> list[str]:
    if (d / "manifest.json").is_file():
        return _load_docker(store, d)
    if (d / "index.json").is_file():
        return _load_oci(store, d)
    raise ConfigError("not a docker-save archive or OCI layout: no manifest.json or index.json")


def _load_docker(store, d):
    try:
        entries = json.loads((d / "manifest.json").read_text())
    except ValueError:
        raise ConfigError("manifest.json of the archive is not JSON") from None
    out = []
    for e in entries:
        cfg_bytes = _safe_rel(d, e["Config"]).read_bytes()
        cfg = json.loads(cfg_bytes)
        diff_ids = cfg.get("rootfs", {}).get("diff_ids", [])
        if len(diff_ids) != len(e.get("Layers", [])):
            raise ConfigError(f"archive image {e['Config']}: {len(e['Layers'])} layers but {len(diff_ids)} diff ids")
        descs, parent = [], None
        for rel, diff_id in zip(e["Layers"], diff_ids, strict=True):   # lengths checked above
            with open(_safe_rel(d, rel), "rb") as f:
                blob, _ = store.put_blob_file(f)
            parent, _ = store.ensure_layer(blob, parent, diff_id)
            descs.append(_layer_descriptor(store, blob))
        cfg_digest = store.put_blob(cfg_bytes)
        names = [refmod.parse(t) for t in e.get("RepoTags") or ()]
        image_id = store.add_image(cfg_bytes, _manifest(cfg_bytes, cfg_digest, descs), names)
        out.extend(refmod_familiar(str(n)) for n in names) if names else out.append(image_id)
    return out


def _blob(d: Path, digest: str) -> Path:
    algo, _, h = digest.partition(":")
    return _safe_rel(d, f"blobs/{algo}/{h}")


def _load_oci(store, d):
    index = json.loads((d / "index.json").read_text())
    out = []
    for desc in index.get("manifests", []):
        ann = desc.get("annotations") or {}
        name = ann.get(CONTAINERD_NAME) or ann.get(REF_NAME)
        names = []
        if name and ("/" in name or ":" in name):
            try:
                names = [refmod.parse(name)]
            except ConfigError:
                names = []
        mdesc = desc
        if desc.get("mediaType") in (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST):
            sub = json.loads(_verified(d, desc["digest"]))
            mdesc = choose_manifest(sub, None, name or desc["digest"])
        data = _verified(d, mdesc["digest"])
        man = json.loads(data)
        for layer in man.get("layers", []):
            with open(_blob(d, layer["digest"]), "rb") as f:
                store.put_blob_file(f, layer["digest"])
        cfg_bytes = _verified(d, man["config"]["digest"])
        cfg = json.loads(cfg_bytes)
        parent = None
        layers, diff_ids = man.get("layers", []), cfg.get("rootfs", {}).get("diff_ids", [])
        if len(layers) != len(diff_ids):
            raise ConfigError(f"layout image {man['config']['digest']}: {len(layers)} layers but {len(diff_ids)} diff ids")
        for layer, diff_id in zip(layers, diff_ids, strict=True):
            parent, _ = store.ensure_layer(layer["digest"], parent, diff_id)
        store.put_blob(cfg_bytes)
        image_id = store.add_image(cfg_bytes, data, names)
        out.extend(refmod_familiar(str(n)) for n in names) if names else out.append(image_id)
    return out


def _verified(d, digest) -> bytes:
    data = _blob(d, digest).read_bytes()
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise ContainerError(f"blob {digest} of the layout does not match its digest")
    return data


def save(store: ImageStore, refs, dest, fmt: str = "docker-archive") -> None:
    """Writes images to dest (a path or binary file object) as one tar that is
    both a docker-save archive and an OCI layout; fmt="oci-dir" writes the
    OCI layout into the directory dest instead."""
    if fmt not in ("docker-archive", "oci-archive", "oci-dir"):
        raise ConfigError(f"unknown save format {fmt!r}: docker-archive, oci-archive or oci-dir")
    images = []
    for r in refs:
        img = store.lookup(r)
        name = None
        if not r.startswith("sha256:") and not all(c in "0123456789abcdef" for c in r):
            name = refmod.parse(r)
        images.append((img, name))
    blobs, docker_manifest, index = [], [], []
    for img, name in images:
        man_bytes = store.read_blob(img.manifest_digest)
        try:
            man = json.loads(man_bytes)
            digests = [img.manifest_digest, man["config"]["digest"]] + [x["digest"] for x in man.get("layers", [])]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise damaged_blob(img.manifest_digest, "is not a manifest") from None
        blobs.extend(x for x in digests if x not in blobs)
        tags = [str(name)] if name and name.tag else [n for n in img.names if "@" not in n]
        docker_manifest.append({
            "Config": f"blobs/sha256/{man['config']['digest'][7:]}",
            "RepoTags": [refmod_familiar(t) for t in tags],
            "Layers": [f"blobs/sha256/{x['digest'][7:]}" for x in man.get("layers", [])],
        })
        desc = {"mediaType": man.get("mediaType") or MEDIA_OCI_MANIFEST, "digest": img.manifest_digest, "size": len(man_bytes)}
        if tags:
            desc["annotations"] = {CONTAINERD_NAME: tags[0], REF_NAME: refmod.parse(tags[0]).tag}
        index.append(desc)
    files = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": index}).encode(),
    }
    if fmt != "oci-dir":
        files["manifest.json"] = json.dumps(docker_manifest).encode()
    if fmt == "oci-dir":
        out = Path(dest)
        (out / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        for b in blobs:
            shutil.copyfile(store.blob_path(b), out / "blobs" / "sha256" / b[7:])
        for n, data in files.items():
            (out / n).write_bytes(data)
        return
    for b in blobs:
        if not store.has_blob(b):
            raise damaged_blob(b, "is missing")
    own = isinstance(dest, (str, os.PathLike))
    # written aside and renamed at the end: a failed save leaves no partial archive at dest
    aside = f"{os.fspath(dest)}.pycontain-{os.getpid()}.tmp" if own else None
    if own:
        _remove_dead_asides(os.fspath(dest))
    try:
        f = open(aside, "wb") if own else dest
    except OSError as e:
        raise ConfigError(f"cannot write {dest}: {e.strerror}") from None
    done = False
    try:
        with tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            def add_dir(name):
                ti = tarfile.TarInfo(name)
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            add_dir("blobs")
            add_dir("blobs/sha256")
            for b in blobs:
                p = store.blob_path(b)
                ti = tarfile.TarInfo(f"blobs/sha256/{b[7:]}")
                ti.size, ti.mode = p.stat().st_size, 0o644
                with open(p, "rb") as bf:
                    reader = HashingReader(bf)
                    tf.addfile(ti, reader)
                if reader.digest() != b:   # checked as it streams: it costs no extra read
                    raise damaged_blob(b, "does not match its digest")
            for n, data in files.items():
                ti = tarfile.TarInfo(n)
                ti.size, ti.mode = len(data), 0o644
                tf.addfile(ti, io.BytesIO(data))
        if own:
            f.flush()
            os.fsync(f.fileno())
            f.close()
            os.rename(aside, dest)
        done = True
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise NoSpace(f"saving to {dest}") from None
        raise
    finally:
        if own and not done:
            f.close()
            with contextlib.suppress(OSError):
                os.unlink(aside)


def _remove_dead_asides(dest: str) -> None:
    """The half-written archives killed saves to dest left (named for their pid, now gone)."""
    prefix = os.path.basename(dest) + ".pycontain-"
    d = os.path.dirname(dest) or "."
    with contextlib.suppress(OSError):
        for name in os.listdir(d):
            pid = name[len(prefix):-len(".tmp")] if name.startswith(prefix) and name.endswith(".tmp") else ""
            if pid.isdigit() and process_start_time(int(pid)) is None:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(d, name))
