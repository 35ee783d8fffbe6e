"""docs/docker-cli-parity.md names, for each command and flag of issue 13,
the test that runs it side by side with dockerd: every named test exists in
tests/dockerref (read with ast, not run: the comparisons need dockerd), and
every side-by-side test there is named by a row."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs" / "docker-cli-parity.md"


def dockerref_tests() -> set:
    names = set()
    for path in (ROOT / "tests" / "dockerref").glob("test_*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names.add(node.name)
    return names


def named_in_table() -> set:
    rows = [line for line in TABLE.read_text().splitlines() if line.startswith("| ")]
    return {name for line in rows for name in re.findall(r"`(test_\w+)`", line.rsplit("|", 2)[-2])}


def test_every_row_names_a_test_that_exists():
    missing = named_in_table() - dockerref_tests()
    assert not missing, f"the table names tests that do not exist: {sorted(missing)}"


def test_every_side_by_side_test_has_a_row():
    unnamed = dockerref_tests() - named_in_table()
    assert not unnamed, f"side-by-side tests without a row in {TABLE.name}: {sorted(unnamed)}"
