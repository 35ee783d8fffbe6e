"""The Dockerfile language: BuildKit's grammar and the word expansion docker does.

    df = parse(text, "Dockerfile")      # Dockerfile: directives, meta_args, stages
    for stage in df.stages: stage.instructions   # Instruction: keyword, args, flags, ...
    expand_word("${A:-x}/b", {"A": "1"})        # "1/b", docker's shell-like lexer

Pure logic, no I/O: the builder (pycontain.build.executor) runs what this
returns. The rules follow BuildKit's frontend/dockerfile/parser and
instructions packages, which docker 20.10's classic builder vendors too:
parser directives only at the very top, comments dropped (also between
continuation lines), the escape character ending a line continues it, JSON
arrays for the exec form, heredocs on RUN/COPY/ADD, and flags (`--from=...`)
read before the arguments. Every error is a DockerfileError whose message
names the file, the line and what was wrong.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ..errors import ConfigError

DIRECTIVES = ("syntax", "escape", "check")
_DIRECTIVE_RE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_HEREDOC_RE = re.compile(r"^(\d*)<<(-?)([^<]*)$")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")

# The flags each instruction takes (BuildKit's), and which of them are booleans.
FLAGS = {
    "FROM": ("platform",),
    "RUN": ("mount", "network", "security"),
    "COPY": ("from", "chown", "chmod", "link", "parents", "exclude"),
    "ADD": ("chown", "chmod", "link", "keep-git-dir", "checksum", "exclude"),
    "HEALTHCHECK": ("interval", "timeout", "start-period", "start-interval", "retries"),
}
BOOL_FLAGS = ("link", "parents", "keep-git-dir")
REPEATED_FLAGS = ("mount", "exclude")
INSTRUCTIONS = ("FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
                "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL")
HEREDOC_INSTRUCTIONS = ("RUN", "COPY", "ADD")
# docker's predefined build arguments: usable without an ARG line, and left
# out of a RUN step's history (and cache key) unless the Dockerfile declares them
BUILTIN_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")


class DockerfileError(ConfigError):
    """The Dockerfile is not valid; str() reads `FILE:LINE: what was wrong`."""

    def __init__(self, filename: str, line: int | None, message: str):
        self.filename, self.line, self.message = filename, line, message
        where = f"{filename}:{line}" if line else filename
        super().__init__(f"{where}: {message}")


class ExpansionError(ConfigError):
    """A word could not be expanded (an unterminated quote or ${...})."""


@dataclass(frozen=True)
class Heredoc:
    name: str          # the delimiter word, quotes removed
    content: str       # the lines up to the delimiter, each ending in "\n"
    expand: bool       # an unquoted delimiter: variables in the content are expanded
    chomp: bool        # <<-: leading tabs were removed


@dataclass
class Instruction:
    keyword: str                   # upper case: RUN, COPY...
    args: list                     # the arguments (words, the JSON array, or one shell-form string)
    original: str                  # the line as written, continuations joined
    line: int                      # first line (1-based)
    end_line: int
    flags: dict = field(default_factory=dict)   # name -> value (str or bool; list for REPEATED_FLAGS)
    json: bool = False             # exec (JSON array) form
    heredocs: tuple = ()
    pairs: tuple = ()              # ENV, LABEL: ((key, value), ...) still to expand; ARG: ((key, value|None), ...)
    sub: "Instruction | None" = None   # ONBUILD's trigger, parsed
    expression: str = ""           # ONBUILD: the trigger's text, as docker records it
    literal: bool = False          # made by the builder (--label): its words are not expanded

    def __str__(self) -> str:
        return self.original


@dataclass
class Stage:
    index: int
    name: str | None               # lower case, from `AS name`
    base: str                      # the FROM word, variables not yet expanded
    platform: str | None
    line: int
    instructions: list = field(default_factory=list)
    from_instruction: Instruction | None = None


@dataclass
class Dockerfile:
    filename: str
    directives: dict               # syntax, escape, check as written
    escape: str
    meta_args: list                # ARG instructions before the first FROM
    stages: list

    def stage(self, target: str | None) -> Stage:
        """The stage named (or numbered) target; the last one when None."""
        if target is None:
            return self.stages[-1]
        for st in self.stages:
            if st.name == target.lower():
                return st
        raise DockerfileError(self.filename, None, f"target stage {target!r} could not be found")


# ---- the line reader ---------------------------------------------------------------------


def parse(text: str | bytes, filename: str = "Dockerfile") -> Dockerfile:
    """A Dockerfile's text, parsed and checked; a DockerfileError names the line."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DockerfileError(filename, None, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    text = text.removeprefix("\ufeff")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]

    directives: dict = {}
    n = 0
    # Parser directives: `# key=value` lines at the very top; the first line
    # that is not one (an unknown key, a blank line, an instruction) ends them.
    while n < len(lines):
        m = _DIRECTIVE_RE.match(lines[n])
        if not m or m.group(1).lower() not in DIRECTIVES:
            break
        key = m.group(1).lower()
        if key in directives:
            raise DockerfileError(filename, n + 1, f"only one {key} parser directive can be used")
        directives[key] = m.group(2)
        n += 1
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileError(filename, None, f"invalid escape token {escape!r} does not match ` or \\")
    continuation = re.compile(r"^(.*?)" + re.escape(escape) + r"[ \t]*$", re.S)

    nodes = []
    i = 0
    while i < len(lines):
        raw = lines[i]
        i += 1
        start = i
        stripped = raw.lstrip(" \t")
        if stripped.startswith("#") or not stripped.strip():
            continue
        line, ended = _cut_continuation(stripped, continuation)
        while not ended and i < len(lines):
            nxt = lines[i]
            i += 1
            if nxt.lstrip(" \t").startswith("#") or not nxt.strip():
                continue  # comments and empty lines inside a continuation are skipped
            part, ended = _cut_continuation(nxt, continuation)
            line += part
        if not line.strip():
            continue
        keyword = _WHITESPACE.split(line.strip(), 1)[0].upper()
        heredocs = []
        if keyword in HEREDOC_INSTRUCTIONS and "<<" in line:
            for name, expand, chomp in _heredoc_words(line, escape):
                body, terminated = [], False
                while i < len(lines):
                    text_line = lines[i]
                    i += 1
                    candidate = text_line.lstrip("\t") if chomp else text_line
                    if candidate == name:
                        terminated = True
                        break
                    body.append(candidate + "\n")
                if not terminated:
                    raise DockerfileError(filename, start, f"unterminated heredoc {name!r}")
                heredocs.append(Heredoc(name, "".join(body), expand, chomp))
        nodes.append(_instruction(line, start, i, tuple(heredocs), escape, filename))
    return _stages(filename, directives, escape, nodes)


