"""`pycontain system check`: the image database verified against the blobs.

Blobs are content-addressed, so they are their own proof: a blob whose
sha256 is not its name is damaged, a manifest names its config and layers
with digests and sizes, and a config names each layer's uncompressed
digest. The database (images.db) only indexes that content (plus names and
holds), so when it is lost or damaged it can be rebuilt from the blobs: every
manifest whose config and layers are whole becomes an image again (its
names are not in the blobs: the report says to tag it again).

Nothing is deleted here. With repair, what cannot be trusted is moved to
images/quarantine/<time>/ (a damaged database, blobs whose content is not
their name), where `system prune` or the user can remove it.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path

from .._paths import default_root
from ..errors import ContainerError, StoreDamaged
from .store import ImageStore, chain_ids


class CheckReport:
    """What check() found ("problems") and, with repair, what it did ("repairs")."""

    def __init__(self):
        self.problems: list[str] = []
        self.repairs: list[str] = []

    @property
    def ok(self) -> bool:
        return not self.problems


def _blob_digest_ok(path: Path) -> bool:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest() == path.name


def _quarantine_dir(images_dir: Path) -> Path:
    d = images_dir / "quarantine" / time.strftime("%Y%m%dT%H%M%S")
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def _database_damage(images_dir: Path) -> str | None:
    """Why the image database cannot be trusted, or None."""
    try:
        store = ImageStore(images_dir.parent)
    except StoreDamaged as e:
        return str(e)
    try:
        with store._db_lock:
            result = store.db.execute("PRAGMA quick_check").fetchone()[0]
        return None if result == "ok" else f"the image store database is damaged: {result}"
    except sqlite3.Error as e:
        return f"the image store database is damaged: {e}"
    finally:
        store.close()


def check(root=None, repair: bool = False) -> CheckReport:
    root = Path(root) if root else default_root()
    images_dir = root / "images"
    report = CheckReport()
    if not images_dir.is_dir():
        return report
    blob_dir = images_dir / "blobs" / "sha256"
    quarantine = None

    def move_aside(path: Path, why: str):
        nonlocal quarantine
        quarantine = quarantine or _quarantine_dir(images_dir)
        os.rename(path, quarantine / path.name)
        report.repairs.append(f"moved {path.name} to {quarantine} ({why})")

    # 1. every blob is what its name says
    bad_blobs = set()
    for entry in sorted(os.listdir(blob_dir)) if blob_dir.is_dir() else ():
        if not _blob_digest_ok(blob_dir / entry):
            bad_blobs.add(entry)
            report.problems.append(f"blob sha256:{entry}: its content does not match its digest")
            if repair:
                move_aside(blob_dir / entry, "damaged blob")

    # 2. the database reads whole
    damage = _database_damage(images_dir)
    if damage:
        report.problems.append(damage)
        if repair:
            for suffix in ("", "-wal", "-shm"):
                p = images_dir / f"images.db{suffix}"
                if p.exists():
                    move_aside(p, "damaged database")
            with ImageStore(root, rebuilding=True) as store:
                _rebuild(store, report)
        return report

    # 3. each image's blobs and layers are there and whole
    with ImageStore(root) as store:
        for img in store.images():
            wrong = _image_problems(store, img, bad_blobs)
            label = ", ".join(n for n in img.names) or img.id[7:19]
            for w in wrong:
                report.problems.append(f"image {label}: {w}")
            if wrong and repair:
                with store.transaction() as db:
                    db.execute("DELETE FROM names WHERE image_id=?", (img.id,))
                    db.execute("DELETE FROM images WHERE id=?", (img.id,))
                    db.execute("DELETE FROM holds WHERE image_id=?", (img.id,))
                report.repairs.append(f"removed image {label} from the database (its content is damaged: "
                                      "pull or load it again)")
    return report


def _image_problems(store: ImageStore, img, bad_blobs) -> list[str]:
    out = []
    try:
        manifest = store.manifest(img)
        config = store.config(img.id)
    except (ContainerError, ValueError) as e:
        return [f"its manifest or config cannot be read ({e})"]
    descriptors = [manifest.get("config") or {}] + list(manifest.get("layers") or ())
    for desc in descriptors:
        digest = desc.get("digest", "")
        path = store.blob_dir / digest.removeprefix("sha256:")
        if digest.removeprefix("sha256:") in bad_blobs:
            out.append(f"blob {digest} is damaged")
        elif not path.exists():
            out.append(f"blob {digest} is missing")
        elif desc.get("size") is not None and path.stat().st_size != desc["size"]:
            out.append(f"blob {digest} has {path.stat().st_size} bytes, the manifest says {desc['size']}")
    expected = chain_ids((config.get("rootfs") or {}).get("diff_ids") or ())
    if list(img.chain_ids) != expected:
        out.append("its layer chain does not match its config")
    for chain in img.chain_ids:
        if not store.has_layer(chain):
            out.append(f"layer {chain} is not unpacked")
    return out


def _rebuild(store: ImageStore, report: CheckReport) -> None:
    """Every manifest among the blobs whose config and layers are whole
    becomes an image again (unpacking a layer whose directory is gone)."""
    rebuilt = 0
    for entry in sorted(os.listdir(store.blob_dir)):
        path = store.blob_dir / entry
        if path.stat().st_size > 4 << 20:
            continue   # manifests are small; this is a layer
        try:
            manifest = json.loads(path.read_bytes())
        except (ValueError, UnicodeDecodeError):
            continue
        if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list) \
                or not isinstance(manifest.get("config"), dict):
            continue
        try:
            image_id = _register(store, manifest, path.read_bytes())
        except (ContainerError, ValueError, KeyError, OSError) as e:
            report.problems.append(f"manifest sha256:{entry} cannot be rebuilt: {e}")
            continue
        rebuilt += 1
        report.repairs.append(f"rebuilt image {image_id[7:19]} from its blobs (its names were in the "
                              "database: tag it again)")
    if not rebuilt:
        report.repairs.append("no image could be rebuilt from the blobs")


def _register(store: ImageStore, manifest: dict, manifest_bytes: bytes) -> str:
    config_bytes = store.read_blob(manifest["config"]["digest"])
    config = json.loads(config_bytes)
    diff_ids = config["rootfs"]["diff_ids"]
    layers = manifest["layers"]
    if len(diff_ids) != len(layers):
        raise ValueError("its config and its manifest list different numbers of layers")
    parent = None
    for desc, diff_id in zip(layers, diff_ids, strict=True):
        if not store.has_blob(desc["digest"]):
            raise ContainerError(f"layer blob {desc['digest']} is missing")
        chain, _ = store.ensure_layer(desc["digest"], parent, diff_id)
        store.record_layer(chain, diff_id)
        parent = chain
    return store.add_image(config_bytes, manifest_bytes)
