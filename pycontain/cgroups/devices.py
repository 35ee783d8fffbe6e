"""Which device nodes a container may open or make: docker's default rules, and
on cgroup v2 the eBPF program that enforces them.

cgroup v1 has a `devices` controller that takes the rules as text (v1.py
writes DEVICE_RULES to devices.allow). cgroup v2 has none: the kernel runs a
BPF_PROG_TYPE_CGROUP_DEVICE program, attached to the cgroup, on every open
and mknod of a device node, and denies unless it returns 1. The program is
assembled here by hand from the same rules, the way runc does it
(libcontainer/cgroups/devices/devicefilter.go) and crun (src/libcrun/ebpf.c):

    r2 = ctx->access_type & 0xffff      device type: BPF_DEVCG_DEV_BLOCK 1, _CHAR 2
    r3 = ctx->access_type >> 16         access asked: BPF_DEVCG_ACC_MKNOD 1, _READ 2, _WRITE 4
    r4 = ctx->major; r5 = ctx->minor
    per rule: if type, access (a subset of the rule's), major and minor match: return 1
    return 0                            default deny

Every rule allows; one rule must grant the whole access asked for (an O_RDWR
open needs a rule with both r and w), as in v1's devices controller.
"""
from __future__ import annotations

import ctypes
import errno
import functools
import os
import struct
from dataclasses import dataclass

from ..errors import ConfigError
from ..security.arch import native_arch
from .base import CgroupError

# docker's default device rules (runc's AllowedDevices): mknod of anything,
# but read/write only of the harmless character devices and ptys. Without
# this, CAP_MKNOD (a docker default) would let a container open the host's disks.
DEVICE_RULES = (
    "c *:* m", "b *:* m",
    "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",   # null zero full random urandom
    "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm",               # tty console ptmx pts/*
)

# The kernel's limits on device numbers (MINORBITS = 20; majors are 12 bits).
MAX_MAJOR, MAX_MINOR = (1 << 12) - 1, (1 << 20) - 1


@dataclass(frozen=True)
class DeviceRule:
    """One allow rule: kind "c", "b" or "a" (both), major/minor None for any."""

    kind: str
    major: int | None
    minor: int | None
    access: str

    @classmethod
    def parse(cls, text: str) -> "DeviceRule":
        """v1's devices.allow syntax: "c 1:3 rwm", "c 136:* rw", "a *:* m"."""
        try:
            kind, numbers, access = text.split()
            major, minor = numbers.split(":")
            return rule(kind, None if major == "*" else int(major), None if minor == "*" else int(minor), access)
        except ValueError:
            raise ConfigError(f"invalid device rule {text!r}: expected e.g. 'c 1:3 rwm'") from None

    def __str__(self):
        star = lambda n: "*" if n is None else str(n)  # noqa: E731
        return f"{self.kind} {star(self.major)}:{star(self.minor)} {self.access}"


def rule(kind: str, major: int | None, minor: int | None, access: str) -> DeviceRule:
    """A validated DeviceRule; ConfigError names what is wrong."""
    text = f"{kind} {'*' if major is None else major}:{'*' if minor is None else minor} {access}"
    if kind not in ("c", "b", "a"):
        raise ConfigError(f"invalid device rule {text!r}: the type is c, b or a")
    for what, n, top in (("major", major, MAX_MAJOR), ("minor", minor, MAX_MINOR)):
        if n is not None and (not isinstance(n, int) or not 0 <= n <= top):
            raise ConfigError(f"invalid device rule {text!r}: {what} {n!r} is not a number from 0 to {top}")
    if not access or not set(access) <= set("rwm") or len(set(access)) != len(access):
        raise ConfigError(f"invalid device rule {text!r}: the access is a combination of r, w and m")
    return DeviceRule(kind, major, minor, "".join(sorted(access, key="rwm".index)))


def default_rules() -> list:
    return [DeviceRule.parse(r) for r in DEVICE_RULES]


# ---- the program -----------------------------------------------------------------------