def _cut_continuation(line: str, continuation: re.Pattern) -> tuple[str, bool]:
    m = continuation.match(line)
    if m:
        return m.group(1), False
    return line, True


def _heredoc_words(line: str, escape: str):
    """(name, expand, chomp) of each <<WORD in the line, in order."""
    for word in split_words(line, escape):
        m = _HEREDOC_RE.match(word)
        if not m or not m.group(3):
            continue
        rest = m.group(3)
        quoted = any(c in rest for c in "'\"")
        try:
            name = expand_word(rest, {}, "\\")
        except ExpansionError:
            continue
        if not name or _WHITESPACE.search(name):
            continue
        yield name, not quoted, m.group(2) == "-"


# ---- one instruction ------------------------------------------------------------------


def _instruction(line: str, start: int, end: int, heredocs: tuple, escape: str, filename: str) -> Instruction:
    parts = _WHITESPACE.split(line.strip(), 1)
    keyword = parts[0].upper()
    rest = parts[1] if len(parts) > 1 else ""

    def fail(msg):
        raise DockerfileError(filename, start, msg)

    if keyword not in INSTRUCTIONS:
        fail(f"unknown instruction: {parts[0]}")
    rest, flag_words = _extract_flags(rest)
    flags = _parse_flags(keyword, flag_words, fail)
    inst = Instruction(keyword, [], line, start, end, flags, heredocs=heredocs)

    if keyword in ("RUN", "CMD", "ENTRYPOINT", "SHELL"):
        inst.args, inst.json = _maybe_json(rest, fail)
        if keyword == "SHELL":
            if not inst.json:
                fail("SHELL requires the arguments to be in JSON form")
            if not inst.args:
                fail("SHELL requires at least one argument")
        elif keyword == "RUN" and not inst.args:
            fail("RUN requires at least one argument")
        if inst.heredocs and (inst.json or keyword != "RUN"):
            fail("heredocs are only allowed in the shell form of RUN, COPY and ADD")
    elif keyword in ("ADD", "COPY", "VOLUME"):
        args, is_json = _maybe_json(rest, fail)
        inst.args, inst.json = (args if is_json else _split_ws(rest)), is_json
        if keyword == "VOLUME":
            if not inst.args:
                fail("VOLUME requires at least one argument")
        elif len(inst.args) < 2:
            fail(f"{keyword} requires at least two arguments, but only one was provided. "
                 "Destination could not be determined.")
    elif keyword in ("ENV", "LABEL"):
        inst.pairs = _name_values(rest, keyword, escape, fail)
        if not inst.pairs:
            fail(f"{keyword} requires at least one argument")
    elif keyword == "ARG":
        words = split_words(rest, escape)
        if not words:
            fail("ARG requires at least one argument")
        pairs = []
        for w in words:
            k, sep, v = w.partition("=")
            if not k:
                fail("ARG names can not be blank")
            pairs.append((k, v if sep else None))
        inst.pairs = tuple(pairs)
    elif keyword in ("FROM", "EXPOSE"):
        inst.args = _split_ws(rest)
        if keyword == "EXPOSE":
            if not inst.args:
                fail("EXPOSE requires at least one argument")
            inst.args.sort()    # docker records them sorted
        elif len(inst.args) not in (1, 3) or (len(inst.args) == 3 and inst.args[1].lower() != "as"):
            fail("FROM requires either one argument, or three: FROM <source> [AS <name>]")
    elif keyword in ("MAINTAINER", "STOPSIGNAL", "USER", "WORKDIR"):
        rest = rest.strip()
        if keyword == "MAINTAINER":
            if not rest:
                fail("MAINTAINER requires exactly one argument")
            inst.args = [rest]
        else:
            inst.args = _split_ws(rest)
            if len(inst.args) != 1:
                fail(f"{keyword} requires exactly one argument")
    elif keyword == "HEALTHCHECK":
        rest = rest.lstrip()
        typ, _, cmd = rest.partition(" ") if " " in rest else (rest.partition("\t") if "\t" in rest else (rest, "", ""))
        typ = typ.upper()
        if typ == "NONE":
            if cmd.strip() or flags:
                fail("HEALTHCHECK NONE takes no arguments")
            inst.args = ["NONE"]
        elif typ == "CMD":
            args, inst.json = _maybe_json(cmd, fail)
            if not args:
                fail("Missing command after HEALTHCHECK CMD")
            inst.args = ["CMD" if inst.json else "CMD-SHELL"] + args
            for name in ("interval", "timeout", "start-period", "start-interval"):
                if name in flags:
                    parse_duration(flags[name], f"--{name}", fail)
            if "retries" in flags:
                try:
                    retries = int(flags["retries"])
                except ValueError:
                    fail(f"--retries: invalid number {flags['retries']!r}")
                if retries < 1:
                    fail(f"--retries must be at least 1 (not {retries})")
        elif not typ:
            fail("HEALTHCHECK requires at least one argument")
        else:
            fail(f"Unknown type {typ!r} in HEALTHCHECK (try CMD)")
    elif keyword == "ONBUILD":
        expr = re.sub(r"(?i)^\s*ONBUILD\s*", "", line)
        if not rest.strip():
            fail("ONBUILD requires at least one argument")
        sub_kw = _WHITESPACE.split(rest.strip(), 1)[0].upper()
        if sub_kw == "ONBUILD":
            fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if sub_kw in ("FROM", "MAINTAINER"):
            fail(f"{sub_kw} isn't allowed as an ONBUILD trigger")
        inst.sub = _instruction(rest.strip(), start, end, (), escape, filename)
        inst.expression = expr
        inst.args = [expr]
    return inst


