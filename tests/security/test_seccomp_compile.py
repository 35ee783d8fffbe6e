"""The compiled filter itself: its architecture check, the kernel's answers
for the tree and the linear form, and the cache."""
import ctypes
import errno
import os
import struct

import pytest

from pycontain.security import capabilities, seccomp

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
BPF_LD_W_ABS, BPF_JMP_JEQ_K = 0x20, 0x15


def instructions(bpf):
    return [struct.unpack("<HBBI", bpf[i:i + 8]) for i in range(0, len(bpf), 8)]


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_filter_starts_with_the_architecture_check(arch):
    bpf = seccomp.compile_rules(seccomp.effective_rules(seccomp.default_profile(), capabilities.DEFAULT, arch))
    assert len(bpf) % 8 == 0 and len(bpf) // 8 > 100
    ins = instructions(bpf)
    assert ins[0] == (BPF_LD_W_ABS, 0, 0, 4)  # load seccomp_data.arch
    arch_checks = {k for code, _, _, k in ins[:8] if code == BPF_JMP_JEQ_K}
    assert AUDIT_ARCH[arch] in arch_checks
    other = ({"x86_64", "aarch64"} - {arch}).pop()
    assert AUDIT_ARCH[other] not in arch_checks


def _kernel_answers(bpf, calls):
    """Loads bpf in a forked child and returns what each syscall returned (errno or 0)."""
    libc = ctypes.CDLL(None, use_errno=True)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            seccomp.install_filter_in_this_thread(bpf)
            out = []
            for nr, args in calls:
                rc = libc.syscall(ctypes.c_long(nr), *[ctypes.c_ulong(a & (1 << 64) - 1) for a in args])
                out.append(0 if rc >= 0 else ctypes.get_errno())
            os.write(w, " ".join(map(str, out)).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = os.read(r, 4096).decode()
    os.close(r)
    _, st = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(st) == 0
    return [int(x) for x in data.split()]


@pytest.mark.skipif(seccomp.native_arch() != "x86_64", reason="syscall numbers below are x86_64's")
@pytest.mark.parametrize("optimize", [seccomp.OPTIMIZE_TREE, seccomp.OPTIMIZE_LINEAR])
def test_tree_and_linear_filters_give_the_kernel_the_same_answers(optimize):
    bpf = seccomp.filter_for(seccomp.default_profile(), capabilities.DEFAULT, optimize=optimize)
    getppid, keyctl, clone3, personality, unshare = 110, 250, 435, 135, 272
    calls = [(getppid, ()), (keyctl, (0, -3, 0)), (clone3, (0, 0)), (personality, (0xFFFFFFFF,)),
             (personality, (0x0400000,)), (unshare, (0x10000000,))]
    assert _kernel_answers(bpf, calls) == [0, errno.EPERM, errno.ENOSYS, 0, errno.EPERM, errno.EPERM]


@pytest.mark.skipif(seccomp.native_arch() != "x86_64", reason="syscall numbers below are x86_64's")
def test_syscalls_newer_than_the_profile_get_enosys_like_runc():
    # fchmodat2 (452, Linux 6.6) is newer than every syscall the default profile
    # names: glibc falls back to fchmodat on ENOSYS, but would fail on EPERM.
    path = ctypes.create_string_buffer(b"/nonexistent-pycontain")
    addr = ctypes.addressof(path)
    fchmodat2, futex_waitv = 452, 449
    calls = [(fchmodat2, (-100, addr, 0o644, 0)), (futex_waitv, (0, 0, 0, 0, 0))]
    assert _kernel_answers(seccomp.filter_for(seccomp.default_profile(), capabilities.DEFAULT), calls) == [errno.ENOSYS, errno.EINVAL]
    no_filter = seccomp.compile_rules(seccomp.effective_rules(seccomp.load_profile({"defaultAction": "SCMP_ACT_ALLOW"}), ()))
    if seccomp.host_kernel() >= (6, 6):
        assert _kernel_answers(no_filter, calls)[0] == errno.ENOENT  # the kernel has it


def test_tree_form_is_what_containers_get():
    assert seccomp.DEFAULT_OPTIMIZE == seccomp.OPTIMIZE_TREE
    if seccomp.libseccomp_version() >= (2, 5, 0):
        tree = seccomp.compile_rules(seccomp.effective_rules(seccomp.default_profile(), capabilities.DEFAULT))
        linear = seccomp.compile_rules(seccomp.effective_rules(seccomp.default_profile(), capabilities.DEFAULT),
                                       seccomp.OPTIMIZE_LINEAR)
        assert tree != linear


def test_rules_follow_capabilities():
    p = seccomp.default_profile()
    plain = seccomp.effective_rules(p, capabilities.DEFAULT)
    admin = seccomp.effective_rules(p, capabilities.DEFAULT | {"SYS_ADMIN"})
    names = lambda eff: {n for names, _, _ in eff["rules"] for n in names}  # noqa: E731
    assert "mount" not in names(plain) and "mount" in names(admin)
    assert "clone3" in names(plain)  # as ENOSYS
    clone3 = [a for ns, a, _ in admin["rules"] if "clone3" in ns]
    assert clone3 == [seccomp.SCMP_ACT_ALLOW]
    assert plain["arches"] == ["x86_64", "x86"] or seccomp.native_arch() != "x86_64"


def test_unknown_syscall_names_are_skipped():
    base = {"defaultAction": "SCMP_ACT_ALLOW"}
    with_unknown = dict(base, syscalls=[{"names": ["no_such_syscall"], "action": "SCMP_ACT_ERRNO"}])
    compile_ = lambda d: seccomp.compile_rules(seccomp.effective_rules(seccomp.load_profile(d), ()))  # noqa: E731
    assert compile_(with_unknown) == compile_(base)


def test_conditions_on_one_argument_are_ored_like_runc():
    a, b, c = (0, 4, 1, 0), (0, 4, 2, 0), (1, 4, 3, 0)
    assert seccomp._arg_groups([a, c]) == [[a, c]]
    assert seccomp._arg_groups([a, b]) == [[a], [b]]
    assert seccomp._arg_groups([]) == [[]]


def test_cache_in_memory_and_on_disk(store_root):
    seccomp.clear_memory_cache()
    p = seccomp.default_profile()
    first = seccomp.filter_for(p, capabilities.DEFAULT)
    assert seccomp.filter_for(p, capabilities.DEFAULT) is first  # memory
    files = list((store_root / "cache" / "seccomp").glob("*.bpf"))
    cached = next(f for f in files if seccomp._load_cached(f) == first)
    # A new process reads the disk copy: prove it by planting a different filter there.
    planted = seccomp.compile_rules(seccomp.effective_rules(seccomp.load_profile({"defaultAction": "SCMP_ACT_ALLOW"}), ()))
    seccomp._store(cached, planted)
    seccomp.clear_memory_cache()
    assert seccomp.filter_for(p, capabilities.DEFAULT) == planted
    # A torn or corrupted file is never used: recompiled and rewritten.
    for damage in (lambda b: b[:-3], lambda b: b[:100] + bytes([b[100] ^ 1]) + b[101:], lambda b: b""):
        cached.write_bytes(damage(cached.read_bytes()))
        seccomp.clear_memory_cache()
        assert seccomp.filter_for(p, capabilities.DEFAULT) == first
        assert seccomp._load_cached(cached) == first
    assert not list(cached.parent.glob(".*.tmp"))
    seccomp.clear_memory_cache()


def test_profile_is_a_private_copy():
    d = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}
    p = seccomp.load_profile(d)
    d["syscalls"].append({"names": ["read"], "action": "SCMP_ACT_KILL"})
    assert p.data["syscalls"] == []


def test_capabilities_that_do_not_matter_share_a_cache_entry():
    p = seccomp.default_profile()
    a = seccomp.filter_for(p, capabilities.DEFAULT)
    b = seccomp.filter_for(p, capabilities.DEFAULT | {"NET_ADMIN"})  # no rule names NET_ADMIN
    c = seccomp.filter_for(p, capabilities.DEFAULT | {"SYS_PTRACE"})
    assert a is b and a != c


def test_security_opt_parsing():
    so = seccomp.parse_security_opt(["seccomp=/x.json", "no-new-privileges"])
    assert (so.seccomp, so.no_new_privileges) == ("/x.json", True)
    assert seccomp.parse_security_opt("no-new-privileges=false").no_new_privileges is False
    assert seccomp.parse_security_opt(["seccomp:unconfined"]).seccomp == "unconfined"
