"""`pycontain build` (docker build's flags, BuildKit's plain progress) and `pycontain builder prune`."""
from __future__ import annotations

import os
import sys
import time

from ..errors import ConfigError, ContainerError
from ..image.store import refmod_familiar


class PlainProgress:
    """BuildKit's plain output: `#5 [stage 2/7] RUN ...`, the step's output
    lines with their time, then `#5 CACHED` or `#5 DONE 0.3s`."""

    def __init__(self, out=sys.stderr):
        self.out = out
        self.started: dict = {}
        self.last = 0

    def __call__(self, e):
        kind = e["type"]
        if kind == "step":
            self.started[e["id"]] = time.monotonic()
            self.last = e["id"]
            print(f"#{e['id']} [{e['stage']} {e['n']}/{e['total']}] {e['instruction']}", file=self.out, flush=True)
        elif kind == "output":
            t = time.monotonic() - self.started.get(e["id"], time.monotonic())
            print(f"#{e['id']} {t:.3f} {e['line']}", file=self.out, flush=True)
        elif kind == "done":
            print(f"#{e['id']} CACHED" if e["cached"] else f"#{e['id']} DONE {e['duration']:.1f}s", file=self.out,
                  flush=True)
        elif kind == "warning":
            print(f"[Warning] {e['message']}", file=self.out, flush=True)


class TtyProgress(PlainProgress):
    """The live view for a terminal: the plain lines of finished steps, and
    under them one line redrawn in place with the running step's time and its
    latest output line."""

    def __init__(self, out=sys.stderr):
        super().__init__(out)
        self.step = None
        self.latest = ""
        self.drawn = False

    def _draw(self):
        if self.step is None:
            return
        t = time.monotonic() - self.started.get(self.step["id"], time.monotonic())
        line = f"#{self.step['id']} [{self.step['stage']} {self.step['n']}/{self.step['total']}] {t:.1f}s {self.latest}"
        print("\r\033[K" + line[:200], end="", file=self.out, flush=True)
        self.drawn = True

    def _clear(self):
        if self.drawn:
            print("\r\033[K", end="", file=self.out, flush=True)
            self.drawn = False

    def __call__(self, e):
        kind = e["type"]
        self._clear()
        if kind == "step":
            super().__call__(e)
            self.step, self.latest = e, ""
        elif kind == "output":
            self.latest = e["line"]
        else:
            super().__call__(e)
            if kind == "done":
                self.step = None
        self._draw()


def _build_args(pairs) -> dict:
    out = {}
    for p in pairs or ():
        k, sep, v = p.partition("=")
        if not k:
            raise ConfigError(f"invalid --build-arg {p!r}: expected NAME[=VALUE]")
        out[k] = v if sep else os.environ.get(k)   # docker: NAME alone takes the value from the environment
    return out


def _labels(pairs) -> dict:
    out = {}
    for p in pairs or ():
        k, _, v = p.partition("=")
        if not k:
            raise ConfigError(f"invalid --label {p!r}: expected KEY=VALUE")
        out[k] = v
    return out


def _secrets(specs) -> dict:
    """--secret id=ID[,src=FILE|,env=VAR] (docker buildx's form) -> {id: file}."""
    out = {}
    for spec in specs or ():
        fields = dict(part.partition("=")[::2] for part in spec.split(","))
        sid = fields.get("id")
        src = fields.get("src") or fields.get("source")
        if not sid:
            raise ConfigError(f"invalid --secret {spec!r}: id=ID is required")
        if src is None and fields.get("env"):
            raise ConfigError(f"--secret {spec!r}: env= is not supported, use src=FILE")
        src = src or sid
        if not os.path.isfile(src):
            raise ConfigError(f"--secret {spec!r}: {src} is not a file")
        out[sid] = os.path.abspath(src)
    return out


def _output_spec(spec: str | None):
    if not spec:
        return None
    fields = {}
    for part in spec.split(","):
        k, sep, v = part.partition("=")
        if not sep:
            if "type" in fields or "dest" in fields:
                raise ConfigError(f"invalid --output {spec!r}")
            fields["type"], fields["dest"] = "local", k
            continue
        fields[k.strip()] = v.strip()
    kind = fields.get("type", "")
    if kind not in ("docker", "oci", "tar"):
        raise ConfigError(f"invalid --output {spec!r}: type must be docker, oci or tar")
    if not fields.get("dest"):
        raise ConfigError(f"invalid --output {spec!r}: dest=FILE is required")
    return kind, fields["dest"]