# include/uapi/linux/bpf.h
_DEV_TYPE = {"b": 1, "c": 2}                    # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
_ACCESS = {"m": 1, "r": 2, "w": 4}              # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE
_LDX_W = 0x61                                   # BPF_LDX | BPF_MEM | BPF_W:   dst = *(u32 *)(src + off)
_AND32_K, _RSH32_K = 0x54, 0x74                 # BPF_ALU | BPF_AND/BPF_RSH | BPF_K
_MOV32_K, _MOV32_X = 0xb4, 0xbc                 # BPF_ALU | BPF_MOV | BPF_K/BPF_X
_JNE_K, _JNE_X = 0x55, 0x5d                     # BPF_JMP | BPF_JNE | BPF_K/BPF_X: if dst != ... goto pc+1+off
_EXIT = 0x95                                    # BPF_JMP | BPF_EXIT


def _insn(code, dst=0, src=0, off=0, imm=0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


@functools.lru_cache(maxsize=16)     # most containers share docker's list: assembled once
def _assemble_cached(rules: tuple) -> bytes:
    return assemble(rules)


def assemble(rules) -> bytes:
    """The device program (struct bpf_insn array) allowing exactly `rules`."""
    prog = [
        _insn(_LDX_W, 2, 1, 0), _insn(_AND32_K, 2, imm=0xFFFF),    # r2: type
        _insn(_LDX_W, 3, 1, 0), _insn(_RSH32_K, 3, imm=16),        # r3: access
        _insn(_LDX_W, 4, 1, 4),                                     # r4: major
        _insn(_LDX_W, 5, 1, 8),                                     # r5: minor
    ]
    for r in rules:
        # each failed test jumps past the rest of the block, to the next rule
        tests = []
        if r.kind != "a":
            tests.append((_JNE_K, 2, 0, _DEV_TYPE[r.kind]))
        if set(r.access) != set("rwm"):       # (access & allowed) != access: asks for more
            mask = sum(_ACCESS[a] for a in r.access)
            tests += [(_MOV32_X, 1, 3, 0), (_AND32_K, 1, 0, mask), (_JNE_X, 1, 3, 0)]
        if r.major is not None:
            tests.append((_JNE_K, 4, 0, r.major))
        if r.minor is not None:
            tests.append((_JNE_K, 5, 0, r.minor))
        block = len(tests) + 2                # the tests, then "return 1"
        for i, (code, dst, src, imm) in enumerate(tests):
            off = block - i - 1 if code in (_JNE_K, _JNE_X) else 0
            prog.append(_insn(code, dst, src, off, imm))
        prog += [_insn(_MOV32_K, 0, imm=1), _insn(_EXIT)]
    prog += [_insn(_MOV32_K, 0, imm=0), _insn(_EXIT)]
    return b"".join(prog)


@functools.lru_cache(maxsize=1)
def can_filter() -> bool:
    """True when this process may load a device filter: root in the initial
    user namespace. In another user namespace bpf(2) refuses it (runc skips
    the filter there too) and the mounts that namespace owns are nodev anyway."""
    if os.geteuid() != 0:
        return False
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() == ["0", "0", "4294967295"]
    except OSError:
        return False


# ---- loading and attaching (bpf(2)) ------------------------------------------------------

_SYS_BPF = {"x86_64": 321, "aarch64": 280}
_BPF_PROG_LOAD, _BPF_PROG_ATTACH, _BPF_PROG_QUERY = 5, 8, 16
_BPF_PROG_TYPE_CGROUP_DEVICE = 15
_BPF_CGROUP_DEVICE = 6                          # the attach type
_BPF_F_ALLOW_MULTI = 2
_LICENSE = b"Apache-2.0\0"                      # the program calls no GPL-only helper
_NAME = b"pycontain_dev"
_LOG_SIZE = 1 << 16
_libc = None


def _bpf(cmd: int, attr) -> int:
    """bpf(cmd, attr): attr is a ctypes buffer (the kernel may write into it)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    nr = _SYS_BPF.get(native_arch())
    if nr is None:
        raise CgroupError(errno.ENOSYS, f"the cgroup v2 device filter does not know bpf(2) on {native_arch()}")
    r = _libc.syscall(ctypes.c_long(nr), ctypes.c_long(cmd), attr, ctypes.c_long(ctypes.sizeof(attr)))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def _attr(*fields) -> ctypes.Array:
    data = struct.pack(*fields)
    return ctypes.create_string_buffer(data, len(data))


def load(program: bytes) -> int:
    """BPF_PROG_LOAD: the kernel's verifier checks `program`; returns its fd
    (O_CLOEXEC, the caller closes it). On a refusal, loads it again with the
    verifier's log, for a message that says why."""
    insns = ctypes.create_string_buffer(program, len(program))
    lic = ctypes.create_string_buffer(_LICENSE, len(_LICENSE))

    def attr(log=None):
        # union bpf_attr, BPF_PROG_LOAD: prog_type insn_cnt insns license log_level
        # log_size log_buf kern_version prog_flags prog_name[16]
        return _attr("<IIQQIIQII16s", _BPF_PROG_TYPE_CGROUP_DEVICE, len(program) // 8,
                     ctypes.addressof(insns), ctypes.addressof(lic), 1 if log else 0,
                     len(log) if log else 0, ctypes.addressof(log) if log else 0, 0, 0, _NAME)
    try:
        return _bpf(_BPF_PROG_LOAD, attr())
    except CgroupError:
        raise
    except OSError as e:
        err = e.errno
    if err in (errno.EPERM, errno.EACCES):
        raise CgroupError(err, "cannot load the cgroup v2 device filter: loading a bpf(2) program needs "
                               f"CAP_SYS_ADMIN or CAP_BPF ({os.strerror(err)})")
    log = ctypes.create_string_buffer(_LOG_SIZE)
    try:
        return _bpf(_BPF_PROG_LOAD, attr(log))
    except OSError:
        pass
    why = [line for line in log.value.decode(errors="replace").splitlines()
           if line.strip() and not line.startswith(("processed ", "verification time"))]
    raise CgroupError(err, f"the kernel refused the cgroup v2 device filter: {os.strerror(err)}"
                           + (f" (verifier: {'; '.join(why[-2:])})" if why else ""))


# Loaded programs by rule list, kept for the life of the process: the kernel's
# load (verifier and JIT) is ~0.4 ms, and one loaded program can be attached
# to any number of cgroups. Most containers share docker's list, so a handful
# of descriptors (anon_inode:bpf-prog) serve every start.
_loaded: dict = {}
_MAX_LOADED = 8


def _program_fd(rules: tuple) -> tuple:
    """(fd, keep): keep is False for an fd the caller must close."""
    fd = _loaded.get(rules)
    if fd is not None:
        return fd, True
    fd = load(_assemble_cached(rules))
    if len(_loaded) < _MAX_LOADED:
        _loaded.setdefault(rules, fd)
        if _loaded[rules] == fd:
            return fd, True
    return fd, False


def attach_filter(cgroup_path: str, rules) -> None:
    """Attaches the program for `rules` to the cgroup directory
    (BPF_PROG_ATTACH, BPF_F_ALLOW_MULTI as runc and crun do: a filter the
    parent has stays in force too). Removing the cgroup detaches it."""
    prog_fd, keep = _program_fd(tuple(rules))
    try:
        try:
            cg_fd = os.open(cgroup_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise CgroupError(e.errno, f"cannot open {cgroup_path}: {e.strerror}") from None
        try:
            # target_fd attach_bpf_fd attach_type attach_flags
            _bpf(_BPF_PROG_ATTACH, _attr("<IIII", cg_fd, prog_fd, _BPF_CGROUP_DEVICE, _BPF_F_ALLOW_MULTI))
        except OSError as e:
            raise CgroupError(e.errno, f"cannot attach the device filter to {cgroup_path}: {e.strerror}") from None
        finally:
            os.close(cg_fd)
    finally:
        if not keep:
            os.close(prog_fd)


def attached_filters(cgroup_path: str) -> int:
    """How many device programs are attached to the cgroup itself (BPF_PROG_QUERY)."""
    fd = os.open(cgroup_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # target_fd attach_type query_flags attach_flags prog_ids prog_cnt: the kernel fills in prog_cnt
        attr = _attr("<IIIIQI4x", fd, _BPF_CGROUP_DEVICE, 0, 0, 0, 0)
        _bpf(_BPF_PROG_QUERY, attr)
        return struct.unpack_from("<I", attr, 24)[0]
    finally:
        os.close(fd)
