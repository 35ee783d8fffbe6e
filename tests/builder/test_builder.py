"""pycontain build on its own: real containers for RUN, the real store, the cache rules."""
import bz2
import io
import lzma
import os
import subprocess
import sys
import tarfile

import pytest

from buildtools import BASE, Events, make_ctx
from pycontain import Container, build, image
from pycontain.build import BuildError, DockerfileError
from regtools import Registry, skopeo   # tests/image, on the path by conftest.py

PY = sys.executable


def run_in(ref, *cmd):
    r = Container(ref, command=list(cmd), entrypoint=[]).run(capture_output=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def history(ref):
    return [h["created_by"] for h in image.inspect(ref)["History"]]


def test_multistage_metadata_files_and_history(tmp_path, base_image, leakcheck):
    ctx = make_ctx(tmp_path / "ctx", {"a.txt": "hello\n", "sub/b.txt": "sub\n"}, f"""\
        # syntax=docker/dockerfile:1
        ARG BASE={BASE}
        FROM ${{BASE}} AS build
        ARG MSG=hi
        RUN echo "$MSG" > /msg && mkdir -p /out && cp /msg /out/m && rm /etc/group
        COPY a.txt sub /out/
        FROM {BASE}
        MAINTAINER someone
        LABEL a=b "c d"=e
        ENV X=1 Y="two words"
        WORKDIR /app
        COPY --from=build /out /app/
        COPY --chown=1000:1000 a.txt ./a2.txt
        USER user
        EXPOSE 80 443/udp
        VOLUME /data
        STOPSIGNAL SIGTERM
        HEALTHCHECK --interval=5m --timeout=3s CMD wget -q localhost || exit 1
        ONBUILD RUN echo triggered
        SHELL ["/bin/sh", "-c"]
        ENTRYPOINT ["sh"]
        CMD ["-c", "cat /app/m"]
        """)
    events = Events()
    image_id = build.build(str(ctx), tag=["multi:1", "multi:2"], network="none", progress=events)
    info = image.inspect("multi:1")
    assert info["Id"] == image_id and sorted(info["RepoTags"]) == ["multi:1", "multi:2"]
    cfg = info["Config"]
    assert cfg["Env"] == ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "X=1", "Y=two words"]
    assert cfg["Cmd"] == ["-c", "cat /app/m"] and cfg["Entrypoint"] == ["sh"]
    assert cfg["WorkingDir"] == "/app" and cfg["User"] == "user" and cfg["StopSignal"] == "SIGTERM"
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "443/udp": {}} and cfg["Volumes"] == {"/data": {}}
    assert cfg["Labels"] == {"a": "b", "c d": "e"} and cfg["OnBuild"] == ["RUN echo triggered"]
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q localhost || exit 1"],
                                  "Interval": 300_000_000_000, "Timeout": 3_000_000_000}
    assert cfg["Shell"] == ["/bin/sh", "-c"] and info["Author"] == "someone"
    hist = image.inspect("multi:1")["History"]
    assert [h["created_by"] for h in hist[1:]] == [
        "/bin/sh -c #(nop)  MAINTAINER someone",
        "/bin/sh -c #(nop)  LABEL a=b c d=e",
        "/bin/sh -c #(nop)  ENV X=1 Y=two words",
        "/bin/sh -c #(nop) WORKDIR /app",
        hist[5]["created_by"],
        "/bin/sh -c #(nop) COPY --chown=1000:1000file:00ec16333078d287782d462baefc8bb9eb0231dc3aefba3ca3e2f7e5cf0cadda"
        " in ./a2.txt ",
        "/bin/sh -c #(nop)  USER user",
        "/bin/sh -c #(nop)  EXPOSE 443/udp 80",
        "/bin/sh -c #(nop)  VOLUME [/data]",
        "/bin/sh -c #(nop)  STOPSIGNAL SIGTERM",
        "/bin/sh -c #(nop)  HEALTHCHECK &{[\"CMD-SHELL\" \"wget -q localhost || exit 1\"] \"5m0s\" \"3s\" \"0s\" '\\x00'}",
        "/bin/sh -c #(nop)  ONBUILD RUN echo triggered",
        "/bin/sh -c #(nop)  SHELL [/bin/sh -c]",
        "/bin/sh -c #(nop)  ENTRYPOINT [\"sh\"]",
        "/bin/sh -c #(nop)  CMD [\"-c\" \"cat /app/m\"]",
    ]
    assert hist[5]["created_by"].startswith("/bin/sh -c #(nop) COPY dir:") and hist[5]["created_by"].endswith(" in /app/ ")
    # metadata steps make no layer; WORKDIR (a new directory) and the COPYs do
    assert [bool(h.get("empty_layer")) for h in hist[1:6]] == [True, True, True, False, False]
    assert len(info["RootFS"]["diff_ids"]) == 4
    out = run_in("multi:1", "sh", "-c", "cat /app/m /app/a.txt /app/b.txt; stat -c '%U %a %n' /app/a2.txt /app; "
                 "cat /etc/group | head -1")
    assert out == "hi\nhello\nsub\nuser 644 /app/a2.txt\nroot 755 /app\nroot:x:0:\n"
    # the first stage is not tagged; its RUN deleted /etc/group (a whiteout)
    build.build(str(ctx), tag="stage:build", target="build", network="none")
    assert run_in("stage:build", "sh", "-c", "[ ! -e /etc/group ] && cat /out/m") == "hi\n"
    assert history("stage:build")[-2] == ('|1 MSG=hi /bin/sh -c echo "$MSG" > /msg && mkdir -p /out && cp /msg /out/m '
                                          "&& rm /etc/group")