def _maybe_json(rest: str, fail) -> tuple[list, bool]:
    """BuildKit's parseMaybeJSON: a JSON array of strings is the exec form;
    anything else (also invalid JSON) is one shell-form string."""
    rest = rest.lstrip()
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            value = None
        if isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                fail("the JSON array must hold strings only")
            return value, True
    return ([rest] if rest else []), False


def _split_ws(rest: str) -> list:
    rest = rest.strip()
    return _WHITESPACE.split(rest) if rest else []


def _name_values(rest: str, keyword: str, escape: str, fail) -> tuple:
    """ENV and LABEL: `KEY value...` (the old form) or `K=V K2="v 2"...`;
    values keep their quotes here, expand_word removes them."""
    words = split_words(rest, escape)
    if not words:
        return ()
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest.strip(), 1)
        if len(parts) < 2:
            fail(f"{keyword} must have two arguments")
        return ((parts[0], parts[1]),)
    pairs = []
    for w in words:
        if "=" not in w:
            fail(f"Syntax error - can't find = in {w!r}. Must be of the form: name=value")
        k, _, v = w.partition("=")
        if not k:
            fail(f"{keyword} names can not be blank")
        pairs.append((k, v))
    return tuple(pairs)


def split_words(rest: str, escape: str = "\\") -> list:
    """BuildKit's parseWords: whitespace-separated words, quotes and escapes
    kept (they are removed when the word is expanded)."""
    words, word, phase, quote, blank_ok = [], "", "space", "", False
    i, n = 0, len(rest)
    while True:
        if i >= n:
            if phase != "space" and (blank_ok or word):
                words.append(word)
            return words
        ch = rest[i]
        if phase == "space":
            if ch.isspace():
                i += 1
                continue
            phase = "word"
        if phase == "word":
            if ch.isspace():
                if blank_ok or word:
                    words.append(word)
                word, blank_ok, phase = "", False, "space"
                i += 1
                continue
            if ch in "'\"":
                quote, blank_ok, phase = ch, True, "quote"
            elif ch == escape:
                if i + 1 == n:
                    i += 1
                    continue
                word += ch
                i += 1
                ch = rest[i]
            word += ch
            i += 1
            continue
        # in quotes
        if ch == quote:
            phase = "word"
        elif ch == escape and quote != "'":
            if i + 1 == n:
                phase = "word"
                i += 1
                continue
            word += ch
            i += 1
            ch = rest[i]
        word += ch
        i += 1


