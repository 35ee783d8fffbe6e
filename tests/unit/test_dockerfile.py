"""The Dockerfile parser and docker's word expansion: pure logic, no root."""
import pytest

from pycontain.build.dockerfile import (DockerfileError, ExpansionError, expand_word, format_duration, go_quote,
                                        go_quote_list, go_quote_rune, parse, parse_duration, split_words)


def insts(text):
    return parse(text).stages[-1].instructions


def test_directives_only_at_the_top():
    df = parse("# syntax=docker/dockerfile:1\n# escape=`\n# check=skip=all\nFROM x\n# escape=\\\nRUN a `\n b\n")
    assert df.directives == {"syntax": "docker/dockerfile:1", "escape": "`", "check": "skip=all"}
    assert df.escape == "`"
    assert insts  # the second "escape" line is a comment
    run = df.stages[0].instructions[0]
    assert run.args == ["a  b"] and run.line == 6 and run.end_line == 7


def test_directive_after_a_blank_line_is_a_comment():
    df = parse("\n# escape=`\nFROM x\nRUN a \\\n b\n")
    assert df.directives == {} and df.stages[0].instructions[0].args == ["a  b"]


def test_bad_and_repeated_directives():
    with pytest.raises(DockerfileError, match="invalid escape token"):
        parse("# escape=x\nFROM a\n")
    with pytest.raises(DockerfileError, match="Dockerfile:2: only one escape parser directive"):
        parse("# escape=`\n# escape=\\\nFROM a\n")


def test_continuations_skip_comments_and_blank_lines():
    (run,) = insts("FROM x\nRUN echo a \\\n# a comment\n\n    && echo b\\  \n  c\n")
    assert run.args == ["echo a     && echo b  c"]
    assert run.original.startswith("RUN echo a ")


def test_json_and_shell_forms():
    cmd, ep, run = insts('FROM x\nCMD ["a", "b c"]\nENTRYPOINT [ "x" ] \nRUN [not json\n')
    assert (cmd.args, cmd.json) == (["a", "b c"], True)
    assert (ep.args, ep.json) == (["x"], True)
    assert (run.args, run.json) == (["[not json"], False)
    with pytest.raises(DockerfileError, match="strings only"):
        parse("FROM x\nCMD [1, 2]\n")


def test_env_and_label_forms():
    env, env_old, label = insts('FROM x\nENV A=1 B="two words" C=\\$x\nENV D hello  world\nLABEL "k 1"=v\n')
    assert env.pairs == (("A", "1"), ("B", '"two words"'), ("C", "\\$x"))
    assert env_old.pairs == (("D", "hello  world"),)
    assert label.pairs == (('"k 1"', "v"),)
    with pytest.raises(DockerfileError, match="Dockerfile:2: Syntax error - can't find = in 'B'"):
        parse("FROM x\nENV A=1 B\n")
    with pytest.raises(DockerfileError, match="ENV must have two arguments"):
        parse("FROM x\nENV A\n")


def test_arg_before_from_and_stages():
    df = parse("ARG V=1\nARG B\nFROM busybox:$V AS One\nARG V\nFROM one\nFROM scratch as three\n")
    assert [a.pairs for a in df.meta_args] == [(("V", "1"),), (("B", None),)]
    assert [(s.name, s.base) for s in df.stages] == [("one", "busybox:$V"), (None, "one"), ("three", "scratch")]
    assert df.stage("ONE").index == 0 and df.stage(None).index == 2
    with pytest.raises(DockerfileError, match="target stage 'nope' could not be found"):
        df.stage("nope")


def test_instruction_before_from_and_empty_files():
    with pytest.raises(DockerfileError, match="Dockerfile:1: RUN before the first FROM"):
        parse("RUN x\nFROM y\n")
    with pytest.raises(DockerfileError, match="cannot be empty"):
        parse("# just a comment\n\n")


def test_unknown_instruction_names_file_and_line():
    with pytest.raises(DockerfileError) as e:
        parse("FROM x\n\nFOOBAR baz\n", "sub/Dockerfile.dev")
    assert str(e.value) == "sub/Dockerfile.dev:3: unknown instruction: FOOBAR"


