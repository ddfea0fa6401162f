"""Generate the command reference (docs/reference.md) and the man page (docs/lvmvol.8) from the Click commands.

Run from the repository root after changing a command or an option:

    .venv/bin/python docs/generate.py

tests/unit/test_reference.py fails when the committed files differ from
what this script writes, so the reference never drifts from --help.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from pathlib import Path

import click

DOCS = Path(__file__).resolve().parent
REFERENCE = DOCS / "reference.md"
MAN_PAGE = DOCS / "lvmvol.8"
# The .TH line leaves the date empty, so regenerating the man page changes
# nothing unless a command changed.
MAN_SOURCE = "lvmvol"


@dataclass
class CommandDoc:
    """One command of the tree, with the text its --help shows."""

    path: str
    usage: str
    help: str
    options: list[tuple[str, str]]


def walk(command: click.Command, path: str, parent: click.Context | None = None) -> list[CommandDoc]:
    """Return the documentation of ``command`` and of every subcommand below it, depth first."""
    context = click.Context(command, info_name=path.split()[-1], parent=parent)
    usage = " ".join(command.collect_usage_pieces(context))
    options = []
    for parameter in command.get_params(context):
        record = parameter.get_help_record(context)
        if isinstance(parameter, click.Option) and record is not None and "--help" not in parameter.opts:
            options.append(record)
    help_text = inspect.cleandoc(click.unstyle(command.help or "")).replace("\b\n", "")
    docs = [CommandDoc(path, f"{path} {usage}".strip(), help_text, options)]
    if isinstance(command, click.Group):
        for name in command.list_commands(context):
            subcommand = command.get_command(context, name)
            if subcommand is not None and not subcommand.hidden:
                docs += walk(subcommand, f"{path} {name}", context)
    return docs


# The heading of the paragraph of example command lines in each command's help.
EXAMPLE_HEADING = "Example:"


def split_example(help_text: str) -> tuple[str, list[str]]:
    """Split a command's help into its prose and the command lines of its "Example:" paragraph."""
    prose, heading, example = help_text.partition(EXAMPLE_HEADING)
    lines = [line.strip() for line in example.splitlines() if line.strip()]
    return prose.strip(), lines


def render_markdown(docs: list[CommandDoc]) -> str:
    lines = [
        "# Command reference",
        "",
        "Generated from the Click commands by `docs/generate.py`; `lvmvol COMMAND --help`",
        "shows the same text. Exit codes are in [exit-codes.md](exit-codes.md), the",
        "configuration file in [config.md](config.md).",
        "",
    ]
    for doc in docs:
        lines += [f"## `{doc.path}`", "", "```", doc.usage, "```", ""]
        prose, example = split_example(doc.help)
        if prose:
            lines += [prose, ""]
        if example:
            lines += [EXAMPLE_HEADING, "", "```console", *example, "```", ""]
        if doc.options:
            lines += ["| option | meaning |", "|---|---|"]
            for names, text in doc.options:
                lines.append(f"| `{names}` | {_escape_table(text)} |")
            lines.append("")
    return "\n".join(lines)


def _escape_table(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _roff(text: str) -> str:
    """Escape ``text`` for roff: backslashes, and a leading dot or quote on a line."""
    escaped = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(
        "\\&" + line if line.startswith((".", "'")) else line for line in escaped.splitlines()
    )


def render_man(docs: list[CommandDoc]) -> str:
    root = docs[0]
    summary = root.help.strip().splitlines()[0] if root.help else "manage LVM thin volumes"
    lines = [
        f'.TH LVMVOL 8 "" "{MAN_SOURCE}" "System Administration"',
        ".SH NAME",
        f"lvmvol \\- {_roff(summary[0].lower() + summary[1:].rstrip('.'))}",
        ".SH SYNOPSIS",
        f".B {_roff(root.usage)}",
        ".SH DESCRIPTION",
        _roff(split_example(root.help)[0]),
        ".SH EXAMPLES",
        ".nf",
        *(_roff(line) for line in split_example(root.help)[1]),
        ".fi",
        ".SH GLOBAL OPTIONS",
    ]
    for names, text in root.options:
        lines += [".TP", f".B {_roff(names)}", _roff(" ".join(text.split()))]
    lines.append(".SH COMMANDS")
    for doc in docs[1:]:
        lines += [".SS " + _roff(doc.path), f".B {_roff(doc.usage)}", ".PP"]
        prose, example = split_example(doc.help)
        if prose:
            for paragraph in prose.split("\n\n"):
                lines += [_roff(" ".join(paragraph.split())), ".PP"]
        if example:
            lines += [EXAMPLE_HEADING, ".nf", *(_roff(line) for line in example), ".fi", ".PP"]
        for names, text in doc.options:
            lines += [".TP", f".B {_roff(names)}", _roff(" ".join(text.split()))]
    lines += [
        ".SH FILES",
        ".TP",
        ".B /etc/lvmvol/config.toml",
        "configuration file; docs/config.md in the lvmvol sources describes every key",
        ".TP",
        ".B /etc/lvmvol/keys",
        "key files that lvmvol generates, mode 0400 in a directory of mode 0700",
        ".SH SEE ALSO",
        ".BR lvm (8),",
        ".BR lvmthin (7),",
        ".BR cryptsetup (8),",
        ".BR mount (8)",
        "",
    ]
    return "\n".join(lines)


def generate() -> dict[Path, str]:
    """Return the generated text of each file, keyed by its path."""
    # The checkout's own lvmvol, also when another copy is installed.
    if str(DOCS.parent) not in sys.path:
        sys.path.insert(0, str(DOCS.parent))
    from lvmvol.cli import cli

    docs = walk(cli, "lvmvol")
    return {REFERENCE: render_markdown(docs), MAN_PAGE: render_man(docs)}


def main() -> int:
    for path, text in generate().items():
        path.write_text(text)
        print(f"wrote {path.relative_to(DOCS.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
