"""pycontain build beside dockerd 20.10's classic builder (DOCKER_BUILDKIT=0):
the same contexts, built by both, give the same image config, the same
history text and the same files; a rebuild reuses the same steps."""
import gzip
import hashlib
import io
import json
import os
import re
import stat
import tarfile
import textwrap

import pytest

from pycontain import build, image
from pycontain.image.merged import merged_entries
from buildtools import Events, make_ctx

CONFIG_FIELDS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels",
                 "StopSignal", "Healthcheck", "OnBuild", "Shell")
# docker's init layer (never part of an image) and the mount points of a running container
NOT_IMAGE = {".dockerenv", "dev", "proc", "sys", "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab"}


def _tar(files: dict, compress=False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.uid, ti.gid, ti.mtime = len(data), 0o640, 1000, 1000, 1700000000
            tf.addfile(ti, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0) if compress else buf.getvalue()


CASES = {
    "metadata": ({}, """\
        ARG TAG=1
        FROM bbase:$TAG
        MAINTAINER The Maintainer <m@example.com>
        LABEL version="1.0" description='two words' multi.line=a\\ b
        ENV A=1 B="with space" C=$A-x
        ENV OLD old style value
        EXPOSE 80 443/udp 8000-8002 $A
        VOLUME ["/data", "/logs"]
        VOLUME /other
        USER 1000:1000
        USER user
        WORKDIR /srv
        WORKDIR app
        WORKDIR $A
        STOPSIGNAL SIGKILL
        HEALTHCHECK --interval=30s --timeout=10s --start-period=5s --retries=3 CMD ["sh", "-c", "true"]
        ONBUILD COPY . /src
        ONBUILD RUN echo $HOME
        SHELL ["/bin/sh", "-e", "-c"]
        ENTRYPOINT echo hello
        CMD ["--flag"]
        """),
    "entrypoint_resets_cmd": ({}, """\
        FROM bbase:1
        CMD ["a"]
        ENTRYPOINT ["b"]
        HEALTHCHECK NONE
        """),
    "run_and_args": ({}, """\
        FROM bbase:1
        ARG ONE=1
        ARG TWO
        ARG http_proxy
        ENV FROM_ENV=e
        RUN echo "$ONE $TWO $FROM_ENV" > /args && mkdir -p /made/deep && rm -r /home/user
        RUN ["/bin/sh", "-c", "echo exec form > /exec"]
        ARG ONE=override
        RUN echo $ONE > /one && ln -s /one /link && chmod 4711 /one && chown 1000:50 /args
        RUN true
        """),
    "copy_rules": ({"a.txt": "a\n", "b.md": "b\n", "c.md": "c\n", "dir/x": "x\n", "dir/sub/y": "y\n",
                    "exec.sh": "#!/bin/sh\n", "link": ("->", "a.txt"), ".dockerignore": "ignored*\n*.log\n",
                    "ignored.txt": "no\n", "dir/keep.log": "no\n"}, """\
        FROM bbase:1
        COPY a.txt /
        COPY a.txt /renamed
        COPY a.txt /newdir/
        COPY *.md /docs/
        COPY dir /d
        COPY dir/ /d2/
        COPY . /all/
        COPY ["a.txt", "b.md", "/json/"]
        COPY --chown=1000:50 dir /owned/
        COPY --chown=user a.txt /owned-by-name
        WORKDIR /w
        COPY a.txt rel/
        COPY a.txt .
        COPY exec.sh link /bin2/
        """),
    "add_archives": ({"plain.tar": _tar({"p/one": b"1", "p/two": b"22"}),
                      "zipped.tar.gz": _tar({"z/file": b"zzz"}, compress=True), "file.txt": "f\n"}, """\
        FROM bbase:1
        ADD plain.tar /x/
        ADD zipped.tar.gz /y
        ADD file.txt /added.txt
        ADD --chown=1000:1000 file.txt /added-owned
        """),
    "dockerignore": ({".dockerignore": "# comment\n*.log\n!keep.log\nsecret/\n**/*.tmp\ndocs/**/draft*\n",
                      "a.log": "no", "keep.log": "yes", "secret/key": "no", "deep/x/y.tmp": "no",
                      "deep/x/z.txt": "yes", "docs/a/draft1.md": "no", "docs/a/final.md": "yes"}, """\
        FROM bbase:1
        COPY . /ctx/
        COPY *.log /logs/
        """),
    "run_files": ({}, """\
        FROM bbase:1
        RUN mkdir -p /d/sub && echo data > /d/file && ln /d/file /d/hard && ln -s ../d/file /d/sub/rel \\
            && mkfifo /d/fifo && chmod 2750 /d/sub && chown 1000:1000 /d/sub && touch -d @0 /d/file
        RUN rm -rf /d/sub && echo again > /d/file && rm /etc/passwd
        USER 1000
        WORKDIR /home/user/work
        RUN touch /tmp/mine && id -u > /tmp/uid && ! touch here
        """),
    "multistage": ({"src.txt": "source\n"}, """\
        ARG BASE=bbase:1
        FROM $BASE AS builder
        COPY src.txt /build/
        RUN cat /build/src.txt > /build/out && chmod 600 /build/out
        FROM builder AS second
        RUN echo second >> /build/out
        FROM $BASE AS unused
        RUN echo dockerd builds every stage, pycontain only the needed ones
        FROM bbase:1
        COPY --from=builder /build /from-builder
        COPY --from=1 /build/out /from-second
        COPY --from=bbase:1 /etc/passwd /passwd-copy
        """),
}


def _ctx(tmp_path, name):
    files, dockerfile = CASES[name]
    ctx = tmp_path / name
    ctx.mkdir()
    for rel, content in files.items():
        p = ctx / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, tuple):
            p.symlink_to(content[1])
        else:
            p.write_bytes(content if isinstance(content, bytes) else content.encode())
    (ctx / "Dockerfile").write_text(textwrap.dedent(dockerfile))
    os.chmod(ctx / "exec.sh", 0o755) if (ctx / "exec.sh").exists() else None
    return ctx