def _extract_flags(rest: str) -> tuple[str, list]:
    """BuildKit's extractBuilderFlags: the leading `--name[=value]` words (quotes
    and backslashes removed) and what follows them."""
    words, word, phase, quote, blank_ok = [], "", "space", "", False
    pos, n = 0, len(rest)
    while pos <= n:
        ch = rest[pos] if pos < n else ""
        if phase == "space":
            if pos == n:
                break
            if ch.isspace():
                pos += 1
                continue
            if ch != "-" or pos + 1 == n or rest[pos + 1] != "-":
                return rest[pos:], words
            phase = "word"
        if pos == n:
            if word != "--" and (blank_ok or word):
                words.append(word)
            break
        if phase == "word":
            if ch.isspace():
                phase = "space"
                if word == "--":
                    return rest[pos:], words
                if blank_ok or word:
                    words.append(word)
                word, blank_ok = "", False
                pos += 1
                continue
            if ch in "'\"":
                quote, blank_ok, phase = ch, True, "quote"
                pos += 1
                continue
            if ch == "\\":
                if pos + 1 == n:
                    pos += 1
                    continue
                pos += 1
                ch = rest[pos]
            word += ch
            pos += 1
            continue
        if ch == quote:
            phase = "word"
            pos += 1
            continue
        if ch == "\\":
            if pos + 1 == n:
                phase = "word"
                pos += 1
                continue
            pos += 1
            ch = rest[pos]
        word += ch
        pos += 1
    return "", words


