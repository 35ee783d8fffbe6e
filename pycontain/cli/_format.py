"""How docker prints sizes and times (its go-units package), shared by the verbs."""
from __future__ import annotations


def human_size(n: float, binary: bool = False) -> str:
    """go-units HumanSize (1000s: kB, MB: images, prune) or, with binary,
    BytesSize (1024s: KiB, MiB: stats, system df)."""
    base, units, fmt = (1024, ("B", "KiB", "MiB", "GiB", "TiB"), "{:.4g}{}") if binary else \
        (1000, ("B", "kB", "MB", "GB", "TB"), "{:.3g}{}")
    for unit in units:
        if n < base or unit == units[-1]:
            return f"{int(n)}B" if unit == "B" else fmt.format(n, unit)
        n /= base
    return f"{n}B"


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: "Up 3 minutes", "Exited (0) About an hour ago"."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = round(s / 3600)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 7 * 2:
        return f"{h // 24} days"
    if h < 24 * 30 * 3:
        return f"{h // 24 // 7} weeks"
    if h < 24 * 365 * 2:
        return f"{h // 24 // 30} months"
    return f"{h // 24 // 365} years"


def print_deleted(kind: str, lines) -> None:
    """The list the prune verbs print, docker's way: "Deleted KIND:", one
    line each, a blank line; nothing when nothing was deleted."""
    if lines:
        print(f"Deleted {kind}:")
        for line in lines:
            print(line)
        print()
