"""The image store: content-addressed blobs, unpacked layers, SQLite metadata.

Layout under <root>/images:
    blobs/sha256/<hex>   every blob (configs, manifests, compressed layers),
                         written to tmp/, verified, fsync'ed, renamed in place:
                         a blob file that exists is complete and correct
    layers/<hex>         one unpacked layer per chain id (overlay lowerdir),
                         renamed in place when complete, shared between images
    tmp/                 work in progress; only ever renamed out of
    locks/               flock files (gc.lock, one per layer being unpacked)
    images.db            SQLite (WAL): images, their names, layer sizes, holds

Concurrency between processes: writers (pull, import, load, commit) hold
gc.lock shared while their blobs and layers are not yet referenced by an
image row; garbage collection (rmi, prune) holds it exclusive, so it never
deletes what a running pull is about to register, and it clears tmp/ (no
writer can be active). A layer is unpacked under its own lock, so two pulls
of the same image unpack it once. Image rows and names change in one
IMMEDIATE transaction each. A killed process leaves at most complete blobs
and layers (reused by the next pull, collected by the next prune) and
entries in tmp/ (removed by the next GC or writer that finds the store idle).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .. import rootless
from .._paths import default_root, private_dir, private_file
from ..state import boot_id, process_alive, process_start_time, shared_store
from .._sqlite import database_error, open_read_only_when_full
from ..errors import ConfigError, ContainerError, ImageNotFound, NoSpace, StoreDamaged
from . import reference as refmod
from .unpack import LayerError, unpack_layer

MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_OCI_LAYER_GZIP = MEDIA_OCI_LAYER + "+gzip"
MEDIA_OCI_LAYER_ZSTD = MEDIA_OCI_LAYER + "+zstd"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

# 2: holds name the process that holds (pid, start time): a dead holder's mark is dropped
SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,          -- sha256 of the config blob, docker's image id
    manifest TEXT NOT NULL,       -- digest of the manifest blob
    chain_ids TEXT NOT NULL,      -- JSON list, bottom layer first
    blobs TEXT NOT NULL,          -- JSON list of every blob the image needs
    created TEXT,
    size INTEGER NOT NULL,
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS names (
    name TEXT PRIMARY KEY,        -- registry/repo:tag or registry/repo@sha256:...
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE TABLE IF NOT EXISTS layers (
    chain_id TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS holds (
    holder TEXT PRIMARY KEY,      -- a container id, or managed:<id> for a managed container's record
    image_id TEXT NOT NULL,
    pid INTEGER,                  -- the holding process (a Container's), with its start time and boot:
    pid_start INTEGER,            -- the hold ends with it (NULL for a record's hold, which ends with the record)
    boot_id TEXT
);
"""
_HOLDS_QUERY = "SELECT holder, pid, pid_start, boot_id FROM holds"
_HOLD_COLUMNS = (("pid", "INTEGER"), ("pid_start", "INTEGER"), ("boot_id", "TEXT"))


class ImageInUse(ContainerError):
    """The image is used by a container (or has several names) and force was not given."""


def host_platform() -> tuple[str, str, str | None]:
    """(os, architecture, variant) in OCI terms."""
    m = platform.machine()
    arch, variant = {
        "x86_64": ("amd64", None), "aarch64": ("arm64", "v8"), "armv7l": ("arm", "v7"),
        "armv6l": ("arm", "v6"), "i686": ("386", None), "i386": ("386", None),
        "ppc64le": ("ppc64le", None), "s390x": ("s390x", None), "riscv64": ("riscv64", None),
    }.get(m, (m, None))
    return "linux", arch, variant


@contextlib.contextmanager
def opened_source(source):
    """A binary file object for source, a path or one already open (left
    open); an unreadable path is a ConfigError saying why."""
    if not isinstance(source, (str, os.PathLike)):
        yield source
        return
    try:
        f = open(source, "rb")
    except OSError as e:
        raise ConfigError(f"cannot read {source}: {e.strerror}") from None
    with f:
        yield f


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chain_ids(diff_ids) -> list:
    out = []
    for d in diff_ids:
        out.append(d if not out else sha256_bytes(f"{out[-1]} {d}".encode()))
    return out


