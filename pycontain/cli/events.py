"""`pycontain events` (and `system events`): the events log, docker's way.

Replays the log from --since, then follows it until --until (for ever
without one, as docker's), one line an event: docker's
"TIME TYPE ACTION ID (k=v, ...)", or --format's template.
"""
import json
import sys
import time

from .. import events
from .._paths import default_root
from ..errors import ConfigError
from ..logs import parse_since
from .gotemplate import TemplateError, parse


def register(sub):
    add_events_verb(sub)


def add_events_verb(sub):
    p = sub.add_parser("events", help="show the containers' lifecycle events")
    p.add_argument("--since", help="events since a time: Unix seconds, RFC 3339 or a duration (10m)")
    p.add_argument("--until", help="stream events until this time (then exit)")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="container=, event=, type=, label=, image=, volume=, network=")
    p.add_argument("--format", help="Go template, e.g. '{{.Action}} {{.Actor.ID}}', or '{{json .}}'")
    p.set_defaults(func=cmd_events, parser=p)


def _time_ns(value, flag):
    try:
        return int(parse_since(value) * 1e9)
    except ConfigError:
        raise ConfigError(f"invalid {flag} {value!r}: a duration (10m), a Unix time or RFC 3339") from None


def default_line(event: dict) -> str:
    """docker's prettyPrintEvent: local time with nanoseconds, type, action, actor, sorted attributes."""
    t = event["timeNano"]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t // 10**9)) + f".{t % 10**9:09d}" + _zone(t)
    actor = event.get("Actor") or {}
    line = f"{stamp} {event.get('Type')} {event.get('Action')} {actor.get('ID', '')}"
    attrs = actor.get("Attributes") or {}
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line


def _zone(t_ns) -> str:
    offset = time.localtime(t_ns // 10**9).tm_gmtoff
    if offset == 0:
        return "Z"
    sign = "+" if offset > 0 else "-"
    offset = abs(offset)
    return f"{sign}{offset // 3600:02d}:{offset % 3600 // 60:02d}"


def template_data(event: dict) -> dict:
    """The fields of docker's events.Message, as its templates name them."""
    msg = events.with_legacy_fields(event)
    actor = msg.get("Actor") or {}
    return {"Status": msg.get("status", ""), "ID": msg.get("id", ""), "From": msg.get("from", ""),
            "Type": msg.get("Type", ""), "Action": msg.get("Action", ""),
            "Actor": {"ID": actor.get("ID", ""), "Attributes": actor.get("Attributes") or {}},
            "Scope": msg.get("scope", "local"), "Time": msg.get("time", 0), "TimeNano": msg.get("timeNano", 0)}


def _printer(fmt):
    if not fmt:
        return default_line
    text = fmt.replace("\\t", "\t").replace("\\n", "\n")
    if text.strip() in ("json", "{{json .}}"):
        # Go marshals the message with its JSON names (status, id, from, scope...)
        return lambda e: json.dumps(events.with_legacy_fields(e), separators=(",", ":"))
    try:
        template = parse(text)
    except TemplateError as e:
        raise TemplateError(f"failed to parse template: {e}") from None

    def line(event):
        try:
            return template.execute(template_data(event))
        except TemplateError as e:
            raise TemplateError(f"failed to execute template: {e}") from None
    return line


def cmd_events(args):
    filters = {}
    for f in args.filter:
        k, sep, v = f.partition("=")
        if not sep:
            raise ConfigError(f'bad format of filter (expected name=value): "{f}"')
        filters.setdefault(k, []).append(v)
    try:
        match = events.Filter(filters)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    since = _time_ns(args.since, "--since") if args.since else None
    until = _time_ns(args.until, "--until") if args.until else None
    show = _printer(args.format)
    for event in events.follow(default_root(), since, until, match):
        if event is None:
            continue
        sys.stdout.write(show(event) + "\n")
        sys.stdout.flush()
    return 0
