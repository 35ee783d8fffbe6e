"""What a fault may leave, looked for where the project puts things: the
store's directories, the mount table, the cgroup tree under our own
cgroup, the process table."""
import os

from pycontain.image.store import ImageStore

TALLY: dict = {}   # the kill lane's figures: operation -> [kills, recovered, [what was left]]


def figures() -> list:
    return [f"{op}: kills: {k}, recovered: {r}, left behind: {k - r}" for op, (k, r, _) in TALLY.items()]


def cgroup_dirs_of(cid_or_prefix="") -> list:
    """pycontain-* cgroup directories under this process's own cgroups."""
    found = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            names = [c for c in controllers.split(",") if c and not c.startswith("name=")] or ["unified"]
            for name in names:
                base = f"/sys/fs/cgroup/{name}{path}"
                if not os.path.isdir(base):
                    continue
                for dirpath, dirnames, _ in os.walk(base):
                    for d in dirnames:
                        if d.startswith("pycontain-" + cid_or_prefix):
                            found.append(os.path.join(dirpath, d))
    return sorted(set(found))


def mounts_under(root) -> list:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(root) in line]


def processes_of(root) -> list:
    """Processes whose environment names this store root (monitors, CLIs)."""
    want = f"PYCONTAIN_ROOT={root}".encode()
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit() and int(p) != os.getpid():
            try:
                with open(f"/proc/{p}/environ", "rb") as f:
                    if want in f.read().split(b"\0"):
                        out.append(int(p))
            except OSError:
                pass
    return out


def dead_holds(root) -> list:
    with ImageStore(root) as st:
        return st._dead_holders(st._query("SELECT holder, pid, pid_start, boot_id FROM holds"))


def leftovers(root, cgroup_prefix="") -> dict:
    """Everything a finished fault should not have left: empty dict when clean."""
    found = {}
    tmp = root / "images" / "tmp"
    if tmp.is_dir() and os.listdir(tmp):
        found["store tmp"] = os.listdir(tmp)
    cdir = root / "containers"
    if cdir.is_dir() and os.listdir(cdir):
        found["container dirs"] = os.listdir(cdir)
    owners = root / "owners"
    if owners.is_dir() and os.listdir(owners):   # the owner logs of programs, all ended by now
        found["owner logs"] = os.listdir(owners)
    vols = root / "volumes"
    if vols.is_dir():
        hidden = [n for n in os.listdir(vols) if n.startswith((".rm-", ".new-"))]
        if hidden:
            found["volume dirs"] = hidden
    if mounts_under(root):
        found["mounts"] = mounts_under(root)
    if cgroup_prefix is not None and cgroup_dirs_of(cgroup_prefix):
        found["cgroups"] = cgroup_dirs_of(cgroup_prefix)
    if processes_of(root):
        found["processes"] = processes_of(root)
    if (root / "images" / "images.db").exists() and dead_holds(root):
        found["dead holds"] = dead_holds(root)
    return found