def _hex(digest: str) -> str:
    algo, _, h = digest.partition(":")
    if algo != "sha256" or len(h) != 64 or not all(c in "0123456789abcdef" for c in h):
        raise ConfigError(f"unsupported or malformed digest {digest!r}")
    return h


@dataclass(frozen=True)
class Image:
    id: str
    names: tuple
    manifest_digest: str
    chain_ids: tuple
    created: str | None
    size: int
    added: float


class HashingReader:
    """A blob file read through (by tarfile, by http.client): its sha256 as
    it streams, so that save and push verify what they send for free."""

    def __init__(self, f):
        self.f = f
        self.hash = hashlib.sha256()

    def read(self, n=-1):
        data = self.f.read(n)
        self.hash.update(data)
        return data

    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


def damaged_blob(digest: str, what: str) -> StoreDamaged:
    return StoreDamaged(f"the store's blob {digest} {what}: nothing was written; "
                        "`pycontain system check` says what is wrong, `--repair` mends it")


class BlobWriter:
    """A blob being written: feed write(), then commit() verifies and renames."""

    def __init__(self, store: "ImageStore", expected: str | None = None):
        self.store = store
        self.expected = expected
        self.hash = hashlib.sha256()
        self.size = 0
        fd, self.tmp = tempfile.mkstemp(dir=store.tmp_dir, prefix="blob-")
        self.f = os.fdopen(fd, "wb")

    def write(self, data):
        self.hash.update(data)
        self.size += len(data)
        self.f.write(data)

    def commit(self) -> str:
        digest = "sha256:" + self.hash.hexdigest()
        try:
            if self.expected and digest != self.expected:
                raise ContainerError(f"blob digest mismatch: expected {self.expected}, got {digest}")
            self.f.flush()
            os.fsync(self.f.fileno())
            self.f.close()
            os.chmod(self.tmp, 0o644)
            os.rename(self.tmp, self.store.blob_path(digest))
        except BaseException:
            self.abort()
            raise
        return digest

    def abort(self):
        if not self.f.closed:
            self.f.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is not None:
            self.abort()


