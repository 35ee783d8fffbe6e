"""Go's text/template, as docker's --format uses it, over Python dicts and lists.

Covers what scripts written for docker use: fields and nested fields, `$`
and declared variables, pipes, parenthesised pipelines, `if`/`else if`/
`else`, `range` (with `$i, $v :=`) and `with`, with `{{-`/`-}}` trimming and
comments; Go's functions (and, or, not, eq, ne, lt, le, gt, ge, index, len,
slice, print, printf, println) and docker's (json, join, split, lower, upper,
title, pad, truncate). A missing field is an error (docker's inspect runs its
templates with missingkey=error; its list verbs format structs, where a
missing field is an error too). Values print as Go's fmt %v prints them.

`parse(text)` returns a Template whose `execute(data)` returns a string;
both raise TemplateError, whose message has Go's shape ("template: ...").
"""
from __future__ import annotations

import json
import re

__all__ = ["TemplateError", "Template", "parse", "go_string"]


class TemplateError(Exception):
    """A template that does not parse or cannot run on the data it was given;
    status: the exit status the CLI gives it."""

    def __init__(self, message, status=1):
        super().__init__(message)
        self.status = status


class _NoValue:
    """Go's invalid reflect.Value: what a missing index gives; prints "<no value>"."""

    def __repr__(self):
        return "<no value>"


NO_VALUE = _NoValue()


# ---- printing values the way Go's fmt %v does -----------------------------------------

def go_string(v) -> str:
    if v is NO_VALUE:
        return "<no value>"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e21:
            return str(int(v))
        return repr(v).replace("e+0", "e+").replace("e-0", "e-")
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_string(x) for x in v) + "]"
    if isinstance(v, dict):   # a row's methods are not its entries
        return "map[" + " ".join(f"{k}:{go_string(v[k])}" for k in sorted(v, key=str) if not callable(v[k])) + "]"
    return str(v)


def _truth(v) -> bool:
    if v is NO_VALUE or v is None:
        return False
    if isinstance(v, (bool, int, float, str, list, tuple, dict)):
        return bool(v)
    return True


def _plain(v):
    """The data without its methods (a row's Label), as Go's json ignores them."""
    if v is NO_VALUE:
        return None
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items() if not callable(x)}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _go_json(v) -> str:
    """encoding/json's Marshal: compact, <>& escaped as Go escapes them."""
    text = json.dumps(_plain(v), separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# ---- functions ----------------------------------------------------------------------

def _need_str(name, v):
    if not isinstance(v, str):
        raise TemplateError(f"wrong type for value; expected string; got {_go_type(v)}")
    return v


def _go_type(v) -> str:
    return {bool: "bool", int: "int", float: "float64", str: "string", list: "[]interface {}",
            dict: "map[string]interface {}", type(None): "<nil>"}.get(type(v), type(v).__name__)


def _index(item, *keys):
    for k in keys:
        if isinstance(item, dict):
            item = item.get(k, NO_VALUE)
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(k, int) or isinstance(k, bool):
                raise TemplateError(f"error calling index: cannot index slice/array with type {_go_type(k)}")
            if not 0 <= k < len(item):
                raise TemplateError(f"error calling index: index out of range: {k}")
            item = item[k] if not isinstance(item, str) else ord(item[k])
        elif item is None or item is NO_VALUE:
            raise TemplateError("error calling index: index of untyped nil")
        else:
            raise TemplateError(f"error calling index: can't index item of type {_go_type(item)}")
    return item


def _len(v):
    if isinstance(v, (str, list, tuple, dict)):
        return len(v.encode() if isinstance(v, str) else v)
    raise TemplateError(f"error calling len: len of type {_go_type(v)}")


def _slice(v, *idx):
    if not isinstance(v, (str, list, tuple)):
        raise TemplateError(f"error calling slice: can't slice item of type {_go_type(v)}")
    lo = idx[0] if idx else 0
    hi = idx[1] if len(idx) > 1 else len(v)
    if not (0 <= lo <= hi <= len(v)):
        raise TemplateError(f"error calling slice: index out of range: {hi}")
    return v[lo:hi]


def _eq(a, *others):
    if not others:
        raise TemplateError("error calling eq: missing argument for comparison")
    return any(_basic(a) == _basic(b) for b in others)


def _basic(v):
    if isinstance(v, (dict, list, tuple)):
        raise TemplateError("error calling eq: non-comparable type")
    return v


def _order(name, op):
    def compare(a, b):
        if isinstance(a, str) != isinstance(b, str) or a is None or b is None:
            raise TemplateError(f"error calling {name}: incompatible types for comparison")
        return op(a, b)
    return compare


def _sprint(*args) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out = ""
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_string(a)
    return out


_VERB_RE = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+))?([a-zA-Z%])")


