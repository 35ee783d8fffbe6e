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
from ..image.store import refmod_familiar
from ._format import format_each, format_rows, human_duration, human_size, print_deleted
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
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
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
    # Imported by the two verbs that use them: the registry client brings
    # http.client and ssl (~8 ms), which the image package itself imports only
    # to pull or push, and the other image verbs (images, rmi, tag) never need.
    from ..image import registry as image_registry

    image_registry.login(server, user, pw)
    print("Login Succeeded")


def cmd_logout(a):
    server = a.server or "docker.io"
    from ..image import auth as authmod  # see cmd_login

    if authmod.remove(server):
        print(f"Removing login credentials for {server}")
    else:
        print(f"Not logged in to {server}")


_IMAGES_DEFAULT = "{{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}"
_IMAGES_DIGESTS = "{{.Repository}}\\t{{.Tag}}\\t{{.Digest}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}"
_IMAGES_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
                   "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                   "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
                   "VirtualSize": "VIRTUAL SIZE"}


def _image_filters(items) -> dict:
    """docker images --filter: dangling=true|false, reference=PATTERN (repeatable)."""
    out = {}
    for f in items:
        key, sep, value = f.partition("=")
        if not sep or key not in ("dangling", "reference"):
            raise ConfigError(f"invalid filter '{f}': dangling=true|false or reference=PATTERN")
        if key == "dangling" and value.lower() not in ("true", "false", "1", "0"):
            raise ConfigError(f"invalid filter 'dangling={value}'")
        out.setdefault(key, []).append(value)
    return out


def _image_rows(a) -> list:
    """One row per repository:tag (a <none> row for an untagged image), as
    docker images lists them, after the positional REPOSITORY and --filter."""
    import fnmatch

    filters = _image_filters(a.filter)
    want = image.parse_reference(a.repository, default_tag=False) if a.repository else None
    imgs = image.list()
    if not a.all:
        # a build's intermediate images (one per step, kept for its cache)
        # are listed with -a only, as docker lists them
        from .. import build

        steps = build.cache_image_ids()
        imgs = [i for i in imgs if i.names or i.id not in steps]
    rows = []
    for img in imgs:
        names = [n for n in img.names if "@" not in n]
        digests = {n.split("@")[0]: n.split("@")[1] for n in img.names if "@" in n}
        # no tag: docker shows the repository of a repo@digest reference, tag <none>
        entries = ([(refmod_familiar(n.rsplit(":", 1)[0]), n.rsplit(":", 1)[1], n.rsplit(":", 1)[0]) for n in names]
                   or [(refmod_familiar(repo), "<none>", repo) for repo in sorted(digests)] or [("<none>", "<none>", None)])
        dangling = not names
        if "dangling" in filters and dangling != (filters["dangling"][-1].lower() in ("true", "1")):
            continue
        for repo, tag, full in entries:
            if want and (full != want.name or (want.tag and tag != want.tag)):
                continue
            if "reference" in filters and not any(
                    fnmatch.fnmatchcase(f"{repo}:{tag}" if ":" in pat else repo, pat) for pat in filters["reference"]):
                continue
            created = _parse_time(img.created)
            rows.append({
                "Repository": repo, "Tag": tag,
                "Digest": digests.get(full, img.manifest_digest if full else "<none>") or "<none>",
                "ID": img.id if a.no_trunc else img.id[7:19], "FullID": img.id,
                "CreatedSince": human_ago(img.created),
                "CreatedAt": created.strftime("%Y-%m-%d %H:%M:%S +0000 UTC") if created else "",
                "Size": human_size(img.size), "VirtualSize": human_size(img.size),
                "Containers": "N/A", "SharedSize": "N/A", "UniqueSize": "N/A",
            })
    return rows


def cmd_images(a):
    rows = _image_rows(a)
    if a.quiet:
        seen = set()
        for r in rows:
            if r["ID"] not in seen:
                seen.add(r["ID"])
                print(r["ID"] if a.no_trunc else r["FullID"][7:19])
        return 0
    for r in rows:
        del r["FullID"]
    default = _IMAGES_DIGESTS if a.digests else _IMAGES_DEFAULT
    sys.stdout.write(format_rows(a.format or "table " + default, rows, _IMAGES_HEADERS, default_table=default))
    return 0


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
    out, status = [], 0
    for name in a.images:   # as docker: each one, every failure reported, status 1 if any
        try:
            out.append(image.inspect(name))
        except ContainerError as e:
            print(f"pycontain: {e}", file=sys.stderr)
            status = 1
    if a.format:
        sys.stdout.write(format_each(a.format, out))
    else:
        print(json.dumps(out, indent=4))
    return status


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
    p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="filter: dangling=true|false, reference=PATTERN")
    p.add_argument("--format", help="Go template, e.g. '{{.Repository}}:{{.Tag}}', 'table ...' or json")
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
