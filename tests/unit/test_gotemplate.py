"""docker's --format templates (Go text/template) and its tables: pure logic, no root."""
import pytest

from pycontain.cli._format import format_each, format_rows, tabwrite
from pycontain.cli.gotemplate import TemplateError, parse

DATA = {"Name": "/web", "Id": "abc", "State": {"Status": "running", "Pid": 42, "Running": True, "Health": None},
        "Args": ["-c", "sleep 1"], "Config": {"Labels": {"b": "2", "a": "1"}, "Env": ["A=1", "B=2"]},
        "Mounts": [], "Count": 3, "Ratio": 0.5, "Big": 1e6}


@pytest.mark.parametrize("template, expected", [
    ("{{.Name}}", "/web"),
    ("{{.State.Status}} {{.State.Pid}}", "running 42"),
    ("{{ .State.Running }}", "true"),
    ("{{json .State}}", '{"Status":"running","Pid":42,"Running":true,"Health":null}'),
    ("{{json .Args}}", '["-c","sleep 1"]'),
    ("{{json .Config.Labels}}", '{"b":"2","a":"1"}'),
    ("{{range .Args}}[{{.}}]{{end}}", "[-c][sleep 1]"),
    ("{{range $i, $a := .Args}}{{$i}}={{$a}} {{end}}", "0=-c 1=sleep 1 "),
    ("{{range $k, $v := .Config.Labels}}{{$k}}:{{$v}},{{end}}", "a:1,b:2,"),   # Go ranges a map by sorted key
    ("{{range .Mounts}}x{{else}}none{{end}}", "none"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if .Mounts}}m{{else if .Args}}a{{else}}n{{end}}", "a"),
    ("{{if not .State.Health}}no health{{end}}", "no health"),
    ("{{if and .State.Running (eq .State.Status \"running\")}}ok{{end}}", "ok"),
    ("{{if or .Mounts .Args}}yes{{end}}", "yes"),
    ("{{if gt .Count 2}}big{{end}}{{if lt .Count 2}}small{{end}}", "big"),
    ("{{with .State}}{{.Pid}}{{end}}", "42"),
    ("{{with .State.Health}}h{{else}}none{{end}}", "none"),
    ('{{index .Config.Labels "a"}}', "1"),
    ("{{index .Args 1}}", "sleep 1"),
    ('{{index .Config.Labels "nope"}}', "<no value>"),
    ('{{join .Args ","}}', "-c,sleep 1"),
    ('{{join (split "a:b:c" ":") "-"}}', "a-b-c"),
    ("{{lower .State.Status}} {{upper .State.Status}}", "running RUNNING"),
    ("{{.State.Status | upper}}", "RUNNING"),
    ("{{.Name | printf \"%s!\"}}", "/web!"),
    ("{{len .Args}} {{len .Config.Labels}} {{len .Name}}", "2 2 4"),
    ("{{println .Name}}", "/web\n"),
    ("{{print .Count .Count}} {{print .Name .Name}}", "3 3 /web/web"),
    ('{{printf "%d-%s-%v-%q-%5.2f" .Count .Name .State.Running .Id .Ratio}}', '3-/web-true-"abc"- 0.50'),
    ("{{.Config.Labels}}", "map[a:1 b:2]"),
    ("{{.Args}}", "[-c sleep 1]"),
    ("{{.State.Health}}", "<nil>"),
    ("{{.Big}} {{.Ratio}}", "1000000 0.5"),
    ("{{$n := .Name}}{{$n}}{{$.Id}}", "/webabc"),
    ("{{range .Args}}{{$.Id}}{{end}}", "abcabc"),
    ("a {{- .Id -}} b", "aabcb"),
    ("{{/* a comment */}}x", "x"),
    ("{{(index .Args 0) | upper}}", "-C"),
    ("{{slice .Name 1 3}}", "we"),
    ('{{"quoted }}"}}', "quoted }}"),
    ("{{`raw`}}", "raw"),
    ("{{title \"web\"}} {{pad \"x\" 1 2}}| {{truncate .Id 2}}", "Web  x  | ab"),
])
def test_template_runs_as_go_does(template, expected):
    assert parse(template).execute(DATA) == expected


