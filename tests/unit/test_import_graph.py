"""pycontain's imports run one way: no module imports, at module level or
inside a function, anything that imports it back (DESIGN.md, "Imports run
downward"). The graph is read from the source with ast, not by importing."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pycontain"


def modules() -> dict:
    """{dotted name: (path or None, is a package)}; None: a compiled extension."""
    found = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts.pop()
        found[".".join(parts)] = (p, is_pkg)
    for build in (ROOT / "src").glob("build_*.py"):   # cffi extensions (pycontain._nsexec)
        for ext in re.findall(r'set_source\(\s*"([\w.]+)"', build.read_text()):
            found[ext] = (None, False)
    return found


def import_graph() -> dict:
    """{module: {modules it imports}}: every import statement anywhere in the
    module; `from P import x` names the submodule P.x when x is one, else P."""
    mods = modules()

    def known(name):
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, (path, is_pkg) in mods.items():
        edges = set()
        if path is not None:
            package = name if is_pkg else name.rpartition(".")[0]
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    edges |= {known(a.name) for a in node.names if a.name.startswith("pycontain")}
                elif isinstance(node, ast.ImportFrom):
                    if node.level:
                        base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                        source = ".".join(base + ([node.module] if node.module else []))
                    else:
                        source = node.module or ""
                    if not source.startswith("pycontain"):
                        continue
                    for a in node.names:
                        sub = f"{source}.{a.name}"
                        edges.add(sub if sub in mods else known(source))
        edges.discard(None)
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph) -> list:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read_whole():
    g = import_graph()
    # a module-level import, a function-level one, a relative `from . import x`
    # resolved to the submodule, and the compiled extension
    assert "pycontain.container" in g["pycontain"]
    assert "pycontain._nsexec" in g["pycontain._launch"]
    assert "pycontain.network.bridge" in g["pycontain.network.store"]
    assert {"pycontain.cgroups.v1", "pycontain.cgroups.v2"} <= g["pycontain.cgroups"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    found = cycles(import_graph())
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in found)