def test_run_layer_holds_only_what_the_command_wrote(tmp_path, base_image, leakcheck):
    """The launcher's mount points (/etc/hostname, /etc/hosts, /etc/resolv.conf,
    /proc, /sys, /dev) are not part of a RUN step's layer; an unchanged file
    system still records the step, as an empty layer."""
    ctx = make_ctx(tmp_path / "ctx", {}, f"""\
        FROM {BASE}
        RUN echo data > /root/new && rm -r /home/user
        RUN true
        """)
    image_id = build.build(str(ctx), network="none")
    info = image.inspect(image_id)
    assert [bool(h.get("empty_layer")) for h in info["History"][-2:]] == [False, True]
    with image.open_store() as store:
        top = store.layer_dirs(store.lookup(image_id))[0]
    found = sorted(os.path.relpath(os.path.join(d, n), top) for d, ds, fs in os.walk(top) for n in ds + fs)
    assert found == ["home", "home/user", "root", "root/new"]
    assert os.stat(os.path.join(top, "home/user")).st_rdev == 0  # the whiteout
    assert history(image_id)[-2:] == ["/bin/sh -c echo data > /root/new && rm -r /home/user", "/bin/sh -c true"]


def test_cache_rules(tmp_path, base_image, leakcheck):
    ctx = make_ctx(tmp_path / "ctx", {"a.txt": "one\n", "b.txt": "bee\n"}, f"""\
        FROM {BASE}
        ARG V=1
        COPY a.txt /a.txt
        RUN cat /a.txt > /copy && echo $V >> /copy
        COPY b.txt /b.txt
        ENV E=1
        """)

    def again(**kw):
        ev = Events()
        build.build(str(ctx), network="none", progress=ev, tag="cache:1", **kw)
        return [c for _, c in ev.cached()]

    assert again() == [False, False, False, False, False]
    assert again() == [True, True, True, True, True]
    os.utime(ctx / "a.txt", (1, 1))                  # mtime only: still the same content
    assert again() == [True, True, True, True, True]
    (ctx / "b.txt").write_text("changed\n")          # a later source: only it and what follows
    assert again() == [True, True, True, False, False]
    (ctx / "a.txt").write_text("two\n")
    assert again() == [True, False, False, False, False]
    assert run_in("cache:1", "cat", "/copy") == "two\n1\n"
    assert again(buildargs={"V": "2"}) == [True, True, False, False, False]   # the RUN uses the argument
    assert run_in("cache:1", "cat", "/copy") == "two\n2\n"
    assert history("cache:1")[-3] == "|1 V=2 /bin/sh -c cat /a.txt > /copy && echo $V >> /copy"
    assert again(buildargs={"V": "2"}) == [True, True, True, True, True]
    assert again(nocache=True) == [False, False, False, False, False]
    (ctx / "Dockerfile").write_text((ctx / "Dockerfile").read_text().replace("ENV E=1", "ENV E=2"))
    assert again() == [True, True, True, True, False]