def _sprintf(fmt, *args) -> str:
    args = list(args)
    out, pos = [], 0

    def take():
        return args.pop(0) if args else NO_VALUE

    for m in _VERB_RE.finditer(_need_str("printf", fmt)):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        a = take()
        if a is NO_VALUE:
            out.append(f"%!{verb}(MISSING)")
            continue
        spec = "%" + flags + (width or "") + (f".{prec}" if prec else "")
        if verb in "dxXo" and isinstance(a, int) and not isinstance(a, bool):
            out.append((spec + verb) % a)
        elif verb == "b" and isinstance(a, int) and not isinstance(a, bool):
            out.append(format(a, "b").rjust(int(width or 0), "0" if "0" in flags else " "))
        elif verb in "feEgG" and isinstance(a, (int, float)) and not isinstance(a, bool):
            out.append((spec + verb) % a)
        elif verb == "q" and isinstance(a, str):
            out.append(json.dumps(a, ensure_ascii=False))
        elif verb == "t" and isinstance(a, bool):
            out.append(go_string(a))
        elif verb in "sv":
            text = go_string(a)
            if prec:
                text = text[:int(prec)]
            out.append(((("%" + flags + (width or "")) + "s") % text) if (width or flags) else text)
        else:
            out.append(f"%!{verb}({_go_type(a)}={go_string(a)})")
    out.append(fmt[pos:])
    if args:
        out.append("%!(EXTRA " + ", ".join(f"{_go_type(a)}={go_string(a)}" for a in args) + ")")
    return "".join(out)


def _join(items, sep):
    if not isinstance(items, (list, tuple)):
        raise TemplateError(f"wrong type for value; expected []string; got {_go_type(items)}")
    return _need_str("join", sep).join(go_string(x) for x in items)


def _pad(s, left, right):
    return " " * left + go_string(s) + " " * right


def _truncate(s, n):
    s = go_string(s)
    return s[:n] if len(s) > n else s


FUNCTIONS = {
    # Go's builtins (and/or/not are short-circuit in Go 1.18+; with evaluated arguments
    # the result is the same for the values templates see here)
    "and": lambda first, *rest: next((x for x in (first, *rest) if not _truth(x)), (first, *rest)[-1]),
    "or": lambda first, *rest: next((x for x in (first, *rest) if _truth(x)), (first, *rest)[-1]),
    "not": lambda a: not _truth(a),
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": _order("lt", lambda a, b: a < b),
    "le": _order("le", lambda a, b: a <= b),
    "gt": _order("gt", lambda a, b: a > b),
    "ge": _order("ge", lambda a, b: a >= b),
    "index": _index,
    "len": _len,
    "slice": _slice,
    "print": _sprint,
    "printf": _sprintf,
    "println": lambda *a: " ".join(go_string(x) for x in a) + "\n",
    # docker's (cli/templates/templates.go)
    "json": _go_json,
    "join": _join,
    "split": lambda s, sep: _need_str("split", s).split(_need_str("split", sep)) if sep else list(s),
    "lower": lambda s: _need_str("lower", s).lower(),
    "upper": lambda s: _need_str("upper", s).upper(),
    "title": lambda s: _need_str("title", s).title(),
    "pad": _pad,
    "truncate": _truncate,
}


# ---- lexing --------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"""
    (?P<space>\s+)
  | (?P<decl>:=)
  | (?P<assign>=)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\]|\\.)')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F_]+|\d[\d_]*(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<var>\$[A-Za-z0-9_]*)
  | (?P<dot>\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<pipe>\|)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