def _parse_flags(keyword: str, words: list, fail) -> dict:
    allowed = FLAGS.get(keyword, ())
    flags: dict = {}
    for w in words:
        if not w.startswith("--"):
            fail(f"{keyword}: invalid flag {w!r}")
        name, sep, value = w[2:].partition("=")
        if name not in allowed:
            fail(f"Unknown flag: {name}" + (f" (the flags of {keyword} are --{', --'.join(allowed)})" if allowed
                                            else f" ({keyword} takes no flags)"))
        if name in BOOL_FLAGS:
            if sep and value.lower() not in ("true", "false"):
                fail(f"expecting boolean value for flag {name}, not: {value}")
            flags[name] = not sep or value.lower() == "true"
            continue
        if not sep:
            fail(f"Missing a value on flag: --{name}")
        if name in REPEATED_FLAGS:
            flags.setdefault(name, []).append(value)
        elif name in flags:
            fail(f"Duplicate flag specified: {name}")
        else:
            flags[name] = value
    return flags


def _stages(filename: str, directives: dict, escape: str, nodes: list) -> Dockerfile:
    meta_args, stages = [], []
    for inst in nodes:
        if inst.keyword == "FROM":
            name = None
            if len(inst.args) == 3:
                name = inst.args[2].lower()
                if not _STAGE_NAME.match(name):
                    raise DockerfileError(filename, inst.line, f"invalid name for build stage: {inst.args[2]!r}, "
                                          "name can't start with a number or contain symbols")
                if any(s.name == name for s in stages):
                    raise DockerfileError(filename, inst.line, f"duplicate name {inst.args[2]!r}")
            st = Stage(len(stages), name, inst.args[0], inst.flags.get("platform"), inst.line)
            st.from_instruction = inst
            stages.append(st)
        elif not stages:
            if inst.keyword != "ARG":
                raise DockerfileError(filename, inst.line,
                                      f"{inst.keyword} before the first FROM: only ARG may come before FROM")
            meta_args.append(inst)
        else:
            stages[-1].instructions.append(inst)
    if not stages:
        raise DockerfileError(filename, None, "the Dockerfile has no FROM instruction" if nodes
                              else "the Dockerfile cannot be empty")
    return Dockerfile(filename, directives, escape, meta_args, stages)


# ---- word expansion (BuildKit's shell.Lex.ProcessWord) ------------------------------------------


def expand_word(word: str, env: dict, escape: str = "\\") -> str:
    """One word with docker's substitution: quotes and escapes removed,
    $v ${v} ${v:-w} ${v-w} ${v:+w} ${v+w} ${v:?msg} ${v?msg} replaced."""
    out, _ = _process(word, 0, env, escape, stop="")
    return out


def _process(s: str, i: int, env: dict, escape: str, stop: str) -> tuple[str, int]:
    out = []
    n = len(s)
    while i < n:
        ch = s[i]
        if stop and ch == stop:
            return "".join(out), i + 1
        if ch == escape:
            if i + 1 < n:
                out.append(s[i + 1])
            i += 2
        elif ch == "'":
            j = s.find("'", i + 1)
            if j < 0:
                raise ExpansionError(f"unexpected end of statement while looking for matching single-quote in {s!r}")
            out.append(s[i + 1:j])
            i = j + 1
        elif ch == '"':
            i += 1
            while True:
                if i >= n:
                    raise ExpansionError(f"unexpected end of statement while looking for matching double-quote in {s!r}")
                c = s[i]
                if c == '"':
                    i += 1
                    break
                if c == "$":
                    value, i = _dollar(s, i + 1, env, escape)
                    out.append(value)
                elif c == escape and i + 1 < n:
                    nxt = s[i + 1]
                    out.append(nxt if nxt in ('"', "$", escape) else c + nxt)
                    i += 2
                else:
                    out.append(c)
                    i += 1
        elif ch == "$":
            value, i = _dollar(s, i + 1, env, escape)
            out.append(value)
        else:
            out.append(ch)
            i += 1
    if stop:
        raise ExpansionError(f"missing '{stop}' in {s!r}")
    return "".join(out), i


def _name(s: str, i: int) -> tuple[str, int]:
    if i < len(s) and s[i].isdigit():
        return s[i], i + 1  # a positional parameter: one digit
    j = i
    while j < len(s) and (s[j].isalnum() or s[j] == "_") and s[j].isascii():
        j += 1
    return s[i:j], j


