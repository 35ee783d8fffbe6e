"""pycontain build beside dockerd 20.10's classic builder, side by side.

    .venv/bin/python bench/bench_build.py [--runs 7]

All build the same contexts from the same base image (a busybox rootfs),
round by round, each timed as a whole process (`pycontain build`,
`DOCKER_BUILDKIT=0 docker build` against a warm dockerd in private
namespaces, the way tests/builder runs it, and `buildah bud --layers` with its
own storage). Prints medians and ratios:
- a first (uncached) build of a 16-step multi-stage Dockerfile, 2 RUN steps;
- the same build fully cached (also as a library call in this process);
- a COPY of a 100 MB, 5,000-file context, beside `tar c | tar x` of the tree;
- what a RUN step costs beyond its command: the step's time in the
  progress events beside a Container(...).run() of `true`.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "image"))
sys.path.insert(0, str(HERE.parent / "tests" / "build"))
sys.path.insert(0, str(HERE.parent / "tests"))   # first: its conftest is the one with make_busybox_rootfs
from conftest import make_busybox_rootfs  # noqa: E402
from regtools import layer_of_dir, skopeo, write_oci_layout  # noqa: E402

MULTISTAGE = """\
FROM bbase:1 AS build
ARG V=1
WORKDIR /src
COPY app.txt lib/ ./
RUN cat app.txt > /src/out && echo $V >> /src/out
FROM bbase:1
LABEL org.example.bench=1
ENV A=1 B=2
WORKDIR /app
COPY --from=build /src/out /app/out
COPY conf/ /etc/app/
RUN chmod 600 /app/out
EXPOSE 8080
USER user
ENTRYPOINT ["sh", "-c"]
CMD ["cat /app/out"]
"""


def timed(argv, env, cwd=None) -> float:
    t = time.perf_counter()
    r = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if r.returncode:
        raise SystemExit(f"{' '.join(argv)} failed: {r.stderr.decode()[-1500:]}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    from buildtools import Dockerd

    work = Path(tempfile.mkdtemp(prefix="pycontain-bench-build-"))
    daemon = None
    try:
        rootfs = make_busybox_rootfs(work / "busybox")
        layout = write_oci_layout(work / "layout", [("amd64", [layer_of_dir(rootfs)], {})])
        store = work / "store"
        env = dict(os.environ, PYCONTAIN_ROOT=str(store), PYCONTAIN_NETWORK="none")
        from pycontain import image

        loaded = image.load(str(layout), root=store)
        image.tag(loaded[0], "bbase:1", root=store)
        (work / "dockerd").mkdir()
        daemon = Dockerd(work / "dockerd")
        archive = work / "base.tar"
        skopeo("copy", f"oci:{layout}:multi", f"docker-archive:{archive}:bbase:1")
        daemon.docker("load", "-i", str(archive))

        ms = work / "multistage"
        (ms / "lib").mkdir(parents=True)
        (ms / "conf").mkdir()
        (ms / "app.txt").write_text("app\n")
        (ms / "lib" / "a.py").write_text("a = 1\n")
        (ms / "conf" / "app.conf").write_text("x = 1\n")
        (ms / "Dockerfile").write_text(MULTISTAGE)
        big = work / "big"
        for i in range(5000):
            d = big / f"d{i % 50}"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"f{i}").write_bytes(os.urandom(20_000))
        (big / "Dockerfile").write_text("FROM bbase:1\nCOPY . /data\n")

        # buildah 1.28 with its own storage, in private network and mount
        # namespaces (its runc needs the hybrid cgroup2 tree hidden, as crun does)
        bh_store = f"--root {work}/buildah/root --runroot {work}/buildah/run --storage-driver overlay " \
                   "--cgroup-manager cgroupfs"
        buildah_sh = ["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c",
                      "ip link set lo up && mount -t tmpfs none /sys/fs/cgroup/unified && exec \"$@\"", "sh"]
        subprocess.run(buildah_sh + ["sh", "-c", f"buildah {bh_store} pull -q oci:{layout}:multi >/dev/null && "
                                     f"buildah {bh_store} tag $(buildah {bh_store} images -q | head -1) bbase:1"],
                       check=True)
        bh = buildah_sh + ["buildah", *bh_store.split(), "bud", "--layers", "--network", "none", "-q"]

        py = [sys.executable, "-m", "pycontain", "build", "-q"]
        dk = ["docker", "build", "-q", "--network", "none"]
        results = {k: [] for k in ("first/pycontain", "first/dockerd", "first/buildah", "cached/pycontain",
                                   "cached/dockerd", "cached/buildah",
                                   "copy100/pycontain", "copy100/dockerd", "copy100/tar")}
        unshare = ["unshare", "--mount", "--propagation", "private"]
        for _ in range(args.runs):
            results["first/pycontain"].append(timed(unshare + py + ["--no-cache", "-t", "ms:1", str(ms)], env))
            results["first/dockerd"].append(timed(dk + ["--no-cache", "-t", "ms:1", "."], daemon.env, cwd=ms))
            results["first/buildah"].append(timed(bh + ["--no-cache", "-t", "ms:1", "."], env, cwd=ms))
            results["cached/pycontain"].append(timed(unshare + py + ["-t", "ms:1", str(ms)], env))
            results["cached/dockerd"].append(timed(dk + ["-t", "ms:1", "."], daemon.env, cwd=ms))
            results["cached/buildah"].append(timed(bh + ["-t", "ms:1", "."], env, cwd=ms))
            results["copy100/pycontain"].append(timed(unshare + py + ["--no-cache", str(big)], env))
            results["copy100/dockerd"].append(timed(dk + ["--no-cache", "."], daemon.env, cwd=big))
            dest = work / "tar-dest"
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir()
            results["copy100/tar"].append(timed(["sh", "-c", f"tar c -C {big} . | tar x -C {dest}"], env))

        # a RUN step beyond its command: the step's own time against a container of `true`
        from pycontain import Container, build

        os.environ["PYCONTAIN_ROOT"] = str(store)
        run_step, plain, cached_call = [], [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            build.build(str(ms), tag="ms:1", network="none")
            cached_call.append(time.perf_counter() - t)
            events = []
            build.build(str(ms), dockerfile_text="FROM bbase:1\nRUN true\n", nocache=True, network="none",
                        progress=events.append)
            run_step.append(next(e["duration"] for e in events if e["type"] == "done" and e["n"] == 2))
            t = time.perf_counter()
            Container("bbase:1", command=["true"]).run()
            plain.append(time.perf_counter() - t)

        med = {k: statistics.median(v) for k, v in results.items()}
        print(f"{'what':55} {'median':>9}")
        rows = [
            ("first build, 16 steps (2 RUN), pycontain build", "first/pycontain"),
            ("first build, 16 steps, dockerd 20.10 classic builder", "first/dockerd"),
            ("first build, 16 steps, buildah bud --layers", "first/buildah"),
            ("cached rebuild, pycontain build (whole process)", "cached/pycontain"),
            ("cached rebuild, dockerd", "cached/dockerd"),
            ("cached rebuild, buildah bud --layers", "cached/buildah"),
            ("COPY 100 MB / 5,000 files, pycontain build", "copy100/pycontain"),
            ("COPY 100 MB / 5,000 files, dockerd", "copy100/dockerd"),
            ("tar c | tar x of the same tree", "copy100/tar"),
        ]
        for label, key in rows:
            print(f"{label:55} {med[key] * 1000:8.0f} ms")
        print(f"{'cached rebuild, pycontain.build.build() in process':55} {statistics.median(cached_call) * 1000:8.0f} ms")
        print(f"{'RUN true step (progress event), pycontain':55} {statistics.median(run_step) * 1000:8.1f} ms")
        print(f"{'Container(...).run() of true, pycontain':55} {statistics.median(plain) * 1000:8.1f} ms")
        print()
        print(f"dockerd / pycontain, first build:   {med['first/dockerd'] / med['first/pycontain']:.1f}x")
        print(f"buildah / pycontain, first build:   {med['first/buildah'] / med['first/pycontain']:.1f}x")
        print(f"dockerd / pycontain, cached:        {med['cached/dockerd'] / med['cached/pycontain']:.1f}x")
        print(f"buildah / pycontain, cached:        {med['cached/buildah'] / med['cached/pycontain']:.1f}x")
        print(f"pycontain COPY / tar c|tar x:       {med['copy100/pycontain'] / med['copy100/tar']:.1f}x")
        print(f"dockerd COPY / pycontain COPY:      {med['copy100/dockerd'] / med['copy100/pycontain']:.1f}x")
    finally:
        if daemon is not None:
            daemon.stop()
        subprocess.run(["unshare", "--mount", "--propagation", "private", "rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
