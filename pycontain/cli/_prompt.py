"""docker's question before a destructive verb (docker/cli internal/prompt.Confirm)."""
from __future__ import annotations

import sys


def confirmed(warning: str, force: bool = False) -> bool:
    """True with force (-f); otherwise prints the warning and " [y/N] " on
    stdout and reads one line from stdin, a terminal or not, as docker does:
    only y or Y goes on. Anything else, an empty line and the end of input
    (a closed stdin, </dev/null, a pipe with nothing in it) mean no, so a
    script that forgot -f deletes nothing."""
    if force:
        return True
    print(warning + " [y/N] ", end="", flush=True)
    answer = sys.stdin.readline() if sys.stdin else ""
    return answer.strip().lower() == "y"