def test_failing_run_reports_and_leaves_nothing(tmp_path, base_image, leakcheck):
    ctx = make_ctx(tmp_path / "ctx", {"a": "x"}, f"""\
        FROM {BASE}
        COPY a /a
        RUN echo to-stdout; echo to-stderr >&2; exit 3
        """)
    events = Events()
    with pytest.raises(BuildError) as e:
        build.build(str(ctx), tag="fails:1", network="none", progress=events)
    assert str(e.value) == ("Dockerfile:3: [stage-0 3] RUN failed: the command "
                            "'/bin/sh -c echo to-stdout; echo to-stderr >&2; exit 3' returned a non-zero code: 3")
    assert events.output() == ["to-stdout", "to-stderr"]
    with pytest.raises(image.ImageNotFound if hasattr(image, "ImageNotFound") else Exception):
        image.inspect("fails:1")
    assert os.listdir(leakcheck.store / "images" / "tmp") == []
    # the step before the failure stays cached
    (ctx / "Dockerfile").write_text(f"FROM {BASE}\nCOPY a /a\nRUN true\n")
    events = Events()
    build.build(str(ctx), tag="fails:1", network="none", progress=events)
    assert [c for _, c in events.cached()] == [True, False]


def test_dockerignore_wildcards_and_destination_rules(tmp_path, base_image, leakcheck):
    ctx = make_ctx(tmp_path / "ctx", {
        "keep.txt": "k", "drop.log": "d", "logs/a.log": "a", "logs/keep.log": "kl", "deep/x/y.tmp": "t",
        "deep/x/z.txt": "z", "one.md": "1", "two.md": "2", "dir/f": "f", "dir/sub/g": "g",
        ".dockerignore": "*.log\nlogs/*\n!logs/keep.log\n**/*.tmp\n",
    }, f"""\
        FROM {BASE}
        COPY . /all/
        COPY *.md /docs/
        COPY dir /d
        COPY dir/f /newname
        COPY dir/f /into/
        COPY ["keep.txt", "one.md", "/multi/"]
        WORKDIR /w
        COPY keep.txt rel/
        """)
    image_id = build.build(str(ctx), network="none")
    out = run_in(image_id, "sh", "-c", "cd /all && find . | sort; echo --; ls /docs /d /d/sub /into /multi /w/rel; "
                 "cat /newname")
    listing, rest = out.split("--\n")
    assert listing.split() == [".", "./.dockerignore", "./Dockerfile", "./deep", "./deep/x", "./deep/x/z.txt",
                               "./dir", "./dir/f", "./dir/sub", "./dir/sub/g", "./keep.txt", "./logs",
                               "./logs/keep.log", "./one.md", "./two.md"]
    assert rest.replace("\n\n", "\n").split() == [
        "/d:", "f", "sub", "/d/sub:", "g", "/docs:", "one.md", "two.md", "/into:", "f", "/multi:", "keep.txt",
        "one.md", "/w/rel:", "keep.txt", "f"]
    # several sources need a directory destination
    (ctx / "Dockerfile").write_text(f"FROM {BASE}\nCOPY one.md two.md /nodir\n")
    with pytest.raises(BuildError, match="must be a directory and end with a /"):
        build.build(str(ctx), network="none")
    (ctx / "Dockerfile").write_text(f"FROM {BASE}\nCOPY drop.log /x\n")
    with pytest.raises(BuildError, match="Dockerfile:2: COPY failed: file not found in build context or excluded"):
        build.build(str(ctx), network="none")
    (ctx / "Dockerfile").write_text(f"FROM {BASE}\nCOPY ../outside /x\n")
    with pytest.raises(BuildError, match="forbidden path outside the build context"):
        build.build(str(ctx), network="none")


def _tar_bytes(files, compress):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.uid, ti.gid = len(data), 0o640, 1000, 1000
            tf.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    return {"gz": lambda b: __import__("gzip").compress(b), "bz2": bz2.compress, "xz": lzma.compress,
            "tar": lambda b: b}[compress](raw)