def _entry(name, kind, mode, uid, gid, size, link, digest):
    return name, (kind, stat.S_IMODE(mode), uid, gid, size if kind == "file" else 0, link, digest)


def docker_tree(dockerd, ref) -> dict:
    cid = dockerd.docker("create", ref, "x").stdout.decode().strip()
    try:
        data = dockerd.docker("export", cid).stdout
    finally:
        dockerd.docker("rm", cid)
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf:
            name = m.name.rstrip("/").removeprefix("./")
            if not name or name.split("/")[0] in NOT_IMAGE or name in NOT_IMAGE:
                continue
            kind = "file" if m.isreg() else "dir" if m.isdir() else "link" if m.issym() else "hard" if m.islnk() \
                else "other"
            digest = hashlib.sha256(tf.extractfile(m).read()).hexdigest() if m.isreg() else ""
            out.update([_entry(name, kind, m.mode, m.uid, m.gid, m.size, m.linkname if m.issym() else "", digest)])
    return out


def pycontain_tree(image_id) -> dict:
    with image.open_store() as store:
        dirs = store.layer_dirs(store.lookup(image_id))
    out = {}
    for rel, path in merged_entries(list(dirs)):
        if rel.split("/")[0] in NOT_IMAGE or rel in NOT_IMAGE:
            continue
        st = os.lstat(path)
        kind = "file" if stat.S_ISREG(st.st_mode) else "dir" if stat.S_ISDIR(st.st_mode) else \
            "link" if stat.S_ISLNK(st.st_mode) else "other"
        digest = ""
        if kind == "file":
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
        out.update([_entry(rel, kind, st.st_mode, st.st_uid, st.st_gid, st.st_size,
                           os.readlink(path) if kind == "link" else "", digest)])
    return out


def _norm(cfg: dict) -> dict:
    return {k: (cfg.get(k) or None) for k in CONFIG_FIELDS}


def docker_build(dockerd, ctx, tag, *args):
    r = dockerd.docker("build", "--network", "none", "-t", tag, *args, ".", cwd=ctx)
    return r.stdout.decode()


