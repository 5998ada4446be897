"""The command-line reference (docs/cli.md), generated from the scripts' own argparse parsers.

``python -m semg_hht.cli.reference > docs/cli.md`` writes it; a test regenerates it and fails when
the file and ``--help`` differ. The reference is built from the parsers' actions (flags, values,
defaults, help texts), not from ``format_help``, so that it does not depend on the terminal's width
or on the Python version's help layout.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SCRIPTS = (
    ("generate_sample_data.py", "semg-hht simulate", "semg_hht.cli.simulate"),
    ("compute_hht.py", "semg-hht hht", "semg_hht.cli.hht"),
    ("train.py", "semg-hht train", "semg_hht.cli.train"),
    ("inference.py", "semg-hht infer", "semg_hht.cli.infer"),
)
"""Each script, the same command in the installed ``semg-hht``, and the module that parses its flags."""

HEADER = """# Command-line reference

Generated from the scripts' argparse parsers by `python -m semg_hht.cli.reference > docs/cli.md`
(a test fails when this file and `--help` differ). Each script is also a command of the installed
`semg-hht` (named beside it), with the same flags and exit codes.
"""


def _cell(text: str) -> str:
    """``text`` on one line of a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _flags(action: argparse.Action) -> str:
    names = ", ".join(f"`{flag}`" for flag in action.option_strings) or f"`{action.dest}`"
    if action.nargs == 0:
        return names
    if action.choices is not None:
        return f"{names} {{{','.join(map(str, action.choices))}}}"
    metavar = action.metavar or action.dest.upper()
    return f"{names} {metavar if isinstance(metavar, str) else ' '.join(metavar)}"


def _help(action: argparse.Action, prog: str) -> str:
    text = action.help or ""
    if "%(" in text:
        values = {**vars(action), "prog": prog}
        if isinstance(values.get("choices"), (list, tuple)):
            values["choices"] = ", ".join(map(str, values["choices"]))
        text = text % values
    if action.required:
        text += " (required)"
    return _cell(text)


def command_section(script: str, command: str, module_name: str) -> str:
    """The Markdown section of one script: its description, then one table row per flag."""
    parser: argparse.ArgumentParser = importlib.import_module(module_name).build_parser(prog=script)
    lines = [f"## `{script}` (`{command}`)", "", (parser.description or "").strip(), ""]
    lines += ["| flag | what it does |", "| --- | --- |"]
    for action in parser._actions:  # argparse offers no public list of a parser's actions
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        lines.append(f"| {_flags(action)} | {_help(action, script)} |")
    return "\n".join(lines) + "\n"


def reference() -> str:
    """The whole reference, as docs/cli.md holds it."""
    return "\n".join([HEADER, *(command_section(*script) for script in SCRIPTS)])


if __name__ == "__main__":
    sys.stdout.write(reference())