class ImageStore:
    def __init__(self, root: Path | str | None = None, rebuilding: bool = False):
        """rebuilding: `system check --repair` opens a new database beside
        existing content (else refused as damaged) to register it again."""
        self.root = private_dir(Path(root) if root else default_root())  # see _paths: 0700, 0600
        self.dir = private_dir(self.root / "images")
        self.blob_dir = self.dir / "blobs" / "sha256"
        self.layer_dir = self.dir / "layers"
        self.tmp_dir = self.dir / "tmp"
        self.lock_dir = self.dir / "locks"
        self.flat_dir = self.dir / "flat"
        for d in (self.blob_dir, self.layer_dir, self.tmp_dir, self.lock_dir, self.flat_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db_lock = threading.Lock()
        self.db_path = self.dir / "images.db"
        if not rebuilding:
            self._refuse_if_emptied()
        try:
            self.db = sqlite3.connect(private_file(self.db_path), timeout=60, isolation_level=None,
                                      check_same_thread=False)
        except sqlite3.Error as e:
            raise database_error(e, self.db_path, "opening the image store") from None
        self.full = False   # opened read-only on a full disk: every write is refused
        try:
            self._open_schema()
        except sqlite3.Error as e:
            self.db.close()
            self.db = open_read_only_when_full(self.db_path, e)
            if self.db is None:
                raise database_error(e, self.db_path, "opening the image store") from None
            self.full = True

    def _refuse_if_emptied(self):
        """A database that is gone or 0 bytes while blobs and layers are
        there is damaged, not an empty store: taken for empty, the next
        prune would delete every image's content."""
        try:
            size = os.stat(self.db_path).st_size
        except FileNotFoundError:
            size = 0
        if size == 0 and not os.path.exists(f"{self.db_path}-wal") and self.has_content():
            raise StoreDamaged(f"the image store database {self.db_path} is {'empty' if self.db_path.exists() else 'missing'} "
                               "while blobs and layers exist: nothing was changed; "
                               "`pycontain system check --repair` rebuilds it from the blobs")

    def has_content(self) -> bool:
        return any(os.scandir(self.blob_dir)) or any(os.scandir(self.layer_dir))

    def _open_schema(self):
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        # The schema is made once (a write transaction on every open would
        # cost each container start a lock round trip).
        if self.db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            with self.transaction() as db:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        db.execute(stmt)
                have = {r[1] for r in db.execute("PRAGMA table_info(holds)")}
                for col, kind in _HOLD_COLUMNS:   # a store of schema 1
                    if col not in have:
                        db.execute(f"ALTER TABLE holds ADD COLUMN {col} {kind}")
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self):
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # ---- locking ---------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self, while_doing="writing to the image store"):
        if self.full:
            raise NoSpace(while_doing)
        with self._db_lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise database_error(e, self.db_path, while_doing) from None
            try:
                yield self.db
            except BaseException as e:
                # SQLite may have rolled back by itself (a failed statement
                # under load, a full disk): then the original error is the one to raise
                if self.db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self.db.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise database_error(e, self.db_path, while_doing) from None
                raise
            try:
                self.db.execute("COMMIT")
            except sqlite3.Error as e:
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
                raise database_error(e, self.db_path, while_doing) from None

    def _query(self, sql, args=()):
        with self._db_lock:
            try:
                return self.db.execute(sql, args).fetchall()
            except sqlite3.Error as e:
                raise database_error(e, self.db_path, "reading the image store") from None

    @contextlib.contextmanager
    def _flock(self, name: str, mode: int):
        fd = os.open(self.lock_dir / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield fd
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def writing(self):
        """Held while adding blobs and layers not yet referenced by an image.
        If the store is idle, first clears what killed writers left in tmp/."""
        fd = os.open(self.lock_dir / "gc.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            # Try exclusive first, holding nothing yet: a failed SH->EX upgrade
            # would drop the shared lock (flock conversions are not atomic).
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fcntl.flock(fd, fcntl.LOCK_SH)
            else:
                self._clear_tmp()
                fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def _clear_tmp(self):
        for name in os.listdir(self.tmp_dir):
            p = self.tmp_dir / name
            if p.is_dir() and not p.is_symlink():
                rootless.remove_tree(p, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(p)

    # ---- blobs -----------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blob_dir / _hex(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def blob_writer(self, expected: str | None = None) -> BlobWriter:
        return BlobWriter(self, expected)

    def put_blob(self, data: bytes) -> str:
        digest = sha256_bytes(data)
        if not self.has_blob(digest):
            with self.blob_writer(digest) as w:
                w.write(data)
                w.commit()
        return digest

    def put_blob_file(self, fileobj, expected: str | None = None) -> tuple[str, int]:
        with self.blob_writer(expected) as w:
            while True:
                data = fileobj.read(1 << 20)
                if not data:
                    break
                w.write(data)
            return w.commit(), w.size

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise ImageNotFound(f"blob {digest} is not in the store") from None

    # ---- layers ----------------------------------------------------------------

    def layer_path(self, chain_id: str) -> Path:
        return self.layer_dir / _hex(chain_id)

    def has_layer(self, chain_id: str) -> bool:
        return self.layer_path(chain_id).is_dir()

    def ensure_layer(self, blob_digest: str, parent_chain: str | None, diff_id: str | None = None) -> tuple[str, str]:
        """Unpacks the layer blob once; returns (chain_id, diff_id). With the
        expected diff_id known, an existing layer is reused without reading
        the blob and a mismatching blob is refused."""
        if diff_id is not None:
            chain = diff_id if parent_chain is None else sha256_bytes(f"{parent_chain} {diff_id}".encode())
            if self.has_layer(chain):
                return chain, diff_id
            with self._flock(f"layer-{_hex(chain)}.lock", fcntl.LOCK_EX):
                if self.has_layer(chain):
                    return chain, diff_id
                return self._unpack(blob_digest, parent_chain, diff_id)
        return self._unpack(blob_digest, parent_chain, None)

    def _unpack(self, blob_digest, parent_chain, expected_diff):
        tmp = tempfile.mkdtemp(dir=self.tmp_dir, prefix="layer-")
        try:
            with open(self.blob_path(blob_digest), "rb") as f:
                res = unpack_layer(f, tmp)
            rootless.chown_tree(tmp, res.owners)
            if expected_diff is not None and res.diff_id != expected_diff:
                raise LayerError(f"layer {blob_digest}: its content is {res.diff_id}, the image config says {expected_diff}")
            chain = res.diff_id if parent_chain is None else sha256_bytes(f"{parent_chain} {res.diff_id}".encode())
            with self.transaction() as db:
                db.execute("INSERT OR REPLACE INTO layers VALUES (?,?,?)", (chain, res.diff_id, res.size))
            try:
                os.rename(tmp, self.layer_path(chain))
            except OSError:
                if not self.has_layer(chain):
                    raise
                rootless.remove_tree(tmp)  # another process unpacked the same layer first
            return chain, res.diff_id
        except FileNotFoundError as e:
            rootless.remove_tree(tmp, ignore_errors=True)
            raise ImageNotFound(f"layer blob {blob_digest} is missing: {e}") from None
        except BaseException:
            rootless.remove_tree(tmp, ignore_errors=True)
            raise

    def record_layer(self, chain_id: str, diff_id: str) -> None:
        """A layers row for an unpacked layer the database lost (system check --repair)."""
        if self._query("SELECT 1 FROM layers WHERE chain_id=?", (chain_id,)):
            return
        size = 0
        for dirpath, _dirs, files in os.walk(self.layer_path(chain_id)):
            for f in files:
                with contextlib.suppress(OSError):
                    size += os.lstat(os.path.join(dirpath, f)).st_size
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO layers VALUES (?,?,?)", (chain_id, diff_id, size))

    def adopt_layer(self, directory, parent_chain: str | None, diff_id: str, size: int) -> str:
        """A directory its caller made in tmp/, already in unpacked-layer form
        and matching diff_id (an image builder's step), becomes the layer by
        a rename instead of an unpack of its blob. Returns the chain id; when
        the layer exists already, the directory is removed."""
        chain = diff_id if parent_chain is None else sha256_bytes(f"{parent_chain} {diff_id}".encode())
        with self._flock(f"layer-{_hex(chain)}.lock", fcntl.LOCK_EX):
            if self.has_layer(chain):
                rootless.remove_tree(directory, ignore_errors=True)
                return chain
            with self.transaction() as db:
                db.execute("INSERT OR REPLACE INTO layers VALUES (?,?,?)", (chain, diff_id, size))
            os.rename(directory, self.layer_path(chain))
        return chain

    # ---- many layers: flattening the bottom of the stack ----------------------

    def run_layers(self, image: Image, budget: int) -> tuple:
        """Layer dirs for an overlay mount, top first, whose joined length
        (':'-separated, escaped) fits in budget bytes: when the image has too
        many layers for one mount option page, its bottom layers are merged
        once into a flat directory (cached by chain id, collected with the
        image) that stands in for them."""
        dirs = list(self.layer_dirs(image))
        cost = [len(_escape_overlay(d)) + 1 for d in dirs]
        if sum(cost) <= budget:
            return tuple(dirs)
        flat_len = len(_escape_overlay(str(self.flat_dir / ("0" * 64)))) + 1
        keep, used = 0, flat_len
        while keep < len(dirs) - 1 and used + cost[keep] <= budget:
            used += cost[keep]
            keep += 1
        if used > budget:
            raise ConfigError("the store path is too long for an overlay mount of this image")
        top_of_flat = image.chain_ids[len(dirs) - keep - 1]
        return tuple(dirs[:keep]) + (str(self.flatten(dirs[keep:], top_of_flat)),)

    def flatten(self, dirs_top_first, chain_id: str) -> Path:
        from .merged import export

        dest = self.flat_dir / _hex(chain_id)
        if dest.is_dir():
            return dest
        with self.writing(), self._flock(f"flat-{_hex(chain_id)}.lock", fcntl.LOCK_EX):
            if dest.is_dir():
                return dest
            tmp = tempfile.mkdtemp(dir=self.tmp_dir, prefix="flat-")
            try:
                r, w = os.pipe()
                errors = []

                def produce():
                    try:
                        with os.fdopen(w, "wb") as wf:
                            export(dirs_top_first, wf)
                    except BaseException as e:  # reported by the consumer
                        errors.append(e)

                t = threading.Thread(target=produce, daemon=True)
                t.start()
                with os.fdopen(r, "rb") as rf:
                    res = unpack_layer(rf, tmp)
                t.join()
                if errors:
                    raise errors[0]
                rootless.chown_tree(tmp, res.owners)
                os.rename(tmp, dest)
            except BaseException:
                rootless.remove_tree(tmp, ignore_errors=True)
                raise
        return dest

    # ---- images ----------------------------------------------------------------

    def add_image(self, config: bytes, manifest: bytes, names=()) -> str:
        """Registers an image whose blobs (config, manifest, layers) are in the
        store and whose layers are unpacked. Returns the image id."""
        cfg = json.loads(config)
        man = json.loads(manifest)
        diff_ids = cfg.get("rootfs", {}).get("diff_ids", [])
        chains = chain_ids(diff_ids)
        for c in chains:
            if not self.has_layer(c):
                raise ContainerError(f"internal: layer {c} is not unpacked")
        image_id = self.put_blob(config)
        manifest_digest = self.put_blob(manifest)
        blobs = [image_id, manifest_digest] + [layer["digest"] for layer in man.get("layers", [])]
        ph = ",".join("?" * len(chains))
        with self.transaction() as db:
            size = sum(r[0] for r in db.execute(f"SELECT size FROM layers WHERE chain_id IN ({ph})", chains)) if chains else 0
            db.execute(
                "INSERT OR REPLACE INTO images VALUES (?,?,?,?,?,?,?)",
                (image_id, manifest_digest, json.dumps(chains), json.dumps(blobs), cfg.get("created"), size, time.time()),
            )
            for n in names:
                db.execute("INSERT OR REPLACE INTO names VALUES (?,?)", (str(n), image_id))
        return image_id

    def _row_to_image(self, row, names) -> Image:
        return Image(row[0], tuple(sorted(names)), row[1], tuple(json.loads(row[2])), row[4], row[5], row[6])

    def images(self) -> list[Image]:
        rows = self._query("SELECT * FROM images ORDER BY added DESC")
        names: dict = {}
        for n, i in self._query("SELECT name, image_id FROM names"):
            names.setdefault(i, []).append(n)
        return [self._row_to_image(r, names.get(r[0], ())) for r in rows]

    def lookup(self, ref: str) -> Image:
        """An image by name (normalised like docker), name@digest, full id
        (sha256:...) or unique id prefix (at least 4 hex digits)."""
        image_id = self._find_id(ref)
        rows = self._query("SELECT * FROM images WHERE id=?", (image_id,))
        if not rows:
            raise ImageNotFound(f"no such image: {ref}")
        names = [r[0] for r in self._query("SELECT name FROM names WHERE image_id=?", (image_id,))]
        return self._row_to_image(rows[0], names)

    def _find_id(self, ref: str) -> str:
        if not isinstance(ref, str) or not ref:
            raise ConfigError(f"invalid image reference {ref!r}")
        h = ref.removeprefix("sha256:")
        if 4 <= len(h) <= 64 and all(c in "0123456789abcdef" for c in h):
            rows = self._query("SELECT id FROM images WHERE id LIKE ?", (f"sha256:{h}%",))
            if len(rows) == 1:
                return rows[0][0]
            if len(rows) > 1:
                raise ConfigError(f"image id prefix {ref!r} is ambiguous")
            if ref.startswith("sha256:"):
                raise ImageNotFound(f"no such image: {ref}")
        r = refmod.parse(ref)
        rows = self._query("SELECT image_id FROM names WHERE name=?", (str(r),))
        if not rows and r.digest:
            # name@digest also matches an image pulled by tag with that manifest digest
            rows = [(i,) for i, n in self._query(
                "SELECT i.id, n.name FROM images i JOIN names n ON n.image_id=i.id WHERE i.manifest=?", (r.digest,))
                if n.startswith((r.name + ":", r.name + "@"))]
        if not rows:
            raise ImageNotFound(f"no such image: {ref}")
        return rows[0][0]

    def config(self, image_id: str) -> dict:
        return self._json_blob(image_id, "config")

    def manifest(self, image: Image) -> dict:
        return self._json_blob(image.manifest_digest, "manifest")

    def _json_blob(self, digest: str, what: str) -> dict:
        """A stored JSON blob (config, manifest); damaged or missing is StoreDamaged, in one line."""
        try:
            data = self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise StoreDamaged(f"the image's {what} blob {digest} is missing from the store: "
                               "`pycontain system check` says what is wrong, `--repair` mends it") from None
        try:
            value = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            value = None
        if not isinstance(value, dict):
            raise StoreDamaged(f"the image's {what} blob {digest} is damaged (not a JSON object): "
                               "`pycontain system check` says what is wrong, `--repair` mends it")
        return value

    def layer_dirs(self, image: Image) -> tuple:
        """Unpacked layer directories, top layer first (overlay lowerdir order)."""
        return tuple(str(self.layer_path(c)) for c in reversed(image.chain_ids))

    def tag(self, source: str, target: str) -> str:
        image_id = self._find_id(source)
        name = refmod.parse(target)
        if name.digest:
            raise ConfigError(f"cannot tag with a digest: {target!r}")
        with self.transaction() as db:
            if not db.execute("SELECT 1 FROM images WHERE id=?", (image_id,)).fetchone():
                raise ImageNotFound(f"no such image: {source}")
            db.execute("INSERT OR REPLACE INTO names VALUES (?,?)", (str(name), image_id))
        return str(name)

    def disk_usage(self) -> dict:
        """docker system df's "Images" figures: a layer shared by several
        images counts once; reclaimable is what no container's image uses."""
        layer_size = dict(self._query("SELECT chain_id, size FROM layers"))
        # read-only (df answers on a full disk): dead marks are skipped, not deleted
        dead = set(self._dead_holders(self._query(_HOLDS_QUERY)))
        held = {i for h, i in self._query("SELECT holder, image_id FROM holds") if h not in dead}
        images = self.images()
        used = {c for img in images for c in img.chain_ids}
        kept = {c for img in images if img.id in held for c in img.chain_ids}
        size = sum(layer_size.get(c, 0) for c in used)
        return {"total": len(images), "active": sum(img.id in held for img in images),
                "size": size, "reclaimable": size - sum(layer_size.get(c, 0) for c in kept)}

    # ---- holds (containers using an image) -------------------------------------

    def hold(self, image_id: str, holder: str, pid: int | None = None):
        """Marks image_id in use by holder. With pid (the process whose
        Container holds it) the mark lasts as long as that process: a
        killed holder's mark is dropped by the next look (_drop_dead_holds)."""
        start = process_start_time(pid) if pid else None
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO holds (holder, image_id, pid, pid_start, boot_id) VALUES (?,?,?,?,?)",
                       (holder, image_id, pid if start else None, start, boot_id() if start else None))

    def release(self, *holders: str):
        with self.transaction() as db:
            db.executemany("DELETE FROM holds WHERE holder=?", [(h,) for h in holders])

    def _dead_holders(self, rows) -> list:
        """The marks whose holder is gone: a process killed before it could
        release (pid and start time, as container records tell their
        monitor), or a managed container whose record was deleted by a
        killed rm."""
        dead = []
        for holder, pid, start, boot in rows:
            if pid is not None:
                if boot != boot_id() or not process_alive(pid, start):
                    dead.append(holder)
            elif holder.startswith("managed:") and not self._record_exists(holder[len("managed:"):]):
                dead.append(holder)
            # else a mark of schema 1: its holder is unknown, it stays
        return dead

    def _drop_dead_holds(self, db) -> None:
        """Inside a write transaction: dead holders' marks stop counting."""
        rows = db.execute(_HOLDS_QUERY).fetchall()
        db.executemany("DELETE FROM holds WHERE holder=?", [(h,) for h in self._dead_holders(rows)])

    def _record_exists(self, cid: str) -> bool:
        """Whether the container record of a managed container's mark is
        still there (a plain WAL read: it never waits for a writer). Through
        the process's one record connection: SQLite keeps the descriptor of
        a closed connection while another of the process holds a lock. In
        doubt (the record database unreadable), it is."""
        if not (self.root / "containers.db").exists():
            return False
        try:
            return shared_store(self.root).load(cid) is not None
        except (sqlite3.Error, ContainerError, OSError):
            return True

    # ---- removal and garbage collection ---------------------------------------

    def remove(self, ref: str, force: bool = False) -> list[tuple[str, str]]:
        """docker rmi: untags ref; deletes the image when no name is left.
        Returns docker's lines: [("Untagged", name) | ("Deleted", id)]."""
        out = []
        image_id = self._find_id(ref)
        by_id = ref.removeprefix("sha256:") and image_id.removeprefix("sha256:").startswith(ref.removeprefix("sha256:"))
        with self.transaction() as db:
            self._drop_dead_holds(db)
            names = [r[0] for r in db.execute("SELECT name FROM names WHERE image_id=?", (image_id,))]
            rows = db.execute("SELECT holder, pid FROM holds WHERE image_id=?", (image_id,)).fetchall()
            holders = [_container_of(h) for h, _ in rows]
            running = [_container_of(h) for h, pid in rows if pid is not None]
            if by_id and running:
                # docker: forcing may untag, never delete what a live container runs on
                raise ImageInUse(f"conflict: unable to delete {image_id[7:19]} (cannot be forced) - "
                                 f"image is being used by running container {running[0][:12]}")
            if by_id:
                if len({n.split("@")[0].rsplit(":", 1)[0] for n in names}) > 1 and not force:
                    raise ImageInUse(
                        f"conflict: unable to delete {image_id[7:19]} (must be forced) - image is referenced in multiple repositories"
                    )
                untag = names
            else:
                untag = [str(refmod.parse(ref))]
                if untag[0] not in names:  # found via name@digest matching the manifest
                    untag = [n for n in names if n.startswith(refmod.parse(ref).name)]
                # docker: the repository's last tag takes its repo@digest references along
                # (else they would keep a hidden, untagged image)
                kept = {_repository(n) for n in names if n not in untag and "@" not in n}
                untag += [n for n in names if "@" in n and n not in untag and _repository(n) not in kept
                          and _repository(n) in {_repository(u) for u in untag}]
            remaining = [n for n in names if n not in untag]
            if not remaining and holders and not force:
                raise ImageInUse(
                    f"conflict: unable to remove {ref} (must be forced) - image {image_id[7:19]} is used by container {holders[0][:12]}"
                )
            for n in untag:
                db.execute("DELETE FROM names WHERE name=?", (n,))
                out.append(("Untagged", refmod_familiar(n)))
            if not remaining and holders:
                # rmi -f of an image a container uses: the names go, the image
                # stays for the container (docker keeps it as <none>; its
                # layers are what the container's next start mounts)
                return out
            if not remaining:
                db.execute("DELETE FROM images WHERE id=?", (image_id,))
                db.execute("DELETE FROM holds WHERE image_id=?", (image_id,))
                out.append(("Deleted", image_id))
        if not remaining:
            self.gc()
        return out

    def prune(self, all_images: bool = False) -> list[tuple[str, str]]:
        """docker image prune: removes dangling images (no tag: a repo@digest
        reference alone does not keep one), or with all_images every image
        no container holds."""
        out = []
        with self.transaction() as db:
            self._drop_dead_holds(db)
            held = {r[0] for r in db.execute("SELECT image_id FROM holds")}
            named = {r[0] for r in db.execute("SELECT image_id FROM names WHERE name NOT LIKE '%@%'")}
            for (image_id,) in db.execute("SELECT id FROM images").fetchall():
                if image_id in held or (image_id in named and not all_images):
                    continue
                for (n,) in db.execute("SELECT name FROM names WHERE image_id=?", (image_id,)).fetchall():
                    out.append(("Untagged", refmod_familiar(n)))
                db.execute("DELETE FROM names WHERE image_id=?", (image_id,))
                db.execute("DELETE FROM images WHERE id=?", (image_id,))
                out.append(("Deleted", image_id))
        self.gc()
        return out

    reclaimed = 0  # bytes freed by the last gc()

    def gc(self) -> tuple[int, int]:
        """Deletes blobs and layers no image refers to. Returns (blobs, layers) removed."""
        with self._flock("gc.lock", fcntl.LOCK_EX):
            self._clear_tmp()
            # Deleting trusts the database: it must read whole first (a
            # truncated file may answer some queries with fewer rows).
            if self._query("PRAGMA quick_check")[0][0] != "ok":
                raise StoreDamaged(f"the image store database {self.db_path} is damaged: nothing was deleted; "
                                   "`pycontain system check --repair` mends it")
            blobs, layers = set(), set()
            for b, c in self._query("SELECT blobs, chain_ids FROM images"):
                blobs.update(_hex(x) for x in json.loads(b))
                layers.update(_hex(x) for x in json.loads(c))
            nb = nl = 0
            self.reclaimed = 0
            for name in os.listdir(self.blob_dir):
                if name not in blobs:
                    self.reclaimed += (self.blob_dir / name).stat().st_size
                    os.unlink(self.blob_dir / name)
                    nb += 1
            gone = []
            for name in os.listdir(self.layer_dir):
                if name not in layers:
                    # rename first: a half-deleted layer must never look complete
                    tmp = self.tmp_dir / f"gc-{name}"
                    os.rename(self.layer_dir / name, tmp)
                    rootless.remove_tree(tmp)
                    gone.append("sha256:" + name)
                    nl += 1
            for name in os.listdir(self.flat_dir):
                if name not in layers:
                    tmp = self.tmp_dir / f"gc-flat-{name}"
                    os.rename(self.flat_dir / name, tmp)
                    rootless.remove_tree(tmp)
            if gone:
                ph = ",".join("?" * len(gone))
                self.reclaimed += sum(r[0] for r in self._query(f"SELECT size FROM layers WHERE chain_id IN ({ph})", gone))
                with self.transaction() as db:
                    db.executemany("DELETE FROM layers WHERE chain_id=?", [(g,) for g in gone])
            return nb, nl


def _escape_overlay(path: str) -> str:
    """As pycontain.rootfs escapes lowerdir entries."""
    return path.replace("\\", "\\\\").replace(",", "\\,").replace(":", "\\:")


def _container_of(holder: str) -> str:
    """The container id of a hold's holder (a managed container's record holds as managed:<id>)."""
    return holder.removeprefix("managed:")


def _repository(name: str) -> str:
    """registry/repo of a stored name (registry/repo:tag or registry/repo@digest)."""
    return name.split("@")[0] if "@" in name else name.rsplit(":", 1)[0]


def refmod_familiar(name: str) -> str:
    """docker prints names without docker.io/library/."""
    for prefix in ("docker.io/library/", "docker.io/"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name