def test_add_extracts_local_archives_copy_does_not(tmp_path, base_image, leakcheck):
    ctx = make_ctx(tmp_path / "ctx", {
        "a.tar.gz": _tar_bytes({"gz/file": b"g"}, "gz"), "b.tar.bz2": _tar_bytes({"bz/file": b"b"}, "bz2"),
        "c.tar.xz": _tar_bytes({"xz/file": b"x"}, "xz"), "d.tar": _tar_bytes({"plain/file": b"p"}, "tar"),
        "e.tar.gz": _tar_bytes({"e": b"e"}, "gz"), "plain.txt": "not an archive",
    }, f"""\
        FROM {BASE}
        ADD a.tar.gz b.tar.bz2 c.tar.xz d.tar /x/
        COPY e.tar.gz /y/
        ADD --chown=1000:1000 plain.txt /z
        """)
    image_id = build.build(str(ctx), network="none")
    out = run_in(image_id, "sh", "-c", "cd /x && find . -type f | sort && stat -c '%u:%g %a' gz/file; ls /y; "
                 "stat -c '%u:%g' /z")
    assert out.split("\n") == ["./bz/file", "./gz/file", "./plain/file", "./xz/file", "1000:1000 640", "e.tar.gz",
                               "1000:1000", ""]


def test_heredocs_onbuild_and_shell(tmp_path, base_image, leakcheck):
    ctx = make_ctx(tmp_path / "ctx", {}, f"""\
        FROM {BASE}
        ENV NAME=world
        RUN <<EOF
        echo "hello $NAME" > /greeting
        echo second line >> /greeting
        EOF
        COPY <<EOT /expanded
        name=$NAME
        EOT
        COPY <<'EOT' /literal
        name=$NAME
        EOT
        SHELL ["/bin/sh", "-ec"]
        RUN echo $0 $- > /shell
        ONBUILD RUN echo "triggered" > /trigger
        """)
    build.build(str(ctx), tag="parent:1", network="none")
    assert run_in("parent:1", "cat", "/greeting", "/expanded", "/literal") == \
        "hello world\nsecond line\nname=world\nname=$NAME\n"
    assert "e" in run_in("parent:1", "cat", "/shell").split()[1]
    child = make_ctx(tmp_path / "child", {}, "FROM parent:1\nRUN cat /trigger\n")
    events = Events()
    build.build(str(child), tag="child:1", network="none", progress=events)
    assert events.output() == ["triggered"]
    assert image.inspect("child:1")["Config"]["OnBuild"] == []


def test_only_the_stages_the_target_needs(tmp_path, base_image, leakcheck):
    ctx = make_ctx(tmp_path / "ctx", {}, f"""\
        FROM {BASE} AS broken
        RUN exit 1
        FROM {BASE} AS dep
        RUN echo dep > /dep
        FROM {BASE} AS unrelated
        RUN exit 2
        FROM {BASE} AS final
        COPY --from=dep /dep /dep
        FROM broken
        """)
    build.build(str(ctx), tag="final:1", target="final", network="none")
    assert run_in("final:1", "cat", "/dep") == "dep\n"
    with pytest.raises(BuildError, match="returned a non-zero code: 1"):
        build.build(str(ctx), network="none")
    with pytest.raises(DockerfileError, match="target stage 'nope' could not be found"):
        build.build(str(ctx), target="nope", network="none")


def test_context_from_a_tar_stream_and_dockerfile_text(tmp_path, base_image, leakcheck):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = b"from tar\n"
        ti = tarfile.TarInfo("f.txt")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    buf.seek(0)
    image_id = build.build(buf, dockerfile_text=f"FROM {BASE}\nCOPY f.txt /\n", network="none")
    assert run_in(image_id, "cat", "/f.txt") == "from tar\n"
    assert os.listdir(leakcheck.store / "images" / "tmp") == []


def _cli(*args, cwd=None, stdin_data=None):
    return subprocess.run([PY, "-m", "pycontain", *args], capture_output=True, cwd=cwd, input=stdin_data, timeout=120)


