"""MkDocs hook: render `siamkit` sub-commands from the argparse parser itself.

A page line `<!-- cli: COMMAND [ACTION] -->` becomes the command's usage,
description and a table of its arguments, so the CLI reference always
matches `siamkit COMMAND --help`.
"""

import argparse
import functools
import re

MARKER = re.compile(r"^<!-- cli: ([\w-]+(?: [\w-]+)*) -->$", re.MULTILINE)


def _subparsers(parser):
    """The parser's sub-command action, or None."""
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def _find(parser, words):
    for word in words:
        sub = _subparsers(parser)
        if sub is None or word not in sub.choices:
            raise KeyError(f"no siamkit command {' '.join(words)!r}")
        parser = sub.choices[word]
    return parser


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _argument(action):
    if action.option_strings:
        metavar = action.metavar or (action.dest.upper() if action.nargs != 0 else None)
        if action.choices and not action.metavar:
            metavar = "{" + ",".join(map(str, action.choices)) + "}"
        if action.nargs in ("+", "*"):
            metavar = f"{metavar} ..."
        names = ", ".join(action.option_strings)
        return f"`{names} {metavar}`" if metavar else f"`{names}`"
    return f"`{action.metavar or action.dest}`" + (" ..." if action.nargs in ("+", "*") else "")


def render(parser):
    # A fixed width, so the page does not depend on the terminal that builds it.
    parser.formatter_class = functools.partial(argparse.HelpFormatter, width=88)
    lines = ["```text", parser.format_usage().strip(), "```", ""]
    if parser.description:
        lines += [_cell(parser.description).strip(), ""]
    sub = _subparsers(parser)
    if sub is not None:
        lines += ["| action | what |", "| --- | --- |"]
        lines += [f"| `{a.dest}` | {_cell(a.help or '')} |" for a in sub._choices_actions]
        return "\n".join(lines) + "\n"
    rows = [a for a in parser._actions if not isinstance(a, argparse._HelpAction) and a.help != argparse.SUPPRESS]
    if rows:
        lines += ["| argument | what |", "| --- | --- |"]
        lines += [f"| {_argument(a)} | {_cell(a.help or '')} |" for a in rows]
    return "\n".join(lines) + "\n"


def on_page_markdown(markdown, page, config, files, **kwargs):
    if not MARKER.search(markdown):
        return markdown
    from siamkit.cli import build_parser

    parser = build_parser()
    return MARKER.sub(lambda m: render(_find(parser, m.group(1).split())), markdown)
