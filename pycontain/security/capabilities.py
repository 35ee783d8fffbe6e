"""Linux capabilities by name, docker's default set, and --cap-add/--cap-drop."""
from ..errors import ConfigError

# Index = capability number (linux/capability.h).
NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL",
    "SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE",
    "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
    "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL",
    "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
    "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)
NUMBERS = {name: i for i, name in enumerate(NAMES)}

# What docker grants a container by default.
DEFAULT = frozenset({
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
    "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
    "AUDIT_WRITE",
})


_last_cap = None
_own = None


def last_cap() -> int:
    """The highest capability number this kernel knows."""
    global _last_cap
    if _last_cap is None:
        try:
            with open("/proc/sys/kernel/cap_last_cap") as f:
                _last_cap = int(f.read())
        except OSError:
            _last_cap = len(NAMES) - 1
    return _last_cap


def own() -> frozenset:
    """The capabilities this process holds (its bounding set): a container
    cannot be given more, so "all" means these."""
    global _own
    if _own is None:
        mask_ = 0
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    mask_ = int(line.split()[1], 16)
        _own = frozenset(n for i, n in enumerate(NAMES[: last_cap() + 1]) if mask_ >> i & 1)
    return _own


def normalize(name: str) -> str:
    """'net_admin', 'CAP_NET_ADMIN' and 'NET_ADMIN' all mean NET_ADMIN; 'ALL' stays."""
    n = name.strip().upper()
    if n.startswith("CAP_"):
        n = n[4:]
    if n != "ALL" and n not in NUMBERS:
        raise ConfigError(f"unknown capability: {name!r}")
    return n


def resolve(add=(), drop=(), privileged=False) -> frozenset:
    """The capability names a container gets (see _resolve), remembered."""
    key = (tuple(add), tuple(drop), bool(privileged))
    hit = _resolved.get(key)
    if hit is None:
        if len(_resolved) > 256:
            _resolved.clear()
        hit = _resolved[key] = _resolve(*key)
    return hit


_resolved: dict = {}


def _resolve(add=(), drop=(), privileged=False) -> frozenset:
    """The capability names a container gets, docker's way: drop applies to the
    default set, add on top; ALL in either means every capability."""
    if privileged:
        return own()
    add = {normalize(c) for c in add}
    drop = {normalize(c) for c in drop}
    every = set(own())
    if "ALL" in add:
        caps = every - drop
    elif "ALL" in drop:
        caps = add
    else:
        caps = (set(DEFAULT) - drop) | add
    missing = caps - every
    if missing:
        raise ConfigError(f"capability {', '.join(sorted(missing))} is not available: "
                          "pycontain does not hold it on this host")
    return frozenset(caps)


def mask(names) -> int:
    m = 0
    for n in names:
        m |= 1 << NUMBERS[n]
    return m