""", re.VERBOSE)


def _lex_action(text: str, line: int):
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise TemplateError(f"template: :{line}: unexpected {text[pos]!r} in command".replace("'", '"'))
        kind = m.lastgroup
        value = m.group()
        # a field chain may follow a variable or a closing parenthesis directly
        if kind != "space":
            tokens.append((kind, value))
        pos = m.end()
    return tokens


def _split_actions(text: str):
    """Text and actions, with Go's {{- and -}} trimming of the space around them."""
    parts, pos, line = [], 0, 1
    while True:
        start = text.find("{{", pos)
        if start < 0:
            parts.append(("text", text[pos:], line))
            return parts
        chunk = text[pos:start]
        inner_start = start + 2
        if text.startswith("- ", inner_start) or text.startswith("-\t", inner_start) \
                or text.startswith("-\n", inner_start):
            chunk = chunk.rstrip(" \t\r\n")
            inner_start += 1
        parts.append(("text", chunk, line))
        line += text[pos:start].count("\n")
        end = _find_close(text, inner_start, line)
        inner = text[inner_start:end]
        after = end + 2
        if inner.endswith(" -") or inner.endswith("\t-") or inner.endswith("\n-"):
            inner = inner[:-1]
            while after < len(text) and text[after] in " \t\r\n":
                after += 1
        parts.append(("action", inner.strip(), line))
        line += text[start:after].count("\n")
        pos = after


def _find_close(text, pos, line):
    """The "}}" that ends the action at pos, not one inside a quoted string or a comment."""
    i = pos
    while i < len(text):
        if text.startswith("/*", i) and not text[pos:i].strip():
            close = text.find("*/", i + 2)
            if close < 0:
                raise TemplateError(f"template: :{line}: unclosed comment")
            i = close + 2
            continue
        c = text[i]
        if c in "\"`'":
            j = i + 1
            while j < len(text) and text[j] != c:
                j += 2 if c != "`" and text[j] == "\\" else 1
            if j >= len(text):
                raise TemplateError(f"template: :{line}: unterminated quoted string")
            i = j + 1
            continue
        if text.startswith("}}", i):
            return i
        i += 1
    raise TemplateError(f"template: :{line}: unclosed action")


# ---- parsing -------------------------------------------------------------------------
# Nodes are tuples: ("text", s) ("action", pipe) ("if"|"with", pipe, body, else_body)
# ("range", pipe, body, else_body). A pipe is (decl_vars, [command]); a command is a
# list of operands; an operand is ("field", base, [names]) ("var", name) ("dot",)
# ("ident", name) ("const", value) ("pipe", pipe).