def cmd_build(a):
    if a.progress not in ("auto", "plain", "tty", "quiet"):
        raise ConfigError(f"invalid --progress {a.progress!r}: one of auto, plain, tty")
    output = _output_spec(a.output)
    if a.context == "-" and a.file == "-":
        raise ConfigError("the context and the Dockerfile cannot both come from stdin")
    dockerfile_text = sys.stdin.buffer.read() if a.file == "-" else None
    if a.context == "-":
        context = sys.stdin.buffer
    elif not os.path.exists(a.context):
        raise ConfigError(f"unable to prepare context: path {a.context!r} not found")
    else:
        context = a.context
    dockerfile = a.file or "Dockerfile"
    if a.file and a.file != "-" and os.path.isdir(a.context) and not os.path.isabs(a.file):
        # -f is relative to the working directory, as docker's CLI reads it
        dockerfile = os.path.abspath(a.file)
    if a.quiet or a.progress == "quiet":
        progress = None
    elif a.progress == "tty" or (a.progress == "auto" and sys.stderr.isatty()):
        progress = TtyProgress()
    else:
        progress = PlainProgress()
    # Loaded by the verb that uses it: every other command would pay for the
    # builder's modules at start.
    from .. import build

    try:
        image_id = build.build(context, tag=a.tag, dockerfile=dockerfile, dockerfile_text=dockerfile_text,
                               buildargs=_build_args(a.build_arg), target=a.target, nocache=a.no_cache,
                               pull=a.pull, network=a.network, labels=_labels(a.label), platform=a.platform,
                               secrets=_secrets(a.secret), progress=progress)
    except ContainerError as e:
        print(f"pycontain: {e}", file=sys.stderr)
        return 1
    if output is not None:
        build.write_output(image_id, output[0], output[1], tags=a.tag)
    if a.iidfile:
        with open(a.iidfile, "w") as f:
            f.write(image_id)
    if a.quiet:
        print(image_id)
    else:
        print(f"writing image {image_id} done", file=sys.stderr)
        for t in a.tag or ():
            print(f"naming to {refmod_familiar(t) if '/' in t else 'docker.io/library/' + t} done", file=sys.stderr)
    return 0


def cmd_builder_prune(a):
    if not a.force:
        print("WARNING! This will remove all build cache.\nAre you sure you want to continue? [y/N] ", end="",
              flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    from .. import build

    steps, images = build.prune()
    print(f"Deleted build cache objects: {steps} steps, {images} images")
    return 0


def register(sub):
    p = sub.add_parser("build", help="build an image from a Dockerfile")
    p.add_argument("context", metavar="CONTEXT", help="a directory, a tar file, or - for a tar on stdin")
    p.add_argument("-t", "--tag", action="append", help="name[:tag] for the image (repeatable)")
    p.add_argument("-f", "--file", help="the Dockerfile (default: CONTEXT/Dockerfile; - reads stdin)")
    p.add_argument("--build-arg", action="append", metavar="NAME[=VALUE]", help="a build argument (repeatable)")
    p.add_argument("--target", help="the stage to build (default: the last)")
    p.add_argument("--no-cache", action="store_true", help="do not use the build cache")
    p.add_argument("--pull", action="store_true", help="always pull the base images")
    p.add_argument("--network", default=os.environ.get("PYCONTAIN_NETWORK") or "bridge",
                   help="network of the RUN steps: bridge (the default, or $PYCONTAIN_NETWORK), none, host")
    p.add_argument("--label", action="append", metavar="KEY=VALUE", help="a label for the image (repeatable)")
    p.add_argument("--secret", action="append", metavar="id=ID,src=FILE",
                   help="a secret for RUN --mount=type=secret (repeatable)")
    p.add_argument("--iidfile", help="write the image id to this file")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image id")
    p.add_argument("--progress", default="auto", help="auto (tty on a terminal, else plain), plain or tty")
    p.add_argument("--platform", help="the platform to build for (this machine's only)")
    p.add_argument("--output", "-o", help="type=docker|oci|tar,dest=FILE: also write the image there")
    p.set_defaults(func=cmd_build)

    b = sub.add_parser("builder", help="manage the build cache")
    bsub = b.add_subparsers(dest="builder_verb", metavar="COMMAND")
    pr = bsub.add_parser("prune", help="remove the build cache")
    pr.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    pr.add_argument("-a", "--all", action="store_true", help="(accepted for docker compatibility)")
    pr.set_defaults(func=cmd_builder_prune)
    b.set_defaults(func=lambda a: b.print_help() or 0)
