"""Images from a Dockerfile, with no daemon: `pycontain build` and pycontain.build.build().

    from pycontain import build
    image_id = build.build("ctx/", tag="app:1", buildargs={"V": "2"}, network="none",
                           progress=lambda event: print(event))

dockerfile.py parses (pure logic), context.py reads the build context and its
.dockerignore, executor.py runs the stages through pycontain's Container and
the image store. This package sits above pycontain.container (a RUN step is a
container) and pycontain.image (every step is an image in the store).
"""
from __future__ import annotations

import os

from .. import image
from ..image.store import ImageStore
from .dockerfile import DockerfileError, parse
from .executor import BuildCache, BuildError, BuildOptions, build as _build, prune_cache as _prune_cache


def build(context, *, tag=None, dockerfile: str = "Dockerfile", dockerfile_text=None, buildargs=None,
          target=None, nocache=False, pull=False, network=None, labels=None, platform=None, secrets=None,
          progress=None, root=None) -> str:
    """Builds an image from a Dockerfile; returns its id.

    context: a directory, a tar file (path) or a binary file object of a tar.
    tag: a name or a list of names, applied only when the whole build succeeded.
    dockerfile: its path, relative to the context unless absolute; or
    dockerfile_text, the Dockerfile itself (docker's `-f -`).
    buildargs: {name: value}; secrets: {id: host file} for RUN
    --mount=type=secret (never written into a layer, not part of the cache
    key); network: none, host or bridge for RUN steps
    (default: $PYCONTAIN_NETWORK, else bridge, as docker).
    progress(event: dict) gets {"type": "step", "id", "stage", "n", "total",
    "instruction"}, {"type": "output", "id", "line"}, {"type": "done", "id",
    "cached", "duration", "image" (the step's image id, None for FROM scratch)} and {"type": "warning", "message"}.
    """
    tags = (tag,) if isinstance(tag, str) else tuple(tag or ())
    opts = BuildOptions(tags=tags, buildargs=dict(buildargs or {}), target=target, nocache=nocache, pull=pull,
                        network=network or os.environ.get("PYCONTAIN_NETWORK") or "bridge",
                        labels=dict(labels or {}), platform=platform, secrets=dict(secrets or {}))
    with ImageStore(root) as store:
        return _build(store, context, dockerfile=dockerfile, dockerfile_text=dockerfile_text, opts=opts,
                      progress=progress)


def prune(root=None) -> tuple[int, int]:
    """pycontain builder prune: (cached steps forgotten, images removed)."""
    with ImageStore(root) as store:
        return _prune_cache(store)




def cache_image_ids(root=None) -> set:
    """The ids of the images the build cache keeps (a build's steps)."""
    with ImageStore(root) as store:
        cache = BuildCache(store.root)
        try:
            return set(cache.image_ids())
        finally:
            cache.close()


def write_output(image_id: str, kind: str, dest, tags=None, root=None) -> None:
    """docker build --output: the image as a docker archive (type=docker),
    an OCI archive (type=oci), or its merged file system as a tar (type=tar)."""
    if kind == "tar":
        with ImageStore(root) as store:
            dirs = store.layer_dirs(store.lookup(image_id))
        with open(dest, "wb") as f:
            image.export(dirs, f)
        return
    refs = list(tags or ()) or [image_id]
    image.save(refs, dest, "docker-archive" if kind == "docker" else "oci-archive", root=root)


__all__ = ["build", "prune", "cache_image_ids", "write_output", "parse", "BuildError", "DockerfileError"]