def test_cli_build(tmp_path, base_image, leakcheck):
    ctx = make_ctx(tmp_path / "ctx", {"f": "x"}, f"FROM {BASE}\nCOPY f /f\nRUN echo built\n")
    r = _cli("build", "-t", "cli:1", "--iidfile", str(tmp_path / "iid"), "--label", "k=v", "--output",
             f"type=tar,dest={tmp_path / 'fs.tar'}", str(ctx))
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    assert "#1 [stage-0 1/4] FROM bbase:1" in err and "#3 [stage-0 3/4] RUN echo built" in err
    assert "#3 DONE" in err and "built" in err and "#4 [stage-0 4/4] LABEL" in err
    image_id = (tmp_path / "iid").read_text()
    assert image.inspect("cli:1")["Id"] == image_id and image.inspect("cli:1")["Config"]["Labels"] == {"k": "v"}
    with tarfile.open(tmp_path / "fs.tar") as tf:
        assert tf.extractfile("f").read() == b"x"
    # the steps' images are kept for the cache, and listed with -a only (as docker's intermediate images)
    listed = _cli("images", "-q", "--no-trunc").stdout.decode().split()
    listed_all = _cli("images", "-a", "-q", "--no-trunc").stdout.decode().split()
    hidden = set(listed_all) - set(listed)
    assert image_id in listed and hidden and hidden <= build.cache_image_ids()
    r = _cli("build", "-q", "-t", "cli:1", "--label", "k=v", str(ctx))
    assert r.returncode == 0 and r.stdout.decode().strip() == image_id and r.stderr == b""
    r = _cli("build", "-q", "-f", "-", str(ctx), stdin_data=f"FROM {BASE}\nRUN exit 4\n".encode())
    assert r.returncode == 1 and r.stderr.decode().count("\n") == 1 and "returned a non-zero code: 4" in r.stderr.decode()
    for dockerfile, message in ((f"FROM {BASE}\nBOGUS x\n", "Dockerfile:2: unknown instruction: BOGUS"),
                                (f"FROM {BASE}\nRUN echo \\\n", None),
                                ("FROM no-such-image-here:1\n", "base image 'no-such-image-here:1'"),
                                (f"FROM {BASE}\nCOPY missing /\n", "file not found in build context"),
                                (f"FROM {BASE}\nENV A=${{B\n", "missing '}'"),
                                (f"FROM {BASE}\nUSER nobody2\nRUN true\n",
                                 "Dockerfile:3: [stage-0 3] RUN failed: unable to find user nobody2"),
                                (f"FROM {BASE}\nRUN [\"no-such-program\"]\n",
                                 "Dockerfile:2: [stage-0 2] RUN failed: exec: \"no-such-program\"")):
        (ctx / "Dockerfile").write_text(dockerfile)
        r = _cli("build", str(ctx))
        text = r.stderr.decode()
        assert "Traceback" not in text
        if message:
            assert r.returncode == 1 and text.strip().splitlines()[-1].startswith("pycontain: ")
            assert message in text, text
    r = _cli("build", str(tmp_path / "nowhere"))
    assert r.returncode == 1 and r.stderr.decode().strip().startswith("pycontain: unable to prepare context")
    r = _cli("build", "--output", "type=zip,dest=x", str(ctx))
    assert r.returncode == 1 and "type must be docker, oci or tar" in r.stderr.decode()


def test_builder_prune(tmp_path, base_image, leakcheck):
    ctx = make_ctx(tmp_path / "ctx", {}, f"FROM {BASE}\nRUN echo p > /p\nENV P=1\n")
    build.build(str(ctx), tag="prune:1", network="none")
    steps, _ = build.prune()
    assert steps >= 2
    assert run_in("prune:1", "cat", "/p") == "p\n"    # the named image stays
    events = Events()
    build.build(str(ctx), tag="prune:1", network="none", progress=events)
    assert [c for _, c in events.cached()] == [False, False]


