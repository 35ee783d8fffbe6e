"""How docker prints sizes and times (its go-units package), shared by the verbs."""
from __future__ import annotations

from .gotemplate import TemplateError, parse


def human_size(n: float, binary: bool = False, precision: int = 3) -> str:
    """go-units HumanSize (1000s: kB, MB: images, prune; system df with
    precision 4) or, with binary, BytesSize (1024s: KiB, MiB: stats)."""
    base, units, fmt = (1024, ("B", "KiB", "MiB", "GiB", "TiB"), "{:.4g}{}") if binary else \
        (1000, ("B", "kB", "MB", "GB", "TB"), "{:.%dg}{}" % precision)
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


def tabwrite(lines) -> str:
    """Go's tabwriter as docker's tables use it (minwidth 10, padding 3):
    a tab ends a cell; a column is as wide as its widest cell plus 3, at least
    10; the last cell of a line is not padded."""
    rows = [line.split("\t") for line in lines]
    widths = {}
    for cells in rows:
        for j, cell in enumerate(cells[:-1]):
            widths[j] = max(widths.get(j, 0), len(cell) + 3, 10)
    return "".join("".join(c.ljust(widths[j]) for j, c in enumerate(cells[:-1])) + cells[-1] + "\n"
                   for cells in rows)


def format_rows(fmt: str, rows, headers: dict | None = None, default_table: str | None = None) -> str:
    """docker's --format for a list: a Go template run on each row, one line
    each; "table TEMPLATE" adds a header row (each field's name from headers,
    else the field in upper case) and aligns the cells at tabs; "json" is
    {{json .}}. A template that does not parse or run raises TemplateError
    with docker's words ("failed to parse/execute template: ...")."""
    if fmt == "json":
        fmt = "{{json .}}"
    is_table = fmt.startswith("table")
    if is_table:
        fmt = fmt[len("table"):].strip() or default_table or ""
    fmt = fmt.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    try:
        template = parse(fmt)
    except TemplateError as e:
        raise TemplateError(f"failed to parse template: {e}") from None
    # docker's list rows marshal as Go maps: {{json .}} lists their keys sorted
    rows = [{k: r[k] for k in sorted(r)} if isinstance(r, dict) else r for r in rows]
    try:
        body = [template.execute(r) for r in rows]
        header = template.execute(dict(headers or {}), missing_ok=True) if is_table else ""
    except TemplateError as e:
        raise TemplateError(f"failed to execute template: {e}") from None
    if not is_table:
        return "".join(line + "\n" for line in body)
    return tabwrite((header + "\n" + "".join(line + "\n" for line in body)).split("\n")[:-1])


def format_each(fmt: str, objects) -> str:
    """docker inspect's -f: the template on each object, one line each.
    Errors are docker's "template parsing error: ...": status 64 when the
    template does not parse (cobra's usage status there), 1 when it cannot run."""
    text = "{{json .}}" if fmt == "json" else fmt.replace("\\t", "\t").replace("\\n", "\n")
    try:
        template = parse(text)
    except TemplateError as e:
        raise TemplateError(f"template parsing error: {e}", status=64) from None
    try:
        return "".join(template.execute(o) + "\n" for o in objects)
    except TemplateError as e:
        raise TemplateError(f"template parsing error: {e}") from None
