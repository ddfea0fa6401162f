"""Output for people and scripts: -o/--output, examples in --help, spinners only on a terminal."""

from __future__ import annotations

import io
import json
import sys

import click
import pytest
from click.testing import CliRunner

from lvmvol.cli import cli
from lvmvol.cli.progress import status_spinner

from .test_cli import invoke  # noqa: F401


def all_commands(command: click.Command, path: list[str]) -> list[list[str]]:
    """Return the argv path of ``command`` and of every subcommand below it."""
    found = [path]
    if isinstance(command, click.Group):
        context = click.Context(command)
        for name in command.list_commands(context):
            found += all_commands(command.get_command(context, name), [*path, name])
    return found


@pytest.mark.parametrize("path", all_commands(cli, []), ids=lambda path: " ".join(path) or "lvmvol")
def test_help_has_example(path: list[str]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="lvmvol")

    assert result.exit_code == 0
    assert "Example:" in result.output
    assert "$ lvmvol" in result.output


def test_volume_ls_prints_names(invoke) -> None:
    result = invoke("volume", "ls", "-o", "name")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["data", "snap1", "vol1"]


def test_pool_ls_prints_names(invoke) -> None:
    result = invoke("pool", "ls", "--output", "name")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["pool"]


def test_output_json_same_as_json_flag(invoke) -> None:
    by_flag = invoke("volume", "ls", "--json")
    by_option = invoke("volume", "ls", "-o", "json")

    assert by_option.output == by_flag.output
    assert [volume["name"] for volume in json.loads(by_option.output)] == ["data", "snap1", "vol1"]


def test_json_and_other_output_rejected(invoke) -> None:
    result = invoke("volume", "ls", "--json", "-o", "name")

    assert result.exit_code == 2
    assert "--json and --output name exclude each other" in result.output


def test_piped_table_has_no_escapes(invoke) -> None:
    result = invoke("volume", "ls")

    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.output
    assert result.output.splitlines()[0].split() == [
        "NAME", "VG", "POOL", "SIZE", "FS", "CRYPT", "ORIGIN", "CREATED", "STATE", "MOUNTPOINT"
    ]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_spinner_silent_without_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)

    with status_spinner("creating db"):
        pass

    assert stderr.getvalue() == ""


def test_spinner_drawn_on_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", stderr)

    with status_spinner("creating db"):
        pass

    assert "creating db" in stderr.getvalue()