@pytest.mark.parametrize("text, message", [
    ("FROM a b\n", "FROM requires either one argument, or three"),
    ("FROM a AS 1x\n", "invalid name for build stage"),
    ("FROM a AS x\nFROM b AS x\n", "duplicate name"),
    ("FROM a\nCOPY onlyone\n", "COPY requires at least two arguments"),
    ("FROM a\nWORKDIR a b\n", "WORKDIR requires exactly one argument"),
    ("FROM a\nUSER\n", "USER requires exactly one argument"),
    ("FROM a\nSHELL /bin/sh -c\n", "SHELL requires the arguments to be in JSON form"),
    ("FROM a\nEXPOSE\n", "EXPOSE requires at least one argument"),
    ("FROM a\nRUN\n", "RUN requires at least one argument"),
    ("FROM a\nCOPY --frm=x a b\n", "Unknown flag: frm"),
    ("FROM a\nCOPY --from a b\n", "Missing a value on flag: --from"),
    ("FROM a\nRUN --chown=1 x\n", "Unknown flag: chown"),
    ("FROM a\nONBUILD ONBUILD RUN x\n", "Chaining ONBUILD"),
    ("FROM a\nONBUILD FROM x\n", "FROM isn't allowed as an ONBUILD trigger"),
    ("FROM a\nHEALTHCHECK CMD\n", "Missing command after HEALTHCHECK CMD"),
    ("FROM a\nHEALTHCHECK --retries=0 CMD x\n", "--retries must be at least 1"),
    ("FROM a\nHEALTHCHECK --interval=5 CMD x\n", "--interval: invalid duration '5'"),
    ("FROM a\nHEALTHCHECK NONE x\n", "HEALTHCHECK NONE takes no arguments"),
    ("FROM a\nHEALTHCHECK WHAT x\n", "Unknown type 'WHAT' in HEALTHCHECK"),
    ("FROM a\nRUN <<EOF\nnever ends\n", "Dockerfile:2: unterminated heredoc 'EOF'"),
    ("FROM a\nARG =x\n", "ARG names can not be blank"),
])
def test_errors(text, message):
    with pytest.raises(DockerfileError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse(text)


def test_flags():
    (cp, run) = insts('FROM a\nCOPY --from=build --chown="1:2" --link src dst\nRUN --mount=type=cache,target=/c '
                      '--mount=type=tmpfs,target=/t --network=none echo\n')
    assert cp.flags == {"from": "build", "chown": "1:2", "link": True} and cp.args == ["src", "dst"]
    assert run.flags == {"mount": ["type=cache,target=/c", "type=tmpfs,target=/t"], "network": "none"}
    assert run.args == ["echo"]


def test_expose_sorted_and_healthcheck():
    ex, hc, none = insts("FROM a\nEXPOSE 80 443/udp 8000-8001\nHEALTHCHECK --interval=5m --timeout=3s "
                         "CMD curl -f http://x/ || exit 1\nHEALTHCHECK NONE\n")
    assert ex.args == ["443/udp", "80", "8000-8001"]
    assert hc.args == ["CMD-SHELL", "curl -f http://x/ || exit 1"] and hc.flags == {"interval": "5m", "timeout": "3s"}
    assert none.args == ["NONE"]


def test_onbuild_keeps_its_expression():
    (ob,) = insts("FROM a\nonbuild   RUN echo $HOME\n")
    assert ob.expression == "RUN echo $HOME" and ob.sub.keyword == "RUN" and ob.sub.args == ["echo $HOME"]


def test_heredocs():
    run, cp, multi, env = insts(
        "FROM a\nRUN <<EOF\necho $HOME\n  two\nEOF\nCOPY <<-'X' /f\n\tliteral $A\n\tX\n"
        "RUN <<A cat >/a && <<\"B\" cat >/b\nfirst\nA\nsecond\nB\nENV Z=1\n")
    assert run.heredocs[0].name == "EOF" and run.heredocs[0].content == "echo $HOME\n  two\n"
    assert run.heredocs[0].expand and not run.heredocs[0].chomp
    assert cp.heredocs[0].content == "literal $A\n" and not cp.heredocs[0].expand and cp.heredocs[0].chomp
    assert [h.name for h in multi.heredocs] == ["A", "B"] and multi.heredocs[1].content == "second\n"
    assert cp.args == ["<<-'X'", "/f"] and multi.end_line == 13 and env.line == 14


def test_split_words_keeps_quotes():
    assert split_words('a "b c" d\\ e \'f\\\' ') == ["a", '"b c"', "d\\ e", "'f\\'"]


@pytest.mark.parametrize("word, expected", [
    ("$A", "1"), ("${A}x", "1x"), ("$Ax", ""), ("${U:-def}", "def"), ("${E:-def}", "def"), ("${E-def}", ""),
    ("${A:+yes}", "yes"), ("${U:+yes}", ""), ("${E+set}", "set"), ("'$A'", "$A"), ('"$A b"', "1 b"),
    ("\\$A", "$A"), ('"\\$A \\x"', "$A \\x"), ("a\\ b", "a b"), ("$", "$"), ("$-", "$-"), ("${U:-${A}2}", "12"),
    ("${U:-'q r'}", "q r"), ("x${A}y${B}z", "x1yspace valz"),
])
def test_expand_word(word, expected):
    assert expand_word(word, {"A": "1", "E": "", "B": "space val"}) == expected


def test_expand_word_errors():
    for bad in ("'open", '"open', "${A", "${A%x}", "${}"):
        with pytest.raises(ExpansionError):
            expand_word(bad, {"A": "1"})
    with pytest.raises(ExpansionError, match="U: needed"):
        expand_word("${U:?needed}", {})
    assert expand_word("`$A", {"A": "1"}, "`") == "$A"


def test_go_formatting():
    assert go_quote('a "b"\n\x01é') == '"a \\"b\\"\\n\\x01é"'
    assert go_quote_list(["/bin/sh", "-c", "echo hi"]) == '["/bin/sh" "-c" "echo hi"]'
    assert go_quote_rune(0) == "'\\x00'" and go_quote_rune(3) == "'\\x03'" and go_quote_rune(65) == "'A'"
    assert [format_duration(parse_duration(d)) for d in ("5m", "3s", "0", "1.5s", "90m", "250ms", "1h")] == \
        ["5m0s", "3s", "0s", "1.5s", "1h30m0s", "250ms", "1h0m0s"]
