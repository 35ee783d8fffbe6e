"""The image side of pycontain: store, registry pull/push, import/export, commit.

    from pycontain import image
    image.pull("busybox")
    img = image.resolve_for_run("busybox")     # .layers (top first), .config
    image.tag("busybox", "mine:1"); image.remove("mine:1")

Every function takes root= (the store root; default: pycontain._paths.default_root()).
"""
from __future__ import annotations

import errno
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from .. import events
from .._paths import containers_dir
from ..errors import ConfigError, ImageNotFound, NoSpace
from . import make, merged
from .reference import Reference, parse as parse_reference
from .store import Image, ImageInUse, ImageStore, refmod_familiar
from .unpack import LayerError, unpack_layer

PULL_POLICIES = ("missing", "always", "never")


def _when_full(while_doing: str):
    """A full disk under an image operation is one NoSpace error: what the
    operation wrote is in tmp/, cleared by the next writer or GC."""
    def wrap(fn):
        @functools.wraps(fn)
        def call(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except OSError as e:
                if e.errno in (errno.ENOSPC, errno.EDQUOT) and not isinstance(e, NoSpace):
                    raise NoSpace(while_doing) from None
                raise
        return call
    return wrap


@dataclass(frozen=True)
class RunImage:
    """What a container needs from an image: overlay lower dirs (top first)
    and the "config" section of the image config (Entrypoint, Cmd, Env...)."""

    id: str
    layers: tuple
    config: dict


def open_store(root: Path | str | None = None) -> ImageStore:
    return ImageStore(root)


@_when_full("preparing an image to run")
def resolve_for_run(ref: str, root: Path | None = None, pull: str = "missing", progress=None, *,
                    holder: str | None = None, platform: str | None = None) -> RunImage:
    """The image `ref` ready to mount, pulled first per docker's --pull policy.
    With holder (a container id) the image is marked in use until
    release(holder), so rmi refuses to delete it without force."""
    if pull not in PULL_POLICIES:
        raise ConfigError(f"invalid pull policy {pull!r}: one of {', '.join(PULL_POLICIES)}")
    with ImageStore(root) as store:
        img = None
        if pull != "always":
            try:
                img = store.lookup(ref)
            except ImageNotFound:
                if pull == "never":
                    raise
        if img is None:
            # Imported here: the registry client brings http.client, ssl and a
            # thread pool (~24 ms), which only a pull or push needs.
            from . import registry

            try:
                image_id = registry.pull(store, ref, progress=progress, platform=platform)
            except (ImageNotFound, registry.RegistryError) as e:
                if pull == "always" and not isinstance(e, ImageNotFound):
                    raise
                # docker run: "Unable to find image locally" and then why the pull failed
                raise ImageNotFound(f"unable to find image {ref!r} locally, and pulling it failed: {e}") from e
            img = store.lookup(image_id)
        # Under the writers' lock: a concurrent rmi cannot collect the layers
        # between the lookup and the hold.
        with store.writing():
            img = store.lookup(img.id)
            if holder:
                # A Container's mark lasts as long as this process; a managed
                # container's record ("managed:<id>") holds as long as it exists.
                store.hold(img.id, holder, pid=None if holder.startswith("managed:") else os.getpid())
            cfg = store.config(img.id)
            layers = store.run_layers(img, _lowerdir_budget(store.root))
        return RunImage(img.id, layers, dict(cfg.get("config") or {}))


def _lowerdir_budget(root: Path) -> int:
    """Bytes left for lowerdir= in one overlay mount option page (4095) once
    the container's upperdir= and workdir= (under containers/<64 hex id>/) are in."""
    container = len(str(containers_dir(root))) + 1 + 64
    return 4095 - len("lowerdir=,upperdir=,workdir=") - 2 * (container + len("/upper")) - 16


def release(holder: str, root=None, *, also=()) -> None:
    """Ends holder's mark (and those of the holders in also)."""
    with ImageStore(root) as store:
        store.release(holder, *also)


@_when_full("pulling an image")
def pull(ref: str, *, root=None, progress=None, platform: str | None = None, auth=None, insecure=()) -> str:
    """Pulls ref from its registry; returns the image id."""
    from . import registry  # see resolve_for_run

    with ImageStore(root) as store:
        image_id = registry.pull(store, ref, progress=progress, platform=platform, auth=auth, insecure=insecure)
        _named_event(store, "pull", ref)
        return image_id


def _named_event(store, action, ref):
    """docker's pull and push events: the familiar reference as the actor, its repository as the name."""
    parsed = parse_reference(ref)
    familiar = refmod_familiar(str(parsed))
    events.append(store.root, "image", action, familiar, {"name": refmod_familiar(parsed.name)})


def _id_event(store, action, image_id, name=None):
    """docker's other image events: the image id as the actor, the name a tag gave (else the id)."""
    events.append(store.root, "image", action, image_id, {"name": name or image_id})


@_when_full("pushing an image")
def push(ref: str, *, root=None, progress=None, auth=None, insecure=(), dest: str | None = None) -> str:
    """Pushes the local image ref (to dest, default: ref); returns the manifest digest."""
    from . import registry  # see resolve_for_run

    with ImageStore(root) as store:
        digest = registry.push(store, ref, dest=dest, progress=progress, auth=auth, insecure=insecure)
        _named_event(store, "push", dest or ref)
        return digest


def list_images(root=None) -> "list[Image]":
    with ImageStore(root) as store:
        return store.images()


def get(ref: str, root=None) -> Image:
    with ImageStore(root) as store:
        return store.lookup(ref)


def inspect(ref: str, root=None) -> dict:
    """The image config plus docker's inspect fields (Id, RepoTags, RepoDigests, Size)."""
    with ImageStore(root) as store:
        img = store.lookup(ref)
        cfg = store.config(img.id)
        tags = [build_familiar(n) for n in img.names if "@" not in n]
        digests = sorted({build_familiar(n.split("@")[0].rsplit(":", 1)[0] if "@" not in n else n.split("@")[0]) + "@" + img.manifest_digest
                          for n in img.names})
        return {
            "Id": img.id, "RepoTags": tags, "RepoDigests": digests, "Created": cfg.get("created"),
            "Author": cfg.get("author", ""), "Architecture": cfg.get("architecture"), "Os": cfg.get("os"),
            "Variant": cfg.get("variant"), "Size": img.size, "Config": cfg.get("config") or {},
            "RootFS": cfg.get("rootfs"), "History": cfg.get("history", []),
            "GraphDriver": {"Name": "overlay", "Data": {"LowerDir": ":".join(store.layer_dirs(img))}},
        }


def build_familiar(name: str) -> str:
    return refmod_familiar(name)


def disk_usage(root=None) -> dict:
    """docker system df's "Images" row: total, active (used by a container), size, reclaimable."""
    with ImageStore(root) as store:
        return store.disk_usage()


@_when_full("tagging an image")
def tag(source: str, target: str, root=None) -> str:
    with ImageStore(root) as store:
        out = store.tag(source, target)
        _id_event(store, "tag", store.lookup(target).id, refmod_familiar(str(parse_reference(target))))
        return out


@_when_full("removing an image")
def remove(ref: str, force: bool = False, root=None) -> list:
    with ImageStore(root) as store:
        image_id = store.lookup(ref).id
        out = store.remove(ref, force=force)
        for kind, _ in out:
            _id_event(store, "untag" if kind == "Untagged" else "delete", image_id)
        return out


@_when_full("pruning images")
def prune(all_images: bool = False, root=None) -> tuple[list, int]:
    """docker image prune: ([("Untagged"|"Deleted", name-or-id)], bytes reclaimed)."""
    with ImageStore(root) as store:
        out = store.prune(all_images=all_images)
        return out, store.reclaimed


@_when_full("importing an image")
def import_(source, ref: str | None = None, changes=(), message=None, root=None) -> str:
    """docker import: a rootfs tarball (path or binary file object) becomes a one-layer image."""
    with ImageStore(root) as store:
        try:
            image_id = make.import_tarball(store, source, ref, changes, message)
            _id_event(store, "import", image_id)
            return image_id
        except LayerError:
            store.gc()   # the blob and layer written for it: nothing is left of a refused import
            raise


@_when_full("committing a container")
def commit(upper_dir, base_ref: str | None, new_ref: str | None, changes=(), message=None, author=None, root=None) -> str:
    """An overlay upper dir (a container's changes) becomes a new layer and image."""
    with ImageStore(root) as store:
        return make.commit(store, upper_dir, base_ref, new_ref, changes, message, author)


def export(layers_top_first_plus_upper, fileobj) -> None:
    """Writes the merged filesystem (upper dir first, then layers top first) as a tar stream."""
    merged.export(layers_top_first_plus_upper, fileobj)


@_when_full("loading images")
def load(source, root=None) -> list:
    """docker load: a docker-save archive or an OCI layout (dir or tar). Returns the loaded names/ids."""
    # Imported here: archives need the registry's media types and more (~27 ms)
    # that running a container never does.
    from . import layout

    with ImageStore(root) as store:
        loaded = layout.load(store, source)
        for name in loaded:
            _id_event(store, "load", store.lookup(name).id)
        return loaded


@_when_full("saving images")
def save(refs, dest, format: str = "docker-archive", root=None) -> None:  # noqa: A002
    """docker save: images into a docker-save tar (or an OCI layout tar with format="oci-archive")."""
    from . import layout  # see load

    refs = refs if not isinstance(refs, str) else [refs]
    with ImageStore(root) as store:
        layout.save(store, refs, dest, format)
        for ref in refs:
            _id_event(store, "save", store.lookup(ref).id)


__all__ = [
    "RunImage", "Image", "ImageStore", "ImageInUse", "LayerError", "Reference", "parse_reference",
    "resolve_for_run", "release", "pull", "push", "list", "list_images", "get", "inspect", "disk_usage", "tag", "remove", "prune",
    "import_", "commit", "export", "load", "save", "unpack_layer", "open_store",
]


def __getattr__(name):
    # docker-py's public name is image.list(); bound lazily (PEP 562) so that
    # no module-level `list` hides the builtin inside this module.
    if name == "list":
        return list_images
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
