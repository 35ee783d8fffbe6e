"""What a finished container run returns, like subprocess.CompletedProcess.
Apart from container.py so that the managed containers' verbs that never
start one (ps, inspect, stop, rm) can name it without loading the launcher."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ContainerExitError


@dataclass
class ContainerResult:
    """What run() returns, like subprocess.CompletedProcess."""

    args: list
    returncode: int
    stdout: bytes | str | None = None
    stderr: bytes | str | None = None
    id: str = ""
    oom_killed: bool = False      # the kernel killed a process of the container for memory (docker's OOMKilled)

    def check_returncode(self):
        if self.returncode:
            raise ContainerExitError(self.returncode, self.args, self.stdout, self.stderr, self)