class _Parser:
    def __init__(self, text: str):
        self.parts = _split_actions(text)
        self.i = 0

    def parse(self):
        body, end = self._list()
        if end is not None:
            raise TemplateError(f"template: :{end[1]}: unexpected {{{{{end[0]}}}}}")
        return body

    def _list(self):
        """Nodes up to an {{else}} or {{end}}, which it returns as (word, line, rest)."""
        out = []
        while self.i < len(self.parts):
            kind, text, line = self.parts[self.i]
            self.i += 1
            if kind == "text":
                if text:
                    out.append(("text", text))
                continue
            if text.startswith("/*"):
                continue
            word = text.split(None, 1)[0] if text else ""
            rest = text[len(word):].strip()
            if word in ("end", "else"):
                return out, (word, line, rest)
            if word in ("if", "with", "range"):
                out.append(self._control(word, rest, line))
            elif word in ("define", "template", "block", "break", "continue"):
                raise TemplateError(f"template: :{line}: {{{{{word}}}}} is not supported here")
            elif not text:
                raise TemplateError(f"template: :{line}: missing value for command")
            else:
                out.append(("action", self._pipe(text, line)))
        return out, None

    def _control(self, word, rest, line):
        if not rest:
            raise TemplateError(f"template: :{line}: missing value for {word}")
        pipe = self._pipe(rest, line)
        body, end = self._list()
        else_body = []
        if end is None:
            raise TemplateError(f"template: :{line}: unexpected EOF")
        if end[0] == "else":
            if end[2]:   # {{else if ...}} / {{else with ...}}: a nested control in the else branch
                w2, _, rest2 = end[2].partition(" ")
                if w2 != word or word == "range":
                    raise TemplateError(f"template: :{end[1]}: unexpected {w2!r} after else")
                else_body = [self._control(word, rest2.strip(), end[1])]
                return (word, pipe, body, else_body)
            else_body, end = self._list()
            if end is None or end[0] != "end":
                raise TemplateError(f"template: :{line}: expected end; found {end and end[0] or 'EOF'}")
        if end[2]:
            raise TemplateError(f"template: :{end[1]}: unexpected {end[2]!r} in end")
        return (word, pipe, body, else_body)

    def _pipe(self, text, line):
        tokens = _lex_action(text, line)
        pipe, pos = self._pipeline(tokens, 0, line)
        if pos != len(tokens):
            raise TemplateError(f"template: :{line}: unexpected {tokens[pos][1]!r} in operand".replace("'", '"'))
        return pipe

    def _pipeline(self, tokens, pos, line):
        decl = []
        # $x := ..., $i, $v := ...
        j = pos
        names = []
        while j < len(tokens) and tokens[j][0] == "var":
            names.append(tokens[j][1])
            j += 1
            if j < len(tokens) and tokens[j][0] == "comma":
                j += 1
                continue
            break
        if names and j < len(tokens) and tokens[j][0] in ("decl", "assign"):
            decl, pos = names, j + 1
        cmds, cmd = [], []
        while pos < len(tokens):
            kind, value = tokens[pos]
            if kind == "rparen":
                break
            if kind == "pipe":
                if not cmd:
                    raise TemplateError(f"template: :{line}: missing command before |")
                cmds.append(cmd)
                cmd = []
                pos += 1
                continue
            operand, pos = self._operand(tokens, pos, line)
            cmd.append(operand)
        if not cmd:
            raise TemplateError(f"template: :{line}: missing value for command")
        cmds.append(cmd)
        for c in cmds[1:]:
            if c[0][0] == "const":
                raise TemplateError(f"template: :{line}: non executable command in pipeline stage 2")
        return (decl, cmds), pos

    def _operand(self, tokens, pos, line):
        kind, value = tokens[pos]
        pos += 1
        if kind == "field":
            node = ("field", ("dot",), value[1:].split("."))
        elif kind == "dot":
            node = ("dot",)
        elif kind == "var":
            node = ("var", value)
        elif kind == "ident":
            if value in ("true", "false"):
                node = ("const", value == "true")
            elif value == "nil":
                node = ("const", None)
            elif value in FUNCTIONS:
                node = ("ident", value)
            else:
                raise TemplateError(f'template: :{line}: function "{value}" not defined')
        elif kind in ("string", "raw", "char"):
            node = ("const", _unquote(kind, value))
        elif kind == "number":
            node = ("const", _number(value, line))
        elif kind == "lparen":
            inner, pos = self._pipeline(tokens, pos, line)
            if pos >= len(tokens) or tokens[pos][0] != "rparen":
                raise TemplateError(f"template: :{line}: unclosed left paren")
            pos += 1
            node = ("pipe", inner)
        else:
            raise TemplateError(f"template: :{line}: unexpected {value!r} in operand".replace("'", '"'))
        # a field chain right after a variable or a parenthesised pipeline: $x.A, (...).B
        if pos < len(tokens) and tokens[pos][0] == "field" and node[0] in ("var", "pipe", "dot"):
            node = ("field", node, tokens[pos][1][1:].split("."))
            pos += 1
        return node, pos


def _unquote(kind, value):
    if kind == "raw":
        return value[1:-1]
    if kind == "char":
        return ord(json.loads('"' + value[1:-1].replace('"', '\\"') + '"'))
    try:
        return json.loads(value)
    except ValueError:
        raise TemplateError(f"template: bad string {value}") from None


def _number(text, line):
    t = text.replace("_", "")
    try:
        if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", t):
            return int(t, 16)
        if re.fullmatch(r"[-+]?\d+", t):
            return int(t)
        return float(t)
    except ValueError:
        raise TemplateError(f"template: :{line}: bad number syntax: {text!r}") from None


# ---- executing -----------------------------------------------------------------------

class Template:
    def __init__(self, text: str):
        self.text = text
        self.tree = _Parser(text).parse()

    def execute(self, data, missing_ok=False) -> str:
        """missing_ok: a missing field prints its own name in upper case,
        how docker's table headers come out of the same template."""
        out = []
        _Exec(data, missing_ok).run(self.tree, data, [{"$": data}], out)
        return "".join(out)


def parse(text: str) -> Template:
    return Template(text)


