"""Seccomp: docker/OCI JSON profiles compiled to classic BPF by libseccomp.

    profile = seccomp.load_profile("default")        # or "unconfined", a path, a dict
    bpf = seccomp.filter_for(profile, caps)          # bytes of struct sock_filter[]

The launcher loads the bytes as its last step before exec (LaunchPlan.seccomp_bpf).

libseccomp (the system's libseccomp.so.2, through ctypes) resolves syscall
names per architecture and builds the filter, including the architecture check
at its top; pycontain keeps no syscall table of its own. Compiling the default
profile takes milliseconds, so the bytes are cached in memory and on disk
under the store root (cache/seccomp/), keyed by the rules that apply (after
docker's includes/excludes on capabilities, architecture and kernel version),
the architecture, the optimisation level and the libseccomp version: a
container start normally pays one dict lookup.

Profile semantics follow docker (moby/profiles/seccomp) and runc:
- rules whose `includes` (caps, arches, minKernel) do not match, or whose
  `excludes` do, are left out; capability names there are "CAP_*";
- syscall names libseccomp does not know are skipped, as docker does;
- several conditions on one argument become separate rules (OR), conditions on
  different arguments one rule (AND), as runc does;
- a rule whose action equals the default action is dropped (libseccomp refuses it);
- a syscall numbered above every one the profile names gets ENOSYS, not the
  default errno (runc's patch), so libc falls back as on an older kernel;
- SCMP_ACT_ERRNO without errnoRet returns the profile's defaultErrnoRet, else EPERM.
Every problem in a profile is a ConfigError raised before anything is created.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno as _errno
import functools
import hashlib
import json
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, ContainerError
from . import capabilities
from .arch import native_arch

# ---- libseccomp's constants (seccomp.h; stable ABI since 2.x) ----------------

SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_ACT_KILL_THREAD = 0x00000000
SCMP_ACT_TRAP = 0x00030000
SCMP_ACT_ERRNO = 0x00050000
SCMP_ACT_TRACE = 0x7FF00000
SCMP_ACT_LOG = 0x7FFC0000
SCMP_ACT_ALLOW = 0x7FFF0000

SCMP_FLTATR_ACT_BADARCH = 2
SCMP_FLTATR_CTL_NNP = 3
SCMP_FLTATR_CTL_OPTIMIZE = 8

OPERATORS = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}
# Actions a profile may name. SCMP_ACT_NOTIFY needs a listener pycontain does not run.
ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP",
           "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_LOG", "SCMP_ACT_ALLOW")
# Filter flags of the OCI format. The launcher loads every filter with no
# flags: LOG only adds audit records and SPEC_ALLOW would turn off a Spectre
# mitigation, so leaving them out is never looser. Others are refused.
IGNORED_FLAGS = ("SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC")

# An architecture's names: libseccomp's, and Go's (used by docker's `arches`).
GOARCH = {"x86_64": "amd64", "x86": "386", "x32": "x32", "aarch64": "arm64", "arm": "arm"}
# Sub-architectures a native filter also covers when a profile gives no archMap.
SUBARCHES = {"x86_64": ("x86", "x32"), "aarch64": ("arm",)}
OPTIMIZE_LINEAR, OPTIMIZE_TREE = 1, 2
# What filter_for() builds unless told: the binary tree, about 3x cheaper for
# the kernel to load than the linear list (bench/bench_seccomp.py measures it).
DEFAULT_OPTIMIZE = OPTIMIZE_TREE

DEFAULT_PROFILE_FILE = "default_seccomp.json"


class _ArgCmp(ctypes.Structure):
    """struct scmp_arg_cmp."""

    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


class SeccompUnavailable(ContainerError):
    """libseccomp.so.2 is not installed, so no filter can be compiled."""


_lib = None
_lib_lock = threading.Lock()


def _libseccomp():
    global _lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError:
            try:
                lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
            except OSError:
                raise SeccompUnavailable(
                    "seccomp needs the libseccomp library: apt-get install libseccomp2 "
                    "(or run with seccomp='unconfined')") from None
        vp = ctypes.c_void_p
        lib.seccomp_init.argtypes, lib.seccomp_init.restype = [ctypes.c_uint32], vp
        lib.seccomp_release.argtypes, lib.seccomp_release.restype = [vp], None
        lib.seccomp_arch_add.argtypes, lib.seccomp_arch_add.restype = [vp, ctypes.c_uint32], ctypes.c_int
        lib.seccomp_arch_remove.argtypes, lib.seccomp_arch_remove.restype = [vp, ctypes.c_uint32], ctypes.c_int
        lib.seccomp_arch_native.argtypes, lib.seccomp_arch_native.restype = [], ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
        lib.seccomp_syscall_resolve_name_arch.restype = ctypes.c_int
        lib.seccomp_rule_add_array.argtypes = [vp, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                               ctypes.POINTER(_ArgCmp)]
        lib.seccomp_rule_add_array.restype = ctypes.c_int
        lib.seccomp_attr_set.argtypes, lib.seccomp_attr_set.restype = [vp, ctypes.c_int, ctypes.c_uint32], ctypes.c_int
        lib.seccomp_export_bpf.argtypes, lib.seccomp_export_bpf.restype = [vp, ctypes.c_int], ctypes.c_int
        lib.seccomp_version.argtypes, lib.seccomp_version.restype = [], ctypes.POINTER(_Version)
        _lib = lib
        return lib


def libseccomp_version() -> tuple:
    v = _libseccomp().seccomp_version().contents
    return (v.major, v.minor, v.micro)


# ---- profiles -------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """A validated seccomp profile. `data` is docker's/OCI's JSON as a dict;
    `digest` identifies it for the cache; `source` says where it came from."""

    data: dict
    digest: str
    source: str

    @functools.cached_property
    def capability_names(self) -> frozenset:
        """Capabilities that decide whether some rule applies (computed once:
        filter_for() needs it on every start)."""
        names = set()
        for rule in self.data.get("syscalls") or ():
            for key in ("includes", "excludes"):
                names.update((rule.get(key) or {}).get("caps") or ())
        return frozenset(n[4:] for n in names)


UNCONFINED = "unconfined"
_default_profile = None


def default_profile() -> Profile:
    global _default_profile
    if _default_profile is None:
        text = (Path(__file__).parent / DEFAULT_PROFILE_FILE).read_text()
        _default_profile = _validated(json.loads(text), "the default profile")
    return _default_profile


def load_profile(spec) -> Profile | None:
    """"default", "unconfined" (returns None: no filter), a path to a JSON
    profile, or the profile as a dict. Raises ConfigError on any problem."""
    if spec is None or spec in ("default", "builtin"):
        return default_profile()
    if spec == UNCONFINED:
        return None
    if isinstance(spec, Profile):
        return spec
    if isinstance(spec, dict):
        return _validated(spec, "the seccomp profile")
    if isinstance(spec, (str, os.PathLike)):
        path = os.fspath(spec)
        try:
            with open(path, "rb") as f:
                raw = f.read(16 << 20)
        except OSError as e:
            raise ConfigError(f"cannot read seccomp profile {path}: {e.strerror}") from None
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise ConfigError(f"seccomp profile {path} is not valid JSON: {e}") from None
        except RecursionError:
            raise ConfigError(f"seccomp profile {path} is nested too deeply to be a profile") from None
        return _validated(data, f"seccomp profile {path}")
    raise ConfigError(f"seccomp must be 'default', 'unconfined', a path or a dict, not {type(spec).__name__}")


def _validated(data, where: str) -> Profile:
    def bad(msg):
        raise ConfigError(f"{where}: {msg}")

    if not isinstance(data, dict):
        bad("expected a JSON object")
    action = data.get("defaultAction")
    if action is None:
        bad("defaultAction is missing")
    _check_action(action, bad)
    _check_errno(data.get("defaultErrnoRet"), "defaultErrnoRet", bad)
    for key in ("architectures", "flags"):
        v = data.get(key)
        if v is not None and (not isinstance(v, list) or not all(isinstance(a, str) for a in v)):
            bad(f"{key} must be a list of strings")
    for a in data.get("architectures") or ():
        _check_arch(a, bad)
    for m in data.get("archMap") or ():
        if not isinstance(m, dict) or not isinstance(m.get("architecture"), str):
            bad("archMap entries need an architecture")
        _check_arch(m["architecture"], bad)
        for a in m.get("subArchitectures") or ():
            _check_arch(a, bad)
    for flag in data.get("flags") or ():
        if flag not in IGNORED_FLAGS:
            bad(f"unsupported flag {flag!r}")
    rules = data.get("syscalls")
    if rules is None:
        rules = []
    if not isinstance(rules, list):
        bad("syscalls must be a list")
    for i, rule in enumerate(rules):
        _check_rule(rule, f"syscalls[{i}]", bad)
    try:
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as e:
        bad(f"not a JSON-like profile: {e}")
    # A private copy: the caller's dict may change later, the digest must not lie.
    return Profile(json.loads(canonical), hashlib.sha256(canonical.encode()).hexdigest(), where)


def _check_action(action, bad):
    if action not in ACTIONS:
        if action == "SCMP_ACT_NOTIFY":
            bad("SCMP_ACT_NOTIFY is not supported (it needs a seccomp agent)")
        bad(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")


def _check_errno(v, what, bad):
    if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 0xFFFF):
        bad(f"{what} must be a number from 0 to 65535")


def _check_arch(name, bad):
    if not name.startswith("SCMP_ARCH_"):
        bad(f"unknown architecture {name!r}")
    if _libseccomp().seccomp_arch_resolve_name(name[10:].lower().encode()) == 0:
        bad(f"unknown architecture {name!r}")


def _check_rule(rule, where, bad):
    if not isinstance(rule, dict):
        bad(f"{where} must be an object")
    names = rule.get("names")
    if names is None and "name" in rule:  # the old single-name form
        names = [rule["name"]]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        bad(f"{where}: names must be a non-empty list of syscall names")
    if "action" not in rule:
        bad(f"{where}: action is missing")
    _check_action(rule["action"], lambda m: bad(f"{where}: {m}"))
    _check_errno(rule.get("errnoRet"), f"{where}.errnoRet", bad)
    args = rule.get("args") or []
    if not isinstance(args, list):
        bad(f"{where}: args must be a list")
    for a in args:
        if not isinstance(a, dict):
            bad(f"{where}: each of args must be an object")
        idx = a.get("index")
        if not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx <= 5:
            bad(f"{where}: argument index must be 0 to 5, not {idx!r}")
        if a.get("op") not in OPERATORS:
            bad(f"{where}: unknown operator {a.get('op')!r} (one of {', '.join(OPERATORS)})")
        for k in ("value", "valueTwo"):
            v = a.get(k, 0)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 1 << 64:
                bad(f"{where}: argument {k} must be a number from 0 to 2^64-1")
    for key in ("includes", "excludes"):
        cond = rule.get(key) or {}
        if not isinstance(cond, dict):
            bad(f"{where}: {key} must be an object")
        for c in cond.get("caps") or ():
            if not isinstance(c, str) or not c.startswith("CAP_") or c[4:] not in capabilities.NUMBERS:
                bad(f"{where}: unknown capability {c!r} in {key}")
        mk = cond.get("minKernel")
        if mk is not None and _parse_kernel(mk) is None:
            bad(f"{where}: invalid minKernel {mk!r}")


def _parse_kernel(v) -> tuple | None:
    if not isinstance(v, str):
        return None
    parts = v.split("-")[0].split(".")
    try:
        nums = tuple(int(p) for p in parts[:2])
    except ValueError:
        return None
    return nums if len(nums) == 2 else None


_host_kernel = None


def host_kernel() -> tuple:
    global _host_kernel
    if _host_kernel is None:
        _host_kernel = _parse_kernel(".".join(os.uname().release.split(".")[:2])) or (0, 0)
    return _host_kernel


# ---- which rules apply -------------------------------------------------------------


def _applies(rule, caps: frozenset, arch: str, kernel: tuple) -> bool:
    goarch = GOARCH.get(arch, arch)
    inc = rule.get("includes") or {}
    exc = rule.get("excludes") or {}
    if inc.get("caps") and not all(c[4:] in caps for c in inc["caps"]):
        return False
    if inc.get("arches") and not (goarch in inc["arches"] or arch in inc["arches"]):
        return False
    if inc.get("minKernel") and kernel < _parse_kernel(inc["minKernel"]):
        return False
    if exc.get("caps") and any(c[4:] in caps for c in exc["caps"]):
        return False
    if exc.get("arches") and (goarch in exc["arches"] or arch in exc["arches"]):
        return False
    return True


def _architectures(data, arch: str) -> list:
    """The architectures the filter accepts: arch first, then the
    sub-architectures the profile lists for it (docker's archMap), or the
    ones of its family named in `architectures` (OCI)."""
    token = f"SCMP_ARCH_{arch.upper()}"
    for m in data.get("archMap") or ():
        if m["architecture"] == token:
            return [arch] + [a[10:].lower() for a in (m.get("subArchitectures") or ())]
    if data.get("architectures"):
        listed = {a[10:].lower() for a in data["architectures"]}
        return [arch] + [a for a in SUBARCHES.get(arch, ()) if a in listed]
    if data.get("archMap"):
        return [arch]
    return [arch] + list(SUBARCHES.get(arch, ()))


def _action_value(action, errno_ret, default_errno) -> int:
    if action in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return SCMP_ACT_KILL_THREAD
    if action == "SCMP_ACT_KILL_PROCESS":
        return SCMP_ACT_KILL_PROCESS
    if action == "SCMP_ACT_TRAP":
        return SCMP_ACT_TRAP
    if action == "SCMP_ACT_ERRNO":
        e = errno_ret if errno_ret is not None else (default_errno if default_errno is not None else _errno.EPERM)
        return SCMP_ACT_ERRNO | (e & 0xFFFF)
    if action == "SCMP_ACT_TRACE":
        e = errno_ret if errno_ret is not None else (default_errno if default_errno is not None else _errno.EPERM)
        return SCMP_ACT_TRACE | (e & 0xFFFF)
    if action == "SCMP_ACT_LOG":
        return SCMP_ACT_LOG
    return SCMP_ACT_ALLOW


def effective_rules(profile: Profile, caps, arch: str | None = None, kernel: tuple | None = None) -> dict:
    """The profile reduced to what one container gets: default action,
    architectures and the rules that apply. Its JSON is the cache key."""
    arch = arch or native_arch()
    kernel = kernel or host_kernel()
    caps = frozenset(caps) & profile.capability_names
    data = profile.data
    default_errno = data.get("defaultErrnoRet")
    default = _action_value(data["defaultAction"], default_errno, None)
    rules = []
    for rule in data.get("syscalls") or ():
        if not _applies(rule, caps, arch, kernel):
            continue
        names = rule.get("names") or [rule["name"]]
        action = _action_value(rule["action"], rule.get("errnoRet"), default_errno)
        if action == default:
            continue
        args = [(a["index"], OPERATORS[a["op"]], a.get("value", 0), a.get("valueTwo", 0))
                for a in rule.get("args") or ()]
        rules.append((sorted(names), action, args))
    known = sorted({n for rule in data.get("syscalls") or () for n in (rule.get("names") or [rule.get("name")]) if n})
    return {"arch": arch, "arches": _architectures(data, arch), "default": default, "rules": rules,
            "known": known}


# ---- compiling ------------------------------------------------------------------------


def compile_rules(eff: dict, optimize: int = OPTIMIZE_TREE) -> bytes:
    """BPF bytes (struct sock_filter[]) for effective_rules() output."""
    lib = _libseccomp()
    ctx = lib.seccomp_init(eff["default"])
    if not ctx:
        raise ContainerError("seccomp_init failed")
    try:
        # Not this process's business: the launcher sets no_new_privs itself.
        lib.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)
        # A syscall of an architecture the filter does not cover (e.g. a 32-bit
        # ABI left out of the profile) ends the process: never silently allowed.
        lib.seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)
        if optimize == OPTIMIZE_TREE and libseccomp_version() >= (2, 5, 0):
            rc = lib.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, OPTIMIZE_TREE)
            if rc < 0:
                raise ContainerError(f"libseccomp: cannot build a binary tree filter: {os.strerror(-rc)}")
        tokens = []
        for a in eff["arches"]:
            t = lib.seccomp_arch_resolve_name(a.encode())
            if t == 0:
                raise ConfigError(f"seccomp: unknown architecture {a!r}")
            tokens.append(t)
        native = lib.seccomp_arch_native()
        for t in tokens:
            if t != native:
                rc = lib.seccomp_arch_add(ctx, t)
                if rc < 0 and rc != -_errno.EEXIST:
                    raise ConfigError(f"seccomp: cannot add architecture: {os.strerror(-rc)}")
        if native not in tokens:
            lib.seccomp_arch_remove(ctx, native)
        # Rules take the native architecture's numbers (or libseccomp's
        # pseudo-numbers for names it lacks); libseccomp maps them by name
        # to every architecture of the filter.
        for names, action, args in eff["rules"]:
            for name in names:
                nr = lib.seccomp_syscall_resolve_name_arch(native, name.encode())
                if nr == -1:  # __NR_SCMP_ERROR: no such syscall anywhere (docker skips it)
                    continue
                for cmps in _arg_groups(args):
                    arr = (_ArgCmp * max(1, len(cmps)))(*[_ArgCmp(i, op, a, b) for i, op, a, b in cmps])
                    rc = lib.seccomp_rule_add_array(ctx, action, nr, len(cmps), arr)
                    if rc < 0:
                        raise ConfigError(f"seccomp: rule for {name!r} refused by libseccomp: {os.strerror(-rc)}")
        bpf = _export(lib, ctx)
        if eff["default"] != SCMP_ACT_ALLOW and eff.get("known"):
            bpf = _newer_syscalls_enosys(lib, tokens, eff["known"]) + bpf
        return bpf
    finally:
        lib.seccomp_release(ctx)


# Architectures whose libseccomp token is the kernel's AUDIT_ARCH value
# (x32 is not one: its syscalls say AUDIT_ARCH_X86_64, with bit 30 set).
_AUDIT_ARCHES = {0xC000003E: "x86_64", 0x40000003: "x86", 0xC00000B7: "aarch64", 0x40000028: "arm"}
_X32_SYSCALL_BIT = 0x40000000
_BPF_LD_W_ABS, _BPF_JEQ_K, _BPF_JGT_K, _BPF_JGE_K, _BPF_JA, _BPF_RET_K = 0x20, 0x15, 0x25, 0x35, 0x05, 0x06


def _newer_syscalls_enosys(lib, tokens, known_names) -> bytes:
    """runc's rule (docker's behaviour): a syscall numbered above every syscall
    the profile names is newer than the profile, so it fails with ENOSYS, not
    the default EPERM, and libc falls back to an older call as it would on an
    older kernel. A few instructions put in front of libseccomp's filter
    (classic BPF jumps are relative, so its program is unchanged)."""
    def ins(code, jt, jf, k):
        return struct.pack("<HBBI", code, jt, jf, k)

    blocks = []
    for token in tokens:
        if token not in _AUDIT_ARCHES:
            continue
        highest = max((lib.seccomp_syscall_resolve_name_arch(token, n.encode()) for n in known_names), default=-1)
        if highest < 0:
            continue
        blocks.append((token, highest))
    if not blocks:
        return b""
    # Layout: ld arch; per architecture [jeq arch; ld nr; (x86_64: jge x32 bit -> out;) jgt highest -> enosys;
    # ld arch again]; ja out; enosys: ret ERRNO(ENOSYS); out: libseccomp's filter.
    body = []
    for token, highest in blocks:
        block = [("ld_nr",), ("jgt", highest)]
        if token == 0xC000003E:
            block.insert(1, ("jge_x32",))
        block.append(("ld_arch",))
        body.append((token, block))
    out = [ins(_BPF_LD_W_ABS, 0, 0, 4)]
    # Instruction positions are resolved by counting: enosys sits after every block and the ja.
    total = 1 + sum(1 + len(b) for _, b in body) + 1
    enosys_at, end_at = total, total + 1
    pos = 1
    for token, block in body:
        out.append(ins(_BPF_JEQ_K, 0, len(block), token))  # not this arch: skip its block
        pos += 1
        for step in block:
            if step[0] == "ld_nr":
                out.append(ins(_BPF_LD_W_ABS, 0, 0, 0))
            elif step[0] == "ld_arch":
                out.append(ins(_BPF_LD_W_ABS, 0, 0, 4))
            elif step[0] == "jge_x32":
                out.append(ins(_BPF_JGE_K, end_at - pos - 1, 0, _X32_SYSCALL_BIT))
            else:
                out.append(ins(_BPF_JGT_K, enosys_at - pos - 1, 0, step[1]))
            pos += 1
    out.append(ins(_BPF_JA, 0, 0, end_at - pos - 1))
    out.append(ins(_BPF_RET_K, 0, 0, SCMP_ACT_ERRNO | _errno.ENOSYS))
    return b"".join(out)


def _arg_groups(args):
    """runc's rule: conditions on distinct arguments are ANDed in one rule; when
    an argument repeats, each condition is a rule of its own (ORed)."""
    if not args:
        return [[]]
    indexes = [a[0] for a in args]
    if len(set(indexes)) == len(indexes):
        return [list(args)]
    return [[a] for a in args]


def _export(lib, ctx) -> bytes:
    fd = os.memfd_create("pycontain-seccomp", os.MFD_CLOEXEC)
    try:
        rc = lib.seccomp_export_bpf(ctx, fd)
        if rc < 0:
            raise ContainerError(f"seccomp_export_bpf: {os.strerror(-rc)}")
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


# ---- the cache --------------------------------------------------------------------------

_memory_cache: dict = {}
_cache_lock = threading.Lock()


def _cache_dir(root) -> Path:
    from .._paths import default_root

    return Path(root or default_root()) / "cache" / "seccomp"


def filter_for(profile: Profile | None, caps, arch: str | None = None, *,
               optimize: int | None = None, root=None) -> bytes | None:
    """The compiled filter for a container with these capabilities (names), or
    None for no filter. Cached in memory and on disk under the store root."""
    if profile is None:
        return None
    arch = arch or native_arch()
    optimize = optimize or DEFAULT_OPTIMIZE
    relevant = frozenset(caps) & profile.capability_names
    mkey = (profile.digest, relevant, arch, optimize, str(root or ""))
    bpf = _memory_cache.get(mkey)
    if bpf is not None:
        return bpf
    eff = effective_rules(profile, relevant, arch)
    blob = json.dumps([eff, optimize, libseccomp_version()], sort_keys=True, separators=(",", ":"))
    key = hashlib.sha256(blob.encode()).hexdigest()
    path = _cache_dir(root) / f"{key}.{arch}.bpf"
    bpf = _load_cached(path)
    if bpf is None:
        bpf = compile_rules(eff, optimize)
        _store(path, bpf)
    with _cache_lock:
        if len(_memory_cache) > 256:
            _memory_cache.clear()
        _memory_cache[mkey] = bpf
    return bpf


_DIGEST_SIZE = 32


def _load_cached(path: Path) -> bytes | None:
    """A cached filter, or None when absent or damaged. Each file ends with the
    sha256 of the filter: a torn or corrupted file is never loaded."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        return None
    bpf, digest = raw[:-_DIGEST_SIZE], raw[-_DIGEST_SIZE:]
    if not bpf or len(bpf) % 8 or hashlib.sha256(bpf).digest() != digest:
        return None
    return bpf


