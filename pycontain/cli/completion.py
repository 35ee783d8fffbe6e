"""`pycontain completion bash|zsh`: shell completion made from the CLI's own
parser (verbs, management sub-verbs, flags), with container, image, volume
and network names asked of pycontain itself when a verb takes them."""
from __future__ import annotations

import argparse

# Which names a verb's positional arguments take (the verb's path → kind).
_NAME_KINDS = {
    "image": ("run", "create", "rmi", "history", "push", "save", "tag", "image rm", "image inspect",
              "image history", "image push", "image save", "image tag", "container run", "container create"),
    "volume": ("volume rm", "volume inspect"),
    "network": ("network rm", "network inspect"),
}
_NAME_COMMANDS = {
    "container": "pycontain ps -a --format '{{.Names}}' 2>/dev/null",
    "image": "pycontain images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null",
    "volume": "pycontain volume ls -q 2>/dev/null",
    "network": "pycontain network ls --format '{{.Name}}' 2>/dev/null",
}


def _walk(parser, path=()):
    """(path, [flags], [sub-verbs]) for each verb of the parser tree."""
    flags, subs = [], []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                subs.append(name)
                yield from _walk(sub, path + (name,))
        else:
            flags += [o for o in action.option_strings if o.startswith("--") or len(o) == 2]
    yield path, flags, subs


def _kind(path) -> str:
    key = " ".join(path)
    for kind, verbs in _NAME_KINDS.items():
        if key in verbs:
            return kind
    return "container"


def script(parser, shell: str) -> str:
    table = list(_walk(parser))
    if shell == "bash":
        return _bash(table)
    return _zsh(table)


def _bash(table) -> str:
    cases = []
    for path, flags, subs in table:
        words = " ".join(subs) if subs else ""
        kind = _kind(path) if path and not subs else ""
        cases.append(f'        "{" ".join(path)}") flags="{" ".join(flags)}"; subs="{words}"; kind="{kind}" ;;')
    names = "\n".join(f'        {k}) names=$({cmd}) ;;' for k, cmd in _NAME_COMMANDS.items())
    return f"""# bash completion for pycontain: eval "$(pycontain completion bash)"
_pycontain() {{
    local cur path="" w flags subs kind names i
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    # the verb path so far: the words before the current one that are not flags
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        [[ $w == -* ]] && continue
        _pycontain_lookup "${{path:+$path }}$w" && path="${{path:+$path }}$w" || break
    done
    _pycontain_lookup "$path"
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    elif [[ -n $subs ]]; then
        COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    elif [[ -n $kind ]]; then
        case $kind in
{names}
        esac
        COMPREPLY=($(compgen -W "$names" -- "$cur"))
    fi
}}
_pycontain_lookup() {{
    flags=""; subs=""; kind=""
    case "$1" in
{chr(10).join(cases)}
        *) return 1 ;;
    esac
}}
complete -F _pycontain pycontain
"""


def _zsh(table) -> str:
    # zsh runs the bash script through its bashcompinit layer, as docker's own does for compose
    return ("#compdef pycontain\n# zsh completion for pycontain: eval \"$(pycontain completion zsh)\"\n"
            "autoload -U +X bashcompinit && bashcompinit\n" + _bash(table))
