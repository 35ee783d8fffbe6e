"""The Python versions the project claims: requires-python >= 3.10.

Debian 12 ships 3.11.2 (the README's interpreter and CI's, whose tarfile has
no filter= yet: that came in 3.11.4 and 3.10.12) and no 3.10 at all, so the
oldest claimed version is checked from the source here: every file parses as
Python 3.10, and the standard library's newer APIs are used only behind a
feature test (`if sys.version_info >= ...`, `hasattr(...)`). tests/run.sh also
runs the quick tests on a real 3.10 where the machine has one (tests/py310.sh).
"""
import ast
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OLDEST = (3, 10)

# What the standard library gained after 3.10: (module, name) -> version. A
# name of None is the module itself; "builtins" are bare names.
NEWER_API = {
    ("tomllib", None): (3, 11), ("wsgiref.types", None): (3, 11),
    ("builtins", "ExceptionGroup"): (3, 11), ("builtins", "BaseExceptionGroup"): (3, 11),
    ("datetime", "UTC"): (3, 11), ("asyncio", "TaskGroup"): (3, 11), ("asyncio", "timeout"): (3, 11),
    ("asyncio", "Runner"): (3, 11), ("contextlib", "chdir"): (3, 11), ("enum", "StrEnum"): (3, 11),
    ("enum", "verify"): (3, 11), ("hashlib", "file_digest"): (3, 11), ("operator", "call"): (3, 11),
    ("typing", "Self"): (3, 11), ("typing", "LiteralString"): (3, 11), ("typing", "Never"): (3, 11),
    ("typing", "assert_never"): (3, 11), ("typing", "reveal_type"): (3, 11), ("typing", "Required"): (3, 11),
    ("typing", "NotRequired"): (3, 11), ("logging", "getLevelNamesMapping"): (3, 11),
    ("tarfile", "data_filter"): (3, 11), ("tarfile", "fully_trusted_filter"): (3, 11),
    ("tarfile", "tar_filter"): (3, 11), ("itertools", "batched"): (3, 12), ("typing", "override"): (3, 12),
    ("os.path", "splitroot"): (3, 12), ("math", "sumprod"): (3, 12), ("sys", "monitoring"): (3, 12),
}
# Keyword arguments that appeared later on calls of these names.
NEWER_KEYWORDS = {
    ("extract", "filter"): (3, 11), ("extractall", "filter"): (3, 11),  # 3.11.4 / 3.10.12
    ("rmtree", "onexc"): (3, 12), ("connect", "autocommit"): (3, 12),
    ("NamedTemporaryFile", "delete_on_close"): (3, 12), ("walk_packages", "follow_symlinks"): (3, 13),
}


def _guard(test: ast.AST) -> bool:
    src = ast.unparse(test)
    return "version_info" in src or "hasattr(" in src


def newer_api_uses(source: str, filename: str = "<source>") -> list:
    """(line, what) for each use of a post-3.10 API outside a feature test."""
    tree = ast.parse(source, filename, feature_version=OLDEST)
    aliases = {}   # local name -> module
    found = []

    def visit(node, guarded):
        if isinstance(node, (ast.If, ast.IfExp)) and _guard(node.test):
            visit(node.test, guarded)
            for child in (node.body if isinstance(node.body, list) else [node.body]):
                visit(child, True)
            for child in (node.orelse if isinstance(node.orelse, list) else [node.orelse]):
                visit(child, guarded)
            return
        if not guarded:
            check(node)
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    def check(node):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
                if (a.name, None) in NEWER_API:
                    found.append((node.lineno, f"import {a.name}"))
        elif isinstance(node, ast.ImportFrom) and node.module:
            if (node.module, None) in NEWER_API:
                found.append((node.lineno, f"from {node.module} import ..."))
            for a in node.names:
                if (node.module, a.name) in NEWER_API:
                    found.append((node.lineno, f"from {node.module} import {a.name}"))
        elif isinstance(node, ast.Attribute):
            base = ast.unparse(node.value)
            module = aliases.get(base, base)
            if (module, node.attr) in NEWER_API:
                found.append((node.lineno, f"{base}.{node.attr}"))
        elif isinstance(node, ast.Name) and ("builtins", node.id) in NEWER_API:
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.Call):
            fn = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            for kw in node.keywords:
                if (fn, kw.arg) in NEWER_KEYWORDS:
                    found.append((node.lineno, f"{fn}({kw.arg}=...)"))

    visit(tree, False)
    return found


def project_files():
    return sorted(p for top in ("pycontain", "tests", "bench") for p in (REPO / top).rglob("*.py")
                  if ".venv" not in p.parts)


def test_requires_python_says_3_10():
    text = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^requires-python\s*=\s*">=3\.10"', text, re.M)


@pytest.mark.parametrize("path", project_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_parses_as_3_10_and_uses_no_newer_api_unguarded(path):
    assert newer_api_uses(path.read_text(), str(path)) == []


@pytest.mark.parametrize("source, what", [
    ("import tarfile\nt = tarfile.open('x')\nt.extractall('d', filter='data')\n", "extractall(filter=...)"),
    ("import datetime as dt\nprint(dt.datetime.now(dt.UTC))\n", "dt.UTC"),
    ("import tomllib\n", "import tomllib"),
    ("from typing import Self\n", "from typing import Self"),
    ("import shutil\nshutil.rmtree('x', onexc=print)\n", "rmtree(onexc=...)"),
    ("try:\n    pass\nexcept* ValueError:\n    pass\n", None),
])
def test_the_check_finds_what_3_10_lacks(source, what):
    if what is None:  # syntax of 3.11
        with pytest.raises(SyntaxError):
            newer_api_uses(source)
        return
    assert [w for _, w in newer_api_uses(source)] == [what]
    guarded = "import sys\nif sys.version_info >= (3, 12):\n" + "".join(f"    {ln}\n" for ln in source.splitlines())
    assert newer_api_uses(guarded) == []


def test_this_interpreter_is_one_of_the_claimed():
    assert sys.version_info >= OLDEST