@pytest.mark.parametrize("template, words", [
    ("{{.Nope}}", 'map has no entry for key "Nope"'),
    ("{{.State.Nope}}", 'map has no entry for key "Nope"'),
    ("{{range .Args}}", "unexpected EOF"),
    ("{{if}}x{{end}}", "missing value for if"),
    ("{{range}}", "missing value for range"),
    ("{{nofunc .Name}}", 'function "nofunc" not defined'),
    ("{{.Name", "unclosed action"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{else}}", "unexpected {{else}}"),
    ("{{index .Args 5}}", "index out of range"),
    ("{{len .Count}}", "len of type int"),
    ("{{upper .Count}}", "expected string"),
    ("{{$x}}", 'undefined variable "$x"'),
    ("{{.Name 1}}", "cannot be invoked"),
    ("{{and}}", "wrong number of args for and"),
    ("{{printf}}", "wrong number of args for printf"),
])
def test_a_template_that_cannot_run_is_an_error_never_printed_back(template, words):
    with pytest.raises(TemplateError) as e:
        parse(template).execute(DATA)
    assert words in str(e.value) and str(e.value).startswith("template: ")


ROWS = [{"ID": "abc", "Names": "web", "Image": "busybox", "Labels": "a=1", "Label": lambda k: {"a": "1"}.get(k, "")},
        {"ID": "defghi", "Names": "database-1", "Image": "busybox", "Labels": "", "Label": lambda k: ""}]
HEADERS = {"ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Label": lambda k: k}


def test_table_has_docker_headers_and_tabwriter_columns():
    out = format_rows("table {{.ID}}\t{{.Names}}\t{{.Image}}", ROWS, HEADERS)
    assert out == ("CONTAINER ID   NAMES        IMAGE\n"
                   "abc            web          busybox\n"
                   "defghi         database-1   busybox\n")
    # a backslash-t typed in the shell is a tab too; a field without a header is its name in capitals
    out = format_rows(r"table {{.Names}}\t{{.Labels}}", ROWS, HEADERS)
    assert out.splitlines()[0] == "NAMES        LABELS"
    # a method with an argument, as docker's {{.Label "key"}}: its header is the key
    assert format_rows('table {{.Names}}\t{{.Label "a"}}', ROWS, HEADERS).splitlines()[:2] == \
        ["NAMES        a", "web          1"]
    assert format_rows("table", ROWS, HEADERS, default_table="{{.ID}}").splitlines()[0] == "CONTAINER ID"


def test_rows_formats_and_json():
    assert format_rows("{{.ID}}:{{.Names | upper}}", ROWS) == "abc:WEB\ndefghi:DATABASE-1\n"
    # json: the row's keys sorted, as docker's rows (Go maps) marshal; methods left out
    assert format_rows("json", ROWS[:1]) == '{"ID":"abc","Image":"busybox","Labels":"a=1","Names":"web"}\n'
    assert format_rows("{{json .}}", []) == ""


def test_errors_carry_docker_words_and_statuses():
    with pytest.raises(TemplateError) as e:
        format_rows("{{.Nope}}", ROWS)
    assert str(e.value).startswith("failed to execute template: template: ") and e.value.status == 1
    with pytest.raises(TemplateError) as e:
        format_rows("{{range .ID}}", ROWS)
    assert str(e.value).startswith("failed to parse template: ") and e.value.status == 1
    with pytest.raises(TemplateError) as e:
        format_each("{{range}}", [DATA])
    assert str(e.value).startswith("template parsing error: ") and e.value.status == 64
    with pytest.raises(TemplateError) as e:
        format_each("{{.Nope}}", [DATA])
    assert e.value.status == 1
    assert format_each("{{.Id}}", [DATA, {"Id": "x"}]) == "abc\nx\n"


def test_methods_of_a_row():
    row = ROWS[0]
    assert parse('{{.Label "a"}}').execute(row) == "1"
    for template in ("{{.Label}}", '{{.Label "a" "b"}}'):   # Go's "wrong number of args", not a traceback
        with pytest.raises(TemplateError, match="wrong number of args for Label"):
            parse(template).execute(row)
    assert parse("{{.}}").execute(row) == "map[ID:abc Image:busybox Labels:a=1 Names:web]"   # no method


def test_printf_verbs():
    assert parse('{{printf "%05d|%-4s|%x|%X|%o|%b|%.1f|%t|%v" 42 "ab" 255 255 8 5 2.25 true .}}').execute("s") == \
        "00042|ab  |ff|FF|10|101|2.2|true|s"
    assert parse('{{printf "%d" "x"}}').execute(None) == "%!d(string=x)"
    assert parse('{{printf "%s %s" "a"}}').execute(None) == "a %!s(MISSING)"


def test_tabwriter_cells():
    # a column: its widest cell plus 3, at least 10; the last cell of a line unpadded
    assert tabwrite(["A\tBB\tC", "long cell here\tx\ty"]) == \
        "A".ljust(17) + "BB".ljust(10) + "C\n" + "long cell here   " + "x".ljust(10) + "y\n"
