"""argparse subcommands built only for the one being run. Building every
subcommand's parser (the docker-like CLI's ~70 verbs, pycontain-runc's 18)
costs more than a short command's own work; each door names the command
word it found and gets a subparsers action that builds that one and hands
the rest a stand-in that drops what they add."""
from __future__ import annotations

import argparse


class UnusedParser:
    """Stands in for the parser of a subcommand that is not being run: takes
    its arguments, groups and defaults, and drops them."""

    def __getattr__(self, name):
        return self._drop

    def _drop(self, *args, **kwargs):
        return self


def one_command_action(command: str):
    """An argparse subparsers action (add_subparsers(action=...)) that builds
    `command`'s parser only (matched by name or alias)."""
    class OneCommandSubParsers(argparse._SubParsersAction):
        def add_parser(self, name, **kwargs):
            if command == name or command in kwargs.get("aliases", ()):
                return super().add_parser(name, **kwargs)
            return UnusedParser()

    return OneCommandSubParsers


class CommandListSubParsers(argparse._SubParsersAction):
    """Lists every subcommand with its help (a door's --help), building none
    of their parsers."""

    def add_parser(self, name, **kwargs):
        aliases = kwargs.get("aliases", ())
        if "help" in kwargs:
            self._choices_actions.append(self._ChoicesPseudoAction(name, aliases, kwargs["help"]))
        unused = UnusedParser()
        for word in (name, *aliases):
            self._name_parser_map[word] = unused
        return unused