def _dollar(s: str, i: int, env: dict, escape: str) -> tuple[str, int]:
    n = len(s)
    if i >= n:
        return "$", i
    if s[i] != "{":
        name, j = _name(s, i)
        if not name:
            return "$", i
        return env.get(name, ""), j
    name, j = _name(s, i + 1)
    if not name:
        raise ExpansionError(f"bad substitution in {s!r}")
    if j >= n:
        raise ExpansionError(f"missing '}}' in {s!r}")
    if s[j] == "}":
        return env.get(name, ""), j + 1
    colon = s[j] == ":"
    if colon:
        j += 1
    if j >= n or s[j] not in "-+?":
        raise ExpansionError(f"unsupported modifier ({s[j] if j < n else 'EOF'}) in substitution: {s!r}")
    mod = s[j]
    word, j = _process(s, j + 1, env, escape, stop="}")
    value = env.get(name)
    is_set = value is not None and (value != "" or not colon)
    if mod == "-":
        return (value if is_set else word), j
    if mod == "+":
        return (word if is_set else ""), j
    if not is_set:
        raise ExpansionError(f"{name}: {word or 'is not allowed to be empty' if colon else word or 'is not set'}")
    return value, j


# ---- durations, as Go writes and reads them (HEALTHCHECK) ------------------------------

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str, what: str = "duration", fail=None) -> int:
    """Go's time.ParseDuration, in nanoseconds (docker's health check flags)."""
    def bad(msg):
        if fail:
            fail(msg)
        raise ConfigError(msg)

    s = text.strip()
    if s == "0":
        return 0
    pos, total = 0, 0.0
    if not s:
        bad(f"{what}: invalid duration {text!r}")
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m:
            bad(f"{what}: invalid duration {text!r}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    ns = int(round(total))
    if 0 < ns < 1_000_000:
        bad(f"{what} cannot be less than 1ms")
    return ns


def format_duration(ns: int) -> str:
    """Go's time.Duration.String()."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3), ("ns", 1)):
            if ns >= size or unit == "ns":
                return sign + _trim(ns / size if size > 1 else ns, size) + unit
    h, rem = divmod(ns, 3600 * 10**9)
    m, rem = divmod(rem, 60 * 10**9)
    secs = _trim(rem / 10**9, 10**9) + "s"
    if h:
        return f"{sign}{h}h{m}m{secs}"
    if m:
        return f"{sign}{m}m{secs}"
    return sign + secs


def _trim(value, size) -> str:
    if isinstance(value, int):
        return str(value)
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text


def go_quote(s: str) -> str:
    """Go's strconv.Quote (what %q prints for a string)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}[ch])
        elif o < 0x20 or o == 0x7f:
            out.append(f"\\x{o:02x}")
        elif not ch.isprintable():
            out.append(f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_quote_list(items) -> str:
    """What Go's %q prints for a []string: ["a" "b"]."""
    return "[" + " ".join(go_quote(x) for x in items) + "]"


def go_quote_rune(n: int) -> str:
    """What Go's %q prints for an int: a quoted character literal ('\\x03')."""
    if 0x20 <= n < 0x7f and n not in (0x27, 0x5c):
        return f"'{chr(n)}'"
    if n == 0x27:
        return "'\\''"
    if n == 0x5c:
        return "'\\\\'"
    if n in (7, 8, 12, 10, 13, 9, 11):
        return "'\\" + {7: "a", 8: "b", 12: "f", 10: "n", 13: "r", 9: "t", 11: "v"}[n] + "'"
    if n < 0x80:
        return f"'\\x{n:02x}'"
    ch = chr(n)
    return f"'{ch}'" if ch.isprintable() else (f"'\\u{n:04x}'" if n < 0x10000 else f"'\\U{n:08x}'")


__all__ = ["parse", "Dockerfile", "Stage", "Instruction", "Heredoc", "DockerfileError", "ExpansionError",
           "expand_word", "split_words", "parse_duration", "format_duration", "go_quote", "go_quote_list",
           "go_quote_rune", "BUILTIN_ARGS"]
