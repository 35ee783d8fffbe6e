"""The sdist and the wheel `python -m build` makes, checked the way PyPI's
users meet them: what is inside, auditwheel's verdict, abi3audit's verdict,
and how old a glibc the extension can run on."""
import re
import subprocess
import sys
import tarfile
import zipfile

import pytest

from wheel_helpers import (HOST_ARCH, compiler_warnings, grafts_nothing, is_manylinux_name, run, tool_env,
                           unpack_wheel)

pytestmark = pytest.mark.packaging

# manylinux2014 is glibc 2.17: the oldest the wheels are built for (pyproject.toml).
OLDEST_GLIBC = (2, 17)
STATIC_PROGRAMS = ("pycontain/_bin/pycontain-init", "pycontain/_bin/hello-world/hello", "pycontain/_bin/pycontain-join",
                   "pycontain/_bin/pycontain-monitor")


def test_sdist_has_the_sources_and_no_build_products(dist):
    with tarfile.open(dist.sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in ("setup.py", "pyproject.toml", "src/_nsexec.c", "src/nsexec.h", "src/rawsys.h",
                   "src/build_nsexec.py", "src/init.c", "src/hello.c", "tests/conftest.py",
                   "tests/packaging/test_wheel_build.py", "pycontain/__init__.py"):
        assert needed in names, f"the sdist lacks {needed}"
    stale = [n for n in names if n.endswith(".so") or "/_bin/" in n or n == "pycontain/_nsexec.c"]
    assert stale == [], f"build products in the sdist: {stale}"


def test_wheel_is_one_abi3_wheel_for_cpython_310_and_later(dist):
    assert dist.wheel.name == f"pycontain-0.1.0-cp310-abi3-linux_{HOST_ARCH}.whl" or \
        re.fullmatch(rf"pycontain-[^-]+-cp310-abi3-linux_{HOST_ARCH}\.whl", dist.wheel.name), dist.wheel.name
    with zipfile.ZipFile(dist.wheel) as z:
        wheel_meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/WHEEL"))).decode()
        metadata = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        names = z.namelist()
    assert "Root-Is-Purelib: false" in wheel_meta
    assert f"Tag: cp310-abi3-linux_{HOST_ARCH}" in wheel_meta
    assert "Requires-Python: >=3.10" in metadata
    assert "pycontain/_nsexec.abi3.so" in names
    assert not [n for n in names if "stale" in n]


def test_static_programs_keep_their_execute_bits_in_the_wheel(dist):
    with zipfile.ZipFile(dist.wheel) as z:
        for name in STATIC_PROGRAMS:
            mode = z.getinfo(name).external_attr >> 16
            assert mode & 0o111 == 0o111, f"{name} has mode {oct(mode)} in the wheel: pip would install it unexecutable"


def test_build_is_warning_free(dist):
    assert compiler_warnings(dist.log) == []


def test_auditwheel_sees_a_manylinux_wheel_that_needs_only_glibc(dist):
    out = run([sys.executable, "-m", "auditwheel", "show", dist.wheel]).stdout
    squashed = " ".join(out.split())
    assert re.search(rf'is consistent with the following platform tag: "manylinux_2_\d+_{HOST_ARCH}"', squashed), out
    # The only library the extension links to is libc; nothing to graft.
    assert "system-provided shared libraries: libc.so.6 with versions" in squashed, out
    assert grafts_nothing(out), out


def test_auditwheel_repair_grafts_nothing_and_leaves_the_static_programs_alone(dist, tmp_path):
    run([sys.executable, "-m", "auditwheel", "repair", "--wheel-dir", tmp_path / "repaired", dist.wheel])
    (repaired,) = (tmp_path / "repaired").glob("*.whl")
    assert is_manylinux_name(repaired.name, HOST_ARCH), repaired.name
    before = unpack_wheel(dist.wheel, tmp_path / "before")
    after = unpack_wheel(repaired, tmp_path / "after")
    assert not list(after.glob("pycontain.libs")), "auditwheel grafted libraries into the wheel"
    for name in STATIC_PROGRAMS:
        assert (after / name).read_bytes() == (before / name).read_bytes(), f"auditwheel changed {name}"
        assert (after / name).stat().st_mode & 0o111 == 0o111


def test_abi3audit_finds_no_violation(dist):
    r = run([sys.executable, "-m", "abi3audit", "--strict", "--summary", "--verbose", dist.wheel])
    out = " ".join((r.stdout + r.stderr).split())
    assert "1 extensions scanned; 0 ABI version mismatches and 0 ABI violations found" in out, out


def glibc_versions_needed(elf) -> dict:
    """{symbol: version} for each versioned glibc symbol the ELF file imports."""
    out = run(["objdump", "-T", elf]).stdout
    needed = {}
    for line in out.splitlines():
        m = re.search(r"\*UND\*\s+\S+\s+\(?GLIBC_([\d.]+)\)?\s+(\S+)$", line)
        if m:
            needed[m.group(2)] = tuple(int(x) for x in m.group(1).split("."))
    return needed


def oldest_glibc_version_of(libc, symbols) -> dict:
    """{symbol: oldest version that libc provides it at}: a symbol moved into
    libc (pthread_sigmask, 2.32) keeps its old version for old binaries."""
    out = run(["objdump", "-T", libc]).stdout
    oldest = {}
    for line in out.splitlines():
        m = re.search(r"\s\(?GLIBC_([\d.]+)\)?\s+(\S+)$", line)
        if m and m.group(2) in symbols and "*UND*" not in line:
            v = tuple(int(x) for x in m.group(1).split("."))
            oldest[m.group(2)] = min(v, oldest.get(m.group(2), v))
    return oldest


def assert_runs_on_old_glibc(extension, compiler):
    """Every glibc function the extension calls existed in glibc 2.17, so a
    build on the manylinux2014 image links (its tag follows from there)."""
    libc = subprocess.run([compiler, "-print-file-name=libc.so.6"], capture_output=True, text=True,
                          env=tool_env()).stdout.strip()
    needed = glibc_versions_needed(extension)
    assert needed, "objdump found no glibc symbols: the check would prove nothing"
    oldest = oldest_glibc_version_of(libc, set(needed))
    too_new = {s: ".".join(map(str, oldest.get(s, v))) for s, v in needed.items() if oldest.get(s, v) > OLDEST_GLIBC}
    assert too_new == {}, f"glibc functions newer than 2.17 (use syscall() instead): {too_new}"


def test_extension_needs_nothing_newer_than_glibc_2_17(dist, tmp_path):
    root = unpack_wheel(dist.wheel, tmp_path)
    assert_runs_on_old_glibc(root / "pycontain/_nsexec.abi3.so", "gcc")


def test_report_sizes(dist, capsys):
    """Not a limit, a record: the sizes go into the lane's output."""
    with zipfile.ZipFile(dist.wheel) as z:
        sizes = {i.filename: i.file_size for i in z.infolist() if i.filename.startswith("pycontain/_")}
    with capsys.disabled():
        print(f"\nwheel {dist.wheel.name}: {dist.wheel.stat().st_size} bytes; sdist: {dist.sdist.stat().st_size} bytes; "
              + ", ".join(f"{n.split('/')[-1]} {s}" for n, s in sorted(sizes.items()) if not n.endswith(".py")))
    # The static programs are libc-free: a static glibc one is ~700 KB.
    for name in STATIC_PROGRAMS:
        assert sizes[name] < 64 * 1024, f"{name} is {sizes[name]} bytes"