def docker_cached(output: str) -> list:
    """[(instruction, cached)] from the classic builder's Step lines, FROM left out."""
    steps = re.split(r"^Step \d+/\d+ : ", output, flags=re.M)[1:]
    out = []
    for s in steps:
        first = s.split("\n", 1)[0]
        if not first.upper().startswith("FROM"):
            out.append((first, "Using cache" in s))
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_image_as_dockerd(case, tmp_path, base_image, dockerd, leakcheck):
    ctx = _ctx(tmp_path, case)
    tag = f"cmp-{case.replace('_', '-')}:1"
    docker_build(dockerd, ctx, tag)
    image_id = build.build(str(ctx), tag=tag, network="none")
    theirs = json.loads(dockerd.docker("image", "inspect", tag, "--format", "{{json .}}").stdout)
    ours = image.inspect(image_id)
    assert _norm(ours["Config"]) == _norm(theirs["Config"])
    assert ours["Author"] == theirs["Author"]
    their_history = json.loads(dockerd.docker("image", "inspect", tag, "--format", "{{json .RootFS}}").stdout)
    assert len(ours["RootFS"]["diff_ids"]) == len(their_history["Layers"]), "one layer per file-changing step"
    hist = dockerd.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", tag).stdout.decode()
    their_created_by = list(reversed(hist.strip("\n").split("\n")))
    assert [h["created_by"] for h in ours["History"]][1:] == their_created_by[1:]
    theirs_tree = docker_tree(dockerd, tag)
    assert len(theirs_tree) > 250   # busybox and its applets, at least
    assert pycontain_tree(image_id) == theirs_tree


def test_onbuild_triggers_like_dockerd(tmp_path, base_image, dockerd, leakcheck):
    parent = make_ctx(tmp_path / "parent", {"p.txt": "from parent\n"}, """\
        FROM bbase:1
        ONBUILD COPY . /app/
        ONBUILD RUN ls /app > /listing
        ENV P=1
        """)
    child = make_ctx(tmp_path / "child", {"c.txt": "from child\n"}, """\
        FROM cmp-parent:1
        CMD ["cat", "/listing"]
        """)
    for ctx, tag in ((parent, "cmp-parent:1"), (child, "cmp-child:1")):
        docker_build(dockerd, ctx, tag)
        build.build(str(ctx), tag=tag, network="none")
    theirs = json.loads(dockerd.docker("image", "inspect", "cmp-child:1", "--format", "{{json .}}").stdout)
    ours = image.inspect("cmp-child:1")
    assert _norm(ours["Config"]) == _norm(theirs["Config"]) and ours["Config"]["OnBuild"] == []
    hist = dockerd.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", "cmp-child:1").stdout.decode()
    assert [h["created_by"] for h in ours["History"]][1:] == list(reversed(hist.strip("\n").split("\n")))[1:]
    assert pycontain_tree(ours["Id"]) == docker_tree(dockerd, "cmp-child:1")


def test_cache_reuse_like_dockerd(tmp_path, base_image, dockerd, leakcheck):
    ctx = make_ctx(tmp_path / "cache", {"a.txt": "one\n", "b.txt": "bee\n", "dir/c": "c\n"}, """\
        FROM bbase:1
        ARG V=1
        COPY a.txt /a.txt
        RUN cat /a.txt > /copy && echo $V >> /copy
        COPY dir /dir
        COPY b.txt /b.txt
        ENV E=1
        LABEL l=1
        """)
    changes = [
        ("first build", lambda: None, ()),
        ("nothing changed", lambda: None, ()),
        ("mtime only", lambda: os.utime(ctx / "a.txt", (5, 5)), ()),
        ("a later source", lambda: (ctx / "b.txt").write_text("changed\n"), ()),
        ("a file in a copied dir", lambda: (ctx / "dir" / "c").write_text("c2\n"), ()),
        ("a mode", lambda: os.chmod(ctx / "dir" / "c", 0o600), ()),
        ("the first source", lambda: (ctx / "a.txt").write_text("two\n"), ()),
        ("a build argument", lambda: None, ("V", "2")),
        ("the same argument again", lambda: None, ("V", "2")),
        ("an instruction", lambda: (ctx / "Dockerfile").write_text(
            (ctx / "Dockerfile").read_text().replace("ENV E=1", "ENV E=2")), ("V", "2")),
    ]
    for what, change, arg in changes:
        change()
        args = ("--build-arg", f"{arg[0]}={arg[1]}") if arg else ()
        theirs = docker_cached(docker_build(dockerd, ctx, "cmp-cache:1", *args))
        events = Events()
        build.build(str(ctx), tag="cmp-cache:1", network="none", progress=events,
                    buildargs=dict([arg]) if arg else None)
        ours = events.cached()
        assert [c for _, c in ours] == [c for _, c in theirs], f"after {what}: ours {ours}, dockerd's {theirs}"
