"""Helpers shared by the command modules: building the operation context, output, confirmation."""

from __future__ import annotations

import json
import os
import sys
from typing import Callable

import click

from lvmvol.config import Config, load_config
from lvmvol.errors import Conflict, InvalidInput, NotPermitted
from lvmvol.lock import CommandLock
from lvmvol.ops.context import Context, Outcome
from lvmvol.runner import Runner

json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")

# Output formats of the listing commands: a table for people, JSON, or one
# name a line for shell loops.
OUTPUT_FORMATS = ("table", "json", "name")

output_option = click.option(
    "-o",
    "--output",
    type=click.Choice(OUTPUT_FORMATS),
    default=None,
    help="Output format: table (default), json (same as --json) or name (one name a line, for scripts).",
)


def output_format(output: str | None, as_json: bool) -> str:
    """Return the output format that ``-o/--output`` and ``--json`` select; raise when they disagree."""
    if as_json and output not in (None, "json"):
        raise InvalidInput(f"--json and --output {output} exclude each other", "pass one of them")
    if as_json:
        return "json"
    return output or "table"


def unique_names(items: list) -> list[str]:
    """Return each pool's or volume's NAME, or VG/NAME where the same NAME is in several volume groups.

    Every name returned is one the commands accept as it is.
    """
    counts: dict[str, int] = {}
    for item in items:
        counts[item.name] = counts.get(item.name, 0) + 1
    return [item.name if counts[item.name] == 1 else item.full_name for item in items]


def print_names(items: list) -> None:
    """Print one name a line (``-o name``), plain on a terminal too."""
    for name in unique_names(items):
        click.echo(name)


class ReadOnlyCommand(click.Command):
    """A command that only reads: it runs without root where lvm2 allows, and never waits for the lock.

    Every other command counts as one that changes the system.
    """

    read_only = True


def operation_context(click_ctx: click.Context, mutating: bool | None = None) -> Context:
    """Load the configuration once per invocation and return the operations' context.

    For a command that changes the system (every command not declared with
    ``ReadOnlyCommand``, or ``mutating=True``), this is also where it is
    refused without root, and where it takes the command lock, held until
    the command exits. A dry run changes nothing, so it takes neither.
    """
    root = click_ctx.find_root()
    state = root.obj
    if mutating is None:
        mutating = not getattr(click_ctx.command, "read_only", False)
    guarded = mutating and not state.get("dry_run", False)
    if guarded:
        # Before the configuration is read: without root, nothing else matters.
        require_root(click_ctx.command_path)

    if "context" not in state:
        config = load_config(state.get("config_path"))
        runner = Runner(timeout=config.command_timeout, dry_run=state.get("dry_run", False))
        state["context"] = Context(config=config, runner=runner)
    context = state["context"]

    if guarded and not context.dry_run and "lock" not in state:
        state["lock"] = root.with_resource(command_lock(context.config))
    return context


def effective_uid() -> int:
    return os.geteuid()


def require_root(command: str) -> None:
    """Raise ``NotPermitted`` unless the process runs as root (effective uid 0)."""
    euid = effective_uid()
    if euid != 0:
        raise NotPermitted(
            f"'{command}' changes LVM volumes, mappings or mounts and must run as root, not as uid {euid}",
            "run it with sudo; listing commands (ls, show, tree, check) work without root where lvm2 allows",
        )


def command_lock(config: Config) -> CommandLock:
    """Return the lock that commands changing the system hold (replaced by the unit tests)."""
    return CommandLock(config.lock_dir, config.lock_timeout)


def print_json(document: object) -> None:
    """Print ``document`` as JSON: indented on a terminal, on one line when piped.

    Indented output goes through the json module's pure-Python encoder,
    which took a quarter of ``volume ls --json`` at 500 volumes. Piped
    output uses the C encoder, so scripts get the same data faster.
    """
    indent = 2 if is_terminal() else None
    click.echo(json.dumps(document, indent=indent, sort_keys=False, default=str))


def report(outcome: Outcome, as_json: bool, kind: str, line: str | None = None) -> None:
    """Report a mutating command's outcome.

    stdout gets ``line`` (by default the name) for scripts, or the JSON
    object; stderr gets what changed and any notes.
    """
    if as_json:
        document = outcome.to_dict()
        if outcome.notes:
            document["notes"] = outcome.notes
        print_json(document)
    else:
        click.echo(line if line is not None else outcome.name)
    for note in outcome.notes:
        click.echo(f"lvmvol: note: {note}", err=True)
    if not as_json:
        verb = "changed" if outcome.changed else "unchanged"
        click.echo(f"lvmvol: {kind} {outcome.name}: {verb}", err=True)


def confirmer(assume_yes: bool) -> Callable[[str], bool]:
    """Return the confirmation callback for operations.

    ``--yes`` agrees to everything. Otherwise the question is asked on a
    terminal. Without one, ``Conflict`` is raised before anything changes
    (exit 4, as for a declined question), so a script learns in one line
    that it must pass --yes.
    """

    def confirm(question: str) -> bool:
        if assume_yes:
            return True
        if not sys.stdin.isatty():
            raise Conflict(
                f"confirmation required, and no terminal to ask: {question}", "pass --yes to confirm"
            )
        return click.confirm(question, default=False, err=True)

    return confirm


def is_terminal() -> bool:
    return sys.stdout.isatty()
