"""Image verbs with docker's flags and columns: pull, push, login, logout,
images, rmi, tag, history, load, save, import, and `image SUBCOMMAND`."""
from __future__ import annotations

import datetime
import getpass
import json
import sys
import time

from .. import image
from ..errors import ConfigError, ContainerError
from ..image import auth as authmod
from ..image import registry as image_registry
from ..image.store import refmod_familiar
from ._format import human_duration, human_size, print_deleted
from ._prompt import confirmed


# ---- formatting like docker ---------------------------------------------------------

def _parse_time(s):
    if not s:
        return None
    try:
        s = s.rstrip("Z")
        if "." in s:
            head, frac = s.split(".", 1)
            s = f"{head}.{frac[:6]}"
        return datetime.datetime.fromisoformat(s).replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


def human_ago(created) -> str:
    t = _parse_time(created)
    if t is None:
        return "N/A"
    return human_duration((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()) + " ago"


def _table(rows, headers):
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    for r in [headers] + rows:
        print("   ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)).rstrip())


class ProgressPrinter:
    """docker-like per-layer lines; redrawn in place on a terminal."""

    def __init__(self, quiet=False):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.lines: dict = {}
        self.last = 0.0

    def __call__(self, e):
        if self.quiet:
            return
        if "id" not in e:
            print(e["status"], file=sys.stderr)
            return
        status = e["status"]
        if status in ("Downloading", "Pushing"):
            total = e.get("total") or 0
            cur = e.get("current") or 0
            if total:
                done = int(30 * cur / total)
                status = f"{status} [{'=' * done}{'>' if done < 30 else ''}{' ' * (29 - done)}] {human_size(cur)}/{human_size(total)}"
            if time.monotonic() - self.last < 0.1 and cur != total:
                self.lines[e["id"]] = status
                return
            self.last = time.monotonic()
        self.lines[e["id"]] = status
        if self.tty:
            n = len(self.lines)
            out = (f"\x1b[{self.drawn}A\r" if getattr(self, "drawn", 0) else "")
            out += "".join(f"\x1b[2K{k}: {v}\n" for k, v in self.lines.items())
            self.drawn = n
            sys.stderr.write(out)
            sys.stderr.flush()
        elif not status.startswith(("Downloading", "Pushing")):
            print(f"{e['id']}: {status}", file=sys.stderr)


# ---- verbs ----------------------------------------------------------------------------

def cmd_pull(a):
    p = ProgressPrinter(a.quiet)
    ref = image.parse_reference(a.name)
    if not a.quiet and ":" not in a.name.rsplit("/", 1)[-1] and "@" not in a.name:
        print("Using default tag: latest", file=sys.stderr)
    image.pull(a.name, progress=p, platform=a.platform)
    print(str(ref))


def cmd_push(a):
    image.push(a.name, progress=ProgressPrinter(a.quiet))


def cmd_login(a):
    server = a.server or "docker.io"
    user = a.username or input("Username: ")
    if a.password_stdin:
        pw = sys.stdin.readline().rstrip("\n")
    else:
        pw = a.password if a.password is not None else getpass.getpass("Password: ")
    if not user or not pw:
        raise ConfigError("login needs a user name and a password")
    image_registry.login(server, user, pw)
    print("Login Succeeded")


def cmd_logout(a):
    server = a.server or "docker.io"
    if authmod.remove(server):
        print(f"Removing login credentials for {server}")
    else:
        print(f"Not logged in to {server}")


def cmd_images(a):
    imgs = image.list()
    if not a.all:
        # a build's intermediate images (one per step, kept for its cache)
        # are listed with -a only, as docker lists them
        from .. import build

        steps = build.cache_image_ids()
        imgs = [i for i in imgs if i.names or i.id not in steps]
    rows, seen = [], set()
    want = image.parse_reference(a.repository, default_tag=False) if a.repository else None
    for img in imgs:
        names = [n for n in img.names if "@" not in n]
        digests = {n.split("@")[0]: n.split("@")[1] for n in img.names if "@" in n}
        # no tag: docker shows the repository of a repo@digest reference, tag <none>
        entries = ([(refmod_familiar(n.rsplit(":", 1)[0]), n.rsplit(":", 1)[1], n.rsplit(":", 1)[0]) for n in names]
                   or [(refmod_familiar(repo), "<none>", repo) for repo in sorted(digests)] or [("<none>", "<none>", None)])
        for repo, tag, full in entries:
            if want and (full != want.name or (want.tag and tag != want.tag)):
                continue
            iid = img.id if a.no_trunc else img.id[7:19]
            if a.quiet:
                if iid not in seen:
                    seen.add(iid)
                    print(iid)
                continue
            row = [repo, tag]
            if a.digests:
                row.append(digests.get(full, img.manifest_digest if full else "<none>"))
            row += [iid, human_ago(img.created), human_size(img.size)]
            rows.append(row)
    if not a.quiet:
        headers = ["REPOSITORY", "TAG"] + (["DIGEST"] if a.digests else []) + ["IMAGE ID", "CREATED", "SIZE"]
        _table(rows, headers)


def cmd_rmi(a):
    failed = False
    for name in a.images:
        try:
            for what, x in image.remove(name, force=a.force):
                print(f"{what}: {x}")
        except ContainerError as e:  # one bad name does not stop the others, as in docker
            print(f"Error: {e}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


def cmd_tag(a):
    image.tag(a.source, a.target)


def cmd_inspect(a):
    out = [image.inspect(n) for n in a.images]
    if a.format:
        for o in out:
            print(_go_format(a.format, o))
    else:
        print(json.dumps(out, indent=4))


def _go_format(fmt, obj):
    """The common case of docker's --format: {{.Field.Sub}} and {{json .Field}}."""
    import re

    def get(path):
        v = obj
        for p in path.strip(".").split("."):
            if p:
                v = v.get(p) if isinstance(v, dict) else None
        return v

    def sub(m):
        expr = m.group(1).strip()
        if expr.startswith("json "):
            return json.dumps(get(expr[5:].strip()))
        v = get(expr)
        return json.dumps(v) if isinstance(v, (dict, list)) else ("" if v is None else str(v))
    return re.sub(r"\{\{(.*?)\}\}", sub, fmt)


def cmd_history(a):
    info = image.inspect(a.image)
    hist = list(reversed(info.get("History") or []))
    rows = []
    with image.open_store() as store:
        img = store.lookup(a.image)
        sizes = {}
        for c in img.chain_ids:
            r = store._query("SELECT size FROM layers WHERE chain_id=?", (c,))
            sizes[c] = r[0][0] if r else 0
    layer_sizes = [sizes[c] for c in reversed(img.chain_ids)]
    li = 0
    for i, h in enumerate(hist):
        size = 0
        if not h.get("empty_layer"):
            size = layer_sizes[li] if li < len(layer_sizes) else 0
            li += 1
        iid = (info["Id"] if a.no_trunc else info["Id"][7:19]) if i == 0 else "<missing>"
        if a.quiet:
            print(iid)
            continue
        by = h.get("created_by", "")
        if not a.no_trunc and len(by) > 45:
            by = by[:44] + "…"
        rows.append([iid, human_ago(h.get("created")), by, human_size(size), h.get("comment", "")])
    if not a.quiet:
        _table(rows, ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"])


def cmd_load(a):
    src = a.input if a.input else sys.stdin.buffer
    for n in image.load(src):
        if not a.quiet:
            print(f"Loaded image{' ID' if n.startswith('sha256:') else ''}: {n}")


def cmd_save(a):
    if not a.output and sys.stdout.isatty():
        raise ConfigError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    image.save(a.images, a.output or sys.stdout.buffer)


def cmd_import(a):
    src = sys.stdin.buffer if a.file == "-" else a.file
    print(image.import_(src, a.reference, changes=a.change, message=a.message))


def cmd_prune(a):
    what = "all images without at least one container associated to them" if a.all else "all dangling images"
    if not confirmed(f"WARNING! This will remove {what}.\nAre you sure you want to continue?", a.force):
        return 0
    out, reclaimed = image.prune(all_images=a.all)
    print_deleted("Images", [f"{what.lower()}: {x}" for what, x in out])
    print(f"Total reclaimed space: {human_size(reclaimed)}")


# ---- argument parsers --------------------------------------------------------------------

def _add(sub, name, func, help_text, args):
    p = sub.add_parser(name, help=help_text)
    for flags, kw in args:
        p.add_argument(*flags, **kw)
    p.set_defaults(func=func)
    return p


VERBS = {
    "pull": (cmd_pull, "download an image from a registry", [
        (("--platform",), dict(help="os/arch[/variant] to pull from a multi-platform image")),
        (("-q", "--quiet"), dict(action="store_true", help="suppress verbose output")),
        (("name",), dict(metavar="NAME[:TAG|@DIGEST]")),
    ]),
    "push": (cmd_push, "upload an image to a registry", [
        (("-q", "--quiet"), dict(action="store_true", help="suppress verbose output")),
        (("name",), dict(metavar="NAME[:TAG]")),
    ]),
    "tag": (cmd_tag, "create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", [
        (("source",), dict(metavar="SOURCE_IMAGE[:TAG]")),
        (("target",), dict(metavar="TARGET_IMAGE[:TAG]")),
    ]),
    "history": (cmd_history, "show the history of an image", [
        (("--no-trunc",), dict(action="store_true", help="don't truncate output")),
        (("-q", "--quiet"), dict(action="store_true", help="only show image IDs")),
        (("image",), dict(metavar="IMAGE")),
    ]),
    "load": (cmd_load, "load an image from a tar archive or STDIN", [
        (("-i", "--input"), dict(metavar="FILE", help="read from tar archive file, instead of STDIN")),
        (("-q", "--quiet"), dict(action="store_true", help="suppress the load output")),
    ]),
    "save": (cmd_save, "save one or more images to a tar archive (streamed to STDOUT by default)", [
        (("-o", "--output"), dict(metavar="FILE", help="write to a file, instead of STDOUT")),
        (("images",), dict(nargs="+", metavar="IMAGE")),
    ]),
    "import": (cmd_import, "import the contents from a tarball to create a filesystem image", [
        (("-c", "--change"), dict(action="append", default=[], help="apply Dockerfile instruction to the created image")),
        (("-m", "--message"), dict(help="set commit message for imported image")),
        (("file",), dict(metavar="file|-")),
        (("reference",), dict(nargs="?", metavar="REPOSITORY[:TAG]")),
    ]),
}


def _images_args(p):
    p.add_argument("-a", "--all", action="store_true", help="show all images")
    p.add_argument("--digests", action="store_true", help="show digests")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    p.set_defaults(func=cmd_images)


def _rmi_args(p):
    p.add_argument("-f", "--force", action="store_true", help="force removal of the image")
    p.add_argument("--no-prune", action="store_true", help="do not delete untagged parents")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_rmi)


def _inspect_args(p):
    p.add_argument("-f", "--format", help="format the output using a Go-template-like {{.Field}}")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_inspect)


def _prune_args(p):
    p.add_argument("-a", "--all", action="store_true", help="remove all unused images, not just dangling ones")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.set_defaults(func=cmd_prune)


def register(sub):
    for name, (func, help_text, args) in VERBS.items():
        _add(sub, name, func, help_text, args)
    _images_args(sub.add_parser("images", help="list images"))
    _rmi_args(sub.add_parser("rmi", help="remove one or more images"))
    p = sub.add_parser("login", help="log in to a registry")
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password")
    p.add_argument("--password-stdin", action="store_true", help="take the password from stdin")
    p.add_argument("server", nargs="?", metavar="SERVER")
    p.set_defaults(func=cmd_login)
    p = sub.add_parser("logout", help="log out from a registry")
    p.add_argument("server", nargs="?", metavar="SERVER")
    p.set_defaults(func=cmd_logout)

    img = sub.add_parser("image", help="manage images")
    isub = img.add_subparsers(dest="image_verb", metavar="COMMAND")
    for name, (func, help_text, args) in VERBS.items():
        _add(isub, name, func, help_text, args)
    _images_args(isub.add_parser("ls", aliases=["list"], help="list images"))
    _rmi_args(isub.add_parser("rm", aliases=["remove"], help="remove one or more images"))
    _inspect_args(isub.add_parser("inspect", help="display detailed information on one or more images"))
    _prune_args(isub.add_parser("prune", help="remove unused images"))
    img.set_defaults(func=lambda a: img.print_help() or 0)
