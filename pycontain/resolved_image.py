"""An image as the launcher needs it (ResolvedImage), and pycontain's built-in
hello-world. Apart from container.py so that the command line and the
managed records can tell the built-in image from a stored one without
loading the launcher."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ResolvedImage:
    """An image as the launcher needs it: layer dirs (top first) and docker's config."""

    layers: tuple
    config: dict
    held: bool = False      # the store keeps it for this container until released
    programs: tuple = ()    # (path in the image, program of ours): run from sealed memory instead


def builtin_image(name: str) -> ResolvedImage | None:
    if name in ("hello-world", "hello-world:latest"):
        # the package's own directory (what importlib.resources.files("pycontain") gives
        # for an installed package, without importing importlib.resources)
        layer = Path(__file__).parent / "_bin" / "hello-world"
        # /hello runs from a sealed copy: a container never holds the installed file as its executable
        return ResolvedImage((str(layer),), {"Cmd": ["/hello"], "Env": [f"PATH={DEFAULT_PATH}"]},
                             programs=(("/hello", "hello-world/hello"),))
    return None