def _store(path: Path, bpf: bytes):
    """Written under a temp name and renamed: a reader never sees half a filter.
    The cache is an optimisation: failing to write it is not an error."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(tmp, "wb") as f:
            f.write(bpf + hashlib.sha256(bpf).digest())
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def clear_memory_cache():
    _memory_cache.clear()


# ---- docker's --security-opt ----------------------------------------------------------------


@dataclass(frozen=True)
class SecurityOptions:
    seccomp: object = None              # None: not given
    no_new_privileges: bool | None = None


def parse_security_opt(opts) -> SecurityOptions:
    """docker's --security-opt values: seccomp=FILE|unconfined|default,
    no-new-privileges[:true|false] (also with '='). Others are refused."""
    seccomp = None
    nnp = None
    if isinstance(opts, str):
        opts = [opts]
    for opt in opts or ():
        if not isinstance(opt, str):
            raise ConfigError(f"invalid security option {opt!r}")
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")
        key = key.strip()
        if key == "seccomp":
            if not value:
                raise ConfigError("security option seccomp needs a value: seccomp=FILE|unconfined")
            seccomp = value
        elif key == "no-new-privileges":
            if not sep:
                nnp = True
            elif value.lower() in ("true", "1"):
                nnp = True
            elif value.lower() in ("false", "0"):
                nnp = False
            else:
                raise ConfigError(f"invalid value {value!r} for no-new-privileges (true or false)")
        elif key in ("apparmor", "label"):
            raise ConfigError(f"security option {key} is not supported by pycontain")
        else:
            raise ConfigError(f"invalid security option {opt!r} (seccomp=FILE|unconfined, no-new-privileges)")
    return SecurityOptions(seccomp, nnp)


# ---- loading in this process (tests and benchmarks) ---------------------------------------

_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}
_PR_SET_NO_NEW_PRIVS = 38


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_filter_in_this_thread(bpf: bytes) -> None:
    """Sets no_new_privs and loads the filter into the calling thread, for good.
    Only for tests and benchmarks, in a process forked for it: containers get
    their filter from the launcher, last before exec."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if libc.syscall(_SYS_SECCOMP[native_arch()], 1, 0, ctypes.byref(prog)) != 0:  # SECCOMP_SET_MODE_FILTER
        e = ctypes.get_errno()
        raise OSError(e, f"seccomp: {os.strerror(e)}")