class _Exec:
    def __init__(self, root, missing_ok):
        self.root = root
        self.missing_ok = missing_ok

    def run(self, nodes, dot, scopes, out):
        for node in nodes:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "action":
                value = self.pipe(node[1], dot, scopes)
                if not node[1][0]:   # a declaration prints nothing
                    out.append(go_string(value))
            elif kind == "if":
                inner = scopes + [{}]
                branch = node[2] if _truth(self.pipe(node[1], dot, inner)) else node[3]
                self.run(branch, dot, inner, out)
            elif kind == "with":
                inner = scopes + [{}]
                value = self.pipe(node[1], dot, inner)
                if _truth(value):
                    self.run(node[2], value, inner, out)
                else:
                    self.run(node[3], dot, scopes + [{}], out)
            elif kind == "range":
                self.range(node, dot, scopes, out)

    def range(self, node, dot, scopes, out):
        decl, cmds = node[1]
        value = self.pipe(([], cmds), dot, scopes)
        if isinstance(value, dict):
            items = [(k, value[k]) for k in sorted(value, key=str)]
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        elif value is None or value is NO_VALUE:
            items = []
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [(i, i) for i in range(value)]
        else:
            raise TemplateError(f"template: range can't iterate over {go_string(value)}")
        if not items:
            self.run(node[3], dot, scopes + [{}], out)
            return
        for key, elem in items:
            scope = {}
            if len(decl) == 1:
                scope[decl[0]] = elem
            elif len(decl) >= 2:
                scope[decl[0]], scope[decl[1]] = key, elem
            self.run(node[2], elem, scopes + [scope], out)

    def pipe(self, pipe, dot, scopes):
        decl, cmds = pipe
        value = NO_VALUE
        for i, cmd in enumerate(cmds):
            value = self.command(cmd, dot, scopes, value if i else NO_VALUE, piped=i > 0)
        if decl:
            scopes[-1][decl[-1]] = value
        return value

    def command(self, cmd, dot, scopes, piped_value, piped):
        first = cmd[0]
        args = cmd[1:]
        if first[0] == "ident":
            values = [self.operand(a, dot, scopes) for a in args]
            if piped:
                values.append(piped_value)
            return self.call(first[1], values)
        if first[0] == "field":
            extra = [self.operand(a, dot, scopes) for a in args] + ([piped_value] if piped else [])
            return self.field(first, dot, scopes, extra)
        if args or piped:
            raise TemplateError(f"template: can't give argument to non-function {self.describe(first)}")
        return self.operand(first, dot, scopes)

    def operand(self, node, dot, scopes):
        kind = node[0]
        if kind == "const":
            return node[1]
        if kind == "dot":
            return dot
        if kind == "var":
            return self.var(node[1], scopes)
        if kind == "field":
            return self.field(node, dot, scopes, [])
        if kind == "pipe":
            return self.pipe(node[1], dot, scopes + [{}])
        if kind == "ident":
            return self.call(node[1], [])
        raise TemplateError(f"template: can't evaluate {kind}")

    def var(self, name, scopes):
        for scope in reversed(scopes):
            if name in scope:
                return scope[name]
        raise TemplateError(f'template: undefined variable "{name}"')

    def field(self, node, dot, scopes, args):
        _, base, names = node
        value = self.operand(base, dot, scopes)
        for n, name in enumerate(names):
            last = n == len(names) - 1
            if isinstance(value, dict):
                if name in value:
                    value = value[name]
                elif self.missing_ok:
                    return name.upper()
                else:
                    raise TemplateError(f'template: executing "" at <.{".".join(names[:n + 1])}>: '
                                        f'map has no entry for key "{name}"')
            elif value is None or value is NO_VALUE:
                raise TemplateError(f'template: executing "" at <.{".".join(names[:n + 1])}>: '
                                    f"nil pointer evaluating interface {{}}.{name}")
            else:
                if self.missing_ok:
                    return name.upper()
                raise TemplateError(f'template: executing "" at <.{".".join(names[:n + 1])}>: '
                                    f"can't evaluate field {name} in type {_go_type(value)}")
            if callable(value):   # a method of the row, as docker's {{.Label "key"}}
                given = args if last else []
                try:
                    value = value(*given)
                except TypeError:
                    raise TemplateError(f'template: executing "" at <.{".".join(names[:n + 1])}>: '
                                        f"wrong number of args for {name}: got {len(given)}") from None
                continue
            if last and args:
                if self.missing_ok:
                    return value
                raise TemplateError(f"template: {name} has arguments but cannot be invoked as function")
        return value

    def call(self, name, values):
        try:
            return FUNCTIONS[name](*values)
        except TemplateError as e:
            msg = str(e)
            raise TemplateError(msg if msg.startswith("template:") else
                                f'template: executing "" at <{name}>: {msg}') from None
        except TypeError:
            raise TemplateError(f'template: executing "" at <{name}>: wrong number of args for {name}: '
                                f"got {len(values)}") from None
        except (ValueError, AttributeError) as e:
            raise TemplateError(f'template: executing "" at <{name}>: error calling {name}: {e}') from None

    @staticmethod
    def describe(node):
        return {"const": lambda: json.dumps(node[1]), "var": lambda: node[1]}.get(node[0], lambda: node[0])()
