"""Image references, normalised like docker.

    busybox                      -> docker.io/library/busybox:latest
    user/app:1.0                 -> docker.io/user/app:1.0
    localhost:5000/app           -> localhost:5000/app:latest
    repo@sha256:<64 hex>         -> docker.io/library/repo@sha256:...
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..errors import ConfigError

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_TAG = re.compile(r"[\w][\w.-]{0,127}\Z")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
_HOST = re.compile(r"(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?\Z")


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """registry/repository, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s

    @property
    def familiar(self) -> str:
        """What docker prints: busybox, user/app, localhost:5000/app."""
        if self.registry == DEFAULT_REGISTRY:
            return self.repository.removeprefix("library/")
        return self.name

    @property
    def endpoint(self) -> str:
        return "registry-1.docker.io" if self.registry == DEFAULT_REGISTRY else self.registry

    def with_tag(self, tag):
        return Reference(self.registry, self.repository, tag, None)

    @property
    def reference(self) -> str:
        """What the distribution API's /manifests/<reference> wants."""
        return self.digest or self.tag or DEFAULT_TAG


def parse(ref: str, default_tag: bool = True) -> Reference:
    """Parses and normalises; ConfigError names what is wrong."""
    if not isinstance(ref, str) or not ref or ref != ref.strip():
        raise ConfigError(f"invalid reference format: {ref!r}")
    rest, digest = ref, None
    if "@" in rest:
        rest, _, digest = rest.partition("@")
        if not _DIGEST.match(digest):
            raise ConfigError(f"invalid reference format: {ref!r}: bad digest {digest!r} (expected sha256:<64 hex>)")
    tag = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, _, tag = rest.rpartition(":")
        if not _TAG.match(tag):
            raise ConfigError(f"invalid reference format: {ref!r}: bad tag {tag!r}")
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry, repo = first, remainder
        if not _HOST.match(registry):
            raise ConfigError(f"invalid reference format: {ref!r}: bad registry host {registry!r}")
    else:
        registry, repo = DEFAULT_REGISTRY, rest
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in repo:
        repo = f"library/{repo}"
    if not repo or len(repo) > 255 or not all(_COMPONENT.match(c) for c in repo.split("/")):
        raise ConfigError(
            f"invalid reference format: {ref!r}: repository names are lowercase letters, digits and separators (. _ -)"
        )
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(registry, repo, tag, digest)


def is_insecure(registry: str, extra=()) -> bool:
    """Plain HTTP is used only for loopback registries and those the user
    marks insecure ($PYCONTAIN_INSECURE_REGISTRIES, comma separated, or the
    API's insecure= list)."""
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    if host in ("localhost", "127.0.0.1", "[::1]") or host.startswith("127."):
        return True
    marked = set(extra) | {r.strip() for r in os.environ.get("PYCONTAIN_INSECURE_REGISTRIES", "").split(",") if r.strip()}
    return registry in marked
