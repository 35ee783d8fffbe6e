"""Unpacking a Debian bookworm minbase layer: pycontain vs GNU tar vs umoci
(and Python's tarfile), side by side in one run, medians and ratios.

    python bench/bench_unpack.py [--rounds 7] [--workdir DIR]

The layer is made once with `debootstrap --variant=minbase bookworm` from the
mirror in /etc/apt/sources.list.d/debian.sources and cached under
~/.cache/pycontain-bench/. Each round unpacks into a fresh directory on the
same filesystem (warm page cache) and removes it outside the timing.
Not part of the test suite.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import resource
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pycontain.image.unpack import unpack_layer  # noqa: E402

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pycontain-bench"
LAYER = CACHE / "bookworm-minbase.tar.gz"


def mirror() -> str:
    try:
        for line in open("/etc/apt/sources.list.d/debian.sources"):
            if line.startswith("URIs:"):
                return line.split()[1]
    except OSError:
        pass
    return "http://deb.debian.org/debian"


def make_layer():
    if LAYER.exists():
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    root = CACHE / "rootfs.tmp"
    shutil.rmtree(root, ignore_errors=True)
    print(f"debootstrap --variant=minbase bookworm from {mirror()} (once, ~30 s)...", file=sys.stderr)
    subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(root), mirror()], check=True,
                   stdout=subprocess.DEVNULL)
    for d in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for p in (root / d).glob("*"):
            if p.is_file():
                p.unlink()
    tmp = LAYER.with_suffix(".tmp")
    subprocess.run(["tar", "--numeric-owner", "--xattrs", "-czf", str(tmp), "-C", str(root), "."], check=True)
    os.rename(tmp, LAYER)
    shutil.rmtree(root)


def make_oci_layout(dest: Path):
    """The layer as a one-layer OCI image, for umoci unpack."""
    if (dest / "index.json").exists():
        return
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    data = LAYER.read_bytes()
    ld = hashlib.sha256(data).hexdigest()
    (blobs / ld).write_bytes(data)
    diff = hashlib.sha256(gzip.decompress(data)).hexdigest()
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                      "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff}"]}}).encode()
    cd = hashlib.sha256(cfg).hexdigest()
    (blobs / cd).write_bytes(cfg)
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": f"sha256:{cd}", "size": len(cfg)},
                      "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": f"sha256:{ld}", "size": len(data)}]}).encode()
    md = hashlib.sha256(man).hexdigest()
    (blobs / md).write_bytes(man)
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{md}", "size": len(man),
         "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}))


def run_pycontain(dest):
    dest.mkdir()
    with open(LAYER, "rb") as f:
        unpack_layer(f, dest)


def run_gnu_tar(dest):
    dest.mkdir()
    subprocess.run(["tar", "--numeric-owner", "-xzf", str(LAYER), "-C", str(dest)], check=True)


def run_tarfile(dest):
    dest.mkdir()
    with tarfile.open(LAYER) as tf:
        # fully_trusted is what extractall did before filter= existed (3.11.2 has none)
        tf.extractall(dest, **({"filter": "fully_trusted"} if hasattr(tarfile, "data_filter") else {}))


def run_umoci(dest, layout):
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:bench", str(dest)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--workdir", default=str(CACHE / "work"), help="where layers are unpacked (same filesystem for all)")
    ap.add_argument("--skip", action="append", default=[], help="skip a contender (umoci, tarfile)")
    args = ap.parse_args()
    make_layer()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    layout = CACHE / "oci"
    make_oci_layout(layout)
    contenders = {"pycontain": run_pycontain, "GNU tar -xzf": run_gnu_tar}
    if shutil.which("umoci") and "umoci" not in args.skip:
        contenders["umoci unpack"] = lambda d: run_umoci(d, layout)
    if "tarfile" not in args.skip:
        contenders["tarfile.extractall"] = run_tarfile
    times = {k: [] for k in contenders}
    cpu = {k: [] for k in contenders}
    LAYER.read_bytes()  # warm the page cache
    os.sync()
    for r in range(args.rounds):
        for name, fn in contenders.items():  # interleaved: noise hits every contender alike
            dest = work / f"r{r}-{name.split()[0]}"
            r0s, r0c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            fn(dest)
            times[name].append(time.perf_counter() - t)
            r1s, r1c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(sum(getattr(b, f) - getattr(a, f) for a, b in ((r0s, r1s), (r0c, r1c))
                                 for f in ("ru_utime", "ru_stime")))
            shutil.rmtree(dest)
            os.sync()  # the next contender does not pay for this one's writeback
    size = LAYER.stat().st_size
    print(f"layer: {LAYER} ({size / 1e6:.1f} MB gzip), {args.rounds} rounds, unpacked under {work}")
    base = statistics.median(times["GNU tar -xzf"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:20s} median {med:6.3f} s  min {min(ts):6.3f} s  ratio to GNU tar {med / base:5.2f}"
              f"  | CPU (user+sys) median {statistics.median(cpu[name]):6.3f} s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
