"""The CLI's own failures, with the exit statuses docker gives them."""
from ..errors import ContainerError


class UsageError(Exception):
    """A command line docker would refuse: one line, the verb's --help hint, a status."""

    def __init__(self, message, prog, status):
        super().__init__(message)
        self.prog, self.status = prog, status


class CliError(ContainerError):
    """A failure the CLI itself finds ("the input device is not a TTY"), with docker's status."""

    def __init__(self, message, exit_status=1):
        super().__init__(message)
        self.exit_status = exit_status