def test_two_builds_at_once(tmp_path, base_image, leakcheck):
    ctx = make_ctx(tmp_path / "ctx", {"f": "x"}, f"FROM {BASE}\nCOPY f /f\nRUN sleep 0.2; cat /f > /g\n")
    procs = [subprocess.Popen([PY, "-m", "pycontain", "build", "-q", "--no-cache", "-t", f"both:{i}", str(ctx)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert run_in("both:0", "cat", "/g") == run_in("both:1", "cat", "/g") == "x"


def test_run_mounts(tmp_path, base_image, leakcheck):
    secret = tmp_path / "token"
    secret.write_text("s3cr3t")
    ctx = make_ctx(tmp_path / "ctx", {"src/input.txt": "in\n", "ignored.txt": "no\n", ".dockerignore": "ignored.txt\n"}, f"""\
        FROM {BASE}
        RUN --mount=type=cache,target=/var/cache/build,id=counter \\
            echo x >> /var/cache/build/n && wc -l < /var/cache/build/n > /count
        RUN --mount=type=tmpfs,target=/scratch echo tmp > /scratch/t && cat /scratch/t > /from-tmpfs
        RUN --mount=type=bind,target=/ctx cat /ctx/src/input.txt > /from-bind && ! test -e /ctx/ignored.txt \\
            && ! touch /ctx/src/new 2>/dev/null
        RUN --mount=type=secret,id=token cat /run/secrets/token > /dev/null && wc -c < /run/secrets/token > /secret-size
        """)
    build.build(str(ctx), tag="mounts:1", network="none", secrets={"token": str(secret)})
    build.build(str(ctx), tag="mounts:2", network="none", secrets={"token": str(secret)}, nocache=True)
    assert run_in("mounts:1", "cat", "/count", "/from-tmpfs", "/from-bind", "/secret-size") == "1\ntmp\nin\n6\n"
    assert run_in("mounts:2", "cat", "/count") == "2\n"            # the cache directory outlived the first build
    # nothing of the mounts is in the image: not the targets, not the secret
    out = run_in("mounts:2", "sh", "-c", "ls -a /var/cache /scratch /ctx /run 2>&1; true")
    assert "No such file" in out and "build" not in out and "secrets" not in out
    with image.open_store() as store:
        for d in store.layer_dirs(store.lookup("mounts:2")):
            for dirpath, _, files in os.walk(d):
                for f in files:
                    p = os.path.join(dirpath, f)
                    if os.path.isfile(p) and not os.path.islink(p):
                        with open(p, "rb") as fh:
                            assert b"s3cr3t" not in fh.read(), p
    assert not any("s3cr3t" in h for h in history("mounts:2"))
    # a missing required secret, a bad mount
    (ctx / "Dockerfile").write_text(f"FROM {BASE}\nRUN --mount=type=secret,id=nope,required cat /run/secrets/nope\n")
    with pytest.raises(BuildError, match="secret 'nope' is required"):
        build.build(str(ctx), network="none")
    (ctx / "Dockerfile").write_text(f"FROM {BASE}\nRUN --mount=type=ssh true\n")
    with pytest.raises(BuildError, match="Dockerfile:2: RUN --mount: unsupported type 'ssh'"):
        build.build(str(ctx), network="none")
    assert os.listdir(leakcheck.store / "images" / "tmp") == []


def test_interrupt_stops_the_running_step_and_leaves_nothing(tmp_path, base_image, leakcheck):
    import signal
    import time

    ctx = make_ctx(tmp_path / "ctx", {}, f"FROM {BASE}\nRUN echo started; sleep 60\n")
    p = subprocess.Popen([PY, "-m", "pycontain", "build", "--no-cache", "-t", "interrupted:1", str(ctx)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    seen = b""
    while b"started" not in seen and time.monotonic() < deadline:
        seen += p.stderr.read1(4096)
    assert b"started" in seen
    t = time.monotonic()
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=30)
    assert p.returncode == 130 and time.monotonic() - t < 10
    with pytest.raises(Exception, match="no such image"):
        image.inspect("interrupted:1")
    assert os.listdir(leakcheck.store / "images" / "tmp") == []
    assert leakcheck.containers_left() == []


def test_add_from_a_url(tmp_path, base_image, leakcheck):
    import functools
    import hashlib
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    (served / "tool.tar.gz").write_bytes(_tar_bytes({"inside": b"i"}, "gz"))
    (served / "file.txt").write_text("remote\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        good = "sha256:" + hashlib.sha256(b"remote\n").hexdigest()
        ctx = make_ctx(tmp_path / "ctx", {}, f"""\
            FROM {BASE}
            ADD {url}/file.txt /downloads/
            ADD --checksum={good} {url}/file.txt /named.txt
            ADD {url}/tool.tar.gz /tools/
            """)
        events = Events()
        image_id = build.build(str(ctx), network="none", progress=events)
        out = run_in(image_id, "sh", "-c", "cat /downloads/file.txt /named.txt; stat -c '%a %u' /named.txt; ls /tools")
        assert out == "remote\nremote\n600 0\ntool.tar.gz\n"    # a remote archive is not unpacked (docker's rule)
        assert history(image_id)[-3].startswith("/bin/sh -c #(nop) ADD file:")
        events = Events()
        build.build(str(ctx), network="none", progress=events)
        assert [c for _, c in events.cached()] == [True, True, True]
        (served / "file.txt").write_text("changed\n")      # new content: that step and what follows again
        events = Events()
        with pytest.raises(BuildError, match="checksum mismatch"):
            build.build(str(ctx), network="none", progress=events)
        assert [c for _, c in events.cached()] == [False]
        (ctx / "Dockerfile").write_text(f"FROM {BASE}\nADD {url}/missing /x\n")
        with pytest.raises(BuildError, match="Dockerfile:2: ADD failed: cannot download .*missing"):
            build.build(str(ctx), network="none")
    finally:
        server.shutdown()
        server.server_close()
    assert os.listdir(leakcheck.store / "images" / "tmp") == []


def test_dockerfile_outside_the_context_and_outputs(tmp_path, base_image, leakcheck):
    ctx = make_ctx(tmp_path / "ctx", {"keep": "k", "skip": "s"})
    (tmp_path / "elsewhere").mkdir()
    df = tmp_path / "elsewhere" / "Build.file"
    df.write_text(f"FROM {BASE}\nCOPY . /c/\n")
    (tmp_path / "elsewhere" / "Build.file.dockerignore").write_text("skip\n")
    (ctx / ".dockerignore").write_text("keep\n")        # the one beside the Dockerfile wins
    archive = tmp_path / "out.tar"
    r = _cli("build", "-q", "-f", str(df), "-t", "outside:1", "--output", f"type=docker,dest={archive}", str(ctx))
    assert r.returncode == 0, r.stderr
    assert run_in("outside:1", "ls", "-A", "/c") == ".dockerignore\nkeep\n"
    other_root = tmp_path / "other-store"
    assert image.load(str(archive), root=other_root) == ["outside:1"]
    assert image.inspect("outside:1", root=other_root)["Id"] == image.inspect("outside:1")["Id"]


def test_cli_live_view_on_a_terminal(tmp_path, base_image, leakcheck):
    import pty

    ctx = make_ctx(tmp_path / "ctx", {}, f"FROM {BASE}\nRUN echo one; sleep 0.3; echo two\n")
    master, slave = pty.openpty()
    p = subprocess.Popen([PY, "-m", "pycontain", "build", "--no-cache", str(ctx)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:   # EIO: the other side closed
            break
        if not data:
            break
        out += data
    os.close(master)
    assert p.wait(timeout=60) == 0
    text = out.decode()
    # the running step's line is redrawn in place with its latest output, then replaced by the plain lines
    assert "\r\x1b[K#2 [stage-0 2/2] " in text and " one" in text and " two" in text
    assert "#2 DONE" in text and "#2 0." not in text


def test_cli_context_tar_on_stdin(tmp_path, base_image, leakcheck):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in (("Dockerfile", f"FROM {BASE}\nCOPY in.txt /\n".encode()), ("in.txt", b"piped\n")):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    r = _cli("build", "-q", "-t", "stdin:1", "-", stdin_data=buf.getvalue())
    assert r.returncode == 0, r.stderr
    assert run_in("stdin:1", "cat", "/in.txt") == "piped\n"
    r = _cli("build", "-q", "-", stdin_data=b"not a tar at all" * 100)
    assert r.returncode == 1 and b"Traceback" not in r.stderr and b"not a valid tar" in r.stderr
    assert os.listdir(leakcheck.store / "images" / "tmp") == []


def test_base_image_pulled_when_missing_and_with_pull(tmp_path, base_layout, leakcheck):
    (tmp_path / "reg").mkdir()
    reg = Registry(tmp_path / "reg")
    try:
        ref = f"{reg.host}/build/base:1"
        skopeo("copy", "--dest-tls-verify=false", f"oci:{base_layout}:multi", f"docker://{ref}")
        ctx = make_ctx(tmp_path / "ctx", {}, f"FROM {ref}\nRUN echo pulled > /p\n")
        root = tmp_path / "fresh-store"
        build.build(str(ctx), tag="pulled:1", network="none", root=root)
        assert image.inspect(ref, root=root)["Id"]                   # pulled because it was missing
        events = Events()
        build.build(str(ctx), tag="pulled:1", network="none", root=root, pull=True, progress=events)
        assert [c for _, c in events.cached()] == [True]            # pulled again: the same image, the cache holds
    finally:
        reg.stop()
    assert os.listdir(root / "images" / "tmp") == []
